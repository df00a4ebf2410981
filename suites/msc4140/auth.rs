//! auth: who may manage a delayed event (authenticated and owner-only in 2024-10 and 2026-07; the
//! delay_id as credential in 2025-12), how good delay_ids are, guests, deactivated accounts.

use super::texts::{
    ALL_AUTHENTICATED, DELAY_ID_UNIQUE, FAILS_AT_SEND, GUESTS, MANAGEMENT_AUTHENTICATED,
    UNSTABLE_MANAGEMENT_PATH,
};
use super::LONG_DELAY_MS;
use crate::api::{ApiForm, Prefix};
use crate::prelude::*;
use std::collections::HashSet;

/// Room for the deactivation while the delay runs, even on a loaded server.
const DEACTIVATE_WITHIN_MS: i64 = 3000;

/// How many delay_ids the quality cases look at.
const SAMPLE: usize = 100;

/// An access token's worth of unguessability: servers' tokens carry about 100 random bits or more.
const MIN_ENTROPY_BITS: f64 = 96.0;

/// Judges a cancel request that should be refused in 2024-10 and 2026-07 and may succeed in
/// 2025-12, by its answer and by whether the event is still scheduled afterwards; answers the
/// revisions it matched.
async fn check_cancel(
    owner: &User,
    delay_id: &str,
    resp: &Resp,
    who: &str,
) -> Result<&'static [Rev], Stop> {
    // Asked until it shows what the answer implies (a lagging listing catches up), then judged.
    let still_scheduled = owner
        .listed_settled(delay_id, !resp.is_success())
        .await?
        .is_some();
    let refused = matches!(
        (resp.status, resp.errcode()),
        (401, Some("M_MISSING_TOKEN")) | (403, Some("M_FORBIDDEN")) | (404, Some("M_NOT_FOUND"))
    );
    match (resp.is_success(), refused, still_scheduled) {
        (true, _, false) => Ok(&[Rev::Dec2025]),
        (false, true, true) => Ok(&[Rev::Oct2024, Rev::Jul2026]),
        (true, _, true) => fail!("a cancel {who} answered success but the event is still scheduled: {}", resp.describe()),
        (false, _, false) => fail!("a cancel {who} was refused yet the event is no longer scheduled: {}", resp.describe()),
        (false, false, true) => fail!(
            "a cancel {who} should be refused with 401 M_MISSING_TOKEN, 403 M_FORBIDDEN or 404 M_NOT_FOUND \
             (2024-10, 2026-07) or succeed (2025-12), but {}",
            resp.describe()
        ),
    }
}

case! {
    name: management_without_token,
    title: "Management without an access token is refused (2024-10, 2026-07) or allowed (2025-12)",
    level: Must,
    spec: MANAGEMENT_AUTHENTICATED,
}
async fn management_without_token(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let id = alice
        .schedule_ok(
            &DelayedEvent::message(&room, &ctx.unique("no token")),
            LONG_DELAY_MS,
        )
        .await?
        .delay_id;
    let resp = alice
        .manage_via(&id, Action::Cancel, ctx.form().manage, false)
        .await?;
    ctx.matched(check_cancel(&alice, &id, &resp, "without an access token").await?);
    Ok(())
}

case! {
    name: management_by_another_user,
    title: "Another user managing one's delayed event is refused (2024-10, 2026-07) or allowed (2025-12)",
    level: Must,
    spec: MANAGEMENT_AUTHENTICATED,
}
async fn management_by_another_user(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?;
    let id = alice
        .schedule_ok(
            &DelayedEvent::message(&room, &ctx.unique("alice's")),
            LONG_DELAY_MS,
        )
        .await?
        .delay_id;
    let resp = bob.manage(&id, Action::Cancel).await?;
    ctx.matched(check_cancel(&alice, &id, &resp, "by another user").await?);
    Ok(())
}

case! {
    name: scheduling_without_token,
    title: "Scheduling without an access token is refused with 401",
    level: Must,
    spec: ALL_AUTHENTICATED,
}
async fn scheduling_without_token(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let resp = alice
        .schedule_without_token(
            &DelayedEvent::message(&room, &ctx.unique("no token")),
            Delay::Ms(LONG_DELAY_MS),
        )
        .await?;
    check_error(
        &resp,
        "scheduling a delayed event without an access token",
        &[401],
        &["M_MISSING_TOKEN"],
    )
}

case! {
    name: rules_on_each_prefix,
    title: "Where both prefixes are served, each refuses requests without a token and other users' requests",
    level: Must,
    spec: UNSTABLE_MANAGEMENT_PATH,
    revisions: &[Rev::Dec2025, Rev::Jul2026],
}
async fn rules_on_each_prefix(ctx: Ctx) -> CaseResult {
    let features = ctx.features();
    if !(features.unstable_prefix && features.stable_prefix) {
        skip!(
            "the server does not serve both prefixes (unstable: {}, stable: {})",
            features.unstable_prefix,
            features.stable_prefix
        );
    }
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?;
    let mut matched: Vec<(&str, &[Rev])> = Vec::new();
    for (prefix, name) in [(Prefix::Unstable, "unstable"), (Prefix::Stable, "stable")] {
        let form = ApiForm {
            prefix,
            ..ctx.form()
        };
        let (owner, other) = (alice.in_form(form), bob.in_form(form));
        let under = format!("under the {name} prefix");
        let event = DelayedEvent::message(&room, &ctx.unique(&format!("{name} prefix")));
        let first = alice.schedule_ok(&event, LONG_DELAY_MS).await?.delay_id;
        check_error(
            &owner.list_raw(false).await?,
            &format!("listing delayed events without an access token {under}"),
            &[401],
            &["M_MISSING_TOKEN"],
        )?;
        if features.single_lookup {
            check_error(
                &other.lookup(&first, true).await?,
                &format!("another user looking up alice's delayed event {under}"),
                &[404],
                &["M_NOT_FOUND"],
            )?;
        }
        let resp = owner
            .manage_via(&first, Action::Cancel, form.manage, false)
            .await?;
        let without_token = check_cancel(
            &owner,
            &first,
            &resp,
            &format!("without an access token {under}"),
        )
        .await?;
        let second = alice.schedule_ok(&event, LONG_DELAY_MS).await?.delay_id;
        let resp = other.manage(&second, Action::Cancel).await?;
        let by_other =
            check_cancel(&owner, &second, &resp, &format!("by another user {under}")).await?;
        if without_token != by_other {
            ctx.note(format!(
                "{under}, management without a token follows {without_token:?} and by another user {by_other:?}"
            ));
        }
        matched.push((name, by_other));
    }
    let revisions: Vec<Rev> = matched
        .iter()
        .flat_map(|(_, r)| r.iter().copied())
        .collect();
    if matched.windows(2).any(|w| w[0].1 != w[1].1) {
        // Each prefix answered as some revision does; that they differ is worth knowing.
        ctx.note(format!(
            "the prefixes follow different revisions' management rules: {matched:?}"
        ));
    }
    ctx.matched(&revisions);
    Ok(())
}

/// Users the samples are spread over, so a sample never nears a per-user limit (even on a server
/// whose cancels free nothing).
const SAMPLERS: usize = 5;

/// `SAMPLE` delay_ids, scheduled one after another by `SAMPLERS` users in one room, three in
/// four cancelled at once (a server that reuses finalised ids shows it).
async fn sample_delay_ids(ctx: &Ctx) -> Result<Vec<String>, Stop> {
    let owner = ctx.user("sampler0").await?;
    let mut samplers = vec![owner.clone()];
    for n in 1..SAMPLERS {
        samplers.push(ctx.user(&format!("sampler{n}")).await?);
    }
    let others: Vec<&User> = samplers.iter().skip(1).collect();
    let room = ctx.room(&owner, &others).await?;
    let mut ids = Vec::new();
    for n in 0..SAMPLE {
        let user = &samplers[n % SAMPLERS];
        let event = DelayedEvent::message(&room, &format!("sample {n}"));
        let id = user.schedule_ok(&event, LONG_DELAY_MS).await?.delay_id;
        if n % 4 != 0 {
            user.manage_ok(&id, Action::Cancel).await?;
        }
        ids.push(id);
    }
    Ok(ids)
}

case! {
    name: delay_ids_are_unique,
    title: "No delay_id is handed out twice",
    level: Must,
    spec: DELAY_ID_UNIQUE,
    revisions: &[Rev::Dec2025, Rev::Jul2026],
}
async fn delay_ids_are_unique(ctx: Ctx) -> CaseResult {
    let ids = sample_delay_ids(&ctx).await?;
    let distinct: HashSet<&String> = ids.iter().collect();
    check!(
        distinct.len() == ids.len(),
        "{} of {} delay_ids were handed out more than once (ids of cancelled events were reused?)",
        ids.len() - distinct.len(),
        ids.len()
    );
    Ok(())
}

/// Bits of randomness in the ids: the characters that vary between them (after any common
/// prefix) times the bits per character of the alphabet they use.
fn estimated_entropy_bits(ids: &[String]) -> (f64, usize, usize) {
    let prefix = ids
        .iter()
        .skip(1)
        .fold(ids.first().map(|s| s.len()).unwrap_or(0), |len, id| {
            ids[0]
                .chars()
                .zip(id.chars())
                .take(len)
                .take_while(|(a, b)| a == b)
                .count()
        });
    let shortest = ids.iter().map(|id| id.chars().count()).min().unwrap_or(0);
    let varying = shortest.saturating_sub(prefix);
    let alphabet: HashSet<char> = ids.iter().flat_map(|id| id.chars().skip(prefix)).collect();
    let bits = varying as f64 * (alphabet.len().max(1) as f64).log2();
    (bits, varying, alphabet.len())
}

case! {
    name: delay_ids_are_unguessable,
    title: "delay_ids carry as much randomness as an access token",
    level: Should,
    spec: DELAY_ID_UNIQUE,
    revisions: &[Rev::Dec2025],
}
async fn delay_ids_are_unguessable(ctx: Ctx) -> CaseResult {
    let ids = sample_delay_ids(&ctx).await?;
    let (bits, varying, alphabet) = estimated_entropy_bits(&ids);
    ctx.note(format!(
        "delay_id entropy estimated at {bits:.0} bits: {varying} varying characters from an alphabet of {alphabet} \
         (over {} ids, e.g. {:?})",
        ids.len(),
        ids.first()
    ));
    check!(
        bits.total_cmp(&MIN_ENTROPY_BITS).is_ge(),
        "delay_ids carry about {bits:.0} bits of randomness ({varying} varying characters from {alphabet} \
         symbols, e.g. {:?}); an access token's worth is at least {MIN_ENTROPY_BITS:.0}",
        ids.iter().take(3).collect::<Vec<_>>()
    );
    Ok(())
}

case! {
    name: guests_can_use_delayed_events,
    title: "A guest account can schedule, list, look up, restart and cancel delayed events",
    level: Must,
    spec: GUESTS,
    revisions: &[Rev::Dec2025, Rev::Jul2026],
}
async fn guests_can_use_delayed_events(ctx: Ctx) -> CaseResult {
    let guest = ctx.guest().await?;
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    alice
        .put_state(
            &room,
            "m.room.guest_access",
            "",
            json!({"guest_access": "can_join"}),
        )
        .await?
        .setup_step("let guests join")?;
    guest.join(&room).await?;
    let scheduled = guest
        .schedule(
            &DelayedEvent::message(&room, &ctx.unique("guest")),
            Delay::Ms(LONG_DELAY_MS),
        )
        .await?;
    check!(
        scheduled.status == 200,
        "a guest's scheduling request was refused: {}",
        scheduled.describe()
    );
    let id = scheduled
        .str_field("delay_id")
        .unwrap_or_default()
        .to_string();
    let listing = guest.list_raw(true).await?;
    check!(
        listing.is_success(),
        "a guest's listing of delayed events was refused: {}",
        listing.describe()
    );
    if ctx.features().single_lookup {
        let lookup = guest.lookup(&id, true).await?;
        check!(
            lookup.is_success(),
            "a guest's lookup of their delayed event was refused: {}",
            lookup.describe()
        );
    }
    for action in [Action::Restart, Action::Cancel] {
        let resp = guest.manage(&id, action).await?;
        check!(
            resp.is_success(),
            "a guest's {} action was refused: {}",
            action.as_str(),
            resp.describe()
        );
    }
    Ok(())
}

case! {
    name: deactivated_account_events_not_sent,
    title: "The delayed events of a deactivated account are not sent",
    level: Info,
    spec: FAILS_AT_SEND,
}
async fn deactivated_account_events_not_sent(ctx: Ctx) -> CaseResult {
    let Scene { alice, bob, room } = ctx.alice_and_bob().await?.watched_by_alice().await?;
    let event = DelayedEvent::message(&room, &ctx.unique("from a deactivated account"));
    let scheduled = bob.schedule_ok(&event, DEACTIVATE_WITHIN_MS).await?;
    let sent = Instant::now();
    bob.deactivate().await?;
    let landed = ctx.changed_in_time("the deactivation", sent, &scheduled)?;
    let what = "the delayed event of an account deactivated before its delay";
    landed.judge(
        ctx.expect_never_sent(&alice, &bob, &room, what, &scheduled, |o| event.matches(o))
            .await,
    )
}

pub fn cases() -> Vec<Case> {
    cases![
        management_without_token,
        management_by_another_user,
        scheduling_without_token,
        rules_on_each_prefix,
        delay_ids_are_unique,
        delay_ids_are_unguessable,
        guests_can_use_delayed_events,
        deactivated_account_events_not_sent,
    ]
}
