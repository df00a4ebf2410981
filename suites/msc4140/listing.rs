//! listing: the user's scheduled events, with the fields each revision defines, in send-time
//! order, none of other users', none already sent or cancelled; the single-item lookup; no
//! lookup without an access token.

use super::texts::{
    CANCELLED_LOOKUP, EVENT_ID_OF_SENT, LISTING, LISTING_FIELDS, LISTING_ORDER,
    LISTING_SCHEDULED_ONLY, LOOKUPS_AUTHENTICATED, SCHEDULED_AT, SENT_MANUALLY, SINGLE_LOOKUP,
    SINGLE_LOOKUP_OTHERS,
};
use super::{LONG_DELAY_MS, SHORT_DELAY_MS};
use crate::api::{DelayedInfo, Fate};
use crate::judgements::{least_moved, wall_ms, CLOCK_TOLERANCE_MS};
use crate::prelude::*;

fn find<'a>(items: &'a [DelayedInfo], delay_id: &str) -> Option<&'a DelayedInfo> {
    items.iter().find(|i| i.delay_id() == Some(delay_id))
}

/// Whether the listing shows each of `ids`.
fn lists_all(items: &[DelayedInfo], ids: &[&str]) -> bool {
    ids.iter().all(|id| find(items, id).is_some())
}

/// Checks what every revision agrees on: room, type, state key (absent for messages), content.
fn check_common_fields(item: &DelayedInfo, event: &DelayedEvent, source: &str) -> CaseResult {
    let raw = &item.raw;
    check!(
        item.room_id() == Some(event.room_id.as_str()),
        "{source}: room_id is not {}: {raw}",
        event.room_id
    );
    check!(
        raw.get("type") == Some(&json!(event.event_type)),
        "{source}: type is not {}: {raw}",
        event.event_type
    );
    check!(
        raw.get("content") == Some(&event.content),
        "{source}: content is not the scheduled {}: {raw}",
        event.content
    );
    match &event.state_key {
        Some(key) => check!(
            raw.get("state_key") == Some(&json!(key)),
            "{source}: state_key is not {key:?}: {raw}"
        ),
        None => check!(
            raw.get("state_key").is_none(),
            "{source}: a message event's entry has a state_key: {raw}"
        ),
    }
    Ok(())
}

/// The revisions whose delay/timestamp field names the entry carries, with the right delay.
fn field_revisions(item: &DelayedInfo, delay_ms: i64) -> Vec<Rev> {
    let raw = &item.raw;
    let mut revisions = Vec::new();
    if raw.get("delay") == Some(&json!(delay_ms))
        && raw.get("running_since").is_some_and(Value::is_i64)
    {
        revisions.extend([Rev::Oct2024, Rev::Dec2025]);
    }
    if raw.get("delay_ms") == Some(&json!(delay_ms))
        && raw.get("scheduled_at").is_some_and(Value::is_i64)
    {
        revisions.push(Rev::Jul2026);
    }
    // The merged text (reconstructed): `delayed_since_ts` for the scheduling time.
    if raw.get("delay_ms") == Some(&json!(delay_ms))
        && raw.get("delayed_since_ts").is_some_and(Value::is_i64)
    {
        revisions.push(Rev::Merged2026);
    }
    revisions
}

case! {
    name: entries_have_revision_fields,
    title: "Listed events carry room, type, state key, content, delay and scheduling time",
    level: Must,
    spec: LISTING_FIELDS,
    revisions: &[Rev::Oct2024, Rev::Dec2025, Rev::Jul2026, Rev::Merged2026],
}
async fn entries_have_revision_fields(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let message = DelayedEvent::message(&room, &ctx.unique("listed"));
    let state = DelayedEvent::state(
        &room,
        "org.example.dec.listed",
        "key",
        json!({"k": ctx.unique("v")}),
    );
    let message_scheduled = alice.schedule_ok(&message, LONG_DELAY_MS).await?;
    let state_scheduled = alice.schedule_ok(&state, LONG_DELAY_MS).await?;
    let (message_id, state_id) = (&message_scheduled.delay_id, &state_scheduled.delay_id);
    let items = alice
        .list_settled(|items| lists_all(items, &[message_id, state_id]))
        .await?;
    ctx.check_listed_times(
        &items,
        &[
            (message_id, message_scheduled.timer()),
            (state_id, state_scheduled.timer()),
        ],
    )?;
    let mut matched: Option<Vec<Rev>> = None;
    for (event, id) in [(&message, message_id), (&state, state_id)] {
        let Some(item) = find(&items, id) else {
            fail!(
                "the listing lacks the scheduled event {id}: {:?}",
                items.iter().map(|i| &i.raw).collect::<Vec<_>>()
            )
        };
        check!(
            item.delay_id() == Some(id.as_str()),
            "the listing entry has no delay_id {id}"
        );
        check_common_fields(item, event, "listing entry")?;
        let revisions = field_revisions(item, LONG_DELAY_MS);
        check!(
            !revisions.is_empty(),
            "the listing entry has neither `delay_ms` + `scheduled_at` (2026-07), `delay_ms` + `delayed_since_ts` \
             (merged 2026-09-08) nor `delay` + `running_since` (2024-10, 2025-12) with the scheduled delay \
             {LONG_DELAY_MS}: {}",
            item.raw
        );
        matched = Some(match matched {
            None => revisions,
            Some(prev) => prev.into_iter().filter(|r| revisions.contains(r)).collect(),
        });
    }
    ctx.matched(&matched.unwrap_or_default());
    Ok(())
}

case! {
    name: in_send_time_order,
    title: "Listed events come in the order of their send times",
    level: Must,
    spec: LISTING_ORDER,
}
async fn in_send_time_order(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    // Scheduled in an order different from their send times.
    let delays = [
        LONG_DELAY_MS,
        LONG_DELAY_MS - 60_000,
        LONG_DELAY_MS - 30_000,
    ];
    let mut ids = Vec::new();
    let mut timers = Vec::new();
    for delay in delays {
        let event = DelayedEvent::message(&room, &ctx.unique("ordered"));
        let scheduled = alice.schedule_ok(&event, delay).await?;
        timers.push((scheduled.delay_id.clone(), scheduled.timer()));
        ids.push((delay, scheduled.delay_id));
    }
    let own: Vec<(&str, TimerStart)> = timers.iter().map(|(id, t)| (id.as_str(), *t)).collect();
    let own_ids: Vec<&str> = own.iter().map(|(id, _)| *id).collect();
    let items = alice
        .list_settled(|items| lists_all(items, &own_ids))
        .await?;
    ctx.check_listed_times(&items, &own)?;
    let listed: Vec<String> = items
        .iter()
        .filter_map(|i| i.delay_id().map(str::to_string))
        .filter(|id| ids.iter().any(|(_, own)| own == id))
        .collect();
    ids.sort_by_key(|(delay, _)| *delay);
    let expected: Vec<String> = ids.into_iter().map(|(_, id)| id).collect();
    check!(
        listed == expected,
        "the listing is not in order of send time: expected {expected:?} (delays {}, {}, {} s), got {listed:?}",
        (LONG_DELAY_MS - 60_000) / 1000,
        (LONG_DELAY_MS - 30_000) / 1000,
        LONG_DELAY_MS / 1000
    );
    Ok(())
}

case! {
    name: excludes_other_users,
    title: "A user's listing never shows another user's scheduled events",
    level: Must,
    spec: LISTING,
}
async fn excludes_other_users(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?;
    let alices = alice
        .schedule_ok(
            &DelayedEvent::message(&room, &ctx.unique("a")),
            LONG_DELAY_MS,
        )
        .await?;
    let bobs = bob
        .schedule_ok(
            &DelayedEvent::message(&room, &ctx.unique("b")),
            LONG_DELAY_MS,
        )
        .await?;
    let bob_sees = bob
        .list_settled(|items| lists_all(items, &[&bobs.delay_id]))
        .await?;
    ctx.check_listed_times(&bob_sees, &[(&bobs.delay_id, bobs.timer())])?;
    let alice_sees = alice
        .list_settled(|items| lists_all(items, &[&alices.delay_id]))
        .await?;
    ctx.check_listed_times(&alice_sees, &[(&alices.delay_id, alices.timer())])?;
    let (alices, bobs) = (&alices.delay_id, &bobs.delay_id);
    check!(
        find(&bob_sees, bobs).is_some(),
        "bob's listing lacks bob's own scheduled event {bobs}"
    );
    check!(
        find(&bob_sees, alices).is_none(),
        "bob's listing shows alice's scheduled event {alices}"
    );
    check!(
        find(&alice_sees, bobs).is_none(),
        "alice's listing shows bob's scheduled event {bobs}"
    );
    Ok(())
}

case! {
    name: excludes_sent_and_cancelled,
    title: "Events sent by their timer or the send action, or cancelled, are not listed as scheduled",
    level: Must,
    spec: LISTING_SCHEDULED_ONLY,
}
async fn excludes_sent_and_cancelled(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    alice.start_sync().await?;
    let timed = DelayedEvent::message(&room, &ctx.unique("timer"));
    let timed_id = alice.schedule_ok(&timed, SHORT_DELAY_MS).await?;
    let sent_now = alice
        .schedule_ok(
            &DelayedEvent::message(&room, &ctx.unique("now")),
            LONG_DELAY_MS,
        )
        .await?
        .delay_id;
    let cancelled = alice
        .schedule_ok(
            &DelayedEvent::message(&room, &ctx.unique("c")),
            LONG_DELAY_MS,
        )
        .await?
        .delay_id;
    let kept_scheduled = alice
        .schedule_ok(
            &DelayedEvent::message(&room, &ctx.unique("kept")),
            LONG_DELAY_MS,
        )
        .await?;
    let kept = &kept_scheduled.delay_id;
    alice.manage_ok(&sent_now, Action::Send).await?;
    alice.manage_ok(&cancelled, Action::Cancel).await?;
    ctx.expect_sent(&alice, "the event sent by its timer", timed_id.due(), |o| {
        timed.matches(o)
    })
    .await?;
    let gone = [&timed_id.delay_id, &sent_now, &cancelled];
    let items = alice
        .list_settled(|items| {
            find(items, kept).is_some() && gone.iter().all(|id| find(items, id).is_none())
        })
        .await?;
    ctx.check_listed_times(&items, &[(kept, kept_scheduled.timer())])?;
    check!(
        find(&items, kept).is_some(),
        "the listing lacks the still-scheduled event {kept}"
    );
    for (id, how) in [
        (&timed_id.delay_id, "sent by its timer"),
        (&sent_now, "sent by the send action"),
        (&cancelled, "cancelled"),
    ] {
        check!(
            find(&items, id).is_none(),
            "the listing of scheduled events still shows event {id}, which was {how}"
        );
    }
    Ok(())
}

case! {
    name: requires_access_token,
    title: "Listing and looking up delayed events without an access token is refused with 401",
    level: Must,
    spec: LOOKUPS_AUTHENTICATED,
}
async fn requires_access_token(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let id = alice
        .schedule_ok(
            &DelayedEvent::message(&room, &ctx.unique("secret")),
            LONG_DELAY_MS,
        )
        .await?
        .delay_id;
    let listing = alice.list_raw(false).await?;
    check_error(
        &listing,
        "listing delayed events without an access token",
        &[401],
        &["M_MISSING_TOKEN"],
    )?;
    if ctx.features().single_lookup {
        let single = alice.lookup(&id, false).await?;
        check_error(
            &single,
            "looking up a delayed event without an access token",
            &[401],
            &["M_MISSING_TOKEN"],
        )?;
    }
    Ok(())
}

case! {
    name: single_lookup_own_event,
    title: "The single-item lookup answers a scheduled event's details to its owner",
    level: Must,
    spec: SINGLE_LOOKUP,
    needs: &[Need::SingleLookup],
    revisions: &[Rev::Jul2026],
}
async fn single_lookup_own_event(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let event = DelayedEvent::state(
        &room,
        "org.example.dec.single",
        "key",
        json!({"k": ctx.unique("v")}),
    );
    let scheduled = alice.schedule_ok(&event, LONG_DELAY_MS).await?;
    let id = &scheduled.delay_id;
    let resp = alice.lookup_settled(id, |r| r.status == 200).await?;
    check!(
        resp.status == 200,
        "looking up one's own scheduled event should answer 200, but {}",
        resp.describe()
    );
    let item = DelayedInfo {
        raw: resp.body.clone(),
    };
    check!(
        item.delay_id() == Some(id.as_str()),
        "the lookup answered another delay_id: {}",
        resp.describe()
    );
    check_common_fields(&item, &event, "single-item lookup")?;
    check!(
        item.delay_ms() == Some(LONG_DELAY_MS) && item.scheduled_at().is_some(),
        "the lookup lacks the delay ({LONG_DELAY_MS} ms) or the scheduling time: {}",
        resp.describe()
    );
    ctx.check_reported_time("the single-item lookup", &item, &scheduled.timer())?;
    let read = item.fate().map_err(|why| {
        Stop::Fail(format!(
            "a still-scheduled event's lookup reads as no outcome any revision gives: {why}: {}",
            resp.describe()
        ))
    })?;
    check!(
        read.fate == Fate::Scheduled,
        "a still-scheduled event's lookup says it was {}, with the fields that mark finalised events \
         (`finalised_ts`, or a `finalised` object): {}",
        read.fate.describe(),
        resp.describe()
    );
    Ok(())
}

/// Between scheduling and restarting: long enough that a restart which left the scheduling time
/// where it was shows, as the server's two reports then differ by about this much.
const BEFORE_RESTART: Duration = Duration::from_millis(300);

/// The scheduling time the listing (and the single lookup, where offered) reports for `delay_id`,
/// each judged against `timer`, the request that last (re)started the event's timer. The
/// listing is asked until it reports at least `earliest` (this timer's time, not an earlier
/// one's: a worker may lag behind the restart); a stale time left after that is judged.
async fn reported_time(
    ctx: &Ctx,
    user: &User,
    delay_id: &str,
    timer: &TimerStart,
    earliest: i64,
) -> Result<i64, Stop> {
    let items = user
        .list_settled(|items| {
            find(items, delay_id).is_some_and(|i| i.scheduled_at().is_none_or(|at| at >= earliest))
        })
        .await?;
    let Some(item) = find(&items, delay_id) else {
        fail!("the listing lacks the scheduled event {delay_id}")
    };
    let Some(at) = ctx.check_reported_time("the listing", item, timer)? else {
        fail!(
            "the listing entry reports no scheduling time (`scheduled_at`, `running_since` or \
             `delayed_since_ts`): {}",
            item.raw
        )
    };
    ctx.note(format!(
        "the listing reported the scheduling time {} ms after {} left (its answer came after {} ms)",
        at - wall_ms(timer.sent),
        timer.by,
        timer.answered.duration_since(timer.sent).as_millis()
    ));
    if ctx.features().single_lookup {
        let resp = user.lookup(delay_id, true).await?;
        if resp.status == 200 {
            let item = DelayedInfo { raw: resp.body };
            ctx.check_reported_time("the single-item lookup", &item, timer)?;
        }
    }
    Ok(at)
}

case! {
    name: scheduling_time_is_when_timer_started,
    title: "The listed scheduling time is when the event was scheduled, then when it was last restarted",
    level: Must,
    spec: SCHEDULED_AT,
}
/// The reported scheduling time is when the timer started, by the harness's clock: within the
/// scheduling request's span, then, after a restart, within the restart's, having moved by as
/// much as the harness saw pass between the two.
async fn scheduling_time_is_when_timer_started(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let event = DelayedEvent::message(&room, &ctx.unique("timed"));
    let scheduled = alice.schedule_ok(&event, LONG_DELAY_MS).await?;
    let id = &scheduled.delay_id;
    let first = scheduled.timer();
    let earliest = |timer: &TimerStart| wall_ms(timer.sent) - CLOCK_TOLERANCE_MS;
    let before = reported_time(&ctx, &alice, id, &first, earliest(&first)).await?;
    // The spec's own time is the point: the restart comes measurably after the scheduling.
    tokio::time::sleep(BEFORE_RESTART).await;
    let requested = Instant::now();
    let resp = alice.manage_ok(id, Action::Restart).await?;
    let restart = TimerStart::restart(requested, &resp);
    let moved_since = before + least_moved(&first, &restart);
    let after = reported_time(
        &ctx,
        &alice,
        id,
        &restart,
        earliest(&restart).max(moved_since),
    )
    .await?;
    ctx.check_restart_moved_time("the listing", (before, &first), (after, &restart))
}

case! {
    name: single_lookup_other_users_event,
    title: "The single-item lookup of another user's event answers 404 M_NOT_FOUND",
    level: Must,
    spec: SINGLE_LOOKUP_OTHERS,
    needs: &[Need::SingleLookup],
    revisions: &[Rev::Jul2026],
}
async fn single_lookup_other_users_event(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?;
    let id = alice
        .schedule_ok(
            &DelayedEvent::message(&room, &ctx.unique("mine")),
            LONG_DELAY_MS,
        )
        .await?
        .delay_id;
    let resp = bob.lookup(&id, true).await?;
    check_error(
        &resp,
        "another user looking up alice's delayed event",
        &[404],
        &["M_NOT_FOUND"],
    )
}

/// How much later than the event to be restarted another is due: less than `BEFORE_RESTART`,
/// so the restart moves the first behind it.
const OVERTAKEN_BY_MS: i64 = 100;

case! {
    name: in_send_time_order_after_restart,
    title: "After a restart action the listing is in the order of the new send times",
    level: Must,
    spec: LISTING_ORDER,
}
/// Three events due in the order: to be restarted, overtaken (due `OVERTAKEN_BY_MS` after the
/// first), last. Restarting the first `BEFORE_RESTART` later moves its send time behind the
/// overtaken one's, so the listing must then put it second.
async fn in_send_time_order_after_restart(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let mut scheduled = Vec::new();
    for (name, delay) in [
        ("restarted", LONG_DELAY_MS),
        ("overtaken", LONG_DELAY_MS + OVERTAKEN_BY_MS),
        ("last", LONG_DELAY_MS + 60_000),
    ] {
        let event = DelayedEvent::message(&room, &ctx.unique(name));
        scheduled.push(alice.schedule_ok(&event, delay).await?);
    }
    let [restarted, overtaken, last] = &scheduled[..] else {
        unreachable!("three events were scheduled")
    };
    // The spec's own time is the point: the restart comes measurably after the others were
    // scheduled.
    tokio::time::sleep(BEFORE_RESTART).await;
    let requested = Instant::now();
    let resp = alice
        .manage_ok(&restarted.delay_id, Action::Restart)
        .await?;
    let restart = TimerStart::restart(requested, &resp);
    // A worker may answer from before the restart: asked until the order has changed.
    let items = alice
        .list_settled(|items| {
            let first = items.iter().filter_map(DelayedInfo::delay_id).find(|id| {
                *id == restarted.delay_id.as_str() || *id == overtaken.delay_id.as_str()
            });
            first == Some(overtaken.delay_id.as_str())
        })
        .await?;
    ctx.check_listed_times(
        &items,
        &[
            (&restarted.delay_id, restart),
            (&overtaken.delay_id, overtaken.timer()),
            (&last.delay_id, last.timer()),
        ],
    )?;
    let own = [&restarted.delay_id, &overtaken.delay_id, &last.delay_id];
    let listed: Vec<&str> = items
        .iter()
        .filter_map(DelayedInfo::delay_id)
        .filter(|id| own.iter().any(|o| o.as_str() == *id))
        .collect();
    let expected = [
        overtaken.delay_id.as_str(),
        restarted.delay_id.as_str(),
        last.delay_id.as_str(),
    ];
    check!(
        listed == expected,
        "after the restart action, the listing is not in the order of the new send times: expected \
         {expected:?}, got {listed:?}. {} was due {OVERTAKEN_BY_MS} ms after {} and {} 60 s after it; the \
         restart, {} ms later, moved {} behind {}",
        overtaken.delay_id,
        restarted.delay_id,
        last.delay_id,
        BEFORE_RESTART.as_millis(),
        restarted.delay_id,
        overtaken.delay_id
    );
    Ok(())
}

case! {
    name: restarted_entries_lack_finalised_fields,
    title: "After restart, send and cancel actions, listed events carry no field of finalised events",
    level: Must,
    spec: LISTING_FIELDS,
}
async fn restarted_entries_lack_finalised_fields(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let mut ids = Vec::new();
    for name in ["restarted", "kept", "sent", "cancelled"] {
        let event = DelayedEvent::message(&room, &ctx.unique(name));
        ids.push(alice.schedule_ok(&event, LONG_DELAY_MS).await?.delay_id);
    }
    let [restarted, kept, sent, cancelled] = &ids[..] else {
        unreachable!("four events were scheduled")
    };
    alice.manage_ok(restarted, Action::Restart).await?;
    alice.manage_ok(sent, Action::Send).await?;
    alice.manage_ok(cancelled, Action::Cancel).await?;
    // A worker may answer from before the actions: asked until the listing shows them all.
    let items = alice
        .list_settled(|items| {
            find(items, restarted).is_some()
                && find(items, kept).is_some()
                && find(items, sent).is_none()
                && find(items, cancelled).is_none()
        })
        .await?;
    for id in [restarted, kept] {
        check!(
            find(&items, id).is_some(),
            "the listing lacks the still-scheduled event {id}"
        );
    }
    for item in &items {
        let id = item.delay_id().unwrap_or("?");
        for field in ["error", "event_id", "finalised_ts"] {
            match item.raw.get(field) {
                None => {}
                Some(Value::Null) => ctx.note(format!(
                    "the listing entry of {id} has `{field}: null`, a field of finalised events only"
                )),
                Some(value) => fail!(
                    "the listing entry of {id} carries `{field}` ({value}), a field of finalised events \
                     only: {}",
                    item.raw
                ),
            }
        }
        // The merged text's nested outcome: no quotable sentence says so of the listing yet.
        if let Some(outcome) = item.raw.get("finalised") {
            ctx.note(format!(
                "the listing entry of {id} has `finalised`: {outcome}"
            ));
        }
    }
    Ok(())
}

/// How the looked-up event was finalised.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Finalised {
    Timer,
    SendAction,
    Cancel,
}

/// Two times from the server's own clock compared with each other: rounding only.
const SAME_CLOCK_MS: i64 = 100;

case! {
    name: lookup_after_timer_sent,
    title: "The lookup of an event its timer sent gives the timeline's event_id and a finalised_ts not before its send time",
    level: Must,
    spec: EVENT_ID_OF_SENT,
    body: |ctx| lookup_finalised(ctx, Finalised::Timer),
    needs: &[Need::SingleLookup],
    revisions: &[Rev::Jul2026, Rev::Merged2026],
}

case! {
    name: lookup_after_send_action,
    title: "The lookup of an event sent by the send action gives its event_id and a finalised_ts before its scheduled send time",
    level: Must,
    spec: SENT_MANUALLY,
    body: |ctx| lookup_finalised(ctx, Finalised::SendAction),
    needs: &[Need::SingleLookup],
    revisions: &[Rev::Jul2026, Rev::Merged2026],
}

case! {
    name: lookup_after_cancel,
    title: "The lookup of a cancelled event gives a finalised_ts, and no event_id or error",
    level: Must,
    spec: CANCELLED_LOOKUP,
    body: |ctx| lookup_finalised(ctx, Finalised::Cancel),
    needs: &[Need::SingleLookup],
    revisions: &[Rev::Jul2026, Rev::Merged2026],
}

/// Finalises an event of alice's (`how`), then looks it up: the outcome (in either shape,
/// `DelayedInfo::fate`) must be the one that happened, with the timeline's event id for a sent
/// event, and a `finalised_ts` that tells manual sending from the timer's.
async fn lookup_finalised(ctx: Ctx, how: Finalised) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    alice.start_sync().await?;
    let event = DelayedEvent::message(&room, &ctx.unique("finalised"));
    let delay = if how == Finalised::Timer {
        SHORT_DELAY_MS
    } else {
        LONG_DELAY_MS
    };
    let scheduled = alice.schedule_ok(&event, delay).await?;
    let id = &scheduled.delay_id;
    let seen = match how {
        Finalised::Timer => Some(
            ctx.expect_sent(
                &alice,
                "the event sent by its timer",
                scheduled.due(),
                |o| event.matches(o),
            )
            .await?,
        ),
        Finalised::SendAction => {
            let sent_at = Instant::now();
            alice.manage_ok(id, Action::Send).await?;
            let seen = alice
                .wait_for(sent_at + Duration::from_secs(5), |o| event.matches(o))
                .await?;
            let Some(seen) = seen else {
                fail!("the send action did not send the event within 5 s")
            };
            Some(seen)
        }
        Finalised::Cancel => {
            alice.manage_ok(id, Action::Cancel).await?;
            None
        }
    };
    // A worker may answer from before the change: asked until it shows an outcome.
    let finalised = |r: &Resp| {
        r.status != 200
            || DelayedInfo {
                raw: r.body.clone(),
            }
            .fate()
            .map_or(true, |read| read.fate != Fate::Scheduled)
    };
    let resp = alice.lookup_settled(id, finalised).await?;
    if is_not_found(&resp) {
        skip!(
            "the server keeps no finalised delayed events: looking up one right after it was {} answered {}; how \
             long they are kept is the server's choice (2026-07: \"The amount of finalised events that stay on the \
             homeserver can be chosen by the homeserver.\")",
            how.describe(),
            resp.describe()
        );
    }
    check!(
        resp.status == 200,
        "looking up one's own delayed event right after it was {} should answer 200 (or 404 where finalised \
         events are not kept), but {}",
        how.describe(),
        resp.describe()
    );
    let item = DelayedInfo {
        raw: resp.body.clone(),
    };
    let read = item.fate().map_err(|why| {
        Stop::Fail(format!(
            "the lookup of an event {} gives its outcome in no shape a revision defines (flat `finalised_ts` / \
             `event_id` / `error` of 2026-07, or the merged text's `finalised` object): {why}: {}",
            how.describe(),
            resp.describe()
        ))
    })?;
    let (Some(scheduled_at), Some(delay_ms)) = (item.scheduled_at(), item.delay_ms()) else {
        fail!(
            "the lookup of a finalised event lacks its delay or scheduling time: {}",
            resp.describe()
        )
    };
    let send_time = scheduled_at + delay_ms;
    match (how, &read.fate, &seen) {
        (
            Finalised::Timer | Finalised::SendAction,
            Fate::Sent {
                event_id,
                finalised_ts,
            },
            Some(seen),
        ) => {
            check!(
                seen.event_id() == Some(event_id.as_str()),
                "the lookup of an event {} gives `event_id` {event_id}, but the event arrived over /sync as {}",
                how.describe(),
                seen.event_id().unwrap_or("?")
            );
            if how == Finalised::SendAction {
                check!(
                    *finalised_ts < send_time,
                    "the lookup of an event sent by the send action gives `finalised_ts` {finalised_ts}, not before \
                     its scheduled send time {send_time} (`scheduled_at` + `delay_ms`), which says it was sent on \
                     its scheduled send time: {}",
                    resp.describe()
                );
            } else {
                check!(
                    *finalised_ts >= send_time - SAME_CLOCK_MS,
                    "the lookup of an event its timer sent gives `finalised_ts` {finalised_ts}, {} ms before its \
                     scheduled send time {send_time} (`scheduled_at` + `delay_ms`), which says it was sent \
                     manually: {}",
                    send_time - finalised_ts,
                    resp.describe()
                );
            }
        }
        (Finalised::Cancel, Fate::Cancelled { .. }, None) => {}
        (_, fate, _) => fail!(
            "the lookup of an event {} says it was {}: {}",
            how.describe(),
            fate.describe(),
            resp.describe()
        ),
    }
    ctx.matched(&read.shapes);
    Ok(())
}

impl Finalised {
    fn describe(self) -> &'static str {
        match self {
            Finalised::Timer => "sent by its timer",
            Finalised::SendAction => "sent by the send action",
            Finalised::Cancel => "cancelled",
        }
    }
}

fn is_not_found(resp: &Resp) -> bool {
    resp.status == 404 && resp.errcode() == Some("M_NOT_FOUND")
}

pub fn cases() -> Vec<Case> {
    cases![
        entries_have_revision_fields,
        scheduling_time_is_when_timer_started,
        in_send_time_order,
        excludes_other_users,
        excludes_sent_and_cancelled,
        requires_access_token,
        single_lookup_own_event,
        single_lookup_other_users_event,
        in_send_time_order_after_restart,
        restarted_entries_lack_finalised_fields,
        lookup_after_timer_sent,
        lookup_after_send_action,
        lookup_after_cancel,
    ]
}
