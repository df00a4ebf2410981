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
//!
//! One file per job: `engine.rs` (the Docker API and where it is), `cleanup.rs` (labels, the
//! run's guard, leftovers), `ca.rs` (the per-run CA), `log.rs` (the container's log) and
//! `image.rs` (image references); this file is the `Target`.

mod ca;
mod cleanup;
mod engine;
mod image;
mod log;

pub use cleanup::{cleanup, Cleanup, LABEL};
pub use engine::prepare_environment;
pub use image::BUILT_SYNAPSE_IMAGE;

use super::{Registration, Target, TargetError, TargetInfo};
use crate::endpoints::{SYNAPSE_SERVER_VERSION, VERSIONS};
use async_trait::async_trait;
use ca::generate_ca;
use cleanup::{labelled, owner_label, remove_run, sweep_stale, RunGuard, LABEL_OWNER, LABEL_RUN};
use engine::{Engine, ENGINE_TIMEOUT};
use image::{image_basename, split_reference};
use log::ContainerLog;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testcontainers::bollard::models::PortBinding;
use testcontainers::core::IntoContainerPort;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

/// The shared secret the Complement contract registers users with.
pub const COMPLEMENT_SHARED_SECRET: &str = "complement";
/// `SERVER_NAME` given to the container, as Complement names its first homeserver.
pub const SERVER_NAME: &str = "hs1";

const CLIENT_PORT: u16 = 8008;
const CA_CERT_PATH: &str = "/complement/ca/ca.crt";
const CA_KEY_PATH: &str = "/complement/ca/ca.key";

const READY_POLL_INTERVAL: Duration = Duration::from_millis(25);
/// How often the readiness wait asks the engine whether the container still runs.
const STATE_POLL_INTERVAL: Duration = Duration::from_millis(250);
const STOP_GRACE_SECONDS: i32 = 10;
/// How many lines of the container's log a start-up failure shows.
const FAILURE_LOG_LINES: usize = 30;

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
        let http = crate::client::probe_client();
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
            if crate::client::answers_ok(&self.http, &url).await {
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
