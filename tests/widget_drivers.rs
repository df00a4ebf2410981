//! The msc4157 suite against the two real widget drivers (adapters/), each in front of the managed
//! Synapse: every case passes, or is a known divergence listed with its reason in the driver's
//! expectation file (reported as xfail). Their differences are case outcomes and notes, never
//! harness errors. The adapters must be built first: scripts/build-adapters (scripts/test does).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Cases that skip on this single Synapse process, with what their reason must say: the
/// deployment area needs Synapse with workers (run by hand: `--synapse-workers 2`).
const SKIPS_ON_ONE_PROCESS: &[(&str, &str)] = &[(
    "msc4157.deployment.heartbeats_survive_main_restart",
    "runs as a single process",
)];

fn run_driver(driver: &str) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let expectations = manifest.join(format!("suites/expectations/{driver}.toml"));
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.json");
    let output = Command::new(env!("CARGO_BIN_EXE_delayed-events-conformance"))
        .args(["run", "--quiet", "--suite", "msc4157", "--driver", driver])
        // One Synapse each: the two drivers' runs go on at the same time.
        .args(["--synapse-instances", "1"])
        .arg("--expectations")
        .arg(&expectations)
        .arg("--json")
        .arg(&results)
        .output()
        .expect("the harness binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        results.exists(),
        "{driver}: no results file; exit {:?} (is the adapter built? scripts/build-adapters)\n\
         stdout:\n{stdout}\nstderr:\n{stderr}",
        output.status.code()
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    assert_eq!(report["schema"], 1);
    assert_eq!(report["target"]["kind"], "synapse");
    assert_eq!(report["target"]["driver"]["driver"], driver);
    assert!(
        report["target"]["driver"]["version"]
            .as_str()
            .is_some_and(|v| !v.is_empty() && v != "?"),
        "{driver}: the results name the library version: {}",
        report["target"]
    );
    let mut unexpected = BTreeMap::new();
    for case in report["cases"].as_array().unwrap() {
        let outcome = case["outcome"].as_str().unwrap();
        let id = case["id"].as_str().unwrap_or_default();
        let message = case["message"].as_str().unwrap_or_default();
        let known_skip = outcome == "skip"
            && SKIPS_ON_ONE_PROCESS
                .iter()
                .any(|(skips, why)| *skips == id && message.contains(why));
        if outcome != "pass" && outcome != "xfail" && !known_skip {
            unexpected.insert(
                case["id"].as_str().unwrap().to_string(),
                (outcome.to_string(), case["message"].clone()),
            );
        }
    }
    assert!(
        unexpected.is_empty(),
        "{driver}: cases neither passing nor listed in {}:\n{unexpected:#?}",
        expectations.display()
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{driver}: exit status\n{stderr}"
    );
    let text = std::fs::read_to_string(&results).unwrap();
    assert!(
        !text.contains("syt_"),
        "{driver}: an access token leaked into the results"
    );
}

#[test]
fn rust_sdk_driver_against_the_managed_synapse() {
    run_driver("rust-sdk");
}

#[test]
fn widget_api_driver_against_the_managed_synapse() {
    run_driver("widget-api");
}
