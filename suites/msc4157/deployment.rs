//! deployment: the driver in front of a homeserver deployed as several processes (Synapse's main
//! process and workers behind a reverse proxy), while only the main process restarts. Neither
//! MSC says anything about processes, so the case is INFO; a single process skips it.

use super::texts::HEARTBEAT;
use super::{call_member_widget, CALL_MEMBER};
use crate::prelude::*;
use crate::widget::Reply;
use futures::future::join_all;

/// The delayed leave's delay: shorter than a main process takes to restart (Synapse 1.163.2's
/// takes about 1.4 s), so heartbeats that the deployment cannot serve while main is down show as
/// a hang-up, even from a driver that retries them; ample for a round trip through a driver.
const LEAVE_DELAY_MS: i64 = 1000;

/// Heartbeats every fifth of the delay, sent whether or not the one before was answered (as
/// Element Call's timer does), so one slow answer never lets the leave fall due.
const BEAT_EVERY: Duration = Duration::from_millis(LEAVE_DELAY_MS as u64 / 5);

/// How long the heartbeats go on once main is back: the call goes on, and main gets time to
/// send, at start-up, what fell due while it was down.
const BEATING_AFTER: Duration = Duration::from_millis(2 * LEAVE_DELAY_MS as u64);

/// Heartbeats for at most this long (a main process that takes longer to restart ends the case
/// in `error` anyway), so the beats can be laid out in advance.
const MOST_BEATS: u32 = (120_000 / (LEAVE_DELAY_MS / 5)) as u32;

case! {
    name: heartbeats_survive_main_restart,
    title: "A call member's heartbeats through the widget keep its delayed leave unsent while only the main process restarts",
    level: Info,
    spec: HEARTBEAT,
    needs: &[Need::Restart, Need::Workers],
}
/// Synapse's workers serve the split `/restart` path, while the body form stays on the main
/// process (Synapse PR #19207): a driver that manages in the body form only cannot heartbeat
/// while main restarts, and its call member hangs up. The notes say what the driver's replies
/// were while main was down.
async fn heartbeats_survive_main_restart(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    let (widget, state_key) = call_member_widget(&ctx, &alice, &room).await?;
    for attempt in 1..=ONE_PROCESS_ATTEMPTS {
        let round = ctx.restart_round_alone().await;
        // A fresh leave per attempt, told apart by its content.
        let leave = DelayedEvent::state(
            &room,
            CALL_MEMBER,
            &state_key,
            json!({"left": ctx.unique("leave")}),
        );
        let (_, delay_id) = widget.schedule_ok(&leave, LEAVE_DELAY_MS).await?;
        // Beat n goes out at `first + n * BEAT_EVERY` unless main is back and the call over by
        // then; every beat sent is awaited.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let first = Instant::now();
        let beating = join_all((0..MOST_BEATS).map(|n| {
            let (widget, delay_id, mut stopped) = (&widget, &delay_id, stopped.clone());
            async move {
                tokio::select! {
                    _ = tokio::time::sleep_until((first + BEAT_EVERY * n).into()) => {
                        // A driver may still be retrying when its reply is due: no verdict
                        // on that, only on the leave.
                        Some(widget.update_or_silence(delay_id, "restart").await)
                    }
                    _ = async { stopped.wait_for(|stop| *stop).await.is_ok() } => None,
                }
            }
        }));
        let restarting = async {
            let restart = ctx
                .restart_one_timed(round, "main", false, BEATING_AFTER)
                .await;
            let _ = stop.send(true);
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
        // Stop the leave; what was sent before is what counts.
        let _ = alice.manage(&delay_id, Action::Cancel).await;
        if !restarted? {
            ctx.whole_restart_instead(attempt);
            continue;
        }
        let beats: Vec<Reply> = beats.into_iter().flatten().collect::<Result<_, _>>()?;
        let copies = ctx
            .copies_after_marker(&alice, &bob, &room, &[("the delayed leave", &leave)])
            .await?[0]
            .1;
        let while_down: Vec<&Reply> = beats
            .iter()
            .filter(|b| b.requested_at >= down && b.requested_at <= back)
            .collect();
        let answered = while_down.iter().filter(|b| b.is_success()).count();
        let refused: Vec<String> = while_down
            .iter()
            .filter(|b| !b.is_success())
            .map(|b| b.describe())
            .collect();
        let summary = format!(
            "{answered} of {} heartbeats through the widget succeeded while main restarted \
             ({:.1} s){}",
            while_down.len(),
            back.saturating_duration_since(down).as_secs_f64(),
            match refused.first() {
                None => String::new(),
                Some(first) => format!("; the first that did not: {first}"),
            }
        );
        ctx.note(summary.clone());
        check!(
            copies == 0,
            "a call member hung up while only the main process restarted: its delayed leave was \
             sent although the widget restarted it every {} ms (delay {LEAVE_DELAY_MS} ms); \
             {summary}",
            BEAT_EVERY.as_millis()
        );
        return Ok(());
    }
    Err(ctx.never_alone("main"))
}

pub fn cases() -> Vec<Case> {
    cases![heartbeats_survive_main_restart]
}
