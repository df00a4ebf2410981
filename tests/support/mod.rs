// The fake homeserver is a crate of its own (fake/), and its restartable target lives in the
// harness (the widget cases use it too); the tests keep their old paths.
#[allow(unused_imports)]
pub use dec_fake_homeserver as fake_homeserver;
#[allow(unused_imports)]
pub mod fake_target {
    pub use dec_harness::homeserver::fake::FakeTarget;
}
pub mod fault_matrix;
#[allow(dead_code)] // used by selftest.rs only
pub mod faulty_deployments;
pub mod stand_in;
pub mod stand_in_faults;
