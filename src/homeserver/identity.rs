//! Who is answering: the server software's name and version, learnt over HTTP from any target.
//! First `/_matrix/client/versions`, where the server announces itself (MSC4383), then the
//! federation version endpoint where it answers on the client port (Synapse does), else what the
//! target itself knows (the managed Synapse's release).

use super::TargetInfo;
use crate::endpoints::{FEDERATION_VERSION, VERSIONS};
use serde_json::Value;

/// MSC4383's unstable key in `/versions`: `{"name": ..., "version": ...}`.
const MSC4383_KEY: &str = "net.zemos.msc4383.server";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub version: Option<String>,
    /// `msc4383`, `federation`, `target`, or `driver` (a widget driver's hello line).
    pub source: &'static str,
}

impl Identity {
    pub fn describe(&self) -> String {
        let from = match self.source {
            "msc4383" => format!("MSC4383 in {VERSIONS}"),
            "federation" => FEDERATION_VERSION.to_string(),
            "driver" => "the widget driver's hello".to_string(),
            _ => "the target".to_string(),
        };
        format!(
            "{} {} (from {from})",
            self.name,
            self.version.as_deref().unwrap_or("(version unknown)")
        )
    }
}

async fn get_json(http: &reqwest::Client, url: String) -> Option<Value> {
    match http
        .get(url)
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => r.json().await.ok(),
        _ => None,
    }
}

/// Name and version from an object `{"name": ..., "version": ...}`, if it has a name.
fn name_and_version(object: Option<&Value>) -> Option<(String, Option<String>)> {
    let object = object?;
    let name = object.get("name")?.as_str()?.trim();
    if name.is_empty() {
        return None;
    }
    let version = object
        .get("version")
        .and_then(Value::as_str)
        .map(str::to_string);
    Some((name.to_string(), version))
}

/// What the server says about itself over HTTP, if anything.
pub async fn detect(http: &reqwest::Client, base_url: &str) -> Option<Identity> {
    let versions = get_json(http, format!("{base_url}{VERSIONS}")).await;
    if let Some((name, version)) =
        name_and_version(versions.as_ref().and_then(|v| v.get(MSC4383_KEY)))
    {
        return Some(Identity {
            name,
            version,
            source: "msc4383",
        });
    }
    let federation = get_json(http, format!("{base_url}{FEDERATION_VERSION}")).await;
    name_and_version(federation.as_ref().and_then(|v| v.get("server"))).map(|(name, version)| {
        Identity {
            name,
            version,
            source: "federation",
        }
    })
}

/// The identity detected over HTTP, else what the target knows (a name other than "unknown").
pub fn resolve(detected: Option<Identity>, info: &TargetInfo) -> Option<Identity> {
    detected.or_else(|| {
        (info.name != UNKNOWN && !info.name.is_empty()).then(|| Identity {
            name: info.name.clone(),
            version: info.version.clone(),
            source: "target",
        })
    })
}

/// What a target that knows nothing of its server calls it.
pub const UNKNOWN: &str = "unknown";

/// The target's description with the identity filled in (and its name, where the target had
/// none of its own).
pub fn apply(mut info: TargetInfo, identity: Option<&Identity>) -> TargetInfo {
    if let Some(identity) = identity {
        info.server_name = Some(identity.name.clone());
        info.server_version = identity.version.clone();
        info.identity_source = Some(identity.source.into());
        if info.name == UNKNOWN {
            info.name = identity.name.clone();
            info.version = identity.version.clone();
        }
    }
    info
}
