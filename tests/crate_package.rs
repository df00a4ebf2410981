//! The published crates (`cargo package`) are what build and run the harness: the command line
//! (the root package), the harness (`src/`, package dec-harness) and the catalogue (`suites/`,
//! package dec-catalogue, with its expectation files compiled in) and the fake homeserver the
//! harness starts for some widget cases (`fake/`, package dec-fake-homeserver), each with every source file of
//! its folder, and none of the repository's tests, CI files, scripts or pictures (docs/images/).

use std::path::Path;
use std::process::Command;

/// `cargo package --list` of one package of the workspace: paths relative to its folder.
fn listed(package: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(root)
        .args([
            "package",
            "--list",
            "--allow-dirty",
            "--quiet",
            "-p",
            package,
        ])
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo package --list -p {package}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every file under `dir` (relative to the repository), as paths relative to `dir`.
fn files_under(dir: &str) -> Vec<String> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut found = Vec::new();
    let mut stack = vec![base.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(&base).unwrap();
                found.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    found
}

fn assert_holds(package: &str, needed: &[String]) {
    let listed = listed(package);
    let missing: Vec<&String> = needed.iter().filter(|f| !listed.contains(f)).collect();
    assert!(missing.is_empty(), "not in {package}: {missing:?}");
    let tooling: Vec<&String> = listed
        .iter()
        .filter(|f| {
            [
                "tests/",
                "ci/",
                "scripts/",
                ".github/",
                ".ci/",
                "snapshots/",
                "docs/images/",
            ]
            .iter()
            .any(|d| f.starts_with(d))
        })
        .collect();
    assert!(
        tooling.is_empty(),
        "repository tooling in {package}: {tooling:?}"
    );
}

#[test]
fn the_command_line_crate_holds_its_entry_point_and_the_docs() {
    let mut needed: Vec<String> = ["Cargo.toml", "Cargo.lock", "README.md", "docs/revisions.md"]
        .map(String::from)
        .to_vec();
    needed.extend(files_under("cli").iter().map(|f| format!("cli/{f}")));
    needed.extend(
        files_under("docs")
            .iter()
            .filter(|f| f.ends_with(".md"))
            .map(|f| format!("docs/{f}")),
    );
    assert_holds("delayed-events-conformance", &needed);
    // The screenshots README shows stay in the repository.
    let listed = listed("delayed-events-conformance");
    let pictures: Vec<&String> = listed.iter().filter(|f| f.ends_with(".png")).collect();
    assert!(pictures.is_empty(), "pictures in the crate: {pictures:?}");
}

#[test]
fn the_harness_and_catalogue_crates_hold_every_source_file() {
    for (package, dir) in [
        ("dec-harness", "src"),
        ("dec-catalogue", "suites"),
        ("dec-fake-homeserver", "fake"),
    ] {
        let mut needed = files_under(dir);
        needed.push("README.md".into());
        assert_holds(package, &needed);
    }
}
