//! A small stateful fake Matrix homeserver on wiremock: the double the conformance suite's
//! self-tests run the catalogue against, and the homeserver the widget cases put a driver in
//! front of where they need a server no real one is (`dec_harness::homeserver::fake`).
//!
//! It implements the subset of the Client-Server API the MSC4140 cases use, following the
//! 2026-07-10 revision of MSC4140 (under the unstable prefix) wherever revisions differ (the
//! merged text's 400 `M_DELAY_TOO_LARGE` where a delay is over the maximum), and
//! behaves correctly unless a [`Fault`] is switched on. Each fault breaks exactly one requirement
//! and is checked in exactly one place (search for `Fault::Name`).
//!
//! Layout, one file per seam: `faults` (the [`Fault`] list); `reply` (replies and errors);
//! `router` (the request context, the router, the timer task, recorded requests); `state`
//! (the data and its core helpers: auth, rate limits, transaction ids, homeserver restart, the
//! log); `accounts` (discovery, registration, login, deactivation); `rooms` (membership rules,
//! power levels, room and send endpoints); `timeline` (appending, redaction, rendering, the
//! reading endpoints); `delayed` (delayed-event records, the timer's sends, state overwrites);
//! `delayed_api` (validation, scheduling, management, listing, lookup). This file holds the
//! public API: [`FakeOptions`] and [`FakeHomeserver`].
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

mod accounts;
mod declare;
mod delayed;
mod delayed_api;
mod faults;
mod reply;
mod rooms;
mod router;
mod state;
mod timeline;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wiremock::{matchers::any, Mock, MockServer};

pub use self::declare::{Declared, Skips};
pub use self::faults::Fault;
pub use self::router::RecordedRequest;

use self::{
    accounts::*, delayed::*, delayed_api::*, reply::*, rooms::*, router::*, state::*, timeline::*,
};

const SERVER_NAME: &str = "fake";
const DELAY_PARAM: &str = "org.matrix.msc4140.delay";
const STABLE_DELAY_PARAM: &str = "delay";
const UNSIGNED_DELAY_ID: &str = "org.matrix.msc4140.delay_id";

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
    /// Delayed events switched off, as Synapse with `max_event_delay_duration: null`: the
    /// `/versions` flag is false, no capability, and scheduling (either form) answers 403
    /// `M_FORBIDDEN` (default false).
    pub delayed_events_off: bool,
    /// Serve the stable endpoints too (`/_matrix/client/v1/delayed_events...`, `PUT
    /// /_matrix/client/v3/rooms/{roomId}/delayed_event/...`, `?delay=`), with the unsigned
    /// `delay_id` under both names, and advertise `org.matrix.msc4140.stable` (default true).
    pub stable_prefix: bool,
    /// Answer in the shapes the merged text's public record gives, where they differ from
    /// 2026-07's: listing and lookup entries with `delayed_since_ts` (no `scheduled_at`), a
    /// finalised outcome nested in a `finalised` object, 409 with another errcode than
    /// `M_UNKNOWN` for a conflicting action, and 400 `M_INVALID_PARAM` for content that is not an
    /// object (default false).
    pub merged_shapes: bool,
    /// How long a new or changed delayed event takes to show in the listing, as behind a
    /// worker that replication reaches late: until then the listing shows it as it was (or not
    /// at all) (default zero).
    pub listing_lag: Duration,
    /// Which management forms are served; the other answers 404 `M_UNRECOGNIZED`, as from a
    /// server that never had it (default both).
    pub management_forms: ManagementForms,
    /// A correct but slow server: requests whose path contains the first part take effect at
    /// once but are answered only after the second (default none).
    pub slow_answers: Option<(&'static str, Duration)>,
    /// Played as a deployment with workers routed as Synapse's documentation routes them: the
    /// split paths are served by the worker, the body form by the main process only, so while
    /// main restarts alone ([`FakeHomeserver::begin_main_restart`]) the body form answers 502
    /// (default false).
    pub body_form_on_main: bool,
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
            delayed_events_off: false,
            stable_prefix: true,
            merged_shapes: false,
            listing_lag: Duration::ZERO,
            slow_answers: None,
            management_forms: ManagementForms::Both,
            body_form_on_main: false,
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

/// The management forms a fake serves (`FakeOptions::management_forms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManagementForms {
    Both,
    /// `POST .../delayed_events/{delay_id}/{action}` only, as Synapse's workers serve `/restart`.
    SplitOnly,
    /// `POST .../delayed_events/{delay_id}` with `{"action": ...}` only.
    BodyOnly,
}

impl ManagementForms {
    fn body(self) -> bool {
        self != ManagementForms::SplitOnly
    }
    fn split(self) -> bool {
        self != ManagementForms::BodyOnly
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
        st.flush_on_shutdown();
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

    /// Starts a restart of the main process only, the fake playing a deployment with workers:
    /// for [`FakeOptions::restart_downtime`] the timer stands still while requests are still
    /// answered (by the "workers"; [`Fault::ManagementNeedsMain`] refuses management then).
    /// Answers how long until it is back; call [`FakeHomeserver::finish_main_restart`] then.
    pub fn begin_main_restart(&self, kill: bool) -> Duration {
        let mut st = lock(&self.state);
        st.now = now_ms();
        if kill && st.fault(Fault::MainCrashResendsRecent) {
            let since = st.now.saturating_sub(10_000);
            for d in st.delayed.iter_mut() {
                if matches!(d.outcome, delayed::Outcome::Sent { .. })
                    && d.finalised_ts.is_some_and(|at| at >= since)
                {
                    d.timer_resend = true;
                }
            }
        }
        let downtime = st.opts.restart_downtime;
        st.main_down_until = Some(st.now + downtime.as_millis() as u64);
        st.log("main process: restarting".into());
        downtime
    }

    /// Kills the one generic worker the fake plays ([`Fault::KilledWorkerForgetsScheduled`]
    /// loses what it scheduled); it is back at once.
    pub fn kill_worker(&self) {
        let mut st = lock(&self.state);
        if st.fault(Fault::KilledWorkerForgetsScheduled) {
            for d in st.delayed.iter_mut() {
                if matches!(d.outcome, delayed::Outcome::Scheduled) {
                    d.stalled = true;
                }
            }
            st.log("worker1: killed, its delayed events lost".into());
        }
    }

    /// Brings the main process back once its downtime has passed (the timer then sends what fell
    /// due). Answers the downtime left, or `None` once it is back.
    pub fn finish_main_restart(&self) -> Option<Duration> {
        let mut st = lock(&self.state);
        st.now = now_ms();
        if !st.main_is_down() {
            st.tick();
            return None;
        }
        let until = st.main_down_until.unwrap_or(st.now);
        Some(Duration::from_millis(until.saturating_sub(st.now).max(1)))
    }

    /// Homeserver restarts and kills so far.
    pub fn restarts(&self) -> u64 {
        lock(&self.state).restarts
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
