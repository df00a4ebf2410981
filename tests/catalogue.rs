//! Checks on the catalogue itself: ids, areas, and that every quoted sentence is really in the
//! spec text it cites. The listing is snapshotted so a changed id or reference is a visible diff.
//!
//! The quote check reads the MSC texts (`msc4140-<revision>-*.md`, as saved from the commits
//! docs/revisions.md links to) from `DEC_SPEC_DIR`, by default `../shared/spec` beside the
//! checkout. Without them it prints a SKIPPED line saying how to enable it.

use dec_catalogue::msc4140::cases as catalogue;
use dec_catalogue::msc4157::{self, cases as widget_catalogue};
use dec_catalogue::AREAS;
use dec_harness::commands::list::case_listing;
use dec_harness::spec::Rev;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Where the spec texts are: `DEC_SPEC_DIR`, or `../shared/spec` beside the checkout; `None`
/// (skip the quote check) only for the default when it is absent: a folder someone named must be
/// there.
fn spec_dir() -> Option<PathBuf> {
    match std::env::var_os("DEC_SPEC_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            assert!(
                dir.is_dir(),
                "DEC_SPEC_DIR={} is not a folder; point it at the MSC texts or unset it",
                dir.display()
            );
            Some(dir)
        }
        None => {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/spec");
            dir.is_dir().then_some(dir)
        }
    }
}

/// The spec text with Markdown links reduced to their text and whitespace folded, as quoted.
fn normalised_spec(dir: &Path, revision: Rev) -> String {
    let doc = if revision == Rev::Widget2026 {
        "msc4157"
    } else {
        "msc4140"
    };
    let prefix = format!("{doc}-{}", revision.as_str());
    let file = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .unwrap_or_else(|| {
            panic!(
                "no file {prefix}-*.md in {}: save that revision's text there (docs/revisions.md links it)",
                dir.display()
            )
        });
    let text = std::fs::read_to_string(file.path()).unwrap();
    let mut out = String::new();
    let mut rest = text.as_str();
    // [text](url) -> text
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find("](") {
            Some(close) if !after[..close].contains('[') && after[close + 2..].contains(')') => {
                out.push_str(&after[..close]);
                let tail = &after[close + 2..];
                rest = &tail[tail.find(')').unwrap() + 1..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    fold(&out.replace("**", ""))
}

fn fold(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn ids_are_unique_and_well_formed() {
    let mut seen = HashSet::new();
    for case in catalogue() {
        assert!(seen.insert(case.id), "duplicate case id {}", case.id);
        let parts: Vec<&str> = case.id.split('.').collect();
        assert_eq!(parts.len(), 3, "{}: ids are msc4140.<area>.<name>", case.id);
        assert_eq!(parts[0], "msc4140", "{}", case.id);
        assert!(
            AREAS.contains(&parts[1]),
            "{}: unknown area {}",
            case.id,
            parts[1]
        );
        assert!(
            parts[2]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{}: names are snake_case",
            case.id
        );
        assert!(
            !case.title.is_empty() && !case.title.ends_with('.'),
            "{}: one-line title",
            case.id
        );
        assert!(
            !case.revisions.is_empty(),
            "{}: names the revisions it enforces",
            case.id
        );
    }
}

#[test]
fn widget_ids_are_unique_and_well_formed() {
    let mut seen = HashSet::new();
    for case in widget_catalogue() {
        assert!(seen.insert(case.id), "duplicate case id {}", case.id);
        let parts: Vec<&str> = case.id.split('.').collect();
        assert_eq!(parts.len(), 3, "{}: ids are msc4157.<area>.<name>", case.id);
        assert_eq!(parts[0], "msc4157", "{}", case.id);
        assert!(
            msc4157::AREAS.contains(&parts[1]),
            "{}: unknown area",
            case.id
        );
        assert_eq!(case.spec.doc, "MSC4157", "{}", case.id);
        assert_eq!(case.spec.revision, Rev::Widget2026, "{}", case.id);
    }
}

#[test]
fn every_quote_is_in_the_cited_text() {
    let Some(dir) = spec_dir() else {
        // Straight to stderr: libtest captures eprintln! of passing tests, and a skip must show.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED every_quote_is_in_the_cited_text: no MSC texts in ../shared/spec beside the \
             checkout; set DEC_SPEC_DIR to a folder of msc4140-<revision>-*.md files (the texts \
             at the commits docs/revisions.md links) to check the quoted sentences"
        );
        return;
    };
    for case in catalogue().into_iter().chain(widget_catalogue()) {
        // A reconstructed revision's text is not available: its cases cite a public source.
        assert!(
            case.spec.sources.iter().all(|s| s.starts_with("https://")),
            "{}: every source cited is a public URL: {:?}",
            case.id,
            case.spec.sources
        );
        if case.spec.revision.is_reconstructed() {
            assert!(
                !case.spec.sources.is_empty() && case.spec.reconstructed,
                "{}: a case citing the reconstructed revision {} names its public sources",
                case.id,
                case.spec.revision
            );
            continue;
        }
        assert!(
            !case.spec.reconstructed,
            "{}: only the reconstructed revision cites sources instead of a quote",
            case.id
        );
        // Beside a quote, sources say what the merged text accepts besides: the note says what.
        assert!(
            case.spec.sources.is_empty() || case.spec.note.is_some(),
            "{}: a quote citing sources says in its note what they add",
            case.id
        );
        let spec = normalised_spec(&dir, case.spec.revision);
        for piece in case
            .spec
            .text
            .split("[...]")
            .map(fold)
            .filter(|p| !p.is_empty())
        {
            assert!(
                spec.contains(&piece),
                "{}: quoted text not found in {} {}:\n  {piece}",
                case.id,
                case.spec.doc,
                case.spec.revision
            );
        }
        let section = fold(case.spec.section);
        assert!(
            spec.contains(&format!("# {section}")),
            "{}: no section '{section}' in {}",
            case.id,
            case.spec.revision
        );
    }
}

#[test]
fn listing_snapshot() {
    let listing: Vec<serde_json::Value> = catalogue().iter().map(case_listing).collect();
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_json_snapshot!("catalogue", listing);
    });
}
