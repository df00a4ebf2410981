//! The configuration and data files of one run.

use super::*;
use base64::Engine;

/// Where everything of one run lives, inside its data directory.
pub(super) struct RunFiles {
    pub(super) dir: PathBuf,
    pub(super) config: PathBuf,
    pub(super) log_config: PathBuf,
    pub(super) server_log: PathBuf,
    /// Synapse's stdout and stderr (normally empty; start-up crashes land here).
    pub(super) output_log: PathBuf,
    pub(super) signing_key: PathBuf,
}

impl RunFiles {
    pub(super) fn in_dir(dir: &Path) -> RunFiles {
        RunFiles {
            dir: dir.to_path_buf(),
            config: dir.join("homeserver.yaml"),
            log_config: dir.join("log_config.yaml"),
            server_log: dir.join("homeserver.log"),
            output_log: dir.join("output.log"),
            signing_key: dir.join("signing.key"),
        }
    }

    /// Writes the configuration, the log configuration and a signing key. Both configurations
    /// are JSON, which YAML parsers (and so Synapse) read as YAML.
    pub(super) fn write(
        &self,
        port: u16,
        registration_secret: &str,
        default_delayed_event_limits: bool,
        database: Option<&Value>,
        fragment: Option<&Value>,
    ) -> io::Result<()> {
        let mut config = self.homeserver_config(port, registration_secret);
        if let Some(database) = database {
            config["database"] = database.clone();
        }
        if default_delayed_event_limits {
            if let Some(object) = config.as_object_mut() {
                object.remove("rc_delayed_event_mgmt");
                object.remove("rc_message");
            }
        }
        if let Some(fragment) = fragment {
            deep_merge(&mut config, fragment);
        }
        fs::write(&self.config, serde_json::to_string_pretty(&config)?)?;
        fs::write(
            &self.log_config,
            serde_json::to_string_pretty(&self.log_config())?,
        )?;
        fs::write(&self.signing_key, signing_key_line())
    }

    pub(super) fn homeserver_config(&self, port: u16, registration_secret: &str) -> Value {
        let mut config = json!({
            "server_name": "localhost",
            "pid_file": self.dir.join("homeserver.pid"),
            "listeners": [{
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": false,
                "x_forwarded": false,
                "resources": [{"names": ["client"], "compress": false}],
            }],
            "database": {
                "name": "sqlite3",
                "args": {"database": self.dir.join("homeserver.db")},
            },
            "log_config": self.log_config,
            "media_store_path": self.dir.join("media_store"),
            "signing_key_path": self.signing_key,
            "registration_shared_secret": registration_secret,
            "macaroon_secret_key": random_secret(),
            "form_secret": random_secret(),
            "report_stats": false,
            "trusted_key_servers": [],
            "suppress_key_server_warning": true,
            "enable_registration": false,
            // Every case registers fresh users; full-strength hashing would dominate the run.
            "bcrypt_rounds": 4,
            "presence": {"enabled": false},
            // Background work on every event or join that no case looks at; on a 2-core machine
            // it competes with the catalogue for Synapse's one busy thread.
            "user_directory": {"enabled": false},
            "stats": {"enabled": false},
            "push": {"enabled": false},
            // 2026-07: "All delayed event related endpoints are available to guest accounts."
            "allow_guest_access": true,
            // Enables delayed events (MSC4140) and bounds their delay.
            "max_event_delay_duration": "24h",
            // A per-user limit the limits cases can fill quickly (Synapse's default is 100).
            "experimental_features": {"msc4140_max_delayed_events_per_user": 20},
        });
        if let Some(object) = config.as_object_mut() {
            object.extend(unlimited_rate_limits());
        }
        config
    }

    pub(super) fn log_config(&self) -> Value {
        json!({
            "version": 1,
            "formatters": {"precise": {"format":
                "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s"}},
            "handlers": {"file": {
                "class": "logging.FileHandler",
                "formatter": "precise",
                "filename": self.server_log,
            }},
            "root": {"level": "INFO", "handlers": ["file"]},
            "disable_existing_loggers": false,
        })
    }

    /// The end of Synapse's log, and of its stdout/stderr when that says something the log
    /// does not (start-up errors usually land in both).
    pub(super) fn log_tail(&self, lines: usize) -> String {
        let server_log = tail_lines(&self.server_log, lines);
        let logged = server_log.as_deref().unwrap_or("");
        let output = tail_lines(&self.output_log, lines)
            .filter(|output| output.lines().any(|line| !logged.contains(line)))
            .map(|output| format!("--- Synapse's stdout/stderr ---\n{output}"));
        let parts: Vec<String> = [server_log, output].into_iter().flatten().collect();
        if parts.is_empty() {
            return "(Synapse wrote nothing to its log)".into();
        }
        parts.join("\n")
    }
}

/// Rate limits no concurrent catalogue comes near. Keys a Synapse release does not know are
/// ignored by it, so the list may name limits newer than the running version.
pub(super) fn unlimited_rate_limits() -> serde_json::Map<String, Value> {
    let unlimited = json!({"per_second": 10000, "burst_count": 10000});
    let per = |kinds: &[&str]| -> Value {
        kinds
            .iter()
            .map(|k| (k.to_string(), unlimited.clone()))
            .collect()
    };
    [
        ("rc_message", unlimited.clone()),
        ("rc_registration", unlimited.clone()),
        ("rc_login", per(&["address", "account", "failed_attempts"])),
        ("rc_joins", per(&["local", "remote"])),
        ("rc_joins_per_room", unlimited.clone()),
        ("rc_invites", per(&["per_room", "per_user", "per_issuer"])),
        ("rc_delayed_event_mgmt", unlimited.clone()),
        ("rc_admin_redaction", unlimited.clone()),
        ("rc_3pid_validation", unlimited.clone()),
        ("rc_room_creation", unlimited.clone()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), value))
    .collect()
}

/// A signing key in Synapse's file format: `ed25519 <key id> <unpadded base64 seed>`.
pub(super) fn signing_key_line() -> String {
    let mut rng = rand::thread_rng();
    let key_id = Alphanumeric.sample_string(&mut rng, 4);
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let seed = base64::engine::general_purpose::STANDARD_NO_PAD.encode(seed);
    format!("ed25519 a_{key_id} {seed}\n")
}

pub(super) fn random_secret() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), 32)
}

/// The last `lines` lines of a file, reading at most `TAIL_READ_LIMIT` bytes of it; `None`
/// when it is missing or blank.
pub(super) fn tail_lines(path: &Path, lines: usize) -> Option<String> {
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL_READ_LIMIT)))
        .ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.trim_matches('\n').lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n");
    (!tail.trim().is_empty()).then_some(tail)
}

/// Merges the user's `--synapse-config` fragment into the configuration: mappings merge key by
/// key, any other value replaces what was there, and `null` removes the key (so a fragment can
/// switch off what the harness sets, such as `max_event_delay_duration`).
pub(super) fn deep_merge(config: &mut Value, fragment: &Value) {
    match (config, fragment) {
        (Value::Object(into), Value::Object(from)) => {
            for (key, value) in from {
                match (into.get_mut(key), value) {
                    (_, Value::Null) => {
                        into.remove(key);
                    }
                    (Some(existing), _) if existing.is_object() && value.is_object() => {
                        deep_merge(existing, value)
                    }
                    _ => {
                        into.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (config, fragment) => *config = fragment.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_enables_delayed_events_with_the_test_limits() {
        let files = RunFiles::in_dir(Path::new("/tmp/x"));
        let config = files.homeserver_config(8008, "s3cret");
        assert_eq!(config["max_event_delay_duration"], "24h");
        assert_eq!(config["rc_login"]["failed_attempts"]["burst_count"], 10000);
        assert_eq!(
            config["experimental_features"]["msc4140_max_delayed_events_per_user"],
            20
        );
        assert_eq!(config["allow_guest_access"], true);
        assert_eq!(config["listeners"][0]["port"], 8008);
    }

    #[test]
    fn fragments_merge_deeply_and_null_removes() {
        let mut config = json!({"a": {"b": 1, "c": 2}, "d": 3, "e": [1]});
        deep_merge(
            &mut config,
            &json!({"a": {"c": 20, "x": 1}, "d": null, "e": [2]}),
        );
        assert_eq!(config, json!({"a": {"b": 1, "c": 20, "x": 1}, "e": [2]}));
    }

    #[test]
    fn signing_keys_carry_an_unpadded_base64_seed() {
        let line = signing_key_line();
        let parts: Vec<&str> = line.trim_end().split(' ').collect();
        assert_eq!(parts.len(), 3, "{line:?}");
        assert_eq!(parts[0], "ed25519");
        assert!(parts[1].starts_with("a_"));
        assert_eq!(parts[2].len(), 43, "32 bytes, unpadded: {line:?}");
        let seed = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(parts[2])
            .expect("standard alphabet, no padding");
        assert_eq!(seed.len(), 32);
    }
}
