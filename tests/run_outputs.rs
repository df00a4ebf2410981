//! What `run` writes besides the terminal, through the real binary against the fake homeserver
//! with one fault switched on: the JSON, JUnit, Markdown and HTML reports; in GitHub Actions the
//! job summary (appended without being asked) and one `::error` annotation per unexpected failure;
//! and never the registration secret or an access token.

mod support;

use dec_harness::results::RunReport;
use std::path::Path;
use support::fake_homeserver::{FakeHomeserver, FakeOptions, Fault};

const BINARY: &str = env!("CARGO_BIN_EXE_delayed-events-conformance");

async fn run_cancellation_cases(fake: &FakeHomeserver, dir: &Path, github: bool) -> (i32, String) {
    let mut command = tokio::process::Command::new(BINARY);
    command
        .args(["run", "--target", "url", "--base-url"])
        .arg(fake.uri())
        .args(["--area", "cancellation"])
        .args(["--json", "results.json", "--junit", "junit.xml"])
        .args(["--markdown", "report.md", "--html", "report.html"])
        .current_dir(dir)
        .env(
            "DEC_REGISTRATION_SHARED_SECRET",
            FakeHomeserver::SHARED_SECRET,
        )
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY");
    if github {
        command
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", dir.join("summary.md"));
    }
    let output = command.output().await.unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_writes_every_report_and_the_github_outputs() {
    let fake = FakeHomeserver::start(FakeOptions::with_fault(Fault::IgnoreCancel)).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("summary.md"), "earlier step\n").unwrap();
    let (code, stdout) = run_cancellation_cases(&fake, dir.path(), true).await;
    assert_eq!(code, 1, "a MUST case fails: {stdout}");

    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    let results = RunReport::load(&dir.path().join("results.json")).unwrap();
    let broken = "msc4140.cancellation.cancelled_event_is_never_sent";
    let case = results.cases.iter().find(|c| c.id == broken).unwrap();
    assert_eq!(case.outcome.as_str(), "fail");
    assert!(!case.observation.is_empty(), "the observation is recorded");

    let junit = quick_junit::Report::deserialize_from_str(&read("junit.xml")).unwrap();
    let in_junit: usize = junit.test_suites.iter().map(|s| s.test_cases.len()).sum();
    assert_eq!(in_junit, results.cases.len());

    let markdown = read("report.md");
    assert!(markdown.contains(&format!("`{broken}`")), "{markdown}");
    let summary = read("summary.md");
    assert!(
        summary.starts_with("earlier step\n") && summary.ends_with(&markdown),
        "the job summary is appended: {summary}"
    );
    assert!(read("report.html").contains(broken));

    let annotation = format!("::error title={broken}::");
    assert!(stdout.contains(&annotation), "{stdout}");
    let annotations = stdout.lines().filter(|l| l.starts_with("::error ")).count();
    let unexpected = results
        .cases
        .iter()
        .filter(|c| c.is_unexpected_failure())
        .count();
    assert_eq!(
        annotations, unexpected,
        "one annotation per unexpected failure"
    );

    for name in [
        "results.json",
        "junit.xml",
        "report.md",
        "report.html",
        "summary.md",
    ] {
        let text = read(name);
        assert!(
            !text.contains(FakeHomeserver::SHARED_SECRET),
            "{name} shows the registration secret"
        );
        assert!(!text.contains("Bearer "), "{name} shows an access token");
    }
    assert!(!stdout.contains(FakeHomeserver::SHARED_SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_github_actions_there_are_no_annotations() {
    let fake = FakeHomeserver::start(FakeOptions::with_fault(Fault::IgnoreCancel)).await;
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout) = run_cancellation_cases(&fake, dir.path(), false).await;
    assert_eq!(code, 1);
    assert!(!stdout.contains("::error"), "{stdout}");
    assert!(!dir.path().join("summary.md").exists());
}
