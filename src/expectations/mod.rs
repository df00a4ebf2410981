//! Expectation files: a server's known outcomes, each with its reason (in the spirit of
//! web-platform-tests' metadata). Only an outcome the file does not expect counts towards the exit
//! status.
//!
//! ```toml
//! [server]                                   # which server and releases the file was written for
//! name = "Synapse"
//! versions = ["1.163.2"]
//!
//! [[case]]
//! id = "msc4140.errors.zero_delay"
//! expected = "fail"                          # or a list for an intermittent: ["pass", "fail"]
//! reason = "why, with the spec sentence it diverges from"
//! link = "https://github.com/..."            # optional: the upstream issue
//! topology = "workers"                       # optional: only behind workers ("single-process")
//! ```
//!
//! Applying a file to a case's outcome:
//! - an expected `fail` or `error` becomes `xfail`; an expected `pass` or `skip` stays as it is;
//! - a `pass` the file does not expect becomes `xpass`: an unexpected outcome (the file is out of
//!   date), which fails the run like an unexpected failure;
//! - any other outcome the file does not expect stays as it is and counts as without a file.

pub(crate) mod choose;

use crate::outcome::Outcome;
use crate::results::{AppliedExpectations, CaseReport};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;

/// What a new entry written by `--update-expectations` says until someone explains it.
pub const TODO_REASON: &str = "TODO";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    server: Option<Server>,
    #[serde(default)]
    case: Vec<RawEntry>,
}

/// Which server and releases a file was written for.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub name: String,
    #[serde(default)]
    pub versions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    id: String,
    expected: OneOrMany,
    reason: String,
    link: Option<String>,
    topology: Option<EntryTopology>,
}

/// Which deployments of the server an entry is about: some divergences live only where the
/// server runs as several processes (Synapse's workers), and the identity the file is chosen by
/// is the same either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryTopology {
    /// Only a server deployed with workers (the target's topology says `workers` > 0).
    Workers,
    /// Only a server running as one process.
    SingleProcess,
}

impl EntryTopology {
    fn as_str(self) -> &'static str {
        match self {
            EntryTopology::Workers => "workers",
            EntryTopology::SingleProcess => "single-process",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// One case's expectation.
#[derive(Clone, Debug)]
pub struct Entry {
    pub id: String,
    /// The outcomes the file accepts (more than one: a known intermittent).
    pub expected: Vec<Outcome>,
    pub reason: String,
    pub link: Option<String>,
    /// `None`: whatever the deployment.
    pub topology: Option<EntryTopology>,
}

#[derive(Clone, Debug, Default)]
pub struct Expectations {
    pub server: Option<Server>,
    /// Leading comment lines, kept when the file is updated.
    header: String,
    entries: Vec<Entry>,
    /// The deployment the file is applied to (`for_deployment`): whether it runs workers.
    with_workers: bool,
}

impl Expectations {
    pub fn parse(text: &str, origin: &str) -> Result<Expectations, String> {
        let file: File = toml::from_str(text).map_err(|e| {
            let renamed = if e.to_string().contains("unknown field `outcome`") {
                " (files of earlier releases: `outcome` is now `expected`)"
            } else {
                ""
            };
            format!(
                "{origin}: {e}\nEach entry is [[case]] with id, expected (an outcome or a list of \
                 them), reason, and optionally link{renamed}; see docs/reports.md, \"Expectation files\"."
            )
        })?;
        let mut entries: Vec<Entry> = Vec::new();
        for raw in file.case {
            let names = match raw.expected {
                OneOrMany::One(one) => vec![one],
                OneOrMany::Many(many) => many,
            };
            let mut expected = Vec::new();
            for name in &names {
                match Outcome::parse(name) {
                    Some(o @ (Outcome::Pass | Outcome::Fail | Outcome::Skip | Outcome::Error)) => {
                        expected.push(o)
                    }
                    _ => {
                        return Err(format!(
                            "{origin}: case {}: expected outcome '{name}' is not one of pass, \
                             fail, skip, error",
                            raw.id
                        ))
                    }
                }
            }
            if expected.is_empty() {
                return Err(format!(
                    "{origin}: case {}: `expected` names no outcome",
                    raw.id
                ));
            }
            if raw.reason.trim().is_empty() {
                return Err(format!(
                    "{origin}: case {}: `reason` is empty; say why (\"{TODO_REASON}\" until known)",
                    raw.id
                ));
            }
            if entries.iter().any(|e| e.id == raw.id) {
                return Err(format!("{origin}: case {} is listed twice", raw.id));
            }
            entries.push(Entry {
                id: raw.id,
                expected,
                reason: raw.reason,
                link: raw.link,
                topology: raw.topology,
            });
        }
        let header = text
            .lines()
            .take_while(|l| l.starts_with('#') || l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        Ok(Expectations {
            server: file.server,
            header: header.trim().to_string(),
            entries,
            with_workers: false,
        })
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

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// Entries whose case id is not in the catalogue (renamed or removed cases).
    pub fn stale<'a>(&'a self, catalogue: &BTreeSet<&str>) -> Vec<&'a str> {
        self.entries
            .iter()
            .map(|e| e.id.as_str())
            .filter(|id| !catalogue.contains(id))
            .collect()
    }

    /// Whether the file says it was written for this server and version.
    pub fn written_for(&self, name: &str, version: Option<&str>) -> bool {
        let Some(server) = &self.server else {
            return false;
        };
        let version_matches = |wanted: &String| {
            version.is_some_and(|v| {
                // A checkout may report "1.163.2 (b=develop,...)".
                v == wanted || v.starts_with(&format!("{wanted} "))
            })
        };
        server.name.eq_ignore_ascii_case(name) && server.versions.iter().any(version_matches)
    }

    /// The file as applied to a deployment with or without workers: entries about the other
    /// kind of deployment are left out of `apply`.
    pub fn for_deployment(mut self, with_workers: bool) -> Expectations {
        self.with_workers = with_workers;
        self
    }

    fn about_this_deployment(&self, entry: &Entry) -> bool {
        match entry.topology {
            None => true,
            Some(EntryTopology::Workers) => self.with_workers,
            Some(EntryTopology::SingleProcess) => !self.with_workers,
        }
    }

    /// The outcome after the expectation (see the module's documentation).
    pub fn apply(&self, report: &mut CaseReport) {
        let Some(entry) = self.get(&report.id) else {
            return;
        };
        if !self.about_this_deployment(entry) {
            return;
        }
        let adjusted = match report.outcome {
            actual if entry.expected.contains(&actual) => match actual {
                Outcome::Fail | Outcome::Error => Outcome::Xfail,
                other => other,
            },
            Outcome::Pass => Outcome::Xpass,
            _ => return,
        };
        report.outcome = adjusted;
        report.expectation = Some(entry.reason.clone());
        report.expectation_link = entry.link.clone();
    }

    /// The file updated from a run: cases that failed or erred are listed (new ones with reason
    /// "TODO"), an outcome not yet expected is added to the entry's list, entries of cases that
    /// now pass unexpectedly are removed, entries of cases not run are kept, and entries of cases
    /// no longer in the catalogue are dropped. Answers the text and what changed.
    pub fn updated(
        &self,
        reports: &[CaseReport],
        catalogue: &BTreeSet<&str>,
        server: Option<Server>,
    ) -> (String, Vec<String>) {
        let mut changes = Vec::new();
        let mut entries: Vec<Entry> = Vec::new();
        for entry in &self.entries {
            if !catalogue.contains(entry.id.as_str()) {
                changes.push(format!("removed {} (no such case)", entry.id));
                continue;
            }
            let mut entry = entry.clone();
            if !self.about_this_deployment(&entry) {
                // This run says nothing about the deployment the entry is about.
                entries.push(entry);
                continue;
            }
            match reports.iter().find(|r| r.id == entry.id).map(|r| r.outcome) {
                Some(Outcome::Xpass) => {
                    changes.push(format!("removed {} (it passes now)", entry.id));
                    continue;
                }
                Some(o @ (Outcome::Fail | Outcome::Error)) if !entry.expected.contains(&o) => {
                    entry.expected.push(o);
                    changes.push(format!("{}: also expects {}", entry.id, o.as_str()));
                }
                _ => {}
            }
            entries.push(entry);
        }
        for report in reports {
            let failed = matches!(report.outcome, Outcome::Fail | Outcome::Error);
            if failed && !entries.iter().any(|e| e.id == report.id) {
                changes.push(format!(
                    "added {} (expected {}, reason TODO)",
                    report.id,
                    report.outcome.as_str()
                ));
                entries.push(Entry {
                    id: report.id.clone(),
                    expected: vec![report.outcome],
                    reason: TODO_REASON.into(),
                    link: None,
                    topology: None,
                });
            }
        }
        let server = self.server.clone().or(server);
        (render(&self.header, server.as_ref(), &entries), changes)
    }
}

fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn render(header: &str, server: Option<&Server>, entries: &[Entry]) -> String {
    let mut out = String::new();
    if !header.is_empty() {
        out.push_str(header);
        out.push_str("\n\n");
    }
    if let Some(server) = server {
        let versions: Vec<String> = server.versions.iter().map(|v| quoted(v)).collect();
        out.push_str(&format!(
            "[server]\nname = {}\nversions = [{}]\n\n",
            quoted(&server.name),
            versions.join(", ")
        ));
    }
    for entry in entries {
        let expected = match entry.expected.as_slice() {
            [one] => quoted(one.as_str()),
            many => format!(
                "[{}]",
                many.iter()
                    .map(|o| quoted(o.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        out.push_str(&format!(
            "[[case]]\nid = {}\nexpected = {expected}\nreason = {}\n",
            quoted(&entry.id),
            quoted(&entry.reason)
        ));
        if let Some(link) = &entry.link {
            out.push_str(&format!("link = {}\n", quoted(link)));
        }
        if let Some(topology) = entry.topology {
            out.push_str(&format!("topology = {}\n", quoted(topology.as_str())));
        }
        out.push('\n');
    }
    out
}

/// The bundled file written for this server and version, if there is one; otherwise why none.
pub fn choose_bundled(
    bundled: &[(&str, &str)],
    name: Option<&str>,
    version: Option<&str>,
) -> Result<Result<(Expectations, AppliedExpectations), String>, String> {
    let Some(name) = name else {
        return Ok(Err(
            "no bundled expectation file applied: the server's name is unknown".into(),
        ));
    };
    let mut written_for_others = Vec::new();
    for (file, text) in bundled {
        let loaded = Expectations::parse(text, file)?;
        if loaded.written_for(name, version) {
            let server = loaded.server.clone().unwrap_or_default();
            let why = format!(
                "bundled, written for {} {}; this is {name} {}",
                server.name,
                server.versions.join(", "),
                version.unwrap_or("(version unknown)")
            );
            return Ok(Ok((
                loaded,
                AppliedExpectations {
                    file: file.to_string(),
                    why,
                },
            )));
        }
        if let Some(server) = &loaded.server {
            if server.name.eq_ignore_ascii_case(name) {
                written_for_others.push(format!("{file} is for {}", server.versions.join(", ")));
            }
        }
    }
    Ok(Err(format!(
        "no bundled expectation file applied: none was written for {name} {}{}",
        version.unwrap_or("(version unknown)"),
        if written_for_others.is_empty() {
            String::new()
        } else {
            format!(" ({})", written_for_others.join("; "))
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Case;
    use crate::spec::{Level, Rev, SpecRef};

    /// A case to build reports from (its id is replaced).
    fn some_case() -> Case {
        let spec = SpecRef::msc4140(Rev::Jul2026, "section", "text");
        Case::new("msc4140.area.name", "title", Level::Must, spec, |_| async {
            Ok(())
        })
    }

    #[test]
    fn expected_is_one_outcome_or_a_list_and_reason_is_required() {
        let one = Expectations::parse(
            "[[case]]\nid = \"a\"\nexpected = \"fail\"\nreason = \"r\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(one.get("a").unwrap().expected, [Outcome::Fail]);
        let many = Expectations::parse(
            "[[case]]\nid = \"a\"\nexpected = [\"pass\", \"fail\"]\nreason = \"r\"\nlink = \"https://x\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(
            many.get("a").unwrap().expected,
            [Outcome::Pass, Outcome::Fail]
        );
        assert!(Expectations::parse("[[case]]\nid = \"a\"\nexpected = \"fail\"\n", "t").is_err());
        assert!(Expectations::parse(
            "[[case]]\nid = \"a\"\nexpected = \"xfail\"\nreason = \"r\"\n",
            "t"
        )
        .is_err());
        // The old key is refused with a message, not ignored.
        assert!(Expectations::parse(
            "[[case]]\nid = \"a\"\noutcome = \"fail\"\nreason = \"r\"\n",
            "t"
        )
        .is_err());
    }

    #[test]
    fn update_keeps_reasons_and_marks_new_entries_todo() {
        let old = Expectations::parse(
            "# header\n[server]\nname = \"S\"\nversions = [\"1\"]\n\n\
             [[case]]\nid = \"kept\"\nexpected = \"fail\"\nreason = \"known\"\nlink = \"https://l\"\n\n\
             [[case]]\nid = \"fixed\"\nexpected = \"fail\"\nreason = \"was broken\"\n\n\
             [[case]]\nid = \"gone\"\nexpected = \"fail\"\nreason = \"renamed\"\n",
            "t",
        )
        .unwrap();
        let case = |id: &str, outcome| {
            let mut r = CaseReport::new(&some_case(), outcome, Some("m".into()));
            r.id = id.into();
            r
        };
        let reports = [
            case("kept", Outcome::Xfail),
            case("fixed", Outcome::Xpass),
            case("new", Outcome::Fail),
            case("fine", Outcome::Pass),
        ];
        let catalogue: BTreeSet<&str> = ["kept", "fixed", "new", "fine"].into();
        let (text, changes) = old.updated(&reports, &catalogue, None);
        let again = Expectations::parse(&text, "updated").unwrap();
        assert!(text.starts_with("# header"));
        assert_eq!(again.server.as_ref().unwrap().name, "S");
        let ids: Vec<&str> = again.entries().iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["kept", "new"], "{changes:?}");
        assert_eq!(again.get("kept").unwrap().reason, "known");
        assert_eq!(
            again.get("kept").unwrap().link.as_deref(),
            Some("https://l")
        );
        assert_eq!(again.get("new").unwrap().reason, TODO_REASON);
        assert_eq!(changes.len(), 3, "{changes:?}");
    }

    #[test]
    fn applying_an_intermittent_expectation() {
        let file = Expectations::parse(
            "[[case]]\nid = \"c\"\nexpected = [\"pass\", \"fail\"]\nreason = \"flaky\"\n\n\
             [[case]]\nid = \"d\"\nexpected = \"fail\"\nreason = \"broken\"\n",
            "t",
        )
        .unwrap();
        let outcome_after = |id: &str, outcome| {
            let mut r = CaseReport::new(&some_case(), outcome, None);
            r.id = id.into();
            file.apply(&mut r);
            r.outcome
        };
        assert_eq!(outcome_after("c", Outcome::Pass), Outcome::Pass);
        assert_eq!(outcome_after("c", Outcome::Fail), Outcome::Xfail);
        assert_eq!(outcome_after("d", Outcome::Pass), Outcome::Xpass);
        assert_eq!(outcome_after("d", Outcome::Error), Outcome::Error);
        assert_eq!(outcome_after("e", Outcome::Fail), Outcome::Fail);
    }

    #[test]
    fn an_entry_about_workers_applies_only_behind_workers() {
        let text = "[[case]]\nid = \"w\"\nexpected = \"fail\"\nreason = \"workers\"\n\
                    topology = \"workers\"\n\n\
                    [[case]]\nid = \"s\"\nexpected = \"fail\"\nreason = \"one\"\n\
                    topology = \"single-process\"\n";
        let outcome_after = |with_workers: bool, id: &str| {
            let file = Expectations::parse(text, "t")
                .unwrap()
                .for_deployment(with_workers);
            let mut r = CaseReport::new(&some_case(), Outcome::Fail, None);
            r.id = id.into();
            file.apply(&mut r);
            r.outcome
        };
        assert_eq!(outcome_after(true, "w"), Outcome::Xfail);
        assert_eq!(outcome_after(false, "w"), Outcome::Fail);
        assert_eq!(outcome_after(false, "s"), Outcome::Xfail);
        assert_eq!(outcome_after(true, "s"), Outcome::Fail);
        // Updating from a single-process run leaves the workers' entry as it was, and writes
        // the topology back.
        let file = Expectations::parse(text, "t").unwrap();
        let mut failed = CaseReport::new(&some_case(), Outcome::Error, None);
        failed.id = "w".into();
        let catalogue: BTreeSet<&str> = ["w", "s"].into();
        let (updated, _) = file.updated(&[failed], &catalogue, None);
        let again = Expectations::parse(&updated, "updated").unwrap();
        assert_eq!(again.get("w").unwrap().expected, [Outcome::Fail]);
        assert_eq!(
            again.get("w").unwrap().topology,
            Some(EntryTopology::Workers)
        );
    }
}
