//! Accounts: discovery (`/versions`, capabilities), registration, login, whoami,
//! deactivation, and the Synapse admin register API.

use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};

use super::*;

impl State {
    /// User-interactive auth with the one stage `m.login.password`, proving `s`'s own password.
    pub(super) fn password_auth(&self, s: &Session, auth: Option<&Value>) -> Result<(), Reply> {
        let challenge = |error: Option<&str>| {
            let mut body = json!({
                "session": random_string(24, ALNUM),
                "flows": [{"stages": ["m.login.password"]}],
                "params": {},
            });
            if let Some(error) = error {
                body["errcode"] = json!("M_FORBIDDEN");
                body["error"] = json!(error);
            }
            ok(body).with_status(401)
        };
        let Some(auth) = auth else {
            return Err(challenge(None));
        };
        if auth.get("type").and_then(Value::as_str) != Some("m.login.password") {
            return Err(challenge(Some("Unsupported auth type")));
        }
        let user = auth
            .get("identifier")
            .and_then(|i| i.get("user"))
            .or_else(|| auth.get("user"))
            .and_then(Value::as_str)
            .map(qualify);
        let password = auth.get("password").and_then(Value::as_str);
        let known = self.users.get(&s.user_id).map(|u| u.password.as_str());
        if user.as_deref() != Some(s.user_id.as_str()) || password.is_none() || password != known {
            return Err(challenge(Some("Invalid username or password")));
        }
        Ok(())
    }

    pub(super) fn create_user(
        &mut self,
        localpart: &str,
        password: &str,
        is_guest: bool,
    ) -> Result<String, Reply> {
        let valid = !localpart.is_empty()
            && localpart
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._=-/".contains(&b));
        if !valid {
            return Err(err(400, "M_INVALID_USERNAME", "Invalid username."));
        }
        let user_id = format!("@{localpart}:{SERVER_NAME}");
        if self.users.contains_key(&user_id) {
            return Err(err(400, "M_USER_IN_USE", "User ID already taken."));
        }
        self.users.insert(
            user_id.clone(),
            User {
                password: password.to_string(),
                is_guest,
                deactivated: false,
            },
        );
        self.user_order.push(user_id.clone());
        Ok(user_id)
    }

    pub(super) fn create_session(&mut self, user_id: &str) -> Session {
        let session = Session {
            token: format!("fake_{}", random_string(32, ALNUM)),
            user_id: user_id.to_string(),
            device_id: random_string(10, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
            is_guest: self.users.get(user_id).map(|u| u.is_guest).unwrap_or(false),
        };
        self.sessions.insert(session.token.clone(), session.clone());
        session
    }

    pub(super) fn login_reply(session: &Session) -> Reply {
        ok(json!({
            "user_id": session.user_id,
            "access_token": session.token,
            "device_id": session.device_id,
            "home_server": SERVER_NAME,
        }))
    }

    /// Deactivates an account: its tokens stop working, it leaves its rooms, and its scheduled
    /// delayed events are cancelled.
    pub(super) fn deactivate_user(&mut self, user_id: &str) {
        self.sessions.retain(|_, s| s.user_id != user_id);
        if let Some(u) = self.users.get_mut(user_id) {
            u.deactivated = true;
        }
        let still_sends = self.fault(Fault::DeactivatedStillSends);
        let scheduled: Vec<usize> = (0..self.delayed.len())
            .filter(|&i| {
                let d = &self.delayed[i];
                d.owner == user_id && matches!(d.outcome, Outcome::Scheduled)
            })
            .collect();
        for idx in scheduled {
            if still_sends {
                self.delayed_mut(idx).unchecked = true;
            } else {
                self.finalise(idx, Outcome::Cancelled);
            }
        }
        let mut rooms: Vec<String> = self
            .rooms
            .iter()
            .filter(|(_, room)| {
                matches!(self.membership(room, user_id), Some((m, _)) if m == "join" || m == "invite")
            })
            .map(|(id, _)| id.clone())
            .collect();
        rooms.sort();
        for room_id in rooms {
            set_membership(
                self,
                &room_id,
                user_id,
                user_id,
                json!({"membership": "leave"}),
            );
        }
        self.log(format!("deactivated {user_id}"));
    }
}

// ------------------------------------------------------------------------------------------------
// Endpoints: discovery
// ------------------------------------------------------------------------------------------------

pub(super) fn versions(st: &State) -> Res {
    let mut unstable = Map::new();
    if !st.fault(Fault::NoVersionsFlag) && st.knows_msc4140() {
        // Synapse says false when the feature is switched off.
        unstable.insert(
            "org.matrix.msc4140".into(),
            json!(!st.opts.delayed_events_off),
        );
        if st.opts.stable_prefix && !st.opts.delayed_events_off {
            unstable.insert("org.matrix.msc4140.stable".into(), json!(true));
        }
    }
    let mut versions = json!({"versions": ["v1.11", "v1.12"], "unstable_features": unstable});
    if st.opts.announce_in_versions {
        versions["net.zemos.msc4383.server"] =
            json!({"name": FakeHomeserver::NAME, "version": FakeHomeserver::VERSION});
    }
    Ok(ok(versions))
}

pub(super) fn capabilities(st: &State, cx: &Ctx) -> Res {
    st.session(cx)?;
    let mut capabilities = json!({
        "m.change_password": {"enabled": true},
        "m.room_versions": {"default": "10", "available": {"10": "stable"}},
    });
    if !st.fault(Fault::CapabilityMissing) && st.knows_msc4140() && !st.opts.delayed_events_off {
        capabilities["org.matrix.msc4140.delayed_events"] = json!({
            "max_delay_ms": st.opts.max_delay_ms,
            "max_scheduled": st.opts.max_scheduled,
        });
    }
    Ok(ok(json!({ "capabilities": capabilities })))
}

// ------------------------------------------------------------------------------------------------
// Endpoints: registration and login
// ------------------------------------------------------------------------------------------------

pub(super) fn admin_nonce(st: &mut State) -> Res {
    let nonce = random_string(32, ALNUM);
    st.nonces.insert(nonce.clone());
    Ok(ok(json!({ "nonce": nonce })))
}

pub(super) fn admin_register(st: &mut State, cx: &Ctx) -> Res {
    let body = cx.object_body(false)?;
    let field = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| missing_param(k))
    };
    let (nonce, username, password, mac) = (
        field("nonce")?,
        field("username")?,
        field("password")?,
        field("mac")?,
    );
    let admin = body.get("admin").and_then(Value::as_bool).unwrap_or(false);
    if !st.nonces.remove(nonce) {
        return Err(err(400, "M_UNKNOWN", "unrecognised nonce"));
    }
    let mut hmac = Hmac::<sha1::Sha1>::new_from_slice(FakeHomeserver::SHARED_SECRET.as_bytes())
        .expect("any key length");
    for (i, part) in [
        nonce,
        username,
        password,
        if admin { "admin" } else { "notadmin" },
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            hmac.update(b"\0");
        }
        hmac.update(part.as_bytes());
    }
    if hex::encode(hmac.finalize().into_bytes()) != mac.to_ascii_lowercase() {
        return Err(forbidden("HMAC incorrect"));
    }
    let user_id = st.create_user(username, password, false)?;
    let session = st.create_session(&user_id);
    Ok(State::login_reply(&session))
}

pub(super) fn register(st: &mut State, cx: &Ctx) -> Res {
    let body = cx.object_body(true)?;
    let guest = if st.opts.guest_kind_in_body_only {
        body.get("kind").and_then(Value::as_str) == Some("guest")
    } else {
        cx.q("kind") == Some("guest")
    };
    if guest {
        st.guest_counter += 1;
        let user_id = st.create_user(&st.guest_counter.to_string(), "", true)?;
        let session = st.create_session(&user_id);
        return Ok(State::login_reply(&session));
    }
    let username = match body.get("username").and_then(Value::as_str) {
        Some(u) => u.to_string(),
        None => format!(
            "user{}",
            random_string(8, b"abcdefghijklmnopqrstuvwxyz0123456789")
        ),
    };
    if st.users.contains_key(&format!("@{username}:{SERVER_NAME}")) {
        return Err(err(400, "M_USER_IN_USE", "User ID already taken."));
    }
    let dummy = body
        .get("auth")
        .and_then(|a| a.get("type"))
        .and_then(Value::as_str)
        == Some("m.login.dummy");
    if !dummy {
        return Err(ok(json!({
            "session": random_string(24, ALNUM),
            "flows": [{"stages": ["m.login.dummy"]}],
            "params": {},
        }))
        .with_status(401));
    }
    let password = body.get("password").and_then(Value::as_str).unwrap_or("");
    let user_id = st.create_user(&username, password, false)?;
    if body.get("inhibit_login").and_then(Value::as_bool) == Some(true) {
        return Ok(ok(json!({ "user_id": user_id })));
    }
    let session = st.create_session(&user_id);
    Ok(State::login_reply(&session))
}

pub(super) fn login(st: &mut State, cx: &Ctx) -> Res {
    let body = cx.object_body(false)?;
    let user = body
        .get("identifier")
        .and_then(|i| i.get("user"))
        .or_else(|| body.get("user"))
        .and_then(Value::as_str)
        .ok_or_else(|| missing_param("identifier"))?;
    let user_id = qualify(user);
    let password = body.get("password").and_then(Value::as_str).unwrap_or("");
    match st.users.get(&user_id) {
        Some(u) if u.password == password && !u.is_guest && !u.deactivated => {}
        _ => return Err(forbidden("Invalid username or password")),
    }
    let session = st.create_session(&user_id);
    Ok(State::login_reply(&session))
}

pub(super) fn deactivate(st: &mut State, cx: &Ctx) -> Res {
    let s = st.session(cx)?;
    let body = cx.object_body(true)?;
    st.password_auth(&s, body.get("auth"))?;
    st.deactivate_user(&s.user_id);
    Ok(ok(json!({"id_server_unbind_result": "no-support"})))
}

pub(super) fn whoami(st: &State, cx: &Ctx) -> Res {
    let s = st.session(cx)?;
    Ok(ok(
        json!({"user_id": s.user_id, "device_id": s.device_id, "is_guest": s.is_guest}),
    ))
}
