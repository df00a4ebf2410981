//! `load`: delivery and lateness of delayed events under load, and how they grow with it. Runs
//! one workload, or a sweep of growing ones, against the target (only ever the managed server on
//! loopback or the given URL), bounded in count and time. Ctrl-C prints the figures so far.

mod beside;
mod figures;
mod plot;
pub mod render;
mod side_by_side;
mod workload;

pub use beside::Beside;
pub use figures::{Figures, Percentiles};
pub use workload::Workload;

use crate::args::{check_writable, write_file as write, LoadArgs, UsageError};
use crate::ctx::Env;
use crate::homeserver::TargetInfo;
use crate::interrupt::interrupt_signal;
use crate::results::Harness;
use crate::startup::{self, start_target};
use serde::{Deserialize, Serialize};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The most delayed events one workload may schedule.
pub const MAX_EVENTS: usize = 20_000;
/// Events per user when the server advertises no per-user limit.
const DEFAULT_EVENTS_PER_USER: usize = 20;

/// The schema of what `load --json` writes; `--beside` reads only this one.
pub const SCHEMA: u32 = 1;

/// What `load --json` writes, and `--beside` reads back.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadReport {
    pub schema: u32,
    pub kind: String,
    pub harness: Harness,
    pub target: TargetInfo,
    pub api_form: String,
    pub started_at: String,
    pub interrupted: bool,
    pub runs: Vec<Figures>,
}

pub(crate) fn load(args: LoadArgs) -> Result<ExitCode, UsageError> {
    let sizes = match &args.sweep {
        Some(sizes) => sizes.clone(),
        None => vec![args.events],
    };
    if let Some(too_many) = sizes.iter().find(|n| **n == 0 || **n > MAX_EVENTS) {
        return Err(UsageError(format!(
            "a workload has between 1 and {MAX_EVENTS} delayed events, not {too_many}"
        )));
    }
    if !(0.0..=1.0).contains(&args.manage) {
        return Err(UsageError("--manage is a share between 0 and 1".into()));
    }
    if args.heartbeaters > 0 && args.heartbeat_every.is_zero() {
        return Err(UsageError(
            "--heartbeat-every must be longer than zero".into(),
        ));
    }
    args.server.validate()?;
    for path in [&args.json, &args.html].into_iter().flatten() {
        check_writable(path)?;
    }
    let runtime = startup::runtime(&args.server)?;
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let http = crate::client::http_client();

    // An interrupt during start-up drops the start, which removes what it made.
    let target = runtime.block_on(async {
        tokio::select! {
            target = start_target(&args.server, &http) => target.map(Some),
            _ = interrupt_signal() => Ok(None),
        }
    })?;
    let Some(target) = target else {
        return Ok(ExitCode::from(130));
    };
    let stop = Arc::new(AtomicBool::new(false));
    let profiled = runtime.block_on(async {
        let forced = args.server.api_form.unwrap_or_default();
        let env = Env::prepare(target.clone(), http.clone(), forced).await?;
        let per_user = args.events_per_user.unwrap_or_else(|| {
            env.features
                .capability_field("max_scheduled")
                .filter(|n| *n > 0)
                .map_or(DEFAULT_EVENTS_PER_USER, |n| n as usize)
        });
        let info = target.info();
        eprintln!(
            "load: {} {} at {} · API form: {} · up to {per_user} events per user",
            info.name,
            info.version.as_deref().unwrap_or(""),
            info.base_url,
            env.form
        );
        // Ctrl-C stops the workload where it is; its figures so far are still taken.
        let interrupted = Arc::new(AtomicBool::new(false));
        let watcher = tokio::spawn({
            let (stop, interrupted) = (stop.clone(), interrupted.clone());
            async move {
                interrupt_signal().await;
                eprintln!("\ninterrupted: stopping the workload");
                interrupted.store(true, Ordering::SeqCst);
                stop.store(true, Ordering::SeqCst);
            }
        });
        let deadline = Instant::now() + args.max_duration;
        let runs = sweep(&env, &args, &sizes, per_user, &stop, deadline).await;
        watcher.abort();
        let runs = runs?;
        let interrupted = interrupted.load(Ordering::SeqCst);
        Ok::<_, String>((env.form.to_string(), interrupted, runs))
    });
    stop.store(true, Ordering::SeqCst);
    let info = target.info();
    runtime.block_on(target.shutdown());
    let (api_form, interrupted, runs) = profiled.map_err(UsageError)?;
    if interrupted {
        eprintln!("\ninterrupted: the figures gathered so far");
    }
    let report = LoadReport {
        schema: SCHEMA,
        kind: "load".into(),
        harness: Harness::default(),
        target: info,
        api_form,
        started_at,
        interrupted,
        runs,
    };
    print!("{}", render::table(&report));
    for other in &args.beside {
        println!(
            "beside it in the HTML page: {} ({}, {} workloads, started {})",
            other.report.label(),
            other.path.display(),
            other.report.runs.len(),
            other.report.started_at
        );
    }
    let all = std::iter::once(&report).chain(args.beside.iter().map(|b| &b.report));
    if let Some(warning) = side_by_side::workloads_differ(all) {
        eprintln!("load: {warning}");
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).expect("figures serialise");
        write(path, &text)?;
    }
    if let Some(path) = &args.html {
        write(path, &render::html(&report, &args.beside))?;
    }
    Ok(if interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs the workloads one after the other, until done, stopped or past the deadline.
async fn sweep(
    env: &Env,
    args: &LoadArgs,
    sizes: &[usize],
    per_user: usize,
    stop: &Arc<AtomicBool>,
    deadline: Instant,
) -> Result<Vec<Figures>, String> {
    let mut runs = Vec::new();
    for &events in sizes {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if Instant::now() >= deadline {
            eprintln!("load: --max-duration reached; the larger workloads did not run");
            break;
        }
        let workload = Workload {
            events,
            events_per_user: per_user,
            delay: args.delay,
            spread: args.spread,
            heartbeaters: args.heartbeaters,
            heartbeat_every: args.heartbeat_every,
            heartbeat_for: args.heartbeat_for,
            manage_fraction: args.manage,
            in_flight: args.in_flight,
        };
        eprintln!(
            "load: {events} delayed events across {} users, {} call members ...",
            workload.users(),
            workload.heartbeaters
        );
        let ledger = Arc::new(Mutex::new(workload::Ledger::default()));
        let clock = Instant::now();
        let harness_cpu = figures::harness_cpu_time();
        let server_cpu = env.target.server_cpu_time().await;
        workload::run(env, &workload, ledger.clone(), stop.clone(), deadline)
            .await
            .map_err(|e| format!("the workload of {events} events broke: {}", e.message()))?;
        let server_cpu = match (env.target.server_cpu_time().await, server_cpu) {
            (Some(now), Some(before)) => Some(now.saturating_sub(before)),
            _ => None,
        };
        let harness_cpu = figures::harness_cpu_time().saturating_sub(harness_cpu);
        let ledger = ledger.lock().unwrap();
        runs.push(Figures::of(
            &workload,
            &ledger,
            clock.elapsed(),
            harness_cpu,
            server_cpu,
        ));
    }
    Ok(runs)
}

/// The worker deployment's topology, for the tests: PostgreSQL, 2 workers, nginx.
#[cfg(test)]
pub(crate) fn workers() -> crate::homeserver::Topology {
    crate::homeserver::Topology {
        database: crate::homeserver::Database::Postgres,
        workers: 2,
        proxy: Some("nginx".into()),
    }
}

/// A small load report for the tests: two workloads, `late_ms` the lateness of the first.
#[cfg(test)]
pub(crate) fn sample_report(
    topology: Option<crate::homeserver::Topology>,
    late_ms: f64,
) -> LoadReport {
    let run = |events: usize, late_ms: f64| Figures {
        events,
        users: events / 20,
        delay_ms: 3000,
        spread_ms: 2000,
        scheduled: events,
        delivered_once: events,
        lateness_ms: Percentiles {
            count: events,
            p50: late_ms,
            p90: late_ms * 2.0,
            p99: late_ms * 3.0,
            max: late_ms * 4.0,
        },
        request_ms: [(
            "schedule".to_string(),
            Percentiles {
                count: events,
                p50: 20.0,
                p90: 40.0,
                p99: 80.0,
                max: 90.0,
            },
        )]
        .into(),
        ..Figures::default()
    };
    LoadReport {
        schema: SCHEMA,
        kind: "load".into(),
        harness: Harness::default(),
        target: TargetInfo {
            kind: "synapse".into(),
            name: "Synapse".into(),
            version: Some("1.163.2".into()),
            base_url: "http://127.0.0.1:8008".into(),
            topology,
            ..TargetInfo::default()
        },
        api_form: "query-param, split-path, unstable".into(),
        started_at: "2026-12-05T01:00:00Z".into(),
        interrupted: false,
        runs: vec![run(100, late_ms), run(1000, late_ms * 10.0)],
    }
}
