//! The whole catalogue against a real Synapse that the harness installs (first run only) and
//! starts itself: every case passes, or is a known divergence listed with its reason in
//! suites/expectations/synapse.toml (then it is reported as xfail). Runs the real binary, so the
//! command line, the exit status and the results file are tested as users meet them.

use std::collections::BTreeMap;
use std::process::Command;

#[test]
fn catalogue_against_the_managed_synapse() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.json");
    let output = Command::new(env!("CARGO_BIN_EXE_delayed-events-conformance"))
        .args(["run", "--quiet", "--json"])
        .arg(&results)
        .output()
        .expect("the harness binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        results.exists(),
        "no results file; exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status.code()
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    assert_eq!(report["schema"], 1);
    assert_eq!(report["target"]["kind"], "synapse");
    let mut unexpected = BTreeMap::new();
    for case in report["cases"].as_array().unwrap() {
        let outcome = case["outcome"].as_str().unwrap();
        if outcome != "pass" && outcome != "xfail" {
            unexpected.insert(
                case["id"].as_str().unwrap().to_string(),
                (outcome.to_string(), case["message"].clone()),
            );
        }
    }
    assert!(
        unexpected.is_empty(),
        "cases neither passing nor listed in suites/expectations/synapse.toml:\n{unexpected:#?}\nstdout tail:\n{}",
        stdout.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "exit status\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let text = std::fs::read_to_string(&results).unwrap();
    assert!(
        !text.contains("access_token\": \"syt_"),
        "an access token leaked into the results file"
    );
}
