//! The CI script behind the GitHub Action and the GitLab template (`ci/run-suite`), run as GitHub
//! runs it: GITHUB_ACTIONS, GITHUB_STEP_SUMMARY, GITHUB_OUTPUT, RUNNER_TEMP and the workspace set
//! to temporary paths. The harness is a stand-in (`tests/support/stand-in-harness`) that keeps
//! the command-line contract the script relies on (`run` writing the reports it is asked for and
//! its own job summary, `diff` exiting 1 for a broken case), chosen through `DEC_BIN` as a
//! pipeline could choose another build of the harness.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

struct Job {
    workspace: tempfile::TempDir,
}

struct Finished {
    status: i32,
    stdout: String,
    stderr: String,
    summary: String,
    outputs: BTreeMap<String, String>,
}

impl Job {
    fn new() -> Self {
        Job {
            workspace: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.workspace.path().join(name)
    }

    /// Runs ci/run-suite with GitHub's environment plus `settings`, the stand-in failing the
    /// cases in `failing`.
    fn run(&self, failing: &[&str], settings: &[(&str, &str)]) -> Finished {
        let summary = self.path("step-summary.md");
        let outputs = self.path("github-output");
        let runner_temp = self.path("runner-temp");
        std::fs::create_dir_all(&runner_temp).unwrap();
        // Each run starts with fresh step files, as each step does on GitHub.
        let _ = std::fs::remove_file(&summary);
        let _ = std::fs::remove_file(&outputs);
        let mut command = Command::new(repo_file("ci/run-suite"));
        command
            .current_dir(self.workspace.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GITHUB_ACTIONS", "true")
            .env("CI", "true")
            .env("GITHUB_WORKSPACE", self.workspace.path())
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_OUTPUT", &outputs)
            .env("RUNNER_TEMP", &runner_temp)
            .env("DEC_BIN", repo_file("tests/support/stand-in-harness"))
            .env("STAND_IN_LOG", self.path("stand-in.log"))
            .env("STAND_IN_FAILING", failing.join(","));
        for (key, value) in settings {
            command.env(key, value);
        }
        let output = command.output().expect("ci/run-suite runs");
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        Finished {
            status: output.status.code().expect("exited, not killed"),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            summary: read(&summary),
            outputs: read(&outputs)
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

impl Finished {
    fn output(&self, key: &str) -> &str {
        self.outputs
            .get(key)
            .unwrap_or_else(|| panic!("no step output {key}: {:?}\n{}", self.outputs, self.log()))
    }

    fn log(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }
}

const IMAGE: (&str, &str) = ("DEC_IMAGE", "ghcr.io/example/myserver-complement:latest");
const FAILING_CASE: &str = "msc4140.cancellation.cancelled_event_is_never_sent";

#[test]
fn a_passing_run_passes_with_its_reports_summary_and_outputs() {
    let job = Job::new();
    // The action passes every input, so a secret left out arrives empty.
    let run = job.run(
        &[],
        &[
            IMAGE,
            ("DEC_ARGS", "--strict --area timing"),
            ("DEC_REGISTRATION_SHARED_SECRET", ""),
        ],
    );
    assert_eq!(run.status, 0, "{}", run.log());
    assert_eq!(run.output("gate"), "passed");
    assert_eq!(run.output("exit-code"), "0");
    assert_eq!(run.output("pass"), "3");
    assert_eq!(run.output("fail"), "0");
    for (key, file) in [
        ("results", "results.json"),
        ("junit", "junit.xml"),
        ("markdown", "report.md"),
        ("html", "report.html"),
    ] {
        let path = run.output(key);
        assert_eq!(path, format!("delayed-events-results/{file}"));
        assert!(job.path(path).is_file(), "{path} was not written");
    }
    // The run writes its own report into the summary: the script must not add it a second time.
    assert_eq!(
        run.summary.matches("## Delayed events conformance").count(),
        1,
        "{}",
        run.summary
    );
    let invocation = std::fs::read_to_string(job.path("stand-in.log")).unwrap();
    assert!(
        invocation
            .contains("--target container --image ghcr.io/example/myserver-complement:latest")
            && invocation.ends_with("--strict --area timing (without a secret)\n"),
        "the harness got: {invocation}"
    );
}

#[test]
fn a_failing_run_fails_the_job() {
    let job = Job::new();
    let run = job.run(
        &[FAILING_CASE],
        &[
            ("DEC_BASE_URL", "http://localhost:8008"),
            ("DEC_REGISTRATION_SHARED_SECRET", "s3cret-value"),
        ],
    );
    assert_eq!(run.status, 1, "{}", run.log());
    assert_eq!(run.output("gate"), "failed");
    assert_eq!(run.output("exit-code"), "1");
    assert_eq!(run.output("fail"), "1");
    assert!(run.summary.contains(&format!("`{FAILING_CASE}`: fail")));
    assert!(run
        .stdout
        .contains(&format!("::error title={FAILING_CASE}::")));
    // The secret reaches the harness through its environment, never its arguments, and GitHub is
    // told to mask it in the log.
    assert!(run.stdout.contains("::add-mask::s3cret-value"));
    let invocation = std::fs::read_to_string(job.path("stand-in.log")).unwrap();
    assert!(
        invocation.contains("--target url --base-url http://localhost:8008")
            && invocation.contains("(with a secret)")
            && !invocation.contains("s3cret"),
        "the harness got: {invocation}"
    );
}

#[test]
fn a_case_broken_against_the_baseline_fails_the_job() {
    let job = Job::new();
    let base = job.run(&[], &[IMAGE, ("DEC_OUTPUT_DIR", "base")]);
    assert_eq!(base.status, 0, "{}", base.log());
    let run = job.run(
        &[FAILING_CASE],
        &[IMAGE, ("DEC_BASELINE", "base/results.json")],
    );
    assert_eq!(run.status, 1, "{}", run.log());
    assert_eq!(run.output("gate"), "broken");
    assert_eq!(run.output("broken"), "true");
    assert_eq!(run.output("diff"), "delayed-events-results/diff.md");
    assert!(job.path("delayed-events-results/diff.md").is_file());
    assert!(
        run.summary.contains("### Against the baseline")
            && run
                .summary
                .contains(&format!("| broken | `{FAILING_CASE}` |")),
        "{}",
        run.summary
    );
    assert!(run
        .stdout
        .contains("::error title=delayed events conformance::cases broke against the baseline"));
}

#[test]
fn a_failure_the_baseline_already_had_does_not_block() {
    let job = Job::new();
    let base = job.run(&[FAILING_CASE], &[IMAGE, ("DEC_OUTPUT_DIR", "base")]);
    assert_eq!(base.status, 1, "{}", base.log());
    let run = job.run(
        &[FAILING_CASE],
        &[IMAGE, ("DEC_BASELINE", "base/results.json")],
    );
    assert_eq!(run.status, 0, "{}", run.log());
    assert_eq!(run.output("gate"), "passed");
    assert_eq!(run.output("broken"), "false");
}

#[test]
fn a_missing_baseline_gates_on_the_run_with_a_warning() {
    let job = Job::new();
    let run = job.run(&[FAILING_CASE], &[IMAGE, ("DEC_BASELINE", "none.json")]);
    assert_eq!(run.status, 1, "{}", run.log());
    assert_eq!(run.output("gate"), "failed");
    assert!(run.stdout.contains("::warning"), "{}", run.log());
}

#[test]
fn a_target_that_cannot_start_is_an_error_whatever_the_baseline() {
    let job = Job::new();
    let base = job.run(&[], &[IMAGE, ("DEC_OUTPUT_DIR", "base")]);
    assert_eq!(base.status, 0, "{}", base.log());
    let run = job.run(
        &[],
        &[
            IMAGE,
            ("DEC_BASELINE", "base/results.json"),
            ("STAND_IN_START_FAILS", "1"),
        ],
    );
    assert_eq!(run.status, 2, "{}", run.log());
    assert_eq!(run.output("gate"), "error");
    assert!(run.summary.contains("could not start the target"));
}

#[test]
fn bad_inputs_are_refused_with_what_to_give() {
    let job = Job::new();
    let none = job.run(&[], &[]);
    assert_eq!(none.status, 2, "{}", none.log());
    assert!(none.stdout.contains("give an image"), "{}", none.log());
    let both = job.run(&[], &[IMAGE, ("DEC_BASE_URL", "http://localhost:8008")]);
    assert_eq!(both.status, 2, "{}", both.log());
    assert!(both.stdout.contains("not both"), "{}", both.log());
    let expectations = job.run(&[], &[IMAGE, ("DEC_EXPECTATIONS", "missing.toml")]);
    assert_eq!(expectations.status, 2, "{}", expectations.log());
    assert!(expectations.stdout.contains("missing.toml does not exist"));
    assert!(
        !job.path("stand-in.log").exists(),
        "the harness ran despite bad inputs"
    );
}
