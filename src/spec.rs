//! The shared vocabulary of requirements: revisions of the MSC, requirement levels, and the
//! reference (document, revision, section, quoted sentence) that every case enforces.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One dated revision of MSC4140 (or MSC4157); docs/revisions.md links the text of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rev {
    /// 2024-10: query-parameter scheduling, body-form management, state-overwrite rule.
    Oct2024,
    /// 2025-12: split-path management without authentication, `delay_id` as credential.
    Dec2025,
    /// 2026-07: dedicated PUT endpoint, authenticated management, retry semantics, capability.
    Jul2026,
    /// 2026-09-08: the text as merged. Not available to quote: what it says is *reconstructed*
    /// from public sources (pull requests that implement it), which the cases citing it name.
    Merged2026,
    /// MSC4157 (widget API), 2026-01.
    Widget2026,
}

impl Rev {
    pub const ALL_MSC4140: [Rev; 3] = [Rev::Oct2024, Rev::Dec2025, Rev::Jul2026];
    pub const ALL: [Rev; 5] = [
        Rev::Oct2024,
        Rev::Dec2025,
        Rev::Jul2026,
        Rev::Merged2026,
        Rev::Widget2026,
    ];

    /// The proposal the revision is of.
    pub fn doc(self) -> &'static str {
        match self {
            Rev::Widget2026 => "MSC4157",
            _ => "MSC4140",
        }
    }

    /// Where the revision's text is public in matrix-spec-proposals: the commit and the file.
    /// None for the reconstructed revision, which has no text.
    pub fn published(self) -> Option<(&'static str, &'static str)> {
        const MSC4140: &str = "proposals/4140-delayed-events-futures.md";
        match self {
            Rev::Oct2024 => Some(("d1a37f06f", MSC4140)),
            Rev::Dec2025 => Some(("3ee73abe5", MSC4140)),
            Rev::Jul2026 => Some(("cd878d2", MSC4140)),
            Rev::Merged2026 => None,
            Rev::Widget2026 => Some(("6a719a8", "proposals/4157-delayed-events-widget-api.md")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Rev::Oct2024 => "2024-10-22",
            Rev::Dec2025 => "2025-12-15",
            Rev::Jul2026 => "2026-07-10",
            Rev::Merged2026 => "2026-09-08",
            Rev::Widget2026 => "2026-01-21",
        }
    }
}

impl Rev {
    /// Whether the revision's text is unavailable and what it says is reconstructed from public
    /// sources: its cases cite sources (`SpecRef::sources`) instead of a quote.
    pub fn is_reconstructed(self) -> bool {
        self == Rev::Merged2026
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

    pub const ALL: [Level; 4] = [Level::Must, Level::Should, Level::May, Level::Info];

    pub fn parse(text: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == text)
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Level, D::Error> {
        let text = String::deserialize(d)?;
        Level::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown level '{text}' (MUST, SHOULD, MAY, INFO)"))
        })
    }
}

impl Serialize for Level {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Where a requirement comes from, with the sentence quoted verbatim; for a reconstructed
/// revision, `text` says what the public `sources` say instead (it is not a quote). A quoted
/// reference may cite sources too: where the merged text (reconstructed) accepts more than the
/// quoted revision, the public record of what it accepts (its `note` says what).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SpecRef {
    pub doc: &'static str,
    pub revision: Rev,
    pub section: &'static str,
    pub text: &'static str,
    /// The public sources (URLs) a reconstructed revision's requirement comes from, or, beside
    /// a quote, those that say what the merged text accepts besides.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub sources: &'static [&'static str],
    /// Whether `text` is reconstructed from `sources` rather than quoted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reconstructed: bool,
    /// Where part of the behaviour has moved since (e.g. to another proposal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

impl SpecRef {
    pub const fn msc4140(revision: Rev, section: &'static str, text: &'static str) -> SpecRef {
        SpecRef {
            doc: "MSC4140",
            revision,
            section,
            text,
            sources: &[],
            reconstructed: false,
            note: None,
        }
    }

    /// A requirement of a reconstructed revision: what the public `sources` say, not a quote.
    pub const fn reconstructed(
        revision: Rev,
        section: &'static str,
        text: &'static str,
        sources: &'static [&'static str],
    ) -> SpecRef {
        SpecRef {
            doc: "MSC4140",
            revision,
            section,
            text,
            sources,
            reconstructed: true,
            note: None,
        }
    }

    /// The same reference, noting where part of the behaviour has moved since.
    pub const fn with_note(mut self, note: &'static str) -> SpecRef {
        self.note = Some(note);
        self
    }

    /// The same quoted reference, citing the public sources of what the merged text (not
    /// available to quote) accepts besides; the note says what that is.
    pub const fn with_sources(mut self, sources: &'static [&'static str]) -> SpecRef {
        self.sources = sources;
        self
    }
}
