//! `--synapse-workers N`: the managed Synapse as a main process and generic workers, Redis
//! between them and nginx in front, on a private PostgreSQL cluster. Timing, restart-action and
//! homeserver-restart cases pass there, the results record the topology, and nothing of the
//! deployment outlives a run, finished or interrupted. Where nginx, redis-server or PostgreSQL
//! is missing, each test prints a SKIPPED line (`.ci/run` installs them).

#[path = "support/faulty_deployments.rs"]
mod faulty_deployments;

#[path = "support/local_services.rs"]
mod local_services;

use faulty_deployments::{FaultyDeployment, FAULTY_DEPLOYMENTS};
use local_services::{
    alone, assert_results_clean, installed, postgres_installed, private_tmpdir, run_dirs,
};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// True, after a SKIPPED line on stderr naming what is missing, where the deployment cannot run.
fn skipped(test: &str) -> bool {
    let mut missing = Vec::new();
    if !installed("nginx") {
        missing.push("nginx (apt install nginx)");
    }
    if !installed("redis-server") {
        missing.push("redis-server (apt install redis-server)");
    }
    if !postgres_installed() {
        missing.push("PostgreSQL's initdb (apt install postgresql)");
    }
    if missing.is_empty() {
        return false;
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: not installed: {}; --synapse-workers is untested",
        missing.join(", ")
    );
    true
}

/// The harness running `args` with its TMPDIR in `tmpdir`, stdout piped, stderr to a file there.
fn start_harness(tmpdir: &Path, args: &[&str]) -> Child {
    let stderr = std::fs::File::create(tmpdir.join("stderr.txt")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_delayed-events-conformance"))
        .env("TMPDIR", tmpdir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("the harness binary runs")
}

/// A process as `/proc` knows it: pid, start time (so a reused pid is not mistaken for it), and
/// its command line.
#[derive(Clone, Debug, PartialEq)]
struct Process {
    pid: u32,
    started: u64,
    command: String,
}

fn process(pid: u32) -> Option<(Process, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name in parentheses: state, ppid, ... starttime is the 20th of these.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let parent = fields.get(1)?.parse().ok()?;
    let started = fields.get(19)?.parse().ok()?;
    let command = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let command = String::from_utf8_lossy(&command).replace('\0', " ");
    Some((
        Process {
            pid,
            started,
            command,
        },
        parent,
    ))
}

/// Every process descended from `root` (not `root` itself).
fn descendants(root: u32) -> Vec<Process> {
    let all: Vec<(Process, u32)> = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
                .filter_map(process)
                .collect()
        })
        .unwrap_or_default();
    let mut found: Vec<Process> = Vec::new();
    let mut parents = vec![root];
    while let Some(parent) = parents.pop() {
        for (child, _) in all.iter().filter(|(_, ppid)| *ppid == parent) {
            parents.push(child.pid);
            found.push(child.clone());
        }
    }
    found
}

fn still_running(process: &Process) -> bool {
    self::process(process.pid).is_some_and(|(now, _)| now.started == process.started)
}

/// Reads the harness's output until its cases are running (libtest-mimic's `running N tests`),
/// then lists every process it has started by then. The output up to there is in `seen`.
fn processes_once_running(child: &mut Child, seen: &mut Vec<String>) -> Vec<Process> {
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = stdout.lines();
    for line in lines.by_ref() {
        let line = line.unwrap_or_default();
        let running = line.starts_with("running ");
        seen.push(line);
        if running {
            break;
        }
    }
    let during = descendants(child.id());
    // Keep reading, so the harness never blocks on a full pipe.
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    during
}

/// The harness's output so far and its stderr (in `tmpdir`), for messages.
/// A harness run to its end: its exit status, the processes it ran once it said `running`, and
/// its output for assertion messages.
struct Finished {
    status: std::process::ExitStatus,
    during: Vec<Process>,
    context: String,
}

fn run_to_end(tmpdir: &Path, args: &[&str]) -> Finished {
    let mut child = start_harness(tmpdir, args);
    let mut seen = Vec::new();
    let during = processes_once_running(&mut child, &mut seen);
    let status = child.wait().unwrap();
    let context = output(tmpdir, &seen);
    Finished {
        status,
        during,
        context,
    }
}

fn output(tmpdir: &Path, seen: &[String]) -> String {
    let stderr = std::fs::read_to_string(tmpdir.join("stderr.txt")).unwrap_or_default();
    format!("output:\n{}\nstderr:\n{stderr}", seen.join("\n"))
}

/// None of `during` still runs (waiting a bounded time for exits already under way), and no
/// run directory is left in `tmpdir`.
fn assert_nothing_left(during: &[Process], tmpdir: &Path, after: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let left = || -> Vec<&Process> { during.iter().filter(|p| still_running(p)).collect() };
    while !left().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(left().is_empty(), "processes left {after}: {:#?}", left());
    let dirs = run_dirs(tmpdir);
    assert!(dirs.is_empty(), "run directories left {after}: {dirs:?}");
}

/// What the deployment must have started: PostgreSQL, Redis, nginx and three Synapse processes.
fn assert_deployment_ran(during: &[Process], context: &str) {
    let count = |needle: &str| during.iter().filter(|p| p.command.contains(needle)).count();
    let found = [
        ("postgres", count("postgres")),
        ("redis-server", count("redis-server")),
        ("nginx", count("nginx")),
        ("synapse.app.homeserver", count("synapse.app.homeserver")),
        (
            "synapse.app.generic_worker",
            count("synapse.app.generic_worker"),
        ),
    ];
    let expected = [1, 1, 1, 1, 2];
    for ((what, n), least) in found.iter().zip(expected) {
        assert!(
            *n >= least,
            "{what}: {n} processes of the run, expected at least {least}\n{context}\n{during:#?}"
        );
    }
}

#[test]
fn timing_restart_and_persistence_pass_behind_workers_and_the_results_say_so() {
    let test = "timing_restart_and_persistence_pass_behind_workers_and_the_results_say_so";
    if skipped(test) {
        return;
    }
    let _alone = alone();
    let tmpdir = private_tmpdir();
    let results = tmpdir.path().join("results.json");
    let Finished {
        status,
        during,
        context,
    } = run_to_end(
        tmpdir.path(),
        &[
            "run",
            "--synapse-workers",
            "2",
            "--area",
            "timing",
            "--area",
            "restart",
            "--area",
            "persistence",
            "--spawn-timeout",
            "120s",
            "--json",
            results.to_str().unwrap(),
        ],
    );
    assert_eq!(status.code(), Some(0), "exit status\n{context}");
    assert_deployment_ran(&during, &context);
    assert_results_clean(
        &results,
        serde_json::json!({"database": "postgres", "workers": 2, "proxy": "nginx"}),
        &["timing", "restart", "persistence"],
    );
    assert_nothing_left(&during, tmpdir.path(), "after the run");
}

#[test]
fn nothing_of_the_deployment_outlives_an_interrupted_run() {
    let test = "nothing_of_the_deployment_outlives_an_interrupted_run";
    if skipped(test) {
        return;
    }
    let _alone = alone();
    let tmpdir = private_tmpdir();
    let mut child = start_harness(
        tmpdir.path(),
        &[
            "run",
            "--synapse-workers",
            "2",
            "--area",
            "timing",
            "--spawn-timeout",
            "120s",
        ],
    );
    let mut seen = Vec::new();
    let during = processes_once_running(&mut child, &mut seen);
    assert_deployment_ran(&during, &output(tmpdir.path(), &seen));
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "an interrupted run exits 130");
    assert_nothing_left(&during, tmpdir.path(), "after Ctrl-C");
}

/// The deployment cases fail where the deployment is at fault: the fake homeserver cannot play
/// workers, so each case runs behind a real deployment whose proxy is misconfigured on purpose
/// (the hidden `--synapse-deployment-fault`), and must fail naming what went wrong.
#[test]
fn each_deployment_case_fails_behind_its_faulty_proxy() {
    let test = "each_deployment_case_fails_behind_its_faulty_proxy";
    if skipped(test) {
        return;
    }
    let _alone = alone();
    for FaultyDeployment { fault, case, says } in FAULTY_DEPLOYMENTS {
        let tmpdir = private_tmpdir();
        let results = tmpdir.path().join("results.json");
        let Finished {
            status,
            during,
            context,
        } = run_to_end(
            tmpdir.path(),
            &[
                "run",
                "--synapse-workers",
                "2",
                "--synapse-deployment-fault",
                fault,
                "--filter",
                case,
                "--exact",
                "--no-expectations",
                "--spawn-timeout",
                "120s",
                "--json",
                results.to_str().unwrap(),
            ],
        );
        let context = format!("{fault} / {case}\n{context}");
        // An INFO case's failure does not fail the run: its outcome is what counts.
        assert!(
            matches!(status.code(), Some(0 | 1)),
            "exit status {status}\n{context}"
        );
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
        let cases = report["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 1, "{context}");
        let message = cases[0]["message"].as_str().unwrap_or("");
        assert_eq!(cases[0]["outcome"], "fail", "{message}\n{context}");
        assert!(
            message.contains(says),
            "{fault}: {message:?} lacks {says:?}"
        );
        assert_nothing_left(&during, tmpdir.path(), "after the run");
    }
}
