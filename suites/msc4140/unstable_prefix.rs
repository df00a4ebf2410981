//! unstable_prefix: the feature is advertised under its unstable name while the MSC is unstable.

use super::texts::VERSIONS_FLAG;
use crate::api::UNSTABLE_FEATURE;
use crate::prelude::*;

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

pub fn cases() -> Vec<Case> {
    cases![advertised_in_versions]
}
