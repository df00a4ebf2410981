//! unsigned: a sent delayed event carries its delay_id in `unsigned` for its sender only.

use super::texts::UNSIGNED;
use super::SHORT_DELAY_MS;
use crate::api::UNSTABLE_UNSIGNED_KEY;
use crate::prelude::*;

/// Given two users in a room, the first's delayed message has been sent and both have seen it.
struct Sent {
    alice: User,
    bob: User,
    event: DelayedEvent,
    delay_id: String,
    alice_saw: Observed,
    bob_saw: Observed,
}

async fn sent(ctx: &Ctx) -> Result<Sent, Stop> {
    let Scene { alice, bob, room } = ctx
        .alice_and_bob()
        .await?
        .watched_by_alice()
        .await?
        .watched_by_bob()
        .await?;
    let event = DelayedEvent::message(&room, &ctx.unique("unsigned"));
    let scheduled = alice.schedule_ok(&event, SHORT_DELAY_MS).await?;
    let what = "the delayed message";
    let alice_saw = ctx
        .expect_sent(&alice, what, scheduled.due(), |o| event.matches(o))
        .await?;
    let bob_saw = ctx
        .expect_sent(&bob, what, scheduled.due(), |o| event.matches(o))
        .await?;
    Ok(Sent {
        alice,
        bob,
        event,
        delay_id: scheduled.delay_id,
        alice_saw,
        bob_saw,
    })
}

/// The delay id in an event's unsigned data, under the run's prefix's key.
fn unsigned_delay_id<'a>(event: &'a Value, key: &str) -> Option<&'a Value> {
    event.get("unsigned").and_then(|u| u.get(key))
}

async fn the_event_in_messages(user: &User, event: &DelayedEvent) -> Result<Value, Stop> {
    let chunk = user.messages(&event.room_id, 20).await?;
    chunk
        .into_iter()
        .find(|e| e.get("content") == Some(&event.content))
        .ok_or_else(|| {
            Stop::Fail(format!(
                "/messages for {} does not contain the sent delayed event",
                user.id()
            ))
        })
}

case! {
    name: delay_id_for_sender_over_sync,
    title: "The sender sees the delay_id in the sent event's unsigned data over /sync",
    level: Must,
    spec: UNSIGNED,
    revisions: &[Rev::Jul2026],
}
async fn delay_id_for_sender_over_sync(ctx: Ctx) -> CaseResult {
    let s = sent(&ctx).await?;
    let key = ctx.form().unsigned_key();
    let got = unsigned_delay_id(&s.alice_saw.event, key);
    check!(
        got == Some(&json!(s.delay_id)),
        "over /sync, the sender's copy of the sent event should carry unsigned[\"{key}\"] = \"{}\", but unsigned is {}",
        s.delay_id,
        s.alice_saw.event.get("unsigned").cloned().unwrap_or(Value::Null)
    );
    Ok(())
}

case! {
    name: delay_id_for_sender_over_messages,
    title: "The sender sees the delay_id in the sent event's unsigned data over /messages",
    level: Must,
    spec: UNSIGNED,
    revisions: &[Rev::Jul2026],
}
async fn delay_id_for_sender_over_messages(ctx: Ctx) -> CaseResult {
    let s = sent(&ctx).await?;
    let key = ctx.form().unsigned_key();
    let event = the_event_in_messages(&s.alice, &s.event).await?;
    check!(
        unsigned_delay_id(&event, key) == Some(&json!(s.delay_id)),
        "over /messages, the sender's copy of the sent event should carry unsigned[\"{key}\"] = \"{}\", but unsigned is {}",
        s.delay_id,
        event.get("unsigned").cloned().unwrap_or(Value::Null)
    );
    Ok(())
}

case! {
    name: delay_id_hidden_from_others,
    title: "Other users never see the delay_id in the sent event's unsigned data",
    level: Must,
    spec: UNSIGNED,
    revisions: &[Rev::Jul2026],
}
async fn delay_id_hidden_from_others(ctx: Ctx) -> CaseResult {
    let s = sent(&ctx).await?;
    let from_messages = the_event_in_messages(&s.bob, &s.event).await?;
    for (how, event) in [("/sync", &s.bob_saw.event), ("/messages", &from_messages)] {
        for key in [UNSTABLE_UNSIGNED_KEY, "delay_id"] {
            check!(
                unsigned_delay_id(event, key).is_none(),
                "over {how}, another user's copy of the sent event carries unsigned[\"{key}\"]: {}",
                event.get("unsigned").cloned().unwrap_or(Value::Null)
            );
        }
    }
    Ok(())
}

/// Judges the sender's copy of a sent delayed event, served `how`: it carries the delay_id
/// under the run's prefix's key.
fn check_senders_copy(
    how: &str,
    what: &str,
    event: &Value,
    key: &str,
    delay_id: &str,
) -> CaseResult {
    check!(
        unsigned_delay_id(event, key) == Some(&json!(delay_id)),
        "{how}, the sender's copy of {what} should carry unsigned[\"{key}\"] = \"{delay_id}\", but unsigned is {}",
        event.get("unsigned").cloned().unwrap_or(Value::Null)
    );
    Ok(())
}

/// Judges another user's copy of a sent delayed event, served `how`: no delay_id under any key.
fn check_others_copy(how: &str, what: &str, event: &Value) -> CaseResult {
    for key in [UNSTABLE_UNSIGNED_KEY, "delay_id"] {
        check!(
            unsigned_delay_id(event, key).is_none(),
            "{how}, another user's copy of {what} carries unsigned[\"{key}\"]: {}",
            event.get("unsigned").cloned().unwrap_or(Value::Null)
        );
    }
    Ok(())
}

case! {
    name: delay_id_on_state_events,
    title: "A sent delayed state event carries the delay_id in unsigned for its sender only",
    level: Must,
    spec: UNSIGNED,
    revisions: &[Rev::Jul2026],
}
async fn delay_id_on_state_events(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx
        .alice_and_bob()
        .await?
        .watched_by_alice()
        .await?
        .watched_by_bob()
        .await?;
    let event = DelayedEvent::state(
        &room,
        "org.example.dec.unsigned",
        "key",
        json!({"k": ctx.unique("state")}),
    );
    let scheduled = alice.schedule_ok(&event, SHORT_DELAY_MS).await?;
    let what = "the delayed state event";
    let alice_saw = ctx
        .expect_sent(&alice, what, scheduled.due(), |o| event.matches(o))
        .await?;
    let bob_saw = ctx
        .expect_sent(&bob, what, scheduled.due(), |o| event.matches(o))
        .await?;
    let key = ctx.form().unsigned_key();
    check_senders_copy(
        "over /sync",
        what,
        &alice_saw.event,
        key,
        &scheduled.delay_id,
    )?;
    check_others_copy("over /sync", what, &bob_saw.event)
}

/// How long "immediately" may take for the send action (as in `send_now`).
const IMMEDIATE: Duration = Duration::from_secs(5);

case! {
    name: delay_id_after_send_action,
    title: "An event sent by the send action carries the delay_id in unsigned for its sender only",
    level: Must,
    spec: UNSIGNED,
    revisions: &[Rev::Jul2026],
}
async fn delay_id_after_send_action(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx
        .alice_and_bob()
        .await?
        .watched_by_alice()
        .await?
        .watched_by_bob()
        .await?;
    let event = DelayedEvent::message(&room, &ctx.unique("sent now"));
    let scheduled = alice.schedule_ok(&event, super::LONG_DELAY_MS).await?;
    let sent_at = Instant::now();
    alice.manage_ok(&scheduled.delay_id, Action::Send).await?;
    let what = "the event sent by the send action";
    let mut copies = Vec::new();
    for user in [&alice, &bob] {
        let Some(seen) = user
            .wait_for(sent_at + IMMEDIATE, |o| event.matches(o))
            .await?
        else {
            fail!(
                "after the send action answered success, the event did not arrive for {} within {} s",
                user.id(),
                IMMEDIATE.as_secs()
            )
        };
        copies.push(seen);
    }
    let key = ctx.form().unsigned_key();
    check_senders_copy(
        "over /sync",
        what,
        &copies[0].event,
        key,
        &scheduled.delay_id,
    )?;
    check_others_copy("over /sync", what, &copies[1].event)
}

case! {
    name: delay_id_over_event_and_context,
    title: "Fetched with /event or /context, a sent delayed event carries the delay_id for its sender only",
    level: Must,
    spec: UNSIGNED,
    revisions: &[Rev::Jul2026],
}
async fn delay_id_over_event_and_context(ctx: Ctx) -> CaseResult {
    let s = sent(&ctx).await?;
    let room = &s.event.room_id;
    let Some(event_id) = s.alice_saw.event_id() else {
        fail!(
            "the sent delayed event has no event_id over /sync: {}",
            s.alice_saw.event
        )
    };
    let key = ctx.form().unsigned_key();
    let what = "the sent delayed event";
    for (user, senders) in [(&s.alice, true), (&s.bob, false)] {
        let single = user
            .event(room, event_id)
            .await?
            .setup_step("fetch the event with /event")?;
        let around = user
            .context(room, event_id)
            .await?
            .setup_step("fetch the event with /context")?;
        let in_context = around.body.get("event").cloned().unwrap_or(Value::Null);
        for (how, event) in [
            ("over /event", &single.body),
            ("over /context", &in_context),
        ] {
            if senders {
                check_senders_copy(how, what, event, key, &s.delay_id)?;
            } else {
                check_others_copy(how, what, event)?;
            }
        }
    }
    Ok(())
}

pub fn cases() -> Vec<Case> {
    cases![
        delay_id_for_sender_over_sync,
        delay_id_for_sender_over_messages,
        delay_id_hidden_from_others,
        delay_id_on_state_events,
        delay_id_after_send_action,
        delay_id_over_event_and_context,
    ]
}
