//! Expectation files as users meet them, through the real binary against the fake homeserver
//! (`--target url`): an unexpected pass fails the run, `--update-expectations` rewrites the file,
//! and an entry of a case that no longer exists is a warning, or an error with `--strict`.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use support::fake_homeserver::{FakeHomeserver, FakeOptions, Fault};

const SECRET_ENV: &str = "DEC_REGISTRATION_SHARED_SECRET";

async fn harness(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_delayed-events-conformance"))
            .args(args)
            .env(SECRET_ENV, FakeHomeserver::SHARED_SECRET)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn run_args(base_url: &str, filter: &str, extra: &[&Path]) -> Vec<String> {
    let mut args: Vec<String> = ["run", "--target", "url", "--base-url", base_url]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--filter".into(), filter.into()]);
    args.extend(extra.iter().map(|p| p.display().to_string()));
    args
}

fn context(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unexpected_pass_fails_the_run_and_update_rewrites_the_file() {
    // The fake sends nothing early, rejects a zero delay, but (with this fault) accepts negative
    // delays: negative_delay fails, zero_delay passes.
    let fake = FakeHomeserver::start(FakeOptions::with_fault(Fault::AcceptNegativeDelay)).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("expectations.toml");
    std::fs::write(
        &file,
        "# kept header\n\n[server]\nname = \"FakeHomeserver\"\nversions = [\"0.1\"]\n\n\
         [[case]]\nid = \"msc4140.errors.zero_delay\"\nexpected = \"fail\"\nreason = \"was broken\"\n\n\
         [[case]]\nid = \"msc4140.errors.no_such_case\"\nexpected = \"fail\"\nreason = \"renamed\"\n",
    )
    .unwrap();
    let json = dir.path().join("results.json");

    // --strict: the entry of a case that does not exist is an error, before anything runs.
    let mut strict = run_args(&fake.uri(), "msc4140.errors.", &[]);
    strict.extend(["--strict".into(), "--expectations".into()]);
    strict.push(file.display().to_string());
    let output = harness(strict).await;
    assert_eq!(output.status.code(), Some(2), "{}", context(&output));
    assert!(context(&output).contains("msc4140.errors.no_such_case"));

    // Without --strict: a warning; zero_delay passes unexpectedly (xpass), which fails the run.
    let mut args = run_args(&fake.uri(), "_delay", &[]);
    args.extend(["--update-expectations".into(), file.display().to_string()]);
    args.extend(["--json".into(), json.display().to_string()]);
    let output = harness(args).await;
    let text = context(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("warning:") && text.contains("no_such_case"),
        "{text}"
    );
    assert!(text.contains("now passes"), "{text}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["expectations"]["file"], file.display().to_string());
    let outcome = |id: &str| {
        report["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| c["outcome"].clone())
    };
    assert_eq!(outcome("msc4140.errors.zero_delay").unwrap(), "xpass");
    assert_eq!(outcome("msc4140.errors.negative_delay").unwrap(), "fail");

    // The file now lists the new failure with reason TODO, no longer the fixed or unknown case,
    // and keeps its header and server.
    let updated = std::fs::read_to_string(&file).unwrap();
    assert!(updated.starts_with("# kept header"), "{updated}");
    assert!(updated.contains("name = \"FakeHomeserver\""), "{updated}");
    assert!(
        updated.contains(
            "id = \"msc4140.errors.negative_delay\"\nexpected = \"fail\"\nreason = \"TODO\""
        ),
        "{updated}"
    );
    assert!(
        !updated.contains("zero_delay") && !updated.contains("no_such_case"),
        "{updated}"
    );

    // Run again with the updated file: the known failure is xfail, and the run passes.
    let mut again = run_args(&fake.uri(), "_delay", &[]);
    again.extend(["--expectations".into(), file.display().to_string()]);
    let output = harness(again).await;
    assert_eq!(output.status.code(), Some(0), "{}", context(&output));
    assert!(context(&output).contains("expected failure: TODO"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_bundled_file_for_an_unknown_server_says_why() {
    let fake = FakeHomeserver::start(FakeOptions::default()).await;
    let output = harness(run_args(&fake.uri(), "msc4140.errors.zero_delay", &[])).await;
    let text = context(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("server: FakeHomeserver 0.1 (from MSC4383 in /_matrix/client/versions)"),
        "{text}"
    );
    assert!(
        text.contains(
            "no bundled expectation file applied: none was written for FakeHomeserver 0.1"
        ),
        "{text}"
    );
}
