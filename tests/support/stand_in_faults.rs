//! What each `--fault` of the widget stand-in driver (`adapters/stand-in/main.rs`, which does
//! the breaking) must break in the msc4157 catalogue: the cases it must make fail, each with a
//! phrase the failure message must contain. `tests/widget_selftest.rs` runs the catalogue per
//! fault and checks them with `support::fault_matrix`. The stand-in's faults that break the
//! driver itself (`never-reply`, `exit-after-hello`, `garbage`) end cases in `error` and have a
//! test of their own.
#![allow(dead_code)]

use crate::support::fault_matrix::declare_faults;

declare_faults! {
    /// A `--fault NAME` of the stand-in driver. Each breaks one requirement.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    pub enum StandInFault {
        /// A delayed send's reply carries an event_id too.
        EventIdInReply = "event-id-in-reply" {
            breaks: [
                "msc4157.send.delayed_message" => "carries an event_id",
                "msc4157.send.delayed_state" => "carries an event_id",
                "msc4157.send.delayed_without_room_id" => "carries an event_id",
            ],
        },
        /// Schedules with half the delay asked for: the event is sent early.
        HalveDelay = "halve-delay" {
            breaks: [
                "msc4157.send.delayed_message" => "sent before its delay",
                "msc4157.send.delayed_state" => "sent before its delay",
                "msc4157.send.delayed_without_room_id" => "sent before its delay",
                "msc4157.update.restart" => "sent before its delay",
                "msc4157.use_cases.matrixrtc_hangup" => "sent before its delay",
                "msc4157.delivery.delayed_redaction" => "sent before its delay",
            ],
        },
        /// Leaves the update capability out of what it approves (and so refuses updates).
        DropsUpdateCapability = "drops-update-capability" {
            breaks: [
                "msc4157.servers.management_split_paths_only" => "updates through the widget failed",
                "msc4157.servers.management_body_form_only" => "updates through the widget failed",
                "msc4157.servers.one_request_one_homeserver_request" => "was refused",
                "msc4157.capabilities.unstable_names_approved" => "approved only",
                "msc4157.update.cancel" => "was refused",
                "msc4157.update.send" => "was refused",
                "msc4157.update.restart" => "was refused",
                "msc4157.use_cases.matrixrtc_hangup" => "was refused",
                "msc4157.errors.unknown_delay_id" => "does not exist",
                "msc4157.errors.updates_of_sent_event" => "already sent",
                "msc4157.use_cases.whole_call" => "was refused",
                "msc4157.use_cases.heartbeats_rate_limited" => "does not carry the Matrix error",
                "msc4157.use_cases.one_request_one_effect" => "was refused",
            ],
        },
        /// Sends delayed without the delayed-send capability.
        SkipDelayedCapabilityCheck = "skip-delayed-capability-check" {
            breaks: [
                "msc4157.capabilities.delayed_send_needs_capability" => "without the capability",
            ],
        },
        /// Sends an event type it was given no capability for.
        SkipEventTypeCheck = "skip-event-type-check" {
            breaks: [
                "msc4157.capabilities.delayed_send_needs_event_type_capability"
                    => "without the capability",
            ],
        },
        /// Updates without the update capability.
        SkipUpdateCapabilityCheck = "skip-update-capability-check" {
            breaks: [
                "msc4157.update.needs_capability" => "without the update capability",
            ],
        },
        /// `restart` is forwarded as `cancel`.
        RestartAsCancel = "restart-as-cancel" {
            breaks: [
                "msc4157.servers.management_split_paths_only" => "is no longer scheduled",
                "msc4157.servers.management_body_form_only" => "is no longer scheduled",
                "msc4157.update.restart" => "was never sent",
                "msc4157.use_cases.matrixrtc_hangup" => "was never sent",
                "msc4157.use_cases.whole_call" => "was refused",
                "msc4157.use_cases.one_request_one_effect" => "was refused",
            ],
        },
        /// `restart` answers success without reaching the homeserver.
        RestartNoop = "restart-noop" {
            breaks: [
                "msc4157.servers.one_request_one_homeserver_request" => "one each expected",
                "msc4157.update.restart" => "sent before its delay",
                "msc4157.use_cases.matrixrtc_hangup" => "sent before its delay",
                "msc4157.errors.unknown_delay_id" => "does not exist",
                "msc4157.errors.updates_of_sent_event" => "already sent",
                "msc4157.use_cases.whole_call" => "sent while the heartbeats kept it alive",
            ],
            // Restarts answered without the homeserver are never rate-limited.
            skips: Skips::Cases(&["msc4157.use_cases.heartbeats_rate_limited"]),
        },
        /// `cancel` answers success without reaching the homeserver.
        CancelNoop = "cancel-noop" {
            breaks: [
                "msc4157.servers.management_split_paths_only" => "the event is still scheduled",
                "msc4157.servers.management_body_form_only" => "the event is still scheduled",
                "msc4157.update.cancel" => "was sent anyway",
                "msc4157.update.stable_action_name" => "still scheduled",
                "msc4157.errors.unknown_delay_id" => "does not exist",
                "msc4157.errors.updates_of_sent_event" => "already sent",
            ],
        },
        /// `send` answers success without reaching the homeserver.
        SendNoop = "send-noop" {
            breaks: [
                "msc4157.servers.management_split_paths_only" => "was never sent",
                "msc4157.servers.management_body_form_only" => "was never sent",
                "msc4157.update.send" => "was never sent",
                "msc4157.errors.unknown_delay_id" => "does not exist",
                "msc4157.use_cases.whole_call" => "did not send the delayed leave",
                "msc4157.use_cases.one_request_one_effect" => "sent the delayed event 0 times",
            ],
        },
        /// Any update action other than cancel/restart/send answers success, doing nothing.
        UnknownActionAccepted = "unknown-action-accepted" {
            breaks: [
                "msc4157.errors.unknown_action" => "unknown action",
                "msc4157.update.refresh_or_restart" => "sent before its delay",
            ],
        },
        /// An update without a delay_id answers success.
        MissingDelayIdAccepted = "missing-delay-id-accepted" {
            breaks: [
                "msc4157.errors.missing_delay_id" => "without a delay_id",
            ],
        },
        /// Homeserver errors on updates are swallowed: the reply is success.
        SwallowUpdateErrors = "swallow-update-errors" {
            breaks: [
                "msc4157.errors.unknown_delay_id" => "does not exist",
                "msc4157.errors.updates_of_sent_event" => "already sent",
                "msc4157.use_cases.whole_call" => "the hang-up sent",
            ],
            // Refusals swallowed, the driver's restarts all seem to succeed.
            skips: Skips::Cases(&["msc4157.use_cases.heartbeats_rate_limited"]),
        },
        /// Error replies lack `matrix_api_error`.
        DropMatrixError = "drop-matrix-error" {
            breaks: [
                "msc4157.errors.limit_error_carried" => "does not carry the Matrix error",
                "msc4157.errors.homeserver_error_carried" => "does not carry the Matrix error",
                "msc4157.errors.unknown_delay_id" => "does not carry the Matrix error",
                "msc4157.errors.updates_of_sent_event" => "does not carry the Matrix error",
                "msc4157.errors.over_max_delay_error_whole" => "does not carry the Matrix error",
                "msc4157.errors.limit_error_whole" => "does not carry the Matrix error",
                "msc4157.use_cases.whole_call" => "does not carry the Matrix error",
                "msc4157.use_cases.heartbeats_rate_limited" => "does not carry the Matrix error",
            ],
        },
        /// The carried error's `http_status` is 400 whatever the homeserver answered.
        WrongHttpStatus = "wrong-http-status" {
            breaks: [
                "msc4157.errors.unknown_delay_id" => "http_status is 400",
                "msc4157.errors.updates_of_sent_event" => "http_status is 400",
                "msc4157.errors.limit_error_whole" => "http_status is 400",
                "msc4157.use_cases.whole_call" => "http_status is 400",
                "msc4157.use_cases.heartbeats_rate_limited" => "http_status 400",
            ],
        },
        /// The carried error keeps only `errcode` and `error` of the homeserver's body.
        DropExtraFields = "drop-extra-fields" {
            breaks: [
                "msc4157.errors.limit_error_whole" => "drops the homeserver's field `retry_after_ms`",
            ],
        },
        /// The carried error has no `http_headers` (so no `Retry-After`).
        DropHeaders = "drop-headers" {
            breaks: [
                "msc4157.errors.limit_error_whole" => "drop the homeserver's Retry-After",
            ],
        },
        /// Every fromWidget request is answered twice.
        ReplyTwice = "reply-twice" {
            breaks: [
                "msc4157.use_cases.one_request_one_effect" => "got 2 replies",
            ],
        },
        /// A delayed send_event schedules the event twice (the reply names the first).
        ScheduleTwice = "schedule-twice" {
            breaks: [
                "msc4157.servers.one_request_one_homeserver_request" => "one each expected",
                "msc4157.use_cases.one_request_one_effect" => "scheduled 2 delayed events",
                "msc4157.update.cancel" => "was sent anyway",
                "msc4157.update.restart" => "sent before its delay",
                "msc4157.use_cases.matrixrtc_hangup" => "sent before its delay",
                "msc4157.use_cases.whole_call" => "sent while the heartbeats kept it alive",
            ],
        },
        /// A 429 from the homeserver is retried silently after its wait, as matrix-sdk does.
        RetryRateLimited = "retry-rate-limited" {
            breaks: [
                "msc4157.errors.limit_error_carried" => "did not reply at all",
                "msc4157.errors.limit_error_whole" => "did not reply at all",
                "msc4157.use_cases.heartbeats_rate_limited" => "no reply within 2 s",
            ],
        },
        /// The stable send capability is approved but a send under it is refused.
        StableCapabilityNotHonoured = "stable-capability-not-honoured" {
            breaks: [
                "msc4157.capabilities.stable_names" => "refused a delayed send_event under it",
            ],
        },
        /// The stable update action answers success without reaching the homeserver.
        StableActionNoop = "stable-action-noop" {
            breaks: [
                "msc4157.update.stable_action_name" => "still scheduled",
            ],
        },
        /// Sends delayed events without checking that the homeserver offers them.
        NoFeatureCheck = "no-feature-check" {
            breaks: [
                "msc4157.servers.without_delayed_events" => "must refuse a delayed send it cannot make",
            ],
        },
        /// Manages through split paths only, with no fallback to the body form.
        SplitPathsOnly = "split-paths-only" {
            breaks: [
                "msc4157.servers.management_body_form_only" => "updates through the widget failed",
            ],
        },
        /// Manages in the body form only, with no fallback to split paths.
        BodyFormOnly = "body-form-only" {
            breaks: [
                "msc4157.servers.management_split_paths_only" => "updates through the widget failed",
                // The fake serves the body form on its main process only, as Synapse's workers.
                "msc4157.deployment.heartbeats_survive_main_restart" => "a call member hung up",
            ],
        },
        /// Makes every management request twice.
        DoubleRequests = "double-requests" {
            breaks: [
                "msc4157.servers.one_request_one_homeserver_request" => "one each expected",
            ],
        },
        /// Performs fromWidget requests before the capability handshake.
        ActBeforeHandshake = "act-before-handshake" {
            breaks: [
                "msc4157.errors.before_handshake" => "before any capability was negotiated",
            ],
        },
        /// Like matrix-sdk 0.18: content carrying `redacts` is redacted at once, whatever the
        /// delay and the declared type.
        RedactsAtOnce = "redacts-at-once" {
            breaks: [
                "msc4157.delivery.delayed_redaction" => "redacted at once",
                "msc4157.delivery.redacts_under_other_type" => "no m.room.redaction capability",
            ],
        },
        /// `"delay": null` is taken as no delay: sent at once.
        NullDelaySentAtOnce = "null-delay-sent-at-once" {
            breaks: [
                "msc4157.delivery.malformed_delay" => "delay null: sent at once",
            ],
        },
        /// `"delay": null` sends at once and the reply carries neither id.
        NullDelayNoId = "null-delay-no-id" {
            breaks: [
                "msc4157.delivery.malformed_delay" => "neither delay_id nor event_id",
            ],
        },
        /// A string delay is answered with a made-up delay_id; nothing is scheduled.
        StringDelayUnscheduled = "string-delay-unscheduled" {
            breaks: [
                "msc4157.delivery.malformed_delay" => "is not scheduled on the homeserver",
            ],
        },
        /// In an encrypted room, delayed sends are sent at once.
        EncryptedSentAtOnce = "encrypted-sent-at-once" {
            breaks: [
                "msc4157.delivery.encrypted_room" => "carries no delay_id",
            ],
        },
        /// Exits on a send_event carrying `sticky_duration_ms`.
        StickyExits = "sticky-exits" {
            breaks: [
                "msc4157.delivery.sticky_delayed_send" => "the driver stopped",
            ],
        },
        /// Never answers a send_event carrying `sticky_duration_ms`.
        StickyNoReply = "sticky-no-reply" {
            breaks: [
                "msc4157.delivery.sticky_delayed_send" => "got no answer",
            ],
        },
        /// Sends to the room a `room_id` names without the timeline capability for it.
        SkipTimelineCheck = "skip-timeline-check" {
            breaks: [
                "msc4157.send.other_room_needs_timeline_capability" => "was not refused",
            ],
        },
        /// A delayed send's reply names another room in `room_id`.
        WrongRoomIdInReply = "wrong-room-id-in-reply" {
            breaks: [
                "msc4157.send.delayed_message" => "not the room",
                "msc4157.send.delayed_state" => "not the room",
                "msc4157.send.delayed_without_room_id" => "not the room",
            ],
        },
        /// Never passes the room's events on to the widget.
        ForwardsNoEvents = "forwards-no-events" {
            breaks: [
                "msc4157.receive.delayed_event_received" => "never passed it on",
            ],
        },
    }
}
