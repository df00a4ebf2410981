//! `cleanup`: the containers of `--target container` runs that were killed before they could
//! clean up.

use crate::args::{CleanupArgs, UsageError};
use crate::homeserver::container;
use std::process::ExitCode;

/// `cleanup`: removes what killed `--target container` runs left behind.
pub(crate) fn cleanup(args: &CleanupArgs) -> Result<ExitCode, UsageError> {
    container::prepare_environment();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| UsageError(format!("cannot start the async runtime: {e}")))?;
    let report = runtime.block_on(container::cleanup(args.all))?;
    for (name, why) in &report.removed {
        println!("removed container {name} ({why})");
    }
    if !report.kept.is_empty() {
        println!(
            "kept {} container(s) of runs still going: {} (--all removes them too)",
            report.kept.len(),
            report.kept.join(", ")
        );
    }
    if report.removed.is_empty() && report.kept.is_empty() {
        println!("nothing to clean up: no container of this suite exists");
    }
    Ok(ExitCode::SUCCESS)
}
