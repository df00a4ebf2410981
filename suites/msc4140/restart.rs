//! restart: the restart action moves the send time to now plus the original delay; repeated
//! restarts (a heartbeat) keep an event unsent, and it is sent once they stop.

use super::texts::{HEARTBEAT, RESTART_ACTION};
use crate::prelude::*;

/// Long enough that restarts can clearly land in the middle of it.
const DELAY_MS: i64 = 1500;

/// Heartbeats every fifth of the delay, so a slow request never lets the timer run out.
const BEATS: u32 = 6;
const BEAT_EVERY: Duration = Duration::from_millis(DELAY_MS as u64 / 5);

/// A scheduled delayed event its owner (`alice`) restarts while `bob` watches for it.
pub(super) struct Restartable {
    pub alice: User,
    pub bob: User,
    pub event: DelayedEvent,
    pub delay_id: String,
    pub delay_ms: i64,
    /// The request that last (re)started the timer successfully, on the harness's clock.
    pub timer: TimerStart,
}

async fn scheduled(ctx: &Ctx) -> Result<Restartable, Stop> {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    let event = DelayedEvent::message(&room, &ctx.unique("restarted"));
    let scheduled = alice.schedule_ok(&event, DELAY_MS).await?;
    Ok(Restartable::new(alice, bob, event, scheduled))
}

impl Restartable {
    pub fn new(alice: User, bob: User, event: DelayedEvent, scheduled: Scheduled) -> Restartable {
        Restartable {
            alice,
            bob,
            event,
            timer: scheduled.timer(),
            delay_id: scheduled.delay_id,
            delay_ms: scheduled.delay_ms,
        }
    }

    /// When the event is due: its delay from the request that last (re)started the timer
    /// successfully.
    pub fn due(&self) -> Due {
        Due::new(self.timer.sent, self.delay_ms)
    }

    /// Restarts the timer. A refusal is judged: if the event already arrived before one delay
    /// after the last successful (re)start, it was sent early. Otherwise the refusal is the
    /// server's, whatever it answered (a 429, a 404 because the event was sent meanwhile), unless
    /// the harness's own pace left the restart too late (`Due::harness_kept_pace`: error). Time
    /// the harness spent waiting for the server's answers, to this restart or the ones before,
    /// is the server's: a server that answers a heartbeat too slowly drops the call as surely
    /// as one that refuses it.
    pub async fn restart(&mut self) -> CaseResult {
        let requested = Instant::now();
        let resp = self.alice.manage(&self.delay_id, Action::Restart).await?;
        if resp.is_success() {
            self.timer = TimerStart::restart(requested, &resp);
            return Ok(());
        }
        let arrived = self.bob.seen_matching(|o| self.event.matches(o)).await?;
        if let Some(seen) = arrived.first() {
            let since_start = seen.at.duration_since(self.timer.sent).as_millis() as i64;
            check!(
                since_start >= self.delay_ms,
                "the event was sent while it was being restarted: it arrived {since_start} ms after the last \
                 successful restart, before its delay of {} ms",
                self.delay_ms
            );
        }
        self.due()
            .harness_kept_pace("a restart", requested, self.alice.evidence())?;
        let lead = self.due().lead_ms(requested);
        let when = if lead >= 0 {
            format!("{lead} ms before the event was due")
        } else {
            format!(
                "{} ms after the event was due, having waited for the server's answers meanwhile",
                -lead
            )
        };
        let waited = resp.received.duration_since(requested).as_millis();
        match arrived.first() {
            Some(_) => fail!(
                "a heartbeat failed: a restart the harness sent {when} was refused (answered after {waited} ms), \
                 and the event was sent meanwhile: {}",
                resp.describe()
            ),
            None => fail!(
                "restarting a scheduled event that has not been sent was refused (the harness sent the restart \
                 {when}; answered after {waited} ms): {}",
                resp.describe()
            ),
        }
    }

    /// Restarts `beats` times, every fifth of the delay.
    pub async fn heartbeat(&mut self, beats: u32) -> CaseResult {
        for _ in 0..beats {
            // The spec's own time is the point here: restarts come while the delay runs.
            tokio::time::sleep(Duration::from_millis(self.delay_ms as u64 / 5)).await;
            self.restart().await?;
        }
        Ok(())
    }
}

case! {
    name: moves_send_time,
    title: "A restart moves the send time to the time of the restart plus the original delay",
    level: Must,
    spec: RESTART_ACTION,
}
/// The restart moves the send time to the restart plus the delay: the event is not sent before
/// that (by the harness's clock and the server's), nor later than the allowance after it (the
/// wait's deadline, `Due::deadline`, counts from the restart); the scheduling time the
/// server reports moves from the scheduling request to the restart.
async fn moves_send_time(ctx: Ctx) -> CaseResult {
    let mut r = scheduled(&ctx).await?;
    let first = r.timer;
    let first_start = ctx
        .server_scheduled_at(&r.alice, &r.delay_id, &first)
        .await?;
    tokio::time::sleep(Duration::from_millis(DELAY_MS as u64 / 5)).await;
    r.restart().await?;
    let new_start = ctx
        .server_rescheduled_at(&r.alice, &r.delay_id, (first_start, &first), &r.timer)
        .await?;
    let what = "the restarted event";
    ctx.expect_sent_not_early(&r.bob, what, r.due().with_server_start(new_start), |o| {
        r.event.matches(o)
    })
    .await
    .map(drop)
}

case! {
    name: heartbeat_keeps_event_unsent,
    title: "Restarting an event more often than its delay keeps it from being sent",
    level: Must,
    spec: HEARTBEAT,
}
async fn heartbeat_keeps_event_unsent(ctx: Ctx) -> CaseResult {
    let mut r = scheduled(&ctx).await?;
    r.heartbeat(BEATS).await?;
    let early = r.bob.seen_matching(|o| r.event.matches(o)).await?;
    if let Some(seen) = early.first() {
        fail!(
            "the event was sent while it was being restarted every {} ms: it arrived {} ms after the last restart, \
             before its delay of {DELAY_MS} ms",
            BEAT_EVERY.as_millis(),
            seen.at.saturating_duration_since(r.timer.sent).as_millis()
        );
    }
    Ok(())
}

case! {
    name: sent_after_heartbeat_stops,
    title: "Once restarts stop, the event is sent one delay after the last restart, not earlier",
    level: Must,
    spec: HEARTBEAT,
}
async fn sent_after_heartbeat_stops(ctx: Ctx) -> CaseResult {
    let mut r = scheduled(&ctx).await?;
    let first = r.timer;
    let first_start = ctx
        .server_scheduled_at(&r.alice, &r.delay_id, &first)
        .await?;
    r.heartbeat(BEATS / 2).await?;
    let server_start = ctx
        .server_rescheduled_at(&r.alice, &r.delay_id, (first_start, &first), &r.timer)
        .await?;
    // Not early; not later than the allowance after the last restart (the wait's deadline).
    let what = "the event whose heartbeat stopped";
    ctx.expect_sent_not_early(&r.bob, what, r.due().with_server_start(server_start), |o| {
        r.event.matches(o)
    })
    .await
    .map(drop)
}

pub fn cases() -> Vec<Case> {
    cases![
        moves_send_time,
        heartbeat_keeps_event_unsent,
        sent_after_heartbeat_stops,
    ]
}
