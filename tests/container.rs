//! The container target, through the real binary: the whole catalogue against the Synapse image
//! scripts/build-synapse-image builds gives the same outcomes as the managed Synapse of the same
//! version; bad input (no engine, no image, an image that never answers or exits at start) ends
//! with a message saying what to do and exit status 2; no container outlives a run.
//!
//! These tests need a container engine and the image. Set them up with
//!     eval "$(scripts/setup-container-engine)" && scripts/build-synapse-image
//! Without them the tests fail and say so; `DEC_SKIP_CONTAINER_TESTS=1` skips them (visibly).

#[path = "support/container_skip.rs"]
mod container_skip;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{LazyLock, Mutex};

use dec_harness::expectations::Expectations;
use dec_harness::homeserver::container::BUILT_SYNAPSE_IMAGE;
use dec_harness::homeserver::synapse::PINNED_VERSION;
use dec_harness::outcome::Outcome;

const BINARY: &str = env!("CARGO_BIN_EXE_delayed-events-conformance");
const SETUP: &str = "Set up a container engine and the image with\n    \
                     eval \"$(scripts/setup-container-engine)\" && scripts/build-synapse-image\n\
                     or skip these tests with DEC_SKIP_CONTAINER_TESTS=1.";

/// What scripts/build-synapse-image builds by default: the managed target's pinned version.
static IMAGE_REF: LazyLock<String> =
    LazyLock::new(|| format!("{BUILT_SYNAPSE_IMAGE}:{PINNED_VERSION}"));

/// Tests that make containers run one at a time, so that each can check that none is left.
static ENGINE: Mutex<()> = Mutex::new(());

fn skipped(test: &str) -> bool {
    container_skip::skipped(test, "the container target")
}

fn harness(args: &[&str]) -> Output {
    Command::new(BINARY)
        .args(args)
        .output()
        .expect("the harness binary runs")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A catalogue run with a results file; panics with the set-up hint when the target cannot start.
fn run_catalogue(dir: &Path, name: &str, target_args: &[&str]) -> (serde_json::Value, Output) {
    let results = dir.join(format!("{name}.json"));
    let mut args = vec!["run", "--quiet", "--json", results.to_str().unwrap()];
    args.extend_from_slice(target_args);
    let output = harness(&args);
    let (stdout, stderr) = text(&output);
    if output.status.code() == Some(2) && target_args.contains(&"container") {
        panic!("the container target did not start:\n{stderr}\n{SETUP}");
    }
    assert!(
        results.exists(),
        "no results file from {name}; exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status.code()
    );
    let report = serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    (report, output)
}

fn outcomes(report: &serde_json::Value) -> BTreeMap<String, (String, String)> {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let id = c["id"].as_str().unwrap().to_string();
            let outcome = c["outcome"].as_str().unwrap().to_string();
            let message = c["message"].as_str().unwrap_or_default().to_string();
            (id, (outcome, message))
        })
        .collect()
}

/// Nothing of the suite is left in the engine (`cleanup` finds nothing to do).
fn assert_no_container_left() {
    let output = harness(&["cleanup"]);
    let (stdout, stderr) = text(&output);
    assert!(
        stdout.contains("nothing to clean up"),
        "containers were left behind:\n{stdout}{stderr}"
    );
}

#[test]
fn catalogue_against_the_container_gives_the_managed_synapses_outcomes() {
    if skipped("catalogue_against_the_container_gives_the_managed_synapses_outcomes") {
        return;
    }
    let _engine = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // No --expectations: the run picks the bundled file by the server's identity on its own.
    let (container, container_run) = run_catalogue(
        dir.path(),
        "container",
        &["--target", "container", "--image", IMAGE_REF.as_str()],
    );
    assert_no_container_left();
    let (synapse, synapse_run) = run_catalogue(dir.path(), "synapse", &[]);

    let target = &container["target"];
    assert_eq!(target["kind"], "container");
    assert_eq!(target["image"], IMAGE_REF.as_str());
    assert_eq!(target["name"], "Synapse");
    assert_eq!(target["version"], synapse["target"]["version"]);
    assert!(target["startup_ms"].as_u64().unwrap() > 0, "{target}");
    assert_eq!(target["server_name"], "Synapse", "{target}");
    assert_eq!(
        container["expectations"]["file"], "suites/expectations/synapse.toml",
        "the bundled expectations chosen by the server's identity"
    );
    assert_eq!(
        container_run.status.code(),
        Some(0),
        "exit status 0; the container run's output:\n{}",
        String::from_utf8_lossy(&container_run.stdout)
    );

    let (in_container, managed) = (outcomes(&container), outcomes(&synapse));
    assert_eq!(
        in_container.keys().collect::<Vec<_>>(),
        managed.keys().collect::<Vec<_>>(),
        "the same cases ran"
    );
    let bundled = Expectations::load(Path::new("suites/expectations/synapse.toml")).unwrap();
    let mut differences = BTreeMap::new();
    for (id, (outcome, message)) in &in_container {
        let (expected, expected_message) = &managed[id];
        // The managed target runs the rate_limits cases on a second Synapse with its normal
        // limits; an image's limits are unknown, so the container target skips them and says so.
        let rate_limited_elsewhere = id.starts_with("msc4140.rate_limits.")
            && outcome == "skip"
            && message.contains("rate limits");
        // Likewise the limit-0 case: only the managed target starts an instance with that limit.
        let limit_zero_elsewhere = id == "msc4140.limits.zero_limit_is_forbidden"
            && outcome == "skip"
            && message.contains("per-user limit of 0");
        // A known intermittent (an entry listing both pass and fail) may land either way.
        let intermittent = bundled.get(id).is_some_and(|entry| {
            [Outcome::Pass, Outcome::Fail]
                .iter()
                .all(|o| entry.expected.contains(o))
        }) && [outcome, expected]
            .iter()
            .all(|o| *o == "pass" || *o == "xfail");
        if outcome != expected && !rate_limited_elsewhere && !limit_zero_elsewhere && !intermittent
        {
            differences.insert(
                id.clone(),
                format!(
                    "container: {outcome} ({message}) / synapse: {expected} ({expected_message})"
                ),
            );
        }
    }
    assert!(
        differences.is_empty(),
        "outcomes differ between --target container and --target synapse:\n{differences:#?}"
    );
    assert_eq!(
        container_run.status.code(),
        synapse_run.status.code(),
        "the same exit status"
    );

    let restarted = in_container
        .iter()
        .any(|(id, (outcome, _))| id.starts_with("msc4140.persistence.") && outcome == "pass");
    if restarted {
        assert!(
            target["restart_ms"].as_u64().unwrap_or(0) > 0,
            "the persistence cases restarted the container: the results record how long it took: {target}"
        );
    }
    let text = serde_json::to_string(&container).unwrap();
    assert!(
        !text.contains("access_token\": \"syt_"),
        "an access token leaked into the results file"
    );
}

#[test]
fn no_engine_is_a_usage_error_that_says_how_to_get_one() {
    let output = Command::new(BINARY)
        .args([
            "run",
            "--target",
            "container",
            "--image",
            IMAGE_REF.as_str(),
        ])
        .env("DOCKER_HOST", "unix:///nonexistent/engine.sock")
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no container engine answers at unix:///nonexistent/engine.sock"));
    assert!(
        stderr.contains("scripts/setup-container-engine"),
        "{stderr}"
    );
}

#[test]
fn the_container_target_needs_an_image() {
    let output = harness(&["run", "--target", "container"]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--target container needs --image"),
        "{stderr}"
    );
    let output = harness(&["run", "--image", IMAGE_REF.as_str()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output)
        .1
        .contains("--image goes with --target container"));
}

#[test]
fn a_missing_image_is_a_usage_error_that_says_how_to_get_it() {
    if skipped("a_missing_image_is_a_usage_error_that_says_how_to_get_it") {
        return;
    }
    let missing = "localhost/delayed-events-conformance/synapse:0.0.0-missing";
    let output = harness(&["run", "--target", "container", "--image", missing]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        !stderr.contains("no container engine answers"),
        "{stderr}\n{SETUP}"
    );
    assert!(
        stderr.contains(&format!("image {missing} is not available")),
        "{stderr}"
    );
    assert!(
        stderr.contains("scripts/build-synapse-image 0.0.0-missing"),
        "{stderr}"
    );
}

/// Builds `localhost/delayed-events-conformance/test-NAME:1` from the Synapse image with another
/// entrypoint, with the engine's command-line tool.
struct TestImage(String);

impl TestImage {
    fn build(name: &str, entrypoint: &str) -> TestImage {
        let tag = format!("localhost/delayed-events-conformance/test-{name}:1");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Containerfile"),
            format!("FROM {}\nENTRYPOINT {entrypoint}\n", *IMAGE_REF),
        )
        .unwrap();
        let built = Command::new(engine_cli())
            .args(["build", "-q", "-f"])
            .arg(dir.path().join("Containerfile"))
            .args(["-t", &tag])
            .arg(dir.path())
            .output()
            .expect("the engine's command-line tool runs");
        assert!(
            built.status.success(),
            "building {tag} from {} failed: {}\n{SETUP}",
            *IMAGE_REF,
            String::from_utf8_lossy(&built.stderr)
        );
        TestImage(tag)
    }
}

impl Drop for TestImage {
    fn drop(&mut self) {
        let _ = Command::new(engine_cli())
            .args(["image", "rm", "-f", &self.0])
            .output();
    }
}

fn engine_cli() -> &'static str {
    let found = |tool: &str| Command::new(tool).arg("--version").output().is_ok();
    if found("podman") {
        "podman"
    } else {
        "docker"
    }
}

#[test]
fn an_image_that_never_answers_is_given_up_after_the_spawn_timeout() {
    if skipped("an_image_that_never_answers_is_given_up_after_the_spawn_timeout") {
        return;
    }
    let _engine = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let image = TestImage::build("silent", r#"["sleep", "infinity"]"#);
    let output = harness(&[
        "run",
        "--target",
        "container",
        "--image",
        &image.0,
        "--spawn-timeout",
        "2s",
    ]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("did not answer"), "{stderr}");
    assert!(stderr.contains("within 2 s"), "{stderr}");
    assert!(stderr.contains("--spawn-timeout"), "{stderr}");
    assert_no_container_left();
}

#[test]
fn an_image_that_exits_at_start_is_reported_with_its_log() {
    if skipped("an_image_that_exits_at_start_is_reported_with_its_log") {
        return;
    }
    let _engine = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let image = TestImage::build(
        "exits",
        r#"["sh", "-c", "echo cannot read the configuration >&2; exit 3"]"#,
    );
    let output = harness(&["run", "--target", "container", "--image", &image.0]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("exited with status 3"), "{stderr}");
    assert!(
        stderr.contains("cannot read the configuration"),
        "the container's log is shown: {stderr}"
    );
    assert_no_container_left();
}

/// The container restarts with its data (what the persistence cases rely on), records how long
/// that took, shows its log; and a panic, inside the runtime or after it is gone, still removes
/// the container.
#[test]
fn the_container_restarts_with_its_data_and_a_panic_removes_it() {
    use dec_harness::client::{http_client, Client};
    use dec_harness::homeserver::container::{ContainerOptions, ContainerTarget};
    use dec_harness::homeserver::Target;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::time::Duration;

    if skipped("the_container_restarts_with_its_data_and_a_panic_removes_it") {
        return;
    }
    let _engine = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    dec_harness::homeserver::container::prepare_environment();
    let options = || ContainerOptions {
        image: IMAGE_REF.clone(),
        spawn_timeout: Duration::from_secs(30),
        registration_shared_secret: None,
    };

    // A panic while the target is in use, inside the runtime.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(async {
            let target = ContainerTarget::start(options()).await.unwrap_or_else(|e| {
                panic!("the container target did not start:\n{e}\n{SETUP}");
            });
            let anon = Client::new(http_client(), &target.info().base_url, Default::default());
            let user = dec_harness::users::register(&anon, &target.registration(), "restart")
                .await
                .expect("a user registers with the Complement shared secret");
            target.restart().await.expect("the container restarts");
            let whoami = user
                .get("/_matrix/client/v3/account/whoami")
                .send()
                .await
                .unwrap();
            assert_eq!(whoami.status, 200, "the access token survives the restart");
            assert_eq!(whoami.body["user_id"], user.user_id);
            let info = target.info();
            assert!(info.restart_ms.unwrap_or(0) > 0, "{info:?}");
            let log = target.log_tail(400).unwrap_or_default();
            assert!(
                log.matches("STARTING SERVER").count() >= 2,
                "the log holds both starts:\n{log}"
            );
            panic!("a bug in the harness, with the target running");
        })
    }));
    assert!(panicked.is_err());
    assert_no_container_left();

    // The target outlives its runtime, then a panic drops it.
    let target = runtime.block_on(ContainerTarget::start(options())).unwrap();
    drop(runtime);
    let panicked = catch_unwind(AssertUnwindSafe(move || {
        let _target = target;
        panic!("a bug in the harness, after the runtime is gone");
    }));
    assert!(panicked.is_err());
    assert_no_container_left();
}
