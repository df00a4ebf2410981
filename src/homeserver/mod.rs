//! Targets: the homeserver under test. The harness only talks to it over HTTP; a target knows how
//! to start it, where it listens, how users get registered there, and whether it can restart it.

pub mod container;
pub mod fake;
pub mod identity;
pub mod synapse;
pub mod url;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// How the harness may create users on the target.
#[derive(Clone, Debug)]
pub enum Registration {
    /// Synapse's admin API `/_synapse/admin/v1/register` with this shared secret.
    SharedSecret(String),
    /// `POST /register` with `m.login.dummy`.
    Open,
}

/// What the results file says about the target (never any secret).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TargetInfo {
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub base_url: String,
    /// The server software's name and version as detected (`identity.rs`), and where from:
    /// `msc4383` (`/versions`), `federation` (`/_matrix/federation/v1/version`) or `target`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_source: Option<String>,
    /// The container image (target container).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// From asking for the server (container) to its first answer of `/versions`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup_ms: Option<u64>,
    /// How long the last restart took (stop, start, answering again), if the run restarted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_ms: Option<u64>,
    /// The widget driver under test (suite msc4157), in front of this homeserver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<crate::widget::driver::DriverInfo>,
    /// How the managed Synapse is deployed; absent for other targets and in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<Topology>,
}

/// The response header in which a deployment of several processes names the one that answered
/// (`main`, `worker1`, ...; the managed Synapse with workers sets it in its proxy): the
/// deployment cases' evidence of which process took a request.
pub const SERVED_BY_HEADER: &str = "X-Served-By";

/// How a managed homeserver is deployed: its database, and any processes beside the main one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Topology {
    pub database: Database,
    /// Generic workers beside the main process (0: a single process).
    #[serde(skip_serializing_if = "is_zero")]
    pub workers: u32,
    /// The reverse proxy in front of the processes (`nginx`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Topology {
    /// How reports name it: "SQLite", "PostgreSQL, 2 workers behind nginx".
    pub fn label(&self) -> String {
        let mut label = match self.database {
            Database::Sqlite => "SQLite".to_string(),
            Database::Postgres => "PostgreSQL".to_string(),
        };
        if self.workers > 0 {
            label.push_str(&format!(", main + {} workers", self.workers));
        }
        if let Some(proxy) = &self.proxy {
            label.push_str(&format!(" behind {proxy}"));
        }
        label
    }
}

/// The database of the managed Synapse (`--synapse-database`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Database {
    /// A file in the run's data directory.
    #[default]
    Sqlite,
    /// A private PostgreSQL cluster the harness creates for the run.
    Postgres,
}

/// A startup or restart failure: shown to the user as-is, with exit status 2.
#[derive(Debug)]
pub struct TargetError(pub String);

impl std::fmt::Display for TargetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TargetError {}

#[async_trait]
pub trait Target: Send + Sync {
    fn info(&self) -> TargetInfo;
    fn registration(&self) -> Registration;
    /// `Ok(())` when `restart` works here; otherwise the reason restart-dependent cases skip.
    fn can_restart(&self) -> Result<(), String>;
    /// Stop the server and start it again with its data kept; returns once it answers again.
    async fn restart(&self) -> Result<(), TargetError>;
    /// `Ok(())` when `kill` works here; otherwise the reason hard-kill cases skip.
    fn can_kill(&self) -> Result<(), String> {
        Err("this target cannot kill the homeserver hard".into())
    }
    /// Kill the server hard (no clean shutdown, as a crash would) and start it again with its
    /// data kept; returns once it answers again.
    async fn kill(&self) -> Result<(), TargetError> {
        Err(TargetError(self.can_kill().unwrap_err()))
    }
    /// The names of the homeserver's processes (main first) where it runs as several that
    /// `cycle_one` can restart one at a time while the others keep serving (Synapse with
    /// workers); otherwise why not, the reason cases needing it skip.
    fn processes(&self) -> Result<Vec<String>, String> {
        Err(
            "the homeserver runs as a single process (Synapse with workers: --synapse-workers N)"
                .into(),
        )
    }
    /// Restart (or with `kill`, kill hard, as a crash would) the one process `name` of
    /// `processes` and start it again on its data, while the others keep serving; returns once
    /// it answers again. Cases call it in a restart round (`Ctx::restart_one_now`).
    async fn cycle_one(&self, name: &str, kill: bool) -> Result<(), TargetError> {
        let _ = (name, kill);
        Err(TargetError(self.processes().unwrap_err()))
    }
    /// The last `lines` lines of the server's log, where the harness can see it.
    fn log_tail(&self, lines: usize) -> Option<String>;
    /// Stop the server and everything the target started. Idempotent; safe on every exit path.
    async fn shutdown(&self);
    /// CPU time the server process has used so far, where the harness can see it (the load
    /// command sets it beside its own).
    async fn server_cpu_time(&self) -> Option<std::time::Duration> {
        None
    }
}

/// User plus system CPU time of a process and its threads, from `/proc/PID/stat` (Linux).
pub fn process_cpu_time(pid: u32) -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| std::time::Duration::from_millis(ticks * 1000 / per_second as u64))
}
