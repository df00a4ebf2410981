//! Target `synapse` with workers (`--synapse-workers N`): a `WorkerDeployment` (Redis, the main
//! process, N generic workers, nginx in front) on a database of its own in the run's PostgreSQL
//! cluster, in a run directory of its own. Clients see nginx. Restart and kill act on every
//! Synapse process; `cycle_one` on one of them while the others keep serving.

use super::deployment::{DeploymentOptions, EventsWriter, WorkerDeployment};
use super::nginx::ProxyFault;
use super::*;

/// What a deployment with workers needs beside Synapse and PostgreSQL: a message saying what to
/// install (exit status 2) when nginx or redis-server is missing.
pub fn check_installed() -> Result<(), TargetError> {
    use super::service::{find_program, missing_program};
    for (program, package) in [("redis-server", "redis-server"), ("nginx", "nginx")] {
        if find_program(program).is_none() {
            return Err(missing_program(program, package, "--synapse-workers"));
        }
    }
    Ok(())
}

pub struct DeployedSynapse {
    deployment: WorkerDeployment,
    workers: usize,
    registration_secret: String,
    /// `None` once shut down (the directory is then deleted or kept).
    run_dir: Mutex<Option<tempfile::TempDir>>,
    keep_data: bool,
    /// This deployment's hold on the run's PostgreSQL cluster; `None` after shutdown. Locked
    /// for the whole of `shutdown`, so that a second call (the end of the run racing Ctrl-C's
    /// handler) returns only once everything has stopped.
    postgres: tokio::sync::Mutex<Option<Arc<PostgresCluster>>>,
}

impl DeployedSynapse {
    /// Installs what workers need (Synapse's `redis` extra) if missing, then starts the whole
    /// deployment on `opts.postgres`; returns once the proxy answers. On failure everything
    /// started is killed and the run directory removed (kept with `--keep-data`).
    pub async fn start(
        opts: SynapseOptions,
        workers: usize,
        proxy_faults: Vec<ProxyFault>,
    ) -> Result<DeployedSynapse, TargetError> {
        let Some(cluster) = opts.postgres.clone() else {
            return Err(TargetError(
                "Synapse with workers needs PostgreSQL (--synapse-database postgres)".into(),
            ));
        };
        let (python, version) = python_for_workers(&opts).await?;
        sweep_stale_run_dirs();
        let run_dir = tempfile::Builder::new()
            .prefix(&format!("{RUN_DIR_PREFIX}workers-"))
            .tempdir_in(run_dir_parent())
            .map_err(|e| TargetError(format!("cannot create a run directory for Synapse: {e}")))?;
        // Marks whose run this is, so a later run can remove it if this harness is killed.
        let _ = fs::write(
            run_dir.path().join(HARNESS_PID_FILE),
            std::process::id().to_string(),
        );
        let registration_secret = random_secret();
        let started = async {
            let database = cluster.create_database().await?;
            WorkerDeployment::start(DeploymentOptions {
                python,
                version,
                dir: run_dir.path().to_path_buf(),
                workers,
                database,
                registration_secret: registration_secret.clone(),
                fragment: opts.config_fragment.clone(),
                events_writer: EventsWriter::FirstWorker,
                spawn_timeout: opts.spawn_timeout,
                proxy_faults,
            })
            .await
        }
        .await;
        let deployment = match started {
            Ok(deployment) => deployment,
            Err(e) => {
                release_run_dir(Some(run_dir), opts.keep_data);
                return Err(e);
            }
        };
        Ok(DeployedSynapse {
            deployment,
            workers,
            registration_secret,
            run_dir: Mutex::new(Some(run_dir)),
            keep_data: opts.keep_data,
            postgres: tokio::sync::Mutex::new(Some(cluster)),
        })
    }

    fn release_run_dir(&self) {
        let dir = self
            .run_dir
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        release_run_dir(dir, self.keep_data);
    }
}

/// Deletes the run directory, or keeps it and says where, as asked.
fn release_run_dir(dir: Option<tempfile::TempDir>, keep_data: bool) {
    let Some(dir) = dir else { return };
    if keep_data {
        // Kept data is the user's now: no later run's sweep may remove it.
        let _ = fs::remove_file(dir.path().join(HARNESS_PID_FILE));
        eprintln!(
            "Synapse (with workers) data kept in {}",
            dir.keep().display()
        );
    }
}

#[async_trait]
impl Target for DeployedSynapse {
    fn info(&self) -> TargetInfo {
        TargetInfo {
            kind: "synapse".into(),
            name: "Synapse".into(),
            version: Some(self.deployment.version().to_string()),
            base_url: self.deployment.base_url().to_string(),
            topology: Some(Topology {
                database: Database::Postgres,
                workers: self.workers as u32,
                proxy: Some("nginx".into()),
            }),
            ..Default::default()
        }
    }

    fn registration(&self) -> Registration {
        Registration::SharedSecret(self.registration_secret.clone())
    }

    fn can_restart(&self) -> Result<(), String> {
        Ok(())
    }

    /// Every Synapse process, cleanly; nginx and Redis keep running.
    async fn restart(&self) -> Result<(), TargetError> {
        self.deployment.cycle_all(RESTART_GRACE).await
    }

    fn can_kill(&self) -> Result<(), String> {
        Ok(())
    }

    /// SIGKILL to every Synapse process (a crash of the whole deployment), then a start.
    async fn kill(&self) -> Result<(), TargetError> {
        self.deployment.cycle_all(Duration::ZERO).await
    }

    fn processes(&self) -> Result<Vec<String>, String> {
        Ok(self.deployment.process_names())
    }

    async fn cycle_one(&self, name: &str, kill: bool) -> Result<(), TargetError> {
        let grace = if kill { Duration::ZERO } else { RESTART_GRACE };
        self.deployment.cycle_process(name, grace).await
    }

    fn log_tail(&self, lines: usize) -> Option<String> {
        Some(self.deployment.log_tail(lines))
    }

    /// Summed over the Synapse processes running now.
    async fn server_cpu_time(&self) -> Option<Duration> {
        let pids = self.deployment.pids().await;
        let times = pids
            .iter()
            .filter_map(|(_, pid)| super::super::process_cpu_time((*pid)?));
        Some(times.sum())
    }

    async fn shutdown(&self) {
        let mut postgres = self.postgres.lock().await;
        self.deployment.shutdown().await;
        self.release_run_dir();
        postgres::release(postgres.take()).await;
    }
}

impl Drop for DeployedSynapse {
    /// Where `shutdown` was never awaited (a panic, an early return). The fields drop after
    /// this, in order: the deployment's parts kill themselves, then the run directory goes,
    /// unless it is to be kept.
    fn drop(&mut self) {
        if self.keep_data {
            self.release_run_dir();
        }
    }
}
