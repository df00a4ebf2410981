//! deployment: a homeserver deployed as several processes (Synapse's main process and workers
//! behind a reverse proxy), where one of them restarts while the others keep serving. MSC4140
//! says nothing about processes, so these cases are INFO; a single process skips them.

use super::texts::{HEARTBEAT, LISTING, PERSIST, SCHEDULES_NOT_SENDS};
use crate::api::{ApiForm, DelayedInfo, Fate, ManageForm, Prefix, Scheduled};
use crate::prelude::*;

/// Each member's delayed leave: shorter than a main process takes to restart, so heartbeats the
/// deployment cannot serve while main is down show as a hang-up.
const LEAVE_DELAY_MS: i64 = 1000;

/// Heartbeats every fifth of the delay, as the restart area's, so a slow answer never lets a
/// timer run out.
const BEAT_EVERY: Duration = Duration::from_millis(LEAVE_DELAY_MS as u64 / 5);

/// How long the members keep beating once main is back: the scenario (a call goes on) and time
/// for main to send, at start-up, what fell due while it was down.
const BEATING_AFTER: Duration = Duration::from_millis(3 * LEAVE_DELAY_MS as u64);

case! {
    name: heartbeats_survive_main_restart,
    title: "Call members' heartbeats keep their delayed leaves unsent while only the main process restarts",
    level: Info,
    spec: HEARTBEAT,
    needs: &[Need::Restart, Need::Workers],
}
async fn heartbeats_survive_main_restart(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    let forms = management_forms(&ctx);
    for attempt in 1..=ONE_PROCESS_ATTEMPTS {
        let round = ctx.restart_round_alone().await;
        // One call member per management form, each with a delayed leave it keeps restarting.
        let mut members = Vec::new();
        for (name, form) in &forms {
            let event = DelayedEvent::message(&room, &ctx.unique(&format!("leave ({name})")));
            let scheduled = alice.schedule_ok(&event, LEAVE_DELAY_MS).await?;
            let manager = alice.in_form(*form);
            members.push((name.clone(), manager, event, scheduled.delay_id));
        }
        let done = std::sync::atomic::AtomicBool::new(false);
        let beating = async {
            let mut beats: Vec<Vec<(Instant, u16)>> = vec![Vec::new(); members.len()];
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let next = Instant::now() + BEAT_EVERY;
                for ((_, manager, _, delay_id), beats) in members.iter().zip(&mut beats) {
                    let sent = Instant::now();
                    let status = match manager.manage(delay_id, Action::Restart).await {
                        Ok(resp) => resp.status,
                        Err(_) => 0,
                    };
                    beats.push((sent, status));
                }
                tokio::time::sleep_until(next.into()).await;
            }
            beats
        };
        let restarting = async {
            let restart = ctx
                .restart_one_timed(round, "main", false, BEATING_AFTER)
                .await;
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            restart
        };
        let (
            beats,
            OneRestart {
                restarted,
                down,
                back,
            },
        ) = tokio::join!(beating, restarting);
        ctx.settled();
        // The round's others may still wait for what they expect after their restart.
        ctx.after_round_settled().await;
        // Stop every member's leave; what was sent before is what counts.
        for (_, manager, _, delay_id) in &members {
            let _ = manager.manage(delay_id, Action::Cancel).await;
        }
        if !restarted? {
            ctx.whole_restart_instead(attempt);
            continue;
        }
        // Whatever was sent has arrived once a later plain message has.
        ctx.copies_after_marker(&alice, &bob, &room, &[]).await?;
        let mut hung_up = Vec::new();
        for ((name, _, event, _), beats) in members.iter().zip(&beats) {
            let while_down: Vec<u16> = beats
                .iter()
                .filter(|(at, _)| *at >= down && *at <= back)
                .map(|(_, status)| *status)
                .collect();
            let kept = while_down
                .iter()
                .filter(|s| (200..300).contains(*s))
                .count();
            let refused: Vec<String> = while_down
                .iter()
                .filter(|s| !(200..300).contains(*s))
                .map(|s| s.to_string())
                .collect();
            let sent = !bob.seen_matching(|o| event.matches(o)).await?.is_empty();
            let line =
                format!(
                "{name}: {kept} of {} heartbeats answered 2xx while main restarted ({:.1} s){}; \
                 {}",
                while_down.len(),
                back.saturating_duration_since(down).as_secs_f64(),
                match refused.is_empty() {
                    true => String::new(),
                    false => format!(", the others {}", refused.join(", ")),
                },
                if sent { "the leave was SENT (hung up)" } else { "the leave stayed unsent" }
            );
            ctx.note(line.clone());
            if sent {
                hung_up.push(line);
            }
        }
        if !hung_up.is_empty() {
            fail!(
                "a call member hung up while only the main process restarted: its delayed leave \
                 was sent although it was restarted every {} ms (delay {LEAVE_DELAY_MS} ms):\n{}",
                BEAT_EVERY.as_millis(),
                hung_up.join("\n")
            );
        }
        return Ok(());
    }
    Err(ctx.never_alone("main"))
}

/// Every management form the server offers, by name: split path and body form, under each
/// prefix offered; scheduling stays in the run's form.
fn management_forms(ctx: &Ctx) -> Vec<(String, ApiForm)> {
    let features = ctx.features();
    let mut forms = Vec::new();
    for (prefix, prefix_name, offered) in [
        (
            Prefix::Unstable,
            "unstable prefix",
            features.unstable_prefix,
        ),
        (Prefix::Stable, "stable prefix", features.stable_prefix),
    ] {
        for (manage, manage_name, offered_too) in [
            (ManageForm::SplitPath, "split path", features.manage_split),
            (ManageForm::Body, "body form", features.manage_body),
        ] {
            if offered && offered_too {
                let form = ApiForm {
                    manage,
                    prefix,
                    ..ctx.form()
                };
                forms.push((format!("{manage_name}, {prefix_name}"), form));
            }
        }
    }
    forms
}

/// Scheduled through the proxy one after the other, so that round robin hands them to every
/// worker: this many per process.
const SCHEDULED_PER_PROCESS: usize = 2;

/// At most this many per process, if some worker never takes one.
const MOST_SCHEDULED_PER_PROCESS: usize = 5;

/// Short: the events are due well before anything else happens.
const SHORT_DELAY_MS: i64 = 1500;

/// Due after a killed worker is back (a Synapse process starts in a few seconds), so that its
/// absence, not the killing, is what the event's send time shows.
const AFTER_KILL_DELAY_MS: i64 = 12_000;

/// After the last expected copy, how long a second copy gets to show up as well.
const DUPLICATE_GRACE: Duration = Duration::from_millis(1000);

case! {
    name: scheduled_on_worker_sent_once,
    title: "A delayed event scheduled on any worker is sent once, on time, also when that worker is killed meanwhile",
    level: Info,
    spec: SCHEDULES_NOT_SENDS,
    needs: &[Need::Restart, Need::Kill, Need::Workers],
}
async fn scheduled_on_worker_sent_once(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    let processes = ctx.target().processes().map_err(Stop::Skip)?;
    // 1. Scheduled on every worker round robin gives, each sent once, on time, by whichever
    // process holds the timer.
    // Until every worker took one (requests of concurrent cases share the rotation), bounded.
    let workers = &processes[1..];
    let mut events: Vec<(Scheduled, DelayedEvent)> = Vec::new();
    let every_worker_took = |events: &[(Scheduled, DelayedEvent)]| {
        workers
            .iter()
            .all(|w| events.iter().any(|(s, _)| s.resp.served_by() == Some(w)))
    };
    while events.len() < SCHEDULED_PER_PROCESS * processes.len() || !every_worker_took(&events) {
        if events.len() >= MOST_SCHEDULED_PER_PROCESS * processes.len() {
            break;
        }
        let n = events.len();
        let event = DelayedEvent::message(&room, &ctx.unique(&format!("scheduled {n}")));
        let scheduled = alice.schedule_ok(&event, SHORT_DELAY_MS).await?;
        events.push((scheduled, event));
    }
    let took: Vec<&str> = events
        .iter()
        .map(|(s, _)| s.resp.served_by().unwrap_or("?"))
        .collect();
    ctx.note(format!("scheduling requests taken by: {}", took.join(", ")));
    for (scheduled, event) in &events {
        let by = scheduled.resp.served_by().unwrap_or("an unnamed process");
        let what = format!("the event scheduled on {by}");
        ctx.expect_sent_not_early(&bob, &what, scheduled.due(), |o| event.matches(o))
            .await?;
    }
    sent_once(&ctx, &bob, &alice, &room, &events).await?;

    // 2. The worker that took the scheduling request is killed while the delay runs.
    for attempt in 1..=ONE_PROCESS_ATTEMPTS {
        let round = ctx.restart_round_alone().await;
        let event = DelayedEvent::message(&room, &ctx.unique("scheduled, then its worker killed"));
        let scheduled = alice.schedule_ok(&event, AFTER_KILL_DELAY_MS).await?;
        let Some(worker) = scheduled.resp.served_by().map(str::to_owned) else {
            ctx.settled();
            return Err(Stop::Skip(
                "the deployment does not say which process took the scheduling request".into(),
            ));
        };
        let killed = ctx.restart_one_now(round, &worker, true).await;
        let back = Instant::now();
        if !killed? {
            ctx.whole_restart_instead(attempt);
            continue;
        }
        let due = scheduled.due();
        if back >= due.timer_started + Duration::from_millis(AFTER_KILL_DELAY_MS as u64) {
            ctx.settled();
            return Err(Stop::Error(format!(
                "{worker} took longer than the event's {AFTER_KILL_DELAY_MS} ms delay to come \
                 back after the kill, so its send time says nothing about the worker's absence"
            )));
        }
        ctx.note(format!(
            "the scheduling request was taken by {worker}, killed (SIGKILL) and back {:.1} s \
             after scheduling",
            back.saturating_duration_since(due.timer_started)
                .as_secs_f64()
        ));
        let what = format!("the event scheduled on {worker}, which was killed meanwhile");
        let seen = ctx
            .expect_sent_not_early(&bob, &what, due, |o| event.matches(o))
            .await;
        ctx.settled();
        seen?;
        ctx.after_round_settled().await;
        return sent_once(&ctx, &bob, &alice, &room, &[(scheduled, event)]).await;
    }
    Err(ctx.never_alone("the worker that took the scheduling request"))
}

/// Each of `events` arrived exactly once: counted after a grace for a late second copy, and a
/// marker sent then.
async fn sent_once(
    ctx: &Ctx,
    bob: &User,
    alice: &User,
    room: &str,
    events: &[(Scheduled, DelayedEvent)],
) -> CaseResult {
    tokio::time::sleep(DUPLICATE_GRACE).await;
    let labelled: Vec<(&str, &DelayedEvent)> = events
        .iter()
        .map(|(scheduled, event)| (scheduled.delay_id.as_str(), event))
        .collect();
    let copies = ctx.copies_after_marker(alice, bob, room, &labelled).await?;
    let wrong: Vec<String> = events
        .iter()
        .zip(copies)
        .filter(|(_, (_, copies))| *copies != 1)
        .map(|((scheduled, _), (delay_id, copies))| {
            format!(
                "{delay_id} (scheduled on {}): {copies} copies",
                scheduled.resp.served_by().unwrap_or("an unnamed process")
            )
        })
        .collect();
    check!(
        wrong.is_empty(),
        "a delayed event must be sent exactly once, whichever process took its scheduling \
         request: {}",
        wrong.join("; ")
    );
    Ok(())
}

/// Due one after the other while the main process (which holds Synapse's timer) is killed.
const FALLING_DUE_MS: [i64; 6] = [1500, 1750, 2000, 2250, 2500, 2750];

case! {
    name: crash_of_sending_process_sends_once,
    title: "A crash of the process that sends delayed events, while they fall due, sends none of them twice and loses none",
    level: Info,
    spec: PERSIST,
    needs: &[Need::Restart, Need::Kill, Need::Workers],
}
async fn crash_of_sending_process_sends_once(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    let processes = ctx.target().processes().map_err(Stop::Skip)?;
    // Synapse's timer runs on the main process (the first); it asks the events writer to
    // persist what falls due.
    let sender = processes[0].clone();
    for attempt in 1..=ONE_PROCESS_ATTEMPTS {
        let round = ctx.restart_round_alone().await;
        let mut events = Vec::new();
        for delay in FALLING_DUE_MS {
            let event = DelayedEvent::message(&room, &ctx.unique(&format!("due after {delay} ms")));
            events.push((alice.schedule_ok(&event, delay).await?, event));
        }
        // Killed once the first is out: the others fall due while it dies and is down.
        let (first, first_event) = &events[0];
        let seen_first = ctx
            .expect_sent_not_early(&bob, "the first event", first.due(), |o| {
                first_event.matches(o)
            })
            .await;
        if let Err(stop) = seen_first {
            ctx.settled();
            return Err(stop);
        }
        let killed = ctx.restart_one_now(round, &sender, true).await;
        let back = Instant::now();
        if !killed? {
            ctx.whole_restart_instead(attempt);
            continue;
        }
        let before_kill = bob
            .seen_matching(|o| events.iter().any(|(_, e)| e.matches(o)))
            .await?
            .len();
        ctx.note(format!(
            "{sender} killed (SIGKILL) after {before_kill} of {} events had arrived; back after \
             {:.1} s",
            events.len(),
            back.saturating_duration_since(first.requested_at)
                .as_secs_f64()
        ));
        for (scheduled, event) in &events {
            let what = format!(
                "the event due after {} ms, while {sender} was killed",
                scheduled.delay_ms
            );
            let due = Due::new(back.max(scheduled.due().at()), 0);
            if let Err(stop) = ctx
                .expect_sent(&bob, &what, due, |o| event.matches(o))
                .await
            {
                ctx.settled();
                return Err(stop);
            }
        }
        ctx.settled();
        ctx.after_round_settled().await;
        return sent_once(&ctx, &bob, &alice, &room, &events).await;
    }
    Err(ctx.never_alone(&sender))
}

/// How long after a change every worker may take to show it (replication lag).
const AGREE_WITHIN: Duration = Duration::from_secs(3);

/// What one answer of a listing or a lookup said about the event.
#[derive(Clone, Debug, PartialEq)]
enum Shown {
    /// Scheduled, with the scheduling time it reports.
    Scheduled(Option<i64>),
    /// Not listed, or looked up as cancelled or unknown.
    Gone,
    Other(String),
}

case! {
    name: lookups_agree_across_workers,
    title: "Right after a change, the listing and the lookup agree, whichever worker answers",
    level: Info,
    spec: LISTING,
    needs: &[Need::Workers],
}
async fn lookups_agree_across_workers(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let processes = ctx.target().processes().map_err(Stop::Skip)?;
    // Every worker, and main, answers at least once in a pass under round robin.
    let asks = 2 * processes.len();
    let lookup = ctx.features().single_lookup;
    let event = DelayedEvent::message(&room, &ctx.unique("looked up from every worker"));
    let scheduled = alice.schedule_ok(&event, super::LONG_DELAY_MS).await?;
    let id = scheduled.delay_id.clone();
    let first = agreed(&ctx, &alice, &id, asks, lookup, "scheduling it", |shown| {
        matches!(shown, Shown::Scheduled(_))
    })
    .await?;
    let before = match first {
        Shown::Scheduled(at) => at,
        _ => None,
    };
    let restart = alice.manage(&id, Action::Restart).await?;
    check!(
        restart.is_success(),
        "the restart action was refused: {}",
        restart.describe()
    );
    agreed(
        &ctx,
        &alice,
        &id,
        asks,
        lookup,
        "restarting it",
        |shown| match shown {
            // A later scheduling time where the server reports one.
            Shown::Scheduled(at) => before.is_none() || at.is_none() || *at > before,
            _ => false,
        },
    )
    .await?;
    let cancel = alice.manage(&id, Action::Cancel).await?;
    check!(
        cancel.is_success(),
        "the cancel action was refused: {}",
        cancel.describe()
    );
    agreed(&ctx, &alice, &id, asks, lookup, "cancelling it", |shown| {
        *shown == Shown::Gone
    })
    .await?;
    Ok(())
}

/// Asks the listing (and the lookup) `asks` times each, again until every answer of a pass
/// shows the change (`shows`) or [`AGREE_WITHIN`] has passed; fails naming the processes that
/// answered otherwise. Answers what the last pass showed.
async fn agreed(
    ctx: &Ctx,
    alice: &User,
    delay_id: &str,
    asks: usize,
    lookup: bool,
    change: &str,
    shows: impl Fn(&Shown) -> bool,
) -> Result<Shown, Stop> {
    let changed = Instant::now();
    let mut passes = 0;
    loop {
        passes += 1;
        let mut answers = Vec::new();
        for _ in 0..asks {
            let listing = alice.list_raw(true).await?;
            answers.push((
                "listing",
                listing.served_by().map(str::to_owned),
                listed(&listing, delay_id),
            ));
            if lookup {
                let single = alice.lookup(delay_id, true).await?;
                answers.push((
                    "lookup",
                    single.served_by().map(str::to_owned),
                    looked_up(&single),
                ));
            }
        }
        let stale: Vec<String> = answers
            .iter()
            .filter(|(_, _, shown)| !shows(shown))
            .map(|(what, by, shown)| {
                format!(
                    "the {what} from {} showed {shown:?}",
                    by.as_deref().unwrap_or("?")
                )
            })
            .collect();
        if stale.is_empty() {
            ctx.note(format!(
                "after {change}: {} answers from {} agreed after {} ms ({passes} passes)",
                answers.len(),
                served_by_all(&answers),
                changed.elapsed().as_millis()
            ));
            return Ok(answers
                .pop()
                .map(|(_, _, shown)| shown)
                .unwrap_or(Shown::Gone));
        }
        if changed.elapsed() > AGREE_WITHIN {
            fail!(
                "{} ms after {change}, the listing and the lookup still did not agree with it: {}",
                changed.elapsed().as_millis(),
                stale.join("; ")
            );
        }
    }
}

fn served_by_all(answers: &[(&str, Option<String>, Shown)]) -> String {
    let mut names: Vec<&str> = answers
        .iter()
        .map(|(_, by, _)| by.as_deref().unwrap_or("?"))
        .collect();
    names.sort_unstable();
    names.dedup();
    names.join(", ")
}

fn listed(resp: &crate::client::Resp, delay_id: &str) -> Shown {
    if !resp.is_success() {
        return Shown::Other(resp.describe());
    }
    let Ok(items) = crate::api::listing_items(resp) else {
        return Shown::Other(resp.describe());
    };
    match items.iter().find(|item| item.delay_id() == Some(delay_id)) {
        Some(item) => Shown::Scheduled(item.scheduled_at()),
        None => Shown::Gone,
    }
}

fn looked_up(resp: &crate::client::Resp) -> Shown {
    if resp.status == 404 {
        return Shown::Gone;
    }
    if !resp.is_success() {
        return Shown::Other(resp.describe());
    }
    let item = DelayedInfo {
        raw: resp.body.clone(),
    };
    match item.fate().map(|read| read.fate) {
        Ok(Fate::Scheduled) => Shown::Scheduled(item.scheduled_at()),
        Ok(Fate::Cancelled { .. }) => Shown::Gone,
        Ok(other) => Shown::Other(other.describe()),
        Err(why) => Shown::Other(why),
    }
}

pub fn cases() -> Vec<Case> {
    cases![
        heartbeats_survive_main_restart,
        scheduled_on_worker_sent_once,
        crash_of_sending_process_sends_once,
        lookups_agree_across_workers
    ]
}
