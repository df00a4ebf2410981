//! One run of the catalogue: start the target(s), prepare the environments, run the cases,
//! apply expectations, write the results, and stop everything on every exit path.

use crate::case::{Case, Need};
use crate::args::{RunArgs, SuiteName, TargetArgs, TargetKind, UsageError};
use crate::ctx::Env;
use crate::expectations::{self, Expectations};
use crate::outcome::Outcome;
use crate::results::{AppliedExpectations, Harness, RunReport, Summary};
use crate::runner::{self, RunOptions, Targets};
use crate::catalogue::Catalogue;
use crate::homeserver::container::{self, ContainerOptions, ContainerTarget};
use crate::homeserver::identity::{self, Identity};
use crate::homeserver::synapse::{SynapseOptions, SynapseTarget, PINNED_VERSION};
use crate::homeserver::url::{UrlCommands, UrlTarget};
use crate::homeserver::Target;
use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The cases `--suite` and `--area` select (libtest-mimic applies --filter/--skip/--exact).
fn select(args: &RunArgs, catalogue: &Catalogue) -> Result<Vec<Case>, UsageError> {
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
                 or --driver 'COMMAND ARGS' for your own (README, \"Testing a widget driver\")"
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
    Ok(cases
        .into_iter()
        .filter(|c| args.area.is_empty() || args.area.iter().any(|a| a == c.area()))
        .collect())
}

/// The expectation file given on the command line (`--expectations`, or an existing
/// `--update-expectations` file), read before anything starts so that a bad file costs nothing.
fn given_expectations(
    args: &RunArgs,
    catalogue: &Catalogue,
) -> Result<Option<(Expectations, AppliedExpectations)>, UsageError> {
    let update = args.update_expectations.as_ref().filter(|p| p.exists());
    let (path, why) =
        match (&args.expectations, update) {
            (Some(given), Some(update)) if !same_file(given, update) => {
                return Err(UsageError(format!(
                    "--update-expectations {} exists and would be updated from outcomes judged by \
                 another file (--expectations {}): give the same file to both, or a new file \
                 to --update-expectations",
                    update.display(),
                    given.display()
                )))
            }
            (Some(given), _) => (given, "given with --expectations"),
            (None, Some(_)) if args.no_expectations => return Err(UsageError(
                "--no-expectations with an existing --update-expectations file: the file would \
                 be updated from outcomes it did not judge; give a new file"
                    .into(),
            )),
            (None, Some(update)) => (
                update,
                "given with --update-expectations (updated after the run)",
            ),
            (None, None) => return Ok(None),
        };
    let loaded = Expectations::load(path).map_err(UsageError)?;
    check_stale(&loaded, &path.display().to_string(), args.strict, catalogue)?;
    Ok(Some((
        loaded,
        AppliedExpectations {
            file: path.display().to_string(),
            why: why.into(),
        },
    )))
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Entries for cases that no longer exist: a warning, or with --strict an error.
fn check_stale(
    file: &Expectations,
    origin: &str,
    strict: bool,
    catalogue: &Catalogue,
) -> Result<(), UsageError> {
    let ids: BTreeSet<&str> = catalogue.all_cases().map(|c| c.id).collect();
    let stale = file.stale(&ids);
    if stale.is_empty() {
        return Ok(());
    }
    let message = format!(
        "{origin} lists {} case(s) that do not exist (renamed or removed; `list` shows the ids): {}",
        stale.len(),
        stale.join(", ")
    );
    if strict {
        return Err(UsageError(format!("{message} (an error with --strict)")));
    }
    eprintln!("warning: {message}");
    Ok(())
}

/// The expectations of a run: the given file, none (--no-expectations), or the bundled file
/// written for the detected server (or widget driver) and version. Says which and why on stderr.
fn choose_expectations(
    args: &RunArgs,
    catalogue: &Catalogue,
    given: Option<(Expectations, AppliedExpectations)>,
    identity: Option<&Identity>,
) -> Result<(Expectations, Option<AppliedExpectations>), UsageError> {
    let chosen = match given {
        Some(given) => Some(given),
        None if args.no_expectations => {
            eprintln!("expectations: none (--no-expectations)");
            None
        }
        None => match expectations::choose_bundled(
            &catalogue.bundled_expectations,
            identity.map(|i| i.name.as_str()),
            identity.and_then(|i| i.version.as_deref()),
        )
        .map_err(UsageError)?
        {
            Ok(bundled) => {
                check_stale(&bundled.0, &bundled.1.file, args.strict, catalogue)?;
                Some(bundled)
            }
            Err(why_none) => {
                eprintln!("expectations: {why_none}");
                None
            }
        },
    };
    Ok(match chosen {
        Some((file, applied)) => {
            eprintln!(
                "expectations: {} ({} entries) — {}",
                applied.file,
                file.len(),
                applied.why
            );
            (file, Some(applied))
        }
        None => (Expectations::default(), None),
    })
}

/// `--update-expectations FILE`: the applied file updated from the run's outcomes.
fn update_expectations(
    path: &std::path::Path,
    applied: &Expectations,
    report: &RunReport,
    catalogue: &Catalogue,
) -> Result<(), UsageError> {
    let ids: BTreeSet<&str> = catalogue.all_cases().map(|c| c.id).collect();
    // Written for what was tested: the widget driver where there is one, else the server.
    let server = match &report.target.driver {
        Some(driver) => Some(expectations::Server {
            name: driver.name.clone(),
            versions: vec![driver.version.clone()],
        }),
        None => report
            .target
            .server_name
            .clone()
            .map(|name| expectations::Server {
                name,
                versions: report.target.server_version.iter().cloned().collect(),
            }),
    };
    let (text, changes) = applied.updated(&report.cases, &ids, server);
    std::fs::write(path, text)
        .map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))?;
    println!(
        "expectations written to {}: {}",
        path.display(),
        if changes.is_empty() {
            "no change".to_string()
        } else {
            changes.join("; ")
        }
    );
    Ok(())
}

/// The targets running, for the interrupt handler: stopped however the process ends.
type TargetSlot = Arc<Mutex<Vec<Arc<dyn Target>>>>;

/// Set once Ctrl-C or SIGTERM arrived: the run then ends with 130 and no verdict, even if its
/// cases finished (failing, as their server went away) before the shutdown did.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn interrupt_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminated => {},
    }
}

/// On Ctrl-C or SIGTERM: shut the running target down and exit 130; during start-up (no target
/// yet), tell the start-up to give up instead, so that dropping it cleans up what it made.
fn install_interrupt_handler(
    runtime: &tokio::runtime::Runtime,
    slot: TargetSlot,
    startup: Arc<Notify>,
) {
    runtime.spawn(async move {
        interrupt_signal().await;
        INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
        eprintln!("\ninterrupted: stopping the homeserver and exiting");
        let running = slot.lock().unwrap().clone();
        if running.is_empty() {
            startup.notify_one();
        } else {
            futures::future::join_all(running.iter().map(|t| t.shutdown())).await;
            std::process::exit(130);
        }
    });
}

pub(crate) async fn start_target(
    args: &TargetArgs,
    http: &reqwest::Client,
) -> Result<Arc<dyn Target>, UsageError> {
    match args.target {
        TargetKind::Synapse => {
            if args.base_url.is_some() {
                return Err(UsageError("--base-url goes with --target url".into()));
            }
            if args.image.is_some() {
                return Err(UsageError("--image goes with --target container".into()));
            }
            Ok(Arc::new(
                SynapseTarget::start(synapse_options(args, true, false)).await?,
            ))
        }
        TargetKind::Container => {
            if args.base_url.is_some() {
                return Err(UsageError(
                    "--base-url goes with --target url; --target container maps the container's \
                     port itself"
                        .into(),
                ));
            }
            let Some(image) = &args.image else {
                return Err(UsageError(format!(
                    "--target container needs --image NAME[:TAG], an image that follows \
                     Complement's contract (your homeserver's Complement image). Without a \
                     registry, scripts/build-synapse-image builds {}:{PINNED_VERSION}.",
                    container::BUILT_SYNAPSE_IMAGE
                )));
            };
            let options = ContainerOptions {
                image: image.clone(),
                spawn_timeout: args.spawn_timeout,
                registration_shared_secret: args.registration_shared_secret.clone(),
            };
            Ok(Arc::new(ContainerTarget::start(options).await?))
        }
        TargetKind::Url => {
            if args.image.is_some() {
                return Err(UsageError("--image goes with --target container".into()));
            }
            let Some(base_url) = &args.base_url else {
                return Err(UsageError(
                    "--target url needs --base-url URL (the homeserver's client API)".into(),
                ));
            };
            let commands = UrlCommands {
                restart: args.restart_command.clone(),
                kill: args.kill_command.clone(),
                spawn_timeout: args.spawn_timeout,
            };
            let target = UrlTarget::connect_with(
                http,
                base_url,
                args.registration_shared_secret.clone(),
                commands,
            )
            .await?;
            Ok(Arc::new(target))
        }
    }
}

pub(crate) fn synapse_options(
    args: &TargetArgs,
    show_progress: bool,
    default_delayed_event_limits: bool,
) -> SynapseOptions {
    SynapseOptions {
        version: args.synapse_version.clone(),
        venv: args.synapse_venv.clone(),
        cache_dir: None,
        spawn_timeout: args.spawn_timeout,
        show_progress,
        keep_data: args.keep_data,
        default_delayed_event_limits,
        config_fragment: args.synapse_config.clone().map(|c| c.0),
    }
}

/// Further instances of the managed Synapse for the cases to share (none for other targets).
async fn start_more_instances(args: &TargetArgs) -> Result<Vec<Arc<dyn Target>>, UsageError> {
    if args.target != TargetKind::Synapse {
        return Ok(Vec::new());
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let instances = args.synapse_instances.unwrap_or(cores.min(4)).max(1);
    let starts = (1..instances).map(|_| SynapseTarget::start(synapse_options(args, false, false)));
    let started = futures::future::try_join_all(starts).await?;
    Ok(started
        .into_iter()
        .map(|t| Arc::new(t) as Arc<dyn Target>)
        .collect())
}

/// Where the cases that need a homeserver with its normal rate limits run.
enum RateLimitedTarget {
    /// A target of its own (the managed Synapse starts a second instance with its defaults).
    Own(Arc<dyn Target>),
    /// The main target (a server someone else runs, when the user asked for the area).
    Main,
    /// Nowhere; the reason the cases skip.
    Unavailable(String),
}

async fn start_rate_limited(args: &RunArgs, needed: bool) -> Result<RateLimitedTarget, UsageError> {
    if !needed {
        return Ok(RateLimitedTarget::Unavailable("not selected".into()));
    }
    match args.server.target {
        TargetKind::Synapse => {
            let options = synapse_options(&args.server, false, true);
            Ok(RateLimitedTarget::Own(Arc::new(SynapseTarget::start(options).await?)))
        }
        _ if args.area.iter().any(|a| a == "rate_limits") => Ok(RateLimitedTarget::Main),
        _ => Ok(RateLimitedTarget::Unavailable(
            "the harness does not know this target's rate limits; run `--area rate_limits` on its own \
             against a server with its normal limits"
                .into(),
        )),
    }
}

pub(crate) fn run(args: RunArgs, catalogue: &Catalogue) -> Result<ExitCode, UsageError> {
    let cases = select(&args, catalogue)?;
    if args.server.target != TargetKind::Url
        && (args.server.restart_command.is_some() || args.server.kill_command.is_some())
    {
        return Err(UsageError(
            "--restart-command and --kill-command go with --target url (the harness restarts \
             the servers it starts itself)"
                .into(),
        ));
    }
    let driver = args
        .driver
        .as_deref()
        .map(crate::widget::DriverSpec::parse)
        .transpose()
        .map_err(UsageError)?
        .map(Arc::new);
    if args.server.target != TargetKind::Synapse && args.server.synapse_config.is_some() {
        return Err(UsageError(
            "--synapse-config goes with --target synapse (the managed Synapse); configure other \
             servers where they run"
                .into(),
        ));
    }
    let given = given_expectations(&args, catalogue)?;
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
        return Ok(ExitCode::SUCCESS);
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

    if args.server.target == TargetKind::Container {
        // Before the runtime's threads exist: it sets environment variables for testcontainers.
        container::prepare_environment();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| UsageError(format!("cannot start the async runtime: {e}")))?;
    let slot: TargetSlot = Default::default();
    let startup_interrupted = Arc::new(Notify::new());
    install_interrupt_handler(&runtime, slot.clone(), startup_interrupted.clone());

    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let clock = Instant::now();
    let http = crate::client::http_client();
    let needs_rate_limited = cases
        .iter()
        .any(|c| c.needs.contains(&Need::NormalRateLimits) && opts.selects(c.id));
    let started = runtime.block_on(async {
        let both = async {
            tokio::try_join!(
                start_target(&args.server, &http),
                start_more_instances(&args.server),
                start_rate_limited(&args, needs_rate_limited)
            )
        };
        tokio::select! {
            targets = both => targets.map(Some),
            _ = startup_interrupted.notified() => Ok(None),
        }
    })?;
    let Some((target, more, rate_limited)) = started else {
        return Ok(ExitCode::from(130));
    };
    let mut running = vec![target.clone()];
    running.extend(more.iter().cloned());
    if let RateLimitedTarget::Own(own) = &rate_limited {
        running.push(own.clone());
    }
    *slot.lock().unwrap() = running.clone();

    let http_for_identity = http.clone();
    let outcome = (|| -> Result<(RunReport, Arc<Expectations>), UsageError> {
        let forced = args.server.api_form.unwrap_or_default();
        let with_driver = |mut env: Env| {
            env.driver = driver.clone();
            Arc::new(env)
        };
        let env = with_driver(
            runtime
                .block_on(Env::prepare(target.clone(), http.clone(), forced))
                .map_err(UsageError)?,
        );
        // The driver must start before any case runs: one that cannot is a usage problem.
        let driver_info = match &driver {
            Some(spec) => Some(
                runtime
                    .block_on(crate::widget::probe(&env, spec))
                    .map_err(UsageError)?,
            ),
            None => None,
        };
        let more_envs = runtime
            .block_on(futures::future::try_join_all(
                more.iter()
                    .map(|t| Env::prepare(t.clone(), http.clone(), forced)),
            ))
            .map_err(UsageError)?
            .into_iter()
            .map(with_driver)
            .collect();
        let rate_limited_env = match &rate_limited {
            RateLimitedTarget::Own(own) => Ok(Arc::new(
                runtime
                    .block_on(Env::prepare(own.clone(), http, forced))
                    .map_err(UsageError)?,
            )),
            RateLimitedTarget::Main => Ok(env.clone()),
            RateLimitedTarget::Unavailable(reason) => Err(reason.clone()),
        };
        let targets = Targets {
            main: env.clone(),
            more: more_envs,
            rate_limited: rate_limited_env,
        };
        let identity = runtime.block_on(async {
            let info = target.info();
            identity::resolve(
                identity::detect(&http_for_identity, &info.base_url).await,
                &info,
            )
        });
        let info = identity::apply(target.info(), identity.as_ref());
        if let Some(d) = &driver_info {
            eprintln!("widget driver: {} ({} {})", d.driver, d.name, d.version);
        }
        eprintln!(
            "server: {}",
            identity
                .as_ref()
                .map(Identity::describe)
                .unwrap_or_else(|| "unknown (it does not say: no MSC4383 announcement in \
                     /versions, no /_matrix/federation/v1/version on the client port)"
                    .into())
        );
        // A widget-driver run's known outcomes are the driver's, not the homeserver's.
        let driver_identity = driver_info.as_ref().map(|d| Identity {
            name: d.name.clone(),
            version: Some(d.version.clone()),
            source: "driver",
        });
        let (expectations, applied) =
            choose_expectations(&args, catalogue, given, driver_identity.as_ref().or(identity.as_ref()))?;
        eprintln!(
            "target: {} {} at {}{}{} · API form: {}",
            info.name,
            info.version.as_deref().unwrap_or(""),
            info.base_url,
            info.image
                .as_deref()
                .map(|image| format!(" (image {image})"))
                .unwrap_or_default(),
            if more.is_empty() {
                String::new()
            } else {
                format!(" (+{} more instances)", more.len())
            },
            crate::report::form_label(env.form, env.features.not_offered().is_none()),
        );
        let expectations = Arc::new(expectations);
        let reports = runner::run_all(
            runtime.handle(),
            &targets,
            cases,
            expectations.clone(),
            &opts,
        );
        Ok((
            RunReport {
                schema: crate::results::SCHEMA,
                harness: Harness::default(),
                // Asked again after the cases: restart times are known now.
                target: crate::homeserver::TargetInfo {
                    driver: driver_info,
                    ..identity::apply(target.info(), identity.as_ref())
                },
                api_form: env.form,
                features: env.features.clone(),
                not_implemented: env.features.not_offered(),
                started_at,
                duration_ms: clock.elapsed().as_millis() as u64,
                expectations: applied,
                summary: Summary::of(&reports),
                cases: reports,
            },
            expectations,
        ))
    })();
    runtime.block_on(futures::future::join_all(
        running.iter().map(|t| t.shutdown()),
    ));
    slot.lock().unwrap().clear();
    if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(ExitCode::from(130));
    }
    let (report, applied_expectations) = outcome?;

    write_reports(&args, &report)?;
    if let Some(path) = &args.update_expectations {
        update_expectations(path, &applied_expectations, &report, catalogue)?;
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

/// The reports asked for, the job summary and annotations in GitHub Actions: all from the
/// results model, as `report` would render a saved file.
fn write_reports(args: &RunArgs, report: &RunReport) -> Result<(), UsageError> {
    let write = |path: &std::path::Path, text: String| {
        std::fs::write(path, text)
            .map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))
    };
    if let Some(path) = &args.json {
        write(
            path,
            serde_json::to_string_pretty(report).expect("results serialise"),
        )?;
    }
    if let Some(path) = &args.junit {
        write(path, crate::report::junit::render(report))?;
    }
    if let Some(path) = &args.html {
        write(path, crate::report::html::render(report))?;
    }
    let markdown = crate::report::markdown::render(report);
    if let Some(path) = &args.markdown {
        write(path, markdown.clone())?;
    }
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

pub(crate) fn check_writable(path: &std::path::Path) -> Result<(), UsageError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    if dir.is_dir() {
        Ok(())
    } else {
        Err(UsageError(format!(
            "cannot write {}: folder {} does not exist",
            path.display(),
            dir.display()
        )))
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
