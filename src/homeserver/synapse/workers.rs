//! The configuration of a Synapse deployed with workers, as data: the main process's
//! configuration (the single-process one of `config.rs`, on the caller's database, with what
//! workers need added) doubles as the shared configuration; each generic worker reads it and a
//! file of its own. Sources: Synapse's docs/workers.md ("Shared configuration", "Worker
//! configuration", "Stream writers") and docs/usage/configuration/config_documentation.md at
//! v1.163.2.
//!
//! Choices, and why:
//! - **Events stream writer: the first worker** (`EventsWriter::FirstWorker`). Production
//!   deployments move event persistence off the main process. Here it puts a process boundary
//!   where delayed events live: the main process holds the timer (below) and sends a due event
//!   over HTTP replication to the writer, which persists it and streams it back through Redis.
//!   A dedicated persister would add a process without adding a boundary. The flip side, a
//!   production fact too: while that worker is down, nothing is sent, by anyone.
//! - **The delayed-events timer runs on the main process**: Synapse 1.163.2 starts it only where
//!   `worker_app` is unset, and workers report new delayed events to main over replication
//!   (handlers/delayed_events.py). No option moves it, and the docs do not mention it.
//! - **`run_background_tasks_on: main`** (Synapse's default, written out so the plan says it):
//!   moving background tasks would not move the timer, and keeps the workers interchangeable.
//! - Client listeners trust `X-Forwarded-For`: every request comes through the proxy.

use super::*;

/// The main process's name in `instance_map` (Synapse's fixed name for it).
pub const MAIN_INSTANCE: &str = "main";
const GENERIC_WORKER_APP: &str = "synapse.app.generic_worker";
const MAIN_APP: &str = "synapse.app.homeserver";

/// The `number`th generic worker's instance name (from 1): `worker1`, ...
pub(super) fn worker_name(number: usize) -> String {
    format!("worker{number}")
}

/// Which process writes the events stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EventsWriter {
    /// The main process, Synapse's default.
    Main,
    /// The first generic worker (also serving client requests), as production moves it off main.
    #[default]
    FirstWorker,
}

/// One Synapse process of the deployment.
pub(super) struct ProcessPlan {
    /// Its instance name: `main`, `worker1`, ...
    pub(super) name: String,
    /// The Python module that runs it.
    pub(super) app: &'static str,
    /// Its configuration files, in the order Synapse reads them (`-c` each).
    pub(super) config_files: Vec<PathBuf>,
    /// Its client listener, behind the proxy.
    pub(super) client_port: u16,
    /// Its replication listener, for the other processes.
    pub(super) replication_port: u16,
    /// Its directory, configuration, logs.
    pub(super) files: RunFiles,
}

/// The processes of a deployment and how they find each other.
pub(super) struct DeploymentPlan {
    pub(super) main: ProcessPlan,
    pub(super) workers: Vec<ProcessPlan>,
    pub(super) redis_port: u16,
    pub(super) events_writer: EventsWriter,
    /// Authenticates replication requests between the processes.
    pub(super) replication_secret: String,
}

impl DeploymentPlan {
    /// Names and free loopback ports for the main process and `workers` generic workers (at
    /// least one), with their files in `dir` (main) and `dir/<worker name>/`.
    pub(super) fn new(
        dir: &Path,
        workers: usize,
        redis_port: u16,
        events_writer: EventsWriter,
    ) -> Result<DeploymentPlan, TargetError> {
        if workers == 0 {
            return Err(TargetError(
                "a deployment with workers needs at least one worker".into(),
            ));
        }
        // Two listeners a process, all different.
        let mut ports = free_loopback_ports(2 * (workers + 1))?.into_iter();
        let mut port = move || ports.next().expect("two ports a process");
        let main_files = RunFiles::in_dir(dir);
        let main = ProcessPlan {
            name: MAIN_INSTANCE.into(),
            app: MAIN_APP,
            config_files: vec![main_files.config.clone()],
            client_port: port(),
            replication_port: port(),
            files: main_files,
        };
        let workers = (1..=workers)
            .map(|number| {
                let name = worker_name(number);
                let files = worker_files(&dir.join(&name));
                Ok(ProcessPlan {
                    config_files: vec![main.files.config.clone(), files.config.clone()],
                    name,
                    app: GENERIC_WORKER_APP,
                    client_port: port(),
                    replication_port: port(),
                    files,
                })
            })
            .collect::<Result<Vec<_>, TargetError>>()?;
        Ok(DeploymentPlan {
            main,
            workers,
            redis_port,
            events_writer,
            replication_secret: random_secret(),
        })
    }

    /// Every process, main first.
    pub(super) fn processes(&self) -> impl Iterator<Item = &ProcessPlan> {
        std::iter::once(&self.main).chain(&self.workers)
    }

    pub(super) fn worker_client_ports(&self) -> Vec<u16> {
        self.workers.iter().map(|w| w.client_port).collect()
    }

    /// The instance that writes the events stream.
    pub(super) fn events_writer_name(&self) -> &str {
        match self.events_writer {
            EventsWriter::Main => &self.main.name,
            EventsWriter::FirstWorker => &self.workers[0].name,
        }
    }

    /// What the main (shared) configuration gets beside the single-process one: Redis, where
    /// each process's replication listener is, the replication secret, the stream writer and
    /// where background tasks run. Its replication listener is added by `main_config`.
    pub(super) fn shared_additions(&self) -> Value {
        let instance_map: serde_json::Map<String, Value> = self
            .processes()
            .map(|process| {
                let address = json!({"host": "127.0.0.1", "port": process.replication_port});
                (process.name.clone(), address)
            })
            .collect();
        json!({
            "redis": {"enabled": true, "host": "127.0.0.1", "port": self.redis_port},
            "instance_map": instance_map,
            "worker_replication_secret": self.replication_secret,
            "stream_writers": {"events": [self.events_writer_name()]},
            "run_background_tasks_on": MAIN_INSTANCE,
        })
    }

    /// The main process's configuration, which the workers read too: the single-process
    /// configuration on `database` (Synapse's `database` section, e.g. PostgreSQL's), with its
    /// replication listener and `shared_additions`, then the user's `fragment` over it all.
    pub(super) fn main_config(
        &self,
        database: &Value,
        registration_secret: &str,
        fragment: Option<&Value>,
    ) -> Value {
        let mut config = self
            .main
            .files
            .homeserver_config(self.main.client_port, registration_secret);
        // Replaced, not merged: SQLite's arguments mean nothing to another database.
        config["database"] = database.clone();
        if let Some(listeners) = config["listeners"].as_array_mut() {
            for listener in listeners.iter_mut() {
                listener["x_forwarded"] = json!(true);
            }
            listeners.push(replication_listener(self.main.replication_port));
        }
        deep_merge(&mut config, &self.shared_additions());
        if let Some(fragment) = fragment {
            deep_merge(&mut config, fragment);
        }
        config
    }

    /// A worker's own configuration file.
    pub(super) fn worker_config(&self, worker: &ProcessPlan) -> Value {
        json!({
            "worker_app": worker.app,
            "worker_name": worker.name,
            "worker_listeners": [
                {
                    "type": "http",
                    "port": worker.client_port,
                    "bind_addresses": ["127.0.0.1"],
                    "tls": false,
                    "x_forwarded": true,
                    "resources": [{"names": ["client"], "compress": false}],
                },
                replication_listener(worker.replication_port),
            ],
            "worker_log_config": worker.files.log_config,
        })
    }

    /// Writes every process's configuration and log configuration, and the signing key. JSON,
    /// which Synapse reads as YAML.
    pub(super) fn write(
        &self,
        database: &Value,
        registration_secret: &str,
        fragment: Option<&Value>,
    ) -> io::Result<()> {
        let main = &self.main.files;
        let config = self.main_config(database, registration_secret, fragment);
        write_json(&main.config, &config)?;
        write_json(&main.log_config, &main.log_config())?;
        fs::write(&main.signing_key, signing_key_line())?;
        for worker in &self.workers {
            fs::create_dir_all(&worker.files.dir)?;
            write_json(&worker.files.config, &self.worker_config(worker))?;
            write_json(&worker.files.log_config, &worker.files.log_config())?;
        }
        Ok(())
    }
}

/// A worker's files in its own directory: `worker.yaml`, `log_config.yaml`, `worker.log`.
fn worker_files(dir: &Path) -> RunFiles {
    RunFiles {
        config: dir.join("worker.yaml"),
        server_log: dir.join("worker.log"),
        ..RunFiles::in_dir(dir)
    }
}

/// An HTTP listener for replication on 127.0.0.1 (never reachable from elsewhere).
fn replication_listener(port: u16) -> Value {
    json!({
        "type": "http",
        "port": port,
        "bind_addresses": ["127.0.0.1"],
        "tls": false,
        "resources": [{"names": ["replication"]}],
    })
}

fn write_json(path: &Path, value: &Value) -> io::Result<()> {
    fs::write(path, serde_json::to_string_pretty(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postgres() -> Value {
        json!({"name": "psycopg2", "args": {"user": "synapse", "dbname": "synapse", "host": "/run/pg"}})
    }

    fn plan(dir: &Path, workers: usize) -> DeploymentPlan {
        DeploymentPlan::new(dir, workers, 6379, EventsWriter::FirstWorker).unwrap()
    }

    #[test]
    fn the_plan_names_each_process_with_its_files_and_distinct_ports() {
        let dir = Path::new("/run/dec");
        let plan = plan(dir, 2);
        let names: Vec<&str> = plan.processes().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["main", "worker1", "worker2"]);
        assert_eq!(plan.main.app, "synapse.app.homeserver");
        assert_eq!(plan.main.config_files, [dir.join("homeserver.yaml")]);
        let worker = &plan.workers[1];
        assert_eq!(worker.app, "synapse.app.generic_worker");
        assert_eq!(
            worker.config_files,
            [dir.join("homeserver.yaml"), dir.join("worker2/worker.yaml")]
        );
        assert_eq!(worker.files.server_log, dir.join("worker2/worker.log"));
        let mut ports: Vec<u16> = plan
            .processes()
            .flat_map(|p| [p.client_port, p.replication_port])
            .collect();
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), 6, "every listener has its own port");
        assert!(DeploymentPlan::new(dir, 0, 6379, EventsWriter::Main).is_err());
    }

    #[test]
    fn main_adds_redis_replication_and_the_events_writer_to_the_single_process_config() {
        let plan = plan(Path::new("/run/dec"), 2);
        let config = plan.main_config(&postgres(), "s3cret", None);
        // The single-process configuration underneath, on the caller's database.
        assert_eq!(config["max_event_delay_duration"], "24h");
        assert_eq!(config["registration_shared_secret"], "s3cret");
        assert_eq!(config["database"], postgres(), "replaced, not merged");
        assert_eq!(config["redis"]["enabled"], true);
        assert_eq!(config["redis"]["port"], 6379);
        let listeners = config["listeners"].as_array().unwrap();
        assert_eq!(listeners.len(), 2);
        assert_eq!(listeners[0]["port"], plan.main.client_port);
        assert_eq!(listeners[0]["resources"][0]["names"][0], "client");
        assert_eq!(listeners[1]["port"], plan.main.replication_port);
        assert_eq!(listeners[1]["resources"][0]["names"][0], "replication");
        let instances = config["instance_map"].as_object().unwrap();
        assert_eq!(instances.len(), 3);
        for process in plan.processes() {
            let address = &instances[&process.name];
            assert_eq!(address["host"], "127.0.0.1");
            assert_eq!(address["port"], process.replication_port);
        }
        assert_eq!(config["stream_writers"]["events"], json!(["worker1"]));
        assert_eq!(config["run_background_tasks_on"], "main");
        assert_eq!(
            config["worker_replication_secret"].as_str().unwrap().len(),
            32
        );
    }

    #[test]
    fn the_events_writer_can_stay_on_main() {
        let plan = DeploymentPlan::new(Path::new("/x"), 1, 6379, EventsWriter::Main).unwrap();
        assert_eq!(
            plan.shared_additions()["stream_writers"]["events"],
            json!(["main"])
        );
    }

    #[test]
    fn the_users_fragment_wins_over_the_deployment() {
        let plan = plan(Path::new("/run/dec"), 1);
        let fragment = json!({"run_background_tasks_on": "worker1", "redis": {"dbid": 2}});
        let config = plan.main_config(&postgres(), "s", Some(&fragment));
        assert_eq!(config["run_background_tasks_on"], "worker1");
        assert_eq!(config["redis"]["dbid"], 2);
        assert_eq!(config["redis"]["enabled"], true);
    }

    #[test]
    fn a_worker_serves_client_and_replication_and_logs_to_its_own_file() {
        let dir = Path::new("/run/dec");
        let plan = plan(dir, 2);
        let worker = &plan.workers[0];
        let config = plan.worker_config(worker);
        assert_eq!(config["worker_app"], "synapse.app.generic_worker");
        assert_eq!(config["worker_name"], "worker1");
        assert_eq!(
            config["worker_log_config"],
            json!(dir.join("worker1/log_config.yaml"))
        );
        let listeners = config["worker_listeners"].as_array().unwrap();
        assert_eq!(listeners[0]["port"], worker.client_port);
        assert_eq!(listeners[0]["resources"][0]["names"], json!(["client"]));
        assert_eq!(listeners[1]["port"], worker.replication_port);
        assert_eq!(
            listeners[1]["resources"][0]["names"],
            json!(["replication"])
        );
        for listener in listeners {
            assert_eq!(listener["bind_addresses"], json!(["127.0.0.1"]));
        }
    }

    #[test]
    fn writing_puts_every_file_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan(dir.path(), 2);
        plan.write(&postgres(), "s", None).unwrap();
        for process in plan.processes() {
            for file in &process.config_files {
                let text = fs::read_to_string(file).unwrap();
                serde_json::from_str::<Value>(&text).expect("JSON, which is YAML");
            }
            let log_config: Value =
                serde_json::from_str(&fs::read_to_string(&process.files.log_config).unwrap())
                    .unwrap();
            assert_eq!(
                log_config["handlers"]["file"]["filename"],
                json!(process.files.server_log)
            );
        }
        assert!(plan.main.files.signing_key.exists());
    }
}
