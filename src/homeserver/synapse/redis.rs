//! A private Redis for one run, which Synapse's processes replicate through: on a free loopback
//! port, configured on its command line (no configuration file), nothing persisted, its files in
//! the run's directory.

use super::service::{accepts, find_program, missing_program, Service};
use super::*;
use std::net::{SocketAddr, TcpStream};

const PROGRAM: &str = "redis-server";
const PACKAGE: &str = "redis-server";
const START_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Redis {
    port: u16,
    log: PathBuf,
    service: Service,
}

impl Redis {
    /// Starts `redis-server` with its working directory and log in `dir`; returns once it
    /// answers PING. A clear error when it is not installed.
    pub async fn start(dir: &Path) -> Result<Redis, TargetError> {
        let program = find_program(PROGRAM)
            .ok_or_else(|| missing_program(PROGRAM, PACKAGE, "Synapse with workers"))?;
        let port = free_loopback_port()?;
        let log = dir.join("redis.log");
        let mut command = Command::new(program);
        command.current_dir(dir).args(arguments(port, dir, &log));
        let mut service = Service::spawn("Redis", command, &dir.join("redis.output.log"))
            .await?
            .with_log(log.clone());
        service
            .wait_until("answer PING", START_TIMEOUT, || async move {
                answers_ping(port)
            })
            .await?;
        Ok(Redis { port, log, service })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    pub fn pid(&self) -> Option<u32> {
        self.service.pid()
    }

    /// Kills it (it keeps nothing worth a clean shutdown). Dropping it does the same.
    pub async fn stop(&mut self) {
        self.service.stop().await;
    }
}

/// Redis's configuration as command-line options (each `--name value` is a line of redis.conf).
fn arguments(port: u16, dir: &Path, log: &Path) -> Vec<std::ffi::OsString> {
    let mut arguments: Vec<std::ffi::OsString> = Vec::new();
    let mut option = |name: &str, value: &std::ffi::OsStr| {
        arguments.push(format!("--{name}").into());
        arguments.push(value.to_os_string());
    };
    option("port", port.to_string().as_ref());
    option("bind", "127.0.0.1".as_ref());
    // Nothing persisted: an empty `save` turns snapshots off, and no append-only file.
    option("save", "".as_ref());
    option("appendonly", "no".as_ref());
    option("dir", dir.as_os_str());
    option("logfile", log.as_os_str());
    option("daemonize", "no".as_ref());
    option("pidfile", dir.join("redis.pid").as_os_str());
    arguments
}

/// True when Redis on 127.0.0.1:`port` answers an inline PING with PONG.
pub fn answers_ping(port: u16) -> bool {
    use std::io::{Read, Write};
    if !accepts(port) {
        return false;
    }
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut answer = [0u8; 7];
    let mut read = 0;
    while read < answer.len() {
        match stream.read(&mut answer[read..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    answer.starts_with(b"+PONG")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Says that the test did not run, and why, where it cannot be missed.
    fn skipped(test: &str) -> bool {
        if find_program(PROGRAM).is_some() {
            return false;
        }
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: {PROGRAM} is not installed (apt install {PACKAGE})"
        );
        true
    }

    #[tokio::test]
    async fn a_private_redis_answers_ping_and_is_gone_after_stop() {
        if skipped("a_private_redis_answers_ping_and_is_gone_after_stop") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut redis = Redis::start(dir.path()).await.expect("redis starts");
        let port = redis.port();
        let pid = redis.pid().expect("running");
        assert!(answers_ping(port));
        redis.stop().await;
        assert!(!accepts(port), "nothing listens on {port} after stop");
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} is gone"
        );
        // Nothing persisted beside its log and pid file.
        let left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with("redis.") || name.ends_with(".rdb"))
            .collect();
        assert!(left.is_empty(), "unexpected files: {left:?}");
    }

    #[tokio::test]
    async fn dropping_redis_kills_it() {
        if skipped("dropping_redis_kills_it") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let redis = Redis::start(dir.path()).await.expect("redis starts");
        let (port, pid) = (redis.port(), redis.pid().unwrap());
        drop(redis);
        assert!(!accepts(port));
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn redis_is_configured_without_persistence() {
        let dir = Path::new("/run/x");
        let args: Vec<String> = arguments(6400, dir, &dir.join("redis.log"))
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let value = |name: &str| {
            let at = args.iter().position(|a| a == &format!("--{name}")).unwrap();
            args[at + 1].clone()
        };
        assert_eq!(value("port"), "6400");
        assert_eq!(value("bind"), "127.0.0.1");
        assert_eq!(value("save"), "");
        assert_eq!(value("appendonly"), "no");
        assert_eq!(value("dir"), "/run/x");
        assert_eq!(value("daemonize"), "no");
    }
}
