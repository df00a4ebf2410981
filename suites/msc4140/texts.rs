//! The sentences of MSC4140 the cases enforce, quoted from the texts docs/revisions.md links
//! (links and line breaks removed). Shared here because several cases enforce the same sentence.

use crate::spec::{Rev, SpecRef};

const SCHEDULING: &str = "Scheduling a delayed event";

/// Public sources of what the merged text (2026-09-08, not available to quote) says.
const SYNAPSE_20229: &str = "https://github.com/element-hq/synapse/pull/20229";
const SYNAPSE_19038: &str = "https://github.com/element-hq/synapse/pull/19038";
const SYNAPSE_EPIC_20254: &str = "https://github.com/element-hq/synapse/issues/20254";
const RUMA_2493: &str = "https://github.com/ruma/ruma/pull/2493";
const MSC4140_PR: &str = "https://github.com/matrix-org/matrix-spec-proposals/pull/4140";
const MSC4486_PR: &str = "https://github.com/matrix-org/matrix-spec-proposals/pull/4486";
const MSC4542_PR: &str = "https://github.com/matrix-org/matrix-spec-proposals/pull/4542";
const PALPO_349: &str = "https://github.com/palpo-im/palpo/pull/349";
const JS_SDK_5522: &str = "https://github.com/matrix-org/matrix-js-sdk/pull/5522";
const JS_SDK_5553: &str = "https://github.com/matrix-org/matrix-js-sdk/pull/5553";
const MANAGING_2026: &str = "Managing scheduled delayed events";
const GETTING_2026: &str = "Getting delayed events";

pub const NOT_BEFORE: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    SCHEDULING,
    "The homeserver MUST NOT send the event before the scheduled time.",
);

/// The query-parameter form's answer: the one a server that ignores the parameter gets wrong.
pub const SCHEDULES_NOT_SENDS: SpecRef = SpecRef::msc4140(
    Rev::Dec2025,
    SCHEDULING,
    "If a `delay` is provided, the homeserver schedules the event to be sent with the specified delay and responds with an opaque `delay_id` field (omitting the `event_id` as it is not available):",
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

/// The merged text (2026-09-08) is not available; Synapse's pull request that follows it is.
pub const MAX_DELAY_MERGED: SpecRef = SpecRef::reconstructed(
    Rev::Merged2026,
    SCHEDULING,
    "Synapse PR #20156 (merged 2026-08-27) makes a delay over the maximum get \"the HTTP code & errcode specified in the latest revision of the MSC\" (MSC4140 commit 0c7193a); Synapse 1.163.2, which includes it, answers HTTP 400 with `ORG.MATRIX.MSC4140_DELAY_TOO_LARGE`, the unstable name of `M_DELAY_TOO_LARGE`, in place of 2026-07's 403 `M_FORBIDDEN`.",
    &["https://github.com/element-hq/synapse/pull/20156"],
);

/// The dedicated endpoint's body (2026-07).
pub const ENDPOINT_BODY: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    SCHEDULING,
    "The body for requests to this endpoint is a JSON object containing the following fields:",
);

pub const ENDPOINT_CONTENT: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    SCHEDULING,
    "`content` - Required. The content of the event to be sent.",
);

pub const ENDPOINT_STATE_KEY: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    SCHEDULING,
    "`state_key` - The state key for the event to be sent, if it is to be a state event; absent otherwise.",
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
)
.with_note(MERGED_CONFLICT)
.with_sources(&[SYNAPSE_20229, SYNAPSE_19038, JS_SDK_5553, MSC4542_PR, JS_SDK_5522]);

/// The merged text's conflict answer, and the case it leaves open.
const MERGED_CONFLICT: &str = "merged 2026-09-08 (reconstructed): the same table, but a conflict is \"HTTP 409\" with no errcode named (Synapse PR #20229, per MSC commit e2636d62; matrix-js-sdk PR #5553 quotes it), so `M_UNKNOWN` is required only under 2026-07. Neither text says what `restart` on an already sent event answers: MSC4542 (open) proposes 409, as Synapse PR #20229 answers, while matrix-js-sdk PR #5522 relies on 404; it is recorded, not judged";

/// A cancelled event's lookup: "Otherwise, the delayed event was cancelled".
pub const CANCELLED_LOOKUP: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    "Getting a single delayed event",
    "Otherwise, the delayed event was cancelled by the `/cancel` endpoint.",
)
.with_note(MERGED_FINALISED)
.with_sources(&[MSC4486_PR, PALPO_349, SYNAPSE_20229]);

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

/// 2025-12 says the same ("The success response body is always an empty object."); 2024-10 is
/// silent.
pub const ACTION_ANSWER: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    MANAGING_2026,
    "On success, the homeserver will respond with HTTP 200 and a response body of an empty object.",
);

/// What of the listing moved to MSC4486 before the merge.
const LISTING_MOVED: &str = "before the merge (2026-09-08), filtering and pagination of the bulk lookup (e.g. 2025-12's `?status=scheduled|finalised`, listing finalised events) moved to MSC4486, https://github.com/matrix-org/matrix-spec-proposals/pull/4486 (see Synapse PR https://github.com/element-hq/synapse/pull/20229); MSC4140 keeps the unfiltered listing of scheduled events, which is what this case checks";

pub const LISTING: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    GETTING_2026,
    "A new authenticated Client-Server API endpoint at `GET /_matrix/client/v1/delayed_events` responds with a list of details about scheduled delayed events owned by the requesting user.",
);

pub const LISTING_FIELDS: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    GETTING_2026,
    "`delayed_events` - An array of objects describing delayed events owned by the requesting user. These objects contain the same fields as the object returned by the single-item lookup, except for the fields exclusive to finalised delayed events (`error`, `event_id`, and `finalised_ts`).",
)
.with_note(MERGED_FIELD_NAMES)
.with_sources(&[MSC4486_PR, PALPO_349, SYNAPSE_20229, RUMA_2493]);

/// What the merged text calls the delay and the scheduling time, per its public record.
const MERGED_FIELD_NAMES: &str = "merged 2026-09-08 (reconstructed, the text is not available): entries name the scheduling time `delayed_since_ts` beside `delay_ms`: MSC4486, split off the merged text, computes the send time from \"`delayed_since_ts` + `delay_ms` (where those fields are as defined in MSC4140)\"; Palpo PR #349 answers so \"as defined by the current proposal\"; Synapse 1.163.2 sends both names and the older ones; ruma PR #2493 follows the MSC as it changed. Each shape is accepted, and the one matched is recorded";

const MERGED_FINALISED: &str = "merged 2026-09-08 (reconstructed): the outcome fields `finalised_ts`, `event_id` and `error` come nested in a `finalised` object (absent while scheduled), as in MSC4486's examples and Palpo PR #349 (\"the nested `finalised` result defined by the current proposal\"); 2026-07 has them flat. Both shapes are read in one place and the one matched is recorded. How long finalised events are kept is the server's choice (2026-07, \"Retention of finalised delayed events\"), so a server that already forgot one is reported, not failed";

pub const SENT_MANUALLY: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    "Getting a single delayed event",
    "If `finalised_ts` < `scheduled_at` + `delay_ms`, then the event was sent manually by the `/send` endpoint; otherwise, it was sent on its scheduled send time.",
)
.with_note(MERGED_FINALISED)
.with_sources(&[MSC4486_PR, PALPO_349, SYNAPSE_20229]);

pub const EVENT_ID_OF_SENT: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    "Getting a single delayed event",
    "`event_id` - The `event_id` this event got in case it was sent.",
)
.with_note(MERGED_FINALISED)
.with_sources(&[
    MSC4486_PR,
    PALPO_349,
    SYNAPSE_20229,
    SYNAPSE_19038,
    SYNAPSE_EPIC_20254,
]);

pub const LISTING_ORDER: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    GETTING_2026,
    "Delayed events are returned in chronological order of their intended send time, which is `scheduled_at` + `delay_ms`.",
);

/// The listing shows scheduled events only; finalised ones are a matter of MSC4486 now.
pub const LISTING_SCHEDULED_ONLY: SpecRef = LISTING.with_note(LISTING_MOVED);

/// The field the listing shares with the single lookup (2024-10 and 2025-12 say the same of
/// `running_since`; Synapse 1.163 sends `delayed_since_ts` and `running_since`).
pub const SCHEDULED_AT: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    "Getting a single delayed event",
    "`scheduled_at` - Required. The timestamp (as Unix time in milliseconds) when the delayed event was scheduled or last restarted.",
);

/// What the listing and the single lookup give back as an event's content.
pub const CONTENT_AS_SCHEDULED: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    "Getting a single delayed event",
    "`content` - Required. The content of the delayed event. This is the body of the original `PUT` request, not a preview of the full event after sending.",
);

/// The content a client schedules is the content of the event sent.
pub const CONTENT_SENT: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    SCHEDULING,
    "`content` - Required. The content of the event to be sent.",
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

/// Content that is not an object: the texts say only "standard error response", and the
/// Client-Server API does not settle which of its errcodes a bad body field gets.
pub const INVALID_CONTENT: SpecRef = STANDARD_ERRORS
    .with_note("the texts name no errcode for content that is not an object; the Client-Server API uses `M_BAD_JSON` and `M_NOT_JSON` for bodies and `M_INVALID_PARAM` for bad values, and leaves the line between them open (matrix-spec issue #786), so a 400 with any of the three is accepted and the one given is recorded")
    .with_sources(&["https://github.com/matrix-org/matrix-spec/issues/786"]);

const POWER_LEVELS_2026: &str = "Power levels are evaluated at the point of sending";

pub const FAILS_AT_SEND: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    POWER_LEVELS_2026,
    "Power levels are evaluated for each event only once the delay has occurred and it will be distributed/inserted into the DAG. This implies a delayed event can fail if it violates power levels at the time the delay passes.",
);

pub const PROMOTED_REACHES_DAG: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    POWER_LEVELS_2026,
    "Conversely, it's also possible to successfully schedule an event that the user has no permission to send at the time of sending. If the power level situation has changed at the time the delay passes, the event can even reach the DAG.",
);

pub const SEND_ACTION_ERROR: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    MANAGING_2026,
    "If the action is `send` and the delayed event is unable to be sent due to an error, the homeserver will respond with that error [...] as if the request had been to send the event as a non-delayed event with either the `/send` or `/state` endpoint.",
);

pub const KEEP_SCHEDULED: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    MANAGING_2026,
    "The homeserver SHOULD keep the delayed event scheduled, to account for the fact that the cause of the error may resolve by the time of the delayed event's scheduled send time, and to allow retries of the `send` action until then.",
);

const OVERWRITE_2024: &str = "Delayed state events are cancelled by a more recent state event";

pub const OVERWRITE_CANCELS: SpecRef = SpecRef::msc4140(
    Rev::Oct2024,
    OVERWRITE_2024,
    "If a new state event is sent to the same room at the same entry (`event_type`, `state_key` pair) as a delayed event by a different matrix user, any delayed event for this entry (`event_type`, `state_key` pair) is cancelled.",
);

pub const OVERWRITE_OWN: SpecRef = SpecRef::msc4140(
    Rev::Oct2024,
    OVERWRITE_2024,
    "This only happens if its a state update from a different user. If it is from the same user, the delayed event will not get cancelled.",
);

pub const OVERWRITE_SCOPE: SpecRef = SpecRef::msc4140(
    Rev::Oct2024,
    OVERWRITE_2024,
    "Note that this behaviour does not apply to regular (non-state) events as there is no concept of a (`event_type`, `state_key`) pair that could be overwritten.",
);

pub const PERSIST: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    SCHEDULING,
    "The homeserver MUST persist scheduled delayed events such that they will not be lost by the homeserver being restarted.",
)
.with_note(PERSISTENCE_REMOVED)
.with_sources(&[MSC4140_PR]);

/// Where the persistence sentences stand: stated at MUST by 2026-07 only.
const PERSISTENCE_REMOVED: &str = "stated at MUST by 2026-07 only (2024-10 and 2025-12 do not state it); removed before the merge: in the review of MSC PR #4140 (2026-07-27) reviewers called these sentences homeserver implementation details, and the author answered \"Removed in fc9077af\", so the merged text (2026-09-08) does not state them. Kept here at the level 2026-07 gives: a server that loses scheduled events across a restart defeats what delayed events are for (a last will that outlives its client)";

pub const OVERDUE_IN_ORDER: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    SCHEDULING,
    "Moreover, when a homeserver restarts, it MUST scan for all scheduled delayed events whose send time has already passed (i.e. delayed events that were scheduled to be sent while the homeserver was offline), and send those delayed events as soon as possible, in chronological order of their scheduled send times.",
)
.with_note(PERSISTENCE_REMOVED)
.with_sources(&[MSC4140_PR]);

/// Only *scheduled* events are sent at start-up: one already sent is finalised, and is not again.
pub const RESTART_SCANS_SCHEDULED: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    SCHEDULING,
    "Moreover, when a homeserver restarts, it MUST scan for all scheduled delayed events whose send time has already passed (i.e. delayed events that were scheduled to be sent while the homeserver was offline), and send those delayed events as soon as possible",
)
.with_note(PERSISTENCE_REMOVED)
.with_sources(&[MSC4140_PR]);

pub const LIMIT_REFUSED: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    SCHEDULING,
    "If a user's request to schedule a delayed event would exceed this limit, the homeserver will respond with HTTP 429, a standard error response with an `errcode` of `M_LIMIT_EXCEEDED`,",
);

pub const LIMIT_RETRY_AFTER: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    SCHEDULING,
    "and a `Retry-After` header whose value is set to the time of/until the scheduled send time of the next of the user's delayed events to be sent, rounded up to the nearest second.",
);

/// A limit of 0: scheduling refused outright.
pub const LIMIT_ZERO: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    SCHEDULING,
    "As a special case, if this limit has been set to 0 such that scheduling delayed events is disallowed entirely, the homeserver will instead respond with HTTP 403 and a standard error response with an `errcode` of `M_FORBIDDEN`.",
);

/// Read the other way round: a field the capability has is a limit the server enforces.
pub const CAPABILITY_UNENFORCED_ABSENT: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    "Delayed event limits as a capability",
    "If the server doesn't enforce one of these limits, its representative field MUST be absent from the capability.",
);

pub const LIMIT_SCHEDULED: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    SCHEDULING,
    "The homeserver SHOULD enforce a limit of how many delayed events a user may have scheduled at once",
);

pub const MANAGEMENT_RATE_LIMIT: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    MANAGING_2026,
    "For all `action`s, the homeserver SHOULD apply rate limiting to provide mitigation against the Resource Exhaustion threat.",
);

pub const SCHEDULING_RATE_LIMIT: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    SCHEDULING,
    "The homeserver SHOULD apply rate limiting to the scheduling of delayed events to provide mitigation against the Resource Exhaustion threat.",
);

pub const SEND_ACTION_RATE_LIMIT: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    MANAGING_2026,
    "Where the `action` is `send`, the homeserver SHOULD apply rate limiting to provide mitigation against the High Volume of Messages threat.",
);

pub const SEND_TIME_RATE_LIMIT: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    "Rate-limiting at the point of sending",
    "If a delayed event fails to be sent at its scheduled send time due to a rate limit failure, the homeserver SHOULD NOT retry sending the event. Instead, the event will be stored as a finalised delayed event with its `error` field set, available to be retrieved by a client for the user who requested the event.",
);

pub const LOOKUP_RATE_LIMIT: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    GETTING_2026,
    "The homeserver SHOULD apply rate limiting to these endpoints to provide mitigation against the Resource Exhaustion threat.",
);

pub const MANAGEMENT_AUTHENTICATED: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    MANAGING_2026,
    "A set of new authenticated Client-Server API endpoints at `POST /_matrix/client/v1/delayed_events/{delay_id}/{action}` allows clients to manage the sending of scheduled delayed events.",
);

pub const ALL_AUTHENTICATED: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    "Authentication",
    "All new endpoints are authenticated.",
);

/// The unstable management endpoints are the stable ones under another name: same rules.
pub const UNSTABLE_MANAGEMENT_PATH: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    "Unstable prefix",
    "`POST /_matrix/client/unstable/org.matrix.msc4140/delayed_events/{delay_id}/{action}` should be used instead of the `POST /_matrix/client/v1/delayed_events/{delay_id}/{action}` endpoints.",
);

pub const STABLE_FLAG: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    "Unstable prefix",
    "Once the MSC is accepted, but before the homeserver advertises the spec version that includes the MSC, the homeserver should advertise `org.matrix.msc4140.stable` as an unstable feature flag to let clients know that they can use the stable endpoints for sending and managing delayed events.",
);

pub const DELAY_ID_UNIQUE: SpecRef = SpecRef::msc4140(
    Rev::Dec2025,
    SCHEDULING,
    "It MUST be globally unique and SHOULD be as difficult to guess/craft as an access token, so that knowledge of a `delay_id` may securely grant control of it via the management endpoint.",
);

pub const GUESTS: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    "Guest accounts",
    "All delayed event related endpoints are available to guest accounts.",
);

pub const LAST_WILL: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    "MSC4140: Cancellable delayed events",
    "While the client is still connected and in the call, it could repeatedly push the scheduled time forward as a kind of \"heartbeat\" mechanism. If the client then loses connectivity, the server would emit the \"hang up\" event at the scheduled time resulting in reliable call membership status for other participants.",
);

pub const SELF_DESTRUCT: SpecRef = SpecRef::msc4140(
    Rev::Jul2026,
    "MSC4140: Cancellable delayed events",
    "This mechanism has a wide range of possible applications such as tea timers, reminders, self-destructing messages (where the redaction is scheduled to be sent later), or other ephemeral events such as temporary power level changes.",
);

pub const REMINDERS: SpecRef = SpecRef::msc4140(
    Rev::Dec2025,
    "Use case specific considerations",
    "Delayed events can be used for many different features: tea timers, reminders, or ephemeral events could be implemented using delayed events, where clients send room events with intentional mentions or a redaction as a delayed event. It can even be used to send temporal power levels/mutes or bans.",
);
