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

/// The implementation, and how it was deployed where the run says: the same release on SQLite
/// and on PostgreSQL are two columns.
fn column_title(run: &RunReport) -> String {
    match &run.target.topology {
        Some(topology) => format!("{} ({})", run.implementation(), topology.label()),
        None => run.implementation(),
    }
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

/// One case across the runs: each run's report of it (none where the run lacks it), and what each
/// answered with the harness's own varying numbers taken out
/// (`observation::without_harness_numbers`), so that answers compare.
struct Row<'a> {
    cells: Vec<Option<&'a CaseReport>>,
    answers: Vec<Vec<String>>,
}

impl<'a> Row<'a> {
    fn of(runs: &'a [RunReport], id: &str) -> Row<'a> {
        let cells: Vec<Option<&CaseReport>> = runs
            .iter()
            .map(|r| r.cases.iter().find(|c| c.id == id))
            .collect();
        let observations: Vec<&[String]> = cells
            .iter()
            .map(|c| c.map_or(&[][..], |c| c.observation.as_slice()))
            .collect();
        let answers = crate::observation::without_harness_numbers(&observations);
        Row { cells, answers }
    }

    /// What cell `i` says where it gave a verdict, for comparing: passed or failed (an
    /// expectation file's xfail and xpass are the same verdicts), the revisions matched where
    /// that says something, and for a failure what came back. `None` for a skip, an error or
    /// a case the run lacks: those compare with nothing.
    fn verdict(&self, i: usize) -> Option<String> {
        let case = self.cells[i]?;
        let revs = cell_label(case).1;
        match case.outcome {
            Outcome::Pass | Outcome::Xpass => Some(format!("pass {revs:?}")),
            Outcome::Fail | Outcome::Xfail => Some(format!("fail {revs:?} {:?}", self.answers[i])),
            Outcome::Skip | Outcome::Error => None,
        }
    }

    /// Implementations that gave a verdict differ: one passed where another failed, they
    /// matched other revisions, or they failed with other answers.
    fn differs(&self) -> bool {
        let verdicts: BTreeSet<String> = (0..self.cells.len())
            .filter_map(|i| self.verdict(i))
            .collect();
        verdicts.len() > 1
    }
}

/// The mark of an implementation that offers no delayed events, in its column's header: its
/// cases skip, and compare with nothing.
const NOT_IMPLEMENTED: &str = "⊘";

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
        let mark = match run.not_implemented {
            Some(_) => format!(
                " <span class=\"ni\" title=\"delayed events not implemented: its cases skip and \
                 compare with nothing\">{NOT_IMPLEMENTED} not implemented</span>"
            ),
            None => String::new(),
        };
        let _ = write!(
            body,
            "<th>{}{mark}<div class=\"id\">{}</div></th>",
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
            let row = Row::of(runs, &case.id);
            let outcomes: BTreeSet<&str> = row
                .cells
                .iter()
                .flatten()
                .map(|c| c.outcome.as_str())
                .collect();
            let _ = write!(
                body,
                "<tr class=\"{}\" data-outcome=\"{}\" data-area=\"{}\" data-level=\"{}\" data-id=\"{}\">",
                if row.differs() { "differs" } else { "same" },
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
            for (cell, answers) in row.cells.iter().zip(&row.answers) {
                body.push_str(&cell_html(*cell, answers));
            }
            body.push_str("</tr>\n");
        }
        body.push_str("</tbody>\n");
    }
    body.push_str("</table>\n</main>\n<footer>Generated from results files (schema 1). A cell unfolds to what that implementation answered: status, errcode and body shape, without ids; <code>{ms}</code> stands for a delay the harness computed from its own clock. A row is marked where implementations that gave a verdict differ (passed or failed, revisions matched, a failure's answers); skips and errors compare with nothing.</footer>\n");
    body.push_str(MATRIX_EXTRA);
    html::page(&title, &body)
}

fn cell_html(cell: Option<&CaseReport>, answers: &[String]) -> String {
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
    if answers.is_empty() {
        inner.push_str("<div class=\"msg\">no answers recorded</div>");
    } else {
        let _ = write!(inner, "<pre>{}</pre>", esc(&answers.join("\n")));
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
th .ni { font-weight:normal; font-size:12px; color:#6e7781; white-space:nowrap; }
</style>"#;

/// How many characters a GitHub comment holds: the Markdown matrix stays within it.
pub const COMMENT_LIMIT: usize = 65_536;

/// The Markdown matrix, compact enough for a pull-request comment: the implementations' figures,
/// one table of outcomes per area, then what the implementations answered only for rows where
/// they differ, as many as fit within `COMMENT_LIMIT`. The HTML matrix keeps everything.
pub fn render_markdown(runs: &[RunReport]) -> String {
    render_markdown_with(runs, None)
}

/// `render_markdown`, naming the HTML matrix written beside it (where the rest is).
pub fn render_markdown_with(runs: &[RunReport], html_path: Option<&str>) -> String {
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
            column_header(run),
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
        .map(|r| format!(" {} |", column_header(r)))
        .collect();
    // Requirements by reference ([§][n], defined once at the end): a row stays short.
    let mut links: Vec<String> = Vec::new();
    let mut differing: Vec<(&CaseReport, Row)> = Vec::new();
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
            let row = Row::of(runs, &case.id);
            let link = spec_link(&case.spec);
            let n = match links.iter().position(|l| *l == link) {
                Some(n) => n,
                None => {
                    links.push(link);
                    links.len() - 1
                }
            };
            let differs = row.differs();
            let _ = write!(
                out,
                "| {}`{}` {} [§][{}] |",
                if differs { "**≠** " } else { "" },
                case.id.rsplit('.').next().unwrap_or(&case.id),
                case.level,
                n + 1
            );
            for (run, cell) in runs.iter().zip(&row.cells) {
                let _ = write!(out, " {} |", cell_markdown(run, *cell));
            }
            out.push('\n');
            if differs {
                differing.push((case, row));
            }
        }
        out.push('\n');
    }

    let full_page = match html_path {
        Some(path) => format!("the HTML matrix, `{path}`"),
        None => "the HTML matrix (`report RESULTS.json ... --html matrix.html`)".to_string(),
    };
    let mut tail = format!(
        "**≠** marks rows where implementations that gave a verdict differ: one passed where \
         another failed, they matched other revisions, or they failed with other answers (skips \
         and errors compare with nothing). {NOT_IMPLEMENTED} marks an implementation that offers \
         no delayed events: its cases skip. § links to the requirement. `{{ms}}` stands for a \
         delay the harness computed from its own clock. Every cell's answers are in {full_page}.\n\n"
    );
    for (n, link) in links.iter().enumerate() {
        let _ = writeln!(tail, "[{}]: {link}", n + 1);
    }

    if !differing.is_empty() {
        let heading = format!(
            "### Where implementations differ ({})\n\nWhat each answered, without the answers \
             all of them gave alike.\n\n",
            differing.len()
        );
        // Room for the note on rows left out, should any be.
        let reserve = 600 + differing.len() * 60;
        let mut details = String::new();
        let mut left_out: Vec<&str> = Vec::new();
        for (case, row) in &differing {
            let block = differences_markdown(runs, case, row);
            let total = out.chars().count()
                + heading.chars().count()
                + details.chars().count()
                + block.chars().count()
                + tail.chars().count()
                + reserve;
            if left_out.is_empty() && total <= COMMENT_LIMIT {
                details.push_str(&block);
            } else {
                left_out.push(case.id.rsplit('.').next().unwrap_or(&case.id));
            }
        }
        out.push_str(&heading);
        out.push_str(&details);
        if !left_out.is_empty() {
            let _ = writeln!(
                out,
                "{} more rows differ ({}): their answers do not fit in a comment; see {full_page}.\n",
                left_out.len(),
                left_out
                    .iter()
                    .map(|id| format!("`{id}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    out.push_str(&tail);
    out
}

/// A column's header: the implementation, with `NOT_IMPLEMENTED` where it offers no delayed
/// events.
fn column_header(run: &RunReport) -> String {
    let title = table_cell(&column_title(run));
    match run.not_implemented {
        Some(_) => format!("{title} {NOT_IMPLEMENTED}"),
        None => title,
    }
}

/// A cell of an area's table: the outcome, and the revisions matched where that says something.
/// A skip in a not-implemented column is its mark alone.
fn cell_markdown(run: &RunReport, cell: Option<&CaseReport>) -> String {
    let Some(case) = cell else {
        return "–".into();
    };
    if run.not_implemented.is_some() && case.outcome == Outcome::Skip {
        return NOT_IMPLEMENTED.into();
    }
    let (_, revs) = cell_label(case);
    let mut text = badge(case.outcome).to_string();
    if !revs.is_empty() {
        let _ = write!(text, " · {}", revs.join(", "));
    }
    text
}

/// A differing row, folded: the implementations grouped by what they said (verdict, revisions,
/// answers), each group with its outcome, the first line of its message where it did not pass,
/// and the answers not every group gave.
fn differences_markdown(runs: &[RunReport], case: &CaseReport, row: &Row) -> String {
    let mut groups: Vec<(Option<String>, Vec<usize>)> = Vec::new();
    for i in 0..runs.len() {
        let key = row.verdict(i).map(|v| format!("{v} {:?}", row.answers[i]));
        match groups.iter_mut().find(|(k, _)| k.is_some() && *k == key) {
            Some((_, members)) => members.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    let judged: Vec<&Vec<usize>> = groups
        .iter()
        .filter(|(k, _)| k.is_some())
        .map(|(_, m)| m)
        .collect();
    let common: BTreeSet<&String> = row.answers[judged[0][0]]
        .iter()
        .filter(|line| judged.iter().all(|m| row.answers[m[0]].contains(line)))
        .collect();
    let mut out = format!(
        "<details><summary><code>{}</code> {}</summary>\n\n",
        esc(&case.id),
        case.level
    );
    let mut unjudged = Vec::new();
    for (key, members) in &groups {
        let names = members
            .iter()
            .map(|i| format!("**{}**", table_cell(&column_title(&runs[*i]))))
            .collect::<Vec<_>>()
            .join(", ");
        let first = row.cells[members[0]];
        let Some(first) = first.filter(|_| key.is_some()) else {
            let what = match (first, &runs[members[0]].not_implemented) {
                (None, _) => "not run",
                (Some(c), Some(_)) if c.outcome == Outcome::Skip => "not implemented",
                (Some(c), _) => c.outcome.as_str(),
            };
            unjudged.push(format!("{names} ({what})"));
            continue;
        };
        let (_, revs) = cell_label(first);
        let _ = write!(out, "- {names}: {}", badge(first.outcome));
        if !revs.is_empty() {
            let _ = write!(out, " · {}", revs.join(", "));
        }
        let message = first.message.as_ref().or(first.expectation.as_ref());
        if let Some(message) = message.filter(|_| first.outcome != Outcome::Pass) {
            let _ = write!(out, ": {}", esc(&table_cell(&cut(message, 240))));
        }
        for line in row.answers[members[0]]
            .iter()
            .filter(|l| !common.contains(l))
        {
            let _ = write!(out, "<br><code>{}</code>", esc(&cut(line, 200)));
        }
        out.push('\n');
    }
    if !unjudged.is_empty() {
        let _ = writeln!(out, "- no verdict: {}", unjudged.join(", "));
    }
    out.push_str("\n</details>\n\n");
    out
}
