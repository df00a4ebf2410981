//! The fixed Matrix (and Synapse admin) paths the harness requests, named once. Paths with ids
//! in them are built where they are sent (`client.rs`); the delayed-events API's paths, which
//! depend on the API form, are `api.rs`'s.

/// Which spec versions and unstable features the server offers; MSC4383 adds who it is.
pub const VERSIONS: &str = "/_matrix/client/versions";
/// The server's software and version over federation (Synapse answers it on the client port).
pub const FEDERATION_VERSION: &str = "/_matrix/federation/v1/version";
pub const CAPABILITIES: &str = "/_matrix/client/v3/capabilities";
pub const SYNC: &str = "/_matrix/client/v3/sync";
pub const CREATE_ROOM: &str = "/_matrix/client/v3/createRoom";
pub const WHOAMI: &str = "/_matrix/client/v3/account/whoami";
pub const DEACTIVATE: &str = "/_matrix/client/v3/account/deactivate";
pub const LOGIN: &str = "/_matrix/client/v3/login";
/// Open registration (`m.login.dummy`).
pub const REGISTER: &str = "/_matrix/client/v3/register";
/// Synapse's shared-secret registration.
pub const SYNAPSE_ADMIN_REGISTER: &str = "/_synapse/admin/v1/register";
pub const SYNAPSE_SERVER_VERSION: &str = "/_synapse/admin/v1/server_version";
