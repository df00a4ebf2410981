//! The harness as the widget: it starts the driver for one user in one room, answers the
//! capability handshake, and sends `send_event` and update requests. Verdicts are the cases';
//! this file only speaks the widget API and describes what came back.
//!
//! It is shaped like Element Call, the widget that matters: it says `content_loaded` to start
//! the handshake (unless the run's driver starts at once), asks for the timeline capability of
//! its room beside the others, sends its room's `room_id` in `send_event` (matrix-js-sdk's
//! embedded client always does), and answers the driver's other toWidget requests (the events
//! the driver passes on among them) as they come.

use super::bridge::{Bridge, BridgeSession, ToWidgetLog};
use crate::api::{DelayedEvent, Scheduled, User};
use crate::client::Resp;
use crate::ctx::Ctx;
use crate::evidence::{Evidence, Exchange};
use crate::outcome::Stop;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How long a driver may take to log in and say it is ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the harness waits for the driver's part of the handshake, and for a reply.
pub const REPLY_WAIT: Duration = Duration::from_secs(10);

/// Capability strings (MSC2762 for event types, MSC4157 for delayed events).
pub mod caps {
    pub const SEND_DELAYED_UNSTABLE: &str = "org.matrix.msc4157.send.delayed_event";
    pub const UPDATE_DELAYED_UNSTABLE: &str = "org.matrix.msc4157.update_delayed_event";
    pub const SEND_DELAYED_STABLE: &str = "m.send.delayed_event";
    pub const UPDATE_DELAYED_STABLE: &str = "m.update_delayed_event";

    /// The update action's names (the same strings as the update capability's).
    pub const UPDATE_ACTION_UNSTABLE: &str = "org.matrix.msc4157.update_delayed_event";
    pub const UPDATE_ACTION_STABLE: &str = "update_delayed_event";

    pub fn send_event(event_type: &str) -> String {
        format!("org.matrix.msc2762.send.event:{event_type}")
    }

    pub fn send_state(event_type: &str) -> String {
        format!("org.matrix.msc2762.send.state_event:{event_type}")
    }

    /// Sending state of one type under one state key only (matrix-widget-api's
    /// `WidgetEventCapability` syntax, `type#state_key`), as Element Call asks for its
    /// `call.member` events.
    pub fn send_state_key(event_type: &str, state_key: &str) -> String {
        format!("org.matrix.msc2762.send.state_event:{event_type}#{state_key}")
    }

    /// Receiving (reading) events of a type (MSC2762).
    pub fn receive_event(event_type: &str) -> String {
        format!("org.matrix.msc2762.receive.event:{event_type}")
    }

    /// Access to a room's timeline (MSC2762): what lets a widget name that room in `room_id`.
    pub fn timeline(room_id: &str) -> String {
        format!("org.matrix.msc2762.timeline:{room_id}")
    }

    /// What a widget that sends and manages delayed events of these types asks for.
    pub fn delayed(message_types: &[&str], state_types: &[&str]) -> Vec<String> {
        let mut asked = vec![
            SEND_DELAYED_UNSTABLE.to_string(),
            UPDATE_DELAYED_UNSTABLE.to_string(),
        ];
        asked.extend(message_types.iter().map(|t| send_event(t)));
        asked.extend(state_types.iter().map(|t| send_state(t)));
        asked
    }
}

/// What the "user" approves when the driver asks.
#[derive(Clone, Debug)]
pub enum Approval {
    /// Everything the widget asked for.
    All,
    /// Only these (the cases that refuse one capability), and the timeline capability of the
    /// widget's room, which the handshake always asks for (matrix-widget-api honours a
    /// `room_id`, even the widget's own room, only with it).
    Only(Vec<String>),
}

/// The driver's reply to one request, with when the request left (for timing judgements).
#[derive(Clone, Debug)]
pub struct Reply {
    pub action: String,
    /// The request's requestId (to count its replies, `Widget::replies_to`).
    pub request_id: String,
    pub requested_at: Instant,
    /// When the reply arrived (or the wait ended).
    pub received: Instant,
    /// The `response` field; `None` when no reply came within `REPLY_WAIT`.
    pub response: Option<Value>,
}

impl Reply {
    pub fn error(&self) -> Option<&Value> {
        self.response.as_ref()?.get("error")
    }

    pub fn is_error(&self) -> bool {
        self.error().is_some()
    }

    /// A reply that is neither missing nor an error.
    pub fn is_success(&self) -> bool {
        self.response.is_some() && !self.is_error()
    }

    /// The Matrix error an error reply carries (`matrix_api_error.response.errcode`).
    pub fn matrix_errcode(&self) -> Option<&str> {
        self.error()?
            .get("matrix_api_error")?
            .get("response")?
            .get("errcode")?
            .as_str()
    }

    /// The homeserver's error an error reply carries, in matrix-widget-api's `IMatrixApiError`
    /// shape: `http_status`, `http_headers`, `url`, and the error body as `response`.
    pub fn matrix_api_error(&self) -> Option<&Value> {
        self.error()?.get("matrix_api_error")
    }

    /// `matrix_api_error.http_status`: the status the homeserver answered.
    pub fn matrix_http_status(&self) -> Option<u64> {
        self.matrix_api_error()?.get("http_status")?.as_u64()
    }

    /// `matrix_api_error.response`: the homeserver's error body.
    pub fn matrix_response(&self) -> Option<&Value> {
        self.matrix_api_error()?.get("response")
    }

    /// A header of the homeserver's answer kept in `matrix_api_error.http_headers`, by name in
    /// any case (fetch's `Headers` give them in lower case).
    pub fn matrix_header(&self, name: &str) -> Option<&str> {
        self.matrix_api_error()?
            .get("http_headers")?
            .as_object()?
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))?
            .1
            .as_str()
    }

    /// How long the reply took (or the wait for it, where none came).
    pub fn elapsed(&self) -> Duration {
        self.received.saturating_duration_since(self.requested_at)
    }

    pub fn field(&self, key: &str) -> Option<&Value> {
        self.response.as_ref()?.get(key)
    }

    pub fn delay_id(&self) -> Option<&str> {
        self.field("delay_id")?.as_str()
    }

    /// What the reply says of its `room_id` against the room asked: `Ok(true)` the same,
    /// `Ok(false)` absent; a different room (or not a string) is a failure naming `what`.
    pub fn check_room_id(&self, asked: &str, what: &str) -> Result<bool, Stop> {
        match self.field("room_id") {
            None => Ok(false),
            Some(Value::String(room)) if room == asked => Ok(true),
            Some(other) => Err(Stop::Fail(format!(
                "the reply to {what} names room_id {other}, not the room {asked} the event was sent                  to ({})",
                self.describe()
            ))),
        }
    }

    pub fn describe(&self) -> String {
        match &self.response {
            None => format!(
                "no reply to `{}` within {} s",
                self.action,
                REPLY_WAIT.as_secs()
            ),
            Some(r) => format!("the reply to `{}` was {r}", self.action),
        }
    }

    /// The reply must be a success; otherwise the case fails with `what` and the reply.
    pub fn check_success(&self, what: &str) -> Result<&Self, Stop> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(Stop::Fail(format!("{what}: {}", self.describe())))
        }
    }
}

/// A driver running for one user in one room, seen from the widget.
pub struct Widget {
    bridge: Bridge,
    /// The driver's user, as the harness's own client (listings, lookups).
    pub user: User,
    pub room_id: String,
    /// What the driver said it approved in `notify_capabilities` (empty before the handshake).
    pub approved: Vec<String>,
    /// Whether the driver waits for `content_loaded` before the handshake (the run's mode).
    init_on_content_load: bool,
    /// The driver's reply to `content_loaded`, once the handshake sent it.
    pub content_loaded: Option<Reply>,
    evidence: Evidence,
}

/// A toWidget request from the driver, as the widget received it.
#[derive(Clone, Debug)]
pub struct ToWidget {
    pub data: Value,
    /// When the harness found it (no later than when it arrived, plus a wake-up).
    pub seen: Instant,
}

impl Ctx {
    /// Starts the run's widget driver for `user` in `room_id`; the user approves `approval`.
    /// Skips where the run has no driver.
    pub async fn widget(
        &self,
        user: &User,
        room_id: &str,
        approval: Approval,
    ) -> Result<Widget, Stop> {
        let Some(spec) = self.driver() else {
            return Err(Stop::Skip(
                "no widget driver: run the msc4157 suite with --driver".into(),
            ));
        };
        let whoami = user
            .get(crate::endpoints::WHOAMI)
            .send()
            .await?
            .setup_step("asking the homeserver for the driver user's device id")?;
        let session = BridgeSession {
            homeserver_url: self.base_url().to_string(),
            user_id: user.id().to_string(),
            access_token: user.access_token().unwrap_or_default().to_string(),
            device_id: whoami.str_field("device_id").unwrap_or("").to_string(),
            room_id: room_id.to_string(),
            widget_id: format!("conformance-{}", crate::client::new_txn_id()),
            approved: match approval {
                Approval::All => None,
                Approval::Only(mut list) => {
                    list.push(caps::timeline(room_id));
                    Some(list)
                }
            },
            init_on_content_load: spec.init_on_content_load,
        };
        let log = self.driver_log();
        let bridge = Bridge::start(&spec.program, &spec.args, &session, log, START_TIMEOUT).await?;
        Ok(Widget {
            bridge,
            user: user.clone(),
            room_id: room_id.to_string(),
            approved: Vec::new(),
            init_on_content_load: spec.init_on_content_load,
            content_loaded: None,
            evidence: self.evidence().clone(),
        })
    }

    /// A driver for `user` in `room_id`, the handshake done asking for `asked`, all approved.
    pub async fn widget_with(
        &self,
        user: &User,
        room_id: &str,
        asked: &[String],
    ) -> Result<Widget, Stop> {
        let mut widget = self.widget(user, room_id, Approval::All).await?;
        widget.handshake(asked).await?;
        Ok(widget)
    }
}

impl Widget {
    /// What the driver said about itself when it started.
    pub fn identity(&self) -> &super::DriverIdentity {
        &self.bridge.identity
    }

    pub fn error(&self, message: String) -> Stop {
        self.bridge.error(message)
    }

    /// Why the driver stopped (it exited, or printed something that is not JSON), with its log's
    /// last lines; `None` while it runs. For cases where a driver that dies is a verdict, not a
    /// harness error.
    pub fn stopped(&self) -> Option<String> {
        self.bridge.broken().map(|why| {
            format!(
                "{why}\n  widget driver log (last lines):\n{}",
                self.bridge.log().indented_tail()
            )
        })
    }

    /// The capability handshake, the widget's side. Where the driver waits for it, the widget
    /// says `content_loaded`; the driver asks which capabilities the widget wants (toWidget
    /// `capabilities`, possibly before it replies to `content_loaded`), the widget answers
    /// `asked` and, as Element Call does, the timeline capability of its room; the driver then
    /// says what was approved (toWidget `notify_capabilities`), which is returned.
    pub async fn handshake(&mut self, asked: &[String]) -> Result<Vec<String>, Stop> {
        let mut asked = asked.to_vec();
        let own_timeline = caps::timeline(&self.room_id);
        if !asked.contains(&own_timeline) {
            asked.insert(0, own_timeline);
        }
        let approved = if self.init_on_content_load {
            let (loaded, approved) = tokio::join!(
                self.request_or_silence("content_loaded", json!({})),
                self.answer_handshake(&asked, " after the widget's content_loaded")
            );
            self.content_loaded = Some(loaded?);
            approved?
        } else {
            self.answer_handshake(&asked, "").await?
        };
        self.approved = approved;
        Ok(self.approved.clone())
    }

    async fn answer_handshake(&self, asked: &[String], when: &str) -> Result<Vec<String>, Stop> {
        let mut answered_capabilities = false;
        loop {
            let waiting_for = if answered_capabilities {
                "notify_capabilities"
            } else {
                "capabilities"
            };
            let Some(request) = self.bridge.next_request(REPLY_WAIT).await? else {
                return Err(self.error(format!(
                    "the widget driver never sent its toWidget `{waiting_for}` request{when} \
                     (waited {} s)",
                    REPLY_WAIT.as_secs()
                )));
            };
            match request.get("action").and_then(Value::as_str) {
                Some("capabilities") => {
                    self.bridge
                        .reply(&request, json!({ "capabilities": asked }))
                        .await?;
                    answered_capabilities = true;
                }
                Some("notify_capabilities") => {
                    self.bridge.reply(&request, json!({})).await?;
                    self.evidence.push(Exchange {
                        method: "toWidget".into(),
                        path: "notify_capabilities".into(),
                        request: Some(request["data"].clone()),
                        status: 0,
                        body: json!({}),
                    });
                    let approved = request["data"]["approved"]
                        .as_array()
                        .map(|list| {
                            list.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default();
                    return Ok(approved);
                }
                _ => self.bridge.reply(&request, json!({})).await?,
            }
        }
    }

    /// The driver's toWidget requests outside the handshake (answered already as they came).
    pub fn to_widget(&self) -> &ToWidgetLog {
        &self.bridge.to_widget
    }

    /// Waits until `deadline` for the driver to pass on an event matching `pred` (toWidget
    /// `send_event`, its data the event); `None` when none came. Recorded in the evidence.
    pub async fn wait_for_event(
        &self,
        deadline: Instant,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Option<ToWidget>, Stop> {
        let found = self
            .bridge
            .to_widget
            .wait_for(deadline.into(), |request| {
                request.get("action").and_then(Value::as_str) == Some("send_event")
                    && pred(&request["data"])
            })
            .await;
        let seen = Instant::now();
        Ok(found.map(|request| {
            self.evidence.push(Exchange {
                method: "toWidget".into(),
                path: "send_event".into(),
                request: Some(request["data"].clone()),
                status: 0,
                body: json!({}),
            });
            ToWidget {
                data: request["data"].clone(),
                seen,
            }
        }))
    }

    /// Any fromWidget request; a driver that does not reply within `REPLY_WAIT` ends the case in
    /// `error` (a hung driver), with its log.
    pub async fn request(&self, action: &str, data: Value) -> Result<Reply, Stop> {
        let reply = self.request_or_silence(action, data).await?;
        if reply.response.is_none() {
            return Err(self.error(format!(
                "the widget driver did not reply to `{action}` within {} s",
                REPLY_WAIT.as_secs()
            )));
        }
        Ok(reply)
    }

    /// A request where no reply is an answer too (`Reply::response` is `None`).
    pub async fn request_or_silence(&self, action: &str, data: Value) -> Result<Reply, Stop> {
        let requested_at = Instant::now();
        let (request_id, response) = self
            .bridge
            .request_with_id(action, data.clone(), REPLY_WAIT)
            .await?;
        // In the case's evidence beside its HTTP exchanges: method `fromWidget`, the action as
        // path, status 0 (not HTTP), the reply (null: none came) as body.
        let received = Instant::now();
        self.evidence.waited(requested_at, received);
        self.evidence.push(Exchange {
            method: "fromWidget".into(),
            path: action.to_string(),
            request: Some(data),
            status: 0,
            body: response.clone().unwrap_or(Value::Null),
        });
        Ok(Reply {
            action: action.to_string(),
            request_id,
            requested_at,
            received,
            response,
        })
    }

    /// The `send_event` data for `event`, with `delay` (ms) where given, naming the event's room
    /// in `room_id` as Element Call does (matrix-js-sdk's embedded client always sends it).
    pub fn send_event_data(event: &DelayedEvent, delay: Option<i64>) -> Value {
        let mut data = Self::send_event_data_without_room_id(event, delay);
        data["room_id"] = json!(event.room_id);
        data
    }

    /// The `send_event` data without `room_id`: the driver's room is meant (MSC2762's default).
    pub fn send_event_data_without_room_id(event: &DelayedEvent, delay: Option<i64>) -> Value {
        let mut data = json!({
            "type": event.event_type,
            "content": event.content,
        });
        if let Some(key) = &event.state_key {
            data["state_key"] = json!(key);
        }
        if let Some(delay) = delay {
            data["delay"] = json!(delay);
        }
        data
    }

    /// What a successful delayed send scheduled, in the form the MSC4140 judgements take.
    pub fn scheduled(reply: &Reply, delay_id: &str, delay_ms: i64) -> Scheduled {
        Scheduled {
            delay_id: delay_id.to_string(),
            delay_ms,
            requested_at: reply.requested_at,
            resp: Resp {
                status: 200,
                body: reply.response.clone().unwrap_or_default(),
                headers: Default::default(),
                request: format!("widget-API `{}`", reply.action),
                received: reply.received,
            },
        }
    }

    /// `send_event` for `event`, with `delay` (ms) where given.
    pub async fn send_event(
        &self,
        event: &DelayedEvent,
        delay: Option<i64>,
    ) -> Result<Reply, Stop> {
        self.request("send_event", Self::send_event_data(event, delay))
            .await
    }

    /// `send_event` without `room_id` (the driver's room), with `delay` (ms) where given.
    pub async fn send_event_without_room_id(
        &self,
        event: &DelayedEvent,
        delay: Option<i64>,
    ) -> Result<Reply, Stop> {
        self.request(
            "send_event",
            Self::send_event_data_without_room_id(event, delay),
        )
        .await
    }

    /// A delayed send that must succeed with a `delay_id`; returns the reply and the id.
    pub async fn schedule_ok(
        &self,
        event: &DelayedEvent,
        delay: i64,
    ) -> Result<(Reply, String), Stop> {
        let reply = self.send_event(event, Some(delay)).await?;
        reply
            .check_success("the driver refused a delayed send_event it had the capabilities for")?;
        let Some(delay_id) = reply.delay_id().map(str::to_string) else {
            return Err(Stop::Fail(format!(
                "the reply to a delayed send_event carries no delay_id: {}",
                reply.describe()
            )));
        };
        Ok((reply, delay_id))
    }

    /// The update action under the unstable name (what every driver offers today).
    pub async fn update(&self, delay_id: &str, action: &str) -> Result<Reply, Stop> {
        self.update_as(
            caps::UPDATE_ACTION_UNSTABLE,
            json!({"delay_id": delay_id, "action": action}),
        )
        .await
    }

    /// `update`, where no reply within `REPLY_WAIT` is an answer too (a driver still retrying
    /// against a server that is partly down).
    pub async fn update_or_silence(&self, delay_id: &str, action: &str) -> Result<Reply, Stop> {
        self.request_or_silence(
            caps::UPDATE_ACTION_UNSTABLE,
            json!({"delay_id": delay_id, "action": action}),
        )
        .await
    }

    /// The update action under a given name, with any data (errors cases send malformed ones).
    pub async fn update_as(&self, action_name: &str, data: Value) -> Result<Reply, Stop> {
        self.request(action_name, data).await
    }

    /// How many replies the driver has given so far to the request `reply` answered.
    pub fn replies_to(&self, reply: &Reply) -> usize {
        self.bridge.replies_to(&reply.request_id)
    }
}
