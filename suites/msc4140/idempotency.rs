//! idempotency: repeating a scheduling request with the same transaction id returns the same
//! delay_id and schedules one event.

use super::texts::TXN_IDS;
use super::SHORT_DELAY_MS;
use crate::client::new_txn_id;
use crate::prelude::*;

case! {
    name: same_txn_same_delay_id,
    title: "Repeating a scheduling request with the same transaction id returns the same delay_id",
    level: Must,
    spec: TXN_IDS,
}
async fn same_txn_same_delay_id(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let event = DelayedEvent::message(&room, &ctx.unique("retried"));
    let txn = new_txn_id();
    let first = alice
        .schedule_ok_with_txn(&event, super::LONG_DELAY_MS, &txn)
        .await?;
    let second = alice
        .schedule_ok_with_txn(&event, super::LONG_DELAY_MS, &txn)
        .await?;
    check!(
        first.delay_id == second.delay_id,
        "repeating the scheduling request with transaction id {txn} gave a new delay_id {} (first: {})",
        second.delay_id,
        first.delay_id
    );
    Ok(())
}

case! {
    name: same_txn_schedules_once,
    title: "Repeating a scheduling request with the same transaction id sends the event once",
    level: Must,
    spec: TXN_IDS,
}
async fn same_txn_schedules_once(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    let event = DelayedEvent::message(&room, &ctx.unique("once"));
    let txn = new_txn_id();
    let first = alice
        .schedule_ok_with_txn(&event, SHORT_DELAY_MS, &txn)
        .await?;
    let retry = alice
        .schedule_ok_with_txn(&event, SHORT_DELAY_MS, &txn)
        .await?;
    // First the event itself (a server may send up to the allowance late, after a control event
    // due just after it), then any second copy: one the retry scheduled would be due by the
    // retry's answer plus the delay, which is when the control falls due.
    ctx.expect_sent(&bob, "the delayed event", first.due(), |o| event.matches(o))
        .await?;
    let copies = ctx
        .copies_once_due(&bob, &alice, &room, &retry, |o| event.matches(o))
        .await?;
    check!(
        copies.len() == 1,
        "two scheduling requests with the same transaction id {txn} sent the event {} times",
        copies.len()
    );
    Ok(())
}

/// `second` repeats `first`'s scheduling request, transaction id included, as someone the
/// transaction id's scope does not cover (`who`): a new event must be scheduled, with a new
/// delay_id, and both listed for their owners.
async fn repeated_by_another(
    first: &User,
    second: &User,
    who: &str,
    event: &DelayedEvent,
) -> CaseResult {
    let txn = new_txn_id();
    let original = first
        .schedule_ok_with_txn(event, super::LONG_DELAY_MS, &txn)
        .await?;
    let repeated = second
        .schedule_ok_with_txn(event, super::LONG_DELAY_MS, &txn)
        .await?;
    check!(
        original.delay_id != repeated.delay_id,
        "the same scheduling request with transaction id {txn} from {who} was answered with the first \
         request's delay_id {}, as a retry: a transaction id is scoped to one device",
        original.delay_id
    );
    for (owner, scheduled) in [(first, &original), (second, &repeated)] {
        check!(
            owner.listed_settled(&scheduled.delay_id, true).await?.is_some(),
            "the event scheduled with transaction id {txn} (delay_id {}) is not in the listing of {}, \
             though it was answered as scheduled",
            scheduled.delay_id,
            owner.id()
        );
    }
    Ok(())
}

case! {
    name: same_txn_other_device_schedules_anew,
    title: "The same transaction id from the user's other device schedules a new event",
    level: Must,
    spec: TXN_IDS,
}
async fn same_txn_other_device_schedules_anew(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let alice_elsewhere = alice.on_another_device().await?;
    let event = DelayedEvent::message(&room, &ctx.unique("two devices"));
    repeated_by_another(&alice, &alice_elsewhere, "the user's other device", &event).await
}

case! {
    name: same_txn_other_user_schedules_anew,
    title: "The same transaction id from another user schedules a new event",
    level: Must,
    spec: TXN_IDS,
}
async fn same_txn_other_user_schedules_anew(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?;
    let event = DelayedEvent::message(&room, &ctx.unique("two users"));
    repeated_by_another(&alice, &bob, "another user", &event).await
}

pub fn cases() -> Vec<Case> {
    cases![
        same_txn_same_delay_id,
        same_txn_schedules_once,
        same_txn_other_device_schedules_anew,
        same_txn_other_user_schedules_anew,
    ]
}
