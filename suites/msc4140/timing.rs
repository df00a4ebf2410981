//! timing: delayed events are not sent before their delay, and not much later either.

use super::texts::{ALLOWANCE, NOT_BEFORE, SCHEDULES_NOT_SENDS};
use super::{LONG_DELAY_MS, SHORT_DELAY_MS};
use crate::prelude::*;
use std::collections::HashMap;

#[derive(Clone, Copy)]
enum Kind {
    Message,
    State,
}

/// What a timing case judges: the event, when its timer started, and when it arrived.
struct Delivery {
    what: &'static str,
    scheduled: Scheduled,
    server_start: Option<i64>,
    seen: Observed,
}

/// Given two users in a room, the first schedules an event with a short delay and the second
/// waits for it over /sync.
async fn deliver(ctx: &Ctx, kind: Kind) -> Result<Delivery, Stop> {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    let (what, event) = match kind {
        Kind::Message => (
            "the delayed message",
            DelayedEvent::message(&room, &ctx.unique("timing")),
        ),
        Kind::State => (
            "the delayed state event",
            DelayedEvent::state(
                &room,
                "org.example.dec.timing",
                alice.id(),
                json!({"at": ctx.unique("t")}),
            ),
        ),
    };
    let scheduled = alice.schedule_ok(&event, SHORT_DELAY_MS).await?;
    let server_start = ctx
        .server_scheduled_at(&alice, &scheduled.delay_id, &scheduled.timer())
        .await?;
    let seen = ctx
        .expect_sent(&bob, what, scheduled.due(), |o| event.matches(o))
        .await?;
    Ok(Delivery {
        what,
        scheduled,
        server_start,
        seen,
    })
}

case! {
    name: message_not_sent_early,
    title: "A delayed message event is not sent before its delay has passed",
    level: Must,
    spec: NOT_BEFORE,
    body: |ctx| not_early(ctx, Kind::Message),
}

case! {
    name: state_not_sent_early,
    title: "A delayed state event is not sent before its delay has passed",
    level: Must,
    spec: NOT_BEFORE,
    body: |ctx| not_early(ctx, Kind::State),
}

/// The lower bound (MUST). The upper bound is the wait in `deliver`: an event not seen within its
/// delay plus the allowance (and slack) fails as never sent; `within_allowance` judges it closely.
async fn not_early(ctx: Ctx, kind: Kind) -> CaseResult {
    let d = deliver(&ctx, kind).await?;
    ctx.check_not_early(
        d.what,
        &d.seen,
        d.scheduled.due().with_server_start(d.server_start),
    )
}

case! {
    name: message_sent_within_allowance,
    title: "A delayed message event is sent no more than 30 s after its scheduled time",
    level: Should,
    spec: ALLOWANCE,
    body: |ctx| within_allowance(ctx, Kind::Message),
    revisions: &[Rev::Dec2025, Rev::Jul2026],
}

case! {
    name: state_sent_within_allowance,
    title: "A delayed state event is sent no more than 30 s after its scheduled time",
    level: Should,
    spec: ALLOWANCE,
    body: |ctx| within_allowance(ctx, Kind::State),
    revisions: &[Rev::Dec2025, Rev::Jul2026],
}

/// The upper bound (SHOULD), by the server's timestamps against the scheduling time it reported
/// (itself checked against the harness's clock in `deliver`), else by the harness's clock; the
/// lower bound is `not_early`'s, on the same scenario.
async fn within_allowance(ctx: Ctx, kind: Kind) -> CaseResult {
    let d = deliver(&ctx, kind).await?;
    ctx.check_within_allowance(
        d.what,
        &d.seen,
        d.scheduled.due().with_server_start(d.server_start),
    )
}

case! {
    name: delay_never_ignored,
    title: "A request with a delay is scheduled or refused, never sent at once (also where the feature is off)",
    level: Must,
    spec: SCHEDULES_NOT_SENDS,
    runs_without_feature,
}
/// The dangerous fallback: a server that does not know the delay treats the request as a plain
/// send, and a "hang up in ten minutes" goes out now. Runs whether or not the server offers
/// delayed events: it must schedule (a `delay_id`, no `event_id`) or refuse, never send at once.
async fn delay_never_ignored(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    let event = DelayedEvent::message(&room, &ctx.unique("due in ten minutes"));
    let resp = alice.schedule(&event, Delay::Ms(LONG_DELAY_MS)).await?;
    let delay_id = resp.str_field("delay_id").filter(|_| resp.status == 200);
    if let Some(event_id) = resp.str_field("event_id") {
        fail!(
            "a request with a {LONG_DELAY_MS} ms delay was answered with event_id {event_id}: the server \
             ignored the delay and sent the event at once ({})",
            resp.describe()
        );
    }
    check!(
        resp.status != 200 || delay_id.is_some(),
        "a request with a delay must be scheduled (200 with a delay_id) or refused, but the answer \
         has neither a delay_id nor an error: {}",
        resp.describe()
    );
    // An event sent at once precedes a plain message sent after the answer: once the plain
    // message is in, the delayed one would be too.
    let marker = ctx.unique("after the delayed request");
    alice
        .send_event(
            &room,
            "m.room.message",
            json!({"msgtype": "m.text", "body": marker}),
        )
        .await?
        .setup_step("send a plain message")?;
    let sent_at = Instant::now();
    if bob
        .wait_for(sent_at + Duration::from_secs(10), body_is(&marker))
        .await?
        .is_none()
    {
        return Err(Stop::Error(
            "a plain message did not arrive within 10 s, so the case cannot tell whether the delayed one went out".into(),
        ));
    }
    let early = bob.seen_matching(|o| event.matches(o)).await?;
    if let Some(delay_id) = delay_id {
        alice.manage(delay_id, Action::Cancel).await?;
    }
    if let Some(copy) = early.first() {
        fail!(
            "the event scheduled with a {LONG_DELAY_MS} ms delay was sent at once: event {} arrived \
             over /sync before a plain message sent after the scheduling answer ({})",
            copy.event_id().unwrap_or("?"),
            resp.describe()
        );
    }
    if delay_id.is_none() {
        ctx.note(format!(
            "the server refused the delayed request (it was not sent): {}",
            resp.describe()
        ));
    }
    Ok(())
}

/// The largest advertised per-user limit a burst case fills (a request each).
const MAX_BURST: i64 = 100;

/// The burst is due this long after the first scheduling request, plus time per request.
const BURST_LEAD_MS: i64 = 1000;
const BURST_PER_REQUEST_MS: i64 = 40;
/// The shortest delay an event of a burst gets, when the server's answers ate the time allowed.
const MIN_BURST_DELAY_MS: i64 = 100;

/// Users and events each of the many-users burst.
const BURST_USERS: usize = 5;
const BURST_EVENTS_EACH: usize = 4;

/// Each sender schedules `each` messages into `room`, all aimed at one moment: every delay is that
/// moment minus the harness clock just before its request. Then every event must arrive, none
/// before its own delay (by the harness's clock), and each exactly once.
async fn burst(ctx: &Ctx, senders: &[User], each: usize, watcher: &User, room: &str) -> CaseResult {
    let started = Instant::now();
    let count = (senders.len() * each) as i64;
    let budget_ms = BURST_LEAD_MS + BURST_PER_REQUEST_MS * count;
    let due_at = started + Duration::from_millis(budget_ms as u64);
    let mut events = Vec::new();
    let mut overrun = None;
    for (s, sender) in senders.iter().enumerate() {
        for n in 0..each {
            let event = DelayedEvent::message(room, &ctx.unique(&format!("burst {s}.{n}")));
            let now = Instant::now();
            let delay = due_at.saturating_duration_since(now).as_millis() as i64;
            if delay < MIN_BURST_DELAY_MS {
                // Who spent the time: the harness's own work, or waiting for the server's answers?
                let waited = ctx.evidence().waiting_within(started, now);
                let own = now.duration_since(started).saturating_sub(waited);
                if own.as_millis() as i64 + MIN_BURST_DELAY_MS > budget_ms {
                    return Err(Stop::Error(format!(
                        "the harness fell behind: its own work scheduling the burst took {} ms, longer than the {} ms \
                         it allowed",
                        own.as_millis(),
                        budget_ms
                    )));
                }
                // The server's answers took the time: the rest are due as soon as allowed.
                overrun.get_or_insert((events.len(), waited));
            }
            let delay = delay.max(MIN_BURST_DELAY_MS);
            events.push((sender.schedule_ok(&event, delay).await?, event));
        }
    }
    if let Some((on_time, waited)) = overrun {
        ctx.note(format!(
            "the server's answers to the scheduling requests took {} ms, more than the {} ms the burst allowed: \
             {on_time} of {count} events are due at the one moment, the rest {MIN_BURST_DELAY_MS} ms after their own \
             scheduling",
            waited.as_millis(),
            budget_ms
        ));
    }
    // The server's own scheduling times, read before the burst is due: "not early" by the
    // server's clock as well, which a harness slowed by the burst cannot blur.
    let all: Vec<&Scheduled> = events.iter().map(|(s, _)| s).collect();
    let mut server_starts = HashMap::new();
    for sender in senders {
        server_starts.extend(ctx.server_starts(sender, &all).await?);
    }
    let what = "an event of a burst all due at one moment";
    // Not early; not later than its delay plus the allowance (the wait's deadline).
    for (scheduled, event) in &events {
        ctx.expect_sent_not_early(
            watcher,
            what,
            scheduled
                .due()
                .with_server_start(server_starts.get(&scheduled.delay_id).copied()),
            |o| event.matches(o),
        )
        .await?;
    }
    let named: Vec<(&str, &DelayedEvent)> = events.iter().map(|(_, e)| (what, e)).collect();
    ctx.expect_each_once(&senders[0], watcher, room, &named)
        .await
}

case! {
    name: burst_up_to_user_limit,
    title: "A user's events up to the advertised limit, all due at one moment, are each sent once and none early",
    level: Must,
    spec: NOT_BEFORE,
    needs: &[Need::Capability],
}
/// One user's events up to the per-user limit the server advertises, all due at once.
async fn burst_up_to_user_limit(ctx: Ctx) -> CaseResult {
    let Some(limit) = ctx.features().capability_field("max_scheduled") else {
        skip!("the server does not advertise max_scheduled, so the harness cannot know how many events one user may have")
    };
    let count = limit.min(MAX_BURST) as usize;
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    burst(&ctx, &[alice], count, &bob, &room).await
}

case! {
    name: many_users_due_together,
    title: "Many users' events due at one moment in one room are each sent once and none early",
    level: Must,
    spec: NOT_BEFORE,
}
/// Several users' events in one room, all due at once.
async fn many_users_due_together(ctx: Ctx) -> CaseResult {
    let Crowd {
        watcher,
        members: senders,
        room,
    } = ctx.watched_room(BURST_USERS).await?;
    burst(&ctx, &senders, BURST_EVENTS_EACH, &watcher, &room).await
}

pub fn cases() -> Vec<Case> {
    cases![
        delay_never_ignored,
        message_not_sent_early,
        state_not_sent_early,
        message_sent_within_allowance,
        state_sent_within_allowance,
        burst_up_to_user_limit,
        many_users_due_together,
    ]
}
