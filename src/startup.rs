//! Starting the homeservers of a run: the main target, the identical instances that share the
//! cases with it (managed Synapse), and the one that keeps its normal rate limits. `run` and
//! `load` both start their targets here, after `TargetArgs::validate`.

use crate::args::{TargetArgs, TargetKind, UsageError};
use crate::homeserver::container::{self, ContainerOptions, ContainerTarget};
use crate::homeserver::synapse::deployed::{self, DeployedSynapse};
use crate::homeserver::synapse::{
    self, PostgresCluster, SynapseOptions, SynapseTarget, PINNED_VERSION,
};
use crate::homeserver::url::{UrlCommands, UrlTarget};
use crate::homeserver::{Database, Target};
use std::sync::Arc;

/// The homeservers of a run, started.
pub(crate) struct Started {
    pub(crate) main: Arc<dyn Target>,
    /// Identical instances that share the first-phase cases with `main`.
    pub(crate) more: Vec<Arc<dyn Target>>,
    /// One more, for the cases that restart the server, so that they run beside the others.
    pub(crate) restart: Option<Arc<dyn Target>>,
    pub(crate) rate_limited: RateLimitedTarget,
    /// One whose per-user limit on scheduled events is 0, or why there is none.
    pub(crate) limit_zero: Result<Arc<dyn Target>, String>,
}

impl Started {
    /// Every target started, to be shut down at the end (or on an interrupt).
    pub(crate) fn all(&self) -> Vec<Arc<dyn Target>> {
        let mut all = vec![self.main.clone()];
        all.extend(self.more.iter().cloned());
        all.extend(self.restart.iter().cloned());
        if let RateLimitedTarget::Own(own) = &self.rate_limited {
            all.push(own.clone());
        }
        all.extend(self.limit_zero.iter().cloned());
        all
    }
}

/// Where the cases that need a homeserver with its normal rate limits run.
pub(crate) enum RateLimitedTarget {
    /// A target of its own (the managed Synapse starts a second instance with its defaults).
    Own(Arc<dyn Target>),
    /// The main target (a server someone else runs, when the user asked for the area).
    Main,
    /// Nowhere; the reason the cases skip.
    Unavailable(String),
}

/// The async runtime the targets run on. For target container it is built after
/// `prepare_environment`, which sets environment variables for testcontainers: no other thread
/// may exist yet.
pub(crate) fn runtime(args: &TargetArgs) -> Result<tokio::runtime::Runtime, UsageError> {
    if args.target == TargetKind::Container {
        container::prepare_environment();
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| UsageError(format!("cannot start the async runtime: {e}")))
}

/// What a run needs started beside its main target, from the cases it selected.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Needs {
    /// A case needs a homeserver with its normal rate limits.
    pub(crate) rate_limited: bool,
    /// A case restarts the homeserver.
    pub(crate) restarts: bool,
    /// A case needs a homeserver whose per-user limit on scheduled events is 0.
    pub(crate) limit_zero: bool,
}

/// A run's targets, started at once: the main one, its extra instances, and (where selected
/// cases need them) the restart cases' instance and the rate-limited one. `areas` are the run's
/// `--area`s.
pub(crate) async fn start_all(
    args: &TargetArgs,
    areas: &[String],
    needs: Needs,
    http: &reqwest::Client,
) -> Result<Started, UsageError> {
    let postgres = start_postgres(args).await?;
    let (main, more, restart, rate_limited, limit_zero) = tokio::try_join!(
        start_main(args, &postgres, http),
        start_more_instances(args, &postgres),
        start_restart_instance(args, &postgres, needs.restarts),
        start_rate_limited(args, &postgres, areas, needs.rate_limited),
        start_limit_zero(args, &postgres, needs.limit_zero)
    )?;
    Ok(Started {
        main,
        more,
        restart,
        rate_limited,
        limit_zero,
    })
}

/// The target the arguments name, started (or connected to).
pub(crate) async fn start_target(
    args: &TargetArgs,
    http: &reqwest::Client,
) -> Result<Arc<dyn Target>, UsageError> {
    let postgres = start_postgres(args).await?;
    start_main(args, &postgres, http).await
}

/// The run's PostgreSQL cluster, which every managed Synapse instance of the run gets a database
/// in, when `--synapse-database postgres` asks for one. It stops with the last of them.
type Postgres = Option<Arc<PostgresCluster>>;

async fn start_postgres(args: &TargetArgs) -> Result<Postgres, UsageError> {
    let workers = args.synapse_workers.is_some();
    if args.target != TargetKind::Synapse
        || (args.synapse_database != Database::Postgres && !workers)
    {
        return Ok(None);
    }
    if workers {
        deployed::check_installed()?;
    }
    let options = synapse_options(args, &None, true, false);
    Ok(Some(synapse::start_postgres(&options).await?))
}

async fn start_main(
    args: &TargetArgs,
    postgres: &Postgres,
    http: &reqwest::Client,
) -> Result<Arc<dyn Target>, UsageError> {
    match args.target {
        TargetKind::Synapse => {
            let options = synapse_options(args, postgres, true, false);
            Ok(match args.synapse_workers {
                Some(workers) => Arc::new(
                    DeployedSynapse::start(
                        options,
                        workers as usize,
                        args.synapse_deployment_fault.clone(),
                    )
                    .await?,
                ),
                None => Arc::new(SynapseTarget::start(options).await?),
            })
        }
        TargetKind::Container => {
            let Some(image) = &args.image else {
                return Err(UsageError(format!(
                    "--target container needs --image NAME[:TAG], an image that follows \
                     Complement's contract (your homeserver's Complement image). Without a \
                     registry, scripts/build-synapse-image builds {}:{PINNED_VERSION}.",
                    container::BUILT_SYNAPSE_IMAGE
                )));
            };
            let options = ContainerOptions {
                image: image.clone(),
                spawn_timeout: args.spawn_timeout,
                registration_shared_secret: args.registration_shared_secret.clone(),
            };
            Ok(Arc::new(ContainerTarget::start(options).await?))
        }
        TargetKind::Url => {
            let Some(base_url) = &args.base_url else {
                return Err(UsageError(
                    "--target url needs --base-url URL (the homeserver's client API)".into(),
                ));
            };
            let commands = UrlCommands {
                restart: args.restart_command.clone(),
                kill: args.kill_command.clone(),
                spawn_timeout: args.spawn_timeout,
            };
            let target = UrlTarget::connect_with(
                http,
                base_url,
                args.registration_shared_secret.clone(),
                commands,
            )
            .await?;
            Ok(Arc::new(target))
        }
    }
}

fn synapse_options(
    args: &TargetArgs,
    postgres: &Postgres,
    show_progress: bool,
    default_delayed_event_limits: bool,
) -> SynapseOptions {
    SynapseOptions {
        version: args.synapse_version.clone(),
        venv: args.synapse_venv.clone(),
        cache_dir: None,
        spawn_timeout: args.spawn_timeout,
        show_progress,
        keep_data: args.keep_data,
        default_delayed_event_limits,
        config_fragment: args.synapse_config.clone().map(|c| c.0),
        postgres: postgres.clone(),
    }
}

/// Further instances of the managed Synapse for the cases to share (none for other targets).
async fn start_more_instances(
    args: &TargetArgs,
    postgres: &Postgres,
) -> Result<Vec<Arc<dyn Target>>, UsageError> {
    if args.target != TargetKind::Synapse {
        return Ok(Vec::new());
    }
    let starts = (1..synapse_instances(args))
        .map(|_| SynapseTarget::start(synapse_options(args, postgres, false, false)));
    let started = futures::future::try_join_all(starts).await?;
    Ok(started
        .into_iter()
        .map(|t| Arc::new(t) as Arc<dyn Target>)
        .collect())
}

/// How many identical instances of the managed Synapse share the cases: one deployment with
/// workers, else the asked number or one per core.
fn synapse_instances(args: &TargetArgs) -> usize {
    if args.synapse_workers.is_some() {
        return 1;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    args.synapse_instances.unwrap_or(cores.min(4)).max(1)
}

/// An instance of its own for the cases that restart the homeserver (managed Synapse with more
/// than one instance, and restart cases selected): they then need not wait for all others.
async fn start_restart_instance(
    args: &TargetArgs,
    postgres: &Postgres,
    needed: bool,
) -> Result<Option<Arc<dyn Target>>, UsageError> {
    if !needed || args.target != TargetKind::Synapse || synapse_instances(args) <= 1 {
        return Ok(None);
    }
    let started = SynapseTarget::start(synapse_options(args, postgres, false, false)).await?;
    Ok(Some(Arc::new(started)))
}

async fn start_rate_limited(
    args: &TargetArgs,
    postgres: &Postgres,
    areas: &[String],
    needed: bool,
) -> Result<RateLimitedTarget, UsageError> {
    if !needed {
        return Ok(RateLimitedTarget::Unavailable("not selected".into()));
    }
    match args.target {
        TargetKind::Synapse => {
            let options = synapse_options(args, postgres, false, true);
            Ok(RateLimitedTarget::Own(Arc::new(SynapseTarget::start(options).await?)))
        }
        _ if areas.iter().any(|a| a == "rate_limits") => Ok(RateLimitedTarget::Main),
        _ => Ok(RateLimitedTarget::Unavailable(
            "the harness does not know this target's rate limits; run `--area rate_limits` on its own \
             against a server with its normal limits"
                .into(),
        )),
    }
}

/// An instance of the managed Synapse whose per-user limit on scheduled delayed events is 0, for
/// the case about that limit: in `--synapse-config` it would refuse every other case. Other
/// targets' configuration is not the harness's to change, so the case skips there.
async fn start_limit_zero(
    args: &TargetArgs,
    postgres: &Postgres,
    needed: bool,
) -> Result<Result<Arc<dyn Target>, String>, UsageError> {
    if !needed {
        return Ok(Err("not selected".into()));
    }
    if args.target != TargetKind::Synapse {
        return Ok(Err(
            "the harness cannot start an instance of this target with a per-user limit of 0 on scheduled \
             delayed events (only the managed Synapse can be configured so)"
                .into(),
        ));
    }
    let options = synapse_options(args, postgres, false, false).with_config(serde_json::json!({
        "experimental_features": {"msc4140_max_delayed_events_per_user": 0}
    }));
    let started = SynapseTarget::start(options).await?;
    Ok(Ok(Arc::new(started)))
}
