//! Finding or installing Synapse: an existing virtualenv, or a managed one under the cache
//! directory, installed with uv with dependencies resolved as of the release date.

use super::*;
use jiff::{tz::TimeZone, Timestamp};
use serde::Deserialize;

pub(super) struct Installation {
    pub(super) python: PathBuf,
    pub(super) version: String,
}

pub(super) async fn find_or_install(opts: &SynapseOptions) -> Result<Installation, TargetError> {
    match &opts.venv {
        Some(dir) => existing_venv(dir).await,
        None => managed_venv(opts).await,
    }
}

pub(super) async fn existing_venv(dir: &Path) -> Result<Installation, TargetError> {
    let python = dir.join("bin").join("python");
    match synapse_version_of(&python).await {
        Ok(version) => Ok(Installation { python, version }),
        Err(why) => Err(TargetError(format!(
            "--synapse-venv {}: {} cannot import Synapse ({why}).\nPoint --synapse-venv at a \
             virtualenv where matrix-synapse is installed (`pip install matrix-synapse`, or \
             `pip install -e` of a checkout), or leave the option out to use a managed Synapse.",
            dir.display(),
            python.display()
        ))),
    }
}

/// What `python -c 'import synapse'` says the version is, or why that failed.
pub(super) async fn synapse_version_of(python: &Path) -> Result<String, String> {
    let output = Command::new(python)
        .args(["-c", "import synapse; print(synapse.__version__)"])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(stderr
            .trim()
            .lines()
            .last()
            .unwrap_or("no error output")
            .to_string());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

pub(super) async fn managed_venv(opts: &SynapseOptions) -> Result<Installation, TargetError> {
    let cache = match &opts.cache_dir {
        Some(dir) => dir.clone(),
        None => dirs::cache_dir()
            .ok_or_else(|| {
                TargetError(
                    "cannot tell where the user's cache directory is (is HOME set?); \
                     use --synapse-venv with an existing Synapse environment."
                        .into(),
                )
            })?
            .join("delayed-events-conformance"),
    };
    let venv = cache.join(format!("synapse-{}", opts.version));
    if let Some(done) = completed_install(&venv) {
        return Ok(done);
    }
    fs::create_dir_all(&cache).map_err(|e| {
        TargetError(format!(
            "cannot create the cache directory {}: {e}",
            cache.display()
        ))
    })?;
    let _lock = lock_exclusively(&cache.join("install.lock"), opts.show_progress).await?;
    // Another run may have finished the same install while we waited for the lock.
    if let Some(done) = completed_install(&venv) {
        return Ok(done);
    }
    let log = cache.join(format!("synapse-{}.install.log", opts.version));
    Installer::new(&opts.version, venv, log, opts.show_progress)
        .run()
        .await
}

pub(super) fn completed_install(venv: &Path) -> Option<Installation> {
    let version = fs::read_to_string(venv.join(INSTALLED_MARKER)).ok()?;
    let python = venv.join("bin").join("python");
    // A venv whose base Python was removed or upgraded away is as good as incomplete.
    python.exists().then(|| Installation {
        python,
        version: version.trim().to_string(),
    })
}

/// Holds an exclusive `flock` on `path` until dropped, so concurrent runs install only once.
/// Locks `path`; `announce` says so on stderr when another holder makes it wait.
pub(super) async fn lock_exclusively(path: &Path, announce: bool) -> Result<File, TargetError> {
    let cannot =
        |e: &dyn std::fmt::Display| TargetError(format!("cannot lock {}: {e}", path.display()));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| cannot(&e))?;
    if flock(&file, libc::LOCK_EX | libc::LOCK_NB).is_ok() {
        return Ok(file);
    }
    if announce {
        eprintln!("Waiting for another run to finish installing Synapse ...");
    }
    let locked = tokio::task::spawn_blocking(move || flock(&file, libc::LOCK_EX).map(|()| file));
    match locked.await {
        Ok(Ok(file)) => Ok(file),
        Ok(Err(e)) => Err(cannot(&e)),
        Err(e) => Err(cannot(&e)),
    }
}

pub(super) fn flock(file: &File, operation: libc::c_int) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a descriptor that `file` keeps open.
    match unsafe { libc::flock(file.as_raw_fd(), operation) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// One first-time install into `venv`, narrated by a spinner and recorded in `log`.
pub(super) struct Installer<'a> {
    version: &'a str,
    venv: PathBuf,
    log: PathBuf,
    spinner: ProgressBar,
    started: Instant,
}

impl<'a> Installer<'a> {
    fn new(version: &'a str, venv: PathBuf, log: PathBuf, show_progress: bool) -> Self {
        let spinner = if show_progress {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        spinner.set_style(
            ProgressStyle::with_template(
                "{spinner} Installing Synapse {prefix}: {msg} [{elapsed}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        spinner.set_prefix(version.to_string());
        spinner.set_message("starting");
        spinner.enable_steady_tick(Duration::from_millis(100));
        Installer {
            version,
            venv,
            log,
            spinner,
            started: Instant::now(),
        }
    }

    async fn run(self) -> Result<Installation, TargetError> {
        let result = self.install().await;
        self.spinner.finish_and_clear();
        let installation = result?;
        eprintln!(
            "Installed Synapse {} in {:.1} s into {}",
            installation.version,
            self.started.elapsed().as_secs_f64(),
            self.venv.display()
        );
        Ok(installation)
    }

    async fn install(&self) -> Result<Installation, TargetError> {
        let _ = fs::remove_file(&self.log);
        self.stage("reading pip's configuration");
        let pip = PipSettings::read().await?;
        self.stage("looking up the release date");
        let cutoff = self.dependency_cutoff(&pip).await?;
        self.stage("creating a virtualenv");
        self.create_venv().await?;
        self.install_package(&pip, cutoff.as_deref()).await?;
        self.stage("checking that Synapse imports");
        let python = self.venv.join("bin").join("python");
        let version = synapse_version_of(&python).await.map_err(|why| {
            self.failure(
                "checking the installation",
                &format!("`import synapse` failed: {why}"),
            )
        })?;
        fs::write(self.venv.join(INSTALLED_MARKER), &version)
            .map_err(|e| self.failure("marking the installation complete", &e.to_string()))?;
        Ok(Installation { python, version })
    }

    fn stage(&self, what: &str) {
        self.spinner.set_message(what.to_string());
    }

    /// A line on stderr that does not fight with the spinner (and shows when it is hidden).
    fn notice(&self, text: &str) {
        self.spinner.suspend(|| eprintln!("{text}"));
    }

    /// The `--exclude-newer` date: the day after the release, so dependencies resolve as they
    /// did then. `None` (said aloud) when the index does not tell.
    async fn dependency_cutoff(&self, pip: &PipSettings) -> Result<Option<String>, TargetError> {
        match release_upload_date(pip, self.version).await {
            Ok(time) => Ok(day_after(time)),
            Err(LookupError::NoSuchVersion(page)) => Err(TargetError(format!(
                "{PACKAGE} {} is not on the package index ({page} lists no such version).\n\
                 Check --synapse-version against the versions listed there.",
                self.version
            ))),
            Err(LookupError::Unavailable(why)) => {
                self.notice(&format!(
                    "note: cannot find when {PACKAGE} {} was released ({why}); installing with \
                     today's dependencies, which may not work with an older release.",
                    self.version
                ));
                Ok(None)
            }
        }
    }

    async fn create_venv(&self) -> Result<(), TargetError> {
        if self.venv.exists() {
            fs::remove_dir_all(&self.venv)
                .map_err(|e| self.failure("removing an incomplete virtualenv", &e.to_string()))?;
        }
        let mut command = Command::new("python3");
        command.args(["-m", "venv"]).arg(&self.venv);
        self.run_logged(&mut command).await.map_err(|tail| {
            self.failure(
                "creating a virtualenv",
                &format!(
                    "{tail}\n(On Debian and Ubuntu, `python3 -m venv` needs the python3-venv \
                     package: `sudo apt install python3-venv`.)"
                ),
            )
        })
    }

    /// With uv (dependencies as of `cutoff`) when it can be had, else with plain pip.
    async fn install_package(
        &self,
        pip: &PipSettings,
        cutoff: Option<&str>,
    ) -> Result<(), TargetError> {
        let requirement = format!("{PACKAGE}=={}", self.version);
        let python = self.venv.join("bin").join("python");
        self.stage("installing uv");
        let mut get_uv = Command::new(&python);
        get_uv.args(["-m", "pip", "install", "uv"]);
        let mut with_uv = self.uv_install(pip, cutoff, &requirement);
        let uv_result = match self.run_logged(&mut get_uv).await {
            Ok(()) => {
                self.stage("installing Synapse with uv");
                self.run_logged(&mut with_uv).await
            }
            Err(tail) => Err(tail),
        };
        let Err(uv_tail) = uv_result else {
            return Ok(());
        };
        self.notice(&format!(
            "note: installing with uv failed ({}); trying plain pip, with today's dependencies.",
            uv_tail.lines().last().unwrap_or("no output")
        ));
        self.stage("installing Synapse with pip");
        let mut with_pip = Command::new(&python);
        with_pip.args(["-m", "pip", "install", &requirement]);
        self.run_logged(&mut with_pip).await.map_err(|tail| {
            self.failure(
                &format!("installing {requirement}"),
                &format!(
                    "{tail}\n(Synapse {} may need a newer Python than `python3` here, or the \
                     package index may be unreachable.)",
                    self.version
                ),
            )
        })
    }

    /// `uv pip install` of `requirement` into the virtualenv, from where pip's configuration says.
    fn uv_install(&self, pip: &PipSettings, cutoff: Option<&str>, requirement: &str) -> Command {
        let mut with_uv = Command::new(self.venv.join("bin").join("uv"));
        with_uv
            .args(["pip", "install", "--compile-bytecode", "--python"])
            .arg(self.venv.join("bin").join("python"))
            .args(cutoff.map(|date| format!("--exclude-newer={date}")))
            .args(pip.uv_arguments())
            .arg(requirement)
            // Trust the system's certificates as pip does (corporate proxies); the variable
            // was renamed in uv 0.10, so set both.
            .env("UV_NATIVE_TLS", "1")
            .env("UV_SYSTEM_CERTS", "1");
        if let Some(cert) = pip.uv_ca_bundle() {
            with_uv.env("SSL_CERT_FILE", cert);
        }
        with_uv
    }

    /// Adds psycopg2 to a complete installation, with uv where the install left it, else pip.
    async fn add_psycopg2(&self) -> Result<(), TargetError> {
        self.stage("reading pip's configuration");
        let pip = PipSettings::read().await?;
        self.stage(&format!("adding {PSYCOPG2} (for PostgreSQL)"));
        let mut with_uv = self.uv_install(&pip, None, PSYCOPG2);
        let with_uv_failed = match self.venv.join("bin").join("uv").exists() {
            true => self.run_logged(&mut with_uv).await.is_err(),
            false => true,
        };
        if with_uv_failed {
            let mut with_pip = Command::new(self.venv.join("bin").join("python"));
            with_pip.args(["-m", "pip", "install", PSYCOPG2]);
            self.run_logged(&mut with_pip)
                .await
                .map_err(|tail| self.failure(&format!("installing {PSYCOPG2}"), &tail))?;
        }
        match imports_psycopg2(&self.venv.join("bin").join("python")).await {
            true => Ok(()),
            false => Err(self.failure(
                "checking the installation",
                "`import psycopg2` fails after installing it",
            )),
        }
    }

    /// Adds `matrix-synapse[redis]` at the installed version to a complete installation. Every
    /// package already installed is pinned (a constraints file from `pip freeze`), so the install
    /// can only add packages: one that fails half-way leaves Synapse as it was.
    async fn add_redis_extra(&self) -> Result<(), TargetError> {
        let python = self.venv.join("bin").join("python");
        self.stage("reading pip's configuration");
        let pip = PipSettings::read().await?;
        let cutoff = match release_upload_date(&pip, self.version).await {
            Ok(time) => day_after(time),
            Err(_) => None,
        };
        self.stage("listing the installed packages");
        let pinned = self.installed_pins(&python).await?;
        let constraints = tempfile::Builder::new()
            .prefix("installed-")
            .suffix(".txt")
            .tempfile_in(self.venv.parent().unwrap_or(&self.venv))
            .and_then(|mut file| file.write_all(pinned.as_bytes()).map(|()| file))
            .map_err(|e| self.failure("writing a constraints file", &e.to_string()))?;
        let requirement = format!("{PACKAGE}[redis]=={}", self.version);
        self.stage("adding Synapse's redis extra (for workers)");
        let mut with_uv = self.uv_install(&pip, cutoff.as_deref(), &requirement);
        with_uv.arg("--constraint").arg(constraints.path());
        let with_uv_failed = match self.venv.join("bin").join("uv").exists() {
            true => self.run_logged(&mut with_uv).await.is_err(),
            false => true,
        };
        if with_uv_failed {
            let mut with_pip = Command::new(&python);
            with_pip
                .args(["-m", "pip", "install", "--constraint"])
                .arg(constraints.path())
                .arg(&requirement);
            self.run_logged(&mut with_pip)
                .await
                .map_err(|tail| self.failure(&format!("installing {requirement}"), &tail))?;
        }
        redis_support(&python)
            .await
            .map_err(|why| self.failure("checking the installation", &why))?;
        synapse_version_of(&python).await.map_err(|why| {
            self.failure(
                "checking the installation",
                &format!("`import synapse`: {why}"),
            )
        })?;
        Ok(())
    }

    /// `name==version` for every package in the virtualenv, one a line.
    async fn installed_pins(&self, python: &Path) -> Result<String, TargetError> {
        let output = Command::new(python)
            .args(["-m", "pip", "freeze", "--all"])
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| self.failure("listing the installed packages", &e.to_string()))?;
        if !output.status.success() {
            let said = String::from_utf8_lossy(&output.stderr).to_string();
            return Err(self.failure("listing the installed packages", &said));
        }
        Ok(pins(&String::from_utf8_lossy(&output.stdout)))
    }

    /// Runs `command` with its output appended to the install log; the log's tail on failure.
    async fn run_logged(&self, command: &mut Command) -> Result<(), String> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("cannot write {}: {e}", self.log.display()))?;
        let elapsed = self.started.elapsed().as_secs_f64();
        let command_line = hide_credentials(&format!("{:?}", command.as_std()));
        let _ = writeln!(log, "[{elapsed:.1} s] {command_line}");
        let stderr = log.try_clone().map_err(|e| e.to_string())?;
        let status = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .status()
            .await
            .map_err(|e| format!("cannot run {:?}: {e}", command.as_std().get_program()))?;
        if status.success() {
            return Ok(());
        }
        Err(tail_lines(&self.log, 15).unwrap_or_default())
    }

    fn failure(&self, stage: &str, detail: &str) -> TargetError {
        TargetError(format!(
            "installing Synapse {} failed while {stage}:\n{detail}\nFull log: {}\n\
             The next run starts the install over. Alternatives: --synapse-venv DIR with a \
             Synapse you installed, or --target url.",
            self.version,
            self.log.display()
        ))
    }
}

/// The `name==version` lines of `pip freeze` output, as constraints (editable installs and
/// direct references cannot be constraints, and a managed virtualenv has none).
fn pins(freeze: &str) -> String {
    freeze
        .lines()
        .map(str::trim)
        .filter(|line| line.contains("==") && !line.starts_with('-') && !line.contains(" @ "))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// psycopg2 as prebuilt wheels: no compiler or PostgreSQL headers needed (the `postgres` extra of
/// matrix-synapse asks for the source package, which needs both).
const PSYCOPG2: &str = "psycopg2-binary";

async fn imports_psycopg2(python: &Path) -> bool {
    let status = Command::new(python)
        .args(["-c", "import psycopg2"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    matches!(status, Ok(s) if s.success())
}

/// Makes sure Synapse's Python can `import psycopg2`, which it needs for PostgreSQL: a managed
/// virtualenv gets it added, once; for --synapse-venv, says how to add it.
pub(super) async fn ensure_psycopg2(
    opts: &SynapseOptions,
    installation: &Installation,
) -> Result<(), TargetError> {
    if imports_psycopg2(&installation.python).await {
        return Ok(());
    }
    let venv = installation.python.parent().and_then(Path::parent);
    let (Some(venv), None) = (venv, &opts.venv) else {
        let dir = opts.venv.clone().unwrap_or_default();
        return Err(TargetError(format!(
            "--synapse-database postgres: the Python of --synapse-venv {} cannot import \
             psycopg2, which Synapse needs to talk to PostgreSQL.\nInstall it there: \
             `{}/bin/pip install {PSYCOPG2}` (or the `matrix-synapse[postgres]` extra, which \
             builds it from source and needs libpq-dev and a C compiler).",
            dir.display(),
            dir.display()
        )));
    };
    add_to_managed_venv(opts, installation, venv, Addition::Psycopg2).await
}

/// What a managed virtualenv gets added, once, when a run needs it.
#[derive(Clone, Copy)]
enum Addition {
    Psycopg2,
    RedisExtra,
}

impl Addition {
    fn name(self) -> &'static str {
        match self {
            Addition::Psycopg2 => PSYCOPG2,
            Addition::RedisExtra => "Synapse's redis extra",
        }
    }

    async fn present(self, python: &Path) -> bool {
        match self {
            Addition::Psycopg2 => imports_psycopg2(python).await,
            Addition::RedisExtra => redis_support(python).await.is_ok(),
        }
    }

    async fn install(self, installer: &Installer<'_>) -> Result<(), TargetError> {
        match self {
            Addition::Psycopg2 => installer.add_psycopg2().await,
            Addition::RedisExtra => installer.add_redis_extra().await,
        }
    }
}

/// Adds `addition` to the managed virtualenv `venv`, under the cache's install lock.
async fn add_to_managed_venv(
    opts: &SynapseOptions,
    installation: &Installation,
    venv: &Path,
    addition: Addition,
) -> Result<(), TargetError> {
    let cache = venv.parent().unwrap_or(venv);
    let _lock = lock_exclusively(&cache.join("install.lock"), opts.show_progress).await?;
    // Another run may have added it while we waited for the lock.
    if addition.present(&installation.python).await {
        return Ok(());
    }
    let log = cache.join(format!("synapse-{}.install.log", installation.version));
    let installer = Installer::new(
        &installation.version,
        venv.to_path_buf(),
        log,
        opts.show_progress,
    );
    let result = addition.install(&installer).await;
    installer.spinner.finish_and_clear();
    result?;
    eprintln!(
        "Added {} in {:.1} s to {}",
        addition.name(),
        installer.started.elapsed().as_secs_f64(),
        venv.display()
    );
    Ok(())
}

/// Synapse's own dependency check for its `redis` extra (txredisapi and hiredis, in the versions
/// the release accepts): `Err` with the first line of what it said.
pub(super) async fn redis_support(python: &Path) -> Result<(), String> {
    let check = "from synapse.util.check_dependencies import check_requirements\n\
                 check_requirements('redis')";
    let output = Command::new(python)
        .args(["-c", check])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if output.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr);
    Err(said
        .trim()
        .lines()
        .last()
        .unwrap_or("no output")
        .to_string())
}

/// Makes sure Synapse's Python has the `redis` extra, which workers need to replicate: a managed
/// virtualenv gets it added, once, without changing any package already there; for
/// --synapse-venv, says how to add it.
pub(super) async fn ensure_redis_extra(
    opts: &SynapseOptions,
    installation: &Installation,
) -> Result<(), TargetError> {
    let Err(why) = redis_support(&installation.python).await else {
        return Ok(());
    };
    let venv = installation.python.parent().and_then(Path::parent);
    let (Some(venv), None) = (venv, &opts.venv) else {
        let dir = opts.venv.clone().unwrap_or_default();
        return Err(TargetError(format!(
            "--synapse-workers: the Synapse of --synapse-venv {} lacks its `redis` extra, which \
             workers need to replicate ({why}).\nInstall it there: `{}/bin/pip install \
             'matrix-synapse[redis]=={}'`.",
            dir.display(),
            dir.display(),
            installation.version
        )));
    };
    add_to_managed_venv(opts, installation, venv, Addition::RedisExtra).await
}

pub(super) fn python_missing() -> TargetError {
    TargetError(
        "the managed Synapse target needs Python 3, and `python3` is not on PATH.\n\
         Install it (Debian/Ubuntu: `sudo apt install python3 python3-venv`; Fedora: \
         `sudo dnf install python3`; macOS: `brew install python`), or use \
         --synapse-venv DIR with an environment where Synapse is installed, or test a server \
         you run yourself with --target url --base-url URL."
            .into(),
    )
}

/// The parts of pip's configuration (files and `PIP_*` variables) that say where packages come
/// from, so the index lookup and uv use the same source as pip.
#[derive(Default)]
pub(super) struct PipSettings {
    index_url: Option<String>,
    extra_index_urls: Vec<String>,
    find_links: Vec<String>,
    cert: Option<String>,
}

impl PipSettings {
    async fn read() -> Result<PipSettings, TargetError> {
        let output = Command::new("python3")
            .args(["-m", "pip", "config", "list"])
            .stdin(Stdio::null())
            .output()
            .await;
        match output {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(python_missing()),
            // No pip next to the system Python: nothing configured, defaults apply.
            Err(_) => Ok(PipSettings::default()),
            Ok(o) => Ok(PipSettings::parse(&String::from_utf8_lossy(&o.stdout))),
        }
    }

    /// Parses `pip config list` lines like `global.index-url='https://…'` or
    /// `:env:.cert='/etc/…'`; environment beats `[install]`, which beats `[global]`.
    fn parse(listing: &str) -> PipSettings {
        let setting = |name: &str| -> Option<String> {
            [":env:", "install", "global"].iter().find_map(|section| {
                listing.lines().find_map(|line| {
                    let value = line.strip_prefix(&format!("{section}.{name}="))?;
                    Some(value.trim().trim_matches(['\'', '"']).to_string())
                })
            })
        };
        let list = |name: &str| -> Vec<String> {
            setting(name)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        PipSettings {
            index_url: setting("index-url"),
            extra_index_urls: list("extra-index-url"),
            find_links: list("find-links"),
            cert: setting("cert"),
        }
    }

    fn index(&self) -> &str {
        self.index_url
            .as_deref()
            .unwrap_or(DEFAULT_INDEX)
            .trim_end_matches('/')
    }

    fn uv_arguments(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(url) = &self.index_url {
            args.push(format!("--index-url={url}"));
        }
        args.extend(
            self.extra_index_urls
                .iter()
                .map(|url| format!("--extra-index-url={url}")),
        );
        args.extend(
            self.find_links
                .iter()
                .map(|dir| format!("--find-links={dir}")),
        );
        args
    }

    /// pip's CA bundle, for uv, unless the environment already names one.
    fn uv_ca_bundle(&self) -> Option<&str> {
        match std::env::var_os("SSL_CERT_FILE") {
            Some(_) => None,
            None => self.cert.as_deref(),
        }
    }
}

pub(super) enum LookupError {
    /// The index page (named here) answered but lists no file of that version.
    NoSuchVersion(String),
    Unavailable(String),
}

/// Fetches a URL with the system Python, so proxies and certificates work as they do for pip.
pub(super) const FETCH_SCRIPT: &str = r#"
import ssl, sys, urllib.request
url, accept, cafile = sys.argv[1], sys.argv[2], sys.argv[3] or None
try:
    context = ssl.create_default_context(cafile=cafile)
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=30, context=context) as response:
        sys.stdout.buffer.write(response.read())
except Exception as e:
    sys.exit(str(e))
"#;

/// The form of the simple API asked for: JSON (PEP 691), where each file has its `upload-time`.
pub(super) const SIMPLE_JSON: &str = "application/vnd.pypi.simple.v1+json";

/// The upload time of the newest file of `version` on the index's simple page for the package.
pub(super) async fn release_upload_date(
    pip: &PipSettings,
    version: &str,
) -> Result<Timestamp, LookupError> {
    let page = format!("{}/{PACKAGE}/", pip.index());
    let shown_page = hide_credentials(&page);
    let output = Command::new("python3")
        .args([
            "-c",
            FETCH_SCRIPT,
            &page,
            SIMPLE_JSON,
            pip.cert.as_deref().unwrap_or(""),
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| LookupError::Unavailable(e.to_string()))?;
    if !output.status.success() {
        let why = String::from_utf8_lossy(&output.stderr).trim().to_string();
        return Err(LookupError::Unavailable(format!("{shown_page}: {why}")));
    }
    newest_upload(&output.stdout, version, &shown_page)
}

/// A package's page in the JSON form of the simple API (PEP 691), as far as it is read here.
#[derive(Deserialize)]
pub(super) struct SimplePage {
    files: Vec<SimpleFile>,
}

#[derive(Deserialize)]
pub(super) struct SimpleFile {
    filename: String,
    /// RFC 3339 in UTC; optional (PEP 700).
    #[serde(rename = "upload-time")]
    upload_time: Option<String>,
}

/// The newest upload time among the files of `version` on the simple page `body` (JSON),
/// which `shown_page` names in errors.
pub(super) fn newest_upload(
    body: &[u8],
    version: &str,
    shown_page: &str,
) -> Result<Timestamp, LookupError> {
    let page: SimplePage = serde_json::from_slice(body).map_err(|e| {
        LookupError::Unavailable(format!(
            "{shown_page} did not answer in the JSON form of the simple API, PEP 691 ({e})"
        ))
    })?;
    let times: Vec<&Option<String>> = page
        .files
        .iter()
        .filter(|file| version_in_filename(&file.filename) == Some(version))
        .map(|file| &file.upload_time)
        .collect();
    if times.is_empty() {
        return Err(LookupError::NoSuchVersion(shown_page.to_string()));
    }
    let mut newest = None;
    for time in times.into_iter().flatten() {
        let time: Timestamp = time.parse().map_err(|e| {
            LookupError::Unavailable(format!("{shown_page} gives an upload time {time:?}: {e}"))
        })?;
        newest = newest.max(Some(time));
    }
    newest
        .ok_or_else(|| LookupError::Unavailable(format!("{shown_page} does not give upload times")))
}

/// `https://user:token@host/…` → `https://***@host/…` in every URL of `text`, for anything
/// logged or shown.
pub(super) fn hide_credentials(text: &str) -> String {
    let hide = |word: &str| -> Option<String> {
        let authority = word.find("://")? + 3;
        let at = authority + word[authority..].find('@')?;
        let userinfo = &word[authority..at];
        (!userinfo.contains('/')).then(|| format!("{}***{}", &word[..authority], &word[at..]))
    };
    text.split(' ')
        .map(|word| hide(word).unwrap_or_else(|| word.to_string()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The version part of a wheel (`name-1.2.3-tags.whl`) or sdist (`name-1.2.3.tar.gz`) name.
pub(super) fn version_in_filename(name: &str) -> Option<&str> {
    if name.ends_with(".whl") {
        return name.split('-').nth(1);
    }
    let stem = name
        .strip_suffix(".tar.gz")
        .or_else(|| name.strip_suffix(".zip"))?;
    stem.rsplit_once('-').map(|(_, version)| version)
}

/// The day (UTC) after `time`, as `--exclude-newer` takes it: `2025-02-28T10:00:00Z` →
/// `2025-03-01`. `None` only past the end of the calendar.
pub(super) fn day_after(time: Timestamp) -> Option<String> {
    let date = TimeZone::UTC.to_datetime(time).date();
    date.tomorrow().ok().map(|day| day.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day_after_str(time: &str) -> Option<String> {
        day_after(time.parse().expect("an RFC 3339 time"))
    }

    #[test]
    fn day_after_rolls_over_months_and_years() {
        assert_eq!(
            day_after_str("2025-02-28T10:00:00Z").as_deref(),
            Some("2025-03-01")
        );
        assert_eq!(
            day_after_str("2024-02-28T10:00:00Z").as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(
            day_after_str("2025-12-31T23:59:59Z").as_deref(),
            Some("2026-01-01")
        );
        assert_eq!(
            day_after_str("2025-11-25T16:51:38.197275Z").as_deref(),
            Some("2025-11-26")
        );
        // The date is the upload's in UTC, whatever offset the time is written with.
        assert_eq!(
            day_after_str("2025-06-10T23:30:00-02:00").as_deref(),
            Some("2025-06-12")
        );
    }

    /// The shape of pypi.org's answer to `Accept: application/vnd.pypi.simple.v1+json`, cut down.
    const SIMPLE_PAGE: &str = r#"{
      "meta": {"api-version": "1.1", "_last-serial": 42880072},
      "name": "matrix-synapse",
      "versions": ["0.33.5.1", "1.143.0"],
      "files": [
        {"filename": "matrix-synapse-0.33.5.1.tar.gz", "hashes": {"sha256": "00"},
         "url": "https://files.example/matrix-synapse-0.33.5.1.tar.gz", "yanked": false},
        {"filename": "matrix_synapse-1.143.0-cp310-abi3-macosx_10_9_x86_64.whl",
         "hashes": {"sha256": "e4"}, "requires-python": "<4.0.0,>=3.10.0", "size": 7919215,
         "upload-time": "2025-11-25T16:51:38.197275Z",
         "url": "https://files.example/a.whl", "yanked": false},
        {"filename": "matrix_synapse-1.143.0.tar.gz", "hashes": {"sha256": "5b"},
         "upload-time": "2025-11-25T23:59:01.5Z", "url": "https://files.example/b.tar.gz",
         "yanked": false},
        {"filename": "matrix_synapse-1.143.0-cp310-abi3-manylinux_2_28_x86_64.whl",
         "hashes": {"sha256": "6c"}, "upload-time": "2025-11-25T16:52:00Z",
         "url": "https://files.example/c.whl", "yanked": false}
      ]
    }"#;

    #[test]
    fn the_newest_file_of_a_version_gives_its_upload_time() {
        let time = newest_upload(SIMPLE_PAGE.as_bytes(), "1.143.0", "page").ok();
        assert_eq!(time, "2025-11-25T23:59:01.5Z".parse().ok());
        assert_eq!(day_after(time.unwrap()).as_deref(), Some("2025-11-26"));
    }

    #[test]
    fn pages_without_the_version_or_its_times_say_so() {
        let page = SIMPLE_PAGE.as_bytes();
        assert!(matches!(
            newest_upload(page, "1.142.0", "the page"),
            Err(LookupError::NoSuchVersion(named)) if named == "the page"
        ));
        assert!(matches!(
            newest_upload(page, "0.33.5.1", "the page"),
            Err(LookupError::Unavailable(why)) if why == "the page does not give upload times"
        ));
        let html = b"<!DOCTYPE html><html><body><a href=\"x\">matrix_synapse-1.143.0.tar.gz</a>";
        assert!(matches!(
            newest_upload(html, "1.143.0", "the page"),
            Err(LookupError::Unavailable(why)) if why.contains("PEP 691")
        ));
        let garbled = br#"{"files": [{"filename": "matrix_synapse-1.143.0.tar.gz", "upload-time": "yesterday"}]}"#;
        assert!(matches!(
            newest_upload(garbled, "1.143.0", "the page"),
            Err(LookupError::Unavailable(why)) if why.contains("yesterday")
        ));
    }

    #[test]
    fn versions_come_from_wheel_and_sdist_names() {
        assert_eq!(
            version_in_filename("matrix_synapse-1.163.2-cp310-abi3-manylinux_2_28_x86_64.whl"),
            Some("1.163.2")
        );
        assert_eq!(
            version_in_filename("matrix-synapse-0.33.5.1.tar.gz"),
            Some("0.33.5.1")
        );
        assert_eq!(version_in_filename("matrix_synapse-1.0.zip"), Some("1.0"));
        assert_eq!(version_in_filename("matrix_synapse-1.0.exe"), None);
    }

    #[test]
    fn credentials_in_urls_are_hidden() {
        assert_eq!(
            hide_credentials("\"--index-url=https://me:tok@pypi.example/simple\" x"),
            "\"--index-url=https://***@pypi.example/simple\" x"
        );
        assert_eq!(hide_credentials("https://host/a@b"), "https://host/a@b");
    }

    #[test]
    fn every_installed_package_becomes_a_pin() {
        let freeze = "attrs==25.4.0\nmatrix-synapse==1.163.2\n-e git+https://x#egg=y\n\
                      z @ file:///tmp/z.whl\n\nuv==0.13.9\n";
        assert_eq!(
            pins(freeze),
            "attrs==25.4.0\nmatrix-synapse==1.163.2\nuv==0.13.9\n"
        );
    }

    #[test]
    fn pip_settings_prefer_the_environment() {
        let listing = "global.index-url='https://a/simple'\n:env:.index-url='https://b/simple/'\n\
                       :env:.find-links='/opt/wheels /srv/w'\nglobal.cert='/etc/ca.crt'\n";
        let pip = PipSettings::parse(listing);
        assert_eq!(pip.index(), "https://b/simple");
        assert_eq!(pip.find_links, ["/opt/wheels", "/srv/w"]);
        assert_eq!(pip.cert.as_deref(), Some("/etc/ca.crt"));
    }
}
