//! Which expectation file a run applies (the one given, none, or the bundled one written for the
//! server or driver that answered), its stale entries, and `--update-expectations`.

use super::Expectations;
use crate::args::{RunArgs, UsageError};
use crate::catalogue::Catalogue;
use crate::homeserver::identity::Identity;
use crate::results::{AppliedExpectations, RunReport};
use std::collections::BTreeSet;

/// The expectation file given on the command line (`--expectations`, or an existing
/// `--update-expectations` file), read before anything starts so that a bad file costs nothing.
pub(crate) fn given_expectations(
    args: &RunArgs,
    catalogue: &Catalogue,
) -> Result<Option<(Expectations, AppliedExpectations)>, UsageError> {
    let update = args.update_expectations.as_ref().filter(|p| p.exists());
    let (path, why) =
        match (&args.expectations, update) {
            (Some(given), Some(update)) if !same_file(given, update) => {
                return Err(UsageError(format!(
                    "--update-expectations {} exists and would be updated from outcomes judged by \
                 another file (--expectations {}): give the same file to both, or a new file \
                 to --update-expectations",
                    update.display(),
                    given.display()
                )))
            }
            (Some(given), _) => (given, "given with --expectations"),
            (None, Some(_)) if args.no_expectations => return Err(UsageError(
                "--no-expectations with an existing --update-expectations file: the file would \
                 be updated from outcomes it did not judge; give a new file"
                    .into(),
            )),
            (None, Some(update)) => (
                update,
                "given with --update-expectations (updated after the run)",
            ),
            (None, None) => return Ok(None),
        };
    let loaded = Expectations::load(path).map_err(UsageError)?;
    check_stale(&loaded, &path.display().to_string(), args.strict, catalogue)?;
    Ok(Some((
        loaded,
        AppliedExpectations {
            file: path.display().to_string(),
            why: why.into(),
        },
    )))
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Entries for cases that no longer exist: a warning, or with --strict an error.
fn check_stale(
    file: &Expectations,
    origin: &str,
    strict: bool,
    catalogue: &Catalogue,
) -> Result<(), UsageError> {
    let ids: BTreeSet<&str> = catalogue.all_cases().map(|c| c.id).collect();
    let stale = file.stale(&ids);
    if stale.is_empty() {
        return Ok(());
    }
    let message = format!(
        "{origin} lists {} case(s) that do not exist (renamed or removed; `list` shows the ids): {}",
        stale.len(),
        stale.join(", ")
    );
    if strict {
        return Err(UsageError(format!("{message} (an error with --strict)")));
    }
    eprintln!("warning: {message}");
    Ok(())
}

/// The expectations of a run: the given file, none (--no-expectations), or the bundled file
/// written for the detected server (or widget driver) and version. Says which and why on stderr.
pub(crate) fn choose_expectations(
    args: &RunArgs,
    catalogue: &Catalogue,
    given: Option<(Expectations, AppliedExpectations)>,
    identity: Option<&Identity>,
) -> Result<(Expectations, Option<AppliedExpectations>), UsageError> {
    let chosen = match given {
        Some(given) => Some(given),
        None if args.no_expectations => {
            eprintln!("expectations: none (--no-expectations)");
            None
        }
        None => match super::choose_bundled(
            &catalogue.bundled_expectations,
            identity.map(|i| i.name.as_str()),
            identity.and_then(|i| i.version.as_deref()),
        )
        .map_err(UsageError)?
        {
            Ok(bundled) => {
                check_stale(&bundled.0, &bundled.1.file, args.strict, catalogue)?;
                Some(bundled)
            }
            Err(why_none) => {
                eprintln!("expectations: {why_none}");
                None
            }
        },
    };
    Ok(match chosen {
        Some((file, applied)) => {
            eprintln!(
                "expectations: {} ({} entries) — {}",
                applied.file,
                file.len(),
                applied.why
            );
            (file, Some(applied))
        }
        None => (Expectations::default(), None),
    })
}

/// `--update-expectations FILE`: the applied file updated from the run's outcomes.
pub(crate) fn update_expectations(
    path: &std::path::Path,
    applied: &Expectations,
    report: &RunReport,
    catalogue: &Catalogue,
) -> Result<(), UsageError> {
    let ids: BTreeSet<&str> = catalogue.all_cases().map(|c| c.id).collect();
    // Written for what was tested: the widget driver where there is one, else the server.
    let server = match &report.target.driver {
        Some(driver) => Some(super::Server {
            name: driver.name.clone(),
            versions: vec![driver.version.clone()],
        }),
        None => report.target.server_name.clone().map(|name| super::Server {
            name,
            versions: report.target.server_version.iter().cloned().collect(),
        }),
    };
    let (text, changes) = applied.updated(&report.cases, &ids, server);
    std::fs::write(path, text)
        .map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))?;
    println!(
        "expectations written to {}: {}",
        path.display(),
        if changes.is_empty() {
            "no change".to_string()
        } else {
            changes.join("; ")
        }
    );
    Ok(())
}
