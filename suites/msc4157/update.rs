//! update: cancel, restart and send through the widget take effect on the homeserver; without
//! the update capability each is refused and the event stays untouched; the stable action name
//! and the MSC's `refresh` (where the implementations say `restart`) are reported.

use super::texts::{UNSTABLE_NAMES, UPDATE_ACTIONS, UPDATE_CAPABILITY, UPDATE_RESPONSE};
use super::{
    alice_widget_and_bob, all_caps, check_error_reply, check_still_scheduled, widget_schedules,
    WidgetScene, LONG_DELAY_MS, RESTARTED_DELAY_MS,
};
use crate::prelude::*;
use crate::widget::{caps, Approval, Reply};

/// How far into a delay the cases restart it: a third of it, so that both a restart that did
/// nothing (the event comes a third early) and one that came late show clearly on a loaded machine.
const RESTART_AFTER: Duration = Duration::from_millis(RESTARTED_DELAY_MS as u64 / 3);

fn note_reply_body(ctx: &Ctx, reply: &Reply) {
    if reply.response.as_ref().is_some_and(|r| r != &json!({})) {
        ctx.note(format!(
            "the success reply is not empty: {}",
            reply.response.as_ref().unwrap()
        ));
    }
}

// Must, as `msc4140.cancellation.cancelled_event_is_never_sent`.
case! {
    name: cancel,
    title: "cancel through the widget: success reply, and the event is never sent",
    level: Must,
    spec: UPDATE_RESPONSE,
}
async fn cancel(ctx: Ctx) -> CaseResult {
    let WidgetScene { widget, bob, room } = alice_widget_and_bob(&ctx).await?;
    // Room for a loaded machine's round trips through the driver before the event is due.
    let (event, scheduled) =
        widget_schedules(&ctx, &widget, "cancelled", RESTARTED_DELAY_MS).await?;
    let reply = widget.update(&scheduled.delay_id, "cancel").await?;
    // A cancel the harness itself sent too late is refused rightly (the event was sent).
    scheduled
        .due()
        .harness_kept_pace("the cancel", reply.requested_at, ctx.evidence())?;
    reply.check_success("cancel through the widget was refused")?;
    note_reply_body(&ctx, &reply);
    ctx.expect_never_sent(
        &bob,
        &widget.user,
        &room,
        "the event cancelled through the widget",
        &scheduled,
        |o| event.matches(o),
    )
    .await
}

// Must, as `msc4140.send_now.sends_immediately`.
case! {
    name: send,
    title: "send through the widget: success reply, and the event is sent now",
    level: Must,
    spec: UPDATE_RESPONSE,
}
async fn send(ctx: Ctx) -> CaseResult {
    let WidgetScene { widget, bob, .. } = alice_widget_and_bob(&ctx).await?;
    let (event, scheduled) = widget_schedules(&ctx, &widget, "sent now", LONG_DELAY_MS).await?;
    let reply = widget.update(&scheduled.delay_id, "send").await?;
    reply.check_success("send through the widget was refused")?;
    note_reply_body(&ctx, &reply);
    // Sent now: due at once, so the wait is the allowance a server may add.
    ctx.expect_sent(
        &bob,
        "the event sent through the widget's send action",
        Due::new(reply.requested_at, 0),
        |o| event.matches(o),
    )
    .await?;
    Ok(())
}

// Must, as `msc4140.restart.moves_send_time`.
case! {
    name: restart,
    title: "restart through the widget: success reply, and the event is sent a full delay later",
    level: Must,
    spec: UPDATE_RESPONSE,
}
async fn restart(ctx: Ctx) -> CaseResult {
    let WidgetScene { widget, bob, .. } = alice_widget_and_bob(&ctx).await?;
    let (event, scheduled) =
        widget_schedules(&ctx, &widget, "restarted", RESTARTED_DELAY_MS).await?;
    tokio::time::sleep(RESTART_AFTER).await;
    let reply = widget.update(&scheduled.delay_id, "restart").await?;
    // First: a restart the harness itself sent too late is refused rightly (the event was sent).
    // One sent in time is the driver's and the server's to handle, however long they take.
    scheduled
        .due()
        .harness_kept_pace("the restart", reply.requested_at, ctx.evidence())?;
    reply.check_success("restart through the widget was refused")?;
    note_reply_body(&ctx, &reply);
    ctx.expect_sent_not_early(
        &bob,
        "the event restarted through the widget",
        Due::new(reply.requested_at, RESTARTED_DELAY_MS),
        |o| event.matches(o),
    )
    .await?;
    Ok(())
}

// Must, as MSC4140's authorisation cases: a refusal, and the event untouched behind it.
case! {
    name: needs_capability,
    title: "Without the update capability cancel, restart and send are refused and the event is untouched",
    level: Must,
    spec: UPDATE_CAPABILITY,
}
async fn needs_capability(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    alice.start_sync().await?;
    let approved: Vec<String> = all_caps()
        .into_iter()
        .filter(|c| c != caps::UPDATE_DELAYED_UNSTABLE && c != caps::UPDATE_DELAYED_STABLE)
        .collect();
    let mut widget = ctx.widget(&alice, &room, Approval::Only(approved)).await?;
    widget.handshake(&all_caps()).await?;
    let (event, scheduled) = widget_schedules(&ctx, &widget, "untouchable", LONG_DELAY_MS).await?;
    for action in ["cancel", "restart", "send"] {
        let reply = widget.update(&scheduled.delay_id, action).await?;
        check_error_reply(&reply, &format!("`{action}` without the update capability"))?;
        check_still_scheduled(
            &alice,
            &scheduled.delay_id,
            &format!("a refused `{action}`"),
        )
        .await?;
    }
    let sent = alice.seen_matching(|o| event.matches(o)).await?;
    check!(
        sent.is_empty(),
        "the driver refused `send` (no update capability) but the event was sent"
    );
    Ok(())
}

// Info: the stable action name belongs to the accepted text, not to the 2026-01 one.
case! {
    name: stable_action_name,
    title: "Whether the stable action name update_delayed_event is offered (and works when accepted)",
    level: Info,
    spec: UNSTABLE_NAMES,
}
async fn stable_action_name(ctx: Ctx) -> CaseResult {
    let WidgetScene { widget, .. } = alice_widget_and_bob(&ctx).await?;
    let (_event, scheduled) = widget_schedules(&ctx, &widget, "stable name", LONG_DELAY_MS).await?;
    let data = json!({"delay_id": scheduled.delay_id, "action": "cancel"});
    let reply = widget.update_as(caps::UPDATE_ACTION_STABLE, data).await?;
    if !reply.is_success() {
        ctx.note(format!(
            "the stable action name `update_delayed_event` is not offered: {}",
            reply.describe()
        ));
        return check_still_scheduled(
            &widget.user,
            &scheduled.delay_id,
            "a refused stable-name cancel",
        )
        .await;
    }
    ctx.note("the stable action name `update_delayed_event` is accepted");
    check!(
        widget.user.listed(&scheduled.delay_id).await?.is_none(),
        "`update_delayed_event` (stable name) with action cancel answered success, but the event {} is \
         still scheduled on the homeserver",
        scheduled.delay_id
    );
    Ok(())
}

// Info: the text's `refresh` and the implementations' `restart` disagree (docs/widget-drivers.md).
case! {
    name: refresh_or_restart,
    title: "What the driver does with `refresh`, the MSC's name for restart",
    level: Info,
    spec: UPDATE_ACTIONS,
}
async fn refresh_or_restart(ctx: Ctx) -> CaseResult {
    let WidgetScene { widget, bob, .. } = alice_widget_and_bob(&ctx).await?;
    let (event, scheduled) =
        widget_schedules(&ctx, &widget, "refreshed", RESTARTED_DELAY_MS).await?;
    tokio::time::sleep(RESTART_AFTER).await;
    let reply = widget.update(&scheduled.delay_id, "refresh").await?;
    if reply.is_error() {
        let how = match reply.matrix_errcode() {
            Some(errcode) => format!("forwarded to the homeserver, which refused it ({errcode})"),
            None => "refused by the driver".into(),
        };
        ctx.note(format!("`refresh`: {how}"));
        return Ok(());
    }
    // Accepted: then it must have done what the MSC means by it, restart the timer.
    ctx.note("`refresh` accepted as a restart");
    scheduled
        .due()
        .harness_kept_pace("the refresh", reply.requested_at, ctx.evidence())?;
    ctx.expect_sent_not_early(
        &bob,
        "the event `refresh`ed through the widget (accepted, so a restart)",
        Due::new(reply.requested_at, RESTARTED_DELAY_MS),
        |o| event.matches(o),
    )
    .await?;
    Ok(())
}

pub fn cases() -> Vec<Case> {
    cases![
        cancel,
        send,
        restart,
        needs_capability,
        stable_action_name,
        refresh_or_restart,
    ]
}
