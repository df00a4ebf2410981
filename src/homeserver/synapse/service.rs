//! Helper programs of a deployed Synapse (nginx, Redis): found on the machine, started for the
//! run so that they die with the harness, waited for, and killed when dropped.

use super::*;
use std::net::{SocketAddr, TcpStream};

/// Where Debian and others put daemons that ordinary users' `PATH` often lacks.
const SYSTEM_DIRS: &[&str] = &["/usr/sbin", "/usr/local/sbin", "/sbin"];

/// The program `name` from `PATH` or the system directories; `None` when it is not installed.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SYSTEM_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| {
            use std::os::unix::fs::PermissionsExt;
            fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The message for a helper program that is not installed, with the package that provides it.
pub fn missing_program(name: &str, package: &str, purpose: &str) -> TargetError {
    TargetError(format!(
        "{name} is not installed (looked in PATH and {}), and {purpose} needs it. Install it, \
         e.g. `apt install {package}` on Debian or Ubuntu, or run without that option.",
        SYSTEM_DIRS.join(", ")
    ))
}

/// A running helper program: the leader of its own process group, killed with the harness
/// (parent-death signal) and, when dropped, at once.
pub struct Service {
    name: String,
    child: Option<Child>,
    /// Its stdout and stderr, and the log it writes itself when that is elsewhere.
    logs: Vec<PathBuf>,
}

impl Service {
    /// Starts `command` (whose program, arguments and working directory the caller set) with
    /// stdin closed and its output appended to `output_log`.
    pub async fn spawn(
        name: impl Into<String>,
        mut command: Command,
        output_log: &Path,
    ) -> Result<Service, TargetError> {
        let name = name.into();
        let cannot = |e: io::Error| TargetError(format!("cannot start {name}: {e}"));
        let output = OpenOptions::new()
            .create(true)
            .append(true)
            .open(output_log)
            .map_err(cannot)?;
        command
            .stdin(Stdio::null())
            .stdout(output.try_clone().map_err(cannot)?)
            .stderr(output)
            // Its own group: the terminal's Ctrl-C does not reach it, and we can signal all of it.
            .process_group(0);
        let harness = std::process::id() as libc::pid_t;
        // SAFETY: the closure only makes async-signal-safe system calls.
        unsafe {
            command.pre_exec(move || die_with_parent(harness));
        }
        let child = spawn_from_launcher(command).await.map_err(cannot)?;
        Ok(Service {
            name,
            child: Some(child),
            logs: vec![output_log.to_path_buf()],
        })
    }

    /// Also shows `log` (a log the program writes itself) in start-up failures.
    pub fn with_log(mut self, log: PathBuf) -> Self {
        self.logs.push(log);
        self
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref()?.id()
    }

    /// Polls `ready` until it holds; fails, with the end of the program's logs, when the
    /// program exits first or `timeout` passes.
    pub async fn wait_until<F: std::future::Future<Output = bool>>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut ready: impl FnMut() -> F,
    ) -> Result<(), TargetError> {
        let deadline = Instant::now() + timeout;
        loop {
            let exited = match self.child.as_mut().map(|child| child.try_wait()) {
                Some(Ok(Some(status))) => Some(describe_exit(status)),
                Some(Ok(None)) => None,
                Some(Err(e)) => Some(format!("could not be watched ({e})")),
                None => Some("was stopped".to_string()),
            };
            if let Some(exit) = exited {
                return Err(self.failure(&exit));
            }
            if ready().await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let waited = timeout.as_secs_f64();
                return Err(self.failure(&format!("did not {what} within {waited} s")));
            }
            tokio::time::sleep(READY_POLL_INTERVAL).await;
        }
    }

    fn failure(&self, reason: &str) -> TargetError {
        let mut logs = self.log_tail(FAILURE_LOG_LINES);
        if logs.is_empty() {
            logs = "(it wrote nothing)".to_string();
        }
        TargetError(format!(
            "{} {reason}. Last lines of its output:\n{logs}",
            self.name
        ))
    }

    /// Kills the program's process group and reaps it. Idempotent.
    pub async fn stop(&mut self) {
        self.stop_within(Duration::ZERO).await
    }

    /// SIGTERM to the program's process group, SIGKILL after `grace` (at once for a zero
    /// grace: a crash), and reaps it. Idempotent.
    pub async fn stop_within(&mut self, grace: Duration) {
        if let Some(child) = self.child.take() {
            stop(child, grace).await;
        }
    }

    /// The end of the logs it was given.
    pub fn log_tail(&self, lines: usize) -> String {
        let logs: Vec<String> = self
            .logs
            .iter()
            .filter_map(|log| tail_lines(log, lines))
            .collect();
        logs.join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                signal_group(pid, libc::SIGKILL);
            }
            reap_briefly(&mut child);
        }
    }
}

/// True when something accepts TCP connections on 127.0.0.1:`port`.
pub fn accepts(port: u16) -> bool {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_says_what_to_install() {
        assert!(find_program("dec-no-such-program").is_none());
        assert!(find_program("sh").is_some());
        let message = missing_program("nginx", "nginx", "Synapse with workers").0;
        assert!(message.contains("apt install nginx"), "{message}");
        assert!(message.contains("/usr/sbin"), "{message}");
    }
}
