//! The API-form layer: how the server is asked to schedule and manage delayed events, and the
//! delayed-event operations cases call on a `User`. What the server offers is found once per run
//! by `detect.rs` (`Features`, re-exported here).
//! Cases say "schedule", "cancel", "list"; this module turns that into the HTTP the chosen
//! revision's form uses.

use crate::client::{new_txn_id, seg, Client, Resp};
use crate::outcome::Stop;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Instant;

pub use crate::detect::{detect, Features};

pub const UNSTABLE_PREFIX: &str = "/_matrix/client/unstable/org.matrix.msc4140";
pub const STABLE_PREFIX: &str = "/_matrix/client/v1";
pub const UNSTABLE_FEATURE: &str = "org.matrix.msc4140";
pub const UNSTABLE_CAPABILITY: &str = "org.matrix.msc4140.delayed_events";
pub const STABLE_CAPABILITY: &str = "m.delayed_events";
pub const UNSTABLE_UNSIGNED_KEY: &str = "org.matrix.msc4140.delay_id";

/// How events are scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleForm {
    /// `?org.matrix.msc4140.delay=` (or `?delay=`) on `/send` and `/state` (2024-10, 2025-12).
    QueryParam,
    /// `PUT .../rooms/{roomId}/delayed_event/{eventType}/{txnId}` (2026-07).
    Endpoint,
}

/// How scheduled events are managed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ManageForm {
    /// `POST .../delayed_events/{delay_id}/{action}` (2025-12, 2026-07).
    SplitPath,
    /// `POST .../delayed_events/{delay_id}` with `{"action": ...}` (2024-10).
    Body,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Prefix {
    Unstable,
    Stable,
}

/// The complete choice of API form for a run, recorded in the results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiForm {
    pub schedule: ScheduleForm,
    pub manage: ManageForm,
    pub prefix: Prefix,
}

impl Default for ApiForm {
    /// What Synapse offers; used when nothing was detected or forced.
    fn default() -> Self {
        ApiForm {
            schedule: ScheduleForm::QueryParam,
            manage: ManageForm::SplitPath,
            prefix: Prefix::Unstable,
        }
    }
}

/// A partial form from `--api-form`: each token names its own dimension.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FormOverride {
    pub schedule: Option<ScheduleForm>,
    pub manage: Option<ManageForm>,
    pub prefix: Option<Prefix>,
}

impl FormOverride {
    pub const HELP: &'static str =
        "comma-separated: query-param|endpoint, split-path|body, unstable|stable (e.g. endpoint,stable)";

    pub fn parse(text: &str) -> Result<FormOverride, String> {
        let mut form = FormOverride::default();
        for token in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match token {
                "query-param" => form.schedule = Some(ScheduleForm::QueryParam),
                "endpoint" => form.schedule = Some(ScheduleForm::Endpoint),
                "split-path" => form.manage = Some(ManageForm::SplitPath),
                "body" => form.manage = Some(ManageForm::Body),
                "unstable" => form.prefix = Some(Prefix::Unstable),
                "stable" => form.prefix = Some(Prefix::Stable),
                other => {
                    return Err(format!(
                        "unknown API form '{other}'; expected {}",
                        Self::HELP
                    ))
                }
            }
        }
        Ok(form)
    }
}

impl std::fmt::Display for ApiForm {
    /// "query-param, split-path, unstable": the same names `--api-form` takes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = serde_json::to_value(self).expect("forms serialise");
        let name = |key: &str| names[key].as_str().unwrap_or("?").to_string();
        write!(
            f,
            "{}, {}, {}",
            name("schedule"),
            name("manage"),
            name("prefix")
        )
    }
}

impl ApiForm {
    pub fn prefix_path(&self) -> &'static str {
        match self.prefix {
            Prefix::Unstable => UNSTABLE_PREFIX,
            Prefix::Stable => STABLE_PREFIX,
        }
    }

    fn rooms_prefix(&self) -> &'static str {
        match self.prefix {
            Prefix::Unstable => UNSTABLE_PREFIX,
            Prefix::Stable => "/_matrix/client/v3",
        }
    }

    fn delay_param(&self) -> &'static str {
        match self.prefix {
            Prefix::Unstable => "org.matrix.msc4140.delay",
            Prefix::Stable => "delay",
        }
    }

    pub fn unsigned_key(&self) -> &'static str {
        match self.prefix {
            Prefix::Unstable => UNSTABLE_UNSIGNED_KEY,
            Prefix::Stable => "delay_id",
        }
    }
}

/// A management action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Send,
    Cancel,
    Restart,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Send, Action::Cancel, Action::Restart];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Send => "send",
            Action::Cancel => "cancel",
            Action::Restart => "restart",
        }
    }
}

/// A delay as sent: a number of milliseconds, or raw text (for the error cases).
#[derive(Clone, Debug)]
pub enum Delay {
    Ms(i64),
    Raw(&'static str),
}

impl Delay {
    fn query_text(&self) -> String {
        match self {
            Delay::Ms(ms) => ms.to_string(),
            Delay::Raw(text) => text.to_string(),
        }
    }

    /// In a JSON body: numbers as numbers, anything else as a string.
    fn json(&self) -> Value {
        match self {
            Delay::Ms(ms) => json!(ms),
            Delay::Raw(text) => serde_json::from_str::<serde_json::Number>(text)
                .map(Value::Number)
                .unwrap_or_else(|_| Value::String(text.to_string())),
        }
    }
}

/// The event a case wants delayed.
#[derive(Clone, Debug)]
pub struct DelayedEvent {
    pub room_id: String,
    pub event_type: String,
    pub state_key: Option<String>,
    pub content: Value,
}

impl DelayedEvent {
    pub fn message(room_id: &str, body: &str) -> DelayedEvent {
        DelayedEvent {
            room_id: room_id.to_string(),
            event_type: "m.room.message".into(),
            state_key: None,
            content: json!({ "msgtype": "m.text", "body": body }),
        }
    }

    pub fn state(room_id: &str, event_type: &str, state_key: &str, content: Value) -> DelayedEvent {
        DelayedEvent {
            room_id: room_id.to_string(),
            event_type: event_type.to_string(),
            state_key: Some(state_key.to_string()),
            content,
        }
    }

    /// Whether an event seen over `/sync` is this one once sent (room, type, state key, content).
    pub fn matches(&self, seen: &crate::client::Observed) -> bool {
        seen.room_id == self.room_id
            && seen.event_type() == self.event_type
            && seen.state_key() == self.state_key.as_deref()
            && seen.content() == &self.content
    }

    pub fn with_content(mut self, content: Value) -> DelayedEvent {
        self.content = content;
        self
    }
}

/// A successfully scheduled delayed event.
#[derive(Clone, Debug)]
pub struct Scheduled {
    pub delay_id: String,
    pub delay_ms: i64,
    /// Harness clock just before the scheduling request left: a lower bound for the server's
    /// scheduling time, so `sent_at.elapsed() >= delay` holds for any event that is not early.
    pub requested_at: Instant,
    pub resp: Resp,
}

impl Scheduled {
    /// The scheduling request's span on the harness's clock: when this event's timer started.
    pub fn timer(&self) -> TimerStart {
        TimerStart {
            sent: self.requested_at,
            answered: self.resp.received,
            by: "the request that scheduled it",
        }
    }
}

/// When a delayed event's timer (re)started, as the harness saw it: the span from just before the
/// request that started it left (`sent`) to its answer's arrival (`answered`). The server's
/// scheduling time for the event lies inside it; `by` names the request, for messages.
#[derive(Clone, Copy, Debug)]
pub struct TimerStart {
    pub sent: Instant,
    pub answered: Instant,
    pub by: &'static str,
}

impl TimerStart {
    /// A successful `restart` action sent at `sent` and answered by `resp`.
    pub fn restart(sent: Instant, resp: &Resp) -> TimerStart {
        TimerStart {
            sent,
            answered: resp.received,
            by: "the restart that last re-armed it",
        }
    }
}

/// One entry of a listing or a single-item lookup, with the field names of every revision read.
#[derive(Clone, Debug)]
pub struct DelayedInfo {
    pub raw: Value,
}

impl DelayedInfo {
    pub fn delay_id(&self) -> Option<&str> {
        self.raw.get("delay_id").and_then(Value::as_str)
    }
    pub fn room_id(&self) -> Option<&str> {
        self.raw.get("room_id").and_then(Value::as_str)
    }
    /// `delay_ms` (2026-07) or `delay` (2024-10, 2025-12).
    pub fn delay_ms(&self) -> Option<i64> {
        self.raw
            .get("delay_ms")
            .or_else(|| self.raw.get("delay"))
            .and_then(Value::as_i64)
    }
    /// `scheduled_at` (2026-07), `running_since` (earlier texts) or `delayed_since_ts` (Synapse).
    pub fn scheduled_at(&self) -> Option<i64> {
        self.scheduling_times().first().map(|(_, at)| *at)
    }
    /// Every scheduling time the entry reports, by field name (Synapse sends two of them).
    pub fn scheduling_times(&self) -> Vec<(&'static str, i64)> {
        Self::SCHEDULING_TIME_FIELDS
            .iter()
            .filter_map(|k| Some((*k, self.raw.get(*k).and_then(Value::as_i64)?)))
            .collect()
    }
    const SCHEDULING_TIME_FIELDS: [&'static str; 3] =
        ["scheduled_at", "running_since", "delayed_since_ts"];
    pub fn due_at(&self) -> Option<i64> {
        Some(self.scheduled_at()? + self.delay_ms()?)
    }
}

/// A logged-in user, with the delayed-event operations in the run's API form.
#[derive(Clone)]
pub struct User {
    pub client: Client,
    pub form: ApiForm,
}

impl std::ops::Deref for User {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl User {
    pub fn id(&self) -> &str {
        &self.client.user_id
    }

    /// Schedules `event` and answers whatever the server said.
    pub async fn schedule(&self, event: &DelayedEvent, delay: Delay) -> Result<Resp, Stop> {
        self.schedule_with_txn(event, delay, &new_txn_id()).await
    }

    pub async fn schedule_with_txn(
        &self,
        event: &DelayedEvent,
        delay: Delay,
        txn_id: &str,
    ) -> Result<Resp, Stop> {
        let room = seg(&event.room_id);
        let event_type = seg(&event.event_type);
        match self.form.schedule {
            ScheduleForm::QueryParam => {
                let path = match &event.state_key {
                    Some(key) => format!(
                        "/_matrix/client/v3/rooms/{room}/state/{event_type}/{}",
                        seg(key)
                    ),
                    None => format!(
                        "/_matrix/client/v3/rooms/{room}/send/{event_type}/{}",
                        seg(txn_id)
                    ),
                };
                self.put(path)
                    .query(self.form.delay_param(), delay.query_text())
                    .json(event.content.clone())
                    .send()
                    .await
            }
            ScheduleForm::Endpoint => {
                let path = format!(
                    "{}/rooms/{room}/delayed_event/{event_type}/{}",
                    self.form.rooms_prefix(),
                    seg(txn_id)
                );
                let mut body = json!({ "delay_ms": delay.json(), "content": event.content });
                if let Some(key) = &event.state_key {
                    body["state_key"] = json!(key);
                }
                self.put(path).json(body).send().await
            }
        }
    }

    /// Schedules `event` with a raw request body (malformed JSON, non-object content...).
    pub async fn schedule_raw_body(
        &self,
        event: &DelayedEvent,
        delay_ms: i64,
        raw_body: &str,
    ) -> Result<Resp, Stop> {
        let room = seg(&event.room_id);
        let event_type = seg(&event.event_type);
        let txn = new_txn_id();
        match self.form.schedule {
            ScheduleForm::QueryParam => {
                self.put(format!(
                    "/_matrix/client/v3/rooms/{room}/send/{event_type}/{txn}"
                ))
                .query(self.form.delay_param(), delay_ms)
                .raw(raw_body)
                .send()
                .await
            }
            ScheduleForm::Endpoint => {
                let path = format!(
                    "{}/rooms/{room}/delayed_event/{event_type}/{txn}",
                    self.form.rooms_prefix()
                );
                // The endpoint's body wraps the content, so a broken content goes inside it.
                let body = format!(r#"{{"delay_ms": {delay_ms}, "content": {raw_body}}}"#);
                self.put(path).raw(&body).send().await
            }
        }
    }

    /// Schedules and insists it worked: a refusal fails the case (scheduling is the feature).
    pub async fn schedule_ok(
        &self,
        event: &DelayedEvent,
        delay_ms: i64,
    ) -> Result<Scheduled, Stop> {
        let requested_at = Instant::now();
        let resp = self.schedule(event, Delay::Ms(delay_ms)).await?;
        scheduled_from(resp, delay_ms, requested_at)
    }

    pub async fn schedule_ok_with_txn(
        &self,
        event: &DelayedEvent,
        delay_ms: i64,
        txn: &str,
    ) -> Result<Scheduled, Stop> {
        let requested_at = Instant::now();
        let resp = self
            .schedule_with_txn(event, Delay::Ms(delay_ms), txn)
            .await?;
        scheduled_from(resp, delay_ms, requested_at)
    }

    fn management_path(&self, delay_id: &str) -> String {
        format!(
            "{}/delayed_events/{}",
            self.form.prefix_path(),
            seg(delay_id)
        )
    }

    /// A management action in the run's form.
    pub async fn manage(&self, delay_id: &str, action: Action) -> Result<Resp, Stop> {
        self.manage_via(delay_id, action, self.form.manage, true)
            .await
    }

    /// A management action in a given form, with or without the access token.
    pub async fn manage_via(
        &self,
        delay_id: &str,
        action: Action,
        form: ManageForm,
        with_token: bool,
    ) -> Result<Resp, Stop> {
        let base = self.management_path(delay_id);
        let call = match form {
            ManageForm::SplitPath => self
                .post(format!("{base}/{}", action.as_str()))
                .json(json!({})),
            ManageForm::Body => self.post(base).json(json!({ "action": action.as_str() })),
        };
        if with_token {
            call.send().await
        } else {
            call.without_token().send().await
        }
    }

    /// A management request with an arbitrary action path segment (split form).
    pub async fn manage_split_raw(&self, delay_id: &str, action: &str) -> Result<Resp, Stop> {
        let path = format!("{}/{}", self.management_path(delay_id), seg(action));
        self.post(path).json(json!({})).send().await
    }

    /// A body-form management request with an arbitrary raw body.
    pub async fn manage_body_raw(&self, delay_id: &str, raw_body: &str) -> Result<Resp, Stop> {
        self.post(self.management_path(delay_id))
            .raw(raw_body)
            .send()
            .await
    }

    /// Management that must succeed for the case to continue; a refusal fails the case.
    pub async fn manage_ok(&self, delay_id: &str, action: Action) -> Result<Resp, Stop> {
        let resp = self.manage(delay_id, action).await?;
        if !resp.is_success() {
            return Err(Stop::Fail(format!(
                "the '{}' action on a scheduled delayed event was refused: {}",
                action.as_str(),
                resp.describe()
            )));
        }
        Ok(resp)
    }

    pub async fn list_raw(&self, with_token: bool) -> Result<Resp, Stop> {
        let call = self.get(format!("{}/delayed_events", self.form.prefix_path()));
        if with_token {
            call.send().await
        } else {
            call.without_token().send().await
        }
    }

    /// The user's scheduled delayed events. The list key is `delayed_events` (2024-10 Synapse,
    /// 2026-07) or `scheduled` (2025-12).
    pub async fn list(&self) -> Result<Vec<DelayedInfo>, Stop> {
        let resp = self.list_raw(true).await?;
        if !resp.is_success() {
            return Err(Stop::Fail(format!(
                "listing delayed events was refused: {}",
                resp.describe()
            )));
        }
        listing_items(&resp)
    }

    /// The listing entry for one delay id, if listed.
    pub async fn listed(&self, delay_id: &str) -> Result<Option<DelayedInfo>, Stop> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .find(|i| i.delay_id() == Some(delay_id)))
    }

    /// Whether the listing still shows `delay_id` as scheduled; `None` where the listing is
    /// refused (say, to a deactivated account), so there is no telling.
    pub async fn still_listed(&self, delay_id: &str) -> Result<Option<bool>, Stop> {
        let resp = self.list_raw(true).await?;
        if !resp.is_success() {
            return Ok(None);
        }
        let items = listing_items(&resp)?;
        Ok(Some(items.iter().any(|i| i.delay_id() == Some(delay_id))))
    }

    pub async fn lookup(&self, delay_id: &str, with_token: bool) -> Result<Resp, Stop> {
        let call = self.get(self.management_path(delay_id));
        if with_token {
            call.send().await
        } else {
            call.without_token().send().await
        }
    }
}

/// The scheduled items of a listing answer: under `delayed_events` (2024-10, 2026-07) or
/// `scheduled` (2025-12, which lists finalised ones apart, under `finalised`).
fn listing_items(resp: &Resp) -> Result<Vec<DelayedInfo>, Stop> {
    let items = resp
        .body
        .get("delayed_events")
        .or_else(|| resp.body.get("scheduled"))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            Stop::Fail(format!(
                "the listing has no 'delayed_events' (2024-10, 2026-07) or 'scheduled' (2025-12) array: {}",
                resp.describe()
            ))
        })?;
    Ok(items
        .iter()
        .cloned()
        .map(|raw| DelayedInfo { raw })
        .collect())
}

fn scheduled_from(resp: Resp, delay_ms: i64, requested_at: Instant) -> Result<Scheduled, Stop> {
    match resp.str_field("delay_id") {
        Some(id) if resp.status == 200 && !id.is_empty() => {
            Ok(Scheduled { delay_id: id.to_string(), delay_ms, requested_at, resp })
        }
        _ => Err(Stop::Fail(format!(
            "scheduling a delayed event with a {delay_ms} ms delay did not give 200 with a delay_id: {}",
            resp.describe()
        ))),
    }
}
