//! The catalogue of delayed-events-conformance: every case, one file per area under `msc4140/`
//! (homeservers) and `msc4157/` (widget drivers), and the expectation files of known servers and
//! drivers. The harness (`dec-harness`) runs it: `catalogue()` is what the command line hands it.

pub mod msc4140;
pub mod msc4157;

// The harness's modules, as the case files name them (`crate::prelude::*`, `crate::api::...`).
pub(crate) use dec_harness::{api, case, client, homeserver, judgements, prelude, spec, widget};

use dec_harness::catalogue::{Catalogue, Suite};

/// The expectation files, compiled in: the harness chooses one by the server's or the driver's
/// identity. Every file in `expectations/` must be listed (a test checks).
pub const BUNDLED_EXPECTATIONS: &[(&str, &str)] = &[
    (
        "suites/expectations/synapse.toml",
        include_str!("expectations/synapse.toml"),
    ),
    (
        "suites/expectations/rust-sdk.toml",
        include_str!("expectations/rust-sdk.toml"),
    ),
    (
        "suites/expectations/widget-api.toml",
        include_str!("expectations/widget-api.toml"),
    ),
];

/// Both suites and their expectation files, as the harness takes them.
pub fn catalogue() -> Catalogue {
    Catalogue {
        suites: vec![
            Suite {
                name: "msc4140",
                areas: AREAS.to_vec(),
                cases: msc4140::cases(),
            },
            Suite {
                name: "msc4157",
                areas: msc4157::AREAS.to_vec(),
                cases: msc4157::cases(),
            },
        ],
        bundled_expectations: BUNDLED_EXPECTATIONS.to_vec(),
    }
}

/// The areas of the MSC4140 suite, in report order.
pub use msc4140::AREAS;

#[cfg(test)]
mod tests {
    use super::*;
    use dec_harness::expectations::Expectations;
    use std::collections::BTreeSet;
    use std::path::Path;

    #[test]
    fn every_bundled_file_parses_and_names_its_server() {
        let catalogue = catalogue();
        let ids: BTreeSet<&str> = catalogue.all_cases().map(|c| c.id).collect();
        for (file, text) in BUNDLED_EXPECTATIONS {
            let loaded = Expectations::parse(text, file).unwrap();
            let server = loaded
                .server
                .clone()
                .expect("a bundled file says which server it is for");
            assert!(!server.versions.is_empty(), "{file}: names its versions");
            assert_eq!(
                loaded.stale(&ids),
                Vec::<&str>::new(),
                "{file}: entries of no case"
            );
        }
    }

    #[test]
    fn every_file_in_the_folder_is_bundled() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("expectations");
        for file in std::fs::read_dir(dir).unwrap() {
            let name = format!(
                "suites/expectations/{}",
                file.unwrap().file_name().to_string_lossy()
            );
            assert!(
                BUNDLED_EXPECTATIONS
                    .iter()
                    .any(|(bundled, _)| *bundled == name),
                "{name} is not in BUNDLED_EXPECTATIONS"
            );
        }
    }
}
