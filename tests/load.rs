//! The `load` command against the fake homeserver: a correct server gives clean figures, and each
//! field bug the figures are there to catch shows up in the figure that names it.

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
