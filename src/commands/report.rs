//! `report`: saved results files rendered again: one run's report, or the matrix of several.
//! `run` writes its reports through the same `write_reports`.

use crate::args::{write_file as write, ReportArgs, UsageError};
use crate::report::{html, junit, markdown, matrix};
use crate::results::RunReport;
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn report(args: &ReportArgs) -> Result<ExitCode, UsageError> {
    let runs = args
        .results
        .iter()
        .map(|p| RunReport::load(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(UsageError)?;
    let files = ReportFiles {
        html: args.html.as_deref(),
        markdown: args.markdown.as_deref(),
        ..ReportFiles::default()
    };
    let markdown_text = write_reports(&runs, &files)?;
    if args.html.is_none() && args.markdown.is_none() {
        print!("{markdown_text}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the reports go; the results file (`json`) and JUnit XML are one run's.
#[derive(Default)]
pub(crate) struct ReportFiles<'a> {
    pub(crate) json: Option<&'a Path>,
    pub(crate) junit: Option<&'a Path>,
    pub(crate) html: Option<&'a Path>,
    pub(crate) markdown: Option<&'a Path>,
}

/// Writes the reports asked for: one run's, or the matrix of several. Returns the Markdown.
pub(crate) fn write_reports(runs: &[RunReport], to: &ReportFiles) -> Result<String, UsageError> {
    let one = match runs {
        [one] => Some(one),
        _ => None,
    };
    if let (Some(path), Some(one)) = (to.json, one) {
        write(
            path,
            &serde_json::to_string_pretty(one).expect("results serialise"),
        )?;
    }
    if let (Some(path), Some(one)) = (to.junit, one) {
        write(path, &junit::render(one))?;
    }
    if let Some(path) = to.html {
        write(
            path,
            &one.map_or_else(|| matrix::render_html(runs), html::render),
        )?;
    }
    let html_path = to.html.map(|p| p.display().to_string());
    let markdown_text = one.map_or_else(
        || matrix::render_markdown_with(runs, html_path.as_deref()),
        markdown::render,
    );
    if let Some(path) = to.markdown {
        write(path, &markdown_text)?;
    }
    Ok(markdown_text)
}
