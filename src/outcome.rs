//! What a case can conclude, and the early exits a case body takes to conclude it.

use serde::{Deserialize, Serialize};

/// The verdict on one case, before and after applying an expectation file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Skip,
    Error,
    /// A failure the expectation file lists.
    Xfail,
    /// A pass where the expectation file lists a failure.
    Xpass,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Skip => "skip",
            Outcome::Error => "error",
            Outcome::Xfail => "xfail",
            Outcome::Xpass => "xpass",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::Pass,
            Outcome::Fail,
            Outcome::Skip,
            Outcome::Error,
            Outcome::Xfail,
            Outcome::Xpass,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// How a case body stops before reaching its end (reaching the end means `pass`).
#[derive(Clone, Debug)]
pub enum Stop {
    /// The server broke the requirement; the message says what was expected, what came back and
    /// which request produced it.
    Fail(String),
    /// The case does not apply here (feature or API form not offered, target cannot restart...).
    Skip(String),
    /// The harness or the environment broke; no verdict about the server.
    Error(String),
}

impl Stop {
    pub fn message(&self) -> &str {
        match self {
            Stop::Fail(m) | Stop::Skip(m) | Stop::Error(m) => m,
        }
    }
}

pub type CaseResult = Result<(), Stop>;

/// `check!(condition, "format", args...)`: fail the case with the message unless it holds.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::outcome::Stop::Fail(format!($($msg)+)));
        }
    };
}

/// `fail!("format", args...)`: fail the case now.
#[macro_export]
macro_rules! fail {
    ($($msg:tt)+) => {
        return Err($crate::outcome::Stop::Fail(format!($($msg)+)))
    };
}

/// `skip!("format", args...)`: the case does not apply here.
#[macro_export]
macro_rules! skip {
    ($($msg:tt)+) => {
        return Err($crate::outcome::Stop::Skip(format!($($msg)+)))
    };
}
