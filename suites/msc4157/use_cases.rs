//! use_cases: MatrixRTC through the widget: a delayed "hang up" membership kept alive by
//! restarts is not sent while they go on, and is sent once they stop; a whole call as Element
//! Call makes it; heartbeats refused for rate limiting; one request, one effect.

use super::errors::{check_update_answer, SENT_WITHIN};
use super::texts::{CLIENT_SENDS_DELAYED, HEARTBEAT, UPDATE_RESPONSE};
use super::{
    alice_widget_and_bob, call_member_widget, WidgetScene, CALL_MEMBER, LONG_DELAY_MS,
    RESTARTED_DELAY_MS,
};
use crate::prelude::*;
use crate::widget::{caps, Reply};
use futures::future::join_all;

/// Restarts at this interval keep the delay from running out.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(400);
const HEARTBEATS: usize = 4;

// Must, as `msc4140.use_cases.matrixrtc_last_will`.
case! {
    name: matrixrtc_hangup,
    title: "A delayed hang-up membership is kept alive by restarts and sent once they stop",
    level: Must,
    spec: HEARTBEAT,
}
async fn matrixrtc_hangup(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    let (widget, state_key) = call_member_widget(&ctx, &alice, &room).await?;
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

/// The delayed leave's delay in the whole call: heartbeats come every second, so this leaves a
/// loaded machine room for a few slow round trips through the driver.
const CALL_LEAVE_DELAY_MS: i64 = 4000;
const CALL_HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
const CALL_HEARTBEATS: u32 = 5;

/// A call membership's content, as Element Call joins (the fields it sends; `marker` tells
/// this join from others).
fn join_content(device: &str, marker: &str) -> Value {
    json!({
        "application": "m.call",
        "call_id": "",
        "scope": "m.room",
        "device_id": device,
        "focus_active": {"type": "livekit", "focus_selection": "oldest_membership"},
        "foci_preferred": [],
        "marker": marker,
    })
}

case! {
    name: whole_call,
    title: "A whole call through the widget: delayed leave, join, restart at once, pipelined heartbeats, hang-up by send",
    level: Must,
    spec: HEARTBEAT,
}
/// MUST, as `matrixrtc_hangup` and MSC4140's heartbeat: Element Call's own sequence. The empty
/// leave is scheduled before the join on the same state key; a restart right after the join must
/// succeed; heartbeats go out every second whether or not the one before was answered; the
/// hang-up is the send action; a restart of the sent leave then gets the homeserver's error
/// (as `errors.updates_of_sent_event`), from which Element Call knows to schedule anew.
async fn whole_call(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    let asked = caps::delayed(&[], &[CALL_MEMBER]);
    let widget = ctx.widget_with(&alice, &room, &asked).await?;
    let device = ctx.unique("device").replace(' ', "_");
    let state_key = format!("_{}_{device}", alice.id());
    let leave = DelayedEvent::state(&room, CALL_MEMBER, &state_key, json!({}));
    let (scheduled, delay_id) = widget.schedule_ok(&leave, CALL_LEAVE_DELAY_MS).await?;
    let join = DelayedEvent::state(
        &room,
        CALL_MEMBER,
        &state_key,
        join_content(&device, &ctx.unique("join")),
    );
    widget.send_event(&join, None).await?.check_success(
        "the join (a plain call.member state event through the widget, on the delayed leave's state key) was refused",
    )?;
    let restart = widget.update(&delay_id, "restart").await?;
    let mut heartbeats = vec![("the restart right after the join".to_string(), restart)];
    // Every second, each sent whether or not the one before has been answered.
    let first = Instant::now() + CALL_HEARTBEAT_EVERY;
    let pipelined = join_all((0..CALL_HEARTBEATS).map(|n| {
        let (widget, delay_id) = (&widget, &delay_id);
        async move {
            tokio::time::sleep_until((first + CALL_HEARTBEAT_EVERY * n).into()).await;
            widget.update(delay_id, "restart").await
        }
    }))
    .await;
    for (n, beat) in pipelined.into_iter().enumerate() {
        heartbeats.push((format!("heartbeat {}", n + 1), beat?));
    }
    // Each restart in turn starts the leave's timer anew.
    let mut timer = Due::new(scheduled.requested_at, CALL_LEAVE_DELAY_MS);
    let mut answered_late = None;
    for (what, reply) in &heartbeats {
        timer.harness_kept_pace(what, reply.requested_at, ctx.evidence())?;
        if reply.received >= timer.at() && answered_late.is_none() {
            answered_late = Some(format!(
                "{what} was answered only after the leave it restarted was due ({} ms after it was sent)",
                reply.elapsed().as_millis()
            ));
        }
        reply.check_success(&format!(
            "{what} (restart of the delayed leave through the widget) was refused"
        ))?;
        timer = Due::new(reply.requested_at, CALL_LEAVE_DELAY_MS);
    }
    let early = bob.seen_matching(|o| leave.matches(o)).await?;
    if !early.is_empty() {
        let verdict = format!(
            "the delayed leave was sent while the heartbeats kept it alive, before the hang-up (event {})",
            early[0].event_id().unwrap_or("?")
        );
        return Err(match answered_late {
            Some(late) => Stop::Error(format!(
                "{late}, so the server may rightly have sent it first; cannot judge: {verdict}"
            )),
            None => Stop::Fail(verdict),
        });
    }
    let hangup = widget.update(&delay_id, "send").await?;
    timer.harness_kept_pace("the hang-up", hangup.requested_at, ctx.evidence())?;
    hangup.check_success("the hang-up (the send action through the widget) was refused")?;
    let Some(seen) = bob
        .wait_for(hangup.received + SENT_WITHIN, |o| leave.matches(o))
        .await?
    else {
        fail!(
            "the hang-up (the send action through the widget) was answered with success, but the delayed leave \
             was not sent within {} s",
            SENT_WITHIN.as_secs()
        );
    };
    if seen.at >= timer.at() {
        let verdict = format!(
            "the hang-up (the send action through the widget) did not send the delayed leave: it came only when \
             its timer ran out, {} ms after the hang-up was answered",
            seen.at.duration_since(hangup.received).as_millis()
        );
        return Err(if hangup.received >= timer.at() {
            Stop::Error(format!(
                "the hang-up was answered only after the leave was due; cannot judge: {verdict}"
            ))
        } else {
            Stop::Fail(verdict)
        });
    }
    let what = "a restart of the delayed leave the hang-up sent";
    let server = check_update_answer(&widget, &delay_id, Action::Restart, what).await?;
    ctx.note(format!(
        "{what}: the homeserver answered HTTP {} {}, carried by the driver",
        server.status,
        server.errcode().unwrap_or("")
    ));
    Ok(())
}

/// Restarts sent at once: more than a normal rate limit lets through (Synapse's
/// `rc_delayed_event_mgmt` bursts 5).
const RESTART_BURST: usize = 10;
/// Element Call abandons a restart it has had no answer to after this long (its local timeout).
const ELEMENT_CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// The harness's own restart must be answered this fast for a slow driver reply to be the driver's.
const SERVER_ANSWERS_WITHIN: Duration = Duration::from_secs(1);

case! {
    name: heartbeats_rate_limited,
    title: "Restarts refused for rate limiting (429) reach the widget as error replies within 2 s",
    level: Must,
    spec: UPDATE_RESPONSE,
    needs: &[Need::NormalRateLimits],
}
/// MUST, as the text's "otherwise a widget error response" (`errors.unknown_delay_id`): a driver
/// that retries a 429 silently leaves the widget without an answer. Element Call abandons a
/// heartbeat after 2 s and retries only on the carried 429 `M_LIMIT_EXCEEDED`.
async fn heartbeats_rate_limited(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let asked = caps::delayed(&[], &[CALL_MEMBER]);
    let widget = ctx.widget_with(&alice, &room, &asked).await?;
    let state_key = format!("_{}_{}", alice.id(), ctx.unique("device").replace(' ', "_"));
    let leave = DelayedEvent::state(&room, CALL_MEMBER, &state_key, json!({}));
    let (_, delay_id) = widget.schedule_ok(&leave, LONG_DELAY_MS).await?;
    let replies: Vec<Reply> = join_all((0..RESTART_BURST).map(|_| {
        let data = json!({"delay_id": delay_id, "action": "restart"});
        widget.request_or_silence(caps::UPDATE_ACTION_UNSTABLE, data)
    }))
    .await
    .into_iter()
    .collect::<Result<_, _>>()?;
    let late: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.response.is_none() || r.elapsed() > ELEMENT_CALL_TIMEOUT)
        .collect();
    if let Some(slowest) = late.iter().max_by_key(|r| r.elapsed()) {
        // The homeserver's own pace, for the same user's same request.
        let own_sent = Instant::now();
        let own = alice.manage(&delay_id, Action::Restart).await?;
        let own_took = own.received.saturating_duration_since(own_sent);
        let verdict = format!(
            "{} of {RESTART_BURST} restarts sent at once got no reply within {} s (Element Call's local timeout \
             for a heartbeat); replies after {} ms; the slowest: {}; the homeserver answers the harness's own \
             restart in {} ms (HTTP {})",
            late.len(),
            ELEMENT_CALL_TIMEOUT.as_secs(),
            replies
                .iter()
                .map(|r| match r.response {
                    Some(_) => r.elapsed().as_millis().to_string(),
                    None => "none".into(),
                })
                .collect::<Vec<_>>()
                .join(", "),
            slowest.describe(),
            own_took.as_millis(),
            own.status
        );
        if own_took > SERVER_ANSWERS_WITHIN {
            return Err(Stop::Error(format!(
                "the homeserver itself is slow, so the driver's late replies cannot be judged: {verdict}"
            )));
        }
        fail!("{verdict}");
    }
    let mut refused = 0;
    for reply in replies.iter().filter(|r| r.is_error()) {
        let what = "a restart refused while the homeserver rate-limits";
        let Some(status) = reply.matrix_http_status() else {
            fail!(
                "{what}: the error reply does not carry the Matrix error (error.matrix_api_error), so the widget \
                 cannot tell a 429 to retry after: {}",
                reply.describe()
            );
        };
        if reply.matrix_errcode() == Some("M_LIMIT_EXCEEDED") || status == 429 {
            check!(
                status == 429 && reply.matrix_errcode() == Some("M_LIMIT_EXCEEDED"),
                "{what}: the error reply's matrix_api_error has http_status {status} and errcode {:?}, not the \
                 homeserver's 429 M_LIMIT_EXCEEDED: {}",
                reply.matrix_errcode(),
                reply.describe()
            );
            refused += 1;
        } else {
            ctx.note(format!("a restart refused otherwise: {}", reply.describe()));
        }
    }
    if refused == 0 {
        skip!(
            "the homeserver refused none of {RESTART_BURST} restarts sent at once through the driver, so there is \
             no 429 to carry"
        );
    }
    let slowest = replies.iter().map(Reply::elapsed).max().unwrap_or_default();
    ctx.note(format!(
        "{refused} of {RESTART_BURST} restarts sent at once were refused with 429 M_LIMIT_EXCEEDED; every reply \
         came within {} ms",
        slowest.as_millis()
    ));
    Ok(())
}

case! {
    name: one_request_one_effect,
    title: "One send_event schedules one delayed event, and each request gets exactly one reply",
    level: Must,
    spec: CLIENT_SENDS_DELAYED,
}
/// MUST, as MSC4140's "a retried request schedules once" (`msc4140.idempotency.same_txn_schedules_once`):
/// a host that handles each widget request twice (element-web#31692) schedules two leaves, of
/// which the widget knows one, and answers twice.
async fn one_request_one_effect(ctx: Ctx) -> CaseResult {
    let WidgetScene { widget, bob, room } = alice_widget_and_bob(&ctx).await?;
    let event = DelayedEvent::message(&room, &ctx.unique("scheduled once"));
    let (schedule, delay_id) = widget.schedule_ok(&event, LONG_DELAY_MS).await?;
    let scheduled_copies = widget
        .user
        .list()
        .await?
        .into_iter()
        .filter(|info| info.raw.get("content") == Some(&event.content))
        .count();
    check!(
        scheduled_copies == 1,
        "one delayed send_event scheduled {scheduled_copies} delayed events with its content (the user's \
         listing), not one"
    );
    let restart = widget.update(&delay_id, "restart").await?;
    restart.check_success("the restart through the widget was refused")?;
    let send = widget.update(&delay_id, "send").await?;
    send.check_success("the send action through the widget was refused")?;
    // Counted after a marker and a grace, which give late replies time to come too.
    let copies = ctx
        .copies_after_marker(&widget.user, &bob, &room, &[("the event", &event)])
        .await?;
    check!(
        copies[0].1 == 1,
        "one send action through the widget sent the delayed event {} times",
        copies[0].1
    );
    for (what, reply) in [
        ("the delayed send_event", &schedule),
        ("the restart", &restart),
        ("the send action", &send),
    ] {
        let replies = widget.replies_to(reply);
        check!(
            replies == 1,
            "{what} got {replies} replies from the driver, not one (the request was handled more than once)"
        );
    }
    Ok(())
}

pub fn cases() -> Vec<Case> {
    cases![
        matrixrtc_hangup,
        whole_call,
        heartbeats_rate_limited,
        one_request_one_effect
    ]
}
