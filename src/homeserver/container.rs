//! Target `container`: any image that follows Complement's image contract, started through
//! testcontainers on Docker or podman (their Docker API). The contract: client traffic on port
//! 8008, the server name from `SERVER_NAME`, a CA certificate and key at
//! `/complement/ca/ca.crt` and `ca.key` (generated per run and copied in before start, as
//! Complement does), and users registered with the shared secret `complement` on Synapse's
//! admin register API.
//!
//! Every container a run makes carries labels naming the run and the harness process, so that
//! whatever a killed harness left behind can be found: the next run and the `cleanup` command
//! remove containers whose harness is gone. Within a run, the container is removed on every exit
//! path: the end of the run, Ctrl-C/SIGTERM (the interrupt handler calls `shutdown`), a failed
//! start or restart, a timeout, and a panic or an abandoned start-up (`RunGuard` on drop).

use super::{Registration, Target, TargetError, TargetInfo};
use crate::endpoints::{SYNAPSE_SERVER_VERSION, VERSIONS};
use async_trait::async_trait;
use futures::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testcontainers::bollard::errors::Error as EngineError;
use testcontainers::bollard::models::{ContainerStateStatusEnum, PortBinding};
use testcontainers::bollard::query_parameters::{
    CreateImageOptions, ListContainersOptions, LogsOptions, RemoveContainerOptions,
};
use testcontainers::bollard::Docker;
use testcontainers::core::IntoContainerPort;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

/// The shared secret the Complement contract registers users with.
pub const COMPLEMENT_SHARED_SECRET: &str = "complement";
/// `SERVER_NAME` given to the container, as Complement names its first homeserver.
pub const SERVER_NAME: &str = "hs1";
/// The image `scripts/build-synapse-image` builds, without its tag.
pub const BUILT_SYNAPSE_IMAGE: &str = "localhost/delayed-events-conformance/synapse";

const CLIENT_PORT: u16 = 8008;
const CA_CERT_PATH: &str = "/complement/ca/ca.crt";
const CA_KEY_PATH: &str = "/complement/ca/ca.key";

/// Every container of this suite carries this label (value `1`).
pub const LABEL: &str = "org.matrix.delayed-events-conformance";
/// The run that made the container (random, one per target).
const LABEL_RUN: &str = "org.matrix.delayed-events-conformance.run";
/// The harness that made it: `host:pid:process start time`, to tell whether it still runs.
const LABEL_OWNER: &str = "org.matrix.delayed-events-conformance.owner";

const READY_POLL_INTERVAL: Duration = Duration::from_millis(25);
/// How often the readiness wait asks the engine whether the container still runs.
const STATE_POLL_INTERVAL: Duration = Duration::from_millis(250);
const STOP_GRACE_SECONDS: i32 = 10;
/// How many lines of the container's log a start-up failure shows.
const FAILURE_LOG_LINES: usize = 30;
/// How many lines of the container's log are kept in memory.
const LOG_LINES_KEPT: usize = 5000;
/// How long the engine may take for one API call before it counts as not answering.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct ContainerOptions {
    /// `NAME[:TAG]` (or `NAME@DIGEST`) of an image that follows Complement's contract.
    pub image: String,
    /// How long the started container may take to answer `/versions`.
    pub spawn_timeout: Duration,
    /// The image's registration shared secret; the Complement contract's `complement` if `None`.
    pub registration_shared_secret: Option<String>,
}

pub struct ContainerTarget {
    image: String,
    engine: Engine,
    container_id: String,
    base_url: String,
    registration_secret: String,
    server_name: String,
    server_version: Option<String>,
    spawn_timeout: Duration,
    http: reqwest::Client,
    /// `None` after shutdown. Never dropped by testcontainers (see `Held`).
    container: tokio::sync::Mutex<Held>,
    log: Arc<ContainerLog>,
    startup_ms: u64,
    /// Milliseconds of the last restart (stop, start, answering again); 0 before any.
    restart_ms: AtomicU64,
    shut_down: AtomicBool,
    guard: RunGuard,
}

impl ContainerTarget {
    /// Checks the engine and the image, starts a container and returns once it answers
    /// `/_matrix/client/versions`; on any failure nothing of it is left.
    pub async fn start(opts: ContainerOptions) -> Result<ContainerTarget, TargetError> {
        let engine = Engine::connect().await?;
        let swept = sweep_stale(&engine).await;
        if swept > 0 {
            eprintln!("Removed {swept} container(s) left behind by earlier runs that were killed.");
        }
        engine.ensure_image(&opts.image).await?;
        let ca = generate_ca()?;
        let port = free_local_port()?;
        let run_id = random_id();
        // From here on, dropping `guard` (an error, a panic, an abandoned start) removes
        // every container of this run.
        let guard = RunGuard::new(engine.host.clone(), run_id.clone());
        let (name, tag) = split_reference(&opts.image);
        let local_engine = engine.is_local();
        let request = GenericImage::new(name, tag)
            .with_env_var("SERVER_NAME", SERVER_NAME)
            .with_mapped_port(port, CLIENT_PORT.tcp())
            .with_host_config_modifier(move |host_config| {
                // Only this machine reaches a local engine's mapped port (podman reports an
                // empty host IP for published ports, hence the explicit mapping).
                let ip = if local_engine { "127.0.0.1" } else { "0.0.0.0" };
                let binding = PortBinding {
                    host_ip: Some(ip.into()),
                    host_port: Some(port.to_string()),
                };
                host_config.port_bindings = Some(HashMap::from([(
                    format!("{CLIENT_PORT}/tcp"),
                    Some(vec![binding]),
                )]));
            })
            .with_copy_to(CA_CERT_PATH, ca.cert_pem.into_bytes())
            .with_copy_to(CA_KEY_PATH, ca.key_pem.into_bytes())
            .with_labels([
                (LABEL, "1".to_string()),
                (LABEL_RUN, run_id.clone()),
                (LABEL_OWNER, owner_label()),
            ])
            .with_container_name(format!("delayed-events-conformance-{run_id}"))
            .with_startup_timeout(opts.spawn_timeout.max(Duration::from_secs(30)));
        let launched = Instant::now();
        guard.creating.store(true, Ordering::SeqCst);
        let started = request.start().await;
        guard.creating.store(false, Ordering::SeqCst);
        let container = match started {
            Ok(container) => container,
            Err(e) => {
                let failure = explain_failed_start(&engine, &run_id, &opts, &e.to_string()).await;
                // `guard` removes the container as it drops.
                return Err(failure);
            }
        };
        let container_id = container.id().to_string();
        let held = Held(Some(container));
        let log = Arc::new(ContainerLog::default());
        log.follow(&engine.docker, &container_id);
        let base_url = format!("http://{}:{port}", engine.mapped_host());
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| TargetError(format!("cannot create an HTTP client: {e}")))?;
        let mut target = ContainerTarget {
            image: opts.image,
            engine,
            container_id,
            base_url,
            registration_secret: opts
                .registration_shared_secret
                .unwrap_or_else(|| COMPLEMENT_SHARED_SECRET.into()),
            server_name: String::new(),
            server_version: None,
            spawn_timeout: opts.spawn_timeout,
            http,
            container: tokio::sync::Mutex::new(held),
            log,
            startup_ms: 0,
            restart_ms: AtomicU64::new(0),
            shut_down: AtomicBool::new(false),
            guard,
        };
        if let Err(reason) = target.wait_until_ready().await {
            let failure = start_failure(
                &target.image,
                &reason,
                &target.log.tail(FAILURE_LOG_LINES),
                target.spawn_timeout,
            );
            target.shutdown().await;
            return Err(failure);
        }
        target.startup_ms = launched.elapsed().as_millis() as u64;
        let (name, version) = identify(&target.http, &target.base_url).await;
        target.server_name = name.unwrap_or_else(|| image_basename(&target.image));
        target.server_version = version;
        Ok(target)
    }

    /// Milliseconds from asking the engine for the container to its first answer of `/versions`.
    pub fn startup_ms(&self) -> u64 {
        self.startup_ms
    }

    /// Milliseconds the last restart took (stop, start, answering again), if there was one.
    pub fn restart_ms(&self) -> Option<u64> {
        match self.restart_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(ms),
        }
    }

    pub fn container_id(&self) -> &str {
        &self.container_id
    }

    /// Polls `/versions` until it answers 200; the reason otherwise (the container exited, or
    /// the spawn timeout passed).
    async fn wait_until_ready(&self) -> Result<(), String> {
        let url = format!("{}{VERSIONS}", self.base_url);
        let deadline = Instant::now() + self.spawn_timeout;
        let mut state_checked = Instant::now();
        loop {
            if self.answers(&url).await {
                return Ok(());
            }
            if state_checked.elapsed() >= STATE_POLL_INTERVAL {
                state_checked = Instant::now();
                if let Some(exit) = self.engine.exited(&self.container_id).await {
                    return Err(exit);
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "it did not answer {url} (container port {CLIENT_PORT}) within {} s",
                    self.spawn_timeout.as_secs_f64()
                ));
            }
            tokio::time::sleep(READY_POLL_INTERVAL).await;
        }
    }

    /// After an engine kill: waits (bounded) until the engine reports the container stopped, so
    /// the start that follows does not find it still running.
    async fn wait_until_exited(&self) -> Result<(), String> {
        let deadline = Instant::now() + ENGINE_TIMEOUT;
        while self.engine.exited(&self.container_id).await.is_none() {
            if Instant::now() >= deadline {
                return Err(format!(
                    "the engine still reports it running {} s after the kill",
                    ENGINE_TIMEOUT.as_secs()
                ));
            }
            tokio::time::sleep(READY_POLL_INTERVAL).await;
        }
        Ok(())
    }

    async fn answers(&self, url: &str) -> bool {
        let request = self.http.get(url).timeout(Duration::from_secs(2)).send();
        matches!(request.await, Ok(r) if r.status().is_success())
    }
}

fn start_failure(
    image: &str,
    reason: &str,
    log_tail: &str,
    spawn_timeout: Duration,
) -> TargetError {
    let hint = if reason.contains("exited") {
        format!(
            "Its log says why. Check that the image follows Complement's image contract (server \
             name from SERVER_NAME, a CA at {CA_CERT_PATH} and {CA_KEY_PATH}, which the harness \
             copies in); try it by hand with `docker run -e SERVER_NAME={SERVER_NAME} {image}`."
        )
    } else {
        format!(
            "Check that the image serves the client API on port {CLIENT_PORT} (Complement's image \
             contract); a slow server may need a longer --spawn-timeout (now {} s).",
            spawn_timeout.as_secs_f64()
        )
    };
    TargetError(format!(
        "the container of {image} did not start: {reason}. Last lines of its log:\n{log_tail}\n{hint}"
    ))
}

/// Why testcontainers could not start the container: typically it exited at once (podman then
/// briefly reports a state testcontainers cannot read). Says so, with its log, when it did.
async fn explain_failed_start(
    engine: &Engine,
    run_id: &str,
    opts: &ContainerOptions,
    error: &str,
) -> TargetError {
    for _ in 0..20 {
        let found = labelled(&engine.docker, LABEL_RUN, run_id).await;
        if let Some(container) = found.ok().and_then(|list| list.into_iter().next()) {
            if let Some(exit) = engine.exited(&container.id).await {
                let tail = engine.log_once(&container.id, FAILURE_LOG_LINES).await;
                return start_failure(&opts.image, &exit, &tail, opts.spawn_timeout);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    TargetError(format!(
        "the container engine could not start a container from {}: {error}\n\
         Check that the engine works (`docker run`/`podman run` of this image) and that the \
         image is meant to be run as is.",
        opts.image
    ))
}

#[async_trait]
impl Target for ContainerTarget {
    fn info(&self) -> TargetInfo {
        let restart_ms = self.restart_ms();
        TargetInfo {
            kind: "container".into(),
            name: self.server_name.clone(),
            version: self.server_version.clone(),
            base_url: self.base_url.clone(),
            image: Some(self.image.clone()),
            startup_ms: Some(self.startup_ms),
            restart_ms,
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
        self.cycle(false).await
    }

    fn can_kill(&self) -> Result<(), String> {
        Ok(())
    }

    /// An engine kill (SIGKILL to the container's processes, no stop grace), then a start.
    async fn kill(&self) -> Result<(), TargetError> {
        self.cycle(true).await
    }

    fn log_tail(&self, lines: usize) -> Option<String> {
        Some(self.log.tail(lines))
    }

    async fn shutdown(&self) {
        self.shut_down.store(true, Ordering::SeqCst);
        self.log.stop_following();
        // By label rather than through the handle: a restart in progress holds the handle,
        // and an interrupt must not wait for it. Force removal kills the container at once.
        if remove_run(&self.engine.docker, &self.guard.run_id)
            .await
            .is_ok()
        {
            self.guard.disarm();
        }
        if let Ok(mut held) = self.container.try_lock() {
            if let Some(container) = held.0.take() {
                std::mem::forget(container); // removed above; see `Held`
            }
        }
    }
}

impl ContainerTarget {
    /// Stops the container (cleanly, or with an engine kill) and starts it again, data kept.
    async fn cycle(&self, kill: bool) -> Result<(), TargetError> {
        let held = self.container.lock().await;
        let Some(container) = held
            .0
            .as_ref()
            .filter(|_| !self.shut_down.load(Ordering::SeqCst))
        else {
            return Err(TargetError(
                "the container is gone (the run is shutting down); start a new run.".into(),
            ));
        };
        let began = Instant::now();
        let restarted = async {
            if kill {
                self.engine
                    .docker
                    .kill_container(&self.container_id, None)
                    .await
                    .map_err(|e| format!("killing it failed: {e}"))?;
                self.wait_until_exited().await?;
            } else {
                container
                    .stop_with_timeout(Some(STOP_GRACE_SECONDS))
                    .await
                    .map_err(|e| format!("stopping it failed: {e}"))?;
            }
            container
                .start()
                .await
                .map_err(|e| format!("starting it again failed: {e}"))?;
            self.log.follow(&self.engine.docker, &self.container_id);
            self.wait_until_ready().await
        };
        match restarted.await {
            Ok(()) => {
                let ms = (began.elapsed().as_millis() as u64).max(1);
                self.restart_ms.store(ms, Ordering::Relaxed);
                Ok(())
            }
            // The container stays until shutdown, so its log can still be read.
            Err(reason) => Err(TargetError(format!(
                "{} the container of {} failed: {reason}. Last lines of its log:\n{}",
                if kill {
                    "killing and restarting"
                } else {
                    "restarting"
                },
                self.image,
                self.log.tail(FAILURE_LOG_LINES)
            ))),
        }
    }
}

/// Holds the testcontainers handle without ever letting it drop by itself: its destructor needs
/// a tokio runtime, which a panic or the end of the process may no longer offer. Removal is
/// `shutdown`'s job, or `RunGuard`'s.
struct Held(Option<ContainerAsync<GenericImage>>);

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(container) = self.0.take() {
            std::mem::forget(container);
        }
    }
}

/// Removes every container of one run when dropped, unless disarmed after a clean shutdown.
/// Blocking, on a thread of its own with its own runtime, so it works on every path (inside
/// or outside a runtime, during a panic).
struct RunGuard {
    host: String,
    run_id: String,
    armed: AtomicBool,
    /// Set while the engine is asked to create and start the container: a start-up abandoned
    /// then (Ctrl-C) may leave a container the engine finishes creating after the request was
    /// dropped, so the guard watches for it a little longer.
    creating: AtomicBool,
}

/// How long an abandoned creation is watched for the container it may still produce.
const ABANDONED_CREATION_WATCH: Duration = Duration::from_secs(3);

impl RunGuard {
    fn new(host: String, run_id: String) -> RunGuard {
        RunGuard {
            host,
            run_id,
            armed: AtomicBool::new(true),
            creating: AtomicBool::new(false),
        }
    }

    fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if !self.armed.swap(false, Ordering::SeqCst) {
            return;
        }
        let (host, run_id) = (self.host.clone(), self.run_id.clone());
        let watch = self.creating.load(Ordering::SeqCst);
        let removal = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let docker = connect_to(&host).ok()?;
                if !watch {
                    return remove_run(&docker, &run_id).await.ok();
                }
                let deadline = Instant::now() + ABANDONED_CREATION_WATCH;
                while Instant::now() < deadline {
                    let found = labelled(&docker, LABEL_RUN, &run_id)
                        .await
                        .unwrap_or_default();
                    for container in &found {
                        let _ = remove(&docker, &container.id).await;
                    }
                    if !found.is_empty() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                remove_run(&docker, &run_id).await.ok()
            })
        });
        let _ = removal.join();
    }
}

// ---------------------------------------------------------------------------------------------
// The engine

/// A Docker API (Docker, or podman's compatible service) and where it is.
struct Engine {
    /// `unix:///…` or `tcp://…`, as in `DOCKER_HOST`.
    host: String,
    docker: Docker,
}

impl Engine {
    /// Connects to the engine `DOCKER_HOST` names (see `use_engine_from_environment`) and checks
    /// that it answers.
    async fn connect() -> Result<Engine, TargetError> {
        let host = engine_host();
        let unreachable = |why: String| {
            TargetError(format!(
                "no container engine answers at {host} ({why}).\n\
                 --target container needs Docker, or podman's Docker-compatible service. Start \
                 Docker, or point DOCKER_HOST at the engine's socket; on a machine without an \
                 engine, `scripts/setup-container-engine` installs podman, starts its service \
                 and prints the DOCKER_HOST to use (`eval \"$(scripts/setup-container-engine)\"`)."
            ))
        };
        let docker = connect_to(&host).map_err(|e| unreachable(e.to_string()))?;
        match tokio::time::timeout(ENGINE_TIMEOUT, docker.ping()).await {
            Ok(Ok(_)) => Ok(Engine { host, docker }),
            Ok(Err(e)) => Err(unreachable(describe_engine_error(&e))),
            Err(_) => Err(unreachable(format!(
                "no answer within {} s",
                ENGINE_TIMEOUT.as_secs()
            ))),
        }
    }

    fn is_local(&self) -> bool {
        !self.host.starts_with("tcp://") && !self.host.starts_with("http")
    }

    /// The host name under which mapped ports are reached: loopback for a local engine, the
    /// engine's host for a remote one.
    fn mapped_host(&self) -> String {
        if self.is_local() {
            return "127.0.0.1".into();
        }
        let rest = self.host.split_once("://").map_or(&*self.host, |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or(rest);
        match authority.rsplit_once(':') {
            Some((host, _port)) => host.to_string(),
            None => authority.to_string(),
        }
    }

    /// The image is there, or is pulled now; a message saying what to do otherwise.
    async fn ensure_image(&self, image: &str) -> Result<(), TargetError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => return Ok(()),
            Err(EngineError::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => {
                return Err(TargetError(format!(
                    "the container engine at {} cannot look up image {image}: {}",
                    self.host,
                    describe_engine_error(&e)
                )))
            }
        }
        eprintln!("Image {image} is not here; pulling it ...");
        let options = CreateImageOptions {
            from_image: Some(image.to_string()),
            ..Default::default()
        };
        let mut progress = self.docker.create_image(Some(options), None, None);
        let mut failure = None;
        while let Some(step) = progress.next().await {
            match step {
                Ok(info) => {
                    if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                        failure = Some(detail);
                    }
                }
                Err(e) => {
                    failure = Some(describe_engine_error(&e));
                    break;
                }
            }
        }
        let present = self.docker.inspect_image(image).await.is_ok();
        if present {
            return Ok(());
        }
        let why = failure.unwrap_or_else(|| "the engine reported no error".into());
        let build_hint = if image.starts_with(BUILT_SYNAPSE_IMAGE) {
            let version = split_reference(image).1;
            format!(
                "This image is built locally, not pulled: run `scripts/build-synapse-image \
                 {version}` (it needs no registry)."
            )
        } else {
            format!(
                "Pull or build it first (`docker pull {image}`, `podman pull {image}`, or your \
                 project's Complement image build), or check the name with `docker images`. \
                 Without a registry, `scripts/build-synapse-image VERSION` builds \
                 {BUILT_SYNAPSE_IMAGE}:VERSION."
            )
        };
        Err(TargetError(format!(
            "image {image} is not available: it is not in the engine's image store and pulling \
             it failed ({why}).\n{build_hint}"
        )))
    }

    /// The last lines of a container's log, read once.
    async fn log_once(&self, id: &str, lines: usize) -> String {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            ..Default::default()
        };
        let frames: Vec<_> = self.docker.logs(id, Some(options)).collect().await;
        let text: String = frames
            .into_iter()
            .flatten()
            .map(|frame| String::from_utf8_lossy(frame.as_ref()).into_owned())
            .collect();
        match text.trim() {
            "" => "(the container wrote nothing to its log)".into(),
            text => text.to_string(),
        }
    }

    /// `Some(description)` once the container no longer runs. (Podman briefly reports a state
    /// `stopped` the API client cannot read: that counts as "ask again".)
    async fn exited(&self, id: &str) -> Option<String> {
        let details = self.docker.inspect_container(id, None).await.ok()?;
        let state = details.state?;
        let status = state.status?;
        match status {
            ContainerStateStatusEnum::RUNNING | ContainerStateStatusEnum::CREATED => None,
            ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD => {
                Some(match state.exit_code {
                    Some(code) => format!("the container exited with status {code}"),
                    None => "the container exited".into(),
                })
            }
            other => (!state.running.unwrap_or(false))
                .then(|| format!("the container is {other}, not running")),
        }
    }
}

/// Where the engine is: `DOCKER_HOST`, else Docker's usual sockets, else podman's.
fn engine_host() -> String {
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        if !host.trim().is_empty() {
            return host;
        }
    }
    discover_socket()
        .map(|socket| format!("unix://{socket}"))
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into())
}

fn discover_socket() -> Option<String> {
    let runtime_dir = std::env::var("XDG_RUNTIME_DIR").ok();
    let home = std::env::var("HOME").ok();
    let candidates = [
        Some("/var/run/docker.sock".to_string()),
        runtime_dir
            .as_ref()
            .map(|d| format!("{d}/.docker/run/docker.sock")),
        home.as_ref()
            .map(|h| format!("{h}/.docker/run/docker.sock")),
        home.as_ref()
            .map(|h| format!("{h}/.docker/desktop/docker.sock")),
        Some("/run/podman/podman.sock".to_string()),
        runtime_dir
            .as_ref()
            .map(|d| format!("{d}/podman/podman.sock")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|path| is_socket(path))
}

fn is_socket(path: &str) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// Prepares the process environment for testcontainers; call before any other thread starts
/// (it changes the environment):
/// - when `DOCKER_HOST` is unset and Docker's sockets are absent but podman's is there, sets
///   `DOCKER_HOST` to podman's socket, so testcontainers uses the engine this module finds;
/// - sets `TESTCONTAINERS_COMMAND=keep` (unless set): this module removes its containers itself,
///   by label, and a container that failed to start must outlive testcontainers' handle long
///   enough to say why (exit status, log).
pub fn prepare_environment() {
    if std::env::var_os("TESTCONTAINERS_COMMAND").is_none() {
        std::env::set_var("TESTCONTAINERS_COMMAND", "keep");
    }
    if std::env::var_os("DOCKER_HOST").is_some() {
        return;
    }
    if let Some(socket) = discover_socket() {
        if !socket.ends_with("docker.sock") {
            std::env::set_var("DOCKER_HOST", format!("unix://{socket}"));
        }
    }
}

fn connect_to(host: &str) -> Result<Docker, EngineError> {
    Docker::connect_with_host(host).map(|docker| docker.with_timeout(ENGINE_TIMEOUT))
}

fn describe_engine_error(e: &EngineError) -> String {
    match e {
        EngineError::DockerResponseServerError {
            status_code,
            message,
        } => format!("HTTP {status_code}: {message}"),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(inner) = source {
                text.push_str(&format!(": {inner}"));
                source = inner.source();
            }
            text
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Leftovers: finding and removing containers of runs that ended without cleaning up

/// What `cleanup` found and did.
pub struct Cleanup {
    /// (name, why it was removed) of each removed container.
    pub removed: Vec<(String, String)>,
    /// Names of containers kept because their harness still runs.
    pub kept: Vec<String>,
}

/// Removes the containers of runs whose harness no longer runs (all of the suite's containers
/// with `all`). For the `cleanup` command.
pub async fn cleanup(all: bool) -> Result<Cleanup, TargetError> {
    let engine = Engine::connect().await?;
    let containers = labelled(&engine.docker, LABEL, "1").await.map_err(|e| {
        TargetError(format!(
            "cannot list containers at {}: {}",
            engine.host,
            describe_engine_error(&e)
        ))
    })?;
    let mut report = Cleanup {
        removed: Vec::new(),
        kept: Vec::new(),
    };
    for c in containers {
        let stale = owner_gone(c.owner.as_deref());
        if !(all || stale) {
            report.kept.push(c.name);
            continue;
        }
        match remove(&engine.docker, &c.id).await {
            Ok(()) => {
                let why = if stale {
                    "its run ended without removing it"
                } else {
                    "--all"
                };
                report.removed.push((c.name, why.to_string()));
            }
            Err(e) => {
                return Err(TargetError(format!(
                    "cannot remove container {}: {}",
                    c.name,
                    describe_engine_error(&e)
                )))
            }
        }
    }
    Ok(report)
}

/// Removes containers whose harness is gone; how many. Errors only make it remove fewer.
async fn sweep_stale(engine: &Engine) -> usize {
    let Ok(containers) = labelled(&engine.docker, LABEL, "1").await else {
        return 0;
    };
    let mut removed = 0;
    for c in containers {
        if owner_gone(c.owner.as_deref()) && remove(&engine.docker, &c.id).await.is_ok() {
            removed += 1;
        }
    }
    removed
}

async fn remove_run(docker: &Docker, run_id: &str) -> Result<(), EngineError> {
    for c in labelled(docker, LABEL_RUN, run_id).await? {
        remove(docker, &c.id).await?;
    }
    Ok(())
}

struct Labelled {
    id: String,
    name: String,
    owner: Option<String>,
}

async fn labelled(docker: &Docker, key: &str, value: &str) -> Result<Vec<Labelled>, EngineError> {
    let filters = HashMap::from([("label".to_string(), vec![format!("{key}={value}")])]);
    let options = ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..Default::default()
    };
    let list = docker.list_containers(Some(options)).await?;
    Ok(list
        .into_iter()
        .filter_map(|c| {
            let id = c.id?;
            let labels = c.labels.unwrap_or_default();
            // Engines that ignore the filter still do not get other containers removed.
            if labels.get(key).map(String::as_str) != Some(value) {
                return None;
            }
            let name = c
                .names
                .and_then(|n| n.into_iter().next())
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_else(|| id.chars().take(12).collect());
            Some(Labelled {
                id,
                name,
                owner: labels.get(LABEL_OWNER).cloned(),
            })
        })
        .collect())
}

async fn remove(docker: &Docker, id: &str) -> Result<(), EngineError> {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        // Gone already (or being removed by someone else): what we wanted.
        Err(EngineError::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `host:pid:start time` of this process.
fn owner_label() -> String {
    let pid = std::process::id();
    let started = process_start_time(pid).unwrap_or(0);
    format!("{}:{pid}:{started}", hostname())
}

/// Whether the harness an owner label names is gone. Only decidable on the same host; a
/// container from another host (a shared remote engine) counts as live, and so does one with
/// no or a malformed label.
fn owner_gone(owner: Option<&str>) -> bool {
    let Some(owner) = owner else { return false };
    let mut parts = owner.rsplitn(3, ':');
    let (Some(started), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(pid), Ok(started)) = (pid.parse::<u32>(), started.parse::<u64>()) else {
        return false;
    };
    if host != hostname() {
        return false;
    }
    !process_alive(pid, started)
}

fn process_alive(pid: u32, started: u64) -> bool {
    if Path::new("/proc/self/stat").exists() {
        // Alive only if that pid still belongs to the process that started then.
        return process_start_time(pid).is_some_and(|now| started == 0 || now == started);
    }
    // SAFETY: signal 0 only checks whether the process exists.
    let signalled = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
    signalled || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Field 22 of `/proc/PID/stat`: when the process started, in clock ticks since boot.
fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

fn hostname() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer.
    let ok = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) } == 0;
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    match ok {
        true => String::from_utf8_lossy(&buffer[..end]).into_owned(),
        false => "unknown-host".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// The container's log

/// The last lines of the container's stdout and stderr, followed from the engine.
#[derive(Default)]
struct ContainerLog {
    lines: Mutex<VecDeque<String>>,
    follower: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl ContainerLog {
    /// (Re)reads the container's whole log and keeps following it: after a restart the
    /// engine's log holds every run of the container.
    fn follow(self: &Arc<Self>, docker: &Docker, id: &str) {
        self.stop_following();
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let options = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let mut stream = docker.logs(id, Some(options));
        let log = Arc::clone(self);
        let task = tokio::spawn(async move {
            let mut partial = String::new();
            while let Some(Ok(frame)) = stream.next().await {
                partial.push_str(&String::from_utf8_lossy(frame.as_ref()));
                while let Some(newline) = partial.find('\n') {
                    let line: String = partial.drain(..=newline).collect();
                    log.push(line.trim_end_matches(['\n', '\r']).to_string());
                }
            }
            if !partial.is_empty() {
                log.push(partial);
            }
        });
        *self.follower.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }

    fn stop_following(&self) {
        if let Some(task) = self
            .follower
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }

    fn push(&self, line: String) {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == LOG_LINES_KEPT {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    fn tail(&self, count: usize) -> String {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.iter().all(|l| l.trim().is_empty()) {
            return "(the container wrote nothing to its log)".into();
        }
        let skip = lines.len().saturating_sub(count);
        lines
            .iter()
            .skip(skip)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// The per-run CA, as Complement makes it: a self-signed RSA CA certificate and its key
/// (PKCS#1 PEM, "RSA PRIVATE KEY"), which images use to sign their own TLS certificates.
struct Ca {
    cert_pem: String,
    key_pem: String,
}

fn generate_ca() -> Result<Ca, TargetError> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::EncodePrivateKey;
    let fail = |e: &dyn std::fmt::Display| TargetError(format!("cannot generate a CA: {e}"));
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(|e| fail(&e))?;
    let pkcs8 = key
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .map_err(|e| fail(&e))?;
    let key_pem = key
        .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
        .map_err(|e| fail(&e))?
        .to_string();
    let key_pair = rcgen::KeyPair::from_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| fail(&e))?;
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    params.distinguished_name.push(
        rcgen::DnType::OrganizationName,
        "delayed-events-conformance",
    );
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "delayed-events-conformance per-run CA",
    );
    let cert = params.self_signed(&key_pair).map_err(|e| fail(&e))?;
    Ok(Ca {
        cert_pem: cert.pem(),
        key_pem,
    })
}

/// `NAME[:TAG]` → (name, tag), tag `latest` when absent. A digest (`NAME@sha256:HEX`) splits
/// into `NAME@sha256` and `HEX`, which testcontainers joins back with `:`.
fn split_reference(image: &str) -> (String, String) {
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(colon) => {
            let colon = last_slash + colon;
            (image[..colon].to_string(), image[colon + 1..].to_string())
        }
        None => (image.to_string(), "latest".to_string()),
    }
}

/// `ghcr.io/org/server:tag` → `server`.
fn image_basename(image: &str) -> String {
    let (name, _) = split_reference(image);
    let name = name.split('@').next().unwrap_or(&name);
    name.rsplit('/').next().unwrap_or(name).to_string()
}

/// The server's software name and version: what it says over HTTP (`identity::detect`), else
/// Synapse's admin server-version endpoint.
async fn identify(http: &reqwest::Client, base_url: &str) -> (Option<String>, Option<String>) {
    if let Some(found) = super::identity::detect(http, base_url).await {
        return (Some(found.name), found.version);
    }
    let url = format!("{base_url}{SYNAPSE_SERVER_VERSION}");
    let body: Option<serde_json::Value> = match http.get(url).send().await {
        Ok(r) if r.status().is_success() => r.json().await.ok(),
        _ => None,
    };
    match body.as_ref().and_then(|b| b["server_version"].as_str()) {
        Some(version) => (Some("Synapse".into()), Some(version.to_string())),
        None => (None, None),
    }
}

fn free_local_port() -> Result<u16, TargetError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| TargetError(format!("cannot find a free port on 127.0.0.1: {e}")))
}

fn random_id() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric
        .sample_string(&mut rand::thread_rng(), 10)
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_into_name_and_tag() {
        let split = |s: &str| split_reference(s);
        assert_eq!(split("synapse"), ("synapse".into(), "latest".into()));
        assert_eq!(
            split("localhost/delayed-events-conformance/synapse:1.163.2"),
            (
                "localhost/delayed-events-conformance/synapse".into(),
                "1.163.2".into()
            )
        );
        assert_eq!(
            split("registry:5000/org/img"),
            ("registry:5000/org/img".into(), "latest".into())
        );
        assert_eq!(split("img@sha256:abc"), ("img@sha256".into(), "abc".into()));
        assert_eq!(image_basename("ghcr.io/element-hq/synapse:v1"), "synapse");
    }

    #[test]
    fn owner_labels_tell_live_from_gone_harnesses() {
        let me = owner_label();
        assert!(!owner_gone(Some(&me)), "this process runs: {me}");
        let host = hostname();
        let started = process_start_time(std::process::id()).unwrap();
        let other_start = format!("{host}:{}:{}", std::process::id(), started + 1);
        assert!(owner_gone(Some(&other_start)), "same pid, other process");
        assert!(owner_gone(Some(&format!("{host}:999999999:1"))));
        assert!(
            !owner_gone(Some("elsewhere:1:1")),
            "other hosts count as live"
        );
        assert!(!owner_gone(None));
        assert!(!owner_gone(Some("garbage")));
    }

    #[test]
    fn the_ca_is_a_pem_certificate_with_a_pkcs1_key() {
        let ca = generate_ca().unwrap();
        assert!(ca.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(ca.key_pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    }

    #[test]
    fn remote_engines_are_reached_by_their_host_name() {
        let engine = |host: &str| Engine {
            host: host.into(),
            docker: Docker::connect_with_host("tcp://127.0.0.1:1").unwrap(),
        };
        assert_eq!(
            engine("unix:///run/podman/podman.sock").mapped_host(),
            "127.0.0.1"
        );
        assert_eq!(engine("tcp://build-box:2375").mapped_host(), "build-box");
    }

    #[test]
    fn the_log_keeps_the_last_lines() {
        let log = ContainerLog::default();
        assert_eq!(log.tail(3), "(the container wrote nothing to its log)");
        for i in 0..LOG_LINES_KEPT + 5 {
            log.push(format!("line {i}"));
        }
        assert_eq!(
            log.tail(2),
            format!("line {}\nline {}", LOG_LINES_KEPT + 3, LOG_LINES_KEPT + 4)
        );
    }
}
