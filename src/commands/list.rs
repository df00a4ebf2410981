//! `list`: every case with its id, area, level and spec reference.

use crate::args::{ListArgs, UsageError};
use crate::case::Case;
use crate::catalogue::Catalogue;
use std::process::ExitCode;

pub(crate) fn list(args: &ListArgs, catalogue: &Catalogue) -> Result<ExitCode, UsageError> {
    let cases: Vec<&Case> = catalogue.all_cases().collect();
    if args.json {
        let rows: Vec<serde_json::Value> = cases.iter().map(|c| case_listing(c)).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("listing serialises")
        );
    } else {
        for case in &cases {
            println!(
                "{:<62} {:<15} {:<6} {} {} § {}",
                case.id,
                case.area(),
                case.level.as_str(),
                case.spec.doc,
                case.spec.revision,
                case.spec.section
            );
        }
        println!("{} cases", cases.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// One case as `list --json` prints it.
pub fn case_listing(case: &Case) -> serde_json::Value {
    serde_json::json!({
        "id": case.id, "title": case.title, "area": case.area(), "level": case.level,
        "spec": case.spec, "revisions": case.revisions,
    })
}
