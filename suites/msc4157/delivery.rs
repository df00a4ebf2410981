//! delivery: delayed sends that are not a plain message with a good delay. A delayed redaction is
//! delayed, and `redacts` under another type redacts nothing; a malformed `delay` is never sent
//! at once nor answered with neither id; and what the homeserver receives for a delayed send in an
//! encrypted room and for a sticky delayed send is recorded.

use super::texts::{CLIENT_SENDS_DELAYED, TWO_CAPABILITIES};
use super::{alice_widget_and_bob, all_caps, WidgetScene, LONG_DELAY_MS, SHORT_DELAY_MS};
use crate::api::UNSTABLE_UNSIGNED_KEY;
use crate::prelude::*;
use crate::widget::{caps, Reply, Widget};

const REDACTION: &str = "m.room.redaction";

/// A plain message of `owner`'s for a redaction to aim at; its event id.
async fn target_message(ctx: &Ctx, owner: &User, room: &str) -> Result<String, Stop> {
    let body = ctx.unique("the target of a redaction");
    let sent = owner
        .send_event(
            room,
            "m.room.message",
            json!({"msgtype": "m.text", "body": body}),
        )
        .await?
        .setup_step("send the message to redact")?;
    match sent.str_field("event_id") {
        Some(id) => Ok(id.to_string()),
        None => Err(Stop::Error(format!(
            "sending the message to redact gave no event_id: {}",
            sent.describe()
        ))),
    }
}

/// Whether an event seen over /sync redacts `target` (`redacts` in the content from room version
/// 11, at the top level before).
fn redacts(target: &str) -> impl Fn(&Observed) -> bool + '_ {
    move |o: &Observed| {
        o.event_type() == REDACTION
            && (o.content().get("redacts") == Some(&json!(target))
                || o.event.get("redacts") == Some(&json!(target)))
    }
}

/// Whether the homeserver shows `target` redacted now (its content stripped).
async fn is_redacted(owner: &User, room: &str, target: &str) -> Result<bool, Stop> {
    let event = owner.event(room, target).await?;
    if !event.is_success() {
        return Err(Stop::Error(format!(
            "reading the target message back failed: {}",
            event.describe()
        )));
    }
    Ok(event.body.get("content") == Some(&json!({}))
        || event.body.pointer("/unsigned/redacted_because").is_some())
}

// MUST, as its MSC4140 counterpart (msc4140.use_cases.self_destructing_message): a self-destructing
// message is one of the uses MSC4140 names, and a widget can only build it if the driver delays
// the redaction it is asked to delay.
case! {
    name: delayed_redaction,
    title: "A delayed redaction is scheduled (delay_id) and redacts its message only after the delay",
    level: Must,
    spec: CLIENT_SENDS_DELAYED,
}
async fn delayed_redaction(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    let asked = caps::delayed(&["m.room.message", REDACTION], &[]);
    let widget = ctx.widget_with(&alice, &room, &asked).await?;
    let target = target_message(&ctx, &alice, &room).await?;
    let redaction = DelayedEvent {
        room_id: room.clone(),
        event_type: REDACTION.into(),
        state_key: None,
        content: json!({ "redacts": target }),
    };
    let reply = widget.send_event(&redaction, Some(SHORT_DELAY_MS)).await?;
    let due = Due::new(reply.requested_at, SHORT_DELAY_MS);
    // Judged only while the delay still runs: afterwards a redaction is rightly there.
    if Instant::now() < due.at() && is_redacted(&alice, &room, &target).await? {
        fail!(
            "the message was redacted at once: a delayed redaction ({SHORT_DELAY_MS} ms) must be scheduled, \
             not executed ({})",
            reply.describe()
        );
    }
    reply.check_success("the driver refused a delayed redaction it had the capabilities for")?;
    let Some(delay_id) = reply.delay_id().map(str::to_string) else {
        fail!(
            "the delayed redaction was not scheduled: the reply carries no delay_id ({})",
            reply.describe()
        );
    };
    let scheduled = Widget::scheduled(&reply, &delay_id, SHORT_DELAY_MS);
    ctx.expect_sent_not_early(
        &bob,
        "the delayed redaction",
        scheduled.due(),
        redacts(&target),
    )
    .await?;
    check!(
        is_redacted(&alice, &room, &target).await?,
        "the delayed redaction was sent, but the message {target} is not redacted"
    );
    Ok(())
}

// MUST, as its MSC4140 counterpart (msc4140.content.unchanged_when_sent: the event sent is the one
// scheduled, content unchanged) and as the capability cases here: `redacts` in an m.room.message is
// that message's content, and turning it into a redaction acts without the redaction capability.
case! {
    name: redacts_under_other_type,
    title: "A delayed m.room.message whose content carries `redacts` redacts nothing",
    level: Must,
    spec: TWO_CAPABILITIES,
}
async fn redacts_under_other_type(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    // The message type's capability only: no m.room.redaction.
    let widget = ctx
        .widget_with(&alice, &room, &caps::delayed(&["m.room.message"], &[]))
        .await?;
    let target = target_message(&ctx, &alice, &room).await?;
    let body = ctx.unique("a message that names another in redacts");
    let event = DelayedEvent::message(&room, &body)
        .with_content(json!({"msgtype": "m.text", "body": body, "redacts": target}));
    let reply = widget.send_event(&event, Some(SHORT_DELAY_MS)).await?;
    check!(
        !is_redacted(&alice, &room, &target).await?,
        "a delayed m.room.message carrying \"redacts\" in its content redacted the message {target}: the \
         driver made a redaction the widget has no m.room.redaction capability for ({})",
        reply.describe()
    );
    if reply.is_error() {
        ctx.note(format!("refused: {}", reply.describe()));
        return Ok(());
    }
    let Some(delay_id) = reply.delay_id().map(str::to_string) else {
        fail!(
            "the delayed m.room.message carrying \"redacts\" was not scheduled: the reply carries no \
             delay_id ({})",
            reply.describe()
        );
    };
    let scheduled = Widget::scheduled(&reply, &delay_id, SHORT_DELAY_MS);
    ctx.expect_sent(
        &bob,
        "the delayed message carrying redacts",
        scheduled.due(),
        |o| event.matches(o),
    )
    .await?;
    check!(
        !is_redacted(&alice, &room, &target).await?,
        "once the delayed m.room.message carrying \"redacts\" was sent, the message {target} was redacted"
    );
    check!(
        bob.seen_matching(redacts(&target)).await?.is_empty(),
        "a redaction of the message {target} was sent, though the widget only sent an m.room.message"
    );
    Ok(())
}

/// The malformed delays tried, each with how the failure messages name it.
fn malformed_delays() -> Vec<(&'static str, Value)> {
    vec![
        ("null", Value::Null),
        ("the string \"1000\"", json!("1000")),
        ("-1000", json!(-1000)),
        ("1500.5", json!(1500.5)),
        ("0", json!(0)),
    ]
}

/// Whether the homeserver knows `delay_id` as `owner`'s delayed event: still scheduled, or sent
/// already carrying it in `unsigned` (a short delay may have run out before the listing).
async fn known_delay_id(
    owner: &User,
    event: &DelayedEvent,
    delay_id: &str,
) -> Result<Option<&'static str>, Stop> {
    if owner.listed(delay_id).await?.is_some() {
        return Ok(Some("scheduled"));
    }
    let sent = owner
        .messages(&event.room_id, 50)
        .await?
        .into_iter()
        .any(|e| {
            e.get("content") == Some(&event.content)
                && [UNSTABLE_UNSIGNED_KEY, "delay_id"]
                    .iter()
                    .any(|key| e.pointer(&format!("/unsigned/{key}")) == Some(&json!(delay_id)))
        });
    Ok(sent.then_some("sent by the homeserver once its delay ran out"))
}

/// How one malformed delay was answered.
enum Answer {
    /// An error reply (what it said).
    Refused(String),
    /// A delay_id the homeserver knows.
    Scheduled,
    /// Something the widget cannot rely on.
    Broken(String),
}

async fn answer_to(
    ctx: &Ctx,
    widget: &Widget,
    bob: &User,
    label: &str,
    event: &DelayedEvent,
    reply: &Reply,
) -> Result<Answer, Stop> {
    if reply.response.is_none() {
        return Ok(Answer::Broken(reply.describe()));
    }
    if reply.is_error() {
        return Ok(Answer::Refused(match reply.matrix_errcode() {
            Some(errcode) => format!("forwarded, and the homeserver refused it ({errcode})"),
            None => "refused by the driver".into(),
        }));
    }
    let event_id = reply.field("event_id").and_then(Value::as_str);
    let Some(delay_id) = reply.delay_id() else {
        return Ok(Answer::Broken(match event_id {
            Some(id) => format!("sent at once: the reply carries event_id {id} and no delay_id"),
            None => format!(
                "answered success with neither delay_id nor event_id ({}): the widget cannot tell what \
                 happened",
                reply.describe()
            ),
        }));
    };
    let mut known = known_delay_id(&widget.user, event, delay_id).await?;
    if known.is_none() && label == "0" {
        // Scheduled with no delay, it may be on its way into the room: look again once there.
        let due_now = Due::new(reply.received, 0);
        if bob
            .wait_for(due_now.deadline(), |o| event.matches(o))
            .await?
            .is_some()
        {
            known = known_delay_id(&widget.user, event, delay_id).await?;
        }
    }
    match known {
        Some(how) => {
            ctx.note(format!("delay {label}: forwarded, delay_id {delay_id} {how}"));
            if label == "0" {
                ctx.note(
                    "the homeserver took a delay of 0, which 2024-10 allows and 2025-12 and 2026-07 do \
                     not (msc4140.errors.zero_delay judges the homeserver)",
                );
            }
            Ok(Answer::Scheduled)
        }
        // A delay of 0 is sent at once by a server that takes it, and one that does not tell the
        // sender the delay_id in `unsigned` (2026-07 asks it to) leaves no trace of it: no verdict.
        None if label == "0" => {
            ctx.note(format!(
                "delay 0: answered with delay_id {delay_id}, which the homeserver neither lists nor shows \
                 on a sent event"
            ));
            Ok(Answer::Scheduled)
        }
        None => Ok(Answer::Broken(format!(
            "the reply's delay_id {delay_id} is not scheduled on the homeserver (not in the listing, and \
             no sent event carries it)"
        ))),
    }
}

// MUST, as MSC4140's counterparts (msc4140.errors.negative_delay, zero_delay, non_integer_delay):
// a bad delay is refused, never taken as "no delay". An error reply is always right; a success
// must carry a delay_id the homeserver knows. Delay 0: 2024-10 sets no lower bound, 2025-12 and
// 2026-07 require "a positive non-zero number", so it may be refused (by the driver or the
// homeserver) or forwarded and scheduled; the note records which.
case! {
    name: malformed_delay,
    title: "A malformed delay (null, a string, negative, fractional, 0) is never sent at once nor answered with neither id",
    level: Must,
    spec: CLIENT_SENDS_DELAYED,
}
async fn malformed_delay(ctx: Ctx) -> CaseResult {
    let WidgetScene { widget, bob, room } = alice_widget_and_bob(&ctx).await?;
    let mut tried = Vec::new();
    for (label, delay) in malformed_delays() {
        let event = DelayedEvent::message(&room, &ctx.unique(&format!("delay {label}")));
        let mut data = Widget::send_event_data(&event, None);
        data["delay"] = delay;
        let reply = widget.request_or_silence("send_event", data).await?;
        let answer = answer_to(&ctx, &widget, &bob, label, &event, &reply).await?;
        tried.push((label, event, answer));
    }
    // Whatever was not scheduled must not have been sent either: counted once a plain message
    // sent after all of them has reached bob.
    let unscheduled: Vec<(&str, &DelayedEvent)> = tried
        .iter()
        .filter(|(_, _, answer)| !matches!(answer, Answer::Scheduled))
        .map(|(label, event, _)| (*label, event))
        .collect();
    let copies = ctx
        .copies_after_marker(&widget.user, &bob, &room, &unscheduled)
        .await?;
    let mut broken = Vec::new();
    for ((label, _, answer), sent) in tried
        .iter()
        .filter(|(_, _, answer)| !matches!(answer, Answer::Scheduled))
        .zip(copies.iter().map(|(_, n)| *n))
    {
        let sent_now = if sent > 0 {
            "; the event was sent at once (it reached bob)"
        } else {
            ""
        };
        match answer {
            Answer::Refused(how) if sent == 0 => ctx.note(format!("delay {label}: {how}")),
            Answer::Refused(how) => broken.push(format!("delay {label}: {how}{sent_now}")),
            Answer::Broken(what) => broken.push(format!("delay {label}: {what}{sent_now}")),
            Answer::Scheduled => {}
        }
    }
    check!(
        broken.is_empty(),
        "a malformed delay must be refused or scheduled, never sent at once nor answered with neither \
         id: {}",
        broken.join("; ")
    );
    Ok(())
}

// INFO: MSC4157 says nothing of encryption, and a delayed event is encrypted (or not) before the
// homeserver stores it, long before anyone can read it. Both drivers store it in cleartext today
// (matrix-rust-sdk PR #6973): the note shows what the homeserver received. What is judged is
// what every delayed send owes: scheduled, with a delay_id the homeserver lists.
case! {
    name: encrypted_room,
    title: "What the homeserver receives for a delayed message in an encrypted room (cleartext or not)",
    level: Info,
    spec: CLIENT_SENDS_DELAYED,
}
async fn encrypted_room(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    alice
        .put_state(
            &room,
            "m.room.encryption",
            "",
            json!({"algorithm": "m.megolm.v1.aes-sha2"}),
        )
        .await?
        .setup_step("turn on encryption in the room")?;
    let widget = ctx.widget_with(&alice, &room, &all_caps()).await?;
    let event = DelayedEvent::message(&room, &ctx.unique("in an encrypted room"));
    let (_reply, delay_id) = widget.schedule_ok(&event, LONG_DELAY_MS).await?;
    let Some(entry) = alice.listed_settled(&delay_id, true).await? else {
        fail!(
            "the reply's delay_id {delay_id} is not scheduled on the homeserver (not in the user's listing \
             of delayed events)"
        );
    };
    let stored_type = entry.raw.get("type").and_then(Value::as_str).unwrap_or("?");
    let content = entry.raw.get("content").cloned().unwrap_or(Value::Null);
    ctx.note(if content == event.content {
        format!("the homeserver received it in cleartext: type {stored_type}, the content as the widget sent it")
    } else if content.get("ciphertext").is_some() {
        format!(
            "the homeserver received it encrypted: type {stored_type}, algorithm {}",
            content.get("algorithm").unwrap_or(&Value::Null)
        )
    } else {
        format!("the homeserver received type {stored_type} with the content {content}")
    });
    Ok(())
}

/// MSC4407's capability to send sticky events (MSC4354) through the widget API.
const STICKY_CAPABILITY: &str = "org.matrix.msc4407.send.sticky_event";
const STICKY_DURATION_MS: i64 = 3_600_000;

// INFO: sticky events (MSC4354, in the widget API MSC4407) are not part of MSC4157. Element Call
// sends its membership as a delayed sticky event; what the drivers do with `sticky_duration_ms`
// beside `delay` is recorded. What is judged: the delay is honoured (scheduled, or an error reply),
// and the widget gets an answer: a driver that dies or stays silent leaves it with none.
case! {
    name: sticky_delayed_send,
    title: "What a delayed send with sticky_duration_ms becomes (an answer, never a dead driver)",
    level: Info,
    spec: CLIENT_SENDS_DELAYED,
}
async fn sticky_delayed_send(ctx: Ctx) -> CaseResult {
    let Scene { alice, room, .. } = ctx.alice_and_bob().await?;
    let mut asked = all_caps();
    asked.push(STICKY_CAPABILITY.to_string());
    let widget = ctx.widget_with(&alice, &room, &asked).await?;
    let event = DelayedEvent::message(&room, &ctx.unique("sticky and delayed"));
    let mut data = Widget::send_event_data(&event, Some(LONG_DELAY_MS));
    data["sticky_duration_ms"] = json!(STICKY_DURATION_MS);
    let reply = match widget.request_or_silence("send_event", data).await {
        Ok(reply) => reply,
        Err(stop) => match widget.stopped() {
            Some(why) => fail!(
                "the driver stopped on a delayed send_event with sticky_duration_ms, so the widget gets no \
                 answer: {why}"
            ),
            None => return Err(stop),
        },
    };
    let advertised = sticky_advertised(&ctx).await?;
    if reply.response.is_none() {
        fail!(
            "a delayed send_event with sticky_duration_ms got no answer ({}): the widget cannot tell \
             whether its event is scheduled",
            reply.describe()
        );
    }
    if reply.is_error() {
        ctx.note(format!("refused ({advertised}): {}", reply.describe()));
        return Ok(());
    }
    let Some(delay_id) = reply.delay_id().map(str::to_string) else {
        fail!(
            "a delayed send_event with sticky_duration_ms was not scheduled: the reply carries no delay_id \
             ({})",
            reply.describe()
        );
    };
    let Some(entry) = alice.listed_settled(&delay_id, true).await? else {
        fail!(
            "the reply's delay_id {delay_id} is not scheduled on the homeserver (not in the user's listing \
             of delayed events)"
        );
    };
    let sticky_fields: Vec<&String> = entry
        .raw
        .as_object()
        .map(|o| o.keys().filter(|k| k.contains("sticky")).collect())
        .unwrap_or_default();
    ctx.note(format!(
        "scheduled ({advertised}); the listing entry: type {}, {}",
        entry.raw.get("type").and_then(Value::as_str).unwrap_or("?"),
        if sticky_fields.is_empty() {
            "no sticky field (a sticky duration, if forwarded, is not shown)".to_string()
        } else {
            format!("sticky fields {sticky_fields:?}")
        }
    ));
    Ok(())
}

/// Whether the homeserver advertises MSC4354 (sticky events) in /versions, for the notes.
async fn sticky_advertised(ctx: &Ctx) -> Result<&'static str, Stop> {
    let versions = ctx
        .anonymous()
        .get("/_matrix/client/versions")
        .send()
        .await?;
    Ok(
        match versions
            .body
            .pointer("/unstable_features/org.matrix.msc4354")
        {
            Some(Value::Bool(true)) => "the homeserver advertises org.matrix.msc4354",
            _ => "the homeserver does not advertise org.matrix.msc4354 sticky events",
        },
    )
}

pub fn cases() -> Vec<Case> {
    cases![
        delayed_redaction,
        redacts_under_other_type,
        malformed_delay,
        encrypted_room,
        sticky_delayed_send,
    ]
}
