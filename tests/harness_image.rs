//! The harness image (scripts/build-harness-image, the runtime stage of ci/Containerfile) runs the
//! catalogue from inside a container, with `--target url` against the Synapse image on a shared
//! network, and gives the same outcomes as the host binary against the same server. It uses the
//! expectation file the image carries, the host binary the repository's copy.
//!
//! These tests need a container engine and both images. Set them up with
//!     eval "$(scripts/setup-container-engine)" && scripts/build-synapse-image && scripts/build-harness-image
//! Without them the tests fail and say so; `DEC_SKIP_CONTAINER_TESTS=1` skips them (visibly).

#[path = "support/container_skip.rs"]
mod container_skip;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use dec_harness::homeserver::container::BUILT_SYNAPSE_IMAGE;
use dec_harness::homeserver::synapse::PINNED_VERSION;

const BINARY: &str = env!("CARGO_BIN_EXE_delayed-events-conformance");
const HARNESS_IMAGE: &str = concat!(
    "localhost/delayed-events-conformance/harness:",
    env!("CARGO_PKG_VERSION")
);
const SETUP: &str = "Set up a container engine and the images with\n    \
    eval \"$(scripts/setup-container-engine)\" && scripts/build-synapse-image && scripts/build-harness-image\n\
    (scripts/test does all of it), or skip these tests with DEC_SKIP_CONTAINER_TESTS=1.";
/// The Complement contract's registration secret, which the Synapse image accepts.
const SECRET: &str = "complement";

fn skipped(test: &str) -> bool {
    container_skip::skipped(test, "the harness image")
}

/// The engine's command-line tool, chosen as scripts/build-harness-image chooses it.
fn engine() -> &'static str {
    let docker_answers = || {
        Command::new("docker")
            .arg("info")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    match std::env::var("DOCKER_HOST") {
        Ok(host) if host.contains("podman") => "podman",
        _ if docker_answers() => "docker",
        _ => "podman",
    }
}

fn engine_cmd(args: &[&str]) -> Output {
    Command::new(engine())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}\n{SETUP}", engine()))
}

fn engine_ok(args: &[&str]) -> String {
    let output = engine_cmd(args);
    assert!(
        output.status.success(),
        "{} {} failed: {}",
        engine(),
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The network and the containers of one test, removed however the test ends.
struct Scene {
    name: String,
}

impl Scene {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let scene = Scene {
            name: format!("dec-harness-image-test-{}-{nanos}", std::process::id()),
        };
        engine_ok(&["network", "create", &scene.name]);
        scene
    }

    fn container(&self, role: &str) -> String {
        format!("{}-{role}", self.name)
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        for role in ["synapse", "harness"] {
            let _ = engine_cmd(&["rm", "--force", &self.container(role)]);
        }
        let _ = engine_cmd(&["network", "rm", &self.name]);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A CA certificate and key for /complement/ca, as the contract asks (the image only needs them
/// to be there; the container target generates its own the same way).
fn write_ca(dir: &Path) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "harness image test CA");
    let cert = params.self_signed(&key).unwrap();
    let (crt, pem) = (dir.join("ca.crt"), dir.join("ca.key"));
    std::fs::write(&crt, cert.pem()).unwrap();
    std::fs::write(&pem, key.serialize_pem()).unwrap();
    (crt, pem)
}

/// Waits until the server answers /versions with 200 on 127.0.0.1:port, failing with its log if
/// the container stops or it takes too long.
fn wait_for_versions(port: u16, container: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let request = "GET /_matrix/client/versions HTTP/1.0\r\nHost: localhost\r\n\r\n";
            let mut answer = String::new();
            if stream.write_all(request.as_bytes()).is_ok()
                && stream.read_to_string(&mut answer).is_ok()
                && answer.starts_with("HTTP/1.")
                && answer.split_whitespace().nth(1) == Some("200")
            {
                return;
            }
        }
        let state = engine_ok(&["inspect", "--format", "{{.State.Running}}", container]);
        let log = || String::from_utf8_lossy(&engine_cmd(&["logs", container]).stderr).into_owned();
        assert_eq!(
            state.trim(),
            "true",
            "the Synapse container stopped:\n{}",
            log()
        );
        assert!(
            Instant::now() < deadline,
            "Synapse did not answer in 90 s:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn outcomes(results: &Path) -> Outcomes {
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(results).unwrap_or_else(|e| panic!("{}: {e}", results.display())),
    )
    .unwrap();
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                (
                    c["outcome"].as_str().unwrap().to_string(),
                    c["message"].as_str().unwrap_or_default().to_string(),
                ),
            )
        })
        .collect()
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout (tail):\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_harness_image_gives_the_host_binarys_outcomes_against_the_synapse_image() {
    if skipped("the_harness_image_gives_the_host_binarys_outcomes_against_the_synapse_image") {
        return;
    }
    let synapse_image = format!("{BUILT_SYNAPSE_IMAGE}:{PINNED_VERSION}");
    for image in [synapse_image.as_str(), HARNESS_IMAGE] {
        let present = engine_cmd(&["image", "inspect", image]);
        assert!(present.status.success(), "no image {image}.\n{SETUP}");
    }

    let scene = Scene::new();
    let dir = tempfile::tempdir().unwrap();
    let (crt, key) = write_ca(dir.path());
    let port = free_port();
    let synapse = scene.container("synapse");
    engine_ok(&[
        "create",
        "--name",
        &synapse,
        "--network",
        &scene.name,
        "--env",
        "SERVER_NAME=hs1",
        "--publish",
        &format!("127.0.0.1:{port}:8008"),
        &synapse_image,
    ]);
    for (file, name) in [(&crt, "ca.crt"), (&key, "ca.key")] {
        engine_ok(&[
            "cp",
            file.to_str().unwrap(),
            &format!("{synapse}:/complement/ca/{name}"),
        ]);
    }
    engine_ok(&["start", &synapse]);
    wait_for_versions(port, &synapse);

    // The harness image reaches the server on the shared network by its name there (given as a
    // host entry: not every engine's networks resolve container names, podman's CNI ones do not).
    let address = engine_ok(&[
        "inspect",
        "--format",
        &format!(
            "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
            scene.name
        ),
        &synapse,
    ]);
    let address = address.trim().to_string();
    assert!(
        !address.is_empty(),
        "the Synapse container has no address on {}",
        scene.name
    );
    let runs = Runs {
        scene: &scene,
        dir: dir.path(),
        port,
        address,
    };

    let (_, from_host) = runs.host("host", &[]);
    let (in_image, from_image) = runs.image("image", &[]);
    assert_eq!(
        from_image.keys().collect::<Vec<_>>(),
        from_host.keys().collect::<Vec<_>>(),
        "the same cases ran"
    );
    let mut differences = BTreeMap::new();
    for (id, (outcome, message)) in &from_image {
        let (host_outcome, host_message) = &from_host[id];
        if outcome == host_outcome {
            continue;
        }
        // A case whose outcome varies from run to run of the same binary says nothing about the
        // image: run it again with each, and count it as a difference only if the two never agree.
        let mut seen_host = vec![host_outcome.clone()];
        let mut seen_image = vec![outcome.clone()];
        for round in 1..=2 {
            let only = ["--filter", id.as_str(), "--exact"];
            seen_host.push(
                runs.host(&format!("host-again-{round}"), &only).1[id]
                    .0
                    .clone(),
            );
            seen_image.push(
                runs.image(&format!("image-again-{round}"), &only).1[id]
                    .0
                    .clone(),
            );
        }
        if seen_host.iter().any(|o| seen_image.contains(o)) {
            println!(
                "NOTE {id}: its outcome varies from run to run of the same binary (host: \
                 {seen_host:?}, image: {seen_image:?}; first messages: host {host_message:?}, \
                 image {message:?}); a flaky case, not a difference of the image"
            );
        } else {
            differences.insert(
                id,
                format!("image: {seen_image:?} ({message}) / host: {seen_host:?} ({host_message})"),
            );
        }
    }
    assert!(
        differences.is_empty(),
        "outcomes differ between the harness image and the host binary:\n{differences:#?}"
    );
    let mut counts = BTreeMap::new();
    for (outcome, _) in from_image.values() {
        *counts.entry(outcome.as_str()).or_insert(0) += 1;
    }
    println!("outcomes from the harness image: {counts:?}");
    assert!(
        counts
            .get("pass")
            .is_some_and(|n| *n >= from_image.len() / 2),
        "most cases should pass against Synapse: {from_image:?}"
    );
    // Its exit status follows its outcomes (1 only for a failure, from a flaky case).
    let failed = from_image
        .values()
        .any(|(outcome, _)| outcome == "fail" || outcome == "error");
    let expected: &[i32] = if failed { &[0, 1] } else { &[0] };
    assert!(
        in_image
            .status
            .code()
            .is_some_and(|c| expected.contains(&c)),
        "the harness image's exit status: {}",
        describe(&in_image)
    );
}

/// The two ways of running the catalogue against the same Synapse container.
struct Runs<'a> {
    scene: &'a Scene,
    dir: &'a Path,
    port: u16,
    address: String,
}

type Outcomes = BTreeMap<String, (String, String)>;

impl Runs<'_> {
    /// The host binary, through the published port.
    fn host(&self, name: &str, extra: &[&str]) -> (Output, Outcomes) {
        let results = self.dir.join(format!("{name}.json"));
        let output = Command::new(BINARY)
            .args(["run", "--quiet", "--target", "url", "--base-url"])
            .arg(format!("http://127.0.0.1:{}", self.port))
            .args(["--registration-shared-secret", SECRET, "--expectations"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("suites/expectations/synapse.toml"))
            .arg("--json")
            .arg(&results)
            .args(extra)
            .output()
            .unwrap();
        assert!(results.exists(), "host run: {}", describe(&output));
        (output, outcomes(&results))
    }

    /// The harness image, on the network, with the expectation file it carries.
    fn image(&self, name: &str, extra: &[&str]) -> (Output, Outcomes) {
        let mount = format!("{}:/out", self.dir.display());
        let host_entry = format!("hs1:{}", self.address);
        let json = format!("/out/{name}.json");
        let container = self.scene.container("harness");
        let mut args = vec![
            "run",
            "--rm",
            "--name",
            &container,
            "--network",
            &self.scene.name,
            "--add-host",
            &host_entry,
            "--volume",
            &mount,
            HARNESS_IMAGE,
            "run",
            "--quiet",
            "--target",
            "url",
            "--base-url",
            "http://hs1:8008",
            "--registration-shared-secret",
            SECRET,
            "--expectations",
            "/usr/share/delayed-events-conformance/expectations/synapse.toml",
            "--json",
            &json,
        ];
        args.extend_from_slice(extra);
        let output = engine_cmd(&args);
        let results = self.dir.join(format!("{name}.json"));
        assert!(results.exists(), "harness image run: {}", describe(&output));
        (output, outcomes(&results))
    }
}
