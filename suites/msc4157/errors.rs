//! errors: malformed or impossible update requests get an error reply; the homeserver's refusals
//! come back as error replies carrying the Matrix error; what a driver does with a request made
//! before the capability handshake is reported.

use super::texts::{TWO_CAPABILITIES, UPDATE_RESPONSE};
use super::{
    alice_widget_and_bob, check_error_reply, widget_schedules, WidgetScene, LONG_DELAY_MS,
};
use crate::prelude::*;
use crate::widget::{caps, Approval, Reply, Widget};

// Must, as `msc4140.errors.body_form_unknown_action`: an action no revision knows is refused.
case! {
    name: unknown_action,
    title: "An update with an unknown action gets an error reply",
    level: Must,
    spec: UPDATE_RESPONSE,
}
async fn unknown_action(ctx: Ctx) -> CaseResult {
    let WidgetScene { widget, .. } = alice_widget_and_bob(&ctx).await?;
    let (_event, scheduled) = widget_schedules(&ctx, &widget, "target", LONG_DELAY_MS).await?;
    let reply = widget.update(&scheduled.delay_id, "explode").await?;
    check_error_reply(&reply, "an update with the unknown action \"explode\"")?;
    ctx.note(match reply.matrix_errcode() {
        Some(errcode) => format!("forwarded to the homeserver, which refused it ({errcode})"),
        None => "refused by the driver".into(),
    });
    Ok(())
}

// Must, as MSC4140's refusals of malformed management requests (`msc4140.errors`).
case! {
    name: missing_delay_id,
    title: "An update without a delay_id gets an error reply",
    level: Must,
    spec: UPDATE_RESPONSE,
}
async fn missing_delay_id(ctx: Ctx) -> CaseResult {
    let WidgetScene { widget, .. } = alice_widget_and_bob(&ctx).await?;
    let reply = widget
        .update_as(caps::UPDATE_ACTION_UNSTABLE, json!({"action": "cancel"}))
        .await?;
    check_error_reply(&reply, "an update without a delay_id")
}

case! {
    name: unknown_delay_id,
    title: "Restart, cancel and send of an unknown delay_id get an error reply carrying the homeserver's error",
    level: Must,
    spec: UPDATE_RESPONSE,
}
/// MUST, as MSC4140's 404 `M_NOT_FOUND` for an unknown delay_id (`msc4140.errors.unknown_delay_id_*`):
/// Element Call reads that error from the reply to know its delayed leave is gone and schedule a
/// new one (element-call#3257); any other error is fatal to the call.
async fn unknown_delay_id(ctx: Ctx) -> CaseResult {
    let WidgetScene { widget, .. } = alice_widget_and_bob(&ctx).await?;
    let mut answers = Vec::new();
    for action in [Action::Restart, Action::Cancel, Action::Send] {
        let what = format!("{} of a delay_id that does not exist", action.as_str());
        let server = check_update_answer(&widget, "no_such_delay_id", action, &what).await?;
        answers.push(format!("{} → {}", action.as_str(), status_errcode(&server)));
    }
    let documented = answers.iter().all(|a| a.ends_with("404 M_NOT_FOUND"));
    ctx.note(format!(
        "the homeserver's answers, carried by the driver: {}{}",
        answers.join(", "),
        if documented {
            ""
        } else {
            " (every revision of MSC4140 says 404 M_NOT_FOUND; msc4140.errors.unknown_delay_id_* judge the homeserver)"
        }
    ));
    Ok(())
}

/// How long the send action may take to show the event it sent.
pub(super) const SENT_WITHIN: Duration = Duration::from_secs(10);

case! {
    name: updates_of_sent_event,
    title: "Restart and cancel of an event already sent get an error reply carrying the homeserver's error; a retried send gets its answer",
    level: Must,
    spec: UPDATE_RESPONSE,
}
/// MUST, as MSC4140's answers to actions on a sent event (`msc4140.cancellation.actions_on_sent_event`).
/// The homeserver's answer differs by revision: restart and cancel 404 `M_NOT_FOUND` (an event the
/// server forgot once sent, as Synapse does, and what matrix-js-sdk relies on) or 409 (2026-07
/// for cancel, the merged text); a retried send 200 (2025-12, 2026-07). Each is accepted and
/// noted: what is judged is that the driver carries it to the widget unchanged, since Element
/// Call's recovery depends on it ("not found" means schedule a new leave).
async fn updates_of_sent_event(ctx: Ctx) -> CaseResult {
    let WidgetScene { widget, .. } = alice_widget_and_bob(&ctx).await?;
    let alice = &widget.user;
    alice.start_sync().await?;
    let (event, scheduled) = widget_schedules(&ctx, &widget, "sent at once", LONG_DELAY_MS).await?;
    // Sent by the harness's own client: what is judged here is the driver's answers after.
    let sent_at = Instant::now();
    alice.manage_ok(&scheduled.delay_id, Action::Send).await?;
    if alice
        .wait_for(sent_at + SENT_WITHIN, |o| event.matches(o))
        .await?
        .is_none()
    {
        return Err(Stop::Error(format!(
            "the homeserver did not send the event within {} s of the send action, so there is no sent event to \
             update (msc4140.cancellation cases judge that)",
            SENT_WITHIN.as_secs()
        )));
    }
    let mut answers = Vec::new();
    for action in [Action::Restart, Action::Cancel, Action::Send] {
        let what = format!("{} of a delayed event already sent", action.as_str());
        let server = check_update_answer(&widget, &scheduled.delay_id, action, &what).await?;
        let documented = match (action, server.status, server.errcode()) {
            (Action::Send, 200, _) => "as 2025-12 and 2026-07",
            (_, 404, Some("M_NOT_FOUND")) => "an event forgotten once sent",
            (Action::Cancel, 409, Some("M_UNKNOWN")) => "as 2026-07 and the merged text",
            (Action::Cancel | Action::Restart, 409, _) => "as the merged text",
            _ => "which no revision prescribes (msc4140.cancellation.actions_on_sent_event judges the homeserver)",
        };
        answers.push(format!(
            "{} → {} ({documented})",
            action.as_str(),
            status_errcode(&server)
        ));
    }
    ctx.note(format!(
        "the homeserver's answers, carried by the driver: {}",
        answers.join(", ")
    ));
    Ok(())
}

/// "404 M_NOT_FOUND", "200".
fn status_errcode(resp: &Resp) -> String {
    match resp.errcode() {
        Some(errcode) => format!("{} {errcode}", resp.status),
        None => resp.status.to_string(),
    }
}

/// Asks the driver for `action` on `delay_id`, then the homeserver the same with the harness's
/// own client, and judges that the driver's reply says what the homeserver says (its answer is
/// returned): success for success; otherwise an error reply carrying, in `matrix_api_error`, the
/// homeserver's status and errcode, which is what Element Call acts on.
pub(super) async fn check_update_answer(
    widget: &Widget,
    delay_id: &str,
    action: Action,
    what: &str,
) -> Result<Resp, Stop> {
    let reply = widget.update(delay_id, action.as_str()).await?;
    let server = widget.user.manage(delay_id, action).await?;
    check_same_answer(&reply, &server, what)?;
    Ok(server)
}

/// The driver's reply must say what the homeserver answered to the same request (`server`):
/// success for success, else an error reply whose `matrix_api_error` has the same `http_status`
/// and `errcode`.
pub(super) fn check_same_answer(reply: &Reply, server: &Resp, what: &str) -> Result<(), Stop> {
    if server.is_success() {
        check!(
            reply.is_success(),
            "{what}: the homeserver answers the same request with success ({}), but {}",
            server.describe(),
            reply.describe()
        );
        return Ok(());
    }
    check_error_reply(reply, what)?;
    check!(
        reply.matrix_api_error().is_some(),
        "{what}: the error reply does not carry the Matrix error (error.matrix_api_error) the homeserver \
         answered ({}): {}",
        status_errcode(server),
        reply.describe()
    );
    check!(
        reply.matrix_http_status() == Some(u64::from(server.status)),
        "{what}: the error reply's matrix_api_error.http_status is {}, but the homeserver answered the same \
         request with HTTP {}: {}",
        reply
            .matrix_http_status()
            .map_or("missing".to_string(), |s| s.to_string()),
        server.status,
        reply.describe()
    );
    check!(
        reply.matrix_errcode() == server.errcode(),
        "{what}: the error reply's matrix_api_error.response.errcode is {:?}, but the homeserver answered the \
         same request with {:?}: {}",
        reply.matrix_errcode(),
        server.errcode(),
        reply.describe()
    );
    Ok(())
}

/// The refusal must reach the widget whole: `check_same_answer`, and every field of the
/// homeserver's error body (`org.matrix.msc4140.max_delay`, `retry_after_ms`, ...) and its
/// `Retry-After` header kept in `matrix_api_error`. Waits (`retry_after_ms`, `Retry-After`) may
/// differ by the time between the driver's request and the harness's, plus a second of rounding.
fn check_error_whole(reply: &Reply, server: &Resp, what: &str) -> Result<(), Stop> {
    check_same_answer(reply, server, what)?;
    let slack = server
        .received
        .saturating_duration_since(reply.requested_at)
        + Duration::from_secs(1);
    let carried = reply.matrix_response().cloned().unwrap_or(Value::Null);
    for (field, value) in server.body.as_object().into_iter().flatten() {
        let Some(kept) = carried.get(field) else {
            fail!(
                "{what}: the error reply's matrix_api_error.response drops the homeserver's field `{field}` \
                 ({value}): {}",
                reply.describe()
            );
        };
        let same = match (field.as_str(), kept.as_i64(), value.as_i64()) {
            ("retry_after_ms", Some(a), Some(b)) => a.abs_diff(b) as u128 <= slack.as_millis(),
            _ => kept == value,
        };
        check!(
            same,
            "{what}: the error reply's matrix_api_error.response changes the homeserver's field `{field}` from \
             {value} to {kept}: {}",
            reply.describe()
        );
    }
    if let Some(header) = server.header("retry-after") {
        let Some(kept) = reply.matrix_header("retry-after") else {
            fail!(
                "{what}: the error reply's matrix_api_error.http_headers drop the homeserver's Retry-After \
                 ({header}): {}",
                reply.describe()
            );
        };
        let same = match (kept.trim().parse::<u64>(), header.trim().parse::<u64>()) {
            (Ok(a), Ok(b)) => a.abs_diff(b) <= slack.as_secs() + 1,
            _ => kept == header,
        };
        check!(
            same,
            "{what}: the error reply's matrix_api_error.http_headers change the homeserver's Retry-After from \
             {header} to {kept}: {}",
            reply.describe()
        );
    }
    Ok(())
}

// Should: the text asks for "a widget error response", not for what it carries; Element Call
// reads `matrix_api_error`, and `over_max_delay_error_whole` judges the fields.
case! {
    name: homeserver_error_carried,
    title: "A homeserver refusal (delay over the maximum) comes back carrying the Matrix error",
    level: Should,
    spec: UPDATE_RESPONSE,
}
async fn homeserver_error_carried(ctx: Ctx) -> CaseResult {
    let WidgetScene { widget, room, .. } = alice_widget_and_bob(&ctx).await?;
    // Ten years: over any server's maximum delay.
    let too_long: i64 = 10 * 365 * 24 * 3600 * 1000;
    let event = DelayedEvent::message(&room, &ctx.unique("too late"));
    let reply = widget.send_event(&event, Some(too_long)).await?;
    if reply.is_success() {
        if let Some(id) = reply.delay_id() {
            widget.user.manage(id, Action::Cancel).await?;
        }
        skip!("the homeserver accepted a delay of ten years, so there is no error to carry");
    }
    let Some(errcode) = reply.matrix_errcode() else {
        fail!(
            "the homeserver refused a delay of ten years, but the driver's error reply does not carry \
             the Matrix error (error.matrix_api_error.response.errcode): {}",
            reply.describe()
        );
    };
    ctx.note(format!("the Matrix error carried: {errcode}"));
    Ok(())
}

/// Ten years: over any server's maximum delay.
const TOO_LONG_MS: i64 = 10 * 365 * 24 * 3600 * 1000;

case! {
    name: over_max_delay_error_whole,
    title: "A refusal of a delay over the maximum reaches the widget whole: status, errcode and the homeserver's fields",
    level: Must,
    spec: UPDATE_RESPONSE,
}
/// MUST, as MSC4140's over-maximum error and its `max_delay` (`msc4140.errors.delay_over_maximum`):
/// Element Call shortens its delay from `org.matrix.msc4140.max_delay` in the carried error
/// (matrix-js-sdk PR #4511), which older Synapse releases send; newer ones send no extra field.
async fn over_max_delay_error_whole(ctx: Ctx) -> CaseResult {
    let WidgetScene { widget, room, .. } = alice_widget_and_bob(&ctx).await?;
    let event = DelayedEvent::message(&room, &ctx.unique("too late"));
    let reply = widget.send_event(&event, Some(TOO_LONG_MS)).await?;
    let server = widget.user.schedule(&event, Delay::Ms(TOO_LONG_MS)).await?;
    for accepted in [reply.delay_id(), server.str_field("delay_id")]
        .into_iter()
        .flatten()
    {
        widget.user.manage(accepted, Action::Cancel).await?;
    }
    if server.is_success() {
        skip!("the homeserver accepts a delay of ten years, so there is no refusal to carry");
    }
    check_error_whole(
        &reply,
        &server,
        "a delayed send_event over the maximum delay",
    )?;
    ctx.note(format!(
        "carried whole: HTTP {} with {}",
        server.status, server.body
    ));
    Ok(())
}

/// The largest advertised per-user limit the case fills up (a request each).
const MAX_FILLABLE: i64 = 500;

/// Fills the widget user's quota of scheduled events with the harness's own client (a request
/// each), so that one more is over the limit. Skips where the limit is unknown or too large.
async fn fill_scheduled_limit(ctx: &Ctx, widget: &Widget, room: &str) -> Result<i64, Stop> {
    let Some(limit) = ctx.features().capability_field("max_scheduled") else {
        skip!("the homeserver does not advertise max_scheduled, so the harness cannot know where its limit is")
    };
    if limit > MAX_FILLABLE {
        skip!("the advertised limit of {limit} scheduled events is more than this case fills up ({MAX_FILLABLE})");
    }
    for n in 0..limit {
        let filler = DelayedEvent::message(room, &format!("filler {n}"));
        widget.user.schedule_ok(&filler, LONG_DELAY_MS).await?;
    }
    Ok(limit)
}

// Should, as `homeserver_error_carried`.
case! {
    name: limit_error_carried,
    title: "A homeserver refusal (the per-user limit) comes back carrying the Matrix error",
    level: Should,
    spec: UPDATE_RESPONSE,
}
async fn limit_error_carried(ctx: Ctx) -> CaseResult {
    let WidgetScene { widget, room, .. } = alice_widget_and_bob(&ctx).await?;
    // The quota filled by the harness's own client, as the same user; one more through the widget.
    let limit = fill_scheduled_limit(&ctx, &widget, &room).await?;
    let event = DelayedEvent::message(&room, &ctx.unique("one too many"));
    let data = Widget::send_event_data(&event, Some(LONG_DELAY_MS));
    // Silence is a verdict here: a driver that retries the refusal (429) never answers in time.
    let reply = widget.request_or_silence("send_event", data).await?;
    if reply.response.is_none() {
        fail!(
            "over the per-user limit, the driver did not reply at all ({}): the homeserver's refusal \
             (429 with Retry-After) did not come back to the widget",
            reply.describe()
        );
    }
    if reply.is_success() {
        skip!(
            "the homeserver accepted a delayed event over its advertised limit of {limit}, so there is no \
             error to carry (msc4140.limits cases judge that)"
        );
    }
    let Some(errcode) = reply.matrix_errcode() else {
        fail!(
            "the homeserver refused a delayed event over the per-user limit, but the driver's error reply \
             does not carry the Matrix error (error.matrix_api_error.response.errcode): {}",
            reply.describe()
        );
    };
    ctx.note(format!("the Matrix error carried: {errcode}"));
    Ok(())
}

case! {
    name: limit_error_whole,
    title: "A refusal over the per-user limit (429) reaches the widget whole: status, retry_after_ms and Retry-After",
    level: Must,
    spec: UPDATE_RESPONSE,
}
/// MUST, as MSC4140's 429 `M_LIMIT_EXCEEDED` with `Retry-After` (`msc4140.limits.retry_after_until_next_send`):
/// Element Call retries after the wait the carried error gives (`retry_after_ms` or the
/// `Retry-After` header in `http_headers`, matrix-widget-api's error shape), and gives up otherwise.
async fn limit_error_whole(ctx: Ctx) -> CaseResult {
    let WidgetScene { widget, room, .. } = alice_widget_and_bob(&ctx).await?;
    let limit = fill_scheduled_limit(&ctx, &widget, &room).await?;
    let event = DelayedEvent::message(&room, &ctx.unique("one too many"));
    let data = Widget::send_event_data(&event, Some(LONG_DELAY_MS));
    // Silence is a verdict here: a driver that retries the refusal (429) never answers in time.
    let reply = widget.request_or_silence("send_event", data).await?;
    let server = widget
        .user
        .schedule(&event, Delay::Ms(LONG_DELAY_MS))
        .await?;
    if server.is_success() {
        widget
            .user
            .manage(
                server.str_field("delay_id").unwrap_or_default(),
                Action::Cancel,
            )
            .await?;
        skip!(
            "the homeserver accepts a delayed event over its advertised limit of {limit}, so there is no \
             refusal to carry (msc4140.limits cases judge that)"
        );
    }
    if reply.response.is_none() {
        fail!(
            "over the per-user limit, the driver did not reply at all ({}): the homeserver's refusal ({}) did \
             not come back to the widget",
            reply.describe(),
            server.describe()
        );
    }
    check_error_whole(
        &reply,
        &server,
        "a delayed send_event over the per-user limit",
    )?;
    ctx.note(format!(
        "carried whole: HTTP {} with {} and Retry-After {}",
        server.status,
        server.body,
        server.header("retry-after").unwrap_or("(none)")
    ));
    Ok(())
}

// Info: no text says what a driver answers before the handshake; only nothing scheduled is judged.
case! {
    name: before_handshake,
    title: "What a driver does with a send_event before the capability handshake",
    level: Info,
    spec: TWO_CAPABILITIES,
}
async fn before_handshake(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    alice.start_sync().await?;
    let widget = ctx.widget(&alice, &room, Approval::All).await?;
    let event = DelayedEvent::message(&room, &ctx.unique("too early"));
    let reply = widget
        .request_or_silence(
            "send_event",
            Widget::send_event_data(&event, Some(LONG_DELAY_MS)),
        )
        .await?;
    ctx.note(match (&reply.response, reply.is_error()) {
        (None, _) => "a send_event before the capability handshake gets no reply".to_string(),
        (Some(_), true) => {
            "a send_event before the capability handshake gets an error reply".into()
        }
        (Some(r), false) => format!("a send_event before the capability handshake succeeded: {r}"),
    });
    let scheduled = alice
        .list()
        .await?
        .into_iter()
        .any(|info| info.raw.get("content") == Some(&event.content));
    check!(
        !scheduled,
        "a send_event made before any capability was negotiated was scheduled on the homeserver"
    );
    Ok(())
}

pub fn cases() -> Vec<Case> {
    cases![
        unknown_action,
        missing_delay_id,
        unknown_delay_id,
        updates_of_sent_event,
        homeserver_error_carried,
        over_max_delay_error_whole,
        limit_error_carried,
        limit_error_whole,
        before_handshake,
    ]
}
