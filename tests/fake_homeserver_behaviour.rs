//! Checks the fake homeserver's own behaviour directly over HTTP: the restartable target, rate
//! limits, guests, deactivation, state overwrite, permissions at send time, the per-user limit,
//! delay_ids, redactions and mentions, MatrixRTC membership; and that each of the corresponding
//! faults breaks what it says. Short delays, lazy timer: a request after an event's due time
//! sends it, so "after due" checks only need a sleep past the due time.

mod support;

use dec_harness::client::seg;
use dec_harness::homeserver::{Registration, Target};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::fake_homeserver::{FakeHomeserver, FakeOptions, Fault};
use support::fake_target::FakeTarget;

const PREFIX: &str = "/_matrix/client/unstable/org.matrix.msc4140";
const DELAY_PARAM: &str = "org.matrix.msc4140.delay";
const CALL_MEMBER: &str = "org.matrix.msc3401.call.member";

// ------------------------------------------------------------------------------------------------
// A tiny client
// ------------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Resp {
    status: u16,
    body: Value,
    retry_after: Option<String>,
}

impl Resp {
    fn errcode(&self) -> &str {
        self.body["errcode"].as_str().unwrap_or("")
    }
}

#[derive(Clone, Debug)]
struct U {
    id: String,
    token: String,
    password: String,
}

struct Hs {
    base: String,
    http: reqwest::Client,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

fn txn() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("t{}_{}", now_ms(), N.fetch_add(1, Ordering::Relaxed))
}

fn opts(faults: &[Fault]) -> FakeOptions {
    FakeOptions {
        faults: faults.iter().copied().collect(),
        ..FakeOptions::default()
    }
}

fn text(body: &str) -> Value {
    json!({"msgtype": "m.text", "body": body})
}

impl Hs {
    async fn start(options: FakeOptions) -> (FakeHomeserver, Hs) {
        let fake = FakeHomeserver::start(options).await;
        let hs = Hs::at(&fake.uri());
        (fake, hs)
    }

    fn at(base: &str) -> Hs {
        Hs {
            base: base.to_string(),
            http: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("the fake answers");
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let body = resp.json().await.unwrap_or(Value::Null);
        Resp {
            status,
            body,
            retry_after,
        }
    }

    async fn get(&self, u: &U, path: &str) -> Resp {
        self.call(Method::GET, path, Some(&u.token), None).await
    }
    async fn post(&self, u: &U, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(&u.token), Some(body))
            .await
    }
    async fn put(&self, u: &U, path: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Some(&u.token), Some(body))
            .await
    }

    /// Open registration with the dummy stage, keeping the password.
    async fn register(&self, name: &str) -> U {
        let password = format!("pw-{name}");
        let localpart = format!("{name}{}", txn().to_lowercase());
        let mut body = json!({"username": localpart, "password": password});
        let first = self
            .call(
                Method::POST,
                "/_matrix/client/v3/register",
                None,
                Some(body.clone()),
            )
            .await;
        assert_eq!(first.status, 401, "{first:?}");
        body["auth"] = json!({"type": "m.login.dummy", "session": first.body["session"]});
        let r = self
            .call(
                Method::POST,
                "/_matrix/client/v3/register",
                None,
                Some(body),
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        user_from(&r, &password)
    }

    /// Synapse's shared-secret admin registration.
    async fn register_with_secret(&self, name: &str) -> U {
        let password = format!("pw-{name}");
        let localpart = format!("{name}{}", txn().to_lowercase());
        let nonce = self
            .call(Method::GET, "/_synapse/admin/v1/register", None, None)
            .await
            .body["nonce"]
            .as_str()
            .unwrap()
            .to_string();
        let mut mac =
            Hmac::<sha1::Sha1>::new_from_slice(FakeHomeserver::SHARED_SECRET.as_bytes()).unwrap();
        mac.update(format!("{nonce}\0{localpart}\0{password}\0notadmin").as_bytes());
        let mac = hex::encode(mac.finalize().into_bytes());
        let body = json!({"nonce": nonce, "username": localpart, "password": password, "admin": false, "mac": mac});
        let r = self
            .call(
                Method::POST,
                "/_synapse/admin/v1/register",
                None,
                Some(body),
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        user_from(&r, &password)
    }

    async fn guest(&self) -> U {
        let r = self
            .call(
                Method::POST,
                "/_matrix/client/v3/register?kind=guest",
                None,
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.body["device_id"].is_string(), "{r:?}");
        user_from(&r, "")
    }

    /// A public room created by `owner` with `extra` createRoom fields, joined by `members`.
    async fn room(&self, owner: &U, members: &[&U], extra: Value) -> String {
        let mut body = json!({"preset": "public_chat"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = self
            .post(owner, "/_matrix/client/v3/createRoom", body)
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        let room = r.body["room_id"].as_str().unwrap().to_string();
        for m in members {
            let j = self.join(m, &room).await;
            assert_eq!(j.status, 200, "{j:?}");
        }
        room
    }

    async fn join(&self, u: &U, room: &str) -> Resp {
        self.post(
            u,
            &format!("/_matrix/client/v3/join/{}", seg(room)),
            json!({}),
        )
        .await
    }

    async fn send(&self, u: &U, room: &str, ty: &str, content: Value) -> Resp {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/{}/{}",
            seg(room),
            seg(ty),
            txn()
        );
        self.put(u, &path, content).await
    }

    async fn put_state(&self, u: &U, room: &str, ty: &str, key: &str, content: Value) -> Resp {
        self.put(u, &state_path(room, ty, key), content).await
    }

    async fn state(&self, u: &U, room: &str, ty: &str, key: &str) -> Resp {
        self.get(u, &format!("{}?format=event", state_path(room, ty, key)))
            .await
    }

    async fn set_level(&self, admin: &U, room: &str, user: &str, level: i64) {
        let mut pl = self
            .state(admin, room, "m.room.power_levels", "")
            .await
            .body["content"]
            .clone();
        pl["users"][user] = json!(level);
        let r = self
            .put_state(admin, room, "m.room.power_levels", "", pl)
            .await;
        assert_eq!(r.status, 200, "{r:?}");
    }

    /// Schedules with the dedicated endpoint.
    async fn schedule(
        &self,
        u: &U,
        room: &str,
        ty: &str,
        state_key: Option<&str>,
        content: Value,
        delay_ms: u64,
    ) -> Resp {
        let path = format!(
            "{PREFIX}/rooms/{}/delayed_event/{}/{}",
            seg(room),
            seg(ty),
            txn()
        );
        let mut body = json!({"delay_ms": delay_ms, "content": content});
        if let Some(k) = state_key {
            body["state_key"] = json!(k);
        }
        self.put(u, &path, body).await
    }

    /// Schedules with `?org.matrix.msc4140.delay=` on `/send` or `/state`.
    async fn schedule_query(
        &self,
        u: &U,
        room: &str,
        ty: &str,
        state_key: Option<&str>,
        content: Value,
        delay_ms: u64,
    ) -> Resp {
        let path = match state_key {
            Some(k) => state_path(room, ty, k),
            None => format!(
                "/_matrix/client/v3/rooms/{}/send/{}/{}",
                seg(room),
                seg(ty),
                txn()
            ),
        };
        self.put(u, &format!("{path}?{DELAY_PARAM}={delay_ms}"), content)
            .await
    }

    async fn delayed_message(&self, u: &U, room: &str, body: &str, delay_ms: u64) -> String {
        let r = self
            .schedule(u, room, "m.room.message", None, text(body), delay_ms)
            .await;
        delay_id(&r)
    }

    async fn delayed_state(&self, u: &U, room: &str, ty: &str, key: &str, delay_ms: u64) -> String {
        let r = self
            .schedule(u, room, ty, Some(key), json!({"v": key}), delay_ms)
            .await;
        delay_id(&r)
    }

    async fn manage(&self, u: &U, id: &str, action: &str) -> Resp {
        self.post(
            u,
            &format!("{PREFIX}/delayed_events/{}/{action}", seg(id)),
            json!({}),
        )
        .await
    }

    async fn manage_body(&self, u: &U, id: &str, action: &str) -> Resp {
        self.post(
            u,
            &format!("{PREFIX}/delayed_events/{}", seg(id)),
            json!({ "action": action }),
        )
        .await
    }

    async fn lookup(&self, u: &U, id: &str) -> Resp {
        self.get(u, &format!("{PREFIX}/delayed_events/{}", seg(id)))
            .await
    }

    async fn list_raw(&self, u: &U) -> Resp {
        self.get(u, &format!("{PREFIX}/delayed_events")).await
    }

    /// delay_ids in the user's listing, in its order.
    async fn listing(&self, u: &U) -> Vec<String> {
        let r = self.list_raw(u).await;
        assert_eq!(r.status, 200, "{r:?}");
        r.body["delayed_events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["delay_id"].as_str().unwrap().to_string())
            .collect()
    }

    /// Whether a delayed event is still scheduled according to its single lookup.
    async fn is_scheduled(&self, u: &U, id: &str) -> bool {
        let r = self.lookup(u, id).await;
        assert_eq!(r.status, 200, "{r:?}");
        r.body.get("finalised_ts").is_none()
    }

    /// The room's timeline, oldest first (`/messages?dir=f`).
    async fn timeline(&self, u: &U, room: &str) -> Vec<Value> {
        let r = self
            .get(
                u,
                &format!(
                    "/_matrix/client/v3/rooms/{}/messages?dir=f&limit=1000",
                    seg(room)
                ),
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        r.body["chunk"].as_array().unwrap().clone()
    }

    /// Bodies of the room's `m.room.message` events, oldest first.
    async fn messages(&self, u: &U, room: &str) -> Vec<String> {
        self.timeline(u, room)
            .await
            .iter()
            .filter(|e| e["type"] == "m.room.message")
            .filter_map(|e| e["content"]["body"].as_str().map(str::to_string))
            .collect()
    }

    async fn message_event(&self, u: &U, room: &str, body: &str) -> Option<Value> {
        self.timeline(u, room)
            .await
            .into_iter()
            .find(|e| e["content"]["body"] == body)
    }

    async fn sync(&self, u: &U, since: Option<&str>) -> Resp {
        let path = match since {
            Some(s) => format!("/_matrix/client/v3/sync?timeout=0&since={s}"),
            None => "/_matrix/client/v3/sync?timeout=0".to_string(),
        };
        self.get(u, &path).await
    }
}

fn state_path(room: &str, ty: &str, key: &str) -> String {
    format!(
        "/_matrix/client/v3/rooms/{}/state/{}/{}",
        seg(room),
        seg(ty),
        seg(key)
    )
}

fn user_from(r: &Resp, password: &str) -> U {
    U {
        id: r.body["user_id"].as_str().unwrap().to_string(),
        token: r.body["access_token"].as_str().unwrap().to_string(),
        password: password.to_string(),
    }
}

fn delay_id(r: &Resp) -> String {
    assert_eq!(r.status, 200, "scheduling failed: {r:?}");
    r.body["delay_id"].as_str().unwrap().to_string()
}

fn ts(event: &Value) -> u64 {
    event["origin_server_ts"].as_u64().unwrap()
}

// ------------------------------------------------------------------------------------------------
// Restartable target
// ------------------------------------------------------------------------------------------------

const DOWNTIME_MS: u64 = 400;

/// Two users in a room; alice schedules "a" (250 ms), then "b" (100 ms), both due while the
/// fake is down, and "c" (900 ms), due after it is back. Then the target restarts.
struct Restarted {
    target: Arc<FakeTarget>,
    hs: Hs,
    alice: U,
    room: String,
    ids: [String; 3],
    /// Wall-clock bounds of the restart call.
    before: u64,
    after: u64,
}

async fn restarted(faults: &[Fault]) -> Restarted {
    let target = Arc::new(
        FakeTarget::start(FakeOptions {
            restart_downtime: Duration::from_millis(DOWNTIME_MS),
            ..opts(faults)
        })
        .await,
    );
    let hs = Hs::at(&target.uri());
    let alice = hs.register("alice").await;
    let room = hs.room(&alice, &[], json!({})).await;
    let ids = [
        hs.delayed_message(&alice, &room, "a", 250).await,
        hs.delayed_message(&alice, &room, "b", 100).await,
        hs.delayed_message(&alice, &room, "c", 900).await,
    ];
    let before = now_ms();
    target.restart().await.unwrap();
    let after = now_ms();
    Restarted {
        target,
        hs,
        alice,
        room,
        ids,
        before,
        after,
    }
}

impl Restarted {
    async fn messages(&self) -> Vec<String> {
        self.hs.messages(&self.alice, &self.room).await
    }

    /// Waits until "c" is due (plus a margin) and answers the messages then.
    async fn messages_after_c(&self) -> Vec<String> {
        sleep_ms(1000u64.saturating_sub(now_ms() - self.before) + 100).await;
        self.messages().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_answers_503_while_down_then_sends_overdue_in_order() {
    let target = Arc::new(
        FakeTarget::start(FakeOptions {
            restart_downtime: Duration::from_millis(DOWNTIME_MS),
            ..FakeOptions::default()
        })
        .await,
    );
    assert_eq!(target.info().kind, "fake");
    assert!(target.can_restart().is_ok());
    assert!(matches!(
        target.registration(),
        Registration::SharedSecret(s) if s == FakeHomeserver::SHARED_SECRET
    ));
    let hs = Hs::at(&target.uri());
    let alice = hs.register_with_secret("alice").await;
    let bob = hs.register("bob").await;
    let room = hs.room(&alice, &[&bob], json!({})).await;
    let since = hs.sync(&bob, None).await.body["next_batch"]
        .as_str()
        .unwrap()
        .to_string();
    let a = hs.delayed_message(&alice, &room, "a", 250).await;
    hs.delayed_message(&alice, &room, "b", 100).await;
    let c = hs.delayed_message(&alice, &room, "c", 900).await;

    let before = now_ms();
    let restarting = tokio::spawn({
        let target = target.clone();
        async move { target.restart().await }
    });
    sleep_ms(50).await;
    for path in [
        "/_matrix/client/versions",
        "/_matrix/client/v3/account/whoami",
    ] {
        let r = hs.call(Method::GET, path, Some(&alice.token), None).await;
        assert_eq!(r.status, 503, "{path} while down: {r:?}");
        assert_eq!(
            r.body,
            json!({"errcode": "M_UNKNOWN", "error": "restarting"})
        );
    }
    restarting.await.unwrap().unwrap();
    let after = now_ms();

    // Over /sync: both overdue events, in due order, stamped when the fake came back.
    let r = hs.sync(&bob, Some(&since)).await;
    let events: Vec<&Value> = r.body["rooms"]["join"][&room]["timeline"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .collect();
    let bodies: Vec<&str> = events
        .iter()
        .map(|e| e["content"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["b", "a"], "overdue events in due order");
    for e in &events {
        assert!(
            ts(e) >= before + DOWNTIME_MS && ts(e) <= after,
            "stamped at the come-back, not the due time: {} not in [{}, {after}]",
            ts(e),
            before + DOWNTIME_MS
        );
    }
    assert_eq!(ts(events[0]), ts(events[1]));
    assert_eq!(
        hs.get(&alice, "/_matrix/client/v3/account/whoami")
            .await
            .status,
        200,
        "tokens survive"
    );
    assert_eq!(hs.listing(&alice).await, std::slice::from_ref(&c));
    assert!(!hs.is_scheduled(&alice, &a).await);

    // "c", due after the restart, is sent at its own time.
    sleep_ms(1000u64.saturating_sub(now_ms() - before) + 100).await;
    let sent = hs.message_event(&bob, &room, "c").await.expect("c is sent");
    let info = hs.lookup(&alice, &c).await.body;
    assert_eq!(
        ts(&sent),
        info["scheduled_at"].as_u64().unwrap() + 900,
        "stamped with its due time"
    );

    let log = target.log_tail(200).unwrap();
    assert!(log.contains("restart: down for 400 ms"), "{log}");
    assert!(log.contains("back up, sending 2 overdue"), "{log}");
    assert!(log.contains("GET /_matrix/client/versions -> 503"), "{log}");
    assert_eq!(target.log_tail(3).unwrap().lines().count(), 3);
}

#[tokio::test]
async fn fault_loses_events_on_restart() {
    let r = restarted(&[Fault::LosesEventsOnRestart]).await;
    assert!(r.hs.listing(&r.alice).await.is_empty());
    assert_eq!(r.hs.lookup(&r.alice, &r.ids[2]).await.status, 404);
    assert!(r.messages_after_c().await.is_empty());
}

#[tokio::test]
async fn fault_overdue_out_of_order() {
    let r = restarted(&[Fault::OverdueOutOfOrder]).await;
    assert_eq!(r.messages().await, ["a", "b"]);
    assert_eq!(r.messages_after_c().await, ["a", "b", "c"]);
}

#[tokio::test]
async fn fault_overdue_not_sent() {
    let r = restarted(&[Fault::OverdueNotSent]).await;
    assert!(r.messages().await.is_empty());
    assert_eq!(r.messages_after_c().await, ["c"]);
    assert_eq!(
        r.hs.listing(&r.alice).await,
        [r.ids[1].clone(), r.ids[0].clone()]
    );
}

#[tokio::test]
async fn fault_listing_empty_after_restart() {
    let r = restarted(&[Fault::ListingEmptyAfterRestart]).await;
    assert_eq!(r.messages().await, ["b", "a"]);
    assert!(r.hs.listing(&r.alice).await.is_empty());
    assert!(r.hs.is_scheduled(&r.alice, &r.ids[2]).await);
    assert_eq!(r.messages_after_c().await, ["b", "a", "c"]);
    assert!(r.after >= r.before + DOWNTIME_MS);
    assert!(r.target.log_tail(10).is_some());
}

#[tokio::test]
async fn fault_timer_stalls_after_restart() {
    let r = restarted(&[Fault::TimerStallsAfterRestart]).await;
    // Ordinary requests (these read the timeline) do not wake the timer, even once "c" is due.
    assert!(r.messages().await.is_empty());
    assert!(r.messages_after_c().await.is_empty());
    assert!(r.target.log_tail(50).unwrap().contains("timer stalled"));
    // The first delayed-events request does: everything due goes out, in due order.
    r.hs.listing(&r.alice).await;
    assert_eq!(r.messages().await, ["b", "a", "c"]);
}

/// An ignored cancel: still listed once due, sent only 5 s after its due time.
#[tokio::test]
async fn fault_cancel_ignored_sent_late() {
    let (_fake, hs) = Hs::start(opts(&[Fault::CancelIgnoredSentLate])).await;
    let alice = hs.register("alice").await;
    let room = hs.room(&alice, &[], json!({})).await;
    let id = hs.delayed_message(&alice, &room, "late", 200).await;
    assert_eq!(hs.manage(&alice, &id, "cancel").await.status, 200);
    sleep_ms(700).await;
    assert!(hs.messages(&alice, &room).await.is_empty());
    assert_eq!(hs.listing(&alice).await, std::slice::from_ref(&id));
    sleep_ms(5000).await;
    let sent = hs
        .message_event(&alice, &room, "late")
        .await
        .expect("sent late");
    let info = hs.lookup(&alice, &id).await.body;
    assert_eq!(
        ts(&sent),
        info["scheduled_at"].as_u64().unwrap() + 200 + 5000,
        "stamped when it was actually sent"
    );
    assert!(hs.listing(&alice).await.is_empty());
}

// ------------------------------------------------------------------------------------------------
// Rate limits
// ------------------------------------------------------------------------------------------------

fn rate_limited(faults: &[Fault]) -> FakeOptions {
    FakeOptions {
        rate_limits: true,
        ..opts(faults)
    }
}

/// Statuses of `n` listings then `n` cancels (split form) of one event, alternating forms.
async fn burst(hs: &Hs, u: &U, id: &str, lookups: usize, actions: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..lookups {
        out.push(hs.list_raw(u).await.status);
    }
    for i in 0..actions {
        let r = if i % 2 == 0 {
            hs.manage(u, id, "restart").await
        } else {
            hs.manage_body(u, id, "restart").await
        };
        out.push(r.status);
    }
    out
}

#[tokio::test]
async fn rate_limits_share_a_bucket_per_user() {
    let (_fake, hs) = Hs::start(rate_limited(&[])).await;
    let alice = hs.register("alice").await;
    let bob = hs.register("bob").await;
    let room = hs.room(&alice, &[&bob], json!({})).await;
    let id = hs.delayed_message(&alice, &room, "x", 60_000).await;
    // 3 lookups + 2 actions use the burst of 5; the next of either kind is refused.
    assert_eq!(burst(&hs, &alice, &id, 3, 2).await, [200; 5]);
    for r in [
        hs.lookup(&alice, &id).await,
        hs.manage(&alice, &id, "restart").await,
    ] {
        assert_eq!(r.status, 429, "{r:?}");
        assert_eq!(r.errcode(), "M_LIMIT_EXCEEDED");
        let ms = r.body["retry_after_ms"].as_u64().unwrap();
        assert!(ms > 0 && ms <= 1000, "{r:?}");
        assert_eq!(r.retry_after.as_deref(), Some("1"));
    }
    // Bob has his own bucket; scheduling is not limited here.
    assert_eq!(burst(&hs, &bob, "unknown", 5, 0).await, [200; 5]);
    for i in 0..3 {
        hs.delayed_message(&alice, &room, &format!("more {i}"), 60_000)
            .await;
    }
    // One token per second comes back.
    sleep_ms(1050).await;
    assert_eq!(hs.list_raw(&alice).await.status, 200);
    assert_eq!(hs.list_raw(&alice).await.status, 429);
}

#[tokio::test]
async fn rate_limits_off_by_default_and_anonymous_bucket() {
    let (_fake, hs) = Hs::start(FakeOptions::default()).await;
    let alice = hs.register("alice").await;
    let room = hs.room(&alice, &[], json!({})).await;
    let id = hs.delayed_message(&alice, &room, "x", 60_000).await;
    assert_eq!(burst(&hs, &alice, &id, 10, 10).await, [200; 20]);

    // Without a token (management open under MgmtWithoutAuth): one shared anonymous bucket.
    let (_fake, hs) = Hs::start(rate_limited(&[Fault::MgmtWithoutAuth])).await;
    let alice = hs.register("alice").await;
    let room = hs.room(&alice, &[], json!({})).await;
    let id = hs.delayed_message(&alice, &room, "x", 60_000).await;
    let path = format!("{PREFIX}/delayed_events/{id}/restart");
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            hs.call(Method::POST, &path, None, Some(json!({})))
                .await
                .status,
        );
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
    assert_eq!(
        hs.manage(&alice, &id, "restart").await.status,
        200,
        "alice's own bucket"
    );
}

#[tokio::test]
async fn fault_mgmt_not_rate_limited() {
    let (_fake, hs) = Hs::start(rate_limited(&[Fault::MgmtNotRateLimited])).await;
    let alice = hs.register("alice").await;
    let room = hs.room(&alice, &[], json!({})).await;
    let id = hs.delayed_message(&alice, &room, "x", 60_000).await;
    assert_eq!(burst(&hs, &alice, &id, 0, 10).await, [200; 10]);
    assert_eq!(
        burst(&hs, &alice, &id, 6, 0).await,
        [200, 200, 200, 200, 200, 429]
    );
}

#[tokio::test]
async fn fault_lookups_not_rate_limited() {
    let (_fake, hs) = Hs::start(rate_limited(&[Fault::LookupsNotRateLimited])).await;
    let alice = hs.register("alice").await;
    let room = hs.room(&alice, &[], json!({})).await;
    let id = hs.delayed_message(&alice, &room, "x", 60_000).await;
    assert_eq!(burst(&hs, &alice, &id, 10, 0).await, [200; 10]);
    assert_eq!(
        burst(&hs, &alice, &id, 0, 6).await,
        [200, 200, 200, 200, 200, 429]
    );
}

// ------------------------------------------------------------------------------------------------
// Guests
// ------------------------------------------------------------------------------------------------

/// A guest in a room with guest access; answers the statuses of every delayed-event endpoint.
async fn guest_statuses(faults: &[Fault]) -> (Vec<Resp>, Vec<String>) {
    let (_fake, hs) = Hs::start(opts(faults)).await;
    let alice = hs.register("alice").await;
    let guest = hs.guest().await;
    let r = hs
        .post(&guest, "/_matrix/client/v3/createRoom", json!({}))
        .await;
    assert_eq!(r.errcode(), "M_GUEST_ACCESS_FORBIDDEN", "as Synapse: {r:?}");
    let closed = hs.room(&alice, &[], json!({})).await;
    let r = hs.join(&guest, &closed).await;
    assert_eq!(
        (r.status, r.errcode()),
        (403, "M_FORBIDDEN"),
        "no guest access: {r:?}"
    );
    let room = hs
        .room(
            &alice,
            &[&guest],
            json!({"initial_state": [{"type": "m.room.guest_access", "state_key": "", "content": {"guest_access": "can_join"}}]}),
        )
        .await;
    let mut out = vec![
        hs.schedule(&guest, &room, "m.room.message", None, text("endpoint"), 200)
            .await,
        hs.schedule_query(&guest, &room, "m.room.message", None, text("query"), 60_000)
            .await,
    ];
    let ids: Vec<String> = out
        .iter()
        .map(|r| r.body["delay_id"].as_str().unwrap_or("none").to_string())
        .collect();
    out.push(hs.list_raw(&guest).await);
    out.push(hs.lookup(&guest, &ids[1]).await);
    out.push(hs.manage(&guest, &ids[1], "restart").await);
    out.push(hs.manage_body(&guest, &ids[1], "send").await);
    sleep_ms(300).await;
    // Alice's own delayed events work either way.
    let alices = hs.delayed_message(&alice, &room, "alice", 60_000).await;
    assert_eq!(hs.manage(&alice, &alices, "cancel").await.status, 200);
    (out, hs.messages(&alice, &room).await)
}

#[tokio::test]
async fn guests_use_every_delayed_event_endpoint() {
    let (statuses, messages) = guest_statuses(&[]).await;
    for r in &statuses {
        assert_eq!(r.status, 200, "{r:?}");
    }
    assert_eq!(messages, ["query", "endpoint"]);
}

#[tokio::test]
async fn fault_guests_refused() {
    let (statuses, messages) = guest_statuses(&[Fault::GuestsRefused]).await;
    for r in &statuses {
        assert_eq!(
            (r.status, r.errcode()),
            (403, "M_GUEST_ACCESS_FORBIDDEN"),
            "{r:?}"
        );
    }
    assert!(messages.is_empty());
}

// ------------------------------------------------------------------------------------------------
// Deactivation
// ------------------------------------------------------------------------------------------------

async fn deactivate(hs: &Hs, u: &U, identifier: &str) -> Resp {
    let path = "/_matrix/client/v3/account/deactivate";
    let first = hs.post(u, path, json!({})).await;
    assert_eq!(first.status, 401, "{first:?}");
    assert_eq!(
        first.body["flows"],
        json!([{"stages": ["m.login.password"]}])
    );
    let session = first.body["session"].clone();
    let auth = |password: &str| {
        json!({"auth": {"type": "m.login.password", "session": session,
            "identifier": {"type": "m.id.user", "user": identifier}, "password": password}})
    };
    let wrong = hs.post(u, path, auth("wrong")).await;
    assert_eq!(
        (wrong.status, wrong.errcode()),
        (401, "M_FORBIDDEN"),
        "{wrong:?}"
    );
    hs.post(u, path, auth(&u.password)).await
}

/// Alice (open registration) and carol (shared secret) schedule a message each, then deactivate;
/// answers the messages bob sees after their due time.
async fn deactivation(faults: &[Fault]) -> Vec<String> {
    let (_fake, hs) = Hs::start(opts(faults)).await;
    let alice = hs.register("alice").await;
    let carol = hs.register_with_secret("carol").await;
    let bob = hs.register("bob").await;
    let room = hs.room(&bob, &[&alice, &carol], json!({})).await;
    hs.delayed_message(&alice, &room, "from alice", 300).await;
    hs.delayed_message(&carol, &room, "from carol", 300).await;
    let carol_local = carol.id.trim_start_matches('@').split(':').next().unwrap();
    for (u, identifier) in [(&alice, alice.id.as_str()), (&carol, carol_local)] {
        let r = deactivate(&hs, u, identifier).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body, json!({"id_server_unbind_result": "no-support"}));
        let r = hs.get(u, "/_matrix/client/v3/account/whoami").await;
        assert_eq!((r.status, r.errcode()), (401, "M_UNKNOWN_TOKEN"));
        let membership = hs.state(&bob, &room, "m.room.member", &u.id).await;
        assert_eq!(membership.body["content"]["membership"], "leave");
    }
    let login = hs
        .call(
            Method::POST,
            "/_matrix/client/v3/login",
            None,
            Some(json!({"type": "m.login.password", "user": alice.id, "password": alice.password})),
        )
        .await;
    assert_eq!(login.status, 403, "a deactivated account cannot log in");
    sleep_ms(400).await;
    hs.messages(&bob, &room).await
}

#[tokio::test]
async fn deactivation_cancels_delayed_events() {
    assert!(deactivation(&[]).await.is_empty());
}

#[tokio::test]
async fn fault_deactivated_still_sends() {
    assert_eq!(
        deactivation(&[Fault::DeactivatedStillSends]).await,
        ["from alice", "from carol"]
    );
}

// ------------------------------------------------------------------------------------------------
// State overwrite
// ------------------------------------------------------------------------------------------------

const STATE_TYPE: &str = "org.example.state";

/// Bob has delayed events at (A, type, k1), (A, type, k2), (B, type, k1) and a delayed message
/// in A; then alice sets (A, type, k1) and sends a message in A. Answers which are still
/// scheduled, the listing, and what was sent after the short one's due time.
async fn overwrite(faults: &[Fault]) -> ([bool; 4], Vec<String>, Vec<Value>, [String; 4]) {
    let (_fake, hs) = Hs::start(opts(faults)).await;
    let alice = hs.register("alice").await;
    let bob = hs.register("bob").await;
    let open = json!({"power_level_content_override": {"state_default": 0}});
    let a = hs.room(&alice, &[&bob], open.clone()).await;
    let b = hs.room(&alice, &[&bob], open).await;
    let ids = [
        hs.delayed_state(&bob, &a, STATE_TYPE, "k1", 300).await,
        hs.delayed_state(&bob, &a, STATE_TYPE, "k2", 60_000).await,
        hs.delayed_state(&bob, &b, STATE_TYPE, "k1", 60_000).await,
        hs.delayed_message(&bob, &a, "bob's", 60_000).await,
    ];
    // Bob's own newer state does not cancel his delayed state.
    hs.put_state(&bob, &a, STATE_TYPE, "k1", json!({"v": "bob now"}))
        .await;
    hs.put_state(&alice, &a, STATE_TYPE, "k1", json!({"v": "alice"}))
        .await;
    hs.send(&alice, &a, "m.room.message", text("alice's")).await;
    let mut scheduled = [false; 4];
    for (i, id) in ids.iter().enumerate() {
        scheduled[i] = hs.is_scheduled(&bob, id).await;
    }
    let listing = hs.listing(&bob).await;
    sleep_ms(400).await;
    let sent: Vec<Value> = hs
        .timeline(&alice, &a)
        .await
        .into_iter()
        .filter(|e| e["type"] == STATE_TYPE && e["sender"] == bob.id.as_str())
        .map(|e| e["content"].clone())
        .collect();
    let cancelled = hs.lookup(&bob, &ids[0]).await.body;
    assert_eq!(
        cancelled["error"]["org.matrix.msc4140.errcode"], "M_CANCELLED_BY_STATE_UPDATE",
        "{cancelled}"
    );
    assert!(cancelled["finalised_ts"].is_u64());
    (scheduled, listing, sent, ids)
}

#[tokio::test]
async fn state_overwrite_cancels_only_the_same_key_in_the_same_room() {
    let (scheduled, listing, sent, ids) = overwrite(&[]).await;
    assert_eq!(scheduled, [false, true, true, true]);
    assert!(!listing.contains(&ids[0]));
    assert_eq!(
        sent,
        [json!({"v": "bob now"})],
        "the overwritten one is never sent"
    );
}

#[tokio::test]
async fn fault_state_overwrite_too_broad() {
    let (scheduled, _, _, _) = overwrite(&[Fault::StateOverwriteTooBroad]).await;
    assert_eq!(scheduled, [false; 4]);
}

#[tokio::test]
async fn fault_state_overwrite_cancels_but_listed() {
    let (scheduled, listing, sent, ids) = overwrite(&[Fault::StateOverwriteCancelsButListed]).await;
    assert_eq!(scheduled, [false, true, true, true]);
    assert!(listing.contains(&ids[0]), "still listed");
    assert_eq!(sent, [json!({"v": "bob now"})]);
}

// ------------------------------------------------------------------------------------------------
// Power levels and membership at send time
// ------------------------------------------------------------------------------------------------

struct Levels {
    /// Send action on the unpermitted event, then its lookup.
    send_action: Resp,
    after_send_action: Value,
    /// Lookup of the unpermitted event after its due time.
    failed: Value,
    /// State events bob managed to set.
    set: Vec<Value>,
}

/// Bob (PL 0, state_default 50) schedules two state events; one is due before he is promoted,
/// the other after.
async fn levels(faults: &[Fault]) -> Levels {
    let (_fake, hs) = Hs::start(opts(faults)).await;
    let alice = hs.register("alice").await;
    let bob = hs.register("bob").await;
    let room = hs.room(&alice, &[&bob], json!({})).await;
    let early = hs
        .delayed_state(&bob, &room, STATE_TYPE, "early", 300)
        .await;
    hs.delayed_state(&bob, &room, STATE_TYPE, "late", 700).await;
    let send_action = hs.manage(&bob, &early, "send").await;
    let after_send_action = hs.lookup(&bob, &early).await.body;
    sleep_ms(400).await;
    let failed = hs.lookup(&bob, &early).await.body;
    hs.set_level(&alice, &room, &bob.id, 50).await;
    sleep_ms(400).await;
    let set = hs
        .timeline(&alice, &room)
        .await
        .into_iter()
        .filter(|e| e["type"] == STATE_TYPE)
        .map(|e| e["content"].clone())
        .collect();
    Levels {
        send_action,
        after_send_action,
        failed,
        set,
    }
}

#[tokio::test]
async fn power_levels_are_checked_when_sent() {
    let l = levels(&[]).await;
    assert_eq!(
        (l.send_action.status, l.send_action.errcode()),
        (403, "M_FORBIDDEN")
    );
    assert!(
        l.after_send_action.get("finalised_ts").is_none(),
        "stays scheduled"
    );
    assert_eq!(l.failed["error"]["errcode"], "M_FORBIDDEN", "{}", l.failed);
    assert!(l.failed["finalised_ts"].is_u64());
    assert!(l.failed.get("event_id").is_none());
    assert_eq!(l.set, [json!({"v": "late"})], "sent once promoted");
}

#[tokio::test]
async fn fault_send_action_failure_finalises() {
    let l = levels(&[Fault::SendActionFailureFinalises]).await;
    assert_eq!(l.send_action.status, 403);
    assert_eq!(l.after_send_action["error"]["errcode"], "M_FORBIDDEN");
    assert!(l.after_send_action["finalised_ts"].is_u64());
}

#[tokio::test]
async fn existing_permission_faults() {
    let (_fake, hs) = Hs::start(opts(&[Fault::PowerLevelsAtSchedule])).await;
    let alice = hs.register("alice").await;
    let bob = hs.register("bob").await;
    let room = hs.room(&alice, &[&bob], json!({})).await;
    let r = hs
        .schedule(&bob, &room, STATE_TYPE, Some(""), json!({}), 300)
        .await;
    assert_eq!((r.status, r.errcode()), (403, "M_FORBIDDEN"), "{r:?}");
    let l = levels(&[Fault::SendActionIgnoresPermissions]).await;
    assert_eq!(l.send_action.status, 200);
    assert_eq!(l.set, [json!({"v": "early"}), json!({"v": "late"})]);
}

/// Bob leaves and carol is kicked after each scheduled a message; a moderator schedules a kick
/// of dave, a PL 0 user one of erin. Answers the messages sent and the lookups of bob's and
/// carol's events.
async fn left_members(faults: &[Fault]) -> (Vec<String>, [Value; 2], String, String) {
    let (_fake, hs) = Hs::start(opts(faults)).await;
    let alice = hs.register("alice").await;
    let [bob, carol, dave, erin, moderator] = [
        hs.register("bob").await,
        hs.register("carol").await,
        hs.register("dave").await,
        hs.register("erin").await,
        hs.register("mod").await,
    ];
    let room = hs
        .room(&alice, &[&bob, &carol, &dave, &erin, &moderator], json!({}))
        .await;
    hs.set_level(&alice, &room, &moderator.id, 50).await;
    let ids = [
        hs.delayed_message(&bob, &room, "from bob", 300).await,
        hs.delayed_message(&carol, &room, "from carol", 300).await,
    ];
    let leave = json!({"membership": "leave"});
    delay_id(
        &hs.schedule_query(
            &moderator,
            &room,
            "m.room.member",
            Some(&dave.id),
            leave.clone(),
            300,
        )
        .await,
    );
    delay_id(
        &hs.schedule(
            &bob,
            &room,
            "m.room.member",
            Some(&erin.id),
            leave.clone(),
            300,
        )
        .await,
    );
    let r = hs
        .post(
            &bob,
            &format!("/_matrix/client/v3/rooms/{}/leave", seg(&room)),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = hs
        .post(
            &alice,
            &format!("/_matrix/client/v3/rooms/{}/kick", seg(&room)),
            json!({"user_id": carol.id}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    sleep_ms(400).await;
    let membership = |u: &U| {
        let (hs, alice, room, id) = (&hs, &alice, &room, u.id.clone());
        async move {
            hs.state(alice, room, "m.room.member", &id).await.body["content"]["membership"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    (
        hs.messages(&alice, &room).await,
        [
            hs.lookup(&bob, &ids[0]).await.body,
            hs.lookup(&carol, &ids[1]).await.body,
        ],
        membership(&dave).await,
        membership(&erin).await,
    )
}

#[tokio::test]
async fn members_who_left_fail_and_moderators_kick_later() {
    let (messages, lookups, dave, erin) = left_members(&[]).await;
    assert!(messages.is_empty(), "{messages:?}");
    for l in lookups {
        assert_eq!(l["error"]["errcode"], "M_FORBIDDEN", "{l}");
    }
    assert_eq!(dave, "leave", "the moderator's delayed kick");
    assert_eq!(erin, "join", "bob may not kick");
}

#[tokio::test]
async fn fault_left_member_still_sends() {
    let (messages, _, _, _) = left_members(&[Fault::LeftMemberStillSends]).await;
    assert_eq!(messages, ["from bob", "from carol"]);
}

// ------------------------------------------------------------------------------------------------
// Per-user limit
// ------------------------------------------------------------------------------------------------

/// With a limit of 3 (due in 5 s, 3 s, 9 s): the refusal, then the answer after a cancel.
async fn limit(faults: &[Fault]) -> (Resp, Resp) {
    let (_fake, hs) = Hs::start(FakeOptions {
        max_scheduled: 3,
        ..opts(faults)
    })
    .await;
    let alice = hs.register("alice").await;
    let room = hs.room(&alice, &[], json!({})).await;
    let mut ids = Vec::new();
    for delay in [5_000, 3_000, 9_000] {
        ids.push(hs.delayed_message(&alice, &room, "x", delay).await);
    }
    let refused = hs
        .schedule(&alice, &room, "m.room.message", None, text("y"), 1000)
        .await;
    assert_eq!(hs.manage(&alice, &ids[0], "cancel").await.status, 200);
    let after_cancel = hs
        .schedule(&alice, &room, "m.room.message", None, text("y"), 1000)
        .await;
    (refused, after_cancel)
}

#[tokio::test]
async fn limit_retry_after_is_the_earliest_due_event() {
    let (refused, after_cancel) = limit(&[]).await;
    assert_eq!(
        (refused.status, refused.errcode()),
        (429, "M_LIMIT_EXCEEDED")
    );
    assert_eq!(refused.retry_after.as_deref(), Some("3"));
    assert_eq!(after_cancel.status, 200, "a cancel frees a slot");
}

#[tokio::test]
async fn fault_limit_not_freed_by_cancel() {
    let (_, after_cancel) = limit(&[Fault::LimitNotFreedByCancel]).await;
    assert_eq!(after_cancel.status, 429);
}

#[tokio::test]
async fn fault_limit_retry_after_wrong_value() {
    let (refused, _) = limit(&[Fault::LimitRetryAfterWrongValue]).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.retry_after.as_deref(), Some("9"));
}

// ------------------------------------------------------------------------------------------------
// delay_ids
// ------------------------------------------------------------------------------------------------

/// Schedules three events, cancelling the first before scheduling the third.
async fn delay_ids(faults: &[Fault]) -> [String; 3] {
    let (_fake, hs) = Hs::start(opts(faults)).await;
    let alice = hs.register("alice").await;
    let room = hs.room(&alice, &[], json!({})).await;
    let first = hs.delayed_message(&alice, &room, "1", 60_000).await;
    let second = hs.delayed_message(&alice, &room, "2", 60_000).await;
    assert_eq!(hs.manage(&alice, &first, "cancel").await.status, 200);
    let third = hs.delayed_message(&alice, &room, "3", 60_000).await;
    [first, second, third]
}

#[tokio::test]
async fn delay_ids_are_random_and_fresh() {
    let ids = delay_ids(&[]).await;
    assert!(ids.iter().all(|id| id.len() >= 20), "{ids:?}");
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
}

#[tokio::test]
async fn fault_sequential_delay_ids() {
    assert_eq!(
        delay_ids(&[Fault::SequentialDelayIds]).await,
        ["1", "2", "3"]
    );
}

#[tokio::test]
async fn fault_reused_delay_ids() {
    let ids = delay_ids(&[Fault::ReusedDelayIds]).await;
    assert_eq!(ids[2], ids[0]);
    assert_ne!(ids[1], ids[0]);
}

// ------------------------------------------------------------------------------------------------
// Redactions and mentions
// ------------------------------------------------------------------------------------------------

/// Alice schedules redactions of two messages (query parameter and endpoint) and a message with
/// `m.mentions`. Answers the two targets as fetched after the redactions' time, one of them as
/// seen over /messages, and the mentioning message's content.
async fn redactions(faults: &[Fault]) -> (Vec<Value>, Value, Value) {
    let (_fake, hs) = Hs::start(opts(faults)).await;
    let alice = hs.register("alice").await;
    let bob = hs.register("bob").await;
    let room = hs.room(&alice, &[&bob], json!({})).await;
    let mut targets = Vec::new();
    for body in ["first", "second"] {
        let r = hs.send(&alice, &room, "m.room.message", text(body)).await;
        targets.push(r.body["event_id"].as_str().unwrap().to_string());
    }
    let redacts = |i: usize| json!({ "redacts": targets[i] });
    delay_id(
        &hs.schedule_query(&alice, &room, "m.room.redaction", None, redacts(0), 200)
            .await,
    );
    delay_id(
        &hs.schedule(&alice, &room, "m.room.redaction", None, redacts(1), 200)
            .await,
    );
    let mentions = json!({"msgtype": "m.text", "body": "hey bob",
        "m.mentions": {"user_ids": [bob.id], "room": false}});
    delay_id(
        &hs.schedule(&alice, &room, "m.room.message", None, mentions.clone(), 200)
            .await,
    );
    sleep_ms(300).await;
    let mut fetched = Vec::new();
    for id in &targets {
        let path = format!("/_matrix/client/v3/rooms/{}/event/{}", seg(&room), seg(id));
        fetched.push(hs.get(&bob, &path).await.body);
    }
    let timeline = hs.timeline(&bob, &room).await;
    let over_messages = timeline
        .iter()
        .find(|e| e["event_id"] == targets[0].as_str())
        .unwrap()
        .clone();
    let redactions = timeline
        .iter()
        .filter(|e| e["type"] == "m.room.redaction")
        .count();
    assert_eq!(redactions, 2, "both delayed redactions are sent");
    let sent = timeline
        .iter()
        .find(|e| e["content"]["body"] == "hey bob")
        .unwrap()["content"]
        .clone();
    assert_eq!(mentions["body"], sent["body"]);
    (fetched, over_messages, sent)
}

#[tokio::test]
async fn delayed_redactions_redact_and_mentions_are_kept() {
    let (fetched, over_messages, sent) = redactions(&[]).await;
    for e in fetched.iter().chain([&over_messages]) {
        assert_eq!(e["content"], json!({}), "{e}");
        assert_eq!(
            e["unsigned"]["redacted_because"]["type"], "m.room.redaction",
            "{e}"
        );
    }
    assert!(sent["m.mentions"]["user_ids"].is_array(), "{sent}");
}

#[tokio::test]
async fn fault_delayed_redaction_ignored() {
    let (fetched, _, _) = redactions(&[Fault::DelayedRedactionIgnored]).await;
    for e in fetched {
        assert!(e["content"]["body"].is_string(), "{e}");
        assert!(e["unsigned"].get("redacted_because").is_none());
    }
}

#[tokio::test]
async fn fault_delayed_content_mangled() {
    let (_, _, sent) = redactions(&[Fault::DelayedContentMangled]).await;
    assert!(sent.get("m.mentions").is_none(), "{sent}");
}

// ------------------------------------------------------------------------------------------------
// MatrixRTC call membership
// ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn call_membership_heartbeat_then_leave() {
    let (_fake, hs) = Hs::start(FakeOptions::default()).await;
    let alice = hs.register("alice").await;
    let bob = hs.register("bob").await;
    let room = hs.room(&alice, &[&bob], json!({})).await;
    let key = format!("_{}_DEVICE", bob.id);
    let joined = json!({"application": "m.call", "call_id": "", "device_id": "DEVICE",
        "focus_active": {"type": "livekit"}, "foci_preferred": [], "scope": "m.room"});
    let r = hs
        .put_state(&bob, &room, CALL_MEMBER, &key, joined.clone())
        .await;
    assert_eq!(
        r.status, 200,
        "a PL 0 member sets their call membership: {r:?}"
    );
    let r = hs
        .schedule(&bob, &room, CALL_MEMBER, Some(&key), json!({}), 500)
        .await;
    let id = delay_id(&r);
    let mut last_restart = now_ms();
    for _ in 0..5 {
        sleep_ms(200).await;
        let content = hs.state(&bob, &room, CALL_MEMBER, &key).await.body["content"].clone();
        assert_eq!(content, joined, "the heartbeat keeps the membership");
        last_restart = now_ms();
        assert_eq!(hs.manage(&bob, &id, "restart").await.status, 200);
    }
    let left = loop {
        let e = hs.state(&bob, &room, CALL_MEMBER, &key).await.body;
        if e["content"] == json!({}) {
            break e;
        }
        assert!(now_ms() < last_restart + 2000, "the leave never came");
        sleep_ms(25).await;
    };
    assert!(
        ts(&left) >= last_restart + 500,
        "not before one delay after the last restart"
    );
    assert!(ts(&left) <= now_ms());
    let info = hs.lookup(&bob, &id).await.body;
    assert_eq!(info["scheduled_at"].as_u64().unwrap() + 500, ts(&left));

    // A power-level override replaces the default events map: the type is then state_default.
    let closed = hs
        .room(
            &alice,
            &[&bob],
            json!({"power_level_content_override": {"events": {}}}),
        )
        .await;
    let r = hs.put_state(&bob, &closed, CALL_MEMBER, &key, joined).await;
    assert_eq!(r.status, 403, "{r:?}");
}

/// `/context` answers the event with up to `limit` events around it, half before; like
/// `/event`, it shows the delay_id in `unsigned` to the sender only.
#[tokio::test]
async fn context_serves_the_event_and_its_neighbours() {
    let (_fake, hs) = Hs::start(FakeOptions::default()).await;
    let alice = hs.register("alice").await;
    let bob = hs.register("bob").await;
    let room = hs.room(&alice, &[&bob], json!({})).await;
    for body in ["one", "two"] {
        assert_eq!(
            hs.send(&alice, &room, "m.room.message", text(body))
                .await
                .status,
            200
        );
    }
    let id = hs.delayed_message(&alice, &room, "delayed", 50).await;
    let event_id = loop {
        if let Some(e) = hs.message_event(&alice, &room, "delayed").await {
            break e["event_id"].as_str().unwrap().to_string();
        }
        sleep_ms(20).await;
    };
    assert_eq!(
        hs.send(&alice, &room, "m.room.message", text("three"))
            .await
            .status,
        200
    );
    let path = |limit: u32| {
        format!(
            "/_matrix/client/v3/rooms/{}/context/{}?limit={limit}",
            seg(&room),
            seg(&event_id)
        )
    };
    let r = hs.get(&alice, &path(4)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let bodies = |key: &str| -> Vec<Value> {
        r.body[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["content"]["body"].clone())
            .collect()
    };
    assert_eq!(r.body["event"]["event_id"], json!(event_id));
    assert_eq!(bodies("events_before"), [json!("two"), json!("one")]);
    assert_eq!(bodies("events_after"), [json!("three")]);
    assert_eq!(
        r.body["event"]["unsigned"]["org.matrix.msc4140.delay_id"],
        json!(id)
    );
    let others = hs.get(&bob, &path(4)).await;
    assert_eq!(others.status, 200, "{others:?}");
    assert!(
        others.body["event"]["unsigned"]
            .get("org.matrix.msc4140.delay_id")
            .is_none(),
        "{others:?}"
    );
}
