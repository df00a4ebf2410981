//! state_overwrite: a newer state event for the same (room, type, state_key) from another user
//! cancels a pending delayed state event in 2024-10 (still Synapse's behaviour); the 2025-12 and
//! 2026-07 texts moved that rule to Alternatives. Nothing else ever cancels one.

use super::texts::{OVERWRITE_CANCELS, OVERWRITE_OWN, OVERWRITE_SCOPE};
use super::SHORT_DELAY_MS;
use crate::prelude::*;

const SHARED_TYPE: &str = "org.example.dec.shared";

/// Given alice (room creator) and bob in a room where members may set `SHARED_TYPE` state.
async fn shared_room(ctx: &Ctx) -> Result<(User, User, String), Stop> {
    let (alice, bob, room) = ctx.alice_and_bob().await?;
    alice
        .update_power_levels(&room, |levels| levels["events"][SHARED_TYPE] = json!(0))
        .await?;
    alice.start_sync().await?;
    Ok((alice, bob, room))
}

/// A state key of this case's own: entries of other cases never meet it, even on a server that
/// (wrongly) lets state in one room cancel delayed events in another.
fn own_key(ctx: &Ctx) -> String {
    ctx.unique("key").replace(' ', "-")
}

async fn other_users_state(ctx: Ctx) -> CaseResult {
    let (alice, bob, room) = shared_room(&ctx).await?;
    let key = own_key(&ctx);
    let delayed = DelayedEvent::state(
        &room,
        SHARED_TYPE,
        &key,
        json!({"by": "bob, delayed", "n": ctx.unique("n")}),
    );
    let scheduled = bob.schedule_ok(&delayed, SHORT_DELAY_MS).await?;
    alice
        .put_state(&room, SHARED_TYPE, &key, json!({"by": "alice, now"}))
        .await?
        .setup_ok("set the same state")?;
    let copies = ctx
        .copies_once_due(&alice, &alice, &room, &scheduled, |o| delayed.matches(o))
        .await?;
    let still_listed = bob.listed(&scheduled.delay_id).await?.is_some();
    match (copies.len(), still_listed) {
        (0, false) => ctx.matched(&[Rev::Oct2024]),
        (1, false) => ctx.matched(&[Rev::Dec2025, Rev::Jul2026]),
        (0, true) => fail!(
            "after another user's newer state event, the delayed state event was neither sent at its time nor \
             cancelled: it is still listed as scheduled"
        ),
        (n, _) => fail!("the delayed state event was sent {n} times after another user's newer state event"),
    }
    Ok(())
}

async fn own_state(ctx: Ctx) -> CaseResult {
    let (alice, bob, room) = shared_room(&ctx).await?;
    let key = own_key(&ctx);
    let delayed = DelayedEvent::state(
        &room,
        SHARED_TYPE,
        &key,
        json!({"by": "bob, delayed", "n": ctx.unique("n")}),
    );
    let scheduled = bob.schedule_ok(&delayed, SHORT_DELAY_MS).await?;
    bob.put_state(&room, SHARED_TYPE, &key, json!({"by": "bob, now"}))
        .await?
        .setup_ok("set the same state")?;
    let copies = ctx
        .copies_once_due(&alice, &alice, &room, &scheduled, |o| delayed.matches(o))
        .await?;
    check!(
        copies.len() == 1,
        "the user's own newer state event for the same (type, state_key) cancelled their delayed state event \
         (sent {} times)",
        copies.len()
    );
    Ok(())
}

async fn unrelated_events(ctx: Ctx) -> CaseResult {
    let (alice, bob, room) = shared_room(&ctx).await?;
    let other_room = ctx.room(&alice, &[&bob]).await?;
    alice
        .update_power_levels(&other_room, |levels| {
            levels["events"][SHARED_TYPE] = json!(0)
        })
        .await?;
    let (key, other_key) = (own_key(&ctx), own_key(&ctx));
    let delayed_state =
        DelayedEvent::state(&room, SHARED_TYPE, &key, json!({"n": ctx.unique("state")}));
    let delayed_message = DelayedEvent::message(&room, &ctx.unique("delayed message"));
    let scheduled = bob.schedule_ok(&delayed_state, SHORT_DELAY_MS).await?;
    bob.schedule_ok(&delayed_message, SHORT_DELAY_MS).await?;
    // From another user: another state key, the same entry in another room, message events.
    alice
        .put_state(&room, SHARED_TYPE, &other_key, json!({"by": "alice"}))
        .await?
        .setup_ok("set another state key")?;
    alice
        .put_state(&other_room, SHARED_TYPE, &key, json!({"by": "alice"}))
        .await?
        .setup_ok("set state in another room")?;
    alice
        .send_event(&room, SHARED_TYPE, json!({"by": "alice"}))
        .await?
        .setup_ok("send a message event of that type")?;
    alice
        .send_event(
            &room,
            "m.room.message",
            json!({"msgtype": "m.text", "body": "hi"}),
        )
        .await?
        .setup_ok("send a message")?;
    let copies = ctx
        .copies_once_due(&alice, &alice, &room, &scheduled, |o| {
            delayed_state.matches(o) || delayed_message.matches(o)
        })
        .await?;
    let state_sent = copies.iter().any(|o| delayed_state.matches(o));
    let message_sent = copies.iter().any(|o| delayed_message.matches(o));
    check!(
        state_sent && message_sent,
        "events that do not overwrite the same (room, type, state_key) cancelled a delayed event: delayed state \
         event sent: {state_sent}, delayed message sent: {message_sent}"
    );
    Ok(())
}

pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "msc4140.state_overwrite.other_users_state_cancels",
            "Another user's newer state for the same entry cancels a delayed state event (2024-10) or not (later)",
            Level::Must,
            OVERWRITE_CANCELS,
            other_users_state,
        ),
        Case::new(
            "msc4140.state_overwrite.own_state_does_not_cancel",
            "The user's own newer state for the same entry does not cancel their delayed state event",
            Level::Must,
            OVERWRITE_OWN,
            own_state,
        ),
        Case::new(
            "msc4140.state_overwrite.unrelated_events_do_not_cancel",
            "Another state key, another room, or message events never cancel a delayed event",
            Level::Must,
            OVERWRITE_SCOPE,
            unrelated_events,
        ),
    ]
}
