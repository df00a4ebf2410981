pub mod fake_homeserver;
