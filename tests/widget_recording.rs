//! Recording mode: a widget driver in front of the fake homeserver, whose requests the fake
//! records (method, path, delay parameter, management form). No real server needed, and the
//! requests are the evidence of which API forms each driver uses: printed here, and pinned so that
//! a driver changing its forms is a visible diff. The real drivers need scripts/build-adapters.

mod support;

use dec_catalogue::msc4157::all_caps;
use dec_harness::api::{DelayedEvent, FormOverride};
use dec_harness::client::http_client;
use dec_harness::ctx::{Ctx, Env};
use dec_harness::homeserver::Target;
use dec_harness::widget::DriverSpec;
use serde_json::json;
use std::sync::Arc;
use support::fake_homeserver::{FakeOptions, RecordedRequest};
use support::fake_target::FakeTarget;

/// Schedules a message and a state event through `driver`, then cancels, restarts and sends
/// through it; answers what the fake recorded.
async fn record(driver: DriverSpec) -> Vec<RecordedRequest> {
    let fake = Arc::new(
        FakeTarget::start(FakeOptions {
            dedicated_endpoint: false,
            ..FakeOptions::default()
        })
        .await,
    );
    let target: Arc<dyn Target> = fake.clone();
    let mut env = Env::prepare(target, http_client(), FormOverride::default())
        .await
        .expect("the fake registers users");
    env.driver = Some(Arc::new(driver));
    let ctx = Ctx::new(Arc::new(env), "msc4157.recording.forms");
    let alice = ctx.user("alice").await.unwrap();
    let room = ctx.room(&alice, &[]).await.unwrap();
    // What the harness itself did so far is not the driver's.
    let before = fake.homeserver().delayed_requests().len();
    let widget = ctx.widget_with(&alice, &room, &all_caps()).await.unwrap();
    let message = DelayedEvent::message(&room, "recorded");
    let state = DelayedEvent::state(&room, "org.example.conformance.widget", "k", json!({}));
    let (_, message_id) = widget.schedule_ok(&message, 600_000).await.unwrap();
    let (_, state_id) = widget.schedule_ok(&state, 600_000).await.unwrap();
    for (id, action) in [
        (&message_id, "restart"),
        (&message_id, "send"),
        (&state_id, "cancel"),
    ] {
        let reply = widget.update(id, action).await.unwrap();
        assert!(reply.is_success(), "{action}: {}", reply.describe());
    }
    fake.homeserver().delayed_requests().split_off(before)
}

fn forms(recorded: &[RecordedRequest]) -> Vec<String> {
    recorded
        .iter()
        .map(|r| {
            let delay = r
                .delay
                .as_deref()
                .map(|d| format!(" delay={d}"))
                .unwrap_or_default();
            format!(
                "{} ({} {}{delay} -> {})",
                r.form, r.method, r.path, r.status
            )
        })
        .collect()
}

fn check(driver: &str, recorded: &[RecordedRequest], expected_forms: &[&str]) {
    let described = forms(recorded);
    println!(
        "{driver} made these delayed-event requests:\n  {}",
        described.join("\n  ")
    );
    let got: Vec<&str> = recorded.iter().map(|r| r.form.as_str()).collect();
    assert_eq!(
        got,
        expected_forms,
        "{driver}: forms used:\n  {}",
        described.join("\n  ")
    );
}

fn real_driver(name: &str) -> DriverSpec {
    DriverSpec::parse(name).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stand_in_forms() {
    let stand_in = DriverSpec {
        label: "stand-in".into(),
        program: support::stand_in::binary().into(),
        args: Vec::new(),
        init_on_content_load: true,
    };
    let recorded = record(stand_in).await;
    check(
        "stand-in",
        &recorded,
        &[
            "schedule: query-param",
            "schedule: query-param",
            "manage: split-path restart",
            "manage: split-path send",
            "manage: split-path cancel",
        ],
    );
    assert_eq!(recorded[0].delay.as_deref(), Some("600000"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_forms() {
    let recorded = record(real_driver("rust-sdk")).await;
    check(
        "rust-sdk",
        &recorded,
        &[
            "schedule: query-param",
            "schedule: query-param",
            "manage: body restart",
            "manage: body send",
            "manage: body cancel",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widget_api_forms() {
    let recorded = record(real_driver("widget-api")).await;
    check(
        "widget-api",
        &recorded,
        &[
            "schedule: query-param",
            "schedule: query-param",
            "manage: split-path restart",
            "manage: split-path send",
            "manage: split-path cancel",
        ],
    );
}
