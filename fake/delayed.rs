//! Delayed events: their records and outcomes, the lazy timer that sends them, and their
//! cancellation by newer state events.

use serde_json::{json, Value};

use super::*;

/// `origin_server_ts` offset used by [`Fault::LateTimestamp`].
pub(super) const LATE_BY_MS: u64 = 40_000;
/// How much later than the truth [`Fault::ReportedTimeInFuture`] reports the scheduling time.
pub(super) const REPORTED_AHEAD_MS: u64 = 60_000;
/// How much earlier than due [`Fault::SendEarly`] sends.
pub(super) const SEND_EARLY_BY_MS: u64 = 200;
/// How late [`Fault::CancelIgnoredSentLate`] sends an event whose cancel it ignored.
pub(super) const IGNORED_CANCEL_LATE_BY_MS: u64 = 5000;
/// [`Fault::RestartTooSlow`]: a restart arriving less than this before its event is due is
/// handled only after the event was sent.
pub(super) const SLOW_RESTART_WITHIN_MS: u64 = 2500;
/// [`Fault::RestartTooSlow`]: how long after the event's due time such a restart is answered.
pub(super) const SLOW_RESTART_ANSWER_AFTER_DUE_MS: u64 = 300;
/// [`Fault::StateOverwriteLate`]: how long after a newer state event its overwrite takes effect
/// (longer than the delay of `state_overwrite.other_users_state_cancels`).
pub(super) const OVERWRITE_LAG_MS: u64 = 3500;
/// [`Fault::StateOverwriteProcessedLate`]: how long after a newer state event the background
/// applies its overwrite (shorter than the delay of `state_overwrite.earlier_state_does_not_cancel`).
pub(super) const BACKGROUND_LAG_MS: u64 = 300;
/// [`Fault::BurstDropsExcess`]: how many timer sends of one room a window holds.
pub(super) const BURST_CAPACITY: usize = 8;
pub(super) const BURST_WINDOW_MS: u64 = 200;

/// [`Fault::SentContentTruncated`]: the longest string an event sent from a delayed event keeps.
pub(super) const TRUNCATED_TO_BYTES: usize = 8192;

/// `value` with every string value (not keys) passed through `f`.
pub(super) fn map_strings(value: &Value, f: &dyn Fn(&str) -> String) -> Value {
    match value {
        Value::String(s) => Value::String(f(s)),
        Value::Array(items) => Value::Array(items.iter().map(|v| map_strings(v, f)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), map_strings(v, f)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[derive(Clone, Debug)]
pub(super) enum Outcome {
    Scheduled,
    Sent {
        event_id: String,
    },
    /// Cancelled by the `cancel` action.
    Cancelled,
    /// Cancelled because of an error (send failure, state overwrite).
    Failed {
        error: Value,
        /// Cancelled by a newer state event ([`Fault::StateOverwriteCancelsButListed`]).
        by_overwrite: bool,
    },
}

impl Outcome {
    /// The outcome of an attempt to send.
    pub(super) fn of_send(result: Result<String, Reply>) -> Outcome {
        match result {
            Ok(event_id) => Outcome::Sent { event_id },
            Err(e) => Outcome::Failed {
                error: e.body,
                by_overwrite: false,
            },
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Outcome::Scheduled => "scheduled".into(),
            Outcome::Sent { event_id } => format!("sent as {event_id}"),
            Outcome::Cancelled => "cancelled".into(),
            Outcome::Failed { error, .. } => format!("failed ({})", error["errcode"]),
        }
    }
}

pub(super) struct Delayed {
    pub(super) seq: u64,
    pub(super) delay_id: String,
    pub(super) owner: String,
    pub(super) room_id: String,
    pub(super) ev_type: String,
    pub(super) state_key: Option<String>,
    pub(super) content: Value,
    pub(super) delay_ms: i64,
    /// When the timer last (re)started: scheduling, or the last `restart` action.
    pub(super) scheduled_at: u64,
    /// When it was scheduled, whatever restarts came later ([`Fault::ReportedTimeStale`]).
    pub(super) first_scheduled_at: u64,
    pub(super) outcome: Outcome,
    pub(super) finalised_ts: Option<u64>,
    /// [`Fault::SendActionTwice`]: the timer will send it again at its due time.
    pub(super) timer_resend: bool,
    /// [`Fault::OverdueNotSent`]: the timer forgot it; it is never sent.
    pub(super) stalled: bool,
    /// [`Fault::DeactivatedStillSends`]: sent without any authorisation check.
    pub(super) unchecked: bool,
    /// [`Fault::CancelIgnoredSentLate`]: the timer sends it this long after its due time.
    pub(super) late_by_ms: u64,
    /// [`FakeOptions::listing_lag`]: until when the listing still shows this event as it was
    /// before its last change (`None`: not at all).
    pub(super) listing_view: Option<(u64, Option<Value>)>,
}

impl Delayed {
    pub(super) fn due(&self) -> u64 {
        (self.scheduled_at as i64)
            .saturating_add(self.delay_ms)
            .max(0) as u64
    }

    pub(super) fn to_json(&self, finalised_fields: bool) -> Value {
        let mut o = json!({
            "delay_id": self.delay_id,
            "room_id": self.room_id,
            "type": self.ev_type,
            "delay_ms": self.delay_ms,
            "scheduled_at": self.scheduled_at,
            "content": self.content,
        });
        if let Some(sk) = &self.state_key {
            o["state_key"] = json!(sk);
        }
        if finalised_fields {
            if let Some(ts) = self.finalised_ts {
                o["finalised_ts"] = json!(ts);
            }
            match &self.outcome {
                Outcome::Sent { event_id } => o["event_id"] = json!(event_id),
                Outcome::Failed { error, .. } => o["error"] = error.clone(),
                Outcome::Scheduled | Outcome::Cancelled => {}
            }
        }
        o
    }
}

/// [`FakeOptions::merged_shapes`]: the scheduling time as `delayed_since_ts`, and a finalised
/// outcome nested in a `finalised` object.
fn merged_shape(o: &mut Value) {
    let Some(m) = o.as_object_mut() else { return };
    if let Some(at) = m.remove("scheduled_at") {
        m.insert("delayed_since_ts".into(), at);
    }
    let mut finalised = serde_json::Map::new();
    for key in ["finalised_ts", "event_id", "error"] {
        if let Some(v) = m.remove(key) {
            finalised.insert(key.into(), v);
        }
    }
    if !finalised.is_empty() {
        m.insert("finalised".into(), Value::Object(finalised));
    }
}

/// A new event, as far as cancelling the delayed events it overwrites goes.
pub(super) struct Overwrite<'a> {
    pub(super) room_id: &'a str,
    pub(super) ev_type: &'a str,
    pub(super) state_key: Option<&'a str>,
    pub(super) sender: &'a str,
    /// Set when the new event is itself sent from a delayed event.
    pub(super) delay_id: Option<&'a str>,
}

/// When an authorisation check happens; the delayed-event faults about power levels hinge on it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// An ordinary, non-delayed send.
    Direct,
    /// Scheduling a delayed event.
    Schedule,
    /// The timer sending a delayed event.
    Timer,
    /// The `send` management action.
    SendAction,
}

impl State {
    pub(super) fn delayed_mut(&mut self, idx: usize) -> &mut Delayed {
        &mut self.delayed[idx]
    }

    /// A delayed event as the listing and the single lookup report it.
    pub(super) fn report(&self, d: &Delayed, finalised_fields: bool) -> Value {
        let mut o = d.to_json(finalised_fields);
        if self.fault(Fault::ReportedTimeStale) {
            o["scheduled_at"] = json!(d.first_scheduled_at);
        }
        if self.fault(Fault::ReportedTimeInFuture) {
            o["scheduled_at"] = json!(d.scheduled_at + REPORTED_AHEAD_MS);
        }
        if self.fault(Fault::ListedContentMangled) {
            o["content"] = map_strings(&d.content, &|s| {
                s.chars()
                    .map(|c| if c.is_ascii() { c } else { '?' })
                    .collect()
            });
        }
        if finalised_fields {
            self.misreport_outcome(d, &mut o);
        }
        if self.fault(Fault::ListingFieldsUnknown) {
            // The delay under a name no revision uses.
            if let Some(delay) = o.as_object_mut().and_then(|m| m.remove("delay_ms")) {
                o["delay_millis"] = delay;
            }
        }
        if self.opts.merged_shapes {
            merged_shape(&mut o);
        }
        o
    }

    /// The lookup faults about a finalised event's outcome.
    fn misreport_outcome(&self, d: &Delayed, o: &mut Value) {
        let Some(m) = o.as_object_mut() else { return };
        if self.fault(Fault::FinalisedOutcomeUnreadable) && d.finalised_ts.is_some() {
            // An outcome in neither the flat nor the nested shape.
            let status = match &d.outcome {
                Outcome::Sent { .. } => "sent",
                Outcome::Failed { .. } => "failed",
                _ => "cancelled",
            };
            for key in ["finalised_ts", "event_id", "error"] {
                m.remove(key);
            }
            m.insert("status".into(), json!(status));
        }
        if let (true, Outcome::Sent { .. }) = (self.fault(Fault::LookupEventIdWrong), &d.outcome) {
            m.insert(
                "event_id".into(),
                json!(format!("$not-the-sent-{}", d.delay_id)),
            );
        }
        if let (true, Outcome::Sent { .. }, Some(ts)) = (
            self.fault(Fault::FinalisedTsSwapped),
            &d.outcome,
            d.finalised_ts,
        ) {
            // Sent manually (before the due time) reported as on time, and the other way round.
            let swapped = if ts < d.due() {
                d.due()
            } else {
                d.scheduled_at
            };
            m.insert("finalised_ts".into(), json!(swapped));
        }
        if let (true, Outcome::Cancelled) = (self.fault(Fault::CancelledLookupHasError), &d.outcome)
        {
            m.insert(
                "error".into(),
                json!({"errcode": "M_UNKNOWN", "error": "Cancelled"}),
            );
        }
    }

    /// [`FakeOptions::listing_lag`]: the listing keeps showing the delayed event at `idx` as it
    /// is now (or not at all, for a new one) for a while after the change about to be made.
    pub(super) fn lag_listing(&mut self, idx: usize) {
        let lag = self.opts.listing_lag.as_millis() as u64;
        if lag == 0 {
            return;
        }
        let until = self.now + lag;
        let d = &self.delayed[idx];
        let before = match &d.listing_view {
            // Still lagging: it keeps showing what it showed.
            Some((shown_until, before)) if *shown_until > self.now => before.clone(),
            _ => self.listed(d).then(|| self.report(d, false)),
        };
        self.delayed_mut(idx).listing_view = Some((until, before));
    }

    /// While only the main process restarts, the timer (which lives there) stands still; once it
    /// is back, the next tick sends what fell due meanwhile.
    pub(super) fn main_is_down(&mut self) -> bool {
        match self.main_down_until {
            Some(until) if self.now < until => true,
            Some(_) => {
                self.main_down_until = None;
                self.log("main process: back up".into());
                false
            }
            None => false,
        }
    }

    /// [`Fault::FlushesOnShutdown`]: on a clean stop, every scheduled delayed event is sent now.
    pub(super) fn flush_on_shutdown(&mut self) {
        if !self.fault(Fault::FlushesOnShutdown) || self.down_until.is_some() {
            return;
        }
        self.now = now_ms();
        let scheduled: Vec<usize> = (0..self.delayed.len())
            .filter(|&i| matches!(self.delayed[i].outcome, Outcome::Scheduled))
            .collect();
        for idx in scheduled {
            self.fire(idx, self.now);
        }
    }

    /// When the lazy timer acts on this delayed event, if at all.
    pub(super) fn fire_time(&self, d: &Delayed) -> Option<u64> {
        match d.outcome {
            _ if d.stalled => None,
            Outcome::Scheduled if self.fault(Fault::SendEarly) => {
                // Early by a margin no correct timer or loaded harness could explain.
                let delay = d.delay_ms.max(0) as u64;
                Some(d.scheduled_at + delay.saturating_sub(SEND_EARLY_BY_MS).max(delay / 2))
            }
            Outcome::Scheduled => Some(d.due() + d.late_by_ms),
            Outcome::Sent { .. } if d.timer_resend => Some(d.due()),
            _ => None,
        }
    }

    /// `origin_server_ts` of an event sent by the timer.
    pub(super) fn timer_timestamp(&self, d: &Delayed) -> u64 {
        if self.fault(Fault::SendEarly) {
            self.now
        } else if self.fault(Fault::LateTimestamp) {
            d.due() + LATE_BY_MS
        } else {
            d.due() + d.late_by_ms
        }
    }

    /// Delayed events the timer must act on now, in order of due time.
    pub(super) fn due_now(&self) -> Vec<usize> {
        let mut due: Vec<(u64, u64, usize)> = self
            .delayed
            .iter()
            .enumerate()
            .filter_map(|(i, d)| {
                self.fire_time(d)
                    .filter(|&t| t <= self.now)
                    .map(|t| (t, d.seq, i))
            })
            .collect();
        due.sort();
        due.into_iter().map(|(_, _, i)| i).collect()
    }

    /// Sends every delayed event whose time has come, in order of due time.
    pub(super) fn tick(&mut self) {
        if self.timer_stalled || self.main_is_down() {
            return;
        }
        let now = self.now;
        let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.late_overwrites)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.late_overwrites = later;
        for (_, idx) in ready {
            self.overwrite_by(idx);
        }
        for idx in self.due_now() {
            let ts = self.timer_timestamp(&self.delayed[idx]);
            self.fire(idx, ts);
        }
    }

    /// The timer's send of one due delayed event, stamped `ts`.
    pub(super) fn fire(&mut self, idx: usize, ts: u64) {
        let d = &self.delayed[idx];
        let state_key = d.state_key.clone();
        let scheduled = matches!(d.outcome, Outcome::Scheduled);
        if scheduled && self.burst_full(idx) {
            self.delayed_mut(idx).stalled = true;
            return;
        }
        let d = &self.delayed[idx];
        match d.outcome {
            Outcome::Scheduled => {
                let owner = d.owner.clone();
                if let Err(refusal) = self.message_rate_limit(&owner) {
                    return self.refused_at_send(idx, ts, state_key, refusal);
                }
                let result = self.emit_delayed(idx, ts, state_key, Phase::Timer);
                self.finalise(idx, Outcome::of_send(result));
            }
            Outcome::Sent { .. } if d.timer_resend => {
                let _ = self.emit_delayed(idx, ts, state_key, Phase::Timer);
                self.delayed_mut(idx).timer_resend = false;
            }
            _ => {} // finalised meanwhile, e.g. by a state overwrite from an earlier one
        }
    }

    /// The timer's send refused by the owner's message rate limit: not retried, finalised with
    /// the error (2026-07), unless a fault loses or doubles it.
    fn refused_at_send(&mut self, idx: usize, ts: u64, state_key: Option<String>, refusal: Reply) {
        if self.fault(Fault::SendRefusalDuplicates) {
            // Sent despite the refusal, then once more by a retry.
            let first = self.emit_delayed(idx, ts, state_key.clone(), Phase::Timer);
            let _ = self.emit_delayed(idx, ts, state_key, Phase::Timer);
            return self.finalise(idx, Outcome::of_send(first));
        }
        self.finalise(idx, Outcome::of_send(Err(refusal)));
        if self.fault(Fault::SendRefusalVanishes) {
            let delay_id = self.delayed[idx].delay_id.clone();
            self.delayed_index.remove(&delay_id);
        }
    }

    /// [`Fault::BurstDropsExcess`]: whether the timer already sent its fill into this event's
    /// room within the window (and if not, counts this send).
    pub(super) fn burst_full(&mut self, idx: usize) -> bool {
        if !self.fault(Fault::BurstDropsExcess) {
            return false;
        }
        let now = self.now;
        self.recent_timer_sends
            .retain(|(at, _)| at + BURST_WINDOW_MS > now);
        let room = self.delayed[idx].room_id.clone();
        let in_room = self
            .recent_timer_sends
            .iter()
            .filter(|(_, r)| *r == room)
            .count();
        if in_room >= BURST_CAPACITY {
            return true;
        }
        self.recent_timer_sends.push_back((now, room));
        false
    }

    /// Puts a delayed event into its room now, if its owner may send it.
    pub(super) fn emit_delayed(
        &mut self,
        idx: usize,
        ts: u64,
        state_key: Option<String>,
        phase: Phase,
    ) -> Result<String, Reply> {
        let d = &self.delayed[idx];
        if !d.unchecked {
            self.authorise(
                &d.room_id,
                &d.owner,
                &d.ev_type,
                state_key.as_deref(),
                &d.content,
                phase,
            )?;
        }
        let mut content = if self.fault(Fault::SentContentTruncated) {
            map_strings(&d.content, &|s| {
                let mut cut = s.len().min(TRUNCATED_TO_BYTES);
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                s[..cut].to_string()
            })
        } else {
            d.content.clone()
        };
        if let (true, Some(map)) = (
            self.fault(Fault::DelayedContentMangled),
            content.as_object_mut(),
        ) {
            map.remove("m.mentions");
        }
        let (room_id, owner, ev_type, delay_id) = (
            d.room_id.clone(),
            d.owner.clone(),
            d.ev_type.clone(),
            d.delay_id.clone(),
        );
        let draft = Draft {
            room_id: &room_id,
            sender: &owner,
            ev_type: &ev_type,
            state_key,
            content,
            ts,
            delay_id: Some(delay_id),
        };
        Ok(self.append_event(draft))
    }

    /// Records a delayed event's final outcome (sent, cancelled, failed).
    pub(super) fn finalise(&mut self, idx: usize, outcome: Outcome) {
        let now = self.now;
        let line = format!(
            "delayed event {} {}",
            self.delayed[idx].delay_id,
            outcome.describe()
        );
        self.lag_listing(idx);
        let d = self.delayed_mut(idx);
        d.outcome = outcome;
        d.finalised_ts = Some(now);
        self.log(line);
    }

    /// The event at `idx` cancels what it overwrites.
    pub(super) fn overwrite_by(&mut self, idx: usize) {
        let ev = &self.events[idx];
        let (room_id, ev_type, state_key, sender, delay_id) = (
            ev.room_id.clone(),
            ev.ev_type.clone(),
            ev.state_key.clone(),
            ev.sender.clone(),
            ev.delay_id.clone(),
        );
        let new = Overwrite {
            room_id: &room_id,
            ev_type: &ev_type,
            state_key: state_key.as_deref(),
            sender: &sender,
            delay_id: delay_id.as_deref(),
        };
        self.cancel_overwritten(&new);
    }

    /// A newer event cancels the pending delayed events it overwrites: those of other users for
    /// the same room, type and state key (the 2024-10 rule; faults change who and what).
    pub(super) fn cancel_overwritten(&mut self, new: &Overwrite) {
        let (ignore_others, cancel_own) = (
            self.fault(Fault::StateOverwriteIgnored),
            self.fault(Fault::StateOverwriteBySelfCancels),
        );
        let hit: Vec<usize> = (0..self.delayed.len())
            .filter(|&i| {
                let d = &self.delayed[i];
                let cancels = if d.owner == new.sender {
                    cancel_own
                } else {
                    !ignore_others
                };
                matches!(d.outcome, Outcome::Scheduled)
                    && Some(d.delay_id.as_str()) != new.delay_id
                    && cancels
                    && self.overwrites(new, d)
            })
            .collect();
        for idx in hit {
            let error = json!({
                "errcode": "M_UNKNOWN",
                "error": "Cancelled by a newer state event",
                "org.matrix.msc4140.errcode": "M_CANCELLED_BY_STATE_UPDATE",
            });
            self.finalise(
                idx,
                Outcome::Failed {
                    error,
                    by_overwrite: true,
                },
            );
        }
    }

    /// Whether `new` overwrites the delayed event `d`: a state event at the same room, type and
    /// state key; more under [`Fault::StateOverwriteTooBroad`].
    pub(super) fn overwrites(&self, new: &Overwrite, d: &Delayed) -> bool {
        let broad = self.fault(Fault::StateOverwriteTooBroad);
        let same_room = d.room_id == new.room_id;
        d.ev_type == new.ev_type
            && match (new.state_key, d.state_key.as_deref()) {
                (Some(a), Some(b)) if a == b => same_room || broad,
                (Some(_), Some(_)) | (None, None) => same_room && broad,
                _ => false,
            }
    }
}
