//! The bridge to a widget driver process: start it with the session in its environment, read
//! its stdout one JSON object per line, match replies to requests in both directions, keep the
//! tail of its stderr (its log), and kill its whole process group when dropped.
//!
//! The contract (docs/widget-drivers.md, "The bridge contract"): the first stdout line is a hello,
//! `{"bridge": {"name": ..., "version": ...}}`, once the driver is ready; every later line is a
//! widget-API message. Lines on stdin are widget-API messages from the widget (the harness).
//!
//! The driver's toWidget requests: the capability handshake's (`capabilities`,
//! `notify_capabilities`) wait for the session to answer them; every other one is answered at
//! once, as a widget does (`supported_api_versions` with the versions the harness speaks, any
//! other with `{}`), and kept (`ToWidgetLog`) so that a case can look for the events the driver
//! passed on (toWidget `send_event`).

use super::driver::DriverLog;
use crate::homeserver::synapse::process;
use crate::outcome::Stop;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot, Notify};

/// How long a driver that died at start may take to finish writing its stderr.
const STDERR_DRAIN: Duration = Duration::from_secs(2);

/// What the harness gives a driver process (as environment variables, see `BridgeSession::env`).
#[derive(Clone, Debug)]
pub struct BridgeSession {
    pub homeserver_url: String,
    pub user_id: String,
    pub access_token: String,
    pub device_id: String,
    pub room_id: String,
    pub widget_id: String,
    /// The capabilities the user approves: `None` approves everything the widget asks for.
    pub approved: Option<Vec<String>>,
    /// Whether the driver waits for the widget's `content_loaded` before it starts the
    /// capability negotiation (as Element Call's hosts do), or starts it at once.
    pub init_on_content_load: bool,
}

impl BridgeSession {
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("BRIDGE_HOMESERVER_URL", self.homeserver_url.clone()),
            ("BRIDGE_USER_ID", self.user_id.clone()),
            ("BRIDGE_ACCESS_TOKEN", self.access_token.clone()),
            ("BRIDGE_DEVICE_ID", self.device_id.clone()),
            ("BRIDGE_ROOM_ID", self.room_id.clone()),
            ("BRIDGE_WIDGET_ID", self.widget_id.clone()),
            (
                "BRIDGE_APPROVED_CAPABILITIES",
                match &self.approved {
                    None => "*".to_string(),
                    Some(list) => json!(list).to_string(),
                },
            ),
            (
                "BRIDGE_INIT_ON_CONTENT_LOAD",
                self.init_on_content_load.to_string(),
            ),
        ]
    }
}

/// What the driver said about itself in its hello line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DriverIdentity {
    pub name: String,
    pub version: String,
}

/// Why the driver can no longer be talked to (it exited, or wrote something that is not JSON).
#[derive(Clone, Default)]
struct Broken(Arc<Mutex<Option<String>>>);

impl Broken {
    fn set(&self, why: String) {
        self.0.lock().unwrap().get_or_insert(why);
    }
    fn get(&self) -> Option<String> {
        self.0.lock().unwrap().clone()
    }
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>;

/// How many replies each fromWidget request the harness sent has had so far, by requestId: a
/// driver must answer each exactly once, and a second reply comes after the first is taken.
type ReplyCounts = Arc<Mutex<HashMap<String, usize>>>;

/// The widget-API versions the harness says it speaks when the driver asks (toWidget
/// `supported_api_versions`): those of the requests it answers, as Element Call's widget side
/// lists them.
const WIDGET_API_VERSIONS: [&str; 5] = [
    "0.0.1",
    "0.0.2",
    "org.matrix.msc2762",
    "org.matrix.msc2762_update_state",
    "org.matrix.msc2871",
];

/// The handshake's toWidget requests, which the session answers itself.
fn is_handshake(request: &Value) -> bool {
    matches!(
        request.get("action").and_then(Value::as_str),
        Some("capabilities" | "notify_capabilities")
    )
}

/// The toWidget requests answered outside the handshake, in the order they came, with a way
/// to wait for the next.
#[derive(Clone, Default)]
pub struct ToWidgetLog(Arc<(Mutex<Vec<Value>>, Notify)>);

impl ToWidgetLog {
    fn push(&self, request: Value) {
        self.0 .0.lock().unwrap().push(request);
        self.0 .1.notify_waiters();
    }

    /// Waits until `deadline` for a request matching `pred` (earlier ones included).
    pub async fn wait_for(
        &self,
        deadline: tokio::time::Instant,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        loop {
            let notified = self.0 .1.notified();
            if let Some(found) = self.0 .0.lock().unwrap().iter().find(|r| pred(r)) {
                return Some(found.clone());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.0 .0.lock().unwrap().iter().find(|r| pred(r)).cloned();
            }
        }
    }
}

/// A running driver process.
pub struct Bridge {
    child: Child,
    stdin: Arc<tokio::sync::Mutex<ChildStdin>>,
    pending: Pending,
    reply_counts: ReplyCounts,
    requests: tokio::sync::Mutex<mpsc::UnboundedReceiver<Value>>,
    log: DriverLog,
    broken: Broken,
    pub identity: DriverIdentity,
    widget_id: String,
    /// The toWidget requests outside the handshake, answered already.
    pub to_widget: ToWidgetLog,
}

impl Bridge {
    /// Starts `program args` with the session in its environment and waits for its hello.
    pub async fn start(
        program: &str,
        args: &[String],
        session: &BridgeSession,
        log: DriverLog,
        start_timeout: Duration,
    ) -> Result<Bridge, Stop> {
        log.redact(&session.access_token);
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(session.env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group, so that drop kills whatever it started too.
            .process_group(0);
        // Killed by the kernel if the harness dies outright (an interrupt exits without drops).
        let harness = std::process::id() as libc::pid_t;
        // SAFETY: the closure only makes async-signal-safe system calls.
        unsafe {
            command.pre_exec(move || process::die_with_parent(harness));
        }
        let mut child = process::spawn_from_launcher(command).await.map_err(|e| {
            Stop::Error(format!(
                "could not start the widget driver `{program}`: {e}"
            ))
        })?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");

        let log_for_stderr = log.clone();
        let stderr_reader = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                log_for_stderr.push(line);
            }
        });

        let pending: Pending = Default::default();
        let reply_counts: ReplyCounts = Default::default();
        let broken = Broken::default();
        let (hello_tx, hello_rx) = oneshot::channel();
        let (request_tx, request_rx) = mpsc::unbounded_channel();
        let (other_tx, other_rx) = mpsc::unbounded_channel();
        tokio::spawn(read_stdout(
            stdout,
            hello_tx,
            request_tx,
            other_tx,
            pending.clone(),
            reply_counts.clone(),
            broken.clone(),
            log.clone(),
        ));
        let stdin = Arc::new(tokio::sync::Mutex::new(stdin));
        let to_widget = ToWidgetLog::default();
        // It holds the input, not the bridge: it ends when the driver's stdout closes.
        tokio::spawn(answer_to_widget(
            other_rx,
            stdin.clone(),
            to_widget.clone(),
            log.clone(),
        ));

        let mut bridge = Bridge {
            child,
            stdin,
            pending,
            reply_counts,
            requests: tokio::sync::Mutex::new(request_rx),
            log,
            broken,
            identity: DriverIdentity::default(),
            widget_id: session.widget_id.clone(),
            to_widget,
        };
        bridge.identity = match tokio::time::timeout(start_timeout, hello_rx).await {
            Ok(Ok(identity)) => identity,
            Ok(Err(_)) => {
                // A driver that exits at once says why on stderr; its last lines may still be
                // in the pipe when stdout closes, so read them before saying what happened.
                let _ = tokio::time::timeout(STDERR_DRAIN, stderr_reader).await;
                return Err(bridge.broken_stop("while starting"));
            }
            Err(_) => {
                return Err(bridge.error(format!(
                    "the widget driver did not say it was ready (its hello line) within {} s",
                    start_timeout.as_secs()
                )))
            }
        };
        Ok(bridge)
    }

    pub fn log(&self) -> &DriverLog {
        &self.log
    }

    /// Why the driver can no longer be talked to (it exited, or printed something that is not
    /// JSON); `None` while it runs.
    pub fn broken(&self) -> Option<String> {
        self.broken.get()
    }

    /// An `error` outcome carrying the driver's log tail.
    pub fn error(&self, message: String) -> Stop {
        Stop::Error(format!(
            "{message}\n  widget driver log (last lines):\n{}",
            self.log.indented_tail()
        ))
    }

    fn broken_stop(&self, when: &str) -> Stop {
        let why = self
            .broken
            .get()
            .unwrap_or_else(|| "the widget driver stopped".into());
        self.error(format!("{why} ({when})"))
    }

    async fn write_line(&self, message: &Value) -> Result<(), Stop> {
        if self.broken.get().is_some() {
            return Err(self.broken_stop("before the harness could write to it"));
        }
        write_to(&self.stdin, message).await.map_err(|e| {
            self.broken
                .set(format!("the widget driver closed its input ({e})"));
            self.broken_stop("writing to it")
        })
    }

    /// Sends a fromWidget request and waits up to `wait` for its reply (the `response` field);
    /// `Ok(None)` when no reply came in time.
    pub async fn request(
        &self,
        action: &str,
        data: Value,
        wait: Duration,
    ) -> Result<Option<Value>, Stop> {
        Ok(self.request_with_id(action, data, wait).await?.1)
    }

    /// `request`, also giving the request's requestId (to count its replies, `replies_to`).
    pub async fn request_with_id(
        &self,
        action: &str,
        data: Value,
        wait: Duration,
    ) -> Result<(String, Option<Value>), Stop> {
        let request_id = format!("harness-{}", crate::client::new_txn_id());
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(request_id.clone(), tx);
        self.reply_counts
            .lock()
            .unwrap()
            .insert(request_id.clone(), 0);
        let message = json!({
            "api": "fromWidget",
            "widgetId": self.widget_id,
            "requestId": request_id,
            "action": action,
            "data": data,
        });
        self.write_line(&message).await?;
        let reply = tokio::time::timeout(wait, rx).await;
        self.pending.lock().unwrap().remove(&request_id);
        match reply {
            Ok(Ok(response)) => Ok((request_id, Some(response))),
            Ok(Err(_)) => Err(self.broken_stop(&format!("waiting for the reply to `{action}`"))),
            Err(_) if self.broken.get().is_some() => {
                Err(self.broken_stop(&format!("waiting for the reply to `{action}`")))
            }
            Err(_) => Ok((request_id, None)),
        }
    }

    /// How many replies the request `request_id` has had so far (replies after the first
    /// included).
    pub fn replies_to(&self, request_id: &str) -> usize {
        self.reply_counts
            .lock()
            .unwrap()
            .get(request_id)
            .copied()
            .unwrap_or(0)
    }

    /// The next toWidget request the driver sent (waiting up to `wait`); `Ok(None)` if none came.
    pub async fn next_request(&self, wait: Duration) -> Result<Option<Value>, Stop> {
        let mut requests = self.requests.lock().await;
        match tokio::time::timeout(wait, requests.recv()).await {
            Ok(Some(request)) => Ok(Some(request)),
            Ok(None) => Err(self.broken_stop("waiting for its next request")),
            Err(_) if self.broken.get().is_some() => {
                Err(self.broken_stop("waiting for its next request"))
            }
            Err(_) => Ok(None),
        }
    }

    /// Answers a toWidget request: the same envelope with `response` added.
    pub async fn reply(&self, request: &Value, response: Value) -> Result<(), Stop> {
        let mut message = request.clone();
        message["response"] = response;
        self.write_line(&message).await
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            // The whole group: a driver that is a shell script or a Node launcher leaves none behind.
            unsafe {
                libc::kill(-(pid as i32), libc::SIGKILL);
            }
        }
        let _ = self.child.start_kill();
    }
}

async fn write_to(stdin: &tokio::sync::Mutex<ChildStdin>, message: &Value) -> std::io::Result<()> {
    let mut stdin = stdin.lock().await;
    let line = format!("{message}\n");
    stdin.write_all(line.as_bytes()).await?;
    stdin.flush().await
}

/// Answers the driver's toWidget requests outside the handshake, as a widget does, and keeps
/// them; ends when the driver's stdout closes (the reader drops its sender).
async fn answer_to_widget(
    mut requests: mpsc::UnboundedReceiver<Value>,
    stdin: Arc<tokio::sync::Mutex<ChildStdin>>,
    log: ToWidgetLog,
    driver_log: DriverLog,
) {
    while let Some(request) = requests.recv().await {
        let response = match request.get("action").and_then(Value::as_str) {
            Some("supported_api_versions") => json!({ "supported_versions": WIDGET_API_VERSIONS }),
            _ => json!({}),
        };
        let mut reply = request.clone();
        reply["response"] = response;
        if let Err(e) = write_to(&stdin, &reply).await {
            driver_log.push(format!(
                "[harness] could not answer a toWidget request: {e}"
            ));
        }
        log.push(request);
    }
}

/// Reads the driver's stdout: the hello, then widget-API messages, routed by direction (and
/// toWidget requests by whether the handshake answers them).
async fn read_stdout(
    stdout: tokio::process::ChildStdout,
    hello_tx: oneshot::Sender<DriverIdentity>,
    requests: mpsc::UnboundedSender<Value>,
    other_requests: mpsc::UnboundedSender<Value>,
    pending: Pending,
    reply_counts: ReplyCounts,
    broken: Broken,
    log: DriverLog,
) {
    let mut hello_tx = Some(hello_tx);
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => {
                broken.set("the widget driver exited (its stdout closed)".into());
                break;
            }
            Err(e) => {
                broken.set(format!("could not read the widget driver's stdout: {e}"));
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let message: Value = match serde_json::from_str(&line) {
            Ok(value @ Value::Object(_)) => value,
            _ => {
                log.push(format!("[stdout] {line}"));
                broken.set(format!(
                    "the widget driver printed something that is not a JSON object on stdout: {}",
                    shorten(&line)
                ));
                break;
            }
        };
        if let Some(tx) = hello_tx.take() {
            let Some(hello) = message.get("bridge") else {
                broken.set(format!(
                    "the widget driver's first line is not its hello ({{\"bridge\": {{\"name\", \"version\"}}}}): {}",
                    shorten(&line)
                ));
                break;
            };
            let field = |k: &str| {
                hello
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string()
            };
            let _ = tx.send(DriverIdentity {
                name: field("name"),
                version: field("version"),
            });
            continue;
        }
        let api = message.get("api").and_then(Value::as_str);
        let request_id = message
            .get("requestId")
            .and_then(Value::as_str)
            .map(str::to_string);
        match (api, message.get("response"), request_id) {
            (Some("fromWidget"), Some(response), Some(id)) => {
                let replies = reply_counts.lock().unwrap().get_mut(&id).map(|count| {
                    *count += 1;
                    *count
                });
                if let Some(tx) = pending.lock().unwrap().remove(&id) {
                    let _ = tx.send(response.clone());
                } else if replies.is_some_and(|n| n > 1) {
                    log.push(format!(
                        "[stdout, another reply to an answered request] {line}"
                    ));
                } else {
                    log.push(format!("[stdout, reply to no pending request] {line}"));
                }
            }
            (Some("toWidget"), None, Some(_)) if is_handshake(&message) => {
                let _ = requests.send(message);
            }
            (Some("toWidget"), None, Some(_)) => {
                let _ = other_requests.send(message);
            }
            _ => log.push(format!("[stdout, not a widget-API message] {line}")),
        }
    }
    // Whoever waits learns it at once: no reply can come any more.
    pending.lock().unwrap().clear();
}

fn shorten(line: &str) -> String {
    const MAX: usize = 200;
    if line.len() <= MAX {
        return line.to_string();
    }
    let mut end = MAX;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}
