//! What the tests of the managed Synapse on PostgreSQL, and with workers, share: one run at a
//! time, where the programs they need are, the harness's private TMPDIR and the run directories
//! it leaves there.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One at a time: each starts Synapse, PostgreSQL (and more) on a machine of two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

pub fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Where the harness looks for a program: PATH and the system directories.
pub fn installed(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .any(|dir| executable(&dir.join(program)))
}

/// PostgreSQL's `initdb` on PATH, or in Debian's versioned directory.
pub fn postgres_installed() -> bool {
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| {
            dirs.flatten()
                .any(|d| executable(&d.path().join("bin/initdb")))
        })
        .unwrap_or(false);
    installed("initdb") || debian
}

/// A private TMPDIR for the harness, where its run directories go: what is left there is what
/// the run left behind. Searchable by all, since a harness running as root runs PostgreSQL as
/// another user.
pub fn private_tmpdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// The harness's run directories in `dir`.
pub fn run_dirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| {
                    path.file_name()
                        .is_some_and(|name| name.to_string_lossy().starts_with("synapse-run-"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The results file of a run that had to end without `fail` or `error`: its `target` records
/// `topology`, and each of `areas` ran cases.
pub fn assert_results_clean(results: &Path, topology: serde_json::Value, areas: &[&str]) {
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(results).unwrap()).unwrap();
    assert_eq!(
        report["target"]["topology"], topology,
        "{:#}",
        report["target"]
    );
    let cases = report["cases"].as_array().unwrap();
    for area in areas {
        assert!(
            cases.iter().any(|c| c["area"] == *area),
            "no case of the area {area} ran"
        );
    }
    for case in cases {
        let outcome = case["outcome"].as_str().unwrap();
        assert!(
            outcome == "pass" || outcome == "xfail",
            "{}: {outcome}: {}",
            case["id"],
            case["message"]
        );
    }
}
