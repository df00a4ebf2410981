//! Reports rendered from the results model (`results.rs`) and nothing else, so that saved runs
//! render the same as live ones: JUnit, Markdown, HTML, the implementations × cases matrix, the
//! diff of two runs, and GitHub Actions annotations.

pub mod diff;
pub mod github;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod matrix;

use crate::outcome::Outcome;
use crate::results::{CaseReport, RunReport, SpecRecord};
use crate::spec::{Level, Rev};

/// Outcomes in the order reports list them.
pub const OUTCOMES: [Outcome; 6] = [
    Outcome::Pass,
    Outcome::Fail,
    Outcome::Xfail,
    Outcome::Xpass,
    Outcome::Skip,
    Outcome::Error,
];

const PROPOSALS: &str = "https://github.com/matrix-org/matrix-spec-proposals";

/// Where a reader finds the quoted sentence: the proposal file at the revision's commit, at the
/// section's anchor; a reconstructed revision's first source where it has one; else the pull
/// request.
pub fn spec_link(spec: &SpecRecord) -> String {
    if let (true, Some(source)) = (spec.reconstructed, spec.sources.first()) {
        return source.clone();
    }
    let known = Rev::ALL
        .into_iter()
        .find(|r| r.doc() == spec.doc && r.as_str() == spec.revision)
        .and_then(Rev::published);
    match known {
        Some((commit, file)) => {
            format!("{PROPOSALS}/blob/{commit}/{file}#{}", anchor(&spec.section))
        }
        None => {
            let number: String = spec.doc.chars().filter(char::is_ascii_digit).collect();
            format!("{PROPOSALS}/pull/{number}")
        }
    }
}

/// GitHub's anchor for a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// "MSC4140 2026-07-10 § Managing delayed events", with "(reconstructed)" where it applies.
/// A public source's short name for a link: `owner/repo#N` for a GitHub pull request or issue
/// (and `owner/repo@commit` for a commit), else the URL itself.
pub fn source_label(url: &str) -> String {
    let Some(path) = url.strip_prefix("https://github.com/") else {
        return url.to_string();
    };
    let parts: Vec<&str> = path.split(['/', '#']).collect();
    match parts.as_slice() {
        [owner, repo, "pull" | "issues", n, ..] if n.chars().all(|c| c.is_ascii_digit()) => {
            format!("{owner}/{repo}#{n}")
        }
        [owner, repo, "commit", sha, ..] => format!("{owner}/{repo}@{}", &sha[..sha.len().min(9)]),
        _ => url.to_string(),
    }
}

pub fn spec_label(spec: &SpecRecord) -> String {
    format!(
        "{} {}{} § {}",
        spec.doc,
        spec.revision,
        if spec.reconstructed {
            " (reconstructed)"
        } else {
            ""
        },
        spec.section
    )
}

/// Cases grouped by area: areas in the order `areas` gives (the suite's, recorded in the results),
/// those it does not name after them in the order the cases list them.
pub fn by_area<'a>(
    cases: impl IntoIterator<Item = &'a CaseReport>,
    areas: &[String],
) -> Vec<(String, Vec<&'a CaseReport>)> {
    let mut groups: Vec<(String, Vec<&CaseReport>)> = Vec::new();
    for case in cases {
        match groups.iter_mut().find(|(area, _)| *area == case.area) {
            Some((_, members)) => members.push(case),
            None => groups.push((case.area.clone(), vec![case])),
        }
    }
    let rank = |area: &str| areas.iter().position(|a| a == area).unwrap_or(usize::MAX);
    // A stable sort: unnamed areas keep their order.
    groups.sort_by_key(|(area, _)| rank(area));
    groups
}

/// The levels in the order reports list them.
pub fn levels() -> [Level; 4] {
    Level::ALL
}

/// Milliseconds as people read them: "850 ms", "1.2 s".
pub fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// A delivered event's lateness as reports show it: `(label, value, explanation)`, the harness's
/// own figure first (from the timer's start plus the delay to the `/sync` answer carrying the
/// event), then the server's claim beside it (from its own timestamps; a server that stamps a
/// late event with its scheduled time claims 0 ms). A results file from before the harness
/// recorded its own figure has only the server's: it is labelled as such, never as "late 0 ms".
pub fn lateness(case: &CaseReport) -> Vec<(&'static str, String, &'static str)> {
    let signed = |ms: i64| match ms {
        ms if ms < 0 => format!("{} ms early", -ms),
        ms => format!("{ms} ms"),
    };
    let mut facts = Vec::new();
    if let Some(ms) = case.harness_lateness_ms {
        facts.push((
            "late",
            signed(ms),
            "by the harness's clock: from just before the request that started the timer, plus \
             the delay, to the /sync answer carrying the event (an upper bound: it includes the \
             /sync round trip)",
        ));
    }
    if let (None, Some(_)) = (case.harness_lateness_ms, case.lateness_ms) {
        facts.push((
            "late",
            "not measured".into(),
            "this results file was written before the harness recorded lateness by its own clock",
        ));
    }
    if let Some(ms) = case.lateness_ms {
        let title = match case.harness_lateness_ms {
            Some(_) => {
                "the server's claim: origin_server_ts minus the scheduling time it reported plus \
                 the delay (a server that stamps a late event with its scheduled time claims 0 ms)"
            }
            None => {
                "the server's claim (origin_server_ts against its scheduling time); this results \
                 file does not hold the harness's own figure"
            }
        };
        facts.push(("server's claim", signed(ms), title));
    }
    facts
}

/// The first sentence of `text` (an expectation's reason, say), for a line of its own: up to the
/// first full stop followed by a space and a capital letter, a digit, a quote or the end (not "e.g.", not
/// a version number), and at most 200 characters. The terminal shows this; reports keep all.
pub fn first_sentence(text: &str) -> String {
    let text = text.trim();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(at, c)) in chars.iter().enumerate() {
        if !matches!(c, '.' | '!' | '?') {
            continue;
        }
        let next = chars.get(i + 1).map(|&(_, n)| n);
        let after = chars.get(i + 2).map(|&(_, n)| n);
        let ends = match (next, after) {
            (None, _) => true,
            (Some(n), Some(a)) if n.is_whitespace() => {
                a.is_uppercase() || a.is_ascii_digit() || matches!(a, '"' | '(' | '`' | '\u{201c}')
            }
            _ => false,
        };
        let before = &text[..at + c.len_utf8()];
        let abbreviation = ["e.g.", "i.e.", "cf.", "vs.", "etc."]
            .iter()
            .any(|a| before.ends_with(a));
        if ends && !abbreviation {
            return cut(before, 200);
        }
    }
    cut(text, 200)
}

/// "the server ..." as a sentence of its own.
pub fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

/// The API form the run used, or that there was none to use.
pub fn api_form_label(run: &RunReport) -> String {
    form_label(run.api_form, run.not_implemented.is_none())
}

/// `form`, where the server offers delayed events at all (the terminal and every report).
pub fn form_label(form: crate::api::ApiForm, offered: bool) -> String {
    match offered {
        true => form.to_string(),
        false => "none (delayed events not offered)".into(),
    }
}

/// The run's overall figure: "not implemented" where the server offers no delayed events, else
/// the conformance share.
pub fn overall(run: &RunReport) -> String {
    match run.not_implemented {
        Some(_) => "not implemented".into(),
        None => percent(conformance(&run.cases)),
    }
}

/// Passed, as a share of the cases that gave a verdict (pass, fail, xfail, xpass).
pub fn conformance<'a>(cases: impl IntoIterator<Item = &'a CaseReport>) -> Option<(usize, usize)> {
    let (mut passed, mut judged) = (0, 0);
    for case in cases {
        match case.outcome {
            Outcome::Pass | Outcome::Xpass => {
                passed += 1;
                judged += 1;
            }
            Outcome::Fail | Outcome::Xfail => judged += 1,
            Outcome::Skip | Outcome::Error => {}
        }
    }
    (judged > 0).then_some((passed, judged))
}

/// "92% (23/25)" or "–" where nothing was judged.
pub fn percent(share: Option<(usize, usize)>) -> String {
    match share {
        Some((passed, judged)) => format!(
            "{}% ({passed}/{judged})",
            (passed as f64 * 100.0 / judged as f64).round()
        ),
        None => "–".into(),
    }
}

/// The text and attribute escape HTML needs.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text that sits inside a Markdown table cell on one line.
pub fn table_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// At most `max` characters, with an ellipsis where it was cut.
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_follow_github() {
        assert_eq!(
            anchor("`delay_id` in `unsigned` event data"),
            "delay_id-in-unsigned-event-data"
        );
        assert_eq!(
            anchor("MSC4140: Cancellable delayed events"),
            "msc4140-cancellable-delayed-events"
        );
    }
}

#[cfg(test)]
mod first_sentence_tests {
    use super::first_sentence;

    #[test]
    fn the_first_sentence_only() {
        assert_eq!(
            first_sentence(
                "Synapse 1.163.2 only rejects negative delays: ?org.matrix.msc4140.delay=0 is \
                 accepted. 2026-07 says so. More."
            ),
            "Synapse 1.163.2 only rejects negative delays: ?org.matrix.msc4140.delay=0 is accepted."
        );
        assert_eq!(
            first_sentence("It answers 404, i.e. it forgot, e.g. After a send. Then more."),
            "It answers 404, i.e. it forgot, e.g. After a send."
        );
        assert_eq!(first_sentence("No full stop"), "No full stop");
        assert_eq!(first_sentence("One. "), "One.");
        let long = "word ".repeat(100);
        assert_eq!(first_sentence(&long).chars().count(), 201);
    }
}

#[cfg(test)]
mod source_label_tests {
    use super::source_label;

    #[test]
    fn github_pulls_issues_and_commits_get_short_names() {
        assert_eq!(
            source_label("https://github.com/element-hq/synapse/pull/20229"),
            "element-hq/synapse#20229"
        );
        assert_eq!(
            source_label(
                "https://github.com/matrix-org/matrix-spec-proposals/pull/4140#discussion_r1"
            ),
            "matrix-org/matrix-spec-proposals#4140"
        );
        assert_eq!(
            source_label("https://github.com/element-hq/synapse/issues/18021"),
            "element-hq/synapse#18021"
        );
        assert_eq!(
            source_label("https://github.com/matrix-org/matrix-spec-proposals/commit/fc9077af1234"),
            "matrix-org/matrix-spec-proposals@fc9077af1"
        );
        assert_eq!(
            source_label("https://example.org/x"),
            "https://example.org/x"
        );
    }
}
