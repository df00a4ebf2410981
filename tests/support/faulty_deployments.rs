//! The deployment cases behind real deployments whose proxy is misconfigured on purpose (the
//! hidden `--synapse-deployment-fault`): each must fail there, saying `says`
//! (tests/synapse_workers.rs runs them where nginx, Redis and PostgreSQL are installed). The fake
//! homeserver plays no proxy in front of workers, so for a case it cannot fail this table is its
//! self-test (tests/selftest.rs counts it as covered).

pub struct FaultyDeployment {
    /// The value of `--synapse-deployment-fault`.
    pub fault: &'static str,
    pub case: &'static str,
    /// What the failure message must say.
    pub says: &'static str,
}

pub const FAULTY_DEPLOYMENTS: &[FaultyDeployment] = &[
    // `/restart` on main only: the split path stops too while main restarts.
    FaultyDeployment {
        fault: "restart-on-main-only",
        case: "msc4140.deployment.heartbeats_survive_main_restart",
        says: "split path, unstable prefix",
    },
    // Scheduling mirrored to main: two delayed events, two copies.
    FaultyDeployment {
        fault: "mirror-scheduling",
        case: "msc4140.deployment.scheduled_on_worker_sent_once",
        says: "2 copies",
    },
    FaultyDeployment {
        fault: "mirror-scheduling",
        case: "msc4140.deployment.crash_of_sending_process_sends_once",
        says: "2 copies",
    },
    // A caching proxy: the listing after the restart and the cancel shows what was before. A
    // cache in the fake would fail every listing case as well, so this is the case's only one.
    FaultyDeployment {
        fault: "cached-lookups",
        case: "msc4140.deployment.lookups_agree_across_workers",
        says: "did not agree",
    },
];
