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
    /// The same, with what was expected and what came back also given apart from the message
    /// (as hurl's assert failures), so that reports can show both: `Stop::fail(message)
    /// .expected(..).actual(..)`, or `check_eq!`. Reported as `fail`, like `Fail`.
    Mismatch(Failure),
    /// The case does not apply here (feature or API form not offered, target cannot restart...).
    Skip(String),
    /// The harness or the environment broke; no verdict about the server.
    Error(String),
}

/// A failure's message, and what was expected and what came back where the case can say so
/// apart from it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub expected: Option<String>,
    pub actual: Option<String>,
}

impl Stop {
    /// A failure with its message; add `.expected(..)` and `.actual(..)` where they are clear.
    pub fn fail(message: impl Into<String>) -> Stop {
        Stop::Fail(message.into())
    }

    /// Adds what was expected to a failure (any other stop is returned unchanged).
    pub fn expected(self, expected: impl std::fmt::Display) -> Stop {
        self.with(|f| f.expected = Some(expected.to_string()))
    }

    /// Adds what came back instead to a failure (any other stop is returned unchanged).
    pub fn actual(self, actual: impl std::fmt::Display) -> Stop {
        self.with(|f| f.actual = Some(actual.to_string()))
    }

    fn with(self, change: impl FnOnce(&mut Failure)) -> Stop {
        let mut failure = match self {
            Stop::Fail(message) => Failure {
                message,
                ..Failure::default()
            },
            Stop::Mismatch(failure) => failure,
            other => return other,
        };
        change(&mut failure);
        Stop::Mismatch(failure)
    }

    pub fn message(&self) -> &str {
        match self {
            Stop::Fail(m) | Stop::Skip(m) | Stop::Error(m) => m,
            Stop::Mismatch(f) => &f.message,
        }
    }

    /// What was expected and what came back, where a failure gave them.
    pub fn expected_actual(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Stop::Mismatch(f) => (f.expected.as_deref(), f.actual.as_deref()),
            _ => (None, None),
        }
    }

    /// The outcome this stop gives its case.
    pub fn outcome(&self) -> Outcome {
        match self {
            Stop::Fail(_) | Stop::Mismatch(_) => Outcome::Fail,
            Stop::Skip(_) => Outcome::Skip,
            Stop::Error(_) => Outcome::Error,
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

/// `check_eq!(actual, expected, "what", args...)`: fail the case unless `actual == expected`,
/// with the message "what: expected E, got A" and both given apart (`Debug`-formatted).
#[macro_export]
macro_rules! check_eq {
    ($actual:expr, $expected:expr, $($what:tt)+) => {
        match (&$actual, &$expected) {
            (actual, expected) => {
                if !(*actual == *expected) {
                    let expected = format!("{:?}", expected);
                    let actual = format!("{:?}", actual);
                    return Err($crate::outcome::Stop::fail(format!(
                        "{}: expected {expected}, got {actual}",
                        format_args!($($what)+)
                    ))
                    .expected(expected)
                    .actual(actual));
                }
            }
        }
    };
}

/// `skip!("format", args...)`: the case does not apply here.
#[macro_export]
macro_rules! skip {
    ($($msg:tt)+) => {
        return Err($crate::outcome::Stop::Skip(format!($($msg)+)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count_copies(copies: usize) -> CaseResult {
        check_eq!(copies, 1, "copies of {}", "the event");
        Ok(())
    }

    #[test]
    fn check_eq_gives_expected_and_actual_apart() {
        assert!(count_copies(1).is_ok());
        let stop = count_copies(2).unwrap_err();
        assert_eq!(stop.outcome(), Outcome::Fail);
        assert_eq!(stop.message(), "copies of the event: expected 1, got 2");
        assert_eq!(stop.expected_actual(), (Some("1"), Some("2")));
    }

    #[test]
    fn only_failures_take_expected_and_actual() {
        let fail = Stop::Fail("late".into())
            .expected("on time")
            .actual("40 s late");
        assert_eq!(fail.message(), "late");
        assert_eq!(fail.expected_actual(), (Some("on time"), Some("40 s late")));
        let skip = Stop::Skip("not offered".into()).expected("x");
        assert!(matches!(skip, Stop::Skip(_)));
        assert_eq!(skip.expected_actual(), (None, None));
        assert_eq!(Stop::fail("plain").expected_actual(), (None, None));
    }
}
