//! The API forms: how a server is asked to schedule (query parameter or dedicated endpoint) and
//! to manage (split paths or body action) delayed events, under which prefix; the run's choice
//! (`ApiForm`) and `--api-form`'s override.

use serde::{Deserialize, Serialize};

pub const UNSTABLE_PREFIX: &str = "/_matrix/client/unstable/org.matrix.msc4140";
pub const STABLE_PREFIX: &str = "/_matrix/client/v1";
pub const UNSTABLE_FEATURE: &str = "org.matrix.msc4140";
pub const UNSTABLE_CAPABILITY: &str = "org.matrix.msc4140.delayed_events";
pub const STABLE_CAPABILITY: &str = "m.delayed_events";
pub const UNSTABLE_UNSIGNED_KEY: &str = "org.matrix.msc4140.delay_id";

/// How events are scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleForm {
    /// `?org.matrix.msc4140.delay=` (or `?delay=`) on `/send` and `/state` (2024-10, 2025-12).
    QueryParam,
    /// `PUT .../rooms/{roomId}/delayed_event/{eventType}/{txnId}` (2026-07).
    Endpoint,
}

/// How scheduled events are managed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ManageForm {
    /// `POST .../delayed_events/{delay_id}/{action}` (2025-12, 2026-07).
    SplitPath,
    /// `POST .../delayed_events/{delay_id}` with `{"action": ...}` (2024-10).
    Body,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Prefix {
    Unstable,
    Stable,
}

/// The complete choice of API form for a run, recorded in the results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiForm {
    pub schedule: ScheduleForm,
    pub manage: ManageForm,
    pub prefix: Prefix,
}

impl Default for ApiForm {
    /// What Synapse offers; used when nothing was detected or forced.
    fn default() -> Self {
        ApiForm {
            schedule: ScheduleForm::QueryParam,
            manage: ManageForm::SplitPath,
            prefix: Prefix::Unstable,
        }
    }
}

/// A partial form from `--api-form`: each token names its own dimension.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FormOverride {
    pub schedule: Option<ScheduleForm>,
    pub manage: Option<ManageForm>,
    pub prefix: Option<Prefix>,
}

impl FormOverride {
    pub const HELP: &'static str =
        "comma-separated: query-param|endpoint, split-path|body, unstable|stable (e.g. endpoint,stable)";

    pub fn parse(text: &str) -> Result<FormOverride, String> {
        let mut form = FormOverride::default();
        for token in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match token {
                "query-param" => form.schedule = Some(ScheduleForm::QueryParam),
                "endpoint" => form.schedule = Some(ScheduleForm::Endpoint),
                "split-path" => form.manage = Some(ManageForm::SplitPath),
                "body" => form.manage = Some(ManageForm::Body),
                "unstable" => form.prefix = Some(Prefix::Unstable),
                "stable" => form.prefix = Some(Prefix::Stable),
                other => {
                    return Err(format!(
                        "unknown API form '{other}'; expected {}",
                        Self::HELP
                    ))
                }
            }
        }
        Ok(form)
    }
}

impl std::fmt::Display for ApiForm {
    /// "query-param, split-path, unstable": the same names `--api-form` takes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = serde_json::to_value(self).expect("forms serialise");
        let name = |key: &str| names[key].as_str().unwrap_or("?").to_string();
        write!(
            f,
            "{}, {}, {}",
            name("schedule"),
            name("manage"),
            name("prefix")
        )
    }
}

impl ApiForm {
    pub fn prefix_path(&self) -> &'static str {
        match self.prefix {
            Prefix::Unstable => UNSTABLE_PREFIX,
            Prefix::Stable => STABLE_PREFIX,
        }
    }

    pub(super) fn rooms_prefix(&self) -> &'static str {
        match self.prefix {
            Prefix::Unstable => UNSTABLE_PREFIX,
            Prefix::Stable => "/_matrix/client/v3",
        }
    }

    pub(super) fn delay_param(&self) -> &'static str {
        match self.prefix {
            Prefix::Unstable => "org.matrix.msc4140.delay",
            Prefix::Stable => "delay",
        }
    }

    pub fn unsigned_key(&self) -> &'static str {
        match self.prefix {
            Prefix::Unstable => UNSTABLE_UNSIGNED_KEY,
            Prefix::Stable => "delay_id",
        }
    }
}
