//! What cases and servers exchange about delayed events, whatever the form: actions, delays, the
//! event to delay, what scheduling answered, when a timer started, and listing entries.

use crate::client::Resp;
use serde_json::{json, Value};
use std::time::Instant;

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
    pub(super) fn query_text(&self) -> String {
        match self {
            Delay::Ms(ms) => ms.to_string(),
            Delay::Raw(text) => text.to_string(),
        }
    }

    /// In a JSON body: numbers as numbers, anything else as a string.
    pub(super) fn json(&self) -> Value {
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

/// What a lookup says became of a delayed event: still scheduled, or finalised (sent, failed,
/// cancelled) with the time it was finalised.
#[derive(Clone, Debug, PartialEq)]
pub enum Fate {
    Scheduled,
    Sent { event_id: String, finalised_ts: i64 },
    Failed { error: Value, finalised_ts: i64 },
    Cancelled { finalised_ts: i64 },
}

impl Fate {
    pub fn finalised_ts(&self) -> Option<i64> {
        match self {
            Fate::Scheduled => None,
            Fate::Sent { finalised_ts, .. }
            | Fate::Failed { finalised_ts, .. }
            | Fate::Cancelled { finalised_ts } => Some(*finalised_ts),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Fate::Scheduled => "still scheduled".into(),
            Fate::Sent { event_id, .. } => format!("sent as {event_id}"),
            Fate::Failed { error, .. } => format!("failed with {error}"),
            Fate::Cancelled { .. } => "cancelled".into(),
        }
    }
}

/// A lookup's outcome as read (`DelayedInfo::fate`), with the revisions whose shape it came in:
/// flat `finalised_ts` / `event_id` / `error` (2026-07), or nested in a `finalised` object (the
/// merged text, reconstructed). A server may send both, if they agree.
#[derive(Clone, Debug)]
pub struct ReadFate {
    pub fate: Fate,
    /// Empty for a still scheduled event (nothing to tell the shapes apart by).
    pub shapes: Vec<crate::spec::Rev>,
}

impl DelayedInfo {
    /// The event's outcome, read from either shape in which revisions give it (the one place
    /// that reads it). `Err` says what is wrong with an outcome that reads as none of them: an
    /// `event_id` or `error` without `finalised_ts`, both at once, wrong types, two shapes that
    /// disagree.
    pub fn fate(&self) -> Result<ReadFate, String> {
        use crate::spec::Rev;
        let flat = Self::fate_in(&self.raw, "")?;
        let nested = match self.raw.get("finalised") {
            None | Some(Value::Null) => None,
            Some(inner @ Value::Object(_)) => {
                Some(Self::fate_in(inner, "finalised.")?.unwrap_or(Fate::Scheduled))
            }
            Some(other) => return Err(format!("`finalised` is not an object: {other}")),
        };
        match (flat, nested) {
            (None, None) => Ok(ReadFate {
                fate: Fate::Scheduled,
                shapes: Vec::new(),
            }),
            (Some(fate), None) => Ok(ReadFate {
                fate,
                shapes: vec![Rev::Jul2026],
            }),
            (None, Some(Fate::Scheduled)) => {
                Err("`finalised` is an object without `finalised_ts`".into())
            }
            (None, Some(fate)) => Ok(ReadFate {
                fate,
                shapes: vec![Rev::Merged2026],
            }),
            (Some(flat), Some(nested)) if flat == nested => Ok(ReadFate {
                fate: flat,
                shapes: vec![Rev::Jul2026, Rev::Merged2026],
            }),
            (Some(flat), Some(nested)) => Err(format!(
                "the flat fields say {} but the `finalised` object says {}",
                flat.describe(),
                nested.describe()
            )),
        }
    }

    /// The outcome given by `finalised_ts`, `event_id` and `error` in `o` (`prefix` names where,
    /// for messages); `None` where none of them is present.
    fn fate_in(o: &Value, prefix: &str) -> Result<Option<Fate>, String> {
        // A null field is an absent one (some servers spell absence so).
        let field = |k: &str| o.get(k).filter(|v| !v.is_null());
        let (ts, event_id, error) = (field("finalised_ts"), field("event_id"), field("error"));
        if ts.is_none() && event_id.is_none() && error.is_none() {
            return Ok(None);
        }
        let Some(finalised_ts) = ts.and_then(Value::as_i64) else {
            return Err(format!(
                "`{prefix}event_id` or `{prefix}error` without a numeric `{prefix}finalised_ts` (got {ts:?})"
            ));
        };
        match (event_id, error) {
            (Some(_), Some(_)) => Err(format!(
                "both `{prefix}event_id` and `{prefix}error`: an event is either sent or failed"
            )),
            (Some(id), None) => match id.as_str() {
                Some(id) if !id.is_empty() => Ok(Some(Fate::Sent {
                    event_id: id.to_string(),
                    finalised_ts,
                })),
                _ => Err(format!("`{prefix}event_id` is not an event id: {id}")),
            },
            (None, Some(error)) => match error.get("errcode").and_then(Value::as_str) {
                Some(_) => Ok(Some(Fate::Failed {
                    error: error.clone(),
                    finalised_ts,
                })),
                None => Err(format!(
                    "`{prefix}error` is not a standard error response (no `errcode`): {error}"
                )),
            },
            (None, None) => Ok(Some(Fate::Cancelled { finalised_ts })),
        }
    }
}
