//! Which requests Synapse's generic workers may serve, as data: the client-facing endpoint
//! patterns of the `synapse.app.generic_worker` section of Synapse's docs/workers.md, for the
//! release that runs. Everything else goes to the main process. The reverse proxy (`nginx.rs`) is
//! rendered from this table, and `Routing::route` answers the same question in Rust, with the
//! same first-match order as nginx's regular-expression locations.
//!
//! The table is docs/workers.md at v1.163.2 (the pinned release), without the federation, SSO
//! and delegated-authentication (`/_synapse/mas/`) patterns: the managed Synapse serves none of
//! them. Only the MSC4140 patterns, which this suite is about, follow older releases (see
//! `DelayedEventRoutes`); releases before 1.144 also list slightly fewer admin and room-summary
//! patterns, which no case uses.

use regex::Regex;

/// The HTTP methods a route sends to the workers; other methods on the same path go to main.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Methods {
    Any,
    /// GET (and HEAD): the doc's list of endpoints workers may serve "for GET requests", and the
    /// single delayed-event lookup, whose path is also the body form of management (POST).
    Get,
}

/// How the proxy spreads a route's requests over the workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Affinity {
    /// Any worker (round robin).
    Any,
    /// Every request of one user to the same worker (by the access token's user part): the
    /// docs' advice for `/sync`, `/events` and `/initialSync`.
    User,
    /// Every request for one room to the same worker (by the room id in the path): required for
    /// pagination (`/messages`).
    Room,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// A regular expression on the path, as docs/workers.md writes it (PCRE and Rust's `regex`
    /// read it alike).
    pub pattern: &'static str,
    pub methods: Methods,
    pub affinity: Affinity,
}

/// Where a request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    Main,
    Workers(Affinity),
}

#[derive(Clone, Debug)]
pub struct Routing {
    /// Where the table comes from, e.g. "Synapse v1.163.2 docs/workers.md".
    pub source: String,
    /// In order: the first route whose pattern matches a path decides.
    pub routes: Vec<Route>,
}

impl Routing {
    /// The routing for Synapse `version` (as `1.163.2`, or a pre-release such as `1.164.0rc1`).
    pub fn for_synapse(version: &str) -> Routing {
        let delayed = DelayedEventRoutes::for_synapse(version);
        let mut routes = delayed.routes();
        routes.extend(
            ROUTES_1_163_2
                .iter()
                .map(|&(pattern, methods, affinity)| Route {
                    pattern,
                    methods,
                    affinity,
                }),
        );
        Routing {
            source: format!(
                "Synapse v1.163.2 docs/workers.md (MSC4140 routes: {})",
                delayed.source()
            ),
            routes,
        }
    }

    /// Where a request for `path` (without the query string) with `method` goes.
    pub fn route(&self, method: &str, path: &str) -> Destination {
        let Some(route) = self
            .routes
            .iter()
            .find(|route| compiled(route.pattern).is_match(path))
        else {
            return Destination::Main;
        };
        let method_served = match route.methods {
            Methods::Any => true,
            Methods::Get => matches!(method, "GET" | "HEAD"),
        };
        if method_served {
            Destination::Workers(route.affinity)
        } else {
            Destination::Main
        }
    }

    /// This routing without the routes whose pattern contains `fragment`: those requests go to
    /// main. For deliberately faulty topologies (self-tests), e.g. `/restart` on main only.
    pub fn without(mut self, fragment: &str) -> Routing {
        self.routes
            .retain(|route| !route.pattern.contains(fragment));
        self.source = format!("{}, without routes containing {fragment:?}", self.source);
        self
    }
}

fn compiled(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("route pattern {pattern:?}: {e}"))
}

/// Which MSC4140 endpoints workers serve, release by release. Synapse's `delayed_events.py`
/// registers the listing on workers from the start, the split `/restart` path from 1.144.0
/// (PR #19207), the single lookup from 1.163.0 (PR #20262; the doc listed it one release early,
/// PR #20210); the body form (`POST .../delayed_events/{id}`), `/cancel` and `/send` only on
/// main. Synapse serves no stable (`/_matrix/client/v1/delayed_events`) path in these releases:
/// such requests go to main, which answers that it does not know them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DelayedEventRoutes {
    /// Before 1.144 (docs/workers.md at v1.143.0): the listing, under "GET requests".
    ListingOnly,
    /// 1.144 to 1.162 (docs/workers.md at v1.157.1: `delayed_events(/.*/restart)?$`): the
    /// listing and the split restart path.
    ListingAndRestart,
    /// From 1.163 (docs/workers.md at v1.163.2: `delayed_events(/[^/]+(/restart)?)?$`): the
    /// listing, the restart path, and the lookup. The doc's one pattern also matches the body
    /// form of management, which a worker does not serve (only GET is registered on that path
    /// there): so the lookup's path goes to workers for GET only.
    ListingRestartAndLookup,
}

impl DelayedEventRoutes {
    pub fn for_synapse(version: &str) -> DelayedEventRoutes {
        match release(version) {
            Some((1, minor)) if minor < 144 => DelayedEventRoutes::ListingOnly,
            Some((1, minor)) if minor < 163 => DelayedEventRoutes::ListingAndRestart,
            // Newer or unparsable (a checkout's dev version): the pinned release's table.
            _ => DelayedEventRoutes::ListingRestartAndLookup,
        }
    }

    fn source(self) -> &'static str {
        match self {
            DelayedEventRoutes::ListingOnly => "v1.143.0",
            DelayedEventRoutes::ListingAndRestart => "v1.157.1",
            DelayedEventRoutes::ListingRestartAndLookup => "v1.163.2",
        }
    }

    fn routes(self) -> Vec<Route> {
        let route = |pattern, methods| Route {
            pattern,
            methods,
            affinity: Affinity::Any,
        };
        match self {
            DelayedEventRoutes::ListingOnly => vec![route(DELAYED_EVENTS_PREFIX, Methods::Get)],
            DelayedEventRoutes::ListingAndRestart => vec![
                route(DELAYED_EVENTS_LISTING, Methods::Any),
                route(DELAYED_EVENTS_ANY_RESTART, Methods::Any),
            ],
            DelayedEventRoutes::ListingRestartAndLookup => vec![
                route(DELAYED_EVENTS_LISTING, Methods::Any),
                route(DELAYED_EVENTS_RESTART, Methods::Any),
                route(DELAYED_EVENTS_LOOKUP, Methods::Get),
            ],
        }
    }
}

// The doc's MSC4140 patterns, split where their parts go to different methods.
const DELAYED_EVENTS_PREFIX: &str = "^/_matrix/client/unstable/org.matrix.msc4140/delayed_events";
const DELAYED_EVENTS_LISTING: &str = "^/_matrix/client/unstable/org.matrix.msc4140/delayed_events$";
const DELAYED_EVENTS_ANY_RESTART: &str =
    "^/_matrix/client/unstable/org.matrix.msc4140/delayed_events/.*/restart$";
const DELAYED_EVENTS_RESTART: &str =
    "^/_matrix/client/unstable/org.matrix.msc4140/delayed_events/[^/]+/restart$";
const DELAYED_EVENTS_LOOKUP: &str =
    "^/_matrix/client/unstable/org.matrix.msc4140/delayed_events/[^/]+$";

/// `(major, minor)` of a version such as `1.163.2`, `1.164.0rc1` or `1.158.0.dev0`.
fn release(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.trim_start_matches('v').split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

use Affinity as A;
use Methods as M;

/// docs/workers.md at v1.163.2, `synapse.app.generic_worker`: the client-facing patterns, in the
/// doc's order and groups.
#[rustfmt::skip]
const ROUTES_1_163_2: &[(&str, Methods, Affinity)] = &[
    // Sync requests: one user's to one worker.
    ("^/_matrix/client/(r0|v3)/sync$", M::Any, A::User),
    ("^/_matrix/client/(api/v1|r0|v3)/events$", M::Any, A::User),
    ("^/_matrix/client/(api/v1|r0|v3)/initialSync$", M::Any, A::User),
    ("^/_matrix/client/(api/v1|r0|v3)/rooms/[^/]+/initialSync$", M::Any, A::User),
    // Client API requests
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/createRoom$", M::Any, A::Any),
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/publicRooms$", M::Any, A::Any),
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/joined_members$", M::Any, A::Any),
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/context/.*$", M::Any, A::Any),
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/members$", M::Any, A::Any),
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/state$", M::Any, A::Any),
    ("^/_matrix/client/v1/rooms/.*/hierarchy$", M::Any, A::Any),
    ("^/_matrix/client/(v1|unstable)/rooms/.*/relations/", M::Any, A::Any),
    ("^/_matrix/client/v1/rooms/.*/threads$", M::Any, A::Any),
    ("^/_matrix/client/unstable/im.nheko.summary/summary/.*$", M::Any, A::Any),
    ("^/_matrix/client/v1/room_summary/.*$", M::Any, A::Any),
    ("^/_matrix/client/(r0|v3|unstable)/account/3pid$", M::Any, A::Any),
    ("^/_matrix/client/(r0|v3|unstable)/account/whoami$", M::Any, A::Any),
    ("^/_matrix/client/(r0|v3|unstable)/account/deactivate$", M::Any, A::Any),
    ("^/_matrix/client/(r0|v3)/delete_devices$", M::Any, A::Any),
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/devices(/|$)", M::Any, A::Any),
    ("^/_matrix/client/versions$", M::Any, A::Any),
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/voip/turnServer$", M::Any, A::Any),
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/event/", M::Any, A::Any),
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/joined_rooms$", M::Any, A::Any),
    ("^/_matrix/client/v1/rooms/.*/timestamp_to_event$", M::Any, A::Any),
    ("^/_matrix/client/(api/v1|r0|v3|unstable/.*)/rooms/.*/aliases", M::Any, A::Any),
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/search$", M::Any, A::Any),
    ("^/_matrix/client/(r0|v3|unstable)/user/.*/filter(/|$)", M::Any, A::Any),
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/directory/room/.*$", M::Any, A::Any),
    ("^/_matrix/client/(r0|v3|unstable)/capabilities$", M::Any, A::Any),
    ("^/_matrix/client/(r0|v3|unstable)/notifications$", M::Any, A::Any),
    // Admin API requests
    ("^/_synapse/admin/v1/rooms/[^/]+$", M::Any, A::Any),
    // Encryption requests
    ("^/_matrix/client/(r0|v3|unstable)/keys/query$", M::Any, A::Any),
    ("^/_matrix/client/(r0|v3|unstable)/keys/changes$", M::Any, A::Any),
    ("^/_matrix/client/(r0|v3|unstable)/keys/claim$", M::Any, A::Any),
    ("^/_matrix/client/(r0|v3|unstable)/room_keys/", M::Any, A::Any),
    ("^/_matrix/client/(r0|v3|unstable)/keys/upload", M::Any, A::Any),
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/keys/device_signing/upload$", M::Any, A::Any),
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/keys/signatures/upload$", M::Any, A::Any),
    // Registration/login requests
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/login$", M::Any, A::Any),
    ("^/_matrix/client/(r0|v3|unstable)/register$", M::Any, A::Any),
    ("^/_matrix/client/(r0|v3|unstable)/register/available$", M::Any, A::Any),
    ("^/_matrix/client/v1/register/m.login.registration_token/validity$", M::Any, A::Any),
    ("^/_matrix/client/(r0|v3|unstable)/password_policy$", M::Any, A::Any),
    // Event sending requests (scheduling delayed events with `?org.matrix.msc4140.delay=` too)
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/redact", M::Any, A::Any),
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/send", M::Any, A::Any),
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/state/", M::Any, A::Any),
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/(join|invite|leave|ban|unban|kick)$", M::Any, A::Any),
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/join/", M::Any, A::Any),
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/knock/", M::Any, A::Any),
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/profile/", M::Any, A::Any),
    // User directory search requests
    ("^/_matrix/client/(r0|v3|unstable)/user_directory/search$", M::Any, A::Any),
    // For GET requests only: push rules, account data, presence, an admin API.
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/pushrules/", M::Get, A::Any),
    ("^/_matrix/client/(r0|v3|unstable)/.*/tags", M::Get, A::Any),
    ("^/_matrix/client/(r0|v3|unstable)/.*/account_data", M::Get, A::Any),
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/presence/", M::Get, A::Any),
    ("^/_synapse/admin/v2/users/[^/]+$", M::Get, A::Any),
    // Pagination: all requests for one room to the same worker.
    ("^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/messages$", M::Any, A::Room),
];

#[cfg(test)]
mod tests {
    use super::*;
    use Destination::{Main, Workers};

    const UNSTABLE: &str = "/_matrix/client/unstable/org.matrix.msc4140/delayed_events";
    const STABLE: &str = "/_matrix/client/v1/delayed_events";

    /// (method, path, where it goes) on the pinned release.
    fn pinned_samples() -> Vec<(&'static str, String, Destination)> {
        let any = Workers(Affinity::Any);
        vec![
            // MSC4140, unstable prefix: listing, lookup and split restart on workers ...
            ("GET", UNSTABLE.to_string(), any),
            ("GET", format!("{UNSTABLE}/syd_abc"), any),
            ("POST", format!("{UNSTABLE}/syd_abc/restart"), any),
            // ... the body form and the other split actions on main.
            ("POST", format!("{UNSTABLE}/syd_abc"), Main),
            ("POST", format!("{UNSTABLE}/syd_abc/cancel"), Main),
            ("POST", format!("{UNSTABLE}/syd_abc/send"), Main),
            // Stable prefix: Synapse serves none of it; main answers.
            ("GET", STABLE.to_string(), Main),
            ("GET", format!("{STABLE}/syd_abc"), Main),
            ("POST", format!("{STABLE}/syd_abc"), Main),
            ("POST", format!("{STABLE}/syd_abc/restart"), Main),
            ("POST", format!("{STABLE}/syd_abc/cancel"), Main),
            // Scheduling (query parameter form; the path is an ordinary send) on workers.
            (
                "PUT",
                "/_matrix/client/v3/rooms/!r:localhost/send/m.room.message/t1".into(),
                any,
            ),
            (
                "PUT",
                "/_matrix/client/v3/rooms/!r:localhost/state/m.call.member/_@a:localhost".into(),
                any,
            ),
            // The 2026-07 scheduling endpoint: not in Synapse, so main.
            (
                "PUT",
                "/_matrix/client/v1/rooms/!r:localhost/delayed_event/m.room.message/t1".into(),
                Main,
            ),
            // Sync sticks to the user, pagination to the room.
            (
                "GET",
                "/_matrix/client/v3/sync".into(),
                Workers(Affinity::User),
            ),
            (
                "GET",
                "/_matrix/client/v3/rooms/!r:localhost/messages".into(),
                Workers(Affinity::Room),
            ),
            // Ordinary client API.
            ("GET", "/_matrix/client/versions".into(), any),
            ("POST", "/_matrix/client/v3/createRoom".into(), any),
            (
                "POST",
                "/_matrix/client/v3/rooms/!r:localhost/join".into(),
                any,
            ),
            (
                "GET",
                "/_matrix/client/v3/rooms/!r:localhost/state".into(),
                any,
            ),
            ("POST", "/_matrix/client/v3/register".into(), any),
            // GET-only routes: reads on workers, writes on main.
            (
                "GET",
                "/_matrix/client/v3/user/@a:localhost/account_data/m.x".into(),
                any,
            ),
            (
                "PUT",
                "/_matrix/client/v3/user/@a:localhost/account_data/m.x".into(),
                Main,
            ),
            // Not listed: main.
            ("POST", "/_synapse/admin/v1/register".into(), Main),
            (
                "GET",
                "/_matrix/client/v3/rooms/!r:localhost/typing/@a:localhost".into(),
                Main,
            ),
            ("GET", "/_matrix/federation/v1/version".into(), Main),
        ]
    }

    #[test]
    fn the_pinned_release_routes_as_its_worker_documentation_says() {
        let routing = Routing::for_synapse("1.163.2");
        assert!(routing.source.contains("v1.163.2"), "{}", routing.source);
        for (method, path, expected) in pinned_samples() {
            assert_eq!(routing.route(method, &path), expected, "{method} {path}");
        }
    }

    #[test]
    fn older_releases_route_only_what_their_workers_serve() {
        let restart = format!("{UNSTABLE}/syd_abc/restart");
        let lookup = format!("{UNSTABLE}/syd_abc");
        let any = Workers(Affinity::Any);
        let cases = [
            ("1.143.0", "GET", UNSTABLE.to_string(), any),
            ("1.143.0", "POST", restart.clone(), Main),
            ("1.143.0", "POST", lookup.clone(), Main),
            ("1.157.1", "GET", UNSTABLE.to_string(), any),
            ("1.157.1", "POST", restart.clone(), any),
            ("1.157.1", "GET", lookup.clone(), Main),
            ("1.157.1", "POST", lookup.clone(), Main),
            ("1.164.0rc1", "GET", lookup.clone(), any),
            ("1.158.0.dev0", "POST", restart.clone(), any),
        ];
        for (version, method, path, expected) in cases {
            let routing = Routing::for_synapse(version);
            assert_eq!(
                routing.route(method, &path),
                expected,
                "{version}: {method} {path}"
            );
        }
        assert!(Routing::for_synapse("1.143.0").source.contains("v1.143.0"));
    }

    #[test]
    fn a_faulty_routing_can_send_restart_to_main() {
        let routing = Routing::for_synapse("1.163.2").without("/restart");
        let restart = format!("{UNSTABLE}/syd_abc/restart");
        assert_eq!(routing.route("POST", &restart), Main);
        assert_eq!(routing.route("GET", UNSTABLE), Workers(Affinity::Any));
    }

    #[test]
    fn every_pattern_compiles_and_is_anchored() {
        for version in ["1.143.0", "1.157.1", "1.163.2"] {
            for route in Routing::for_synapse(version).routes {
                compiled(route.pattern);
                assert!(route.pattern.starts_with("^/"), "{}", route.pattern);
            }
        }
        for pattern in [
            DELAYED_EVENTS_LISTING,
            DELAYED_EVENTS_ANY_RESTART,
            DELAYED_EVENTS_RESTART,
            DELAYED_EVENTS_LOOKUP,
        ] {
            assert!(pattern.starts_with(DELAYED_EVENTS_PREFIX), "{pattern}");
        }
    }
}
