//! timing: delayed events are not sent before their delay, and not much later either.

use super::texts::{ALLOWANCE, NOT_BEFORE};
use super::SHORT_DELAY_MS;
use crate::prelude::*;

#[derive(Clone, Copy)]
enum Kind {
    Message,
    State,
}

/// What a timing case judges: the event, when its timer started, and when it arrived.
struct Delivery {
    what: &'static str,
    scheduled: Scheduled,
    server_start: Option<i64>,
    seen: Observed,
}

/// Given two users in a room, the first schedules an event with a short delay and the second
/// waits for it over /sync.
async fn deliver(ctx: &Ctx, kind: Kind) -> Result<Delivery, Stop> {
    let (alice, bob, room) = ctx.alice_and_bob().await?;
    bob.start_sync().await?;
    let (what, event) = match kind {
        Kind::Message => (
            "the delayed message",
            DelayedEvent::message(&room, &ctx.unique("timing")),
        ),
        Kind::State => (
            "the delayed state event",
            DelayedEvent::state(
                &room,
                "org.example.dec.timing",
                alice.id(),
                json!({"at": ctx.unique("t")}),
            ),
        ),
    };
    let scheduled = alice.schedule_ok(&event, SHORT_DELAY_MS).await?;
    let server_start = ctx.server_scheduled_at(&alice, &scheduled.delay_id).await;
    let seen = ctx
        .await_delivery(&bob, what, scheduled.requested_at, SHORT_DELAY_MS, |o| {
            event.matches(o)
        })
        .await?;
    Ok(Delivery {
        what,
        scheduled,
        server_start,
        seen,
    })
}

async fn not_early(ctx: Ctx, kind: Kind) -> CaseResult {
    let d = deliver(&ctx, kind).await?;
    ctx.check_not_early(
        d.what,
        &d.seen,
        d.scheduled.requested_at,
        d.server_start,
        SHORT_DELAY_MS,
    )
}

async fn within_allowance(ctx: Ctx, kind: Kind) -> CaseResult {
    let d = deliver(&ctx, kind).await?;
    ctx.check_within_allowance(
        d.what,
        &d.seen,
        d.scheduled.requested_at,
        d.server_start,
        SHORT_DELAY_MS,
    )
}

pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "msc4140.timing.message_not_sent_early",
            "A delayed message event is not sent before its delay has passed",
            Level::Must,
            NOT_BEFORE,
            |ctx| not_early(ctx, Kind::Message),
        ),
        Case::new(
            "msc4140.timing.state_not_sent_early",
            "A delayed state event is not sent before its delay has passed",
            Level::Must,
            NOT_BEFORE,
            |ctx| not_early(ctx, Kind::State),
        ),
        Case::new(
            "msc4140.timing.message_sent_within_allowance",
            "A delayed message event is sent no more than 30 s after its scheduled time",
            Level::Should,
            ALLOWANCE,
            |ctx| within_allowance(ctx, Kind::Message),
        )
        .revisions(&[Rev::Dec2025, Rev::Jul2026]),
        Case::new(
            "msc4140.timing.state_sent_within_allowance",
            "A delayed state event is sent no more than 30 s after its scheduled time",
            Level::Should,
            ALLOWANCE,
            |ctx| within_allowance(ctx, Kind::State),
        )
        .revisions(&[Rev::Dec2025, Rev::Jul2026]),
    ]
}
