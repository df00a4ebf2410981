//! What the harness runs, handed to it as a value: the catalogue crate builds a `Catalogue` and the
//! command line passes it in. The harness never names a case; it only reads this.

use crate::case::Case;

/// The suites, in the order `list` shows them, and the expectation files that ship with them.
pub struct Catalogue {
    pub suites: Vec<Suite>,
    /// Bundled expectation files, chosen by the detected server's (or driver's) identity:
    /// (the path users see, e.g. `suites/expectations/synapse.toml`, and its text).
    pub bundled_expectations: Vec<(&'static str, &'static str)>,
}

/// One suite (`msc4140` for homeservers, `msc4157` for widget drivers): its areas in report
/// order and its cases in a stable order.
pub struct Suite {
    pub name: &'static str,
    pub areas: Vec<&'static str>,
    pub cases: Vec<Case>,
}

impl Catalogue {
    pub fn suite(&self, name: &str) -> Option<&Suite> {
        self.suites.iter().find(|s| s.name == name)
    }

    /// Every case of every suite: the ids an expectation file may name.
    pub fn all_cases(&self) -> impl Iterator<Item = &Case> {
        self.suites.iter().flat_map(|s| s.cases.iter())
    }
}
