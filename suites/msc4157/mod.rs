//! MSC4157 (delayed events in the widget API): the harness plays the widget against the driver
//! under test (`--driver`), and judges both the driver's replies and what happened on the
//! homeserver. One module per area.

mod capabilities;
mod delivery;
mod deployment;
mod errors;
mod receive;
mod send;
mod servers;
mod texts;
mod update;
mod use_cases;

// The areas, in report order: `AREAS` and `cases()` follow from this list.
dec_harness::areas!(
    capabilities,
    send,
    receive,
    update,
    errors,
    use_cases,
    delivery,
    servers,
    deployment
);

use crate::case::Case;
use crate::prelude::*;
use crate::widget::{caps, Widget};

/// The delay of events a case waits for: short, with room for a driver process in between.
pub const SHORT_DELAY_MS: i64 = 1500;
/// The delay of events that a case restarts through the widget: room for a loaded machine's
/// round trip through the driver before the event is due.
pub const RESTARTED_DELAY_MS: i64 = 3000;
/// The delay of events a case never waits for.
pub const LONG_DELAY_MS: i64 = 600_000;
/// The state event type the cases send (a custom one: no power-level surprises).
pub const STATE_TYPE: &str = "org.example.conformance.widget";
/// MatrixRTC's call membership state event, as Element Call sends it.
pub const CALL_MEMBER: &str = "org.matrix.msc3401.call.member";

/// `user`'s widget in `room` as Element Call asks for it: delayed sends and updates, and
/// call.member state under its own session membership key (`_{user}_{device}_{application}`)
/// only. Answers the widget and that key.
pub async fn call_member_widget(
    ctx: &Ctx,
    user: &User,
    room: &str,
) -> Result<(Widget, String), Stop> {
    let device = ctx.unique("device").replace(' ', "_");
    let state_key = format!("_{}_{device}_m.call", user.id());
    let mut asked = caps::delayed(&[], &[]);
    asked.push(caps::send_state_key(CALL_MEMBER, &state_key));
    let widget = ctx.widget_with(user, room, &asked).await?;
    Ok((widget, state_key))
}

/// Every case of the suite, area by area; each enforces the one text.
pub fn cases() -> Vec<Case> {
    AREA_CASES
        .iter()
        .flat_map(|area| area())
        .map(|case| case.revisions(&[Rev::Widget2026]))
        .collect()
}

/// Everything a widget that sends and manages delayed messages and `STATE_TYPE` state asks for.
pub fn all_caps() -> Vec<String> {
    caps::delayed(&["m.room.message"], &[STATE_TYPE])
}

/// Alice, whose driver runs in a fresh room with every capability approved; bob, who watches the
/// room over /sync.
pub async fn alice_widget_and_bob(ctx: &Ctx) -> Result<WidgetScene, Stop> {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_bob().await?;
    let widget = ctx.widget_with(&alice, &room, &all_caps()).await?;
    Ok(WidgetScene { widget, bob, room })
}

/// The widget suite's usual cast: alice's widget (her driver, every capability approved), and bob
/// watching their room.
pub struct WidgetScene {
    pub widget: Widget,
    pub bob: User,
    pub room: String,
}

/// Schedules a delayed message through the widget; the reply must carry a delay_id.
pub async fn widget_schedules(
    ctx: &Ctx,
    widget: &Widget,
    what: &str,
    delay_ms: i64,
) -> Result<(DelayedEvent, Scheduled), Stop> {
    let event = DelayedEvent::message(&widget.room_id, &ctx.unique(what));
    let (reply, delay_id) = widget.schedule_ok(&event, delay_ms).await?;
    Ok((event, Widget::scheduled(&reply, &delay_id, delay_ms)))
}

/// Fails unless the reply is an error reply (`what` says what was asked).
pub fn check_error_reply(reply: &crate::widget::Reply, what: &str) -> Result<(), Stop> {
    check!(
        reply.is_error(),
        "{what}: expected a widget error response, but {}",
        reply.describe()
    );
    Ok(())
}

/// Fails if `delay_id` is no longer scheduled on the homeserver (the listing lacks it).
pub async fn check_still_scheduled(user: &User, delay_id: &str, after: &str) -> Result<(), Stop> {
    check!(
        user.listed(delay_id).await?.is_some(),
        "after {after}, the delayed event {delay_id} is no longer scheduled on the homeserver (not in \
         the listing): the driver changed it anyway"
    );
    Ok(())
}
