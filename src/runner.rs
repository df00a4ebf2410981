//! Runs cases as libtest-mimic trials (cargo-test style output, filtering, listing) on a shared
//! tokio runtime: each trial blocks its libtest thread on the case's future, so `concurrency`
//! libtest threads means that many cases in flight. Cases that restart the homeserver share
//! restarts (see `phase.rs`): on an instance of their own, beside the others, where the target
//! has one; else in a phase of their own on the main instance, after all others.

use crate::case::{Case, Need};
use crate::ctx::{Ctx, Env};
use crate::expectations::Expectations;
use crate::outcome::Outcome;
use crate::phase::PhaseGate;
use crate::results::CaseReport;
use crate::spec::Level;
use futures::FutureExt;
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use std::io::IsTerminal;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lines of the server log attached to a failing case.
const LOG_TAIL_LINES: usize = 20;

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub filter: Option<String>,
    pub skip: Vec<String>,
    pub exact: bool,
    pub strict: bool,
    pub concurrency: usize,
    pub case_timeout: Duration,
    pub quiet: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            filter: None,
            skip: Vec::new(),
            exact: false,
            strict: false,
            concurrency: 32,
            case_timeout: Duration::from_secs(60),
            quiet: false,
        }
    }
}

impl RunOptions {
    /// Selection is done by `selects` (the phases must know exactly which cases run), so
    /// libtest-mimic gets no filter.
    fn libtest_arguments(&self) -> Arguments {
        Arguments {
            test_threads: Some(self.concurrency.max(1)),
            quiet: self.quiet,
            ..Arguments::default()
        }
    }

    /// libtest's rules: the id contains the filter and none of the skips (equals, with --exact).
    pub fn selects(&self, id: &str) -> bool {
        let matches = |pattern: &str| {
            if self.exact {
                id == pattern
            } else {
                id.contains(pattern)
            }
        };
        self.filter.as_deref().is_none_or(matches) && !self.skip.iter().any(|s| matches(s))
    }

    /// Whether a case's outcome makes the run fail (exit status 1): only outcomes the expectation
    /// file does not expect count. An unexpected pass (`xpass`) does: the file is out of date.
    pub fn fails_run(&self, report: &CaseReport) -> bool {
        match report.outcome {
            Outcome::Error | Outcome::Xpass => true,
            Outcome::Fail => {
                report.level == Level::Must || (self.strict && report.level == Level::Should)
            }
            _ => false,
        }
    }
}

/// The environments a run's cases use: the main one, and one whose homeserver keeps its normal
/// rate limits (or why there is none) for the cases that need it.
#[derive(Clone)]
pub struct Targets {
    pub main: Arc<Env>,
    /// More instances of the same homeserver (same version, same configuration): first-phase
    /// cases are spread over `main` and these, so a single-threaded server uses more cores.
    pub more: Vec<Arc<Env>>,
    /// An instance of its own for the cases that restart the homeserver, where the target can
    /// have one: they then start at once, beside the others, instead of in a phase after them.
    pub restart: Option<Arc<Env>>,
    pub rate_limited: Result<Arc<Env>, String>,
    /// An instance whose per-user limit on scheduled events is 0 (or why there is none).
    pub limit_zero: Result<Arc<Env>, String>,
}

impl Targets {
    /// One environment for all cases.
    pub fn single(main: Arc<Env>, rate_limited: Result<Arc<Env>, String>) -> Targets {
        Targets {
            main,
            more: Vec::new(),
            restart: None,
            rate_limited,
            limit_zero: Err("no instance with a per-user limit of 0 in this run".into()),
        }
    }

    /// The environment the case at `slot` of the plan runs in, or why it cannot run. Restart
    /// cases share the restarts of one instance: their own, else `main`.
    pub fn env_for(&self, case: &Case, slot: usize) -> Result<Arc<Env>, String> {
        if case.needs.contains(&Need::NormalRateLimits) {
            return self.rate_limited.clone();
        }
        if case.needs.contains(&Need::ScheduledLimitZero) {
            return self.limit_zero.clone();
        }
        if case.needs.contains(&Need::Restart) {
            return Ok(self.restart.as_ref().unwrap_or(&self.main).clone());
        }
        match slot % (1 + self.more.len()) {
            0 => Ok(self.main.clone()),
            n => Ok(self.more[n - 1].clone()),
        }
    }
}

/// Why a case cannot run on this target, if it cannot.
pub fn unmet_need(env: &Env, case: &Case) -> Option<String> {
    let features = &env.features;
    if let Some(reason) = features
        .not_offered()
        .filter(|_| !case.runs_without_feature)
    {
        return Some(format!("delayed events are not offered: {reason}"));
    }
    case.needs.iter().find_map(|need| match need {
        Need::Restart => env.target.can_restart().err(),
        Need::Kill => env.target.can_kill().err(),
        Need::Workers => env.target.processes().err(),
        Need::SingleLookup => (!features.single_lookup).then(|| {
            "the server does not offer the single-item lookup GET .../delayed_events/{delay_id}"
                .into()
        }),
        Need::BodyForm => (!features.manage_body).then(|| {
            "the server does not offer management in the body form ({\"action\": ...})".into()
        }),
        Need::SplitForm => (!features.manage_split).then(|| {
            "the server does not offer management through split paths (.../{delay_id}/{action})"
                .into()
        }),
        Need::Capability => features
            .capability
            .is_none()
            .then(|| "the server does not advertise the delayed-events capability".into()),
        Need::ScheduleEndpoint => (!features.schedule_endpoint).then(|| {
            "the server does not offer the dedicated scheduling endpoint PUT .../delayed_event/{eventType}/{txnId}"
                .into()
        }),
        // Resolved when the run's environments are built (`Targets::env_for`).
        Need::NormalRateLimits | Need::ScheduledLimitZero => None,
    })
}

/// Runs one case to a report (never panics, never hangs past its timeout).
pub async fn run_case(env: Arc<Env>, case: &Case, default_timeout: Duration) -> CaseReport {
    let started = Instant::now();
    if let Some(reason) = unmet_need(&env, case) {
        return CaseReport::new(case, Outcome::Skip, Some(reason));
    }
    let ctx = Ctx::new(env.clone(), case.id);
    let timeout = case.timeout.unwrap_or(default_timeout).max(default_timeout);
    let body = AssertUnwindSafe((case.run)(ctx.clone())).catch_unwind();
    let ended = tokio::time::timeout(timeout, body).await;
    // A case that ended has settled after its last restart (see `phase.rs`).
    ctx.settled();
    let mut expected_actual = (None, None);
    let (outcome, message) = match ended {
        Err(_) => (
            Outcome::Error,
            Some(format!(
                "the case did not finish within {} s",
                timeout.as_secs()
            )),
        ),
        Ok(Err(panic)) => (
            Outcome::Error,
            Some(format!("the harness panicked: {}", panic_text(&panic))),
        ),
        Ok(Ok(Ok(()))) => (Outcome::Pass, None),
        Ok(Ok(Err(stop))) => {
            let (expected, actual) = stop.expected_actual();
            expected_actual = (expected.map(str::to_string), actual.map(str::to_string));
            (stop.outcome(), Some(stop.message().to_string()))
        }
    };
    let record = ctx.record();
    let mut report = CaseReport::new(case, outcome, message);
    (report.expected, report.actual) = expected_actual;
    report.duration_ms = started.elapsed().as_millis() as u64;
    report.lateness_ms = record.lateness_ms;
    report.harness_lateness_ms = record.harness_lateness_ms;
    report.notes = record.notes;
    report.set_evidence(ctx.evidence().snapshot());
    if outcome == Outcome::Pass {
        let matched = record.matched.unwrap_or_else(|| case.revisions.to_vec());
        report.matched_revisions = matched.iter().map(|r| r.as_str().to_string()).collect();
    }
    if matches!(outcome, Outcome::Fail | Outcome::Error) {
        report.server_log_tail = env.target.log_tail(LOG_TAIL_LINES);
        if let Some(log) = record.driver_log.filter(|_| outcome == Outcome::Fail) {
            // Errors from the bridge carry the driver's log already.
            let message = report.message.get_or_insert_with(String::new);
            message.push_str(&format!(
                "\n  widget driver log (last lines):\n{}",
                log.indented_tail()
            ));
        }
    }
    report
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// The text libtest-mimic prints for a case that did not pass.
fn terminal_message(report: &CaseReport, opts: &RunOptions) -> String {
    let mut text = report.message.clone().unwrap_or_default();
    if report.outcome == Outcome::Error {
        text = format!("ERROR (harness or environment, not a verdict on the server): {text}");
    }
    for (label, value) in report.expected_actual() {
        text.push_str(&format!("\n  {label}: {value}"));
    }
    text.push_str(&format!(
        "\n  requirement: {} — {}",
        report.level.as_str(),
        report.spec.describe()
    ));
    if report.outcome == Outcome::Fail && !opts.fails_run(report) {
        text.push_str(&format!(
            "\n  ({} level: does not fail the run without --strict)",
            report.level.as_str()
        ));
    }
    if let Some(tail) = &report.server_log_tail {
        let last: Vec<&str> = tail.lines().rev().take(8).collect();
        text.push_str("\n  server log (last lines):");
        for line in last.into_iter().rev() {
            text.push_str(&format!("\n    {line}"));
        }
    }
    text
}

/// The cases of a run in the order they start. Restart cases on `main` form a phase after all
/// others (nobody else may see its restarts); on an instance of their own they start first,
/// since their rounds of restarts take longest, and nothing waits.
struct Plan {
    cases: Vec<Case>,
    /// Where the restart cases are in `cases`.
    restarts: std::ops::Range<usize>,
    gate: Arc<PhaseGate>,
}

impl Plan {
    fn new(targets: &Targets, cases: Vec<Case>) -> Plan {
        let (others, restart_cases): (Vec<Case>, Vec<Case>) = cases.into_iter().partition(|c| {
            let env = targets.restart.as_ref().unwrap_or(&targets.main);
            !(c.needs.contains(&Need::Restart) && unmet_need(env, c).is_none())
        });
        let (first, restarts) = (others.len(), restart_cases.len());
        if targets.restart.is_some() {
            return Plan {
                cases: restart_cases.into_iter().chain(others).collect(),
                restarts: 0..restarts,
                gate: Arc::new(PhaseGate::new(0)),
            };
        }
        // Trials start in this order, so restart cases never hold a thread that a first-phase
        // case is still waiting for.
        Plan {
            cases: others.into_iter().chain(restart_cases).collect(),
            restarts: first..first + restarts,
            gate: Arc::new(PhaseGate::new(first)),
        }
    }

    fn in_restart_phase(&self, index: usize) -> bool {
        self.restarts.contains(&index)
    }
}

/// Runs one case of a plan in its phase and environment.
async fn run_planned(
    targets: &Targets,
    (case, slot): (&Case, usize),
    in_restart_phase: bool,
    gate: &PhaseGate,
    timeout: Duration,
) -> CaseReport {
    let env = targets.env_for(case, slot);
    // A restart case is a member of the restart rounds from the moment it exists, so no round
    // goes ahead while it is still setting up.
    let _member = match (&env, in_restart_phase) {
        (Ok(env), true) => Some(env.restarts.join()),
        _ => None,
    };
    if in_restart_phase {
        gate.first_phase_over().await;
    }
    let report = match env {
        Err(reason) => CaseReport::new(case, Outcome::Skip, Some(reason)),
        Ok(env) => run_case(env, case, timeout).await,
    };
    if !in_restart_phase {
        gate.first_phase_case_done();
    }
    report
}

/// Runs cases in their phases, all at once, without libtest (for self-tests and library users).
pub async fn run_concurrently(
    targets: &Targets,
    cases: Vec<Case>,
    timeout: Duration,
) -> Vec<CaseReport> {
    let plan = Plan::new(targets, cases);
    let runs = plan.cases.iter().enumerate().map(|(index, case)| {
        run_planned(
            targets,
            (case, index),
            plan.in_restart_phase(index),
            &plan.gate,
            timeout,
        )
    });
    futures::future::join_all(runs).await
}

/// Runs the selected cases and answers their reports in catalogue order: with the progress
/// display on a terminal, else as libtest-mimic trials (plain lines, as `cargo test` prints).
pub fn run_all(
    runtime: &tokio::runtime::Handle,
    targets: &Targets,
    cases: Vec<Case>,
    expectations: Arc<Expectations>,
    opts: &RunOptions,
) -> Vec<CaseReport> {
    let order: Vec<&'static str> = cases.iter().map(|c| c.id).collect();
    let plan = Plan::new(
        targets,
        cases.into_iter().filter(|c| opts.selects(c.id)).collect(),
    );
    let mut reports = if !opts.quiet && std::io::stdout().is_terminal() {
        run_with_progress(runtime, targets, plan, &expectations, opts)
    } else {
        run_as_trials(runtime, targets, plan, expectations, opts)
    };
    reports.sort_by_key(|r| order.iter().position(|id| *id == r.id));
    reports
}

/// Runs a plan with the interactive progress display, `concurrency` cases at a time. Cases start
/// in plan order, so restart-phase cases never hold a slot a first-phase case waits for.
fn run_with_progress(
    runtime: &tokio::runtime::Handle,
    targets: &Targets,
    plan: Plan,
    expectations: &Expectations,
    opts: &RunOptions,
) -> Vec<CaseReport> {
    use futures::StreamExt;
    let progress = crate::progress::Progress::new(plan.cases.len());
    let runs = plan.cases.iter().enumerate().map(|(index, case)| {
        let (progress, gate) = (&progress, &plan.gate);
        let in_restart_phase = plan.in_restart_phase(index);
        async move {
            progress.started(case.id);
            let mut report = run_planned(
                targets,
                (case, index),
                in_restart_phase,
                gate,
                opts.case_timeout,
            )
            .await;
            expectations.apply(&mut report);
            progress.finished(&report, || terminal_message(&report, opts));
            report
        }
    });
    let reports = runtime.block_on(
        futures::stream::iter(runs)
            .buffer_unordered(opts.concurrency.max(1))
            .collect::<Vec<_>>(),
    );
    progress.finish();
    reports
}

/// Runs a plan as libtest-mimic trials.
fn run_as_trials(
    runtime: &tokio::runtime::Handle,
    targets: &Targets,
    plan: Plan,
    expectations: Arc<Expectations>,
    opts: &RunOptions,
) -> Vec<CaseReport> {
    let reports: Arc<Mutex<Vec<CaseReport>>> = Default::default();
    let restarts = plan.restarts.clone();
    let trials = plan
        .cases
        .into_iter()
        .enumerate()
        .map(|(index, case)| {
            let (reports, expectations, gate) =
                (reports.clone(), expectations.clone(), plan.gate.clone());
            let (runtime, opts, targets) = (runtime.clone(), opts.clone(), targets.clone());
            let in_restart_phase = restarts.contains(&index);
            let kind = case.level.as_str();
            Trial::ignorable_test(case.id, move || {
                let mut report = runtime.block_on(run_planned(
                    &targets,
                    (&case, index),
                    in_restart_phase,
                    &gate,
                    opts.case_timeout,
                ));
                expectations.apply(&mut report);
                let completion = match report.outcome {
                    Outcome::Pass => Ok(Completion::Completed),
                    Outcome::Xpass => Err(Failed::from(format!(
                        "now passes, though the expectation file expects {}: remove it from the \
                         file ({})",
                        expectations
                            .get(&report.id)
                            .map(|e| {
                                e.expected
                                    .iter()
                                    .map(|o| o.as_str())
                                    .collect::<Vec<_>>()
                                    .join(" or ")
                            })
                            .unwrap_or_default(),
                        crate::report::first_sentence(
                            report.expectation.as_deref().unwrap_or_default()
                        )
                    ))),
                    Outcome::Skip => Ok(Completion::ignored_with(
                        report.message.clone().unwrap_or_default(),
                    )),
                    // The case's line carries the reason's first sentence; reports keep all.
                    Outcome::Xfail => Ok(Completion::ignored_with(format!(
                        "expected failure: {}",
                        crate::report::first_sentence(
                            report.expectation.as_deref().unwrap_or_default()
                        )
                    ))),
                    Outcome::Fail | Outcome::Error => {
                        Err(Failed::from(terminal_message(&report, &opts)))
                    }
                };
                reports.lock().unwrap().push(report);
                completion
            })
            .with_kind(kind)
        })
        .collect();
    // The exit status comes from our own outcomes (levels, --strict, expectations), not libtest's.
    let _conclusion = libtest_mimic::run(&opts.libtest_arguments(), trials);
    let reports = std::mem::take(&mut *reports.lock().unwrap());
    reports
}

/// Trials that only carry names, for `--list`.
pub fn list_trials(cases: Vec<Case>) -> Vec<Trial> {
    cases
        .into_iter()
        .map(|case| Trial::test(case.id, || Ok(())).with_kind(case.level.as_str()))
        .collect()
}
