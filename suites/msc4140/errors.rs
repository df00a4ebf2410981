//! errors: bad delays, unknown delay ids, bad actions, malformed bodies, unknown rooms and invalid
//! content get the status and errcode the texts prescribe (or the Client-Server API's standard
//! ones where the texts say "standard error response"), and schedule nothing.

use super::texts::{
    BODY_ACTION, DELAY_POSITIVE, MAX_DELAY_MERGED, NOT_FOUND, SPLIT_ACTION, STANDARD_ERRORS,
};
use super::LONG_DELAY_MS;
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

async fn rejects_delays(
    ctx: Ctx,
    delays: &'static [&'static str],
    what: &'static str,
) -> CaseResult {
    let raw: Vec<Delay> = delays.iter().map(|d| Delay::Raw(d)).collect();
    for (text, resp) in delays.iter().zip(schedule_with(&ctx, &raw).await?) {
        expect_error(
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

async fn over_max(ctx: Ctx) -> CaseResult {
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

async fn unknown_delay_id(ctx: Ctx, action: Action) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let resp = alice
        .manage(&format!("dec-unknown-{}", new_txn_id()), action)
        .await?;
    expect_error(
        &resp,
        &format!("the {} action on an unknown delay_id", action.as_str()),
        &[404],
        &["M_NOT_FOUND"],
    )
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
    expect_error(
        &resp,
        &format!("a management request with {what} ({body})"),
        &[400],
        errcodes,
    )?;
    check!(
        alice.listed(&id).await?.is_some(),
        "after a rejected management request with {what}, the event is no longer scheduled"
    );
    Ok(())
}

async fn split_unknown_action(ctx: Ctx) -> CaseResult {
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
    expect_error(
        &resp,
        "the unknown action path .../explode",
        &[400, 404, 405],
        &["M_UNRECOGNIZED", "M_INVALID_PARAM", "M_NOT_FOUND"],
    )?;
    check!(
        alice.listed(&id).await?.is_some(),
        "after an unknown action, the event is no longer scheduled"
    );
    Ok(())
}

async fn malformed_scheduling_body(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let event = DelayedEvent::message(&room, "unused");
    let resp = alice
        .schedule_raw_body(&event, LONG_DELAY_MS, "{not json")
        .await?;
    expect_error(
        &resp,
        "scheduling with a malformed JSON body",
        &[400],
        &["M_NOT_JSON", "M_BAD_JSON"],
    )
}

async fn invalid_content(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let event = DelayedEvent::message(&room, "unused");
    let resp = alice
        .schedule_raw_body(&event, LONG_DELAY_MS, "[1, 2, 3]")
        .await?;
    expect_error(
        &resp,
        "scheduling with content that is a JSON array, not an object",
        &[400],
        &["M_BAD_JSON", "M_NOT_JSON"],
    )
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
    expect_error(
        &resp,
        "scheduling into a room that does not exist",
        &[403, 404],
        &["M_FORBIDDEN", "M_NOT_FOUND"],
    )
}

pub fn cases() -> Vec<Case> {
    let mut cases = vec![
        Case::new(
            "msc4140.errors.negative_delay",
            "A negative delay is rejected with 400",
            Level::Must,
            DELAY_POSITIVE,
            |ctx| rejects_delays(ctx, &["-1", "-1000"], "a negative"),
        ),
        Case::new(
            "msc4140.errors.zero_delay",
            "A zero delay is rejected with 400",
            Level::Must,
            DELAY_POSITIVE,
            |ctx| rejects_delays(ctx, &["0"], "a zero"),
        )
        .revisions(&[Rev::Dec2025, Rev::Jul2026]),
        Case::new(
            "msc4140.errors.non_integer_delay",
            "A delay that is not an integer is rejected with 400",
            Level::Must,
            DELAY_POSITIVE,
            |ctx| rejects_delays(ctx, &["1.5", "abc"], "a non-integer"),
        ),
        Case::new(
            "msc4140.errors.delay_over_maximum",
            "A delay over the server's maximum gets the error the revision prescribes",
            Level::Must,
            MAX_DELAY_MERGED,
            over_max,
        )
        .revisions(&[Rev::Oct2024, Rev::Dec2025, Rev::Jul2026, Rev::Merged2026]),
    ];
    for (action, id, title) in [
        (
            Action::Send,
            "msc4140.errors.unknown_delay_id_send",
            "Sending an unknown delay_id answers 404 M_NOT_FOUND",
        ),
        (
            Action::Cancel,
            "msc4140.errors.unknown_delay_id_cancel",
            "Cancelling an unknown delay_id answers 404 M_NOT_FOUND",
        ),
        (
            Action::Restart,
            "msc4140.errors.unknown_delay_id_restart",
            "Restarting an unknown delay_id answers 404 M_NOT_FOUND",
        ),
    ] {
        cases.push(
            Case::new(id, title, Level::Must, NOT_FOUND, move |ctx| {
                unknown_delay_id(ctx, action)
            })
            .revisions(&[Rev::Dec2025, Rev::Jul2026]),
        );
    }
    for (id, title, body, what, errcodes) in [
        (
            "msc4140.errors.body_form_missing_action",
            "A body-form management request without an action is rejected with 400",
            "{}",
            "no action",
            &["M_MISSING_PARAM", "M_BAD_JSON", "M_INVALID_PARAM"][..],
        ),
        (
            "msc4140.errors.body_form_unknown_action",
            "A body-form management request with an unknown action is rejected with 400",
            r#"{"action": "explode"}"#,
            "an unknown action",
            &["M_INVALID_PARAM", "M_BAD_JSON"][..],
        ),
        (
            "msc4140.errors.body_form_malformed_action",
            "A body-form management request whose action is not a string is rejected with 400",
            r#"{"action": 5}"#,
            "a non-string action",
            &["M_INVALID_PARAM", "M_BAD_JSON"][..],
        ),
        (
            "msc4140.errors.body_form_malformed_json",
            "A body-form management request with malformed JSON is rejected with 400 M_NOT_JSON",
            "{not json",
            "malformed JSON",
            &["M_NOT_JSON", "M_BAD_JSON"][..],
        ),
    ] {
        cases.push(
            Case::new(id, title, Level::Must, BODY_ACTION, move |ctx| {
                body_form_rejects(ctx, body, what, errcodes)
            })
            .needs(&[Need::BodyForm])
            .revisions(&[Rev::Oct2024]),
        );
    }
    cases.extend([
        Case::new(
            "msc4140.errors.split_path_unknown_action",
            "An unknown action path is rejected and changes nothing",
            Level::Must,
            SPLIT_ACTION,
            split_unknown_action,
        )
        .needs(&[Need::SplitForm])
        .revisions(&[Rev::Dec2025, Rev::Jul2026]),
        Case::new(
            "msc4140.errors.malformed_json_scheduling",
            "Scheduling with a malformed JSON body is rejected with 400 M_NOT_JSON",
            Level::Must,
            STANDARD_ERRORS,
            malformed_scheduling_body,
        ),
        Case::new(
            "msc4140.errors.invalid_content",
            "Scheduling with content that is not a JSON object is rejected with 400",
            Level::Must,
            STANDARD_ERRORS,
            invalid_content,
        ),
        Case::new(
            "msc4140.errors.unknown_room",
            "Scheduling into a room that does not exist is refused",
            Level::Must,
            STANDARD_ERRORS,
            unknown_room,
        ),
    ]);
    cases
}
