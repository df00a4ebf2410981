//! A case: one scenario with a stable id, a title, a requirement level, the spec sentence it
//! enforces, what it needs from the target, and its body.
//!
//! Case files declare each case beside its body with `case!`, list their cases with `cases!`,
//! and a suite lists its areas once with `areas!` (docs/writing-cases.md).

use crate::ctx::Ctx;
use crate::outcome::CaseResult;
use crate::spec::{Level, Rev, SpecRef};
use futures::future::BoxFuture;
use std::future::Future;
use std::sync::{Arc, OnceLock};
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
    /// A homeserver whose per-user limit on scheduled delayed events is 0 (an instance of its
    /// own: that limit would refuse every other case's scheduling).
    ScheduledLimitZero,
    /// The dedicated scheduling endpoint (`PUT .../delayed_event/{eventType}/{txnId}`) is
    /// offered.
    ScheduleEndpoint,
    /// The homeserver runs as several processes that can restart one at a time
    /// (`Target::processes`; Synapse with workers). With `Restart`, such cases run in the
    /// restart phase and restart one process through `Ctx::restart_one_now`.
    Workers,
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

/// The id of the case declared in the module `module_path` (`...::<suite>::<area>::<name>`, as
/// `case!` makes it): `<suite>.<area>.<name>`, built once and kept in `cell`.
pub fn id_from_module_path(cell: &'static OnceLock<String>, module_path: &str) -> &'static str {
    cell.get_or_init(|| {
        let parts: Vec<&str> = module_path.rsplit("::").take(3).collect();
        parts.into_iter().rev().collect::<Vec<_>>().join(".")
    })
}

/// Declares a case beside its body, the `async fn` of the same name that follows it:
///
/// ```ignore
/// case! {
///     name: zero_delay,
///     title: "A zero delay is rejected with 400",
///     level: Must,
///     spec: DELAY_POSITIVE,
///     revisions: &[Rev::Dec2025, Rev::Jul2026],
/// }
/// async fn zero_delay(ctx: Ctx) -> CaseResult { ... }
/// ```
///
/// The id is `<suite>.<area>.<name>`: suite and area are the modules the declaration is in.
/// `level` is a `Level` variant, `spec` a `SpecRef` (from the suite's `texts.rs`). After them
/// come, optionally, `body: EXPR` (a closure `|ctx| ...`, for a case whose body is a shared
/// function called with arguments; then no function of the case's name is needed) and any of
/// `Case`'s builders: `revisions: &[...]`, `needs: &[...]`, `timeout: DURATION`,
/// `runs_without_feature`. The area's `cases!` list names the case.
///
/// (It expands to a module of the case's name, beside the function of that name, holding
/// `case()`; modules and functions do not clash.)
#[macro_export]
macro_rules! case {
    (
        name: $name:ident,
        title: $title:literal,
        level: $level:ident,
        spec: $spec:expr,
        body: $body:expr
        $(, $builder:ident $(: $arg:expr)?)* $(,)?
    ) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            pub(super) fn case() -> $crate::case::Case {
                static ID: ::std::sync::OnceLock<String> = ::std::sync::OnceLock::new();
                $crate::case::Case::new(
                    $crate::case::id_from_module_path(&ID, module_path!()),
                    $title,
                    $crate::spec::Level::$level,
                    $spec,
                    $body,
                )
                $(.$builder($($arg)?))*
            }
        }
    };
    (
        name: $name:ident,
        title: $title:literal,
        level: $level:ident,
        spec: $spec:expr
        $(, $builder:ident $(: $arg:expr)?)* $(,)?
    ) => {
        $crate::case! {
            name: $name,
            title: $title,
            level: $level,
            spec: $spec,
            body: super::$name
            $(, $builder $(: $arg)?)*
        }
    };
}

/// An area's cases, by name, in the order the area lists them: `cases![name, ...]` (each
/// declared with `case!` in the same file).
#[macro_export]
macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        vec![$($name::case()),*]
    };
}

/// A suite's areas, once each, in report order: `areas!(timing, send_now, ...)` in the suite's
/// `mod.rs` gives `AREAS` (their names) and `AREA_CASES` (each area's `cases`, in the same
/// order). Each area is a module of that name declared beside it (`mod timing;`, kept out of the
/// macro so rustfmt still finds the file); a module left out of the list is dead code, a name
/// without a module does not compile.
#[macro_export]
macro_rules! areas {
    ($($area:ident),+ $(,)?) => {
        /// The areas of this suite, in report order.
        pub const AREAS: &[&str] = &[$(stringify!($area)),+];

        /// Each area's cases, in the order of `AREAS`.
        const AREA_CASES: &[fn() -> Vec<$crate::case::Case>] = &[$($area::cases),+];
    };
}
