//! Phases and shared restarts. Cases that restart the homeserver run after every other case has
//! finished (so a restart never disturbs them), concurrently with each other, and share restarts:
//! a restart *round* gathers every restart case that is still running, lets each prepare (say,
//! schedule events that must fall due while the server is down), then restarts the server once.
//!
//! Waiting here polls shared counters every few milliseconds: simple, and it cannot deadlock when
//! a participant fails half-way (it leaves, or the window runs out).

use crate::target::Target;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(20);

/// The longest a round waits for slow or failed participants before going ahead without them.
const ROUND_WINDOW: Duration = Duration::from_secs(10);

/// Counts the cases of the first phase still to finish.
#[derive(Default)]
pub struct PhaseGate {
    first_phase_left: Mutex<usize>,
}

impl PhaseGate {
    pub fn new(first_phase_cases: usize) -> PhaseGate {
        PhaseGate {
            first_phase_left: Mutex::new(first_phase_cases),
        }
    }

    pub fn first_phase_case_done(&self) {
        let mut left = self.first_phase_left.lock().unwrap();
        *left = left.saturating_sub(1);
    }

    pub async fn first_phase_over(&self) {
        while *self.first_phase_left.lock().unwrap() > 0 {
            tokio::time::sleep(POLL).await;
        }
    }
}

#[derive(Default)]
struct RoundState {
    /// Restart cases running now.
    members: usize,
    /// Increases with every restart; identifies the round being gathered.
    round: u64,
    gathered: usize,
    prepared: usize,
    restarting: bool,
    /// A participant of the round being gathered asked for a hard kill instead of a clean
    /// restart: the whole round then kills.
    kill: bool,
    /// The outcome of the last finished round.
    last: Option<(u64, Result<(), String>)>,
}

/// Shares homeserver restarts between the cases of the restart phase.
pub struct Restarts {
    target: Arc<dyn Target>,
    state: Mutex<RoundState>,
}

/// A running restart case; leaving (dropping it) lets rounds go ahead without it.
pub struct Membership(Arc<Restarts>);

impl Drop for Membership {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap();
        state.members = state.members.saturating_sub(1);
    }
}

/// A place in a gathered round: prepare, then `restart`.
pub struct Round {
    restarts: Arc<Restarts>,
    round: u64,
}

impl Restarts {
    pub fn new(target: Arc<dyn Target>) -> Arc<Restarts> {
        Arc::new(Restarts {
            target,
            state: Mutex::default(),
        })
    }

    pub fn join(self: &Arc<Self>) -> Membership {
        self.state.lock().unwrap().members += 1;
        Membership(self.clone())
    }

    /// Waits until every running restart case has gathered (or the window ran out).
    pub async fn gather(self: &Arc<Self>) -> Round {
        // A round already restarting is closed: join the next one.
        let round = loop {
            {
                let mut state = self.state.lock().unwrap();
                if !state.restarting {
                    state.gathered += 1;
                    break state.round;
                }
            }
            tokio::time::sleep(POLL).await;
        };
        let started = Instant::now();
        loop {
            {
                let state = self.state.lock().unwrap();
                let everyone = state.gathered >= state.members;
                if state.round == round
                    && !state.restarting
                    && (everyone || started.elapsed() > ROUND_WINDOW)
                {
                    break;
                }
            }
            tokio::time::sleep(POLL).await;
        }
        Round {
            restarts: self.clone(),
            round,
        }
    }
}

impl Round {
    /// Restarts the homeserver (cleanly, or with a hard kill if `kill` or another participant
    /// asked for one) once every participant of the round is prepared; answers when it is back
    /// (or why it did not come back).
    pub async fn restart(self, kill: bool) -> Result<(), String> {
        let started = Instant::now();
        let restarts = &self.restarts;
        {
            let mut state = restarts.state.lock().unwrap();
            state.prepared += 1;
            state.kill |= kill;
        }
        loop {
            let lead: Option<bool> = {
                let mut state = restarts.state.lock().unwrap();
                if let Some((round, result)) = &state.last {
                    if *round == self.round {
                        return result.clone();
                    }
                }
                let ready = state.prepared >= state.gathered.min(state.members.max(1));
                if !state.restarting
                    && state.round == self.round
                    && (ready || started.elapsed() > ROUND_WINDOW)
                {
                    state.restarting = true;
                    Some(std::mem::take(&mut state.kill))
                } else {
                    None
                }
            };
            if let Some(kill) = lead {
                let result = match kill {
                    true => restarts.target.kill().await,
                    false => restarts.target.restart().await,
                };
                let result = result.map_err(|e| e.0);
                let mut state = restarts.state.lock().unwrap();
                state.last = Some((self.round, result.clone()));
                state.round += 1;
                state.gathered = 0;
                state.prepared = 0;
                state.restarting = false;
                return result;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
