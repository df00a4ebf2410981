//! The fake homeserver (crate `dec-fake-homeserver`) as a restartable [`Target`]: the self-tests
//! run the catalogue against it, and a widget case that needs a server no real one is (one
//! without delayed events, one with a single management form) puts the run's driver in front of
//! one of its own ([`Ctx::on_fake_homeserver`]).
//!
//! A restart takes the fake down for [`FakeOptions::restart_downtime`]: every request answers
//! 503 and no delayed event is sent meanwhile. It then comes back with everything kept (tokens,
//! rooms, scheduled delayed events) and at once sends the delayed events that fell due while it
//! was down, in order of due time, stamped with the moment it came back. The restart faults
//! (`LosesEventsOnRestart`, `OverdueOutOfOrder`, `OverdueNotSent`, `ListingEmptyAfterRestart`)
//! live in the fake itself.

use super::{Registration, Target, TargetError, TargetInfo};
use crate::ctx::{Ctx, Env};
use crate::outcome::Stop;
use async_trait::async_trait;
use dec_fake_homeserver::{FakeHomeserver, FakeOptions, Fault, ManagementForms};
use std::sync::Arc;

pub struct FakeTarget {
    fake: FakeHomeserver,
}

impl FakeTarget {
    pub async fn start(opts: FakeOptions) -> FakeTarget {
        FakeTarget {
            fake: FakeHomeserver::start(opts).await,
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        self.fake.uri()
    }

    pub fn homeserver(&self) -> &FakeHomeserver {
        &self.fake
    }
}

#[async_trait]
impl Target for FakeTarget {
    fn info(&self) -> TargetInfo {
        TargetInfo {
            kind: "fake".into(),
            name: "FakeHomeserver".into(),
            version: Some("0.1".into()),
            base_url: self.uri(),
            ..Default::default()
        }
    }

    fn registration(&self) -> Registration {
        Registration::SharedSecret(FakeHomeserver::SHARED_SECRET.into())
    }

    fn can_restart(&self) -> Result<(), String> {
        Ok(())
    }

    /// Goes down, waits out the downtime, comes back; returns once the fake answers again.
    async fn restart(&self) -> Result<(), TargetError> {
        let mut wait = Some(self.fake.begin_restart());
        while let Some(left) = wait {
            tokio::time::sleep(left).await;
            wait = self.fake.finish_restart();
        }
        Ok(())
    }

    fn can_kill(&self) -> Result<(), String> {
        Ok(())
    }

    /// As a restart, with the kill faults applying when the fake comes back.
    async fn kill(&self) -> Result<(), TargetError> {
        let mut wait = Some(self.fake.begin_kill());
        while let Some(left) = wait {
            tokio::time::sleep(left).await;
            wait = self.fake.finish_restart();
        }
        Ok(())
    }

    /// The fake also plays a deployment with workers: a main process, whose restart stops the
    /// timer while requests are still answered, and a worker, whose restart changes nothing.
    fn processes(&self) -> Result<Vec<String>, String> {
        Ok(vec!["main".into(), "worker1".into()])
    }

    async fn cycle_one(&self, name: &str, kill: bool) -> Result<(), TargetError> {
        match name {
            "main" => {
                let mut wait = Some(self.fake.begin_main_restart(kill));
                while let Some(left) = wait {
                    tokio::time::sleep(left).await;
                    wait = self.fake.finish_main_restart();
                }
                Ok(())
            }
            "worker1" => {
                if kill {
                    self.fake.kill_worker();
                }
                Ok(())
            }
            _ => Err(TargetError(format!("the fake has no process {name:?}"))),
        }
    }

    fn log_tail(&self, lines: usize) -> Option<String> {
        Some(self.fake.log_tail(lines))
    }

    async fn shutdown(&self) {}
}

/// The servers a widget case can ask for where no real one behaves so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FakeServer {
    /// A correct server (both management forms), to count what the driver sends it.
    Recording,
    /// A server that never heard of MSC4140: `/versions` and `/capabilities` do not mention
    /// it, and the delay parameter is ignored (the event is sent at once).
    WithoutDelayedEvents,
    /// Management through split paths only (`.../{delay_id}/{action}`); the body form answers
    /// 404 `M_UNRECOGNIZED`.
    SplitPathsOnly,
    /// Management in the body form only (`{"action": ...}`); split paths answer 404
    /// `M_UNRECOGNIZED`.
    BodyFormOnly,
}

impl FakeServer {
    pub fn describe(self) -> &'static str {
        match self {
            FakeServer::Recording => "a homeserver that records the driver's requests",
            FakeServer::WithoutDelayedEvents => {
                "a homeserver without MSC4140 (it ignores the delay)"
            }
            FakeServer::SplitPathsOnly => "a homeserver that manages through split paths only",
            FakeServer::BodyFormOnly => "a homeserver that manages in the body form only",
        }
    }

    fn options(self) -> FakeOptions {
        let mut opts = FakeOptions {
            // The query parameter is the scheduling form every driver uses.
            dedicated_endpoint: false,
            ..FakeOptions::default()
        };
        match self {
            FakeServer::Recording => {}
            FakeServer::WithoutDelayedEvents => {
                opts.faults.insert(Fault::IgnoresDelay);
            }
            FakeServer::SplitPathsOnly => opts.management_forms = ManagementForms::SplitOnly,
            FakeServer::BodyFormOnly => opts.management_forms = ManagementForms::BodyOnly,
        }
        opts
    }
}

impl Ctx {
    /// A fake homeserver of the kind asked for, with the run's widget driver: the returned
    /// context registers its users there and records into this case's evidence and notes. The
    /// fake stops when the last context holding it is dropped. Also answers the fake itself,
    /// whose recorded requests show what the driver sent.
    pub async fn on_fake_homeserver(
        &self,
        kind: FakeServer,
    ) -> Result<(Ctx, Arc<FakeTarget>), Stop> {
        let fake = Arc::new(FakeTarget::start(kind.options()).await);
        let target: Arc<dyn Target> = fake.clone();
        let env = Env::prepare(target, self.http().clone(), Default::default())
            .await
            .map_err(|e| Stop::Error(format!("could not prepare the fake homeserver: {e}")))?;
        self.note(format!(
            "run against {} (the suite's fake homeserver)",
            kind.describe()
        ));
        Ok((self.on_env(env), fake))
    }
}
