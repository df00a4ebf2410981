//! The reverse proxy in front of a Synapse with workers: a private nginx for the run, rendered
//! from the worker routing (`routing.rs`). It runs unprivileged as one process (no master, so
//! the parent-death signal reaches all of it), in the foreground, with its pid, logs and
//! temporary files in the run's directory, on a free loopback port.

use super::routing::{Affinity, Methods, Route, Routing};
use super::service::{accepts, find_program, missing_program, Service};
use super::workers::{worker_name, MAIN_INSTANCE};
use super::*;
use std::fmt::Write as _;

use crate::homeserver::SERVED_BY_HEADER;

const PROGRAM: &str = "nginx";
const PACKAGE: &str = "nginx";
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A proxy misconfigured on purpose, as real deployments have been: for the deployment cases'
/// self-tests (the hidden `--synapse-deployment-fault`), since the fake homeserver cannot play
/// workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProxyFault {
    /// `/restart` routed to the main process only (as before Synapse 1.144), so heartbeats
    /// need main.
    RestartOnMainOnly,
    /// Every request that schedules a delayed event is also mirrored to the main process: two
    /// delayed events, two sends.
    MirrorScheduling,
    /// A caching proxy: GET answers of the delayed-events API are kept for a minute, so a
    /// lookup or listing after a change may show what was before it.
    CachedLookups,
}

/// What the proxy routes where.
pub struct ProxyPlan<'a> {
    pub routing: &'a Routing,
    /// The main process's client listener.
    pub main_port: u16,
    /// The workers' client listeners; at least one.
    pub worker_ports: &'a [u16],
    /// Where the proxy listens (127.0.0.1).
    pub listen_port: u16,
    /// The run's directory: nginx's prefix, pid, logs and temporary files.
    pub dir: &'a Path,
    /// Misconfigurations on purpose (self-tests only); `RestartOnMainOnly` is the routing's.
    pub faults: &'a [ProxyFault],
}

/// nginx's files in the run's directory.
pub struct NginxFiles {
    pub config: PathBuf,
    pub error_log: PathBuf,
    pub access_log: PathBuf,
    pub pid: PathBuf,
    pub temp: PathBuf,
}

impl NginxFiles {
    pub fn in_dir(dir: &Path) -> NginxFiles {
        NginxFiles {
            config: dir.join("nginx.conf"),
            error_log: dir.join("nginx.error.log"),
            access_log: dir.join("nginx.access.log"),
            pid: dir.join("nginx.pid"),
            temp: dir.join("nginx-temp"),
        }
    }
}

const MAIN: &str = "synapse_main";

/// The upstream of the workers for `affinity`, and the variable that, for a GET-only route,
/// names it for GET and HEAD and main for other methods.
fn workers_upstream(affinity: Affinity) -> (&'static str, &'static str) {
    match affinity {
        Affinity::Any => ("synapse_workers", "$dec_get_workers"),
        Affinity::User => ("synapse_workers_by_user", "$dec_get_workers_by_user"),
        Affinity::Room => ("synapse_workers_by_room", "$dec_get_workers_by_room"),
    }
}

const AFFINITIES: [Affinity; 3] = [Affinity::Any, Affinity::User, Affinity::Room];

/// The nginx configuration for `plan`.
pub fn render(plan: &ProxyPlan) -> Result<String, TargetError> {
    if plan.worker_ports.is_empty() {
        return Err(TargetError(
            "the reverse proxy needs at least one worker to route to".into(),
        ));
    }
    let files = NginxFiles::in_dir(plan.dir);
    let temp = |name: &str| quoted(&files.temp.join(name));
    let mut out = String::new();
    let w = &mut out;
    // Writing to a String cannot fail.
    let _ = writeln!(
        w,
        "# Written by delayed-events-conformance for one run: a reverse proxy in front of \
         Synapse's main process\n# and {} generic worker(s), routed as {}.",
        plan.worker_ports.len(),
        plan.routing.source
    );
    let _ = writeln!(
        w,
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {};\nerror_log {} warn;\n\
         events {{ worker_connections 1024; }}\n",
        quoted(&files.pid),
        quoted(&files.error_log)
    );
    let _ = writeln!(w, "http {{");
    // Which process answered each request: the evidence for a routing question.
    let _ = writeln!(
        w,
        "    log_format routed '$request_method $uri $status $upstream_addr $request_time';\n    \
         access_log {} routed;",
        quoted(&files.access_log)
    );
    for (directive, dir) in [
        ("client_body_temp_path", "client_body"),
        ("proxy_temp_path", "proxy"),
        ("fastcgi_temp_path", "fastcgi"),
        ("uwsgi_temp_path", "uwsgi"),
        ("scgi_temp_path", "scgi"),
    ] {
        let _ = writeln!(w, "    {directive} {};", temp(dir));
    }
    let _ = writeln!(
        w,
        "    client_max_body_size 50m;\n    proxy_http_version 1.1;\n    \
         proxy_set_header Connection \"\";\n    proxy_set_header Host $host;\n    \
         proxy_set_header X-Forwarded-For $remote_addr;\n    \
         proxy_set_header X-Forwarded-Proto $scheme;\n    \
         # Long-polling /sync waits up to its timeout before answering.\n    \
         proxy_read_timeout 600s;\n    proxy_send_timeout 600s;\n"
    );
    // The user part of a Synapse access token (`syt_<user>_<random>_<check>`), from the header
    // or the query parameter, keys the sticky routes by user (docs/workers.md, Load balancing).
    let _ = writeln!(
        w,
        "    map $arg_access_token $dec_user_from_query {{\n        \
         default $arg_access_token;\n        \"~^syt_(?<query_user>[^_]*)_\" $query_user;\n    }}\n    \
         map $http_authorization $dec_user {{\n        default $http_authorization;\n        \
         \"~^Bearer syt_(?<header_user>[^_]*)_\" $header_user;\n        \
         \"\" $dec_user_from_query;\n    }}\n    \
         map $uri $dec_room {{\n        default $uri;\n        \
         \"~^/_matrix/client/[^/]+/rooms/(?<path_room>[^/]+)/\" $path_room;\n    }}\n"
    );
    let _ = writeln!(
        w,
        "    upstream {MAIN} {{\n        server 127.0.0.1:{};\n        keepalive 16;\n    }}",
        plan.main_port
    );
    for affinity in AFFINITIES {
        let (upstream, choice) = workers_upstream(affinity);
        let _ = writeln!(w, "    upstream {upstream} {{");
        match affinity {
            Affinity::Any => {}
            Affinity::User => {
                let _ = writeln!(w, "        hash $dec_user consistent;");
            }
            Affinity::Room => {
                let _ = writeln!(w, "        hash $dec_room consistent;");
            }
        }
        // max_fails=0: a worker that failed while it restarted takes requests again as soon as
        // it is back (by default nginx shuns it for 10 s, and 502s once every worker is shunned).
        for port in plan.worker_ports {
            let _ = writeln!(w, "        server 127.0.0.1:{port} max_fails=0;");
        }
        let _ = writeln!(w, "        keepalive 16;\n    }}");
        let _ = writeln!(
            w,
            "    map $request_method {} {{\n        GET {upstream};\n        HEAD {upstream};\n        \
             default {MAIN};\n    }}",
            &choice
        );
    }
    // Which process answered, by name, in a response header.
    let _ = writeln!(w, "    map $upstream_addr $dec_served_by {{");
    let _ = writeln!(w, "        default $upstream_addr;");
    let _ = writeln!(w, "        127.0.0.1:{} {MAIN_INSTANCE};", plan.main_port);
    for (index, port) in plan.worker_ports.iter().enumerate() {
        let _ = writeln!(w, "        127.0.0.1:{port} {};", worker_name(index + 1));
    }
    let _ = writeln!(w, "    }}");
    if plan.faults.contains(&ProxyFault::CachedLookups) {
        let _ = writeln!(
            w,
            "    proxy_cache_path {} keys_zone=dec_lookups:1m;\n    \
             map $uri $dec_not_delayed_events {{\n        \
             \"~/org\\.matrix\\.msc4140/delayed_events|/v1/delayed_events\" 0;\n        default 1;\n    }}",
            temp("cache")
        );
    }
    if plan.faults.contains(&ProxyFault::MirrorScheduling) {
        let _ = writeln!(
            w,
            "    map \"$request_method $request_uri\" $dec_schedules {{\n        \
             \"~^PUT /_matrix/client/[^/]+/rooms/[^/]+/(send|state)/.*[?&]org\\.matrix\\.msc4140\\.delay=\" 1;\n        \
             default 0;\n    }}"
        );
    }
    let _ = writeln!(
        w,
        "\n    server {{\n        listen 127.0.0.1:{};\n        server_name localhost;\n        \
         add_header {SERVED_BY_HEADER} $dec_served_by always;",
        plan.listen_port
    );
    if plan.faults.contains(&ProxyFault::CachedLookups) {
        // Cached per user (the token) and URI, whatever the answer's own headers say.
        let _ = writeln!(
            w,
            "        proxy_cache dec_lookups;\n        proxy_cache_valid 200 404 1m;\n        \
             proxy_ignore_headers Cache-Control Expires Set-Cookie;\n        \
             proxy_cache_key \"$http_authorization $request_uri\";\n        \
             proxy_no_cache $dec_not_delayed_events;\n        \
             proxy_cache_bypass $dec_not_delayed_events;"
        );
    }
    if plan.faults.contains(&ProxyFault::MirrorScheduling) {
        let _ = writeln!(
            w,
            "        mirror /dec-mirror;\n        mirror_request_body on;\n        \
             location = /dec-mirror {{\n            internal;\n            \
             if ($dec_schedules = 0) {{ return 204; }}\n            \
             proxy_pass http://{MAIN}$request_uri;\n        }}"
        );
    }
    // nginx tries regular-expression locations in the order written, as `Routing::route` does.
    for route in &plan.routing.routes {
        let _ = writeln!(
            w,
            "        location ~ {} {{ proxy_pass http://{}; }}",
            nginx_string(route.pattern),
            destination(route)
        );
    }
    let _ = writeln!(
        w,
        "        location / {{ proxy_pass http://{MAIN}; }}\n    }}\n}}"
    );
    Ok(out)
}

fn destination(route: &Route) -> &'static str {
    let (upstream, get_choice) = workers_upstream(route.affinity);
    match route.methods {
        Methods::Any => upstream,
        Methods::Get => get_choice,
    }
}

/// A path in double quotes, for nginx.
fn quoted(path: &Path) -> String {
    nginx_string(&path.to_string_lossy())
}

/// `text` as an nginx double-quoted string.
fn nginx_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A running private nginx.
pub struct Nginx {
    port: u16,
    files: NginxFiles,
    service: Service,
}

impl Nginx {
    /// Writes the configuration for `routing` into `dir` and starts nginx on a free loopback
    /// port; returns once the port accepts connections. A clear error when nginx is absent.
    pub async fn start(
        dir: &Path,
        routing: &Routing,
        main_port: u16,
        worker_ports: &[u16],
        faults: &[ProxyFault],
    ) -> Result<Nginx, TargetError> {
        let program = find_program(PROGRAM)
            .ok_or_else(|| missing_program(PROGRAM, PACKAGE, "Synapse with workers"))?;
        let port = free_loopback_port()?;
        let files = write_config(&ProxyPlan {
            routing,
            main_port,
            worker_ports,
            listen_port: port,
            dir,
            faults,
        })?;
        let mut command = Command::new(program);
        command.current_dir(dir).args(arguments(dir, &files));
        let mut service = Service::spawn("nginx", command, &dir.join("nginx.output.log"))
            .await?
            .with_log(files.error_log.clone());
        service
            .wait_until(
                &format!("accept connections on port {port}"),
                START_TIMEOUT,
                || async move { accepts(port) },
            )
            .await?;
        Ok(Nginx {
            port,
            files,
            service,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn files(&self) -> &NginxFiles {
        &self.files
    }

    pub fn pid(&self) -> Option<u32> {
        self.service.pid()
    }

    /// Kills it; dropping it does the same.
    pub async fn stop(&mut self) {
        self.service.stop().await;
    }
}

/// Renders `plan` into its run directory, with the temporary directories nginx writes to.
pub fn write_config(plan: &ProxyPlan) -> Result<NginxFiles, TargetError> {
    let files = NginxFiles::in_dir(plan.dir);
    let config = render(plan)?;
    let cannot = |e: io::Error| {
        TargetError(format!(
            "cannot write nginx's configuration in {}: {e}",
            plan.dir.display()
        ))
    };
    fs::create_dir_all(&files.temp).map_err(cannot)?;
    fs::write(&files.config, config).map_err(cannot)?;
    Ok(files)
}

/// The prefix is the run's directory; `-e` moves the error log nginx opens before reading its
/// configuration away from the system's log directory.
fn arguments(dir: &Path, files: &NginxFiles) -> Vec<std::ffi::OsString> {
    let mut prefix = dir.as_os_str().to_os_string();
    prefix.push("/");
    vec![
        "-e".into(),
        files.error_log.clone().into(),
        "-p".into(),
        prefix,
        "-c".into(),
        files.config.clone().into(),
    ]
}

/// `nginx -t` on the configuration in `files`: `Ok` when nginx accepts it, else its words.
/// `None` when nginx is not installed.
pub fn test_config(dir: &Path, files: &NginxFiles) -> Option<Result<(), String>> {
    let program = find_program(PROGRAM)?;
    let output = std::process::Command::new(program)
        .arg("-t")
        .args(arguments(dir, files))
        .current_dir(dir)
        .stdin(Stdio::null())
        .output();
    Some(match output {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
        Err(e) => Err(format!("cannot run nginx -t: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn skipped(test: &str) -> bool {
        if find_program(PROGRAM).is_some() {
            return false;
        }
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: {PROGRAM} is not installed (apt install {PACKAGE} or nginx-light)"
        );
        true
    }

    fn plan<'a>(routing: &'a Routing, dir: &'a Path, workers: &'a [u16]) -> ProxyPlan<'a> {
        ProxyPlan {
            routing,
            main_port: 8008,
            worker_ports: workers,
            listen_port: 8448,
            dir,
            faults: &[],
        }
    }

    #[test]
    fn the_configuration_routes_each_pattern_in_order_and_the_rest_to_main() {
        let routing = Routing::for_synapse("1.163.2");
        let dir = Path::new("/run/dec");
        let config = render(&plan(&routing, dir, &[9001, 9002])).unwrap();
        assert!(config.contains("daemon off;"));
        assert!(config.contains("master_process off;"));
        assert!(config.contains("pid \"/run/dec/nginx.pid\";"));
        assert!(config.contains("error_log \"/run/dec/nginx.error.log\" warn;"));
        assert!(config.contains("listen 127.0.0.1:8448;"));
        assert!(config.contains("server 127.0.0.1:8008;"));
        assert_eq!(
            config.matches("server 127.0.0.1:9002 max_fails=0;").count(),
            3
        );
        assert!(config.contains("hash $dec_user consistent;"));
        assert!(config.contains("proxy_temp_path \"/run/dec/nginx-temp/proxy\";"));
        let locations: Vec<&str> = config
            .lines()
            .filter(|line| line.trim_start().starts_with("location ~ "))
            .collect();
        assert_eq!(locations.len(), routing.routes.len());
        for (line, route) in locations.iter().zip(&routing.routes) {
            assert!(line.contains(&format!("\"{}\"", route.pattern)), "{line}");
        }
        let sync = locations
            .iter()
            .find(|line| line.contains("/sync$"))
            .unwrap();
        assert!(sync.contains("http://synapse_workers_by_user;"), "{sync}");
        let lookup = locations
            .iter()
            .find(|line| line.contains("delayed_events/[^/]+$"))
            .unwrap();
        assert!(lookup.contains("http://$dec_get_workers;"), "{lookup}");
        assert!(config.contains("location / { proxy_pass http://synapse_main; }"));
    }

    #[test]
    fn no_workers_is_refused() {
        let routing = Routing::for_synapse("1.163.2");
        assert!(render(&plan(&routing, Path::new("/x"), &[])).is_err());
    }

    #[test]
    fn nginx_accepts_the_rendered_configuration() {
        if skipped("nginx_accepts_the_rendered_configuration") {
            return;
        }
        for version in ["1.143.0", "1.157.1", "1.163.2"] {
            let dir = tempfile::tempdir().unwrap();
            let routing = Routing::for_synapse(version);
            let files = write_config(&plan(&routing, dir.path(), &[9001, 9002])).unwrap();
            let verdict = test_config(dir.path(), &files).expect("nginx is installed");
            assert_eq!(verdict, Ok(()), "nginx -t for {version}");
        }
        // Each misconfiguration of the self-tests, and all of them at once.
        use clap::ValueEnum;
        let all = ProxyFault::value_variants();
        let routing = Routing::for_synapse("1.163.2");
        for faults in all.iter().map(std::slice::from_ref).chain([all]) {
            let dir = tempfile::tempdir().unwrap();
            let files = write_config(&ProxyPlan {
                faults,
                ..plan(&routing, dir.path(), &[9001, 9002])
            })
            .unwrap();
            let verdict = test_config(dir.path(), &files).expect("nginx is installed");
            assert_eq!(verdict, Ok(()), "nginx -t with {faults:?}");
        }
    }

    /// A stand-in backend: answers every request with `name` as its body.
    async fn backend(name: &'static str) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 4096];
                    loop {
                        let Ok(n) = stream.read(&mut buffer).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buffer[..n]);
                        // The tests send no bodies: one request ends at its blank line.
                        while let Some(end) = find(&request, b"\r\n\r\n") {
                            request.drain(..end + 4);
                            let answer = format!(
                                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{name}",
                                name.len()
                            );
                            if stream.write_all(answer.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        port
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    #[tokio::test]
    async fn nginx_routes_requests_to_main_or_the_workers_and_dies_on_drop() {
        if skipped("nginx_routes_requests_to_main_or_the_workers_and_dies_on_drop") {
            return;
        }
        let main = backend("main").await;
        let workers = [backend("worker1").await, backend("worker2").await];
        let dir = tempfile::tempdir().unwrap();
        let routing = Routing::for_synapse("1.163.2");
        let nginx = Nginx::start(dir.path(), &routing, main, &workers, &[])
            .await
            .expect("nginx starts");
        let http = crate::client::probe_client();
        // The backend's name, which the proxy's header names too.
        let answered = |method: reqwest::Method, path: &str| {
            let request = http.request(method, format!("{}{path}", nginx.base_url()));
            async move {
                let response = request.send().await.unwrap();
                let served_by = response.headers()[SERVED_BY_HEADER]
                    .to_str()
                    .unwrap()
                    .to_owned();
                let name = response.text().await.unwrap();
                assert_eq!(served_by, name, "{SERVED_BY_HEADER}");
                name
            }
        };
        let delayed = "/_matrix/client/unstable/org.matrix.msc4140/delayed_events";
        let restart = format!("{delayed}/syd_x/restart");
        let lookup = format!("{delayed}/syd_x");
        assert!(answered(reqwest::Method::POST, &restart)
            .await
            .starts_with("worker"));
        assert!(answered(reqwest::Method::GET, &lookup)
            .await
            .starts_with("worker"));
        assert_eq!(answered(reqwest::Method::POST, &lookup).await, "main");
        assert_eq!(
            answered(reqwest::Method::POST, &format!("{delayed}/syd_x/cancel")).await,
            "main"
        );
        assert_eq!(
            answered(reqwest::Method::POST, "/_synapse/admin/v1/register").await,
            "main"
        );
        // Sync sticks to the user: the same token reaches the same worker every time.
        let sync = |token: &'static str| {
            let request = http
                .get(format!("{}/_matrix/client/v3/sync", nginx.base_url()))
                .bearer_auth(token);
            async move { request.send().await.unwrap().text().await.unwrap() }
        };
        let first = sync("syt_YWxpY2U_random1_check").await;
        assert!(first.starts_with("worker"), "{first}");
        for other in ["syt_YWxpY2U_random2_check", "syt_YWxpY2U_random3_check"] {
            assert_eq!(sync(other).await, first, "alice's syncs stay on one worker");
        }
        let (port, pid) = (nginx.port(), nginx.pid().unwrap());
        let access_log = nginx.files().access_log.clone();
        drop(nginx);
        assert!(!accepts(port), "nothing listens on {port} after drop");
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} is gone"
        );
        let log = fs::read_to_string(access_log).unwrap();
        assert!(
            log.contains(&format!("POST {restart} 200 127.0.0.1:")),
            "{log}"
        );
    }

    #[tokio::test]
    async fn a_configuration_nginx_refuses_is_a_start_failure_with_its_words() {
        if skipped("a_configuration_nginx_refuses_is_a_start_failure_with_its_words") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut routing = Routing::for_synapse("1.163.2");
        routing.routes[0].pattern = "^/(unclosed";
        let error = Nginx::start(dir.path(), &routing, 1, &[2], &[])
            .await
            .err()
            .expect("nginx refuses");
        assert!(error.0.contains("nginx"), "{}", error.0);
        assert!(
            error.0.contains("pcre") || error.0.contains("compile"),
            "{}",
            error.0
        );
    }
}
