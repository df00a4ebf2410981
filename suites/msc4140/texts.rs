//! The sentences of MSC4140 the cases enforce, quoted from `../shared/spec/` (links and line
//! breaks removed). Shared here because several cases enforce the same sentence.

use crate::spec::{Rev, SpecRef};

const SCHEDULING: &str = "Scheduling a delayed event";
const MANAGING_2026: &str = "Managing scheduled delayed events";
const GETTING_2026: &str = "Getting delayed events";

pub const NOT_BEFORE: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    SCHEDULING,
    "The homeserver MUST NOT send the event before the scheduled time.",
);

pub const ALLOWANCE: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    SCHEDULING,
    "To support batch sending, homeservers MAY add up to 30 seconds to the scheduled send time.",
);

pub const DELAY_POSITIVE: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    SCHEDULING,
    "`delay_ms` - Required. A positive non-zero number of milliseconds the homeserver should wait before sending the event.",
);

pub const MAX_DELAY: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    SCHEDULING,
    "If a requested delay exceeds this maximum, the homeserver will respond with HTTP 403 and a standard error response with an `errcode` of `M_FORBIDDEN`.",
);

pub const TXN_IDS: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    SCHEDULING,
    "The path parameters of this endpoint are the same as for the existing `PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}` endpoint. It also makes use of transaction identifiers",
);

pub const SEND_ACTION: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    MANAGING_2026,
    "`send` - Send the delayed event immediately instead of waiting for its scheduled send time.",
);

pub const CANCEL_ACTION: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    MANAGING_2026,
    "`cancel` - Cancel the delayed event so that it is never sent.",
);

pub const RESTART_ACTION: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    MANAGING_2026,
    "`restart` - Reset the delayed event's scheduled send time to be the current time + its original `delay_ms`.",
);

pub const HEARTBEAT: SpecRef = SpecRef::msc4140(
    Rev::Dec2025,
    "Background and motivation",
    "The client can then periodically restart the timer whilst it is running. If the client is no longer running or able to communicate, then the timer would expire and the homeserver would send the \"hangup\" event on behalf of the client.",
);

pub const NOT_FOUND: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    MANAGING_2026,
    "If no delayed event with the specified `delay_id` can be found, the homeserver will respond with HTTP 404 and a standard error response with an `errcode` of `M_NOT_FOUND`.",
);

pub const RETRY: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    MANAGING_2026,
    "To allow safely retrying requests, the homeserver will respond with success if the target delayed event is already finalised with an outcome that matches the `action` [...] If the target delayed event is already finalised with an outcome that conflicts with the `action` [...] the homeserver will respond with HTTP 409 and a standard error response with an `errcode` of `M_UNKNOWN`.",
);

pub const BODY_ACTION: SpecRef = SpecRef::msc4140(
    Rev::Oct2024,
    "Managing delayed events",
    "The body of the request is a JSON object containing the following fields: [...] `action` - The action to take on the delayed event.",
);

pub const SPLIT_ACTION: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    MANAGING_2026,
    "The `action` specifies the management action to take on the scheduled delayed event with the specified `delay_id`. The supported `action`s are the following:",
);

pub const LISTING: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    GETTING_2026,
    "A new authenticated Client-Server API endpoint at `GET /_matrix/client/v1/delayed_events` responds with a list of details about scheduled delayed events owned by the requesting user.",
);

pub const LISTING_FIELDS: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    GETTING_2026,
    "`delayed_events` - An array of objects describing delayed events owned by the requesting user. These objects contain the same fields as the object returned by the single-item lookup, except for the fields exclusive to finalised delayed events (`error`, `event_id`, and `finalised_ts`).",
);

pub const LISTING_ORDER: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    GETTING_2026,
    "Delayed events are returned in chronological order of their intended send time, which is `scheduled_at` + `delay_ms`.",
);

pub const LOOKUPS_AUTHENTICATED: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    GETTING_2026,
    "A set of new authenticated Client-Server API endpoints allows clients to look up both scheduled and finalised delayed events owned by the requesting user.",
);

pub const SINGLE_LOOKUP: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    "Getting a single delayed event",
    "A new authenticated Client-Server API endpoint at `GET /_matrix/client/v1/delayed_events/{delay_id}` responds with details on the delayed event with the specified `delay_id`.",
);

pub const SINGLE_LOOKUP_OTHERS: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    "Getting a single delayed event",
    "If no delayed event with the specified `delay_id` exists, or it does exist but had been scheduled by a user other than the one requesting this endpoint, the homeserver will respond with HTTP 404 and a standard error response with an `errcode` of `M_NOT_FOUND`.",
);

pub const VERSIONS_FLAG: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    "Unstable prefix",
    "Additionally, the feature is to be advertised as an unstable feature in the `GET /_matrix/client/versions` response, with the key `org.matrix.msc4140` set to `true`.",
);

pub const CAPABILITY: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    "Delayed event limits as a capability",
    "The values of both the maximum allowed delay and the maximum allowed number of scheduled events are advertised as a capability named `m.delayed_events`, via the values of fields named `max_delay_ms` and `max_scheduled` respectively.",
);

pub const UNSIGNED: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    "`delay_id` in `unsigned` event data",
    "The `delay_id` of a sent delayed event MUST be included in the resulting room event's `unsigned` data if, and only if, the client being given the event (e.g. over `/sync` or `/messages`) is authenticated as the event's sender.",
);

pub const STANDARD_ERRORS: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    SCHEDULING,
    "A new authenticated Client-Server API endpoint at `PUT /_matrix/client/v3/rooms/{roomId}/delayed_event/{eventType}/{txnId}` allows clients to schedule the sending of a message or state event. The path parameters of this endpoint are the same as for the existing `PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}` endpoint.",
);
