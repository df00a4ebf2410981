//! limits: the per-user limit on scheduled events the server advertises is enforced with the
//! answer each revision prescribes, and cancelling frees a slot. (The maximum delay at its exact
//! boundary is `capabilities.max_delay_matches_enforcement`.)

use super::texts::{
    CAPABILITY_UNENFORCED_ABSENT, LIMIT_REFUSED, LIMIT_RETRY_AFTER, LIMIT_SCHEDULED, LIMIT_ZERO,
};
use super::LONG_DELAY_MS;
use crate::prelude::*;

/// The largest advertised limit a case fills up (a request each).
const MAX_FILLABLE: i64 = 500;

/// The next event of a full quota that the case waits for is due this long after scheduling.
const SOON_DUE_MS: i64 = 2000;

/// Once a slot is free (the event seen sent and Retry-After passed), how long the server gets to
/// accept the user's next scheduling request.
const FREED_WITHIN: Duration = Duration::from_secs(5);

/// How long after seeing the freeing event sent the case still honours a longer Retry-After.
const RETRY_GRACE: Duration = Duration::from_secs(1);

/// The first event of a full quota is due this long after scheduling: what Retry-After counts down.
const NEXT_DUE_MS: i64 = 120_000;

/// How far `retry_after_ms` may stray from the harness's own span of the next event's due time:
/// the server's clock against the harness's (one machine or NTP), and rounding.
const RETRY_AFTER_MS_SLACK: i64 = 1000;

/// A user who has scheduled as many events as the server allows.
struct Full {
    alice: User,
    /// The rooms the quota was filled in; the over-limit request went into the last.
    rooms: Vec<String>,
    /// The user's next event to be due, scheduled last of the quota.
    first: Scheduled,
    first_event: DelayedEvent,
    /// The answer to one more scheduling request.
    refused: Resp,
    /// Harness clock just before that request.
    refused_at: Instant,
}

/// How a quota is filled.
struct Quota {
    /// Rooms the user's events are spread over; with more than one, the over-limit request
    /// goes into a room of its own, where the user has nothing scheduled.
    rooms: usize,
    /// The delay of the user's next event to be due (every other one is far later).
    first_delay_ms: i64,
    /// The user watches their rooms over `/sync` from before the first event.
    watched: bool,
}

const ONE_ROOM: Quota = Quota {
    rooms: 1,
    first_delay_ms: NEXT_DUE_MS,
    watched: false,
};

/// The advertised per-user limit, if the case can fill it.
fn fillable_limit(ctx: &Ctx) -> Result<i64, Stop> {
    let Some(limit) = ctx.features().capability_field("max_scheduled") else {
        skip!("the server does not advertise max_scheduled, so the harness cannot know where its limit is")
    };
    if limit > MAX_FILLABLE {
        skip!("the advertised limit of {limit} scheduled events is more than this case fills up ({MAX_FILLABLE})");
    }
    Ok(limit)
}

async fn fill_up(ctx: &Ctx, quota: Quota) -> Result<Full, Stop> {
    let limit = fillable_limit(ctx)?;
    let alice = ctx.user("alice").await?;
    let mut rooms = Vec::new();
    for _ in 0..quota.rooms.max(1) {
        rooms.push(ctx.room(&alice, &[]).await?);
    }
    if quota.watched {
        alice.start_sync().await?;
    }
    let spread = rooms.len().max(2) - 1;
    for n in 1..limit {
        let room = &rooms[n as usize % spread];
        alice
            .schedule_ok(
                &DelayedEvent::message(room, &format!("filler {n}")),
                LONG_DELAY_MS,
            )
            .await?;
    }
    // Scheduled last, so that even a short delay is still running when the limit is asked.
    let first_event = DelayedEvent::message(&rooms[0], &ctx.unique("first"));
    let first = alice
        .schedule_ok(&first_event, quota.first_delay_ms)
        .await?;
    let refused_at = Instant::now();
    let last_room = rooms.last().cloned().unwrap_or_default();
    let refused = alice
        .schedule(
            &DelayedEvent::message(&last_room, "one too many"),
            Delay::Ms(LONG_DELAY_MS),
        )
        .await?;
    // Once the first is due, a correct server may have freed its slot.
    let landed = ctx.done_before_due(
        "asking for one more than the limit",
        refused_at,
        first.due(),
    )?;
    let across = if rooms.len() > 1 {
        format!(
            " (spread over {} rooms, the extra one asked in a room of its own)",
            rooms.len() - 1
        )
    } else {
        String::new()
    };
    landed.judge(if refused.is_success() {
        Err(Stop::Fail(format!(
            "with the advertised {limit} events scheduled{across}, one more was accepted: the per-user limit is \
             not enforced ({})",
            refused.describe()
        )))
    } else {
        Ok(())
    })?;
    Ok(Full {
        alice,
        rooms,
        first,
        first_event,
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
    let full = fill_up(&ctx, ONE_ROOM).await?;
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
    title: "The 429 for the per-user limit says in one Retry-After value (and retry_after_ms) when the user's next event is due",
    level: Must,
    spec: LIMIT_RETRY_AFTER,
    revisions: &[Rev::Jul2026],
}
async fn retry_after_until_next_send(ctx: Ctx) -> CaseResult {
    let full = fill_up(&ctx, ONE_ROOM).await?;
    if limit_answer_revisions(&full.refused) != [Rev::Jul2026] {
        skip!(
            "the server does not answer the limit with 429 (2026-07), so there is no Retry-After to check: {}",
            full.refused.describe()
        );
    }
    let headers: Vec<&str> = full
        .refused
        .headers
        .get_all("Retry-After")
        .iter()
        .map(|v| v.to_str().unwrap_or("(not text)"))
        .collect();
    let [header] = headers.as_slice() else {
        if headers.is_empty() {
            fail!(
                "the 429 for the per-user limit has no Retry-After header: {}",
                full.refused.describe()
            )
        }
        fail!("the 429 for the per-user limit carries {} Retry-After headers, not one value: {headers:?}", headers.len())
    };
    let Ok(seconds) = header.trim().parse::<i64>() else {
        fail!("the Retry-After header is not one whole number of seconds: {header:?}")
    };
    // The server scheduled the first event between the request leaving and its answer arriving.
    let delay = Duration::from_millis(NEXT_DUE_MS as u64);
    let due_earliest = full.first.requested_at + delay;
    let due_latest = full.first.resp.received + delay;
    let until_earliest = due_earliest.saturating_duration_since(full.refused.received);
    let until_latest = due_latest.saturating_duration_since(full.refused_at);
    let ceil_secs = |d: Duration| (d.as_millis() as i64 + 999) / 1000;
    let low = ceil_secs(until_earliest) - 1;
    let high = ceil_secs(until_latest) + 1;
    check!(
        (low..=high).contains(&seconds),
        "Retry-After is {seconds} s, but the user's next delayed event is due in {low}..{high} s (rounded up)"
    );
    // The standard error's `retry_after_ms`, where given, is the same wait in milliseconds.
    if let Some(value) = full.refused.body.get("retry_after_ms") {
        let Some(ms) = value.as_i64().filter(|ms| *ms >= 0) else {
            fail!(
                "retry_after_ms is {value}, not a wait in milliseconds (a negative wait wrapped around?); the \
                 user's next delayed event is due in {}..{} ms",
                until_earliest.as_millis(),
                until_latest.as_millis()
            )
        };
        let low_ms = until_earliest.as_millis() as i64 - RETRY_AFTER_MS_SLACK;
        let high_ms = until_latest.as_millis() as i64 + RETRY_AFTER_MS_SLACK;
        check!(
            (low_ms..=high_ms).contains(&ms),
            "retry_after_ms is {ms}, but the user's next delayed event is due in {}..{} ms (Retry-After says \
             {seconds} s)",
            until_earliest.as_millis(),
            until_latest.as_millis()
        );
    }
    Ok(())
}

case! {
    name: cancel_frees_a_slot,
    title: "Cancelling a scheduled event frees a place under the per-user limit",
    level: Should,
    spec: LIMIT_SCHEDULED,
}
async fn cancel_frees_a_slot(ctx: Ctx) -> CaseResult {
    let full = fill_up(&ctx, ONE_ROOM).await?;
    full.alice
        .manage_ok(&full.first.delay_id, Action::Cancel)
        .await?;
    let again = full
        .alice
        .schedule(
            &DelayedEvent::message(&full.rooms[0], "in the freed slot"),
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

case! {
    name: advertised_limit_is_enforced,
    title: "A max_scheduled the capability advertises is a limit the server enforces",
    level: Must,
    spec: CAPABILITY_UNENFORCED_ABSENT,
    needs: &[Need::Capability],
    revisions: &[Rev::Jul2026],
}
async fn advertised_limit_is_enforced(ctx: Ctx) -> CaseResult {
    // Filling the advertised quota and being refused one more is what proves it enforced.
    fill_up(&ctx, ONE_ROOM).await?;
    Ok(())
}

case! {
    name: limit_spans_rooms,
    title: "The per-user limit counts the user's scheduled events in every room together",
    level: Should,
    spec: LIMIT_SCHEDULED,
}
async fn limit_spans_rooms(ctx: Ctx) -> CaseResult {
    let quota = Quota {
        rooms: 3,
        ..ONE_ROOM
    };
    fill_up(&ctx, quota).await?;
    Ok(())
}

case! {
    name: sent_event_frees_a_slot,
    title: "Once the user's next event is sent, scheduling succeeds again after Retry-After",
    level: Should,
    spec: LIMIT_SCHEDULED,
}
async fn sent_event_frees_a_slot(ctx: Ctx) -> CaseResult {
    let quota = Quota {
        first_delay_ms: SOON_DUE_MS,
        watched: true,
        ..ONE_ROOM
    };
    let full = fill_up(&ctx, quota).await?;
    let retry_after = full
        .refused
        .header("Retry-After")
        .and_then(|h| h.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let what = "the user's next delayed event (the one that frees a slot)";
    let event = &full.first_event;
    let seen = ctx
        .expect_sent(&full.alice, what, full.first.due(), |o| event.matches(o))
        .await?;
    if let Some(wait) = retry_after {
        // Retry when Retry-After says; a wrong (too long) one is `retry_after_until_next_send`'s
        // to judge, so the wait ends soon after the event was seen sent.
        let retry_at = (full.refused.received + wait).min(seen.at + RETRY_GRACE);
        tokio::time::sleep_until(retry_at.into()).await;
    }
    // The event is sent and Retry-After has passed: the slot is free, give or take bookkeeping.
    let deadline = Instant::now() + FREED_WITHIN;
    let mut n = 0;
    loop {
        n += 1;
        let again = full
            .alice
            .schedule(
                &DelayedEvent::message(&full.rooms[0], &format!("in the freed slot ({n})")),
                Delay::Ms(LONG_DELAY_MS),
            )
            .await?;
        if again.is_success() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            fail!(
                "the user's next delayed event was sent (seen over /sync) and Retry-After ({}) had passed, yet \
                 {} s later scheduling was still refused, so sent events still count against the limit: {}",
                retry_after.map_or("absent".into(), |w| format!("{} s", w.as_secs())),
                FREED_WITHIN.as_secs(),
                again.describe()
            )
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

case! {
    name: zero_limit_is_forbidden,
    title: "With a per-user limit of 0, scheduling is refused with 403 M_FORBIDDEN",
    level: Must,
    spec: LIMIT_ZERO,
    needs: &[Need::ScheduledLimitZero],
    revisions: &[Rev::Jul2026],
}
async fn zero_limit_is_forbidden(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let capabilities = alice.get("/_matrix/client/v3/capabilities").send().await?;
    let capability = [
        crate::api::STABLE_CAPABILITY,
        crate::api::UNSTABLE_CAPABILITY,
    ]
    .iter()
    .find_map(|name| capabilities.body.pointer(&format!("/capabilities/{name}")));
    let shown = capability.map_or("(absent)".into(), Value::to_string);
    ctx.note(format!(
        "on the instance with a limit of 0, the capability reads {shown}"
    ));
    // The instance was asked for a limit of 0; a server that does not say it has one (an older
    // release without the setting) has no limit of 0 to judge.
    if capability
        .and_then(|c| c.get("max_scheduled"))
        .and_then(Value::as_u64)
        != Some(0)
    {
        skip!(
            "the instance started with a per-user limit of 0 does not advertise one (capability: {shown}): the \
             server may not know the setting, so there is no limit of 0 to judge"
        );
    }
    let resp = alice
        .schedule(
            &DelayedEvent::message(&room, &ctx.unique("never allowed")),
            Delay::Ms(LONG_DELAY_MS),
        )
        .await?;
    check_error(
        &resp,
        "scheduling where the per-user limit is 0",
        &[403],
        &["M_FORBIDDEN"],
    )
}

pub fn cases() -> Vec<Case> {
    cases![
        over_limit_is_refused,
        retry_after_until_next_send,
        cancel_frees_a_slot,
        advertised_limit_is_enforced,
        limit_spans_rooms,
        sent_event_frees_a_slot,
        zero_limit_is_forbidden,
    ]
}
