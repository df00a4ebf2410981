//! One run of the catalogue, in three steps: `prepare` (selection, flags, the expectation file
//! given, targets started), `execute` (environments, who answers, the cases), `finish` (the
//! expectation file updated, reports, summary, exit status). The targets stop on every exit path.

use crate::args::{check_writable, RunArgs, SuiteName, UsageError};
use crate::case::{Case, Need};
use crate::catalogue::Catalogue;
use crate::commands::report::{write_reports, ReportFiles};
use crate::ctx::Env;
use crate::endpoints::FEDERATION_VERSION;
use crate::expectations::choose::{choose_expectations, given_expectations, update_expectations};
use crate::expectations::Expectations;
use crate::homeserver::identity::{self, Identity};
use crate::homeserver::Target;
use crate::interrupt::{self, InterruptHandler};
use crate::outcome::Outcome;
use crate::results::{AppliedExpectations, Harness, RunReport, Summary};
use crate::runner::{self, RunOptions, Targets};
use crate::startup::{self, RateLimitedTarget, Started};
use crate::widget::driver::DriverSpec;
use std::ops::ControlFlow;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The cases `--suite` and `--area` select (libtest-mimic applies --filter/--skip/--exact).
fn select(
    args: &RunArgs,
    catalogue: &Catalogue,
) -> Result<(Vec<Case>, Vec<&'static str>), UsageError> {
    let suite = |name: &str| {
        catalogue
            .suite(name)
            .map(|s| (s.cases.clone(), s.areas.clone()))
            .ok_or_else(|| UsageError(format!("this build has no suite {name}")))
    };
    let (cases, areas): (Vec<Case>, Vec<&str>) = match args.suite {
        SuiteName::Msc4140 if args.driver.is_some() => {
            return Err(UsageError(
                "--driver goes with --suite msc4157 (the widget-driver suite)".into(),
            ))
        }
        SuiteName::Msc4140 => suite("msc4140")?,
        SuiteName::Msc4157 if args.driver.is_none() && !args.list => return Err(UsageError(
            "--suite msc4157 tests a widget driver: give --driver rust-sdk, --driver widget-api, \
                 or --driver 'COMMAND ARGS' for your own (docs/widget-drivers.md)"
                .into(),
        )),
        SuiteName::Msc4157 => suite("msc4157")?,
    };
    if let Some(unknown) = args.area.iter().find(|a| !areas.contains(&a.as_str())) {
        return Err(UsageError(format!(
            "unknown area '{unknown}'; areas are: {}",
            areas.join(", ")
        )));
    }
    let selected = cases
        .into_iter()
        .filter(|c| args.area.is_empty() || args.area.iter().any(|a| a == c.area()))
        .collect();
    Ok((selected, areas))
}

/// A run in three steps: prepare (selection, flags, the expectation file given, targets
/// started), execute (environments, the cases), finish (reports, summary, exit status). The
/// targets stop between the last two, whatever `execute` ended with.
pub(crate) fn run(args: RunArgs, catalogue: &Catalogue) -> Result<ExitCode, UsageError> {
    let (plan, running) = match prepare(&args, catalogue)? {
        ControlFlow::Continue(prepared) => prepared,
        // Listed, or interrupted while the targets started.
        ControlFlow::Break(code) => return Ok(code),
    };
    let executed = execute(&args, catalogue, plan, &running);
    running.stop();
    if interrupt::interrupted() {
        return Ok(ExitCode::from(130));
    }
    finish(&args, catalogue, executed?)
}

/// What the cases are given: chosen before anything started.
struct Plan {
    cases: Vec<Case>,
    /// The suite's areas, in report order (recorded in the results).
    areas: Vec<&'static str>,
    opts: RunOptions,
    driver: Option<Arc<DriverSpec>>,
    /// The expectation file given on the command line, read before the targets start.
    given: Option<(Expectations, AppliedExpectations)>,
    started_at: String,
    clock: Instant,
}

/// The run's homeservers, running until `stop`; the interrupt handler stops them too.
struct Running {
    runtime: tokio::runtime::Runtime,
    interrupts: InterruptHandler,
    targets: Started,
    http: reqwest::Client,
}

impl Running {
    fn stop(&self) {
        self.runtime.block_on(futures::future::join_all(
            self.targets.all().iter().map(|t| t.shutdown()),
        ));
        self.interrupts.set_running(Vec::new());
    }
}

/// What the cases came to, judged by these expectations.
struct Executed {
    report: RunReport,
    expectations: Arc<Expectations>,
    opts: RunOptions,
    clock: Instant,
}

/// Checks the command line, reads the expectation file given, and starts the targets; bad usage
/// costs nothing that takes time. `Break` ends the run early: `--list`, or an interrupt.
fn prepare(
    args: &RunArgs,
    catalogue: &Catalogue,
) -> Result<ControlFlow<ExitCode, (Plan, Running)>, UsageError> {
    let (cases, areas) = select(args, catalogue)?;
    args.server.validate()?;
    let driver = args
        .driver
        .as_deref()
        .map(DriverSpec::parse)
        .transpose()
        .map_err(UsageError)?
        .map(|spec| DriverSpec {
            init_on_content_load: !args.driver_starts_at_once,
            ..spec
        })
        .map(Arc::new);
    let given = given_expectations(args, catalogue)?;
    let opts = RunOptions {
        filter: args.filter.clone(),
        skip: args.skip.clone(),
        exact: args.exact,
        strict: args.strict,
        concurrency: args.concurrency,
        case_timeout: args.case_timeout,
        quiet: args.quiet,
    };
    if args.list {
        let env_free = runner::list_trials(cases);
        let _listed = libtest_mimic::run(
            &libtest_mimic::Arguments {
                list: true,
                ..opts_to_list_args(&opts)
            },
            env_free,
        );
        return Ok(ControlFlow::Break(ExitCode::SUCCESS));
    }
    for path in [
        &args.json,
        &args.junit,
        &args.markdown,
        &args.html,
        &args.update_expectations,
    ]
    .into_iter()
    .flatten()
    {
        check_writable(path)?;
    }

    let runtime = startup::runtime(&args.server)?;
    let interrupts = InterruptHandler::install(&runtime);
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let clock = Instant::now();
    let http = crate::client::http_client();
    let selected_need = |need| {
        cases
            .iter()
            .any(|c: &Case| c.needs.contains(&need) && opts.selects(c.id))
    };
    let needs = startup::Needs {
        rate_limited: selected_need(Need::NormalRateLimits),
        restarts: selected_need(Need::Restart),
        limit_zero: selected_need(Need::ScheduledLimitZero),
    };
    let started = runtime.block_on(async {
        tokio::select! {
            started = startup::start_all(&args.server, &args.area, needs, &http) => started.map(Some),
            _ = interrupts.startup_interrupted() => Ok(None),
        }
    })?;
    let Some(targets) = started else {
        return Ok(ControlFlow::Break(ExitCode::from(130)));
    };
    interrupts.set_running(targets.all());
    let plan = Plan {
        cases,
        areas,
        opts,
        driver,
        given,
        started_at,
        clock,
    };
    Ok(ControlFlow::Continue((
        plan,
        Running {
            runtime,
            interrupts,
            targets,
            http,
        },
    )))
}

/// Prepares each target's environment, learns who answers, chooses the expectations, and runs
/// the cases.
fn execute(
    args: &RunArgs,
    catalogue: &Catalogue,
    plan: Plan,
    running: &Running,
) -> Result<Executed, UsageError> {
    let targets = environments(args, plan.driver.as_ref(), running)?;
    let env = &targets.main;
    // The driver must start before any case runs: one that cannot is a usage problem.
    let driver_info = match &plan.driver {
        Some(spec) => Some(
            running
                .runtime
                .block_on(crate::widget::probe(env, spec))
                .map_err(UsageError)?,
        ),
        None => None,
    };
    let main = &running.targets.main;
    let identity = running.runtime.block_on(async {
        let info = main.info();
        identity::resolve(identity::detect(&running.http, &info.base_url).await, &info)
    });
    if let Some(d) = &driver_info {
        eprintln!("widget driver: {} ({} {})", d.driver, d.name, d.version);
    }
    eprintln!(
        "server: {}",
        identity
            .as_ref()
            .map(Identity::describe)
            .unwrap_or_else(|| format!(
                "unknown (it does not say: no MSC4383 announcement in /versions, no \
                 {FEDERATION_VERSION} on the client port)"
            ))
    );
    // A widget-driver run's known outcomes are the driver's, not the homeserver's.
    let driver_identity = driver_info.as_ref().map(|d| Identity {
        name: d.name.clone(),
        version: Some(d.version.clone()),
        source: "driver",
    });
    let (expectations, applied) = choose_expectations(
        args,
        catalogue,
        plan.given,
        driver_identity.as_ref().or(identity.as_ref()),
    )?;
    let info = identity::apply(main.info(), identity.as_ref());
    let more = running.targets.more.len();
    eprintln!(
        "target: {} {} at {}{}{}{} · API form: {}",
        info.name,
        info.version.as_deref().unwrap_or(""),
        info.base_url,
        info.image
            .as_deref()
            .map(|image| format!(" (image {image})"))
            .unwrap_or_default(),
        if more == 0 {
            String::new()
        } else {
            format!(" (+{more} more instances)")
        },
        info.topology
            .as_ref()
            .map(|topology| format!(" · {}", topology.label()))
            .unwrap_or_default(),
        crate::report::form_label(env.form, env.features.not_offered().is_none()),
    );
    let with_workers = info.topology.as_ref().is_some_and(|t| t.workers > 0);
    let expectations = Arc::new(expectations.for_deployment(with_workers));
    let reports = runner::run_all(
        running.runtime.handle(),
        &targets,
        plan.cases,
        expectations.clone(),
        &plan.opts,
    );
    let report = RunReport {
        schema: crate::results::SCHEMA,
        harness: Harness::default(),
        // Asked again after the cases: restart times are known now.
        target: crate::homeserver::TargetInfo {
            driver: driver_info,
            ..identity::apply(main.info(), identity.as_ref())
        },
        api_form: env.form,
        features: env.features.clone(),
        not_implemented: env.features.not_offered(),
        started_at: plan.started_at,
        duration_ms: plan.clock.elapsed().as_millis() as u64,
        expectations: applied,
        summary: Summary::of(&reports),
        areas: plan.areas.iter().map(|a| a.to_string()).collect(),
        cases: reports,
    };
    Ok(Executed {
        report,
        expectations,
        opts: plan.opts,
        clock: plan.clock,
    })
}

/// Each target's environment (`Env::prepare`: a probing user, what the server offers), with the
/// widget driver where there is one.
fn environments(
    args: &RunArgs,
    driver: Option<&Arc<DriverSpec>>,
    running: &Running,
) -> Result<Targets, UsageError> {
    let forced = args.server.api_form.unwrap_or_default();
    let prepare = |target: &Arc<dyn Target>| {
        let env = Env::prepare(target.clone(), running.http.clone(), forced);
        async move {
            let mut env = env.await?;
            env.driver = driver.cloned();
            Ok::<_, String>(Arc::new(env))
        }
    };
    let started = &running.targets;
    running
        .runtime
        .block_on(async {
            let main = prepare(&started.main).await?;
            // The extra instances are the main one's twins: detected once, on the main one.
            let twin = |target: &Arc<dyn Target>| Arc::new(Env::like(&main, target.clone()));
            let more = started.more.iter().map(twin).collect();
            let restart = started.restart.as_ref().map(twin);
            let rate_limited = match &started.rate_limited {
                RateLimitedTarget::Own(own) => Ok(prepare(own).await?),
                RateLimitedTarget::Main => Ok(main.clone()),
                RateLimitedTarget::Unavailable(reason) => Err(reason.clone()),
            };
            // Detection there would find scheduling refused: it is the main one's twin.
            let limit_zero = started.limit_zero.as_ref().map(twin).map_err(Clone::clone);
            Ok(Targets {
                main,
                more,
                restart,
                rate_limited,
                limit_zero,
            })
        })
        .map_err(UsageError)
}

/// The expectation file updated where asked, the reports written, the summary, and the exit
/// status (from unexpected outcomes, not from libtest).
fn finish(
    args: &RunArgs,
    catalogue: &Catalogue,
    executed: Executed,
) -> Result<ExitCode, UsageError> {
    let Executed {
        report,
        expectations,
        opts,
        clock,
    } = executed;
    write_run_reports(args, &report)?;
    if let Some(path) = &args.update_expectations {
        update_expectations(path, &expectations, &report, catalogue)?;
    }
    let failing = report.cases.iter().filter(|r| opts.fails_run(r)).count();
    print_summary(&report, failing, clock.elapsed());
    // A server without the feature proves nothing by skipping: its run fails.
    Ok(if failing == 0 && report.not_implemented.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The reports asked for, and in GitHub Actions the job summary and annotations: all from the
/// results model, as `report` renders a saved file.
fn write_run_reports(args: &RunArgs, report: &RunReport) -> Result<(), UsageError> {
    let files = ReportFiles {
        json: args.json.as_deref(),
        junit: args.junit.as_deref(),
        html: args.html.as_deref(),
        markdown: args.markdown.as_deref(),
    };
    let markdown = write_reports(std::slice::from_ref(report), &files)?;
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
        use std::io::Write;
        let appended = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&summary)
            .and_then(|mut f| f.write_all(markdown.as_bytes()));
        if let Err(e) = appended {
            eprintln!("warning: cannot append the job summary to GITHUB_STEP_SUMMARY: {e}");
        }
    }
    if std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| !v.is_empty()) {
        print!("{}", crate::report::github::render(report));
    }
    Ok(())
}

fn opts_to_list_args(opts: &RunOptions) -> libtest_mimic::Arguments {
    libtest_mimic::Arguments {
        filter: opts.filter.clone(),
        skip: opts.skip.clone(),
        exact: opts.exact,
        ..Default::default()
    }
}

fn print_summary(report: &RunReport, failing: usize, wall: Duration) {
    let s = &report.summary;
    let mut line = format!(
        "summary: {} pass, {} fail, {} skip, {} error, {} xfail, {} xpass in {:.1} s",
        s.pass,
        s.fail,
        s.skip,
        s.error,
        s.xfail,
        s.xpass,
        wall.as_secs_f64()
    );
    if failing > 0 {
        line.push_str(&format!(" — {failing} case(s) fail the run (exit 1)"));
    }
    if let Some(reason) = &report.not_implemented {
        line.push_str(&format!(
            "\ndelayed events: NOT IMPLEMENTED — {reason}. Every case that needs them skipped, so \
             the run fails (exit 1)."
        ));
    }
    println!("\n{line}");
    let stale: Vec<&str> = report
        .cases
        .iter()
        .filter(|c| c.outcome == Outcome::Xpass)
        .map(|c| c.id.as_str())
        .collect();
    if !stale.is_empty() {
        println!(
            "unexpected passes (remove them from the expectation file): {}",
            stale.join(", ")
        );
    }
}
