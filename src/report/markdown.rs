//! The Markdown report of one run, fit for a pull-request comment or a CI job summary: counts per
//! outcome and level, each unexpected failure with its requirement and what came back, and a
//! table per area.

use crate::outcome::Outcome;
use crate::report::{
    api_form_label, by_area, cut, duration, levels, sentence, source_label, spec_label, spec_link,
    table_cell, OUTCOMES,
};
use crate::results::{CaseReport, RunReport};
use std::fmt::Write;

/// A mark that reads in a table at a glance.
pub fn badge(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "✅ pass",
        Outcome::Fail => "❌ fail",
        Outcome::Xfail => "🟡 xfail",
        Outcome::Xpass => "⚠️ xpass",
        Outcome::Skip => "⏭️ skip",
        Outcome::Error => "💥 error",
    }
}

pub fn render(run: &RunReport) -> String {
    let mut out = String::new();
    header(&mut out, run);
    counts(&mut out, run);
    unexpected(&mut out, run);
    areas(&mut out, run);
    out
}

fn header(out: &mut String, run: &RunReport) {
    let t = &run.target;
    let _ = writeln!(
        out,
        "## Delayed events conformance: {}\n",
        run.implementation()
    );
    let mut facts = vec![
        format!("target `{}`", t.kind),
        format!("API form {}", api_form_label(run)),
        format!("suite {} {}", run.harness.name, run.harness.version),
        format!("{} ({})", run.started_at, duration(run.duration_ms)),
    ];
    if let Some(image) = &t.image {
        facts.insert(1, format!("image `{image}`"));
    }
    if let Some(topology) = &t.topology {
        facts.insert(1, topology.label());
    }
    let _ = writeln!(out, "{}\n", facts.join(" · "));
    if let Some(reason) = &run.not_implemented {
        let _ = writeln!(
            out,
            "> **Delayed events are not implemented by this server.** {} Every case that needs \
             them was skipped; the run fails.\n",
            sentence(reason)
        );
    }
    if let Some(applied) = &run.expectations {
        let _ = writeln!(out, "Expectations: `{}` ({})\n", applied.file, applied.why);
    }
}

/// Outcomes down, levels across: the numbers a reviewer looks at first.
fn counts(out: &mut String, run: &RunReport) {
    let unexpected = run
        .cases
        .iter()
        .filter(|c| c.is_unexpected_failure())
        .count();
    let _ = writeln!(
        out,
        "**{}**\n",
        if run.not_implemented.is_some() {
            format!("Not implemented; {unexpected} unexpected failure(s) among the cases that ran.")
        } else if unexpected == 0 {
            "No unexpected failures.".to_string()
        } else {
            format!("{unexpected} unexpected failure(s).")
        }
    );
    let _ = write!(out, "| outcome |");
    for level in levels() {
        let _ = write!(out, " {level} |");
    }
    let _ = writeln!(out, " total |");
    let _ = writeln!(out, "|---|{}---:|", "---:|".repeat(levels().len()));
    for outcome in OUTCOMES {
        let total = run.summary.count(outcome);
        if total == 0 {
            continue;
        }
        let _ = write!(out, "| {} |", badge(outcome));
        for level in levels() {
            let n = run
                .cases
                .iter()
                .filter(|c| c.outcome == outcome && c.level == level)
                .count();
            let _ = write!(out, " {n} |");
        }
        let _ = writeln!(out, " {total} |");
    }
    let _ = writeln!(out);
}

/// The public sources a reference cites, as a quoted line of links (none: nothing).
fn sources_line(sources: &[String]) -> String {
    if sources.is_empty() {
        return String::new();
    }
    let links: Vec<String> = sources
        .iter()
        .map(|s| format!("[{}]({s})", source_label(s)))
        .collect();
    format!("\n>\n> Sources: {}", links.join(", "))
}

fn unexpected(out: &mut String, run: &RunReport) {
    let failures: Vec<&CaseReport> = run
        .cases
        .iter()
        .filter(|c| c.is_unexpected_failure())
        .collect();
    if failures.is_empty() {
        return;
    }
    let _ = writeln!(out, "### Unexpected failures\n");
    for case in failures {
        let _ = writeln!(
            out,
            "#### {} `{}` ({})\n",
            badge(case.outcome),
            case.id,
            case.level
        );
        let _ = writeln!(out, "{}\n", case.title);
        let _ = writeln!(
            out,
            "> {}{}\n>\n> — [{}]({}){}\n",
            if case.spec.reconstructed {
                "Per the public source (not a quote): "
            } else {
                ""
            },
            case.spec.text,
            spec_label(&case.spec),
            spec_link(&case.spec),
            case.spec
                .note
                .as_deref()
                .map(|n| format!("\n>\n> Note: {n}"))
                .unwrap_or_default()
                + &sources_line(&case.spec.sources)
        );
        match case.outcome {
            Outcome::Xpass => {
                let _ = writeln!(
                    out,
                    "Now passes: remove it from the expectation file (it was listed because: {}).\n",
                    case.expectation.as_deref().unwrap_or("no reason given")
                );
            }
            _ => {
                if let Some(message) = &case.message {
                    let _ = writeln!(out, "**Expected / got:** {message}\n");
                }
                let expected_actual = case.expected_actual();
                for (label, value) in &expected_actual {
                    let _ = writeln!(out, "- **{label}:** {}", code(value));
                }
                if !expected_actual.is_empty() {
                    let _ = writeln!(out);
                }
                if let Some(request) = decisive_request(case) {
                    let _ = writeln!(out, "**Request:** `{}`\n", request.replace('`', "'"));
                }
                if case.outcome == Outcome::Error {
                    let _ = writeln!(
                        out,
                        "(error: the harness or the environment broke; not a verdict on the server)\n"
                    );
                }
            }
        }
    }
}

/// An inline code span of a value cut to a readable length (backticks would end it early).
pub(crate) fn code(value: &str) -> String {
    format!("`{}`", cut(value, 400).replace('`', "'").replace('\n', " "))
}

/// The last request of the evidence that is not set-up (registration, rooms, `/sync`), cut to a
/// readable length.
fn decisive_request(case: &CaseReport) -> Option<String> {
    let exchange = case
        .evidence
        .iter()
        .rev()
        .find(|e| !crate::observation::is_set_up(&e.path))?;
    let mut line = format!("{} {}", exchange.method, exchange.path);
    if let Some(body) = &exchange.request {
        let _ = write!(line, " {body}");
    }
    let _ = write!(line, " → {} {}", exchange.status, exchange.body);
    Some(cut(&line, 400))
}

fn areas(out: &mut String, run: &RunReport) {
    let _ = writeln!(out, "### Cases by area\n");
    for (area, cases) in by_area(&run.cases, &run.areas) {
        let passed = cases.iter().filter(|c| c.outcome == Outcome::Pass).count();
        let _ = writeln!(out, "#### {area} ({passed}/{} pass)\n", cases.len());
        let _ = writeln!(
            out,
            "| case | level | outcome | time | matched revisions | note |"
        );
        let _ = writeln!(out, "|---|---|---|---:|---|---|");
        for case in cases {
            let note = match case.outcome {
                Outcome::Xfail | Outcome::Xpass => case.expectation.clone(),
                Outcome::Pass => None,
                _ => case.message.clone(),
            }
            .map(|n| cut(&n, 160))
            .unwrap_or_default();
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} |",
                case.id.rsplit('.').next().unwrap_or(&case.id),
                case.level,
                badge(case.outcome),
                duration(case.duration_ms),
                case.matched_revisions.join(", "),
                table_cell(&note)
            );
        }
        let _ = writeln!(out);
    }
}
