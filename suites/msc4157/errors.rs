//! errors: malformed or impossible update requests get an error reply; the homeserver's refusals
//! come back as error replies carrying the Matrix error; what a driver does with a request made
//! before the capability handshake is reported.

use super::texts::{TWO_CAPABILITIES, UPDATE_RESPONSE};
use super::{
    alice_widget_and_bob, check_error_reply, widget_schedules, WidgetScene, LONG_DELAY_MS,
};
use crate::prelude::*;
use crate::widget::{caps, Approval, Widget};

case! {
    name: unknown_action,
    title: "An update with an unknown action gets an error reply",
    level: Must,
    spec: UPDATE_RESPONSE,
}
async fn unknown_action(ctx: Ctx) -> CaseResult {
    let WidgetScene { widget, .. } = alice_widget_and_bob(&ctx).await?;
    let (_event, scheduled) = widget_schedules(&ctx, &widget, "target", LONG_DELAY_MS).await?;
    let reply = widget.update(&scheduled.delay_id, "explode").await?;
    check_error_reply(&reply, "an update with the unknown action \"explode\"")?;
    ctx.note(match reply.matrix_errcode() {
        Some(errcode) => format!("forwarded to the homeserver, which refused it ({errcode})"),
        None => "refused by the driver".into(),
    });
    Ok(())
}

case! {
    name: missing_delay_id,
    title: "An update without a delay_id gets an error reply",
    level: Must,
    spec: UPDATE_RESPONSE,
}
async fn missing_delay_id(ctx: Ctx) -> CaseResult {
    let WidgetScene { widget, .. } = alice_widget_and_bob(&ctx).await?;
    let reply = widget
        .update_as(caps::UPDATE_ACTION_UNSTABLE, json!({"action": "cancel"}))
        .await?;
    check_error_reply(&reply, "an update without a delay_id")
}

case! {
    name: unknown_delay_id,
    title: "An update of an unknown delay_id gets an error reply",
    level: Must,
    spec: UPDATE_RESPONSE,
}
async fn unknown_delay_id(ctx: Ctx) -> CaseResult {
    let WidgetScene { widget, .. } = alice_widget_and_bob(&ctx).await?;
    let reply = widget.update("no_such_delay_id", "cancel").await?;
    check_error_reply(&reply, "cancel of a delay_id that does not exist")
}

case! {
    name: homeserver_error_carried,
    title: "A homeserver refusal (delay over the maximum) comes back carrying the Matrix error",
    level: Should,
    spec: UPDATE_RESPONSE,
}
async fn homeserver_error_carried(ctx: Ctx) -> CaseResult {
    let WidgetScene { widget, room, .. } = alice_widget_and_bob(&ctx).await?;
    // Ten years: over any server's maximum delay.
    let too_long: i64 = 10 * 365 * 24 * 3600 * 1000;
    let event = DelayedEvent::message(&room, &ctx.unique("too late"));
    let reply = widget.send_event(&event, Some(too_long)).await?;
    if reply.is_success() {
        if let Some(id) = reply.delay_id() {
            widget.user.manage(id, Action::Cancel).await?;
        }
        skip!("the homeserver accepted a delay of ten years, so there is no error to carry");
    }
    let Some(errcode) = reply.matrix_errcode() else {
        fail!(
            "the homeserver refused a delay of ten years, but the driver's error reply does not carry \
             the Matrix error (error.matrix_api_error.response.errcode): {}",
            reply.describe()
        );
    };
    ctx.note(format!("the Matrix error carried: {errcode}"));
    Ok(())
}

/// The largest advertised per-user limit the case fills up (a request each).
const MAX_FILLABLE: i64 = 500;

case! {
    name: limit_error_carried,
    title: "A homeserver refusal (the per-user limit) comes back carrying the Matrix error",
    level: Should,
    spec: UPDATE_RESPONSE,
}
async fn limit_error_carried(ctx: Ctx) -> CaseResult {
    let Some(limit) = ctx.features().capability_field("max_scheduled") else {
        skip!("the homeserver does not advertise max_scheduled, so the harness cannot know where its limit is")
    };
    if limit > MAX_FILLABLE {
        skip!("the advertised limit of {limit} scheduled events is more than this case fills up ({MAX_FILLABLE})");
    }
    let WidgetScene { widget, room, .. } = alice_widget_and_bob(&ctx).await?;
    // The quota filled by the harness's own client, as the same user; one more through the widget.
    for n in 0..limit {
        let filler = DelayedEvent::message(&room, &format!("filler {n}"));
        widget.user.schedule_ok(&filler, LONG_DELAY_MS).await?;
    }
    let event = DelayedEvent::message(&room, &ctx.unique("one too many"));
    let data = Widget::send_event_data(&event, Some(LONG_DELAY_MS));
    // Silence is a verdict here: a driver that retries the refusal (429) never answers in time.
    let reply = widget.request_or_silence("send_event", data).await?;
    if reply.response.is_none() {
        fail!(
            "over the per-user limit, the driver did not reply at all ({}): the homeserver's refusal \
             (429 with Retry-After) did not come back to the widget",
            reply.describe()
        );
    }
    if reply.is_success() {
        skip!(
            "the homeserver accepted a delayed event over its advertised limit of {limit}, so there is no \
             error to carry (msc4140.limits cases judge that)"
        );
    }
    let Some(errcode) = reply.matrix_errcode() else {
        fail!(
            "the homeserver refused a delayed event over the per-user limit, but the driver's error reply \
             does not carry the Matrix error (error.matrix_api_error.response.errcode): {}",
            reply.describe()
        );
    };
    ctx.note(format!("the Matrix error carried: {errcode}"));
    Ok(())
}

case! {
    name: before_handshake,
    title: "What a driver does with a send_event before the capability handshake",
    level: Info,
    spec: TWO_CAPABILITIES,
}
async fn before_handshake(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    alice.start_sync().await?;
    let widget = ctx.widget(&alice, &room, Approval::All).await?;
    let event = DelayedEvent::message(&room, &ctx.unique("too early"));
    let reply = widget
        .request_or_silence(
            "send_event",
            Widget::send_event_data(&event, Some(LONG_DELAY_MS)),
        )
        .await?;
    ctx.note(match (&reply.response, reply.is_error()) {
        (None, _) => "a send_event before the capability handshake gets no reply".to_string(),
        (Some(_), true) => {
            "a send_event before the capability handshake gets an error reply".into()
        }
        (Some(r), false) => format!("a send_event before the capability handshake succeeded: {r}"),
    });
    let scheduled = alice
        .list()
        .await?
        .into_iter()
        .any(|info| info.raw.get("content") == Some(&event.content));
    check!(
        !scheduled,
        "a send_event made before any capability was negotiated was scheduled on the homeserver"
    );
    Ok(())
}

pub fn cases() -> Vec<Case> {
    cases![
        unknown_action,
        missing_delay_id,
        unknown_delay_id,
        homeserver_error_carried,
        limit_error_carried,
        before_handshake,
    ]
}
