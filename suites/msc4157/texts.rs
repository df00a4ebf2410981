//! The sentences of MSC4157 (2026-01-21) the cases enforce, quoted verbatim (links reduced to
//! their text, line breaks folded); `tests/catalogue.rs` checks each against the text.

use crate::spec::{Rev, SpecRef};

const fn msc4157(section: &'static str, text: &'static str) -> SpecRef {
    SpecRef {
        doc: "MSC4157",
        revision: Rev::Widget2026,
        section,
        text,
        sources: &[],
        reconstructed: false,
        note: None,
    }
}

const INTRO: &str = "Delayed Events (widget-api)";
const SENDING: &str = "Sending delayed events";
const UPDATING: &str = "Sending `update_delayed_event` actions";
const CAPABILITIES: &str = "Capabilities";
const UNSTABLE: &str = "Unstable prefix";

pub const CLIENT_SENDS_DELAYED: SpecRef = msc4157(
    SENDING,
    "The client is responsible to check for the `delay` field of the widget action and send the correct HTTP request if it is present.",
);

pub const TWO_CAPABILITIES: SpecRef = msc4157(
    CAPABILITIES,
    "For sending a delayed event two capabilities are required. One for sending the event type itself and the `m.send.delayed_event` capability to send it as a delayed event.",
);

pub const SEND_CAPABILITY: SpecRef = msc4157(
    CAPABILITIES,
    "allows to send delayed events by using the optional `delay` property in a `fromWidget send_event` widget action.",
);

pub const UPDATE_CAPABILITY: SpecRef = msc4157(
    CAPABILITIES,
    "allows to update delayed events using the `fromWidget update_delayed_event` widget action.",
);

pub const UPDATE_RESPONSE: SpecRef = msc4157(
    UPDATING,
    "The response is empty on success or otherwise a widget error response.",
);

pub const UPDATE_ACTIONS: SpecRef = msc4157(UPDATING, r#""action":"cancel"|"send"|"refresh""#);

pub const UNSTABLE_NAMES: SpecRef = msc4157(
    UNSTABLE,
    "The following strings will have unstable prefixes:",
);

pub const HEARTBEAT: SpecRef = msc4157(
    INTRO,
    "Since the delayed events are refreshable, it is possible to send an event with a short timeout and send restarts to that timeout. This behaves like a heartbeat and the event is sent once the heartbeat stops: As a last will.",
);

/// The request's `room_id` comes from MSC2762, which this text extends: the note says what
/// MSC2762 asks of it.
pub const SEND_REQUEST_EXTENDS: SpecRef = msc4157(
    SENDING,
    r#"We extend the `"send_event"` request defined by MSC2762 as follows:"#,
)
.with_note(
    "MSC2762 (widget API access to the room timeline): a send_event naming a room_id other than \
     the widget's room needs the timeline capability for that room \
     (org.matrix.msc2762.timeline:<room_id>); without it the client refuses the request",
)
.with_sources(&["https://github.com/matrix-org/matrix-spec-proposals/pull/2762"]);

pub const RECEIVING: SpecRef = msc4157(
    CAPABILITIES,
    "Receiving events does not require a special permission since delayed events are not distinguishable from normal events from the receiver side.",
);
