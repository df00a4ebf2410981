//! Targets: the homeserver under test. The harness only talks to it over HTTP; a target knows how
//! to start it, where it listens, how users get registered there, and whether it can restart it.

pub mod container;
pub mod synapse;
pub mod url;

use async_trait::async_trait;
use serde::Serialize;

/// How the harness may create users on the target.
#[derive(Clone, Debug)]
pub enum Registration {
    /// Synapse's admin API `/_synapse/admin/v1/register` with this shared secret.
    SharedSecret(String),
    /// `POST /register` with `m.login.dummy`.
    Open,
}

/// What the results file says about the target (never any secret).
#[derive(Clone, Debug, Default, Serialize)]
pub struct TargetInfo {
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub base_url: String,
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
    pub driver: Option<crate::widget::DriverInfo>,
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
    /// The last `lines` lines of the server's log, where the harness can see it.
    fn log_tail(&self, lines: usize) -> Option<String>;
    /// Stop the server and everything the target started. Idempotent; safe on every exit path.
    async fn shutdown(&self);
}
