//! restart: the restart action moves the send time to now plus the original delay; repeated
//! restarts (a heartbeat) keep an event unsent, and it is sent once they stop.

use super::texts::{HEARTBEAT, RESTART_ACTION};
use crate::prelude::*;

/// Long enough that a restart can clearly land in the middle of it.
const DELAY_MS: i64 = 1500;

/// How many heartbeats, and how often: a third of the delay, as a real client would.
const BEATS: u32 = 6;
const BEAT_EVERY: Duration = Duration::from_millis(DELAY_MS as u64 / 3);

struct Heartbeat {
    bob: User,
    event: DelayedEvent,
    /// Harness clock just before the last restart request: the timer's latest start.
    last_restart: Instant,
    delay_id: String,
}

/// Given two users in a room, the first schedules a message and restarts it `beats` times.
async fn heartbeat(ctx: &Ctx, beats: u32) -> Result<(User, Heartbeat), Stop> {
    let alice = ctx.user("alice").await?;
    let bob = ctx.user("bob").await?;
    let room = ctx.room(&alice, &[&bob]).await?;
    bob.start_sync().await?;
    let event = DelayedEvent::message(&room, &ctx.unique("heartbeat"));
    let scheduled = alice.schedule_ok(&event, DELAY_MS).await?;
    let mut last_restart = scheduled.requested_at;
    for _ in 0..beats {
        // The spec's own time is the point here: restarts come while the delay is running.
        tokio::time::sleep(BEAT_EVERY).await;
        last_restart = Instant::now();
        alice.manage_ok(&scheduled.delay_id, Action::Restart).await?;
    }
    Ok((alice, Heartbeat { bob, event, last_restart, delay_id: scheduled.delay_id }))
}

async fn moves_send_time(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let bob = ctx.user("bob").await?;
    let room = ctx.room(&alice, &[&bob]).await?;
    bob.start_sync().await?;
    let event = DelayedEvent::message(&room, &ctx.unique("restarted"));
    let scheduled = alice.schedule_ok(&event, DELAY_MS).await?;
    let first_start = ctx.server_scheduled_at(&alice, &scheduled.delay_id).await;
    tokio::time::sleep(Duration::from_millis(DELAY_MS as u64 / 2)).await;
    let restarted = Instant::now();
    alice.manage_ok(&scheduled.delay_id, Action::Restart).await?;
    let new_start = ctx.server_scheduled_at(&alice, &scheduled.delay_id).await;
    if let (Some(before), Some(after)) = (first_start, new_start) {
        check!(
            after - before >= DELAY_MS / 3,
            "after a restart {} ms into the delay, the listing still reports the timer starting at {after} \
             (first scheduled at {before})",
            DELAY_MS / 2
        );
    }
    let what = "the restarted event";
    let seen = ctx.await_delivery(&bob, what, restarted, DELAY_MS, |o| event.matches(o)).await?;
    ctx.check_not_early(what, &seen, restarted, new_start, DELAY_MS)
}

async fn heartbeat_keeps_unsent(ctx: Ctx) -> CaseResult {
    let (_, beat) = heartbeat(&ctx, BEATS).await?;
    let early = beat.bob.seen_matching(|o| beat.event.matches(o)).await?;
    if let Some(seen) = early.first() {
        fail!(
            "the event was sent while it was being restarted every {} ms (delay {DELAY_MS} ms): it arrived {} ms \
             after the last restart",
            BEAT_EVERY.as_millis(),
            seen.at.saturating_duration_since(beat.last_restart).as_millis()
        );
    }
    Ok(())
}

async fn sent_after_heartbeat_stops(ctx: Ctx) -> CaseResult {
    let (alice, beat) = heartbeat(&ctx, BEATS / 2).await?;
    let server_start = ctx.server_scheduled_at(&alice, &beat.delay_id).await;
    let what = "the event whose heartbeat stopped";
    let seen = ctx.await_delivery(&beat.bob, what, beat.last_restart, DELAY_MS, |o| beat.event.matches(o)).await?;
    ctx.check_not_early(what, &seen, beat.last_restart, server_start, DELAY_MS)
}

pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "msc4140.restart.moves_send_time",
            "A restart moves the send time to the time of the restart plus the original delay",
            Level::Must,
            RESTART_ACTION,
            moves_send_time,
        ),
        Case::new(
            "msc4140.restart.heartbeat_keeps_event_unsent",
            "Restarting an event more often than its delay keeps it from being sent",
            Level::Must,
            HEARTBEAT,
            heartbeat_keeps_unsent,
        ),
        Case::new(
            "msc4140.restart.sent_after_heartbeat_stops",
            "Once restarts stop, the event is sent one delay after the last restart, not earlier",
            Level::Must,
            HEARTBEAT,
            sent_after_heartbeat_stops,
        ),
    ]
}
