//! The published crate (`cargo package`) is what builds and runs the harness: every source file,
//! the catalogue and its expectation files (compiled in), the lock file and the docs the README
//! links; not the repository's tests, CI files or scripts. (`cargo package` itself verifies that
//! the crate builds from these files alone.)

use std::path::Path;
use std::process::Command;

#[test]
fn the_crate_holds_the_harness_sources_and_nothing_of_the_repositorys_tooling() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(root)
        .args(["package", "--list", "--allow-dirty", "--quiet"])
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo package --list: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();

    let mut needed = vec![
        "Cargo.toml".to_string(),
        "Cargo.lock".to_string(),
        "README.md".to_string(),
        "docs/revisions.md".to_string(),
    ];
    for dir in ["src", "suites"] {
        let mut stack = vec![root.join(dir)];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let relative = path.strip_prefix(root).unwrap();
                    needed.push(relative.to_string_lossy().into_owned());
                }
            }
        }
    }
    let missing: Vec<&String> = needed.iter().filter(|f| !listed.contains(f)).collect();
    assert!(missing.is_empty(), "not in the crate: {missing:?}");
    let tooling: Vec<&String> = listed
        .iter()
        .filter(|f| {
            ["tests/", "ci/", "scripts/", ".github/", ".ci/"]
                .iter()
                .any(|d| f.starts_with(d))
        })
        .collect();
    assert!(
        tooling.is_empty(),
        "repository tooling in the crate: {tooling:?}"
    );
}
