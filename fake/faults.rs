//! The faults: each one deliberate deviation from correct behaviour, breaking one requirement.
//!
//! Beside each fault's doc: the cases it must make fail, each with a phrase the failure message
//! must contain (`tests/selftest.rs` runs the catalogue per fault and checks them with
//! `support::fault_matrix`), and the cases it may leave skipped.

use crate::declare_faults;

declare_faults! {
    /// One deliberate deviation from correct behaviour. Each breaks exactly one requirement.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Fault {
        /// The timer sends 200 ms before the due time (half the delay for shorter delays);
        /// `origin_server_ts` is the actual (early) send time.
        SendEarly {
            breaks: [
                "msc4140.timing.message_not_sent_early" => "sent before its delay",
                "msc4140.timing.state_not_sent_early" => "sent before its delay",
                "msc4140.restart.moves_send_time" => "before its delay",
                "msc4140.restart.sent_after_heartbeat_stops" => "before its delay",
                "msc4140.timing.burst_up_to_user_limit" => "sent before its delay",
                "msc4140.timing.many_users_due_together" => "sent before its delay",
                "msc4140.cancellation.retried_actions_leave_others_alone"
                    => "sent before its delay",
                "msc4140.use_cases.call_of_many" => "before its delay",
                "msc4140.state_overwrite.earlier_state_does_not_cancel" => "sent before its delay",
                "msc4140.use_cases.delayed_kick" => "sent before its delay",
                "msc4140.use_cases.scheduled_reminder" => "sent before its delay",
                "msc4140.persistence.scheduled_event_survives_restart" => "sent before its delay",
                "msc4140.persistence.exactly_once_across_restart_and_kill"
                    => "sent before its delay",
                "msc4140.use_cases.matrixrtc_last_will" => "before its delay",
                "msc4140.use_cases.self_destructing_message" => "sent before its delay",
                "msc4140.listing.lookup_after_timer_sent" => "which says it was sent manually",
            ],
        },
        /// A server that never heard of MSC4140: the delay query parameter is ignored (the event is
        /// sent at once, answered with its `event_id`), the delayed-events endpoints are unknown
        /// (404 `M_UNRECOGNIZED`), and neither `/versions` nor `/capabilities` mention the feature.
        IgnoresDelay {
            breaks: [
                "msc4140.timing.delay_never_ignored"
                    => "ignored the delay and sent the event at once",
            ],
            // It takes delayed events away: every other case skips as "not offered".
            skips: Skips::NotOffered,
        },
        /// Sent on time, but `origin_server_ts` claims due time + 40 s.
        LateTimestamp {
            breaks: [
                "msc4140.timing.message_sent_within_allowance" => "may add at most",
                "msc4140.timing.state_sent_within_allowance" => "may add at most",
                "msc4140.cancellation.retried_actions_leave_others_alone" => "may add at most",
                "msc4140.use_cases.call_of_many" => "may add at most",
            ],
        },
        /// `cancel` answers 200 but changes nothing: the event is still sent at its time.
        IgnoreCancel {
            breaks: [
                "msc4140.unstable_prefix.stable_endpoints_once_advertised" => "did not cancel it",
                "msc4140.cancellation.cancelled_event_is_never_sent"
                    => "cancelled event was sent anyway",
                "msc4140.cancellation.cancelled_event_leaves_listing" => "still in the listing",
                "msc4140.cancellation.actions_on_cancelled_event"
                    => "actions on a cancelled delayed event",
                "msc4140.listing.excludes_sent_and_cancelled" => "which was cancelled",
                "msc4140.persistence.listing_and_management_after_restart"
                    => "cancelled event is still listed",
                "msc4140.limits.cancel_frees_a_slot" => "still refused",
                "msc4140.listing.lookup_after_cancel" => "still scheduled",
            ],
        },
        /// `cancel` works (never sent, lookup says cancelled) but the event stays in the listing.
        CancelKeepsListing {
            breaks: [
                "msc4140.unstable_prefix.stable_endpoints_once_advertised" => "did not cancel it",
                "msc4140.cancellation.cancelled_event_leaves_listing" => "still in the listing",
                "msc4140.listing.excludes_sent_and_cancelled" => "which was cancelled",
                "msc4140.persistence.listing_and_management_after_restart"
                    => "cancelled event is still listed",
            ],
        },
        /// `cancel` answers 200 but changes nothing, and the timer then sends the event
        /// [`IGNORED_CANCEL_LATE_BY_MS`](super::delayed::IGNORED_CANCEL_LATE_BY_MS) after its due
        /// time: within the 30 s a server may add, and after events due just after it.
        CancelIgnoredSentLate {
            breaks: [
                "msc4140.unstable_prefix.stable_endpoints_once_advertised" => "did not cancel it",
                // The first is caught only because "never sent" waits while the event is still
                // listed.
                "msc4140.cancellation.cancelled_event_is_never_sent"
                    => "cancelled event was sent anyway",
                "msc4140.cancellation.cancelled_event_leaves_listing" => "still in the listing",
                "msc4140.cancellation.actions_on_cancelled_event"
                    => "actions on a cancelled delayed event",
                "msc4140.listing.excludes_sent_and_cancelled" => "which was cancelled",
                "msc4140.persistence.listing_and_management_after_restart"
                    => "cancelled event is still listed",
                "msc4140.limits.cancel_frees_a_slot" => "still refused",
                "msc4140.listing.lookup_after_cancel" => "still scheduled",
            ],
        },
        /// `send` answers 200 but the event stays scheduled and is sent at its due time.
        SendActionNoop {
            breaks: [
                "msc4140.send_now.sends_immediately" => "did not arrive",
                "msc4140.send_now.keeps_type_content_and_state_key" => "did not arrive",
                "msc4140.cancellation.actions_on_sent_event" => "did not send the event",
                "msc4140.listing.excludes_sent_and_cancelled" => "sent by the send action",
                "msc4140.power_levels.send_action_answers_like_a_plain_send"
                    => "as a plain send would",
                "msc4140.power_levels.refused_send_keeps_event_scheduled"
                    => "should have been refused",
                "msc4140.persistence.listing_and_management_after_restart" => "did not arrive",
                "msc4140.content.unchanged_when_sent" => "did not arrive",
                "msc4140.unsigned.delay_id_after_send_action" => "did not arrive",
                "msc4140.listing.lookup_after_send_action" => "did not send the event",
            ],
        },
        /// `send` sends now, and the timer sends it a second time at its due time.
        SendActionTwice {
            breaks: [
                "msc4140.send_now.not_sent_again_by_timer" => "delivered 2 times",
            ],
        },
        /// `send` of a delayed state event sends it with state_key "" instead of its own.
        SendActionDropsStateKey {
            breaks: [
                "msc4140.send_now.keeps_type_content_and_state_key"
                    => "differs from the scheduled one",
            ],
        },
        /// `restart` answers 200 but the due time is unchanged.
        RestartNoop {
            breaks: [
                "msc4140.restart.moves_send_time" => "restart",
                "msc4140.restart.heartbeat_keeps_event_unsent" => "before its delay",
                "msc4140.deployment.heartbeats_survive_main_restart" => "a call member hung up",
                // The scheduling time every process reports never moves.
                "msc4140.deployment.lookups_agree_across_workers" => "after restarting it",
                // Sent while restarted (a loaded machine's slow heartbeat), or the unmoved time
                // reported.
                "msc4140.restart.sent_after_heartbeat_stops" => "successful restart",
                // Caught by the reported time that did not move, or (if late) by the early hang-up.
                "msc4140.use_cases.call_of_many" => "successful restart",
                "msc4140.rate_limits.heartbeats_behind_one_address"
                    => "heartbeat (restart) of a scheduled event failed",
                "msc4140.use_cases.matrixrtc_last_will" => "before its delay",
                "msc4140.listing.scheduling_time_is_when_timer_started"
                    => "after a successful restart",
                "msc4140.listing.in_send_time_order_after_restart"
                    => "not in the order of the new send times",
            ],
        },
        /// The listing shows every user's scheduled events.
        ListingLeaksOthers {
            breaks: [
                "msc4140.errors.endpoint_missing_delay_ms" => "was refused, yet the user now has",
                "msc4140.errors.endpoint_missing_content" => "was refused, yet the user now has",
                "msc4140.errors.endpoint_state_key_not_a_string" => "was refused, yet the user now has",
                "msc4140.errors.endpoint_without_body" => "was refused, yet the user now has",
                "msc4140.listing.excludes_other_users" => "shows alice's scheduled event",
            ],
        },
        /// The listing also shows finalised (sent, cancelled, failed) events.
        ListingIncludesFinalised {
            breaks: [
                "msc4140.rate_limits.refused_at_send_time_not_lost" => "still scheduled",
                "msc4140.unstable_prefix.stable_endpoints_once_advertised" => "did not cancel it",
                "msc4140.listing.excludes_sent_and_cancelled" => "still shows event",
                "msc4140.cancellation.cancelled_event_leaves_listing" => "still in the listing",
                "msc4140.persistence.listing_and_management_after_restart"
                    => "cancelled event is still listed",
                "msc4140.power_levels.demoted_before_delay_is_not_sent"
                    => "still listed as scheduled",
                "msc4140.state_overwrite.other_users_state_cancels" => "still listed as scheduled",
            ],
        },
        /// The listing is in reverse due order.
        ListingUnsorted {
            breaks: [
                "msc4140.listing.in_send_time_order" => "not in order of send time",
                "msc4140.listing.in_send_time_order_after_restart"
                    => "not in the order of the new send times",
            ],
        },
        /// The listing is in the order of the send times the events were first scheduled with,
        /// whatever restarts moved them since (though the timer and the reported times follow
        /// the restarts).
        ListingOrderIgnoresRestart {
            breaks: [
                "msc4140.listing.in_send_time_order_after_restart"
                    => "not in the order of the new send times",
            ],
        },
        /// The listing gives a restarted event `finalised_ts` (the restart's time), a field of
        /// finalised events only.
        ListingMarksRestartFinalised {
            breaks: [
                "msc4140.listing.restarted_entries_lack_finalised_fields"
                    => "a field of finalised events",
            ],
        },
        /// Listing and single lookup answer 200 without a token, as the first registered user.
        ListingWithoutAuth {
            breaks: [
                "msc4140.listing.requires_access_token" => "without an access token",
                "msc4140.auth.rules_on_each_prefix" => "without an access token",
            ],
        },
        /// Listing items lack `content`.
        ListingDropsContent {
            breaks: [
                "msc4140.listing.entries_have_revision_fields" => "content is not the scheduled",
                "msc4140.persistence.listing_and_management_after_restart"
                    => "lacks the scheduled event",
                "msc4140.content.unchanged_in_listing_and_lookup" => "the listing has no content",
            ],
        },
        /// Single lookup of another user's delay_id answers 200 with its details.
        SingleLookupLeaks {
            breaks: [
                "msc4140.listing.single_lookup_other_users_event" => "another user looking up",
                "msc4140.auth.rules_on_each_prefix" => "another user looking up",
            ],
        },
        /// Single lookup `GET .../delayed_events/{delay_id}` is not offered (404 M_UNRECOGNIZED).
        SingleLookupMissing {
            // Declares no case (the matrix does not run it): the single lookup is new in 2026-07,
            // and the cases that need it skip where it is not offered (`Need::SingleLookup`).
            breaks: [],
        },
        /// Scheduling with a used transaction id schedules a second event with a new delay_id.
        IdempotencyBroken {
            breaks: [
                "msc4140.idempotency.same_txn_same_delay_id" => "gave a new delay_id",
                "msc4140.idempotency.same_txn_schedules_once" => "sent the event 2 times",
            ],
        },
        /// A transaction id is scoped to the user rather than the device: the same one from the
        /// user's other login is answered as a retry (the first request's answer, nothing new).
        TxnScopedToUser {
            breaks: [
                "msc4140.idempotency.same_txn_other_device_schedules_anew"
                    => "answered with the first request's delay_id",
            ],
        },
        /// A transaction id is scoped to the whole server: the same one from anyone on the same
        /// path is answered as a retry.
        TxnScopedToServer {
            breaks: [
                "msc4140.idempotency.same_txn_other_device_schedules_anew"
                    => "answered with the first request's delay_id",
                "msc4140.idempotency.same_txn_other_user_schedules_anew"
                    => "answered with the first request's delay_id",
            ],
        },
        /// A negative delay is accepted (and sent at the next request).
        AcceptNegativeDelay {
            breaks: [
                "msc4140.errors.negative_delay" => "negative delay",
            ],
        },
        /// A delay of 0 gives 500 M_UNKNOWN instead of 400 M_INVALID_PARAM.
        ZeroDelayServerError {
            breaks: [
                "msc4140.errors.zero_delay" => "zero delay",
            ],
        },
        /// A non-integer delay (1.5, "abc", "1000" as a JSON string) is scheduled with 1000 ms.
        AcceptNonIntegerDelay {
            breaks: [
                "msc4140.errors.non_integer_delay" => "non-integer delay",
            ],
        },
        /// A delay above max_delay_ms is accepted.
        OverMaxAccepted {
            breaks: [
                "msc4140.errors.delay_over_maximum" => "over the maximum",
                "msc4140.capabilities.max_delay_matches_enforcement" => "should be refused",
            ],
        },
        /// A delay above max_delay_ms is refused with 400 M_INVALID_PARAM: no revision's errcode.
        OverMaxWrongErrcode {
            breaks: [
                "msc4140.errors.delay_over_maximum" => "M_DELAY_TOO_LARGE",
            ],
        },
        /// Management of an unknown delay_id answers 400 M_UNKNOWN instead of 404 M_NOT_FOUND.
        UnknownDelayIdWrongError {
            breaks: [
                "msc4140.errors.unknown_delay_id_send" => "unknown delay_id",
                "msc4140.errors.unknown_delay_id_cancel" => "unknown delay_id",
                "msc4140.errors.unknown_delay_id_restart" => "unknown delay_id",
                "msc4140.errors.unknown_delay_id_lookup" => "unknown delay_id",
            ],
        },
        /// The dedicated scheduling endpoint schedules a body without `delay_ms` with 1000 ms.
        EndpointMissingDelayDefaulted {
            breaks: [
                "msc4140.errors.endpoint_missing_delay_ms" => "without delay_ms",
            ],
        },
        /// The dedicated scheduling endpoint schedules a body without `content` with `{}`.
        EndpointMissingContentDefaulted {
            breaks: [
                "msc4140.errors.endpoint_missing_content" => "without content",
            ],
        },
        /// The dedicated scheduling endpoint takes a `state_key` that is not a string as its JSON
        /// text.
        EndpointStateKeyCoerced {
            breaks: [
                "msc4140.errors.endpoint_state_key_not_a_string" => "state_key that is a number",
            ],
        },
        /// A request without a body to the dedicated scheduling endpoint or to body-form
        /// management answers 500 `M_UNKNOWN`.
        EmptyBodyServerError {
            breaks: [
                "msc4140.errors.endpoint_without_body" => "no body at all",
                "msc4140.errors.body_form_without_body" => "no body at all",
            ],
        },
        /// Body-form management with a missing, non-string or unknown action answers 200 {}.
        BodyActionUnvalidated {
            breaks: [
                "msc4140.errors.body_form_missing_action" => "no action",
                "msc4140.errors.body_form_unknown_action" => "unknown action",
                "msc4140.errors.body_form_malformed_action" => "non-string action",
            ],
        },
        /// A malformed JSON body on management or scheduling is treated as `{}` instead of
        /// M_NOT_JSON.
        MalformedJsonAccepted {
            breaks: [
                "msc4140.errors.body_form_malformed_json" => "malformed JSON",
                "msc4140.errors.malformed_json_scheduling" => "malformed JSON",
            ],
        },
        /// Scheduling into an unknown room answers 200 with a delay_id (it fails at send time).
        UnknownRoomAccepted {
            breaks: [
                "msc4140.errors.unknown_room" => "room that does not exist",
            ],
        },
        /// Non-object content is scheduled instead of 400 M_BAD_JSON.
        InvalidContentAccepted {
            breaks: [
                "msc4140.errors.invalid_content" => "not an object",
            ],
        },

        // --- shapes no revision gives (the merged text's are accepted: `merged_shapes`) ----------
        /// Non-object content gets 400 `M_UNKNOWN`: none of `M_BAD_JSON`, `M_NOT_JSON`,
        /// `M_INVALID_PARAM`.
        InvalidContentWrongErrcode {
            breaks: [
                "msc4140.errors.invalid_content" => "not an object",
            ],
        },
        /// Listing and lookup entries give the delay as `delay_millis`: neither `delay_ms` nor
        /// `delay`.
        ListingFieldsUnknown {
            breaks: [
                "msc4140.listing.entries_have_revision_fields" => "has neither",
                "msc4140.listing.single_lookup_own_event" => "lacks the delay",
                "msc4140.listing.lookup_after_timer_sent" => "lacks its delay or scheduling time",
                "msc4140.listing.lookup_after_send_action" => "lacks its delay or scheduling time",
                "msc4140.listing.lookup_after_cancel" => "lacks its delay or scheduling time",
            ],
        },
        /// A finalised event's lookup gives its outcome as `status` ("sent", "failed",
        /// "cancelled"), with no `finalised_ts`, `event_id` or `error`, flat or nested.
        FinalisedOutcomeUnreadable {
            breaks: [
                "msc4140.rate_limits.refused_at_send_time_not_lost" => "vanished",
                "msc4140.listing.lookup_after_timer_sent" => "still scheduled",
                "msc4140.listing.lookup_after_send_action" => "still scheduled",
                "msc4140.listing.lookup_after_cancel" => "still scheduled",
                "msc4140.power_levels.demoted_before_delay_is_not_sent" => "still scheduled",
            ],
        },
        /// The lookup of a sent event gives an `event_id` other than the one it was sent as.
        LookupEventIdWrong {
            breaks: [
                "msc4140.listing.lookup_after_timer_sent" => "arrived over /sync as",
                "msc4140.listing.lookup_after_send_action" => "arrived over /sync as",
            ],
        },
        /// A sent event's `finalised_ts` tells the wrong story: one sent by the send action is
        /// reported finalised at its due time, one sent by its timer at its scheduling time.
        FinalisedTsSwapped {
            breaks: [
                "msc4140.listing.lookup_after_timer_sent" => "which says it was sent manually",
                "msc4140.listing.lookup_after_send_action"
                    => "which says it was sent on its scheduled send time",
            ],
        },
        /// The lookup of a cancelled event carries an `error`, as if it had failed.
        CancelledLookupHasError {
            breaks: [
                "msc4140.listing.lookup_after_cancel" => "says it was failed",
            ],
        },
        /// A conflicting action on a finalised event gets 400 `M_UNKNOWN` instead of 409.
        ConflictWrongStatus {
            breaks: [
                "msc4140.cancellation.actions_on_cancelled_event"
                    => "actions on a cancelled delayed event",
                "msc4140.cancellation.actions_on_failed_event" => "failed to send",
            ],
        },
        /// An event that failed to send is treated as unknown by send and restart (404), and its
        /// retried cancel is refused with a conflict, as if failing were not being cancelled.
        ActionsOnFailedWrong {
            breaks: [
                "msc4140.cancellation.actions_on_failed_event" => "failed to send",
            ],
        },
        /// `/versions` lacks `org.matrix.msc4140` in `unstable_features`.
        NoVersionsFlag {
            breaks: [
                "msc4140.unstable_prefix.advertised_in_versions" => "org.matrix.msc4140",
            ],
            // Without the flags, the stable ones go too.
            skips: Skips::Cases(&["msc4140.unstable_prefix.stable_endpoints_once_advertised"]),
        },
        /// The capability says max_delay_ms, but delays above max_delay_ms - 1000 are rejected.
        CapabilityOverstatesMaxDelay {
            breaks: [
                "msc4140.capabilities.max_delay_matches_enforcement" => "should be accepted",
            ],
        },
        /// Sent delayed events never carry the delay_id in `unsigned`.
        UnsignedMissing {
            breaks: [
                "msc4140.unsigned.delay_id_for_sender_over_sync" => "over /sync, the sender's copy",
                "msc4140.unsigned.delay_id_for_sender_over_messages"
                    => "over /messages, the sender's copy",
                "msc4140.unsigned.delay_id_on_state_events" => "the sender's copy",
                "msc4140.unsigned.delay_id_after_send_action" => "the sender's copy",
                "msc4140.unsigned.delay_id_over_event_and_context" => "the sender's copy",
            ],
        },
        /// The delay_id in `unsigned` is shown to every user, not only the sender.
        UnsignedLeaked {
            breaks: [
                "msc4140.unsigned.delay_id_hidden_from_others" => "another user's copy",
                "msc4140.unsigned.delay_id_on_state_events" => "another user's copy",
                "msc4140.unsigned.delay_id_after_send_action" => "another user's copy",
                "msc4140.unsigned.delay_id_over_event_and_context" => "another user's copy",
            ],
        },
        /// Sent delayed *state* events never carry the delay_id in `unsigned`.
        UnsignedMissingOnState {
            breaks: [
                "msc4140.unsigned.delay_id_on_state_events"
                    => "over /sync, the sender's copy of the delayed state event",
            ],
        },
        /// Events sent by the `send` action never carry the delay_id in `unsigned` (those the
        /// timer sends do).
        UnsignedMissingAfterSendAction {
            breaks: [
                "msc4140.unsigned.delay_id_after_send_action"
                    => "the sender's copy of the event sent by the send action",
            ],
        },
        /// `GET /rooms/{roomId}/event/{eventId}` and `/context/{eventId}` never show the delay_id
        /// in `unsigned` (`/sync` and `/messages` do).
        UnsignedMissingOnEventLookups {
            breaks: [
                "msc4140.unsigned.delay_id_over_event_and_context"
                    => "over /event, the sender's copy",
            ],
        },
        /// The delay_id in `unsigned` is present over /sync but absent over /messages.
        UnsignedMissingInMessages {
            breaks: [
                "msc4140.unsigned.delay_id_for_sender_over_messages"
                    => "over /messages, the sender's copy",
            ],
        },
        /// `send` on a cancelled (or failed) event answers 200 and sends it.
        ActionsOnCancelledSucceed {
            breaks: [
                "msc4140.cancellation.actions_on_cancelled_event"
                    => "actions on a cancelled delayed event",
            ],
        },
        /// `cancel` on a sent event answers 200 {} (instead of 409) and does nothing.
        ActionsOnSentWrong {
            breaks: [
                "msc4140.cancellation.actions_on_sent_event" => "already sent by",
            ],
        },
        /// A newer state event from another user does not cancel a pending delayed state event.
        StateOverwriteIgnored {
            // Declares no case (the matrix does not run it): the 2025-12 and 2026-07 texts dropped
            // the overwrite rule (moved to Alternatives), so ignoring it is a revision's behaviour.
            breaks: [],
        },
        /// The owner's own newer state event cancels their pending delayed state event too.
        StateOverwriteBySelfCancels {
            breaks: [
                "msc4140.state_overwrite.own_state_does_not_cancel"
                    => "cancelled their delayed state event",
            ],
        },
        /// Power levels are checked at scheduling (403 there) instead of when the event is sent.
        PowerLevelsAtSchedule {
            breaks: [
                "msc4140.power_levels.promoted_before_delay_is_sent"
                    => "refused at scheduling time",
                "msc4140.power_levels.demoted_before_delay_is_not_sent" => "sent anyway",
                "msc4140.power_levels.send_action_answers_like_a_plain_send"
                    => "refused at scheduling time",
                "msc4140.power_levels.refused_send_keeps_event_scheduled"
                    => "refused at scheduling time",
            ],
        },
        /// No per-user limit on scheduled delayed events.
        LimitNotEnforced {
            breaks: [
                "msc4140.limits.over_limit_is_refused" => "not enforced",
                "msc4140.limits.retry_after_until_next_send" => "not enforced",
                "msc4140.limits.cancel_frees_a_slot" => "not enforced",
                "msc4140.limits.advertised_limit_is_enforced" => "not enforced",
                "msc4140.limits.limit_spans_rooms" => "not enforced",
                "msc4140.limits.sent_event_frees_a_slot" => "not enforced",
                "msc4140.limits.zero_limit_is_forbidden" => "limit is 0",
            ],
        },
        /// The per-user limit answers 429 without a `Retry-After` header.
        LimitWrongRetryAfter {
            breaks: [
                "msc4140.limits.retry_after_until_next_send" => "no Retry-After",
            ],
        },
        /// Scheduling (either form) without an access token schedules for the first registered user.
        SchedulingWithoutAuth {
            breaks: [
                "msc4140.auth.scheduling_without_token" => "without an access token",
            ],
        },
        /// Under the unstable prefix only, the listing and the single lookup answer without a
        /// token (as the first registered user); the stable prefix asks for one.
        UnstablePrefixListsWithoutToken {
            breaks: [
                "msc4140.auth.rules_on_each_prefix" => "under the unstable prefix",
            ],
        },
        /// `/versions` advertises `org.matrix.msc4140.stable`, but the stable endpoints are not
        /// served (404 `M_UNRECOGNIZED`, `?delay=` ignored).
        StableAdvertisedNotServed {
            breaks: [
                "msc4140.unstable_prefix.stable_endpoints_once_advertised"
                    => "advertises org.matrix.msc4140.stable",
            ],
            // With one prefix served, the per-prefix case has nothing to compare.
            skips: Skips::Cases(&["msc4140.auth.rules_on_each_prefix"]),
        },
        /// Management works without a token and on other users' delay_ids (the 2025-12 text).
        MgmtWithoutAuth {
            // Declares no case (the matrix does not run it): this is the 2025-12 text's behaviour,
            // which the auth cases accept as that revision's.
            breaks: [],
        },
        /// `send` of an event its owner may not send answers 200 and sends it anyway.
        SendActionIgnoresPermissions {
            breaks: [
                "msc4140.power_levels.send_action_answers_like_a_plain_send"
                    => "as a plain send would",
                "msc4140.power_levels.refused_send_keeps_event_scheduled"
                    => "should have been refused",
            ],
        },
        /// The single lookup answers without `content`.
        SingleLookupDropsContent {
            breaks: [
                "msc4140.listing.single_lookup_own_event" => "content is not the scheduled",
                "msc4140.content.unchanged_in_listing_and_lookup"
                    => "the single-item lookup has no content",
            ],
        },
        /// Management without a token, or of another user's delay_id, answers 400 M_UNKNOWN:
        /// neither the refusal of 2024-10 and 2026-07 nor the delegation of 2025-12.
        MgmtAuthWrongError {
            breaks: [
                "msc4140.auth.management_without_token" => "should be refused",
                "msc4140.auth.management_by_another_user" => "should be refused",
                "msc4140.auth.rules_on_each_prefix" => "should be refused",
            ],
        },
        /// The split form answers 200 {} to an unknown action path and does nothing.
        SplitUnknownActionAccepted {
            breaks: [
                "msc4140.errors.split_path_unknown_action" => "unknown action path",
            ],
        },
        /// `/capabilities` has no delayed-events capability.
        CapabilityMissing {
            breaks: [
                "msc4140.capabilities.advertised" => "has neither",
            ],
            // Cases that need the capability's figures skip without it.
            skips: Skips::Cases(&[
                "msc4140.timing.burst_up_to_user_limit",
                "msc4140.capabilities.max_delay_matches_enforcement",
                "msc4140.limits.over_limit_is_refused",
                "msc4140.limits.retry_after_until_next_send",
                "msc4140.limits.cancel_frees_a_slot",
                "msc4140.limits.advertised_limit_is_enforced",
                "msc4140.limits.limit_spans_rooms",
                "msc4140.limits.sent_event_frees_a_slot",
                "msc4140.limits.zero_limit_is_forbidden",
            ]),
        },

        // --- homeserver restart (through `FakeTarget::restart`) ----------------------------------
        /// A restart drops every scheduled delayed event: never sent, unknown to lookups
        /// afterwards.
        LosesEventsOnRestart {
            breaks: [
                "msc4140.persistence.scheduled_event_survives_restart" => "never sent",
                "msc4140.persistence.listing_and_management_after_restart"
                    => "lacks the scheduled event",
                "msc4140.persistence.exactly_once_across_restart_and_kill" => "never sent",
                "msc4140.persistence.overdue_events_sent_in_order" => "never sent",
            ],
        },
        /// Events that fell due while the server was down are sent at start-up in reverse due
        /// order.
        OverdueOutOfOrder {
            breaks: [
                "msc4140.persistence.overdue_events_sent_in_order"
                    => "not sent in the order of their send times",
            ],
        },
        /// Events that fell due while the server was down are never sent (they stay listed as
        /// scheduled); events due after the restart are still sent.
        OverdueNotSent {
            breaks: [
                "msc4140.persistence.overdue_events_sent_in_order" => "never sent",
                "msc4140.persistence.exactly_once_across_restart_and_kill" => "never sent",
            ],
        },
        /// After a restart the listing answers `[]`, though events stay scheduled and are sent.
        ListingEmptyAfterRestart {
            breaks: [
                "msc4140.persistence.listing_and_management_after_restart"
                    => "lacks the scheduled event",
            ],
        },
        /// Coming back from a restart, the server sends again every delayed event it had sent
        /// before (the record of having sent them was lost).
        ResendsSentAfterRestart {
            breaks: [
                "msc4140.persistence.exactly_once_across_restart_and_kill"
                    => "sent before the clean restart was delivered 2 times",
            ],
        },
        /// After a hard kill (`FakeTarget::kill`), the events that fell due while it was down are
        /// each sent twice.
        OverdueTwiceAfterKill {
            breaks: [
                "msc4140.persistence.exactly_once_across_restart_and_kill"
                    => "due while the homeserver was killed was delivered 2 times",
            ],
        },
        /// Played as a deployment with workers: while only the main process restarts
        /// (`FakeTarget::cycle_one`), management requests answer 502 (the workers cannot reach
        /// it), so heartbeats fail and the timer sends the leaves once main is back.
        ManagementNeedsMain {
            breaks: [
                "msc4140.deployment.heartbeats_survive_main_restart" => "a call member hung up",
            ],
        },
        /// Played as a deployment with workers: a worker killed alone
        /// (`FakeTarget::cycle_one("worker1", kill)`) takes the delayed events it scheduled
        /// with it: they are never sent.
        KilledWorkerForgetsScheduled {
            breaks: [
                "msc4140.deployment.scheduled_on_worker_sent_once" => "was killed meanwhile was never sent",
            ],
        },
        /// Played as a deployment with workers: after the main process is killed alone, it
        /// sends once more what it sent in the 10 s before (the record of having sent them was
        /// lost with it).
        MainCrashResendsRecent {
            breaks: [
                "msc4140.deployment.crash_of_sending_process_sends_once" => "2 copies",
            ],
        },

        /// After a restart the timer stands still (neither the overdue events nor later ones are
        /// sent, whatever requests such as `/sync` come in) until the first delayed-events API
        /// request arrives, from anyone.
        TimerStallsAfterRestart {
            breaks: [
                // Caught only because the restart round settles before any case touches the API.
                "msc4140.persistence.overdue_events_sent_in_order" => "never sent",
                "msc4140.persistence.scheduled_event_survives_restart" => "never sent",
                "msc4140.persistence.exactly_once_across_restart_and_kill" => "never sent",
            ],
        },

        // --- rate limits (only with `FakeOptions::rate_limits`) ----------------------------------
        /// Management actions (both forms) are never rate-limited.
        MgmtNotRateLimited {
            breaks: [
                "msc4140.rate_limits.management_is_rate_limited" => "without a rate limit",
                "msc4140.rate_limits.send_action_limited_per_user" => "without a rate limit",
            ],
        },
        /// Lookups (listing and single lookup) are never rate-limited.
        LookupsNotRateLimited {
            breaks: [
                "msc4140.rate_limits.lookups_are_rate_limited" => "without a rate limit",
            ],
        },

        // --- guests and deactivated accounts -----------------------------------------------------
        /// Every delayed-event endpoint answers 403 `M_GUEST_ACCESS_FORBIDDEN` to guest accounts.
        GuestsRefused {
            breaks: [
                "msc4140.auth.guests_can_use_delayed_events"
                    => "guest's scheduling request was refused",
            ],
        },
        /// Deactivation leaves the user's delayed events scheduled, and they are sent at their time
        /// without any authorisation check (though their owner has left every room).
        DeactivatedStillSends {
            breaks: [
                "msc4140.auth.deactivated_account_events_not_sent" => "sent anyway",
            ],
        },

        // --- state overwrite (the 2024-10 rule) --------------------------------------------------
        /// Another user's newer state event cancels delayed state events of the same type in the
        /// room whatever their state_key, and those with the same (type, state_key) in other rooms;
        /// another user's message event cancels delayed message events of the same type in the
        /// room.
        StateOverwriteTooBroad {
            breaks: [
                "msc4140.timing.many_users_due_together" => "never sent",
                "msc4140.use_cases.call_of_many"
                    => "restarting a scheduled event that has not been sent was refused",
                "msc4140.state_overwrite.unrelated_events_do_not_cancel"
                    => "cancelled a delayed event",
            ],
        },
        /// A state overwrite cancels the delayed event (never sent), but it stays in the listing.
        StateOverwriteCancelsButListed {
            breaks: [
                "msc4140.state_overwrite.other_users_state_cancels" => "still listed as scheduled",
            ],
        },
        /// The 2024-10 overwrite rule applies, but only [`OVERWRITE_LAG_MS`] after the newer state
        /// event was accepted (as a server that processes state changes in the background, behind).
        StateOverwriteLate {
            breaks: [
                "msc4140.state_overwrite.other_users_state_cancels" => "late cancellation",
            ],
        },
        /// The 2024-10 overwrite rule applies in the background, [`BACKGROUND_LAG_MS`] after the
        /// newer state event was accepted (well within a short delay), to every delayed event still
        /// scheduled then: also to one scheduled after the state change was answered, which a
        /// correct server never cancels (the ordering race of a server that processes state late).
        StateOverwriteProcessedLate {
            breaks: [
                "msc4140.state_overwrite.earlier_state_does_not_cancel"
                    => "that the server had already answered with 200",
            ],
        },

        // --- permissions at send time ------------------------------------------------------------
        /// A `send` action refused for lack of permission finalises the event (failed) instead of
        /// keeping it scheduled.
        SendActionFailureFinalises {
            breaks: [
                "msc4140.power_levels.refused_send_keeps_event_scheduled" => "no longer scheduled",
            ],
        },
        /// Delayed events of a user who left or was kicked from the room are sent anyway.
        LeftMemberStillSends {
            breaks: [
                "msc4140.power_levels.member_who_left_is_not_sent" => "sent anyway",
                "msc4140.power_levels.kicked_member_is_not_sent" => "sent anyway",
                "msc4140.cancellation.actions_on_failed_event" => "was sent anyway",
            ],
        },

        // --- field scenarios ---------------------------------------------------------------------
        /// The timer sends at most [`BURST_CAPACITY`] events of one room within
        /// [`BURST_WINDOW_MS`]; the rest of a burst is forgotten (never sent, still listed).
        BurstDropsExcess {
            breaks: [
                "msc4140.rate_limits.refused_at_send_time_not_lost" => "still scheduled",
                "msc4140.timing.burst_up_to_user_limit" => "never sent",
                "msc4140.timing.many_users_due_together" => "never sent",
                "msc4140.state_overwrite.earlier_state_does_not_cancel" => "never sent",
            ],
        },
        /// Any management action on a finalised (sent or cancelled) event also cancels every other
        /// scheduled event of its owner.
        ActionOnFinalisedCancelsOthers {
            breaks: [
                "msc4140.cancellation.retried_actions_leave_others_alone" => "no longer listed",
            ],
        },
        /// A `restart` re-arms every scheduled delayed event in the room, whoever owns it.
        RestartRearmsWholeRoom {
            breaks: [
                "msc4140.use_cases.call_of_many" => "never sent",
                // The others' send times moved with the restarted one's.
                "msc4140.listing.in_send_time_order_after_restart"
                    => "not in the order of the new send times",
            ],
        },
        /// The management rate limit (with `FakeOptions::rate_limits`) counts every user's actions
        /// in one bucket, as a limit per client address would for users behind one address.
        MgmtRateLimitPerAddress {
            breaks: [
                "msc4140.rate_limits.heartbeats_behind_one_address" => "were refused",
                "msc4140.rate_limits.send_action_limited_per_user" => "per address, not per user",
            ],
        },
        /// Scheduling (with `FakeOptions::rate_limits`) is never rate-limited.
        SchedulingNotRateLimited {
            breaks: [
                "msc4140.rate_limits.scheduling_limited_per_user" => "without a rate limit",
            ],
        },
        /// The scheduling rate limit (with `FakeOptions::rate_limits`) counts the requests of
        /// users behind one address in one bucket. Every case reaches the fake from the one
        /// address, so the fake shares the bucket only among the users of one room, which keeps
        /// the fault to the case that looks for it.
        SchedulingRateLimitPerAddress {
            breaks: [
                "msc4140.rate_limits.scheduling_limited_per_user" => "per address, not per user",
            ],
        },
        /// A timer send refused by the owner's message rate limit loses the event: not sent, not
        /// scheduled, and its lookup answers 404 (Synapse #18021).
        SendRefusalVanishes {
            breaks: [
                "msc4140.rate_limits.refused_at_send_time_not_lost" => "vanished",
            ],
        },
        /// A timer send refused by the owner's message rate limit is sent anyway and then once
        /// more by a retry.
        SendRefusalDuplicates {
            breaks: [
                "msc4140.rate_limits.refused_at_send_time_not_lost" => "duplicate",
            ],
        },
        /// A restart that arrives less than [`SLOW_RESTART_WITHIN_MS`] before its event is due is
        /// handled too slowly: the timer sends the event at its time meanwhile, and the restart is
        /// answered [`SLOW_RESTART_ANSWER_AFTER_DUE_MS`] after that, as for a sent event (409). A
        /// server too busy to heed a heartbeat that reached it in time.
        RestartTooSlow {
            breaks: [
                "msc4140.rate_limits.heartbeats_behind_one_address"
                    => "though the harness sent it in time",
                "msc4140.restart.moves_send_time" => "was refused",
                "msc4140.restart.heartbeat_keeps_event_unsent" => "was refused",
                "msc4140.deployment.heartbeats_survive_main_restart" => "a call member hung up",
                "msc4140.restart.sent_after_heartbeat_stops" => "was refused",
                "msc4140.use_cases.matrixrtc_last_will" => "was refused",
                "msc4140.use_cases.call_of_many" => "was refused",
            ],
        },

        // --- per-user limit ----------------------------------------------------------------------
        /// Cancelled delayed events still count against the per-user limit.
        LimitNotFreedByCancel {
            breaks: [
                "msc4140.limits.cancel_frees_a_slot" => "still refused",
            ],
        },
        /// Sent delayed events still count against the per-user limit.
        LimitNotFreedBySend {
            breaks: [
                "msc4140.limits.sent_event_frees_a_slot" => "still refused",
            ],
        },
        /// The per-user limit counts the user's scheduled events per room, not in all rooms.
        LimitPerRoom {
            breaks: [
                "msc4140.limits.limit_spans_rooms" => "in a room of its own",
            ],
        },
        /// The limit's 429 gives `retry_after_ms` as the negative wait wrapped around in 64 bits.
        LimitRetryAfterMsWrapped {
            breaks: [
                "msc4140.limits.retry_after_until_next_send" => "wrapped around",
            ],
        },
        /// The limit's `Retry-After` lists the wait of every counted event ("120, 600").
        LimitRetryAfterListed {
            breaks: [
                "msc4140.limits.retry_after_until_next_send" => "not one whole number",
            ],
        },
        /// Where the per-user limit is 0, scheduling answers 429 `M_LIMIT_EXCEEDED`, not 403.
        LimitZeroAnswersLimitExceeded {
            breaks: [
                "msc4140.limits.zero_limit_is_forbidden" => "limit is 0",
            ],
        },
        /// The limit's `Retry-After` is the time until the user's latest due event, not the
        /// earliest.
        LimitRetryAfterWrongValue {
            breaks: [
                "msc4140.limits.retry_after_until_next_send" => "next delayed event is due in",
            ],
        },

        // --- delay_id quality --------------------------------------------------------------------
        /// delay_ids are "1", "2", "3", ... (guessable).
        SequentialDelayIds {
            breaks: [
                "msc4140.auth.delay_ids_are_unguessable" => "bits of randomness",
            ],
        },
        /// A finalised (sent or cancelled) event's delay_id is handed out again to the next
        /// scheduled event, which then answers to it.
        ReusedDelayIds {
            breaks: [
                "msc4140.auth.delay_ids_are_unique" => "more than once",
            ],
        },

        // --- content of sent events --------------------------------------------------------------
        /// A delayed `m.room.redaction` is sent but redacts nothing.
        DelayedRedactionIgnored {
            breaks: [
                "msc4140.use_cases.self_destructing_message" => "should be redacted",
            ],
        },
        /// The event sent from a delayed event loses its content's `m.mentions`.
        DelayedContentMangled {
            breaks: [
                "msc4140.use_cases.scheduled_reminder" => "mention must be kept",
            ],
        },
        /// The listing and the single lookup report every non-ASCII character of a delayed
        /// event's content as `?` (text stored or read as ASCII); the event sent is intact.
        ListedContentMangled {
            breaks: [
                "msc4140.content.unchanged_in_listing_and_lookup"
                    => "the listing changed the content of the delayed event with non-ASCII text",
            ],
        },
        /// An event sent from a delayed event keeps at most
        /// [`TRUNCATED_TO_BYTES`](super::delayed::TRUNCATED_TO_BYTES) of each string in its
        /// content (a short column); the listing is intact.
        SentContentTruncated {
            breaks: [
                "msc4140.content.unchanged_when_sent" => "changed the content of the delayed event with a large body",
            ],
        },

        // --- answers to management actions -------------------------------------------------------
        /// A successful `send` action answers `{"event_id": ...}` instead of an empty object.
        ActionAnswerNotEmpty {
            breaks: [
                "msc4140.cancellation.actions_answer_empty_object"
                    => "should answer 200 with an empty object",
            ],
        },

        // --- reported scheduling times -----------------------------------------------------------
        /// The listing and the single lookup report `scheduled_at` [`REPORTED_AHEAD_MS`] later than
        /// the event was scheduled (or last restarted); the timer itself keeps the right time.
        ReportedTimeInFuture {
            breaks: [
                "msc4140.timing.message_not_sent_early" => "in the future",
                "msc4140.timing.state_not_sent_early" => "in the future",
                "msc4140.timing.message_sent_within_allowance" => "in the future",
                "msc4140.timing.state_sent_within_allowance" => "in the future",
                "msc4140.restart.moves_send_time" => "in the future",
                "msc4140.restart.sent_after_heartbeat_stops" => "in the future",
                "msc4140.listing.entries_have_revision_fields" => "in the future",
                "msc4140.listing.in_send_time_order" => "in the future",
                "msc4140.listing.excludes_other_users" => "in the future",
                "msc4140.listing.excludes_sent_and_cancelled" => "in the future",
                "msc4140.listing.single_lookup_own_event" => "in the future",
                "msc4140.listing.scheduling_time_is_when_timer_started" => "in the future",
                "msc4140.use_cases.matrixrtc_last_will" => "in the future",
                "msc4140.use_cases.self_destructing_message" => "in the future",
                "msc4140.use_cases.delayed_kick" => "in the future",
                "msc4140.use_cases.scheduled_reminder" => "in the future",
                "msc4140.cancellation.retried_actions_leave_others_alone" => "in the future",
                "msc4140.persistence.scheduled_event_survives_restart" => "in the future",
                "msc4140.persistence.overdue_events_sent_in_order" => "in the future",
                "msc4140.persistence.listing_and_management_after_restart" => "in the future",
                "msc4140.use_cases.call_of_many" => "in the future",
                "msc4140.timing.burst_up_to_user_limit" => "in the future",
                "msc4140.timing.many_users_due_together" => "in the future",
                "msc4140.state_overwrite.earlier_state_does_not_cancel" => "in the future",
                "msc4140.listing.in_send_time_order_after_restart" => "in the future",
                "msc4140.listing.lookup_after_timer_sent" => "which says it was sent manually",
            ],
        },
        /// After a `restart` action the listing and the single lookup still report the time the
        /// event was first scheduled, though the restart did re-arm its timer.
        ReportedTimeStale {
            breaks: [
                "msc4140.restart.moves_send_time" => "after a successful restart",
                "msc4140.restart.sent_after_heartbeat_stops" => "scheduled or last restarted",
                "msc4140.use_cases.matrixrtc_last_will" => "scheduled or last restarted",
                "msc4140.use_cases.call_of_many" => "scheduled or last restarted",
                "msc4140.listing.scheduling_time_is_when_timer_started"
                    => "scheduled or last restarted",
            ],
        },

        // --- homeserver restart, continued -------------------------------------------------------
        /// A clean restart ([`FakeHomeserver::begin_restart`], not a kill) first sends every
        /// scheduled delayed event, due or not (a server that flushes its queue when it stops).
        FlushesOnShutdown {
            breaks: [
                "msc4140.persistence.scheduled_event_survives_restart" => "before its delay",
                "msc4140.persistence.overdue_events_sent_in_order"
                    => "before its delay by the server's own clock",
                "msc4140.persistence.listing_and_management_after_restart"
                    => "lacks the scheduled event",
            ],
        },
    }
}
