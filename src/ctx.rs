//! What a case body gets: fresh users and rooms on the target, the run's API form and detected
//! features, restart rounds, notes. The judgements every timing case shares (not early, not too
//! late, never sent) are methods of `Ctx` too, in `judgements.rs`.

use crate::api::{ApiForm, Features, FormOverride, User};
use crate::client::{Client, Observed, Resp};
use crate::evidence::Evidence;
use crate::homeserver::Target;
use crate::outcome::Stop;
use crate::phase::{AloneTurn, Restarts, Round, Settling, SETTLE_WINDOW};
use crate::spec::Rev;
use crate::users;
use serde_json::json;
use std::sync::{Arc, Mutex};

/// What `Ctx::restart_one_timed` saw: whether the process restarted alone (as
/// `Ctx::restart_one_now` answers), when it was taken down and when it was back.
pub struct OneRestart {
    pub restarted: Result<bool, Stop>,
    pub down: std::time::Instant,
    pub back: std::time::Instant,
}

/// Rounds that restarted the whole homeserver instead (another case asked for it) before a case
/// restarting one process (`Ctx::restart_one_now`) gives up.
pub const ONE_PROCESS_ATTEMPTS: usize = 5;

/// Shared by every case of a run.
pub struct Env {
    pub http: reqwest::Client,
    pub target: Arc<dyn Target>,
    pub base_url: String,
    pub form: ApiForm,
    pub features: Features,
    /// Shares homeserver restarts between the cases of the restart phase.
    pub restarts: Arc<Restarts>,
    /// The widget driver under test (suite msc4157), set by the run after `prepare`.
    pub driver: Option<Arc<crate::widget::driver::DriverSpec>>,
}

impl Env {
    /// Registers a probing user on the target and finds out which API forms it offers; `forced`
    /// overrides the choice. The error says what went wrong and what to do about it.
    pub async fn prepare(
        target: Arc<dyn Target>,
        http: reqwest::Client,
        forced: FormOverride,
    ) -> Result<Env, String> {
        let base_url = target.info().base_url;
        let anon = Client::new(http.clone(), &base_url, Evidence::default());
        let prober = users::register(&anon, &target.registration(), "probe").await.map_err(|stop| {
            format!(
                "could not register a user on {base_url}: {}\nGive the right --registration-shared-secret, \
                 or enable open registration on the server.",
                stop.message()
            )
        })?;
        let room = prober
            .create_room(json!({"preset": "private_chat"}))
            .await
            .map_err(|s| format!("could not create a room on {base_url}: {}", s.message()))?;
        let features = crate::api::detect(&prober, &room).await.map_err(|s| {
            format!(
                "could not detect the delayed-events API forms: {}",
                s.message()
            )
        })?;
        let form = features.choose_form(forced);
        let restarts = Restarts::new(target.clone());
        Ok(Env {
            http,
            target,
            base_url,
            form,
            features,
            restarts,
            driver: None,
        })
    }
}

impl Env {
    /// The environment of an identical instance of `like`'s homeserver (same release, same
    /// configuration): what detection found there holds here too, so the instance is spared a
    /// probing user, a room and the probes.
    pub fn like(like: &Env, target: Arc<dyn Target>) -> Env {
        Env {
            http: like.http.clone(),
            base_url: target.info().base_url,
            form: like.form,
            features: like.features.clone(),
            restarts: Restarts::new(target.clone()),
            driver: like.driver.clone(),
            target,
        }
    }
}

/// What a case reports besides its outcome.
#[derive(Default, Debug, Clone)]
pub struct Record {
    pub matched: Option<Vec<Rev>>,
    /// The server's claim (origin_server_ts against its reported scheduling time).
    pub lateness_ms: Option<i64>,
    /// By the harness's clock (arrival over /sync against timer start plus delay).
    pub harness_lateness_ms: Option<i64>,
    /// Measurements worth reporting whatever the outcome (say, a delay_id's entropy).
    pub notes: Vec<String>,
    /// The log of the widget driver the case started, attached to failures.
    pub driver_log: Option<crate::widget::driver::DriverLog>,
}

#[derive(Clone)]
pub struct Ctx {
    env: Arc<Env>,
    label: String,
    evidence: Evidence,
    record: Arc<Mutex<Record>>,
    /// This case's place among the participants of its last restart still settling (dropped,
    /// so settled, when the case says so, gathers again, or ends).
    settling: Arc<Mutex<Option<Settling>>>,
    /// This case's turn to restart one process alone, once taken (`restart_round_alone`);
    /// the next case's turn begins when the case ends.
    alone_turn: Arc<tokio::sync::Mutex<Option<AloneTurn>>>,
}

impl Ctx {
    pub fn new(env: Arc<Env>, case_id: &str) -> Ctx {
        let label = case_id.rsplit('.').next().unwrap_or(case_id).to_string();
        Ctx {
            env,
            label,
            evidence: Evidence::default(),
            record: Default::default(),
            settling: Default::default(),
            alone_turn: Default::default(),
        }
    }

    pub fn evidence(&self) -> &Evidence {
        &self.evidence
    }

    pub fn record(&self) -> Record {
        self.record.lock().unwrap().clone()
    }

    pub fn form(&self) -> ApiForm {
        self.env.form
    }

    pub fn features(&self) -> &Features {
        &self.env.features
    }

    pub fn target(&self) -> &Arc<dyn Target> {
        &self.env.target
    }

    pub fn base_url(&self) -> &str {
        &self.env.base_url
    }

    /// The widget driver under test, if the run has one.
    pub fn driver(&self) -> Option<&crate::widget::driver::DriverSpec> {
        self.env.driver.as_deref()
    }

    /// The log the case's widget driver writes to (one per case, shared by its drivers).
    pub fn driver_log(&self) -> crate::widget::driver::DriverLog {
        self.record
            .lock()
            .unwrap()
            .driver_log
            .get_or_insert_with(Default::default)
            .clone()
    }

    /// The same case (evidence, notes, driver log, and the run's driver) on another
    /// environment: a widget case on a server of its own (`homeserver::fake`).
    pub fn on_env(&self, mut env: Env) -> Ctx {
        env.driver = self.env.driver.clone();
        Ctx {
            env: Arc::new(env),
            label: self.label.clone(),
            evidence: self.evidence.clone(),
            record: self.record.clone(),
            settling: Default::default(),
            alone_turn: Default::default(),
        }
    }

    /// The run's HTTP client (one connection pool per run).
    pub fn http(&self) -> &reqwest::Client {
        &self.env.http
    }

    /// A client with no access token, recording into this case's evidence.
    pub fn anonymous(&self) -> Client {
        Client::new(
            self.env.http.clone(),
            &self.env.base_url,
            self.evidence.clone(),
        )
    }

    /// A freshly registered user.
    pub async fn user(&self, role: &str) -> Result<User, Stop> {
        let label = format!("{}_{role}", self.label);
        let client =
            users::register(&self.anonymous(), &self.env.target.registration(), &label).await?;
        Ok(User {
            client,
            form: self.env.form,
        })
    }

    /// A fresh guest account; skips the case where the server offers none.
    pub async fn guest(&self) -> Result<User, Stop> {
        let (client, form) = users::register_guest(&self.anonymous()).await?;
        self.note(format!("guest account registered with {}", form.describe()));
        Ok(User {
            client,
            form: self.env.form,
        })
    }

    /// A fresh public room created by `owner`, joined by `members`.
    pub async fn room(&self, owner: &User, members: &[&User]) -> Result<String, Stop> {
        let room_id = owner.create_room(json!({"preset": "public_chat"})).await?;
        for member in members {
            member.join(&room_id).await?;
        }
        Ok(room_id)
    }

    /// The usual cast: alice, who creates a fresh room, and bob, who joins it. Nobody watches
    /// the room yet (`Scene::watched_by_bob`, `Scene::watched_by_alice`).
    pub async fn alice_and_bob(&self) -> Result<Scene, Stop> {
        let alice = self.user("alice").await?;
        let bob = self.user("bob").await?;
        let room = self.room(&alice, &[&bob]).await?;
        Ok(Scene { alice, bob, room })
    }

    /// A crowd: `count` members ("member0", ...) in a fresh room a watcher created and watches
    /// over `/sync` (started).
    pub async fn watched_room(&self, count: usize) -> Result<Crowd, Stop> {
        let watcher = self.user("watcher").await?;
        let mut members = Vec::new();
        for n in 0..count {
            members.push(self.user(&format!("member{n}")).await?);
        }
        let room = self
            .room(&watcher, &members.iter().collect::<Vec<_>>())
            .await?;
        watcher.start_sync().await?;
        Ok(Crowd {
            watcher,
            members,
            room,
        })
    }

    /// A text unique to this run, to recognise a case's own events.
    pub fn unique(&self, what: &str) -> String {
        format!("{what} {}", crate::client::new_txn_id())
    }

    /// Which revision(s) the server's behaviour matched (cases where the texts disagree).
    pub fn matched(&self, revisions: &[Rev]) {
        self.record.lock().unwrap().matched = Some(revisions.to_vec());
    }

    pub fn note(&self, text: impl Into<String>) {
        self.record.lock().unwrap().notes.push(text.into());
    }

    /// The server's claim of a delivered event's lateness (from its own timestamps).
    pub fn lateness(&self, ms: i64) {
        self.record.lock().unwrap().lateness_ms = Some(ms);
    }

    /// A delivered event's lateness by the harness's own clock.
    pub fn harness_lateness(&self, ms: i64) {
        self.record.lock().unwrap().harness_lateness_ms = Some(ms);
    }

    // ---- homeserver restarts (cases that need `Need::Restart`) --------------------------------

    /// Joins the next restart round: returns once the last restart has settled (see `settled`)
    /// and every running restart case has gathered. Do what must happen just before the restart
    /// (schedule events that must fall due while the server is down), then call `restart_now`.
    pub async fn restart_round(&self) -> Round {
        self.settled();
        let (round, settled) = self.env.restarts.gather().await;
        if !settled {
            self.note_unsettled("gathered for the next restart");
        }
        round
    }

    /// `restart_round` once no other restart case runs (at most 2 minutes, then noted): for
    /// cases restarting one process (`restart_one_now`), which rounds shared with cases
    /// restarting the whole homeserver cannot give.
    pub async fn restart_round_alone(&self) -> Round {
        let mut turn = self.alone_turn.lock().await;
        if !self
            .env
            .restarts
            .wait_alone(std::time::Duration::from_secs(120), &mut turn)
            .await
        {
            self.note("other restart cases still ran after 2 minutes; joined their round");
        }
        self.restart_round().await
    }

    /// Restarts the homeserver (shared with the round's other cases); returns once it is back.
    /// The case then first waits, over `/sync` only, for what it expects to be due and says so
    /// with `settled`; it touches the delayed-events API only after `after_round_settled`.
    pub async fn restart_now(&self, round: Round) -> Result<(), Stop> {
        self.go_through(round, false, "a restart").await
    }

    /// Kills the homeserver hard (SIGKILL, an engine kill) and starts it again with its data;
    /// the whole round is then a kill. Cases calling this need `Need::Kill` as well. Settle
    /// afterwards as after `restart_now`.
    pub async fn kill_now(&self, round: Round) -> Result<(), Stop> {
        self.go_through(round, true, "a hard kill").await
    }

    /// Restarts (or with `kill`, kills hard) only the process `process` of a homeserver that
    /// runs as several (`Target::processes`; cases calling this need `Need::Workers` and
    /// `Need::Restart`), while the others keep serving; the round's other participants share it.
    /// `false` where another participant asked for the whole homeserver, which the round then
    /// restarted instead: start over (fresh events) in the next round. Settle afterwards as
    /// after `restart_now`.
    pub async fn restart_one_now(
        &self,
        round: Round,
        process: &str,
        kill: bool,
    ) -> Result<bool, Stop> {
        let settling = round
            .restart_one(process, kill)
            .await
            .map_err(|e| Stop::Error(format!("process {process} did not come back: {e}")))?;
        let done = settling.is_some();
        *self.settling.lock().unwrap() = settling;
        Ok(done)
    }

    /// `restart_one_now`, timed, and where `process` restarted alone, `then_wait` longer: for
    /// cases that keep something going while one process restarts and for a while after.
    pub async fn restart_one_timed(
        &self,
        round: Round,
        process: &str,
        kill: bool,
        then_wait: std::time::Duration,
    ) -> OneRestart {
        let down = std::time::Instant::now();
        let restarted = self.restart_one_now(round, process, kill).await;
        let back = std::time::Instant::now();
        if matches!(restarted, Ok(true)) {
            tokio::time::sleep(then_wait).await;
        }
        OneRestart {
            restarted,
            down,
            back,
        }
    }

    /// For a case that restarts one process and starts over with fresh events where the round
    /// restarted the whole homeserver instead (`restart_one_now` answered `false`): settles this
    /// attempt and notes it.
    pub fn whole_restart_instead(&self, attempt: usize) {
        self.settled();
        self.note(format!(
            "attempt {attempt}: the restart round restarted the whole homeserver (another case \
             asked); trying again with fresh events"
        ));
    }

    /// The end of a case whose [`ONE_PROCESS_ATTEMPTS`] rounds all restarted the whole
    /// homeserver: no verdict on `process`.
    pub fn never_alone(&self, process: &str) -> Stop {
        Stop::Error(format!(
            "{ONE_PROCESS_ATTEMPTS} restart rounds in a row restarted the whole homeserver for \
             other cases; {process} never restarted alone"
        ))
    }

    async fn go_through(&self, round: Round, kill: bool, what: &str) -> Result<(), Stop> {
        let settling = round.restart(kill).await.map_err(|e| {
            Stop::Error(format!(
                "the homeserver did not come back after {what}: {e}"
            ))
        })?;
        *self.settling.lock().unwrap() = Some(settling);
        Ok(())
    }

    /// After a restart: this case has seen what it expected to be due (or no longer waits for
    /// it), so others of its round may touch the delayed-events API. Ending the case, or
    /// gathering for another round, says the same.
    pub fn settled(&self) {
        self.settling.lock().unwrap().take();
    }

    /// After a restart, before touching the delayed-events API: waits until every other
    /// participant of the round has settled (seen over `/sync` what it expected to be due),
    /// finished or left, so no request of this case can nudge a server into sending what others
    /// wait for. Bounded: after the window the case goes ahead and notes it.
    pub async fn after_round_settled(&self) {
        let Some(round) = self.settling.lock().unwrap().take().map(|s| s.round()) else {
            return;
        };
        if !self.env.restarts.settled(Some(round)).await {
            self.note_unsettled("touched the delayed-events API after the restart");
        }
    }

    fn note_unsettled(&self, what: &str) {
        self.note(format!(
            "{what} though another case of the restart round had not settled within {} s",
            SETTLE_WINDOW.as_secs()
        ));
    }

    /// Gathers and restarts, for cases with nothing to prepare.
    pub async fn restart_homeserver(&self) -> Result<(), Stop> {
        let round = self.restart_round().await;
        self.restart_now(round).await
    }
}

/// The usual cast of a case (`Ctx::alice_and_bob`): alice, who created a fresh room, and bob, a
/// A crowd in one room: `members` act (schedule, heartbeat), `watcher` created the room and
/// watches it over `/sync`.
pub struct Crowd {
    pub watcher: User,
    pub members: Vec<User>,
    pub room: String,
}

/// member at power level 0.
pub struct Scene {
    pub alice: User,
    pub bob: User,
    pub room: String,
}

impl Scene {
    /// Bob watches the room over `/sync` from now on (he sees what alice schedules arrive).
    pub async fn watched_by_bob(self) -> Result<Scene, Stop> {
        self.bob.start_sync().await?;
        Ok(self)
    }

    /// Alice watches the room over `/sync` from now on (she sees what bob schedules arrive).
    pub async fn watched_by_alice(self) -> Result<Scene, Stop> {
        self.alice.start_sync().await?;
        Ok(self)
    }
}

/// Matches a message event by its body text.
pub fn body_is(text: &str) -> impl FnMut(&Observed) -> bool + '_ {
    move |o: &Observed| o.content().get("body").and_then(|b| b.as_str()) == Some(text)
}

/// Fails unless `resp` is an error with one of `statuses` and one of `errcodes`.
pub fn check_error(
    resp: &Resp,
    what: &str,
    statuses: &[u16],
    errcodes: &[&str],
) -> Result<(), Stop> {
    let status_ok = statuses.contains(&resp.status);
    let errcode_ok = resp.errcode().is_some_and(|e| errcodes.contains(&e));
    if !(status_ok && errcode_ok) {
        let expected = format!(
            "HTTP {} with errcode {}",
            statuses
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or "),
            errcodes.join(" or ")
        );
        return Err(Stop::fail(format!(
            "{what}: expected {expected}, but {}",
            resp.describe()
        ))
        .expected(expected)
        .actual(match resp.errcode() {
            Some(errcode) => format!("HTTP {} with errcode {errcode}", resp.status),
            None => format!("HTTP {} without an errcode", resp.status),
        }));
    }
    Ok(())
}
