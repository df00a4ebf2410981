//! Starting a Synapse with workers: Redis, the main process, N generic workers and nginx in
//! front, in that order (workers refuse a database the main process has not prepared, and the
//! proxy is the last thing to answer). Any process can be restarted or killed on its own while
//! the others keep serving. Everything dies with the harness and is killed when this is dropped;
//! the caller owns the run's directory.

use super::nginx::{Nginx, ProxyFault};
use super::redis::Redis;
use super::routing::Routing;
use super::service::Service;
use super::workers::{DeploymentPlan, ProcessPlan};
use super::*;

pub use super::workers::EventsWriter;

/// What a deployment is made of.
pub struct DeploymentOptions {
    /// The Python of an environment with Synapse and its `redis` extra (`txredisapi`), and
    /// whatever `database` needs (`psycopg2` for PostgreSQL).
    pub python: PathBuf,
    /// The Synapse release, for the routing table (`Routing::for_synapse`).
    pub version: String,
    /// Where every file goes; it must exist, and the caller removes it.
    pub dir: PathBuf,
    pub workers: usize,
    /// Synapse's `database` section: workers need PostgreSQL.
    pub database: Value,
    pub registration_secret: String,
    /// `--synapse-config`, merged over the main (shared) configuration.
    pub fragment: Option<Value>,
    pub events_writer: EventsWriter,
    /// How long each Synapse process may take to answer `/versions`.
    pub spawn_timeout: Duration,
    /// A proxy misconfigured on purpose (self-tests of the deployment cases).
    pub proxy_faults: Vec<ProxyFault>,
}

pub struct WorkerDeployment {
    plan: DeploymentPlan,
    python: PathBuf,
    version: String,
    spawn_timeout: Duration,
    routing: Routing,
    /// Stopped last, by `shutdown`.
    redis: tokio::sync::Mutex<Redis>,
    redis_port: u16,
    /// Main first, then the workers, as in `plan.processes()`; `None` while down.
    synapse: tokio::sync::Mutex<Vec<Option<Service>>>,
    /// `None` once shut down.
    proxy: tokio::sync::Mutex<Option<Nginx>>,
    shut_down: std::sync::atomic::AtomicBool,
    base_url: String,
    http: reqwest::Client,
}

impl WorkerDeployment {
    /// Starts everything; returns once the proxy answers `/versions`. On failure, what was
    /// started is killed (by dropping it) and the error says which part failed and why.
    pub async fn start(opts: DeploymentOptions) -> Result<WorkerDeployment, TargetError> {
        check_redis_support(&opts.python).await?;
        let http = crate::client::probe_client();
        let redis = Redis::start(&opts.dir).await?;
        let plan = DeploymentPlan::new(&opts.dir, opts.workers, redis.port(), opts.events_writer)?;
        plan.write(
            &opts.database,
            &opts.registration_secret,
            opts.fragment.as_ref(),
        )
        .map_err(|e| {
            TargetError(format!(
                "cannot write Synapse's configuration in {}: {e}",
                opts.dir.display()
            ))
        })?;
        let main = launch(&opts.python, &plan.main, &http, opts.spawn_timeout).await?;
        let workers = futures::future::try_join_all(
            plan.workers
                .iter()
                .map(|worker| launch(&opts.python, worker, &http, opts.spawn_timeout)),
        )
        .await?;
        let mut routing = Routing::for_synapse(&opts.version);
        if opts.proxy_faults.contains(&ProxyFault::RestartOnMainOnly) {
            routing = routing.without("/restart$");
        }
        let nginx = Nginx::start(
            &opts.dir,
            &routing,
            plan.main.client_port,
            &plan.worker_client_ports(),
            &opts.proxy_faults,
        )
        .await?;
        let base_url = nginx.base_url();
        if !answers(&http, &base_url).await {
            return Err(TargetError(format!(
                "nginx in front of Synapse does not answer /versions at {base_url}; its error \
                 log is {}",
                nginx.files().error_log.display()
            )));
        }
        let synapse = std::iter::once(main).chain(workers).map(Some).collect();
        Ok(WorkerDeployment {
            plan,
            python: opts.python,
            version: opts.version,
            spawn_timeout: opts.spawn_timeout,
            routing,
            redis_port: redis.port(),
            redis: tokio::sync::Mutex::new(redis),
            synapse: tokio::sync::Mutex::new(synapse),
            proxy: tokio::sync::Mutex::new(Some(nginx)),
            shut_down: std::sync::atomic::AtomicBool::new(false),
            base_url,
            http,
        })
    }

    /// The proxy's address: what clients use.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    pub fn redis_port(&self) -> u16 {
        self.redis_port
    }

    /// The Synapse processes' names, main first: `main`, `worker1`, ...
    pub fn process_names(&self) -> Vec<String> {
        self.plan.processes().map(|p| p.name.clone()).collect()
    }

    /// The instance that writes the events stream (see `EventsWriter`).
    pub fn events_writer(&self) -> &str {
        self.plan.events_writer_name()
    }

    /// Stops the process `name` (SIGTERM, SIGKILL after `grace`; at once for a zero grace: a
    /// crash) and starts it again on the same configuration and data, while the others keep
    /// running; returns once it answers `/versions` again.
    pub async fn cycle_process(&self, name: &str, grace: Duration) -> Result<(), TargetError> {
        let Some(index) = self.plan.processes().position(|p| p.name == name) else {
            return Err(TargetError(format!(
                "there is no Synapse process {name:?}; there are {}",
                self.process_names().join(", ")
            )));
        };
        let process = self.plan.processes().nth(index).expect("found above");
        let mut synapse = self.synapse.lock().await;
        if self.shut_down.load(Ordering::SeqCst) {
            return Err(TargetError("the deployment was shut down".into()));
        }
        // Down after a failed restart: started again.
        if let Some(mut running) = synapse[index].take() {
            running.stop_within(grace).await;
        }
        synapse[index] = Some(launch(&self.python, process, &self.http, self.spawn_timeout).await?);
        Ok(())
    }

    /// Restarts every Synapse process (the proxy and Redis keep running): main first, as at
    /// start, since workers wait for it.
    pub async fn cycle_all(&self, grace: Duration) -> Result<(), TargetError> {
        {
            let mut synapse = self.synapse.lock().await;
            // Workers first, so none of them sees main go away alone.
            for running in synapse.iter_mut().rev() {
                if let Some(mut running) = running.take() {
                    running.stop_within(grace).await;
                }
            }
        }
        for name in self.process_names() {
            self.cycle_process(&name, Duration::ZERO).await?;
        }
        Ok(())
    }

    /// The end of every process's log, each under its name.
    pub fn log_tail(&self, lines: usize) -> String {
        self.plan
            .processes()
            .map(|process| {
                format!(
                    "--- {} ---\n{}",
                    process.name,
                    process.files.log_tail(lines)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The pid of each running Synapse process, by name (for CPU time and tests).
    pub async fn pids(&self) -> Vec<(String, Option<u32>)> {
        let synapse = self.synapse.lock().await;
        self.plan
            .processes()
            .zip(synapse.iter())
            .map(|(process, running)| {
                (
                    process.name.clone(),
                    running.as_ref().and_then(Service::pid),
                )
            })
            .collect()
    }

    /// Stops everything: the proxy, the workers, main (with a grace for a clean shutdown), Redis.
    /// Idempotent.
    pub async fn shutdown(&self) {
        self.shut_down.store(true, Ordering::SeqCst);
        if let Some(mut nginx) = self.proxy.lock().await.take() {
            nginx.stop().await;
        }
        let mut synapse = self.synapse.lock().await;
        for running in synapse.iter_mut().rev() {
            if let Some(mut running) = running.take() {
                running.stop_within(SHUTDOWN_GRACE).await;
            }
        }
        self.redis.lock().await.stop().await;
    }
}

impl Drop for WorkerDeployment {
    /// Each part kills itself when dropped (`Service`); this only makes the order the reverse
    /// of the start.
    fn drop(&mut self) {
        drop(self.proxy.get_mut().take());
        for running in self.synapse.get_mut().iter_mut().rev() {
            drop(running.take());
        }
    }
}

/// Starts one Synapse process and waits until its client listener answers `/versions`.
async fn launch(
    python: &Path,
    process: &ProcessPlan,
    http: &reqwest::Client,
    timeout: Duration,
) -> Result<Service, TargetError> {
    let mut command = Command::new(python);
    command.args(["-m", process.app]);
    for config in &process.config_files {
        command.arg("-c").arg(config);
    }
    command.current_dir(&process.files.dir);
    let mut service = Service::spawn(
        format!("Synapse process {}", process.name),
        command,
        &process.files.output_log,
    )
    .await?
    .with_log(process.files.server_log.clone());
    let url = format!("http://127.0.0.1:{}", process.client_port);
    service
        .wait_until("answer /versions", timeout, || answers(http, &url))
        .await?;
    Ok(service)
}

/// A readiness probe: the client listener at `base_url` answers `/versions`.
async fn answers(http: &reqwest::Client, base_url: &str) -> bool {
    crate::client::answers_ok(http, &format!("{base_url}{VERSIONS}")).await
}

/// Synapse's processes replicate through Redis only with its `redis` extra installed, in the
/// versions it asks for: Synapse's own dependency check says.
async fn check_redis_support(python: &Path) -> Result<(), TargetError> {
    redis_support(python).await.map_err(|said| {
        TargetError(format!(
            "the Synapse environment of {} lacks Redis support, which workers need ({said}): \
             install Synapse's `redis` extra into it (`pip install 'matrix-synapse[redis]==VERSION'`, \
             which brings txredisapi and hiredis in the versions that release accepts).",
            python.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::super::service::find_program;
    use super::*;

    /// The database the test deploys on: Synapse's `database` section as JSON in
    /// `DEC_TEST_SYNAPSE_DATABASE` (an empty PostgreSQL database), or why the test cannot run.
    fn prerequisites() -> Result<Value, String> {
        for (program, package) in [("nginx", "nginx"), ("redis-server", "redis-server")] {
            if find_program(program).is_none() {
                return Err(format!(
                    "{program} is not installed (apt install {package})"
                ));
            }
        }
        let database = std::env::var("DEC_TEST_SYNAPSE_DATABASE").map_err(|_| {
            "DEC_TEST_SYNAPSE_DATABASE is not set (Synapse's `database` section as JSON, for \
             an empty PostgreSQL database)"
                .to_string()
        })?;
        serde_json::from_str(&database)
            .map_err(|e| format!("DEC_TEST_SYNAPSE_DATABASE is not JSON: {e}"))
    }

    fn gone(pid: u32) -> bool {
        !Path::new(&format!("/proc/{pid}")).exists()
    }

    #[tokio::test]
    async fn main_and_two_workers_serve_behind_nginx_restart_one_by_one_and_stop() {
        let test = "main_and_two_workers_serve_behind_nginx_restart_one_by_one_and_stop";
        let database = match prerequisites() {
            Ok(database) => database,
            Err(missing) => {
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {missing}");
                return;
            }
        };
        let python = installed_python(&SynapseOptions {
            show_progress: false,
            ..Default::default()
        })
        .await
        .expect("the managed Synapse installs");
        let dir = tempfile::tempdir().unwrap();
        let deployment = WorkerDeployment::start(DeploymentOptions {
            python,
            version: PINNED_VERSION.into(),
            dir: dir.path().to_path_buf(),
            workers: 2,
            database,
            registration_secret: random_secret(),
            fragment: None,
            events_writer: EventsWriter::FirstWorker,
            spawn_timeout: Duration::from_secs(60),
            proxy_faults: Vec::new(),
        })
        .await
        .unwrap_or_else(|e| panic!("the deployment starts: {e}"));
        let http = crate::client::probe_client();
        assert!(answers(&http, deployment.base_url()).await);
        assert_eq!(deployment.process_names(), ["main", "worker1", "worker2"]);
        assert_eq!(deployment.events_writer(), "worker1");

        // One process restarts while the proxy keeps answering through the others.
        let before = deployment.pids().await;
        deployment
            .cycle_process("worker2", Duration::ZERO)
            .await
            .expect("worker2 comes back");
        let after = deployment.pids().await;
        assert_eq!(before[0], after[0], "main kept running");
        assert_ne!(before[2], after[2], "worker2 is a new process");
        assert!(gone(before[2].1.unwrap()));
        deployment
            .cycle_process("main", Duration::from_secs(10))
            .await
            .expect("main comes back");
        assert!(answers(&http, deployment.base_url()).await);
        assert!(deployment
            .cycle_process("worker9", Duration::ZERO)
            .await
            .is_err());
        let tail = deployment.log_tail(5);
        assert!(tail.contains("--- worker1 ---"), "{tail}");

        let pids: Vec<u32> = deployment
            .pids()
            .await
            .into_iter()
            .filter_map(|(_, pid)| pid)
            .collect();
        assert_eq!(pids.len(), 3);
        let base_url = deployment.base_url().to_string();
        deployment.shutdown().await;
        assert!(
            pids.iter().all(|&pid| gone(pid)),
            "every Synapse process is gone"
        );
        assert!(!answers(&http, &base_url).await, "the proxy is gone");
        drop(deployment);
    }
}
