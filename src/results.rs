//! The results file (JSON, schema 1): the contract every report is built from.

use crate::api::{ApiForm, Features};
use crate::case::Case;
use crate::client::Exchange;
use crate::outcome::Outcome;
use crate::spec::{Level, Rev, SpecRef};
use crate::target::TargetInfo;
use serde::Serialize;
use std::collections::BTreeMap;

pub const SCHEMA: u32 = 1;

#[derive(Clone, Debug, Serialize)]
pub struct Harness {
    pub name: &'static str,
    pub version: &'static str,
}

impl Default for Harness {
    fn default() -> Self {
        Harness {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CaseReport {
    pub id: String,
    pub title: String,
    pub area: String,
    pub level: Level,
    pub spec: SpecRef,
    pub outcome: Outcome,
    pub matched_revisions: Vec<Rev>,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For an expected outcome (xfail/xpass): why the expectation file lists it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expectation: Option<String>,
    /// The upstream issue the expectation file links for this case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expectation_link: Option<String>,
    /// How long after its scheduled send time a delayed event was sent, where one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lateness_ms: Option<i64>,
    /// Measurements the case reports whatever its outcome.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub evidence: Vec<Exchange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_log_tail: Option<String>,
}

impl CaseReport {
    pub fn new(case: &Case, outcome: Outcome, message: Option<String>) -> CaseReport {
        CaseReport {
            id: case.id.into(),
            title: case.title.into(),
            area: case.area().into(),
            level: case.level,
            spec: case.spec,
            outcome,
            matched_revisions: Vec::new(),
            duration_ms: 0,
            message,
            expectation: None,
            expectation_link: None,
            lateness_ms: None,
            notes: Vec::new(),
            evidence: Vec::new(),
            server_log_tail: None,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub pass: usize,
    pub fail: usize,
    pub skip: usize,
    pub error: usize,
    pub xfail: usize,
    pub xpass: usize,
}

impl Summary {
    pub fn of(cases: &[CaseReport]) -> Summary {
        let mut s = Summary::default();
        for case in cases {
            *match case.outcome {
                Outcome::Pass => &mut s.pass,
                Outcome::Fail => &mut s.fail,
                Outcome::Skip => &mut s.skip,
                Outcome::Error => &mut s.error,
                Outcome::Xfail => &mut s.xfail,
                Outcome::Xpass => &mut s.xpass,
            } += 1;
        }
        s
    }
}

/// Which expectation file a run applied, and why.
#[derive(Clone, Debug, Serialize)]
pub struct ExpectationsApplied {
    pub file: String,
    pub why: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub schema: u32,
    pub harness: Harness,
    pub target: TargetInfo,
    pub api_form: ApiForm,
    /// What detection found the server offers (beyond the brief's contract; informative).
    pub features: Features,
    pub started_at: String,
    pub duration_ms: u64,
    /// The expectation file applied, and why (none: no file applied).
    pub expectations: Option<ExpectationsApplied>,
    pub summary: Summary,
    pub cases: Vec<CaseReport>,
}

impl RunReport {
    /// Outcomes by case id, for comparing runs.
    pub fn outcomes(&self) -> BTreeMap<String, Outcome> {
        self.cases
            .iter()
            .map(|c| (c.id.clone(), c.outcome))
            .collect()
    }
}
