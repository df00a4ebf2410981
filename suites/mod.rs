//! The catalogue: every case, one file per area under `msc4140/` (homeservers) and `msc4157/`
//! (widget drivers).

pub mod msc4140;
pub mod msc4157;

use crate::case::Case;

/// The areas of the MSC4140 suite, in report order.
pub use msc4140::AREAS;

/// Every case of the homeserver suite (MSC4140), in a stable order.
pub fn catalogue() -> Vec<Case> {
    msc4140::cases()
}

/// Every case of the widget-driver suite (MSC4157), in a stable order.
pub fn widget_catalogue() -> Vec<Case> {
    msc4157::cases()
}

/// Every case of both suites: the ids an expectation file may name.
pub fn all_cases() -> Vec<Case> {
    let mut cases = catalogue();
    cases.extend(widget_catalogue());
    cases
}
