//! The harness of delayed-events-conformance, a conformance suite for Matrix delayed events
//! (MSC4140) and their widget API (MSC4157).
//!
//! It starts or connects to a homeserver, registers users, and runs the cases of a
//! [`catalogue::Catalogue`] it is given (the `dec-catalogue` crate, in `suites/`) case by case.
//! See ARCHITECTURE.md.

pub mod api;
pub mod args;
pub mod case;
pub mod catalogue;
pub mod cli;
pub mod client;
pub mod commands;
pub mod ctx;
pub mod detect;
pub mod endpoints;
pub mod evidence;
pub mod expectations;
pub mod homeserver;
pub mod interrupt;
pub mod judgements;
pub mod load;
pub mod observation;
pub mod outcome;
pub mod phase;
pub mod progress;
pub mod report;
pub mod results;
pub mod run;
pub mod runner;
pub mod spec;
pub mod startup;
pub mod users;
pub mod widget;

/// What case files import.
pub mod prelude {
    pub use crate::api::{Action, Delay, DelayedEvent, ManageForm, Scheduled, TimerStart, User};
    pub use crate::case::{Case, Need};
    pub use crate::client::{Observed, Resp};
    pub use crate::ctx::{
        body_is, check_error, Crowd, Ctx, OneRestart, Scene, ONE_PROCESS_ATTEMPTS,
    };
    pub use crate::judgements::{Due, Landed};
    pub use crate::outcome::{CaseResult, Stop};
    pub use crate::spec::{Level, Rev, SpecRef};
    pub use crate::{areas, case, cases, check, check_eq, fail, skip};
    pub use serde_json::{json, Value};
    pub use std::time::{Duration, Instant};
}
