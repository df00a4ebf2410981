//! Target `synapse`: a Synapse from PyPI in a managed virtualenv under the user's cache directory
//! (or a virtualenv the user names), started on a free loopback port with a fresh data directory
//! per run, SQLite (or PostgreSQL: `postgres.rs`), delayed events enabled and rate limits out of
//! the way.

use super::{Database, Registration, Target, TargetError, TargetInfo, Topology};
use crate::endpoints::VERSIONS;
use async_trait::async_trait;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::distributions::{Alphanumeric, DistString};
use rand::RngCore;
use serde_json::{json, Value};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

mod config;
mod install;
mod postgres;
/// Also used to start widget drivers (`widget::bridge`): children that die with the harness.
pub(crate) mod process;
// Synapse as deployed with workers (--synapse-workers): routing, reverse proxy, Redis, config.
pub mod deployed;
pub mod deployment;
pub mod nginx;
pub mod redis;
pub mod routing;
pub mod service;
mod workers;

use config::*;
use install::*;
use process::*;

pub use postgres::PostgresCluster;

/// The Synapse release a run uses unless told otherwise.
pub const PINNED_VERSION: &str = "1.163.2";

const PACKAGE: &str = "matrix-synapse";
const DEFAULT_INDEX: &str = "https://pypi.org/simple";
/// Written into a managed virtualenv once everything in it works; holds the installed version.
const INSTALLED_MARKER: &str = ".installed";
const READY_POLL_INTERVAL: Duration = Duration::from_millis(25);
const RESTART_GRACE: Duration = Duration::from_secs(10);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How many lines of each log a start-up failure shows.
const FAILURE_LOG_LINES: usize = 30;
/// `log_tail` reads at most this much from the end of a log file.
const TAIL_READ_LIMIT: u64 = 256 * 1024;

pub struct SynapseOptions {
    /// The `matrix-synapse` version to install into the managed virtualenv.
    pub version: String,
    /// An existing environment whose `bin/python` can `import synapse`; no install happens then.
    pub venv: Option<PathBuf>,
    /// Where managed virtualenvs live; default `<user cache dir>/delayed-events-conformance`.
    pub cache_dir: Option<PathBuf>,
    /// How long to wait for `/versions` to answer after launching Synapse.
    pub spawn_timeout: Duration,
    /// A spinner on stderr while installing.
    pub show_progress: bool,
    /// Keep the per-run data directory (its path is printed) instead of deleting it.
    pub keep_data: bool,
    /// Keep Synapse's own limits for delayed events instead of lifting them: management
    /// (`rc_delayed_event_mgmt`) and messages (`rc_message`, which scheduling and the timer's
    /// sends count against). For the rate_limits cases, which need a server with its normal
    /// limits.
    pub default_delayed_event_limits: bool,
    /// A configuration fragment (`--synapse-config`) deep-merged over what the harness writes.
    pub config_fragment: Option<Value>,
    /// The run's PostgreSQL cluster (`start_postgres`), where this instance gets a database of
    /// its own; SQLite without one.
    pub postgres: Option<Arc<PostgresCluster>>,
}

impl SynapseOptions {
    /// These options with `fragment` merged over the `--synapse-config` one (as that one is
    /// merged over what the harness writes), so that it wins.
    pub fn with_config(mut self, fragment: Value) -> Self {
        let mut merged = self.config_fragment.take().unwrap_or_else(|| json!({}));
        config::deep_merge(&mut merged, &fragment);
        self.config_fragment = Some(merged);
        self
    }
}

impl Default for SynapseOptions {
    fn default() -> Self {
        SynapseOptions {
            version: PINNED_VERSION.to_string(),
            venv: None,
            cache_dir: None,
            spawn_timeout: Duration::from_secs(30),
            show_progress: true,
            keep_data: false,
            default_delayed_event_limits: false,
            config_fragment: None,
            postgres: None,
        }
    }
}

pub struct SynapseTarget {
    python: PathBuf,
    version: String,
    port: u16,
    registration_secret: String,
    files: RunFiles,
    /// `None` once shut down (the directory is then deleted or kept).
    data_dir: Mutex<Option<tempfile::TempDir>>,
    keep_data: bool,
    spawn_timeout: Duration,
    http: reqwest::Client,
    /// The running homeserver; `None` before the first start, after a failed restart and after
    /// shutdown. Its process is the leader of its own process group.
    server: tokio::sync::Mutex<Option<Child>>,
    startup_ms: AtomicU64,
    /// This instance's hold on the run's PostgreSQL cluster; `None` on SQLite and after shutdown.
    postgres: Mutex<Option<Arc<PostgresCluster>>>,
    topology: Topology,
}

/// The Python of the environment `opts` names (installing the managed one if needed), for
/// running a Synapse outside the harness (tests of `--target url`).
pub async fn installed_python(opts: &SynapseOptions) -> Result<PathBuf, TargetError> {
    Ok(find_or_install(opts).await?.python)
}

/// The Python and Synapse release of the environment `opts` names, with Synapse's `redis` extra,
/// which workers need to replicate: added to a managed virtualenv once; for --synapse-venv, an
/// error says how to add it.
pub async fn python_for_workers(opts: &SynapseOptions) -> Result<(PathBuf, String), TargetError> {
    let installation = find_or_install(opts).await?;
    ensure_redis_extra(opts, &installation).await?;
    Ok((installation.python, installation.version))
}

/// The run's private PostgreSQL cluster, for `SynapseOptions::postgres`: checks that PostgreSQL
/// is installed, that Synapse's environment can talk to it (adding psycopg2 to a managed
/// virtualenv, once), then creates and starts the cluster. It stops when the last instance
/// given it shuts down, or is dropped.
pub async fn start_postgres(opts: &SynapseOptions) -> Result<Arc<PostgresCluster>, TargetError> {
    postgres::check_installed()?;
    let installation = find_or_install(opts).await?;
    ensure_psycopg2(opts, &installation).await?;
    let cluster = PostgresCluster::start(opts.keep_data, opts.spawn_timeout).await?;
    Ok(Arc::new(cluster))
}

impl SynapseTarget {
    /// Installs Synapse if needed, writes a fresh configuration and starts the homeserver;
    /// returns once it answers `/_matrix/client/versions`.
    pub async fn start(opts: SynapseOptions) -> Result<SynapseTarget, TargetError> {
        let installation = find_or_install(&opts).await?;
        sweep_stale_run_dirs();
        let data_dir = tempfile::Builder::new()
            .prefix(RUN_DIR_PREFIX)
            .tempdir_in(run_dir_parent())
            .map_err(|e| TargetError(format!("cannot create a data directory for Synapse: {e}")))?;
        // Marks whose run this is, so a later run can remove it if this harness is killed.
        let _ = std::fs::write(
            data_dir.path().join(HARNESS_PID_FILE),
            std::process::id().to_string(),
        );
        let files = RunFiles::in_dir(data_dir.path());
        let port = free_loopback_port()?;
        let registration_secret = random_secret();
        let database = match &opts.postgres {
            Some(cluster) => Some(cluster.create_database().await?),
            None => None,
        };
        files
            .write(
                port,
                &registration_secret,
                opts.default_delayed_event_limits,
                database.as_ref(),
                opts.config_fragment.as_ref(),
            )
            .map_err(|e| {
                TargetError(format!(
                    "cannot write Synapse's configuration in {}: {e}",
                    files.dir.display()
                ))
            })?;
        let target = SynapseTarget {
            python: installation.python,
            version: installation.version,
            port,
            registration_secret,
            files,
            data_dir: Mutex::new(Some(data_dir)),
            keep_data: opts.keep_data,
            spawn_timeout: opts.spawn_timeout,
            http: crate::client::probe_client(),
            server: tokio::sync::Mutex::new(None),
            startup_ms: AtomicU64::new(0),
            topology: Topology {
                database: match opts.postgres {
                    Some(_) => Database::Postgres,
                    None => Database::Sqlite,
                },
                ..Topology::default()
            },
            postgres: Mutex::new(opts.postgres),
        };
        // On failure, dropping `target` removes the data directory (or keeps it, as asked).
        let child = target.launch().await?;
        *target.server.lock().await = Some(child);
        Ok(target)
    }

    pub fn data_dir(&self) -> &Path {
        &self.files.dir
    }

    /// Milliseconds from launch to the first answer of `/versions`, for the last (re)start.
    pub fn startup_ms(&self) -> u64 {
        self.startup_ms.load(Ordering::Relaxed)
    }

    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Spawns Synapse and waits until it answers; on failure nothing is left running.
    async fn launch(&self) -> Result<Child, TargetError> {
        let launched = Instant::now();
        let mut child = spawn_homeserver(&self.python, &self.files)
            .await
            .map_err(|e| {
                TargetError(format!(
                    "cannot run {}: {e}.\nCheck that this Python still exists (a managed \
                 virtualenv is rebuilt when its Python is gone; for --synapse-venv, fix or \
                 recreate that environment).",
                    self.python.display()
                ))
            })?;
        match self.wait_until_ready(&mut child).await {
            Ok(()) => {
                let elapsed = launched.elapsed().as_millis() as u64;
                self.startup_ms.store(elapsed, Ordering::Relaxed);
                Ok(child)
            }
            Err(reason) => {
                stop(child, Duration::ZERO).await;
                Err(self.start_failure(&reason))
            }
        }
    }

    /// Polls `/versions` until it answers 200; the reason otherwise.
    async fn wait_until_ready(&self, child: &mut Child) -> Result<(), String> {
        let url = format!("{}{VERSIONS}", self.base_url());
        let deadline = Instant::now() + self.spawn_timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(describe_exit(status));
            }
            if crate::client::answers_ok(&self.http, &url).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let waited = self.spawn_timeout.as_secs_f64();
                return Err(format!("did not answer within {waited} s"));
            }
            tokio::time::sleep(READY_POLL_INTERVAL).await;
        }
    }

    fn start_failure(&self, reason: &str) -> TargetError {
        TargetError(format!(
            "Synapse {} did not start: {reason}. Last lines of its log:\n{}\n\
             If this Synapse needs something this harness does not set up, try another \
             --synapse-version, or --synapse-venv with a Synapse you know works \
             (--keep-data keeps its configuration and logs for a look).",
            self.version,
            self.files.log_tail(FAILURE_LOG_LINES)
        ))
    }

    /// Deletes the data directory, or keeps it and says where, as asked. Once.
    fn release_data_dir(&self) {
        release_run_dir(&self.data_dir, self.keep_data, "Synapse data");
    }
}

#[async_trait]
impl Target for SynapseTarget {
    fn info(&self) -> TargetInfo {
        TargetInfo {
            kind: "synapse".into(),
            name: "Synapse".into(),
            version: Some(self.version.clone()),
            base_url: self.base_url(),
            topology: Some(self.topology.clone()),
            ..Default::default()
        }
    }

    fn registration(&self) -> Registration {
        Registration::SharedSecret(self.registration_secret.clone())
    }

    fn can_restart(&self) -> Result<(), String> {
        Ok(())
    }

    async fn restart(&self) -> Result<(), TargetError> {
        self.cycle(RESTART_GRACE).await
    }

    fn can_kill(&self) -> Result<(), String> {
        Ok(())
    }

    /// SIGKILL to Synapse's process group (no grace: a crash), then a start on the same data.
    async fn kill(&self) -> Result<(), TargetError> {
        self.cycle(Duration::ZERO).await
    }

    fn log_tail(&self, lines: usize) -> Option<String> {
        Some(self.files.log_tail(lines))
    }

    async fn server_cpu_time(&self) -> Option<Duration> {
        let pid = self.server.lock().await.as_ref()?.id()?;
        super::process_cpu_time(pid)
    }

    async fn shutdown(&self) {
        if let Some(child) = self.server.lock().await.take() {
            stop(child, SHUTDOWN_GRACE).await;
        }
        self.release_data_dir();
        let postgres = self
            .postgres
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        postgres::release(postgres).await;
    }
}

impl SynapseTarget {
    /// Stops the homeserver (SIGTERM, SIGKILL after `grace`; at once for a zero grace) and
    /// starts it again with its data kept.
    async fn cycle(&self, grace: Duration) -> Result<(), TargetError> {
        let mut server = self.server.lock().await;
        let Some(child) = server.take() else {
            return Err(TargetError(
                "Synapse is not running (it was shut down or failed to restart before); \
                 start a new run."
                    .into(),
            ));
        };
        stop(child, grace).await;
        *server = Some(self.launch().await?);
        Ok(())
    }
}

impl Drop for SynapseTarget {
    /// The path where `shutdown` was never awaited (a panic, an early return): kill at once.
    fn drop(&mut self) {
        if let Some(mut child) = self.server.get_mut().take() {
            if let Some(pid) = child.id() {
                signal_group(pid, libc::SIGKILL);
            }
            reap_briefly(&mut child);
        }
        self.release_data_dir();
    }
}

/// Data directories are `<tmp>/synapse-run-XXXX`, each holding the pid of the harness that made it.
const RUN_DIR_PREFIX: &str = "synapse-run-";
const HARNESS_PID_FILE: &str = "harness.pid";

/// Takes a run's directory out of `slot` (once) and deletes it, or with `keep` leaves it to the
/// user and says where (`what` names its contents): kept data is the user's, so its harness pid
/// file goes and no later run's sweep removes it.
pub(crate) fn release_run_dir(slot: &Mutex<Option<tempfile::TempDir>>, keep: bool, what: &str) {
    let Some(dir) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    if keep {
        let _ = std::fs::remove_file(dir.path().join(HARNESS_PID_FILE));
        eprintln!("{what} kept in {}", dir.keep().display());
    }
}

/// Where per-run data directories go: memory-backed `/dev/shm` where there is one, since SQLite
/// commits on a disk dominate Synapse's time in a catalogue run; the temp dir otherwise.
fn run_dir_parent() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let writable = shm.is_dir() && tempfile::tempdir_in(shm).is_ok();
    if writable && std::env::var_os("TMPDIR").is_none() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Removes data directories left by harnesses that were killed outright (SIGKILL gives no chance
/// to clean up; their Synapse died with them through the parent-death signal). A directory is
/// stale when the harness pid it records no longer runs; kept data (`--keep-data`) has no pid file.
fn sweep_stale_run_dirs() {
    let Ok(entries) = std::fs::read_dir(run_dir_parent()) else {
        return;
    };
    for entry in entries.flatten() {
        let is_run_dir = entry
            .file_name()
            .to_string_lossy()
            .starts_with(RUN_DIR_PREFIX);
        let owner = std::fs::read_to_string(entry.path().join(HARNESS_PID_FILE))
            .ok()
            .and_then(|text| text.trim().parse::<libc::pid_t>().ok());
        if let (true, Some(pid)) = (is_run_dir, owner) {
            // SAFETY: signal 0 only checks whether the process exists.
            let alive = unsafe { libc::kill(pid, 0) } == 0
                || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
            if !alive {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}
