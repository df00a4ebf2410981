//! content: what a client schedules comes back unchanged, JSON-equal, in the listing, the
//! single lookup and the event sent: text in many scripts (outside the Basic Multilingual Plane
//! too), nested objects and arrays, and a large body.

use super::texts::{CONTENT_AS_SCHEDULED, CONTENT_SENT};
use super::{LONG_DELAY_MS, SHORT_DELAY_MS};
use crate::prelude::*;

/// The content key that tells a case's events apart (ASCII, so a server that mangles other text
/// still has its event recognised, and judged).
const MARKER: &str = "org.example.dec.marker";

/// Size of the large body's text: half of the 64 KiB a whole event may take.
const LARGE_TEXT_BYTES: usize = 32 * 1024;

/// How long "immediately" may take for the send action (as in `send_now`).
const IMMEDIATE: Duration = Duration::from_secs(5);

/// One kind of content a case schedules, and the event that carries it.
struct Sample {
    kind: &'static str,
    event: DelayedEvent,
}

impl Sample {
    /// Whether an event seen over `/sync` carries this sample's marker (whatever else changed).
    fn marks(&self, seen: &Observed) -> bool {
        seen.room_id == self.event.room_id
            && seen.content().get(MARKER) == self.event.content.get(MARKER)
    }
}

/// Text in many scripts, with characters outside the Basic Multilingual Plane (emoji, a ZWJ
/// sequence, a flag), combining marks, right-to-left text and JSON escapes; non-ASCII keys too.
/// Storing content as bytes rather than text lost such characters in Synapse (#19360 moved the
/// column to text).
fn non_ascii(room: &str, marker: String) -> Sample {
    let text = "Grüße — ¿qué tal? Ελληνικά, русский, 日本語, 한국어, עברית, العربية, हिन्दी; \
                🎉 👩‍👩‍👧‍👦 🇩🇪 e\u{301} \u{200b}; \"quoted\" \\ back\\slash\ttab\nnew line";
    let content = json!({
        "msgtype": "m.text",
        "body": text,
        MARKER: marker,
        "org.example.dec.ключ": {"键": "值", "emoji 🔑": "✓"},
    });
    Sample {
        kind: "non-ASCII text",
        event: DelayedEvent::message(room, "").with_content(content),
    }
}

/// A state event whose content nests objects and arrays several levels deep, with every JSON
/// type canonical JSON allows (integers at the edges of its range, booleans, null, empties).
fn nested(room: &str, marker: String) -> Sample {
    // A state key of its own: under 2024-10 a user's newer state for the same key cancels it.
    let state_key = marker.clone();
    let content = json!({
        MARKER: marker,
        "level1": {"level2": {"level3": {"level4": {
            "list": [1, [2, [3, {"null": null}]], {"true": true, "false": false}],
            "empty object": {},
            "empty list": [],
            "edges": [0, -1, 9_007_199_254_740_991_i64, -9_007_199_254_740_991_i64],
        }}}},
    });
    Sample {
        kind: "nested objects",
        event: DelayedEvent::state(room, "org.example.dec.nested", &state_key, content),
    }
}

/// A message with a text of `LARGE_TEXT_BYTES` that never repeats itself, so that a cut or a
/// lost piece anywhere shows.
fn large(room: &str, marker: String) -> Sample {
    let mut text = String::with_capacity(LARGE_TEXT_BYTES + 8);
    let mut n = 0u32;
    while text.len() < LARGE_TEXT_BYTES {
        text.push_str(&format!("{n:06} "));
        n += 1;
    }
    let content = json!({"msgtype": "m.text", "body": "a large body", MARKER: marker, "org.example.dec.large": text});
    Sample {
        kind: "a large body",
        event: DelayedEvent::message(room, "").with_content(content),
    }
}

fn samples(ctx: &Ctx, room: &str) -> [Sample; 3] {
    [
        non_ascii(room, ctx.unique("non-ascii")),
        nested(room, ctx.unique("nested")),
        large(room, ctx.unique("large")),
    ]
}

/// Where `got` first differs from `expected` (a JSON pointer and both values, shortened), if
/// anywhere: a large body's failure message names the place rather than quoting it whole.
fn first_difference(expected: &Value, got: &Value, path: &str) -> Option<String> {
    match (expected, got) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                let at = format!("{path}/{key}");
                match have.get(key) {
                    None => return Some(format!("{at} is missing")),
                    Some(other) => {
                        if let Some(d) = first_difference(value, other, &at) {
                            return Some(d);
                        }
                    }
                }
            }
            have.keys()
                .find(|k| !want.contains_key(*k))
                .map(|k| format!("{path}/{k} was added"))
        }
        (Value::Array(want), Value::Array(have)) if want.len() == have.len() => want
            .iter()
            .zip(have)
            .enumerate()
            .find_map(|(i, (w, h))| first_difference(w, h, &format!("{path}/{i}"))),
        (Value::String(want), Value::String(have)) if want != have => {
            let same = want
                .chars()
                .zip(have.chars())
                .take_while(|(w, h)| w == h)
                .count();
            let around = |s: &str| {
                s.chars()
                    .skip(same.saturating_sub(8))
                    .take(24)
                    .collect::<String>()
            };
            Some(format!(
                "{path} differs from character {same} on: expected …{:?}…, got …{:?}… ({} and {} bytes long)",
                around(want),
                around(have),
                want.len(),
                have.len()
            ))
        }
        _ if expected == got => None,
        _ => {
            let short = |v: &Value| v.to_string().chars().take(80).collect::<String>();
            Some(format!(
                "{} is {} instead of {}",
                if path.is_empty() { "the content" } else { path },
                short(got),
                short(expected)
            ))
        }
    }
}

/// Judges one place's copy of a sample's content: JSON-equal to what was scheduled.
fn check_same_content(source: &str, sample: &Sample, got: Option<&Value>) -> CaseResult {
    let Some(got) = got else {
        fail!(
            "{source} has no content for the delayed event with {}",
            sample.kind
        )
    };
    if let Some(difference) = first_difference(&sample.event.content, got, "") {
        fail!(
            "{source} changed the content of the delayed event with {}: {difference}",
            sample.kind
        );
    }
    Ok(())
}

case! {
    name: unchanged_in_listing_and_lookup,
    title: "The listing and the single lookup give back the scheduled content unchanged: non-ASCII text, nested objects, a large body",
    level: Must,
    spec: CONTENT_AS_SCHEDULED,
}
async fn unchanged_in_listing_and_lookup(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    let mut scheduled = Vec::new();
    for sample in samples(&ctx, &room) {
        let delay_id = alice
            .schedule_ok(&sample.event, LONG_DELAY_MS)
            .await?
            .delay_id;
        scheduled.push((sample, delay_id));
    }
    // A worker may answer from before the last scheduling: asked until every event is listed.
    let items = alice
        .list_settled(|items| {
            scheduled
                .iter()
                .all(|(_, id)| items.iter().any(|i| i.delay_id() == Some(id)))
        })
        .await?;
    for (sample, delay_id) in &scheduled {
        let Some(item) = items.iter().find(|i| i.delay_id() == Some(delay_id)) else {
            fail!(
                "the listing lacks the scheduled event {delay_id} (the one with {})",
                sample.kind
            )
        };
        check_same_content("the listing", sample, item.raw.get("content"))?;
        if ctx.features().single_lookup {
            let resp = alice.lookup_settled(delay_id, |r| r.status == 200).await?;
            check!(
                resp.status == 200,
                "looking up one's own scheduled event (the one with {}) should answer 200, but {}",
                sample.kind,
                resp.describe()
            );
            check_same_content("the single-item lookup", sample, resp.body.get("content"))?;
        }
    }
    Ok(())
}

case! {
    name: unchanged_when_sent,
    title: "The event sent, by its timer or the send action, carries the scheduled content unchanged",
    level: Must,
    spec: CONTENT_SENT,
}
async fn unchanged_when_sent(ctx: Ctx) -> CaseResult {
    let alice = ctx.user("alice").await?;
    let room = ctx.room(&alice, &[]).await?;
    alice.start_sync().await?;
    let mut by_timer = Vec::new();
    for sample in samples(&ctx, &room) {
        let scheduled = alice.schedule_ok(&sample.event, SHORT_DELAY_MS).await?;
        by_timer.push((sample, scheduled));
    }
    // One more of each, sent by the send action instead of its timer.
    let mut by_action = Vec::new();
    for sample in samples(&ctx, &room) {
        let scheduled = alice.schedule_ok(&sample.event, LONG_DELAY_MS).await?;
        let sent_at = Instant::now();
        alice.manage_ok(&scheduled.delay_id, Action::Send).await?;
        by_action.push((sample, sent_at));
    }
    for (sample, sent_at) in &by_action {
        let Some(seen) = alice
            .wait_for(*sent_at + IMMEDIATE, |o| sample.marks(o))
            .await?
        else {
            fail!(
                "after the send action answered success, the event with {} did not arrive within {} s",
                sample.kind,
                IMMEDIATE.as_secs()
            )
        };
        check_same_content(
            "the event sent by the send action",
            sample,
            Some(seen.content()),
        )?;
    }
    for (sample, scheduled) in &by_timer {
        let what = format!("the delayed event with {}", sample.kind);
        let seen = ctx
            .expect_sent(&alice, &what, scheduled.due(), |o| sample.marks(o))
            .await?;
        check_same_content("the event sent by its timer", sample, Some(seen.content()))?;
    }
    Ok(())
}

pub fn cases() -> Vec<Case> {
    cases![unchanged_in_listing_and_lookup, unchanged_when_sent]
}
