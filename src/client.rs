//! The one Matrix HTTP client. Every request a case makes goes through `Call::send`, which records
//! it as evidence (`evidence.rs`: method, path, status, body; secrets redacted) and turns transport failures into
//! `Stop::Error` (the environment broke, not the server under test).

use crate::endpoints;
use crate::evidence::{redact, Evidence, Exchange};
use crate::outcome::Stop;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Characters left as they are in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The run's one HTTP connection pool.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(64)
        .build()
        .expect("the HTTP client builds with static settings")
}

/// The targets' own client while a homeserver starts (readiness probes, its identity): the
/// homeserver is local, so never through a proxy the environment names.
pub fn probe_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("the HTTP client builds with static settings")
}

/// A readiness probe: `url` answers 2xx within 2 s.
pub async fn answers_ok(http: &reqwest::Client, url: &str) -> bool {
    let request = http.get(url).timeout(Duration::from_secs(2)).send();
    matches!(request.await, Ok(r) if r.status().is_success())
}

/// Percent-encodes one path segment (room ids, event types, state keys, delay ids).
pub fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// Human wording for a transport failure (connection refused, timeout, DNS...).
pub fn describe_transport_error(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    if err.is_timeout() {
        format!("timed out ({text})")
    } else {
        text
    }
}

/// An HTTP answer with what produced it, for failure messages.
#[derive(Clone, Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: HeaderMap,
    /// "PUT /_matrix/client/v3/rooms/..." (query included).
    pub request: String,
    /// When the answer arrived, on the harness's clock.
    pub received: Instant,
}

impl Resp {
    pub fn errcode(&self) -> Option<&str> {
        self.body.get("errcode").and_then(Value::as_str)
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Which process of a deployment answered, where the deployment says
    /// ([`crate::homeserver::SERVED_BY_HEADER`]).
    pub fn served_by(&self) -> Option<&str> {
        self.header(crate::homeserver::SERVED_BY_HEADER)
    }

    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Value::as_str)
    }

    /// "PUT /path answered 404 {"errcode":...}" — the core of every failure message.
    pub fn describe(&self) -> String {
        let mut body = self.body.to_string();
        if body.len() > 300 {
            body = format!("{}...", body.chars().take(300).collect::<String>());
        }
        format!("{} answered {} {}", self.request, self.status, body)
    }

    /// For set-up steps (create a room, join...): anything but success means the harness cannot
    /// go on, which is an `error`, not a verdict about delayed events.
    pub fn setup_step(self, step: &str) -> Result<Resp, Stop> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(Stop::Error(format!(
                "set-up step '{step}' failed: {}",
                self.describe()
            )))
        }
    }
}

/// State of a user's `/sync` stream: the token and every timeline event seen so far.
#[derive(Default)]
struct SyncState {
    since: Option<String>,
    seen: Vec<Observed>,
}

/// A timeline event as the harness saw it over `/sync`.
#[derive(Clone, Debug)]
pub struct Observed {
    pub room_id: String,
    pub event: Value,
    /// When the `/sync` answer carrying it arrived.
    pub at: Instant,
}

impl Observed {
    pub fn event_type(&self) -> &str {
        self.event.get("type").and_then(Value::as_str).unwrap_or("")
    }
    pub fn content(&self) -> &Value {
        self.event.get("content").unwrap_or(&Value::Null)
    }
    pub fn origin_server_ts(&self) -> Option<i64> {
        self.event.get("origin_server_ts").and_then(Value::as_i64)
    }
    pub fn state_key(&self) -> Option<&str> {
        self.event.get("state_key").and_then(Value::as_str)
    }
    pub fn event_id(&self) -> Option<&str> {
        self.event.get("event_id").and_then(Value::as_str)
    }
}

/// Sync filter: generous timeline so no event of a case is cut off, nothing the cases do not read.
const SYNC_FILTER: &str = r#"{"room":{"timeline":{"limit":100},"state":{"lazy_load_members":true},"ephemeral":{"types":[]},"account_data":{"types":[]}},"presence":{"types":[]},"account_data":{"types":[]}}"#;

/// Longest single long-poll; short enough that deadlines are honoured closely.
const MAX_POLL: Duration = Duration::from_secs(5);

/// A logged-in (or anonymous) user of the homeserver under test.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: Arc<str>,
    token: Option<Arc<str>>,
    evidence: Evidence,
    pub user_id: String,
    /// The account's password, for user-interactive auth (deactivation); never recorded.
    password: Option<Arc<str>>,
    sync: Arc<tokio::sync::Mutex<SyncState>>,
}

/// A request being built; `send` performs it.
pub struct Call<'a> {
    client: &'a Client,
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    shown_body: Option<Value>,
    authenticated: bool,
    recorded: bool,
}

impl<'a> Call<'a> {
    pub fn query(mut self, key: &str, value: impl ToString) -> Self {
        self.query.push((key.to_string(), value.to_string()));
        self
    }

    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self.shown_body = Some(redact(&body));
        self
    }

    /// A body that is sent byte for byte (malformed JSON, say).
    pub fn raw(mut self, body: &str) -> Self {
        self.body = Some(body.as_bytes().to_vec());
        self.shown_body = Some(Value::String(body.to_string()));
        self
    }

    /// Leave out the access token, whatever the client has.
    pub fn without_token(mut self) -> Self {
        self.authenticated = false;
        self
    }

    /// Do not record this exchange as evidence (used by `/sync`, which records a summary).
    fn unrecorded(mut self) -> Self {
        self.recorded = false;
        self
    }

    fn request_line(&self) -> String {
        if self.query.is_empty() {
            format!("{} {}", self.method, self.path)
        } else {
            let query: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{} {}?{}", self.method, self.path, query.join("&"))
        }
    }

    pub async fn send(self) -> Result<Resp, Stop> {
        let request_line = self.request_line();
        let url = format!("{}{}", self.client.base_url, self.path);
        let mut builder = self
            .client
            .http
            .request(self.method.clone(), &url)
            .query(&self.query);
        if let (true, Some(token)) = (self.authenticated, &self.client.token) {
            builder = builder.bearer_auth(token);
        }
        if let Some(body) = self.body {
            builder = builder
                .header("Content-Type", "application/json")
                .body(body);
        }
        let sent = Instant::now();
        let answer = builder.send().await.map_err(|e| {
            Stop::Error(format!(
                "{request_line}: no answer: {}",
                describe_transport_error(&e)
            ))
        })?;
        let status = answer.status().as_u16();
        let headers = answer.headers().clone();
        let bytes = answer.bytes().await.map_err(|e| {
            Stop::Error(format!(
                "{request_line}: answer cut off: {}",
                describe_transport_error(&e)
            ))
        })?;
        let received = Instant::now();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        if self.recorded {
            self.client.evidence.waited(sent, received);
            self.client.evidence.push(Exchange {
                method: self.method.to_string(),
                path: request_line
                    .split_once(' ')
                    .map(|(_, p)| p.to_string())
                    .unwrap_or_default(),
                request: self.shown_body,
                status,
                body: redact(&body),
            });
        }
        Ok(Resp {
            status,
            body,
            headers,
            request: request_line,
            received,
        })
    }
}

impl Client {
    pub fn new(http: reqwest::Client, base_url: &str, evidence: Evidence) -> Client {
        Client {
            http,
            base_url: Arc::from(base_url.trim_end_matches('/')),
            token: None,
            evidence,
            user_id: String::new(),
            password: None,
            sync: Default::default(),
        }
    }

    /// The same connection and evidence log, acting as a logged-in user.
    pub fn logged_in(&self, user_id: &str, token: &str, password: Option<&str>) -> Client {
        Client {
            token: Some(Arc::from(token)),
            user_id: user_id.to_string(),
            password: password.map(Arc::from),
            sync: Default::default(),
            ..self.clone()
        }
    }

    pub fn call(&self, method: Method, path: impl Into<String>) -> Call<'_> {
        Call {
            client: self,
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            shown_body: None,
            authenticated: true,
            recorded: true,
        }
    }

    pub fn get(&self, path: impl Into<String>) -> Call<'_> {
        self.call(Method::GET, path)
    }
    pub fn post(&self, path: impl Into<String>) -> Call<'_> {
        self.call(Method::POST, path)
    }
    pub fn put(&self, path: impl Into<String>) -> Call<'_> {
        self.call(Method::PUT, path)
    }

    /// The access token, for handing to a widget driver (never printed).
    pub fn access_token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub fn evidence(&self) -> &Evidence {
        &self.evidence
    }

    // ---- rooms and events -------------------------------------------------------------------

    pub async fn create_room(&self, body: Value) -> Result<String, Stop> {
        let resp = self.post(endpoints::CREATE_ROOM).json(body).send().await?;
        let resp = resp.setup_step("create a room")?;
        resp.str_field("room_id")
            .map(str::to_string)
            .ok_or_else(|| Stop::Error(format!("createRoom gave no room_id: {}", resp.describe())))
    }

    pub async fn join(&self, room_id: &str) -> Result<(), Stop> {
        self.post(format!("/_matrix/client/v3/join/{}", seg(room_id)))
            .json(json!({}))
            .send()
            .await?
            .setup_step("join the room")
            .map(drop)
    }

    pub async fn invite(&self, room_id: &str, user_id: &str) -> Result<(), Stop> {
        self.post(format!("/_matrix/client/v3/rooms/{}/invite", seg(room_id)))
            .json(json!({ "user_id": user_id }))
            .send()
            .await?
            .setup_step("invite a user")
            .map(drop)
    }

    pub async fn leave(&self, room_id: &str) -> Result<(), Stop> {
        self.post(format!("/_matrix/client/v3/rooms/{}/leave", seg(room_id)))
            .json(json!({}))
            .send()
            .await?
            .setup_step("leave the room")
            .map(drop)
    }

    pub async fn kick(&self, room_id: &str, user_id: &str) -> Result<(), Stop> {
        self.post(format!("/_matrix/client/v3/rooms/{}/kick", seg(room_id)))
            .json(json!({ "user_id": user_id, "reason": "delayed-events-conformance" }))
            .send()
            .await?
            .setup_step("kick a member")
            .map(drop)
    }

    /// Deactivates the account, answering the password stage of user-interactive auth.
    pub async fn deactivate(&self) -> Result<(), Stop> {
        let path = endpoints::DEACTIVATE;
        let first = self.post(path).json(json!({})).send().await?;
        if first.is_success() {
            return Ok(());
        }
        let Some(password) = &self.password else {
            return Err(Stop::Error(
                "deactivation needs the account's password, which the harness does not know".into(),
            ));
        };
        let auth = json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": self.user_id},
            "password": password.as_ref(),
            "session": first.body.get("session"),
        });
        self.post(path)
            .json(json!({ "auth": auth }))
            .send()
            .await?
            .setup_step("deactivate the account")
            .map(drop)
    }

    /// Logs the same account in again: a new device with its own access token (and its own
    /// `/sync` stream), as a user's second client would be.
    pub async fn login_new_device(&self) -> Result<Client, Stop> {
        let Some(password) = &self.password else {
            return Err(Stop::Error(
                "logging in again needs the account's password, which the harness does not know"
                    .into(),
            ));
        };
        let body = json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": self.user_id},
            "password": password.as_ref(),
        });
        let resp = self
            .post(endpoints::LOGIN)
            .without_token()
            .json(body)
            .send()
            .await?
            .setup_step("log in on another device")?;
        match resp.str_field("access_token") {
            Some(token) => Ok(self.logged_in(&self.user_id, token, Some(password))),
            None => Err(Stop::Error(format!(
                "login gave no access_token: {}",
                resp.describe()
            ))),
        }
    }

    /// Sends a message event now; answers the raw response (cases judge it themselves).
    pub async fn send_event(
        &self,
        room_id: &str,
        event_type: &str,
        content: Value,
    ) -> Result<Resp, Stop> {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/{}/{}",
            seg(room_id),
            seg(event_type),
            new_txn_id()
        );
        self.put(path).json(content).send().await
    }

    pub async fn put_state(
        &self,
        room_id: &str,
        event_type: &str,
        state_key: &str,
        content: Value,
    ) -> Result<Resp, Stop> {
        self.put(state_path(room_id, event_type, state_key))
            .json(content)
            .send()
            .await
    }

    pub async fn get_state(
        &self,
        room_id: &str,
        event_type: &str,
        state_key: &str,
    ) -> Result<Resp, Stop> {
        self.get(state_path(room_id, event_type, state_key))
            .send()
            .await
    }

    /// Reads the room's power levels, lets `change` edit them, and writes them back.
    pub async fn update_power_levels(
        &self,
        room_id: &str,
        change: impl FnOnce(&mut Value),
    ) -> Result<(), Stop> {
        let current = self
            .get_state(room_id, "m.room.power_levels", "")
            .await?
            .setup_step("read power levels")?;
        let mut levels = current.body;
        change(&mut levels);
        self.put_state(room_id, "m.room.power_levels", "", levels)
            .await?
            .setup_step("change power levels")
            .map(drop)
    }

    /// The newest `limit` events of a room, newest first (`/messages?dir=b`).
    pub async fn messages(&self, room_id: &str, limit: u32) -> Result<Vec<Value>, Stop> {
        let resp = self
            .get(format!(
                "/_matrix/client/v3/rooms/{}/messages",
                seg(room_id)
            ))
            .query("dir", "b")
            .query("limit", limit)
            .send()
            .await?
            .setup_step("read room messages")?;
        Ok(resp
            .body
            .get("chunk")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// One event of a room (`GET /rooms/{roomId}/event/{eventId}`), answered unjudged.
    pub async fn event(&self, room_id: &str, event_id: &str) -> Result<Resp, Stop> {
        self.get(format!(
            "/_matrix/client/v3/rooms/{}/event/{}",
            seg(room_id),
            seg(event_id)
        ))
        .send()
        .await
    }

    /// An event with the events around it (`GET /rooms/{roomId}/context/{eventId}`), answered
    /// unjudged.
    pub async fn context(&self, room_id: &str, event_id: &str) -> Result<Resp, Stop> {
        self.get(format!(
            "/_matrix/client/v3/rooms/{}/context/{}",
            seg(room_id),
            seg(event_id)
        ))
        .query("limit", 1)
        .send()
        .await
    }

    // ---- sync -------------------------------------------------------------------------------

    /// One `/sync` round; new timeline events are added to what this client has seen.
    async fn sync_round(&self, state: &mut SyncState, timeout: Duration) -> Result<(), Stop> {
        let mut call = self
            .get(endpoints::SYNC)
            .query("filter", SYNC_FILTER)
            .unrecorded();
        if let Some(since) = &state.since {
            call = call
                .query("since", since)
                .query("timeout", timeout.as_millis());
        } else {
            call = call.query("timeout", 0);
        }
        let resp = call.send().await?;
        if !resp.is_success() {
            return Err(Stop::Error(format!("/sync failed: {}", resp.describe())));
        }
        let mut fresh = Vec::new();
        if let Some(rooms) = resp.body.pointer("/rooms/join").and_then(Value::as_object) {
            for (room_id, room) in rooms {
                let events = room.pointer("/timeline/events").and_then(Value::as_array);
                for event in events.into_iter().flatten() {
                    fresh.push(Observed {
                        room_id: room_id.clone(),
                        event: event.clone(),
                        at: resp.received,
                    });
                }
            }
        }
        if !fresh.is_empty() {
            let summary: Vec<Value> = fresh
                .iter()
                .map(|o| {
                    json!({"room_id": o.room_id, "type": o.event_type(), "event_id": o.event_id(),
                           "sender": o.event.get("sender"), "state_key": o.event.get("state_key"),
                           "origin_server_ts": o.origin_server_ts(), "content": o.content(),
                           "unsigned": o.event.get("unsigned")})
                })
                .collect();
            self.evidence.push(Exchange {
                method: "GET".into(),
                path: format!("{} (timeline events only)", endpoints::SYNC),
                request: None,
                status: resp.status,
                body: redact(&json!({ "events": summary })),
            });
        }
        state.since = resp.str_field("next_batch").map(str::to_string);
        state.seen.extend(fresh);
        Ok(())
    }

    /// Starts this user's `/sync` stream now: later waits see only events that arrive from here on
    /// (plus those in the initial timeline).
    pub async fn start_sync(&self) -> Result<(), Stop> {
        let mut state = self.sync.lock().await;
        if state.since.is_none() {
            self.sync_round(&mut state, Duration::ZERO).await?;
        }
        Ok(())
    }

    /// Waits on `/sync` until an event matching `pred` has been seen (earlier rounds included) or
    /// the deadline passes. `None` means it did not come in time.
    pub async fn wait_for(
        &self,
        deadline: Instant,
        mut pred: impl FnMut(&Observed) -> bool,
    ) -> Result<Option<Observed>, Stop> {
        let mut state = self.sync.lock().await;
        loop {
            if let Some(found) = state.seen.iter().find(|o| pred(o)) {
                return Ok(Some(found.clone()));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let poll = (deadline - now).min(MAX_POLL);
            self.sync_round(&mut state, poll).await?;
        }
    }

    /// One `/sync` long-poll of at most `timeout`: the timeline events that arrived in it, handed
    /// over rather than kept (the load command's streams of many events; cases use `wait_for`).
    pub async fn next_events(&self, timeout: Duration) -> Result<Vec<Observed>, Stop> {
        let mut state = self.sync.lock().await;
        let before = state.seen.len();
        self.sync_round(&mut state, timeout).await?;
        Ok(state.seen.drain(before..).collect())
    }

    /// Every timeline event seen so far that matches `pred`, after one more short sync round so
    /// that anything already sent is included.
    pub async fn seen_matching(
        &self,
        mut pred: impl FnMut(&Observed) -> bool,
    ) -> Result<Vec<Observed>, Stop> {
        let mut state = self.sync.lock().await;
        self.sync_round(&mut state, Duration::ZERO).await?;
        Ok(state.seen.iter().filter(|o| pred(o)).cloned().collect())
    }
}

pub fn state_path(room_id: &str, event_type: &str, state_key: &str) -> String {
    format!(
        "/_matrix/client/v3/rooms/{}/state/{}/{}",
        seg(room_id),
        seg(event_type),
        seg(state_key)
    )
}

/// A fresh transaction id; unique per process and run.
pub fn new_txn_id() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    format!("dec{n:016x}")
}
