//! use_cases: MatrixRTC through the widget: a delayed "hang up" membership kept alive by
//! restarts is not sent while they go on, and is sent once they stop.

use super::texts::HEARTBEAT;
use super::RESTARTED_DELAY_MS;
use crate::prelude::*;
use crate::widget::caps;

const CALL_MEMBER: &str = "org.matrix.msc3401.call.member";
/// Restarts at this interval keep the delay from running out.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(400);
const HEARTBEATS: usize = 4;

case! {
    name: matrixrtc_hangup,
    title: "A delayed hang-up membership is kept alive by restarts and sent once they stop",
    level: Must,
    spec: HEARTBEAT,
}
async fn matrixrtc_hangup(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    // Element Call's session membership key, `_{user}_{device}_{application}`; the widget may send
    // call.member state under that key only, as Element Call asks.
    let device = ctx.unique("device").replace(' ', "_");
    let state_key = format!("_{}_{device}_m.call", alice.id());
    let mut asked = caps::delayed(&[], &[]);
    asked.push(caps::send_state_key(CALL_MEMBER, &state_key));
    let widget = ctx.widget_with(&alice, &room, &asked).await?;
    let hangup = DelayedEvent::state(&room, CALL_MEMBER, &state_key, json!({}));
    let (reply, delay_id) = widget.schedule_ok(&hangup, RESTARTED_DELAY_MS).await?;
    let mut timer_started = reply.requested_at;
    for beat in 1..=HEARTBEATS {
        tokio::time::sleep(HEARTBEAT_EVERY).await;
        let restart = widget.update(&delay_id, "restart").await?;
        // A heartbeat the harness itself sent too late is refused rightly (the event was sent);
        // one sent in time is the driver's and the server's to handle, however long they take.
        Due::new(timer_started, RESTARTED_DELAY_MS).harness_kept_pace(
            &format!("heartbeat {beat}"),
            restart.requested_at,
            ctx.evidence(),
        )?;
        restart.check_success(&format!(
            "heartbeat {beat} (restart through the widget) was refused"
        ))?;
        timer_started = restart.requested_at;
    }
    ctx.expect_sent_not_early(
        &bob,
        "the hang-up membership kept alive by heartbeats",
        Due::new(timer_started, RESTARTED_DELAY_MS),
        |o| hangup.matches(o),
    )
    .await?;
    Ok(())
}

pub fn cases() -> Vec<Case> {
    cases![matrixrtc_hangup]
}
