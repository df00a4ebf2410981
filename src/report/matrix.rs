//! The implementations × cases matrix of several runs (Autobahn, wpt.fyi): one column per results
//! file, conformance per area and level, a revision fingerprint per implementation, and cells that
//! unfold to what each implementation answered. In HTML and in Markdown.

use crate::outcome::Outcome;
use crate::report::html::{self, revisions as rev_tags};
use crate::report::markdown::badge;
use crate::report::{
    api_form_label, by_area, conformance, cut, escape_html as esc, levels, overall, percent,
    spec_link, table_cell, OUTCOMES,
};
use crate::results::{CaseReport, RunReport};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Case ids of all runs, grouped by area, each with the first report that has it (for title,
/// level and requirement).
fn rows(runs: &[RunReport]) -> Vec<(String, Vec<&CaseReport>)> {
    let mut first: Vec<&CaseReport> = Vec::new();
    for run in runs {
        for case in &run.cases {
            if !first.iter().any(|c| c.id == case.id) {
                first.push(case);
            }
        }
    }
    // The areas of the run that names most of them (runs of one suite name the same ones).
    let areas = runs
        .iter()
        .map(|r| &r.areas)
        .max_by_key(|a| a.len())
        .cloned()
        .unwrap_or_default();
    by_area(first, &areas)
}

fn column_title(run: &RunReport) -> String {
    run.implementation()
}

fn column_detail(run: &RunReport) -> String {
    format!(
        "{} · {}",
        api_form_label(run),
        run.started_at.split('T').next().unwrap_or(&run.started_at)
    )
}

/// "behaves like the 2026-07-10 text in N of M revision-dependent cases, like ... in K".
pub fn fingerprint(run: &RunReport) -> Vec<String> {
    if run.not_implemented.is_some() {
        return vec!["none: delayed events not implemented".into()];
    }
    let mut by_doc: BTreeMap<&str, Vec<&CaseReport>> = BTreeMap::new();
    for case in &run.cases {
        by_doc.entry(case.spec.doc.as_str()).or_default().push(case);
    }
    let mut lines = Vec::new();
    for (doc, cases) in by_doc {
        let all: BTreeSet<&str> = cases
            .iter()
            .flat_map(|c| c.revisions.iter().chain(&c.matched_revisions))
            .map(String::as_str)
            .collect();
        if all.len() < 2 {
            continue;
        }
        // The revisions most cases apply to; a case that applies to fewer, or where the server
        // matched only some of the case's own, says something about which text it follows. (A
        // revision only one case knows, like the reconstructed merged text, must not make every
        // other case look revision-dependent.)
        let typical = typical_revisions(&cases);
        let dependent: Vec<&&CaseReport> = cases
            .iter()
            .filter(|c| {
                let judged = !matches!(c.outcome, Outcome::Skip | Outcome::Error);
                let fewer = c.revisions.len() < typical.len()
                    && c.revisions.iter().all(|r| typical.contains(r));
                let some_matched =
                    !c.matched_revisions.is_empty() && c.matched_revisions != c.revisions;
                judged && (fewer || some_matched)
            })
            .collect();
        let mut parts = Vec::new();
        for rev in all.iter().rev() {
            let n = dependent
                .iter()
                .filter(|c| c.matched_revisions.iter().any(|m| m == rev))
                .count();
            parts.push((rev, n));
        }
        parts.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(a.0)));
        let mut text = String::new();
        for (i, (rev, n)) in parts.iter().enumerate() {
            if i == 0 {
                let _ = write!(
                    text,
                    "{doc}: behaves like the {rev} text in {n} of {} revision-dependent cases",
                    dependent.len()
                );
            } else {
                let _ = write!(text, ", like {rev} in {n}");
            }
        }
        lines.push(text);
    }
    lines
}

/// The most common list of revisions among `cases`.
fn typical_revisions(cases: &[&CaseReport]) -> Vec<String> {
    let mut counts: BTreeMap<&Vec<String>, usize> = BTreeMap::new();
    for case in cases {
        *counts.entry(&case.revisions).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(list, _)| list.clone())
        .unwrap_or_default()
}

/// What a cell shows folded: the outcome, and the revisions matched where that says something.
fn cell_label(case: &CaseReport) -> (String, Vec<String>) {
    let telling = !case.matched_revisions.is_empty()
        && (case.matched_revisions.len() < case.revisions.len() || case.revisions.len() == 1);
    let revs = if telling {
        case.matched_revisions.clone()
    } else {
        Vec::new()
    };
    (case.outcome.as_str().to_string(), revs)
}

/// The outcomes of a row differ between implementations (or what they matched does).
fn differs(cells: &[Option<&CaseReport>]) -> bool {
    let keys: BTreeSet<String> = cells
        .iter()
        .map(|c| match c {
            Some(c) => format!("{}{:?}", c.outcome.as_str(), cell_label(c).1),
            None => "absent".into(),
        })
        .collect();
    keys.len() > 1
}

pub fn render_html(runs: &[RunReport]) -> String {
    let title = format!(
        "Delayed events conformance: {}",
        runs.iter()
            .map(column_title)
            .collect::<Vec<_>>()
            .join(" · ")
    );
    let suites: BTreeSet<String> = runs
        .iter()
        .map(|r| format!("{} {}", r.harness.name, r.harness.version))
        .collect();
    let dates: Vec<&str> = runs.iter().map(|r| r.started_at.as_str()).collect();
    let mut body = html::header(
        &title,
        &[
            ("implementations", runs.len().to_string()),
            ("suite", suites.into_iter().collect::<Vec<_>>().join(", ")),
            ("runs", dates.join(", ")),
        ],
    );
    body.push_str("<main>\n");
    // Summary: one row per implementation.
    body.push_str(
        "<table class=\"grid summary-table\"><thead><tr><th>implementation</th><th>overall</th>",
    );
    for level in levels() {
        let _ = write!(body, "<th>{level}</th>");
    }
    body.push_str("<th>outcomes</th><th>revision fingerprint</th></tr></thead><tbody>\n");
    for run in runs {
        let _ = write!(
            body,
            "<tr><td><b>{}</b><div class=\"id\">{}</div></td><td>{}</td>",
            esc(&column_title(run)),
            esc(&column_detail(run)),
            overall(run)
        );
        for level in levels() {
            let _ = write!(
                body,
                "<td>{}</td>",
                percent(conformance(run.cases.iter().filter(|c| c.level == level)))
            );
        }
        let counts: String = OUTCOMES
            .iter()
            .filter(|o| run.summary.count(**o) > 0)
            .map(|o| {
                format!(
                    "<span class=\"badge {0}\">{0} {1}</span> ",
                    o.as_str(),
                    run.summary.count(*o)
                )
            })
            .collect();
        let _ = writeln!(
            body,
            "<td>{counts}</td><td class=\"fp\">{}</td></tr>",
            fingerprint(run)
                .iter()
                .map(|l| esc(l))
                .collect::<Vec<_>>()
                .join("<br>")
        );
    }
    body.push_str("</tbody></table>\n");

    let groups = rows(runs);
    let areas: Vec<String> = groups.iter().map(|(a, _)| a.clone()).collect();
    let mut outcome_counts: BTreeMap<Outcome, usize> = BTreeMap::new();
    for run in runs {
        for o in OUTCOMES {
            *outcome_counts.entry(o).or_default() += run.summary.count(o);
        }
    }
    let counts: Vec<(Outcome, usize)> = OUTCOMES
        .iter()
        .map(|o| (*o, outcome_counts[o]))
        .filter(|(_, n)| *n > 0)
        .collect();
    body.push_str(&html::filters(&counts, &areas));
    body.push_str("<label class=\"only-diff\"><input type=\"checkbox\" id=\"f-diff\"> only rows where implementations differ</label>\n");
    body.push_str("<table class=\"grid matrix\"><thead><tr><th>case</th>");
    for run in runs {
        let _ = write!(
            body,
            "<th>{}<div class=\"id\">{}</div></th>",
            esc(&column_title(run)),
            esc(&column_detail(run))
        );
    }
    body.push_str("</tr></thead>\n");
    for (area, cases) in &groups {
        let _ = write!(
            body,
            "<tbody data-section><tr class=\"area-row\"><th>{}</th>",
            esc(area)
        );
        for run in runs {
            let mine = run.cases.iter().filter(|c| &c.area == area);
            let _ = write!(body, "<th>{}</th>", percent(conformance(mine)));
        }
        body.push_str("</tr>\n");
        for case in cases {
            let cells: Vec<Option<&CaseReport>> = runs
                .iter()
                .map(|r| r.cases.iter().find(|c| c.id == case.id))
                .collect();
            let outcomes: BTreeSet<&str> =
                cells.iter().flatten().map(|c| c.outcome.as_str()).collect();
            let _ = write!(
                body,
                "<tr class=\"{}\" data-outcome=\"{}\" data-area=\"{}\" data-level=\"{}\" data-id=\"{}\">",
                if differs(&cells) { "differs" } else { "same" },
                outcomes.into_iter().collect::<Vec<_>>().join(" "),
                esc(area),
                case.level,
                esc(&case.id)
            );
            let _ = write!(
                body,
                "<td class=\"casecell\"><span class=\"level {l}\">{l}</span> <b>{}</b><div class=\"id\">{}</div>\
                 <details><summary>requirement</summary>{}</details></td>",
                esc(&case.title),
                esc(&case.id),
                html::requirement(case),
                l = case.level
            );
            for cell in &cells {
                body.push_str(&cell_html(*cell));
            }
            body.push_str("</tr>\n");
        }
        body.push_str("</tbody>\n");
    }
    body.push_str("</table>\n</main>\n<footer>Generated from results files (schema 1). A cell unfolds to what that implementation answered: status, errcode and body shape, without ids.</footer>\n");
    body.push_str(MATRIX_EXTRA);
    html::page(&title, &body)
}

fn cell_html(cell: Option<&CaseReport>) -> String {
    let Some(case) = cell else {
        return "<td class=\"cell absent\">not run</td>".into();
    };
    let (outcome, revs) = cell_label(case);
    let mut inner = String::new();
    if let Some(message) = case
        .message
        .as_ref()
        .or(case.expectation.as_ref())
        .filter(|_| case.outcome != Outcome::Pass)
    {
        let _ = write!(
            inner,
            "<div class=\"msg\">{}</div>",
            esc(&cut(message, 400))
        );
    }
    if case.observation.is_empty() {
        inner.push_str("<div class=\"msg\">no answers recorded</div>");
    } else {
        let _ = write!(inner, "<pre>{}</pre>", esc(&case.observation.join("\n")));
    }
    format!(
        "<td class=\"cell {outcome}\"><details><summary><span class=\"badge {outcome}\">{outcome}</span>{}</summary>{inner}</details></td>",
        rev_tags(&revs)
    )
}

/// Matrix-only style (the "only differing rows" switch is part of the shared filters).
const MATRIX_EXTRA: &str = r#"<style>
table.grid { border-collapse:separate; border-spacing:0; background:#fff; border:1px solid var(--line); border-radius:8px; margin:12px 0 20px; width:100%; }
table.grid th, table.grid td { border-bottom:1px solid var(--line); padding:6px 10px; text-align:left; vertical-align:top; }
table.matrix thead th { position:sticky; top:52px; background:#f6f8fa; z-index:1; }
table.matrix { table-layout:fixed; }
table.matrix th:first-child { width:30%; }
table.matrix td { overflow-wrap:anywhere; }
table.matrix tr.differs td.casecell { box-shadow: inset 3px 0 0 #bf8700; }
tr.area-row th { background:#eaeef2; font-size:13px; }
td.fp { font-size:12px; }
td.cell.pass { background:#dafbe1; } td.cell.fail { background:#ffebe9; } td.cell.xfail { background:#fff8c5; }
td.cell.xpass { background:#fff1e5; } td.cell.error { background:#fbefff; } td.cell.skip { background:#f6f8fa; }
td.cell.absent { color:var(--muted); font-style:italic; }
td.cell details summary { list-style:none; color:inherit; }
td.cell .msg { font-size:12px; margin:4px 0; white-space:pre-wrap; }
td.cell pre { max-height:240px; font-size:11px; }
td.casecell details { font-size:12px; }
.only-diff { display:block; margin:8px 2px; font-size:13px; }
</style>"#;

pub fn render_markdown(runs: &[RunReport]) -> String {
    let mut out = String::from("## Delayed events conformance matrix\n\n");
    let _ = write!(out, "| implementation | API form | date | overall |");
    for level in levels() {
        let _ = write!(out, " {level} |");
    }
    let _ = writeln!(out, " revision fingerprint |");
    let _ = writeln!(
        out,
        "|---|---|---|---:|{}---|",
        "---:|".repeat(levels().len())
    );
    for run in runs {
        let _ = write!(
            out,
            "| **{}** | {} | {} | {} |",
            table_cell(&column_title(run)),
            api_form_label(run),
            run.started_at.split('T').next().unwrap_or(&run.started_at),
            overall(run)
        );
        for level in levels() {
            let _ = write!(
                out,
                " {} |",
                percent(conformance(run.cases.iter().filter(|c| c.level == level)))
            );
        }
        let _ = writeln!(out, " {} |", table_cell(&fingerprint(run).join("; ")));
    }
    let _ = writeln!(out);
    let header: String = runs
        .iter()
        .map(|r| format!(" {} |", table_cell(&column_title(r))))
        .collect();
    for (area, cases) in rows(runs) {
        let _ = write!(out, "### {area}\n\n| case |{header}\n|---|");
        out.push_str(&"---|".repeat(runs.len()));
        out.push('\n');
        let _ = write!(out, "| *conformance* |");
        for run in runs {
            let _ = write!(
                out,
                " *{}* |",
                percent(conformance(run.cases.iter().filter(|c| c.area == area)))
            );
        }
        out.push('\n');
        for case in cases {
            let cells: Vec<Option<&CaseReport>> = runs
                .iter()
                .map(|r| r.cases.iter().find(|c| c.id == case.id))
                .collect();
            let _ = write!(
                out,
                "| {}`{}` {} [§]({}) |",
                if differs(&cells) { "**≠** " } else { "" },
                case.id.rsplit('.').next().unwrap_or(&case.id),
                case.level,
                spec_link(&case.spec)
            );
            for cell in cells {
                let _ = write!(out, " {} |", cell_markdown(cell));
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(
        "**≠** marks rows where the implementations differ; § links to the requirement. A cell \
         unfolds to what that implementation answered (status, errcode, body shape).\n",
    );
    out
}

fn cell_markdown(cell: Option<&CaseReport>) -> String {
    let Some(case) = cell else {
        return "–".into();
    };
    let (_, revs) = cell_label(case);
    let mut summary = badge(case.outcome).to_string();
    if !revs.is_empty() {
        let _ = write!(summary, " · {}", revs.join(", "));
    }
    if case.observation.is_empty() {
        return summary;
    }
    let answers: Vec<String> = case
        .observation
        .iter()
        .map(|l| format!("<code>{}</code>", esc(&cut(l, 160))))
        .collect();
    table_cell(&format!(
        "<details><summary>{summary}</summary>{}</details>",
        answers.join("<br>")
    ))
}
