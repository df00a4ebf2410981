//! state_overwrite: a newer state event for the same (room, type, state_key) from another user
//! cancels a pending delayed state event in 2024-10 (still Synapse's behaviour); the 2025-12 and
//! 2026-07 texts moved that rule to Alternatives. Nothing else ever cancels one, and under no
//! revision does a state change the server answered *before* the delayed event was scheduled
//! (`earlier_state_does_not_cancel`, the ordering race of a server that processes state changes
//! in the background).

use super::texts::{OVERWRITE_CANCELS, OVERWRITE_OWN, OVERWRITE_SCOPE};
use super::SHORT_DELAY_MS;
use crate::prelude::*;
use futures::future::join_all;
use std::collections::HashSet;

const SHARED_TYPE: &str = "org.example.dec.shared";

/// Given alice (room creator) and bob in a room where members may set `SHARED_TYPE` state.
async fn shared_room(ctx: &Ctx) -> Result<Scene, Stop> {
    let scene = ctx.alice_and_bob().await?;
    scene
        .alice
        .update_power_levels(&scene.room, |levels| {
            levels["events"][SHARED_TYPE] = json!(0)
        })
        .await?;
    scene.watched_by_alice().await
}

/// A state key of this case's own: entries of other cases never meet it, even on a server that
/// (wrongly) lets state in one room cancel delayed events in another.
fn own_key(ctx: &Ctx) -> String {
    ctx.unique("key").replace(' ', "-")
}

/// Long enough for a loaded server to process the newer state before the delayed one is due.
const OVERWRITE_DELAY_MS: i64 = 2500;

/// After the delayed event was due, how long the canary may still take to be cancelled: a server
/// that does so applies the overwrite rule, late.
const LATE_BOUND: Duration = Duration::from_secs(3);

const CANARY_TYPE: &str = "org.example.dec.canary";

/// Whether `user`'s canary `delay_id` has left the listing (cancelled by the overwrite), polling
/// until `until`.
async fn canary_gone(user: &User, delay_id: &str, until: Instant) -> Result<bool, Stop> {
    loop {
        if user.listed(delay_id).await?.is_none() {
            return Ok(true);
        }
        if Instant::now() >= until {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

case! {
    name: other_users_state_cancels,
    title: "Another user's newer state for the same entry cancels a delayed state event (2024-10) or not (later)",
    level: Must,
    spec: OVERWRITE_CANCELS,
}
/// Whether the server cancels bob's delayed state event when alice sets the same entry must not
/// depend on how fast it processes alice's state. Servers process state changes in order, and
/// possibly in the background: alice overwrites a canary (another delayed state event of bob's)
/// right after; once the canary is cancelled, the server has demonstrably processed alice's
/// state. The verdict waits for that (or for the event's time), so a slow server is judged by
/// its rule, and a rule applied only after the event went out is reported as that.
async fn other_users_state_cancels(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = shared_room(&ctx).await?;
    alice
        .update_power_levels(&room, |levels| levels["events"][CANARY_TYPE] = json!(0))
        .await?;
    let key = own_key(&ctx);
    let delayed = DelayedEvent::state(
        &room,
        SHARED_TYPE,
        &key,
        json!({"by": "bob, delayed", "n": ctx.unique("n")}),
    );
    let canary = DelayedEvent::state(&room, CANARY_TYPE, &key, json!({"n": ctx.unique("canary")}));
    let scheduled = bob.schedule_ok(&delayed, OVERWRITE_DELAY_MS).await?;
    let canary_id = bob
        .schedule_ok(&canary, super::LONG_DELAY_MS)
        .await?
        .delay_id;
    let sent = Instant::now();
    alice
        .put_state(&room, SHARED_TYPE, &key, json!({"by": "alice, now"}))
        .await?
        .setup_step("set the same state")?;
    let landed = ctx.changed_in_time("alice's newer state event", sent, &scheduled)?;
    alice
        .put_state(&room, CANARY_TYPE, &key, json!({"by": "alice, after"}))
        .await?
        .setup_step("overwrite the canary")?;
    let due = scheduled.requested_at + Duration::from_millis(OVERWRITE_DELAY_MS as u64);
    let processed_in_time = canary_gone(&bob, &canary_id, due).await?;
    let copies = ctx
        .copies_once_due(&alice, &bob, &room, &scheduled, |o| delayed.matches(o))
        .await?;
    let still_listed = bob.listed(&scheduled.delay_id).await?.is_some();
    let rule_applied =
        processed_in_time || canary_gone(&bob, &canary_id, Instant::now() + LATE_BOUND).await?;
    if !rule_applied {
        bob.manage(&canary_id, Action::Cancel).await?;
    }
    // Proved whenever the newer state was answered: the canary shows it was processed in time.
    check!(
        !(copies.len() == 1 && !still_listed && processed_in_time),
        "another user's newer state event cancelled a canary delayed state event before the event under test \
         was due, but the event under test (same rule, same sender) was sent anyway"
    );
    landed.judge(match (copies.len(), still_listed) {
        (0, false) => {
            ctx.matched(&[Rev::Oct2024]);
            Ok(())
        }
        (1, false) if rule_applied => Err(Stop::Fail(format!(
            "late cancellation: the server applies the rule that another user's newer state cancels a delayed state \
             event (a canary was cancelled), but processed the newer state only after the {OVERWRITE_DELAY_MS} ms \
             delay had run out, though it had accepted it before; so the delayed state event was sent anyway"
        ))),
        (1, false) => {
            ctx.matched(&[Rev::Dec2025, Rev::Jul2026]);
            Ok(())
        }
        (0, true) => Err(Stop::Fail(
            "after another user's newer state event, the delayed state event was neither sent at its time nor \
             cancelled: it is still listed as scheduled"
                .into(),
        )),
        (n, _) => Err(Stop::Fail(format!("the delayed state event was sent {n} times after another user's newer state event"))),
    })
}

case! {
    name: own_state_does_not_cancel,
    title: "The user's own newer state for the same entry does not cancel their delayed state event",
    level: Must,
    spec: OVERWRITE_OWN,
}
async fn own_state_does_not_cancel(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = shared_room(&ctx).await?;
    let key = own_key(&ctx);
    let delayed = DelayedEvent::state(
        &room,
        SHARED_TYPE,
        &key,
        json!({"by": "bob, delayed", "n": ctx.unique("n")}),
    );
    let scheduled = bob.schedule_ok(&delayed, SHORT_DELAY_MS).await?;
    bob.put_state(&room, SHARED_TYPE, &key, json!({"by": "bob, now"}))
        .await?
        .setup_step("set the same state")?;
    let copies = ctx
        .copies_once_due(&alice, &bob, &room, &scheduled, |o| delayed.matches(o))
        .await?;
    check!(
        copies.len() == 1,
        "the user's own newer state event for the same (type, state_key) cancelled their delayed state event \
         (sent {} times)",
        copies.len()
    );
    Ok(())
}

case! {
    name: unrelated_events_do_not_cancel,
    title: "Another state key, another room, or message events never cancel a delayed event",
    level: Must,
    spec: OVERWRITE_SCOPE,
}
async fn unrelated_events_do_not_cancel(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = shared_room(&ctx).await?;
    let other_room = ctx.room(&alice, &[&bob]).await?;
    alice
        .update_power_levels(&other_room, |levels| {
            levels["events"][SHARED_TYPE] = json!(0)
        })
        .await?;
    let (key, other_key) = (own_key(&ctx), own_key(&ctx));
    let delayed_state =
        DelayedEvent::state(&room, SHARED_TYPE, &key, json!({"n": ctx.unique("state")}));
    let delayed_message = DelayedEvent::message(&room, &ctx.unique("delayed message"));
    let scheduled = bob.schedule_ok(&delayed_state, SHORT_DELAY_MS).await?;
    bob.schedule_ok(&delayed_message, SHORT_DELAY_MS).await?;
    // From another user: another state key, the same entry in another room, message events.
    alice
        .put_state(&room, SHARED_TYPE, &other_key, json!({"by": "alice"}))
        .await?
        .setup_step("set another state key")?;
    alice
        .put_state(&other_room, SHARED_TYPE, &key, json!({"by": "alice"}))
        .await?
        .setup_step("set state in another room")?;
    alice
        .send_event(&room, SHARED_TYPE, json!({"by": "alice"}))
        .await?
        .setup_step("send a message event of that type")?;
    alice
        .send_event(
            &room,
            "m.room.message",
            json!({"msgtype": "m.text", "body": "hi"}),
        )
        .await?
        .setup_step("send a message")?;
    let copies = ctx
        .copies_once_due(&alice, &bob, &room, &scheduled, |o| {
            delayed_state.matches(o) || delayed_message.matches(o)
        })
        .await?;
    let state_sent = copies.iter().any(|o| delayed_state.matches(o));
    let message_sent = copies.iter().any(|o| delayed_message.matches(o));
    check!(
        state_sent && message_sent,
        "events that do not overwrite the same (room, type, state_key) cancelled a delayed event: delayed state \
         event sent: {state_sent}, delayed message sent: {message_sent}"
    );
    Ok(())
}

/// Rounds of the ordering race, all at once: enough to press a server's background processing of
/// state changes (fewer where the advertised per-user limit of scheduled events is lower).
const RACE_ROUNDS: usize = 20;

/// After the control arrived, how long a delayed event the listing no longer shows still gets to
/// appear (a server may take it off the listing just before sending it).
const UNLISTED_GRACE: Duration = Duration::from_millis(1000);

/// Alice's delayed state event of one round, and its scheduling answer.
struct RaceRound {
    event: DelayedEvent,
    scheduled: Scheduled,
}

/// One round of the race: bob sets an entry and, the moment the server has answered, alice
/// schedules a delayed state event for the same entry. Each round has its own event type (and
/// state key), so no round's state touches another's delayed event, even on a server whose
/// overwrite rule is too broad.
async fn race_round(
    ctx: &Ctx,
    alice: &User,
    bob: &User,
    room: &str,
    ev_type: &str,
) -> Result<RaceRound, Stop> {
    let key = own_key(ctx);
    bob.put_state(room, ev_type, &key, json!({"by": "bob, before"}))
        .await?
        .setup_step("set the state")?;
    let event = DelayedEvent::state(
        room,
        ev_type,
        &key,
        json!({"by": "alice, delayed", "n": ctx.unique("n")}),
    );
    let scheduled = alice.schedule_ok(&event, SHORT_DELAY_MS).await?;
    Ok(RaceRound { event, scheduled })
}

case! {
    name: earlier_state_does_not_cancel,
    title: "Another user's state change answered before a delayed state event was scheduled never cancels it",
    level: Must,
    spec: OVERWRITE_CANCELS,
}
/// A delayed state event may only be cancelled by state sent after it was scheduled (2024-10), or
/// not by other users' state at all (later texts). A server that processes state changes in the
/// background may process a change it answered just before the scheduling request only after the
/// delayed event was stored, and wrongly take it for a newer one. Many rounds at once make that
/// likely; every delayed event must then be sent, once, not early. Those neither seen nor listed
/// once a later control arrived (plus a grace) count as cancelled, so a server that cancels them
/// is judged in seconds, not after the 30 s allowance per event.
async fn earlier_state_does_not_cancel(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?;
    let limit = ctx.features().capability_field("max_scheduled");
    let count = limit.map_or(RACE_ROUNDS, |l| RACE_ROUNDS.min(l.max(1) as usize));
    let types: Vec<String> = (0..count)
        .map(|n| format!("org.example.dec.race.{n}"))
        .collect();
    alice
        .update_power_levels(&room, |levels| {
            for ev_type in &types {
                levels["events"][ev_type] = json!(0);
            }
        })
        .await?;
    alice.start_sync().await?;
    // bob schedules and watches the control (alice's rounds may use up her limit of scheduled
    // events), while alice's listing says whether the server has decided about her rounds.
    bob.start_sync().await?;
    let rounds = join_all(
        types
            .iter()
            .map(|ev_type| race_round(&ctx, &alice, &bob, &room, ev_type)),
    )
    .await
    .into_iter()
    .collect::<Result<Vec<_>, Stop>>()?;
    // The server's own scheduling times, read before the events are due: "not early" by the
    // server's clock too, which a harness slowed by the rounds cannot blur.
    let all: Vec<&Scheduled> = rounds.iter().map(|r| &r.scheduled).collect();
    let server_starts = ctx.server_starts(&alice, &all).await?;
    let last = rounds
        .iter()
        .map(|r| &r.scheduled)
        .max_by_key(|s| s.resp.received)
        .expect("at least one round");
    let copies = ctx
        .copies_once_due(&bob, &alice, &room, last, |o| {
            rounds.iter().any(|r| r.event.matches(o))
        })
        .await?;
    let unseen: Vec<&RaceRound> = rounds
        .iter()
        .filter(|r| !copies.iter().any(|o| r.event.matches(o)))
        .collect();
    let listed: HashSet<String> = alice
        .list()
        .await?
        .iter()
        .filter_map(|i| i.delay_id().map(str::to_string))
        .collect();
    let mut unlisted: Vec<&RaceRound> = unseen
        .into_iter()
        .filter(|r| !listed.contains(&r.scheduled.delay_id))
        .collect();
    let grace_end = Instant::now() + UNLISTED_GRACE;
    while !unlisted.is_empty() {
        let Some(seen) = alice
            .wait_for(grace_end, |o| unlisted.iter().any(|r| r.event.matches(o)))
            .await?
        else {
            break;
        };
        unlisted.retain(|r| !r.event.matches(&seen));
    }
    if let Some(first) = unlisted.first() {
        // What the server recorded for it, where it keeps finalised events (2026-07's lookup).
        let recorded = if ctx.features().single_lookup {
            let lookup = alice.lookup(&first.scheduled.delay_id, true).await?;
            format!("; its lookup answers {}", lookup.describe())
        } else {
            String::new()
        };
        fail!(
            "{} of {} delayed state events were cancelled (neither sent nor still listed as scheduled once a \
             later control event had arrived), each scheduled right after another user's state event for the same \
             (type, state_key) that the server had already answered with 200. Only a state event sent after a \
             delayed state event may cancel it (2024-10), and later revisions let other users' state cancel none. \
             E.g. delay_id {}{recorded}",
            unlisted.len(),
            rounds.len(),
            first.scheduled.delay_id
        );
    }
    // Every other one was sent, or is still scheduled (then it gets its delay plus the allowance).
    // Judged over bob's /sync, which the wait for the control kept current.
    let what = "a delayed state event scheduled just after another user set the same entry";
    for round in &rounds {
        ctx.expect_sent_not_early(
            &bob,
            what,
            round
                .scheduled
                .due()
                .with_server_start(server_starts.get(&round.scheduled.delay_id).copied()),
            |o| round.event.matches(o),
        )
        .await?;
    }
    let each: Vec<(&str, &DelayedEvent)> = rounds.iter().map(|r| (what, &r.event)).collect();
    ctx.expect_each_once(&alice, &bob, &room, &each).await?;
    ctx.note(format!(
        "0 of {n} delayed state events cancelled by another user's state change for the same entry answered just \
         before they were scheduled ({n} rounds at once)",
        n = rounds.len()
    ));
    Ok(())
}

pub fn cases() -> Vec<Case> {
    cases![
        other_users_state_cancels,
        own_state_does_not_cancel,
        unrelated_events_do_not_cancel,
        earlier_state_does_not_cancel,
    ]
}
