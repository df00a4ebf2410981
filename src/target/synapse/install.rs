//! Finding or installing Synapse: an existing virtualenv, or a managed one under the cache
//! directory, installed with uv with dependencies resolved as of the release date.

use super::*;

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
            Ok(date) => Ok(day_after(&date)),
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
        let mut with_uv = Command::new(self.venv.join("bin").join("uv"));
        with_uv
            .args(["pip", "install", "--compile-bytecode", "--python"])
            .arg(&python)
            .args(cutoff.map(|date| format!("--exclude-newer={date}")))
            .args(pip.uv_arguments())
            .arg(&requirement)
            // Trust the system's certificates as pip does (corporate proxies); the variable
            // was renamed in uv 0.10, so set both.
            .env("UV_NATIVE_TLS", "1")
            .env("UV_SYSTEM_CERTS", "1");
        if let Some(cert) = pip.uv_ca_bundle() {
            with_uv.env("SSL_CERT_FILE", cert);
        }
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

/// The upload time (RFC 3339) of the newest file of `version` on the index's simple page,
/// read from its PEP 691 JSON form or the `data-upload-time` attributes of its HTML form.
pub(super) async fn release_upload_date(
    pip: &PipSettings,
    version: &str,
) -> Result<String, LookupError> {
    let page = format!("{}/{PACKAGE}/", pip.index());
    let shown_page = hide_credentials(&page);
    let accept = "application/vnd.pypi.simple.v1+json, text/html;q=0.1";
    let output = Command::new("python3")
        .args([
            "-c",
            FETCH_SCRIPT,
            &page,
            accept,
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
    let body = String::from_utf8_lossy(&output.stdout);
    let files = index_files(&body);
    let times: Vec<&Option<String>> = files
        .iter()
        .filter(|(name, _)| version_in_filename(name) == Some(version))
        .map(|(_, time)| time)
        .collect();
    if times.is_empty() {
        return Err(LookupError::NoSuchVersion(shown_page));
    }
    times
        .into_iter()
        .flatten()
        .max()
        .cloned()
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

/// (file name, upload time) of every file on a simple-index page, JSON or HTML.
pub(super) fn index_files(body: &str) -> Vec<(String, Option<String>)> {
    if let Ok(page) = serde_json::from_str::<Value>(body) {
        let files = page["files"].as_array().cloned().unwrap_or_default();
        return files
            .iter()
            .filter_map(|f| {
                let name = f["filename"].as_str()?.to_string();
                Some((name, f["upload-time"].as_str().map(str::to_string)))
            })
            .collect();
    }
    body.split("<a ")
        .skip(1)
        .filter_map(|anchor| {
            let (attributes, rest) = anchor.split_once('>')?;
            let name = rest.split_once("</a>")?.0.trim().to_string();
            let time = attributes
                .split_once("data-upload-time=\"")
                .and_then(|(_, value)| value.split_once('"'))
                .map(|(time, _)| time.to_string());
            Some((name, time))
        })
        .collect()
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

/// `2025-02-28T10:00:00Z` → `2025-03-01`.
pub(super) fn day_after(timestamp: &str) -> Option<String> {
    let date = timestamp.get(..10)?;
    let mut parts = date.split('-').map(|p| p.parse::<u32>().ok());
    let (year, month, day) = (parts.next()??, parts.next()??, parts.next()??);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_length = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let (year, month, day) = match (day < month_length, month < 12) {
        (true, _) => (year, month, day + 1),
        (false, true) => (year, month + 1, 1),
        (false, false) => (year + 1, 1, 1),
    };
    Some(format!("{year:04}-{month:02}-{day:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_after_rolls_over_months_and_years() {
        assert_eq!(
            day_after("2025-02-28T10:00:00Z").as_deref(),
            Some("2025-03-01")
        );
        assert_eq!(
            day_after("2024-02-28T10:00:00Z").as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(
            day_after("2025-12-31T23:59:59Z").as_deref(),
            Some("2026-01-01")
        );
        assert_eq!(day_after("2025-06-10").as_deref(), Some("2025-06-11"));
        assert_eq!(day_after("garbage"), None);
    }

    #[test]
    fn index_pages_in_both_forms_give_versions_and_times() {
        let html = r#"<a href="x#sha256=1" data-requires-python="&gt;=3.10" data-upload-time="2025-11-18T12:00:00.1Z">matrix_synapse-1.163.2-cp310-abi3-manylinux_2_28_x86_64.whl</a><br/>
<a href="y">matrix-synapse-0.33.5.1.tar.gz</a>"#;
        let files = index_files(html);
        assert_eq!(version_in_filename(&files[0].0), Some("1.163.2"));
        assert_eq!(files[0].1.as_deref(), Some("2025-11-18T12:00:00.1Z"));
        assert_eq!(version_in_filename(&files[1].0), Some("0.33.5.1"));
        assert_eq!(files[1].1, None);
        let json = r#"{"files": [{"filename": "matrix_synapse-1.163.2.tar.gz", "upload-time": "2025-11-18T12:00:00Z"}]}"#;
        let files = index_files(json);
        assert_eq!(version_in_filename(&files[0].0), Some("1.163.2"));
        assert_eq!(files[0].1.as_deref(), Some("2025-11-18T12:00:00Z"));
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
    fn pip_settings_prefer_the_environment() {
        let listing = "global.index-url='https://a/simple'\n:env:.index-url='https://b/simple/'\n\
                       :env:.find-links='/opt/wheels /srv/w'\nglobal.cert='/etc/ca.crt'\n";
        let pip = PipSettings::parse(listing);
        assert_eq!(pip.index(), "https://b/simple");
        assert_eq!(pip.find_links, ["/opt/wheels", "/srv/w"]);
        assert_eq!(pip.cert.as_deref(), Some("/etc/ca.crt"));
    }
}
