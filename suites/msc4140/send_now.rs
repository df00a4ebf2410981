//! send_now: the `send` action delivers a scheduled event at once, exactly as scheduled, once.

use super::texts::SEND_ACTION;
use super::{LONG_DELAY_MS, SHORT_DELAY_MS};
use crate::prelude::*;

/// How long "immediately" may take: far below the delays used, generous for a loaded machine.
const IMMEDIATE: Duration = Duration::from_secs(5);

/// Given two users in a room, the first schedules `event` (built for the room) with `delay_ms`
/// and at once asks the server to send it now.
async fn schedule_then_send_now(
    ctx: &Ctx,
    delay_ms: i64,
    event: impl FnOnce(&str, &User) -> DelayedEvent,
) -> Result<SentNow, Stop> {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    let event = event(&room, &alice);
    let scheduled = alice.schedule_ok(&event, delay_ms).await?;
    let sent_at = Instant::now();
    alice.manage_ok(&scheduled.delay_id, Action::Send).await?;
    let seen = bob
        .wait_for(sent_at + IMMEDIATE, |o| event.matches(o))
        .await?;
    Ok(SentNow {
        alice,
        bob,
        event,
        scheduled,
        seen,
    })
}

/// The outcome of a send action: `seen` is the event if it arrived "immediately".
struct SentNow {
    alice: User,
    bob: User,
    event: DelayedEvent,
    scheduled: Scheduled,
    seen: Option<Observed>,
}

case! {
    name: sends_immediately,
    title: "The send action sends a scheduled event at once, long before its delay",
    level: Must,
    spec: SEND_ACTION,
}
async fn sends_immediately(ctx: Ctx) -> CaseResult {
    let sent = schedule_then_send_now(&ctx, LONG_DELAY_MS, |room, _| {
        DelayedEvent::message(room, &ctx.unique("now"))
    })
    .await?;
    check!(
        sent.seen.is_some(),
        "after the send action answered success, the event did not arrive within {} s (its own delay was {} s)",
        IMMEDIATE.as_secs(),
        LONG_DELAY_MS / 1000
    );
    Ok(())
}

case! {
    name: keeps_type_content_and_state_key,
    title: "The event sent by the send action has the scheduled type, state key and content",
    level: Must,
    spec: SEND_ACTION,
}
async fn keeps_type_content_and_state_key(ctx: Ctx) -> CaseResult {
    let marker = ctx.unique("state");
    let SentNow {
        bob, event, seen, ..
    } = schedule_then_send_now(&ctx, LONG_DELAY_MS, |room, alice| {
        DelayedEvent::state(
            room,
            "org.example.dec.now",
            &format!("key-{}", alice.id()),
            json!({"marker": marker}),
        )
    })
    .await?;
    if seen.is_none() {
        // Find out what did arrive, to say what was wrong with it.
        let arrived = bob
            .seen_matching(|o| o.content().get("marker") == Some(&json!(marker)))
            .await?;
        match arrived.first() {
            Some(o) => fail!(
                "the event sent by the send action differs from the scheduled one: expected type {} with \
                 state_key {:?} and content {}, got type {} with state_key {:?} and content {}",
                event.event_type,
                event.state_key,
                event.content,
                o.event_type(),
                o.state_key(),
                o.content()
            ),
            None => fail!("after the send action answered success, the state event did not arrive within {} s", IMMEDIATE.as_secs()),
        }
    }
    let state = bob
        .get_state(
            &event.room_id,
            &event.event_type,
            event.state_key.as_deref().unwrap_or(""),
        )
        .await?;
    check!(
        state.status == 200 && state.body == event.content,
        "the room state does not hold the sent state event's content {}: {}",
        event.content,
        state.describe()
    );
    Ok(())
}

case! {
    name: not_sent_again_by_timer,
    title: "An event sent by the send action is not sent a second time when its timer would have fired",
    level: Must,
    spec: SEND_ACTION,
}
async fn not_sent_again_by_timer(ctx: Ctx) -> CaseResult {
    let body = ctx.unique("once");
    let SentNow {
        alice,
        bob,
        event,
        scheduled,
        seen,
    } = schedule_then_send_now(&ctx, SHORT_DELAY_MS, |room, _| {
        DelayedEvent::message(room, &body)
    })
    .await?;
    check!(
        seen.is_some(),
        "the send action did not send the event within {} s",
        IMMEDIATE.as_secs()
    );
    // Once the original timer has certainly run out, a still-armed timer would have sent a copy.
    let copies = ctx
        .copies_once_due(&bob, &alice, &event.room_id, &scheduled, |o| {
            event.matches(o)
        })
        .await?;
    check!(
        copies.len() == 1,
        "the event was delivered {} times: once by the send action and again when its timer fired (events {:?})",
        copies.len(),
        copies.iter().map(|o| o.event_id().unwrap_or("?")).collect::<Vec<_>>()
    );
    Ok(())
}

pub fn cases() -> Vec<Case> {
    cases![
        sends_immediately,
        keeps_type_content_and_state_key,
        not_sent_again_by_timer,
    ]
}
