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

pub fn cases() -> Vec<Case> {
    cases![same_txn_same_delay_id, same_txn_schedules_once]
}
