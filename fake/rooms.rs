//! Rooms: membership rules, power levels, room creation, membership endpoints, and sending
//! events and state (non-delayed), redactions.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::*;

impl State {
    pub(super) fn room(&self, room_id: &str) -> Result<&Room, Reply> {
        self.rooms
            .get(room_id)
            .ok_or_else(|| not_found("Unknown room."))
    }

    pub(super) fn resolve_room(&self, id_or_alias: &str) -> Result<String, Reply> {
        if id_or_alias.starts_with('#') {
            return self
                .aliases
                .get(id_or_alias)
                .cloned()
                .ok_or_else(|| not_found("Unknown alias."));
        }
        self.room(id_or_alias).map(|_| id_or_alias.to_string())
    }

    pub(super) fn state_event(
        &self,
        room: &Room,
        ev_type: &str,
        state_key: &str,
    ) -> Option<&Event> {
        room.state
            .get(&(ev_type.to_string(), state_key.to_string()))
            .map(|&i| &self.events[i])
    }

    /// The user's membership in the room and the stream position of that membership event.
    pub(super) fn membership(&self, room: &Room, user_id: &str) -> Option<(String, u64)> {
        let ev = self.state_event(room, "m.room.member", user_id)?;
        Some((ev.content.get("membership")?.as_str()?.to_string(), ev.pos))
    }

    pub(super) fn is_joined(&self, room: &Room, user_id: &str) -> bool {
        matches!(self.membership(room, user_id), Some((m, _)) if m == "join")
    }

    pub(super) fn power_levels(&self, room: &Room) -> Value {
        self.state_event(room, "m.room.power_levels", "")
            .map(|e| e.content.clone())
            .unwrap_or(json!({}))
    }

    /// A user's power level; the room creator is all-powerful (as in room version 12), so that
    /// power-level contents written for v12 rooms (creator not listed) work here too.
    pub(super) fn user_level(room: &Room, pl: &Value, user_id: &str) -> i64 {
        if user_id == room.creator {
            return i64::MAX / 2;
        }
        pl.get("users")
            .and_then(|u| int_field(u, user_id))
            .or_else(|| int_field(pl, "users_default"))
            .unwrap_or(0)
    }

    pub(super) fn required_level(pl: &Value, ev_type: &str, is_state: bool) -> i64 {
        let default = if is_state {
            int_field(pl, "state_default").unwrap_or(50)
        } else {
            int_field(pl, "events_default").unwrap_or(0)
        };
        pl.get("events")
            .and_then(|e| int_field(e, ev_type))
            .unwrap_or(default)
    }

    /// May `sender` send this event now? Membership events follow the membership rules (except
    /// when scheduled); other events need the sender in the room, and power levels depending on
    /// `phase`.
    pub(super) fn authorise(
        &self,
        room_id: &str,
        sender: &str,
        ev_type: &str,
        state_key: Option<&str>,
        content: &Value,
        phase: Phase,
    ) -> Result<(), Reply> {
        let room = self.room(room_id)?;
        if let (Some(target), "m.room.member", false) =
            (state_key, ev_type, phase == Phase::Schedule)
        {
            return self.check_membership_change(room, sender, target, content);
        }
        if !self.is_joined(room, sender) && !self.left_member_still_sends(room, sender, phase) {
            return Err(forbidden(format!("User {sender} not in room {room_id}")));
        }
        let is_state = state_key.is_some();
        let check_levels = match phase {
            Phase::Direct => true,
            Phase::Schedule => self.fault(Fault::PowerLevelsAtSchedule),
            Phase::Timer => !self.fault(Fault::PowerLevelsAtSchedule),
            Phase::SendAction => {
                !self.fault(Fault::PowerLevelsAtSchedule)
                    && !self.fault(Fault::SendActionIgnoresPermissions)
            }
        };
        if check_levels {
            self.check_levels(room, sender, ev_type, is_state, content)?;
        }
        Ok(())
    }

    /// [`Fault::LeftMemberStillSends`]: the timer ignores that the sender left or was kicked.
    pub(super) fn left_member_still_sends(&self, room: &Room, sender: &str, phase: Phase) -> bool {
        let left = matches!(self.membership(room, sender), Some((m, _)) if m == "leave");
        left && phase == Phase::Timer && self.fault(Fault::LeftMemberStillSends)
    }

    pub(super) fn guest_can_join(&self, room: &Room) -> bool {
        self.state_event(room, "m.room.guest_access", "")
            .and_then(|e| e.content.get("guest_access"))
            .and_then(Value::as_str)
            == Some("can_join")
    }

    /// The authorisation rules for `m.room.member` events (room versions 1-12, without knocks
    /// and third-party invites); guests may only join rooms whose guest access is `can_join`.
    pub(super) fn check_membership_change(
        &self,
        room: &Room,
        sender: &str,
        target: &str,
        content: &Value,
    ) -> Result<(), Reply> {
        let current = |user: &str| self.membership(room, user).map(|(m, _)| m);
        let (sender_now, target_now) = (current(sender), current(target));
        let pl = self.power_levels(room);
        let level = |user: &str| Self::user_level(room, &pl, user);
        let needed = |action: &str, default: i64| int_field(&pl, action).unwrap_or(default);
        let sender_joined = sender_now.as_deref() == Some("join");
        let refuse = |msg: &str| Err(forbidden(msg));
        match content.get("membership").and_then(Value::as_str) {
            Some("join") => {
                let public = self
                    .state_event(room, "m.room.join_rules", "")
                    .and_then(|e| e.content.get("join_rule"))
                    .and_then(Value::as_str)
                    == Some("public");
                let guest = self.users.get(sender).is_some_and(|u| u.is_guest);
                if sender != target {
                    refuse("You cannot join on behalf of another user.")
                } else if target_now.as_deref() == Some("ban") {
                    refuse("You are banned from this room.")
                } else if guest && !self.guest_can_join(room) {
                    refuse("Guest access not allowed")
                } else if public || matches!(target_now.as_deref(), Some("join" | "invite")) {
                    Ok(())
                } else {
                    refuse("You are not invited to this room.")
                }
            }
            Some("invite") => {
                if !sender_joined {
                    refuse("You are not in this room.")
                } else if matches!(target_now.as_deref(), Some("join" | "ban")) {
                    refuse("The user is already in the room or banned.")
                } else if level(sender) < needed("invite", 0) {
                    refuse("You don't have permission to invite users")
                } else {
                    Ok(())
                }
            }
            Some("leave") if sender == target => match sender_now.as_deref() {
                Some("join" | "invite") => Ok(()),
                _ => refuse("You are not in this room."),
            },
            Some("leave") => {
                let unban = target_now.as_deref() == Some("ban");
                if !sender_joined {
                    refuse("You are not in this room.")
                } else if unban && level(sender) < needed("ban", 50) {
                    refuse("You don't have permission to unban this user")
                } else if level(sender) < needed("kick", 50) || level(target) >= level(sender) {
                    refuse("You don't have permission to kick this user")
                } else {
                    Ok(())
                }
            }
            Some("ban") => {
                if !sender_joined {
                    refuse("You are not in this room.")
                } else if level(sender) < needed("ban", 50) || level(target) >= level(sender) {
                    refuse("You don't have permission to ban this user")
                } else {
                    Ok(())
                }
            }
            _ => Err(bad_json("Unknown membership.")),
        }
    }

    pub(super) fn check_levels(
        &self,
        room: &Room,
        sender: &str,
        ev_type: &str,
        is_state: bool,
        content: &Value,
    ) -> Result<(), Reply> {
        let pl = self.power_levels(room);
        let level = Self::user_level(room, &pl, sender);
        let required = Self::required_level(&pl, ev_type, is_state);
        if level < required {
            return Err(forbidden(format!(
                "You don't have permission to post {ev_type} events (level {level} < {required})"
            )));
        }
        if ev_type == "m.room.power_levels" && is_state {
            let empty = Map::new();
            let old = pl.get("users").and_then(Value::as_object).unwrap_or(&empty);
            let new = content
                .get("users")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            let default = int_field(&pl, "users_default").unwrap_or(0);
            for user in old.keys().chain(new.keys()) {
                let before = int_field(&pl["users"], user).unwrap_or(default);
                let after = content
                    .get("users")
                    .and_then(|u| int_field(u, user))
                    .unwrap_or(default);
                if before != after && ((user != sender && before >= level) || after > level) {
                    return Err(forbidden(format!(
                        "You don't have permission to change the level of {user}"
                    )));
                }
            }
        }
        if ev_type == "m.room.redaction" {
            let target = content
                .get("redacts")
                .and_then(Value::as_str)
                .and_then(|id| self.event_index.get(id));
            if let Some(&t) = target {
                if self.events[t].sender != sender && level < int_field(&pl, "redact").unwrap_or(50)
                {
                    return Err(forbidden(
                        "You don't have permission to redact events of others",
                    ));
                }
            }
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------------
// Endpoints: rooms and membership
// ------------------------------------------------------------------------------------------------

pub(super) fn default_power_levels(creator: &str) -> Value {
    json!({
        "users": {creator: 100},
        "users_default": 0,
        "events": {
            "m.room.name": 50,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50,
            "m.room.avatar": 50,
            "m.room.tombstone": 100,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
            // MatrixRTC call membership, open to every member (as Element sets up call rooms).
            "org.matrix.msc3401.call.member": 0,
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 0,
    })
}

pub(super) fn create_room(st: &mut State, cx: &Ctx) -> Res {
    let s = st.session(cx)?;
    if s.is_guest {
        return Err(guest_forbidden());
    }
    let body = cx.object_body(true)?;
    let alias = match body.get("room_alias_name").and_then(Value::as_str) {
        Some(name) => {
            let alias = format!("#{name}:{SERVER_NAME}");
            if st.aliases.contains_key(&alias) {
                return Err(err(400, "M_ROOM_IN_USE", "Room alias already taken"));
            }
            Some(alias)
        }
        None => None,
    };
    let public = match body.get("preset").and_then(Value::as_str) {
        Some(p) => p == "public_chat",
        None => body.get("visibility").and_then(Value::as_str) == Some("public"),
    };
    let room_id = format!("!{}:{SERVER_NAME}", random_string(18, ALNUM));
    st.rooms.insert(
        room_id.clone(),
        Room {
            creator: s.user_id.clone(),
            state: HashMap::new(),
            timeline: Vec::new(),
        },
    );
    if let Some(alias) = &alias {
        st.aliases.insert(alias.clone(), room_id.clone());
    }

    let mut power_levels = default_power_levels(&s.user_id);
    if let Some(Value::Object(over)) = body.get("power_level_content_override") {
        for (k, v) in over {
            power_levels[k] = v.clone();
        }
    }
    let mut initial: Vec<(String, String, Value)> = vec![
        (
            "m.room.create".into(),
            "".into(),
            json!({"creator": s.user_id, "room_version": "10"}),
        ),
        (
            "m.room.member".into(),
            s.user_id.clone(),
            json!({"membership": "join"}),
        ),
        ("m.room.power_levels".into(), "".into(), power_levels),
        (
            "m.room.join_rules".into(),
            "".into(),
            json!({"join_rule": if public { "public" } else { "invite" }}),
        ),
        (
            "m.room.history_visibility".into(),
            "".into(),
            json!({"history_visibility": "shared"}),
        ),
    ];
    for item in body
        .get("initial_state")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(ty), Some(content)) = (
            item.get("type").and_then(Value::as_str),
            item.get("content"),
        ) {
            let key = item.get("state_key").and_then(Value::as_str).unwrap_or("");
            initial.push((ty.into(), key.into(), content.clone()));
        }
    }
    for (field, ty) in [("name", "m.room.name"), ("topic", "m.room.topic")] {
        if let Some(v) = body.get(field).and_then(Value::as_str) {
            initial.push((ty.into(), "".into(), json!({ field: v })));
        }
    }
    if let Some(alias) = &alias {
        initial.push((
            "m.room.canonical_alias".into(),
            "".into(),
            json!({"alias": alias}),
        ));
    }
    for invitee in body
        .get("invite")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        initial.push((
            "m.room.member".into(),
            invitee.into(),
            json!({"membership": "invite"}),
        ));
    }
    for (ty, key, content) in initial {
        let draft = Draft {
            room_id: &room_id,
            sender: &s.user_id,
            ev_type: &ty,
            state_key: Some(key),
            content,
            ts: st.now,
            delay_id: None,
        };
        st.append_event(draft);
    }
    Ok(ok(json!({ "room_id": room_id })))
}

pub(super) fn join(st: &mut State, cx: &Ctx, id_or_alias: &str) -> Res {
    let s = st.session(cx)?;
    let room_id = st.resolve_room(id_or_alias)?;
    if !st.is_joined(st.room(&room_id)?, &s.user_id) {
        change_membership(st, &s, &room_id, &s.user_id, json!({"membership": "join"}))?;
    }
    Ok(ok(json!({ "room_id": room_id })))
}

/// Appends a membership event without checks (server-generated changes such as deactivation).
pub(super) fn set_membership(
    st: &mut State,
    room_id: &str,
    sender: &str,
    target: &str,
    content: Value,
) {
    let state_key = Some(target.to_string());
    st.append_event(Draft {
        room_id,
        sender,
        ev_type: "m.room.member",
        state_key,
        content,
        ts: st.now,
        delay_id: None,
    });
}

/// A membership change requested by `s`, under the membership rules.
pub(super) fn change_membership(
    st: &mut State,
    s: &Session,
    room_id: &str,
    target: &str,
    content: Value,
) -> Res {
    send_now(st, s, room_id, "m.room.member", Some(target), content)?;
    Ok(ok(json!({})))
}

/// Body field `user_id` of invite and kick, and the membership content to send.
pub(super) fn target_user(cx: &Ctx, membership: &str) -> Result<(String, Value), Reply> {
    let body = cx.object_body(false)?;
    let user = body
        .get("user_id")
        .and_then(Value::as_str)
        .ok_or_else(|| missing_param("user_id"))?
        .to_string();
    let mut content = json!({ "membership": membership });
    if let Some(reason) = body.get("reason") {
        content["reason"] = reason.clone();
    }
    Ok((user, content))
}

pub(super) fn invite(st: &mut State, cx: &Ctx, room_id: &str) -> Res {
    let s = st.session(cx)?;
    let (target, content) = target_user(cx, "invite")?;
    change_membership(st, &s, room_id, &target, content)
}

pub(super) fn leave(st: &mut State, cx: &Ctx, room_id: &str) -> Res {
    let s = st.session(cx)?;
    change_membership(st, &s, room_id, &s.user_id, json!({"membership": "leave"}))
}

pub(super) fn kick(st: &mut State, cx: &Ctx, room_id: &str) -> Res {
    let s = st.session(cx)?;
    let (target, content) = target_user(cx, "leave")?;
    change_membership(st, &s, room_id, &target, content)
}

// ------------------------------------------------------------------------------------------------
// Endpoints: events and state
// ------------------------------------------------------------------------------------------------

/// Sends a non-delayed event on behalf of `s`.
pub(super) fn send_now(
    st: &mut State,
    s: &Session,
    room_id: &str,
    ty: &str,
    state_key: Option<&str>,
    content: Value,
) -> Res {
    st.authorise(room_id, &s.user_id, ty, state_key, &content, Phase::Direct)?;
    let state_key = state_key.map(str::to_string);
    let draft = Draft {
        room_id,
        sender: &s.user_id,
        ev_type: ty,
        state_key,
        content,
        ts: st.now,
        delay_id: None,
    };
    let event_id = st.append_event(draft);
    Ok(ok(json!({ "event_id": event_id })))
}

pub(super) fn send(st: &mut State, cx: &Ctx, room_id: &str, ty: &str, _txn: &str) -> Res {
    let delay = st.delay_param(cx);
    let s = match delay {
        Some(_) => st.scheduling_session(cx)?,
        None => st.session(cx)?,
    };
    let use_cache = !(delay.is_some() && st.fault(Fault::IdempotencyBroken));
    st.with_txn(&s, cx, use_cache, |st| match delay {
        Some(raw) => schedule_from_query(st, &s, cx, raw, room_id, ty, None),
        None => send_now(
            st,
            &s,
            room_id,
            ty,
            None,
            Value::Object(cx.object_body(false)?),
        ),
    })
}

pub(super) fn put_state(st: &mut State, cx: &Ctx, room_id: &str, ty: &str, key: &str) -> Res {
    let delay = st.delay_param(cx);
    let s = match delay {
        Some(_) => st.scheduling_session(cx)?,
        None => st.session(cx)?,
    };
    match delay {
        Some(raw) => schedule_from_query(st, &s, cx, raw, room_id, ty, Some(key)),
        None => send_now(
            st,
            &s,
            room_id,
            ty,
            Some(key),
            Value::Object(cx.object_body(false)?),
        ),
    }
}

pub(super) fn redact(st: &mut State, cx: &Ctx, room_id: &str, event_id: &str) -> Res {
    let s = st.session(cx)?;
    st.with_txn(&s, cx, true, |st| {
        let body = cx.object_body(true)?;
        st.room(room_id)?;
        match st.event_index.get(event_id) {
            Some(&i) if st.events[i].room_id == room_id => {}
            _ => return Err(not_found("Unknown event.")),
        }
        let mut content = json!({ "redacts": event_id });
        if let Some(reason) = body.get("reason") {
            content["reason"] = reason.clone();
        }
        send_now(st, &s, room_id, "m.room.redaction", None, content)
    })
}
