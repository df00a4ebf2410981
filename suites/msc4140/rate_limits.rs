//! rate_limits: management actions and lookups are rate-limited. These need a homeserver with its
//! normal limits: the managed Synapse starts a second instance for them; elsewhere they run only
//! when asked for (`--area rate_limits`).

use super::texts::{HEARTBEAT, LOOKUP_RATE_LIMIT, MANAGEMENT_RATE_LIMIT};
use super::LONG_DELAY_MS;
use crate::prelude::*;
use futures::future::join_all;

/// Requests fired at once: far beyond any sensible burst for these endpoints.
const BURST: usize = 30;

async fn check_rate_limited(ctx: &Ctx, what: &str, answers: Vec<Resp>) -> CaseResult {
    let limited = answers
        .iter()
        .position(|r| r.status == 429 && r.errcode() == Some("M_LIMIT_EXCEEDED"));
    match limited {
        Some(n) => {
            ctx.note(format!("{what}: the first 429 M_LIMIT_EXCEEDED came at request {} of {BURST}", n + 1));
            Ok(())
        }
        None => fail!(
            "{BURST} {what} at once were all answered without a rate limit (429 M_LIMIT_EXCEEDED); statuses: {:?}",
            answers.iter().map(|r| r.status).collect::<Vec<_>>()
        ),
    }
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

/// Refusals shown in a message: the first few in full, then how many more.
const QUOTED_REFUSALS: usize = 4;

fn quoted(refusals: &[String]) -> String {
    let mut shown = refusals[..refusals.len().min(QUOTED_REFUSALS)].join("; ");
    if refusals.len() > QUOTED_REFUSALS {
        shown.push_str(&format!(
            "; and {} more (see the evidence)",
            refusals.len() - QUOTED_REFUSALS
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

pub fn cases() -> Vec<Case> {
    cases![
        management_is_rate_limited,
        lookups_are_rate_limited,
        heartbeats_behind_one_address,
    ]
}
