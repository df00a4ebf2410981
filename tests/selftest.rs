//! Self-tests: every case can fail. The catalogue runs against a fake homeserver that is correct by
//! default and has one switch per fault. With no fault every case passes; with one fault exactly
//! the cases listed for it below fail, each with a message naming the broken requirement.

mod support;

use dec_harness::api::FormOverride;
use dec_harness::client::http_client;
use dec_harness::ctx::Env;
use dec_harness::outcome::Outcome;
use dec_harness::results::CaseReport;
use dec_harness::runner::{run_concurrently, Targets};
use dec_catalogue::msc4140::cases as catalogue;
use dec_harness::homeserver::url::UrlTarget;
use dec_harness::homeserver::Target;
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use support::fake_homeserver::{FakeHomeserver, FakeOptions, Fault};
use support::fake_target::FakeTarget;

/// Which cases each fault must fail, and a phrase the failure message must contain.
const EXPECTED: &[(Fault, &str, &str)] = &[
    (
        Fault::IgnoresDelay,
        "msc4140.timing.delay_never_ignored",
        "ignored the delay and sent the event at once",
    ),
    (
        Fault::SendEarly,
        "msc4140.timing.message_not_sent_early",
        "sent before its delay",
    ),
    (
        Fault::SendEarly,
        "msc4140.timing.state_not_sent_early",
        "sent before its delay",
    ),
    (
        Fault::SendEarly,
        "msc4140.restart.moves_send_time",
        "before its delay",
    ),
    (
        Fault::SendEarly,
        "msc4140.restart.sent_after_heartbeat_stops",
        "before its delay",
    ),
    (
        Fault::LateTimestamp,
        "msc4140.timing.message_sent_within_allowance",
        "may add at most",
    ),
    (
        Fault::LateTimestamp,
        "msc4140.timing.state_sent_within_allowance",
        "may add at most",
    ),
    (
        Fault::SendActionNoop,
        "msc4140.send_now.sends_immediately",
        "did not arrive",
    ),
    (
        Fault::SendActionNoop,
        "msc4140.send_now.keeps_type_content_and_state_key",
        "did not arrive",
    ),
    (
        Fault::SendActionNoop,
        "msc4140.cancellation.actions_on_sent_event",
        "did not send the event",
    ),
    (
        Fault::SendActionNoop,
        "msc4140.listing.excludes_sent_and_cancelled",
        "sent by the send action",
    ),
    (
        Fault::SendActionTwice,
        "msc4140.send_now.not_sent_again_by_timer",
        "delivered 2 times",
    ),
    (
        Fault::SendActionDropsStateKey,
        "msc4140.send_now.keeps_type_content_and_state_key",
        "differs from the scheduled one",
    ),
    (
        Fault::IgnoreCancel,
        "msc4140.cancellation.cancelled_event_is_never_sent",
        "cancelled event was sent anyway",
    ),
    (
        Fault::IgnoreCancel,
        "msc4140.cancellation.cancelled_event_leaves_listing",
        "still in the listing",
    ),
    (
        Fault::IgnoreCancel,
        "msc4140.cancellation.actions_on_cancelled_event",
        "actions on a cancelled delayed event",
    ),
    (
        Fault::IgnoreCancel,
        "msc4140.listing.excludes_sent_and_cancelled",
        "which was cancelled",
    ),
    (
        Fault::CancelKeepsListing,
        "msc4140.cancellation.cancelled_event_leaves_listing",
        "still in the listing",
    ),
    (
        Fault::CancelKeepsListing,
        "msc4140.listing.excludes_sent_and_cancelled",
        "which was cancelled",
    ),
    (
        Fault::ActionsOnCancelledSucceed,
        "msc4140.cancellation.actions_on_cancelled_event",
        "actions on a cancelled delayed event",
    ),
    (
        Fault::ActionsOnSentWrong,
        "msc4140.cancellation.actions_on_sent_event",
        "actions on an already sent delayed event",
    ),
    (
        Fault::RestartNoop,
        "msc4140.restart.moves_send_time",
        "restart",
    ),
    (
        Fault::RestartNoop,
        "msc4140.restart.heartbeat_keeps_event_unsent",
        "before its delay",
    ),
    (
        Fault::RestartNoop,
        "msc4140.restart.sent_after_heartbeat_stops",
        // Sent while restarted (a loaded machine's slow heartbeat), or the unmoved time reported.
        "successful restart",
    ),
    (
        Fault::ListingLeaksOthers,
        "msc4140.listing.excludes_other_users",
        "shows alice's scheduled event",
    ),
    (
        Fault::ListingIncludesFinalised,
        "msc4140.listing.excludes_sent_and_cancelled",
        "still shows event",
    ),
    (
        Fault::ListingIncludesFinalised,
        "msc4140.cancellation.cancelled_event_leaves_listing",
        "still in the listing",
    ),
    (
        Fault::ListingUnsorted,
        "msc4140.listing.in_send_time_order",
        "not in order of send time",
    ),
    (
        Fault::ListingWithoutAuth,
        "msc4140.listing.requires_access_token",
        "without an access token",
    ),
    (
        Fault::ListingDropsContent,
        "msc4140.listing.entries_have_revision_fields",
        "content is not the scheduled",
    ),
    (
        Fault::SingleLookupDropsContent,
        "msc4140.listing.single_lookup_own_event",
        "content is not the scheduled",
    ),
    (
        Fault::SingleLookupLeaks,
        "msc4140.listing.single_lookup_other_users_event",
        "another user looking up",
    ),
    (
        Fault::IdempotencyBroken,
        "msc4140.idempotency.same_txn_same_delay_id",
        "gave a new delay_id",
    ),
    (
        Fault::IdempotencyBroken,
        "msc4140.idempotency.same_txn_schedules_once",
        "sent the event 2 times",
    ),
    (
        Fault::AcceptNegativeDelay,
        "msc4140.errors.negative_delay",
        "negative delay",
    ),
    (
        Fault::ZeroDelayServerError,
        "msc4140.errors.zero_delay",
        "zero delay",
    ),
    (
        Fault::AcceptNonIntegerDelay,
        "msc4140.errors.non_integer_delay",
        "non-integer delay",
    ),
    (
        Fault::OverMaxAccepted,
        "msc4140.errors.delay_over_maximum",
        "over the maximum",
    ),
    (
        Fault::OverMaxWrongErrcode,
        "msc4140.errors.delay_over_maximum",
        "M_DELAY_TOO_LARGE",
    ),
    (
        Fault::OverMaxAccepted,
        "msc4140.capabilities.max_delay_matches_enforcement",
        "should be refused",
    ),
    (
        Fault::CapabilityOverstatesMaxDelay,
        "msc4140.capabilities.max_delay_matches_enforcement",
        "should be accepted",
    ),
    (
        Fault::CapabilityMissing,
        "msc4140.capabilities.advertised",
        "has neither",
    ),
    (
        Fault::UnknownDelayIdWrongError,
        "msc4140.errors.unknown_delay_id_send",
        "unknown delay_id",
    ),
    (
        Fault::UnknownDelayIdWrongError,
        "msc4140.errors.unknown_delay_id_cancel",
        "unknown delay_id",
    ),
    (
        Fault::UnknownDelayIdWrongError,
        "msc4140.errors.unknown_delay_id_restart",
        "unknown delay_id",
    ),
    (
        Fault::BodyActionUnvalidated,
        "msc4140.errors.body_form_missing_action",
        "no action",
    ),
    (
        Fault::BodyActionUnvalidated,
        "msc4140.errors.body_form_unknown_action",
        "unknown action",
    ),
    (
        Fault::BodyActionUnvalidated,
        "msc4140.errors.body_form_malformed_action",
        "non-string action",
    ),
    (
        Fault::SplitUnknownActionAccepted,
        "msc4140.errors.split_path_unknown_action",
        "unknown action path",
    ),
    (
        Fault::MalformedJsonAccepted,
        "msc4140.errors.body_form_malformed_json",
        "malformed JSON",
    ),
    (
        Fault::MalformedJsonAccepted,
        "msc4140.errors.malformed_json_scheduling",
        "malformed JSON",
    ),
    (
        Fault::UnknownRoomAccepted,
        "msc4140.errors.unknown_room",
        "room that does not exist",
    ),
    (
        Fault::InvalidContentAccepted,
        "msc4140.errors.invalid_content",
        "not an object",
    ),
    (
        Fault::NoVersionsFlag,
        "msc4140.unstable_prefix.advertised_in_versions",
        "org.matrix.msc4140",
    ),
    (
        Fault::UnsignedMissing,
        "msc4140.unsigned.delay_id_for_sender_over_sync",
        "over /sync, the sender's copy",
    ),
    (
        Fault::UnsignedMissing,
        "msc4140.unsigned.delay_id_for_sender_over_messages",
        "over /messages, the sender's copy",
    ),
    (
        Fault::UnsignedMissingInMessages,
        "msc4140.unsigned.delay_id_for_sender_over_messages",
        "over /messages, the sender's copy",
    ),
    (
        Fault::UnsignedLeaked,
        "msc4140.unsigned.delay_id_hidden_from_others",
        "another user's copy",
    ),
    (
        Fault::PowerLevelsAtSchedule,
        "msc4140.power_levels.promoted_before_delay_is_sent",
        "refused at scheduling time",
    ),
    (
        Fault::PowerLevelsAtSchedule,
        "msc4140.power_levels.demoted_before_delay_is_not_sent",
        "sent anyway",
    ),
    (
        Fault::PowerLevelsAtSchedule,
        "msc4140.power_levels.send_action_answers_like_a_plain_send",
        "refused at scheduling time",
    ),
    (
        Fault::PowerLevelsAtSchedule,
        "msc4140.power_levels.refused_send_keeps_event_scheduled",
        "refused at scheduling time",
    ),
    (
        Fault::SendActionIgnoresPermissions,
        "msc4140.power_levels.send_action_answers_like_a_plain_send",
        "as a plain send would",
    ),
    (
        Fault::SendActionIgnoresPermissions,
        "msc4140.power_levels.refused_send_keeps_event_scheduled",
        "should have been refused",
    ),
    (
        Fault::SendActionFailureFinalises,
        "msc4140.power_levels.refused_send_keeps_event_scheduled",
        "no longer scheduled",
    ),
    (
        Fault::LeftMemberStillSends,
        "msc4140.power_levels.member_who_left_is_not_sent",
        "sent anyway",
    ),
    (
        Fault::LeftMemberStillSends,
        "msc4140.power_levels.kicked_member_is_not_sent",
        "sent anyway",
    ),
    (
        Fault::StateOverwriteCancelsButListed,
        "msc4140.state_overwrite.other_users_state_cancels",
        "still listed as scheduled",
    ),
    (
        Fault::BurstDropsExcess,
        "msc4140.timing.burst_up_to_user_limit",
        "never sent",
    ),
    (
        Fault::BurstDropsExcess,
        "msc4140.timing.many_users_due_together",
        "never sent",
    ),
    (
        Fault::ActionOnFinalisedCancelsOthers,
        "msc4140.cancellation.retried_actions_leave_others_alone",
        "no longer listed",
    ),
    (
        Fault::RestartRearmsWholeRoom,
        "msc4140.use_cases.call_of_many",
        "never sent",
    ),
    (
        Fault::SendEarly,
        "msc4140.timing.burst_up_to_user_limit",
        "sent before its delay",
    ),
    (
        Fault::SendEarly,
        "msc4140.timing.many_users_due_together",
        "sent before its delay",
    ),
    (
        Fault::SendEarly,
        "msc4140.cancellation.retried_actions_leave_others_alone",
        "sent before its delay",
    ),
    (
        Fault::SendEarly,
        "msc4140.use_cases.call_of_many",
        "before its delay",
    ),
    (
        Fault::LateTimestamp,
        "msc4140.cancellation.retried_actions_leave_others_alone",
        "may add at most",
    ),
    (
        Fault::RestartNoop,
        "msc4140.use_cases.call_of_many",
        // Caught by the reported time that did not move, or (if late) by the early hang-up.
        "successful restart",
    ),
    (
        Fault::MgmtRateLimitPerAddress,
        "msc4140.rate_limits.heartbeats_behind_one_address",
        "were refused",
    ),
    (
        Fault::RestartNoop,
        "msc4140.rate_limits.heartbeats_behind_one_address",
        "heartbeat (restart) of a scheduled event failed",
    ),
    (
        Fault::StateOverwriteTooBroad,
        "msc4140.timing.many_users_due_together",
        "never sent",
    ),
    (
        Fault::StateOverwriteTooBroad,
        "msc4140.use_cases.call_of_many",
        "restarting a scheduled event that has not been sent was refused",
    ),
    (
        Fault::StateOverwriteLate,
        "msc4140.state_overwrite.other_users_state_cancels",
        "late cancellation",
    ),
    (
        Fault::SendEarly,
        "msc4140.state_overwrite.earlier_state_does_not_cancel",
        "sent before its delay",
    ),
    (
        Fault::BurstDropsExcess,
        "msc4140.state_overwrite.earlier_state_does_not_cancel",
        "never sent",
    ),
    (
        Fault::StateOverwriteProcessedLate,
        "msc4140.state_overwrite.earlier_state_does_not_cancel",
        "that the server had already answered with 200",
    ),
    (
        Fault::StateOverwriteBySelfCancels,
        "msc4140.state_overwrite.own_state_does_not_cancel",
        "cancelled their delayed state event",
    ),
    (
        Fault::StateOverwriteTooBroad,
        "msc4140.state_overwrite.unrelated_events_do_not_cancel",
        "cancelled a delayed event",
    ),
    (
        Fault::LosesEventsOnRestart,
        "msc4140.persistence.scheduled_event_survives_restart",
        "never sent",
    ),
    (
        Fault::LosesEventsOnRestart,
        "msc4140.persistence.listing_and_management_after_restart",
        "lacks the scheduled event",
    ),
    (
        Fault::ListingEmptyAfterRestart,
        "msc4140.persistence.listing_and_management_after_restart",
        "lacks the scheduled event",
    ),
    (
        Fault::OverdueOutOfOrder,
        "msc4140.persistence.overdue_events_sent_in_order",
        "not in the order of their send times",
    ),
    (
        Fault::OverdueNotSent,
        "msc4140.persistence.overdue_events_sent_in_order",
        "never sent",
    ),
    (
        Fault::OverdueNotSent,
        "msc4140.persistence.exactly_once_across_restart_and_kill",
        "never sent",
    ),
    (
        Fault::ResendsSentAfterRestart,
        "msc4140.persistence.exactly_once_across_restart_and_kill",
        "sent before the clean restart was delivered 2 times",
    ),
    (
        Fault::OverdueTwiceAfterKill,
        "msc4140.persistence.exactly_once_across_restart_and_kill",
        "due while the homeserver was killed was delivered 2 times",
    ),
    (
        Fault::LimitNotEnforced,
        "msc4140.limits.over_limit_is_refused",
        "not enforced",
    ),
    (
        Fault::LimitNotEnforced,
        "msc4140.limits.retry_after_until_next_send",
        "not enforced",
    ),
    (
        Fault::LimitNotEnforced,
        "msc4140.limits.cancel_frees_a_slot",
        "not enforced",
    ),
    (
        Fault::LimitWrongRetryAfter,
        "msc4140.limits.retry_after_until_next_send",
        "no Retry-After",
    ),
    (
        Fault::LimitRetryAfterWrongValue,
        "msc4140.limits.retry_after_until_next_send",
        "next delayed event is due in",
    ),
    (
        Fault::LimitNotFreedByCancel,
        "msc4140.limits.cancel_frees_a_slot",
        "still refused",
    ),
    (
        Fault::MgmtNotRateLimited,
        "msc4140.rate_limits.management_is_rate_limited",
        "without a rate limit",
    ),
    (
        Fault::LookupsNotRateLimited,
        "msc4140.rate_limits.lookups_are_rate_limited",
        "without a rate limit",
    ),
    (
        Fault::MgmtAuthWrongError,
        "msc4140.auth.management_without_token",
        "should be refused",
    ),
    (
        Fault::MgmtAuthWrongError,
        "msc4140.auth.management_by_another_user",
        "should be refused",
    ),
    (
        Fault::ReusedDelayIds,
        "msc4140.auth.delay_ids_are_unique",
        "more than once",
    ),
    (
        Fault::SequentialDelayIds,
        "msc4140.auth.delay_ids_are_unguessable",
        "bits of randomness",
    ),
    (
        Fault::GuestsRefused,
        "msc4140.auth.guests_can_use_delayed_events",
        "guest's scheduling request was refused",
    ),
    (
        Fault::DeactivatedStillSends,
        "msc4140.auth.deactivated_account_events_not_sent",
        "sent anyway",
    ),
    (
        Fault::RestartNoop,
        "msc4140.use_cases.matrixrtc_last_will",
        "before its delay",
    ),
    (
        Fault::DelayedRedactionIgnored,
        "msc4140.use_cases.self_destructing_message",
        "should be redacted",
    ),
    (
        Fault::SendEarly,
        "msc4140.use_cases.delayed_kick",
        "sent before its delay",
    ),
    (
        Fault::SendEarly,
        "msc4140.use_cases.scheduled_reminder",
        "sent before its delay",
    ),
    (
        Fault::DelayedContentMangled,
        "msc4140.use_cases.scheduled_reminder",
        "mention must be kept",
    ),
    (
        Fault::SendEarly,
        "msc4140.persistence.scheduled_event_survives_restart",
        "sent before its delay",
    ),
    (
        Fault::SendEarly,
        "msc4140.persistence.exactly_once_across_restart_and_kill",
        "sent before its delay",
    ),
    (
        Fault::LosesEventsOnRestart,
        "msc4140.persistence.exactly_once_across_restart_and_kill",
        "never sent",
    ),
    (
        Fault::SendEarly,
        "msc4140.use_cases.matrixrtc_last_will",
        "before its delay",
    ),
    (
        Fault::SendEarly,
        "msc4140.use_cases.self_destructing_message",
        "sent before its delay",
    ),
    (
        Fault::IgnoreCancel,
        "msc4140.persistence.listing_and_management_after_restart",
        "cancelled event is still listed",
    ),
    (
        Fault::IgnoreCancel,
        "msc4140.limits.cancel_frees_a_slot",
        "still refused",
    ),
    (
        Fault::CancelKeepsListing,
        "msc4140.persistence.listing_and_management_after_restart",
        "cancelled event is still listed",
    ),
    (
        Fault::ListingIncludesFinalised,
        "msc4140.persistence.listing_and_management_after_restart",
        "cancelled event is still listed",
    ),
    (
        Fault::ListingIncludesFinalised,
        "msc4140.power_levels.demoted_before_delay_is_not_sent",
        "still listed as scheduled",
    ),
    (
        Fault::ListingIncludesFinalised,
        "msc4140.state_overwrite.other_users_state_cancels",
        "still listed as scheduled",
    ),
    (
        Fault::ListingDropsContent,
        "msc4140.persistence.listing_and_management_after_restart",
        "lacks the scheduled event",
    ),
    (
        Fault::SendActionNoop,
        "msc4140.power_levels.send_action_answers_like_a_plain_send",
        "as a plain send would",
    ),
    (
        Fault::SendActionNoop,
        "msc4140.power_levels.refused_send_keeps_event_scheduled",
        "should have been refused",
    ),
    (
        Fault::SendActionNoop,
        "msc4140.persistence.listing_and_management_after_restart",
        "did not arrive",
    ),
    (
        Fault::LosesEventsOnRestart,
        "msc4140.persistence.overdue_events_sent_in_order",
        "never sent",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.timing.message_not_sent_early",
        "in the future",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.timing.state_not_sent_early",
        "in the future",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.timing.message_sent_within_allowance",
        "in the future",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.timing.state_sent_within_allowance",
        "in the future",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.restart.moves_send_time",
        "in the future",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.restart.sent_after_heartbeat_stops",
        "in the future",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.listing.entries_have_revision_fields",
        "in the future",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.listing.in_send_time_order",
        "in the future",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.listing.excludes_other_users",
        "in the future",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.listing.excludes_sent_and_cancelled",
        "in the future",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.listing.single_lookup_own_event",
        "in the future",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.listing.scheduling_time_is_when_timer_started",
        "in the future",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.use_cases.matrixrtc_last_will",
        "in the future",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.use_cases.self_destructing_message",
        "in the future",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.use_cases.delayed_kick",
        "in the future",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.use_cases.scheduled_reminder",
        "in the future",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.cancellation.retried_actions_leave_others_alone",
        "in the future",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.persistence.scheduled_event_survives_restart",
        "in the future",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.persistence.overdue_events_sent_in_order",
        "in the future",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.persistence.listing_and_management_after_restart",
        "in the future",
    ),
    (
        Fault::ReportedTimeStale,
        "msc4140.restart.moves_send_time",
        "after a successful restart",
    ),
    (
        Fault::ReportedTimeStale,
        "msc4140.restart.sent_after_heartbeat_stops",
        "scheduled or last restarted",
    ),
    (
        Fault::ReportedTimeStale,
        "msc4140.use_cases.matrixrtc_last_will",
        "scheduled or last restarted",
    ),
    (
        Fault::ReportedTimeStale,
        "msc4140.use_cases.call_of_many",
        "scheduled or last restarted",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.use_cases.call_of_many",
        "in the future",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.timing.burst_up_to_user_limit",
        "in the future",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.timing.many_users_due_together",
        "in the future",
    ),
    (
        Fault::ReportedTimeInFuture,
        "msc4140.state_overwrite.earlier_state_does_not_cancel",
        "in the future",
    ),
    (
        Fault::LateTimestamp,
        "msc4140.use_cases.call_of_many",
        "may add at most",
    ),
    (
        Fault::ReportedTimeStale,
        "msc4140.listing.scheduling_time_is_when_timer_started",
        "scheduled or last restarted",
    ),
    (
        Fault::RestartNoop,
        "msc4140.listing.scheduling_time_is_when_timer_started",
        "after a successful restart",
    ),
    (
        Fault::FlushesOnShutdown,
        "msc4140.persistence.scheduled_event_survives_restart",
        "before its delay",
    ),
    (
        Fault::FlushesOnShutdown,
        "msc4140.persistence.overdue_events_sent_in_order",
        "before its delay by the server's own clock",
    ),
    (
        Fault::FlushesOnShutdown,
        "msc4140.persistence.listing_and_management_after_restart",
        "lacks the scheduled event",
    ),
    // The first is caught only because "never sent" waits while the event is still listed.
    (
        Fault::CancelIgnoredSentLate,
        "msc4140.cancellation.cancelled_event_is_never_sent",
        "cancelled event was sent anyway",
    ),
    (
        Fault::CancelIgnoredSentLate,
        "msc4140.cancellation.cancelled_event_leaves_listing",
        "still in the listing",
    ),
    (
        Fault::CancelIgnoredSentLate,
        "msc4140.cancellation.actions_on_cancelled_event",
        "actions on a cancelled delayed event",
    ),
    (
        Fault::CancelIgnoredSentLate,
        "msc4140.listing.excludes_sent_and_cancelled",
        "which was cancelled",
    ),
    (
        Fault::CancelIgnoredSentLate,
        "msc4140.persistence.listing_and_management_after_restart",
        "cancelled event is still listed",
    ),
    (
        Fault::CancelIgnoredSentLate,
        "msc4140.limits.cancel_frees_a_slot",
        "still refused",
    ),
    // Caught only because the restart round settles before any case touches the API.
    (
        Fault::TimerStallsAfterRestart,
        "msc4140.persistence.overdue_events_sent_in_order",
        "never sent",
    ),
    (
        Fault::TimerStallsAfterRestart,
        "msc4140.persistence.scheduled_event_survives_restart",
        "never sent",
    ),
    (
        Fault::TimerStallsAfterRestart,
        "msc4140.persistence.exactly_once_across_restart_and_kill",
        "never sent",
    ),
];

/// Cases a fault legitimately makes inapplicable (it removes what they need).
/// Faults that take delayed events away altogether: every case that needs them skips ("not
/// offered") but those in EXPECTED.
const WITHOUT_FEATURE: &[Fault] = &[Fault::IgnoresDelay];

const EXPECTED_SKIPS: &[(Fault, &str)] = &[
    (
        Fault::CapabilityMissing,
        "msc4140.timing.burst_up_to_user_limit",
    ),
    (
        Fault::CapabilityMissing,
        "msc4140.capabilities.max_delay_matches_enforcement",
    ),
    (
        Fault::CapabilityMissing,
        "msc4140.limits.over_limit_is_refused",
    ),
    (
        Fault::CapabilityMissing,
        "msc4140.limits.retry_after_until_next_send",
    ),
    (
        Fault::CapabilityMissing,
        "msc4140.limits.cancel_frees_a_slot",
    ),
];

const CASE_TIMEOUT: Duration = Duration::from_secs(90);

/// Fault runs at once: enough to keep the test short, few enough that timing stays sharp on two
/// cores (each run is the whole catalogue, every case at once).
const PARALLEL_FAULT_RUNS: usize = 4;

/// Runs the whole catalogue against fakes started with `options`: a restartable one for most
/// cases, and one with rate limits on for the cases that need a server's normal limits.
async fn run_catalogue(options: FakeOptions) -> Vec<CaseReport> {
    let main = FakeTarget::start(options.clone()).await;
    let rate_limited = FakeTarget::start(FakeOptions {
        rate_limits: true,
        ..options
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
    let targets = Targets::single(env(main).await, Ok(env(rate_limited).await));
    run_concurrently(&targets, catalogue(), CASE_TIMEOUT).await
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

fn describe(report: &CaseReport) -> String {
    format!(
        "{} → {:?}: {}",
        report.id,
        report.outcome,
        report.message.as_deref().unwrap_or("")
    )
}

/// Without a restartable target or rate-limited twin, those cases skip; every other one passes.
fn assert_all_pass_or_skip(reports: &[CaseReport], what: &str) {
    let bad: Vec<String> = reports
        .iter()
        .filter(|r| {
            !(r.outcome == Outcome::Pass
                || (r.outcome == Outcome::Skip
                    && (r.area == "persistence" || r.area == "rate_limits")))
        })
        .map(describe)
        .collect();
    assert!(
        bad.is_empty(),
        "against the {what}, every case must pass:\n{}",
        bad.join("\n")
    );
}

fn assert_all_pass(reports: &[CaseReport], what: &str) {
    let bad: Vec<String> = reports
        .iter()
        .filter(|r| r.outcome != Outcome::Pass)
        .map(describe)
        .collect();
    assert!(
        bad.is_empty(),
        "against the {what}, every case must pass:\n{}",
        bad.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catalogue_passes_against_a_correct_server() {
    assert_all_pass(
        &run_catalogue(FakeOptions::default()).await,
        "correct fake (dedicated endpoint)",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catalogue_passes_with_query_param_scheduling_and_open_registration() {
    let options = FakeOptions {
        dedicated_endpoint: false,
        ..FakeOptions::default()
    };
    let reports = run_catalogue_with_open_registration(options).await;
    assert_all_pass_or_skip(
        &reports,
        "correct fake (query-parameter scheduling, open registration)",
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_fault_fails_exactly_the_cases_it_concerns() {
    // DEC_SELFTEST_FAULTS=NameA,NameB runs only those faults (quicker while writing a case).
    let only: Option<Vec<String>> = std::env::var("DEC_SELFTEST_FAULTS")
        .ok()
        .map(|list| list.split(',').map(|s| s.trim().to_string()).collect());
    let mut expected: BTreeMap<Fault, BTreeMap<&str, &str>> = BTreeMap::new();
    for (fault, case, phrase) in EXPECTED {
        if only
            .as_ref()
            .is_some_and(|o| !o.contains(&format!("{fault:?}")))
        {
            continue;
        }
        expected.entry(*fault).or_default().insert(case, phrase);
    }
    let runs: Vec<(Fault, Vec<CaseReport>)> = futures::stream::iter(expected.keys().copied())
        .map(|fault| async move { (fault, run_catalogue(with_faults(&[fault])).await) })
        .buffer_unordered(PARALLEL_FAULT_RUNS)
        .collect()
        .await;
    let mut problems = Vec::new();
    for (fault, reports) in runs {
        let wanted = &expected[&fault];
        for report in &reports {
            match (wanted.get(report.id.as_str()), report.outcome) {
                (Some(phrase), Outcome::Fail) => {
                    let message = report.message.as_deref().unwrap_or("");
                    if !message.contains(phrase) {
                        problems.push(format!(
                            "{fault:?}: {} failed without naming '{phrase}': {message}",
                            report.id
                        ));
                    }
                }
                (Some(_), _) => {
                    problems.push(format!("{fault:?} should fail {}", describe(report)))
                }
                (None, Outcome::Pass) => {}
                (None, Outcome::Skip) if EXPECTED_SKIPS.contains(&(fault, report.id.as_str())) => {}
                (None, Outcome::Skip)
                    if WITHOUT_FEATURE.contains(&fault)
                        && report
                            .message
                            .as_deref()
                            .is_some_and(|m| m.starts_with("delayed events are not offered")) => {}
                (None, _) => problems.push(format!(
                    "{fault:?} should leave {} passing",
                    describe(report)
                )),
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn every_case_has_a_fault_that_fails_it() {
    let covered: BTreeSet<&str> = EXPECTED.iter().map(|(_, case, _)| *case).collect();
    let ids: BTreeSet<&str> = catalogue().iter().map(|c| c.id).collect();
    let uncovered: Vec<&&str> = ids.difference(&covered).collect();
    assert!(
        uncovered.is_empty(),
        "cases without a self-test fault: {uncovered:?}"
    );
    let unknown: Vec<&&str> = covered.difference(&ids).collect();
    assert!(
        unknown.is_empty(),
        "self-test entries for cases that do not exist: {unknown:?}"
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
