//! cancellation: a cancelled event is never sent, leaves the listing, and later actions on it (or
//! on an event already sent) get the answer each revision prescribes.

use super::texts::{CANCEL_ACTION, LISTING, RETRY};
use super::{LONG_DELAY_MS, SHORT_DELAY_MS};
use crate::prelude::*;

case! {
    name: cancelled_event_is_never_sent,
    title: "A cancelled delayed event is never sent",
    level: Must,
    spec: CANCEL_ACTION,
}
async fn cancelled_event_is_never_sent(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    let doomed = DelayedEvent::message(&room, &ctx.unique("cancelled"));
    let scheduled = alice.schedule_ok(&doomed, SHORT_DELAY_MS).await?;
    alice.manage_ok(&scheduled.delay_id, Action::Cancel).await?;
    let what = "the cancelled event";
    ctx.expect_never_sent(&bob, &alice, &room, what, &scheduled, |o| doomed.matches(o))
        .await
}

case! {
    name: cancelled_event_leaves_listing,
    title: "A cancelled delayed event no longer appears among the scheduled ones",
    level: Must,
    spec: LISTING,
}
async fn cancelled_event_leaves_listing(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let scheduled = alice
        .schedule_ok(
            &DelayedEvent::message(&room, &ctx.unique("listed")),
            LONG_DELAY_MS,
        )
        .await?;
    check!(
        alice.listed(&scheduled.delay_id).await?.is_some(),
        "the scheduled event {} is missing from the listing even before it was cancelled",
        scheduled.delay_id
    );
    alice.manage_ok(&scheduled.delay_id, Action::Cancel).await?;
    check!(
        alice.listed(&scheduled.delay_id).await?.is_none(),
        "after a successful cancel, the event {} is still in the listing of scheduled delayed events",
        scheduled.delay_id
    );
    Ok(())
}

fn answer(resp: &Resp) -> String {
    format!("{} {}", resp.status, resp.errcode().unwrap_or(""))
}

fn is_error(resp: &Resp, status: u16, errcode: &str) -> bool {
    resp.status == status && resp.errcode() == Some(errcode)
}

case! {
    name: actions_on_cancelled_event,
    title: "Cancel, send and restart on a cancelled event get the answer the revision prescribes",
    level: Must,
    spec: RETRY,
    revisions: &[Rev::Dec2025, Rev::Jul2026],
}
async fn actions_on_cancelled_event(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    alice.start_sync().await?;
    let event = DelayedEvent::message(&room, &ctx.unique("cancelled"));
    let id = alice.schedule_ok(&event, LONG_DELAY_MS).await?.delay_id;
    alice.manage_ok(&id, Action::Cancel).await?;
    let cancel = alice.manage(&id, Action::Cancel).await?;
    let send = alice.manage(&id, Action::Send).await?;
    let restart = alice.manage(&id, Action::Restart).await?;

    let mut matched = Vec::new();
    // 2025-12: "404 and an M_NOT_FOUND error if the delay_id is not recognized or was already cancelled".
    if [&cancel, &send, &restart]
        .iter()
        .all(|r| is_error(r, 404, "M_NOT_FOUND"))
    {
        matched.push(Rev::Dec2025);
    }
    // 2026-07: a matching retry (cancel) succeeds; conflicting actions (send, restart) get 409.
    if cancel.status == 200
        && is_error(&send, 409, "M_UNKNOWN")
        && is_error(&restart, 409, "M_UNKNOWN")
    {
        matched.push(Rev::Jul2026);
    }
    check!(
        !matched.is_empty(),
        "actions on a cancelled delayed event got cancel → {}, send → {}, restart → {}; 2025-12 prescribes 404 \
         M_NOT_FOUND for each, 2026-07 prescribes 200 for cancel and 409 M_UNKNOWN for send and restart (last: {})",
        answer(&cancel),
        answer(&send),
        answer(&restart),
        send.describe()
    );
    let sent = alice.seen_matching(|o| event.matches(o)).await?;
    check!(
        sent.is_empty(),
        "the send action on a cancelled delayed event sent it anyway"
    );
    ctx.matched(&matched);
    Ok(())
}

case! {
    name: actions_on_sent_event,
    title: "A retried send on a sent event succeeds and a cancel does not",
    level: Must,
    spec: RETRY,
    revisions: &[Rev::Dec2025, Rev::Jul2026],
}
async fn actions_on_sent_event(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    alice.start_sync().await?;
    let event = DelayedEvent::message(&room, &ctx.unique("sent"));
    let id = alice.schedule_ok(&event, LONG_DELAY_MS).await?.delay_id;
    let sent_at = Instant::now();
    alice.manage_ok(&id, Action::Send).await?;
    check!(
        alice
            .wait_for(sent_at + Duration::from_secs(5), |o| event.matches(o))
            .await?
            .is_some(),
        "the send action did not send the event within 5 s"
    );
    let send = alice.manage(&id, Action::Send).await?;
    let cancel = alice.manage(&id, Action::Cancel).await?;

    let mut matched = Vec::new();
    // 2025-12: "the send action should return HTTP 200 even if the event was already sent"; it
    // prescribes nothing for cancel, which must still not succeed.
    if send.status == 200 && (400..500).contains(&cancel.status) {
        matched.push(Rev::Dec2025);
    }
    // 2026-07: send matches the outcome (success); cancel conflicts with it (409 M_UNKNOWN).
    if send.status == 200 && is_error(&cancel, 409, "M_UNKNOWN") {
        matched.push(Rev::Jul2026);
    }
    check!(
        !matched.is_empty(),
        "actions on an already sent delayed event got send → {}, cancel → {}; 2025-12 and 2026-07 prescribe 200 \
         for a retried send, and 2026-07 409 M_UNKNOWN for cancel ({}; {})",
        answer(&send),
        answer(&cancel),
        send.describe(),
        cancel.describe()
    );
    let copies = alice.seen_matching(|o| event.matches(o)).await?;
    check!(
        copies.len() == 1,
        "the retried send action sent the event again ({} copies)",
        copies.len()
    );
    ctx.matched(&matched);
    Ok(())
}

/// Alice's other events in the retried-actions case: due after the retries are done.
const OTHERS_DELAY_MS: i64 = 3000;

case! {
    name: retried_actions_leave_others_alone,
    title: "Retried or conflicting actions on finalised events leave the user's other events scheduled and on time",
    level: Must,
    spec: RETRY,
    revisions: &[Rev::Jul2026],
}
/// A client retrying (or contradicting) actions on finalised events must not upset the user's
/// other timers: alice's other events stay scheduled and are sent on time, not early and not
/// late. What each retried action answered is noted (`actions_on_sent_event` and
/// `actions_on_cancelled_event` judge those answers).
async fn retried_actions_leave_others_alone(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    let mut others = Vec::new();
    for n in 0..2 {
        let event = DelayedEvent::message(&room, &ctx.unique(&format!("other {n}")));
        let scheduled = alice.schedule_ok(&event, OTHERS_DELAY_MS).await?;
        let server_start = ctx
            .server_scheduled_at(&alice, &scheduled.delay_id, &scheduled.timer())
            .await?;
        others.push((scheduled, server_start, event));
    }
    let sent = DelayedEvent::message(&room, &ctx.unique("sent now"));
    let sent_id = alice.schedule_ok(&sent, LONG_DELAY_MS).await?.delay_id;
    let cancelled_id = alice
        .schedule_ok(
            &DelayedEvent::message(&room, &ctx.unique("cancelled")),
            LONG_DELAY_MS,
        )
        .await?
        .delay_id;
    let actions_began = Instant::now();
    alice.manage_ok(&sent_id, Action::Send).await?;
    alice.manage_ok(&cancelled_id, Action::Cancel).await?;
    let mut answers = Vec::new();
    for (id, finalised) in [(&sent_id, "sent"), (&cancelled_id, "cancelled")] {
        for action in [Action::Send, Action::Cancel, Action::Restart] {
            let resp = alice.manage(id, action).await?;
            check!(
                resp.status < 500,
                "retrying {action:?} on a {finalised} delayed event broke the server: {}",
                resp.describe()
            );
            answers.push(format!("{action:?} on {finalised} → {}", resp.status));
        }
    }
    ctx.note(format!("retried actions answered: {}", answers.join(", ")));
    let mut unlisted = Vec::new();
    for (scheduled, _, _) in &others {
        if alice.listed(&scheduled.delay_id).await?.is_none() {
            unlisted.push(scheduled.delay_id.as_str());
        }
    }
    // The first of the others is due first.
    let change = "the actions and the listing after them";
    let landed = ctx.changed_in_time(change, actions_began, &others[0].0)?;
    landed.judge(if unlisted.is_empty() {
        Ok(())
    } else {
        Err(Stop::Fail(format!(
            "after retried actions on other, finalised delayed events, the user's still scheduled event(s) {} \
             are no longer listed",
            unlisted.join(", ")
        )))
    })?;
    let what = "a delayed event of a user who retried actions on other, finalised ones";
    for (scheduled, server_start, event) in &others {
        let seen = ctx
            .expect_sent_not_early(
                &bob,
                what,
                scheduled.due().with_server_start(*server_start),
                |o| event.matches(o),
            )
            .await?;
        ctx.check_within_allowance(
            what,
            &seen,
            scheduled.due().with_server_start(*server_start),
        )?;
    }
    Ok(())
}

pub fn cases() -> Vec<Case> {
    cases![
        cancelled_event_is_never_sent,
        cancelled_event_leaves_listing,
        actions_on_cancelled_event,
        actions_on_sent_event,
        retried_actions_leave_others_alone,
    ]
}
