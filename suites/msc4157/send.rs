//! send: a delayed `send_event` is scheduled on the homeserver (not sent), the reply carries its
//! `delay_id` and no `event_id`, and the event arrives after its delay, not before.

use super::texts::CLIENT_SENDS_DELAYED;
use super::{alice_widget_and_bob, WidgetScene, SHORT_DELAY_MS, STATE_TYPE};
use crate::prelude::*;
use crate::widget::Widget;

async fn sends_delayed(ctx: &Ctx, state: bool) -> CaseResult {
    let WidgetScene { widget, bob, room } = alice_widget_and_bob(ctx).await?;
    let event = if state {
        DelayedEvent::state(
            &room,
            STATE_TYPE,
            &ctx.unique("key"),
            json!({"left": ctx.unique("state")}),
        )
    } else {
        DelayedEvent::message(&room, &ctx.unique("widget delayed"))
    };
    let (reply, delay_id) = widget.schedule_ok(&event, SHORT_DELAY_MS).await?;
    match reply.field("event_id") {
        None => ctx.note("the reply has no event_id field"),
        Some(Value::Null) => ctx.note("the reply has \"event_id\": null"),
        Some(id) => fail!(
            "the reply to a delayed send_event carries an event_id ({id}): a delayed event has none \
             until it is sent ({})",
            reply.describe()
        ),
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
    let what = if state {
        "the delayed state event"
    } else {
        "the delayed message"
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

case! {
    name: delayed_message,
    title: "A delayed message send is scheduled (delay_id, no event_id) and sent after its delay",
    level: Must,
    spec: CLIENT_SENDS_DELAYED,
}
async fn delayed_message(ctx: Ctx) -> CaseResult {
    sends_delayed(&ctx, false).await
}

case! {
    name: delayed_state,
    title: "A delayed state send is scheduled (delay_id, no event_id) and sent after its delay",
    level: Must,
    spec: CLIENT_SENDS_DELAYED,
}
async fn delayed_state(ctx: Ctx) -> CaseResult {
    sends_delayed(&ctx, true).await
}

pub fn cases() -> Vec<Case> {
    cases![delayed_message, delayed_state]
}
