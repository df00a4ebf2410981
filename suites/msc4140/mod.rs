//! MSC4140 (delayed events): one module per area.

mod auth;
mod cancellation;
mod capabilities;
mod content;
mod deployment;
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

// The areas, in report order: `AREAS` and `cases()` follow from this list.
dec_harness::areas!(
    timing,
    send_now,
    cancellation,
    restart,
    listing,
    idempotency,
    errors,
    unstable_prefix,
    capabilities,
    power_levels,
    state_overwrite,
    persistence,
    deployment,
    limits,
    rate_limits,
    auth,
    unsigned,
    content,
    use_cases,
);

use crate::case::Case;

/// The delay of events a case waits for: short, so the catalogue runs in seconds.
pub const SHORT_DELAY_MS: i64 = 1000;

/// The delay of events a case never waits for (ten minutes: under any server's maximum).
pub const LONG_DELAY_MS: i64 = 600_000;

/// Every case of the suite, area by area.
pub fn cases() -> Vec<Case> {
    AREA_CASES.iter().flat_map(|area| area()).collect()
}
