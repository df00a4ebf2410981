//! The fault matrix, one check for every self-test that runs a catalogue against a deliberately
//! faulty counterpart (the fake homeserver's [`Fault`](super::fake_homeserver::Fault)s, the widget
//! stand-in's `--fault` switches).
//!
//! Each fault declares, beside its own doc ([`declare_faults!`]), the cases it must break and a
//! phrase each failure message must contain, and the cases it may leave skipped. Given the
//! catalogue's outcomes with no fault and with each fault, the checks here say: every case passes
//! clean ([`assert_clean`]); each fault fails exactly its declared cases, each message naming the
//! phrase ([`check_each_fault`] runs the catalogue per fault and asserts
//! [`assert_faults_break_what_they_declare`]); every case is broken by some fault
//! ([`assert_every_case_covered`]). `DEC_SELFTEST_FAULTS=A,B` runs only the faults named
//! ([`selected`]).
#![allow(dead_code)]

use dec_harness::outcome::Outcome;
use dec_harness::results::CaseReport;
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

pub use dec_fake_homeserver::{declare_faults, Declared, Skips};

/// The faults to run: those that declare a case, narrowed to the names in
/// `DEC_SELFTEST_FAULTS=NameA,NameB` when it is set (quicker while writing a case).
pub fn selected<F: Copy>(all: &[F], declared: impl Fn(F) -> Declared) -> Vec<F> {
    let only: Option<Vec<String>> = std::env::var("DEC_SELFTEST_FAULTS")
        .ok()
        .map(|list| list.split(',').map(|s| s.trim().to_string()).collect());
    if let Some(only) = &only {
        // The other self-test's names are not an error here: the variable serves both.
        let known: Vec<&str> = all.iter().map(|f| declared(*f).fault).collect();
        let unknown: Vec<&String> = only
            .iter()
            .filter(|name| !known.contains(&name.as_str()))
            .collect();
        if !unknown.is_empty() {
            eprintln!(
                "DEC_SELFTEST_FAULTS: no fault here is named {unknown:?} (known: {})",
                known.join(", ")
            );
        }
    }
    all.iter()
        .copied()
        .filter(|f| !declared(*f).breaks.is_empty())
        .filter(|f| {
            only.as_ref()
                .is_none_or(|o| o.iter().any(|name| name == declared(*f).fault))
        })
        .collect()
}

/// The fault-matrix check of a catalogue: runs it with each fault `selected` (`parallel` runs at
/// once) and asserts [`assert_faults_break_what_they_declare`].
pub async fn check_each_fault<F, Fut>(
    all: &[F],
    declared: impl Fn(F) -> Declared,
    parallel: usize,
    run: impl Fn(F) -> Fut,
) where
    F: Copy,
    Fut: Future<Output = Vec<CaseReport>>,
{
    let faults = selected(all, &declared);
    let runs: Vec<(Declared, Vec<CaseReport>)> = run_each(&faults, parallel, run)
        .await
        .into_iter()
        .map(|(fault, reports)| (declared(fault), reports))
        .collect();
    assert_faults_break_what_they_declare(&runs);
}

/// Runs `run` for each fault, `parallel` at once; the reports in the order of `faults`.
pub async fn run_each<F, Fut>(
    faults: &[F],
    parallel: usize,
    run: impl Fn(F) -> Fut,
) -> Vec<(F, Vec<CaseReport>)>
where
    F: Copy,
    Fut: Future<Output = Vec<CaseReport>>,
{
    let run = &run;
    let mut runs: Vec<(usize, F, Vec<CaseReport>)> =
        futures::stream::iter(faults.iter().copied().enumerate())
            .map(|(at, fault)| async move { (at, fault, run(fault).await) })
            .buffer_unordered(parallel)
            .collect()
            .await;
    runs.sort_by_key(|(at, _, _)| *at);
    runs.into_iter()
        .map(|(_, fault, reports)| (fault, reports))
        .collect()
}

/// One line per report: id, outcome and message (indented where it runs over several lines).
pub fn describe(report: &CaseReport) -> String {
    format!(
        "{} → {}: {}",
        report.id,
        report.outcome.as_str(),
        indent(report.message.as_deref().unwrap_or(""))
    )
}

fn indent(text: &str) -> String {
    text.replace('\n', "\n        ")
}

/// With no fault, every case passes (`may_skip`: the cases this environment cannot run).
pub fn assert_clean(reports: &[CaseReport], what: &str, may_skip: impl Fn(&CaseReport) -> bool) {
    let bad: Vec<String> = reports
        .iter()
        .filter(|r| !(r.outcome == Outcome::Pass || (r.outcome == Outcome::Skip && may_skip(r))))
        .map(|r| format!("  {}", describe(r)))
        .collect();
    assert!(
        bad.is_empty(),
        "against the {what}, every case must pass; {} of {} did not:\n{}",
        bad.len(),
        reports.len(),
        bad.join("\n")
    );
}

/// Each fault fails exactly the cases it declares, each message containing the declared phrase;
/// every other case passes, or skips where the fault allows it. All problems are reported at
/// once, grouped by fault.
pub fn assert_faults_break_what_they_declare(runs: &[(Declared, Vec<CaseReport>)]) {
    let mut problems: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (declared, reports) in runs {
        let wanted: BTreeMap<&str, &str> = declared.breaks.iter().copied().collect();
        let mut list = Vec::new();
        for report in reports {
            let message = report.message.as_deref().unwrap_or("");
            match (wanted.get(report.id.as_str()), report.outcome) {
                (Some(phrase), Outcome::Fail) if message.contains(phrase) => {}
                (Some(phrase), Outcome::Fail) => list.push(format!(
                    "{} failed, but its message does not contain \"{phrase}\":\n        {}",
                    report.id,
                    indent(message)
                )),
                (Some(phrase), _) => list.push(format!(
                    "should fail (naming \"{phrase}\"), but {}",
                    describe(report)
                )),
                (None, Outcome::Pass) => {}
                (None, Outcome::Skip)
                    if declared.skips.allow(&report.id, report.message.as_deref()) => {}
                (None, _) => list.push(format!("should pass, but {}", describe(report))),
            }
        }
        let ran: BTreeSet<&str> = reports.iter().map(|r| r.id.as_str()).collect();
        for case in wanted.keys().filter(|case| !ran.contains(*case)) {
            list.push(format!("{case} is declared, but did not run"));
        }
        if !list.is_empty() {
            problems.insert(declared.fault, list);
        }
    }
    let count: usize = problems.values().map(Vec::len).sum();
    let text: Vec<String> = problems
        .iter()
        .map(|(fault, list)| {
            let declared = runs
                .iter()
                .find(|(d, _)| d.fault == *fault)
                .map_or(0, |(d, _)| d.breaks.len());
            format!(
                "{fault} (declares {declared} case(s)):\n{}",
                list.iter()
                    .map(|p| format!("  - {p}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })
        .collect();
    assert!(
        problems.is_empty(),
        "fault matrix: {count} problem(s) with {} of {} fault(s) run:\n{}",
        problems.len(),
        runs.len(),
        text.join("\n")
    );
}

/// Every case of the catalogue is broken by some fault, and no fault declares a case that does
/// not exist.
pub fn assert_every_case_covered<'a>(
    declared: &[Declared],
    case_ids: impl IntoIterator<Item = &'a str>,
    covered_elsewhere: &[&'a str],
) {
    let ids: BTreeSet<&str> = case_ids.into_iter().collect();
    let covered: BTreeSet<&str> = declared
        .iter()
        .flat_map(|d| d.breaks.iter().map(|(case, _)| *case))
        .chain(covered_elsewhere.iter().copied())
        .collect();
    let uncovered: Vec<&&str> = ids.difference(&covered).collect();
    let unknown: Vec<String> = declared
        .iter()
        .flat_map(|d| {
            d.breaks
                .iter()
                .map(|(case, _)| *case)
                .chain(
                    match d.skips {
                        Skips::Cases(cases) => cases,
                        _ => &[],
                    }
                    .iter()
                    .copied(),
                )
                .filter(|case| !ids.contains(case))
                .map(move |case| format!("{} declares {case}", d.fault))
        })
        .collect();
    assert!(
        uncovered.is_empty() && unknown.is_empty(),
        "{}{}",
        if uncovered.is_empty() {
            String::new()
        } else {
            format!(
                "{} case(s) no fault breaks (declare them beside the fault that should):\n  {}\n",
                uncovered.len(),
                uncovered
                    .iter()
                    .map(|s| **s)
                    .collect::<Vec<_>>()
                    .join("\n  ")
            )
        },
        if unknown.is_empty() {
            String::new()
        } else {
            format!(
                "declared cases that do not exist:\n  {}\n",
                unknown.join("\n  ")
            )
        }
    );
}
