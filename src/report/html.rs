//! The HTML report of one run: one self-contained file (inline CSS and a little JS, no fetches),
//! so it works when opened from CI artifacts. A header with the target, per area each case with
//! its requirement, outcome, timing and matched revisions, the evidence folded away, and filters
//! by outcome, area and level.

use crate::outcome::Outcome;
use crate::report::{
    api_form_label, by_area, conformance, duration, escape_html as esc, levels, overall, percent,
    sentence, source_label, spec_label, spec_link, OUTCOMES,
};
use crate::results::{CaseReport, RunReport};
use std::fmt::Write;

/// Shared by the run report and the matrix.
pub const STYLE: &str = r#"
:root { --fg:#1f2328; --muted:#656d76; --line:#d0d7de; --bg:#f6f8fa; --card:#fff;
  --pass:#1a7f37; --fail:#cf222e; --xfail:#9a6700; --xpass:#bc4c00; --skip:#6e7781; --error:#8250df; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.5 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif; color:var(--fg); background:var(--bg); }
header { background:#24292f; color:#fff; padding:20px 32px; }
header h1 { margin:0 0 10px; font-size:22px; font-weight:600; }
header dl { display:grid; grid-template-columns:repeat(auto-fill,minmax(220px,1fr)); gap:4px 24px; margin:0; }
header dt { font-size:11px; text-transform:uppercase; letter-spacing:.05em; color:#8c959f; }
header dd { margin:0 0 6px; font-family:ui-monospace,SFMono-Regular,Menlo,monospace; font-size:13px; overflow-wrap:anywhere; }
main { padding:16px 32px 48px; max-width:1500px; }
.summary { display:flex; flex-wrap:wrap; gap:8px; align-items:center; margin:8px 0 16px; }
.chip { border:1px solid var(--line); background:var(--card); border-radius:16px; padding:3px 12px; cursor:pointer; font-size:13px; user-select:none; }
.chip b { margin-left:4px; }
.chip.off { opacity:.35; text-decoration:line-through; }
.filters { display:flex; flex-wrap:wrap; gap:12px; align-items:center; background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px 14px; position:sticky; top:0; z-index:2; }
.filters label { font-size:12px; color:var(--muted); }
.filters select, .filters input { font:inherit; padding:3px 6px; border:1px solid var(--line); border-radius:6px; }
.filters .count { margin-left:auto; color:var(--muted); font-size:12px; }
section.area { margin-top:22px; }
section.area > h2 { font-size:17px; margin:0 0 8px; display:flex; gap:12px; align-items:baseline; }
section.area > h2 small { font-weight:400; color:var(--muted); font-size:13px; }
.case { background:var(--card); border:1px solid var(--line); border-left:4px solid var(--skip); border-radius:6px; margin:6px 0; padding:8px 12px; display:grid; grid-template-columns:70px 62px minmax(0,1fr) 230px; gap:4px 14px; }
.case.pass { border-left-color:var(--pass); } .case.fail { border-left-color:var(--fail); }
.case.xfail { border-left-color:var(--xfail); } .case.xpass { border-left-color:var(--xpass); }
.case.error { border-left-color:var(--error); }
.badge { display:inline-block; font-size:11px; font-weight:600; text-transform:uppercase; border-radius:10px; padding:1px 8px; color:#fff; background:var(--skip); text-align:center; }
.badge.pass { background:var(--pass); } .badge.fail { background:var(--fail); } .badge.xfail { background:var(--xfail); }
.badge.xpass { background:var(--xpass); } .badge.error { background:var(--error); }
.level { font-size:11px; font-weight:600; color:var(--muted); border:1px solid var(--line); border-radius:4px; padding:0 5px; justify-self:start; height:fit-content; }
.level.MUST { color:#cf222e; border-color:#ffcecb; } .level.SHOULD { color:#9a6700; border-color:#f5e0a0; }
.title { font-weight:600; }
.id { font-family:ui-monospace,Menlo,monospace; font-size:12px; color:var(--muted); }
blockquote { margin:4px 0 0; padding:2px 10px; border-left:3px solid var(--line); color:#424a53; font-size:13px; }
blockquote a { color:#0969da; font-size:12px; text-decoration:none; white-space:nowrap; }
.facts { font-size:12px; color:var(--muted); text-align:right; }
.facts div span { color:var(--fg); font-family:ui-monospace,Menlo,monospace; }
.rev { display:inline-block; font-size:11px; background:#ddf4ff; color:#0550ae; border-radius:4px; padding:0 5px; margin:1px 0 1px 3px; font-family:ui-monospace,Menlo,monospace; }
.message { grid-column:3 / 5; background:#fff8f5; border:1px solid #ffd8b5; border-radius:6px; padding:6px 10px; font-size:13px; white-space:pre-wrap; }
.case.skip .message, .case.xfail .message { background:var(--bg); border-color:var(--line); }
.message.ea { display:grid; grid-template-columns:max-content 1fr; gap:2px 10px; align-items:baseline; white-space:normal; }
.message.ea .cap { margin:0; } .message.ea code { white-space:pre-wrap; word-break:break-word; }
details { grid-column:3 / 5; font-size:12px; }
summary { cursor:pointer; color:#0969da; }
pre { background:#f6f8fa; border:1px solid var(--line); border-radius:6px; padding:8px; overflow:auto; max-height:420px; font-size:12px; margin:6px 0; white-space:pre-wrap; word-break:break-word; }
.ex { margin:10px 0; } .io { display:grid; grid-template-columns:1fr 1fr; gap:10px; }
.cap { font-size:11px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); margin-top:4px; } .ex .line { font-family:ui-monospace,Menlo,monospace; font-weight:600; }
.st { display:inline-block; min-width:34px; border-radius:4px; padding:0 4px; color:#fff; background:var(--pass); text-align:center; }
.st.c4, .st.c5 { background:var(--fail); }
.hidden { display:none !important; }
footer { color:var(--muted); font-size:12px; padding:0 32px 24px; }
.banner { background:#ffebe9; border:1px solid #cf222e; border-radius:8px; padding:10px 14px; margin:0 0 14px; }
"#;

/// Filters: outcome chips toggle, area and level selects; areas with nothing shown are hidden.
pub const SCRIPT: &str = r#"
(function () {
  const off = new Set();
  const area = document.getElementById('f-area'), level = document.getElementById('f-level'),
        text = document.getElementById('f-text'), count = document.getElementById('f-count'),
        differing = document.getElementById('f-diff');
  function apply() {
    let shown = 0;
    document.querySelectorAll('[data-outcome]').forEach(function (row) {
      const outcomes = row.dataset.outcome.split(' ');
      const ok = outcomes.some(function (o) { return !off.has(o); })
        && (!area.value || row.dataset.area === area.value)
        && (!level.value || row.dataset.level === level.value)
        && (!text.value || row.dataset.id.indexOf(text.value.trim()) >= 0)
        && (!differing || !differing.checked || row.classList.contains('differs'));
      row.classList.toggle('hidden', !ok);
      if (ok) shown++;
    });
    document.querySelectorAll('[data-section]').forEach(function (s) {
      s.classList.toggle('hidden', !s.querySelector('[data-outcome]:not(.hidden)'));
    });
    count.textContent = shown + ' shown';
  }
  document.querySelectorAll('.chip[data-toggle]').forEach(function (chip) {
    chip.addEventListener('click', function () {
      const o = chip.dataset.toggle;
      if (off.has(o)) off.delete(o); else off.add(o);
      chip.classList.toggle('off', off.has(o));
      apply();
    });
  });
  [area, level, differing].forEach(function (e) { if (e) e.addEventListener('change', apply); });
  text.addEventListener('input', apply);
  apply();
})();
"#;

/// The page around a body: title, style, script.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n\
         <script>{SCRIPT}</script>\n</body>\n</html>\n",
        esc(title)
    )
}

/// The filter bar: outcome chips with counts, area and level selects, an id search.
pub fn filters(outcome_counts: &[(Outcome, usize)], areas: &[String]) -> String {
    let mut out = String::from("<div class=\"filters\">\n<span class=\"summary\">");
    for (outcome, n) in outcome_counts {
        let _ = write!(
            out,
            "<span class=\"chip\" data-toggle=\"{o}\" title=\"show or hide {o}\"><span class=\"badge {o}\">{o}</span><b>{n}</b></span>",
            o = outcome.as_str()
        );
    }
    out.push_str("</span>\n<label>area <select id=\"f-area\"><option value=\"\">all</option>");
    for area in areas {
        let _ = write!(out, "<option>{}</option>", esc(area));
    }
    out.push_str(
        "</select></label>\n<label>level <select id=\"f-level\"><option value=\"\">all</option>",
    );
    for level in levels() {
        let _ = write!(out, "<option>{level}</option>");
    }
    out.push_str(
        "</select></label>\n<label>id <input id=\"f-text\" placeholder=\"part of a case id\"></label>\n\
         <span class=\"count\" id=\"f-count\"></span>\n</div>\n",
    );
    out
}

/// The quoted requirement, linked to its section.
/// For a reconstructed revision, what its public sources say (not a quote), so no quote marks;
/// every source cited is listed.
pub fn requirement(case: &CaseReport) -> String {
    let spec = &case.spec;
    let text = if spec.reconstructed {
        format!("Per the public source: {}", esc(&spec.text))
    } else {
        format!("“{}”", esc(&spec.text))
    };
    let note = spec
        .note
        .as_deref()
        .map(|n| format!("<br><small>Note: {}</small>", esc(n)))
        .unwrap_or_default();
    let sources = if spec.sources.is_empty() {
        String::new()
    } else {
        let links: Vec<String> = spec
            .sources
            .iter()
            .map(|s| format!("<a href=\"{}\">{}</a>", esc(s), esc(&source_label(s))))
            .collect();
        format!("<br><small>Sources: {}</small>", links.join(", "))
    };
    format!(
        "<blockquote>{text} <a href=\"{}\">{}</a>{note}{sources}</blockquote>",
        esc(&spec_link(spec)),
        esc(&spec_label(spec))
    )
}

pub fn revisions(list: &[String]) -> String {
    list.iter()
        .map(|r| format!("<span class=\"rev\">{}</span>", esc(r)))
        .collect()
}

/// Header facts: (label, value) pairs.
pub fn header(title: &str, facts: &[(&str, String)]) -> String {
    let mut out = format!("<header>\n<h1>{}</h1>\n<dl>", esc(title));
    for (label, value) in facts {
        let _ = write!(
            out,
            "<div><dt>{}</dt><dd>{}</dd></div>",
            esc(label),
            esc(value)
        );
    }
    out.push_str("</dl>\n</header>\n");
    out
}

pub fn render(run: &RunReport) -> String {
    let t = &run.target;
    let mut facts = vec![
        ("target", format!("{} at {}", t.kind, t.base_url)),
        ("server", run.implementation()),
        ("API form", api_form_label(run)),
        (
            "suite",
            format!("{} {}", run.harness.name, run.harness.version),
        ),
        ("date", run.started_at.clone()),
        ("duration", duration(run.duration_ms)),
    ];
    if let Some(image) = &t.image {
        facts.push(("image", image.clone()));
    }
    if let Some(topology) = &t.topology {
        facts.push(("deployment", topology.label()));
    }
    if let Some(source) = &t.identity_source {
        facts.push(("identity from", source.clone()));
    }
    if let Some(applied) = &run.expectations {
        facts.push((
            "expectations",
            format!("{} ({})", applied.file, applied.why),
        ));
    }
    facts.push(("conformance (pass of judged)", overall(run)));
    let mut body = header(
        &format!("Delayed events conformance: {}", run.implementation()),
        &facts,
    );
    body.push_str("<main>\n");
    if let Some(reason) = &run.not_implemented {
        let _ = writeln!(
            body,
            "<p class=\"banner\"><b>Delayed events are not implemented by this server.</b> {} \
             Every case that needs them was skipped; the run fails.</p>",
            esc(&sentence(reason))
        );
    }
    let counts: Vec<(Outcome, usize)> = OUTCOMES
        .iter()
        .map(|o| (*o, run.summary.count(*o)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let groups = by_area(&run.cases, &run.areas);
    let areas: Vec<String> = groups.iter().map(|(a, _)| a.clone()).collect();
    body.push_str(&filters(&counts, &areas));
    for (area, cases) in &groups {
        let _ = writeln!(
            body,
            "<section class=\"area\" data-section><h2>{}<small>{} case{} · conformance {}</small></h2>",
            esc(area),
            cases.len(),
            if cases.len() == 1 { "" } else { "s" },
            percent(conformance(cases.iter().copied()))
        );
        for case in cases {
            body.push_str(&case_html(case));
        }
        body.push_str("</section>\n");
    }
    body.push_str("</main>\n<footer>Generated from a results file (schema 1). Secrets are redacted from all evidence.</footer>");
    page(
        &format!("Delayed events conformance: {}", run.implementation()),
        &body,
    )
}

fn case_html(case: &CaseReport) -> String {
    let o = case.outcome.as_str();
    let mut out = format!(
        "<div class=\"case {o}\" data-outcome=\"{o}\" data-area=\"{}\" data-level=\"{}\" data-id=\"{}\">\n",
        esc(&case.area),
        case.level,
        esc(&case.id)
    );
    let _ = writeln!(
        out,
        "<div><span class=\"badge {o}\">{o}</span></div><div><span class=\"level {l}\">{l}</span></div>",
        l = case.level
    );
    let _ = writeln!(
        out,
        "<div><div class=\"title\">{}</div><div class=\"id\">{}</div>{}</div>",
        esc(&case.title),
        esc(&case.id),
        requirement(case)
    );
    let mut facts = format!(
        "<div>time <span>{}</span></div>",
        duration(case.duration_ms)
    );
    for (label, value, title) in crate::report::lateness(case) {
        let _ = write!(
            facts,
            "<div title=\"{}\">{label} <span>{value}</span></div>",
            esc(title)
        );
    }
    if !case.matched_revisions.is_empty() {
        let _ = write!(
            facts,
            "<div>matched {}</div>",
            revisions(&case.matched_revisions)
        );
    }
    let _ = writeln!(out, "<div class=\"facts\">{facts}</div>");
    let note = match case.outcome {
        Outcome::Xfail => case
            .expectation
            .as_ref()
            .map(|r| format!("expected failure: {r}")),
        Outcome::Xpass => Some(format!(
            "now passes: remove it from the expectation file (listed because: {})",
            case.expectation.as_deref().unwrap_or("no reason given")
        )),
        _ => None,
    };
    for text in note.iter().chain(case.message.iter()) {
        let _ = writeln!(out, "<div class=\"message\">{}</div>", esc(text));
    }
    let expected_actual = case.expected_actual();
    if !expected_actual.is_empty() {
        let rows: String = expected_actual
            .iter()
            .map(|(label, value)| {
                format!(
                    "<div class=\"cap\">{label}</div><code>{}</code>",
                    esc(value)
                )
            })
            .collect();
        let _ = writeln!(out, "<div class=\"message ea\">{rows}</div>");
    }
    if let Some(link) = &case.expectation_link {
        let _ = writeln!(
            out,
            "<div class=\"message\">upstream: <a href=\"{0}\">{0}</a></div>",
            esc(link)
        );
    }
    out.push_str(&evidence_html(case));
    out.push_str("</div>\n");
    out
}

fn evidence_html(case: &CaseReport) -> String {
    if case.evidence.is_empty() && case.notes.is_empty() && case.server_log_tail.is_none() {
        return String::new();
    }
    let mut out = format!(
        "<details><summary>evidence: {} request(s){}</summary>\n",
        case.evidence.len(),
        if case.server_log_tail.is_some() {
            ", server log"
        } else {
            ""
        }
    );
    for note in &case.notes {
        let _ = writeln!(out, "<div>note: {}</div>", esc(note));
    }
    if !case.observation.is_empty() {
        let _ = writeln!(
            out,
            "<div class=\"cap\">answers, normalised (what diff and the matrix compare)</div><pre>{}</pre>",
            esc(&case.observation.join("\n"))
        );
    }
    for e in &case.evidence {
        let _ = write!(
            out,
            "<div class=\"ex\"><div class=\"line\"><span class=\"st c{}\">{}</span> {} {}</div>",
            e.status / 100,
            e.status,
            esc(&e.method),
            esc(&e.path)
        );
        match &e.request {
            Some(request) => {
                let _ = writeln!(
                    out,
                    "<div class=\"io\"><div><div class=\"cap\">request</div><pre>{}</pre></div>\
                     <div><div class=\"cap\">answer</div><pre>{}</pre></div></div></div>",
                    esc(&pretty(request)),
                    esc(&pretty(&e.body))
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "<div class=\"cap\">answer</div><pre>{}</pre></div>",
                    esc(&pretty(&e.body))
                );
            }
        }
    }
    if let Some(tail) = &case.server_log_tail {
        let _ = writeln!(
            out,
            "<div>server log (last lines)</div><pre>{}</pre>",
            esc(tail)
        );
    }
    out.push_str("</details>\n");
    out
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}
