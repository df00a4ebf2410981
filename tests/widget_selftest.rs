//! Self-tests of the msc4157 (widget driver) suite: a stand-in driver
//! (`adapters/stand-in/main.rs`) in front of the fake homeserver. With no fault every case
//! passes; each fault fails exactly the cases declared for it (`support/stand_in_faults.rs`),
//! naming the requirement (checked by `support/fault_matrix.rs`). A driver that hangs, dies or
//! prints garbage ends its cases in `error`, and no driver process outlives its case.

mod support;

use dec_catalogue::msc4157::cases as widget_catalogue;
use dec_harness::api::FormOverride;
use dec_harness::client::http_client;
use dec_harness::ctx::Env;
use dec_harness::homeserver::Target;
use dec_harness::outcome::Outcome;
use dec_harness::results::CaseReport;
use dec_harness::runner::{run_concurrently, Targets};
use dec_harness::widget::DriverSpec;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use support::fake_homeserver::FakeOptions;
use support::fake_target::FakeTarget;
use support::fault_matrix::{self, assert_clean, describe};
use support::stand_in_faults::StandInFault;

const CASE_TIMEOUT: Duration = Duration::from_secs(60);
const PARALLEL_FAULT_RUNS: usize = 2;

fn stand_in(program: &str, fault: Option<&str>) -> DriverSpec {
    DriverSpec {
        label: format!("stand-in {}", fault.unwrap_or("")),
        program: program.into(),
        args: fault
            .map(|f| vec!["--fault".to_string(), f.to_string()])
            .unwrap_or_default(),
        init_on_content_load: true,
    }
}

/// Every msc4157 case, the stand-in (with `fault`) in front of a correct fake homeserver.
async fn run_widget_catalogue(fault: Option<&str>, only: Option<&str>) -> Vec<CaseReport> {
    run_with(support::stand_in::binary(), fault, only).await
}

async fn run_with(program: &str, fault: Option<&str>, only: Option<&str>) -> Vec<CaseReport> {
    run_spec(stand_in(program, fault), |id| {
        only.is_none_or(|only| id == only)
    })
    .await
}

async fn run_spec(spec: DriverSpec, selected: impl Fn(&str) -> bool) -> Vec<CaseReport> {
    let driver = Arc::new(spec);
    // A fake for most cases, and one with rate limits on for the cases that need them.
    let env = |rate_limits: bool| {
        let driver = driver.clone();
        async move {
            // Played as Synapse's worker deployment routes management (the body form on main
            // only), for `msc4157.deployment`; a longer restart of main than of a whole fake,
            // as a Synapse process takes, so a leave falls due while the body form is down.
            let fake = FakeTarget::start(FakeOptions {
                dedicated_endpoint: false,
                rate_limits,
                body_form_on_main: true,
                restart_downtime: Duration::from_secs(3),
                ..FakeOptions::default()
            })
            .await;
            let target: Arc<dyn Target> = Arc::new(fake);
            let mut env = Env::prepare(target, http_client(), FormOverride::default())
                .await
                .expect("the fake registers users");
            env.driver = Some(driver);
            Arc::new(env)
        }
    };
    let targets = Targets::single(env(false).await, Ok(env(true).await));
    let cases = widget_catalogue()
        .into_iter()
        .filter(|c| selected(c.id))
        .collect();
    run_concurrently(&targets, cases, CASE_TIMEOUT).await
}

/// Processes running `program` right now (live ones: a zombie has no exe link).
fn processes_of(program: &std::path::Path) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter(|e| std::fs::read_link(e.path().join("exe")).is_ok_and(|exe| exe == program))
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catalogue_passes_against_a_correct_stand_in() {
    assert_clean(
        &run_widget_catalogue(None, None).await,
        "correct stand-in",
        |_| false,
    );
}

/// The second mode: the driver starts the capability negotiation at once, without the widget's
/// `content_loaded` (`--driver-starts-at-once`); the handshake and sends work the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cases_pass_when_the_driver_starts_at_once() {
    let spec = DriverSpec {
        init_on_content_load: false,
        ..stand_in(support::stand_in::binary(), None)
    };
    let reports = run_spec(spec, |id| id.starts_with("msc4157.send.")).await;
    assert!(!reports.is_empty());
    assert_clean(&reports, "stand-in starting at once", |_| false);
}

/// Each `--fault` fails exactly the cases declared beside it (`support/stand_in_faults.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_fault_fails_exactly_the_cases_it_concerns() {
    // The deployment case restarts the fake's main process and takes turns with others; it
    // runs only with the faults that declare it, which keeps each fault's run short.
    let declared = StandInFault::declared;
    fault_matrix::check_each_fault(StandInFault::ALL, declared, PARALLEL_FAULT_RUNS, |fault| {
        let about_deployments = fault
            .declared()
            .breaks
            .iter()
            .any(|(case, _)| case.starts_with("msc4157.deployment."));
        run_spec(
            stand_in(support::stand_in::binary(), Some(fault.name())),
            move |id| about_deployments || !id.starts_with("msc4157.deployment."),
        )
    })
    .await;
}

#[test]
fn every_case_has_a_fault_that_fails_it() {
    let declared: Vec<_> = StandInFault::ALL.iter().map(|f| f.declared()).collect();
    fault_matrix::assert_every_case_covered(
        &declared,
        widget_catalogue().iter().map(|c| c.id),
        &[],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broken_driver_ends_the_case_in_error_and_leaves_nothing_running() {
    // A driver that exits is seen either by its exit or, when the harness writes first, by its
    // closed input: both name the driver's end.
    let broken: [(&str, &[&str]); 3] = [
        ("never-reply", &["did not reply to `send_event`"]),
        ("exit-after-hello", &["exited", "closed its input"]),
        ("garbage", &["not a JSON object"]),
    ];
    // A copy of its own, so that other tests' stand-ins do not count.
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("broken-stand-in");
    std::fs::copy(support::stand_in::binary(), &program).unwrap();
    let program_text = program.display().to_string();
    for (fault, phrase) in broken {
        let only = Some("msc4157.send.delayed_message");
        let reports = run_with(&program_text, Some(fault), only).await;
        let report = &reports[0];
        let message = report.message.as_deref().unwrap_or("");
        assert_eq!(
            report.outcome,
            Outcome::Error,
            "{fault}: {}",
            describe(report)
        );
        assert!(
            phrase.iter().any(|p| message.contains(p)),
            "{fault}: none of {phrase:?} in: {message}"
        );
        assert!(
            message.contains("widget driver log"),
            "{fault}: the driver's log tail is attached: {message}"
        );
    }
    // Killed on drop; give the kernel a moment to take them down.
    let mut left = processes_of(&program);
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        left = processes_of(&program);
    }
    assert!(
        left.is_empty(),
        "stand-in driver processes outlived their cases: {left:?}"
    );
}

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_delayed-events-conformance"))
}

#[test]
fn bad_driver_options_exit_2_with_what_to_do() {
    let runs: [(&[&str], &str); 3] = [
        (&["run", "--suite", "msc4157"], "give --driver"),
        (
            &["run", "--driver", "rust-sdk"],
            "--driver goes with --suite msc4157",
        ),
        (
            &[
                "run",
                "--suite",
                "msc4157",
                "--driver",
                "/no/such/driver --flag",
            ],
            "no program '/no/such/driver' found",
        ),
    ];
    for (args, phrase) in runs {
        let out = binary().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(phrase),
            "{args:?}: no '{phrase}' in {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_that_cannot_start_exits_2_with_its_output() {
    let fake = support::fake_homeserver::FakeHomeserver::start(FakeOptions::default()).await;
    let uri = fake.uri();
    let out = tokio::task::spawn_blocking(move || {
        binary()
            .args([
                "run",
                "--suite",
                "msc4157",
                "--target",
                "url",
                "--base-url",
                &uri,
            ])
            .args([
                "--registration-shared-secret",
                support::fake_homeserver::FakeHomeserver::SHARED_SECRET,
            ])
            .args([
                "--driver",
                &format!("{} --fault no-such-fault", support::stand_in::binary()),
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("could not start"), "{stderr}");
    assert!(
        stderr.contains("unknown fault no-such-fault"),
        "the driver's own words: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drivers_die_with_a_killed_harness() {
    let fake = support::fake_homeserver::FakeHomeserver::start(FakeOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("orphan-stand-in");
    std::fs::copy(support::stand_in::binary(), &program).unwrap();
    let mut harness = binary()
        .args(["run", "--quiet", "--suite", "msc4157", "--target", "url"])
        .args(["--base-url", &fake.uri(), "--registration-shared-secret"])
        .arg(support::fake_homeserver::FakeHomeserver::SHARED_SECRET)
        .args([
            "--driver",
            &format!("{} --fault never-reply", program.display()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the cases' drivers run (each then waits for a reply that never comes).
    let started = std::time::Instant::now();
    while processes_of(&program).len() < 2 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !processes_of(&program).is_empty(),
        "the drivers never started"
    );
    harness.kill().unwrap(); // SIGKILL: no destructor runs
    harness.wait().unwrap();
    let mut left = processes_of(&program);
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = processes_of(&program);
    }
    assert!(
        left.is_empty(),
        "drivers outlived the killed harness: {left:?}"
    );
}
