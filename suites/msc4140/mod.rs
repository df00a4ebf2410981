//! MSC4140 (delayed events): one module per area.

mod auth;
mod cancellation;
mod capabilities;
mod errors;
mod idempotency;
mod limits;
mod listing;
mod persistence;
mod power_levels;
mod rate_limits;
mod restart;
mod send_now;
mod state_overwrite;
mod texts;
mod timing;
mod unsigned;
mod unstable_prefix;
mod use_cases;

use crate::case::Case;

/// The delay of events a case waits for: short, so the catalogue runs in seconds.
pub const SHORT_DELAY_MS: i64 = 1000;

/// The delay of events a case never waits for (ten minutes: under any server's maximum).
pub const LONG_DELAY_MS: i64 = 600_000;

pub fn cases() -> Vec<Case> {
    let areas: [fn() -> Vec<Case>; 17] = [
        timing::cases,
        send_now::cases,
        cancellation::cases,
        restart::cases,
        listing::cases,
        idempotency::cases,
        errors::cases,
        unstable_prefix::cases,
        capabilities::cases,
        power_levels::cases,
        state_overwrite::cases,
        persistence::cases,
        limits::cases,
        rate_limits::cases,
        auth::cases,
        unsigned::cases,
        use_cases::cases,
    ];
    areas.iter().flat_map(|area| area()).collect()
}
