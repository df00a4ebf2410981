//! A small stateful fake Matrix homeserver on wiremock, for the conformance suite's self-tests.
//!
//! It implements the subset of the Client-Server API the MSC4140 cases use, following the
//! 2026-07-10 revision of MSC4140 (under the unstable prefix) wherever revisions differ (the
//! merged text's 400 `M_DELAY_TOO_LARGE` where a delay is over the maximum), and
//! behaves correctly unless a [`Fault`] is switched on. Each fault breaks exactly one requirement
//! and is checked in exactly one place (search for `Fault::Name`).
//!
//! Layout: options and faults; replies and errors; the request context; state (users, rooms,
//! events, delayed events) with its shared helpers (auth, rate limits, membership rules, power
//! levels, the timeline, the lazy delayed-event timer, accounts, homeserver restart, the log);
//! the router; one function per endpoint, grouped by area.
//!
//! Time is real wall-clock time. Responders are synchronous, so the delayed-event timer is lazy:
//! every request first "ticks", sending every delayed event whose time has come, in order of
//! due time. A `/sync` with nothing new answers empty after min(timeout, 50 ms), so a polling
//! client sees delayed events within about 50 ms of their due time.
//!
//! A homeserver restart ([`FakeHomeserver::begin_restart`], or `FakeTarget::restart`) keeps all
//! data but takes the fake down for [`FakeOptions::restart_downtime`]: every request answers 503
//! and the timer stands still; on coming back, the delayed events that fell due meanwhile are
//! sent at once, in due order, stamped with the moment it came back.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::{json, Map, Value};
use wiremock::{matchers::any, Mock, MockServer, Request, Respond, ResponseTemplate};

const SERVER_NAME: &str = "fake";
const DELAY_PARAM: &str = "org.matrix.msc4140.delay";
const UNSIGNED_DELAY_ID: &str = "org.matrix.msc4140.delay_id";
const SYNC_POLL: Duration = Duration::from_millis(200);
/// `origin_server_ts` offset used by [`Fault::LateTimestamp`].
const LATE_BY_MS: u64 = 40_000;
/// How much earlier than due [`Fault::SendEarly`] sends.
const SEND_EARLY_BY_MS: u64 = 200;
/// [`Fault::StateOverwriteLate`]: how long after a newer state event its overwrite takes effect
/// (longer than the delay of `state_overwrite.other_users_state_cancels`).
const OVERWRITE_LAG_MS: u64 = 3500;
/// [`Fault::BurstDropsExcess`]: how many timer sends of one room a window holds.
const BURST_CAPACITY: usize = 8;
const BURST_WINDOW_MS: u64 = 200;
/// Lines kept in the fake's own log ([`FakeHomeserver::log_tail`]).
const LOG_LINES: usize = 200;
/// The management rate limit, as Synapse's default `rc_delayed_event_mgmt`: burst and refill.
const RATE_BURST: f64 = 5.0;
const RATE_PER_SECOND: f64 = 1.0;
/// The rate-limit bucket of requests without an access token (all come from one IP here).
const ANONYMOUS: &str = "<anonymous>";

// ------------------------------------------------------------------------------------------------
// Options and faults
// ------------------------------------------------------------------------------------------------

/// One deliberate deviation from correct behaviour. Each breaks exactly one requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// The timer sends 200 ms before the due time (half the delay for shorter delays);
    /// `origin_server_ts` is the actual (early) send time.
    SendEarly,
    /// Sent on time, but `origin_server_ts` claims due time + 40 s.
    LateTimestamp,
    /// `cancel` answers 200 but changes nothing: the event is still sent at its time.
    IgnoreCancel,
    /// `cancel` works (never sent, lookup says cancelled) but the event stays in the listing.
    CancelKeepsListing,
    /// `send` answers 200 but the event stays scheduled and is sent at its due time.
    SendActionNoop,
    /// `send` sends now, and the timer sends it a second time at its due time.
    SendActionTwice,
    /// `send` of a delayed state event sends it with state_key "" instead of its own.
    SendActionDropsStateKey,
    /// `restart` answers 200 but the due time is unchanged.
    RestartNoop,
    /// The listing shows every user's scheduled events.
    ListingLeaksOthers,
    /// The listing also shows finalised (sent, cancelled, failed) events.
    ListingIncludesFinalised,
    /// The listing is in reverse due order.
    ListingUnsorted,
    /// Listing and single lookup answer 200 without a token, as the first registered user.
    ListingWithoutAuth,
    /// Listing items lack `content`.
    ListingDropsContent,
    /// Single lookup of another user's delay_id answers 200 with its details.
    SingleLookupLeaks,
    /// Single lookup `GET .../delayed_events/{delay_id}` is not offered (404 M_UNRECOGNIZED).
    SingleLookupMissing,
    /// Scheduling with a used transaction id schedules a second event with a new delay_id.
    IdempotencyBroken,
    /// A negative delay is accepted (and sent at the next request).
    AcceptNegativeDelay,
    /// A delay of 0 gives 500 M_UNKNOWN instead of 400 M_INVALID_PARAM.
    ZeroDelayServerError,
    /// A non-integer delay (1.5, "abc", "1000" as a JSON string) is scheduled with 1000 ms.
    AcceptNonIntegerDelay,
    /// A delay above max_delay_ms is accepted.
    OverMaxAccepted,
    /// A delay above max_delay_ms is refused with 400 M_INVALID_PARAM: no revision's errcode.
    OverMaxWrongErrcode,
    /// Management of an unknown delay_id answers 400 M_UNKNOWN instead of 404 M_NOT_FOUND.
    UnknownDelayIdWrongError,
    /// Body-form management with a missing, non-string or unknown action answers 200 {}.
    BodyActionUnvalidated,
    /// A malformed JSON body on management or scheduling is treated as `{}` instead of M_NOT_JSON.
    MalformedJsonAccepted,
    /// Scheduling into an unknown room answers 200 with a delay_id (it fails at send time).
    UnknownRoomAccepted,
    /// Non-object content is scheduled instead of 400 M_BAD_JSON.
    InvalidContentAccepted,
    /// `/versions` lacks `org.matrix.msc4140` in `unstable_features`.
    NoVersionsFlag,
    /// The capability says max_delay_ms, but delays above max_delay_ms - 1000 are rejected.
    CapabilityOverstatesMaxDelay,
    /// Sent delayed events never carry the delay_id in `unsigned`.
    UnsignedMissing,
    /// The delay_id in `unsigned` is shown to every user, not only the sender.
    UnsignedLeaked,
    /// The delay_id in `unsigned` is present over /sync but absent over /messages.
    UnsignedMissingInMessages,
    /// `send` on a cancelled (or failed) event answers 200 and sends it.
    ActionsOnCancelledSucceed,
    /// `cancel` on a sent event answers 200 {} (instead of 409) and does nothing.
    ActionsOnSentWrong,
    /// A newer state event from another user does not cancel a pending delayed state event.
    StateOverwriteIgnored,
    /// The owner's own newer state event cancels their pending delayed state event too.
    StateOverwriteBySelfCancels,
    /// Power levels are checked at scheduling (403 there) instead of when the event is sent.
    PowerLevelsAtSchedule,
    /// No per-user limit on scheduled delayed events.
    LimitNotEnforced,
    /// The per-user limit answers 429 without a `Retry-After` header.
    LimitWrongRetryAfter,
    /// Management works without a token and on other users' delay_ids (the 2025-12 text).
    MgmtWithoutAuth,
    /// `send` of an event its owner may not send answers 200 and sends it anyway.
    SendActionIgnoresPermissions,
    /// The single lookup answers without `content`.
    SingleLookupDropsContent,
    /// Management without a token, or of another user's delay_id, answers 400 M_UNKNOWN: neither
    /// the refusal of 2024-10 and 2026-07 nor the delegation of 2025-12.
    MgmtAuthWrongError,
    /// The split form answers 200 {} to an unknown action path and does nothing.
    SplitUnknownActionAccepted,
    /// `/capabilities` has no delayed-events capability.
    CapabilityMissing,

    // --- homeserver restart (through `FakeTarget::restart`) -------------------------------------
    /// A restart drops every scheduled delayed event: never sent, unknown to lookups afterwards.
    LosesEventsOnRestart,
    /// Events that fell due while the server was down are sent at start-up in reverse due order.
    OverdueOutOfOrder,
    /// Events that fell due while the server was down are never sent (they stay listed as
    /// scheduled); events due after the restart are still sent.
    OverdueNotSent,
    /// After a restart the listing answers `[]`, though events stay scheduled and are sent.
    ListingEmptyAfterRestart,
    /// Coming back from a restart, the server sends again every delayed event it had sent
    /// before (the record of having sent them was lost).
    ResendsSentAfterRestart,
    /// After a hard kill (`FakeTarget::kill`), the events that fell due while it was down are
    /// each sent twice.
    OverdueTwiceAfterKill,

    // --- rate limits (only with `FakeOptions::rate_limits`) -------------------------------------
    /// Management actions (both forms) are never rate-limited.
    MgmtNotRateLimited,
    /// Lookups (listing and single lookup) are never rate-limited.
    LookupsNotRateLimited,

    // --- guests and deactivated accounts ---------------------------------------------------------
    /// Every delayed-event endpoint answers 403 `M_GUEST_ACCESS_FORBIDDEN` to guest accounts.
    GuestsRefused,
    /// Deactivation leaves the user's delayed events scheduled, and they are sent at their time
    /// without any authorisation check (though their owner has left every room).
    DeactivatedStillSends,

    // --- state overwrite (the 2024-10 rule) ------------------------------------------------------
    /// Another user's newer state event cancels delayed state events of the same type in the room
    /// whatever their state_key, and those with the same (type, state_key) in other rooms; another
    /// user's message event cancels delayed message events of the same type in the room.
    StateOverwriteTooBroad,
    /// A state overwrite cancels the delayed event (never sent), but it stays in the listing.
    StateOverwriteCancelsButListed,
    /// The 2024-10 overwrite rule applies, but only [`OVERWRITE_LAG_MS`] after the newer state
    /// event was accepted (as a server that processes state changes in the background, behind).
    StateOverwriteLate,

    // --- permissions at send time ----------------------------------------------------------------
    /// A `send` action refused for lack of permission finalises the event (failed) instead of
    /// keeping it scheduled.
    SendActionFailureFinalises,
    /// Delayed events of a user who left or was kicked from the room are sent anyway.
    LeftMemberStillSends,

    // --- field scenarios ---------------------------------------------------------------------------
    /// The timer sends at most [`BURST_CAPACITY`] events of one room within [`BURST_WINDOW_MS`];
    /// the rest of a burst is forgotten (never sent, still listed).
    BurstDropsExcess,
    /// Any management action on a finalised (sent or cancelled) event also cancels every other
    /// scheduled event of its owner.
    ActionOnFinalisedCancelsOthers,
    /// A `restart` re-arms every scheduled delayed event in the room, whoever owns it.
    RestartRearmsWholeRoom,
    /// The management rate limit (with `FakeOptions::rate_limits`) counts every user's actions
    /// in one bucket, as a limit per client address would for users behind one address.
    MgmtRateLimitPerAddress,

    // --- per-user limit --------------------------------------------------------------------------
    /// Cancelled delayed events still count against the per-user limit.
    LimitNotFreedByCancel,
    /// The limit's `Retry-After` is the time until the user's latest due event, not the earliest.
    LimitRetryAfterWrongValue,

    // --- delay_id quality ------------------------------------------------------------------------
    /// delay_ids are "1", "2", "3", ... (guessable).
    SequentialDelayIds,
    /// A finalised (sent or cancelled) event's delay_id is handed out again to the next scheduled
    /// event, which then answers to it.
    ReusedDelayIds,

    // --- content of sent events ------------------------------------------------------------------
    /// A delayed `m.room.redaction` is sent but redacts nothing.
    DelayedRedactionIgnored,
    /// The event sent from a delayed event loses its content's `m.mentions`.
    DelayedContentMangled,
}

impl Fault {
    /// Every fault, for self-tests that iterate over them.
    pub const ALL: &'static [Fault] = &[
        Fault::SendEarly,
        Fault::LateTimestamp,
        Fault::IgnoreCancel,
        Fault::CancelKeepsListing,
        Fault::SendActionNoop,
        Fault::SendActionTwice,
        Fault::SendActionDropsStateKey,
        Fault::RestartNoop,
        Fault::ListingLeaksOthers,
        Fault::ListingIncludesFinalised,
        Fault::ListingUnsorted,
        Fault::ListingWithoutAuth,
        Fault::ListingDropsContent,
        Fault::SingleLookupLeaks,
        Fault::SingleLookupMissing,
        Fault::IdempotencyBroken,
        Fault::AcceptNegativeDelay,
        Fault::ZeroDelayServerError,
        Fault::AcceptNonIntegerDelay,
        Fault::OverMaxAccepted,
        Fault::OverMaxWrongErrcode,
        Fault::UnknownDelayIdWrongError,
        Fault::BodyActionUnvalidated,
        Fault::MalformedJsonAccepted,
        Fault::UnknownRoomAccepted,
        Fault::InvalidContentAccepted,
        Fault::NoVersionsFlag,
        Fault::CapabilityOverstatesMaxDelay,
        Fault::UnsignedMissing,
        Fault::UnsignedLeaked,
        Fault::UnsignedMissingInMessages,
        Fault::ActionsOnCancelledSucceed,
        Fault::ActionsOnSentWrong,
        Fault::StateOverwriteIgnored,
        Fault::StateOverwriteBySelfCancels,
        Fault::PowerLevelsAtSchedule,
        Fault::LimitNotEnforced,
        Fault::LimitWrongRetryAfter,
        Fault::MgmtWithoutAuth,
        Fault::SendActionIgnoresPermissions,
        Fault::SingleLookupDropsContent,
        Fault::MgmtAuthWrongError,
        Fault::SplitUnknownActionAccepted,
        Fault::CapabilityMissing,
        Fault::LosesEventsOnRestart,
        Fault::OverdueOutOfOrder,
        Fault::OverdueNotSent,
        Fault::ListingEmptyAfterRestart,
        Fault::MgmtNotRateLimited,
        Fault::LookupsNotRateLimited,
        Fault::GuestsRefused,
        Fault::DeactivatedStillSends,
        Fault::StateOverwriteTooBroad,
        Fault::StateOverwriteCancelsButListed,
        Fault::StateOverwriteLate,
        Fault::ResendsSentAfterRestart,
        Fault::OverdueTwiceAfterKill,
        Fault::BurstDropsExcess,
        Fault::ActionOnFinalisedCancelsOthers,
        Fault::RestartRearmsWholeRoom,
        Fault::MgmtRateLimitPerAddress,
        Fault::SendActionFailureFinalises,
        Fault::LeftMemberStillSends,
        Fault::LimitNotFreedByCancel,
        Fault::LimitRetryAfterWrongValue,
        Fault::SequentialDelayIds,
        Fault::ReusedDelayIds,
        Fault::DelayedRedactionIgnored,
        Fault::DelayedContentMangled,
    ];
}

/// How the fake is configured. `Default` is a correct server.
#[derive(Clone, Debug)]
pub struct FakeOptions {
    pub faults: HashSet<Fault>,
    /// Offer `PUT <prefix>/rooms/{roomId}/delayed_event/{type}/{txnId}` (default true).
    pub dedicated_endpoint: bool,
    /// Maximum delay, advertised in the capability (default 1 h).
    pub max_delay_ms: u64,
    /// Per-user limit on scheduled delayed events (default 50; 0 forbids scheduling).
    pub max_scheduled: u64,
    /// Rate-limit management actions and lookups per user, burst 5 refilling 1/s, as Synapse's
    /// `rc_delayed_event_mgmt` (default false: the catalogue manages events quickly).
    pub rate_limits: bool,
    /// How long a homeserver restart ([`FakeHomeserver::begin_restart`]) keeps the fake down,
    /// answering 503 to everything (default 1.5 s, about what Synapse takes).
    pub restart_downtime: Duration,
    /// Register guests only with `kind: "guest"` in the body, ignoring the `?kind=guest` query
    /// parameter of the Client-Server API, as some servers do (default false).
    pub guest_kind_in_body_only: bool,
    /// Announce the server in `/versions` (MSC4383, `net.zemos.msc4383.server`) (default true).
    pub announce_in_versions: bool,
    /// Answer `GET /_matrix/federation/v1/version` on the client port (default true).
    pub federation_version: bool,
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions {
            faults: HashSet::new(),
            dedicated_endpoint: true,
            max_delay_ms: 3_600_000,
            max_scheduled: 50,
            rate_limits: false,
            restart_downtime: Duration::from_millis(1500),
            guest_kind_in_body_only: false,
            announce_in_versions: true,
            federation_version: true,
        }
    }
}

impl FakeOptions {
    /// The default options with one fault switched on.
    pub fn with_fault(fault: Fault) -> Self {
        let mut opts = FakeOptions::default();
        opts.faults.insert(fault);
        opts
    }
}

/// The running fake. Dropping it stops the server.
pub struct FakeHomeserver {
    server: MockServer,
    state: Arc<Mutex<State>>,
    /// Fires delayed events on time whether or not requests come in.
    timer: tokio::task::JoinHandle<()>,
}

impl Drop for FakeHomeserver {
    fn drop(&mut self) {
        self.timer.abort();
    }
}

/// How often the fake's timer looks for due delayed events.
const TIMER_TICK: Duration = Duration::from_millis(10);

impl FakeHomeserver {
    /// Registration shared secret for the Synapse admin register API.
    pub const SHARED_SECRET: &'static str = "fake-shared-secret";
    /// How the fake names itself (MSC4383 in `/versions`, and the federation version endpoint).
    pub const NAME: &'static str = "FakeHomeserver";
    pub const VERSION: &'static str = "0.1";

    pub async fn start(opts: FakeOptions) -> FakeHomeserver {
        let state = Arc::new(Mutex::new(State::new(opts)));
        let server = MockServer::builder()
            .disable_request_recording()
            .start()
            .await;
        Mock::given(any())
            .respond_with(Router {
                state: state.clone(),
            })
            .mount(&server)
            .await;
        let timer = tokio::spawn(run_timer(Arc::downgrade(&state)));
        FakeHomeserver {
            server,
            state,
            timer,
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Starts a homeserver restart: the fake sends what is due, then goes down for
    /// [`FakeOptions::restart_downtime`] (503 to everything, timer stopped). Answers how long
    /// until it may come back; call [`FakeHomeserver::finish_restart`] then (or let the next
    /// request bring it back).
    pub fn begin_restart(&self) -> Duration {
        let mut st = lock(&self.state);
        let downtime = st.opts.restart_downtime;
        st.go_down(downtime);
        downtime
    }

    /// Starts a hard kill: the same downtime as a restart, but the kill faults apply when the
    /// fake comes back.
    pub fn begin_kill(&self) -> Duration {
        let mut st = lock(&self.state);
        let downtime = st.opts.restart_downtime;
        st.go_down(downtime);
        st.killed = true;
        downtime
    }

    /// Brings the fake back up if its downtime has passed, sending the delayed events that fell
    /// due meanwhile. Answers the downtime left, or `None` once the fake is up.
    pub fn finish_restart(&self) -> Option<Duration> {
        let mut st = lock(&self.state);
        st.now = now_ms();
        match st.check_up() {
            Ok(()) => None,
            Err(_) => Some(Duration::from_millis(
                st.down_until
                    .unwrap_or(st.now)
                    .saturating_sub(st.now)
                    .max(1),
            )),
        }
    }

    /// Every delayed-event request so far (recording mode), oldest first.
    pub fn delayed_requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).recorded.clone()
    }

    /// The last `lines` lines of what the fake did (requests, sends, restarts), oldest first.
    pub fn log_tail(&self, lines: usize) -> String {
        let st = lock(&self.state);
        let skip = st.log.len().saturating_sub(lines);
        st.log
            .iter()
            .skip(skip)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

// ------------------------------------------------------------------------------------------------
// Replies and errors
// ------------------------------------------------------------------------------------------------

/// A response under construction (cloneable, so transaction ids can replay it).
#[derive(Clone, Debug)]
struct Reply {
    status: u16,
    body: Value,
    headers: Vec<(&'static str, String)>,
    delay: Option<Duration>,
}

/// Handlers return `Err` for error replies so that `?` works.
type Res = Result<Reply, Reply>;

impl Reply {
    fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    fn into_template(self) -> ResponseTemplate {
        let mut t = ResponseTemplate::new(self.status).set_body_json(self.body);
        for (k, v) in self.headers {
            t = t.insert_header(k, v.as_str());
        }
        match self.delay {
            Some(d) => t.set_delay(d),
            None => t,
        }
    }
}

fn ok(body: Value) -> Reply {
    Reply {
        status: 200,
        body,
        headers: Vec::new(),
        delay: None,
    }
}

fn err(status: u16, errcode: &str, msg: impl Into<String>) -> Reply {
    ok(json!({"errcode": errcode, "error": msg.into()})).with_status(status)
}

fn forbidden(msg: impl Into<String>) -> Reply {
    err(403, "M_FORBIDDEN", msg)
}
fn not_found(msg: impl Into<String>) -> Reply {
    err(404, "M_NOT_FOUND", msg)
}
fn bad_json(msg: impl Into<String>) -> Reply {
    err(400, "M_BAD_JSON", msg)
}
fn not_json() -> Reply {
    err(400, "M_NOT_JSON", "Content not JSON.")
}
fn invalid_param(msg: impl Into<String>) -> Reply {
    err(400, "M_INVALID_PARAM", msg)
}
fn missing_param(name: &str) -> Reply {
    err(400, "M_MISSING_PARAM", format!("Missing parameter: {name}"))
}
fn unrecognized() -> Reply {
    err(404, "M_UNRECOGNIZED", "Unrecognized request")
}
fn guest_forbidden() -> Reply {
    err(403, "M_GUEST_ACCESS_FORBIDDEN", "Guest access not allowed")
}
fn conflict(msg: impl Into<String>) -> Reply {
    err(409, "M_UNKNOWN", msg)
}

// ------------------------------------------------------------------------------------------------
// Request context
// ------------------------------------------------------------------------------------------------

struct Ctx {
    method: String,
    /// Raw (still percent-encoded) path, used as the transaction-id scope.
    path: String,
    segs: Vec<String>,
    query: HashMap<String, String>,
    token: Option<String>,
    body: Vec<u8>,
}

enum Body {
    Empty,
    Malformed,
    Json(Value),
}

impl Ctx {
    fn from_request(req: &Request) -> Ctx {
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

    fn body(&self) -> Body {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Body::Empty;
        }
        match serde_json::from_slice(&self.body) {
            Ok(v) => Body::Json(v),
            Err(_) => Body::Malformed,
        }
    }

    /// The body as a JSON object (ordinary endpoints). `empty_ok`: an empty body means `{}`.
    fn object_body(&self, empty_ok: bool) -> Result<Map<String, Value>, Reply> {
        match self.body() {
            Body::Empty if empty_ok => Ok(Map::new()),
            Body::Empty | Body::Malformed => Err(not_json()),
            Body::Json(Value::Object(m)) => Ok(m),
            Body::Json(_) => Err(bad_json("Content must be a JSON object.")),
        }
    }

    fn q(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }
}

// ------------------------------------------------------------------------------------------------
// State
// ------------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Session {
    token: String,
    user_id: String,
    device_id: String,
    is_guest: bool,
}

struct User {
    password: String,
    is_guest: bool,
    deactivated: bool,
}

struct Room {
    creator: String,
    /// (type, state_key) -> index into `State::events`.
    state: HashMap<(String, String), usize>,
    /// Indices into `State::events`, in stream order.
    timeline: Vec<usize>,
}

struct Event {
    /// Stream position (1-based, global); sync tokens are positions.
    pos: u64,
    event_id: String,
    room_id: String,
    ev_type: String,
    sender: String,
    state_key: Option<String>,
    content: Value,
    origin_server_ts: u64,
    /// Index of the redaction event that redacted this one.
    redacted_by: Option<usize>,
    /// Set when this event was sent from a delayed event.
    delay_id: Option<String>,
}

#[derive(Clone, Debug)]
enum Outcome {
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
    fn of_send(result: Result<String, Reply>) -> Outcome {
        match result {
            Ok(event_id) => Outcome::Sent { event_id },
            Err(e) => Outcome::Failed {
                error: e.body,
                by_overwrite: false,
            },
        }
    }

    fn describe(&self) -> String {
        match self {
            Outcome::Scheduled => "scheduled".into(),
            Outcome::Sent { event_id } => format!("sent as {event_id}"),
            Outcome::Cancelled => "cancelled".into(),
            Outcome::Failed { error, .. } => format!("failed ({})", error["errcode"]),
        }
    }
}

struct Delayed {
    seq: u64,
    delay_id: String,
    owner: String,
    room_id: String,
    ev_type: String,
    state_key: Option<String>,
    content: Value,
    delay_ms: i64,
    scheduled_at: u64,
    outcome: Outcome,
    finalised_ts: Option<u64>,
    /// [`Fault::SendActionTwice`]: the timer will send it again at its due time.
    timer_resend: bool,
    /// [`Fault::OverdueNotSent`]: the timer forgot it; it is never sent.
    stalled: bool,
    /// [`Fault::DeactivatedStillSends`]: sent without any authorisation check.
    unchecked: bool,
}

impl Delayed {
    fn due(&self) -> u64 {
        (self.scheduled_at as i64)
            .saturating_add(self.delay_ms)
            .max(0) as u64
    }

    fn to_json(&self, finalised_fields: bool) -> Value {
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

/// A delayed event about to be scheduled, after validation of the request.
struct NewDelayed {
    room_id: String,
    ev_type: String,
    state_key: Option<String>,
    content: Value,
    delay_ms: i64,
}

/// An event about to be appended to a room's timeline.
struct Draft<'a> {
    room_id: &'a str,
    sender: &'a str,
    ev_type: &'a str,
    state_key: Option<String>,
    content: Value,
    ts: u64,
    /// Set when the event is sent from a delayed event.
    delay_id: Option<String>,
}

/// A new event, as far as cancelling the delayed events it overwrites goes.
struct Overwrite<'a> {
    room_id: &'a str,
    ev_type: &'a str,
    state_key: Option<&'a str>,
    sender: &'a str,
    /// Set when the new event is itself sent from a delayed event.
    delay_id: Option<&'a str>,
}

/// When an authorisation check happens; the delayed-event faults about power levels hinge on it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// An ordinary, non-delayed send.
    Direct,
    /// Scheduling a delayed event.
    Schedule,
    /// The timer sending a delayed event.
    Timer,
    /// The `send` management action.
    SendAction,
}

/// Where an event is being served; [`Fault::UnsignedMissingInMessages`] distinguishes them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Surface {
    Sync,
    Messages,
    Other,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Send,
    Cancel,
    Restart,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        match s {
            "send" => Some(Action::Send),
            "cancel" => Some(Action::Cancel),
            "restart" => Some(Action::Restart),
            _ => None,
        }
    }
}

/// A requested delay before validation.
enum DelayInput {
    Int(i128),
    Other,
}

impl DelayInput {
    fn from_query(s: &str) -> DelayInput {
        let digits = s.strip_prefix('-').unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return DelayInput::Other;
        }
        let n = digits.parse::<i128>().unwrap_or(i128::MAX);
        DelayInput::Int(if s.starts_with('-') { -n } else { n })
    }

    fn from_json(v: &Value) -> DelayInput {
        match v {
            Value::Number(n) if n.is_i64() => DelayInput::Int(n.as_i64().unwrap_or(0) as i128),
            Value::Number(n) if n.is_u64() => DelayInput::Int(n.as_u64().unwrap_or(0) as i128),
            _ => DelayInput::Other,
        }
    }
}

struct State {
    opts: FakeOptions,
    /// Wall-clock time of the request being handled (ms since the epoch).
    now: u64,
    users: HashMap<String, User>,
    /// User ids in registration order ([`Fault::ListingWithoutAuth`] acts as the first).
    user_order: Vec<String>,
    sessions: HashMap<String, Session>,
    nonces: HashSet<String>,
    rooms: HashMap<String, Room>,
    aliases: HashMap<String, String>,
    events: Vec<Event>,
    event_index: HashMap<String, usize>,
    delayed: Vec<Delayed>,
    delayed_index: HashMap<String, usize>,
    /// (access token, request path) -> the successful reply, for transaction ids.
    txns: HashMap<(String, String), Reply>,
    guest_counter: u64,
    /// Delayed events scheduled so far (their `seq`; sequential delay_ids).
    delayed_counter: u64,
    /// While down for a restart: the wall-clock time (ms) the fake comes back.
    down_until: Option<u64>,
    /// Homeserver restarts so far.
    restarts: u64,
    /// The current downtime is a hard kill, not a clean restart.
    killed: bool,
    /// [`Fault::BurstDropsExcess`]: the timer's recent sends (time, room).
    recent_timer_sends: VecDeque<(u64, String)>,
    /// [`Fault::StateOverwriteLate`]: events whose overwrite takes effect later, and when.
    late_overwrites: Vec<(u64, usize)>,
    /// Rate-limit buckets, by user id (or [`ANONYMOUS`]).
    buckets: HashMap<String, Bucket>,
    /// What the fake did, oldest first (requests, sends, restarts); at most [`LOG_LINES`].
    log: VecDeque<String>,
    /// Every delayed-event request, as evidence of the API forms a client uses (recording mode).
    recorded: Vec<RecordedRequest>,
}

/// A token bucket of the management rate limit.
struct Bucket {
    tokens: f64,
    at: u64,
}

/// Requests that share the management rate limit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Limited {
    /// The `send`, `cancel` and `restart` actions (either form).
    Management,
    /// The listing and the single lookup.
    Lookup,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

const URL_SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn random_string(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

/// A user id from a localpart or a user id.
fn qualify(user: &str) -> String {
    if user.starts_with('@') {
        user.to_string()
    } else {
        format!("@{user}:{SERVER_NAME}")
    }
}

fn int_field(obj: &Value, key: &str) -> Option<i64> {
    match obj.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

impl State {
    fn new(opts: FakeOptions) -> State {
        State {
            opts,
            now: now_ms(),
            users: HashMap::new(),
            user_order: Vec::new(),
            sessions: HashMap::new(),
            nonces: HashSet::new(),
            rooms: HashMap::new(),
            aliases: HashMap::new(),
            events: Vec::new(),
            event_index: HashMap::new(),
            delayed: Vec::new(),
            delayed_index: HashMap::new(),
            txns: HashMap::new(),
            guest_counter: 0,
            delayed_counter: 0,
            down_until: None,
            restarts: 0,
            killed: false,
            late_overwrites: Vec::new(),
            recent_timer_sends: VecDeque::new(),
            buckets: HashMap::new(),
            log: VecDeque::new(),
            recorded: Vec::new(),
        }
    }

    fn fault(&self, f: Fault) -> bool {
        self.opts.faults.contains(&f)
    }

    fn head(&self) -> u64 {
        self.events.len() as u64
    }

    // --- auth -----------------------------------------------------------------------------------

    fn session(&self, cx: &Ctx) -> Result<Session, Reply> {
        let token = cx
            .token
            .as_ref()
            .ok_or_else(|| err(401, "M_MISSING_TOKEN", "Missing access token."))?;
        self.sessions
            .get(token)
            .cloned()
            .ok_or_else(|| err(401, "M_UNKNOWN_TOKEN", "Unrecognised access token."))
    }

    /// Who may manage delayed events: `None` means anyone ([`Fault::MgmtWithoutAuth`]).
    fn mgmt_requester(&self, cx: &Ctx) -> Result<Option<String>, Reply> {
        if self.fault(Fault::MgmtWithoutAuth) {
            return Ok(None);
        }
        if cx.token.is_none() && self.fault(Fault::MgmtAuthWrongError) {
            return Err(err(400, "M_UNKNOWN", "bad request"));
        }
        Ok(Some(self.session(cx)?.user_id))
    }

    /// Whose delayed events a lookup shows.
    fn lookup_requester(&self, cx: &Ctx) -> Result<String, Reply> {
        if cx.token.is_none() && self.fault(Fault::ListingWithoutAuth) {
            if let Some(first) = self.user_order.first() {
                return Ok(first.clone());
            }
        }
        Ok(self.session(cx)?.user_id)
    }

    /// [`Fault::GuestsRefused`]: the delayed-event API is closed to guest accounts.
    fn refuse_guests(&self, cx: &Ctx) -> Result<(), Reply> {
        let guest = self.session(cx).is_ok_and(|s| s.is_guest);
        if guest && self.fault(Fault::GuestsRefused) {
            return Err(guest_forbidden());
        }
        Ok(())
    }

    /// The management rate limit (a token bucket per user, or per IP without a token), when
    /// [`FakeOptions::rate_limits`] is on. Call after the request's authentication.
    fn rate_limit(&mut self, cx: &Ctx, kind: Limited) -> Result<(), Reply> {
        let exempt = match kind {
            Limited::Management => self.fault(Fault::MgmtNotRateLimited),
            Limited::Lookup => self.fault(Fault::LookupsNotRateLimited),
        };
        if !self.opts.rate_limits || exempt {
            return Ok(());
        }
        let key = match self.session(cx) {
            _ if kind == Limited::Management && self.fault(Fault::MgmtRateLimitPerAddress) => {
                "the one client address".to_string()
            }
            Ok(session) => session.user_id,
            Err(_) => ANONYMOUS.to_string(),
        };
        let now = self.now;
        let bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: RATE_BURST,
            at: now,
        });
        let refill = now.saturating_sub(bucket.at) as f64 / 1000.0 * RATE_PER_SECOND;
        bucket.tokens = (bucket.tokens + refill).min(RATE_BURST);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait_ms = ((1.0 - bucket.tokens) * 1000.0 / RATE_PER_SECOND).ceil() as u64;
        Err(ok(json!({
            "errcode": "M_LIMIT_EXCEEDED",
            "error": "Too many requests",
            "retry_after_ms": wait_ms,
        }))
        .with_status(429)
        .header("Retry-After", wait_ms.div_ceil(1000).to_string()))
    }

    /// User-interactive auth with the one stage `m.login.password`, proving `s`'s own password.
    fn password_auth(&self, s: &Session, auth: Option<&Value>) -> Result<(), Reply> {
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

    fn create_user(
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

    fn create_session(&mut self, user_id: &str) -> Session {
        let session = Session {
            token: format!("fake_{}", random_string(32, ALNUM)),
            user_id: user_id.to_string(),
            device_id: random_string(10, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
            is_guest: self.users.get(user_id).map(|u| u.is_guest).unwrap_or(false),
        };
        self.sessions.insert(session.token.clone(), session.clone());
        session
    }

    fn login_reply(session: &Session) -> Reply {
        ok(json!({
            "user_id": session.user_id,
            "access_token": session.token,
            "device_id": session.device_id,
            "home_server": SERVER_NAME,
        }))
    }

    /// Replays the reply of an earlier request with the same token and path (transaction ids).
    fn with_txn(
        &mut self,
        session: &Session,
        cx: &Ctx,
        use_cache: bool,
        f: impl FnOnce(&mut State) -> Res,
    ) -> Res {
        let key = (session.token.clone(), cx.path.clone());
        if use_cache {
            if let Some(reply) = self.txns.get(&key) {
                return Ok(reply.clone());
            }
        }
        let reply = f(self)?;
        self.txns.insert(key, reply.clone());
        Ok(reply)
    }

    // --- rooms, membership, power levels ---------------------------------------------------------

    fn room(&self, room_id: &str) -> Result<&Room, Reply> {
        self.rooms
            .get(room_id)
            .ok_or_else(|| not_found("Unknown room."))
    }

    fn resolve_room(&self, id_or_alias: &str) -> Result<String, Reply> {
        if id_or_alias.starts_with('#') {
            return self
                .aliases
                .get(id_or_alias)
                .cloned()
                .ok_or_else(|| not_found("Unknown alias."));
        }
        self.room(id_or_alias).map(|_| id_or_alias.to_string())
    }

    fn state_event(&self, room: &Room, ev_type: &str, state_key: &str) -> Option<&Event> {
        room.state
            .get(&(ev_type.to_string(), state_key.to_string()))
            .map(|&i| &self.events[i])
    }

    /// The user's membership in the room and the stream position of that membership event.
    fn membership(&self, room: &Room, user_id: &str) -> Option<(String, u64)> {
        let ev = self.state_event(room, "m.room.member", user_id)?;
        Some((ev.content.get("membership")?.as_str()?.to_string(), ev.pos))
    }

    fn is_joined(&self, room: &Room, user_id: &str) -> bool {
        matches!(self.membership(room, user_id), Some((m, _)) if m == "join")
    }

    fn power_levels(&self, room: &Room) -> Value {
        self.state_event(room, "m.room.power_levels", "")
            .map(|e| e.content.clone())
            .unwrap_or(json!({}))
    }

    /// A user's power level; the room creator is all-powerful (as in room version 12), so that
    /// power-level contents written for v12 rooms (creator not listed) work here too.
    fn user_level(room: &Room, pl: &Value, user_id: &str) -> i64 {
        if user_id == room.creator {
            return i64::MAX / 2;
        }
        pl.get("users")
            .and_then(|u| int_field(u, user_id))
            .or_else(|| int_field(pl, "users_default"))
            .unwrap_or(0)
    }

    fn required_level(pl: &Value, ev_type: &str, is_state: bool) -> i64 {
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
    fn authorise(
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
    fn left_member_still_sends(&self, room: &Room, sender: &str, phase: Phase) -> bool {
        let left = matches!(self.membership(room, sender), Some((m, _)) if m == "leave");
        left && phase == Phase::Timer && self.fault(Fault::LeftMemberStillSends)
    }

    fn guest_can_join(&self, room: &Room) -> bool {
        self.state_event(room, "m.room.guest_access", "")
            .and_then(|e| e.content.get("guest_access"))
            .and_then(Value::as_str)
            == Some("can_join")
    }

    /// The authorisation rules for `m.room.member` events (room versions 1-12, without knocks
    /// and third-party invites); guests may only join rooms whose guest access is `can_join`.
    fn check_membership_change(
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

    fn check_levels(
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

    // --- timeline -------------------------------------------------------------------------------

    /// Appends an event to a room's timeline (no checks), updating state and applying redactions.
    fn append_event(&mut self, draft: Draft) -> String {
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
        if self.fault(Fault::StateOverwriteLate) {
            self.late_overwrites
                .push((self.now + OVERWRITE_LAG_MS, idx));
        } else {
            self.overwrite_by(idx);
        }
        let ignored = delay_id.is_some() && self.fault(Fault::DelayedRedactionIgnored);
        if ev_type == "m.room.redaction" && !ignored {
            self.apply_redaction(idx);
        }
        event_id
    }

    fn apply_redaction(&mut self, redaction: usize) {
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

    /// The event at `idx` cancels what it overwrites.
    fn overwrite_by(&mut self, idx: usize) {
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
    fn cancel_overwritten(&mut self, new: &Overwrite) {
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
    fn overwrites(&self, new: &Overwrite, d: &Delayed) -> bool {
        let broad = self.fault(Fault::StateOverwriteTooBroad);
        let same_room = d.room_id == new.room_id;
        d.ev_type == new.ev_type
            && match (new.state_key, d.state_key.as_deref()) {
                (Some(a), Some(b)) if a == b => same_room || broad,
                (Some(_), Some(_)) | (None, None) => same_room && broad,
                _ => false,
            }
    }

    /// An event as a client sees it.
    fn render(&self, idx: usize, viewer: &str, surface: Surface, with_room_id: bool) -> Value {
        let ev = &self.events[idx];
        let mut unsigned = Map::new();
        if let Some(delay_id) = &ev.delay_id {
            let show = if self.fault(Fault::UnsignedMissing) {
                false
            } else if self.fault(Fault::UnsignedLeaked) {
                true
            } else if self.fault(Fault::UnsignedMissingInMessages) && surface == Surface::Messages {
                false
            } else {
                ev.sender == viewer
            };
            if show {
                unsigned.insert(UNSIGNED_DELAY_ID.into(), json!(delay_id));
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

    // --- delayed events -------------------------------------------------------------------------

    fn delayed_mut(&mut self, idx: usize) -> &mut Delayed {
        &mut self.delayed[idx]
    }

    /// When the lazy timer acts on this delayed event, if at all.
    fn fire_time(&self, d: &Delayed) -> Option<u64> {
        match d.outcome {
            _ if d.stalled => None,
            Outcome::Scheduled if self.fault(Fault::SendEarly) => {
                // Early by a margin no correct timer or loaded harness could explain.
                let delay = d.delay_ms.max(0) as u64;
                Some(d.scheduled_at + delay.saturating_sub(SEND_EARLY_BY_MS).max(delay / 2))
            }
            Outcome::Scheduled => Some(d.due()),
            Outcome::Sent { .. } if d.timer_resend => Some(d.due()),
            _ => None,
        }
    }

    /// `origin_server_ts` of an event sent by the timer.
    fn timer_timestamp(&self, d: &Delayed) -> u64 {
        if self.fault(Fault::SendEarly) {
            self.now
        } else if self.fault(Fault::LateTimestamp) {
            d.due() + LATE_BY_MS
        } else {
            d.due()
        }
    }

    /// Delayed events the timer must act on now, in order of due time.
    fn due_now(&self) -> Vec<usize> {
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
    fn tick(&mut self) {
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
    fn fire(&mut self, idx: usize, ts: u64) {
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

    /// [`Fault::BurstDropsExcess`]: whether the timer already sent its fill into this event's
    /// room within the window (and if not, counts this send).
    fn burst_full(&mut self, idx: usize) -> bool {
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
    fn emit_delayed(
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
        let mut content = d.content.clone();
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
    fn finalise(&mut self, idx: usize, outcome: Outcome) {
        let now = self.now;
        let line = format!(
            "delayed event {} {}",
            self.delayed[idx].delay_id,
            outcome.describe()
        );
        let d = self.delayed_mut(idx);
        d.outcome = outcome;
        d.finalised_ts = Some(now);
        self.log(line);
    }

    /// Validates a requested delay against the rules (and the delay faults).
    fn validate_delay(&self, input: DelayInput) -> Result<i64, Reply> {
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
    fn check_content(&self, content: Value) -> Result<Value, Reply> {
        if content.is_object() || self.fault(Fault::InvalidContentAccepted) {
            Ok(content)
        } else {
            Err(bad_json("Content must be a JSON object."))
        }
    }

    /// The body of a delayed-event request (scheduling or management).
    fn delayed_api_body(&self, cx: &Ctx, empty_ok: bool) -> Result<Value, Reply> {
        match cx.body() {
            Body::Json(v) => Ok(v),
            Body::Empty if empty_ok => Ok(json!({})),
            _ if self.fault(Fault::MalformedJsonAccepted) => Ok(json!({})),
            _ => Err(not_json()),
        }
    }

    /// The per-user limit on scheduled delayed events.
    fn check_limit(&self, user_id: &str) -> Result<(), Reply> {
        if self.fault(Fault::LimitNotEnforced) {
            return Ok(());
        }
        if self.opts.max_scheduled == 0 {
            return Err(forbidden("Delayed events are not allowed."));
        }
        let counts = |d: &Delayed| match d.outcome {
            Outcome::Scheduled => true,
            Outcome::Cancelled => self.fault(Fault::LimitNotFreedByCancel),
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
        let retry_after = next_due
            .unwrap_or(&self.now)
            .saturating_sub(self.now)
            .div_ceil(1000);
        let reply = err(
            429,
            "M_LIMIT_EXCEEDED",
            "The maximum number of delayed events has been reached.",
        );
        if self.fault(Fault::LimitWrongRetryAfter) {
            return Err(reply);
        }
        Err(reply.header("Retry-After", retry_after.to_string()))
    }

    /// A fresh delay_id for `owner`: random and unused unless a delay_id fault says otherwise.
    fn new_delay_id(&self, owner: &str) -> String {
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
    fn schedule(&mut self, session: &Session, new: NewDelayed) -> Res {
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
        self.check_limit(&session.user_id)?;
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
            outcome: Outcome::Scheduled,
            finalised_ts: None,
            timer_resend: false,
            stalled: false,
            unchecked: false,
        });
        self.delayed_counter += 1;
        Ok(ok(json!({ "delay_id": delay_id })))
    }

    /// Whether the listing shows this (owned) delayed event.
    fn listed(&self, d: &Delayed) -> bool {
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
    fn manage(&mut self, requester: Option<&str>, delay_id: &str, action: Action) -> Res {
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
                if !self.fault(Fault::IgnoreCancel) {
                    self.finalise(idx, Outcome::Cancelled);
                }
                Ok(ok(json!({})))
            }
            (Outcome::Scheduled, Action::Restart) => {
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
            (Outcome::Sent { .. }, _) => Err(conflict("The delayed event has already been sent.")),
            (Outcome::Cancelled | Outcome::Failed { .. }, Action::Cancel) => Ok(ok(json!({}))),
            (Outcome::Cancelled | Outcome::Failed { .. }, Action::Send)
                if self.fault(Fault::ActionsOnCancelledSucceed) =>
            {
                let state_key = self.delayed[idx].state_key.clone();
                let event_id = self.emit_delayed(idx, self.now, state_key, Phase::SendAction)?;
                self.finalise(idx, Outcome::Sent { event_id });
                Ok(ok(json!({})))
            }
            (Outcome::Cancelled | Outcome::Failed { .. }, _) => {
                Err(conflict("The delayed event has already been cancelled."))
            }
        }
    }

    /// The `send` action on a scheduled event: on error it answers the error and stays scheduled.
    fn send_action(&mut self, idx: usize) -> Res {
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
                self.finalise(idx, Outcome::Sent { event_id });
                self.delayed_mut(idx).timer_resend = self.fault(Fault::SendActionTwice);
                Ok(ok(json!({})))
            }
            Err(e) => {
                if self.fault(Fault::SendActionFailureFinalises) {
                    self.finalise(idx, Outcome::of_send(Err(e.clone())));
                }
                Err(e)
            }
        }
    }

    // --- accounts -------------------------------------------------------------------------------

    /// Deactivates an account: its tokens stop working, it leaves its rooms, and its scheduled
    /// delayed events are cancelled.
    fn deactivate_user(&mut self, user_id: &str) {
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

    // --- homeserver restart ---------------------------------------------------------------------

    /// Stops the "server" for `downtime`: what is due is sent first, then every request answers
    /// 503 and the timer stands still until [`State::come_back`].
    fn go_down(&mut self, downtime: Duration) {
        self.now = now_ms();
        if self.down_until.is_none() {
            self.tick();
        }
        if self.fault(Fault::LosesEventsOnRestart) {
            self.delayed
                .retain(|d| !matches!(d.outcome, Outcome::Scheduled));
            self.delayed_index = self
                .delayed
                .iter()
                .enumerate()
                .map(|(i, d)| (d.delay_id.clone(), i))
                .collect();
        }
        self.restarts += 1;
        self.buckets.clear();
        let until = self.now + downtime.as_millis() as u64;
        self.down_until = Some(self.down_until.map_or(until, |t| t.max(until)));
        self.log(format!("restart: down for {} ms", downtime.as_millis()));
    }

    /// `Err(503)` while down; once the downtime has passed, comes back up first.
    fn check_up(&mut self) -> Result<(), Reply> {
        match self.down_until {
            Some(until) if self.now < until => Err(err(503, "M_UNKNOWN", "restarting")),
            Some(_) => {
                self.come_back();
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Start-up after a restart: sends every delayed event that fell due while down, in order of
    /// due time, stamped with the moment the server came back.
    fn come_back(&mut self) {
        self.down_until = None;
        let killed = std::mem::take(&mut self.killed);
        if self.fault(Fault::ResendsSentAfterRestart) {
            let sent: Vec<usize> = (0..self.delayed.len())
                .filter(|&i| matches!(self.delayed[i].outcome, Outcome::Sent { .. }))
                .collect();
            for idx in sent {
                let state_key = self.delayed[idx].state_key.clone();
                let _ = self.emit_delayed(idx, self.now, state_key, Phase::Timer);
            }
        }
        let mut overdue = self.due_now();
        if self.fault(Fault::OverdueOutOfOrder) {
            overdue.reverse();
        }
        if self.fault(Fault::OverdueNotSent) {
            for idx in overdue.drain(..) {
                self.delayed_mut(idx).stalled = true;
            }
        }
        self.log(format!(
            "restart: back up, sending {} overdue delayed event(s)",
            overdue.len()
        ));
        for idx in overdue {
            self.fire(idx, self.now);
            if killed && self.fault(Fault::OverdueTwiceAfterKill) {
                let state_key = self.delayed[idx].state_key.clone();
                let _ = self.emit_delayed(idx, self.now, state_key, Phase::Timer);
            }
        }
    }

    // --- log ------------------------------------------------------------------------------------

    fn log(&mut self, line: String) {
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(format!("{} {line}", self.now));
    }
}

// ------------------------------------------------------------------------------------------------
// Router
// ------------------------------------------------------------------------------------------------

struct Router {
    state: Arc<Mutex<State>>,
}

/// The timer: sends due delayed events every `TIMER_TICK`, except while the fake is down (a
/// restart stops the timer; coming back sends what fell due, in order).
async fn run_timer(state: std::sync::Weak<Mutex<State>>) {
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
            st.tick();
            route(&mut st, &cx)
        });
        let reply = reply.unwrap_or_else(|e| e);
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
    fn of(cx: &Ctx, status: u16) -> Option<RecordedRequest> {
        let delay = cx.q(DELAY_PARAM).map(str::to_string);
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

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether a request is one of the delayed-event API's (either scheduling form, or under the
/// MSC4140 prefix).
fn is_delayed_api(cx: &Ctx) -> bool {
    const PREFIX: [&str; 4] = ["_matrix", "client", "unstable", "org.matrix.msc4140"];
    cx.q(DELAY_PARAM).is_some() || cx.segs.iter().map(String::as_str).take(4).eq(PREFIX)
}

fn route(st: &mut State, cx: &Ctx) -> Res {
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
        (m, ["_matrix", "client", "unstable", "org.matrix.msc4140", rest @ ..]) => {
            route_msc4140(st, cx, m, rest)
        }
        _ => Err(unrecognized()),
    }
}

fn route_v3(st: &mut State, cx: &Ctx, method: &str, rest: &[&str]) -> Res {
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
        ("PUT", ["rooms", room, "state", ty]) => put_state(st, cx, room, ty, ""),
        ("PUT", ["rooms", room, "state", ty, key]) => put_state(st, cx, room, ty, key),
        ("GET", ["rooms", room, "state"]) => get_all_state(st, cx, room),
        ("GET", ["rooms", room, "state", ty]) => get_state(st, cx, room, ty, ""),
        ("GET", ["rooms", room, "state", ty, key]) => get_state(st, cx, room, ty, key),
        ("PUT", ["rooms", room, "redact", event_id, _txn]) => redact(st, cx, room, event_id),
        ("GET", ["rooms", room, "messages"]) => messages(st, cx, room),
        ("GET", ["rooms", room, "event", event_id]) => get_event(st, cx, room, event_id),
        ("GET", ["sync"]) => sync(st, cx),
        _ => Err(unrecognized()),
    }
}

fn route_msc4140(st: &mut State, cx: &Ctx, method: &str, rest: &[&str]) -> Res {
    match (method, rest) {
        ("PUT", ["rooms", room, "delayed_event", ty, txn]) if st.opts.dedicated_endpoint => {
            schedule_dedicated(st, cx, room, ty, txn)
        }
        ("GET", ["delayed_events"]) => list_delayed(st, cx),
        ("GET", ["delayed_events", delay_id]) => lookup_delayed(st, cx, delay_id),
        ("POST", ["delayed_events", delay_id]) => manage_body_form(st, cx, delay_id),
        ("POST", ["delayed_events", delay_id, action]) => {
            manage_split_form(st, cx, delay_id, action)
        }
        _ => Err(unrecognized()),
    }
}

// ------------------------------------------------------------------------------------------------
// Endpoints: discovery
// ------------------------------------------------------------------------------------------------

fn versions(st: &State) -> Res {
    let mut unstable = Map::new();
    if !st.fault(Fault::NoVersionsFlag) {
        unstable.insert("org.matrix.msc4140".into(), json!(true));
    }
    let mut versions = json!({"versions": ["v1.11", "v1.12"], "unstable_features": unstable});
    if st.opts.announce_in_versions {
        versions["net.zemos.msc4383.server"] =
            json!({"name": FakeHomeserver::NAME, "version": FakeHomeserver::VERSION});
    }
    Ok(ok(versions))
}

fn capabilities(st: &State, cx: &Ctx) -> Res {
    st.session(cx)?;
    let mut capabilities = json!({
        "m.change_password": {"enabled": true},
        "m.room_versions": {"default": "10", "available": {"10": "stable"}},
    });
    if !st.fault(Fault::CapabilityMissing) {
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

fn admin_nonce(st: &mut State) -> Res {
    let nonce = random_string(32, ALNUM);
    st.nonces.insert(nonce.clone());
    Ok(ok(json!({ "nonce": nonce })))
}

fn admin_register(st: &mut State, cx: &Ctx) -> Res {
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

fn register(st: &mut State, cx: &Ctx) -> Res {
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

fn login(st: &mut State, cx: &Ctx) -> Res {
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

fn deactivate(st: &mut State, cx: &Ctx) -> Res {
    let s = st.session(cx)?;
    let body = cx.object_body(true)?;
    st.password_auth(&s, body.get("auth"))?;
    st.deactivate_user(&s.user_id);
    Ok(ok(json!({"id_server_unbind_result": "no-support"})))
}

fn whoami(st: &State, cx: &Ctx) -> Res {
    let s = st.session(cx)?;
    Ok(ok(
        json!({"user_id": s.user_id, "device_id": s.device_id, "is_guest": s.is_guest}),
    ))
}

// ------------------------------------------------------------------------------------------------
// Endpoints: rooms and membership
// ------------------------------------------------------------------------------------------------

fn default_power_levels(creator: &str) -> Value {
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

fn create_room(st: &mut State, cx: &Ctx) -> Res {
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

fn join(st: &mut State, cx: &Ctx, id_or_alias: &str) -> Res {
    let s = st.session(cx)?;
    let room_id = st.resolve_room(id_or_alias)?;
    if !st.is_joined(st.room(&room_id)?, &s.user_id) {
        change_membership(st, &s, &room_id, &s.user_id, json!({"membership": "join"}))?;
    }
    Ok(ok(json!({ "room_id": room_id })))
}

/// Appends a membership event without checks (server-generated changes such as deactivation).
fn set_membership(st: &mut State, room_id: &str, sender: &str, target: &str, content: Value) {
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
fn change_membership(
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
fn target_user(cx: &Ctx, membership: &str) -> Result<(String, Value), Reply> {
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

fn invite(st: &mut State, cx: &Ctx, room_id: &str) -> Res {
    let s = st.session(cx)?;
    let (target, content) = target_user(cx, "invite")?;
    change_membership(st, &s, room_id, &target, content)
}

fn leave(st: &mut State, cx: &Ctx, room_id: &str) -> Res {
    let s = st.session(cx)?;
    change_membership(st, &s, room_id, &s.user_id, json!({"membership": "leave"}))
}

fn kick(st: &mut State, cx: &Ctx, room_id: &str) -> Res {
    let s = st.session(cx)?;
    let (target, content) = target_user(cx, "leave")?;
    change_membership(st, &s, room_id, &target, content)
}

// ------------------------------------------------------------------------------------------------
// Endpoints: events and state
// ------------------------------------------------------------------------------------------------

/// Sends a non-delayed event on behalf of `s`.
fn send_now(
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

/// `/send` or `/state` with `?org.matrix.msc4140.delay=`: the body is the content.
fn schedule_from_query(
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
    st.schedule(s, new)
}

fn send(st: &mut State, cx: &Ctx, room_id: &str, ty: &str, _txn: &str) -> Res {
    let s = st.session(cx)?;
    let delay = cx.q(DELAY_PARAM);
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

fn put_state(st: &mut State, cx: &Ctx, room_id: &str, ty: &str, key: &str) -> Res {
    let s = st.session(cx)?;
    match cx.q(DELAY_PARAM) {
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

fn redact(st: &mut State, cx: &Ctx, room_id: &str, event_id: &str) -> Res {
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

/// Readers of a room: joined users see everything; users who left see up to their leave.
fn visible_until(st: &State, room: &Room, user_id: &str) -> Result<u64, Reply> {
    match st.membership(room, user_id) {
        Some((m, _)) if m == "join" => Ok(u64::MAX),
        Some((m, pos)) if m == "leave" || m == "ban" => Ok(pos),
        _ => Err(forbidden("You are not in this room.")),
    }
}

fn get_state(st: &State, cx: &Ctx, room_id: &str, ty: &str, key: &str) -> Res {
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

fn get_all_state(st: &State, cx: &Ctx, room_id: &str) -> Res {
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

fn get_event(st: &State, cx: &Ctx, room_id: &str, event_id: &str) -> Res {
    let s = st.session(cx)?;
    let room = st.room(room_id)?;
    let until = visible_until(st, room, &s.user_id)?;
    match st.event_index.get(event_id) {
        Some(&i) if st.events[i].room_id == room_id && st.events[i].pos <= until => {
            Ok(ok(st.render(i, &s.user_id, Surface::Other, true)))
        }
        _ => Err(not_found("Event not found.")),
    }
}

fn parse_token(raw: Option<&str>, name: &str) -> Result<Option<u64>, Reply> {
    raw.map(|t| {
        t.parse::<u64>()
            .map_err(|_| invalid_param(format!("Invalid {name} token")))
    })
    .transpose()
}

fn messages(st: &State, cx: &Ctx, room_id: &str) -> Res {
    let s = st.session(cx)?;
    let room = st.room(room_id)?;
    let until = visible_until(st, room, &s.user_id)?;
    let limit = cx
        .q("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(10)
        .min(1000);
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

fn sync(st: &State, cx: &Ctx) -> Res {
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

// ------------------------------------------------------------------------------------------------
// Endpoints: delayed events (unstable prefix)
// ------------------------------------------------------------------------------------------------

fn schedule_dedicated(st: &mut State, cx: &Ctx, room_id: &str, ty: &str, _txn: &str) -> Res {
    let s = st.session(cx)?;
    let use_cache = !st.fault(Fault::IdempotencyBroken);
    st.with_txn(&s, cx, use_cache, |st| {
        let body = st.delayed_api_body(cx, false)?;
        let body = body
            .as_object()
            .ok_or_else(|| bad_json("The body must be a JSON object."))?;
        let delay_ms = st.validate_delay(DelayInput::from_json(
            body.get("delay_ms")
                .ok_or_else(|| missing_param("delay_ms"))?,
        ))?;
        let state_key = match body.get("state_key") {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) => Some(k.clone()),
            Some(_) => return Err(bad_json("state_key must be a string.")),
        };
        let content = st.check_content(
            body.get("content")
                .cloned()
                .ok_or_else(|| missing_param("content"))?,
        )?;
        let new = NewDelayed {
            room_id: room_id.into(),
            ev_type: ty.into(),
            state_key,
            content,
            delay_ms,
        };
        st.schedule(&s, new)
    })
}

fn manage_split_form(st: &mut State, cx: &Ctx, delay_id: &str, action: &str) -> Res {
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

fn manage_body_form(st: &mut State, cx: &Ctx, delay_id: &str) -> Res {
    let requester = st.mgmt_requester(cx)?;
    st.rate_limit(cx, Limited::Management)?;
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

fn list_delayed(st: &mut State, cx: &Ctx) -> Res {
    let viewer = st.lookup_requester(cx)?;
    st.rate_limit(cx, Limited::Lookup)?;
    let leak = st.fault(Fault::ListingLeaksOthers);
    let mut items: Vec<&Delayed> = st
        .delayed
        .iter()
        .filter(|d| (leak || d.owner == viewer) && st.listed(d))
        .collect();
    items.sort_by_key(|d| (d.due(), d.seq));
    if st.fault(Fault::ListingUnsorted) {
        items.reverse();
    }
    let drop_content = st.fault(Fault::ListingDropsContent);
    let items: Vec<Value> = items
        .into_iter()
        .map(|d| {
            let mut o = d.to_json(false);
            if let (true, Some(m)) = (drop_content, o.as_object_mut()) {
                m.remove("content");
            }
            o
        })
        .collect();
    Ok(ok(json!({ "delayed_events": items })))
}

fn lookup_delayed(st: &mut State, cx: &Ctx, delay_id: &str) -> Res {
    if st.fault(Fault::SingleLookupMissing) {
        return Err(unrecognized());
    }
    let viewer = st.lookup_requester(cx)?;
    st.rate_limit(cx, Limited::Lookup)?;
    match st.delayed_index.get(delay_id).map(|&i| &st.delayed[i]) {
        Some(d) if d.owner == viewer || st.fault(Fault::SingleLookupLeaks) => {
            let mut item = d.to_json(true);
            if let (true, Some(m)) = (
                st.fault(Fault::SingleLookupDropsContent),
                item.as_object_mut(),
            ) {
                m.remove("content");
            }
            Ok(ok(item))
        }
        _ => Err(not_found("No such delayed event.")),
    }
}
