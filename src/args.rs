//! What the command line says: the clap types of every command, and `UsageError`, the problem
//! that ends a command with a message saying what to do and exit status 2.

use crate::api::FormOverride;
use crate::homeserver::synapse::PINNED_VERSION;
use crate::homeserver::{Database, TargetError};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "delayed-events-conformance",
    version,
    about = "Conformance suite for Matrix delayed events (MSC4140)",
    long_about = "Starts (or connects to) a Matrix homeserver, registers its own users, runs black-box \
                  scenarios for delayed events (MSC4140) and reports a verdict per case."
)]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the catalogue against a homeserver.
    Run(Box<RunArgs>),
    /// List every case with its id, area, level and spec reference.
    List(ListArgs),
    /// Delivery and lateness of delayed events under load, and how they grow with it (--sweep).
    Load(Box<LoadArgs>),
    /// Render saved results files: one run's report, or the implementations × cases matrix of
    /// several (Markdown on stdout unless --html or --markdown is given).
    Report(ReportArgs),
    /// Compare two results files: fixed, broken, changed, added and removed cases, as Markdown
    /// on stdout. Exit status 1 when a case broke (the regression gate), else 0.
    Diff(DiffArgs),
    /// Remove the containers of `--target container` runs that were killed before they could
    /// clean up (their harness no longer runs).
    Cleanup(CleanupArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum TargetKind {
    /// A local Synapse the harness installs (once, into its cache) and starts on loopback.
    Synapse,
    /// Any image that follows Complement's image contract (--image), started through Docker or
    /// podman (their Docker API, found through DOCKER_HOST).
    Container,
    /// A homeserver someone else runs, at --base-url.
    Url,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum SuiteName {
    Msc4140,
    Msc4157,
}

/// Which homeserver to test and how to reach it: shared by `run` and `load`.
#[derive(Args)]
pub(crate) struct TargetArgs {
    /// Which homeserver to test.
    #[arg(long, value_enum, default_value = "synapse", help_heading = "Target")]
    pub(crate) target: TargetKind,
    /// Synapse release to install and run (target synapse).
    #[arg(long, default_value = PINNED_VERSION, help_heading = "Target")]
    pub(crate) synapse_version: String,
    /// Use this existing Python environment (its python must `import synapse`) instead of the
    /// managed one, e.g. a Synapse checkout installed in editable mode (target synapse).
    #[arg(long, value_name = "DIR", help_heading = "Target")]
    pub(crate) synapse_venv: Option<PathBuf>,
    /// How many identical Synapse instances share the cases (Synapse uses one core each);
    /// defaults to the number of cores, at most 4. With more than one, the cases that restart
    /// the server get one more instance of their own and run beside the others.
    #[arg(long, value_name = "N", help_heading = "Target")]
    pub(crate) synapse_instances: Option<usize>,
    /// A YAML fragment merged into the managed Synapse's configuration (target synapse):
    /// mappings merge key by key, other values replace, `null` removes a key.
    #[arg(long, value_name = "FILE", value_parser = read_synapse_config, help_heading = "Target")]
    pub(crate) synapse_config: Option<SynapseConfig>,
    /// The managed Synapse's database (target synapse): `postgres` runs every instance of the
    /// run on a private PostgreSQL cluster the harness creates and removes (needs PostgreSQL's
    /// initdb and postgres, e.g. Debian's `postgresql` package).
    #[arg(long, value_enum, default_value = "sqlite", help_heading = "Target")]
    pub(crate) synapse_database: Database,
    /// Run the managed Synapse as it is deployed: a main process and N generic workers (N >= 1)
    /// with Redis between them and nginx in front, routed as Synapse's worker documentation
    /// says, on PostgreSQL (implies --synapse-database postgres; needs redis-server and nginx).
    /// One deployment per run, which every case shares (no --synapse-instances); the rate_limits
    /// cases and the case about a per-user limit of 0 run on single-process instances on the
    /// same PostgreSQL cluster, since they need configurations of their own.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), help_heading = "Target")]
    pub(crate) synapse_workers: Option<u32>,
    /// The suite's own self-tests: a deployment with workers whose proxy is misconfigured on
    /// purpose, so that the deployment cases show they can fail.
    #[arg(long, value_enum, value_name = "FAULT", hide = true)]
    pub(crate) synapse_deployment_fault: Vec<crate::homeserver::synapse::nginx::ProxyFault>,
    /// Keep the Synapse data directory (config, database, log) after the run and print its path.
    #[arg(long, help_heading = "Target")]
    pub(crate) keep_data: bool,
    /// The image to test (target container): NAME[:TAG] of an image that follows Complement's
    /// contract (client API on port 8008, SERVER_NAME, CA at /complement/ca/, registration
    /// shared secret `complement`). Without a registry, scripts/build-synapse-image builds
    /// localhost/delayed-events-conformance/synapse:VERSION.
    #[arg(long, value_name = "NAME[:TAG]", help_heading = "Target")]
    pub(crate) image: Option<String>,
    /// How long a started homeserver (target synapse, or the container of target container) may
    /// take to answer /versions, at start and after each restart.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, help_heading = "Target")]
    pub(crate) spawn_timeout: Duration,
    /// Base URL of the homeserver's client API (target url), e.g. http://localhost:8008.
    #[arg(long, value_name = "URL", help_heading = "Target")]
    pub(crate) base_url: Option<String>,
    /// Registration shared secret for Synapse's admin register API. Target url: without it the
    /// harness uses open registration. Target container: default `complement`, as Complement's
    /// contract says.
    #[arg(
        long,
        value_name = "SECRET",
        env = "DEC_REGISTRATION_SHARED_SECRET",
        hide_env_values = true,
        help_heading = "Target"
    )]
    pub(crate) registration_shared_secret: Option<String>,
    /// Target url: a command (run with `sh -c`) that restarts the homeserver keeping its data,
    /// e.g. `docker compose restart hs`. It must not return before the old server has stopped;
    /// the harness then waits for /versions (--spawn-timeout). With it, the cases that restart
    /// the homeserver run instead of skipping.
    #[arg(long, value_name = "CMD", help_heading = "Target")]
    pub(crate) restart_command: Option<String>,
    /// Target url: a command that kills the homeserver hard (as a crash would) and starts it
    /// again keeping its data, for the scenarios that need a hard kill.
    #[arg(long, value_name = "CMD", help_heading = "Target")]
    pub(crate) kill_command: Option<String>,
    /// Force the API form instead of detecting it: comma-separated query-param|endpoint,
    /// split-path|body, unstable|stable.
    #[arg(long, value_name = "FORMS", value_parser = FormOverride::parse, help_heading = "Target")]
    pub(crate) api_form: Option<FormOverride>,
}

impl TargetArgs {
    /// Flags that go with another target than the one chosen. What a target needs (`--image`,
    /// `--base-url`) is asked for where it starts.
    pub(crate) fn validate(&self) -> Result<(), UsageError> {
        if self.target != TargetKind::Url
            && (self.restart_command.is_some() || self.kill_command.is_some())
        {
            return Err(UsageError(
                "--restart-command and --kill-command go with --target url (the harness restarts \
                 the servers it starts itself)"
                    .into(),
            ));
        }
        if self.target != TargetKind::Synapse && self.synapse_database != Database::Sqlite {
            return Err(UsageError(
                "--synapse-database goes with --target synapse (the managed Synapse)".into(),
            ));
        }
        if self.synapse_workers.is_some() {
            if self.target != TargetKind::Synapse {
                return Err(UsageError(
                    "--synapse-workers goes with --target synapse (the managed Synapse)".into(),
                ));
            }
            if self.synapse_instances.is_some() {
                return Err(UsageError(
                    "--synapse-workers runs one deployment that every case shares; leave out \
                     --synapse-instances (or leave out --synapse-workers for single-process \
                     instances)"
                        .into(),
                ));
            }
        }
        if !self.synapse_deployment_fault.is_empty() && self.synapse_workers.is_none() {
            return Err(UsageError(
                "--synapse-deployment-fault misconfigures the proxy of --synapse-workers N".into(),
            ));
        }
        if self.target != TargetKind::Synapse && self.synapse_config.is_some() {
            return Err(UsageError(
                "--synapse-config goes with --target synapse (the managed Synapse); configure other \
                 servers where they run"
                    .into(),
            ));
        }
        match self.target {
            TargetKind::Synapse if self.base_url.is_some() => {
                Err(UsageError("--base-url goes with --target url".into()))
            }
            TargetKind::Container if self.base_url.is_some() => Err(UsageError(
                "--base-url goes with --target url; --target container maps the container's \
                 port itself"
                    .into(),
            )),
            TargetKind::Synapse | TargetKind::Url if self.image.is_some() => {
                Err(UsageError("--image goes with --target container".into()))
            }
            _ => Ok(()),
        }
    }
}

#[derive(Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) server: TargetArgs,
    /// The widget driver under test (--suite msc4157): rust-sdk, widget-api (the adapters in
    /// adapters/), or the command that starts your own driver (README, "Testing a widget driver").
    #[arg(
        long,
        value_name = "rust-sdk|widget-api|COMMAND",
        help_heading = "Target"
    )]
    pub(crate) driver: Option<String>,
    /// The widget driver starts the capability negotiation at once, instead of when the widget
    /// says `content_loaded` (as Element Call's hosts do: the default).
    #[arg(long, help_heading = "Target")]
    pub(crate) driver_starts_at_once: bool,

    /// Run only cases whose id contains this text.
    #[arg(long, value_name = "SUBSTR", help_heading = "Selection")]
    pub(crate) filter: Option<String>,
    /// Leave out cases whose id contains this text (repeatable).
    #[arg(long, value_name = "SUBSTR", help_heading = "Selection")]
    pub(crate) skip: Vec<String>,
    /// With --filter/--skip: match whole ids exactly.
    #[arg(long, help_heading = "Selection")]
    pub(crate) exact: bool,
    /// Run only this area (repeatable), e.g. timing, cancellation.
    #[arg(long, value_name = "NAME", help_heading = "Selection")]
    pub(crate) area: Vec<String>,
    /// Which suite to run.
    #[arg(
        long,
        value_enum,
        default_value = "msc4140",
        help_heading = "Selection"
    )]
    pub(crate) suite: SuiteName,
    /// Failed SHOULD cases fail the run too, and an expectation file's entries for cases that no
    /// longer exist are an error (exit 2) instead of a warning.
    #[arg(long, help_heading = "Selection")]
    pub(crate) strict: bool,
    /// List the selected cases instead of running them (cargo-test style).
    #[arg(long, help_heading = "Selection")]
    pub(crate) list: bool,
    /// How many cases run at once.
    #[arg(long, default_value_t = 32, help_heading = "Selection")]
    pub(crate) concurrency: usize,
    /// Give up on a case after this long (outcome error).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration, help_heading = "Selection")]
    pub(crate) case_timeout: Duration,

    /// Write the results file (JSON, schema 1) here.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub(crate) json: Option<PathBuf>,
    /// Write JUnit XML here (one test suite per area), for CI test reporters.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub(crate) junit: Option<PathBuf>,
    /// Write the Markdown report here (for a pull-request comment or job summary). In GitHub
    /// Actions it is appended to the job summary (GITHUB_STEP_SUMMARY) anyway.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub(crate) markdown: Option<PathBuf>,
    /// Write the HTML report here: one self-contained file.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub(crate) html: Option<PathBuf>,
    /// Known outcomes of this server (TOML); listed failures become xfail. Without it, the
    /// bundled file written for the detected server and version applies, if there is one.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub(crate) expectations: Option<PathBuf>,
    /// Write (or update) an expectation file from this run: failed cases are listed, new ones
    /// with reason "TODO", existing reasons kept, entries of cases that now pass removed. An
    /// existing FILE is also the one applied to this run.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub(crate) update_expectations: Option<PathBuf>,
    /// Apply no expectation file, not even the bundled one.
    #[arg(long, conflicts_with = "expectations", help_heading = "Output")]
    pub(crate) no_expectations: bool,
    /// Less output: one character per case.
    #[arg(long, short, help_heading = "Output")]
    pub(crate) quiet: bool,
}

#[derive(Args)]
pub(crate) struct LoadArgs {
    #[command(flatten)]
    pub(crate) server: TargetArgs,
    /// Delayed events to schedule (without --sweep).
    #[arg(long, default_value_t = 100, help_heading = "Workload")]
    pub(crate) events: usize,
    /// Run growing workloads one after the other, e.g. 10,100,1000 (events each).
    #[arg(
        long,
        value_name = "N,N,...",
        value_delimiter = ',',
        help_heading = "Workload"
    )]
    pub(crate) sweep: Option<Vec<usize>>,
    /// At most this many events per user (default: the server's advertised per-user limit, else 20).
    #[arg(long, value_name = "N", help_heading = "Workload")]
    pub(crate) events_per_user: Option<usize>,
    /// When the first event is due, counted from the start of scheduling.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration, help_heading = "Workload")]
    pub(crate) delay: Duration,
    /// Spread the due times evenly over this window after --delay; 0: all due at once.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration, help_heading = "Workload")]
    pub(crate) spread: Duration,
    /// Call members keeping a hang-up alive by restarting it (MatrixRTC heartbeats).
    #[arg(long, default_value_t = 0, help_heading = "Workload")]
    pub(crate) heartbeaters: usize,
    /// How often each call member restarts its hang-up.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration, help_heading = "Workload")]
    pub(crate) heartbeat_every: Duration,
    /// How long the call members keep heartbeating before they stop.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration, help_heading = "Workload")]
    pub(crate) heartbeat_for: Duration,
    /// Share of the events cancelled or sent at once while pending (alternately), 0 to 1.
    #[arg(long, default_value_t = 0.1, help_heading = "Workload")]
    pub(crate) manage: f64,
    /// Scheduling requests in flight at once.
    #[arg(long, default_value_t = 64, help_heading = "Workload")]
    pub(crate) in_flight: usize,
    /// Give up on the workloads after this long, keeping the figures so far.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration, help_heading = "Workload")]
    pub(crate) max_duration: Duration,
    /// Write the figures as JSON.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub(crate) json: Option<PathBuf>,
    /// Write an HTML page with plots of the figures.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub(crate) html: Option<PathBuf>,
    /// Show in the HTML page, beside this run, the figures an earlier `load --json` wrote, e.g.
    /// the single process beside the worker deployment (repeatable). --json still holds this
    /// run only.
    #[arg(
        long,
        value_name = "LOAD.json",
        value_parser = read_load_report,
        requires = "html",
        help_heading = "Output"
    )]
    pub(crate) beside: Vec<crate::load::Beside>,
}

#[derive(Args)]
pub(crate) struct ReportArgs {
    /// Results files written by `run --json`; one gives that run's report, several the matrix.
    #[arg(value_name = "RESULTS.json", required = true)]
    pub(crate) results: Vec<PathBuf>,
    /// Write HTML here.
    #[arg(long, value_name = "FILE")]
    pub(crate) html: Option<PathBuf>,
    /// Write Markdown here.
    #[arg(long, value_name = "FILE")]
    pub(crate) markdown: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct DiffArgs {
    /// The results file of the base (e.g. the main branch).
    #[arg(value_name = "BASE.json")]
    pub(crate) base: PathBuf,
    /// The results file of the change under review.
    #[arg(value_name = "HEAD.json")]
    pub(crate) head: PathBuf,
}

#[derive(Args)]
pub(crate) struct CleanupArgs {
    /// Remove every container of this suite, also those of runs still going.
    #[arg(long)]
    pub(crate) all: bool,
}

#[derive(Args)]
pub(crate) struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// A problem that stops the run before any verdict: message for the user, exit status 2.
pub(crate) struct UsageError(pub(crate) String);

/// The parsed `--synapse-config` fragment: a YAML mapping.
#[derive(Clone, Debug)]
pub(crate) struct SynapseConfig(pub(crate) serde_json::Value);

/// Reads and checks `--synapse-config FILE`; clap reports an error (exit status 2).
fn read_synapse_config(path: &str) -> Result<SynapseConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {path}: {e}. Give the path of a YAML file."))?;
    let value: serde_json::Value = serde_norway::from_str(&text).map_err(|e| {
        format!("{path} is not valid YAML ({e}). Fix it: it holds Synapse configuration keys, as homeserver.yaml does.")
    })?;
    if !value.is_object() {
        return Err(format!(
            "{path} must be a YAML mapping of Synapse configuration keys (like `max_event_delay_duration: null`), \
             not a {}",
            match value {
                serde_json::Value::Null => "empty document",
                serde_json::Value::Array(_) => "list",
                _ => "single value",
            }
        ));
    }
    Ok(SynapseConfig(value))
}

/// Reads and checks `--beside FILE` before anything starts; clap reports an error (exit status 2).
fn read_load_report(path: &str) -> Result<crate::load::Beside, String> {
    crate::load::Beside::read(std::path::Path::new(path))
}

impl From<TargetError> for UsageError {
    fn from(e: TargetError) -> Self {
        UsageError(e.0)
    }
}

/// Writes an output file the user asked for; failing is a usage error (exit 2).
pub(crate) fn write_file(path: &std::path::Path, text: &str) -> Result<(), UsageError> {
    std::fs::write(path, text)
        .map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))
}

/// An output file's folder must exist: found before the run, not after it.
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
