//! The whole catalogue against a real Synapse that the harness installs (first run only) and
//! starts itself: every case passes, or is a known divergence listed with its reason in
//! suites/expectations/synapse.toml (then it is reported as xfail). Runs the real binary, so the
//! command line, the exit status and the results file are tested as users meet them.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Mutex;

/// The tests here run one at a time: each starts Synapse processes that use a core each, and the
/// catalogue's timing cases judge the harness fallen behind (`error`) when the two cores are
/// shared with another test's Synapses, as a user's run never shares them.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Cases that skip against Synapse 1.163.2, each with a phrase of its reason: what it does not
/// offer (the dedicated endpoint, the stable prefix) or keep (finalised events). Any other skip
/// fails the test, as an unlisted failure does.
const SKIPS_ON_SYNAPSE: &[(&str, &str)] = &[
    // The deployment area needs Synapse with workers (tests/synapse_workers.rs).
    (
        "msc4140.deployment.heartbeats_survive_main_restart",
        "runs as a single process",
    ),
    (
        "msc4140.deployment.scheduled_on_worker_sent_once",
        "runs as a single process",
    ),
    (
        "msc4140.deployment.crash_of_sending_process_sends_once",
        "runs as a single process",
    ),
    (
        "msc4140.deployment.lookups_agree_across_workers",
        "runs as a single process",
    ),
    (
        "msc4140.listing.lookup_after_timer_sent",
        "keeps no finalised delayed events",
    ),
    (
        "msc4140.listing.lookup_after_send_action",
        "keeps no finalised delayed events",
    ),
    (
        "msc4140.listing.lookup_after_cancel",
        "keeps no finalised delayed events",
    ),
    (
        "msc4140.errors.endpoint_missing_delay_ms",
        "dedicated scheduling endpoint",
    ),
    (
        "msc4140.errors.endpoint_missing_content",
        "dedicated scheduling endpoint",
    ),
    (
        "msc4140.errors.endpoint_state_key_not_a_string",
        "dedicated scheduling endpoint",
    ),
    (
        "msc4140.errors.endpoint_without_body",
        "dedicated scheduling endpoint",
    ),
    (
        "msc4140.unstable_prefix.stable_endpoints_once_advertised",
        "does not advertise",
    ),
    (
        "msc4140.auth.rules_on_each_prefix",
        "does not serve both prefixes",
    ),
];

#[test]
fn catalogue_against_the_managed_synapse() {
    let _alone = alone();
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
        let id = case["id"].as_str().unwrap();
        let message = case["message"].as_str().unwrap_or_default();
        let known_skip = outcome == "skip"
            && SKIPS_ON_SYNAPSE
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
        "cases neither passing, listed in suites/expectations/synapse.toml, nor known to skip:\n{unexpected:#?}\nstdout tail:\n{}",
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

/// The managed Synapse restarts with its data kept (what the persistence cases rely on): a user
/// registered before the restart is still logged in after it.
#[test]
fn managed_synapse_restarts_with_its_data() {
    let _alone = alone();
    use dec_harness::client::{http_client, Client};
    use dec_harness::homeserver::synapse::{SynapseOptions, SynapseTarget};
    use dec_harness::homeserver::Target;

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let options = SynapseOptions {
            show_progress: false,
            ..SynapseOptions::default()
        };
        let target = SynapseTarget::start(options)
            .await
            .expect("the managed Synapse starts");
        let anon = Client::new(http_client(), &target.info().base_url, Default::default());
        let user = dec_harness::users::register(&anon, &target.registration(), "restart")
            .await
            .expect("a user registers");
        target
            .restart()
            .await
            .expect("the managed Synapse restarts");
        let whoami = user
            .get("/_matrix/client/v3/account/whoami")
            .send()
            .await
            .unwrap();
        assert_eq!(
            whoami.status,
            200,
            "the access token survives the restart: {}",
            whoami.describe()
        );
        assert_eq!(whoami.body["user_id"], user.user_id);
        let log = target.log_tail(50).unwrap_or_default();
        target.shutdown().await;
        assert!(!log.is_empty(), "the server log is readable");
    });
}

/// A Synapse with delayed events switched off: the run says "not implemented" and exits 1, every
/// case skips with that reason but the one about the dangerous fallback, which passes (Synapse
/// refuses the delayed request rather than sending it at once).
#[test]
fn synapse_without_delayed_events_is_not_implemented() {
    let _alone = alone();
    let dir = tempfile::tempdir().unwrap();
    let (config, results) = (dir.path().join("off.yaml"), dir.path().join("off.json"));
    std::fs::write(&config, "max_event_delay_duration: null\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_delayed-events-conformance"))
        .args(["run", "--quiet", "--suite", "msc4140", "--synapse-config"])
        .arg(&config)
        .arg("--json")
        .arg(&results)
        .output()
        .expect("the harness binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "exit status\n{stdout}");
    assert!(
        stdout.contains("delayed events: NOT IMPLEMENTED"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    assert!(report["not_implemented"].as_str().is_some(), "{report:#}");
    for case in report["cases"].as_array().unwrap() {
        let (id, outcome) = (
            case["id"].as_str().unwrap(),
            case["outcome"].as_str().unwrap(),
        );
        if id == "msc4140.timing.delay_never_ignored" {
            assert_eq!(outcome, "pass", "{case:#}");
        } else {
            assert_eq!(outcome, "skip", "{id}: {case:#}");
            let message = case["message"].as_str().unwrap();
            assert!(
                message.starts_with("delayed events are not offered"),
                "{id}: {message}"
            );
        }
    }
}
