//! One load workload on a prepared environment: users with rooms of their own, delayed events due
//! over a window (or all at once), heartbeating call members, and management traffic mixed in.
//! Every delivery is matched to its scheduled event by a unique marker in the event's body.

use crate::api::{Action, Delay, DelayedEvent, User};
use crate::client::{new_txn_id, Observed};
use crate::ctx::Env;
use crate::outcome::Stop;
use crate::users;
use futures::StreamExt;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// What the texts allow a server to add to the send time, plus slack for the harness's polling:
/// an event not seen this long after it was due is lost.
const LOST_AFTER: Duration = Duration::from_secs(33);
/// How long the harness keeps listening after the last event was due and everything arrived,
/// so that duplicates and sends of cancelled events are seen.
const LISTEN_AFTER: Duration = Duration::from_secs(1);
/// The shortest delay the harness asks for when scheduling fell behind the planned due times.
const MIN_DELAY: Duration = Duration::from_millis(100);
/// Registrations and room creations at once during set-up.
const SETUP_IN_FLIGHT: usize = 8;
/// Longest `/sync` long-poll of a collector; bounds how long stopping takes.
const SYNC_POLL: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct Workload {
    /// Delayed events to schedule (besides the heartbeaters' hang-ups).
    pub events: usize,
    /// At most this many of them per user (the server's per-user limit, or less).
    pub events_per_user: usize,
    /// When the first event is due, from the start of scheduling.
    pub delay: Duration,
    /// Due times spread evenly over this window after `delay`; zero: all due at once.
    pub spread: Duration,
    /// Call members keeping a hang-up alive by restarting it.
    pub heartbeaters: usize,
    pub heartbeat_every: Duration,
    pub heartbeat_for: Duration,
    /// Share of the events that get a management action while pending (half cancel, half send).
    pub manage_fraction: f64,
    /// Requests in flight at once while scheduling.
    pub in_flight: usize,
}

impl Workload {
    pub fn users(&self) -> usize {
        self.events.div_ceil(self.events_per_user.max(1))
    }

    /// The heartbeaters' hang-up delay: three missed heartbeats, and at least a second.
    pub fn heartbeat_delay(&self) -> Duration {
        (self.heartbeat_every * 3).max(Duration::from_secs(1))
    }

    /// Every `stride`-th event gets a management action.
    fn manage_stride(&self) -> Option<usize> {
        (self.manage_fraction > 0.0).then(|| (1.0 / self.manage_fraction).round().max(1.0) as usize)
    }
}

/// What the harness did to one delayed event, and what it saw of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Scheduled and left alone.
    Plain,
    /// Cancelled while pending: must never be sent.
    Cancelled,
    /// Sent at once with the send action while pending.
    SentNow,
    /// A call member's hang-up, restarted until the member stopped.
    Heartbeat,
    /// An ordinary message sent while delayed events fall due: how long the server's stamp takes
    /// to reach the harness for an event stamped when it was really sent.
    Probe,
}

#[derive(Clone, Debug)]
pub struct Tracked {
    pub kind: Kind,
    /// The refusal of the scheduling request (status and errcode), if it was refused.
    pub refused: Option<String>,
    /// Arrival before this instant is early (harness clock, a bound no server can move).
    pub not_before: Option<Instant>,
    /// When it became due by the harness's clock: just before the request that set its timer,
    /// plus the delay (for a send action: the action's request).
    pub due: Option<Instant>,
    /// Each `/sync` arrival: harness clock, and the server's `origin_server_ts`.
    pub arrivals: Vec<(Instant, Option<i64>)>,
    /// A heartbeater's hang-up: when its member stopped heartbeating.
    pub stopped: Option<Instant>,
}

/// Everything one workload recorded; the figures are computed from it.
#[derive(Default)]
pub struct Ledger {
    pub tracked: Vec<Tracked>,
    by_marker: HashMap<String, usize>,
    /// Request durations in milliseconds, by request kind (schedule, cancel, send, restart).
    pub latency_ms: BTreeMap<&'static str, Vec<f64>>,
    /// Refused requests, by "kind status errcode".
    pub refused: BTreeMap<String, usize>,
    pub heartbeats: usize,
    pub heartbeats_refused: usize,
    /// Scheduling fell behind the plan: these got the minimal delay instead of their planned one.
    pub behind_plan: usize,
    pub requests: usize,
    /// Harness clock and wall clock at the same moment, to turn instants into server timestamps.
    pub clock_base: Option<(Instant, SystemTime)>,
}

impl Ledger {
    fn track(&mut self, marker: String, kind: Kind) -> usize {
        let index = self.tracked.len();
        self.tracked.push(Tracked {
            kind,
            refused: None,
            not_before: None,
            due: None,
            arrivals: Vec::new(),
            stopped: None,
        });
        self.by_marker.insert(marker, index);
        index
    }

    fn request(&mut self, kind: &'static str, started: Instant, outcome: Result<u16, String>) {
        self.requests += 1;
        self.latency_ms
            .entry(kind)
            .or_default()
            .push(started.elapsed().as_secs_f64() * 1000.0);
        if let Err(refusal) = outcome {
            *self.refused.entry(format!("{kind} {refusal}")).or_default() += 1;
        }
    }

    /// Records the answer to the scheduling request of event `index`: due one delay after the
    /// request left, or refused. Whether it was accepted.
    fn scheduled(
        &mut self,
        index: usize,
        requested_at: Instant,
        delay: Duration,
        outcome: Result<u16, String>,
    ) -> bool {
        self.request("schedule", requested_at, outcome.clone());
        let tracked = &mut self.tracked[index];
        match outcome {
            Ok(_) => {
                tracked.not_before = Some(requested_at + delay);
                tracked.due = Some(requested_at + delay);
                true
            }
            Err(refusal) => {
                tracked.refused = Some(refusal);
                false
            }
        }
    }

    fn arrived(&mut self, seen: &Observed) {
        let marker = seen.content().get("body").and_then(|b| b.as_str());
        if let Some(&index) = marker.and_then(|m| self.by_marker.get(m)) {
            self.tracked[index]
                .arrivals
                .push((seen.at, seen.origin_server_ts()));
        }
    }

    /// Events that should still arrive, and the latest moment one of them is due.
    fn outstanding(&self) -> (usize, Option<Instant>) {
        let live = self
            .tracked
            .iter()
            .filter(|t| t.refused.is_none() && t.kind != Kind::Probe);
        let latest_due = live.clone().filter_map(|t| t.due).max();
        let pending = live
            .filter(|t| t.kind != Kind::Cancelled && t.arrivals.is_empty())
            .count();
        (pending, latest_due)
    }

    pub fn wall_ms(&self, at: Instant) -> Option<i64> {
        let (base, wall) = self.clock_base?;
        let wall = if at >= base {
            wall + (at - base)
        } else {
            wall - (base - at)
        };
        Some(
            wall.duration_since(SystemTime::UNIX_EPOCH)
                .ok()?
                .as_millis() as i64,
        )
    }
}

pub type SharedLedger = Arc<Mutex<Ledger>>;

/// `Ok(status)` for a success, `Err("status errcode")` for a refusal.
fn answer(resp: &crate::client::Resp) -> Result<u16, String> {
    if resp.is_success() {
        Ok(resp.status)
    } else {
        Err(format!("{} {}", resp.status, resp.errcode().unwrap_or("-")))
    }
}

/// A registered user with a private room of their own, whose `/sync` already started.
struct Member {
    user: User,
    room: String,
}

async fn new_member(env: &Env, label: &str) -> Result<Member, Stop> {
    let anon = crate::client::Client::new(
        env.http.clone(),
        &env.base_url,
        crate::evidence::Evidence::default(),
    );
    let client = users::register(&anon, &env.target.registration(), label).await?;
    let user = User {
        client,
        form: env.form,
    };
    let room = user.create_room(json!({"preset": "private_chat"})).await?;
    user.start_sync().await?;
    Ok(Member { user, room })
}

async fn new_members(env: &Env, count: usize, label: &str) -> Result<Vec<Member>, Stop> {
    futures::stream::iter(0..count)
        .map(|_| new_member(env, label))
        .buffer_unordered(SETUP_IN_FLIGHT)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Runs `workload` until every event is accounted for (arrived, or lost after the allowance),
/// `stop` is set, or `deadline` passes. The ledger holds whatever was seen by then.
pub async fn run(
    env: &Env,
    workload: &Workload,
    ledger: SharedLedger,
    stop: Arc<AtomicBool>,
    deadline: Instant,
) -> Result<(), Stop> {
    let members = Arc::new(new_members(env, workload.users(), "load").await?);
    let callers = Arc::new(new_members(env, workload.heartbeaters, "load_call").await?);
    ledger.lock().unwrap().clock_base = Some((Instant::now(), SystemTime::now()));

    let listening = Arc::new(AtomicBool::new(true));
    let collectors: Vec<_> = members
        .iter()
        .chain(callers.iter())
        .map(|m| tokio::spawn(collect(m.user.clone(), ledger.clone(), listening.clone())))
        .collect();

    let run_tag = new_txn_id();
    let started = Instant::now();
    let heartbeats = futures::future::join_all(callers.iter().enumerate().map(|(i, m)| {
        let marker = format!("dec-load {run_tag} call {i}");
        heartbeat(m, workload, ledger.clone(), marker, &stop)
    }));
    let schedule = schedule_all(&members, workload, ledger.clone(), &run_tag, started, &stop);
    let (_, scheduled) = tokio::join!(heartbeats, schedule);
    scheduled?;

    // Wait for deliveries: everything arrived and the last due time passed, or the allowance ran
    // out. Meanwhile, ordinary messages measure how stamps of really-sent events reach the harness.
    let probing = tokio::spawn(probe(
        members[0].user.clone(),
        members[0].room.clone(),
        ledger.clone(),
        run_tag.clone(),
    ));
    loop {
        let (pending, latest_due) = ledger.lock().unwrap().outstanding();
        let now = Instant::now();
        let quiet_after = latest_due.map_or(now, |due| due + LISTEN_AFTER);
        let lost_after = latest_due.map_or(now, |due| due + LOST_AFTER);
        if (pending == 0 && now >= quiet_after)
            || now >= lost_after
            || now >= deadline
            || stop.load(Ordering::SeqCst)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    probing.abort();
    listening.store(false, Ordering::SeqCst);
    for collector in collectors {
        let _ = collector.await;
    }
    Ok(())
}

/// Follows one user's `/sync` and records every marked event it carries.
async fn collect(user: User, ledger: SharedLedger, listening: Arc<AtomicBool>) {
    while listening.load(Ordering::SeqCst) {
        match user.next_events(SYNC_POLL).await {
            Ok(events) => {
                let mut ledger = ledger.lock().unwrap();
                for seen in &events {
                    ledger.arrived(seen);
                }
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Schedules the events in order, `in_flight` at once, each aimed at its planned due time; every
/// `manage_stride`-th one is then cancelled or sent at once, alternately.
async fn schedule_all(
    members: &[Member],
    workload: &Workload,
    ledger: SharedLedger,
    run_tag: &str,
    started: Instant,
    stop: &AtomicBool,
) -> Result<(), Stop> {
    let count = workload.events;
    let stride = workload.manage_stride();
    let results = futures::stream::iter(0..count)
        .map(|i| {
            let member = &members[i % members.len()];
            let fraction = if count > 1 {
                i as f64 / (count - 1) as f64
            } else {
                0.0
            };
            let planned_due = started + workload.delay + workload.spread.mul_f64(fraction);
            let action = match stride {
                Some(s) if i % s == s / 2 => Some(if (i / s) % 2 == 0 {
                    Action::Cancel
                } else {
                    Action::Send
                }),
                _ => None,
            };
            let marker = format!("dec-load {run_tag} {i}");
            let ledger = ledger.clone();
            async move {
                if stop.load(Ordering::SeqCst) {
                    return Ok(());
                }
                schedule_one(member, planned_due, action, marker, ledger).await
            }
        })
        .buffer_unordered(workload.in_flight.max(1))
        .collect::<Vec<Result<(), Stop>>>()
        .await;
    results.into_iter().collect()
}

async fn schedule_one(
    member: &Member,
    planned_due: Instant,
    action: Option<Action>,
    marker: String,
    ledger: SharedLedger,
) -> Result<(), Stop> {
    let kind = match action {
        Some(Action::Cancel) => Kind::Cancelled,
        Some(Action::Send) => Kind::SentNow,
        _ => Kind::Plain,
    };
    let index = ledger.lock().unwrap().track(marker.clone(), kind);
    let requested_at = Instant::now();
    let delay = planned_due.saturating_duration_since(requested_at);
    if delay < MIN_DELAY {
        ledger.lock().unwrap().behind_plan += 1;
    }
    let delay = delay.max(MIN_DELAY);
    let event = DelayedEvent::message(&member.room, &marker);
    let resp = member
        .user
        .schedule(&event, Delay::Ms(delay.as_millis() as i64))
        .await?;
    ledger
        .lock()
        .unwrap()
        .scheduled(index, requested_at, delay, answer(&resp));
    let (Some(action), Some(delay_id)) = (action, resp.str_field("delay_id")) else {
        return Ok(());
    };
    let acted_at = Instant::now();
    let resp = member.user.manage(delay_id, action).await?;
    let outcome = answer(&resp);
    let mut ledger = ledger.lock().unwrap();
    ledger.request(action.as_str(), acted_at, outcome.clone());
    let tracked = &mut ledger.tracked[index];
    match (action, outcome) {
        // Sent at once: it may arrive from the action's request on.
        (Action::Send, Ok(_)) => {
            tracked.not_before = Some(acted_at.min(requested_at + delay));
            tracked.due = Some(acted_at);
        }
        // A refused action leaves an ordinary delayed event.
        (_, Err(_)) => tracked.kind = Kind::Plain,
        _ => {}
    }
    Ok(())
}

/// A call member: schedules a hang-up, restarts it every `heartbeat_every` for `heartbeat_for`,
/// then stops; the hang-up must land one delay after the last accepted restart, not before.
async fn heartbeat(
    member: &Member,
    workload: &Workload,
    ledger: SharedLedger,
    marker: String,
    stop: &AtomicBool,
) {
    let delay = workload.heartbeat_delay();
    let index = ledger
        .lock()
        .unwrap()
        .track(marker.clone(), Kind::Heartbeat);
    let requested_at = Instant::now();
    let event = DelayedEvent::message(&member.room, &marker);
    let Ok(resp) = member
        .user
        .schedule(&event, Delay::Ms(delay.as_millis() as i64))
        .await
    else {
        ledger.lock().unwrap().tracked[index].refused = Some("no answer".into());
        return;
    };
    let accepted = ledger
        .lock()
        .unwrap()
        .scheduled(index, requested_at, delay, answer(&resp));
    if !accepted {
        return;
    }
    let Some(delay_id) = resp.str_field("delay_id").map(str::to_string) else {
        return;
    };
    let until = Instant::now() + workload.heartbeat_for;
    let mut next = Instant::now() + workload.heartbeat_every;
    while next < until && !stop.load(Ordering::SeqCst) {
        tokio::time::sleep_until(next.into()).await;
        next += workload.heartbeat_every;
        let restarted_at = Instant::now();
        let outcome = match member.user.manage(&delay_id, Action::Restart).await {
            Ok(resp) => answer(&resp),
            Err(stop) => Err(stop.message().to_string()),
        };
        let mut ledger = ledger.lock().unwrap();
        ledger.heartbeats += 1;
        ledger.request("restart", restarted_at, outcome.clone());
        match outcome {
            Ok(_) => {
                let tracked = &mut ledger.tracked[index];
                tracked.not_before = Some(restarted_at + delay);
                tracked.due = Some(restarted_at + delay);
            }
            Err(_) => ledger.heartbeats_refused += 1,
        }
    }
    ledger.lock().unwrap().tracked[index].stopped = Some(Instant::now());
}

/// How often the probe sends an ordinary message while delayed events fall due.
const PROBE_EVERY: Duration = Duration::from_millis(250);

/// Sends an ordinary (not delayed) message every `PROBE_EVERY` until aborted.
async fn probe(user: User, room: String, ledger: SharedLedger, run_tag: String) {
    for n in 0.. {
        let marker = format!("dec-load {run_tag} probe {n}");
        let index = ledger.lock().unwrap().track(marker.clone(), Kind::Probe);
        let sent_at = Instant::now();
        if let Ok(resp) = user
            .send_event(
                &room,
                "m.room.message",
                json!({"msgtype": "m.text", "body": marker}),
            )
            .await
        {
            let mut ledger = ledger.lock().unwrap();
            ledger.request("message", sent_at, answer(&resp));
            ledger.tracked[index].due = Some(sent_at);
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}
