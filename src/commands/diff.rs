//! `diff`: two results files compared, the regression gate.

use crate::args::{DiffArgs, UsageError};
use crate::results::RunReport;
use std::process::ExitCode;

/// `diff`: the regression gate; exit 1 when a case broke.
pub(crate) fn diff(args: &DiffArgs) -> Result<ExitCode, UsageError> {
    use crate::report::diff;
    let base = RunReport::load(&args.base).map_err(UsageError)?;
    let head = RunReport::load(&args.head).map_err(UsageError)?;
    let entries = diff::compare(&base, &head);
    print!("{}", diff::render(&base, &head, &entries));
    Ok(if diff::any_broken(&entries) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
