//! The container's log, followed from the engine: its last lines, for failures and `log_tail`.

use futures::StreamExt;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use testcontainers::bollard::query_parameters::LogsOptions;
use testcontainers::bollard::Docker;

/// How many lines of the container's log are kept in memory.
const LOG_LINES_KEPT: usize = 5000;

/// The last lines of the container's stdout and stderr, followed from the engine.
#[derive(Default)]
pub(super) struct ContainerLog {
    lines: Mutex<VecDeque<String>>,
    follower: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl ContainerLog {
    /// (Re)reads the container's whole log and keeps following it: after a restart the
    /// engine's log holds every run of the container.
    pub(super) fn follow(self: &Arc<Self>, docker: &Docker, id: &str) {
        self.stop_following();
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let options = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let mut stream = docker.logs(id, Some(options));
        let log = Arc::clone(self);
        let task = tokio::spawn(async move {
            let mut partial = String::new();
            while let Some(Ok(frame)) = stream.next().await {
                partial.push_str(&String::from_utf8_lossy(frame.as_ref()));
                while let Some(newline) = partial.find('\n') {
                    let line: String = partial.drain(..=newline).collect();
                    log.push(line.trim_end_matches(['\n', '\r']).to_string());
                }
            }
            if !partial.is_empty() {
                log.push(partial);
            }
        });
        *self.follower.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }

    pub(super) fn stop_following(&self) {
        if let Some(task) = self
            .follower
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }

    pub(super) fn push(&self, line: String) {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == LOG_LINES_KEPT {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    pub(super) fn tail(&self, count: usize) -> String {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.iter().all(|l| l.trim().is_empty()) {
            return "(the container wrote nothing to its log)".into();
        }
        let skip = lines.len().saturating_sub(count);
        lines
            .iter()
            .skip(skip)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_last_lines() {
        let log = ContainerLog::default();
        assert_eq!(log.tail(3), "(the container wrote nothing to its log)");
        for i in 0..LOG_LINES_KEPT + 5 {
            log.push(format!("line {i}"));
        }
        assert_eq!(
            log.tail(2),
            format!("line {}\nline {}", LOG_LINES_KEPT + 3, LOG_LINES_KEPT + 4)
        );
    }
}
