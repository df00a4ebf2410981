//! A case: one scenario with a stable id, a title, a requirement level, the spec sentence it
//! enforces, what it needs from the target, and its body.

use crate::ctx::Ctx;
use crate::outcome::CaseResult;
use crate::spec::{Level, Rev, SpecRef};
use futures::future::BoxFuture;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Something a case needs from the target; unmet needs make the case `skip` with the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The target can restart the homeserver.
    Restart,
    /// The target can kill the homeserver hard and start it again (with `Restart`: such cases
    /// run in the restart phase).
    Kill,
    /// `GET .../delayed_events/{delay_id}` is offered.
    SingleLookup,
    /// Management in the body form (`{"action": ...}`) is offered.
    BodyForm,
    /// Management through split paths (`.../{delay_id}/{action}`) is offered.
    SplitForm,
    /// The capability advertising the limits is offered.
    Capability,
    /// A homeserver with its normal rate limits (the run's main target has them lifted so that
    /// concurrent cases never trip them).
    NormalRateLimits,
}

pub type CaseFn = Arc<dyn Fn(Ctx) -> BoxFuture<'static, CaseResult> + Send + Sync>;

#[derive(Clone)]
pub struct Case {
    pub id: &'static str,
    pub title: &'static str,
    pub level: Level,
    pub spec: SpecRef,
    /// The revisions whose text requires what this case checks (for cases where they agree; a
    /// case where they disagree reports the one the server matched).
    pub revisions: &'static [Rev],
    pub needs: &'static [Need],
    /// Runs even where the server offers no delayed events (every other case then skips with
    /// the reason): the cases about how such a server must behave.
    pub runs_without_feature: bool,
    /// Longer than the run's per-case timeout for cases whose scenario takes longer.
    pub timeout: Option<Duration>,
    pub run: CaseFn,
}

impl Case {
    pub fn new<F, Fut>(
        id: &'static str,
        title: &'static str,
        level: Level,
        spec: SpecRef,
        run: F,
    ) -> Case
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CaseResult> + Send + 'static,
    {
        Case {
            id,
            title,
            level,
            spec,
            revisions: &Rev::ALL_MSC4140,
            needs: &[],
            runs_without_feature: false,
            timeout: None,
            run: Arc::new(move |ctx| Box::pin(run(ctx))),
        }
    }

    pub fn needs(mut self, needs: &'static [Need]) -> Case {
        self.needs = needs;
        self
    }

    pub fn runs_without_feature(mut self) -> Case {
        self.runs_without_feature = true;
        self
    }

    pub fn revisions(mut self, revisions: &'static [Rev]) -> Case {
        self.revisions = revisions;
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Case {
        self.timeout = Some(timeout);
        self
    }

    /// The area is the id's middle part: `msc4140.<area>.<name>`.
    pub fn area(&self) -> &'static str {
        self.id.split('.').nth(1).unwrap_or("")
    }

    pub fn suite(&self) -> &'static str {
        self.id.split('.').next().unwrap_or("")
    }
}
