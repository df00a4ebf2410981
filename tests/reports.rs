//! Every renderer on fixed results files (tests/fixtures/): JUnit parses back with every case;
//! Markdown, HTML, the matrix and the diff are snapshotted (snapshots/, `cargo insta review`);
//! `diff` exit statuses through the real binary.
//!
//! Fixtures: two real runs (the pinned Synapse and 1.157.1, saved with `run --json`) and a small
//! hand-made run with every outcome (`every-outcome.json`).

use dec_harness::outcome::Outcome;
use dec_harness::report::{diff, github, html, junit, markdown, matrix};
use dec_harness::results::RunReport;
use quick_junit::{NonSuccessKind, Report, TestCaseStatus};
use std::path::PathBuf;
use std::process::Command;

const PINNED: &str = "synapse-1.163.2.json";
const OLDER: &str = "synapse-1.157.1.json";
const EVERY_OUTCOME: &str = "every-outcome.json";
const FEATURE_OFF: &str = "synapse-1.163.2-feature-off.json";

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn fixture(name: &str) -> RunReport {
    RunReport::load(&fixture_path(name)).unwrap_or_else(|e| panic!("{e}"))
}

macro_rules! snapshot {
    ($name:expr, $text:expr) => {
        insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!($name, $text);
        })
    };
}

#[test]
fn results_files_load_back_into_the_model_unchanged() {
    for name in [PINNED, OLDER, EVERY_OUTCOME, FEATURE_OFF] {
        let text = std::fs::read_to_string(fixture_path(name)).unwrap();
        let loaded = RunReport::parse(&text).unwrap();
        let written: serde_json::Value = serde_json::to_value(&loaded).unwrap();
        let original: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(written, original, "{name} does not survive load + save");
    }
}

/// A failure's expected and actual survive a save (fields omitted when absent, schema still 1).
#[test]
fn expected_and_actual_are_kept() {
    let run = fixture(EVERY_OUTCOME);
    let with: Vec<&str> = run
        .cases
        .iter()
        .filter(|c| !c.expected_actual().is_empty())
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(with, ["msc4140.timing.message_sent_within_allowance"]);
    let case = &run.cases.iter().find(|c| c.id == with[0]).unwrap();
    assert_eq!(
        case.expected.as_deref(),
        Some("sent at most 30000 ms after its scheduled send time")
    );
    assert_eq!(case.actual.as_deref(), Some("sent 31250 ms after it"));
    let written = serde_json::to_value(&run).unwrap();
    assert_eq!(written["schema"], 1);
    let without = written["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["outcome"] == "pass")
        .unwrap();
    assert!(without.get("expected").is_none() && without.get("actual").is_none());
}

#[test]
fn unreadable_results_say_what_is_wrong() {
    let err = RunReport::parse("{\"schema\": 7, \"cases\": []}").unwrap_err();
    assert!(err.contains("schema 7"), "{err}");
    let err = RunReport::parse("[1, 2]").unwrap_err();
    assert!(err.contains("run --json"), "{err}");
}

#[test]
fn no_report_shows_a_secret() {
    for name in [PINNED, OLDER, EVERY_OUTCOME, FEATURE_OFF] {
        let run = fixture(name);
        for text in [
            std::fs::read_to_string(fixture_path(name)).unwrap(),
            junit::render(&run),
            markdown::render(&run),
            html::render(&run),
        ] {
            // Synapse access tokens start with syt_; the fixtures' registration used a secret
            // that never appears, and passwords and tokens are redacted in evidence.
            assert!(!text.contains("syt_"), "{name}: an access token leaked");
            assert!(
                !text.contains("Bearer "),
                "{name}: an Authorization header leaked"
            );
            for key in ["access_token", "password", "mac"] {
                let pattern = format!("\"{key}\": \"");
                for (at, _) in text.match_indices(&pattern) {
                    let value = &text[at + pattern.len()..];
                    assert!(
                        value.starts_with("<redacted>") || value.starts_with("&lt;redacted&gt;"),
                        "{name}: {key} not redacted"
                    );
                }
            }
        }
    }
}

#[test]
fn junit_parses_back_with_every_case() {
    for name in [PINNED, OLDER, EVERY_OUTCOME, FEATURE_OFF] {
        let run = fixture(name);
        let xml = junit::render(&run);
        let parsed = Report::deserialize_from_str(&xml).expect("JUnit parses back");
        let cases: Vec<_> = parsed
            .test_suites
            .iter()
            .flat_map(|s| s.test_cases.iter().map(move |c| (s, c)))
            .collect();
        // A run without the feature has one more: the missing feature, failed.
        let extra = usize::from(run.not_implemented.is_some());
        assert_eq!(cases.len(), run.cases.len() + extra, "{name}: every case");
        for report in &run.cases {
            let (suite, case) = cases
                .iter()
                .find(|(_, c)| c.name.as_str() == report.id)
                .unwrap_or_else(|| panic!("{name}: {} missing", report.id));
            assert_eq!(suite.name.as_str(), report.area);
            assert_eq!(case.classname.as_ref().unwrap().as_str(), report.area);
            let level = case.properties.iter().find(|p| p.name.as_str() == "level");
            assert_eq!(level.unwrap().value.as_str(), report.level.as_str());
            match (&case.status, report.outcome) {
                (TestCaseStatus::Success { .. }, Outcome::Pass) => {}
                (TestCaseStatus::Skipped { message, .. }, Outcome::Xfail) => {
                    assert!(message
                        .as_ref()
                        .unwrap()
                        .as_str()
                        .starts_with("expected failure: "))
                }
                (TestCaseStatus::Skipped { .. }, Outcome::Skip) => {}
                (
                    TestCaseStatus::NonSuccess {
                        kind,
                        message,
                        description,
                        ..
                    },
                    outcome,
                ) => {
                    let text = message.as_ref().unwrap().as_str();
                    // What was expected and what came back, in the failure's body.
                    let body = description.as_ref().map_or("", |d| d.as_str());
                    for (label, value) in report.expected_actual() {
                        assert!(
                            body.contains(&format!("{label}: {value}")),
                            "{}: no {label} in the failure body: {body}",
                            report.id
                        );
                    }
                    match outcome {
                        Outcome::Xpass => {
                            assert!(text.starts_with("now passes: remove it from the expectations"))
                        }
                        Outcome::Fail => assert_eq!(*kind, NonSuccessKind::Failure),
                        Outcome::Error => assert_eq!(*kind, NonSuccessKind::Error),
                        other => panic!("{}: {other:?} reported as a failure", report.id),
                    }
                    assert!(
                        case.system_out.is_some(),
                        "{}: evidence in system-out",
                        report.id
                    );
                }
                (status, outcome) => panic!("{}: {outcome:?} reported as {status:?}", report.id),
            }
        }
    }
}

#[test]
fn junit_report() {
    snapshot!(
        "junit-every-outcome",
        junit::render(&fixture(EVERY_OUTCOME))
    );
}

#[test]
fn github_annotations() {
    let text = github::render(&fixture(EVERY_OUTCOME));
    snapshot!("github-every-outcome", text);
    // One annotation per unexpected failure (fail, error, xpass), titled with the case id.
    let titles: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("::error title="))
        .map(|l| l.split("::").next().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "msc4140.cancellation.cancelled_event_is_never_sent",
            "msc4140.timing.message_sent_within_allowance",
            "msc4140.send_now.sends_immediately",
            "msc4140.restart.moves_send_time",
        ]
    );
    assert!(text
        .contains("::group::server log before msc4140.cancellation.cancelled_event_is_never_sent"));
}

#[test]
fn markdown_reports() {
    snapshot!(
        "markdown-every-outcome",
        markdown::render(&fixture(EVERY_OUTCOME))
    );
    snapshot!(
        "markdown-synapse-1.163.2",
        markdown::render(&fixture(PINNED))
    );
    snapshot!(
        "markdown-synapse-1.157.1",
        markdown::render(&fixture(OLDER))
    );
}

/// A server without delayed events: every report says "not implemented" up front, JUnit and the
/// annotations carry it as a failure, and the matrix shows it instead of a conformance share.
#[test]
fn reports_say_not_implemented() {
    let run = fixture(FEATURE_OFF);
    let reason = run
        .not_implemented
        .clone()
        .expect("the fixture is a feature-off run");
    assert!(reason.contains("403 M_FORBIDDEN"), "{reason}");
    snapshot!("markdown-feature-off", markdown::render(&run));
    let page = html::render(&run);
    assert!(page.contains("Delayed events are not implemented by this server."));
    let xml = junit::render(&run);
    let parsed = Report::deserialize_from_str(&xml).expect("JUnit parses back");
    let feature = parsed
        .test_suites
        .iter()
        .find(|s| s.name.as_str() == "feature")
        .expect("a feature suite");
    assert!(matches!(
        feature.test_cases[0].status,
        TestCaseStatus::NonSuccess {
            kind: NonSuccessKind::Failure,
            ..
        }
    ));
    let annotations = github::render(&run);
    assert!(
        annotations.starts_with("::error title=delayed events not implemented::"),
        "{annotations}"
    );
    let runs = [fixture(PINNED), run];
    snapshot!(
        "matrix-markdown-feature-off",
        matrix::render_markdown(&runs)
    );
}

#[test]
fn html_report_is_self_contained() {
    for name in [PINNED, OLDER, EVERY_OUTCOME, FEATURE_OFF] {
        let page = html::render(&fixture(name));
        for fetch in ["src=", "<link", "@import", "url("] {
            assert!(
                !page.contains(fetch),
                "{name}: the page fetches something ({fetch})"
            );
        }
    }
    snapshot!("html-every-outcome", html::render(&fixture(EVERY_OUTCOME)));
}

#[test]
fn matrix_of_two_real_runs() {
    let runs = [fixture(PINNED), fixture(OLDER)];
    snapshot!("matrix-markdown", matrix::render_markdown(&runs));
    snapshot!("matrix-html", matrix::render_html(&runs));
}

#[test]
fn diff_of_two_real_runs() {
    let (older, pinned) = (fixture(OLDER), fixture(PINNED));
    let entries = diff::compare(&older, &pinned);
    snapshot!(
        "diff-1.157.1-to-1.163.2",
        diff::render(&older, &pinned, &entries)
    );
    let every = fixture(EVERY_OUTCOME);
    let entries = diff::compare(&pinned, &every);
    snapshot!(
        "diff-to-every-outcome",
        diff::render(&pinned, &every, &entries)
    );
}

fn diff_status(base: &str, head: &str) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_delayed-events-conformance"))
        .arg("diff")
        .arg(base)
        .arg(head)
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn diff_exits_1_when_a_case_broke_and_0_otherwise() {
    let pinned = fixture_path(PINNED);
    let pinned = pinned.to_str().unwrap();
    let (code, out, _) = diff_status(pinned, pinned);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Nothing broke"), "{out}");

    // every-outcome.json has cases that pass in the pinned run and fail there.
    let broken = fixture_path(EVERY_OUTCOME);
    let (code, out, _) = diff_status(pinned, broken.to_str().unwrap());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("### Broken"), "{out}");

    // The other way round, the same cases are fixed: nothing broke.
    let (code, out, _) = diff_status(broken.to_str().unwrap(), pinned);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("### Fixed"), "{out}");

    let (code, _, err) = diff_status(pinned, "/nonexistent/head.json");
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot read results file /nonexistent/head.json"),
        "{err}"
    );
    let not_results = fixture_path("../fixtures");
    let (code, _, err) = diff_status(pinned, not_results.to_str().unwrap());
    assert_eq!(code, 2, "{err}");
}

#[test]
fn report_renders_saved_runs() {
    let output = Command::new(env!("CARGO_BIN_EXE_delayed-events-conformance"))
        .args(["report"])
        .arg(fixture_path(PINNED))
        .arg(fixture_path(OLDER))
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with("## Delayed events conformance matrix"),
        "{text}"
    );
}

/// Lateness by the harness's clock, with the server's claim beside it and labelled so: a server
/// that stamps a late event with its scheduled time must not read as "late 0 ms". Files written
/// before the harness recorded its own figure say it was not measured.
#[test]
fn lateness_is_the_harness_figure_beside_the_server_claim() {
    let every = fixture(EVERY_OUTCOME);
    let page = html::render(&every);
    assert!(page.contains(">late <span>312 ms</span>"), "harness figure");
    assert!(
        page.contains(">server's claim <span>0 ms</span>"),
        "server's claim"
    );
    for name in [PINNED, OLDER] {
        let page = html::render(&fixture(name));
        assert!(!page.contains(">late <span>0 ms"), "{name}: late 0 ms");
        assert!(page.contains(">late <span>not measured</span>"), "{name}");
    }
}

/// The cases whose rows the Markdown matrix marks as differing.
fn marked_rows(markdown: &str) -> Vec<&str> {
    markdown
        .lines()
        .filter_map(|l| l.strip_prefix("| **≠** `"))
        .filter_map(|l| l.split('`').next())
        .collect()
}

/// A run without delayed events compares with nothing: adding it marks no row, in Markdown or
/// HTML, and its column carries one mark in its header.
#[test]
fn a_not_implemented_run_marks_no_more_rows() {
    let two = [fixture(PINNED), fixture(OLDER)];
    let three = [fixture(PINNED), fixture(OLDER), fixture(FEATURE_OFF)];
    let (md2, md3) = (
        matrix::render_markdown(&two),
        matrix::render_markdown(&three),
    );
    snapshot!("matrix-markdown-three-runs", &md3);
    assert_eq!(marked_rows(&md2), marked_rows(&md3));
    assert_eq!(
        marked_rows(&md2).len(),
        2,
        "between the two Synapse runs: {:#?}",
        marked_rows(&md2)
    );
    let differs = |page: &str| page.matches("<tr class=\"differs\"").count();
    assert_eq!(
        differs(&matrix::render_html(&two)),
        differs(&matrix::render_html(&three))
    );
    assert!(md3.contains("| **Synapse 1.163.2 ⊘** |"), "header mark");
    assert!(matrix::render_html(&three).contains("⊘ not implemented</span>"));
    // The harness's own delays (a control event's, computed from its clock) do not differ.
    let html = matrix::render_html(&two);
    assert!(!html.contains("delay=847") && !html.contains("delay=458"));
    assert!(html.contains("org.matrix.msc4140.delay={ms}"));
}

/// Ten implementations of the catalogue as it is: the fixtures, and copies of the real runs under
/// other names with a fifth of their cases failing with other answers, so that many rows differ.
fn ten_implementations() -> Vec<RunReport> {
    let mut runs = vec![
        fixture(PINNED),
        fixture(OLDER),
        fixture(FEATURE_OFF),
        fixture(EVERY_OUTCOME),
    ];
    for copy in 0..6 {
        let mut run = fixture(if copy % 2 == 0 { PINNED } else { OLDER });
        run.target.version = Some(format!("9.{copy}.0"));
        for (i, case) in run.cases.iter_mut().enumerate() {
            if (i + copy) % 5 == 0 && case.outcome == Outcome::Pass {
                case.outcome = Outcome::Fail;
                case.message = Some(format!(
                    "implementation {copy} answered otherwise: {}",
                    "a long explanation of what came back ".repeat(6)
                ));
                case.observation
                    .push(format!("GET /_matrix/client/v1/delayed_events/{copy} → 500 M_UNKNOWN {{errcode, error}}"));
            }
        }
        runs.push(run);
    }
    runs
}

/// The Markdown matrix fits a GitHub comment (65,536 characters): for the fixtures, and for ten
/// implementations; where the answers of differing rows do not all fit, it says where the rest is.
#[test]
fn markdown_matrix_fits_a_comment() {
    let fixtures = [fixture(PINNED), fixture(OLDER), fixture(FEATURE_OFF)];
    let text = matrix::render_markdown(&fixtures);
    let length = text.chars().count();
    assert!(
        length <= matrix::COMMENT_LIMIT,
        "the fixtures' Markdown matrix is {length} characters"
    );
    assert!(!text.contains("more rows differ"), "all differences fit");

    let runs = ten_implementations();
    let text = matrix::render_markdown_with(&runs, Some("matrix.html"));
    let length = text.chars().count();
    assert!(
        length <= matrix::COMMENT_LIMIT,
        "ten implementations' Markdown matrix is {length} characters"
    );
    // Every case has its row in the tables; the HTML keeps every answer.
    for case in &runs[0].cases {
        let name = case.id.rsplit('.').next().unwrap();
        assert!(text.contains(&format!("`{name}` ")), "{name} has no row");
    }
    assert!(text.contains("matrix.html"), "says where the full page is");
    let html = matrix::render_html(&runs);
    assert!(html.contains("a long explanation of what came back"));
}
