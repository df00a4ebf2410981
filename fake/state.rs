//! The fake's state (users, sessions, rooms, events, delayed events) and its core helpers:
//! auth, rate limits, transaction ids, homeserver restart, the log.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde_json::{json, Value};

use super::*;

/// Lines kept in the fake's own log ([`FakeHomeserver::log_tail`]).
pub(super) const LOG_LINES: usize = 200;
/// The management rate limit, as Synapse's default `rc_delayed_event_mgmt`: burst and refill.
pub(super) const RATE_BURST: f64 = 5.0;
pub(super) const RATE_PER_SECOND: f64 = 1.0;
/// The message rate limit, as Synapse's default `rc_message`, which scheduling a delayed event
/// and the timer's sending of it count against: burst and refill.
pub(super) const MESSAGE_BURST: f64 = 10.0;
pub(super) const MESSAGE_PER_SECOND: f64 = 0.2;
/// The rate-limit bucket of requests without an access token (all come from one IP here).
pub(super) const ANONYMOUS: &str = "<anonymous>";

#[derive(Clone, Debug)]
pub(super) struct Session {
    pub(super) token: String,
    pub(super) user_id: String,
    pub(super) device_id: String,
    pub(super) is_guest: bool,
}

pub(super) struct User {
    pub(super) password: String,
    pub(super) is_guest: bool,
    pub(super) deactivated: bool,
}

pub(super) struct Room {
    pub(super) creator: String,
    /// (type, state_key) -> index into `State::events`.
    pub(super) state: HashMap<(String, String), usize>,
    /// Indices into `State::events`, in stream order.
    pub(super) timeline: Vec<usize>,
}

pub(super) struct Event {
    /// Stream position (1-based, global); sync tokens are positions.
    pub(super) pos: u64,
    pub(super) event_id: String,
    pub(super) room_id: String,
    pub(super) ev_type: String,
    pub(super) sender: String,
    pub(super) state_key: Option<String>,
    pub(super) content: Value,
    pub(super) origin_server_ts: u64,
    /// Index of the redaction event that redacted this one.
    pub(super) redacted_by: Option<usize>,
    /// Set when this event was sent from a delayed event.
    pub(super) delay_id: Option<String>,
}

pub(super) struct State {
    pub(super) opts: FakeOptions,
    /// Wall-clock time of the request being handled (ms since the epoch).
    pub(super) now: u64,
    pub(super) users: HashMap<String, User>,
    /// User ids in registration order ([`Fault::ListingWithoutAuth`] acts as the first).
    pub(super) user_order: Vec<String>,
    pub(super) sessions: HashMap<String, Session>,
    pub(super) nonces: HashSet<String>,
    pub(super) rooms: HashMap<String, Room>,
    pub(super) aliases: HashMap<String, String>,
    pub(super) events: Vec<Event>,
    pub(super) event_index: HashMap<String, usize>,
    pub(super) delayed: Vec<Delayed>,
    pub(super) delayed_index: HashMap<String, usize>,
    /// (access token, request path) -> the successful reply, for transaction ids (the faults
    /// about their scope put the user id, or nothing, in place of the token).
    pub(super) txns: HashMap<(String, String), Reply>,
    pub(super) guest_counter: u64,
    /// Delayed events scheduled so far (their `seq`; sequential delay_ids).
    pub(super) delayed_counter: u64,
    /// While down for a restart: the wall-clock time (ms) the fake comes back.
    pub(super) down_until: Option<u64>,
    /// Homeserver restarts so far.
    pub(super) restarts: u64,
    /// While only the "main process" restarts (the fake as a deployment with workers,
    /// [`crate::FakeHomeserver::begin_main_restart`]): the wall-clock time (ms) it comes back.
    /// Requests are still answered; the timer stands still.
    pub(super) main_down_until: Option<u64>,
    /// The current downtime is a hard kill, not a clean restart.
    pub(super) killed: bool,
    /// [`Fault::TimerStallsAfterRestart`]: the timer waits for a delayed-events API request.
    pub(super) timer_stalled: bool,
    /// [`Fault::BurstDropsExcess`]: the timer's recent sends (time, room).
    pub(super) recent_timer_sends: VecDeque<(u64, String)>,
    /// [`Fault::StateOverwriteLate`], [`Fault::StateOverwriteProcessedLate`]: events whose overwrite
    /// takes effect later, and when.
    pub(super) late_overwrites: Vec<(u64, usize)>,
    /// [`Fault::UnsignedMissingAfterSendAction`]: the events the `send` action sent.
    pub(super) sent_by_action: HashSet<String>,
    /// Rate-limit buckets, by user id (or [`ANONYMOUS`]).
    pub(super) buckets: HashMap<String, Bucket>,
    /// What the fake did, oldest first (requests, sends, restarts); at most [`LOG_LINES`].
    pub(super) log: VecDeque<String>,
    /// Every delayed-event request, as evidence of the API forms a client uses (recording mode).
    pub(super) recorded: Vec<RecordedRequest>,
}

/// A token bucket of the management rate limit.
pub(super) struct Bucket {
    pub(super) tokens: f64,
    pub(super) at: u64,
}

/// Requests that share the management rate limit.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Limited {
    /// The `send`, `cancel` and `restart` actions (either form).
    Management,
    /// The listing and the single lookup.
    Lookup,
    /// Scheduling a delayed event (a bucket of its own, per user: [`State::message_rate_limit`]).
    Scheduling,
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(super) const URL_SAFE: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
pub(super) const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

pub(super) fn random_string(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

/// A user id from a localpart or a user id.
pub(super) fn qualify(user: &str) -> String {
    if user.starts_with('@') {
        user.to_string()
    } else {
        format!("@{user}:{SERVER_NAME}")
    }
}

pub(super) fn int_field(obj: &Value, key: &str) -> Option<i64> {
    match obj.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

impl State {
    pub(super) fn new(opts: FakeOptions) -> State {
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
            main_down_until: None,
            killed: false,
            timer_stalled: false,
            late_overwrites: Vec::new(),
            sent_by_action: HashSet::new(),
            recent_timer_sends: VecDeque::new(),
            buckets: HashMap::new(),
            log: VecDeque::new(),
            recorded: Vec::new(),
        }
    }

    pub(super) fn fault(&self, f: Fault) -> bool {
        self.opts.faults.contains(&f)
    }

    /// The server knows MSC4140 at all (`Fault::IgnoresDelay` is one that never heard of it).
    pub(super) fn knows_msc4140(&self) -> bool {
        !self.fault(Fault::IgnoresDelay)
    }

    /// The stable endpoints are served (and `org.matrix.msc4140.stable` advertised, whatever
    /// [`Fault::StableAdvertisedNotServed`] says).
    pub(super) fn serves_stable(&self) -> bool {
        self.opts.stable_prefix
            && self.knows_msc4140()
            && !self.fault(Fault::StableAdvertisedNotServed)
    }

    /// The delay a scheduling request through `/send` or `/state` asks for, if any: the unstable
    /// query parameter, or the stable one where the stable endpoints are served.
    pub(super) fn delay_param<'a>(&self, cx: &'a Ctx) -> Option<&'a str> {
        if !self.knows_msc4140() {
            return None;
        }
        cx.q(DELAY_PARAM)
            .or_else(|| cx.q(STABLE_DELAY_PARAM).filter(|_| self.serves_stable()))
    }

    pub(super) fn head(&self) -> u64 {
        self.events.len() as u64
    }

    // --- auth -----------------------------------------------------------------------------------

    pub(super) fn session(&self, cx: &Ctx) -> Result<Session, Reply> {
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
    pub(super) fn mgmt_requester(&self, cx: &Ctx) -> Result<Option<String>, Reply> {
        if self.fault(Fault::MgmtWithoutAuth) {
            return Ok(None);
        }
        if cx.token.is_none() && self.fault(Fault::MgmtAuthWrongError) {
            return Err(err(400, "M_UNKNOWN", "bad request"));
        }
        Ok(Some(self.session(cx)?.user_id))
    }

    /// Who schedules: the session's user ([`Fault::SchedulingWithoutAuth`]: without a token, the
    /// first registered user).
    pub(super) fn scheduling_session(&self, cx: &Ctx) -> Result<Session, Reply> {
        if cx.token.is_none() && self.fault(Fault::SchedulingWithoutAuth) {
            let first = self.user_order.first();
            if let Some(s) = self.sessions.values().find(|s| Some(&s.user_id) == first) {
                return Ok(s.clone());
            }
        }
        self.session(cx)
    }

    /// Whose delayed events a lookup shows.
    pub(super) fn lookup_requester(&self, cx: &Ctx) -> Result<String, Reply> {
        let unstable = cx.segs.get(2).is_some_and(|s| s == "unstable");
        let leaks = self.fault(Fault::ListingWithoutAuth)
            || (unstable && self.fault(Fault::UnstablePrefixListsWithoutToken));
        if cx.token.is_none() && leaks {
            if let Some(first) = self.user_order.first() {
                return Ok(first.clone());
            }
        }
        Ok(self.session(cx)?.user_id)
    }

    /// [`Fault::GuestsRefused`]: the delayed-event API is closed to guest accounts.
    pub(super) fn refuse_guests(&self, cx: &Ctx) -> Result<(), Reply> {
        let guest = self.session(cx).is_ok_and(|s| s.is_guest);
        if guest && self.fault(Fault::GuestsRefused) {
            return Err(guest_forbidden());
        }
        Ok(())
    }

    /// The management rate limit (a token bucket per user, or per IP without a token), when
    /// [`FakeOptions::rate_limits`] is on; for scheduling, the message rate limit. Call after the
    /// request's authentication.
    pub(super) fn rate_limit(&mut self, cx: &Ctx, kind: Limited) -> Result<(), Reply> {
        let exempt = match kind {
            Limited::Management => self.fault(Fault::MgmtNotRateLimited),
            Limited::Lookup => self.fault(Fault::LookupsNotRateLimited),
            Limited::Scheduling => self.fault(Fault::SchedulingNotRateLimited),
        };
        if !self.opts.rate_limits || exempt {
            return Ok(());
        }
        let per_address = match kind {
            Limited::Management => self.fault(Fault::MgmtRateLimitPerAddress),
            Limited::Scheduling => false,
            Limited::Lookup => false,
        };
        let user = match self.session(cx) {
            _ if per_address => "the one client address".to_string(),
            _ if kind == Limited::Scheduling
                && self.fault(Fault::SchedulingRateLimitPerAddress) =>
            {
                // The room's users stand for the users behind one address (see the fault).
                let room = cx.segs.iter().skip_while(|s| *s != "rooms").nth(1);
                format!("the address of the users of {}", room.map_or("", |r| r))
            }
            Ok(session) => session.user_id,
            Err(_) => ANONYMOUS.to_string(),
        };
        match kind {
            Limited::Scheduling => self.message_rate_limit(&user),
            _ => self.take_token(user, RATE_BURST, RATE_PER_SECOND),
        }
    }

    /// The message rate limit of `user` (scheduling, and the timer's sends), when
    /// [`FakeOptions::rate_limits`] is on.
    pub(super) fn message_rate_limit(&mut self, user: &str) -> Result<(), Reply> {
        if !self.opts.rate_limits {
            return Ok(());
        }
        self.take_token(
            format!("messages of {user}"),
            MESSAGE_BURST,
            MESSAGE_PER_SECOND,
        )
    }

    /// Takes a token from the bucket `key` (burst `burst`, refilling `per_second`), or answers
    /// 429 with the wait until the next token.
    fn take_token(&mut self, key: String, burst: f64, per_second: f64) -> Result<(), Reply> {
        let now = self.now;
        let bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refill = now.saturating_sub(bucket.at) as f64 / 1000.0 * per_second;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait_ms = ((1.0 - bucket.tokens) * 1000.0 / per_second).ceil() as u64;
        Err(ok(json!({
            "errcode": "M_LIMIT_EXCEEDED",
            "error": "Too many requests",
            "retry_after_ms": wait_ms,
        }))
        .with_status(429)
        .header("Retry-After", wait_ms.div_ceil(1000).to_string()))
    }

    /// Replays the reply of an earlier request with the same token and path (transaction ids).
    pub(super) fn with_txn(
        &mut self,
        session: &Session,
        cx: &Ctx,
        use_cache: bool,
        f: impl FnOnce(&mut State) -> Res,
    ) -> Res {
        // A transaction id's scope is one device (here, one access token); the faults widen it.
        let scope = if self.fault(Fault::TxnScopedToServer) {
            String::new()
        } else if self.fault(Fault::TxnScopedToUser) {
            session.user_id.clone()
        } else {
            session.token.clone()
        };
        let key = (scope, cx.path.clone());
        if use_cache {
            if let Some(reply) = self.txns.get(&key) {
                return Ok(reply.clone());
            }
        }
        let reply = f(self)?;
        self.txns.insert(key, reply.clone());
        Ok(reply)
    }

    // --- homeserver restart ---------------------------------------------------------------------

    /// Stops the "server" for `downtime`: what is due is sent first, then every request answers
    /// 503 and the timer stands still until [`State::come_back`].
    pub(super) fn go_down(&mut self, downtime: Duration) {
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
    pub(super) fn check_up(&mut self) -> Result<(), Reply> {
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
    pub(super) fn come_back(&mut self) {
        self.down_until = None;
        let killed = std::mem::take(&mut self.killed);
        if self.fault(Fault::TimerStallsAfterRestart) {
            // What fell due meanwhile is sent by the first tick once a request wakes the timer.
            self.timer_stalled = true;
            self.log("restart: back up, timer stalled until a delayed-events request".into());
            return;
        }
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

    pub(super) fn log(&mut self, line: String) {
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(format!("{} {line}", self.now));
    }
}
