//! capabilities: the limits are advertised, and they are the limits the server enforces.

use super::texts::CAPABILITY;
use crate::api::{STABLE_CAPABILITY, UNSTABLE_CAPABILITY};
use crate::prelude::*;

case! {
    name: advertised,
    title: "The delayed-events capability is advertised with positive integer limits",
    level: Must,
    spec: CAPABILITY,
    revisions: &[Rev::Jul2026],
}
async fn advertised(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let resp = alice
        .get("/_matrix/client/v3/capabilities")
        .send()
        .await?
        .setup_step("read capabilities")?;
    let found = [STABLE_CAPABILITY, UNSTABLE_CAPABILITY]
        .iter()
        .find_map(|name| {
            resp.body
                .pointer(&format!("/capabilities/{name}"))
                .map(|v| (*name, v.clone()))
        });
    let Some((name, value)) = found else {
        fail!(
            "/capabilities has neither {STABLE_CAPABILITY} nor {UNSTABLE_CAPABILITY}: {}",
            resp.describe()
        )
    };
    check!(
        value.is_object(),
        "capability {name} is not an object: {value}"
    );
    for field in ["max_delay_ms", "max_scheduled"] {
        if let Some(v) = value.get(field) {
            check!(
                v.as_i64().is_some_and(|n| n > 0),
                "capability {name}.{field} is not a positive integer: {v}"
            );
        }
    }
    Ok(())
}

case! {
    name: max_delay_matches_enforcement,
    title: "A delay of exactly max_delay_ms is accepted and one millisecond more is not",
    level: Must,
    spec: CAPABILITY,
    needs: &[Need::Capability],
    revisions: &[Rev::Jul2026],
}
async fn max_delay_matches_enforcement(ctx: Ctx) -> CaseResult {
    let Some(max) = ctx.features().capability_field("max_delay_ms") else {
        skip!("the capability does not advertise max_delay_ms, so there is no advertised limit to check")
    };
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let at_max = alice
        .schedule(
            &DelayedEvent::message(&room, &ctx.unique("max")),
            Delay::Ms(max),
        )
        .await?;
    check!(
        at_max.status == 200 && at_max.str_field("delay_id").is_some(),
        "a delay of exactly the advertised max_delay_ms ({max}) should be accepted, but {}",
        at_max.describe()
    );
    if let Some(id) = at_max.str_field("delay_id") {
        alice.manage(id, Action::Cancel).await?;
    }
    let over = alice
        .schedule(
            &DelayedEvent::message(&room, &ctx.unique("over")),
            Delay::Ms(max + 1),
        )
        .await?;
    check!(
        !over.is_success(),
        "a delay one millisecond over the advertised max_delay_ms ({max}) should be refused, but {}",
        over.describe()
    );
    Ok(())
}

pub fn cases() -> Vec<Case> {
    cases![advertised, max_delay_matches_enforcement]
}
