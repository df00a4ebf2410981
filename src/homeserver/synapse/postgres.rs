//! `--synapse-database postgres`: a private PostgreSQL cluster for one run, in a run directory of
//! its own, reachable only on a Unix socket there (no TCP), with one database per Synapse
//! instance. It stops, and its directory goes, when the last instance using it lets go of it.

use super::*;
use std::ffi::CString;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

/// The role Synapse connects as: the cluster's superuser. Local connections are trusted; only
/// the harness's user (and root) can reach the socket's directory.
const ROLE: &str = "synapse";
/// Names the socket file (`.s.PGSQL.5432`); no TCP port is opened.
const SOCKET_PORT: u16 = 5432;
/// From a fast shutdown (SIGINT) to SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
const CLUSTER_LOG: &str = "postgres.log";

/// Settings for a database nobody needs after the run: durability off, no TCP, shared memory
/// kept inside the data directory (so nothing outlives the run's directory).
fn server_settings(socket_dir: &Path) -> Vec<String> {
    [
        ("listen_addresses", String::new()),
        ("unix_socket_directories", socket_dir.display().to_string()),
        ("port", SOCKET_PORT.to_string()),
        ("fsync", "off".into()),
        ("synchronous_commit", "off".into()),
        ("full_page_writes", "off".into()),
        ("wal_level", "minimal".into()),
        ("max_wal_senders", "0".into()),
        // Up to 7 instances of the run, 10 connections each, and restarts overlapping.
        ("max_connections", "200".into()),
        ("shared_buffers", "64MB".into()),
        ("dynamic_shared_memory_type", "mmap".into()),
    ]
    .into_iter()
    .map(|(name, value)| format!("{name}={value}"))
    .collect()
}

/// Where PostgreSQL's programs are.
struct Programs {
    initdb: PathBuf,
    postgres: PathBuf,
    createdb: PathBuf,
}

impl Programs {
    /// `initdb` on PATH (following links to its real directory, where `postgres` lives too),
    /// else the newest `/usr/lib/postgresql/<major>/bin` (Debian keeps them off PATH).
    fn find() -> Result<Programs, TargetError> {
        Programs::find_in(std::env::var_os("PATH"), Path::new("/usr/lib/postgresql"))
    }

    /// `find`, searching `path` (as PATH) and `versioned` (as `/usr/lib/postgresql`).
    fn find_in(
        path: Option<std::ffi::OsString>,
        versioned: &Path,
    ) -> Result<Programs, TargetError> {
        let on_path = path
            .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(|dir| dir.join("initdb"))
            .find(|path| path.is_file())
            .and_then(|path| fs::canonicalize(path).ok())
            .and_then(|path| path.parent().map(Path::to_path_buf));
        let debian = || {
            let mut dirs: Vec<(u32, PathBuf)> = fs::read_dir(versioned)
                .ok()?
                .flatten()
                .filter_map(|entry| {
                    let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
                    let bin = entry.path().join("bin");
                    bin.join("initdb").is_file().then_some((major, bin))
                })
                .collect();
            dirs.sort();
            dirs.pop().map(|(_, bin)| bin)
        };
        let bin = on_path
            .filter(|bin| bin.join("postgres").is_file())
            .or_else(debian)
            .ok_or_else(postgres_missing)?;
        // Debian's client wrapper on PATH does as well where the server's directory lacks it.
        let createdb = Some(bin.join("createdb"))
            .filter(|path| path.is_file())
            .unwrap_or_else(|| PathBuf::from("createdb"));
        Ok(Programs {
            initdb: bin.join("initdb"),
            postgres: bin.join("postgres"),
            createdb,
        })
    }
}

/// Ok where PostgreSQL's server programs can be found; what to install otherwise.
pub(super) fn check_installed() -> Result<(), TargetError> {
    Programs::find().map(|_| ())
}

fn postgres_missing() -> TargetError {
    TargetError(
        "--synapse-database postgres needs PostgreSQL's server programs (initdb, postgres), and \
         none were found on PATH or in /usr/lib/postgresql/<major>/bin.\n\
         Install them (Debian/Ubuntu: `sudo apt install postgresql`; Fedora: `sudo dnf install \
         postgresql-server`; macOS: `brew install postgresql`), or leave out \
         --synapse-database postgres to run Synapse on SQLite."
            .into(),
    )
}

/// The user the cluster runs as. PostgreSQL refuses to run as root, so a harness running as root
/// hands it to the `postgres` system user (or `nobody`); otherwise the harness's own user.
#[derive(Clone, Copy)]
struct ClusterUser {
    uid: u32,
    gid: u32,
    /// Not the harness's own: the cluster's directory is handed over, processes switch user.
    switch: bool,
}

impl ClusterUser {
    fn choose() -> Result<ClusterUser, TargetError> {
        // SAFETY: geteuid has no preconditions.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        if uid != 0 {
            return Ok(ClusterUser {
                uid,
                gid,
                switch: false,
            });
        }
        ["postgres", "nobody"]
            .iter()
            .find_map(|name| system_user(name))
            .map(|(uid, gid)| ClusterUser {
                uid,
                gid,
                switch: true,
            })
            .ok_or_else(|| {
                TargetError(
                    "PostgreSQL refuses to run as root, and neither a `postgres` nor a `nobody` \
                     user exists to run it as. Run the harness as an unprivileged user, or \
                     create a `postgres` user (the Debian package does)."
                        .into(),
                )
            })
    }

    /// Makes `command` run as this user, dying with the harness (the signal set after the
    /// switch, which would clear it): SIGQUIT, PostgreSQL's immediate shutdown, which still
    /// cleans up its shared memory.
    fn apply(&self, command: &mut Command) {
        if self.switch {
            command.uid(self.uid).gid(self.gid);
        }
        let harness = std::process::id() as libc::pid_t;
        // SAFETY: the closure only makes async-signal-safe system calls.
        unsafe {
            command.pre_exec(move || die_with_parent_by(harness, libc::SIGQUIT));
        }
    }
}

/// A user's uid and gid from the password database.
fn system_user(name: &str) -> Option<(u32, u32)> {
    let name = CString::new(name).ok()?;
    // SAFETY: getpwnam returns null or a pointer to static storage, read at once; the harness
    // looks users up nowhere else.
    unsafe {
        let entry = libc::getpwnam(name.as_ptr());
        (!entry.is_null()).then(|| ((*entry).pw_uid, (*entry).pw_gid))
    }
}

/// One run's PostgreSQL cluster. Shared (`Arc`) by the Synapse instances of the run; the one that
/// lets go of it last calls `shutdown`, and `Drop` covers every other way out.
pub struct PostgresCluster {
    programs: Programs,
    /// The run directory: the socket, the log, the data directory (`data/`). `None` once released.
    run_dir: Mutex<Option<tempfile::TempDir>>,
    dir: PathBuf,
    /// The postmaster, leader of its own process group; `None` once stopped.
    postmaster: Mutex<Option<Child>>,
    next_database: AtomicU32,
    keep_data: bool,
}

impl PostgresCluster {
    /// Finds PostgreSQL, creates the cluster with `initdb` and starts it; returns once it
    /// accepts connections (or after `spawn_timeout`, with its log's tail).
    pub(super) async fn start(
        keep_data: bool,
        spawn_timeout: Duration,
    ) -> Result<PostgresCluster, TargetError> {
        let programs = Programs::find()?;
        let user = ClusterUser::choose()?;
        sweep_stale_run_dirs();
        let run_dir = tempfile::Builder::new()
            .prefix(&format!("{RUN_DIR_PREFIX}postgres-"))
            .tempdir_in(run_dir_parent())
            .map_err(|e| TargetError(format!("cannot create a directory for PostgreSQL: {e}")))?;
        let dir = run_dir.path().to_path_buf();
        let _ = fs::write(dir.join(HARNESS_PID_FILE), std::process::id().to_string());
        // Connections on the socket are trusted: only the cluster's user (and root) may reach it.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| TargetError(format!("cannot make {} private: {e}", dir.display())))?;
        if user.switch {
            std::os::unix::fs::chown(&dir, Some(user.uid), Some(user.gid)).map_err(|e| {
                TargetError(format!(
                    "cannot hand {} to the user PostgreSQL runs as: {e}",
                    dir.display()
                ))
            })?;
        }
        let cluster = PostgresCluster {
            programs,
            run_dir: Mutex::new(Some(run_dir)),
            dir,
            postmaster: Mutex::new(None),
            next_database: AtomicU32::new(1),
            keep_data,
        };
        // From here on, dropping `cluster` stops whatever started and removes the directory.
        cluster.initdb(user).await?;
        let postmaster = cluster.launch(user, spawn_timeout).await?;
        *cluster.lock_postmaster() = Some(postmaster);
        Ok(cluster)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.join(CLUSTER_LOG)
    }

    fn lock_postmaster(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.postmaster.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log_file(&self) -> io::Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
    }

    fn failure(&self, what: &str, detail: &str) -> TargetError {
        TargetError(format!(
            "PostgreSQL for --synapse-database postgres: {what}: {detail}. Last lines of its \
             log ({}):\n{}\n(--keep-data keeps the cluster's directory for a look.)",
            self.log().display(),
            tail_lines(&self.log(), FAILURE_LOG_LINES).unwrap_or_else(|| "(empty)".into())
        ))
    }

    async fn initdb(&self, user: ClusterUser) -> Result<(), TargetError> {
        let log = self
            .log_file()
            .map_err(|e| self.failure("cannot write its log", &e.to_string()))?;
        let mut command = Command::new(&self.programs.initdb);
        command
            .arg("--pgdata")
            .arg(self.data_dir())
            .args([
                &format!("--username={ROLE}"),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .env("LC_ALL", "C")
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .map_err(|e| self.failure("log", &e.to_string()))?,
            )
            .stderr(log)
            .process_group(0);
        user.apply(&mut command);
        let mut child = spawn_from_launcher(command).await.map_err(|e| {
            self.failure(
                &format!("cannot run {}", self.programs.initdb.display()),
                &e.to_string(),
            )
        })?;
        let why = match child.wait().await {
            Ok(status) if status.success() => return Ok(()),
            Ok(status) => describe_exit(status),
            Err(e) => e.to_string(),
        };
        let hint = match user.switch {
            true => format!(
                " (as root, the harness runs PostgreSQL as uid {}: each directory above {} must \
                 be searchable by it; set TMPDIR to one that is)",
                user.uid,
                self.dir.display()
            ),
            false => String::new(),
        };
        Err(self.failure("initdb failed", &format!("{why}{hint}")))
    }

    /// Starts the postmaster in the foreground (so that it is our child, dying with us) and
    /// waits until it says it is ready.
    async fn launch(&self, user: ClusterUser, timeout: Duration) -> Result<Child, TargetError> {
        let log = self
            .log_file()
            .map_err(|e| self.failure("cannot write its log", &e.to_string()))?;
        let mut command = Command::new(&self.programs.postgres);
        command.arg("-D").arg(self.data_dir());
        for setting in server_settings(&self.dir) {
            command.arg("-c").arg(setting);
        }
        command
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .map_err(|e| self.failure("log", &e.to_string()))?,
            )
            .stderr(log)
            // Its own group, with every backend it forks: one signal reaches them all.
            .process_group(0);
        user.apply(&mut command);
        let mut child = spawn_from_launcher(command).await.map_err(|e| {
            self.failure(
                &format!("cannot run {}", self.programs.postgres.display()),
                &e.to_string(),
            )
        })?;
        match self.wait_until_ready(&mut child, timeout).await {
            Ok(()) => Ok(child),
            Err(reason) => {
                stop(child, Duration::ZERO).await;
                Err(self.failure("the server did not start", &reason))
            }
        }
    }

    /// The postmaster writes its state into the last line of `postmaster.pid`: `ready` once it
    /// accepts connections.
    async fn wait_until_ready(&self, child: &mut Child, timeout: Duration) -> Result<(), String> {
        let pid_file = self.data_dir().join("postmaster.pid");
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(describe_exit(status));
            }
            let state = fs::read_to_string(&pid_file).unwrap_or_default();
            if state.lines().nth(7).map(str::trim) == Some("ready") {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("not ready within {} s", timeout.as_secs_f64()));
            }
            tokio::time::sleep(READY_POLL_INTERVAL).await;
        }
    }

    /// A new database for one Synapse instance, as Synapse's docs ask (UTF8, C collation and
    /// ctype, from template0); its `database` configuration section.
    pub(super) async fn create_database(&self) -> Result<Value, TargetError> {
        let name = format!(
            "synapse_{}",
            self.next_database.fetch_add(1, Ordering::Relaxed)
        );
        let output = Command::new(&self.programs.createdb)
            .arg("--host")
            .arg(&self.dir)
            .args([
                &format!("--port={SOCKET_PORT}"),
                &format!("--username={ROLE}"),
                "--encoding=UTF8",
                "--locale=C",
                "--template=template0",
                &name,
            ])
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| {
                self.failure(
                    &format!("cannot run {}", self.programs.createdb.display()),
                    &e.to_string(),
                )
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(self.failure(&format!("creating database {name}"), stderr.trim()));
        }
        Ok(json!({
            "name": "psycopg2",
            "args": {
                "user": ROLE,
                "dbname": name,
                "host": self.dir,
                "port": SOCKET_PORT,
                "cp_min": 5,
                "cp_max": 10,
            },
        }))
    }

    /// Fast shutdown (SIGINT: backends end, a checkpoint, exit), SIGKILL after a grace; then the
    /// directory goes (or is kept, as asked).
    pub(super) async fn shutdown(self) {
        let postmaster = self.lock_postmaster().take();
        if let Some(mut child) = postmaster {
            if let Some(pid) = child.id() {
                // SAFETY: kill has no memory effects.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
                if tokio::time::timeout(STOP_GRACE, child.wait())
                    .await
                    .is_err()
                {
                    signal_group(pid, libc::SIGKILL);
                    let _ = child.wait().await;
                }
            }
        }
        self.release_run_dir();
    }

    fn release_run_dir(&self) {
        super::release_run_dir(&self.run_dir, self.keep_data, "PostgreSQL cluster");
    }
}

impl Drop for PostgresCluster {
    /// The way out where `shutdown` was not awaited (a panic, a failed start): immediate shutdown
    /// (SIGQUIT, which still frees its shared memory), SIGKILL to the group if it lingers.
    fn drop(&mut self) {
        if let Some(mut child) = self.lock_postmaster().take() {
            if let Some(pid) = child.id() {
                // SAFETY: kill has no memory effects.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGQUIT) };
                reap_briefly(&mut child);
                signal_group(pid, libc::SIGKILL);
                reap_briefly(&mut child);
            }
        }
        self.release_run_dir();
    }
}

/// Lets go of one instance's hold on the cluster; the last to let go shuts it down.
pub(super) async fn release(cluster: Option<Arc<PostgresCluster>>) {
    if let Some(last) = cluster.and_then(Arc::into_inner) {
        last.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_listens_on_its_socket_only_and_skips_durability() {
        let settings = server_settings(Path::new("/run/x"));
        assert!(settings.contains(&"listen_addresses=".to_string()));
        assert!(settings.contains(&"unix_socket_directories=/run/x".to_string()));
        assert!(settings.contains(&"fsync=off".to_string()));
    }

    #[test]
    fn programs_come_from_path_or_the_newest_versioned_directory_else_say_what_to_install() {
        let root = tempfile::tempdir().unwrap();
        let bin = |dir: &str| {
            let bin = root.path().join(dir);
            fs::create_dir_all(&bin).unwrap();
            for program in ["initdb", "postgres"] {
                fs::write(bin.join(program), "").unwrap();
            }
            bin
        };
        let (versioned, empty) = (root.path().join("lib"), root.path().join("empty"));
        fs::create_dir_all(&empty).unwrap();
        let missing = Programs::find_in(Some(empty.clone().into()), &versioned);
        let Err(TargetError(message)) = missing else {
            panic!("found PostgreSQL in an empty tree")
        };
        assert!(message.contains("apt install postgresql"), "{message}");
        bin("lib/9/bin");
        let newest = bin("lib/15/bin");
        let found = Programs::find_in(Some(empty.into()), &versioned)
            .ok()
            .unwrap();
        assert_eq!(found.initdb, newest.join("initdb"));
        let on_path = bin("path");
        let found = Programs::find_in(Some(on_path.clone().into()), &versioned)
            .ok()
            .unwrap();
        assert_eq!(
            found.postgres,
            fs::canonicalize(on_path).unwrap().join("postgres")
        );
    }
}
