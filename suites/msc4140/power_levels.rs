//! power_levels: permission is evaluated when a delayed event is sent, not when it is scheduled.

use super::texts::{FAILS_AT_SEND, KEEP_SCHEDULED, PROMOTED_REACHES_DAG, SEND_ACTION_ERROR};
use super::LONG_DELAY_MS;
use crate::api::{DelayedInfo, Fate, ReadFate};
use crate::prelude::*;

/// Room for a power-level or membership change while the delay runs, even on a loaded server.
const CHANGE_DELAY_MS: i64 = 3000;

/// A state event type that needs the room's `state_default` (50) to send.
const GUARDED_TYPE: &str = "org.example.dec.guarded";

async fn set_level(alice: &User, room: &str, user_id: &str, level: i64) -> CaseResult {
    alice
        .update_power_levels(room, |levels| levels["users"][user_id] = json!(level))
        .await
}

fn guarded_event(ctx: &Ctx, room: &str) -> DelayedEvent {
    DelayedEvent::state(
        room,
        GUARDED_TYPE,
        "",
        json!({ "set_by": ctx.unique("bob") }),
    )
}

/// Schedules as bob; a refusal at scheduling time breaks "evaluated at the point of sending".
async fn schedule_as(bob: &User, event: &DelayedEvent, delay_ms: i64) -> Result<Scheduled, Stop> {
    let requested_at = Instant::now();
    let resp = bob.schedule(event, Delay::Ms(delay_ms)).await?;
    match resp.str_field("delay_id") {
        Some(id) if resp.status == 200 => Ok(Scheduled { delay_id: id.into(), delay_ms, requested_at, resp }),
        _ => fail!(
            "scheduling a state event the user may not send yet was refused at scheduling time, but power levels \
             are evaluated when the event is sent: {}",
            resp.describe()
        ),
    }
}

case! {
    name: promoted_before_delay_is_sent,
    title: "A state event scheduled without permission is sent if the user is promoted before its delay passes",
    level: Must,
    spec: PROMOTED_REACHES_DAG,
}
async fn promoted_before_delay_is_sent(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_alice().await?;
    let event = guarded_event(&ctx, &room);
    let scheduled = schedule_as(&bob, &event, CHANGE_DELAY_MS).await?;
    let sent = Instant::now();
    set_level(&alice, &room, bob.id(), 50).await?;
    let landed = ctx.changed_in_time("the promotion", sent, &scheduled)?;
    let what = "the delayed state event of a user promoted before its delay passed";
    let seen = landed.judge(
        ctx.expect_sent(&alice, what, scheduled.due(), |o| event.matches(o))
            .await,
    )?;
    check!(
        seen.event.get("sender").and_then(Value::as_str) == Some(bob.id()),
        "{what} arrived with sender {:?} instead of {}",
        seen.event.get("sender"),
        bob.id()
    );
    Ok(())
}

case! {
    name: demoted_before_delay_is_not_sent,
    title: "A state event is not sent if its user is demoted before its delay passes",
    level: Must,
    spec: FAILS_AT_SEND,
    revisions: &[Rev::Oct2024, Rev::Dec2025, Rev::Jul2026, Rev::Merged2026],
}
async fn demoted_before_delay_is_not_sent(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_alice().await?;
    set_level(&alice, &room, bob.id(), 50).await?;
    let event = guarded_event(&ctx, &room);
    let scheduled = bob.schedule_ok(&event, CHANGE_DELAY_MS).await?;
    let sent = Instant::now();
    set_level(&alice, &room, bob.id(), 0).await?;
    let landed = ctx.changed_in_time("the demotion", sent, &scheduled)?;
    let what = "the delayed state event of a user demoted before its delay passed";
    landed.judge(
        ctx.expect_never_sent(&alice, &bob, &room, what, &scheduled, |o| event.matches(o))
            .await,
    )?;
    check!(
        bob.listed_settled(&scheduled.delay_id, false)
            .await?
            .is_none(),
        "{what} was not sent but is still listed as scheduled after its send time"
    );
    if ctx.features().single_lookup {
        // 2026-07: finalised with the error (flat, or nested in `finalised` as merged); a server
        // may also have discarded it (retention is its choice).
        let lookup = bob
            .lookup_settled(&scheduled.delay_id, |r| {
                r.status != 200
                    || DelayedInfo {
                        raw: r.body.clone(),
                    }
                    .fate()
                    .map_or(true, |read| read.fate != Fate::Scheduled)
            })
            .await?;
        if lookup.status == 200 {
            let read = DelayedInfo {
                raw: lookup.body.clone(),
            }
            .fate();
            match read {
                Ok(ReadFate { fate: Fate::Failed { .. }, shapes }) => ctx.matched(&shapes),
                Ok(ReadFate { fate, .. }) => fail!(
                    "the lookup of {what} should show it finalised with the error that stopped it, but says it \
                     was {}: {}",
                    fate.describe(),
                    lookup.describe()
                ),
                Err(why) => fail!(
                    "the lookup of {what} should show it finalised with the error that stopped it (`finalised_ts` \
                     and `error`, flat or in a `finalised` object), but {why}: {}",
                    lookup.describe()
                ),
            }
        } else {
            check_error(
                &lookup,
                "looking up a failed delayed event",
                &[404],
                &["M_NOT_FOUND"],
            )?;
        }
    }
    Ok(())
}

/// Given bob (level 0) with a scheduled state event he may not send: the send action's answer,
/// and what a plain `/state` PUT of the same event answers.
async fn refused_send(ctx: &Ctx) -> Result<(User, Scheduled, Resp, Resp), Stop> {
    let Scene { bob, room, .. } = ctx.alice_and_bob().await?.watched_by_alice().await?;
    let event = guarded_event(ctx, &room);
    let scheduled = schedule_as(&bob, &event, LONG_DELAY_MS).await?;
    let send = bob.manage(&scheduled.delay_id, Action::Send).await?;
    let plain = bob
        .put_state(&room, GUARDED_TYPE, "", event.content.clone())
        .await?;
    Ok((bob, scheduled, send, plain))
}

case! {
    name: send_action_answers_like_a_plain_send,
    title: "The send action for an event the user may not send answers the error a plain send gets",
    level: Must,
    spec: SEND_ACTION_ERROR,
    revisions: &[Rev::Jul2026],
}
async fn send_action_answers_like_a_plain_send(ctx: Ctx) -> CaseResult {
    let (_, _, send, plain) = refused_send(&ctx).await?;
    check!(
        plain.status == 403,
        "set-up: a plain /state PUT by a level-0 user should be refused: {}",
        plain.describe()
    );
    check!(
        send.status == plain.status && send.errcode() == plain.errcode(),
        "the send action for an event the user may not send should answer as a plain send would ({} {}), but {}",
        plain.status,
        plain.errcode().unwrap_or(""),
        send.describe()
    );
    Ok(())
}

case! {
    name: refused_send_keeps_event_scheduled,
    title: "An event whose send action was refused stays scheduled",
    level: Should,
    spec: KEEP_SCHEDULED,
    revisions: &[Rev::Jul2026],
}
async fn refused_send_keeps_event_scheduled(ctx: Ctx) -> CaseResult {
    let (bob, scheduled, send, _) = refused_send(&ctx).await?;
    check!(
        !send.is_success(),
        "set-up: the send action should have been refused: {}",
        send.describe()
    );
    check!(
        bob.listed_settled(&scheduled.delay_id, true)
            .await?
            .is_some(),
        "after the send action was refused ({} {}), the event is no longer scheduled",
        send.status,
        send.errcode().unwrap_or("")
    );
    Ok(())
}

case! {
    name: member_who_left_is_not_sent,
    title: "A delayed event of a member who left the room before its delay is not sent",
    level: Must,
    spec: FAILS_AT_SEND,
    body: |ctx| gone_before_delay(ctx, false),
}

case! {
    name: kicked_member_is_not_sent,
    title: "A delayed event of a member kicked before its delay is not sent",
    level: Must,
    spec: FAILS_AT_SEND,
    body: |ctx| gone_before_delay(ctx, true),
}

async fn gone_before_delay(ctx: Ctx, kicked: bool) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_alice().await?;
    let event = DelayedEvent::message(&room, &ctx.unique("from a member who left"));
    let scheduled = bob.schedule_ok(&event, CHANGE_DELAY_MS).await?;
    let sent = Instant::now();
    if kicked {
        alice.kick(&room, bob.id()).await?;
    } else {
        bob.leave(&room).await?;
    }
    let change = if kicked {
        "the kick"
    } else {
        "leaving the room"
    };
    let landed = ctx.changed_in_time(change, sent, &scheduled)?;
    let what = if kicked {
        "the delayed message of a member kicked before its delay"
    } else {
        "the delayed message of a member who left before its delay"
    };
    landed.judge(
        ctx.expect_never_sent(&alice, &bob, &room, what, &scheduled, |o| event.matches(o))
            .await,
    )
}

pub fn cases() -> Vec<Case> {
    cases![
        promoted_before_delay_is_sent,
        demoted_before_delay_is_not_sent,
        send_action_answers_like_a_plain_send,
        refused_send_keeps_event_scheduled,
        member_who_left_is_not_sent,
        kicked_member_is_not_sent,
    ]
}
