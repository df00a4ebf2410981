//! rate_limits: management actions and lookups are rate-limited. These need a homeserver with its
//! normal limits: the managed Synapse starts a second instance for them; elsewhere they run only
//! when asked for (`--area rate_limits`).

use super::texts::{LOOKUP_RATE_LIMIT, MANAGEMENT_RATE_LIMIT};
use super::LONG_DELAY_MS;
use crate::prelude::*;
use futures::future::join_all;

/// Requests fired at once: far beyond any sensible burst for these endpoints.
const BURST: usize = 30;

async fn first_limited(ctx: &Ctx, what: &str, answers: Vec<Resp>) -> CaseResult {
    let limited = answers
        .iter()
        .position(|r| r.status == 429 && r.errcode() == Some("M_LIMIT_EXCEEDED"));
    match limited {
        Some(n) => {
            ctx.note(format!("{what}: the first 429 M_LIMIT_EXCEEDED came at request {} of {BURST}", n + 1));
            Ok(())
        }
        None => fail!(
            "{BURST} {what} at once were all answered without a rate limit (429 M_LIMIT_EXCEEDED); statuses: {:?}",
            answers.iter().map(|r| r.status).collect::<Vec<_>>()
        ),
    }
}

async fn management(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let id = alice
        .schedule_ok(
            &DelayedEvent::message(&room, &ctx.unique("hammered")),
            LONG_DELAY_MS,
        )
        .await?
        .delay_id;
    let answers = join_all((0..BURST).map(|_| alice.manage(&id, Action::Restart))).await;
    let answers = answers.into_iter().collect::<Result<Vec<_>, _>>()?;
    first_limited(&ctx, "restart actions", answers).await
}

async fn lookups(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let answers = join_all((0..BURST).map(|_| alice.list_raw(true))).await;
    let answers = answers.into_iter().collect::<Result<Vec<_>, _>>()?;
    first_limited(&ctx, "listings of delayed events", answers).await
}

pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "msc4140.rate_limits.management_is_rate_limited",
            "A burst of management actions is rate-limited",
            Level::Should,
            MANAGEMENT_RATE_LIMIT,
            management,
        )
        .needs(&[Need::NormalRateLimits]),
        Case::new(
            "msc4140.rate_limits.lookups_are_rate_limited",
            "A burst of delayed-event lookups is rate-limited",
            Level::Should,
            LOOKUP_RATE_LIMIT,
            lookups,
        )
        .needs(&[Need::NormalRateLimits]),
    ]
}
