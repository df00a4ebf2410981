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
            ],
        },
        /// Leaves the update capability out of what it approves (and so refuses updates).
        DropsUpdateCapability = "drops-update-capability" {
            breaks: [
                "msc4157.capabilities.unstable_names_approved" => "approved only",
                "msc4157.update.cancel" => "was refused",
                "msc4157.update.send" => "was refused",
                "msc4157.update.restart" => "was refused",
                "msc4157.use_cases.matrixrtc_hangup" => "was refused",
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
                "msc4157.update.restart" => "was never sent",
                "msc4157.use_cases.matrixrtc_hangup" => "was never sent",
            ],
        },
        /// `restart` answers success without reaching the homeserver.
        RestartNoop = "restart-noop" {
            breaks: [
                "msc4157.update.restart" => "sent before its delay",
                "msc4157.use_cases.matrixrtc_hangup" => "sent before its delay",
            ],
        },
        /// `cancel` answers success without reaching the homeserver.
        CancelNoop = "cancel-noop" {
            breaks: [
                "msc4157.update.cancel" => "was sent anyway",
                "msc4157.update.stable_action_name" => "still scheduled",
                "msc4157.errors.unknown_delay_id" => "does not exist",
            ],
        },
        /// `send` answers success without reaching the homeserver.
        SendNoop = "send-noop" {
            breaks: [
                "msc4157.update.send" => "was never sent",
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
            ],
        },
        /// Error replies lack `matrix_api_error`.
        DropMatrixError = "drop-matrix-error" {
            breaks: [
                "msc4157.errors.limit_error_carried" => "does not carry the Matrix error",
                "msc4157.errors.homeserver_error_carried" => "does not carry the Matrix error",
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
        /// Performs fromWidget requests before the capability handshake.
        ActBeforeHandshake = "act-before-handshake" {
            breaks: [
                "msc4157.errors.before_handshake" => "before any capability was negotiated",
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
