//! MSC4140 (delayed events): one module per area.

use crate::case::Case;

pub fn cases() -> Vec<Case> {
    let areas: [fn() -> Vec<Case>; 0] = [];
    areas.iter().flat_map(|area| area()).collect()
}
