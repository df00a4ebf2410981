//! The `load` command against the fake homeserver: a correct server gives clean figures, and each
//! field bug the figures are there to catch shows up in the figure that names it. Earlier
//! reports beside this run's (`--beside`): the page on two real reports, and bad files refused.

mod support;

use serde_json::Value;
use support::fake_homeserver::{FakeHomeserver, FakeOptions, Fault};

const BINARY: &str = env!("CARGO_BIN_EXE_delayed-events-conformance");

/// One small workload (30 events, two call members) against a fake with `faults`; its figures.
async fn figures_with(faults: &[Fault]) -> Value {
    let mut opts = FakeOptions::default();
    opts.faults.extend(faults.iter().copied());
    let fake = FakeHomeserver::start(opts).await;
    let json = tempfile::NamedTempFile::new().unwrap();
    let output = tokio::process::Command::new(BINARY)
        .args(["load", "--target", "url", "--base-url", &fake.uri()])
        .args([
            "--registration-shared-secret",
            FakeHomeserver::SHARED_SECRET,
        ])
        .args([
            "--events", "30", "--delay", "1s", "--spread", "300ms", "--manage", "0.2",
        ])
        .args([
            "--heartbeaters",
            "2",
            "--heartbeat-every",
            "200ms",
            "--heartbeat-for",
            "2s",
        ])
        .arg("--json")
        .arg(json.path())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "load failed: {stderr}");
    assert!(
        !stderr.contains(FakeHomeserver::SHARED_SECRET),
        "the shared secret was printed"
    );
    let report: Value = serde_json::from_slice(&std::fs::read(json.path()).unwrap()).unwrap();
    report["runs"][0].clone()
}

fn count(figures: &Value, name: &str) -> u64 {
    figures[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no {name} in {figures}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_correct_server_delivers_everything_once_and_on_time() {
    let f = figures_with(&[]).await;
    // 30 events (3 cancelled, 3 sent at once) and two hang-ups.
    assert_eq!(count(&f, "scheduled"), 32, "{f}");
    assert_eq!(count(&f, "cancelled"), 3, "{f}");
    assert_eq!(count(&f, "sent_now"), 3, "{f}");
    assert_eq!(count(&f, "delivered_once"), 29, "{f}");
    for bad in [
        "lost",
        "duplicated",
        "early",
        "sent_despite_cancel",
        "hung_up_early",
    ] {
        assert_eq!(count(&f, bad), 0, "{bad}: {f}");
    }
    assert!(count(&f, "heartbeats") >= 10, "{f}");
    assert_eq!(f["lateness_ms"]["count"], 29, "{f}");
    assert!(f["harness_cpu_ms"].as_u64().is_some(), "{f}");
}

#[tokio::test(flavor = "multi_thread")]
async fn events_sent_early_are_counted_as_early() {
    // The fake sends 200 ms early; the harness proves it for events whose scheduling request
    // took less than that, which on a busy machine need not be all of them.
    let f = figures_with(&[Fault::SendEarly]).await;
    assert!(count(&f, "early") > 0, "{f}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelled_events_that_are_sent_are_counted() {
    let f = figures_with(&[Fault::IgnoreCancel]).await;
    assert_eq!(count(&f, "sent_despite_cancel"), 3, "{f}");
}

#[tokio::test(flavor = "multi_thread")]
async fn events_sent_twice_are_counted_as_duplicated() {
    let f = figures_with(&[Fault::SendActionTwice]).await;
    assert_eq!(count(&f, "duplicated"), 3, "{f}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ignored_heartbeats_hang_up_early() {
    let f = figures_with(&[Fault::RestartNoop]).await;
    assert_eq!(count(&f, "hung_up_early"), 2, "{f}");
}

#[test]
fn bad_workloads_are_refused_with_exit_status_2() {
    for args in [
        &["load", "--events", "0"][..],
        &["load", "--sweep", "10,999999"][..],
        &["load", "--manage", "1.5"][..],
        &["load", "--target", "url"][..],
    ] {
        let output = std::process::Command::new(BINARY)
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// Two real `load --json` files (tests/fixtures/): the managed Synapse on SQLite and on PostgreSQL.
const SQLITE: &str = "load-synapse-1.163.2-sqlite.json";
const POSTGRES: &str = "load-synapse-1.163.2-postgres.json";

fn fixture_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A page to review: the style left out, a line per block, and each plot reduced to its texts
/// (axes, ticks) and the colours of its lines.
fn reviewable(page: &str) -> String {
    let mut out = String::new();
    let mut rest = page;
    while let Some(start) = rest.find("<svg") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("</svg>").expect("an SVG ends") + start;
        let svg = &rest[start..end];
        let texts: Vec<&str> = svg
            .split("<text")
            .skip(1)
            .filter_map(|t| t.split_once('>'))
            .map(|(_, t)| t.split("</text>").next().unwrap_or("").trim())
            .filter(|t| !t.is_empty())
            .collect();
        let mut colours: Vec<&str> = svg
            .split("<polyline")
            .skip(1)
            .filter_map(|p| p.split_once("stroke=\"")?.1.split('"').next())
            .collect();
        colours.dedup();
        out.push_str(&format!(
            "[plot: {}; lines: {}]",
            texts.join(" | "),
            colours.join(", ")
        ));
        rest = &rest[end + "</svg>".len()..];
    }
    out.push_str(rest);
    let style = (out.find("<style>").unwrap(), out.find("</style>").unwrap());
    out.replace_range(style.0 + "<style>".len()..style.1, "…");
    for tag in [
        "<header", "<ul", "<li", "<p", "<section", "<figure", "<table", "<thead", "<tbody", "<tr",
        "<footer",
    ] {
        out = out.replace(tag, &format!("\n{tag}"));
    }
    out
}

#[test]
fn the_page_sets_earlier_reports_beside_this_run() {
    use dec_harness::load::{render, Beside};
    let this = Beside::read(&fixture_path(POSTGRES)).unwrap();
    let single = Beside::read(&fixture_path(SQLITE)).unwrap();
    let single = Beside {
        path: SQLITE.into(),
        ..single
    };
    let page = render::html(&this.report, &[single]);
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("load-side-by-side", reviewable(&page));
    });
}

#[test]
fn a_bad_beside_file_is_refused_before_the_target_starts() {
    let not_json = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_json.path(), "events: 100").unwrap();
    let results = fixture_path("synapse-1.163.2.json");
    let html = std::env::temp_dir().join("dec-load-beside-test.html");
    for (file, says) in [
        (
            std::path::PathBuf::from("/nonexistent/load.json"),
            "cannot read /nonexistent/load.json",
        ),
        (not_json.path().to_path_buf(), "is not JSON"),
        (results, "is the results file of a `run`, not of `load`"),
    ] {
        // Nothing listens on port 9: a target start would fail with another message.
        let output = std::process::Command::new(BINARY)
            .args([
                "load",
                "--target",
                "url",
                "--base-url",
                "http://127.0.0.1:9",
            ])
            .arg("--beside")
            .arg(&file)
            .arg("--html")
            .arg(&html)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{file:?}: {stderr}");
        assert!(stderr.contains("--beside"), "{file:?}: {stderr}");
        assert!(stderr.contains(says), "{file:?}: {stderr}");
        assert!(stderr.contains("load --json FILE"), "{file:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{file:?}: {stderr}");
        assert!(!html.exists(), "no page for a refused run");
    }
    // The comparison is a page: without --html there is nowhere to show it.
    let output = std::process::Command::new(BINARY)
        .args(["load", "--beside"])
        .arg(fixture_path(SQLITE))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--html"), "{stderr}");
}
