//! `--synapse-database postgres`: the managed Synapse on a private PostgreSQL cluster. Cases that
//! restart the server and time deliveries pass there too, the results say which database it
//! was, and nothing of the cluster outlives a run, finished or interrupted. Where PostgreSQL is
//! not installed, each test prints a SKIPPED line (`.ci/run` installs it).

#[path = "support/local_services.rs"]
mod local_services;

use local_services::{alone, assert_results_clean, postgres_installed, private_tmpdir, run_dirs};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// True, after a SKIPPED line on stderr, where PostgreSQL is missing.
fn skipped(test: &str) -> bool {
    if postgres_installed() {
        return false;
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: PostgreSQL is not installed (no initdb on PATH or in \
         /usr/lib/postgresql/*/bin; `apt install postgresql`), so --synapse-database postgres \
         is untested"
    );
    true
}

fn harness(tmpdir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_delayed-events-conformance"));
    command.env("TMPDIR", tmpdir);
    command
}

/// Processes whose command line names `dir` (PostgreSQL's data directory and Synapse's
/// configuration are under it), as `pid: command line`.
fn processes_naming(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline
                .contains(&needle)
                .then(|| format!("{}: {cmdline}", entry.file_name().to_string_lossy()))
        })
        .collect()
}

/// Nothing of the run is left: no process naming its TMPDIR (waiting a bounded time for exits
/// already under way), no run directory.
fn assert_nothing_left(tmpdir: &Path, after: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut left = processes_naming(tmpdir);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left = processes_naming(tmpdir);
    }
    assert!(
        left.is_empty(),
        "processes left {after}:\n{}",
        left.join("\n")
    );
    let dirs = run_dirs(tmpdir);
    assert!(dirs.is_empty(), "run directories left {after}: {dirs:?}");
}

#[test]
fn restart_and_timing_cases_pass_on_postgres_and_the_results_say_so() {
    let test = "restart_and_timing_cases_pass_on_postgres_and_the_results_say_so";
    if skipped(test) {
        return;
    }
    let _alone = alone();
    let tmpdir = private_tmpdir();
    let results = tmpdir.path().join("results.json");
    let output = harness(tmpdir.path())
        .args([
            "run",
            "--quiet",
            "--synapse-database",
            "postgres",
            "--area",
            "restart",
            "--area",
            "persistence",
            "--area",
            "timing",
            "--json",
        ])
        .arg(&results)
        .output()
        .expect("the harness binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "exit status\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_results_clean(
        &results,
        serde_json::json!({"database": "postgres"}),
        &["restart", "persistence", "timing"],
    );
    assert_nothing_left(tmpdir.path(), "after the run");
}

#[test]
fn nothing_of_the_cluster_outlives_an_interrupted_run() {
    let test = "nothing_of_the_cluster_outlives_an_interrupted_run";
    if skipped(test) {
        return;
    }
    let _alone = alone();
    let tmpdir = private_tmpdir();
    let stderr_file = tmpdir.path().join("stderr.txt");
    let mut child = harness(tmpdir.path())
        .args([
            "run",
            "--synapse-database",
            "postgres",
            "--synapse-instances",
            "2",
            "--area",
            "timing",
        ])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_file).unwrap())
        .spawn()
        .expect("the harness binary runs");
    // The cases are running once libtest-mimic says so: every process of the run is up.
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap_or_default();
        let running = line.starts_with("running ");
        seen.push(line);
        if running {
            break;
        }
    }
    let during = processes_naming(tmpdir.path());
    assert!(
        during.iter().any(|p| p.contains("postgres")),
        "no PostgreSQL process of the run while its cases ran; output:\n{}\nstderr:\n{}\n\
         processes:\n{}",
        seen.join("\n"),
        std::fs::read_to_string(&stderr_file).unwrap_or_default(),
        during.join("\n")
    );
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "an interrupted run exits 130");
    assert_nothing_left(tmpdir.path(), "after Ctrl-C");

    // And a run that ends normally leaves nothing either.
    let output = harness(tmpdir.path())
        .args([
            "run",
            "--quiet",
            "--synapse-database",
            "postgres",
            "--synapse-instances",
            "1",
            "--filter",
            "msc4140.timing.message_not_sent_early",
            "--exact",
        ])
        .output()
        .expect("the harness binary runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_nothing_left(tmpdir.path(), "after a finished run");
}
