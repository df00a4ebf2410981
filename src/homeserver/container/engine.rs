//! The container engine: Docker, or podman's Docker-compatible service, found through
//! `DOCKER_HOST` or the usual sockets, with the image pulled or found locally.

use super::image::{split_reference, BUILT_SYNAPSE_IMAGE};
use crate::homeserver::TargetError;
use futures::StreamExt;
use std::time::Duration;
use testcontainers::bollard::errors::Error as EngineError;
use testcontainers::bollard::models::ContainerStateStatusEnum;
use testcontainers::bollard::query_parameters::{CreateImageOptions, LogsOptions};
use testcontainers::bollard::Docker;

/// How long the engine may take for one API call before it counts as not answering.
pub(super) const ENGINE_TIMEOUT: Duration = Duration::from_secs(10);

/// A Docker API (Docker, or podman's compatible service) and where it is.
pub(super) struct Engine {
    /// `unix:///…` or `tcp://…`, as in `DOCKER_HOST`.
    pub(super) host: String,
    pub(super) docker: Docker,
}

impl Engine {
    /// Connects to the engine `DOCKER_HOST` names (see `use_engine_from_environment`) and checks
    /// that it answers.
    pub(super) async fn connect() -> Result<Engine, TargetError> {
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

    pub(super) fn is_local(&self) -> bool {
        !self.host.starts_with("tcp://") && !self.host.starts_with("http")
    }

    /// The host name under which mapped ports are reached: loopback for a local engine, the
    /// engine's host for a remote one.
    pub(super) fn mapped_host(&self) -> String {
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
    pub(super) async fn ensure_image(&self, image: &str) -> Result<(), TargetError> {
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
    pub(super) async fn log_once(&self, id: &str, lines: usize) -> String {
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
    pub(super) async fn exited(&self, id: &str) -> Option<String> {
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

pub(super) fn connect_to(host: &str) -> Result<Docker, EngineError> {
    Docker::connect_with_host(host).map(|docker| docker.with_timeout(ENGINE_TIMEOUT))
}

pub(super) fn describe_engine_error(e: &EngineError) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
