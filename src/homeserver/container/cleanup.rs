//! Labels and leftovers: every container a run makes is labelled with the run and the harness
//! process, so that `RunGuard` (on drop), the next run and `cleanup` can remove what a run that
//! ended without cleaning up left behind.

use super::engine::{connect_to, describe_engine_error, Engine};
use crate::homeserver::TargetError;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use testcontainers::bollard::errors::Error as EngineError;
use testcontainers::bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use testcontainers::bollard::Docker;

/// Every container of this suite carries this label (value `1`).
pub const LABEL: &str = "org.matrix.delayed-events-conformance";
/// The run that made the container (random, one per target).
pub(super) const LABEL_RUN: &str = "org.matrix.delayed-events-conformance.run";
/// The harness that made it: `host:pid:process start time`, to tell whether it still runs.
pub(super) const LABEL_OWNER: &str = "org.matrix.delayed-events-conformance.owner";

/// Removes every container of one run when dropped, unless disarmed after a clean shutdown.
/// Blocking, on a thread of its own with its own runtime, so it works on every path (inside
/// or outside a runtime, during a panic).
pub(super) struct RunGuard {
    host: String,
    pub(super) run_id: String,
    armed: AtomicBool,
    /// Set while the engine is asked to create and start the container: a start-up abandoned
    /// then (Ctrl-C) may leave a container the engine finishes creating after the request was
    /// dropped, so the guard watches for it a little longer.
    pub(super) creating: AtomicBool,
}

/// How long an abandoned creation is watched for the container it may still produce.
const ABANDONED_CREATION_WATCH: Duration = Duration::from_secs(3);

impl RunGuard {
    pub(super) fn new(host: String, run_id: String) -> RunGuard {
        RunGuard {
            host,
            run_id,
            armed: AtomicBool::new(true),
            creating: AtomicBool::new(false),
        }
    }

    pub(super) fn disarm(&self) {
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
pub(super) async fn sweep_stale(engine: &Engine) -> usize {
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

pub(super) async fn remove_run(docker: &Docker, run_id: &str) -> Result<(), EngineError> {
    for c in labelled(docker, LABEL_RUN, run_id).await? {
        remove(docker, &c.id).await?;
    }
    Ok(())
}

pub(super) struct Labelled {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) owner: Option<String>,
}

pub(super) async fn labelled(
    docker: &Docker,
    key: &str,
    value: &str,
) -> Result<Vec<Labelled>, EngineError> {
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
pub(super) fn owner_label() -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
