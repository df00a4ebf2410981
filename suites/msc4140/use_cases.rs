//! use_cases: the reasons the MSC exists, end to end: a MatrixRTC "last will", a self-destructing
//! message, a delayed kick, a scheduled reminder.

use super::restart::Restartable;
use super::texts::{HEARTBEAT, LAST_WILL, REMINDERS, SELF_DESTRUCT};
use super::SHORT_DELAY_MS;
use crate::prelude::*;

/// MatrixRTC call membership (the type Element Call sends today).
const CALL_MEMBER: &str = "org.matrix.msc3401.call.member";

/// The "hang up" delay: restarted every fifth of it while the call lasts.
const LAST_WILL_DELAY_MS: i64 = 1500;
const HEARTBEATS: u32 = 6;

case! {
    name: matrixrtc_last_will,
    title: "A call membership kept alive by restarts stays while they run and is hung up one delay after they stop",
    level: Must,
    spec: LAST_WILL,
}
async fn matrixrtc_last_will(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?;
    alice
        .update_power_levels(&room, |levels| levels["events"][CALL_MEMBER] = json!(0))
        .await?;
    alice.start_sync().await?;
    // Bob joins the call, and leaves a "hang up" (empty membership) as his last will.
    let device = "DECDEVICE";
    let state_key = format!("_{}_{device}", bob.id());
    let joined = json!({"application": "m.call", "call_id": "", "scope": "m.room", "device_id": device,
                        "focus_active": {"type": "livekit"}, "foci_preferred": []});
    bob.put_state(&room, CALL_MEMBER, &state_key, joined.clone())
        .await?
        .setup_step("join the call")?;
    let hang_up = DelayedEvent::state(&room, CALL_MEMBER, &state_key, json!({}));
    let scheduled = bob.schedule_ok(&hang_up, LAST_WILL_DELAY_MS).await?;
    let mut will = Restartable::new(bob.clone(), alice.clone(), hang_up.clone(), scheduled);
    let first = will.timer;
    let first_start = ctx
        .server_scheduled_at(&bob, &will.delay_id, &first)
        .await?;
    will.heartbeat(HEARTBEATS).await?;
    let server_start = ctx
        .server_rescheduled_at(&bob, &will.delay_id, (first_start, &first), &will.timer)
        .await?;
    let asked = Instant::now();
    let membership = alice.get_state(&room, CALL_MEMBER, &state_key).await?;
    let landed = ctx.done_before_due("reading the membership", asked, will.due())?;
    landed.judge(if membership.status == 200 && membership.body == joined {
        Ok(())
    } else {
        Err(Stop::Fail(format!(
            "while the heartbeat ran, the call membership should have stayed, but {}",
            membership.describe()
        )))
    })?;
    // Bob's client goes away: no more heartbeats. Not early; not later than the allowance after
    // the last heartbeat (the wait's deadline).
    let what = "the \"hang up\" call membership";
    ctx.expect_sent_not_early(
        &alice,
        what,
        will.due().with_server_start(server_start),
        |o| hang_up.matches(o),
    )
    .await?;
    let after = alice.get_state(&room, CALL_MEMBER, &state_key).await?;
    check!(
        after.body == json!({}),
        "after the hang-up was sent, the membership state is {}",
        after.describe()
    );
    Ok(())
}

case! {
    name: self_destructing_message,
    title: "A delayed redaction redacts its message after the delay",
    level: Must,
    spec: SELF_DESTRUCT,
}
async fn self_destructing_message(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_alice().await?;
    let sent = bob
        .send_event(
            &room,
            "m.room.message",
            json!({"msgtype": "m.text", "body": "this message will self-destruct"}),
        )
        .await?
        .setup_step("send the message")?;
    let message_id = sent.str_field("event_id").unwrap_or_default().to_string();
    let redaction = DelayedEvent {
        room_id: room.clone(),
        event_type: "m.room.redaction".into(),
        state_key: None,
        content: json!({ "redacts": message_id }),
    };
    let scheduled = bob.schedule_ok(&redaction, SHORT_DELAY_MS).await?;
    let server_start = ctx
        .server_scheduled_at(&bob, &scheduled.delay_id, &scheduled.timer())
        .await?;
    // Not early; not later than its delay plus the allowance (the wait's deadline).
    let what = "the delayed redaction";
    let redacts = |o: &Observed| {
        o.event_type() == "m.room.redaction"
            && (o.content().get("redacts") == Some(&json!(message_id))
                || o.event.get("redacts") == Some(&json!(message_id)))
    };
    ctx.expect_sent_not_early(
        &alice,
        what,
        scheduled.due().with_server_start(server_start),
        redacts,
    )
    .await?;
    let message = alice.event(&room, &message_id).await?;
    check!(
        message.status == 200 && message.body.get("content") == Some(&json!({})),
        "after the delayed redaction was sent, the message should be redacted (empty content), but {}",
        message.describe()
    );
    Ok(())
}

/// How long to wait for the server to have processed a member's join (see `settle_after_join`).
const SETTLE_BOUND: Duration = Duration::from_secs(5);

/// A server with the 2024-10 overwrite rule cancels delayed state events of one user when another
/// user's state event for the same entry is processed. Synapse processes state changes
/// asynchronously and, under load, a member's *earlier* join can cancel a kick scheduled after
/// it. To test the kick and not that race, wait until the server has processed past the join: a
/// canary delayed state event of alice's, overwritten by bob after his join, disappears once the
/// server got there. Servers without the rule never cancel it; then the bound ends the wait.
async fn settle_after_join(ctx: &Ctx, alice: &User, bob: &User, room: &str) -> CaseResult {
    const CANARY: &str = "org.example.dec.canary";
    alice
        .update_power_levels(room, |levels| levels["events"][CANARY] = json!(0))
        .await?;
    let canary = DelayedEvent::state(room, CANARY, "k", json!({"n": ctx.unique("canary")}));
    let id = alice
        .schedule_ok(&canary, super::LONG_DELAY_MS)
        .await?
        .delay_id;
    bob.put_state(room, CANARY, "k", json!({}))
        .await?
        .setup_step("overwrite the canary")?;
    let started = Instant::now();
    while started.elapsed() < SETTLE_BOUND {
        if alice.listed(&id).await?.is_none() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    alice.manage(&id, Action::Cancel).await?;
    Ok(())
}

case! {
    name: delayed_kick,
    title: "A membership event scheduled by a moderator removes the member after the delay",
    level: Must,
    spec: REMINDERS,
}
async fn delayed_kick(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?;
    settle_after_join(&ctx, &alice, &bob, &room).await?;
    alice.start_sync().await?;
    let kick = DelayedEvent::state(
        &room,
        "m.room.member",
        bob.id(),
        json!({"membership": "leave"}),
    );
    let scheduled = alice.schedule_ok(&kick, SHORT_DELAY_MS).await?;
    let server_start = ctx
        .server_scheduled_at(&alice, &scheduled.delay_id, &scheduled.timer())
        .await?;
    // Not early; not later than its delay plus the allowance (the wait's deadline).
    let what = "the delayed kick";
    let is_kick = |o: &Observed| {
        o.event_type() == "m.room.member"
            && o.state_key() == Some(bob.id())
            && o.content().get("membership") == Some(&json!("leave"))
    };
    ctx.expect_sent_not_early(
        &alice,
        what,
        scheduled.due().with_server_start(server_start),
        is_kick,
    )
    .await?;
    let membership = alice.get_state(&room, "m.room.member", bob.id()).await?;
    check!(
        membership.body.get("membership") == Some(&json!("leave")),
        "after the delayed kick was sent, the member's membership is {}",
        membership.describe()
    );
    Ok(())
}

case! {
    name: scheduled_reminder,
    title: "A reminder with an intentional mention arrives at its time, mention intact",
    level: Must,
    spec: REMINDERS,
}
async fn scheduled_reminder(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    let text = format!("{}: tea is ready ({})", bob.id(), ctx.unique("reminder"));
    let reminder = DelayedEvent::message(&room, &text).with_content(
        json!({"msgtype": "m.text", "body": text, "m.mentions": {"user_ids": [bob.id()]}}),
    );
    let scheduled = alice.schedule_ok(&reminder, SHORT_DELAY_MS).await?;
    let server_start = ctx
        .server_scheduled_at(&alice, &scheduled.delay_id, &scheduled.timer())
        .await?;
    // Not early; not later than its delay plus the allowance (the wait's deadline).
    let what = "the scheduled reminder";
    let seen = ctx
        .expect_sent_not_early(
            &bob,
            what,
            scheduled.due().with_server_start(server_start),
            body_is(&text),
        )
        .await?;
    check!(
        seen.content() == &reminder.content,
        "the reminder arrived with content {} instead of the scheduled {} (the intentional mention must be kept)",
        seen.content(),
        reminder.content
    );
    Ok(())
}

/// Members of the call of many, each with a hang-up kept alive by heartbeats.
const CALL_MEMBERS: usize = 3;
const CALL_DELAY_MS: i64 = 1000;
const CALL_BEAT: Duration = Duration::from_millis(CALL_DELAY_MS as u64 / 5);

case! {
    name: call_of_many,
    title: "In a call of many, only the hang-up of the member who stopped heartbeating lands, on time",
    level: Must,
    spec: HEARTBEAT,
    revisions: &[Rev::Dec2025, Rev::Jul2026],
}
/// Several members of one room keep their "hang up" alive; one stops. Only that member's hang-up
/// lands, one delay after their last restart (not earlier, not later than allowed), while the
/// others' restarts go on; the others' hang-ups stay unsent. A server that lets one member's
/// restart re-arm another's timer keeps the stopped member in the call forever.
async fn call_of_many(ctx: Ctx) -> CaseResult {
    let Crowd {
        watcher,
        members,
        room,
    } = ctx.watched_room(CALL_MEMBERS).await?;
    let mut wills = Vec::new();
    // The server's first scheduling time of the member who will stop, and the request behind it.
    let mut first_start = (None, None);
    for (n, member) in members.iter().enumerate() {
        let hang_up = DelayedEvent::message(&room, &ctx.unique(&format!("member {n} hangs up")));
        let scheduled = member.schedule_ok(&hang_up, CALL_DELAY_MS).await?;
        if n + 1 == CALL_MEMBERS {
            let timer = scheduled.timer();
            first_start = (
                ctx.server_scheduled_at(member, &scheduled.delay_id, &timer)
                    .await?,
                Some(timer),
            );
        }
        wills.push(Restartable::new(
            member.clone(),
            watcher.clone(),
            hang_up,
            scheduled,
        ));
    }
    for _ in 0..3 {
        tokio::time::sleep(CALL_BEAT).await;
        for will in wills.iter_mut() {
            will.restart().await?;
        }
    }
    // The last member's client goes away; the others keep beating until its hang-up lands.
    let stopped = wills.pop().expect("several members");
    // The server's own start of the stopped member's last timer (moved by the restarts): "not
    // early" by the server's clock too, which a slow harness cannot blur.
    let (before, first) = first_start;
    let first = first.expect("the last member's timer was recorded");
    let server_start = ctx
        .server_rescheduled_at(
            &stopped.alice,
            &stopped.delay_id,
            (before, &first),
            &stopped.timer,
        )
        .await?;
    let deadline = stopped.due().deadline();
    let seen = loop {
        if let Some(seen) = watcher
            .wait_for(Instant::now() + CALL_BEAT, |o| stopped.event.matches(o))
            .await?
        {
            break seen;
        }
        if Instant::now() >= deadline {
            fail!(
                "the hang-up of the member who stopped was never sent while the other members kept restarting \
                 their own: not seen within its {CALL_DELAY_MS} ms delay plus the allowance"
            );
        }
        for will in wills.iter_mut() {
            will.restart().await?;
        }
    };
    // The others are still in the call: their hang-ups stay scheduled, so they can beat again.
    for will in wills.iter_mut() {
        will.restart().await?;
    }
    let what = "the hang-up of the member who stopped";
    ctx.check_not_early(what, &seen, stopped.due().with_server_start(server_start))?;
    ctx.check_within_allowance(what, &seen, stopped.due().with_server_start(server_start))?;
    for will in &wills {
        let copies = watcher.seen_matching(|o| will.event.matches(o)).await?;
        let landed = ctx.done_before_due("the last heartbeat", will.timer.sent, will.due())?;
        landed.judge(if copies.is_empty() {
            Ok(())
        } else {
            Err(Stop::Fail(
                "one member's hang-up landed while they kept restarting it (another member had stopped)".into(),
            ))
        })?;
        will.alice.manage(&will.delay_id, Action::Cancel).await?;
    }
    Ok(())
}

pub fn cases() -> Vec<Case> {
    cases![
        matrixrtc_last_will,
        self_destructing_message,
        delayed_kick,
        scheduled_reminder,
        call_of_many,
    ]
}
