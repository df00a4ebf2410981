//! The stand-in widget driver (`adapters/stand-in/main.rs`), built for the tests that run it. It is
//! an example of this package, not one of its binaries, so `cargo install` never installs a test
//! double; an example gets no `CARGO_BIN_EXE_*`, so it is built here, once per test process.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The stand-in's executable, built (by cargo, with this test's profile and target folder) on
/// first use. Plain `cargo test` builds examples already; then this is a quick no-op.
pub fn binary() -> &'static str {
    static BUILT: OnceLock<String> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "build",
            "--quiet",
            "--example",
            "widget-stand-in",
        ]);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(
            status.success(),
            "cargo build --example widget-stand-in failed"
        );
        // The test executable is <target>/<profile>/deps/<name>; examples go to
        // <target>/<profile>/examples/.
        let exe = std::env::current_exe().expect("the test knows its executable");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("the test executable is in <target>/<profile>/deps");
        let path: PathBuf = profile_dir.join("examples/widget-stand-in");
        assert!(path.is_file(), "{} was not built", path.display());
        path.to_string_lossy().into_owned()
    })
}
