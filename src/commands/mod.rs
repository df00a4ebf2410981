//! The commands that need no homeserver, one file each; `run` is `run.rs`, `load` is `load/`.

pub mod cleanup;
pub mod diff;
pub mod list;
pub mod report;
