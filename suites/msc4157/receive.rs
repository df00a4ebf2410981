//! receive: a widget allowed to read a type of event receives a delayed event of that type once
//! the server sends it (toWidget `send_event`), as any other event: no delayed-event capability
//! is needed. Element Call learns of the members' leave events so.

use super::texts::RECEIVING;
use super::SHORT_DELAY_MS;
use crate::prelude::*;
use crate::widget::caps;

/// How long after the harness saw the event over /sync the driver may take to pass it on: its
/// own sync's round trip, on a loaded machine.
const PASS_ON_BOUND: Duration = Duration::from_secs(10);

// Must: MSC4140's counterpart, that the event is sent to the room once its delay ends, is a
// MUST; here the receiving widget is the room member that must see it.
case! {
    name: delayed_event_received,
    title: "A widget that may read a type receives a delayed event of it once sent, with no delayed-event capability",
    level: Must,
    spec: RECEIVING,
}
async fn delayed_event_received(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_alice().await?;
    // Only reading: the room's timeline (the handshake asks for it) and the type.
    let read = caps::receive_event("m.room.message");
    let widget = ctx
        .widget_with(&alice, &room, std::slice::from_ref(&read))
        .await?;
    check!(
        widget.approved.contains(&read),
        "the widget asked for {read} and the user approved everything, but notify_capabilities \
         approved only {:?}",
        widget.approved
    );
    // Someone else's delayed event: nothing of it is the widget's doing.
    let event = DelayedEvent::message(&room, &ctx.unique("received by the widget"));
    let scheduled = bob.schedule_ok(&event, SHORT_DELAY_MS).await?;
    let seen = ctx
        .expect_sent(&alice, "the delayed message", scheduled.due(), |o| {
            event.matches(o)
        })
        .await?;
    let passed_on = widget
        .wait_for_event(seen.at + PASS_ON_BOUND, |data| {
            data["type"] == "m.room.message" && data["content"] == event.content
        })
        .await?;
    let Some(passed_on) = passed_on else {
        fail!(
            "the delayed message was sent (the harness saw it over /sync), but the driver never passed \
             it on to the widget (toWidget send_event) within {} s, although the widget may receive \
             m.room.message ({read})",
            PASS_ON_BOUND.as_secs()
        );
    };
    if passed_on.data["event_id"].as_str() != seen.event_id() {
        ctx.note(format!(
            "the event passed on has event_id {}, the one sent {:?}",
            passed_on.data["event_id"],
            seen.event_id()
        ));
    }
    Ok(())
}

pub fn cases() -> Vec<Case> {
    cases![delayed_event_received]
}
