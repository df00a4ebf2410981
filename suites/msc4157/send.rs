//! send: a delayed `send_event` is scheduled on the homeserver (not sent), the reply carries its
//! `delay_id`, no `event_id` and the room asked, and the event arrives after its delay, not
//! before. The widget names its room in `room_id` as Element Call does; without `room_id` the
//! widget's room is meant; a `room_id` of another room needs that room's timeline capability.

use super::texts::{CLIENT_SENDS_DELAYED, SEND_REQUEST_EXTENDS};
use super::{
    alice_widget_and_bob, all_caps, WidgetScene, LONG_DELAY_MS, SHORT_DELAY_MS, STATE_TYPE,
};
use crate::prelude::*;
use crate::widget::Widget;

/// What a send case sends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// A message, with the widget's room in `room_id` (as Element Call sends).
    Message,
    /// A state event, with the widget's room in `room_id`.
    State,
    /// A message without `room_id`.
    MessageWithoutRoomId,
}

async fn sends_delayed(ctx: &Ctx, sent: Sent) -> CaseResult {
    let WidgetScene { widget, bob, room } = alice_widget_and_bob(ctx).await?;
    let event = match sent {
        Sent::State => DelayedEvent::state(
            &room,
            STATE_TYPE,
            &ctx.unique("key"),
            json!({"left": ctx.unique("state")}),
        ),
        Sent::Message | Sent::MessageWithoutRoomId => {
            DelayedEvent::message(&room, &ctx.unique("widget delayed"))
        }
    };
    let (reply, delay_id) = match sent {
        Sent::MessageWithoutRoomId => {
            let reply = widget
                .send_event_without_room_id(&event, Some(SHORT_DELAY_MS))
                .await?;
            reply.check_success(
                "the driver refused a delayed send_event (no room_id) it had the capabilities for",
            )?;
            let Some(delay_id) = reply.delay_id().map(str::to_string) else {
                fail!(
                    "the reply to a delayed send_event carries no delay_id: {}",
                    reply.describe()
                );
            };
            (reply, delay_id)
        }
        Sent::Message | Sent::State => widget.schedule_ok(&event, SHORT_DELAY_MS).await?,
    };
    match reply.field("event_id") {
        None => ctx.note("the reply has no event_id field"),
        Some(Value::Null) => ctx.note("the reply has \"event_id\": null"),
        Some(id) => fail!(
            "the reply to a delayed send_event carries an event_id ({id}): a delayed event has none \
             until it is sent ({})",
            reply.describe()
        ),
    }
    // MSC4157 lists room_id in the response; Element Call does not read it, so absence is noted
    // and only a wrong room fails.
    if !reply.check_room_id(&room, "a delayed send_event")? {
        ctx.note("the reply has no room_id");
    }
    let listed = widget.user.listed(&delay_id).await?;
    if Instant::now() < reply.requested_at + Duration::from_millis(SHORT_DELAY_MS as u64) {
        check!(
            listed.is_some(),
            "the reply's delay_id {delay_id} is not scheduled on the homeserver (not in the user's \
             listing of delayed events)"
        );
    }
    let scheduled = Widget::scheduled(&reply, &delay_id, SHORT_DELAY_MS);
    // The widget's request spans the driver's request to the homeserver, so it bounds the time.
    let server_start = match &listed {
        Some(info) => ctx.check_reported_time("the listing", info, &scheduled.timer())?,
        None => None,
    };
    let what = match sent {
        Sent::State => "the delayed state event",
        Sent::Message => "the delayed message",
        Sent::MessageWithoutRoomId => "the delayed message sent without room_id",
    };
    ctx.expect_sent_not_early(
        &bob,
        what,
        scheduled.due().with_server_start(server_start),
        |o| event.matches(o),
    )
    .await?;
    Ok(())
}

// Must, as `msc4140.timing.message_not_sent_early`: the driver passes on what the homeserver must do.
case! {
    name: delayed_message,
    title: "A delayed message send is scheduled (delay_id, no event_id) and sent after its delay",
    level: Must,
    spec: CLIENT_SENDS_DELAYED,
}
async fn delayed_message(ctx: Ctx) -> CaseResult {
    sends_delayed(&ctx, Sent::Message).await
}

// Must, as `msc4140.timing.state_not_sent_early`.
case! {
    name: delayed_state,
    title: "A delayed state send is scheduled (delay_id, no event_id) and sent after its delay",
    level: Must,
    spec: CLIENT_SENDS_DELAYED,
}
async fn delayed_state(ctx: Ctx) -> CaseResult {
    sends_delayed(&ctx, Sent::State).await
}

// Must, as `delayed_message`: MSC2762 makes room_id optional, the widget's room by default.
case! {
    name: delayed_without_room_id,
    title: "A delayed send without room_id is scheduled in the widget's room and sent after its delay",
    level: Must,
    spec: CLIENT_SENDS_DELAYED,
}
async fn delayed_without_room_id(ctx: Ctx) -> CaseResult {
    sends_delayed(&ctx, Sent::MessageWithoutRoomId).await
}

// Must, as the capability cases: a send the widget was given no capability for is refused, the
// widget-API counterpart of MSC4140's refusing what the sender may not send.
case! {
    name: other_room_needs_timeline_capability,
    title: "A delayed send naming another room without its timeline capability is refused and nothing is scheduled",
    level: Must,
    spec: SEND_REQUEST_EXTENDS,
}
async fn other_room_needs_timeline_capability(ctx: Ctx) -> CaseResult {
    // The user is in both rooms: only the widget lacks the other room's timeline capability.
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let other_room = ctx.room(&alice, &[]).await?;
    alice.start_sync().await?;
    let widget = ctx.widget_with(&alice, &room, &all_caps()).await?;
    let event = DelayedEvent::message(&other_room, &ctx.unique("elsewhere"));
    let reply = widget.send_event(&event, Some(LONG_DELAY_MS)).await?;
    let scheduled: Vec<String> = alice
        .list()
        .await?
        .into_iter()
        .filter(|info| info.raw.get("content") == Some(&event.content))
        .map(|info| {
            format!(
                "{} in {}",
                info.delay_id().unwrap_or("?"),
                info.room_id().unwrap_or("?")
            )
        })
        .collect();
    let sent: Vec<String> = alice
        .seen_matching(|o| o.content() == &event.content)
        .await?
        .into_iter()
        .map(|o| o.room_id)
        .collect();
    let ignored = if scheduled.iter().any(|s| s.ends_with(&room)) {
        " (in the widget's own room: the room_id was ignored)"
    } else {
        ""
    };
    check!(
        reply.is_error(),
        "a delayed send_event naming room_id {other_room} (another room of the user), from a widget \
         with the timeline capability of its own room {room} only, was not refused: {}; scheduled \
         on the homeserver: {scheduled:?}{ignored}",
        reply.describe()
    );
    check!(
        scheduled.is_empty(),
        "the driver refused the delayed send_event to another room but scheduled it on the \
         homeserver anyway: {scheduled:?}"
    );
    check!(
        sent.is_empty(),
        "the driver refused the delayed send_event to another room but the event was sent at once, \
         in {sent:?}"
    );
    Ok(())
}

pub fn cases() -> Vec<Case> {
    cases![
        delayed_message,
        delayed_state,
        delayed_without_room_id,
        other_room_needs_timeline_capability,
    ]
}
