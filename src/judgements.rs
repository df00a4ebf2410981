//! The judgements every timing case shares, as methods of `Ctx`: not early, not too late (the
//! deadline of every wait), server-reported times against the harness's clock, exactly once,
//! never sent. Each timing judgement takes a `Due`: when the event is due, as the harness knows it.
//!
//! Names say what a call does and how it ends a case (docs/writing-cases.md):
//!
//! - `check_*` judges what is already at hand (an answer, an event seen, a listing entry), at once:
//!   `check_error`, `check_not_early`, `check_within_allowance`, `check_reported_time`,
//!   `Reply::check_success`. A broken requirement fails the case.
//! - `expect_*` waits (over `/sync`, for a control event, for a grace), then judges:
//!   `expect_sent`, `expect_sent_not_early`, `expect_each_once`, `expect_never_sent`.
//! - `*_ok` is a delayed-events request the story needs to succeed: a refusal is the server's
//!   fault and fails the case (`User::schedule_ok`, `User::manage_ok`, `Widget::schedule_ok`).
//! - `setup_*` is a step outside the feature under test (rooms, membership, plain messages and
//!   state) that must succeed: anything else ends the case in `error`, no verdict
//!   (`Resp::setup_step`; `Client`'s room and membership calls end the same way).
//! - A plain name asks and does not judge: `schedule`, `manage`, `lookup` and the `*_raw` forms
//!   return the answer as it came. `list` and `listed` return parsed entries, so a refused or
//!   garbled listing fails the case; `server_scheduled_at` and its kin answer `None` then, and a
//!   scheduling time they do return has passed `check_reported_time`.
//! - `changed_in_time`, `done_before_due` and `Due::harness_kept_pace` guard the harness's own
//!   pace: if its own time (not the time it waited for answers) left it too late to reach the
//!   server before an event was due, the case ends in `error` ("the harness fell behind") rather
//!   than a verdict it cannot prove. What the server did (refused, made the harness wait, answered
//!   late) is the server's own and is judged; only where a late answer leaves the order of things
//!   unknown (`Landed::judge`) is there no verdict, and the message says it was the server's.

use crate::api::{DelayedInfo, Scheduled, TimerStart, User};
use crate::client::Observed;
use crate::ctx::Ctx;
use crate::evidence::Evidence;
use crate::outcome::Stop;
use crate::{check, fail};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the texts allow a server to add to the scheduled send time ("MAY add up to 30 seconds").
pub const SEND_ALLOWANCE_MS: i64 = 30_000;

/// Slack on top of the allowance for the harness's own polling and scheduling noise.
const WAIT_SLACK: Duration = Duration::from_secs(3);

/// How long after the event under test a control event is due.
const CONTROL_MARGIN_MS: i64 = 200;

/// After a marker arrived, how long a late duplicate gets to show up as well.
const DUPLICATE_GRACE: Duration = Duration::from_millis(500);

/// How long a plain marker message may take to reach its observer: generous, since right after
/// one process of a deployment restarted, `/sync` may catch up late.
const MARKER_WAIT: Duration = Duration::from_secs(30);

/// Grace after a control event arrived before concluding another event was never sent.
const NEVER_SENT_GRACE: Duration = Duration::from_millis(300);

/// After a delayed event left the listing, how long a send already under way gets to land where
/// no plain message can bound the wait (`Ctx::copies_once_landed`).
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(1);

/// How long before an event is due a request that must reach the server first has to leave the
/// harness. Transit on loopback or a LAN takes far less; the rest covers the harness's own
/// scheduling between noting the time and writing the request on a busy machine. A request sent
/// later than this is the harness's own lateness; one sent earlier is the server's to handle in
/// time.
pub const REQUEST_LEAD: Duration = Duration::from_millis(250);

/// How far a scheduling time a server reports may lie outside the harness's own span of the
/// request that started the timer. The managed Synapse and containers share this machine's clock,
/// so this absorbs only millisecond rounding and the step from the harness's monotonic clock to
/// wall-clock time; a server elsewhere must keep its clock this close to the harness's (NTP does).
pub const CLOCK_TOLERANCE_MS: i64 = 2_000;

/// Two times from the same server's clock, compared with each other: only rounding to the
/// millisecond and clock slewing between them, no skew against the harness's clock.
const SAME_CLOCK_TOLERANCE_MS: i64 = 100;

/// What the texts say a reported scheduling time is (2026-07 `scheduled_at`, earlier
/// `running_since`), for failure messages.
const SCHEDULING_TIME_MEANS: &str =
    "a reported scheduling time is the time the delayed event was scheduled or last restarted";

/// `at`, a moment on the harness's monotonic clock, as Unix time in milliseconds.
pub fn wall_ms(at: Instant) -> i64 {
    let now = Instant::now();
    let now_wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    if at <= now {
        now_wall - now.duration_since(at).as_millis() as i64
    } else {
        now_wall + at.duration_since(now).as_millis() as i64
    }
}
/// While an event the server has not decided about is still listed, how often the listing is
/// asked again.
const UNDECIDED_POLL: Duration = Duration::from_secs(2);

/// The least a server's reported scheduling time can have moved between the timer's start
/// `first` and its `restart` (the time between the two requests on the harness's clock, less
/// rounding): the lower bound of `check_restart_moved_time`.
pub fn least_moved(first: &TimerStart, restart: &TimerStart) -> i64 {
    restart
        .sent
        .saturating_duration_since(first.answered)
        .as_millis() as i64
        - SAME_CLOCK_TOLERANCE_MS
}

/// When a delayed event is due, as the harness knows it: its timer (re)started just before
/// `timer_started` on the harness's clock and runs `delay_ms`; `server_start` is the scheduling
/// time the server reported for it (Unix ms), where it did (`Ctx::server_scheduled_at`), so that
/// "not early" and "not late" are judged by the server's clock too.
#[derive(Clone, Copy, Debug)]
pub struct Due {
    pub timer_started: Instant,
    pub delay_ms: i64,
    pub server_start: Option<i64>,
}

impl Due {
    /// A timer (re)started just before `timer_started`, running `delay_ms`.
    pub fn new(timer_started: Instant, delay_ms: i64) -> Due {
        Due {
            timer_started,
            delay_ms,
            server_start: None,
        }
    }

    /// The same, with the scheduling time the server reported (if it reported one).
    pub fn with_server_start(self, server_start: Option<i64>) -> Due {
        Due {
            server_start,
            ..self
        }
    }

    /// By the harness's clock, when the event is due at the earliest.
    pub fn at(&self) -> Instant {
        self.timer_started + Duration::from_millis(self.delay_ms.max(0) as u64)
    }

    /// Latest moment a correct server's event can arrive: the delay, the texts' allowance, slack.
    pub fn deadline(&self) -> Instant {
        self.at() + Duration::from_millis(SEND_ALLOWANCE_MS as u64) + WAIT_SLACK
    }

    /// How long before the due time a request sent at `sent` left the harness (negative: after).
    pub fn lead_ms(&self, sent: Instant) -> i64 {
        if sent <= self.at() {
            self.at().duration_since(sent).as_millis() as i64
        } else {
            -(sent.duration_since(self.at()).as_millis() as i64)
        }
    }

    /// Guards the harness's own pace. The harness had to get to `what` before the event was due,
    /// and got to it at `by` (a request's sending, or an answer's arrival). From the start of the
    /// timer to `by`, the case either did its own work (its steps, its planned pauses) or waited
    /// for answers, which `evidence` recorded: the server's time (or a widget driver's). Only if
    /// its own time alone left less than `REQUEST_LEAD` of the delay did the harness fall behind,
    /// and the case cannot judge (error). Otherwise whatever the server did — refused, made the
    /// harness wait, answered late — is the server's doing, and judged.
    pub fn harness_kept_pace(
        &self,
        what: &str,
        by: Instant,
        evidence: &Evidence,
    ) -> Result<(), Stop> {
        let span = by.saturating_duration_since(self.timer_started);
        let waited = evidence.waiting_within(self.timer_started, by);
        let own = span.saturating_sub(waited).as_millis() as i64;
        if own + REQUEST_LEAD.as_millis() as i64 > self.delay_ms {
            return Err(Stop::Error(format!(
                "the harness fell behind: of the {} ms from the start of the event's {} ms timer to {what}, \
                 {own} ms were the harness's own (the rest it waited for answers), leaving less than the {} ms a \
                 request needs to be sure to reach the server first, so the case cannot judge what the server did",
                span.as_millis(),
                self.delay_ms,
                REQUEST_LEAD.as_millis()
            )));
        }
        Ok(())
    }
}

/// A change a case made while an event's delay ran (power levels, membership, a heartbeat), as
/// it landed: the harness kept pace (`Due::harness_kept_pace`), and the server answered it
/// before the event was due, or only after.
#[must_use = "judge the verdict that depends on the change with `Landed::judge`"]
#[derive(Clone, Debug)]
pub struct Landed {
    /// Set when the server answered only after the event was due: what the harness saw.
    answered_late: Option<String>,
}

impl Landed {
    /// The verdict on what the change was to bring about. A failure stands when the server
    /// answered the change before the event was due. Answered only after, the server may rightly
    /// have decided about the event before it applied the change, so a failure cannot be proved:
    /// no verdict (error), saying it was the server's slow answer, not the harness's pace. A pass
    /// stands either way.
    pub fn judge<T>(self, verdict: Result<T, Stop>) -> Result<T, Stop> {
        match (verdict, self.answered_late) {
            (Err(stop @ (Stop::Fail(_) | Stop::Mismatch(_))), Some(late)) => {
                Err(Stop::Error(format!(
                    "{late}; the server may have decided about the event before it applied the change, so \
                     this cannot be judged: {}",
                    stop.message()
                )))
            }
            (verdict, _) => verdict,
        }
    }
}

impl Scheduled {
    /// When this event is due: its delay from the scheduling request.
    pub fn due(&self) -> Due {
        Due::new(self.requested_at, self.delay_ms)
    }
}

impl Ctx {
    /// A case that changes something (power levels, membership) while an event's delay runs can
    /// only judge the event if the change reached the server before the event was due. Call right
    /// after the change's request (sent at `sent`) answered: an error if the harness itself sent it
    /// too late; else how it landed, to `judge` the verdict that depends on it.
    pub fn changed_in_time(
        &self,
        change: &str,
        sent: Instant,
        scheduled: &Scheduled,
    ) -> Result<Landed, Stop> {
        self.done_before_due(change, sent, scheduled.due())
    }

    /// The same for any timer: `change`, sent at `sent` and answered just now, against `due`.
    pub fn done_before_due(&self, change: &str, sent: Instant, due: Due) -> Result<Landed, Stop> {
        let answered = Instant::now();
        due.harness_kept_pace(change, answered, self.evidence())?;
        let answered_late = (answered >= due.at()).then(|| {
            let late = answered.duration_since(due.at()).as_millis();
            let lead = due.lead_ms(sent);
            let took = answered.duration_since(sent).as_millis();
            self.note(format!(
                "the server answered {change} {took} ms after it was sent ({lead} ms before the event was \
                 due), {late} ms after the event was due"
            ));
            format!(
                "the server answered {change} only {late} ms after the event was due (the harness sent it \
                 {lead} ms before it was due; the answer took {took} ms)"
            )
        });
        Ok(Landed { answered_late })
    }

    /// Waits until the delayed event `what` (recognised by `pred`) reaches `observer` over
    /// `/sync`; fails if it does not come within its delay plus the allowance (plus slack).
    pub async fn expect_sent(
        &self,
        observer: &User,
        what: &str,
        due: Due,
        pred: impl FnMut(&Observed) -> bool,
    ) -> Result<Observed, Stop> {
        let delay_ms = due.delay_ms;
        observer.wait_for(due.deadline(), pred).await?.ok_or_else(|| {
            Stop::Fail(format!(
                "{what} was never sent: not seen over /sync within its {delay_ms} ms delay plus the \
                 {SEND_ALLOWANCE_MS} ms a server may add"
            ))
        })
    }

    /// Judges "not before the scheduled time" two ways: by the harness's own clock, the time from
    /// sending the request that started the timer (`timer_started`) to seeing the event, a lower
    /// bound no server can fake; and by the server's own timestamps where a lookup reported its
    /// scheduling time (`server_start`).
    pub fn check_not_early(&self, what: &str, seen: &Observed, due: Due) -> Result<(), Stop> {
        let Due {
            timer_started,
            delay_ms,
            server_start,
        } = due;
        let elapsed = seen.at.duration_since(timer_started).as_millis() as i64;
        self.harness_lateness(elapsed - delay_ms);
        if elapsed < delay_ms {
            return Err(Stop::Fail(format!(
                "{what} was sent before its delay: the harness saw it {elapsed} ms after the request \
                 that started its {delay_ms} ms timer (event {})",
                seen.event_id().unwrap_or("?")
            ))
            .expected(format!("seen at least {delay_ms} ms after the request"))
            .actual(format!("seen {elapsed} ms after it")));
        }
        if let Some(lateness) = self.server_lateness(seen, server_start, delay_ms) {
            check!(
                lateness >= 0,
                "{what} was sent before its delay by the server's own clock: origin_server_ts is {} ms \
                 before the scheduled send time ({} + {delay_ms} ms)",
                -lateness,
                server_start.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// `expect_sent` then `check_not_early`: both bounds. The event arrived not before its
    /// delay, and not later than its delay plus the allowance (plus slack for the harness's own
    /// polling: `expect_sent`'s deadline). `check_within_allowance` judges lateness closely.
    pub async fn expect_sent_not_early(
        &self,
        observer: &User,
        what: &str,
        due: Due,
        pred: impl FnMut(&Observed) -> bool,
    ) -> Result<Observed, Stop> {
        let seen = self.expect_sent(observer, what, due, pred).await?;
        self.check_not_early(what, &seen, due)?;
        Ok(seen)
    }

    /// Judges "at most the allowance late": by the server's timestamps where a lookup reported
    /// the scheduling time, and by the harness's clock (elapsed minus delay is an upper bound).
    pub fn check_within_allowance(
        &self,
        what: &str,
        seen: &Observed,
        due: Due,
    ) -> Result<(), Stop> {
        let Due {
            timer_started,
            delay_ms,
            server_start,
        } = due;
        let elapsed = seen.at.duration_since(timer_started).as_millis() as i64;
        self.harness_lateness(elapsed - delay_ms);
        let lateness = self
            .server_lateness(seen, server_start, delay_ms)
            .unwrap_or(elapsed - delay_ms);
        if lateness > SEND_ALLOWANCE_MS {
            return Err(Stop::fail(format!(
                "{what} was sent {lateness} ms after its scheduled send time (by {}); servers may add at most \
                 {SEND_ALLOWANCE_MS} ms",
                if server_start.is_some() { "origin_server_ts against the scheduling time the server reported" } else { "the harness's clock" }
            ))
            .expected(format!("sent at most {SEND_ALLOWANCE_MS} ms after its scheduled send time"))
            .actual(format!("sent {lateness} ms after it")));
        }
        Ok(())
    }

    /// origin_server_ts minus (server scheduling time + delay), recorded as the server's claim of
    /// the case's lateness (beside the harness's own figure, `Ctx::harness_lateness`).
    fn server_lateness(
        &self,
        seen: &Observed,
        server_start: Option<i64>,
        delay_ms: i64,
    ) -> Option<i64> {
        let lateness = seen.origin_server_ts()? - (server_start? + delay_ms);
        self.lateness(lateness);
        Some(lateness)
    }

    /// The server's own scheduling time for `delay_id`, whose timer the harness (re)started with
    /// the request `timer`: from the listing, or, when the event has already left it, from the
    /// single-item lookup where offered (2026-07 keeps finalised ones). `None` when the server
    /// reports none; a reported time outside `timer` fails (`check_reported_time`).
    pub async fn server_scheduled_at(
        &self,
        user: &User,
        delay_id: &str,
        timer: &TimerStart,
    ) -> Result<Option<i64>, Stop> {
        let earliest = wall_ms(timer.sent) - CLOCK_TOLERANCE_MS;
        self.server_scheduled_at_from(user, delay_id, timer, earliest)
            .await
    }

    /// `server_scheduled_at`, where a listing that lags behind (a worker that replication
    /// reaches late) is asked again until it reports a time of at least `earliest` (this timer's,
    /// not an earlier one's), within `SETTLE_BOUND`; what it reports then is judged.
    async fn server_scheduled_at_from(
        &self,
        user: &User,
        delay_id: &str,
        timer: &TimerStart,
        earliest: i64,
    ) -> Result<Option<i64>, Stop> {
        // A listing or lookup the server refuses is the listing cases' to judge, not this one's;
        // so is an entry with no scheduling time under a known name: it is taken as it is, as
        // waiting for a time that never comes would spend the time the case's timers allow.
        let current = |info: &DelayedInfo| {
            info.delay_id() == Some(delay_id)
                && info
                    .scheduling_times()
                    .iter()
                    .all(|(_, at)| *at >= earliest)
        };
        let listed = user
            .list_settled(|items| items.iter().any(current))
            .await
            .ok()
            .and_then(|items| items.into_iter().find(|i| i.delay_id() == Some(delay_id)));
        if let Some(info) = listed {
            if let Some(at) = self.check_reported_time("the listing", &info, timer)? {
                return Ok(Some(at));
            }
        }
        if !self.features().single_lookup {
            return Ok(None);
        }
        match user.lookup(delay_id, true).await {
            Ok(lookup) if lookup.status == 200 => {
                let info = DelayedInfo { raw: lookup.body };
                self.check_reported_time("the single-item lookup", &info, timer)
            }
            _ => Ok(None),
        }
    }

    /// `server_scheduled_at` for an event whose timer `restart` re-armed, where the server had
    /// reported `before` for the timer's earlier start `first`: judged against the restart's
    /// span, and as having moved by as much as the harness saw pass (`check_restart_moved_time`).
    pub async fn server_rescheduled_at(
        &self,
        user: &User,
        delay_id: &str,
        (before, first): (Option<i64>, &TimerStart),
        restart: &TimerStart,
    ) -> Result<Option<i64>, Stop> {
        let mut earliest = wall_ms(restart.sent) - CLOCK_TOLERANCE_MS;
        if let Some(before) = before {
            earliest = earliest.max(before + least_moved(first, restart));
        }
        let after = self
            .server_scheduled_at_from(user, delay_id, restart, earliest)
            .await?;
        if let (Some(before), Some(after)) = (before, after) {
            self.check_restart_moved_time("the server", (before, first), (after, restart))?;
        }
        Ok(after)
    }

    /// Judges the scheduling times a listing or lookup entry (`info`, from `source`) reports for
    /// an event whose timer the harness (re)started with the request `timer`. Each is "when the
    /// delayed event was scheduled or last restarted", so it lies within that request's span on
    /// the harness's clock, give or take `CLOCK_TOLERANCE_MS`: a later one is a time the server
    /// could not know yet (in the future when it answered), an earlier one dates from before the
    /// request. Call right after the entry arrived. Answers the scheduling time, if reported.
    pub fn check_reported_time(
        &self,
        source: &str,
        info: &DelayedInfo,
        timer: &TimerStart,
    ) -> Result<Option<i64>, Stop> {
        let answered = wall_ms(timer.answered);
        let sent = wall_ms(timer.sent);
        let now = wall_ms(Instant::now());
        let id = info.delay_id().unwrap_or("?");
        for (field, at) in info.scheduling_times() {
            if at > answered + CLOCK_TOLERANCE_MS {
                let future = if at > now {
                    format!(", {} ms in the future when it answered", at - now)
                } else {
                    String::new()
                };
                fail!(
                    "{source} reports `{field}` {at} for delayed event {id}, {} ms after {} was answered \
                     (at {answered} by the harness's clock){future}: {SCHEDULING_TIME_MEANS}",
                    at - answered,
                    timer.by
                );
            }
            if at < sent - CLOCK_TOLERANCE_MS {
                fail!(
                    "{source} reports `{field}` {at} for delayed event {id}, {} ms before {} was sent \
                     (at {sent} by the harness's clock): {SCHEDULING_TIME_MEANS}",
                    sent - at,
                    timer.by
                );
            }
        }
        Ok(info.scheduled_at())
    }

    /// `check_reported_time` for every entry of `items` (a listing that just arrived) whose
    /// delay id is among `own`, with the request that (re)started its timer.
    pub fn check_listed_times(
        &self,
        items: &[DelayedInfo],
        own: &[(&str, TimerStart)],
    ) -> Result<(), Stop> {
        for item in items {
            if let Some((_, timer)) = own.iter().find(|(id, _)| item.delay_id() == Some(id)) {
                self.check_reported_time("the listing", item, timer)?;
            }
        }
        Ok(())
    }

    /// The server's scheduling times of `owner`'s events among `scheduled`, by delay id, from one
    /// listing (each checked against the harness's clock): for judging many events "not early"
    /// by the server's clock too. Call before they are due; one already sent is simply absent.
    pub async fn server_starts(
        &self,
        owner: &User,
        scheduled: &[&Scheduled],
    ) -> Result<HashMap<String, i64>, Stop> {
        self.server_starts_in(&owner.list().await?, scheduled)
    }

    /// `server_starts` from a listing that already arrived.
    pub fn server_starts_in(
        &self,
        listed: &[DelayedInfo],
        scheduled: &[&Scheduled],
    ) -> Result<HashMap<String, i64>, Stop> {
        let own: Vec<(&str, TimerStart)> = scheduled
            .iter()
            .map(|s| (s.delay_id.as_str(), s.timer()))
            .collect();
        self.check_listed_times(listed, &own)?;
        Ok(listed
            .iter()
            .filter_map(|item| Some((item.delay_id()?.to_string(), item.scheduled_at()?)))
            .filter(|(id, _)| own.iter().any(|(mine, _)| mine == id))
            .collect())
    }

    /// After a restart: the server reported scheduling time `before` for the timer started by
    /// `first`, and `after` once `restart` re-armed it. Both come from the server's clock, so
    /// their difference must match the time between the two requests on the harness's clock
    /// (no skew, unlike `check_reported_time`): a server that keeps the old time, or moves it by
    /// the wrong amount, fails even when the restart came soon after the scheduling.
    pub fn check_restart_moved_time(
        &self,
        source: &str,
        (before, first): (i64, &TimerStart),
        (after, restart): (i64, &TimerStart),
    ) -> Result<(), Stop> {
        let moved = after - before;
        let least = restart
            .sent
            .saturating_duration_since(first.answered)
            .as_millis() as i64;
        let most = restart
            .answered
            .saturating_duration_since(first.sent)
            .as_millis() as i64;
        check!(
            (least - SAME_CLOCK_TOLERANCE_MS..=most + SAME_CLOCK_TOLERANCE_MS).contains(&moved),
            "after a successful restart, {source} reports the scheduling time {after}, {moved} ms after \
             the {before} it reported before; by the harness's clock the restart came {least} to {most} ms after {}: {SCHEDULING_TIME_MEANS}",
            first.by
        );
        Ok(())
    }

    /// Exactly once: after the events have arrived, each of `events` must have reached
    /// `observer` exactly once (counted as `copies_after_marker` does).
    pub async fn expect_each_once(
        &self,
        sender: &User,
        observer: &User,
        room: &str,
        events: &[(&str, &crate::api::DelayedEvent)],
    ) -> Result<(), Stop> {
        let mut wrong = Vec::new();
        for (what, copies) in self
            .copies_after_marker(sender, observer, room, events)
            .await?
        {
            if copies != 1 {
                wrong.push(format!("{what} was delivered {copies} times"));
            }
        }
        if !wrong.is_empty() {
            return Err(Stop::fail(format!(
                "each delayed event must be sent exactly once: {}",
                wrong.join("; ")
            ))
            .expected("each delivered exactly once")
            .actual(wrong.join("; ")));
        }
        Ok(())
    }

    /// How many times each of `events` reached `observer`, counted once a plain message that
    /// `sender` sends into `room` now (no delayed-events request, so nothing is nudged) has
    /// reached `observer` too, plus a grace for copies still on their way.
    pub async fn copies_after_marker<'a>(
        &self,
        sender: &User,
        observer: &User,
        room: &str,
        events: &[(&'a str, &crate::api::DelayedEvent)],
    ) -> Result<Vec<(&'a str, usize)>, Stop> {
        let marker = self.unique("plain marker");
        let sent_at = Instant::now();
        sender
            .send_event(
                room,
                "m.room.message",
                json!({"msgtype": "m.text", "body": marker}),
            )
            .await?
            .setup_step("send a plain message")?;
        let marker_seen = observer
            .wait_for(sent_at + MARKER_WAIT, |o| {
                o.content()["body"] == marker.as_str()
            })
            .await?;
        if marker_seen.is_none() {
            return Err(Stop::Error(format!(
                "a plain message did not arrive within {} s, so copies cannot be counted",
                MARKER_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(DUPLICATE_GRACE).await;
        let mut counted = Vec::new();
        for (what, event) in events {
            let copies = observer.seen_matching(|o| event.matches(o)).await?.len();
            counted.push((*what, copies));
        }
        Ok(counted)
    }

    /// Every copy of the `scheduled` event (recognised by `pred`) that `observer` has seen once
    /// the server has decided about it. Waits for conditions, not fixed times: `observer`
    /// schedules a control message in `room` due just after the latest moment the event can be
    /// due (the scheduling answer's arrival plus the delay). Once the control has arrived (plus a
    /// short grace), a server that sends in order would have sent the event too; but a server may
    /// send up to 30 s late and out of order, so `owner`'s listing is asked as well: while it
    /// still shows the event as scheduled, the server has not decided, and the wait goes on over
    /// `/sync` (asking the listing sparingly) until it leaves the listing or its delay plus the
    /// allowance has passed.
    pub async fn copies_once_due(
        &self,
        observer: &User,
        owner: &User,
        room_id: &str,
        scheduled: &Scheduled,
        mut pred: impl FnMut(&Observed) -> bool,
    ) -> Result<Vec<Observed>, Stop> {
        let due_latest = scheduled.resp.received + Duration::from_millis(scheduled.delay_ms as u64);
        let remaining = due_latest
            .saturating_duration_since(Instant::now())
            .as_millis() as i64;
        let control_delay = remaining.max(0) + CONTROL_MARGIN_MS;
        let control_event = crate::api::DelayedEvent::message(room_id, &self.unique("control"));
        let control = observer.schedule_ok(&control_event, control_delay).await?;
        if observer
            .wait_for(control.due().deadline(), |o| control_event.matches(o))
            .await?
            .is_none()
        {
            return Err(Stop::Fail(format!(
                "a control delayed event (delay {control_delay} ms, delay_id {}) was never sent, so the \
                 server's delayed events do not fire at all",
                control.delay_id
            )));
        }
        tokio::time::sleep(NEVER_SENT_GRACE).await;
        let undecided_until = Due::new(scheduled.resp.received, scheduled.delay_ms).deadline();
        let mut known: Vec<String> = Vec::new();
        loop {
            let copies = observer.seen_matching(&mut pred).await?;
            match owner.still_listed(&scheduled.delay_id).await? {
                Some(false) => return self.copies_once_landed(observer, room_id, &mut pred).await,
                None => {
                    self.note(format!(
                        "the listing of {} was refused, so whether delayed event {} was still scheduled could \
                         not be asked: judged once a control event due after it had arrived",
                        owner.id(),
                        scheduled.delay_id
                    ));
                    return Ok(copies);
                }
                Some(true) if Instant::now() >= undecided_until => {
                    self.note(format!(
                        "delayed event {} was still listed as scheduled once its delay and the {SEND_ALLOWANCE_MS} ms \
                         a server may add had passed",
                        scheduled.delay_id
                    ));
                    return Ok(copies);
                }
                Some(true) => {}
            }
            // Still scheduled: wait over /sync for a further copy, asking the listing again now
            // and then (and once more right after a copy arrived: it leaves the listing then).
            known.extend(
                copies
                    .iter()
                    .filter_map(|o| o.event_id().map(str::to_string)),
            );
            let until = (Instant::now() + UNDECIDED_POLL).min(undecided_until);
            let fresh = observer
                .wait_for(until, |o| {
                    pred(o) && !o.event_id().is_some_and(|id| known.iter().any(|k| k == id))
                })
                .await?;
            if fresh.is_some() {
                tokio::time::sleep(NEVER_SENT_GRACE).await;
            }
        }
    }

    /// Once a delayed event has left the listing: its copies that reached `observer`, counted
    /// after a send already under way had time to land. A server may take the event out of the
    /// listing before it is persisted (Synapse marks it processed, then sends it, behind workers
    /// through its events writer), so a plain message `observer` sends now bounds the wait once
    /// it has arrived (plus a grace); where `observer` may not send, a grace alone does.
    async fn copies_once_landed(
        &self,
        observer: &User,
        room_id: &str,
        pred: impl FnMut(&Observed) -> bool,
    ) -> Result<Vec<Observed>, Stop> {
        let marker = self.unique("plain marker");
        let sent_at = Instant::now();
        let sent = observer
            .send_event(
                room_id,
                "m.room.message",
                json!({"msgtype": "m.text", "body": marker}),
            )
            .await?;
        if sent.is_success() {
            observer
                .wait_for(sent_at + MARKER_WAIT, |o| {
                    o.content()["body"] == marker.as_str()
                })
                .await?;
            tokio::time::sleep(NEVER_SENT_GRACE).await;
        } else {
            tokio::time::sleep(IN_FLIGHT_GRACE).await;
        }
        observer.seen_matching(pred).await
    }

    /// Proves an event (recognised by `pred`) that `owner` scheduled is never sent (see
    /// `copies_once_due`).
    pub async fn expect_never_sent(
        &self,
        observer: &User,
        owner: &User,
        room_id: &str,
        what: &str,
        scheduled: &Scheduled,
        pred: impl FnMut(&Observed) -> bool,
    ) -> Result<(), Stop> {
        let copies = self
            .copies_once_due(observer, owner, room_id, scheduled, pred)
            .await?;
        if let Some(event) = copies.first() {
            return Err(Stop::Fail(format!(
                "{what} was sent anyway: event {} of type {} arrived over /sync",
                event.event_id().unwrap_or("?"),
                event.event_type()
            )));
        }
        Ok(())
    }
}
