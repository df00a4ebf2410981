//! The timeline: appending events, redactions, rendering for a viewer, and the reading
//! endpoints (`/sync`, `/messages`, single event, state).

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::*;

pub(super) const SYNC_POLL: Duration = Duration::from_millis(200);

/// An event about to be appended to a room's timeline.
pub(super) struct Draft<'a> {
    pub(super) room_id: &'a str,
    pub(super) sender: &'a str,
    pub(super) ev_type: &'a str,
    pub(super) state_key: Option<String>,
    pub(super) content: Value,
    pub(super) ts: u64,
    /// Set when the event is sent from a delayed event.
    pub(super) delay_id: Option<String>,
}

/// Where an event is being served; [`Fault::UnsignedMissingInMessages`] distinguishes them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Surface {
    Sync,
    Messages,
    /// `GET /rooms/{roomId}/event/{eventId}` and `/context/{eventId}`.
    EventLookup,
    Other,
}

impl State {
    /// Appends an event to a room's timeline (no checks), updating state and applying redactions.
    pub(super) fn append_event(&mut self, draft: Draft) -> String {
        let Draft {
            room_id,
            sender,
            ev_type,
            state_key,
            content,
            ts,
            delay_id,
        } = draft;
        let idx = self.events.len();
        let event_id = format!("${}", random_string(43, URL_SAFE));
        self.events.push(Event {
            pos: idx as u64 + 1,
            event_id: event_id.clone(),
            room_id: room_id.to_string(),
            ev_type: ev_type.to_string(),
            sender: sender.to_string(),
            state_key: state_key.clone(),
            content,
            origin_server_ts: ts,
            redacted_by: None,
            delay_id: delay_id.clone(),
        });
        self.event_index.insert(event_id.clone(), idx);
        let room = self
            .rooms
            .get_mut(room_id)
            .expect("append_event into a known room");
        room.timeline.push(idx);
        if let Some(sk) = &state_key {
            room.state.insert((ev_type.to_string(), sk.clone()), idx);
        }
        let lag = if self.fault(Fault::StateOverwriteLate) {
            Some(OVERWRITE_LAG_MS)
        } else if self.fault(Fault::StateOverwriteProcessedLate) {
            Some(BACKGROUND_LAG_MS)
        } else {
            None
        };
        match lag {
            Some(lag) => self.late_overwrites.push((self.now + lag, idx)),
            None => self.overwrite_by(idx),
        }
        let ignored = delay_id.is_some() && self.fault(Fault::DelayedRedactionIgnored);
        if ev_type == "m.room.redaction" && !ignored {
            self.apply_redaction(idx);
        }
        event_id
    }

    pub(super) fn apply_redaction(&mut self, redaction: usize) {
        let (room_id, target) = {
            let r = &self.events[redaction];
            (
                r.room_id.clone(),
                r.content
                    .get("redacts")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            )
        };
        let Some(&t) = target.as_ref().and_then(|id| self.event_index.get(id)) else {
            return;
        };
        let ev = &mut self.events[t];
        if ev.room_id != room_id {
            return;
        }
        let keep: &[&str] = match ev.ev_type.as_str() {
            "m.room.member" => &["membership"],
            "m.room.create" => &["creator", "room_version"],
            "m.room.join_rules" => &["join_rule"],
            "m.room.history_visibility" => &["history_visibility"],
            "m.room.power_levels" => &[
                "ban",
                "events",
                "events_default",
                "kick",
                "redact",
                "state_default",
                "users",
                "users_default",
                "invite",
            ],
            _ => &[],
        };
        let kept: Map<String, Value> = match &ev.content {
            Value::Object(m) => m
                .iter()
                .filter(|(k, _)| keep.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            _ => Map::new(),
        };
        ev.content = Value::Object(kept);
        ev.redacted_by = Some(redaction);
    }

    /// An event as a client sees it.
    pub(super) fn render(
        &self,
        idx: usize,
        viewer: &str,
        surface: Surface,
        with_room_id: bool,
    ) -> Value {
        let ev = &self.events[idx];
        let mut unsigned = Map::new();
        if let Some(delay_id) = &ev.delay_id {
            // Where a fault hides it from the sender too.
            let hidden = self.fault(Fault::UnsignedMissing)
                || (self.fault(Fault::UnsignedMissingInMessages) && surface == Surface::Messages)
                || (self.fault(Fault::UnsignedMissingOnEventLookups)
                    && surface == Surface::EventLookup)
                || (self.fault(Fault::UnsignedMissingOnState) && ev.state_key.is_some())
                || (self.fault(Fault::UnsignedMissingAfterSendAction)
                    && self.sent_by_action.contains(&ev.event_id));
            let show = if hidden {
                false
            } else {
                ev.sender == viewer || self.fault(Fault::UnsignedLeaked)
            };
            if show {
                unsigned.insert(UNSIGNED_DELAY_ID.into(), json!(delay_id));
                if self.serves_stable() {
                    unsigned.insert("delay_id".into(), json!(delay_id));
                }
            }
        }
        if let Some(r) = ev.redacted_by {
            unsigned.insert(
                "redacted_because".into(),
                self.render(r, viewer, surface, with_room_id),
            );
        }
        let mut o = json!({
            "event_id": ev.event_id,
            "type": ev.ev_type,
            "sender": ev.sender,
            "content": ev.content,
            "origin_server_ts": ev.origin_server_ts,
            "unsigned": unsigned,
        });
        if let Some(sk) = &ev.state_key {
            o["state_key"] = json!(sk);
        }
        if ev.ev_type == "m.room.redaction" {
            if let Some(r) = ev.content.get("redacts") {
                o["redacts"] = r.clone();
            }
        }
        if with_room_id {
            o["room_id"] = json!(ev.room_id);
        }
        o
    }
}

/// Readers of a room: joined users see everything; users who left see up to their leave.
pub(super) fn visible_until(st: &State, room: &Room, user_id: &str) -> Result<u64, Reply> {
    match st.membership(room, user_id) {
        Some((m, _)) if m == "join" => Ok(u64::MAX),
        Some((m, pos)) if m == "leave" || m == "ban" => Ok(pos),
        _ => Err(forbidden("You are not in this room.")),
    }
}

pub(super) fn get_state(st: &State, cx: &Ctx, room_id: &str, ty: &str, key: &str) -> Res {
    let s = st.session(cx)?;
    let room = st.room(room_id)?;
    visible_until(st, room, &s.user_id)?;
    let Some(&idx) = room.state.get(&(ty.to_string(), key.to_string())) else {
        return Err(not_found("Event not found."));
    };
    if cx.q("format") == Some("event") {
        return Ok(ok(st.render(idx, &s.user_id, Surface::Other, true)));
    }
    Ok(ok(st.events[idx].content.clone()))
}

pub(super) fn get_all_state(st: &State, cx: &Ctx, room_id: &str) -> Res {
    let s = st.session(cx)?;
    let room = st.room(room_id)?;
    visible_until(st, room, &s.user_id)?;
    let mut idxs: Vec<usize> = room.state.values().copied().collect();
    idxs.sort();
    Ok(ok(Value::Array(
        idxs.into_iter()
            .map(|i| st.render(i, &s.user_id, Surface::Other, true))
            .collect(),
    )))
}

pub(super) fn get_event(st: &State, cx: &Ctx, room_id: &str, event_id: &str) -> Res {
    let s = st.session(cx)?;
    let room = st.room(room_id)?;
    let until = visible_until(st, room, &s.user_id)?;
    match st.event_index.get(event_id) {
        Some(&i) if st.events[i].room_id == room_id && st.events[i].pos <= until => {
            Ok(ok(st.render(i, &s.user_id, Surface::EventLookup, true)))
        }
        _ => Err(not_found("Event not found.")),
    }
}

/// `GET /rooms/{roomId}/context/{eventId}`: the event, and up to `limit` events around it (half
/// before, as Synapse splits it), without state.
pub(super) fn get_context(st: &State, cx: &Ctx, room_id: &str, event_id: &str) -> Res {
    let s = st.session(cx)?;
    let room = st.room(room_id)?;
    let until = visible_until(st, room, &s.user_id)?;
    let limit = limit_param(cx, 100);
    let visible: Vec<usize> = room
        .timeline
        .iter()
        .copied()
        .filter(|&i| st.events[i].pos <= until)
        .collect();
    let Some(at) = st
        .event_index
        .get(event_id)
        .and_then(|idx| visible.iter().position(|i| i == idx))
    else {
        return Err(not_found("Event not found."));
    };
    let render = |i: usize| st.render(i, &s.user_id, Surface::EventLookup, true);
    let before_count = limit / 2;
    let before: Vec<Value> = visible[..at]
        .iter()
        .rev()
        .take(before_count)
        .map(|&i| render(i))
        .collect();
    let after: Vec<Value> = visible[at + 1..]
        .iter()
        .take(limit - before_count)
        .map(|&i| render(i))
        .collect();
    let pos = st.events[visible[at]].pos;
    Ok(ok(json!({
        "event": render(visible[at]),
        "events_before": before,
        "events_after": after,
        "state": [],
        "start": pos.saturating_sub(1).to_string(),
        "end": pos.to_string(),
    })))
}

/// The `limit` query parameter of the reading endpoints: 10 when absent or unreadable, at most
/// `max`.
fn limit_param(cx: &Ctx, max: usize) -> usize {
    cx.q("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(10)
        .min(max)
}

pub(super) fn parse_token(raw: Option<&str>, name: &str) -> Result<Option<u64>, Reply> {
    raw.map(|t| {
        t.parse::<u64>()
            .map_err(|_| invalid_param(format!("Invalid {name} token")))
    })
    .transpose()
}

pub(super) fn messages(st: &State, cx: &Ctx, room_id: &str) -> Res {
    let s = st.session(cx)?;
    let room = st.room(room_id)?;
    let until = visible_until(st, room, &s.user_id)?;
    let limit = limit_param(cx, 1000);
    let from = parse_token(cx.q("from"), "from")?;
    let backwards = cx.q("dir") != Some("f");
    let visible = room
        .timeline
        .iter()
        .copied()
        .filter(|&i| st.events[i].pos <= until);
    let (chunk, start): (Vec<usize>, u64) = if backwards {
        let from = from.unwrap_or(st.head());
        (
            visible
                .filter(|&i| st.events[i].pos <= from)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .take(limit)
                .collect(),
            from,
        )
    } else {
        let from = from.unwrap_or(0);
        (
            visible
                .filter(|&i| st.events[i].pos > from)
                .take(limit)
                .collect(),
            from,
        )
    };
    let mut body = json!({
        "chunk": chunk.iter().map(|&i| st.render(i, &s.user_id, Surface::Messages, true)).collect::<Vec<_>>(),
        "start": start.to_string(),
    });
    if let Some(&last) = chunk.last() {
        let pos = st.events[last].pos;
        if !backwards {
            body["end"] = json!(pos.to_string());
        } else if chunk.len() == limit {
            body["end"] = json!((pos - 1).to_string());
        }
    }
    Ok(ok(body))
}

pub(super) fn sync(st: &State, cx: &Ctx) -> Res {
    let s = st.session(cx)?;
    let since = parse_token(cx.q("since"), "since")?;
    let timeout = cx
        .q("timeout")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(0);
    let after = since.unwrap_or(0);
    let render_all = |idxs: &mut dyn Iterator<Item = usize>| -> Vec<Value> {
        idxs.map(|i| st.render(i, &s.user_id, Surface::Sync, false))
            .collect()
    };
    let (mut join, mut leave, mut invite) = (Map::new(), Map::new(), Map::new());
    for (room_id, room) in &st.rooms {
        let Some((membership, mpos)) = st.membership(room, &s.user_id) else {
            continue;
        };
        let newer = |until: u64| {
            room.timeline
                .iter()
                .copied()
                .filter(move |&i| st.events[i].pos > after && st.events[i].pos <= until)
        };
        match membership.as_str() {
            "join" => {
                let timeline = render_all(&mut newer(u64::MAX));
                // A room joined since the token: give the state that precedes the timeline.
                let state = if since.is_some() && mpos > after {
                    let mut old: Vec<usize> = room
                        .state
                        .values()
                        .copied()
                        .filter(|&i| st.events[i].pos <= after)
                        .collect();
                    old.sort();
                    render_all(&mut old.into_iter())
                } else {
                    Vec::new()
                };
                if !timeline.is_empty() || !state.is_empty() {
                    join.insert(room_id.clone(), json!({"timeline": {"events": timeline, "limited": false, "prev_batch": after.to_string()}, "state": {"events": state}}));
                }
            }
            "leave" | "ban" if since.is_some() && mpos > after => {
                let timeline = render_all(&mut newer(mpos));
                leave.insert(room_id.clone(), json!({"timeline": {"events": timeline, "limited": false}, "state": {"events": []}}));
            }
            "invite" if mpos > after => {
                let stripped: Vec<Value> = [("m.room.create", ""), ("m.room.join_rules", ""), ("m.room.name", ""), ("m.room.member", s.user_id.as_str())]
                    .iter()
                    .filter_map(|(ty, key)| st.state_event(room, ty, key))
                    .map(|e| json!({"type": e.ev_type, "state_key": e.state_key, "sender": e.sender, "content": e.content}))
                    .collect();
                invite.insert(
                    room_id.clone(),
                    json!({"invite_state": {"events": stripped}}),
                );
            }
            _ => {}
        }
    }
    let nothing_new = join.is_empty() && leave.is_empty() && invite.is_empty();
    let mut reply = ok(json!({
        "next_batch": st.head().to_string(),
        "rooms": {"join": join, "leave": leave, "invite": invite},
    }));
    if nothing_new && since.is_some() && timeout > 0 {
        reply.delay = Some(SYNC_POLL.min(Duration::from_millis(timeout)));
    }
    Ok(reply)
}
