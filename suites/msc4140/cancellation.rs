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
    name: actions_answer_empty_object,
    title: "A successful send, cancel or restart action answers 200 with an empty object",
    level: Must,
    spec: crate::msc4140::texts::ACTION_ANSWER,
    revisions: &[Rev::Dec2025, Rev::Jul2026],
}
async fn actions_answer_empty_object(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let mut answers = Vec::new();
    for action in [Action::Restart, Action::Send, Action::Cancel] {
        let event = DelayedEvent::message(&room, &ctx.unique(action.as_str()));
        let delay_id = alice.schedule_ok(&event, LONG_DELAY_MS).await?.delay_id;
        answers.push((action, alice.manage_ok(&delay_id, action).await?));
    }
    if ctx.form().manage == ManageForm::Body {
        // The body form is 2024-10's, which says nothing of the answer's body.
        for (action, resp) in &answers {
            ctx.note(format!(
                "the '{}' action (body form) answered {} {}",
                action.as_str(),
                resp.status,
                resp.body
            ));
        }
        return Ok(());
    }
    for (action, resp) in &answers {
        check!(
            resp.status == 200 && resp.body == json!({}),
            "a successful '{}' action should answer 200 with an empty object, but {}",
            action.as_str(),
            resp.describe()
        );
    }
    Ok(())
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
        alice
            .listed_settled(&scheduled.delay_id, true)
            .await?
            .is_some(),
        "the scheduled event {} is missing from the listing even before it was cancelled",
        scheduled.delay_id
    );
    alice.manage_ok(&scheduled.delay_id, Action::Cancel).await?;
    check!(
        alice.listed_settled(&scheduled.delay_id, false).await?.is_none(),
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

/// Which revisions' answer to a conflicting action `resp` is: 409 `M_UNKNOWN` (2026-07), or 409
/// with whatever errcode (the merged text names none, Synapse PR #20229).
fn conflict_revisions(resp: &Resp) -> Vec<Rev> {
    match (resp.status, resp.errcode()) {
        (409, Some("M_UNKNOWN")) => vec![Rev::Jul2026, Rev::Merged2026],
        (409, _) => vec![Rev::Merged2026],
        _ => Vec::new(),
    }
}

/// The revisions in all of `sets`.
fn common(sets: &[Vec<Rev>]) -> Vec<Rev> {
    let Some((first, rest)) = sets.split_first() else {
        return Vec::new();
    };
    first
        .iter()
        .copied()
        .filter(|r| rest.iter().all(|s| s.contains(r)))
        .collect()
}

case! {
    name: actions_on_cancelled_event,
    title: "Cancel, send and restart on a cancelled event get the answer the revision prescribes",
    level: Must,
    spec: RETRY,
    revisions: &[Rev::Dec2025, Rev::Jul2026, Rev::Merged2026],
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
    // 2026-07 and merged: a matching retry (cancel) succeeds; conflicting ones (send, restart) 409.
    if cancel.status == 200 {
        matched.extend(common(&[
            conflict_revisions(&send),
            conflict_revisions(&restart),
        ]));
    }
    check!(
        !matched.is_empty(),
        "actions on a cancelled delayed event got cancel → {}, send → {}, restart → {}; 2025-12 prescribes 404 \
         M_NOT_FOUND for each, 2026-07 prescribes 200 for cancel and 409 M_UNKNOWN for send and restart, the merged \
         text 409 with any errcode (last: {})",
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
    revisions: &[Rev::Dec2025, Rev::Jul2026, Rev::Merged2026],
}
/// The table for sent events, for one sent by the send action and one sent by its timer: send
/// matches the outcome (200), cancel conflicts with it (409). What `restart` answers is recorded:
/// no revision's text says (MSC4542 proposes 409; a client library relies on 404).
async fn actions_on_sent_event(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    alice.start_sync().await?;
    let by_action = DelayedEvent::message(&room, &ctx.unique("sent by the action"));
    let action_id = alice.schedule_ok(&by_action, LONG_DELAY_MS).await?.delay_id;
    let by_timer = DelayedEvent::message(&room, &ctx.unique("sent by its timer"));
    let timer_scheduled = alice.schedule_ok(&by_timer, SHORT_DELAY_MS).await?;
    let sent_at = Instant::now();
    alice.manage_ok(&action_id, Action::Send).await?;
    check!(
        alice
            .wait_for(sent_at + Duration::from_secs(5), |o| by_action.matches(o))
            .await?
            .is_some(),
        "the send action did not send the event within 5 s"
    );
    ctx.expect_sent(
        &alice,
        "the event sent by its timer",
        timer_scheduled.due(),
        |o| by_timer.matches(o),
    )
    .await?;

    let mut matched: Option<Vec<Rev>> = None;
    let mut restarts = Vec::new();
    for (id, event, how) in [
        (&action_id, &by_action, "the send action"),
        (&timer_scheduled.delay_id, &by_timer, "its timer"),
    ] {
        let send = alice.manage(id, Action::Send).await?;
        let cancel = alice.manage(id, Action::Cancel).await?;
        let restart = alice.manage(id, Action::Restart).await?;
        restarts.push(format!(
            "restart on an event sent by {how} → {}",
            answer(&restart)
        ));
        let mut here = Vec::new();
        // 2025-12: "the send action should return HTTP 200 even if the event was already sent
        // successfully by a previous request or by the delay timing out"; it prescribes nothing
        // for cancel, which must still not succeed.
        if send.status == 200 && (400..500).contains(&cancel.status) {
            here.push(Rev::Dec2025);
        }
        // 2026-07 and merged: send matches the outcome (success); cancel conflicts with it.
        if send.status == 200 {
            here.extend(conflict_revisions(&cancel));
        }
        check!(
            !here.is_empty(),
            "actions on a delayed event already sent by {how} got send → {}, cancel → {}; 2025-12 and 2026-07 \
             prescribe 200 for a retried send, 2026-07 409 M_UNKNOWN for cancel and the merged text 409 ({}; {})",
            answer(&send),
            answer(&cancel),
            send.describe(),
            cancel.describe()
        );
        let copies = alice.seen_matching(|o| event.matches(o)).await?;
        check!(
            copies.len() == 1,
            "the retried send action sent the event sent by {how} again ({} copies)",
            copies.len()
        );
        matched = Some(match matched {
            None => here,
            Some(before) => before.into_iter().filter(|r| here.contains(r)).collect(),
        });
    }
    ctx.note(format!(
        "no revision says what restart on a sent event answers (MSC4542 proposes 409): {}",
        restarts.join(", ")
    ));
    ctx.matched(&matched.unwrap_or_default());
    Ok(())
}

/// Room for leaving the room while the delay runs, even on a loaded server.
const LEAVE_DELAY_MS: i64 = 2000;

case! {
    name: actions_on_failed_event,
    title: "Cancel, send and restart on an event that failed to send get the answer the revision prescribes",
    level: Must,
    spec: RETRY,
    revisions: &[Rev::Dec2025, Rev::Jul2026, Rev::Merged2026],
}
/// A failed event is "cancelled due to an error": 2026-07 answers a retried cancel with success
/// and send or restart with 409 (merged: 409, errcode unnamed); 2025-12 answers send with the
/// error that stopped it ("if the event already failed previously, the endpoint returns the
/// error that happened while sending the event"), and says nothing of cancel and restart.
async fn actions_on_failed_event(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_alice().await?;
    let event = DelayedEvent::message(&room, &ctx.unique("from a member who left"));
    let scheduled = bob.schedule_ok(&event, LEAVE_DELAY_MS).await?;
    let sent = Instant::now();
    bob.leave(&room).await?;
    let landed = ctx.changed_in_time("leaving the room", sent, &scheduled)?;
    let what = "the delayed message of a member who left before its delay";
    landed.judge(
        ctx.expect_never_sent(&alice, &bob, &room, what, &scheduled, |o| event.matches(o))
            .await,
    )?;
    let id = &scheduled.delay_id;
    // What sending it plainly gets now: the error its own send met.
    let plain = bob
        .send_event(&room, &event.event_type, event.content.clone())
        .await?;
    let send = bob.manage(id, Action::Send).await?;
    let restart = bob.manage(id, Action::Restart).await?;
    let cancel = bob.manage(id, Action::Cancel).await?;
    let mut matched = Vec::new();
    if !plain.is_success() && send.status == plain.status && send.errcode() == plain.errcode() {
        matched.push(Rev::Dec2025);
    }
    if cancel.status == 200 {
        matched.extend(common(&[
            conflict_revisions(&send),
            conflict_revisions(&restart),
        ]));
    }
    check!(
        !matched.is_empty(),
        "actions on a delayed event that failed to send (its sender had left the room) got send → {}, restart → {}, \
         cancel → {}; 2026-07 prescribes 200 for cancel (\"already been cancelled (either due to user action or an \
         error)\") and 409 M_UNKNOWN for send and restart, the merged text 409 with any errcode, and 2025-12 the \
         sending error for send (a plain send now gets {}) (last: {})",
        answer(&send),
        answer(&restart),
        answer(&cancel),
        answer(&plain),
        cancel.describe()
    );
    let copies = alice.seen_matching(|o| event.matches(o)).await?;
    check!(
        copies.is_empty(),
        "the send action on a delayed event that had failed sent it anyway"
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
    // Asked once, without waiting for a lagging listing: it must be read before the first of
    // the others is due, after which a correct server unlists it too.
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
        actions_answer_empty_object,
        cancelled_event_leaves_listing,
        actions_on_cancelled_event,
        actions_on_sent_event,
        actions_on_failed_event,
        retried_actions_leave_others_alone,
    ]
}
