//! Self-tests: every case can fail. The catalogue runs against a fake homeserver that is correct by
//! default and has one switch per fault. With no fault every case passes; with one fault exactly
//! the cases declared beside it (`support/fake_homeserver/faults.rs`) fail, each with a message
//! naming the broken requirement (checked by `support/fault_matrix.rs`).

mod support;

use dec_catalogue::msc4140::cases as catalogue;
use dec_harness::api::FormOverride;
use dec_harness::case::{Case, Need};
use dec_harness::client::http_client;
use dec_harness::ctx::Env;
use dec_harness::homeserver::url::UrlTarget;
use dec_harness::homeserver::Target;
use dec_harness::outcome::Outcome;
use dec_harness::results::CaseReport;
use dec_harness::runner::{run_concurrently, Targets};
use std::sync::Arc;
use std::time::Duration;
use support::fake_homeserver::{FakeHomeserver, FakeOptions, Fault};
use support::fake_target::FakeTarget;
use support::fault_matrix::{self, assert_clean, describe};

const CASE_TIMEOUT: Duration = Duration::from_secs(90);

/// Fault runs at once: enough to keep the test short, few enough that timing stays sharp on two
/// cores (each run is the whole catalogue, every case at once).
const PARALLEL_FAULT_RUNS: usize = 4;

/// Runs the whole catalogue against fakes started with `options`: a restartable one for most
/// cases, one with rate limits on for the cases that need a server's normal limits, and one whose
/// per-user limit is 0.
async fn run_catalogue(options: FakeOptions) -> Vec<CaseReport> {
    run_catalogue_cases(options, |_| true).await
}

/// `run_catalogue` with the cases `keep` keeps.
async fn run_catalogue_cases(
    options: FakeOptions,
    keep: impl Fn(&Case) -> bool,
) -> Vec<CaseReport> {
    let main = FakeTarget::start(options.clone()).await;
    let rate_limited = FakeTarget::start(FakeOptions {
        rate_limits: true,
        ..options.clone()
    })
    .await;
    let env = |target: FakeTarget| async move {
        let target: Arc<dyn Target> = Arc::new(target);
        Arc::new(
            Env::prepare(target, http_client(), FormOverride::default())
                .await
                .expect("the fake registers users"),
        )
    };
    let main = env(main).await;
    let limit_zero = limit_zero_twin(&main, options).await;
    let targets = Targets {
        limit_zero: Ok(limit_zero),
        ..Targets::single(main, Ok(env(rate_limited).await))
    };
    let cases = catalogue().into_iter().filter(|case| keep(case)).collect();
    run_concurrently(&targets, cases, CASE_TIMEOUT).await
}

/// A fake like `options` but with a per-user limit of 0, as the run starts one for the managed
/// Synapse: the twin of `main` (detection there would find scheduling refused).
async fn limit_zero_twin(main: &Env, options: FakeOptions) -> Arc<Env> {
    let fake = FakeTarget::start(FakeOptions {
        max_scheduled: 0,
        ..options
    })
    .await;
    Arc::new(Env::like(main, Arc::new(fake)))
}

/// The same, registering users through open registration (no shared secret).
async fn run_catalogue_with_open_registration(options: FakeOptions) -> Vec<CaseReport> {
    let fake = FakeHomeserver::start(options).await;
    let http = http_client();
    let target = UrlTarget::connect(&http, &fake.uri(), None)
        .await
        .expect("the fake answers /versions");
    let env = Arc::new(
        Env::prepare(Arc::new(target), http, FormOverride::default())
            .await
            .expect("open registration"),
    );
    let targets = Targets::single(env, Err("not in this test".into()));
    run_concurrently(&targets, catalogue(), CASE_TIMEOUT).await
}

fn with_faults(faults: &[Fault]) -> FakeOptions {
    FakeOptions {
        faults: faults.iter().copied().collect(),
        ..FakeOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catalogue_passes_against_a_correct_server() {
    assert_clean(
        &run_catalogue(FakeOptions::default()).await,
        "correct fake (dedicated endpoint)",
        |_| false,
    );
}

/// With the per-user limit deployments use (Synapse's default, 20), a correct server still passes
/// every case: no case needs more scheduled events of one user than the limit allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catalogue_passes_with_a_per_user_limit_of_20() {
    assert_clean(
        &run_catalogue(FakeOptions {
            max_scheduled: 20,
            ..FakeOptions::default()
        })
        .await,
        "correct fake with a per-user limit of 20",
        |_| false,
    );
}

/// A server answering in the shapes the merged text's public record gives (nested `finalised`,
/// `delayed_since_ts`, 409 with another errcode, `M_INVALID_PARAM`): no case fails, and the
/// cases about those shapes record that the merged revision matched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catalogue_passes_against_the_merged_shapes() {
    use dec_harness::spec::Rev;
    let reports = run_catalogue(FakeOptions {
        merged_shapes: true,
        ..FakeOptions::default()
    })
    .await;
    assert_clean(
        &reports,
        "correct fake answering in the merged shapes",
        |_| false,
    );
    for id in [
        "msc4140.listing.entries_have_revision_fields",
        "msc4140.listing.lookup_after_timer_sent",
        "msc4140.listing.lookup_after_send_action",
        "msc4140.listing.lookup_after_cancel",
        "msc4140.cancellation.actions_on_cancelled_event",
        "msc4140.cancellation.actions_on_failed_event",
    ] {
        let report = reports.iter().find(|r| r.id == id).expect(id);
        assert!(
            report
                .matched_revisions
                .iter()
                .any(|r| r == Rev::Merged2026.as_str())
                && !report
                    .matched_revisions
                    .iter()
                    .any(|r| r == Rev::Jul2026.as_str()),
            "{id} should match the merged revision only: {}",
            describe(report)
        );
    }
}

/// Behind a worker that replication reaches late, new and changed delayed events show in the
/// listing only after a while: the cases wait for what they expect within a bound and still
/// pass; where an event never shows, they still fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catalogue_passes_with_a_lagging_listing() {
    let reports = run_catalogue(FakeOptions {
        listing_lag: Duration::from_millis(300),
        ..FakeOptions::default()
    })
    .await;
    assert_clean(&reports, "correct fake whose listing lags 300 ms", |_| {
        false
    });
    // A listing that never catches up (longer than any wait) is a failure, not a pass.
    let never = FakeOptions {
        listing_lag: Duration::from_secs(600),
        ..FakeOptions::default()
    };
    for id in [
        "msc4140.listing.entries_have_revision_fields",
        "msc4140.listing.excludes_other_users",
        "msc4140.listing.in_send_time_order",
    ] {
        let reports = run_some(never.clone(), id).await;
        assert_eq!(
            reports[0].outcome,
            Outcome::Fail,
            "{}",
            describe(&reports[0])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catalogue_passes_with_query_param_scheduling_and_open_registration() {
    let options = FakeOptions {
        dedicated_endpoint: false,
        ..FakeOptions::default()
    };
    let reports = run_catalogue_with_open_registration(options).await;
    // Without a restartable target (one of several processes), a rate-limited twin or one with a
    // per-user limit of 0, those cases skip; so do those about the dedicated endpoint, which this fake does not offer.
    assert_clean(
        &reports,
        "correct fake (query-parameter scheduling, open registration)",
        |r| {
            r.area == "persistence"
                || r.area == "deployment"
                || r.area == "rate_limits"
                || r.id == "msc4140.limits.zero_limit_is_forbidden"
                || r.id.starts_with("msc4140.errors.endpoint_")
        },
    );
}

/// Where the target has an instance of its own for the restart cases, they run there from the
/// start, beside the others: the catalogue still passes, and only that instance ever restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_cases_on_an_instance_of_their_own() {
    let start = |options: FakeOptions| async move {
        let fake = Arc::new(FakeTarget::start(options).await);
        let target: Arc<dyn Target> = fake.clone();
        let env = Env::prepare(target, http_client(), FormOverride::default())
            .await
            .expect("the fake registers users");
        (fake, Arc::new(env))
    };
    let (main, main_env) = start(FakeOptions::default()).await;
    let (own, own_env) = start(FakeOptions::default()).await;
    let (_, rate_limited_env) = start(FakeOptions {
        rate_limits: true,
        ..FakeOptions::default()
    })
    .await;
    let limit_zero = limit_zero_twin(&main_env, FakeOptions::default()).await;
    let targets = Targets {
        restart: Some(own_env),
        limit_zero: Ok(limit_zero),
        ..Targets::single(main_env, Ok(rate_limited_env))
    };
    let reports = run_concurrently(&targets, catalogue(), CASE_TIMEOUT).await;
    assert_clean(&reports, "restart cases on their own instance", |_| false);
    assert_eq!(
        main.homeserver().restarts(),
        0,
        "the main instance restarted"
    );
    assert!(
        own.homeserver().restarts() > 0,
        "the restart cases' instance never restarted"
    );
}

/// A server with delayed events switched off (as Synapse with `max_event_delay_duration: null`):
/// every case skips as "not offered" but the one that checks the delay is not ignored, which
/// passes, since such a server refuses rather than sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_with_the_feature_off_skips_all_but_the_fallback_case() {
    let reports = run_catalogue(FakeOptions {
        delayed_events_off: true,
        ..FakeOptions::default()
    })
    .await;
    for report in &reports {
        if report.id == "msc4140.timing.delay_never_ignored" {
            assert_eq!(report.outcome, Outcome::Pass, "{}", describe(report));
        } else {
            assert_eq!(report.outcome, Outcome::Skip, "{}", describe(report));
            let message = report.message.as_deref().unwrap_or("");
            assert!(
                message.starts_with("delayed events are not offered: the server schedules no delayed event in any form (scheduling answered 403 M_FORBIDDEN"),
                "{}",
                describe(report)
            );
        }
    }
}

/// Each fault fails exactly the cases declared beside it (`fake_homeserver/faults.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_fault_fails_exactly_the_cases_it_concerns() {
    // DEC_SELFTEST_FAULTS=NameA,NameB runs only those faults (quicker while writing a case).
    //
    // The cases that restart one process of a deployment take turns, one after the other; where a
    // fault keeps events from being sent, each waits out the allowance a server may add, which
    // made every fault's run minutes long. They run only with the faults that declare one of
    // them: the fake plays a deployment only roughly (a main process and one worker), and each
    // also has its real misconfigured deployment (`support/faulty_deployments.rs`).
    fault_matrix::check_each_fault(Fault::ALL, Fault::declared, PARALLEL_FAULT_RUNS, |fault| {
        let about_deployments = fault
            .declared()
            .breaks
            .iter()
            .any(|(case, _)| case.starts_with("msc4140.deployment."));
        run_catalogue_cases(with_faults(&[fault]), move |case| {
            about_deployments || !case.needs.contains(&Need::Workers)
        })
    })
    .await;
}

#[test]
fn every_case_has_a_fault_that_fails_it() {
    let declared: Vec<_> = Fault::ALL.iter().map(|f| f.declared()).collect();
    // Cases only a real deployment can fail have theirs there.
    let on_faulty_deployments: Vec<&str> = support::faulty_deployments::FAULTY_DEPLOYMENTS
        .iter()
        .map(|f| f.case)
        .collect();
    fault_matrix::assert_every_case_covered(
        &declared,
        catalogue().iter().map(|c| c.id),
        &on_faulty_deployments,
    );
}

/// Runs the cases whose id contains `filter` against a fake started with `options`.
async fn run_some(options: FakeOptions, filter: &str) -> Vec<CaseReport> {
    let target: Arc<dyn Target> = Arc::new(FakeTarget::start(options).await);
    let env = Env::prepare(target, http_client(), FormOverride::default())
        .await
        .expect("the fake registers users");
    let targets = Targets::single(Arc::new(env), Err("not in this test".into()));
    let cases = catalogue()
        .into_iter()
        .filter(|c| c.id.contains(filter))
        .collect();
    run_concurrently(&targets, cases, CASE_TIMEOUT).await
}

/// A server that makes the harness wait is not the harness falling behind. A correct fake that
/// applies leaving a room at once but answers it only after the member's delayed event was due:
/// the case passes. The same with a fake that then sends the departed member's event anyway: the
/// failure cannot be proved (the server may have sent it before it applied the leave), so no
/// verdict, and the message says the server's answer came late, not that the harness fell behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_answer_is_the_servers_not_the_harness_falling_behind() {
    let case = "msc4140.power_levels.member_who_left_is_not_sent";
    let slow_leave = Some(("/leave", Duration::from_millis(3500)));
    let options = FakeOptions {
        slow_answers: slow_leave,
        ..FakeOptions::default()
    };
    let reports = run_some(options, case).await;
    assert_eq!(
        reports[0].outcome,
        Outcome::Pass,
        "{}",
        describe(&reports[0])
    );
    let options = FakeOptions {
        slow_answers: slow_leave,
        ..with_faults(&[Fault::LeftMemberStillSends])
    };
    let reports = run_some(options, case).await;
    let report = &reports[0];
    let message = report.message.as_deref().unwrap_or("");
    assert_eq!(report.outcome, Outcome::Error, "{}", describe(report));
    assert!(
        message.contains("the server answered leaving the room only")
            && message.contains("sent anyway")
            && !message.contains("fell behind"),
        "{}",
        describe(report)
    );
}

/// Some servers register guests only with `"kind": "guest"` in the body: the harness falls back
/// to it, the case runs (instead of skipping), and its notes say which form worked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_registered_through_the_body_where_the_query_parameter_is_refused() {
    for (body_only, form) in [(false, "query parameter"), (true, "in the body")] {
        let options = FakeOptions {
            guest_kind_in_body_only: body_only,
            ..FakeOptions::default()
        };
        let reports = run_some(options, "msc4140.auth.guests_can_use_delayed_events").await;
        let [report] = reports.as_slice() else {
            panic!("one guest case: {reports:?}")
        };
        assert_eq!(report.outcome, Outcome::Pass, "{}", describe(report));
        assert!(
            report.notes.iter().any(|n| n.contains(form)),
            "the notes say the guest was registered with the {form}: {:?}",
            report.notes
        );
    }
    // And the fallback does not hide a server whose guests may not use delayed events.
    let options = FakeOptions {
        guest_kind_in_body_only: true,
        ..with_faults(&[Fault::GuestsRefused])
    };
    let reports = run_some(options, "msc4140.auth.guests_can_use_delayed_events").await;
    assert_eq!(
        reports[0].outcome,
        Outcome::Fail,
        "{}",
        describe(&reports[0])
    );
}

/// The merged revision's answer to a delay over the maximum is recorded as matched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_over_maximum_matches_the_merged_revision() {
    use dec_harness::spec::Rev;
    let reports = run_some(FakeOptions::default(), "msc4140.errors.delay_over_maximum").await;
    assert_eq!(
        reports[0].outcome,
        Outcome::Pass,
        "{}",
        describe(&reports[0])
    );
    assert_eq!(reports[0].matched_revisions, [Rev::Merged2026.as_str()]);
}

/// Who is answering: MSC4383's announcement in `/versions` first, then the federation version
/// endpoint, else nothing (a url target then calls the server "unknown").
#[tokio::test]
async fn the_server_names_itself() {
    use dec_harness::homeserver::identity;
    let http = http_client();
    for (announce, federation, expected) in [
        (true, true, Some("msc4383")),
        (false, true, Some("federation")),
        (false, false, None),
    ] {
        let fake = FakeHomeserver::start(FakeOptions {
            announce_in_versions: announce,
            federation_version: federation,
            ..FakeOptions::default()
        })
        .await;
        let found = identity::detect(&http, &fake.uri()).await;
        assert_eq!(found.as_ref().map(|i| i.source), expected, "{found:?}");
        let target = UrlTarget::connect(&http, &fake.uri(), None).await.unwrap();
        let info = target.info();
        match found {
            Some(found) => {
                assert_eq!(found.name, FakeHomeserver::NAME);
                assert_eq!(found.version.as_deref(), Some(FakeHomeserver::VERSION));
                assert_eq!(info.server_name.as_deref(), Some(FakeHomeserver::NAME));
                assert_eq!(
                    info.server_version.as_deref(),
                    Some(FakeHomeserver::VERSION)
                );
                assert_eq!(info.identity_source.as_deref(), expected);
                assert_eq!(info.name, FakeHomeserver::NAME);
            }
            None => {
                assert_eq!(info.name, "unknown");
                assert_eq!(info.server_name, None);
            }
        }
    }
}
