//! Detection, once per run before any case: what the server offers (`/versions`, capabilities,
//! a probe of each API form), or why it offers no delayed events at all.

use crate::api::{
    Action, ApiForm, Delay, DelayedEvent, FormOverride, ManageForm, Prefix, ScheduleForm, User,
    STABLE_CAPABILITY, STABLE_PREFIX, UNSTABLE_CAPABILITY, UNSTABLE_FEATURE, UNSTABLE_PREFIX,
};
use crate::client::{new_txn_id, Client, Resp};
use crate::endpoints;
use crate::outcome::Stop;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// What the server offers, found by `detect` before any case runs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Features {
    /// `unstable_features["org.matrix.msc4140"]` in `/versions`.
    pub versions_flag: Option<bool>,
    pub stable_flag: bool,
    pub unstable_prefix: bool,
    pub stable_prefix: bool,
    pub schedule_query_param: bool,
    pub schedule_endpoint: bool,
    pub manage_split: bool,
    pub manage_body: bool,
    pub single_lookup: bool,
    /// The capability's name and value, stable name preferred.
    pub capability: Option<(String, Value)>,
    /// How the server answered the scheduling probe when it offered no form of scheduling (the
    /// evidence behind "not implemented").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduling_refused: Option<String>,
}

impl Features {
    /// Why the server does not offer delayed events at all (no form of scheduling works), or
    /// `None` when it does. Every case that needs the feature skips with this reason.
    pub fn not_offered(&self) -> Option<String> {
        if self.schedule_query_param || self.schedule_endpoint {
            return None;
        }
        let flag = match self.versions_flag {
            Some(true) => "true",
            Some(false) => "false",
            None => "absent",
        };
        Some(format!(
            "the server schedules no delayed event in any form ({}; /versions flag {UNSTABLE_FEATURE}: {flag})",
            self.scheduling_refused
                .as_deref()
                .unwrap_or("no answer recorded")
        ))
    }

    pub fn capability_field(&self, field: &str) -> Option<i64> {
        self.capability
            .as_ref()
            .and_then(|(_, v)| v.get(field))
            .and_then(Value::as_i64)
    }

    /// The form a run uses: the newest each dimension offers, unless forced.
    pub fn choose_form(&self, forced: FormOverride) -> ApiForm {
        let schedule = if self.schedule_endpoint {
            ScheduleForm::Endpoint
        } else {
            ScheduleForm::QueryParam
        };
        let manage = if self.manage_split || !self.manage_body {
            ManageForm::SplitPath
        } else {
            ManageForm::Body
        };
        let prefix = if self.stable_prefix {
            Prefix::Stable
        } else {
            Prefix::Unstable
        };
        ApiForm {
            schedule: forced.schedule.unwrap_or(schedule),
            manage: forced.manage.unwrap_or(manage),
            prefix: forced.prefix.unwrap_or(prefix),
        }
    }
}

/// Finds out what the server offers. `prober` is a fresh user; `room_id` a room it created.
pub async fn detect(prober: &Client, room_id: &str) -> Result<Features, Stop> {
    let mut features = Features::default();

    let versions = prober
        .get(endpoints::VERSIONS)
        .without_token()
        .send()
        .await?;
    let unstable = versions.body.get("unstable_features");
    features.versions_flag = unstable
        .and_then(|u| u.get(UNSTABLE_FEATURE))
        .and_then(Value::as_bool);
    features.stable_flag = unstable
        .and_then(|u| u.get("org.matrix.msc4140.stable"))
        .and_then(Value::as_bool)
        .unwrap_or(false);

    let caps = prober.get(endpoints::CAPABILITIES).send().await?;
    features.capability = [STABLE_CAPABILITY, UNSTABLE_CAPABILITY]
        .iter()
        .find_map(|name| {
            caps.body
                .pointer(&format!("/capabilities/{name}"))
                .map(|v| (name.to_string(), v.clone()))
        });

    for (prefix, flag) in [
        (UNSTABLE_PREFIX, &mut features.unstable_prefix),
        (STABLE_PREFIX, &mut features.stable_prefix),
    ] {
        *flag = prober
            .get(format!("{prefix}/delayed_events"))
            .send()
            .await?
            .is_success();
    }

    let mut probe_form = features.choose_form(FormOverride::default());
    let bogus = format!(
        "{}/delayed_events/dec-probe-{}",
        probe_form.prefix_path(),
        new_txn_id()
    );
    features.manage_split = route_exists(
        &prober
            .post(format!("{bogus}/cancel"))
            .json(json!({}))
            .send()
            .await?,
    );
    features.manage_body = route_exists(
        &prober
            .post(bogus.clone())
            .json(json!({"action": "cancel"}))
            .send()
            .await?,
    );
    features.single_lookup = route_exists(&prober.get(bogus).send().await?);
    probe_form.manage = if features.manage_split {
        ManageForm::SplitPath
    } else {
        ManageForm::Body
    };

    // Scheduling can only be told apart by trying it: a server that ignores the query parameter
    // sends the event at once (harmless in the prober's own room).
    let user = User {
        client: prober.clone(),
        form: probe_form,
    };
    let probe_event = DelayedEvent::message(room_id, "delayed-events-conformance probe");
    for schedule in [ScheduleForm::QueryParam, ScheduleForm::Endpoint] {
        let user = User {
            form: ApiForm {
                schedule,
                ..probe_form
            },
            ..user.clone()
        };
        // Within the advertised maximum; a refusal is tried again with a short delay, so that a
        // server with a low (or unadvertised) maximum is not taken for one without the feature.
        let advertised_max = features
            .capability_field("max_delay_ms")
            .filter(|max| *max > 0);
        let first =
            advertised_max.map_or(PROBE_DELAY_MS, |max| (max / 2).clamp(1000, PROBE_DELAY_MS));
        let mut offered = false;
        for delay in [first, SHORT_PROBE_DELAY_MS] {
            let resp = user.schedule(&probe_event, Delay::Ms(delay)).await?;
            if let (200, Some(delay_id)) = (resp.status, resp.str_field("delay_id")) {
                user.manage(delay_id, Action::Cancel).await?;
                offered = true;
                break;
            }
            if schedule == ScheduleForm::QueryParam {
                features.scheduling_refused = Some(describe_refusal(&resp));
            }
            // Sent at once: trying again would only send another.
            if resp.str_field("event_id").is_some() {
                break;
            }
        }
        if offered && schedule == ScheduleForm::QueryParam {
            features.scheduling_refused = None;
        }
        match schedule {
            ScheduleForm::QueryParam => features.schedule_query_param = offered,
            ScheduleForm::Endpoint => features.schedule_endpoint = offered,
        }
    }
    Ok(features)
}

/// The scheduling probe's delay: long enough never to fall due during detection.
const PROBE_DELAY_MS: i64 = 3_600_000;
/// The second try where the first was refused (a server with a low maximum delay).
const SHORT_PROBE_DELAY_MS: i64 = 60_000;

/// The scheduling probe's answer in a few words: status and errcode, or that the server sent the
/// event at once (it ignored the delay).
fn describe_refusal(resp: &Resp) -> String {
    if resp.str_field("event_id").is_some() {
        return format!(
            "scheduling answered {} with an event_id and no delay_id: the delay was ignored and the event sent at once",
            resp.status
        );
    }
    format!(
        "scheduling answered {} {}",
        resp.status,
        resp.errcode().unwrap_or("without an errcode")
    )
}

/// A route exists unless the server says it does not know it (`M_UNRECOGNIZED`, 404 without an
/// errcode, or 405).
fn route_exists(resp: &Resp) -> bool {
    let unknown_route = resp.status == 405
        || resp.errcode() == Some("M_UNRECOGNIZED")
        || (resp.status == 404 && resp.errcode().is_none());
    !unknown_route && resp.status < 500
}
