//! The homeserver process: spawning it so that it dies with the harness, stopping it, ports.

use super::*;

pub(super) async fn spawn_homeserver(python: &Path, files: &RunFiles) -> io::Result<Child> {
    let output = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&files.output_log)?;
    let mut command = Command::new(python);
    command
        .args(["-m", "synapse.app.homeserver", "-c"])
        .arg(&files.config)
        .current_dir(&files.dir)
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output)
        // Its own group: the terminal's Ctrl-C does not reach it, and we can signal all of it.
        .process_group(0);
    let harness = std::process::id() as libc::pid_t;
    // SAFETY: the closure only makes async-signal-safe system calls.
    unsafe {
        command.pre_exec(move || die_with_parent(harness));
    }
    spawn_from_launcher(command).await
}

type LaunchJob = Box<dyn FnOnce() + Send>;

/// Spawns `command` from one thread that lives as long as the harness. The kernel sends the
/// parent-death signal when the *thread* that forked the child ends, and callers' threads end
/// early: libtest workers leave when the queue of cases runs dry, while other cases still run.
pub(crate) async fn spawn_from_launcher(mut command: Command) -> io::Result<Child> {
    static LAUNCHER: OnceLock<mpsc::Sender<LaunchJob>> = OnceLock::new();
    let launcher = LAUNCHER.get_or_init(|| {
        let (sender, jobs) = mpsc::channel::<LaunchJob>();
        // If the thread cannot start, `jobs` is dropped and every send below fails.
        let _ = std::thread::Builder::new()
            .name("synapse-launcher".into())
            .spawn(move || jobs.into_iter().for_each(|job| job()));
        sender
    });
    let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job: LaunchJob = Box::new(move || {
        let _context = runtime.enter(); // tokio reaps the child through this runtime
        let _ = reply.send(command.spawn());
    });
    let gone = || io::Error::other("the thread that launches Synapse is gone");
    launcher.send(job).map_err(|_| gone())?;
    answer.await.map_err(|_| gone())?
}

/// Runs in the forked child: if the harness is killed outright, the kernel kills Synapse too.
pub(crate) fn die_with_parent(harness: libc::pid_t) -> io::Result<()> {
    die_with_parent_by(harness, libc::SIGKILL)
}

/// Runs in the forked child: if the harness is killed outright, the kernel sends the child
/// `signal`. After any change of user: the kernel forgets the setting on one.
#[cfg(target_os = "linux")]
pub(crate) fn die_with_parent_by(harness: libc::pid_t, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: plain system calls without pointers.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, signal) != 0 {
            return Err(io::Error::last_os_error());
        }
        // The harness may have died between fork and prctl.
        if libc::getppid() != harness {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn die_with_parent_by(_harness: libc::pid_t, _signal: libc::c_int) -> io::Result<()> {
    Ok(())
}

pub(super) fn signal_group(leader: u32, signal: libc::c_int) {
    // SAFETY: killpg has no memory effects; an already-gone group only yields ESRCH.
    unsafe {
        libc::killpg(leader as libc::pid_t, signal);
    }
}

/// SIGTERM to the whole group, SIGKILL after `grace` (at once, without SIGTERM, for a zero
/// grace: a crash), and reap.
pub(super) async fn stop(mut child: Child, grace: Duration) {
    let Some(pid) = child.id() else { return }; // already reaped
    if !grace.is_zero() {
        signal_group(pid, libc::SIGTERM);
    }
    if grace.is_zero() || tokio::time::timeout(grace, child.wait()).await.is_err() {
        signal_group(pid, libc::SIGKILL);
        let _ = child.wait().await;
    }
}

/// Waits (blocking, for at most two seconds) for a killed child so its files can be deleted.
pub(super) fn reap_briefly(child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub(super) fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => format!("exited ({status})"),
    }
}

/// `n` free ports, all different: each stays bound until all are found (the kernel may hand
/// out a just-released port again).
pub(super) fn free_loopback_ports(n: usize) -> Result<Vec<u16>, TargetError> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TargetError(format!("cannot find free ports on 127.0.0.1: {e}")))?;
    listeners
        .iter()
        .map(|listener| {
            listener
                .local_addr()
                .map(|addr| addr.port())
                .map_err(|e| TargetError(format!("cannot find a free port on 127.0.0.1: {e}")))
        })
        .collect()
}

pub(super) fn free_loopback_port() -> Result<u16, TargetError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| TargetError(format!("cannot find a free port on 127.0.0.1: {e}")))
}
