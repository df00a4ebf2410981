//! The container tests' opt-out: `DEC_SKIP_CONTAINER_TESTS=1` skips them where no engine can run,
//! and says so; without it they run, and fail with what to set up when the engine is missing.

/// True (after printing a SKIPPED line naming `test` and what goes untested) when the container
/// tests are to be skipped.
pub fn skipped(test: &str, untested: &str) -> bool {
    let skip = std::env::var("DEC_SKIP_CONTAINER_TESTS").is_ok_and(|v| v == "1");
    if skip {
        // Straight to stderr: libtest captures eprintln! of passing tests, and a skip must show.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: DEC_SKIP_CONTAINER_TESTS=1 ({untested} is untested)"
        );
    }
    skip
}
