//! `--target url` against a Synapse the harness does not run: started by
//! `tests/support/external-synapse` from the managed virtualenv, restarted by the same script
//! through `--restart-command`. The run names the server with its version (learnt over HTTP),
//! applies the bundled expectations chosen by that identity, and runs the persistence cases
//! instead of skipping them.

use dec_harness::homeserver::synapse::{installed_python, SynapseOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/external-synapse")
}

/// Stops the external Synapse however the test ends.
struct External {
    dir: tempfile::TempDir,
}

impl Drop for External {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_versions(base_url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = format!("{base_url}/_matrix/client/versions");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        loop {
            if let Ok(r) = http.get(&url).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the external Synapse never answered {url}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

#[test]
fn url_target_names_the_server_and_restarts_it_with_the_restart_command() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let python = runtime
        .block_on(installed_python(&SynapseOptions {
            show_progress: false,
            ..SynapseOptions::default()
        }))
        .expect("the managed Synapse installs");
    let external = External {
        dir: tempfile::tempdir().unwrap(),
    };
    let port = free_port();
    let secret = "external-synapse-secret";
    let started = Command::new(script())
        .arg("start")
        .arg(external.dir.path())
        .arg(&python)
        .arg(port.to_string())
        .arg(secret)
        .status()
        .unwrap();
    assert!(started.success(), "the script starts Synapse");
    let base_url = format!("http://127.0.0.1:{port}");
    wait_for_versions(&base_url);

    let results = external.dir.path().join("results.json");
    let restart = format!(
        "{} restart {}",
        script().display(),
        external.dir.path().display()
    );
    // The hard-kill scenarios of the persistence area go through the kill command.
    let kill = format!(
        "{} kill {}",
        script().display(),
        external.dir.path().display()
    );
    let output = Command::new(env!("CARGO_BIN_EXE_delayed-events-conformance"))
        .args(["run", "--target", "url", "--base-url", &base_url])
        .args(["--restart-command", &restart, "--kill-command", &kill])
        .args(["--area", "persistence"])
        .arg("--json")
        .arg(&results)
        .env("DEC_REGISTRATION_SHARED_SECRET", secret)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let context = format!(
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status.code()
    );
    assert!(
        stderr.contains("server: Synapse 1.163.2 (from /_matrix/federation/v1/version)"),
        "the run names the server at its start: {context}"
    );
    assert!(
        stderr.contains("expectations: suites/expectations/synapse.toml"),
        "the bundled expectations are chosen by the server's identity: {context}"
    );
    assert!(
        !stdout.contains(secret) && !stderr.contains(secret),
        "the secret stays out of the output"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&results).expect(&context)).unwrap();
    let target = &report["target"];
    assert_eq!(target["kind"], "url");
    assert_eq!(target["server_name"], "Synapse", "{target}");
    assert_eq!(target["server_version"], "1.163.2", "{target}");
    assert_eq!(target["identity_source"], "federation", "{target}");
    assert!(
        target["restart_ms"].as_u64().is_some(),
        "restarted: {target}"
    );
    assert_eq!(
        report["expectations"]["file"],
        "suites/expectations/synapse.toml"
    );
    let cases = report["cases"].as_array().unwrap();
    assert!(cases.len() >= 3, "the persistence cases ran: {context}");
    for case in cases {
        assert_eq!(
            case["outcome"], "pass",
            "{}: {} ({context})",
            case["id"], case["message"]
        );
    }
    assert_eq!(output.status.code(), Some(0), "{context}");

    // --kill-command: the target kills the server hard and waits until it answers again; a user
    // registered before is still there (the data was kept).
    runtime.block_on(async {
        use dec_harness::client::{http_client, Client};
        use dec_harness::homeserver::url::{UrlCommands, UrlTarget};
        use dec_harness::homeserver::Target;
        let http = http_client();
        let commands = UrlCommands {
            kill: Some(format!(
                "{} kill {}",
                script().display(),
                external.dir.path().display()
            )),
            spawn_timeout: Duration::from_secs(30),
            ..UrlCommands::default()
        };
        let target = UrlTarget::connect_with(&http, &base_url, Some(secret.into()), commands)
            .await
            .unwrap();
        assert!(target.can_restart().is_err(), "no restart command given");
        let anon = Client::new(http.clone(), &base_url, Default::default());
        let user = dec_harness::users::register(&anon, &target.registration(), "kill")
            .await
            .expect("a user registers");
        let pid_before = std::fs::read_to_string(external.dir.path().join("pid")).unwrap();
        target
            .kill()
            .await
            .expect("the kill command kills and restarts the server");
        let pid_after = std::fs::read_to_string(external.dir.path().join("pid")).unwrap();
        assert_ne!(pid_before, pid_after, "a new server process");
        let whoami = user
            .get("/_matrix/client/v3/account/whoami")
            .send()
            .await
            .unwrap();
        assert_eq!(whoami.status, 200, "{}", whoami.describe());
    });
}

/// The restart command is for servers the harness does not run.
#[test]
fn restart_command_needs_target_url() {
    let fake_dir = tempfile::tempdir().unwrap();
    let results = fake_dir.path().join("results.json");
    let output = Command::new(env!("CARGO_BIN_EXE_delayed-events-conformance"))
        .args(["run", "--restart-command", "true", "--json"])
        .arg(&results)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("go with --target url"));
}
