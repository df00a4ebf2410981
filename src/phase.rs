//! Phases and shared restarts. Cases that restart the homeserver run on an instance of their own
//! where the target has one; otherwise after every other case has finished (`PhaseGate`). Either
//! way a restart never disturbs another case. They run concurrently with each other and share
//! restarts:
//! a restart *round* gathers every restart case that is still running, lets each prepare (say,
//! schedule events that must fall due while the server is down), then restarts the server once.
//!
//! After a restart the round *settles*: each participant first waits (over `/sync` only) for what
//! it expects to be due, and only once every participant has settled (or finished, or left) may
//! anyone touch the delayed-events API again, and may the next round gather. So no case leans on
//! another case's traffic: a server whose timer needs a delayed-events request to run again after
//! a restart is not rescued by a listing another case happens to ask for.
//!
//! Waiting here polls shared counters every few milliseconds: simple, and it cannot deadlock when
//! a participant fails half-way (it leaves, or the window runs out).

use crate::homeserver::Target;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(20);

/// The longest a round waits for slow or failed participants before going ahead without them.
const ROUND_WINDOW: Duration = Duration::from_secs(10);

/// The longest anyone waits for a round to settle: a participant waits at most until what it
/// expects is overdue by the allowance a server may add (30 s) plus slack, then it fails and
/// leaves; this bounds the wait should one hang for another reason.
pub const SETTLE_WINDOW: Duration = Duration::from_secs(40);

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
    /// Participants of the round being gathered that are prepared.
    prepared: Vec<u64>,
    /// Names participants, so leaving and settling can say who did.
    next_participant: u64,
    /// Participants of restarts that went through who have not settled yet: (round, participant).
    unsettled: Vec<(u64, u64)>,
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

/// A place in a gathered round: prepare, then `restart`. Dropping it leaves the round (and, once
/// restarted, counts as settled).
pub struct Round {
    restarts: Arc<Restarts>,
    round: u64,
    participant: u64,
}

impl Drop for Round {
    fn drop(&mut self) {
        let mut state = self.restarts.state.lock().unwrap();
        state.prepared.retain(|p| *p != self.participant);
        state.unsettled.retain(|(_, p)| *p != self.participant);
    }
}

/// A participant of a restart that went through, still waiting for what it expects to be due.
/// Dropping it says the participant has settled.
pub struct Settling(Round);

impl Settling {
    /// The round this participant restarted in.
    pub fn round(&self) -> u64 {
        self.0.round
    }
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

    /// Waits until every participant of `round` (or, with `None`, of every restart so far) has
    /// settled or left, at most [`SETTLE_WINDOW`]; answers whether they did.
    pub async fn settled(&self, round: Option<u64>) -> bool {
        let started = Instant::now();
        loop {
            {
                let state = self.state.lock().unwrap();
                if !state
                    .unsettled
                    .iter()
                    .any(|(r, _)| round.is_none_or(|round| *r == round))
                {
                    return true;
                }
            }
            if started.elapsed() > SETTLE_WINDOW {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the last restart has settled and every running restart case has gathered (or
    /// the windows ran out); the second answer says whether the last restart had settled.
    pub async fn gather(self: &Arc<Self>) -> (Round, bool) {
        let settled = self.settled(None).await;
        // A round already restarting is closed: join the next one.
        let (round, participant) = loop {
            {
                let mut state = self.state.lock().unwrap();
                if !state.restarting {
                    state.gathered += 1;
                    state.next_participant += 1;
                    break (state.round, state.next_participant);
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
        let round = Round {
            restarts: self.clone(),
            round,
            participant,
        };
        (round, settled)
    }
}

impl Round {
    /// Restarts the homeserver (cleanly, or with a hard kill if `kill` or another participant
    /// asked for one) once every participant of the round is prepared; answers when it is back
    /// (or why it did not come back), with this participant's place among those still settling.
    pub async fn restart(self, kill: bool) -> Result<Settling, String> {
        let started = Instant::now();
        let restarts = self.restarts.clone();
        {
            let mut state = restarts.state.lock().unwrap();
            // Too late for a restart that already went through: it answers that one's outcome.
            if state.round == self.round {
                state.prepared.push(self.participant);
                state.kill |= kill;
            }
        }
        loop {
            // Decided under the lock, acted on outside it (dropping `self` takes the lock).
            let lead: Option<bool> = {
                let mut state = restarts.state.lock().unwrap();
                let done = match &state.last {
                    Some((round, result)) if *round == self.round => Some(result.clone()),
                    // Gone through, and a later one since: its outcome is no longer known.
                    _ if state.round > self.round => Some(Ok(())),
                    _ => None,
                };
                if let Some(result) = done {
                    drop(state);
                    return result.map(|()| Settling(self));
                }
                let ready = state.prepared.len() >= state.gathered.min(state.members.max(1));
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
                {
                    let mut state = restarts.state.lock().unwrap();
                    let prepared = std::mem::take(&mut state.prepared);
                    if result.is_ok() {
                        let round = self.round;
                        state
                            .unsettled
                            .extend(prepared.into_iter().map(|p| (round, p)));
                    }
                    state.last = Some((self.round, result.clone()));
                    state.round += 1;
                    state.gathered = 0;
                    state.restarting = false;
                }
                return result.map(|()| Settling(self));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::homeserver::{Registration, TargetError, TargetInfo};
    use async_trait::async_trait;

    /// A target whose restarts take no time.
    struct NoDowntime;

    #[async_trait]
    impl Target for NoDowntime {
        fn info(&self) -> TargetInfo {
            TargetInfo::default()
        }
        fn registration(&self) -> Registration {
            Registration::Open
        }
        fn can_restart(&self) -> Result<(), String> {
            Ok(())
        }
        async fn restart(&self) -> Result<(), TargetError> {
            Ok(())
        }
        fn log_tail(&self, _: usize) -> Option<String> {
            None
        }
        async fn shutdown(&self) {}
    }

    /// Three cases share a restart: one finishes at once, one settles late; the third may touch
    /// the API, and the next round may gather, only once the late one has settled.
    #[tokio::test]
    async fn a_round_settles_once_every_participant_settled_or_left() {
        let restarts = Restarts::new(Arc::new(NoDowntime));
        let mut members: Vec<Membership> = (0..3).map(|_| restarts.join()).collect();
        let gathered = futures::future::join_all((0..3).map(|_| restarts.gather())).await;
        let settling = futures::future::join_all(gathered.into_iter().map(|(round, settled)| {
            assert!(settled, "nothing to settle before the first restart");
            round.restart(false)
        }))
        .await;
        let mut settling: Vec<Settling> = settling.into_iter().map(Result::unwrap).collect();
        let (late, finished, asking) = (settling.remove(0), settling.remove(0), settling.remove(0));
        let round = asking.round();
        drop(asking);
        drop(finished);
        let started = Instant::now();
        let settle_late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(late);
        });
        assert!(restarts.settled(Some(round)).await);
        assert!(started.elapsed() >= Duration::from_millis(300));
        settle_late.await.unwrap();
        members.truncate(1); // the two others have finished
        let (_next, settled) = restarts.gather().await;
        assert!(settled);
    }
}
