//! The faults: each one deliberate deviation from correct behaviour, breaking one requirement.

/// One deliberate deviation from correct behaviour. Each breaks exactly one requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// The timer sends 200 ms before the due time (half the delay for shorter delays);
    /// `origin_server_ts` is the actual (early) send time.
    SendEarly,
    /// A server that never heard of MSC4140: the delay query parameter is ignored (the event is
    /// sent at once, answered with its `event_id`), the delayed-events endpoints are unknown
    /// (404 `M_UNRECOGNIZED`), and neither `/versions` nor `/capabilities` mention the feature.
    IgnoresDelay,
    /// Sent on time, but `origin_server_ts` claims due time + 40 s.
    LateTimestamp,
    /// `cancel` answers 200 but changes nothing: the event is still sent at its time.
    IgnoreCancel,
    /// `cancel` works (never sent, lookup says cancelled) but the event stays in the listing.
    CancelKeepsListing,
    /// `cancel` answers 200 but changes nothing, and the timer then sends the event
    /// [`IGNORED_CANCEL_LATE_BY_MS`](super::delayed::IGNORED_CANCEL_LATE_BY_MS) after its due
    /// time: within the 30 s a server may add, and after events due just after it.
    CancelIgnoredSentLate,
    /// `send` answers 200 but the event stays scheduled and is sent at its due time.
    SendActionNoop,
    /// `send` sends now, and the timer sends it a second time at its due time.
    SendActionTwice,
    /// `send` of a delayed state event sends it with state_key "" instead of its own.
    SendActionDropsStateKey,
    /// `restart` answers 200 but the due time is unchanged.
    RestartNoop,
    /// The listing shows every user's scheduled events.
    ListingLeaksOthers,
    /// The listing also shows finalised (sent, cancelled, failed) events.
    ListingIncludesFinalised,
    /// The listing is in reverse due order.
    ListingUnsorted,
    /// Listing and single lookup answer 200 without a token, as the first registered user.
    ListingWithoutAuth,
    /// Listing items lack `content`.
    ListingDropsContent,
    /// Single lookup of another user's delay_id answers 200 with its details.
    SingleLookupLeaks,
    /// Single lookup `GET .../delayed_events/{delay_id}` is not offered (404 M_UNRECOGNIZED).
    SingleLookupMissing,
    /// Scheduling with a used transaction id schedules a second event with a new delay_id.
    IdempotencyBroken,
    /// A negative delay is accepted (and sent at the next request).
    AcceptNegativeDelay,
    /// A delay of 0 gives 500 M_UNKNOWN instead of 400 M_INVALID_PARAM.
    ZeroDelayServerError,
    /// A non-integer delay (1.5, "abc", "1000" as a JSON string) is scheduled with 1000 ms.
    AcceptNonIntegerDelay,
    /// A delay above max_delay_ms is accepted.
    OverMaxAccepted,
    /// A delay above max_delay_ms is refused with 400 M_INVALID_PARAM: no revision's errcode.
    OverMaxWrongErrcode,
    /// Management of an unknown delay_id answers 400 M_UNKNOWN instead of 404 M_NOT_FOUND.
    UnknownDelayIdWrongError,
    /// Body-form management with a missing, non-string or unknown action answers 200 {}.
    BodyActionUnvalidated,
    /// A malformed JSON body on management or scheduling is treated as `{}` instead of M_NOT_JSON.
    MalformedJsonAccepted,
    /// Scheduling into an unknown room answers 200 with a delay_id (it fails at send time).
    UnknownRoomAccepted,
    /// Non-object content is scheduled instead of 400 M_BAD_JSON.
    InvalidContentAccepted,
    /// `/versions` lacks `org.matrix.msc4140` in `unstable_features`.
    NoVersionsFlag,
    /// The capability says max_delay_ms, but delays above max_delay_ms - 1000 are rejected.
    CapabilityOverstatesMaxDelay,
    /// Sent delayed events never carry the delay_id in `unsigned`.
    UnsignedMissing,
    /// The delay_id in `unsigned` is shown to every user, not only the sender.
    UnsignedLeaked,
    /// The delay_id in `unsigned` is present over /sync but absent over /messages.
    UnsignedMissingInMessages,
    /// `send` on a cancelled (or failed) event answers 200 and sends it.
    ActionsOnCancelledSucceed,
    /// `cancel` on a sent event answers 200 {} (instead of 409) and does nothing.
    ActionsOnSentWrong,
    /// A newer state event from another user does not cancel a pending delayed state event.
    StateOverwriteIgnored,
    /// The owner's own newer state event cancels their pending delayed state event too.
    StateOverwriteBySelfCancels,
    /// Power levels are checked at scheduling (403 there) instead of when the event is sent.
    PowerLevelsAtSchedule,
    /// No per-user limit on scheduled delayed events.
    LimitNotEnforced,
    /// The per-user limit answers 429 without a `Retry-After` header.
    LimitWrongRetryAfter,
    /// Management works without a token and on other users' delay_ids (the 2025-12 text).
    MgmtWithoutAuth,
    /// `send` of an event its owner may not send answers 200 and sends it anyway.
    SendActionIgnoresPermissions,
    /// The single lookup answers without `content`.
    SingleLookupDropsContent,
    /// Management without a token, or of another user's delay_id, answers 400 M_UNKNOWN: neither
    /// the refusal of 2024-10 and 2026-07 nor the delegation of 2025-12.
    MgmtAuthWrongError,
    /// The split form answers 200 {} to an unknown action path and does nothing.
    SplitUnknownActionAccepted,
    /// `/capabilities` has no delayed-events capability.
    CapabilityMissing,

    // --- homeserver restart (through `FakeTarget::restart`) -------------------------------------
    /// A restart drops every scheduled delayed event: never sent, unknown to lookups afterwards.
    LosesEventsOnRestart,
    /// Events that fell due while the server was down are sent at start-up in reverse due order.
    OverdueOutOfOrder,
    /// Events that fell due while the server was down are never sent (they stay listed as
    /// scheduled); events due after the restart are still sent.
    OverdueNotSent,
    /// After a restart the listing answers `[]`, though events stay scheduled and are sent.
    ListingEmptyAfterRestart,
    /// Coming back from a restart, the server sends again every delayed event it had sent
    /// before (the record of having sent them was lost).
    ResendsSentAfterRestart,
    /// After a hard kill (`FakeTarget::kill`), the events that fell due while it was down are
    /// each sent twice.
    OverdueTwiceAfterKill,
    /// After a restart the timer stands still (neither the overdue events nor later ones are
    /// sent, whatever requests such as `/sync` come in) until the first delayed-events API
    /// request arrives, from anyone.
    TimerStallsAfterRestart,

    // --- rate limits (only with `FakeOptions::rate_limits`) -------------------------------------
    /// Management actions (both forms) are never rate-limited.
    MgmtNotRateLimited,
    /// Lookups (listing and single lookup) are never rate-limited.
    LookupsNotRateLimited,

    // --- guests and deactivated accounts ---------------------------------------------------------
    /// Every delayed-event endpoint answers 403 `M_GUEST_ACCESS_FORBIDDEN` to guest accounts.
    GuestsRefused,
    /// Deactivation leaves the user's delayed events scheduled, and they are sent at their time
    /// without any authorisation check (though their owner has left every room).
    DeactivatedStillSends,

    // --- state overwrite (the 2024-10 rule) ------------------------------------------------------
    /// Another user's newer state event cancels delayed state events of the same type in the room
    /// whatever their state_key, and those with the same (type, state_key) in other rooms; another
    /// user's message event cancels delayed message events of the same type in the room.
    StateOverwriteTooBroad,
    /// A state overwrite cancels the delayed event (never sent), but it stays in the listing.
    StateOverwriteCancelsButListed,
    /// The 2024-10 overwrite rule applies, but only [`OVERWRITE_LAG_MS`] after the newer state
    /// event was accepted (as a server that processes state changes in the background, behind).
    StateOverwriteLate,
    /// The 2024-10 overwrite rule applies in the background, [`BACKGROUND_LAG_MS`] after the newer
    /// state event was accepted (well within a short delay), to every delayed event still
    /// scheduled then: also to one scheduled after the state change was answered, which a
    /// correct server never cancels (the ordering race of a server that processes state late).
    StateOverwriteProcessedLate,

    // --- permissions at send time ----------------------------------------------------------------
    /// A `send` action refused for lack of permission finalises the event (failed) instead of
    /// keeping it scheduled.
    SendActionFailureFinalises,
    /// Delayed events of a user who left or was kicked from the room are sent anyway.
    LeftMemberStillSends,

    // --- field scenarios ---------------------------------------------------------------------------
    /// The timer sends at most [`BURST_CAPACITY`] events of one room within [`BURST_WINDOW_MS`];
    /// the rest of a burst is forgotten (never sent, still listed).
    BurstDropsExcess,
    /// Any management action on a finalised (sent or cancelled) event also cancels every other
    /// scheduled event of its owner.
    ActionOnFinalisedCancelsOthers,
    /// A `restart` re-arms every scheduled delayed event in the room, whoever owns it.
    RestartRearmsWholeRoom,
    /// The management rate limit (with `FakeOptions::rate_limits`) counts every user's actions
    /// in one bucket, as a limit per client address would for users behind one address.
    MgmtRateLimitPerAddress,

    // --- per-user limit --------------------------------------------------------------------------
    /// Cancelled delayed events still count against the per-user limit.
    LimitNotFreedByCancel,
    /// The limit's `Retry-After` is the time until the user's latest due event, not the earliest.
    LimitRetryAfterWrongValue,

    // --- delay_id quality ------------------------------------------------------------------------
    /// delay_ids are "1", "2", "3", ... (guessable).
    SequentialDelayIds,
    /// A finalised (sent or cancelled) event's delay_id is handed out again to the next scheduled
    /// event, which then answers to it.
    ReusedDelayIds,

    // --- content of sent events ------------------------------------------------------------------
    /// A delayed `m.room.redaction` is sent but redacts nothing.
    DelayedRedactionIgnored,
    /// The event sent from a delayed event loses its content's `m.mentions`.
    DelayedContentMangled,

    // --- reported scheduling times ---------------------------------------------------------------
    /// The listing and the single lookup report `scheduled_at` [`REPORTED_AHEAD_MS`] later than
    /// the event was scheduled (or last restarted); the timer itself keeps the right time.
    ReportedTimeInFuture,
    /// After a `restart` action the listing and the single lookup still report the time the
    /// event was first scheduled, though the restart did re-arm its timer.
    ReportedTimeStale,

    // --- homeserver restart, continued -------------------------------------------------------------
    /// A clean restart ([`FakeHomeserver::begin_restart`], not a kill) first sends every
    /// scheduled delayed event, due or not (a server that flushes its queue when it stops).
    FlushesOnShutdown,
}

impl Fault {
    /// Every fault, for self-tests that iterate over them.
    pub const ALL: &'static [Fault] = &[
        Fault::SendEarly,
        Fault::LateTimestamp,
        Fault::IgnoreCancel,
        Fault::CancelKeepsListing,
        Fault::CancelIgnoredSentLate,
        Fault::SendActionNoop,
        Fault::SendActionTwice,
        Fault::SendActionDropsStateKey,
        Fault::RestartNoop,
        Fault::ListingLeaksOthers,
        Fault::ListingIncludesFinalised,
        Fault::ListingUnsorted,
        Fault::ListingWithoutAuth,
        Fault::ListingDropsContent,
        Fault::SingleLookupLeaks,
        Fault::SingleLookupMissing,
        Fault::IdempotencyBroken,
        Fault::AcceptNegativeDelay,
        Fault::ZeroDelayServerError,
        Fault::AcceptNonIntegerDelay,
        Fault::OverMaxAccepted,
        Fault::OverMaxWrongErrcode,
        Fault::UnknownDelayIdWrongError,
        Fault::BodyActionUnvalidated,
        Fault::MalformedJsonAccepted,
        Fault::UnknownRoomAccepted,
        Fault::InvalidContentAccepted,
        Fault::NoVersionsFlag,
        Fault::CapabilityOverstatesMaxDelay,
        Fault::UnsignedMissing,
        Fault::UnsignedLeaked,
        Fault::UnsignedMissingInMessages,
        Fault::ActionsOnCancelledSucceed,
        Fault::ActionsOnSentWrong,
        Fault::StateOverwriteIgnored,
        Fault::StateOverwriteBySelfCancels,
        Fault::PowerLevelsAtSchedule,
        Fault::LimitNotEnforced,
        Fault::LimitWrongRetryAfter,
        Fault::MgmtWithoutAuth,
        Fault::SendActionIgnoresPermissions,
        Fault::SingleLookupDropsContent,
        Fault::MgmtAuthWrongError,
        Fault::SplitUnknownActionAccepted,
        Fault::CapabilityMissing,
        Fault::LosesEventsOnRestart,
        Fault::OverdueOutOfOrder,
        Fault::OverdueNotSent,
        Fault::ListingEmptyAfterRestart,
        Fault::MgmtNotRateLimited,
        Fault::LookupsNotRateLimited,
        Fault::GuestsRefused,
        Fault::DeactivatedStillSends,
        Fault::StateOverwriteTooBroad,
        Fault::StateOverwriteCancelsButListed,
        Fault::StateOverwriteLate,
        Fault::StateOverwriteProcessedLate,
        Fault::ResendsSentAfterRestart,
        Fault::OverdueTwiceAfterKill,
        Fault::TimerStallsAfterRestart,
        Fault::BurstDropsExcess,
        Fault::ActionOnFinalisedCancelsOthers,
        Fault::RestartRearmsWholeRoom,
        Fault::MgmtRateLimitPerAddress,
        Fault::SendActionFailureFinalises,
        Fault::LeftMemberStillSends,
        Fault::LimitNotFreedByCancel,
        Fault::LimitRetryAfterWrongValue,
        Fault::SequentialDelayIds,
        Fault::ReusedDelayIds,
        Fault::DelayedRedactionIgnored,
        Fault::DelayedContentMangled,
        Fault::IgnoresDelay,
        Fault::ReportedTimeInFuture,
        Fault::ReportedTimeStale,
        Fault::FlushesOnShutdown,
    ];
}
