//! persistence: scheduled delayed events survive a homeserver restart; those that fell due while
//! it was down are sent as soon as it is back, in order; listing and management still work.
//! These cases run in the restart phase and share restarts. After a restart each first waits,
//! over `/sync` only, for what it expects to be due and then says it has settled; a case touches
//! the delayed-events API only once the whole round has settled, so no case's request can nudge
//! the server into sending what another case waits for.

use super::texts::{OVERDUE_IN_ORDER, PERSIST, RESTART_SCANS_SCHEDULED};
use super::LONG_DELAY_MS;
use crate::prelude::*;
use std::collections::HashMap;

/// Due a few seconds after the restart: long enough to be pending across it.
const ACROSS_RESTART_MS: i64 = 4000;

/// Due while the homeserver is down (stopping takes well under this; starting, over a second).
const OVERDUE_DELAYS_MS: [i64; 3] = [800, 500, 650];

/// Sent before the restart (or kill): short, so it is out before the round gathers.
const SENT_BEFORE_MS: i64 = 300;

/// Due while the homeserver is down after a hard kill (starting again takes over a second).
const DUE_WHILE_KILLED_MS: [i64; 3] = [300, 450, 600];

/// After the last expected copy arrived, how long a duplicate gets to show up as well.
const DUPLICATE_GRACE: Duration = Duration::from_millis(500);

case! {
    name: scheduled_event_survives_restart,
    title: "An event scheduled before a homeserver restart is still sent at its time",
    level: Must,
    spec: PERSIST,
    needs: &[Need::Restart],
    revisions: &[Rev::Jul2026],
}
async fn scheduled_event_survives_restart(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    let round = ctx.restart_round().await;
    let event = DelayedEvent::message(&room, &ctx.unique("across a restart"));
    let scheduled = alice.schedule_ok(&event, ACROSS_RESTART_MS).await?;
    let server_start = ctx
        .server_scheduled_at(&alice, &scheduled.delay_id, &scheduled.timer())
        .await?;
    ctx.restart_now(round).await?;
    // Not early; not later than its send time plus the allowance (the wait's deadline).
    let what = "the event scheduled before the homeserver restarted";
    ctx.expect_sent_not_early(
        &bob,
        what,
        scheduled.due().with_server_start(server_start),
        |o| event.matches(o),
    )
    .await?;
    ctx.settled();
    Ok(())
}

case! {
    name: overdue_events_sent_in_order,
    title: "Events that fell due while the homeserver was down are sent when it is back, in send-time order",
    level: Must,
    spec: OVERDUE_IN_ORDER,
    needs: &[Need::Restart],
    revisions: &[Rev::Jul2026],
}
async fn overdue_events_sent_in_order(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    let round = ctx.restart_round().await;
    let mut events = Vec::new();
    for delay in OVERDUE_DELAYS_MS {
        let event = DelayedEvent::message(&room, &ctx.unique(&format!("overdue after {delay} ms")));
        events.push((alice.schedule_ok(&event, delay).await?, event));
    }
    // The server's scheduling times (one listing, quick: the events are due soon), so that an
    // event sent early, before the server went down, shows by its own clock too. A listing the
    // server refuses is the listing cases' to judge.
    let listed = alice.list().await.unwrap_or_default();
    let all: Vec<&Scheduled> = events.iter().map(|(s, _)| s).collect();
    let server_starts = ctx.server_starts_in(&listed, &all)?;
    ctx.restart_now(round).await?;
    let back = Instant::now();
    let what = "an event that fell due while the homeserver was down";
    for (scheduled, event) in &events {
        // "As soon as possible" once back: within the allowance of its return (the wait's
        // deadline); and not before its own send time.
        let seen = ctx
            .expect_sent(&bob, what, Due::new(back, 0), |o| event.matches(o))
            .await?;
        ctx.check_not_early(
            what,
            &seen,
            scheduled
                .due()
                .with_server_start(server_starts.get(&scheduled.delay_id).copied()),
        )?;
    }
    ctx.settled();
    // The order they reached the timeline in, against the order of their send times. Those are
    // not the order of the delays: a slow scheduling request moves its event's send time later.
    let arrived = bob
        .seen_matching(|o| events.iter().any(|(_, e)| e.matches(o)))
        .await?;
    let arrival: Vec<&Scheduled> = arrived
        .iter()
        .filter_map(|o| events.iter().find(|(_, e)| e.matches(o)).map(|(s, _)| s))
        .collect();
    let send_times = SendTimes::of(&all, &server_starts);
    for pair in arrival.windows(2) {
        let (first, then) = (pair[0], pair[1]);
        check!(
            send_times.earliest(first) <= send_times.latest(then),
            "events that fell due while the homeserver was down were not sent in the order of their send times: \
             the one with delay {} ms (send time {}) was sent before the one with delay {} ms (send time {}); \
             delays in the order sent: {:?} ms",
            first.delay_ms,
            send_times.describe(first),
            then.delay_ms,
            send_times.describe(then),
            arrival.iter().map(|s| s.delay_ms).collect::<Vec<_>>()
        );
    }
    Ok(())
}

case! {
    name: listing_and_management_after_restart,
    title: "After a restart, scheduled events are listed and can be cancelled, sent and restarted",
    level: Must,
    spec: PERSIST,
    needs: &[Need::Restart],
    revisions: &[Rev::Jul2026],
}
async fn listing_and_management_after_restart(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    let round = ctx.restart_round().await;
    let mut kept = Vec::new();
    let mut timers = Vec::new();
    for name in ["to cancel", "to send", "to restart"] {
        let event = DelayedEvent::message(&room, &ctx.unique(name));
        let scheduled = alice.schedule_ok(&event, LONG_DELAY_MS).await?;
        timers.push(scheduled.timer());
        kept.push((scheduled.delay_id, event));
    }
    ctx.restart_now(round).await?;
    // Its requests could nudge a server into sending what the round's other cases wait for.
    ctx.after_round_settled().await;
    let listed = alice
        .list_settled(|items| {
            kept.iter()
                .all(|(id, _)| items.iter().any(|i| i.delay_id() == Some(id.as_str())))
        })
        .await?;
    // A homeserver restart is no restart of the events: they still report their scheduling.
    let own: Vec<(&str, TimerStart)> = kept
        .iter()
        .zip(&timers)
        .map(|((id, _), timer)| (id.as_str(), *timer))
        .collect();
    ctx.check_listed_times(&listed, &own)?;
    for (id, event) in &kept {
        let entry = listed.iter().find(|i| i.delay_id() == Some(id.as_str()));
        check!(
            entry.is_some_and(|i| i.raw.get("content") == Some(&event.content)),
            "after the homeserver restarted, the listing lacks the scheduled event {id} (or its content changed)"
        );
    }
    let [(cancel_id, _), (send_id, send_event), (restart_id, _)] = &kept[..] else {
        unreachable!()
    };
    alice.manage_ok(cancel_id, Action::Cancel).await?;
    check!(
        alice.listed_settled(cancel_id, false).await?.is_none(),
        "after a restart, a cancelled event is still listed"
    );
    let sent_at = Instant::now();
    alice.manage_ok(send_id, Action::Send).await?;
    check!(
        bob.wait_for(sent_at + Duration::from_secs(5), |o| send_event.matches(o))
            .await?
            .is_some(),
        "after a restart, the send action answered success but the event did not arrive within 5 s"
    );
    alice.manage_ok(restart_id, Action::Restart).await?;
    Ok(())
}

/// Alice schedules a short delayed message; bob sees it arrive (sent before what follows).
async fn sent_now(
    ctx: &Ctx,
    alice: &User,
    bob: &User,
    room: &str,
    name: &str,
) -> Result<DelayedEvent, Stop> {
    let event = DelayedEvent::message(room, &ctx.unique(name));
    let scheduled = alice.schedule_ok(&event, SENT_BEFORE_MS).await?;
    ctx.expect_sent_not_early(bob, name, scheduled.due(), |o| event.matches(o))
        .await?;
    Ok(event)
}

case! {
    name: exactly_once_across_restart_and_kill,
    title: "An event sent before a restart is not sent again; events due during a hard kill are each sent exactly once",
    level: Must,
    spec: RESTART_SCANS_SCHEDULED,
    needs: &[Need::Restart, Need::Kill],
    revisions: &[Rev::Jul2026],
}
/// An event sent before a clean restart is not sent again after it; then the homeserver is
/// killed outright while events are due, and after it comes back each is sent exactly once
/// (and the event sent just before the kill not again). After each restart the case waits only
/// over `/sync` (and a plain message), never touching the delayed-events API, and the next round
/// gathers only once this one has settled: a server whose start-up needs such a request to send
/// what is due must not be rescued, by this case or another.
async fn exactly_once_across_restart_and_kill(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    let before_restart = sent_now(&ctx, &alice, &bob, &room, "sent before the restart").await?;

    // A clean restart, with a control due while the server is down: start-up sends it, and by
    // then it would have sent the earlier event again too.
    let round = ctx.restart_round().await;
    let control = DelayedEvent::message(&room, &ctx.unique("control due during the restart"));
    alice.schedule_ok(&control, SENT_BEFORE_MS).await?;
    ctx.restart_now(round).await?;
    let back = Instant::now();
    ctx.expect_sent(
        &bob,
        "a control event due while the homeserver restarted",
        Due::new(back, 0),
        |o| control.matches(o),
    )
    .await?;
    tokio::time::sleep(DUPLICATE_GRACE).await;
    let copies = bob
        .seen_matching(|o| before_restart.matches(o))
        .await?
        .len();
    check!(
        copies == 1,
        "a delayed event must be sent exactly once across restarts: the event sent before the clean restart was \
         delivered {copies} times"
    );
    ctx.settled();

    // A hard kill while events are due.
    let round = ctx.restart_round().await;
    let before_kill = sent_now(&ctx, &alice, &bob, &room, "sent before the kill").await?;
    let mut due = Vec::new();
    for delay in DUE_WHILE_KILLED_MS {
        let event =
            DelayedEvent::message(&room, &ctx.unique(&format!("due {delay} ms into the kill")));
        let scheduled = alice.schedule_ok(&event, delay).await?;
        due.push((scheduled, event));
    }
    ctx.kill_now(round).await?;
    let back = Instant::now();
    let what = "an event that fell due while the homeserver was killed";
    for (scheduled, event) in &due {
        // Not early by the harness's clock, and not later than coming back plus the allowance
        // (the wait's deadline).
        let seen = ctx
            .expect_sent(&bob, what, Due::new(back, 0), |o| event.matches(o))
            .await?;
        ctx.check_not_early(what, &seen, scheduled.due())?;
    }
    // Counted after a plain message: once it is in, the start-up pass is long done.
    let mut expected = vec![
        ("the event sent before the clean restart", &before_restart),
        ("the event sent just before the kill", &before_kill),
    ];
    expected.extend(
        due.iter()
            .map(|(_, e)| ("an event due while the homeserver was killed", e)),
    );
    ctx.expect_each_once(&alice, &bob, &room, &expected).await
}

pub fn cases() -> Vec<Case> {
    cases![
        scheduled_event_survives_restart,
        overdue_events_sent_in_order,
        listing_and_management_after_restart,
        exactly_once_across_restart_and_kill,
    ]
}

/// Scheduled events' send times on one clock: the server's (its scheduling time + delay, ms
/// since the epoch) when it listed them all, else the span of each scheduling request on the
/// harness's clock (ms since the first request) + delay, an interval as wide as the request took.
struct SendTimes<'a> {
    server_starts: Option<&'a HashMap<String, i64>>,
    base: Instant,
}

impl<'a> SendTimes<'a> {
    fn of(scheduled: &[&Scheduled], server_starts: &'a HashMap<String, i64>) -> Self {
        let all_listed = scheduled
            .iter()
            .all(|s| server_starts.contains_key(&s.delay_id));
        SendTimes {
            server_starts: all_listed.then_some(server_starts),
            base: scheduled
                .iter()
                .map(|s| s.requested_at)
                .min()
                .unwrap_or_else(Instant::now),
        }
    }

    fn span(&self, s: &Scheduled) -> (i64, i64) {
        if let Some(&at) = self.server_starts.and_then(|m| m.get(&s.delay_id)) {
            return (at + s.delay_ms, at + s.delay_ms);
        }
        let ms = |t: Instant| t.saturating_duration_since(self.base).as_millis() as i64;
        (
            ms(s.requested_at) + s.delay_ms,
            ms(s.resp.received) + s.delay_ms,
        )
    }

    fn earliest(&self, s: &Scheduled) -> i64 {
        self.span(s).0
    }

    fn latest(&self, s: &Scheduled) -> i64 {
        self.span(s).1
    }

    fn describe(&self, s: &Scheduled) -> String {
        match (self.server_starts, self.span(s)) {
            (Some(_), (at, _)) => format!("{at}, by the server's clock"),
            (None, (lo, hi)) => {
                format!("{lo} to {hi} ms after the first request, by the harness's clock")
            }
        }
    }
}
