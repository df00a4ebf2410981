//! unstable_prefix: the feature is advertised under its unstable name while the MSC is unstable.

use super::texts::{STABLE_FLAG, VERSIONS_FLAG};
use super::LONG_DELAY_MS;
use crate::api::{ApiForm, ManageForm, Prefix, ScheduleForm, UNSTABLE_FEATURE};
use crate::prelude::*;

/// The flag that says the stable endpoints may be used.
const STABLE_FEATURE: &str = "org.matrix.msc4140.stable";

case! {
    name: advertised_in_versions,
    title: "/versions advertises org.matrix.msc4140 as an unstable feature",
    level: Must,
    spec: VERSIONS_FLAG,
}
async fn advertised_in_versions(ctx: Ctx) -> CaseResult {
    let resp = ctx
        .anonymous()
        .get("/_matrix/client/versions")
        .without_token()
        .send()
        .await?;
    let features = resp.body.get("unstable_features");
    let flag = features.and_then(|f| f.get(UNSTABLE_FEATURE));
    let stable = features.and_then(|f| f.get("org.matrix.msc4140.stable")) == Some(&json!(true));
    check!(
        flag == Some(&json!(true)) || stable,
        "/versions should advertise unstable_features[\"{UNSTABLE_FEATURE}\"] = true (or org.matrix.msc4140.stable), \
         but it is {}: {}",
        flag.map(Value::to_string).unwrap_or_else(|| "absent".into()),
        resp.describe()
    );
    Ok(())
}

// The text says a server "should" advertise the flag; one that does tells clients the stable
// endpoints work, so a flag without them is judged as a broken promise (MUST).
case! {
    name: stable_endpoints_once_advertised,
    title: "Once org.matrix.msc4140.stable is advertised, the stable endpoints schedule, list and manage",
    level: Must,
    spec: STABLE_FLAG,
    revisions: &[Rev::Dec2025, Rev::Jul2026],
}
async fn stable_endpoints_once_advertised(ctx: Ctx) -> CaseResult {
    let versions = ctx
        .anonymous()
        .get("/_matrix/client/versions")
        .without_token()
        .send()
        .await?
        .setup_step("read /versions")?;
    let flag = versions
        .body
        .get("unstable_features")
        .and_then(|f| f.get(STABLE_FEATURE));
    if flag != Some(&json!(true)) {
        skip!("the server does not advertise {STABLE_FEATURE} in /versions");
    }
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let event = DelayedEvent::message(&room, &ctx.unique("stable"));
    let stable = |schedule| ApiForm {
        schedule,
        manage: ManageForm::SplitPath,
        prefix: Prefix::Stable,
    };
    // Scheduling: the dedicated endpoint (2026-07), else the `delay` query parameter (2025-12).
    let mut answers = Vec::new();
    let mut scheduled = None;
    for (schedule, revision) in [
        (ScheduleForm::Endpoint, Rev::Jul2026),
        (ScheduleForm::QueryParam, Rev::Dec2025),
    ] {
        let user = alice.in_form(stable(schedule));
        let resp = user.schedule(&event, Delay::Ms(LONG_DELAY_MS)).await?;
        match resp.str_field("delay_id") {
            Some(id) if resp.status == 200 => {
                scheduled = Some((user, id.to_string(), revision));
                break;
            }
            _ => answers.push(resp.describe()),
        }
    }
    let Some((user, id, revision)) = scheduled else {
        fail!(
            "the server advertises {STABLE_FEATURE}, but neither stable form of scheduling works: {}",
            answers.join("; ")
        )
    };
    let listing = user.list_raw(true).await?;
    check!(
        listing.is_success() && user.listed_settled(&id, true).await?.is_some(),
        "the server advertises {STABLE_FEATURE}, but the stable listing does not show the event scheduled there: {}",
        listing.describe()
    );
    let cancel = user.manage(&id, Action::Cancel).await?;
    check!(
        cancel.is_success() && user.listed_settled(&id, false).await?.is_none(),
        "the server advertises {STABLE_FEATURE}, but the stable cancel of an event did not cancel it: {}",
        cancel.describe()
    );
    ctx.matched(&[revision]);
    Ok(())
}

pub fn cases() -> Vec<Case> {
    cases![advertised_in_versions, stable_endpoints_once_advertised]
}
