//! limits: the per-user limit on scheduled events the server advertises is enforced with the
//! answer each revision prescribes, and cancelling frees a slot. (The maximum delay at its exact
//! boundary is `capabilities.max_delay_matches_enforcement`.)

use super::texts::{LIMIT_REFUSED, LIMIT_RETRY_AFTER, LIMIT_SCHEDULED};
use super::LONG_DELAY_MS;
use crate::prelude::*;

/// The largest advertised limit a case fills up (a request each).
const MAX_FILLABLE: i64 = 500;

/// The first event of a full quota is due this long after scheduling: what Retry-After counts down.
const NEXT_DUE_MS: i64 = 120_000;

/// A user who has scheduled as many events as the server allows.
struct Full {
    alice: User,
    room: String,
    first: Scheduled,
    /// The answer to one more scheduling request.
    refused: Resp,
    /// Harness clock just before that request.
    refused_at: Instant,
}

async fn fill_up(ctx: &Ctx) -> Result<Full, Stop> {
    let Some(limit) = ctx.features().capability_field("max_scheduled") else {
        skip!("the server does not advertise max_scheduled, so the harness cannot know where its limit is")
    };
    if limit > MAX_FILLABLE {
        skip!("the advertised limit of {limit} scheduled events is more than this case fills up ({MAX_FILLABLE})");
    }
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let first = alice
        .schedule_ok(
            &DelayedEvent::message(&room, &ctx.unique("first")),
            NEXT_DUE_MS,
        )
        .await?;
    for n in 1..limit {
        alice
            .schedule_ok(
                &DelayedEvent::message(&room, &format!("filler {n}")),
                LONG_DELAY_MS,
            )
            .await?;
    }
    let refused_at = Instant::now();
    let refused = alice
        .schedule(
            &DelayedEvent::message(&room, "one too many"),
            Delay::Ms(LONG_DELAY_MS),
        )
        .await?;
    check!(
        !refused.is_success(),
        "with the advertised {limit} events scheduled, one more was accepted: the per-user limit is not enforced \
         ({})",
        refused.describe()
    );
    Ok(Full {
        alice,
        room,
        first,
        refused,
        refused_at,
    })
}

/// The revisions whose answer to an over-limit request `resp` is.
fn limit_answer_revisions(resp: &Resp) -> Vec<Rev> {
    let older = resp.errcode() == Some("M_MAX_DELAYED_EVENTS_EXCEEDED")
        || (resp.errcode() == Some("M_UNKNOWN")
            && resp.body.get("org.matrix.msc4140.errcode")
                == Some(&json!("M_MAX_DELAYED_EVENTS_EXCEEDED")));
    match (resp.status, resp.errcode()) {
        (429, Some("M_LIMIT_EXCEEDED")) => vec![Rev::Jul2026],
        (400, _) if older => vec![Rev::Oct2024, Rev::Dec2025],
        _ => vec![],
    }
}

case! {
    name: over_limit_is_refused,
    title: "Scheduling beyond the advertised per-user limit gets the answer the revision prescribes",
    level: Must,
    spec: LIMIT_REFUSED,
}
async fn over_limit_is_refused(ctx: Ctx) -> CaseResult {
    let full = fill_up(&ctx).await?;
    let matched = limit_answer_revisions(&full.refused);
    check!(
        !matched.is_empty(),
        "over the per-user limit, scheduling should get 429 M_LIMIT_EXCEEDED (2026-07) or 400 \
         M_MAX_DELAYED_EVENTS_EXCEEDED (2024-10, 2025-12), but {}",
        full.refused.describe()
    );
    ctx.matched(&matched);
    Ok(())
}

case! {
    name: retry_after_until_next_send,
    title: "The 429 for the per-user limit says in Retry-After when the user's next event is due",
    level: Must,
    spec: LIMIT_RETRY_AFTER,
    revisions: &[Rev::Jul2026],
}
async fn retry_after_until_next_send(ctx: Ctx) -> CaseResult {
    let full = fill_up(&ctx).await?;
    if limit_answer_revisions(&full.refused) != [Rev::Jul2026] {
        skip!(
            "the server does not answer the limit with 429 (2026-07), so there is no Retry-After to check: {}",
            full.refused.describe()
        );
    }
    let Some(header) = full.refused.header("Retry-After") else {
        fail!(
            "the 429 for the per-user limit has no Retry-After header: {}",
            full.refused.describe()
        )
    };
    let Ok(seconds) = header.trim().parse::<i64>() else {
        fail!("the Retry-After header is not a whole number of seconds: {header:?}")
    };
    // The server scheduled the first event between the request leaving and its answer arriving.
    let due_earliest = full.first.requested_at + Duration::from_millis(NEXT_DUE_MS as u64);
    let due_latest = full.first.resp.received + Duration::from_millis(NEXT_DUE_MS as u64);
    let ceil_secs = |d: Duration| (d.as_millis() as i64 + 999) / 1000;
    let low = ceil_secs(due_earliest.saturating_duration_since(full.refused.received)) - 1;
    let high = ceil_secs(due_latest.saturating_duration_since(full.refused_at)) + 1;
    check!(
        (low..=high).contains(&seconds),
        "Retry-After is {seconds} s, but the user's next delayed event is due in {low}..{high} s (rounded up)"
    );
    Ok(())
}

case! {
    name: cancel_frees_a_slot,
    title: "Cancelling a scheduled event frees a place under the per-user limit",
    level: Should,
    spec: LIMIT_SCHEDULED,
}
async fn cancel_frees_a_slot(ctx: Ctx) -> CaseResult {
    let full = fill_up(&ctx).await?;
    full.alice
        .manage_ok(&full.first.delay_id, Action::Cancel)
        .await?;
    let again = full
        .alice
        .schedule(
            &DelayedEvent::message(&full.room, "in the freed slot"),
            Delay::Ms(LONG_DELAY_MS),
        )
        .await?;
    check!(
        again.is_success(),
        "after cancelling one of the scheduled events at the limit, scheduling another was still refused: {}",
        again.describe()
    );
    Ok(())
}

pub fn cases() -> Vec<Case> {
    cases![
        over_limit_is_refused,
        retry_after_until_next_send,
        cancel_frees_a_slot,
    ]
}
