//! Target `synapse`: a Synapse from PyPI in a managed virtualenv under the user's cache directory
//! (or a virtualenv the user names), started on a free loopback port with a fresh data directory
//! per run, SQLite, delayed events enabled and rate limits out of the way.

use super::{Registration, Target, TargetError, TargetInfo};
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
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

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
    /// Keep Synapse's own limits for delayed-event management (`rc_delayed_event_mgmt`) instead
    /// of lifting them: for the rate_limits cases, which need a server with its normal limits.
    pub default_delayed_event_limits: bool,
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
        files
            .write(
                port,
                &registration_secret,
                opts.default_delayed_event_limits,
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
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .map_err(|e| TargetError(format!("cannot create an HTTP client: {e}")))?,
            server: tokio::sync::Mutex::new(None),
            startup_ms: AtomicU64::new(0),
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
        let url = format!("{}/_matrix/client/versions", self.base_url());
        let deadline = Instant::now() + self.spawn_timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(describe_exit(status));
            }
            if self.answers(&url).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let waited = self.spawn_timeout.as_secs_f64();
                return Err(format!("did not answer within {waited} s"));
            }
            tokio::time::sleep(READY_POLL_INTERVAL).await;
        }
    }

    async fn answers(&self, url: &str) -> bool {
        let request = self.http.get(url).timeout(Duration::from_secs(2)).send();
        matches!(request.await, Ok(r) if r.status().is_success())
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
        let Some(dir) = self
            .data_dir
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        if self.keep_data {
            // Kept data is the user's now: no later run's sweep may remove it.
            let _ = std::fs::remove_file(dir.path().join(HARNESS_PID_FILE));
            eprintln!("Synapse data kept in {}", dir.keep().display());
        }
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
        let mut server = self.server.lock().await;
        let Some(child) = server.take() else {
            return Err(TargetError(
                "Synapse is not running (it was shut down or failed to restart before); \
                 start a new run."
                    .into(),
            ));
        };
        stop(child, RESTART_GRACE).await;
        *server = Some(self.launch().await?);
        Ok(())
    }

    fn log_tail(&self, lines: usize) -> Option<String> {
        Some(self.files.log_tail(lines))
    }

    async fn shutdown(&self) {
        if let Some(child) = self.server.lock().await.take() {
            stop(child, SHUTDOWN_GRACE).await;
        }
        self.release_data_dir();
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

// ---------------------------------------------------------------------------------------------
// The homeserver process

async fn spawn_homeserver(python: &Path, files: &RunFiles) -> io::Result<Child> {
    let output = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&files.output_log)?;
    let mut command = Command::new(python);
    command
        .args(["-m", "synapse.app.homeserver", "-c"])
        .arg(&files.config)
        .current_dir(&files.dir)
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output)
        // Its own group: the terminal's Ctrl-C does not reach it, and we can signal all of it.
        .process_group(0);
    let harness = std::process::id() as libc::pid_t;
    // SAFETY: the closure only makes async-signal-safe system calls.
    unsafe {
        command.pre_exec(move || die_with_parent(harness));
    }
    spawn_from_launcher(command).await
}

type LaunchJob = Box<dyn FnOnce() + Send>;

/// Spawns `command` from one thread that lives as long as the harness. The kernel sends the
/// parent-death signal when the *thread* that forked the child ends, and callers' threads end
/// early: libtest workers leave when the queue of cases runs dry, while other cases still run.
async fn spawn_from_launcher(mut command: Command) -> io::Result<Child> {
    static LAUNCHER: OnceLock<mpsc::Sender<LaunchJob>> = OnceLock::new();
    let launcher = LAUNCHER.get_or_init(|| {
        let (sender, jobs) = mpsc::channel::<LaunchJob>();
        // If the thread cannot start, `jobs` is dropped and every send below fails.
        let _ = std::thread::Builder::new()
            .name("synapse-launcher".into())
            .spawn(move || jobs.into_iter().for_each(|job| job()));
        sender
    });
    let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job: LaunchJob = Box::new(move || {
        let _context = runtime.enter(); // tokio reaps the child through this runtime
        let _ = reply.send(command.spawn());
    });
    let gone = || io::Error::other("the thread that launches Synapse is gone");
    launcher.send(job).map_err(|_| gone())?;
    answer.await.map_err(|_| gone())?
}

/// Runs in the forked child: if the harness is killed outright, the kernel kills Synapse too.
#[cfg(target_os = "linux")]
fn die_with_parent(harness: libc::pid_t) -> io::Result<()> {
    // SAFETY: plain system calls without pointers.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return Err(io::Error::last_os_error());
        }
        // The harness may have died between fork and prctl.
        if libc::getppid() != harness {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_harness: libc::pid_t) -> io::Result<()> {
    Ok(())
}

fn signal_group(leader: u32, signal: libc::c_int) {
    // SAFETY: killpg has no memory effects; an already-gone group only yields ESRCH.
    unsafe {
        libc::killpg(leader as libc::pid_t, signal);
    }
}

/// SIGTERM to the whole group, SIGKILL after `grace`, and reap.
async fn stop(mut child: Child, grace: Duration) {
    let Some(pid) = child.id() else { return }; // already reaped
    signal_group(pid, libc::SIGTERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        signal_group(pid, libc::SIGKILL);
        let _ = child.wait().await;
    }
}

/// Waits (blocking, for at most two seconds) for a killed child so its files can be deleted.
fn reap_briefly(child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => format!("exited ({status})"),
    }
}

fn free_loopback_port() -> Result<u16, TargetError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| TargetError(format!("cannot find a free port on 127.0.0.1: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Configuration and data of one run

/// Where everything of one run lives, inside its data directory.
struct RunFiles {
    dir: PathBuf,
    config: PathBuf,
    log_config: PathBuf,
    server_log: PathBuf,
    /// Synapse's stdout and stderr (normally empty; start-up crashes land here).
    output_log: PathBuf,
    signing_key: PathBuf,
}

impl RunFiles {
    fn in_dir(dir: &Path) -> RunFiles {
        RunFiles {
            dir: dir.to_path_buf(),
            config: dir.join("homeserver.yaml"),
            log_config: dir.join("log_config.yaml"),
            server_log: dir.join("homeserver.log"),
            output_log: dir.join("output.log"),
            signing_key: dir.join("signing.key"),
        }
    }

    /// Writes the configuration, the log configuration and a signing key. Both configurations
    /// are JSON, which YAML parsers (and so Synapse) read as YAML.
    fn write(
        &self,
        port: u16,
        registration_secret: &str,
        default_delayed_event_limits: bool,
    ) -> io::Result<()> {
        let mut config = self.homeserver_config(port, registration_secret);
        if default_delayed_event_limits {
            if let Some(object) = config.as_object_mut() {
                object.remove("rc_delayed_event_mgmt");
            }
        }
        fs::write(&self.config, serde_json::to_string_pretty(&config)?)?;
        fs::write(
            &self.log_config,
            serde_json::to_string_pretty(&self.log_config())?,
        )?;
        fs::write(&self.signing_key, signing_key_line())
    }

    fn homeserver_config(&self, port: u16, registration_secret: &str) -> Value {
        let mut config = json!({
            "server_name": "localhost",
            "pid_file": self.dir.join("homeserver.pid"),
            "listeners": [{
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": false,
                "x_forwarded": false,
                "resources": [{"names": ["client"], "compress": false}],
            }],
            "database": {
                "name": "sqlite3",
                "args": {"database": self.dir.join("homeserver.db")},
            },
            "log_config": self.log_config,
            "media_store_path": self.dir.join("media_store"),
            "signing_key_path": self.signing_key,
            "registration_shared_secret": registration_secret,
            "macaroon_secret_key": random_secret(),
            "form_secret": random_secret(),
            "report_stats": false,
            "trusted_key_servers": [],
            "suppress_key_server_warning": true,
            "enable_registration": false,
            // Every case registers fresh users; full-strength hashing would dominate the run.
            "bcrypt_rounds": 4,
            "presence": {"enabled": false},
            // Background work on every event or join that no case looks at; on a 2-core machine
            // it competes with the catalogue for Synapse's one busy thread.
            "user_directory": {"enabled": false},
            "stats": {"enabled": false},
            "push": {"enabled": false},
            // 2026-07: "All delayed event related endpoints are available to guest accounts."
            "allow_guest_access": true,
            // Enables delayed events (MSC4140) and bounds their delay.
            "max_event_delay_duration": "24h",
            // A per-user limit the limits cases can fill quickly (Synapse's default is 100).
            "experimental_features": {"msc4140_max_delayed_events_per_user": 20},
        });
        if let Some(object) = config.as_object_mut() {
            object.extend(unlimited_rate_limits());
        }
        config
    }

    fn log_config(&self) -> Value {
        json!({
            "version": 1,
            "formatters": {"precise": {"format":
                "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s"}},
            "handlers": {"file": {
                "class": "logging.FileHandler",
                "formatter": "precise",
                "filename": self.server_log,
            }},
            "root": {"level": "INFO", "handlers": ["file"]},
            "disable_existing_loggers": false,
        })
    }

    /// The end of Synapse's log, and of its stdout/stderr when that says something the log
    /// does not (start-up errors usually land in both).
    fn log_tail(&self, lines: usize) -> String {
        let server_log = tail_lines(&self.server_log, lines);
        let logged = server_log.as_deref().unwrap_or("");
        let output = tail_lines(&self.output_log, lines)
            .filter(|output| output.lines().any(|line| !logged.contains(line)))
            .map(|output| format!("--- Synapse's stdout/stderr ---\n{output}"));
        let parts: Vec<String> = [server_log, output].into_iter().flatten().collect();
        if parts.is_empty() {
            return "(Synapse wrote nothing to its log)".into();
        }
        parts.join("\n")
    }
}

/// Rate limits no concurrent catalogue comes near. Keys a Synapse release does not know are
/// ignored by it, so the list may name limits newer than the running version.
fn unlimited_rate_limits() -> serde_json::Map<String, Value> {
    let unlimited = json!({"per_second": 10000, "burst_count": 10000});
    let per = |kinds: &[&str]| -> Value {
        kinds
            .iter()
            .map(|k| (k.to_string(), unlimited.clone()))
            .collect()
    };
    [
        ("rc_message", unlimited.clone()),
        ("rc_registration", unlimited.clone()),
        ("rc_login", per(&["address", "account", "failed_attempts"])),
        ("rc_joins", per(&["local", "remote"])),
        ("rc_joins_per_room", unlimited.clone()),
        ("rc_invites", per(&["per_room", "per_user", "per_issuer"])),
        ("rc_delayed_event_mgmt", unlimited.clone()),
        ("rc_admin_redaction", unlimited.clone()),
        ("rc_3pid_validation", unlimited.clone()),
        ("rc_room_creation", unlimited.clone()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), value))
    .collect()
}

/// A signing key in Synapse's file format: `ed25519 <key id> <unpadded base64 seed>`.
fn signing_key_line() -> String {
    let mut rng = rand::thread_rng();
    let key_id = Alphanumeric.sample_string(&mut rng, 4);
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    format!("ed25519 a_{key_id} {}\n", base64_unpadded(&seed))
}

fn random_secret() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), 32)
}

fn base64_unpadded(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The last `lines` lines of a file, reading at most `TAIL_READ_LIMIT` bytes of it; `None`
/// when it is missing or blank.
fn tail_lines(path: &Path, lines: usize) -> Option<String> {
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL_READ_LIMIT)))
        .ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.trim_matches('\n').lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n");
    (!tail.trim().is_empty()).then_some(tail)
}

// ---------------------------------------------------------------------------------------------
// Finding or installing Synapse

struct Installation {
    python: PathBuf,
    version: String,
}

async fn find_or_install(opts: &SynapseOptions) -> Result<Installation, TargetError> {
    match &opts.venv {
        Some(dir) => existing_venv(dir).await,
        None => managed_venv(opts).await,
    }
}

async fn existing_venv(dir: &Path) -> Result<Installation, TargetError> {
    let python = dir.join("bin").join("python");
    match synapse_version_of(&python).await {
        Ok(version) => Ok(Installation { python, version }),
        Err(why) => Err(TargetError(format!(
            "--synapse-venv {}: {} cannot import Synapse ({why}).\nPoint --synapse-venv at a \
             virtualenv where matrix-synapse is installed (`pip install matrix-synapse`, or \
             `pip install -e` of a checkout), or leave the option out to use a managed Synapse.",
            dir.display(),
            python.display()
        ))),
    }
}

/// What `python -c 'import synapse'` says the version is, or why that failed.
async fn synapse_version_of(python: &Path) -> Result<String, String> {
    let output = Command::new(python)
        .args(["-c", "import synapse; print(synapse.__version__)"])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(stderr
            .trim()
            .lines()
            .last()
            .unwrap_or("no error output")
            .to_string());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

async fn managed_venv(opts: &SynapseOptions) -> Result<Installation, TargetError> {
    let cache = match &opts.cache_dir {
        Some(dir) => dir.clone(),
        None => dirs::cache_dir()
            .ok_or_else(|| {
                TargetError(
                    "cannot tell where the user's cache directory is (is HOME set?); \
                     use --synapse-venv with an existing Synapse environment."
                        .into(),
                )
            })?
            .join("delayed-events-conformance"),
    };
    let venv = cache.join(format!("synapse-{}", opts.version));
    if let Some(done) = completed_install(&venv) {
        return Ok(done);
    }
    fs::create_dir_all(&cache).map_err(|e| {
        TargetError(format!(
            "cannot create the cache directory {}: {e}",
            cache.display()
        ))
    })?;
    let _lock = lock_exclusively(&cache.join("install.lock"), opts.show_progress).await?;
    // Another run may have finished the same install while we waited for the lock.
    if let Some(done) = completed_install(&venv) {
        return Ok(done);
    }
    let log = cache.join(format!("synapse-{}.install.log", opts.version));
    Installer::new(&opts.version, venv, log, opts.show_progress)
        .run()
        .await
}

fn completed_install(venv: &Path) -> Option<Installation> {
    let version = fs::read_to_string(venv.join(INSTALLED_MARKER)).ok()?;
    let python = venv.join("bin").join("python");
    // A venv whose base Python was removed or upgraded away is as good as incomplete.
    python.exists().then(|| Installation {
        python,
        version: version.trim().to_string(),
    })
}

/// Holds an exclusive `flock` on `path` until dropped, so concurrent runs install only once.
/// Locks `path`; `announce` says so on stderr when another holder makes it wait.
async fn lock_exclusively(path: &Path, announce: bool) -> Result<File, TargetError> {
    let cannot =
        |e: &dyn std::fmt::Display| TargetError(format!("cannot lock {}: {e}", path.display()));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| cannot(&e))?;
    if flock(&file, libc::LOCK_EX | libc::LOCK_NB).is_ok() {
        return Ok(file);
    }
    if announce {
        eprintln!("Waiting for another run to finish installing Synapse ...");
    }
    let locked = tokio::task::spawn_blocking(move || flock(&file, libc::LOCK_EX).map(|()| file));
    match locked.await {
        Ok(Ok(file)) => Ok(file),
        Ok(Err(e)) => Err(cannot(&e)),
        Err(e) => Err(cannot(&e)),
    }
}

fn flock(file: &File, operation: libc::c_int) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a descriptor that `file` keeps open.
    match unsafe { libc::flock(file.as_raw_fd(), operation) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// One first-time install into `venv`, narrated by a spinner and recorded in `log`.
struct Installer<'a> {
    version: &'a str,
    venv: PathBuf,
    log: PathBuf,
    spinner: ProgressBar,
    started: Instant,
}

impl<'a> Installer<'a> {
    fn new(version: &'a str, venv: PathBuf, log: PathBuf, show_progress: bool) -> Self {
        let spinner = if show_progress {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        spinner.set_style(
            ProgressStyle::with_template(
                "{spinner} Installing Synapse {prefix}: {msg} [{elapsed}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        spinner.set_prefix(version.to_string());
        spinner.set_message("starting");
        spinner.enable_steady_tick(Duration::from_millis(100));
        Installer {
            version,
            venv,
            log,
            spinner,
            started: Instant::now(),
        }
    }

    async fn run(self) -> Result<Installation, TargetError> {
        let result = self.install().await;
        self.spinner.finish_and_clear();
        let installation = result?;
        eprintln!(
            "Installed Synapse {} in {:.1} s into {}",
            installation.version,
            self.started.elapsed().as_secs_f64(),
            self.venv.display()
        );
        Ok(installation)
    }

    async fn install(&self) -> Result<Installation, TargetError> {
        let _ = fs::remove_file(&self.log);
        self.stage("reading pip's configuration");
        let pip = PipSettings::read().await?;
        self.stage("looking up the release date");
        let cutoff = self.dependency_cutoff(&pip).await?;
        self.stage("creating a virtualenv");
        self.create_venv().await?;
        self.install_package(&pip, cutoff.as_deref()).await?;
        self.stage("checking that Synapse imports");
        let python = self.venv.join("bin").join("python");
        let version = synapse_version_of(&python).await.map_err(|why| {
            self.failure(
                "checking the installation",
                &format!("`import synapse` failed: {why}"),
            )
        })?;
        fs::write(self.venv.join(INSTALLED_MARKER), &version)
            .map_err(|e| self.failure("marking the installation complete", &e.to_string()))?;
        Ok(Installation { python, version })
    }

    fn stage(&self, what: &str) {
        self.spinner.set_message(what.to_string());
    }

    /// A line on stderr that does not fight with the spinner (and shows when it is hidden).
    fn notice(&self, text: &str) {
        self.spinner.suspend(|| eprintln!("{text}"));
    }

    /// The `--exclude-newer` date: the day after the release, so dependencies resolve as they
    /// did then. `None` (said aloud) when the index does not tell.
    async fn dependency_cutoff(&self, pip: &PipSettings) -> Result<Option<String>, TargetError> {
        match release_upload_date(pip, self.version).await {
            Ok(date) => Ok(day_after(&date)),
            Err(LookupError::NoSuchVersion(page)) => Err(TargetError(format!(
                "{PACKAGE} {} is not on the package index ({page} lists no such version).\n\
                 Check --synapse-version against the versions listed there.",
                self.version
            ))),
            Err(LookupError::Unavailable(why)) => {
                self.notice(&format!(
                    "note: cannot find when {PACKAGE} {} was released ({why}); installing with \
                     today's dependencies, which may not work with an older release.",
                    self.version
                ));
                Ok(None)
            }
        }
    }

    async fn create_venv(&self) -> Result<(), TargetError> {
        if self.venv.exists() {
            fs::remove_dir_all(&self.venv)
                .map_err(|e| self.failure("removing an incomplete virtualenv", &e.to_string()))?;
        }
        let mut command = Command::new("python3");
        command.args(["-m", "venv"]).arg(&self.venv);
        self.run_logged(&mut command).await.map_err(|tail| {
            self.failure(
                "creating a virtualenv",
                &format!(
                    "{tail}\n(On Debian and Ubuntu, `python3 -m venv` needs the python3-venv \
                     package: `sudo apt install python3-venv`.)"
                ),
            )
        })
    }

    /// With uv (dependencies as of `cutoff`) when it can be had, else with plain pip.
    async fn install_package(
        &self,
        pip: &PipSettings,
        cutoff: Option<&str>,
    ) -> Result<(), TargetError> {
        let requirement = format!("{PACKAGE}=={}", self.version);
        let python = self.venv.join("bin").join("python");
        self.stage("installing uv");
        let mut get_uv = Command::new(&python);
        get_uv.args(["-m", "pip", "install", "uv"]);
        let mut with_uv = Command::new(self.venv.join("bin").join("uv"));
        with_uv
            .args(["pip", "install", "--compile-bytecode", "--python"])
            .arg(&python)
            .args(cutoff.map(|date| format!("--exclude-newer={date}")))
            .args(pip.uv_arguments())
            .arg(&requirement)
            // Trust the system's certificates as pip does (corporate proxies); the variable
            // was renamed in uv 0.10, so set both.
            .env("UV_NATIVE_TLS", "1")
            .env("UV_SYSTEM_CERTS", "1");
        if let Some(cert) = pip.uv_ca_bundle() {
            with_uv.env("SSL_CERT_FILE", cert);
        }
        let uv_result = match self.run_logged(&mut get_uv).await {
            Ok(()) => {
                self.stage("installing Synapse with uv");
                self.run_logged(&mut with_uv).await
            }
            Err(tail) => Err(tail),
        };
        let Err(uv_tail) = uv_result else {
            return Ok(());
        };
        self.notice(&format!(
            "note: installing with uv failed ({}); trying plain pip, with today's dependencies.",
            uv_tail.lines().last().unwrap_or("no output")
        ));
        self.stage("installing Synapse with pip");
        let mut with_pip = Command::new(&python);
        with_pip.args(["-m", "pip", "install", &requirement]);
        self.run_logged(&mut with_pip).await.map_err(|tail| {
            self.failure(
                &format!("installing {requirement}"),
                &format!(
                    "{tail}\n(Synapse {} may need a newer Python than `python3` here, or the \
                     package index may be unreachable.)",
                    self.version
                ),
            )
        })
    }

    /// Runs `command` with its output appended to the install log; the log's tail on failure.
    async fn run_logged(&self, command: &mut Command) -> Result<(), String> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("cannot write {}: {e}", self.log.display()))?;
        let elapsed = self.started.elapsed().as_secs_f64();
        let command_line = hide_credentials(&format!("{:?}", command.as_std()));
        let _ = writeln!(log, "[{elapsed:.1} s] {command_line}");
        let stderr = log.try_clone().map_err(|e| e.to_string())?;
        let status = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .status()
            .await
            .map_err(|e| format!("cannot run {:?}: {e}", command.as_std().get_program()))?;
        if status.success() {
            return Ok(());
        }
        Err(tail_lines(&self.log, 15).unwrap_or_default())
    }

    fn failure(&self, stage: &str, detail: &str) -> TargetError {
        TargetError(format!(
            "installing Synapse {} failed while {stage}:\n{detail}\nFull log: {}\n\
             The next run starts the install over. Alternatives: --synapse-venv DIR with a \
             Synapse you installed, or --target url.",
            self.version,
            self.log.display()
        ))
    }
}

fn python_missing() -> TargetError {
    TargetError(
        "the managed Synapse target needs Python 3, and `python3` is not on PATH.\n\
         Install it (Debian/Ubuntu: `sudo apt install python3 python3-venv`; Fedora: \
         `sudo dnf install python3`; macOS: `brew install python`), or use \
         --synapse-venv DIR with an environment where Synapse is installed, or test a server \
         you run yourself with --target url --base-url URL."
            .into(),
    )
}

/// The parts of pip's configuration (files and `PIP_*` variables) that say where packages come
/// from, so the index lookup and uv use the same source as pip.
#[derive(Default)]
struct PipSettings {
    index_url: Option<String>,
    extra_index_urls: Vec<String>,
    find_links: Vec<String>,
    cert: Option<String>,
}

impl PipSettings {
    async fn read() -> Result<PipSettings, TargetError> {
        let output = Command::new("python3")
            .args(["-m", "pip", "config", "list"])
            .stdin(Stdio::null())
            .output()
            .await;
        match output {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(python_missing()),
            // No pip next to the system Python: nothing configured, defaults apply.
            Err(_) => Ok(PipSettings::default()),
            Ok(o) => Ok(PipSettings::parse(&String::from_utf8_lossy(&o.stdout))),
        }
    }

    /// Parses `pip config list` lines like `global.index-url='https://…'` or
    /// `:env:.cert='/etc/…'`; environment beats `[install]`, which beats `[global]`.
    fn parse(listing: &str) -> PipSettings {
        let setting = |name: &str| -> Option<String> {
            [":env:", "install", "global"].iter().find_map(|section| {
                listing.lines().find_map(|line| {
                    let value = line.strip_prefix(&format!("{section}.{name}="))?;
                    Some(value.trim().trim_matches(['\'', '"']).to_string())
                })
            })
        };
        let list = |name: &str| -> Vec<String> {
            setting(name)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        PipSettings {
            index_url: setting("index-url"),
            extra_index_urls: list("extra-index-url"),
            find_links: list("find-links"),
            cert: setting("cert"),
        }
    }

    fn index(&self) -> &str {
        self.index_url
            .as_deref()
            .unwrap_or(DEFAULT_INDEX)
            .trim_end_matches('/')
    }

    fn uv_arguments(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(url) = &self.index_url {
            args.push(format!("--index-url={url}"));
        }
        args.extend(
            self.extra_index_urls
                .iter()
                .map(|url| format!("--extra-index-url={url}")),
        );
        args.extend(
            self.find_links
                .iter()
                .map(|dir| format!("--find-links={dir}")),
        );
        args
    }

    /// pip's CA bundle, for uv, unless the environment already names one.
    fn uv_ca_bundle(&self) -> Option<&str> {
        match std::env::var_os("SSL_CERT_FILE") {
            Some(_) => None,
            None => self.cert.as_deref(),
        }
    }
}

enum LookupError {
    /// The index page (named here) answered but lists no file of that version.
    NoSuchVersion(String),
    Unavailable(String),
}

/// Fetches a URL with the system Python, so proxies and certificates work as they do for pip.
const FETCH_SCRIPT: &str = r#"
import ssl, sys, urllib.request
url, accept, cafile = sys.argv[1], sys.argv[2], sys.argv[3] or None
try:
    context = ssl.create_default_context(cafile=cafile)
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=30, context=context) as response:
        sys.stdout.buffer.write(response.read())
except Exception as e:
    sys.exit(str(e))
"#;

/// The upload time (RFC 3339) of the newest file of `version` on the index's simple page,
/// read from its PEP 691 JSON form or the `data-upload-time` attributes of its HTML form.
async fn release_upload_date(pip: &PipSettings, version: &str) -> Result<String, LookupError> {
    let page = format!("{}/{PACKAGE}/", pip.index());
    let shown_page = hide_credentials(&page);
    let accept = "application/vnd.pypi.simple.v1+json, text/html;q=0.1";
    let output = Command::new("python3")
        .args([
            "-c",
            FETCH_SCRIPT,
            &page,
            accept,
            pip.cert.as_deref().unwrap_or(""),
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| LookupError::Unavailable(e.to_string()))?;
    if !output.status.success() {
        let why = String::from_utf8_lossy(&output.stderr).trim().to_string();
        return Err(LookupError::Unavailable(format!("{shown_page}: {why}")));
    }
    let body = String::from_utf8_lossy(&output.stdout);
    let files = index_files(&body);
    let times: Vec<&Option<String>> = files
        .iter()
        .filter(|(name, _)| version_in_filename(name) == Some(version))
        .map(|(_, time)| time)
        .collect();
    if times.is_empty() {
        return Err(LookupError::NoSuchVersion(shown_page));
    }
    times
        .into_iter()
        .flatten()
        .max()
        .cloned()
        .ok_or_else(|| LookupError::Unavailable(format!("{shown_page} does not give upload times")))
}

/// `https://user:token@host/…` → `https://***@host/…` in every URL of `text`, for anything
/// logged or shown.
fn hide_credentials(text: &str) -> String {
    let hide = |word: &str| -> Option<String> {
        let authority = word.find("://")? + 3;
        let at = authority + word[authority..].find('@')?;
        let userinfo = &word[authority..at];
        (!userinfo.contains('/')).then(|| format!("{}***{}", &word[..authority], &word[at..]))
    };
    text.split(' ')
        .map(|word| hide(word).unwrap_or_else(|| word.to_string()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// (file name, upload time) of every file on a simple-index page, JSON or HTML.
fn index_files(body: &str) -> Vec<(String, Option<String>)> {
    if let Ok(page) = serde_json::from_str::<Value>(body) {
        let files = page["files"].as_array().cloned().unwrap_or_default();
        return files
            .iter()
            .filter_map(|f| {
                let name = f["filename"].as_str()?.to_string();
                Some((name, f["upload-time"].as_str().map(str::to_string)))
            })
            .collect();
    }
    body.split("<a ")
        .skip(1)
        .filter_map(|anchor| {
            let (attributes, rest) = anchor.split_once('>')?;
            let name = rest.split_once("</a>")?.0.trim().to_string();
            let time = attributes
                .split_once("data-upload-time=\"")
                .and_then(|(_, value)| value.split_once('"'))
                .map(|(time, _)| time.to_string());
            Some((name, time))
        })
        .collect()
}

/// The version part of a wheel (`name-1.2.3-tags.whl`) or sdist (`name-1.2.3.tar.gz`) name.
fn version_in_filename(name: &str) -> Option<&str> {
    if name.ends_with(".whl") {
        return name.split('-').nth(1);
    }
    let stem = name
        .strip_suffix(".tar.gz")
        .or_else(|| name.strip_suffix(".zip"))?;
    stem.rsplit_once('-').map(|(_, version)| version)
}

/// `2025-02-28T10:00:00Z` → `2025-03-01`.
fn day_after(timestamp: &str) -> Option<String> {
    let date = timestamp.get(..10)?;
    let mut parts = date.split('-').map(|p| p.parse::<u32>().ok());
    let (year, month, day) = (parts.next()??, parts.next()??, parts.next()??);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_length = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let (year, month, day) = match (day < month_length, month < 12) {
        (true, _) => (year, month, day + 1),
        (false, true) => (year, month + 1, 1),
        (false, false) => (year + 1, 1, 1),
    };
    Some(format!("{year:04}-{month:02}-{day:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_after_rolls_over_months_and_years() {
        assert_eq!(
            day_after("2025-02-28T10:00:00Z").as_deref(),
            Some("2025-03-01")
        );
        assert_eq!(
            day_after("2024-02-28T10:00:00Z").as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(
            day_after("2025-12-31T23:59:59Z").as_deref(),
            Some("2026-01-01")
        );
        assert_eq!(day_after("2025-06-10").as_deref(), Some("2025-06-11"));
        assert_eq!(day_after("garbage"), None);
    }

    #[test]
    fn base64_matches_the_standard_alphabet_without_padding() {
        assert_eq!(base64_unpadded(b""), "");
        assert_eq!(base64_unpadded(b"f"), "Zg");
        assert_eq!(base64_unpadded(b"fo"), "Zm8");
        assert_eq!(base64_unpadded(b"foo"), "Zm9v");
        assert_eq!(base64_unpadded(b"foob"), "Zm9vYg");
        assert_eq!(base64_unpadded(&[0xfb, 0xff]), "+/8");
        assert_eq!(base64_unpadded(&[0u8; 32]).len(), 43);
    }

    #[test]
    fn index_pages_in_both_forms_give_versions_and_times() {
        let html = r#"<a href="x#sha256=1" data-requires-python="&gt;=3.10" data-upload-time="2025-11-18T12:00:00.1Z">matrix_synapse-1.163.2-cp310-abi3-manylinux_2_28_x86_64.whl</a><br/>
<a href="y">matrix-synapse-0.33.5.1.tar.gz</a>"#;
        let files = index_files(html);
        assert_eq!(version_in_filename(&files[0].0), Some("1.163.2"));
        assert_eq!(files[0].1.as_deref(), Some("2025-11-18T12:00:00.1Z"));
        assert_eq!(version_in_filename(&files[1].0), Some("0.33.5.1"));
        assert_eq!(files[1].1, None);
        let json = r#"{"files": [{"filename": "matrix_synapse-1.163.2.tar.gz", "upload-time": "2025-11-18T12:00:00Z"}]}"#;
        let files = index_files(json);
        assert_eq!(version_in_filename(&files[0].0), Some("1.163.2"));
        assert_eq!(files[0].1.as_deref(), Some("2025-11-18T12:00:00Z"));
    }

    #[test]
    fn credentials_in_urls_are_hidden() {
        assert_eq!(
            hide_credentials("\"--index-url=https://me:tok@pypi.example/simple\" x"),
            "\"--index-url=https://***@pypi.example/simple\" x"
        );
        assert_eq!(hide_credentials("https://host/a@b"), "https://host/a@b");
    }

    #[test]
    fn pip_settings_prefer_the_environment() {
        let listing = "global.index-url='https://a/simple'\n:env:.index-url='https://b/simple/'\n\
                       :env:.find-links='/opt/wheels /srv/w'\nglobal.cert='/etc/ca.crt'\n";
        let pip = PipSettings::parse(listing);
        assert_eq!(pip.index(), "https://b/simple");
        assert_eq!(pip.find_links, ["/opt/wheels", "/srv/w"]);
        assert_eq!(pip.cert.as_deref(), Some("/etc/ca.crt"));
    }

    #[test]
    fn config_enables_delayed_events_with_the_test_limits() {
        let files = RunFiles::in_dir(Path::new("/tmp/x"));
        let config = files.homeserver_config(8008, "s3cret");
        assert_eq!(config["max_event_delay_duration"], "24h");
        assert_eq!(config["rc_login"]["failed_attempts"]["burst_count"], 10000);
        assert_eq!(
            config["experimental_features"]["msc4140_max_delayed_events_per_user"],
            20
        );
        assert_eq!(config["allow_guest_access"], true);
        assert_eq!(config["listeners"][0]["port"], 8008);
    }
}
