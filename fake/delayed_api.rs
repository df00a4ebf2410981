//! The delayed-event API: validation, scheduling (both forms), management actions, the
//! listing and the single lookup.

use serde_json::{json, Value};

use super::*;

/// A delayed event about to be scheduled, after validation of the request.
pub(super) struct NewDelayed {
    pub(super) room_id: String,
    pub(super) ev_type: String,
    pub(super) state_key: Option<String>,
    pub(super) content: Value,
    pub(super) delay_ms: i64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    Send,
    Cancel,
    Restart,
}

impl Action {
    pub(super) fn parse(s: &str) -> Option<Action> {
        match s {
            "send" => Some(Action::Send),
            "cancel" => Some(Action::Cancel),
            "restart" => Some(Action::Restart),
            _ => None,
        }
    }
}

/// A requested delay before validation.
pub(super) enum DelayInput {
    Int(i128),
    Other,
}

impl DelayInput {
    pub(super) fn from_query(s: &str) -> DelayInput {
        let digits = s.strip_prefix('-').unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return DelayInput::Other;
        }
        let n = digits.parse::<i128>().unwrap_or(i128::MAX);
        DelayInput::Int(if s.starts_with('-') { -n } else { n })
    }

    pub(super) fn from_json(v: &Value) -> DelayInput {
        match v {
            Value::Number(n) if n.is_i64() => DelayInput::Int(n.as_i64().unwrap_or(0) as i128),
            Value::Number(n) if n.is_u64() => DelayInput::Int(n.as_u64().unwrap_or(0) as i128),
            _ => DelayInput::Other,
        }
    }
}

impl State {
    /// Validates a requested delay against the rules (and the delay faults).
    pub(super) fn validate_delay(&self, input: DelayInput) -> Result<i64, Reply> {
        let max = self.opts.max_delay_ms as i128;
        let enforced_max = if self.fault(Fault::CapabilityOverstatesMaxDelay) {
            max - 1000
        } else {
            max
        };
        match input {
            DelayInput::Other if self.fault(Fault::AcceptNonIntegerDelay) => Ok(1000),
            DelayInput::Other => Err(invalid_param("The delay must be a positive integer.")),
            DelayInput::Int(n) if n < 0 && self.fault(Fault::AcceptNegativeDelay) => {
                Ok(n.max(i64::MIN as i128) as i64)
            }
            DelayInput::Int(n) if n < 0 => {
                Err(invalid_param("The delay must be a positive integer."))
            }
            DelayInput::Int(0) if self.fault(Fault::ZeroDelayServerError) => {
                Err(err(500, "M_UNKNOWN", "Internal server error"))
            }
            DelayInput::Int(0) => Err(invalid_param("The delay must be a positive integer.")),
            DelayInput::Int(n) if n > enforced_max && self.fault(Fault::OverMaxWrongErrcode) => {
                Err(invalid_param(format!(
                    "The delay exceeds the maximum of {max} ms."
                )))
            }
            // As merged (2026-09-08): 400 M_DELAY_TOO_LARGE, under its unstable name here.
            DelayInput::Int(n) if n > enforced_max && !self.fault(Fault::OverMaxAccepted) => {
                Err(err(
                    400,
                    "ORG.MATRIX.MSC4140_DELAY_TOO_LARGE",
                    format!("The delay exceeds the maximum of {max} ms."),
                ))
            }
            DelayInput::Int(n) => Ok(n.min(i64::MAX as i128) as i64),
        }
    }

    /// Content of a delayed event must be a JSON object.
    pub(super) fn check_content(&self, content: Value) -> Result<Value, Reply> {
        const NOT_AN_OBJECT: &str = "Content must be a JSON object.";
        if content.is_object() || self.fault(Fault::InvalidContentAccepted) {
            Ok(content)
        } else if self.fault(Fault::InvalidContentWrongErrcode) {
            Err(err(400, "M_UNKNOWN", NOT_AN_OBJECT))
        } else if self.opts.merged_shapes {
            Err(invalid_param(NOT_AN_OBJECT))
        } else {
            Err(bad_json(NOT_AN_OBJECT))
        }
    }

    /// A conflicting action on a finalised event: 409 `M_UNKNOWN` (2026-07), or another errcode
    /// where the fake answers as the merged text allows.
    pub(super) fn conflict(&self, msg: &str) -> Reply {
        if self.fault(Fault::ConflictWrongStatus) {
            return err(400, "M_UNKNOWN", msg);
        }
        if self.opts.merged_shapes {
            return err(409, "M_FORBIDDEN", msg);
        }
        conflict(msg)
    }

    /// The body of a delayed-event request (scheduling or management).
    pub(super) fn delayed_api_body(&self, cx: &Ctx, empty_ok: bool) -> Result<Value, Reply> {
        match cx.body() {
            Body::Json(v) => Ok(v),
            Body::Empty if empty_ok => Ok(json!({})),
            _ if self.fault(Fault::MalformedJsonAccepted) => Ok(json!({})),
            _ => Err(not_json()),
        }
    }

    /// The per-user limit on scheduled delayed events, for a new one in `room_id`.
    pub(super) fn check_limit(&self, user_id: &str, room_id: &str) -> Result<(), Reply> {
        if self.fault(Fault::LimitNotEnforced) {
            return Ok(());
        }
        if self.opts.max_scheduled == 0 {
            if self.fault(Fault::LimitZeroAnswersLimitExceeded) {
                return Err(err(
                    429,
                    "M_LIMIT_EXCEEDED",
                    "The maximum number of delayed events has been reached.",
                ));
            }
            return Err(forbidden("Delayed events are not allowed."));
        }
        let counts = |d: &Delayed| match d.outcome {
            Outcome::Scheduled => !self.fault(Fault::LimitPerRoom) || d.room_id == room_id,
            Outcome::Cancelled => self.fault(Fault::LimitNotFreedByCancel),
            Outcome::Sent { .. } => self.fault(Fault::LimitNotFreedBySend),
            _ => false,
        };
        let dues: Vec<u64> = self
            .delayed
            .iter()
            .filter(|d| d.owner == user_id && counts(d))
            .map(Delayed::due)
            .collect();
        if (dues.len() as u64) < self.opts.max_scheduled {
            return Ok(());
        }
        let next_due = if self.fault(Fault::LimitRetryAfterWrongValue) {
            dues.iter().max()
        } else {
            dues.iter().min()
        };
        let wait_ms = next_due.unwrap_or(&self.now).saturating_sub(self.now);
        let retry_after_ms = if self.fault(Fault::LimitRetryAfterMsWrapped) {
            // A wait computed the wrong way round, wrapped around in 64 bits.
            0u64.wrapping_sub(wait_ms.max(1))
        } else {
            wait_ms
        };
        let reply = ok(json!({
            "errcode": "M_LIMIT_EXCEEDED",
            "error": "The maximum number of delayed events has been reached.",
            "retry_after_ms": retry_after_ms,
        }))
        .with_status(429);
        if self.fault(Fault::LimitWrongRetryAfter) {
            return Err(reply);
        }
        let seconds = wait_ms.div_ceil(1000);
        let header = if self.fault(Fault::LimitRetryAfterListed) {
            // Every counted event's wait, as a list.
            let mut waits: Vec<u64> = dues
                .iter()
                .map(|due| due.saturating_sub(self.now).div_ceil(1000))
                .collect();
            waits.sort();
            waits.dedup();
            waits
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            seconds.to_string()
        };
        Err(reply.header("Retry-After", header))
    }

    /// A fresh delay_id for `owner`: random and unused unless a delay_id fault says otherwise.
    pub(super) fn new_delay_id(&self, owner: &str) -> String {
        if self.fault(Fault::ReusedDelayIds) {
            // The owner's own finalised ids only, so other users' cases are not disturbed.
            let reusable = self.delayed.iter().enumerate().find(|(i, d)| {
                d.owner == owner
                    && matches!(d.outcome, Outcome::Sent { .. } | Outcome::Cancelled)
                    && self.delayed_index.get(&d.delay_id) == Some(i)
            });
            if let Some((_, d)) = reusable {
                return d.delay_id.clone();
            }
        }
        if self.fault(Fault::SequentialDelayIds) {
            return (self.delayed_counter + 1).to_string();
        }
        loop {
            let id = random_string(32, URL_SAFE);
            if !self.delayed_index.contains_key(&id) {
                return id;
            }
        }
    }

    /// Schedules a validated delayed event for `session`'s user.
    pub(super) fn schedule(&mut self, session: &Session, new: NewDelayed) -> Res {
        if self.opts.delayed_events_off {
            return Err(forbidden("Sending delayed events has been disallowed"));
        }
        let unknown_room_ok = self.fault(Fault::UnknownRoomAccepted);
        if self.rooms.contains_key(&new.room_id) || !unknown_room_ok {
            self.authorise(
                &new.room_id,
                &session.user_id,
                &new.ev_type,
                new.state_key.as_deref(),
                &new.content,
                Phase::Schedule,
            )?;
        }
        self.check_limit(&session.user_id, &new.room_id)?;
        let delay_id = self.new_delay_id(&session.user_id);
        self.log(format!(
            "scheduled delayed event {delay_id} ({} in {}, {} ms) for {}",
            new.ev_type, new.room_id, new.delay_ms, session.user_id
        ));
        self.delayed_index
            .insert(delay_id.clone(), self.delayed.len());
        self.delayed.push(Delayed {
            seq: self.delayed_counter,
            delay_id: delay_id.clone(),
            owner: session.user_id.clone(),
            room_id: new.room_id,
            ev_type: new.ev_type,
            state_key: new.state_key,
            content: new.content,
            delay_ms: new.delay_ms,
            scheduled_at: self.now,
            first_scheduled_at: self.now,
            outcome: Outcome::Scheduled,
            finalised_ts: None,
            timer_resend: false,
            stalled: false,
            unchecked: false,
            late_by_ms: 0,
            // A new event shows in a lagging listing only once the lag has passed.
            listing_view: (!self.opts.listing_lag.is_zero())
                .then(|| (self.now + self.opts.listing_lag.as_millis() as u64, None)),
        });
        self.delayed_counter += 1;
        Ok(ok(json!({ "delay_id": delay_id })))
    }

    /// Whether the listing shows this (owned) delayed event.
    pub(super) fn listed(&self, d: &Delayed) -> bool {
        if self.restarts > 0 && self.fault(Fault::ListingEmptyAfterRestart) {
            return false;
        }
        match d.outcome {
            Outcome::Scheduled => true,
            _ if self.fault(Fault::ListingIncludesFinalised) => true,
            Outcome::Cancelled => self.fault(Fault::CancelKeepsListing),
            Outcome::Failed {
                by_overwrite: true, ..
            } => self.fault(Fault::StateOverwriteCancelsButListed),
            _ => false,
        }
    }

    /// A management action, after the request form has been decoded.
    pub(super) fn manage(
        &mut self,
        requester: Option<&str>,
        delay_id: &str,
        action: Action,
    ) -> Res {
        let Some(&idx) = self.delayed_index.get(delay_id) else {
            if self.fault(Fault::UnknownDelayIdWrongError) {
                return Err(err(400, "M_UNKNOWN", "Unknown delay_id"));
            }
            return Err(not_found("No such delayed event."));
        };
        if requester.is_some_and(|user| user != self.delayed[idx].owner) {
            if self.fault(Fault::MgmtAuthWrongError) {
                return Err(err(400, "M_UNKNOWN", "bad request"));
            }
            return Err(not_found("No such delayed event."));
        }
        let outcome = self.delayed[idx].outcome.clone();
        if !matches!(outcome, Outcome::Scheduled)
            && self.fault(Fault::ActionOnFinalisedCancelsOthers)
        {
            let owner = self.delayed[idx].owner.clone();
            let others: Vec<usize> = (0..self.delayed.len())
                .filter(|&i| {
                    self.delayed[i].owner == owner
                        && matches!(self.delayed[i].outcome, Outcome::Scheduled)
                })
                .collect();
            for other in others {
                self.finalise(other, Outcome::Cancelled);
            }
        }
        match (outcome, action) {
            (Outcome::Scheduled, Action::Send) => self.send_action(idx),
            (Outcome::Scheduled, Action::Cancel) => {
                if self.fault(Fault::CancelIgnoredSentLate) {
                    self.delayed_mut(idx).late_by_ms = IGNORED_CANCEL_LATE_BY_MS;
                } else if !self.fault(Fault::IgnoreCancel) {
                    self.finalise(idx, Outcome::Cancelled);
                }
                Ok(ok(json!({})))
            }
            (Outcome::Scheduled, Action::Restart)
                if self.fault(Fault::RestartTooSlow)
                    && self.delayed[idx].due() < self.now + SLOW_RESTART_WITHIN_MS =>
            {
                // Handled only once the timer has sent the event (at its time, meanwhile): the
                // answer is the one a sent event gets, given after the due time.
                let answer_in = self.delayed[idx].due() - self.now.min(self.delayed[idx].due())
                    + SLOW_RESTART_ANSWER_AFTER_DUE_MS;
                let mut answer = conflict("The delayed event has already been sent.");
                answer.delay = Some(Duration::from_millis(answer_in));
                Err(answer)
            }
            (Outcome::Scheduled, Action::Restart) => {
                self.lag_listing(idx);
                if !self.fault(Fault::RestartNoop) {
                    let now = self.now;
                    self.delayed_mut(idx).scheduled_at = now;
                }
                if self.fault(Fault::RestartRearmsWholeRoom) {
                    let (now, room) = (self.now, self.delayed[idx].room_id.clone());
                    for d in self.delayed.iter_mut() {
                        if d.room_id == room && matches!(d.outcome, Outcome::Scheduled) {
                            d.scheduled_at = now;
                        }
                    }
                }
                Ok(ok(json!({})))
            }
            (Outcome::Sent { .. }, Action::Send) => Ok(ok(json!({}))),
            (Outcome::Sent { .. }, Action::Cancel) if self.fault(Fault::ActionsOnSentWrong) => {
                Ok(ok(json!({})))
            }
            (Outcome::Sent { .. }, _) => {
                Err(self.conflict("The delayed event has already been sent."))
            }
            (Outcome::Failed { .. }, Action::Cancel) if self.fault(Fault::ActionsOnFailedWrong) => {
                Err(self.conflict("The delayed event failed to send."))
            }
            (Outcome::Cancelled | Outcome::Failed { .. }, Action::Cancel) => Ok(ok(json!({}))),
            (Outcome::Cancelled | Outcome::Failed { .. }, Action::Send)
                if self.fault(Fault::ActionsOnCancelledSucceed) =>
            {
                let state_key = self.delayed[idx].state_key.clone();
                let event_id = self.emit_delayed(idx, self.now, state_key, Phase::SendAction)?;
                self.finalise(idx, Outcome::Sent { event_id });
                Ok(ok(json!({})))
            }
            (Outcome::Failed { error, .. }, _) if self.fault(Fault::ActionsOnFailedWrong) => {
                // As if a failed event were forgotten, though its cancel is refused.
                Err(err(
                    404,
                    "M_NOT_FOUND",
                    format!("No such delayed event ({error})"),
                ))
            }
            (Outcome::Cancelled | Outcome::Failed { .. }, _) => {
                Err(self.conflict("The delayed event has already been cancelled."))
            }
        }
    }

    /// The `send` action on a scheduled event: on error it answers the error and stays scheduled.
    pub(super) fn send_action(&mut self, idx: usize) -> Res {
        if self.fault(Fault::SendActionNoop) {
            return Ok(ok(json!({})));
        }
        let d = &self.delayed[idx];
        let state_key = if self.fault(Fault::SendActionDropsStateKey) {
            d.state_key.as_ref().map(|_| String::new())
        } else {
            d.state_key.clone()
        };
        match self.emit_delayed(idx, self.now, state_key, Phase::SendAction) {
            Ok(event_id) => {
                self.sent_by_action.insert(event_id.clone());
                let answer = if self.fault(Fault::ActionAnswerNotEmpty) {
                    json!({ "event_id": event_id })
                } else {
                    json!({})
                };
                self.finalise(idx, Outcome::Sent { event_id });
                self.delayed_mut(idx).timer_resend = self.fault(Fault::SendActionTwice);
                Ok(ok(answer))
            }
            Err(e) => {
                if self.fault(Fault::SendActionFailureFinalises) {
                    self.finalise(idx, Outcome::of_send(Err(e.clone())));
                }
                Err(e)
            }
        }
    }
}

/// `/send` or `/state` with `?org.matrix.msc4140.delay=`: the body is the content.
pub(super) fn schedule_from_query(
    st: &mut State,
    s: &Session,
    cx: &Ctx,
    raw_delay: &str,
    room_id: &str,
    ty: &str,
    state_key: Option<&str>,
) -> Res {
    let delay_ms = st.validate_delay(DelayInput::from_query(raw_delay))?;
    let content = st.check_content(st.delayed_api_body(cx, false)?)?;
    let new = NewDelayed {
        room_id: room_id.into(),
        ev_type: ty.into(),
        state_key: state_key.map(str::to_string),
        content,
        delay_ms,
    };
    st.rate_limit(cx, Limited::Scheduling)?;
    st.schedule(s, new)
}

// ------------------------------------------------------------------------------------------------
// Endpoints: delayed events (unstable prefix)
// ------------------------------------------------------------------------------------------------

pub(super) fn schedule_dedicated(
    st: &mut State,
    cx: &Ctx,
    room_id: &str,
    ty: &str,
    _txn: &str,
) -> Res {
    let s = st.scheduling_session(cx)?;
    let use_cache = !st.fault(Fault::IdempotencyBroken);
    st.with_txn(&s, cx, use_cache, |st| {
        if matches!(cx.body(), Body::Empty) && st.fault(Fault::EmptyBodyServerError) {
            return Err(err(500, "M_UNKNOWN", "Internal server error"));
        }
        let body = st.delayed_api_body(cx, false)?;
        let body = body
            .as_object()
            .ok_or_else(|| bad_json("The body must be a JSON object."))?;
        let delay_ms = match body.get("delay_ms") {
            None if st.fault(Fault::EndpointMissingDelayDefaulted) => 1000,
            None => return Err(missing_param("delay_ms")),
            Some(delay) => st.validate_delay(DelayInput::from_json(delay))?,
        };
        let state_key = match body.get("state_key") {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) => Some(k.clone()),
            Some(other) if st.fault(Fault::EndpointStateKeyCoerced) => Some(other.to_string()),
            Some(_) => return Err(bad_json("state_key must be a string.")),
        };
        let content = match body.get("content") {
            None if st.fault(Fault::EndpointMissingContentDefaulted) => json!({}),
            None => return Err(missing_param("content")),
            Some(content) => st.check_content(content.clone())?,
        };
        let new = NewDelayed {
            room_id: room_id.into(),
            ev_type: ty.into(),
            state_key,
            content,
            delay_ms,
        };
        st.rate_limit(cx, Limited::Scheduling)?;
        st.schedule(&s, new)
    })
}

pub(super) fn manage_split_form(st: &mut State, cx: &Ctx, delay_id: &str, action: &str) -> Res {
    let Some(action) = Action::parse(action) else {
        if st.fault(Fault::SplitUnknownActionAccepted) {
            return Ok(ok(json!({})));
        }
        return Err(unrecognized());
    };
    let requester = st.mgmt_requester(cx)?;
    st.rate_limit(cx, Limited::Management)?;
    st.delayed_api_body(cx, true)?;
    st.manage(requester.as_deref(), delay_id, action)
}

pub(super) fn manage_body_form(st: &mut State, cx: &Ctx, delay_id: &str) -> Res {
    let requester = st.mgmt_requester(cx)?;
    st.rate_limit(cx, Limited::Management)?;
    if matches!(cx.body(), Body::Empty) && st.fault(Fault::EmptyBodyServerError) {
        return Err(err(500, "M_UNKNOWN", "Internal server error"));
    }
    let body = st.delayed_api_body(cx, false)?;
    let action = match body.get("action") {
        None => Err(missing_param("action")),
        Some(Value::String(a)) => {
            Action::parse(a).ok_or_else(|| invalid_param(format!("Unknown action: {a}")))
        }
        Some(_) => Err(invalid_param("action must be a string")),
    };
    match action {
        Ok(action) => st.manage(requester.as_deref(), delay_id, action),
        Err(_) if st.fault(Fault::BodyActionUnvalidated) => Ok(ok(json!({}))),
        Err(e) => Err(e),
    }
}

pub(super) fn list_delayed(st: &mut State, cx: &Ctx) -> Res {
    let viewer = st.lookup_requester(cx)?;
    st.rate_limit(cx, Limited::Lookup)?;
    let leak = st.fault(Fault::ListingLeaksOthers);
    let now = st.now;
    let mut items: Vec<&Delayed> = st
        .delayed
        .iter()
        .filter(|d| leak || d.owner == viewer)
        .filter(|d| {
            st.listed(d)
                || d.listing_view
                    .as_ref()
                    .is_some_and(|(until, _)| *until > now)
        })
        .collect();
    if st.fault(Fault::ListingOrderIgnoresRestart) {
        items.sort_by_key(|d| (d.first_scheduled_at as i64 + d.delay_ms, d.seq));
    } else {
        items.sort_by_key(|d| (d.due(), d.seq));
    }
    if st.fault(Fault::ListingUnsorted) {
        items.reverse();
    }
    let drop_content = st.fault(Fault::ListingDropsContent);
    let items: Vec<Value> = items
        .into_iter()
        .filter_map(|d| match &d.listing_view {
            // Behind: as it was before its last change, if it was listed then.
            Some((until, before)) if *until > now => before.clone(),
            _ => st.listed(d).then(|| {
                let mut o = st.report(d, false);
                let restarted = d.scheduled_at != d.first_scheduled_at;
                if restarted && st.fault(Fault::ListingMarksRestartFinalised) {
                    o["finalised_ts"] = json!(d.scheduled_at);
                }
                o
            }),
        })
        .map(|mut o| {
            if let (true, Some(m)) = (drop_content, o.as_object_mut()) {
                m.remove("content");
            }
            o
        })
        .collect();
    Ok(ok(json!({ "delayed_events": items })))
}

pub(super) fn lookup_delayed(st: &mut State, cx: &Ctx, delay_id: &str) -> Res {
    if st.fault(Fault::SingleLookupMissing) {
        return Err(unrecognized());
    }
    let viewer = st.lookup_requester(cx)?;
    st.rate_limit(cx, Limited::Lookup)?;
    match st.delayed_index.get(delay_id).map(|&i| &st.delayed[i]) {
        Some(d) if d.owner == viewer || st.fault(Fault::SingleLookupLeaks) => {
            let mut item = st.report(d, true);
            if let (true, Some(m)) = (
                st.fault(Fault::SingleLookupDropsContent),
                item.as_object_mut(),
            ) {
                m.remove("content");
            }
            Ok(ok(item))
        }
        None if st.fault(Fault::UnknownDelayIdWrongError) => {
            Err(err(400, "M_UNKNOWN", "Unknown delay_id"))
        }
        _ => Err(not_found("No such delayed event.")),
    }
}
