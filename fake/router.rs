//! The request context, the router (request -> endpoint), the timer task, and the
//! recording of delayed-event requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Map, Value};
use wiremock::{Request, Respond, ResponseTemplate};

use super::*;

/// How often the fake's timer looks for due delayed events.
pub(super) const TIMER_TICK: Duration = Duration::from_millis(10);

pub(super) struct Ctx {
    pub(super) method: String,
    /// Raw (still percent-encoded) path, used as the transaction-id scope.
    pub(super) path: String,
    pub(super) segs: Vec<String>,
    pub(super) query: HashMap<String, String>,
    pub(super) token: Option<String>,
    pub(super) body: Vec<u8>,
}

pub(super) enum Body {
    Empty,
    Malformed,
    Json(Value),
}

impl Ctx {
    pub(super) fn from_request(req: &Request) -> Ctx {
        let path = req.url.path().to_string();
        let segs = path
            .trim_start_matches('/')
            .split('/')
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let query: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
        let token = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string())
            .or_else(|| query.get("access_token").cloned());
        Ctx {
            method: req.method.to_string(),
            path,
            segs,
            query,
            token,
            body: req.body.clone(),
        }
    }

    pub(super) fn body(&self) -> Body {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Body::Empty;
        }
        match serde_json::from_slice(&self.body) {
            Ok(v) => Body::Json(v),
            Err(_) => Body::Malformed,
        }
    }

    /// The body as a JSON object (ordinary endpoints). `empty_ok`: an empty body means `{}`.
    pub(super) fn object_body(&self, empty_ok: bool) -> Result<Map<String, Value>, Reply> {
        match self.body() {
            Body::Empty if empty_ok => Ok(Map::new()),
            Body::Empty | Body::Malformed => Err(not_json()),
            Body::Json(Value::Object(m)) => Ok(m),
            Body::Json(_) => Err(bad_json("Content must be a JSON object.")),
        }
    }

    pub(super) fn q(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }
}

pub(super) struct Router {
    pub(super) state: Arc<Mutex<State>>,
}

/// The timer: sends due delayed events every `TIMER_TICK`, except while the fake is down (a
/// restart stops the timer; coming back sends what fell due, in order).
pub(super) async fn run_timer(state: std::sync::Weak<Mutex<State>>) {
    loop {
        tokio::time::sleep(TIMER_TICK).await;
        let Some(state) = state.upgrade() else { return };
        let mut st = lock(&state);
        st.now = now_ms();
        if st.down_until.is_none() {
            st.tick();
        }
    }
}

impl Respond for Router {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let cx = Ctx::from_request(request);
        let mut st = lock(&self.state);
        st.now = now_ms();

        let reply = st.check_up().and_then(|()| {
            if served_by_main(&cx, &st.opts) && st.main_is_down() {
                return Err(err(502, "M_UNKNOWN", "the main process is restarting"));
            }
            if is_delayed_api(&cx) {
                st.timer_stalled = false;
            }
            st.tick();
            route(&mut st, &cx)
        });
        let mut reply = reply.unwrap_or_else(|e| e);
        if let Some((path, wait)) = st.opts.slow_answers {
            if cx.path.contains(path) {
                reply.delay = Some(reply.delay.unwrap_or_default().max(wait));
            }
        }
        // Played as a deployment: management by the main process (split paths by the worker
        // under `body_form_on_main`), the rest by its one worker.
        let on_main = match is_management(&cx) {
            Some(body_form) => body_form || !st.opts.body_form_on_main,
            None => false,
        };
        let served_by = if on_main { "main" } else { "worker1" };
        reply = reply.header("X-Served-By", served_by.into());
        st.log(format!("{} {} -> {}", cx.method, cx.path, reply.status));
        if let Some(recorded) = RecordedRequest::of(&cx, reply.status) {
            st.recorded.push(recorded);
        }
        reply.into_template()
    }
}

/// One delayed-event request as the fake saw it (recording mode): what a client under test sent.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The `org.matrix.msc4140.delay` query parameter, where given.
    pub delay: Option<String>,
    /// `schedule: query-param`, `schedule: endpoint`, `manage: split-path <action>`,
    /// `manage: body <action>`, `list`, `lookup`, or `other`.
    pub form: String,
    pub status: u16,
}

impl RecordedRequest {
    pub(super) fn of(cx: &Ctx, status: u16) -> Option<RecordedRequest> {
        let delay = cx
            .q(DELAY_PARAM)
            .or_else(|| cx.q(STABLE_DELAY_PARAM))
            .map(str::to_string);
        if delay.is_none() && !cx.path.contains("delayed_event") {
            return None;
        }
        let segs: Vec<&str> = cx.segs.iter().map(String::as_str).collect();
        let after = |name: &str| segs.iter().position(|s| *s == name).map(|i| &segs[i + 1..]);
        let body_action = || {
            serde_json::from_slice::<Value>(&cx.body)
                .ok()
                .and_then(|b| b.get("action").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| "(no action)".into())
        };
        let form = match (
            cx.method.as_str(),
            after("delayed_events"),
            after("delayed_event"),
        ) {
            _ if delay.is_some() => "schedule: query-param".to_string(),
            ("PUT", _, Some(_)) => "schedule: endpoint".into(),
            ("POST", Some([_, action]), _) => format!("manage: split-path {action}"),
            ("POST", Some([_]), _) => format!("manage: body {}", body_action()),
            ("GET", Some([]), _) => "list".into(),
            ("GET", Some([_]), _) => "lookup".into(),
            _ => "other".into(),
        };
        Some(RecordedRequest {
            method: cx.method.clone(),
            path: cx.path.clone(),
            delay,
            form,
            status,
        })
    }
}

pub(super) fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A management action (`send`, `cancel`, `restart`), under either prefix: `Some(true)` in the
/// body form, `Some(false)` through a split path.
fn is_management(cx: &Ctx) -> Option<bool> {
    if cx.method != "POST" || !is_delayed_api(cx) {
        return None;
    }
    let at = cx.segs.iter().position(|s| s == "delayed_events")?;
    match cx.segs.len() - at {
        2 => Some(true),
        3 => Some(false),
        _ => None,
    }
}

/// Whether the request is one that only the main process serves, as the fake plays a
/// deployment: management under [`Fault::ManagementNeedsMain`], the body form under
/// [`FakeOptions::body_form_on_main`].
fn served_by_main(cx: &Ctx, opts: &FakeOptions) -> bool {
    match is_management(cx) {
        Some(body_form) => {
            opts.faults.contains(&Fault::ManagementNeedsMain)
                || (body_form && opts.body_form_on_main)
        }
        None => false,
    }
}

/// Whether a request is one of the delayed-event API's (either scheduling form, or under the
/// MSC4140 prefix).
pub(super) fn is_delayed_api(cx: &Ctx) -> bool {
    pub(super) const PREFIX: [&str; 4] = ["_matrix", "client", "unstable", "org.matrix.msc4140"];
    pub(super) const STABLE: [&str; 4] = ["_matrix", "client", "v1", "delayed_events"];
    let segs = || cx.segs.iter().map(String::as_str);
    let stable_scheduling = segs().take(3).eq(["_matrix", "client", "v3"])
        && cx.segs.get(5).is_some_and(|s| s == "delayed_event");
    cx.q(DELAY_PARAM).is_some()
        || cx.q(STABLE_DELAY_PARAM).is_some()
        || segs().take(4).eq(PREFIX)
        || segs().take(4).eq(STABLE)
        || stable_scheduling
}

pub(super) fn route(st: &mut State, cx: &Ctx) -> Res {
    if is_delayed_api(cx) {
        st.refuse_guests(cx)?;
    }
    let segs: Vec<&str> = cx.segs.iter().map(String::as_str).collect();
    match (cx.method.as_str(), segs.as_slice()) {
        ("GET", ["_matrix", "client", "versions"]) => versions(st),
        ("GET", ["_matrix", "federation", "v1", "version"]) if st.opts.federation_version => {
            Ok(ok(
                json!({"server": {"name": FakeHomeserver::NAME, "version": FakeHomeserver::VERSION}}),
            ))
        }
        ("GET", ["_synapse", "admin", "v1", "register"]) => admin_nonce(st),
        ("POST", ["_synapse", "admin", "v1", "register"]) => admin_register(st, cx),
        (m, ["_matrix", "client", "v3", rest @ ..]) => route_v3(st, cx, m, rest),
        (m, ["_matrix", "client", "unstable", "org.matrix.msc4140", rest @ ..])
            if st.knows_msc4140() =>
        {
            route_msc4140(st, cx, m, rest)
        }
        // The stable management and lookup endpoints are the unstable ones under another name.
        (m, ["_matrix", "client", "v1", rest @ ..])
            if st.serves_stable() && rest.first() == Some(&"delayed_events") =>
        {
            route_msc4140(st, cx, m, rest)
        }
        _ => Err(unrecognized()),
    }
}

pub(super) fn route_v3(st: &mut State, cx: &Ctx, method: &str, rest: &[&str]) -> Res {
    match (method, rest) {
        ("POST", ["register"]) => register(st, cx),
        ("GET", ["login"]) => Ok(ok(json!({"flows": [{"type": "m.login.password"}]}))),
        ("POST", ["login"]) => login(st, cx),
        ("GET", ["account", "whoami"]) => whoami(st, cx),
        ("POST", ["account", "deactivate"]) => deactivate(st, cx),
        ("GET", ["capabilities"]) => capabilities(st, cx),
        ("POST", ["createRoom"]) => create_room(st, cx),
        ("POST", ["join", room]) | ("POST", ["rooms", room, "join"]) => join(st, cx, room),
        ("POST", ["rooms", room, "invite"]) => invite(st, cx, room),
        ("POST", ["rooms", room, "leave"]) => leave(st, cx, room),
        ("POST", ["rooms", room, "kick"]) => kick(st, cx, room),
        ("PUT", ["rooms", room, "send", ty, txn]) => send(st, cx, room, ty, txn),
        ("PUT", ["rooms", room, "delayed_event", ty, txn])
            if st.serves_stable() && st.opts.dedicated_endpoint =>
        {
            schedule_dedicated(st, cx, room, ty, txn)
        }
        ("PUT", ["rooms", room, "state", ty]) => put_state(st, cx, room, ty, ""),
        ("PUT", ["rooms", room, "state", ty, key]) => put_state(st, cx, room, ty, key),
        ("GET", ["rooms", room, "state"]) => get_all_state(st, cx, room),
        ("GET", ["rooms", room, "state", ty]) => get_state(st, cx, room, ty, ""),
        ("GET", ["rooms", room, "state", ty, key]) => get_state(st, cx, room, ty, key),
        ("PUT", ["rooms", room, "redact", event_id, _txn]) => redact(st, cx, room, event_id),
        ("GET", ["rooms", room, "messages"]) => messages(st, cx, room),
        ("GET", ["rooms", room, "event", event_id]) => get_event(st, cx, room, event_id),
        ("GET", ["rooms", room, "context", event_id]) => get_context(st, cx, room, event_id),
        ("GET", ["sync"]) => sync(st, cx),
        _ => Err(unrecognized()),
    }
}

pub(super) fn route_msc4140(st: &mut State, cx: &Ctx, method: &str, rest: &[&str]) -> Res {
    match (method, rest) {
        ("PUT", ["rooms", room, "delayed_event", ty, txn]) if st.opts.dedicated_endpoint => {
            schedule_dedicated(st, cx, room, ty, txn)
        }
        ("GET", ["delayed_events"]) => list_delayed(st, cx),
        ("GET", ["delayed_events", delay_id]) => lookup_delayed(st, cx, delay_id),
        ("POST", ["delayed_events", delay_id]) if st.opts.management_forms.body() => {
            manage_body_form(st, cx, delay_id)
        }
        ("POST", ["delayed_events", delay_id, action]) if st.opts.management_forms.split() => {
            manage_split_form(st, cx, delay_id, action)
        }
        _ => Err(unrecognized()),
    }
}
