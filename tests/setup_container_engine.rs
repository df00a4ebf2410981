//! scripts/setup-container-engine returns as soon as the engine it starts answers, even when
//! called as `$(scripts/setup-container-engine)`, which waits until nothing holds the script's
//! stdout any more. A service start that left a shell holding it hung .ci/run for good.
//!
//! A stand-in `podman` (and `runc`) on PATH plays the engine: `podman system service` answers
//! any request on its unix socket, `podman info` succeeds. The real engine is not touched.

use std::path::{Path, PathBuf};
use std::process::Command;

const FAKE_PODMAN: &str = r#"#!/usr/bin/env python3
import http.server, os, socketserver, sys

if sys.argv[1:3] == ["system", "service"]:
    path = sys.argv[-1].removeprefix("unix://")
    with open(os.environ["FAKE_PODMAN_PID"], "w") as f:
        f.write(str(os.getpid()))

    class Ping(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args):
            pass

    with socketserver.UnixStreamServer(path, Ping) as server:
        server.serve_forever()
sys.exit(0)  # `podman info` and anything else
"#;

/// Stops the stand-in service whatever the test's outcome.
struct StopService(PathBuf);

impl Drop for StopService {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn returns_once_the_service_it_started_answers() {
    if Path::new("/var/run/docker.sock").exists() {
        eprintln!("a Docker socket exists here: the script would use it and start nothing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    write_executable(&bin.join("podman"), FAKE_PODMAN);
    write_executable(&bin.join("runc"), "#!/bin/sh\nexit 0\n");
    let socket = dir.path().join("podman.sock");
    let pid_file = dir.path().join("service.pid");
    let _stop = StopService(pid_file.clone());
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());

    // `timeout`: a hang fails this test instead of hanging it.
    let output = Command::new("timeout")
        .args([
            "60",
            "bash",
            "-c",
            r#"out="$(scripts/setup-container-engine)"; echo "$out""#,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PATH", path)
        .env_remove("DOCKER_HOST")
        .env("DEC_PODMAN_SOCKET", &socket)
        .env("CONTAINERS_CONF", dir.path().join("containers.conf"))
        .env("FAKE_PODMAN_PID", &pid_file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(
        output.status.code(),
        Some(124),
        "scripts/setup-container-engine started the service but did not return: something it \
         started still holds its stdout\n{stderr}"
    );
    assert!(output.status.success(), "the script failed:\n{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("export DOCKER_HOST=unix://{}", socket.display()),
        "{stderr}"
    );
    assert!(
        stderr.contains("starting podman's API service"),
        "the script was meant to start the stand-in service:\n{stderr}"
    );
}
