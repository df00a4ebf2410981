//! Earlier load reports shown beside this run's (`--beside`): reading and checking the files
//! `load --json` wrote, and how the page names each report.

use super::{LoadReport, SCHEMA};
use std::path::{Path, PathBuf};

impl LoadReport {
    /// How plots and tables name it: the server, its version, and how it is deployed.
    pub fn label(&self) -> String {
        let target = &self.target;
        let deployment = match (&target.topology, target.kind.as_str(), &target.image) {
            (Some(topology), _, _) => topology.label(),
            // Files from before topologies were recorded: the managed Synapse was one process.
            (None, "synapse", _) => "SQLite".into(),
            (None, "container", Some(image)) => format!("image {image}"),
            (None, kind, _) => format!("target {kind}, deployment unknown"),
        };
        let mut label = target.name.clone();
        if let Some(version) = &target.version {
            label.push(' ');
            label.push_str(version);
        }
        format!("{label} · {deployment}")
    }
}

/// An earlier `load --json` file shown beside this run's figures (`--beside`).
#[derive(Clone, Debug)]
pub struct Beside {
    pub path: PathBuf,
    pub report: LoadReport,
}

impl Beside {
    /// Reads and checks a file `load --json` wrote; the error says what is wrong and what to give.
    pub fn read(path: &Path) -> Result<Beside, String> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!("cannot read {shown}: {e}. Give a file that `load --json FILE` wrote.")
        })?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            format!("{shown} is not JSON ({e}). Give a file that `load --json FILE` wrote.")
        })?;
        match value.get("kind").and_then(|k| k.as_str()) {
            Some("load") => {}
            _ if value.get("cases").is_some() => {
                return Err(format!(
                    "{shown} is the results file of a `run`, not of `load`. Give a file that \
                     `load --json FILE` wrote (`report` renders results files)."
                ))
            }
            _ => {
                return Err(format!(
                    "{shown} is not a load report (no \"kind\": \"load\"). Give a file that \
                     `load --json FILE` wrote."
                ))
            }
        }
        match value.get("schema").and_then(|s| s.as_u64()) {
            Some(schema) if schema == u64::from(SCHEMA) => {}
            other => {
                let found = other.map_or("no schema".into(), |n| format!("schema {n}"));
                return Err(format!(
                    "{shown} has {found}; this harness reads load reports of schema {SCHEMA}. \
                     Run `load --json FILE` again with this release."
                ));
            }
        }
        let report: LoadReport = serde_json::from_value(value).map_err(|e| {
            format!("{shown} is not a load report this harness can read ({e}). Run `load --json FILE` again with this release.")
        })?;
        if report.runs.is_empty() {
            return Err(format!(
                "{shown} holds no workload's figures (its run stopped before the first workload \
                 ended). Give a file that `load --json FILE` wrote after a workload."
            ));
        }
        Ok(Beside {
            path: path.to_path_buf(),
            report,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::homeserver::Topology;
    use crate::load::{sample_report, workers};

    /// Writes `text` to a fresh file and reads it as `--beside` would.
    fn read_text(text: &str) -> Result<Beside, String> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        Beside::read(file.path())
    }

    #[test]
    fn a_written_report_reads_back_unchanged() {
        let report = sample_report(Some(workers()), 50.0);
        let text = serde_json::to_string_pretty(&report).unwrap();
        let beside = read_text(&text).unwrap();
        assert_eq!(serde_json::to_string_pretty(&beside.report).unwrap(), text);
        assert_eq!(beside.report.runs.len(), 2);
    }

    #[test]
    fn labels_name_server_version_and_topology() {
        let label = |topology| sample_report(topology, 1.0).label();
        assert_eq!(
            label(Some(workers())),
            "Synapse 1.163.2 · PostgreSQL, main + 2 workers behind nginx"
        );
        assert_eq!(label(Some(Topology::default())), "Synapse 1.163.2 · SQLite");
        // Files from before topologies were recorded: the managed Synapse was one process.
        assert_eq!(label(None), "Synapse 1.163.2 · SQLite");
        let mut url = sample_report(None, 1.0);
        url.target.kind = "url".into();
        url.target.version = None;
        assert_eq!(url.label(), "Synapse · target url, deployment unknown");
    }

    #[test]
    fn bad_files_say_what_is_wrong_and_what_to_give() {
        let missing = Beside::read(Path::new("/nonexistent/a.json")).unwrap_err();
        assert!(
            missing.starts_with("cannot read /nonexistent/a.json"),
            "{missing}"
        );
        let good = serde_json::to_value(sample_report(None, 1.0)).unwrap();
        let with = |key: &str, value: serde_json::Value| {
            let mut v = good.clone();
            v[key] = value;
            read_text(&v.to_string()).unwrap_err()
        };
        for (error, says) in [
            (read_text("not json").unwrap_err(), "is not JSON"),
            (
                read_text(r#"{"schema": 1, "cases": []}"#).unwrap_err(),
                "is the results file of a `run`, not of `load`",
            ),
            (
                with("kind", "run".into()),
                "is not a load report (no \"kind\": \"load\")",
            ),
            (
                with("schema", 2.into()),
                "has schema 2; this harness reads load reports of schema 1",
            ),
            (
                with("runs", "many".into()),
                "is not a load report this harness can read",
            ),
            (
                with("runs", serde_json::json!([])),
                "holds no workload's figures",
            ),
        ] {
            assert!(error.contains(says), "{error}");
            assert!(error.contains("load --json FILE"), "{error}");
        }
    }
}
