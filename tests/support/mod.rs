pub mod fake_homeserver;
pub mod fake_target;
pub mod fault_matrix;
pub mod stand_in;
pub mod stand_in_faults;
