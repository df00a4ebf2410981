//! capabilities: the delayed-event capabilities are negotiated under their unstable names (and
//! the stable ones where the driver knows them), and a delayed send needs both of its two.

use super::texts::{SEND_CAPABILITY, TWO_CAPABILITIES, UNSTABLE_NAMES};
use super::{all_caps, check_error_reply, SHORT_DELAY_MS, STATE_TYPE};
use crate::prelude::*;
use crate::widget::{caps, Approval};

// Must, as every MSC4140 case that needs the feature at all: without these capabilities a widget
// can send no delayed event.
case! {
    name: unstable_names_approved,
    title: "Both delayed-event capabilities are negotiated under their unstable names",
    level: Must,
    spec: UNSTABLE_NAMES,
}
async fn unstable_names_approved(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let mut widget = ctx.widget(&alice, &room, Approval::All).await?;
    let approved = widget.handshake(&all_caps()).await?;
    for cap in [caps::SEND_DELAYED_UNSTABLE, caps::UPDATE_DELAYED_UNSTABLE] {
        check!(
            approved.iter().any(|c| c == cap),
            "the widget asked for {cap} and the user approved everything, but notify_capabilities \
             approved only {approved:?}"
        );
    }
    Ok(())
}

// Info: the stable names belong to the accepted text, not to the 2026-01 one quoted here.
case! {
    name: stable_names,
    title: "Which stable capability names the driver approves (and honours what it approves)",
    level: Info,
    spec: SEND_CAPABILITY,
}
async fn stable_names(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let mut widget = ctx.widget(&alice, &room, Approval::All).await?;
    let asked = vec![
        caps::SEND_DELAYED_STABLE.to_string(),
        caps::UPDATE_DELAYED_STABLE.to_string(),
        caps::send_event("m.room.message"),
    ];
    let approved = widget.handshake(&asked).await?;
    let send_stable = approved.iter().any(|c| c == caps::SEND_DELAYED_STABLE);
    let update_stable = approved.iter().any(|c| c == caps::UPDATE_DELAYED_STABLE);
    ctx.note(format!(
        "stable capability names approved: {} {}",
        if send_stable {
            "m.send.delayed_event"
        } else {
            "(not m.send.delayed_event)"
        },
        if update_stable {
            "m.update_delayed_event"
        } else {
            "(not m.update_delayed_event)"
        },
    ));
    if send_stable {
        // Approving a capability and then refusing what it allows is a defect whatever the names.
        let event = DelayedEvent::message(&room, &ctx.unique("stable capability"));
        let reply = widget
            .send_event(&event, Some(super::LONG_DELAY_MS))
            .await?;
        check!(
            reply.is_success(),
            "the driver approved m.send.delayed_event but refused a delayed send_event under it: {}",
            reply.describe()
        );
    }
    Ok(())
}

/// The driver gets only `approved`; a delayed send of `event` must be refused and leave nothing
/// scheduled or sent.
async fn refused_without(
    ctx: &Ctx,
    approved: Vec<String>,
    missing: &str,
    state: bool,
) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    let mut widget = ctx.widget(&alice, &room, Approval::Only(approved)).await?;
    widget.handshake(&all_caps()).await?;
    let event = if state {
        DelayedEvent::state(
            &room,
            STATE_TYPE,
            &ctx.unique("key"),
            json!({"refused": true}),
        )
    } else {
        DelayedEvent::message(&room, &ctx.unique("refused"))
    };
    let reply = widget.send_event(&event, Some(SHORT_DELAY_MS)).await?;
    check_error_reply(
        &reply,
        &format!("a delayed send_event without the capability {missing}"),
    )?;
    let scheduled: Vec<_> = alice
        .list()
        .await?
        .into_iter()
        .filter(|info| info.raw.get("content") == Some(&event.content))
        .collect();
    check!(
        scheduled.is_empty(),
        "the driver refused the delayed send_event (no {missing}) but scheduled it on the homeserver \
         anyway: {:?}",
        scheduled.iter().map(|i| i.delay_id()).collect::<Vec<_>>()
    );
    let sent = bob.seen_matching(|o| event.matches(o)).await?;
    check!(
        sent.is_empty(),
        "the driver refused the delayed send_event (no {missing}) but the event was sent at once"
    );
    Ok(())
}

// Must, as MSC4140's authorisation cases (`msc4140.auth`): a refusal the text requires, and
// nothing scheduled behind it.
case! {
    name: delayed_send_needs_capability,
    title: "Without the delayed-send capability a delayed send is refused and nothing is scheduled",
    level: Must,
    spec: TWO_CAPABILITIES,
}
async fn delayed_send_needs_capability(ctx: Ctx) -> CaseResult {
    let approved = vec![
        caps::send_event("m.room.message"),
        caps::send_state(STATE_TYPE),
        caps::UPDATE_DELAYED_UNSTABLE.to_string(),
    ];
    refused_without(&ctx, approved, caps::SEND_DELAYED_UNSTABLE, false).await
}

// Must, as `delayed_send_needs_capability`.
case! {
    name: delayed_send_needs_event_type_capability,
    title: "Without the event type's send capability a delayed send is refused and nothing is scheduled",
    level: Must,
    spec: TWO_CAPABILITIES,
}
async fn delayed_send_needs_event_type_capability(ctx: Ctx) -> CaseResult {
    let approved = vec![
        caps::SEND_DELAYED_UNSTABLE.to_string(),
        caps::UPDATE_DELAYED_UNSTABLE.to_string(),
        caps::send_event("m.room.message"),
    ];
    refused_without(&ctx, approved, &caps::send_state(STATE_TYPE), true).await
}

pub fn cases() -> Vec<Case> {
    cases![
        unstable_names_approved,
        stable_names,
        delayed_send_needs_capability,
        delayed_send_needs_event_type_capability,
    ]
}
