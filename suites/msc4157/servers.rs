//! servers: the driver in front of homeservers the managed Synapse is not, each a fake of the
//! case's own (`Ctx::on_fake_homeserver`): one that never heard of MSC4140, and ones that manage
//! delayed events in one form only. What the driver sent is what that fake recorded.

use super::texts::{CLIENT_SENDS_DELAYED, UPDATE_CAPABILITY};
use super::{alice_widget_and_bob, widget_schedules, WidgetScene, LONG_DELAY_MS};
use crate::homeserver::fake::{FakeServer, FakeTarget};
use crate::prelude::*;
use crate::widget::caps;

use super::CALL_MEMBER;

/// What the fake recorded of the driver's delayed-event requests since `from`, one line each.
fn recorded_since(fake: &FakeTarget, from: usize) -> Vec<String> {
    fake.homeserver()
        .delayed_requests()
        .into_iter()
        .skip(from)
        .map(|r| format!("{} ({} {} -> {})", r.form, r.method, r.path, r.status))
        .collect()
}

// Should, not Must: MSC4157 makes the driver responsible for "the correct HTTP request", and
// MSC4140 advertises the feature in `/versions` for clients to check; neither says in MUST words
// what a client does where it is missing. Element Call suffers at once: its delayed leave goes
// out at join time (Synapse epic #20254; matrix-rust-sdk PR #6973 names the same risk).
case! {
    name: without_delayed_events,
    title: "On a homeserver without MSC4140 a delayed send is neither reported scheduled nor sent at once",
    level: Should,
    spec: CLIENT_SENDS_DELAYED,
}
async fn without_delayed_events(ctx: Ctx) -> CaseResult {
    let (on_fake, fake) = ctx
        .on_fake_homeserver(FakeServer::WithoutDelayedEvents)
        .await?;
    let Scene { alice, bob, room } = on_fake.alice_and_bob().await?.watched_by_bob().await?;
    let widget = on_fake
        .widget_with(&alice, &room, &caps::delayed(&[], &[CALL_MEMBER]))
        .await?;
    let from = fake.homeserver().delayed_requests().len();
    let leave = DelayedEvent::state(
        &room,
        CALL_MEMBER,
        &format!("_{}_leave", alice.id()),
        json!({}),
    );
    let reply = widget.send_event(&leave, Some(LONG_DELAY_MS)).await?;
    let copies = on_fake
        .copies_after_marker(&bob, &bob, &room, &[("the delayed leave", &leave)])
        .await?[0]
        .1;
    let sent = recorded_since(&fake, from);
    ctx.note(match sent.is_empty() {
        true => "the driver sent the homeserver no delayed-event request".to_string(),
        false => format!("the driver sent: {}", sent.join("; ")),
    });
    let mut wrong = Vec::new();
    if copies > 0 {
        wrong.push(
            "the event went out at once (the server ignored the delay the driver sent it)"
                .to_string(),
        );
    }
    if reply.is_success() {
        wrong.push(format!(
            "the widget was told the delayed send succeeded ({})",
            reply.describe()
        ));
    }
    check!(
        wrong.is_empty(),
        "on a homeserver that does not offer delayed events (no org.matrix.msc4140 in /versions), a \
         delayed send_event through the driver: {}. A driver must refuse a delayed send it cannot make.",
        wrong.join("; and ")
    );
    Ok(())
}

/// Schedules three events through the widget on a fake serving one management form, then
/// restarts, cancels and sends one each: each must succeed and take effect.
async fn manages_on(ctx: &Ctx, kind: FakeServer) -> CaseResult {
    let (on_fake, fake) = ctx.on_fake_homeserver(kind).await?;
    let WidgetScene { widget, bob, .. } = alice_widget_and_bob(&on_fake).await?;
    let (_, restarted) = widget_schedules(&on_fake, &widget, "restarted", LONG_DELAY_MS).await?;
    let (_, cancelled) = widget_schedules(&on_fake, &widget, "cancelled", LONG_DELAY_MS).await?;
    let (sent_event, sent) = widget_schedules(&on_fake, &widget, "sent", LONG_DELAY_MS).await?;
    let from = fake.homeserver().delayed_requests().len();
    let mut refused = Vec::new();
    let mut send_reply = None;
    for (action, scheduled) in [
        ("restart", &restarted),
        ("cancel", &cancelled),
        ("send", &sent),
    ] {
        let reply = widget.update(&scheduled.delay_id, action).await?;
        if !reply.is_success() {
            refused.push(format!("`{action}`: {}", reply.describe()));
        }
        if action == "send" {
            send_reply = Some(reply);
        }
    }
    let requests = recorded_since(&fake, from);
    ctx.note(format!("the driver managed with: {}", requests.join("; ")));
    check!(
        refused.is_empty(),
        "on {}, updates through the widget failed: {}; the driver sent {}",
        kind.describe(),
        refused.join("; "),
        requests.join("; ")
    );
    let listing = widget
        .user
        .list_settled(|items| {
            !items
                .iter()
                .any(|i| i.delay_id() == Some(&cancelled.delay_id))
        })
        .await?;
    check!(
        !listing
            .iter()
            .any(|i| i.delay_id() == Some(&cancelled.delay_id)),
        "on {}, `cancel` through the widget answered success but the event is still scheduled",
        kind.describe()
    );
    check!(
        listing
            .iter()
            .any(|i| i.delay_id() == Some(&restarted.delay_id)),
        "on {}, the event restarted through the widget is no longer scheduled",
        kind.describe()
    );
    let send_reply = send_reply.expect("the send action was made");
    on_fake
        .expect_sent(
            &bob,
            "the event sent through the widget's send action",
            Due::new(send_reply.requested_at, 0),
            |o| sent_event.matches(o),
        )
        .await?;
    Ok(())
}

// Should: MSC4157 leaves the HTTP request to the driver; the forms are MSC4140's, whose
// revisions and deployments differ (Synapse's workers serve only the split `/restart`, PR
// #19207), so a driver that works where its users are falls back to the form the server serves.
case! {
    name: management_split_paths_only,
    title: "Cancel, restart and send through the widget work where the server manages through split paths only",
    level: Should,
    spec: UPDATE_CAPABILITY,
}
async fn management_split_paths_only(ctx: Ctx) -> CaseResult {
    manages_on(&ctx, FakeServer::SplitPathsOnly).await
}

// Should, as `management_split_paths_only`.
case! {
    name: management_body_form_only,
    title: "Cancel, restart and send through the widget work where the server manages in the body form only",
    level: Should,
    spec: UPDATE_CAPABILITY,
}
async fn management_body_form_only(ctx: Ctx) -> CaseResult {
    manages_on(&ctx, FakeServer::BodyFormOnly).await
}

// Info: no text counts requests; a host that handles each request twice (element-web#31692)
// drops calls, and only a fake can count what reached the server.
case! {
    name: one_request_one_homeserver_request,
    title: "One send_event makes one scheduling request, and one update one management request",
    level: Info,
    spec: UPDATE_CAPABILITY,
}
async fn one_request_one_homeserver_request(ctx: Ctx) -> CaseResult {
    let (on_fake, fake) = ctx.on_fake_homeserver(FakeServer::Recording).await?;
    let WidgetScene { widget, bob, room } = alice_widget_and_bob(&on_fake).await?;
    let from = fake.homeserver().delayed_requests().len();
    let (_, scheduled) = widget_schedules(&on_fake, &widget, "once", LONG_DELAY_MS).await?;
    widget
        .update(&scheduled.delay_id, "restart")
        .await?
        .check_success("restart through the widget was refused")?;
    // A second copy of either request would reach the fake about when the first did; a plain
    // message through the fake after the replies bounds the wait.
    on_fake.copies_after_marker(&bob, &bob, &room, &[]).await?;
    let made: Vec<_> = fake
        .homeserver()
        .delayed_requests()
        .into_iter()
        .skip(from)
        .filter(|r| r.form.starts_with("schedule") || r.form.starts_with("manage"))
        .collect();
    let count = |prefix: &str| made.iter().filter(|r| r.form.starts_with(prefix)).count();
    check!(
        count("schedule") == 1 && count("manage") == 1,
        "one send_event and one restart through the widget reached the homeserver as {} scheduling \
         and {} management requests (one each expected): {}",
        count("schedule"),
        count("manage"),
        recorded_since(&fake, from).join("; ")
    );
    Ok(())
}

pub fn cases() -> Vec<Case> {
    cases![
        without_delayed_events,
        management_split_paths_only,
        management_body_form_only,
        one_request_one_homeserver_request,
    ]
}
