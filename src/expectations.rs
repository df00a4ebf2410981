//! Expectation files: a target's known failures, each with its reason. A listed case that fails
//! becomes `xfail`; one that passes becomes `xpass` (the file is out of date).
//!
//! ```toml
//! [[case]]
//! id = "msc4140.errors.zero_delay"
//! outcome = "fail"          # fail (default) or error
//! reason = "why, with the spec sentence it diverges from"
//! ```

use crate::outcome::Outcome;
use crate::results::CaseReport;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Deserialize)]
struct File {
    #[serde(default)]
    case: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    id: String,
    #[serde(default = "default_outcome")]
    outcome: String,
    reason: String,
}

fn default_outcome() -> String {
    "fail".into()
}

#[derive(Debug, Default)]
pub struct Expectations {
    entries: HashMap<String, (Outcome, String)>,
}

impl Expectations {
    pub fn parse(text: &str, origin: &str) -> Result<Expectations, String> {
        let file: File = toml::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
        let mut entries = HashMap::new();
        for entry in file.case {
            let outcome = match Outcome::parse(&entry.outcome) {
                Some(o @ (Outcome::Fail | Outcome::Error)) => o,
                _ => {
                    return Err(format!(
                        "{origin}: case {}: outcome must be 'fail' or 'error'",
                        entry.id
                    ))
                }
            };
            if entries
                .insert(entry.id.clone(), (outcome, entry.reason))
                .is_some()
            {
                return Err(format!("{origin}: case {} is listed twice", entry.id));
            }
        }
        Ok(Expectations { entries })
    }

    pub fn load(path: &Path) -> Result<Expectations, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read expectation file {}: {e}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn reason(&self, id: &str) -> Option<&str> {
        self.entries.get(id).map(|(_, reason)| reason.as_str())
    }

    /// The outcome after the expectation: xfail for a listed failure, xpass for a listed pass.
    pub fn apply(&self, report: &mut CaseReport) {
        let Some((expected, reason)) = self.entries.get(&report.id) else {
            return;
        };
        let adjusted = match report.outcome {
            actual if actual == *expected => Outcome::Xfail,
            Outcome::Pass => Outcome::Xpass,
            _ => return,
        };
        report.outcome = adjusted;
        report.expectation = Some(reason.clone());
    }
}
