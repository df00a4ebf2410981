//! The diff of two runs (base → head): which cases broke, were fixed, changed, were added or
//! removed. The regression gate of a homeserver's pull requests: `diff` exits 1 when any broke.
//!
//! A case changed when it matched different revisions, when a failing case fails with a different
//! observation (the normalised answers, see `observation.rs`), or when its outcome moved without
//! breaking or being fixed (e.g. pass → skip). Broken and changed cases show what was expected
//! and what came back, base beside head, where the cases gave them.

use crate::outcome::Outcome;
use crate::report::markdown::{badge, code};
use crate::report::{cut, table_cell};
use crate::results::{CaseReport, RunReport};
use std::fmt::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Broken,
    Fixed,
    Changed,
    Added,
    Removed,
}

impl Change {
    const ALL: [Change; 5] = [
        Change::Broken,
        Change::Fixed,
        Change::Changed,
        Change::Added,
        Change::Removed,
    ];

    fn heading(self) -> &'static str {
        match self {
            Change::Broken => "Broken",
            Change::Fixed => "Fixed",
            Change::Changed => "Changed",
            Change::Added => "Added",
            Change::Removed => "Removed",
        }
    }
}

/// One case that differs between the runs.
pub struct Entry<'a> {
    pub change: Change,
    pub base: Option<&'a CaseReport>,
    pub head: Option<&'a CaseReport>,
}

/// A failure in the sense of the gate: the case does not hold on that server.
fn failing(outcome: Outcome) -> bool {
    matches!(outcome, Outcome::Fail | Outcome::Error | Outcome::Xfail)
}

fn passing(outcome: Outcome) -> bool {
    matches!(outcome, Outcome::Pass | Outcome::Xpass)
}

fn classify(base: &CaseReport, head: &CaseReport) -> Option<Change> {
    let (b, h) = (base.outcome, head.outcome);
    if failing(h) && !failing(b) {
        Some(Change::Broken)
    } else if failing(b) && passing(h) {
        Some(Change::Fixed)
    } else if (passing(b) != passing(h) || failing(b) != failing(h))
        || (passing(b) && base.matched_revisions != head.matched_revisions)
        || (failing(b) && failing(h) && answers_differ(base, head))
    {
        Some(Change::Changed)
    } else {
        None
    }
}

pub fn compare<'a>(base: &'a RunReport, head: &'a RunReport) -> Vec<Entry<'a>> {
    let mut entries = Vec::new();
    for h in &head.cases {
        match base.cases.iter().find(|b| b.id == h.id) {
            None => entries.push(Entry {
                change: Change::Added,
                base: None,
                head: Some(h),
            }),
            Some(b) => {
                if let Some(change) = classify(b, h) {
                    entries.push(Entry {
                        change,
                        base: Some(b),
                        head: Some(h),
                    });
                }
            }
        }
    }
    for b in base
        .cases
        .iter()
        .filter(|b| !head.cases.iter().any(|h| h.id == b.id))
    {
        entries.push(Entry {
            change: Change::Removed,
            base: Some(b),
            head: None,
        });
    }
    entries
}

/// Whether the gate fails: some case broke.
pub fn any_broken(entries: &[Entry]) -> bool {
    entries.iter().any(|e| e.change == Change::Broken)
}

pub fn render(base: &RunReport, head: &RunReport, entries: &[Entry]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Delayed events conformance: {} ({}) → {} ({})\n",
        base.implementation(),
        base.started_at,
        head.implementation(),
        head.started_at
    );
    let count = |c: Change| entries.iter().filter(|e| e.change == c).count();
    let counts: Vec<String> = Change::ALL
        .iter()
        .map(|c| format!("{} {}", count(*c), c.heading().to_lowercase()))
        .collect();
    let _ = writeln!(
        out,
        "**{}** {}; {} cases unchanged.\n",
        if any_broken(entries) {
            "Something broke:"
        } else {
            "Nothing broke:"
        },
        counts.join(", "),
        head.cases
            .len()
            .saturating_sub(entries.len() - count(Change::Removed))
    );
    for change in Change::ALL {
        let group: Vec<&Entry> = entries.iter().filter(|e| e.change == change).collect();
        if group.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {} ({})\n", change.heading(), group.len());
        let _ = writeln!(out, "| case | level | base | head | what |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for entry in &group {
            let case = entry.head.or(entry.base).expect("an entry has a side");
            let side =
                |c: Option<&CaseReport>| c.map_or("–".to_string(), |c| badge(c.outcome).into());
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                case.id,
                case.level,
                side(entry.base),
                side(entry.head),
                table_cell(&cut(&what(entry), 300))
            );
        }
        let _ = writeln!(out);
        for entry in group.iter().filter(|e| observation_moved(e)) {
            let (b, h) = (entry.base.unwrap(), entry.head.unwrap());
            let _ = writeln!(
                out,
                "<details><summary><code>{}</code>: answers</summary>\n\n```diff",
                h.id
            );
            let (before, after) = answers(b, h);
            for line in before.iter().filter(|l| !after.contains(l)) {
                let _ = writeln!(out, "- {line}");
            }
            for line in after.iter().filter(|l| !before.contains(l)) {
                let _ = writeln!(out, "+ {line}");
            }
            let _ = writeln!(out, "```\n</details>\n");
        }
        if matches!(change, Change::Broken | Change::Changed) {
            for entry in &group {
                expected_actual(&mut out, entry);
            }
        }
    }
    out
}

/// What was expected and what came back, base beside head, where a failing side gave them.
fn expected_actual(out: &mut String, entry: &Entry) {
    let given = |c: Option<&CaseReport>| c.is_some_and(|c| !c.expected_actual().is_empty());
    if !given(entry.base) && !given(entry.head) {
        return;
    }
    let case = entry.head.or(entry.base).expect("an entry has a side");
    let _ = writeln!(
        out,
        "<details><summary><code>{}</code>: expected / actual</summary>\n",
        case.id
    );
    let _ = writeln!(out, "| | base | head |");
    let _ = writeln!(out, "|---|---|---|");
    let cell = |c: Option<&CaseReport>, label: &str| {
        c.and_then(|c| {
            let pairs = c.expected_actual();
            let (_, value) = pairs.into_iter().find(|(l, _)| *l == label)?;
            Some(table_cell(&code(value)))
        })
        .unwrap_or_else(|| "–".into())
    };
    for label in ["expected", "actual"] {
        let _ = writeln!(
            out,
            "| {label} | {} | {} |",
            cell(entry.base, label),
            cell(entry.head, label)
        );
    }
    let _ = writeln!(out, "\n</details>\n");
}

fn observation_moved(entry: &Entry) -> bool {
    match (entry.base, entry.head) {
        (Some(b), Some(h)) => (failing(b.outcome) || failing(h.outcome)) && answers_differ(b, h),
        _ => false,
    }
}

/// Both runs' answers, without the harness's own varying numbers (a control event's delay).
fn answers(base: &CaseReport, head: &CaseReport) -> (Vec<String>, Vec<String>) {
    let mut both = crate::observation::without_harness_numbers(&[
        base.observation.as_slice(),
        head.observation.as_slice(),
    ]);
    let head = both.pop().unwrap_or_default();
    (both.pop().unwrap_or_default(), head)
}

fn answers_differ(base: &CaseReport, head: &CaseReport) -> bool {
    let (b, h) = answers(base, head);
    b != h
}

/// One line on what differs.
fn what(entry: &Entry) -> String {
    match (entry.base, entry.head) {
        (Some(b), Some(h)) => {
            let mut parts = Vec::new();
            if b.outcome != h.outcome {
                parts.push(format!("{} → {}", b.outcome.as_str(), h.outcome.as_str()));
            }
            if b.matched_revisions != h.matched_revisions
                && passing(b.outcome)
                && passing(h.outcome)
            {
                parts.push(format!(
                    "matched revisions {} → {}",
                    or_none(&b.matched_revisions),
                    or_none(&h.matched_revisions)
                ));
            }
            if failing(b.outcome) && failing(h.outcome) && answers_differ(b, h) {
                parts.push("fails with different answers".into());
            }
            if failing(h.outcome) {
                if let Some(m) = &h.message {
                    parts.push(m.clone());
                }
            }
            parts.join("; ")
        }
        (None, Some(h)) => format!("not in the base run: {}", h.title),
        (Some(b), None) => format!("not in the head run: {}", b.title),
        (None, None) => String::new(),
    }
}

fn or_none(revisions: &[String]) -> String {
    if revisions.is_empty() {
        "none".into()
    } else {
        revisions.join(", ")
    }
}
