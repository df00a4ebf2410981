//! rate_limits: management actions and lookups are rate-limited. These need a homeserver with its
//! normal limits: the managed Synapse starts a second instance for them; elsewhere they run only
//! when asked for (`--area rate_limits`).

use super::texts::{
    HEARTBEAT, LOOKUP_RATE_LIMIT, MANAGEMENT_RATE_LIMIT, SCHEDULING_RATE_LIMIT,
    SEND_ACTION_RATE_LIMIT, SEND_TIME_RATE_LIMIT,
};
use super::LONG_DELAY_MS;
use crate::prelude::*;
use futures::future::join_all;

/// Requests fired at once: far beyond any sensible burst for these endpoints.
const BURST: usize = 30;

async fn check_rate_limited(ctx: &Ctx, what: &str, answers: Vec<Resp>) -> CaseResult {
    first_rate_limited(ctx, what, &answers).map(drop)
}

case! {
    name: management_is_rate_limited,
    title: "A burst of management actions is rate-limited",
    level: Should,
    spec: MANAGEMENT_RATE_LIMIT,
    needs: &[Need::NormalRateLimits],
}
async fn management_is_rate_limited(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let id = alice
        .schedule_ok(
            &DelayedEvent::message(&room, &ctx.unique("hammered")),
            LONG_DELAY_MS,
        )
        .await?
        .delay_id;
    let answers = join_all((0..BURST).map(|_| alice.manage(&id, Action::Restart))).await;
    let answers = answers.into_iter().collect::<Result<Vec<_>, _>>()?;
    check_rate_limited(&ctx, "restart actions", answers).await
}

case! {
    name: lookups_are_rate_limited,
    title: "A burst of delayed-event lookups is rate-limited",
    level: Should,
    spec: LOOKUP_RATE_LIMIT,
    needs: &[Need::NormalRateLimits],
}
async fn lookups_are_rate_limited(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let answers = join_all((0..BURST).map(|_| alice.list_raw(true))).await;
    let answers = answers.into_iter().collect::<Result<Vec<_>, _>>()?;
    check_rate_limited(&ctx, "listings of delayed events", answers).await
}

/// Call members heartbeating from one client address, each at a calm, client-like pace.
const HEARTBEATERS: usize = 6;
const HEARTBEAT_DELAY_MS: i64 = 3000;
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
const HEARTBEATS_EACH: usize = 3;

case! {
    name: heartbeats_behind_one_address,
    title: "Several users heartbeating from one address, each within its own limit, are not refused",
    level: Must,
    spec: HEARTBEAT,
    needs: &[Need::NormalRateLimits],
    revisions: &[Rev::Dec2025, Rev::Jul2026],
}
/// Several users heartbeat their own delayed events from the same client address (the harness's),
/// each with a few restarts a second apart, well within any per-user management limit. A server
/// that limits per address instead of per user refuses some, which drops calls in practice: the
/// refusals are the verdict, quoted, and so is an event sent while its member was heartbeating.
/// Only the harness's own lateness (not time spent waiting for the server) ends it in `error`.
async fn heartbeats_behind_one_address(ctx: Ctx) -> CaseResult {
    let mut members = Vec::new();
    for n in 0..HEARTBEATERS {
        let member = ctx.user(&format!("member{n}")).await?;
        let room = ctx.room(&member, &[]).await?;
        members.push((member, room));
    }
    let mut timers = Vec::new();
    for (n, (member, room)) in members.iter().enumerate() {
        let event = DelayedEvent::message(room, &ctx.unique(&format!("member {n} hangs up")));
        timers.push(member.schedule_ok(&event, HEARTBEAT_DELAY_MS).await?);
    }
    // Each member's restarts the server refused for the rate (429), and the other refusals.
    let mut refused: Vec<Vec<String>> = vec![Vec::new(); HEARTBEATERS];
    let mut failed = Vec::new();
    let mut gone = [false; HEARTBEATERS];
    for beat in 1..=HEARTBEATS_EACH {
        tokio::time::sleep(HEARTBEAT_EVERY).await;
        let beating = members
            .iter()
            .zip(&timers)
            .enumerate()
            .filter(|(n, _)| !gone[*n]);
        let restarts = beating.map(|(n, ((m, _), t))| async move {
            let requested = Instant::now();
            (n, m.manage(&t.delay_id, Action::Restart).await, requested)
        });
        for (n, answer, requested) in join_all(restarts).await {
            let answer = answer?;
            if answer.is_success() {
                timers[n].requested_at = requested;
            } else if answer.status == 429 {
                refused[n].push(format!("beat {beat}: {}", describe_refusal(&answer)));
            } else {
                // Not a refusal for the rate: the timer ran out (the event was sent, or failed).
                gone[n] = true;
                let due = timers[n].due();
                let earlier = refused[n].len();
                if earlier == 0 {
                    // With nothing refused before, only the harness's own lateness excuses it.
                    due.harness_kept_pace("a restart", requested, ctx.evidence())?;
                }
                failed.push(format!(
                    "member {n}, beat {beat}: the harness sent the restart {} ms before the event was due{}, \
                     and the server answered {}",
                    due.lead_ms(requested),
                    if earlier > 0 {
                        format!(" by the last restart it accepted ({earlier} refused since)")
                    } else {
                        String::new()
                    },
                    answer.describe()
                ));
            }
        }
    }
    for (n, ((member, _), timer)) in members.iter().zip(&timers).enumerate() {
        if !gone[n] {
            member.manage(&timer.delay_id, Action::Cancel).await?;
        }
    }
    let refusals: Vec<String> = refused
        .iter()
        .enumerate()
        .flat_map(|(n, list)| list.iter().map(move |r| format!("member {n}, {r}")))
        .collect();
    let lost = if failed.is_empty() {
        String::new()
    } else {
        format!(
            ". So events were sent while their members were still heartbeating: {}",
            failed.join("; ")
        )
    };
    check!(
        refusals.is_empty(),
        "{HEARTBEATERS} users restarting their own delayed events from one address, each only \
         {HEARTBEATS_EACH} times a second apart, were refused {} of {} times: {}{lost}",
        refusals.len(),
        HEARTBEATERS * HEARTBEATS_EACH,
        quoted(&refusals)
    );
    check!(
        failed.is_empty(),
        "a heartbeat (restart) of a scheduled event failed, though the harness sent it in time: {}",
        failed.join("; ")
    );
    Ok(())
}

/// Answers quoted in a message: the first few in full, then how many more.
const QUOTED_ANSWERS: usize = 4;

fn quoted(answers: &[String]) -> String {
    let mut shown = answers[..answers.len().min(QUOTED_ANSWERS)].join("; ");
    if answers.len() > QUOTED_ANSWERS {
        shown.push_str(&format!(
            "; and {} more (see the evidence)",
            answers.len() - QUOTED_ANSWERS
        ));
    }
    shown
}

/// A rate-limit refusal as evidence: the answer and its `Retry-After`, where given.
fn describe_refusal(answer: &Resp) -> String {
    match answer.header("Retry-After") {
        Some(wait) => format!("{} (Retry-After: {wait})", answer.describe()),
        None => answer.describe(),
    }
}

/// Scheduling requests one user fires at once: past any usual burst (Synapse's `rc_message`
/// allows 10), yet below the per-user limit of scheduled events deployments use (20), so that
/// only a rate limit refuses them.
const SCHEDULING_BURST: usize = 15;
/// Events one user schedules, then sends at once with the send action: past any usual burst of
/// management actions (Synapse's `rc_delayed_event_mgmt` allows 5).
const SEND_ACTIONS: usize = 8;

/// The first 429 `M_LIMIT_EXCEEDED` among `answers`, noted; none fails (the SHOULD to rate-limit).
fn first_rate_limited(ctx: &Ctx, what: &str, answers: &[Resp]) -> Result<usize, Stop> {
    match answers
        .iter()
        .position(|r| r.status == 429 && r.errcode() == Some("M_LIMIT_EXCEEDED"))
    {
        Some(n) => {
            ctx.note(format!(
                "{what}: the first 429 M_LIMIT_EXCEEDED came at request {} of {}",
                n + 1,
                answers.len()
            ));
            Ok(n)
        }
        None => fail!(
            "{} {what} at once by one user were all answered without a rate limit (429 M_LIMIT_EXCEEDED); \
             statuses: {:?}",
            answers.len(),
            answers.iter().map(|r| r.status).collect::<Vec<_>>()
        ),
    }
}

/// Right after one user met the rate limit, `other`'s request from the same address (`resp`)
/// must not be refused for it: an authenticated caller is limited as a user, or users behind one
/// address (a NAT, a call's SFU host) deny each other service.
fn check_not_limited_for_another(what: &str, resp: &Resp) -> CaseResult {
    check!(
        resp.status != 429,
        "right after one user's {what} met the rate limit, another user's first one from the same address was \
         refused too: the limit counts per address, not per user: {}",
        resp.describe()
    );
    check!(
        resp.is_success(),
        "another user's {what} (after the first user met the rate limit) was refused: {}",
        resp.describe()
    );
    Ok(())
}

case! {
    name: scheduling_limited_per_user,
    title: "Scheduling is rate-limited per user: one user's burst does not refuse another user at the same address",
    level: Should,
    spec: SCHEDULING_RATE_LIMIT,
    needs: &[Need::NormalRateLimits],
    revisions: &[Rev::Dec2025, Rev::Jul2026],
}
async fn scheduling_limited_per_user(ctx: Ctx) -> CaseResult {
    // Two users of one room, behind one address (the harness's).
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?;
    let requests = (0..SCHEDULING_BURST).map(|n| {
        let event = DelayedEvent::message(&room, &ctx.unique(&format!("burst {n}")));
        let alice = &alice;
        async move { alice.schedule(&event, Delay::Ms(LONG_DELAY_MS)).await }
    });
    let answers = join_all(requests).await;
    let answers = answers.into_iter().collect::<Result<Vec<_>, _>>()?;
    first_rate_limited(&ctx, "scheduling requests", &answers)?;
    let event = DelayedEvent::message(&room, &ctx.unique("bob's own"));
    let resp = bob.schedule(&event, Delay::Ms(LONG_DELAY_MS)).await?;
    check_not_limited_for_another("scheduling request", &resp)
}

case! {
    name: send_action_limited_per_user,
    title: "The send action is rate-limited per user: one user's burst does not refuse another user at the same address",
    level: Should,
    spec: SEND_ACTION_RATE_LIMIT,
    needs: &[Need::NormalRateLimits],
    revisions: &[Rev::Dec2025, Rev::Jul2026],
}
async fn send_action_limited_per_user(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let bob = ctx.user("bob").await?;
    let alices_room = ctx.room(&alice, &[]).await?;
    let bobs_room = ctx.room(&bob, &[]).await?;
    let mut ids = Vec::new();
    for n in 0..SEND_ACTIONS {
        let event = DelayedEvent::message(&alices_room, &ctx.unique(&format!("sent now {n}")));
        ids.push(alice.schedule_ok(&event, LONG_DELAY_MS).await?.delay_id);
    }
    let bobs = bob
        .schedule_ok(
            &DelayedEvent::message(&bobs_room, &ctx.unique("bob's own")),
            LONG_DELAY_MS,
        )
        .await?;
    let answers = join_all(ids.iter().map(|id| alice.manage(id, Action::Send))).await;
    let answers = answers.into_iter().collect::<Result<Vec<_>, _>>()?;
    first_rate_limited(&ctx, "send actions", &answers)?;
    let resp = bob.manage(&bobs.delay_id, Action::Send).await?;
    check_not_limited_for_another("send action", &resp)
}

/// Events due together on a server with its normal message limits: more than the burst of a
/// usual message limit (Synapse's default `rc_message` allows 10), so that some meet the limit
/// when they are sent, if the server applies it there.
const SEND_BURST: usize = 12;
/// When the burst is due, from the first scheduling request; the control follows it.
const SEND_BURST_LEAD_MS: i64 = 2000;
const CONTROL_AFTER_MS: i64 = 500;
/// How long to honour one `retry_after_ms` of a rate-limited lookup, at most.
const LONGEST_RETRY_WAIT: Duration = Duration::from_secs(5);

case! {
    name: refused_at_send_time_not_lost,
    title: "A burst due together meets the message limit at send time: each event is sent once or finalised with its error",
    level: Should,
    spec: SEND_TIME_RATE_LIMIT,
    needs: &[Need::NormalRateLimits],
    revisions: &[Rev::Jul2026],
}
/// Alice schedules a burst of messages all due at one moment, more than a usual message limit
/// lets through at once (Synapse #18021: events silently dropped at send time). Once a control
/// bob scheduled first (due just after) has arrived and none of the burst is still scheduled,
/// each event was either sent exactly once, or refused and kept as a finalised event with its
/// `error`: none retried into a duplicate, none vanished.
async fn refused_at_send_time_not_lost(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    let started = Instant::now();
    let due_at = started + Duration::from_millis(SEND_BURST_LEAD_MS as u64);
    // Scheduled before the burst, so that nothing of alice's can stand in its way.
    let control_event = DelayedEvent::message(&room, &ctx.unique("control"));
    let control = bob
        .schedule_ok(&control_event, SEND_BURST_LEAD_MS + CONTROL_AFTER_MS)
        .await?;
    let mut burst = Vec::new();
    for n in 0..SEND_BURST {
        let event = DelayedEvent::message(&room, &ctx.unique(&format!("burst {n}")));
        let delay = due_at.saturating_duration_since(Instant::now()).as_millis() as i64;
        if delay < CONTROL_AFTER_MS {
            ctx.note(format!(
                "scheduling took long: {n} events of the burst were scheduled in time"
            ));
            break;
        }
        match alice.schedule_ok_unless_limited(&event, delay).await? {
            Some(scheduled) => burst.push((scheduled, event)),
            None => {
                ctx.note(format!(
                    "scheduling was rate-limited after {n} events (429)"
                ));
                break;
            }
        }
    }
    check!(
        !burst.is_empty(),
        "the first delayed event of the burst could not be scheduled: refused for the rate (429)"
    );
    check!(
        bob.wait_for(control.due().deadline(), |o| control_event.matches(o))
            .await?
            .is_some(),
        "a control delayed event due just after the burst was never sent, so the server's delayed events do not \
         fire at all"
    );
    // A server may send up to the allowance late: wait while any is still scheduled.
    let undecided_until = burst[0].0.due().deadline();
    loop {
        let listed = alice.list().await?;
        let waiting = burst
            .iter()
            .filter(|(s, _)| listed.iter().any(|i| i.delay_id() == Some(&s.delay_id)))
            .count();
        if waiting == 0 {
            break;
        }
        if Instant::now() >= undecided_until {
            fail!(
                "{waiting} of the burst's {} events were still scheduled once their delay and the allowance had \
                 passed: neither sent nor finalised",
                burst.len()
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let mut lost = Vec::new();
    let mut refused = Vec::new();
    let mut delivered = 0;
    for (scheduled, event) in &burst {
        let copies = bob.seen_matching(|o| event.matches(o)).await?.len();
        if copies > 0 {
            delivered += 1;
            continue;
        }
        if !ctx.features().single_lookup {
            lost.push(format!(
                "{} was not sent and is no longer scheduled, and the server offers no lookup to retrieve its error",
                scheduled.delay_id
            ));
            continue;
        }
        let lookup = lookup_honouring_rate_limit(&alice, &scheduled.delay_id).await?;
        match finalised_error(&lookup) {
            Some(error) if lookup.status == 200 => refused.push(error),
            _ => lost.push(format!(
                "{} was not sent, no longer scheduled, and its lookup shows no error: {}",
                scheduled.delay_id,
                lookup.describe()
            )),
        }
    }
    ctx.note(format!(
        "of {} events due together: {delivered} sent, {} finalised with an error{}",
        burst.len(),
        refused.len(),
        refused
            .first()
            .map(|e| format!(" (e.g. {e})"))
            .unwrap_or_default()
    ));
    check!(
        lost.is_empty(),
        "an event of a burst refused at send time must be kept as a finalised event with its `error`, but {} of {} \
         vanished: {}",
        lost.len(),
        burst.len(),
        quoted(&lost)
    );
    if !refused.is_empty() {
        ctx.matched(&[Rev::Jul2026]);
    }
    // None retried into a duplicate.
    let events: Vec<(&str, &DelayedEvent)> = burst
        .iter()
        .map(|(_, e)| ("an event of the burst", e))
        .collect();
    expect_at_most_once(&ctx, &bob, &room, &events).await
}

/// Once a plain marker from `observer` has arrived (plus a grace), none of `events` arrived
/// more than once (one refused at its send time may not have arrived at all).
async fn expect_at_most_once(
    ctx: &Ctx,
    observer: &User,
    room: &str,
    events: &[(&str, &DelayedEvent)],
) -> CaseResult {
    let doubled: Vec<String> = ctx
        .copies_after_marker(observer, observer, room, events)
        .await?
        .into_iter()
        .filter(|(_, copies)| *copies > 1)
        .map(|(what, copies)| format!("{what} was sent {copies} times"))
        .collect();
    check!(
        doubled.is_empty(),
        "an event refused by a rate limit at send time must not be retried into a duplicate: {}",
        doubled.join("; ")
    );
    Ok(())
}

/// A single-item lookup, waiting out (within reason) a rate limit's `retry_after_ms`.
async fn lookup_honouring_rate_limit(user: &User, delay_id: &str) -> Result<Resp, Stop> {
    loop {
        let lookup = user.lookup(delay_id, true).await?;
        if lookup.status != 429 {
            return Ok(lookup);
        }
        let wait = lookup
            .body
            .get("retry_after_ms")
            .and_then(Value::as_u64)
            .map(Duration::from_millis)
            .or_else(|| {
                let secs = lookup.header("Retry-After")?.parse().ok()?;
                Some(Duration::from_secs(secs))
            })
            .unwrap_or(Duration::from_secs(1));
        if wait > LONGEST_RETRY_WAIT {
            return Ok(lookup);
        }
        tokio::time::sleep(wait).await;
    }
}

/// The `error` of a finalised event's lookup: flat (2026-07) or inside a nested `finalised`
/// object (the merged text, as other implementations read it).
fn finalised_error(lookup: &Resp) -> Option<String> {
    let error = lookup
        .body
        .get("error")
        .or_else(|| lookup.body.get("finalised")?.get("error"))?;
    if lookup.body.get("event_id").is_some() {
        return None;
    }
    Some(
        error
            .get("errcode")
            .and_then(Value::as_str)
            .map_or_else(|| error.to_string(), str::to_string),
    )
}

pub fn cases() -> Vec<Case> {
    cases![
        management_is_rate_limited,
        lookups_are_rate_limited,
        heartbeats_behind_one_address,
        scheduling_limited_per_user,
        send_action_limited_per_user,
        refused_at_send_time_not_lost,
    ]
}
