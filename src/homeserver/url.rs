//! Target `url`: a homeserver someone else runs. The harness starts nothing; it restarts (or
//! hard-kills) the server only through commands the user gives (`--restart-command`,
//! `--kill-command`), then waits for `/versions` to answer again.

use super::identity::{self, Identity};
use super::{Registration, Target, TargetError, TargetInfo};
use crate::endpoints::VERSIONS;
use async_trait::async_trait;
use std::io::{Read, Seek};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const READY_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Lines of a failed command's output shown in the error.
const COMMAND_OUTPUT_LINES: usize = 20;

/// How the user lets the harness restart a server it does not run.
#[derive(Clone, Debug, Default)]
pub struct UrlCommands {
    /// Restarts the server keeping its data (`sh -c`); must not return before the old process
    /// has stopped.
    pub restart: Option<String>,
    /// Kills the server hard (as a crash would) and starts it again keeping its data.
    pub kill: Option<String>,
    /// How long each command, and then the server's first answer, may take.
    pub spawn_timeout: Duration,
}

pub struct UrlTarget {
    base_url: String,
    registration: Registration,
    identity: Option<Identity>,
    commands: UrlCommands,
    http: reqwest::Client,
    restart_ms: Mutex<Option<u64>>,
}

impl UrlTarget {
    /// Checks that the server answers `/_matrix/client/versions` before anything else happens.
    pub async fn connect(
        http: &reqwest::Client,
        base_url: &str,
        shared_secret: Option<String>,
    ) -> Result<UrlTarget, TargetError> {
        Self::connect_with(http, base_url, shared_secret, UrlCommands::default()).await
    }

    pub async fn connect_with(
        http: &reqwest::Client,
        base_url: &str,
        shared_secret: Option<String>,
        commands: UrlCommands,
    ) -> Result<UrlTarget, TargetError> {
        let base_url = base_url.trim_end_matches('/').to_string();
        let versions_url = format!("{base_url}{VERSIONS}");
        let answer = http
            .get(&versions_url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| {
                TargetError(format!(
                    "cannot reach the homeserver at {base_url} ({}).\n\
                     Check --base-url: the server must be running and answer {versions_url}.",
                    crate::client::describe_transport_error(&e)
                ))
            })?;
        if !answer.status().is_success() {
            return Err(TargetError(format!(
                "{versions_url} answered HTTP {}: this does not look like a Matrix homeserver's \
                 client API. Check --base-url.",
                answer.status().as_u16()
            )));
        }
        let identity = identity::detect(http, &base_url).await;
        Ok(UrlTarget {
            base_url,
            registration: match shared_secret {
                Some(secret) => Registration::SharedSecret(secret),
                None => Registration::Open,
            },
            identity,
            commands,
            http: http.clone(),
            restart_ms: Mutex::new(None),
        })
    }

    /// Runs the user's command through `sh -c`, then waits for the server to answer again.
    async fn run_command(&self, what: &str, flag: &str, command: &str) -> Result<(), TargetError> {
        let started = Instant::now();
        let timeout = self.commands.spawn_timeout;
        // The output goes to a file, not a pipe: a command that starts the server in the
        // background would otherwise hold the pipe open and never seem to finish.
        let mut output = tempfile::tempfile()
            .map_err(|e| TargetError(format!("cannot create a temporary file: {e}")))?;
        let stdout = output.try_clone().map_err(|e| TargetError(e.to_string()))?;
        let stderr = output.try_clone().map_err(|e| TargetError(e.to_string()))?;
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| TargetError(format!("cannot run the {flag} ({command}): {e}")))?;
        let status = match tokio::time::timeout(timeout, child.wait()).await {
            Ok(status) => status.map_err(|e| TargetError(e.to_string()))?,
            Err(_) => {
                let _ = child.kill().await;
                return Err(TargetError(format!(
                    "the {flag} ({command}) did not finish within {} s (--spawn-timeout)",
                    timeout.as_secs_f64()
                )));
            }
        };
        if !status.success() {
            let mut text = String::new();
            let _ = output
                .rewind()
                .and_then(|()| output.read_to_string(&mut text));
            let tail: Vec<&str> = text.lines().rev().take(COMMAND_OUTPUT_LINES).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(TargetError(format!(
                "the {flag} ({command}) failed ({status}); its last output:\n{}",
                tail.join("\n")
            )));
        }
        self.wait_until_answering(what, started + timeout + timeout)
            .await?;
        *self.restart_ms.lock().unwrap() = Some(started.elapsed().as_millis() as u64);
        Ok(())
    }

    async fn wait_until_answering(&self, what: &str, deadline: Instant) -> Result<(), TargetError> {
        let url = format!("{}{VERSIONS}", self.base_url);
        loop {
            let request = self.http.get(&url).timeout(Duration::from_secs(2)).send();
            if matches!(request.await, Ok(r) if r.status().is_success()) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(TargetError(format!(
                    "after the {what}, the homeserver did not answer {url} within {} s \
                     (--spawn-timeout)",
                    self.commands.spawn_timeout.as_secs_f64()
                )));
            }
            tokio::time::sleep(READY_POLL_INTERVAL).await;
        }
    }
}

#[async_trait]
impl Target for UrlTarget {
    fn info(&self) -> TargetInfo {
        let info = TargetInfo {
            kind: "url".into(),
            name: identity::UNKNOWN.into(),
            base_url: self.base_url.clone(),
            restart_ms: *self.restart_ms.lock().unwrap(),
            ..Default::default()
        };
        identity::apply(info, self.identity.as_ref())
    }

    fn registration(&self) -> Registration {
        self.registration.clone()
    }

    fn can_restart(&self) -> Result<(), String> {
        match self.commands.restart {
            Some(_) => Ok(()),
            None => Err(
                "target `url` restarts the homeserver only with --restart-command CMD \
                 (a command that restarts it keeping its data)"
                    .into(),
            ),
        }
    }

    async fn restart(&self) -> Result<(), TargetError> {
        let command = self
            .commands
            .restart
            .as_deref()
            .ok_or_else(|| TargetError(self.can_restart().unwrap_err()))?;
        self.run_command("restart", "--restart-command", command)
            .await
    }

    fn can_kill(&self) -> Result<(), String> {
        match self.commands.kill {
            Some(_) => Ok(()),
            None => Err(
                "target `url` kills the homeserver only with --kill-command CMD \
                 (a command that kills it hard and starts it again keeping its data)"
                    .into(),
            ),
        }
    }

    async fn kill(&self) -> Result<(), TargetError> {
        let command = self
            .commands
            .kill
            .as_deref()
            .ok_or_else(|| TargetError(self.can_kill().unwrap_err()))?;
        self.run_command("hard kill", "--kill-command", command)
            .await
    }

    fn log_tail(&self, _lines: usize) -> Option<String> {
        None
    }

    async fn shutdown(&self) {}
}
