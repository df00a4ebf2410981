//! The results file (JSON, schema 1): the contract every report is built from. It loads back
//! into the same model (owned types), so saved runs can be rendered and compared later.

use crate::api::{ApiForm, Features};
use crate::case::Case;
use crate::evidence::Exchange;
use crate::homeserver::TargetInfo;
use crate::observation;
use crate::outcome::Outcome;
use crate::spec::{Level, SpecRef};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const SCHEMA: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Harness {
    pub name: String,
    pub version: String,
}

impl Default for Harness {
    fn default() -> Self {
        Harness {
            // The product's name, not this crate's (`dec-harness` since the workspace split).
            name: "delayed-events-conformance".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// The requirement a case enforces, as recorded in results (an owned `SpecRef`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SpecRecord {
    pub doc: String,
    pub revision: String,
    pub section: String,
    pub text: String,
    /// Public URLs for the text, where no quotable text is kept (a reconstructed revision), or
    /// beside a quote for what the merged text accepts besides. Files written before there
    /// could be several have one string under `source`: it reads back as a one-item list.
    #[serde(
        default,
        alias = "source",
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sources: Vec<String>,
    /// The revision was reconstructed (e.g. a merged text), not taken from a published file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reconstructed: bool,
    /// Where part of the behaviour has moved since (e.g. to another proposal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl SpecRecord {
    /// How the reference reads in a message: the quote, or what the source says.
    pub fn describe(&self) -> String {
        let sources = self.sources.join(", ");
        let mut text = if self.reconstructed {
            format!(
                "{} {} (reconstructed: the text is not available) § {}: per {sources}: {}",
                self.doc, self.revision, self.section, self.text
            )
        } else {
            format!(
                "{} {} § {}: \"{}\"",
                self.doc, self.revision, self.section, self.text
            )
        };
        if let Some(note) = &self.note {
            text.push_str(&format!(" (note: {note})"));
        }
        if !self.reconstructed && !self.sources.is_empty() {
            text.push_str(&format!(" (sources: {sources})"));
        }
        text
    }
}

impl From<&SpecRef> for SpecRecord {
    fn from(spec: &SpecRef) -> SpecRecord {
        SpecRecord {
            doc: spec.doc.into(),
            revision: spec.revision.as_str().into(),
            section: spec.section.into(),
            text: spec.text.into(),
            sources: spec.sources.iter().map(|s| s.to_string()).collect(),
            reconstructed: spec.reconstructed,
            note: spec.note.map(str::to_string),
        }
    }
}

/// A list of strings, or (as files written before there could be several had) one string.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(one)) => vec![one],
        Some(OneOrMany::Many(many)) => many,
    })
}

/// Which expectation file a run applied, and why that one.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppliedExpectations {
    pub file: String,
    pub why: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaseReport {
    pub id: String,
    pub title: String,
    pub area: String,
    pub level: Level,
    pub spec: SpecRecord,
    pub outcome: Outcome,
    /// The revisions whose behaviour the case accepts (one for a requirement all agree on).
    #[serde(default)]
    pub revisions: Vec<String>,
    /// Which of those the server's behaviour matched (a passing case).
    #[serde(default)]
    pub matched_revisions: Vec<String>,
    #[serde(default)]
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For a failure, what was expected, where the case gave it apart from the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// For a failure, what came back instead, where the case gave it apart from the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    /// For an expected outcome (xfail/xpass): why the expectation file lists it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expectation: Option<String>,
    /// The upstream issue the expectation file links for this case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expectation_link: Option<String>,
    /// The server's claim of how late a delayed event was sent, where one was: its
    /// `origin_server_ts` minus the scheduling time it reported plus the delay. A server that
    /// stamps a late event with its scheduled time claims 0. (Files written before
    /// `harness_lateness_ms` fell back to the harness's clock where the server reported no
    /// scheduling time.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lateness_ms: Option<i64>,
    /// How late the delayed event arrived by the harness's own clock: from just before the
    /// request that started its timer, plus the delay, to the `/sync` answer carrying it (as
    /// `load` measures). Includes the `/sync` round trip, so an upper bound. Absent in files
    /// written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harness_lateness_ms: Option<i64>,
    /// Measurements the case reports whatever its outcome.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What the server answered, normalised (no ids, tokens or times) so that runs compare:
    /// one line per distinct answer, see `observation.rs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observation: Vec<String>,
    #[serde(default)]
    pub evidence: Vec<Exchange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_log_tail: Option<String>,
}

impl CaseReport {
    pub fn new(case: &Case, outcome: Outcome, message: Option<String>) -> CaseReport {
        CaseReport {
            id: case.id.into(),
            title: case.title.into(),
            area: case.area().into(),
            level: case.level,
            spec: SpecRecord::from(&case.spec),
            outcome,
            revisions: case
                .revisions
                .iter()
                .map(|r| r.as_str().to_string())
                .collect(),
            matched_revisions: Vec::new(),
            duration_ms: 0,
            message,
            expected: None,
            actual: None,
            expectation: None,
            expectation_link: None,
            lateness_ms: None,
            harness_lateness_ms: None,
            notes: Vec::new(),
            observation: Vec::new(),
            evidence: Vec::new(),
            server_log_tail: None,
        }
    }

    /// Sets the evidence and the observation derived from it.
    pub fn set_evidence(&mut self, evidence: Vec<Exchange>) {
        self.observation = observation::observe(&evidence);
        self.evidence = evidence;
    }

    /// `("expected", ..)` and `("actual", ..)`, those the case gave: what reports show beside
    /// the message.
    pub fn expected_actual(&self) -> Vec<(&'static str, &str)> {
        [("expected", &self.expected), ("actual", &self.actual)]
            .into_iter()
            .filter_map(|(label, value)| Some((label, value.as_deref()?)))
            .collect()
    }

    /// A failure nobody expected: what CI annotations and the Markdown report single out.
    pub fn is_unexpected_failure(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::Fail | Outcome::Error | Outcome::Xpass
        )
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
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
            *s.count_mut(case.outcome) += 1;
        }
        s
    }

    fn count_mut(&mut self, outcome: Outcome) -> &mut usize {
        match outcome {
            Outcome::Pass => &mut self.pass,
            Outcome::Fail => &mut self.fail,
            Outcome::Skip => &mut self.skip,
            Outcome::Error => &mut self.error,
            Outcome::Xfail => &mut self.xfail,
            Outcome::Xpass => &mut self.xpass,
        }
    }

    pub fn count(&self, outcome: Outcome) -> usize {
        let mut copy = self.clone();
        *copy.count_mut(outcome)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    pub schema: u32,
    pub harness: Harness,
    pub target: TargetInfo,
    pub api_form: ApiForm,
    /// What detection found the server offers (beyond the brief's contract; informative).
    #[serde(default)]
    pub features: Features,
    /// Set when the server offers no delayed events at all: why (what detection saw). Every case
    /// that needs the feature skipped, and the run says "not implemented".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_implemented: Option<String>,
    /// The expectation file applied, and why that one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expectations: Option<AppliedExpectations>,
    pub started_at: String,
    #[serde(default)]
    pub duration_ms: u64,
    #[serde(default)]
    pub summary: Summary,
    /// The suite's areas in report order (files written before it was recorded have none: the
    /// reports then keep the order in which the cases list the areas).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub areas: Vec<String>,
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

    /// Reads a saved results file; the message says what is wrong and with which file.
    pub fn load(path: &Path) -> Result<RunReport, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read results file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<RunReport, String> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| format!("not a results file (invalid JSON: {e})"))?;
        match value.get("schema").and_then(serde_json::Value::as_u64) {
            Some(s) if s == u64::from(SCHEMA) => {}
            Some(s) => {
                return Err(format!(
                    "results schema {s}, but this harness reads schema {SCHEMA}; render it with \
                     the harness version that wrote it"
                ))
            }
            None => {
                return Err(
                    "not a results file (no \"schema\"; write one with `run --json FILE`)".into(),
                )
            }
        }
        serde_json::from_value(value).map_err(|e| format!("not a valid results file: {e}"))
    }

    /// A short name for the implementation: server name and version.
    pub fn implementation(&self) -> String {
        let t = &self.target;
        let name = t.server_name.as_deref().unwrap_or(&t.name);
        match t.server_version.as_deref().or(t.version.as_deref()) {
            Some(v) if !v.is_empty() => format!("{name} {v}"),
            _ => name.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SpecRecord;

    #[test]
    fn a_single_source_of_older_files_reads_as_a_list() {
        let old: SpecRecord = serde_json::from_str(
            r#"{"doc": "MSC4140", "revision": "2026-09-08", "section": "S", "text": "t",
                "source": "https://example.org/a", "reconstructed": true}"#,
        )
        .unwrap();
        assert_eq!(old.sources, ["https://example.org/a"]);
        let new: SpecRecord = serde_json::from_value(serde_json::to_value(&old).unwrap()).unwrap();
        assert_eq!(new.sources, old.sources);
        let none: SpecRecord = serde_json::from_str(
            r#"{"doc": "MSC4140", "revision": "2026-07-10", "section": "S", "text": "t"}"#,
        )
        .unwrap();
        assert!(none.sources.is_empty());
    }

    #[test]
    fn the_topology_is_optional_and_names_every_part() {
        use crate::homeserver::{Database, TargetInfo, Topology};
        let old: TargetInfo =
            serde_json::from_str(r#"{"kind": "synapse", "name": "Synapse", "base_url": "u"}"#)
                .unwrap();
        assert_eq!(old.topology, None);
        let deployed = Topology {
            database: Database::Postgres,
            workers: 2,
            proxy: Some("nginx".into()),
        };
        let json = serde_json::to_value(&deployed).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"database": "postgres", "workers": 2, "proxy": "nginx"})
        );
        assert_eq!(serde_json::from_value::<Topology>(json).unwrap(), deployed);
        assert_eq!(
            deployed.label(),
            "PostgreSQL, main + 2 workers behind nginx"
        );
        let single = Topology::default();
        assert_eq!(
            serde_json::to_value(&single).unwrap(),
            serde_json::json!({"database": "sqlite"})
        );
        assert_eq!(single.label(), "SQLite");
    }
}
