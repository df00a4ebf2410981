//! The API-form layer: how the server is asked to schedule and manage delayed events, and the
//! delayed-event operations cases call on a `User`. What the server offers is found once per run
//! by `detect.rs` (`Features`, re-exported here).
//! Cases say "schedule", "cancel", "list"; this module turns that into the HTTP the chosen
//! revision's form uses.
//! `form.rs` holds the forms, `model.rs` what is exchanged; this file the operations.

mod form;
mod model;

use crate::client::{new_txn_id, seg, Call, Client, Resp};
use crate::outcome::Stop;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub use crate::detect::{detect, Features};
pub use form::*;
pub use model::*;

/// How long a listing or lookup may lag behind a change the server has already answered: a
/// deployment with workers replicates it to the worker that serves `/delayed_events` after a
/// while (Complement had to wait it out: matrix-org/complement PRs #762 and #869). Checks that
/// read right after scheduling or an action ask again until their condition holds, at most this
/// long, and then judge what they last saw.
pub const SETTLE_BOUND: Duration = Duration::from_secs(5);
/// How often a listing or lookup is asked again while it has not settled.
const SETTLE_POLL: Duration = Duration::from_millis(100);

/// Asks (`ask`) again every [`SETTLE_POLL`] until `settled` holds for the answer or
/// [`SETTLE_BOUND`] has passed: the last answer either way.
async fn asked_until_settled<T, Asked>(
    mut ask: impl FnMut() -> Asked,
    mut settled: impl FnMut(&T) -> bool,
) -> Result<T, Stop>
where
    Asked: std::future::Future<Output = Result<T, Stop>>,
{
    let give_up = Instant::now() + SETTLE_BOUND;
    loop {
        let answer = ask().await?;
        if settled(&answer) || Instant::now() >= give_up {
            return Ok(answer);
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
}

/// A logged-in user, with the delayed-event operations in the run's API form.
#[derive(Clone)]
pub struct User {
    pub client: Client,
    pub form: ApiForm,
}

impl std::ops::Deref for User {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl User {
    pub fn id(&self) -> &str {
        &self.client.user_id
    }

    /// The same user logged in again: another device, with its own access token.
    pub async fn on_another_device(&self) -> Result<User, Stop> {
        Ok(User {
            client: self.client.login_new_device().await?,
            form: self.form,
        })
    }

    /// Schedules `event` and answers whatever the server said.
    pub async fn schedule(&self, event: &DelayedEvent, delay: Delay) -> Result<Resp, Stop> {
        self.schedule_with_txn(event, delay, &new_txn_id()).await
    }

    pub async fn schedule_with_txn(
        &self,
        event: &DelayedEvent,
        delay: Delay,
        txn_id: &str,
    ) -> Result<Resp, Stop> {
        self.schedule_call(event, delay, txn_id).send().await
    }

    /// The same request without the access token.
    pub async fn schedule_without_token(
        &self,
        event: &DelayedEvent,
        delay: Delay,
    ) -> Result<Resp, Stop> {
        self.schedule_call(event, delay, &new_txn_id())
            .without_token()
            .send()
            .await
    }

    /// The scheduling request for `event` in the user's form, ready to send.
    fn schedule_call(&self, event: &DelayedEvent, delay: Delay, txn_id: &str) -> Call<'_> {
        let room = seg(&event.room_id);
        let event_type = seg(&event.event_type);
        match self.form.schedule {
            ScheduleForm::QueryParam => {
                let path = match &event.state_key {
                    Some(key) => format!(
                        "/_matrix/client/v3/rooms/{room}/state/{event_type}/{}",
                        seg(key)
                    ),
                    None => format!(
                        "/_matrix/client/v3/rooms/{room}/send/{event_type}/{}",
                        seg(txn_id)
                    ),
                };
                self.put(path)
                    .query(self.form.delay_param(), delay.query_text())
                    .json(event.content.clone())
            }
            ScheduleForm::Endpoint => {
                let path = format!(
                    "{}/rooms/{room}/delayed_event/{event_type}/{}",
                    self.form.rooms_prefix(),
                    seg(txn_id)
                );
                let mut body = json!({ "delay_ms": delay.json(), "content": event.content });
                if let Some(key) = &event.state_key {
                    body["state_key"] = json!(key);
                }
                self.put(path).json(body)
            }
        }
    }

    /// Schedules `event` with a raw request body (malformed JSON, non-object content...).
    pub async fn schedule_raw_body(
        &self,
        event: &DelayedEvent,
        delay_ms: i64,
        raw_body: &str,
    ) -> Result<Resp, Stop> {
        let room = seg(&event.room_id);
        let event_type = seg(&event.event_type);
        let txn = new_txn_id();
        match self.form.schedule {
            ScheduleForm::QueryParam => {
                self.put(format!(
                    "/_matrix/client/v3/rooms/{room}/send/{event_type}/{txn}"
                ))
                .query(self.form.delay_param(), delay_ms)
                .raw(raw_body)
                .send()
                .await
            }
            ScheduleForm::Endpoint => {
                let path = format!(
                    "{}/rooms/{room}/delayed_event/{event_type}/{txn}",
                    self.form.rooms_prefix()
                );
                // The endpoint's body wraps the content, so a broken content goes inside it.
                let body = format!(r#"{{"delay_ms": {delay_ms}, "content": {raw_body}}}"#);
                self.put(path).raw(&body).send().await
            }
        }
    }

    /// A request to the dedicated scheduling endpoint (2026-07) with a raw body, or none at all
    /// (`None`): for the cases about what that endpoint refuses.
    pub async fn schedule_endpoint_raw(
        &self,
        room_id: &str,
        event_type: &str,
        raw_body: Option<&str>,
    ) -> Result<Resp, Stop> {
        let path = format!(
            "{}/rooms/{}/delayed_event/{}/{}",
            self.form.rooms_prefix(),
            seg(room_id),
            seg(event_type),
            new_txn_id()
        );
        let call = self.put(path);
        match raw_body {
            Some(body) => call.raw(body).send().await,
            None => call.send().await,
        }
    }

    /// The same user, asking in another API form (say, under the other prefix).
    pub fn in_form(&self, form: ApiForm) -> User {
        User {
            client: self.client.clone(),
            form,
        }
    }

    /// Schedules and insists it worked: a refusal fails the case (scheduling is the feature).
    pub async fn schedule_ok(
        &self,
        event: &DelayedEvent,
        delay_ms: i64,
    ) -> Result<Scheduled, Stop> {
        let requested_at = Instant::now();
        let resp = self.schedule(event, Delay::Ms(delay_ms)).await?;
        scheduled_from(resp, delay_ms, requested_at)
    }

    /// Schedules and insists it worked, but for a rate limit: a 429 answers `None` (the caller
    /// judges or notes it); any other refusal fails the case.
    pub async fn schedule_ok_unless_limited(
        &self,
        event: &DelayedEvent,
        delay_ms: i64,
    ) -> Result<Option<Scheduled>, Stop> {
        let requested_at = Instant::now();
        let resp = self.schedule(event, Delay::Ms(delay_ms)).await?;
        if resp.status == 429 {
            return Ok(None);
        }
        scheduled_from(resp, delay_ms, requested_at).map(Some)
    }

    pub async fn schedule_ok_with_txn(
        &self,
        event: &DelayedEvent,
        delay_ms: i64,
        txn: &str,
    ) -> Result<Scheduled, Stop> {
        let requested_at = Instant::now();
        let resp = self
            .schedule_with_txn(event, Delay::Ms(delay_ms), txn)
            .await?;
        scheduled_from(resp, delay_ms, requested_at)
    }

    fn management_path(&self, delay_id: &str) -> String {
        format!(
            "{}/delayed_events/{}",
            self.form.prefix_path(),
            seg(delay_id)
        )
    }

    /// A management action in the run's form.
    pub async fn manage(&self, delay_id: &str, action: Action) -> Result<Resp, Stop> {
        self.manage_via(delay_id, action, self.form.manage, true)
            .await
    }

    /// A management action in a given form, with or without the access token.
    pub async fn manage_via(
        &self,
        delay_id: &str,
        action: Action,
        form: ManageForm,
        with_token: bool,
    ) -> Result<Resp, Stop> {
        let base = self.management_path(delay_id);
        let call = match form {
            ManageForm::SplitPath => self
                .post(format!("{base}/{}", action.as_str()))
                .json(json!({})),
            ManageForm::Body => self.post(base).json(json!({ "action": action.as_str() })),
        };
        if with_token {
            call.send().await
        } else {
            call.without_token().send().await
        }
    }

    /// A management request with an arbitrary action path segment (split form).
    pub async fn manage_split_raw(&self, delay_id: &str, action: &str) -> Result<Resp, Stop> {
        let path = format!("{}/{}", self.management_path(delay_id), seg(action));
        self.post(path).json(json!({})).send().await
    }

    /// A body-form management request with an arbitrary raw body.
    pub async fn manage_body_raw(&self, delay_id: &str, raw_body: &str) -> Result<Resp, Stop> {
        self.post(self.management_path(delay_id))
            .raw(raw_body)
            .send()
            .await
    }

    /// Management that must succeed for the case to continue; a refusal fails the case.
    pub async fn manage_ok(&self, delay_id: &str, action: Action) -> Result<Resp, Stop> {
        let resp = self.manage(delay_id, action).await?;
        if !resp.is_success() {
            return Err(Stop::Fail(format!(
                "the '{}' action on a scheduled delayed event was refused: {}",
                action.as_str(),
                resp.describe()
            )));
        }
        Ok(resp)
    }

    pub async fn list_raw(&self, with_token: bool) -> Result<Resp, Stop> {
        let call = self.get(format!("{}/delayed_events", self.form.prefix_path()));
        if with_token {
            call.send().await
        } else {
            call.without_token().send().await
        }
    }

    /// The user's scheduled delayed events. The list key is `delayed_events` (2024-10 Synapse,
    /// 2026-07) or `scheduled` (2025-12).
    pub async fn list(&self) -> Result<Vec<DelayedInfo>, Stop> {
        let resp = self.list_raw(true).await?;
        if !resp.is_success() {
            return Err(Stop::Fail(format!(
                "listing delayed events was refused: {}",
                resp.describe()
            )));
        }
        listing_items(&resp)
    }

    /// The listing entry for one delay id, if listed.
    pub async fn listed(&self, delay_id: &str) -> Result<Option<DelayedInfo>, Stop> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .find(|i| i.delay_id() == Some(delay_id)))
    }

    /// Whether the listing still shows `delay_id` as scheduled; `None` where the listing is
    /// refused (say, to a deactivated account), so there is no telling.
    pub async fn still_listed(&self, delay_id: &str) -> Result<Option<bool>, Stop> {
        let resp = self.list_raw(true).await?;
        if !resp.is_success() {
            return Ok(None);
        }
        let items = listing_items(&resp)?;
        Ok(Some(items.iter().any(|i| i.delay_id() == Some(delay_id))))
    }

    /// The listing, asked again until `settled` holds for it or [`SETTLE_BOUND`] has passed,
    /// whichever comes first: the last answer either way, for the case to judge. A listing the
    /// server refuses or garbles fails the case, as `list` does.
    pub async fn list_settled(
        &self,
        mut settled: impl FnMut(&[DelayedInfo]) -> bool,
    ) -> Result<Vec<DelayedInfo>, Stop> {
        asked_until_settled(|| self.list(), |items: &Vec<DelayedInfo>| settled(items)).await
    }

    /// The listing entry for `delay_id` once the listing shows it (`present`) or no longer does
    /// (`!present`), within [`SETTLE_BOUND`]; else the entry as last seen (or `None`), for the
    /// case to judge.
    pub async fn listed_settled(
        &self,
        delay_id: &str,
        present: bool,
    ) -> Result<Option<DelayedInfo>, Stop> {
        let has = |items: &[DelayedInfo]| items.iter().any(|i| i.delay_id() == Some(delay_id));
        Ok(self
            .list_settled(|items| has(items) == present)
            .await?
            .into_iter()
            .find(|i| i.delay_id() == Some(delay_id)))
    }

    /// A single-item lookup, asked again until `settled` holds for its answer or
    /// [`SETTLE_BOUND`] has passed: the last answer either way, unjudged.
    pub async fn lookup_settled(
        &self,
        delay_id: &str,
        settled: impl FnMut(&Resp) -> bool,
    ) -> Result<Resp, Stop> {
        asked_until_settled(|| self.lookup(delay_id, true), settled).await
    }

    pub async fn lookup(&self, delay_id: &str, with_token: bool) -> Result<Resp, Stop> {
        let call = self.get(self.management_path(delay_id));
        if with_token {
            call.send().await
        } else {
            call.without_token().send().await
        }
    }
}

/// The scheduled items of a listing answer: under `delayed_events` (2024-10, 2026-07) or
/// `scheduled` (2025-12, which lists finalised ones apart, under `finalised`).
pub fn listing_items(resp: &Resp) -> Result<Vec<DelayedInfo>, Stop> {
    let items = resp
        .body
        .get("delayed_events")
        .or_else(|| resp.body.get("scheduled"))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            Stop::Fail(format!(
                "the listing has no 'delayed_events' (2024-10, 2026-07) or 'scheduled' (2025-12) array: {}",
                resp.describe()
            ))
        })?;
    Ok(items
        .iter()
        .cloned()
        .map(|raw| DelayedInfo { raw })
        .collect())
}

fn scheduled_from(resp: Resp, delay_ms: i64, requested_at: Instant) -> Result<Scheduled, Stop> {
    match resp.str_field("delay_id") {
        Some(id) if resp.status == 200 && !id.is_empty() => {
            Ok(Scheduled { delay_id: id.to_string(), delay_ms, requested_at, resp })
        }
        _ => Err(Stop::Fail(format!(
            "scheduling a delayed event with a {delay_ms} ms delay did not give 200 with a delay_id: {}",
            resp.describe()
        ))),
    }
}
