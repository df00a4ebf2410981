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
    /// Of them, those waiting to restart one process alone (`wait_alone`): rounds do not
    /// gather for them.
    waiting_alone: usize,
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
    /// A participant asked for the whole homeserver: the round then restarts all of it, even
    /// where another asked for one process only.
    whole: bool,
    /// The one process (of a deployment with several, `Target::processes`) a participant asked
    /// to restart alone (or kill, with `true`), if no one asked for the whole homeserver.
    one: Option<(String, bool)>,
    /// The outcome of the last finished round, and what it did.
    last: Option<(u64, Result<(), String>, Action)>,
}

/// Shares homeserver restarts between the cases of the restart phase.
pub struct Restarts {
    target: Arc<dyn Target>,
    state: Mutex<RoundState>,
    /// Cases restarting one process alone take turns: held from `wait_alone` to the case's end.
    alone_turn: Arc<tokio::sync::Mutex<()>>,
}

/// A case's turn to restart one process alone; the next case's turn begins when it is dropped.
pub type AloneTurn = tokio::sync::OwnedMutexGuard<()>;

/// Counts a case among those waiting alone while it waits (also when the wait is dropped).
struct WaitingAlone<'a>(&'a Restarts);

impl Drop for WaitingAlone<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap();
        state.waiting_alone = state.waiting_alone.saturating_sub(1);
    }
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

/// Why a participant did not get what it asked for.
enum Refused {
    /// The action failed: why.
    Failed(String),
    /// The round did another action, which another participant asked for.
    Other(Action),
}

/// What a round does to the homeserver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Restarts (or with `kill`, kills hard and starts again) all of it.
    Whole { kill: bool },
    /// Restarts (or kills) the one process named, while the others keep serving.
    One { process: String, kill: bool },
}

impl Action {
    async fn perform(&self, target: &dyn Target) -> Result<(), String> {
        let result = match self {
            Action::Whole { kill: true } => target.kill().await,
            Action::Whole { kill: false } => target.restart().await,
            Action::One { process, kill } => target.cycle_one(process, *kill).await,
        };
        result.map_err(|e| e.0)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = |kill: &bool| if *kill { "a hard kill" } else { "a restart" };
        match self {
            Action::Whole { kill } => write!(f, "{} of the whole homeserver", how(kill)),
            Action::One { process, kill } => write!(f, "{} of process {process} only", how(kill)),
        }
    }
}

impl Restarts {
    pub fn new(target: Arc<dyn Target>) -> Arc<Restarts> {
        Arc::new(Restarts {
            target,
            state: Mutex::default(),
            alone_turn: Arc::default(),
        })
    }

    /// Takes the turn (`turn`, kept by the case until it ends) among cases restarting one process
    /// alone, then waits until no other restart case runs, at most `within`; answers whether
    /// that happened. A round shared with a case that restarts the whole homeserver cannot
    /// restart one process. While waiting, the case is not one that rounds gather for, so the
    /// others go ahead without it.
    pub async fn wait_alone(&self, within: Duration, turn: &mut Option<AloneTurn>) -> bool {
        self.state.lock().unwrap().waiting_alone += 1;
        let _waiting = WaitingAlone(self);
        if turn.is_none() {
            *turn = Some(self.alone_turn.clone().lock_owned().await);
        }
        let started = Instant::now();
        loop {
            {
                let state = self.state.lock().unwrap();
                // Everyone else still running waits for a turn, as this case did.
                if state.members <= state.waiting_alone {
                    return true;
                }
            }
            if started.elapsed() > within {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
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
                let everyone = state.gathered + state.waiting_alone >= state.members;
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
        self.go_through(Action::Whole { kill })
            .await
            .map_err(|refused| match refused {
                Refused::Failed(e) => e,
                Refused::Other(done) => format!("the round did {done}"), // not for Whole
            })
    }

    /// Restarts (or kills hard) only the process `process` of a target with several
    /// (`Target::processes`), as `restart` does the whole homeserver. Where another participant
    /// of the round asked for the whole homeserver, the round does that instead and this
    /// answers `None` (this participant has then left the round): try again in the next one.
    pub async fn restart_one(self, process: &str, kill: bool) -> Result<Option<Settling>, String> {
        let process = process.to_string();
        match self.go_through(Action::One { process, kill }).await {
            Ok(settling) => Ok(Some(settling)),
            Err(Refused::Other(_)) => Ok(None),
            Err(Refused::Failed(e)) => Err(e),
        }
    }

    async fn go_through(self, asked: Action) -> Result<Settling, Refused> {
        let started = Instant::now();
        let restarts = self.restarts.clone();
        {
            let mut state = restarts.state.lock().unwrap();
            // Too late for a restart that already went through: it answers that one's outcome.
            if state.round == self.round {
                state.prepared.push(self.participant);
                match &asked {
                    Action::Whole { kill } => {
                        state.whole = true;
                        state.kill |= kill;
                    }
                    Action::One { process, kill } => {
                        state.one.get_or_insert_with(|| (process.clone(), *kill));
                    }
                }
            }
        }
        // What this participant gets from the action the round performed.
        let answer = |result: Result<(), String>, done: &Action| match (result, &asked) {
            (Err(e), _) => Err(Refused::Failed(e)),
            (Ok(()), Action::One { .. }) if *done != asked => Err(Refused::Other(done.clone())),
            (Ok(()), _) => Ok(()),
        };
        loop {
            // Decided under the lock, acted on outside it (dropping `self` takes the lock).
            let lead: Option<Action> = {
                let mut state = restarts.state.lock().unwrap();
                let done = match &state.last {
                    Some((round, result, done)) if *round == self.round => {
                        Some(answer(result.clone(), done))
                    }
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
                    let kill = std::mem::take(&mut state.kill);
                    let whole = std::mem::take(&mut state.whole);
                    Some(match state.one.take() {
                        Some((process, kill)) if !whole => Action::One { process, kill },
                        _ => Action::Whole { kill },
                    })
                } else {
                    None
                }
            };
            if let Some(action) = lead {
                let result = action.perform(restarts.target.as_ref()).await;
                {
                    let mut state = restarts.state.lock().unwrap();
                    let prepared = std::mem::take(&mut state.prepared);
                    if result.is_ok() {
                        let round = self.round;
                        state
                            .unsettled
                            .extend(prepared.into_iter().map(|p| (round, p)));
                    }
                    state.last = Some((self.round, result.clone(), action.clone()));
                    state.round += 1;
                    state.gathered = 0;
                    state.restarting = false;
                }
                return answer(result, &action).map(|()| Settling(self));
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

    /// Cases waiting to restart one process alone neither hold up the others' rounds nor each
    /// other: they take turns, each once the others have finished.
    #[tokio::test]
    async fn cases_waiting_alone_take_turns_and_hold_up_no_round() {
        let restarts = Restarts::new(Arc::new(NoDowntime));
        let others = restarts.join();
        let waiting = (0..2).map(|_| {
            let restarts = restarts.clone();
            // Each case's membership and turn end together, as with a case's end.
            let membership = restarts.join();
            tokio::spawn(async move {
                let _membership = membership;
                let mut turn = None;
                assert!(restarts.wait_alone(Duration::from_secs(5), &mut turn).await);
                let had_turn_at = Instant::now();
                tokio::time::sleep(Duration::from_millis(100)).await;
                (had_turn_at, Instant::now())
            })
        });
        let waiting: Vec<_> = waiting.collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The other case's round gathers at once, without the two waiting alone.
        let started = Instant::now();
        let (round, _) = restarts.gather().await;
        assert!(
            started.elapsed() < ROUND_WINDOW / 2,
            "{:?}",
            started.elapsed()
        );
        round.restart(false).await.unwrap();
        drop(others);
        let mut turns = Vec::new();
        for w in waiting {
            turns.push(w.await.unwrap());
        }
        turns.sort();
        assert!(
            turns[1].0 >= turns[0].1,
            "one turn after the other: {turns:?}"
        );
    }

    /// A target of several processes that records what it was asked to do.
    #[derive(Default)]
    struct Recording(Mutex<Vec<String>>);

    #[async_trait]
    impl Target for Recording {
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
            self.0.lock().unwrap().push("restart".into());
            Ok(())
        }
        async fn cycle_one(&self, name: &str, kill: bool) -> Result<(), TargetError> {
            self.0.lock().unwrap().push(format!("{name} kill={kill}"));
            Ok(())
        }
        fn log_tail(&self, _: usize) -> Option<String> {
            None
        }
        async fn shutdown(&self) {}
    }

    /// A round asked for one process restarts only it; one where another participant asks for
    /// the whole homeserver restarts all of it and tells the first to try again.
    #[tokio::test]
    async fn a_round_restarts_one_process_unless_another_asks_for_the_whole() {
        let target = Arc::new(Recording::default());
        let restarts = Restarts::new(target.clone());
        let _member = restarts.join();
        let (round, _) = restarts.gather().await;
        let settling = round.restart_one("main", false).await;
        assert!(matches!(settling, Ok(Some(_))));
        drop(settling);

        let _other = restarts.join();
        let ((first, _), (second, _)) = tokio::join!(restarts.gather(), restarts.gather());
        let (one, whole) = tokio::join!(first.restart_one("worker1", true), second.restart(false));
        assert!(whole.is_ok(), "{:?}", whole.err());
        assert!(matches!(one, Ok(None)), "the round did something else");
        assert_eq!(*target.0.lock().unwrap(), ["main kill=false", "restart"]);
    }
}
