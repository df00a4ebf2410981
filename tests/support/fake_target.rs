//! The fake homeserver as a restartable [`Target`], for cases that restart the homeserver.
//!
//! A restart takes the fake down for [`FakeOptions::restart_downtime`]: every request answers
//! 503 and no delayed event is sent meanwhile. It then comes back with everything kept (tokens,
//! rooms, scheduled delayed events) and at once sends the delayed events that fell due while it
//! was down, in order of due time, stamped with the moment it came back. The restart faults
//! (`LosesEventsOnRestart`, `OverdueOutOfOrder`, `OverdueNotSent`, `ListingEmptyAfterRestart`)
//! live in the fake itself.
#![allow(dead_code)]

use super::fake_homeserver::{FakeHomeserver, FakeOptions};
use async_trait::async_trait;
use dec_harness::homeserver::{Registration, Target, TargetError, TargetInfo};

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

    fn log_tail(&self, lines: usize) -> Option<String> {
        Some(self.fake.log_tail(lines))
    }

    async fn shutdown(&self) {}
}
