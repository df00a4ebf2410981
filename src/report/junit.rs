//! JUnit XML (quick-junit): one test suite per area, one test case per case, as the usual CI
//! reporters read it; a failure's body says what was expected and what came back, where the case
//! gave them. xfail is a skip ("expected failure: REASON"); xpass is a failure ("now
//! passes: remove it from the expectations").

use crate::outcome::Outcome;
use crate::report::{by_area, spec_label};
use crate::results::{CaseReport, RunReport};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

pub fn render(run: &RunReport) -> String {
    let mut report = Report::new(format!(
        "delayed-events-conformance against {}",
        run.implementation()
    ));
    report.set_time(Duration::from_millis(run.duration_ms));
    // All skips would read as green in CI reporters: the missing feature is a failure of its own.
    if let Some(reason) = &run.not_implemented {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status.set_type("not_implemented");
        status.set_message(format!("delayed events are not implemented: {reason}"));
        let mut suite = TestSuite::new("feature");
        suite.add_test_case(TestCase::new("delayed events offered", status));
        report.add_test_suite(suite);
    }
    for (area, cases) in by_area(&run.cases, &run.areas) {
        let mut suite = TestSuite::new(area);
        suite.add_test_cases(cases.into_iter().map(test_case));
        report.add_test_suite(suite);
    }
    report.to_string().expect("JUnit serialises")
}

fn test_case(case: &CaseReport) -> TestCase {
    let message = case.message.clone().unwrap_or_default();
    let status = match case.outcome {
        Outcome::Pass => TestCaseStatus::success(),
        Outcome::Fail | Outcome::Error | Outcome::Xpass => {
            let kind = if case.outcome == Outcome::Error {
                NonSuccessKind::Error
            } else {
                NonSuccessKind::Failure
            };
            let mut status = TestCaseStatus::non_success(kind);
            status.set_type(case.outcome.as_str());
            status.set_message(match case.outcome {
                Outcome::Xpass => format!(
                    "now passes: remove it from the expectations (listed because: {})",
                    case.expectation.as_deref().unwrap_or("no reason given")
                ),
                _ => format!(
                    "{message} — requirement ({}, {}): \"{}\"",
                    case.level,
                    spec_label(&case.spec),
                    case.spec.text
                ),
            });
            // The failure's body: what was expected and what came back, where the case said.
            let body = expected_actual_lines(case);
            if !body.is_empty() {
                status.set_description(body);
            }
            status
        }
        Outcome::Skip => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(message);
            status
        }
        Outcome::Xfail => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(format!(
                "expected failure: {}",
                case.expectation
                    .as_deref()
                    .unwrap_or("listed in the expectation file")
            ));
            status
        }
    };
    let mut test = TestCase::new(case.id.clone(), status);
    test.set_classname(case.area.clone());
    test.set_time(Duration::from_millis(case.duration_ms));
    test.add_property(Property::new("level", case.level.as_str()));
    test.add_property(Property::new("spec", spec_label(&case.spec)));
    test.add_property(Property::new("outcome", case.outcome.as_str()));
    if !case.matched_revisions.is_empty() {
        test.add_property(Property::new(
            "matched_revisions",
            case.matched_revisions.join(", "),
        ));
    }
    if matches!(
        case.outcome,
        Outcome::Fail | Outcome::Error | Outcome::Xpass | Outcome::Xfail
    ) {
        test.set_system_out(system_out(case));
    }
    test
}

/// "expected: ..." and "actual: ..." lines, those the case gave.
fn expected_actual_lines(case: &CaseReport) -> String {
    case.expected_actual()
        .iter()
        .map(|(label, value)| format!("{label}: {value}\n"))
        .collect()
}

/// The evidence (requests and answers, secrets redacted) and the server log tail.
fn system_out(case: &CaseReport) -> String {
    let mut out = String::new();
    if let Some(message) = &case.message {
        out.push_str(&format!("{message}\n\n"));
    }
    out.push_str("evidence:\n");
    for exchange in &case.evidence {
        out.push_str(&format!("{} {}", exchange.method, exchange.path));
        if let Some(body) = &exchange.request {
            out.push_str(&format!("\n  request: {body}"));
        }
        out.push_str(&format!("\n  → {} {}\n", exchange.status, exchange.body));
    }
    if let Some(tail) = &case.server_log_tail {
        out.push_str(&format!("\nserver log (last lines):\n{tail}\n"));
    }
    out
}
