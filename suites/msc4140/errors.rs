//! errors: bad delays, unknown delay ids, bad actions, malformed bodies, unknown rooms and invalid
//! content get the status and errcode the texts prescribe (or the Client-Server API's standard
//! ones where the texts say "standard error response"), and schedule nothing.

use super::texts::{
    BODY_ACTION, DELAY_POSITIVE, ENDPOINT_BODY, ENDPOINT_CONTENT, ENDPOINT_STATE_KEY,
    INVALID_CONTENT, MAX_DELAY_MERGED, NOT_FOUND, SINGLE_LOOKUP_OTHERS, SPLIT_ACTION,
    STANDARD_ERRORS,
};
use super::LONG_DELAY_MS;
use crate::api::{ApiForm, ScheduleForm};
use crate::client::new_txn_id;
use crate::prelude::*;

/// Errcodes the Client-Server API uses for a parameter or field with a wrong value.
const BAD_VALUE: [&str; 2] = ["M_INVALID_PARAM", "M_BAD_JSON"];

/// Given a user in their own room, tries to schedule a message with each of `delays`.
async fn schedule_with(ctx: &Ctx, delays: &[Delay]) -> Result<Vec<Resp>, Stop> {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let mut answers = Vec::new();
    for delay in delays {
        answers.push(
            alice
                .schedule(
                    &DelayedEvent::message(&room, &ctx.unique("bad delay")),
                    delay.clone(),
                )
                .await?,
        );
    }
    Ok(answers)
}

case! {
    name: negative_delay,
    title: "A negative delay is rejected with 400",
    level: Must,
    spec: DELAY_POSITIVE,
    body: |ctx| rejects_delays(ctx, &["-1", "-1000"], "a negative"),
}

case! {
    name: zero_delay,
    title: "A zero delay is rejected with 400",
    level: Must,
    spec: DELAY_POSITIVE,
    body: |ctx| rejects_delays(ctx, &["0"], "a zero"),
    revisions: &[Rev::Dec2025, Rev::Jul2026],
}

case! {
    name: non_integer_delay,
    title: "A delay that is not an integer is rejected with 400",
    level: Must,
    spec: DELAY_POSITIVE,
    body: |ctx| rejects_delays(ctx, &["1.5", "abc"], "a non-integer"),
}

async fn rejects_delays(
    ctx: Ctx,
    delays: &'static [&'static str],
    what: &'static str,
) -> CaseResult {
    let raw: Vec<Delay> = delays.iter().map(|d| Delay::Raw(d)).collect();
    for (text, resp) in delays.iter().zip(schedule_with(&ctx, &raw).await?) {
        check_error(
            &resp,
            &format!("scheduling with {what} delay {text}"),
            &[400],
            &BAD_VALUE,
        )?;
    }
    Ok(())
}

/// The largest delay the server says it accepts, or one beyond any sane maximum (40 days; the
/// 2024-10 text says servers should not allow more than a month).
fn over_maximum(ctx: &Ctx) -> i64 {
    match ctx.features().capability_field("max_delay_ms") {
        Some(max) => max + 1,
        None => 40 * 24 * 3600 * 1000,
    }
}

case! {
    name: delay_over_maximum,
    title: "A delay over the server's maximum gets the error the revision prescribes",
    level: Must,
    spec: MAX_DELAY_MERGED,
    revisions: &[Rev::Oct2024, Rev::Dec2025, Rev::Jul2026, Rev::Merged2026],
}
async fn delay_over_maximum(ctx: Ctx) -> CaseResult {
    let delay = over_maximum(&ctx);
    let resp = schedule_with(&ctx, &[Delay::Ms(delay)]).await?.remove(0);
    let mut matched = Vec::new();
    if resp.status == 403 && resp.errcode() == Some("M_FORBIDDEN") {
        matched.push(Rev::Jul2026);
    }
    let stable_form = resp.errcode() == Some("M_MAX_DELAY_EXCEEDED");
    let unstable_form = resp.errcode() == Some("M_UNKNOWN")
        && resp.body.get("org.matrix.msc4140.errcode") == Some(&json!("M_MAX_DELAY_EXCEEDED"));
    if resp.status == 400 && (stable_form || unstable_form) {
        matched.extend([Rev::Oct2024, Rev::Dec2025]);
    }
    // The merged text (reconstructed from Synapse PR #20156): 400 M_DELAY_TOO_LARGE, or its
    // unstable name while the server serves the unstable prefix.
    if resp.status == 400
        && matches!(
            resp.errcode(),
            Some("M_DELAY_TOO_LARGE" | "ORG.MATRIX.MSC4140_DELAY_TOO_LARGE")
        )
    {
        matched.push(Rev::Merged2026);
    }
    check!(
        !matched.is_empty(),
        "a delay of {delay} ms, over the maximum, should get 400 M_DELAY_TOO_LARGE (merged 2026-09-08; unstable: \
         ORG.MATRIX.MSC4140_DELAY_TOO_LARGE), 403 M_FORBIDDEN (2026-07) or 400 M_MAX_DELAY_EXCEEDED (2024-10, \
         2025-12; unstable: M_UNKNOWN with org.matrix.msc4140.errcode), but {}",
        resp.describe()
    );
    ctx.matched(&matched);
    Ok(())
}

case! {
    name: unknown_delay_id_send,
    title: "Sending an unknown delay_id answers 404 M_NOT_FOUND",
    level: Must,
    spec: NOT_FOUND,
    body: |ctx| unknown_delay_id(ctx, Action::Send),
    revisions: &[Rev::Dec2025, Rev::Jul2026],
}

case! {
    name: unknown_delay_id_cancel,
    title: "Cancelling an unknown delay_id answers 404 M_NOT_FOUND",
    level: Must,
    spec: NOT_FOUND,
    body: |ctx| unknown_delay_id(ctx, Action::Cancel),
    revisions: &[Rev::Dec2025, Rev::Jul2026],
}

case! {
    name: unknown_delay_id_restart,
    title: "Restarting an unknown delay_id answers 404 M_NOT_FOUND",
    level: Must,
    spec: NOT_FOUND,
    body: |ctx| unknown_delay_id(ctx, Action::Restart),
    revisions: &[Rev::Dec2025, Rev::Jul2026],
}

async fn unknown_delay_id(ctx: Ctx, action: Action) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let resp = alice
        .manage(&format!("dec-unknown-{}", new_txn_id()), action)
        .await?;
    check_error(
        &resp,
        &format!("the {} action on an unknown delay_id", action.as_str()),
        &[404],
        &["M_NOT_FOUND"],
    )
}

case! {
    name: unknown_delay_id_lookup,
    title: "Looking up an unknown delay_id answers 404 M_NOT_FOUND",
    level: Must,
    spec: SINGLE_LOOKUP_OTHERS,
    needs: &[Need::SingleLookup],
    revisions: &[Rev::Jul2026],
}
async fn unknown_delay_id_lookup(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let resp = alice
        .lookup(&format!("dec-unknown-{}", new_txn_id()), true)
        .await?;
    check_error(
        &resp,
        "looking up an unknown delay_id",
        &[404],
        &["M_NOT_FOUND"],
    )
}

case! {
    name: body_form_missing_action,
    title: "A body-form management request without an action is rejected with 400",
    level: Must,
    spec: BODY_ACTION,
    body: |ctx| body_form_rejects(
        ctx,
        "{}",
        "no action",
        &["M_MISSING_PARAM", "M_BAD_JSON", "M_INVALID_PARAM"],
    ),
    needs: &[Need::BodyForm],
    revisions: &[Rev::Oct2024],
}

case! {
    name: body_form_unknown_action,
    title: "A body-form management request with an unknown action is rejected with 400",
    level: Must,
    spec: BODY_ACTION,
    body: |ctx| body_form_rejects(
        ctx,
        r#"{"action": "explode"}"#,
        "an unknown action",
        &["M_INVALID_PARAM", "M_BAD_JSON"],
    ),
    needs: &[Need::BodyForm],
    revisions: &[Rev::Oct2024],
}

case! {
    name: body_form_malformed_action,
    title: "A body-form management request whose action is not a string is rejected with 400",
    level: Must,
    spec: BODY_ACTION,
    body: |ctx| body_form_rejects(
        ctx,
        r#"{"action": 5}"#,
        "a non-string action",
        &["M_INVALID_PARAM", "M_BAD_JSON"],
    ),
    needs: &[Need::BodyForm],
    revisions: &[Rev::Oct2024],
}

case! {
    name: body_form_without_body,
    title: "A body-form management request without a body is rejected with 400",
    level: Must,
    spec: BODY_ACTION,
    body: |ctx| body_form_rejects(
        ctx,
        "",
        "no body at all",
        &["M_NOT_JSON", "M_BAD_JSON", "M_MISSING_PARAM"],
    ),
    needs: &[Need::BodyForm],
    revisions: &[Rev::Oct2024],
}

case! {
    name: body_form_malformed_json,
    title: "A body-form management request with malformed JSON is rejected with 400 M_NOT_JSON",
    level: Must,
    spec: BODY_ACTION,
    body: |ctx| body_form_rejects(ctx, "{not json", "malformed JSON", &["M_NOT_JSON", "M_BAD_JSON"]),
    needs: &[Need::BodyForm],
    revisions: &[Rev::Oct2024],
}

/// Given a scheduled event, sends a body-form management request with `body` and expects a 400
/// with one of `errcodes`; the event must stay scheduled.
async fn body_form_rejects(
    ctx: Ctx,
    body: &'static str,
    what: &'static str,
    errcodes: &'static [&'static str],
) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let id = alice
        .schedule_ok(
            &DelayedEvent::message(&room, &ctx.unique("kept")),
            LONG_DELAY_MS,
        )
        .await?
        .delay_id;
    let resp = alice.manage_body_raw(&id, body).await?;
    check_error(
        &resp,
        &format!("a management request with {what} ({body})"),
        &[400],
        errcodes,
    )?;
    check!(
        alice.listed_settled(&id, true).await?.is_some(),
        "after a rejected management request with {what}, the event is no longer scheduled"
    );
    Ok(())
}

case! {
    name: split_path_unknown_action,
    title: "An unknown action path is rejected and changes nothing",
    level: Must,
    spec: SPLIT_ACTION,
    needs: &[Need::SplitForm],
    revisions: &[Rev::Dec2025, Rev::Jul2026],
}
async fn split_path_unknown_action(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let id = alice
        .schedule_ok(
            &DelayedEvent::message(&room, &ctx.unique("kept")),
            LONG_DELAY_MS,
        )
        .await?
        .delay_id;
    let resp = alice.manage_split_raw(&id, "explode").await?;
    check_error(
        &resp,
        "the unknown action path .../explode",
        &[400, 404, 405],
        &["M_UNRECOGNIZED", "M_INVALID_PARAM", "M_NOT_FOUND"],
    )?;
    check!(
        alice.listed_settled(&id, true).await?.is_some(),
        "after an unknown action, the event is no longer scheduled"
    );
    Ok(())
}

/// Errcodes for a request body that lacks a required field or has one of the wrong type: the
/// Client-Server API's for a missing parameter or a body that is JSON but not as required.
const BAD_BODY: [&str; 3] = ["M_MISSING_PARAM", "M_BAD_JSON", "M_INVALID_PARAM"];

case! {
    name: endpoint_missing_delay_ms,
    title: "The scheduling endpoint rejects a body without delay_ms with 400 and schedules nothing",
    level: Must,
    spec: DELAY_POSITIVE,
    body: |ctx| endpoint_rejects(ctx, Some(r#"{"content": {"msgtype": "m.text", "body": "no delay"}}"#), "without delay_ms", &BAD_BODY),
    needs: &[Need::ScheduleEndpoint],
    revisions: &[Rev::Jul2026],
}

case! {
    name: endpoint_missing_content,
    title: "The scheduling endpoint rejects a body without content with 400 and schedules nothing",
    level: Must,
    spec: ENDPOINT_CONTENT,
    body: |ctx| endpoint_rejects(ctx, Some(r#"{"delay_ms": 600000}"#), "without content", &BAD_BODY),
    needs: &[Need::ScheduleEndpoint],
    revisions: &[Rev::Jul2026],
}

case! {
    name: endpoint_state_key_not_a_string,
    title: "The scheduling endpoint rejects a state_key that is not a string with 400 and schedules nothing",
    level: Must,
    spec: ENDPOINT_STATE_KEY,
    body: |ctx| endpoint_rejects(
        ctx,
        Some(r#"{"delay_ms": 600000, "state_key": 5, "content": {"topic": "not a string key"}}"#),
        "a state_key that is a number",
        &BAD_BODY,
    ),
    needs: &[Need::ScheduleEndpoint],
    revisions: &[Rev::Jul2026],
}

case! {
    name: endpoint_without_body,
    title: "The scheduling endpoint rejects a request without a body with 400 and schedules nothing",
    level: Must,
    spec: ENDPOINT_BODY,
    body: |ctx| endpoint_rejects(ctx, None, "no body at all", &["M_NOT_JSON", "M_BAD_JSON", "M_MISSING_PARAM"]),
    needs: &[Need::ScheduleEndpoint],
    revisions: &[Rev::Jul2026],
}

/// Given a user in their own room, sends the dedicated scheduling endpoint `body` (or none) and
/// expects a 400 with one of `errcodes`; the user must have nothing scheduled afterwards.
async fn endpoint_rejects(
    ctx: Ctx,
    body: Option<&'static str>,
    what: &'static str,
    errcodes: &'static [&'static str],
) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    // Whatever form the run schedules in, this case asks the endpoint.
    let endpoint = alice.in_form(ApiForm {
        schedule: ScheduleForm::Endpoint,
        ..ctx.form()
    });
    // A state event type, so that a state_key makes sense.
    let resp = endpoint
        .schedule_endpoint_raw(&room, "m.room.topic", body)
        .await?;
    let scheduled = alice.list().await?;
    check!(
        scheduled.is_empty(),
        "a scheduling request {what} ({}) was {}, yet the user now has {} delayed event(s) scheduled: {}",
        body.unwrap_or("no body"),
        if resp.is_success() { "accepted" } else { "refused" },
        scheduled.len(),
        scheduled.iter().map(|i| i.raw.to_string()).collect::<Vec<_>>().join(", ")
    );
    check_error(
        &resp,
        &format!(
            "a scheduling request {what} ({})",
            body.unwrap_or("no body")
        ),
        &[400],
        errcodes,
    )
}

case! {
    name: malformed_json_scheduling,
    title: "Scheduling with a malformed JSON body is rejected with 400 M_NOT_JSON",
    level: Must,
    spec: STANDARD_ERRORS,
}
async fn malformed_json_scheduling(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let event = DelayedEvent::message(&room, "unused");
    let resp = alice
        .schedule_raw_body(&event, LONG_DELAY_MS, "{not json")
        .await?;
    check_error(
        &resp,
        "scheduling with a malformed JSON body",
        &[400],
        &["M_NOT_JSON", "M_BAD_JSON"],
    )
}

case! {
    name: invalid_content,
    title: "Scheduling with content that is not a JSON object is rejected with 400",
    level: Must,
    spec: INVALID_CONTENT,
}
async fn invalid_content(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let event = DelayedEvent::message(&room, "unused");
    let resp = alice
        .schedule_raw_body(&event, LONG_DELAY_MS, "[1, 2, 3]")
        .await?;
    check_error(
        &resp,
        "scheduling with content that is a JSON array, not an object",
        &[400],
        &["M_BAD_JSON", "M_NOT_JSON", "M_INVALID_PARAM"],
    )?;
    ctx.note(format!(
        "content that is not an object got {} {}",
        resp.status,
        resp.errcode().unwrap_or("")
    ));
    Ok(())
}

case! {
    name: unknown_room,
    title: "Scheduling into a room that does not exist is refused",
    level: Must,
    spec: STANDARD_ERRORS,
}
async fn unknown_room(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let server = alice
        .id()
        .split_once(':')
        .map(|(_, s)| s.to_string())
        .unwrap_or_default();
    let event = DelayedEvent::message(
        &format!("!dec-unknown-{}:{server}", new_txn_id()),
        "nowhere",
    );
    let resp = alice.schedule(&event, Delay::Ms(LONG_DELAY_MS)).await?;
    check_error(
        &resp,
        "scheduling into a room that does not exist",
        &[403, 404],
        &["M_FORBIDDEN", "M_NOT_FOUND"],
    )
}

pub fn cases() -> Vec<Case> {
    cases![
        negative_delay,
        zero_delay,
        non_integer_delay,
        delay_over_maximum,
        unknown_delay_id_send,
        unknown_delay_id_cancel,
        unknown_delay_id_restart,
        unknown_delay_id_lookup,
        body_form_missing_action,
        body_form_unknown_action,
        body_form_malformed_action,
        body_form_without_body,
        body_form_malformed_json,
        split_path_unknown_action,
        endpoint_missing_delay_ms,
        endpoint_missing_content,
        endpoint_state_key_not_a_string,
        endpoint_without_body,
        malformed_json_scheduling,
        invalid_content,
        unknown_room,
    ]
}
