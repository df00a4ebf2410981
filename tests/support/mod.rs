pub mod fake_homeserver;
pub mod fake_target;
