//! `report`: saved results files rendered again: one run's report, or the matrix of several.

use crate::args::{ReportArgs, UsageError};
use crate::results::RunReport;
use std::path::PathBuf;
use std::process::ExitCode;

/// `report`: one saved run's report, or the matrix of several.
pub(crate) fn report(args: &ReportArgs) -> Result<ExitCode, UsageError> {
    use crate::report::{html, markdown, matrix};
    let runs = args
        .results
        .iter()
        .map(|p| RunReport::load(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(UsageError)?;
    let (html_text, markdown_text) = match runs.as_slice() {
        [one] => (html::render(one), markdown::render(one)),
        several => (
            matrix::render_html(several),
            matrix::render_markdown(several),
        ),
    };
    let write = |path: &PathBuf, text: &str| {
        std::fs::write(path, text)
            .map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))
    };
    if let Some(path) = &args.html {
        write(path, &html_text)?;
    }
    if let Some(path) = &args.markdown {
        write(path, &markdown_text)?;
    }
    if args.html.is_none() && args.markdown.is_none() {
        print!("{markdown_text}");
    }
    Ok(ExitCode::SUCCESS)
}
