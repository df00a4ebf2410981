//! Target `url`: a homeserver someone else runs. Nothing to start, nothing to restart.

use super::{Registration, Target, TargetError, TargetInfo};
use async_trait::async_trait;

pub struct UrlTarget {
    base_url: String,
    registration: Registration,
    server_name: String,
    server_version: Option<String>,
}

impl UrlTarget {
    /// Checks that the server answers `/_matrix/client/versions` before anything else happens.
    pub async fn connect(
        http: &reqwest::Client,
        base_url: &str,
        shared_secret: Option<String>,
    ) -> Result<UrlTarget, TargetError> {
        let base_url = base_url.trim_end_matches('/').to_string();
        let versions_url = format!("{base_url}/_matrix/client/versions");
        let answer = http
            .get(&versions_url)
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| {
                TargetError(format!(
                    "cannot reach the homeserver at {base_url} ({}).\n\
                     Check --base-url: the server must be running and answer {versions_url}.",
                    crate::client::describe_transport_error(&e)
                ))
            })?;
        if !answer.status().is_success() {
            return Err(TargetError(format!(
                "{versions_url} answered HTTP {}: this does not look like a Matrix homeserver's \
                 client API. Check --base-url.",
                answer.status().as_u16()
            )));
        }
        let (server_name, server_version) = server_identity(http, &base_url).await;
        Ok(UrlTarget {
            base_url,
            registration: match shared_secret {
                Some(secret) => Registration::SharedSecret(secret),
                None => Registration::Open,
            },
            server_name,
            server_version,
        })
    }
}

/// The server software's name and version from the federation version endpoint, when it answers
/// on the client port (Synapse does); "unknown" otherwise.
pub async fn server_identity(http: &reqwest::Client, base_url: &str) -> (String, Option<String>) {
    let url = format!("{base_url}/_matrix/federation/v1/version");
    let body: Option<serde_json::Value> = match http.get(url).send().await {
        Ok(r) if r.status().is_success() => r.json().await.ok(),
        _ => None,
    };
    let server = body.as_ref().and_then(|b| b.get("server"));
    let name = server
        .and_then(|s| s.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or("unknown")
        .to_string();
    let version = server
        .and_then(|s| s.get("version"))
        .and_then(|v| v.as_str())
        .map(str::to_string);
    (name, version)
}

#[async_trait]
impl Target for UrlTarget {
    fn info(&self) -> TargetInfo {
        TargetInfo {
            kind: "url".into(),
            name: self.server_name.clone(),
            version: self.server_version.clone(),
            base_url: self.base_url.clone(),
            ..Default::default()
        }
    }

    fn registration(&self) -> Registration {
        self.registration.clone()
    }

    fn can_restart(&self) -> Result<(), String> {
        Err("target `url` cannot restart a homeserver it does not run".into())
    }

    async fn restart(&self) -> Result<(), TargetError> {
        Err(TargetError(self.can_restart().unwrap_err()))
    }

    fn log_tail(&self, _lines: usize) -> Option<String> {
        None
    }

    async fn shutdown(&self) {}
}
