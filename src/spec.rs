//! The shared vocabulary of requirements: revisions of the MSC, requirement levels, and the
//! reference (document, revision, section, quoted sentence) that every case enforces.

use serde::{Serialize, Serializer};

/// One dated revision of MSC4140 (or MSC4157); docs/revisions.md links the text of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rev {
    /// 2024-10: query-parameter scheduling, body-form management, state-overwrite rule.
    Oct2024,
    /// 2025-12: split-path management without authentication, `delay_id` as credential.
    Dec2025,
    /// 2026-07: dedicated PUT endpoint, authenticated management, retry semantics, capability.
    Jul2026,
    /// MSC4157 (widget API), 2026-01.
    Widget2026,
}

impl Rev {
    pub const ALL_MSC4140: [Rev; 3] = [Rev::Oct2024, Rev::Dec2025, Rev::Jul2026];

    pub fn as_str(self) -> &'static str {
        match self {
            Rev::Oct2024 => "2024-10-22",
            Rev::Dec2025 => "2025-12-15",
            Rev::Jul2026 => "2026-07-10",
            Rev::Widget2026 => "2026-01-21",
        }
    }
}

impl std::fmt::Display for Rev {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Rev {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// How strongly the text requires the behaviour a case checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    Must,
    Should,
    May,
    /// Behaviour no text requires; reported for information only.
    Info,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
            Level::Info => "INFO",
        }
    }
}

impl Serialize for Level {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Where a requirement comes from, with the sentence quoted verbatim.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SpecRef {
    pub doc: &'static str,
    pub revision: Rev,
    pub section: &'static str,
    pub text: &'static str,
}

impl SpecRef {
    pub const fn msc4140(revision: Rev, section: &'static str, text: &'static str) -> SpecRef {
        SpecRef {
            doc: "MSC4140",
            revision,
            section,
            text,
        }
    }
}
