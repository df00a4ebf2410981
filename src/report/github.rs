//! GitHub Actions workflow commands: one `::error` annotation per unexpected failure (title = case
//! id) and the server log tails in `::group::` blocks.

use crate::report::spec_label;
use crate::results::RunReport;
use std::fmt::Write;

pub fn render(run: &RunReport) -> String {
    let mut out = String::new();
    if let Some(reason) = &run.not_implemented {
        let _ = writeln!(
            out,
            "::error title=delayed events not implemented::{}",
            escape_data(&format!(
                "{reason}. Every case that needs delayed events skipped; the run fails."
            ))
        );
    }
    for case in run.cases.iter().filter(|c| c.is_unexpected_failure()) {
        let got = match case.outcome {
            crate::outcome::Outcome::Xpass => {
                "now passes: remove it from the expectation file".to_string()
            }
            _ => case.message.clone().unwrap_or_default(),
        };
        let text = format!(
            "{} {} ({}): \"{}\"\n{} — {}",
            case.outcome.as_str(),
            case.level,
            spec_label(&case.spec),
            case.spec.text,
            got,
            case.title
        );
        let _ = writeln!(
            out,
            "::error title={}::{}",
            escape_property(&case.id),
            escape_data(&text)
        );
    }
    for case in &run.cases {
        if let (true, Some(tail)) = (case.is_unexpected_failure(), &case.server_log_tail) {
            let _ = writeln!(out, "::group::server log before {}", escape_data(&case.id));
            // A log line that looks like a workflow command must not act as one.
            for line in tail.lines() {
                let guard = if line.trim_start().starts_with("::") {
                    " "
                } else {
                    ""
                };
                let _ = writeln!(out, "{guard}{line}");
            }
            let _ = writeln!(out, "::endgroup::");
        }
    }
    out
}

fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}
