//! A small widget driver written for the msc4157 self-tests: it speaks the bridge contract,
//! behaves as MSC4157 says by default, and breaks one requirement when `--fault NAME` names a
//! fault. It talks MSC4140 to the homeserver through the suite's own client (query parameter to
//! schedule, once `/versions` offers the feature; split paths to manage, else the body form), so
//! it works against the fake homeserver and Synapse alike.
//!
//! Like the real drivers it starts the capability negotiation when the widget says
//! `content_loaded` (`BRIDGE_INIT_ON_CONTENT_LOAD=true`) or at once, refuses a `room_id` other
//! than its room without that room's timeline capability, and passes the room's new events on
//! to a widget allowed to receive them (toWidget `send_event`), syncing for them.
//!
//! Not a product: the binary exists for `tests/widget_selftest.rs` only.

use dec_harness::api::{ApiForm, Delay, DelayedEvent, User};
use dec_harness::client::{http_client, new_txn_id, seg, Client, Resp};
use dec_harness::endpoints::VERSIONS;
use dec_harness::evidence::Evidence;
use dec_harness::outcome::Stop;
use serde_json::{json, Value};
use std::io::{BufRead, Write};
use std::time::Duration;
use tokio::sync::mpsc;

const SEND_DELAYED: [&str; 2] = [
    "org.matrix.msc4157.send.delayed_event",
    "m.send.delayed_event",
];
const UPDATE: [&str; 2] = [
    "org.matrix.msc4157.update_delayed_event",
    "m.update_delayed_event",
];
const UPDATE_ACTIONS: [&str; 2] = [
    "org.matrix.msc4157.update_delayed_event",
    "update_delayed_event",
];

/// One switch per broken requirement (`--fault NAME`). What each must break in the msc4157
/// catalogue is declared in `tests/support/stand_in_faults.rs`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    None,
    /// A delayed send's reply carries an event_id too.
    EventIdInReply,
    /// Schedules with half the delay asked for: the event is sent early.
    HalveDelay,
    /// Leaves the update capability out of what it approves (and so refuses updates).
    DropsUpdateCapability,
    /// Sends delayed without the delayed-send capability.
    SkipDelayedCapabilityCheck,
    /// Sends an event type it was given no capability for.
    SkipEventTypeCheck,
    /// Updates without the update capability.
    SkipUpdateCapabilityCheck,
    /// `restart` is forwarded as `cancel`.
    RestartAsCancel,
    /// `restart` answers success without reaching the homeserver.
    RestartNoop,
    /// `cancel` answers success without reaching the homeserver.
    CancelNoop,
    /// `send` answers success without reaching the homeserver.
    SendNoop,
    /// Any update action other than cancel/restart/send answers success, doing nothing.
    UnknownActionAccepted,
    /// An update without a delay_id answers success.
    MissingDelayIdAccepted,
    /// Homeserver errors on updates are swallowed: the reply is success.
    SwallowUpdateErrors,
    /// Error replies lack `matrix_api_error`.
    DropMatrixError,
    /// The carried error's `http_status` is 400 whatever the homeserver answered.
    WrongHttpStatus,
    /// The carried error keeps only `errcode` and `error` of the homeserver's body.
    DropExtraFields,
    /// The carried error has no `http_headers` (so no `Retry-After`).
    DropHeaders,
    /// Every fromWidget request is answered twice.
    ReplyTwice,
    /// A delayed send_event schedules the event twice (the reply names the first).
    ScheduleTwice,
    /// A 429 from the homeserver is retried silently after its wait, as matrix-sdk does.
    RetryRateLimited,
    /// The stable send capability is approved but a send under it is refused.
    StableCapabilityNotHonoured,
    /// The stable update action answers success without reaching the homeserver.
    StableActionNoop,
    /// Performs fromWidget requests before the capability handshake.
    ActBeforeHandshake,
    /// Never answers any fromWidget request, and hangs on when its input closes.
    NeverReply,
    /// Exits right after its hello.
    ExitAfterHello,
    /// Prints a line that is not JSON after its hello.
    Garbage,
    /// Sends delayed events without checking that the homeserver offers them.
    NoFeatureCheck,
    /// Manages through split paths only, with no fallback to the body form.
    SplitPathsOnly,
    /// Manages in the body form only, with no fallback to split paths.
    BodyFormOnly,
    /// Makes every management request twice.
    DoubleRequests,
    /// Like matrix-sdk 0.18: content carrying `redacts` is redacted at once, whatever the delay
    /// and whatever the declared type (only that type's capability is checked).
    RedactsAtOnce,
    /// `"delay": null` is taken as no delay: the event is sent at once (event_id reply).
    NullDelaySentAtOnce,
    /// `"delay": null` sends the event at once and the reply carries neither id.
    NullDelayNoId,
    /// A string delay is answered with a made-up delay_id; nothing is scheduled.
    StringDelayUnscheduled,
    /// In a room with `m.room.encryption`, delayed sends are sent at once.
    EncryptedSentAtOnce,
    /// Exits on a send_event that carries `sticky_duration_ms`.
    StickyExits,
    /// Never answers a send_event that carries `sticky_duration_ms`.
    StickyNoReply,
    /// Sends to the room a `room_id` names without the timeline capability for it.
    SkipTimelineCheck,
    /// A delayed send's reply names another room in `room_id`.
    WrongRoomIdInReply,
    /// Never passes the room's events on to the widget.
    ForwardsNoEvents,
}

/// `--fault NAME` on the command line.
fn fault() -> Fault {
    let args: Vec<String> = std::env::args().collect();
    let name = args
        .iter()
        .position(|a| a == "--fault")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_default();
    match name.as_str() {
        "" => Fault::None,
        "event-id-in-reply" => Fault::EventIdInReply,
        "halve-delay" => Fault::HalveDelay,
        "drops-update-capability" => Fault::DropsUpdateCapability,
        "skip-delayed-capability-check" => Fault::SkipDelayedCapabilityCheck,
        "skip-event-type-check" => Fault::SkipEventTypeCheck,
        "skip-update-capability-check" => Fault::SkipUpdateCapabilityCheck,
        "restart-as-cancel" => Fault::RestartAsCancel,
        "restart-noop" => Fault::RestartNoop,
        "cancel-noop" => Fault::CancelNoop,
        "send-noop" => Fault::SendNoop,
        "unknown-action-accepted" => Fault::UnknownActionAccepted,
        "missing-delay-id-accepted" => Fault::MissingDelayIdAccepted,
        "swallow-update-errors" => Fault::SwallowUpdateErrors,
        "drop-matrix-error" => Fault::DropMatrixError,
        "wrong-http-status" => Fault::WrongHttpStatus,
        "drop-extra-fields" => Fault::DropExtraFields,
        "drop-headers" => Fault::DropHeaders,
        "reply-twice" => Fault::ReplyTwice,
        "schedule-twice" => Fault::ScheduleTwice,
        "retry-rate-limited" => Fault::RetryRateLimited,
        "stable-capability-not-honoured" => Fault::StableCapabilityNotHonoured,
        "stable-action-noop" => Fault::StableActionNoop,
        "act-before-handshake" => Fault::ActBeforeHandshake,
        "never-reply" => Fault::NeverReply,
        "exit-after-hello" => Fault::ExitAfterHello,
        "garbage" => Fault::Garbage,
        "no-feature-check" => Fault::NoFeatureCheck,
        "split-paths-only" => Fault::SplitPathsOnly,
        "body-form-only" => Fault::BodyFormOnly,
        "double-requests" => Fault::DoubleRequests,
        "redacts-at-once" => Fault::RedactsAtOnce,
        "null-delay-sent-at-once" => Fault::NullDelaySentAtOnce,
        "null-delay-no-id" => Fault::NullDelayNoId,
        "string-delay-unscheduled" => Fault::StringDelayUnscheduled,
        "encrypted-sent-at-once" => Fault::EncryptedSentAtOnce,
        "sticky-exits" => Fault::StickyExits,
        "sticky-no-reply" => Fault::StickyNoReply,
        "skip-timeline-check" => Fault::SkipTimelineCheck,
        "wrong-room-id-in-reply" => Fault::WrongRoomIdInReply,
        "forwards-no-events" => Fault::ForwardsNoEvents,
        other => {
            eprintln!("stand-in: unknown fault {other}");
            std::process::exit(2);
        }
    }
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!("stand-in: {name} is not set");
        std::process::exit(2);
    })
}

fn print(message: &Value) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{message}").and_then(|()| out.flush()).ok();
}

fn error_reply(message: &str) -> Value {
    json!({"error": {"message": message}})
}

struct Driver {
    fault: Fault,
    user: User,
    room_id: String,
    widget_id: String,
    approved: Option<Vec<String>>,
}

impl Driver {
    fn has(&self, cap: &str) -> bool {
        match &self.approved {
            // Before the handshake nothing is allowed, unless the fault says otherwise.
            None => self.fault == Fault::ActBeforeHandshake,
            Some(approved) => approved.iter().any(|c| c == cap),
        }
    }

    fn has_any(&self, caps: &[&str]) -> bool {
        caps.iter().any(|c| self.has(c))
    }

    /// The homeserver's refusal as matrix-widget-api carries it (`IMatrixApiError`).
    fn homeserver_error(&self, resp: &Resp) -> Value {
        let mut error = json!({"message": format!("the homeserver refused: {}", resp.describe())});
        let status = match self.fault {
            Fault::WrongHttpStatus => 400,
            _ => resp.status,
        };
        let response = match self.fault {
            Fault::DropExtraFields => {
                json!({"errcode": resp.body["errcode"], "error": resp.body["error"]})
            }
            _ => resp.body.clone(),
        };
        let headers: serde_json::Map<String, Value> = resp
            .headers
            .iter()
            .filter_map(|(name, value)| Some((name.to_string(), json!(value.to_str().ok()?))))
            .collect();
        let mut carried = json!({"http_status": status, "response": response});
        if self.fault != Fault::DropHeaders {
            carried["http_headers"] = Value::Object(headers);
        }
        if self.fault != Fault::DropMatrixError {
            error["matrix_api_error"] = carried;
        }
        json!({ "error": error })
    }

    /// Under `RetryRateLimited`, how long to wait before asking again after `resp`, if it is a 429.
    fn retry_after(&self, resp: &Resp) -> Option<std::time::Duration> {
        if self.fault != Fault::RetryRateLimited || resp.status != 429 {
            return None;
        }
        let ms = resp.body["retry_after_ms"].as_u64().unwrap_or(1000);
        Some(std::time::Duration::from_millis(ms.max(1)))
    }

    /// Schedules `event` (again after a 429 under `RetryRateLimited`).
    async fn schedule(&self, event: &DelayedEvent, delay: i64) -> Result<Resp, String> {
        loop {
            let resp = self
                .user
                .schedule(event, Delay::Ms(delay))
                .await
                .map_err(|stop| stop.message().to_string())?;
            match self.retry_after(&resp) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return Ok(resp),
            }
        }
    }

    async fn send_event(&self, data: &Value) -> Value {
        let event_type = data["type"].as_str().unwrap_or_default();
        let state_key = data.get("state_key").and_then(Value::as_str);
        // A delay that is not a whole number of milliseconds is refused, never taken as none.
        let mut no_ids = false;
        let delay = match data.get("delay") {
            None => None,
            Some(Value::Null) if self.fault == Fault::NullDelaySentAtOnce => None,
            Some(Value::Null) if self.fault == Fault::NullDelayNoId => {
                no_ids = true;
                None
            }
            Some(Value::String(_)) if self.fault == Fault::StringDelayUnscheduled => {
                return json!({"room_id": self.room_id, "delay_id": "stand-in-made-up"});
            }
            Some(value) => match value.as_i64().filter(|d| *d >= 0) {
                Some(delay) => Some(delay),
                None => return error_reply(&format!("delay {value} is not a whole number of ms")),
            },
        };
        let type_cap = match state_key {
            Some(_) => format!("org.matrix.msc2762.send.state_event:{event_type}"),
            None => format!("org.matrix.msc2762.send.event:{event_type}"),
        };
        // State may be allowed under its state key only (`type#state_key`).
        let keyed_cap = state_key.map(|key| format!("{type_cap}#{key}"));
        let allowed = self.has(&type_cap) || keyed_cap.is_some_and(|cap| self.has(&cap));
        if !allowed && self.fault != Fault::SkipEventTypeCheck {
            return error_reply(&format!("Missing capability {type_cap}"));
        }
        let delayed_allowed = if self.fault == Fault::StableCapabilityNotHonoured {
            self.has(SEND_DELAYED[0])
        } else {
            self.has_any(&SEND_DELAYED)
        };
        if delay.is_some() && !delayed_allowed && self.fault != Fault::SkipDelayedCapabilityCheck {
            return error_reply("Missing capability for delayed events");
        }
        let asked_room = data["room_id"].as_str().unwrap_or(&self.room_id);
        let timeline_cap = format!("org.matrix.msc2762.timeline:{asked_room}");
        if asked_room != self.room_id
            && !self.has(&timeline_cap)
            && self.fault != Fault::SkipTimelineCheck
        {
            return error_reply(&format!("Unable to access room timeline: {asked_room}"));
        }
        let event = DelayedEvent {
            room_id: asked_room.to_string(),
            event_type: event_type.to_string(),
            state_key: state_key.map(str::to_string),
            content: data["content"].clone(),
        };
        let room_id = event.room_id.clone();
        if self.fault == Fault::RedactsAtOnce {
            if let Some(target) = event.content.get("redacts").and_then(Value::as_str) {
                return self.redact(&room_id, target).await;
            }
        }
        let delay = match delay {
            Some(_)
                if self.fault == Fault::EncryptedSentAtOnce && self.encrypted(&room_id).await =>
            {
                None
            }
            delay => delay,
        };
        match delay {
            Some(_)
                if self.fault != Fault::NoFeatureCheck && !self.offers_delayed_events().await =>
            {
                error_reply("the homeserver does not offer delayed events (MSC4140)")
            }
            Some(delay) => {
                let delay = if self.fault == Fault::HalveDelay {
                    delay / 2
                } else {
                    delay
                };
                let resp = match self.schedule(&event, delay).await {
                    Ok(resp) => resp,
                    Err(message) => return error_reply(&message),
                };
                if !resp.is_success() {
                    return self.homeserver_error(&resp);
                }
                if self.fault == Fault::ScheduleTwice {
                    let _ = self.schedule(&event, delay).await;
                }
                let mut reply = json!({"room_id": room_id, "delay_id": resp.body["delay_id"]});
                if self.fault == Fault::WrongRoomIdInReply {
                    reply["room_id"] = json!("!elsewhere:stand-in");
                }
                if self.fault == Fault::EventIdInReply {
                    reply["event_id"] = json!("$stand-in-event");
                }
                reply
            }
            None => {
                let resp = match &event.state_key {
                    Some(key) => {
                        self.user
                            .put_state(&room_id, event_type, key, event.content.clone())
                            .await
                    }
                    None => {
                        self.user
                            .send_event(&room_id, event_type, event.content.clone())
                            .await
                    }
                };
                let resp = match resp {
                    Ok(resp) => resp,
                    Err(stop) => return error_reply(stop.message()),
                };
                if !resp.is_success() {
                    return self.homeserver_error(&resp);
                }
                if no_ids {
                    return json!({ "room_id": room_id });
                }
                json!({"room_id": room_id, "event_id": resp.body["event_id"]})
            }
        }
    }

    /// Redacts `target` now (the faults that turn a send into a redaction).
    async fn redact(&self, room_id: &str, target: &str) -> Value {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/redact/{}/{}",
            seg(room_id),
            seg(target),
            new_txn_id()
        );
        match self.user.put(path).json(json!({})).send().await {
            Ok(resp) if resp.is_success() => {
                json!({"room_id": room_id, "event_id": resp.body["event_id"]})
            }
            Ok(resp) => self.homeserver_error(&resp),
            Err(stop) => error_reply(stop.message()),
        }
    }

    /// Whether the room has `m.room.encryption` state.
    async fn encrypted(&self, room_id: &str) -> bool {
        let state = self.user.get_state(room_id, "m.room.encryption", "").await;
        state.is_ok_and(|resp| resp.is_success())
    }

    async fn update(&self, name: &str, data: &Value) -> Value {
        if !self.has_any(&UPDATE) && self.fault != Fault::SkipUpdateCapabilityCheck {
            return error_reply("Missing capability to update delayed events");
        }
        if name == UPDATE_ACTIONS[1] && self.fault == Fault::StableActionNoop {
            return json!({});
        }
        let Some(delay_id) = data.get("delay_id").and_then(Value::as_str) else {
            if self.fault == Fault::MissingDelayIdAccepted {
                return json!({});
            }
            return error_reply("delay_id is missing");
        };
        let action = data
            .get("action")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let forwarded = match (action, self.fault) {
            ("restart", Fault::RestartAsCancel) => "cancel",
            ("restart", Fault::RestartNoop)
            | ("cancel", Fault::CancelNoop)
            | ("send", Fault::SendNoop) => return json!({}),
            ("cancel" | "restart" | "send", _) => action,
            (_, Fault::UnknownActionAccepted) => return json!({}),
            _ => return error_reply(&format!("unknown update action {action:?}")),
        };
        let mut answer = self.manage(delay_id, forwarded).await;
        while let Some(wait) = answer.as_ref().ok().and_then(|resp| self.retry_after(resp)) {
            tokio::time::sleep(wait).await;
            answer = self.manage(delay_id, forwarded).await;
        }
        match answer {
            Ok(resp) if resp.is_success() => json!({}),
            Ok(_) if self.fault == Fault::SwallowUpdateErrors => json!({}),
            Ok(resp) => self.homeserver_error(&resp),
            Err(stop) => error_reply(stop.message()),
        }
    }

    /// Whether `/versions` says the homeserver offers delayed events (unstable or stable).
    async fn offers_delayed_events(&self) -> bool {
        let Ok(resp) = self.user.get(VERSIONS).send().await else {
            return false;
        };
        let flags = &resp.body["unstable_features"];
        ["org.matrix.msc4140", "org.matrix.msc4140.stable"]
            .iter()
            .any(|flag| flags[flag] == json!(true))
    }

    /// A management action through split paths, falling back to the body form where the server
    /// does not know the path (and the other way round under `BodyFormOnly`).
    async fn manage(&self, delay_id: &str, action: &str) -> Result<Resp, Stop> {
        let body = || json!({"action": action}).to_string();
        let resp = match self.fault {
            Fault::BodyFormOnly => return self.user.manage_body_raw(delay_id, &body()).await,
            _ => self.user.manage_split_raw(delay_id, action).await?,
        };
        if self.fault == Fault::DoubleRequests {
            let _ = self.user.manage_split_raw(delay_id, action).await;
        }
        let unknown_path =
            matches!(resp.status, 404 | 405) && resp.body["errcode"] == json!("M_UNRECOGNIZED");
        if unknown_path && self.fault != Fault::SplitPathsOnly {
            return self.user.manage_body_raw(delay_id, &body()).await;
        }
        Ok(resp)
    }

    /// Whether the widget may receive `event` (seen in `room_id`): its room only, and a
    /// receive capability for its type.
    fn may_receive(&self, room_id: &str, event: &Value) -> bool {
        let event_type = event["type"].as_str().unwrap_or_default();
        let cap = match event.get("state_key") {
            Some(_) => format!("org.matrix.msc2762.receive.state_event:{event_type}"),
            None => format!("org.matrix.msc2762.receive.event:{event_type}"),
        };
        room_id == self.room_id && self.approved.is_some() && self.has(&cap)
    }

    fn wants_events(&self) -> bool {
        self.approved.as_ref().is_some_and(|approved| {
            approved
                .iter()
                .any(|c| c.starts_with("org.matrix.msc2762.receive."))
        })
    }

    async fn handle(&self, message: &Value, negotiated: bool) -> Option<Value> {
        if self.fault == Fault::NeverReply {
            return None;
        }
        let action = message["action"].as_str().unwrap_or_default();
        if !negotiated && self.fault != Fault::ActBeforeHandshake {
            return Some(error_reply("capabilities have not been negotiated yet"));
        }
        let data = &message["data"];
        if action == "send_event" && data.get("sticky_duration_ms").is_some() {
            match self.fault {
                Fault::StickyExits => {
                    eprintln!("stand-in: exiting on a sticky send, on purpose");
                    std::process::exit(3);
                }
                Fault::StickyNoReply => return None,
                _ => {}
            }
        }
        Some(match action {
            "send_event" => self.send_event(data).await,
            a if UPDATE_ACTIONS.contains(&a) => self.update(a, data).await,
            "supported_api_versions" => json!({"supported_versions": ["0.0.2"]}),
            other => error_reply(&format!("unknown action {other}")),
        })
    }
}

/// What the stand-in waits on: a line from the widget, or an event its sync saw.
enum Input {
    Widget(Value),
    Event(String, Value),
    /// The widget closed stdin: the case is done.
    Closed,
}

/// Syncs as the driver's user and hands on every new timeline event (in any room).
fn keep_syncing(client: Client, tx: mpsc::UnboundedSender<Input>) {
    tokio::spawn(async move {
        if client.start_sync().await.is_err() {
            eprintln!("stand-in: the first sync failed");
            return;
        }
        loop {
            match client.next_events(Duration::from_secs(5)).await {
                Ok(events) => {
                    for seen in events {
                        if tx.send(Input::Event(seen.room_id, seen.event)).is_err() {
                            return;
                        }
                    }
                }
                Err(stop) => {
                    eprintln!("stand-in: sync failed: {}", stop.message());
                    return;
                }
            }
        }
    });
}

fn ask_capabilities(widget_id: &str, fault: Fault) {
    print(
        &json!({"api": "toWidget", "widgetId": widget_id, "requestId": "stand-in-caps",
                  "action": "capabilities", "data": {}}),
    );
    eprintln!("stand-in: asked for capabilities (fault {fault:?})");
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let fault = fault();
    let widget_id = var("BRIDGE_WIDGET_ID");
    let client = Client::new(
        http_client(),
        &var("BRIDGE_HOMESERVER_URL"),
        Evidence::default(),
    )
    .logged_in(&var("BRIDGE_USER_ID"), &var("BRIDGE_ACCESS_TOKEN"), None);
    let approve_all = var("BRIDGE_APPROVED_CAPABILITIES") == "*";
    let approvable: Vec<String> = if approve_all {
        Vec::new()
    } else {
        serde_json::from_str(&var("BRIDGE_APPROVED_CAPABILITIES")).expect("a JSON list")
    };
    let init_on_content_load =
        std::env::var("BRIDGE_INIT_ON_CONTENT_LOAD").as_deref() == Ok("true");
    let mut driver = Driver {
        fault,
        user: User {
            client: client.clone(),
            form: ApiForm::default(),
        },
        room_id: var("BRIDGE_ROOM_ID"),
        widget_id: widget_id.clone(),
        approved: None,
    };
    print(&json!({"bridge": {"name": "stand-in", "version": "0.1.0"}}));
    match fault {
        Fault::ExitAfterHello => {
            eprintln!("stand-in: exiting on purpose");
            std::process::exit(3);
        }
        Fault::Garbage => print_raw("this is not JSON"),
        _ => {}
    }
    // Stdin lines arrive on a thread (blocking reads); they and the sync's events are handled
    // here one by one.
    let (tx, mut rx) = mpsc::unbounded_channel::<Input>();
    let from_widget = tx.clone();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if let Ok(value) = serde_json::from_str::<Value>(&line) {
                if from_widget.send(Input::Widget(value)).is_err() {
                    break;
                }
            }
        }
        let _ = from_widget.send(Input::Closed);
    });
    if !init_on_content_load {
        ask_capabilities(&widget_id, fault);
    }
    let mut syncing = false;
    let mut forwarded = 0;
    while let Some(input) = rx.recv().await {
        let message = match input {
            Input::Widget(message) => message,
            Input::Closed => break,
            Input::Event(room_id, event) => {
                if driver.may_receive(&room_id, &event) && fault != Fault::ForwardsNoEvents {
                    let mut data = event;
                    data["room_id"] = json!(room_id);
                    forwarded += 1;
                    print(&json!({"api": "toWidget", "widgetId": driver.widget_id,
                                  "requestId": format!("stand-in-event-{forwarded}"),
                                  "action": "send_event", "data": data}));
                }
                continue;
            }
        };
        let api = message["api"].as_str().unwrap_or_default();
        match (api, message.get("response")) {
            ("toWidget", Some(response)) if message["action"] == "capabilities" => {
                let asked: Vec<String> =
                    serde_json::from_value(response["capabilities"].clone()).unwrap_or_default();
                let approved: Vec<String> = asked
                    .iter()
                    .filter(|c| approve_all || approvable.contains(c))
                    .filter(|c| {
                        fault != Fault::DropsUpdateCapability || !UPDATE.contains(&c.as_str())
                    })
                    .cloned()
                    .collect();
                print(&json!({"api": "toWidget", "widgetId": driver.widget_id,
                              "requestId": "stand-in-notify", "action": "notify_capabilities",
                              "data": {"requested": asked, "approved": approved}}));
                driver.approved = Some(approved);
                if driver.wants_events() && !syncing {
                    syncing = true;
                    keep_syncing(client.clone(), tx.clone());
                }
            }
            ("toWidget", Some(_)) => {}
            ("fromWidget", None) if message["action"] == "content_loaded" => {
                let mut reply = message.clone();
                reply["response"] = json!({});
                print(&reply);
                if init_on_content_load && driver.approved.is_none() {
                    ask_capabilities(&driver.widget_id, fault);
                }
            }
            ("fromWidget", None) => {
                let negotiated = driver.approved.is_some();
                if let Some(response) = driver.handle(&message, negotiated).await {
                    let mut reply = message.clone();
                    reply["response"] = response;
                    print(&reply);
                    if fault == Fault::ReplyTwice {
                        print(&reply);
                    }
                }
            }
            _ => eprintln!("stand-in: ignoring {message}"),
        }
    }
    if fault == Fault::NeverReply {
        // A hung driver: only killing it ends it.
        loop {
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }
}

fn print_raw(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).ok();
}
