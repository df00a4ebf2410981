//! A case's normalised observation: what the server answered, free of anything that changes from
//! run to run (room, user, event and delay ids, transaction ids, tokens, timestamps), so that two
//! runs compare. Derived from the evidence by the harness, never written by a case.
//!
//! One line per distinct answer, in the order first seen:
//! `POST /_matrix/client/unstable/org.matrix.msc4140/delayed_events/{delay_id}/cancel → 404 M_NOT_FOUND {errcode, error}`.
//! Set-up requests (registration, room creation, joins) and `/sync` summaries are left out:
//! they are the same in every run and say nothing about delayed events.

use crate::evidence::Exchange;
use percent_encoding::percent_decode_str;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// Paths of set-up requests, which every case makes and no case judges.
const SET_UP: [&str; 6] = [
    "/register",
    "/login",
    "/createRoom",
    "/join",
    "/invite",
    "/sync",
];

/// A request every case makes to set itself up (registration, rooms, `/sync`), judged by none.
pub fn is_set_up(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or("");
    SET_UP.iter().any(|p| path.contains(p))
}

/// Keys whose string values are random per run and may appear in paths.
const ID_KEYS: [&str; 4] = ["delay_id", "event_id", "room_id", "next_batch"];

pub fn observe(evidence: &[Exchange]) -> Vec<String> {
    let mut random = HashMap::new();
    for exchange in evidence {
        collect_ids(&exchange.body, &mut random);
    }
    let mut seen = HashSet::new();
    evidence
        .iter()
        .filter(|e| {
            !SET_UP
                .iter()
                .any(|p| e.path.split('?').next().unwrap_or("").contains(p))
        })
        .map(|e| {
            format!(
                "{} {} → {}{} {}",
                e.method,
                normalise_path(&e.path, &random),
                e.status,
                e.body
                    .get("errcode")
                    .and_then(Value::as_str)
                    .map(|c| format!(" {c}"))
                    .unwrap_or_default(),
                shape(&e.body, 0)
            )
        })
        .filter(|line| seen.insert(line.clone()))
        .collect()
}

/// Random ids found in answers, each with the key it came under.
type RandomIds = HashMap<String, &'static str>;

fn collect_ids(value: &Value, out: &mut RandomIds) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let id_key = ID_KEYS.iter().find(|k| **k == key.as_str());
                match (inner, id_key) {
                    (Value::String(s), Some(k)) => {
                        out.insert(s.clone(), k);
                    }
                    _ => collect_ids(inner, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_ids(i, out)),
        _ => {}
    }
}

/// The path with each run-specific segment (and query value) replaced by a placeholder.
fn normalise_path(path: &str, random: &RandomIds) -> String {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut out: Vec<String> = path
        .split('/')
        .map(|segment| placeholder(segment, random).unwrap_or_else(|| segment.to_string()))
        .collect::<Vec<_>>();
    let mut text = out.join("/");
    if let Some(query) = query {
        out = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, value)) => match placeholder(value, random) {
                    Some(p) => format!("{key}={p}"),
                    None => pair.to_string(),
                },
                None => pair.to_string(),
            })
            .collect();
        text.push('?');
        text.push_str(&out.join("&"));
    }
    text
}

fn placeholder(segment: &str, random: &RandomIds) -> Option<String> {
    let decoded = percent_decode_str(segment).decode_utf8_lossy();
    if is_txn_id(&decoded) {
        return Some("{txn_id}".into());
    }
    if let Some(key) = random.get(decoded.as_ref()) {
        return Some(format!("{{{key}}}"));
    }
    let replaced = replace_matrix_ids(&decoded);
    (replaced != decoded).then_some(replaced)
}

/// Replaces Matrix identifiers (`@user:server`, `!room:server`, `$event`, `#alias:server`)
/// anywhere in a text, e.g. in a state key `key-@alice_x7f:localhost`.
fn replace_matrix_ids(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    let mut previous: Option<char> = None;
    while let Some(c) = chars.next() {
        let name = match c {
            '@' => "user_id",
            '!' => "room_id",
            '$' => "event_id",
            '#' => "alias",
            _ => "",
        };
        let starts_id = !name.is_empty()
            && previous.is_none_or(|p| !p.is_alphanumeric())
            && chars
                .peek()
                .is_some_and(|n| n.is_alphanumeric() || *n == '_');
        if starts_id {
            // The localpart (or opaque event id), then an optional `:server`.
            while chars
                .peek()
                .is_some_and(|n| !matches!(n, '/' | '?' | '&' | '"' | ' '))
            {
                chars.next();
            }
            out.push_str(&format!("{{{name}}}"));
            previous = Some('}');
        } else {
            out.push(c);
            previous = Some(c);
        }
    }
    out
}

/// The placeholder for a delay the harness computed from its own clock (a control event due just
/// after another, a burst aimed at one moment), which differs from run to run.
pub const HARNESS_DELAY: &str = "{ms}";

/// The observations of one case in several runs, with the harness's own varying numbers
/// replaced: a delay in a request's query (`...delay=847`) that no other run sent in that request,
/// where another run sent the same request with a value of its own (`delay=458`), is one the
/// harness computed from its clock, so both read `delay={ms}`. A delay runs share (`delay=1000`,
/// `delay=86400001`) is the case's own and stays, as does every value of a request only one run
/// made. Lines that become equal are merged.
pub fn without_harness_numbers(observations: &[&[String]]) -> Vec<Vec<String>> {
    // Per line: its template (each delay value taken out) and the values.
    let split: Vec<Vec<(String, Vec<String>)>> = observations
        .iter()
        .map(|lines| lines.iter().map(|l| delay_template(l)).collect())
        .collect();
    // Per template and values: the runs that sent them.
    let mut senders: HashMap<(&str, &[String]), HashSet<usize>> = HashMap::new();
    for (run, lines) in split.iter().enumerate() {
        for (template, values) in lines.iter().filter(|(_, v)| !v.is_empty()) {
            senders
                .entry((template.as_str(), values.as_slice()))
                .or_default()
                .insert(run);
        }
    }
    // Per template: the runs that sent it with values no other run sent.
    let mut own_values: HashMap<&str, HashSet<usize>> = HashMap::new();
    for ((template, _), runs) in &senders {
        if let [run] = runs.iter().collect::<Vec<_>>().as_slice() {
            own_values.entry(template).or_default().insert(**run);
        }
    }
    split
        .iter()
        .enumerate()
        .map(|(run, lines)| {
            let mut seen = HashSet::new();
            lines
                .iter()
                .map(|(template, values)| {
                    let alone = senders
                        .get(&(template.as_str(), values.as_slice()))
                        .is_some_and(|runs| runs.len() == 1);
                    let counterpart = own_values
                        .get(template.as_str())
                        .is_some_and(|runs| runs.iter().any(|r| *r != run));
                    let harness = alone && counterpart;
                    fill_template(
                        template,
                        values.iter().map(|v| match harness {
                            true => HARNESS_DELAY,
                            false => v.as_str(),
                        }),
                    )
                })
                .filter(|line| seen.insert(line.clone()))
                .collect()
        })
        .collect()
}

/// A line with each query delay's value taken out (`delay=\u{0}`), and the values.
fn delay_template(line: &str) -> (String, Vec<String>) {
    let mut template = String::new();
    let mut values = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("delay=") {
        let (head, tail) = rest.split_at(at + "delay=".len());
        let digits = tail.chars().take_while(char::is_ascii_digit).count();
        template.push_str(head);
        // A value the case chose that is not a whole number (`delay=1.5`) stays as it is.
        let whole = digits > 0 && !tail[digits..].starts_with('.');
        if whole {
            template.push('\u{0}');
            values.push(tail[..digits].to_string());
        }
        rest = if whole { &tail[digits..] } else { tail };
    }
    template.push_str(rest);
    (template, values)
}

fn fill_template<'a>(template: &str, mut values: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::with_capacity(template.len());
    for c in template.chars() {
        match c {
            '\u{0}' => out.push_str(values.next().unwrap_or("")),
            c => out.push(c),
        }
    }
    out
}

/// The harness's own transaction ids (`client::new_txn_id`).
fn is_txn_id(text: &str) -> bool {
    text.len() == 19 && text.starts_with("dec") && text[3..].chars().all(|c| c.is_ascii_hexdigit())
}

/// The structure of a JSON body: keys (sorted) and nested shapes, no values.
fn shape(value: &Value, depth: usize) -> String {
    match value {
        Value::Object(map) if depth < 3 => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| match &map[k] {
                    inner @ Value::Object(m) if !m.is_empty() => {
                        format!("{k}: {}", shape(inner, depth + 1))
                    }
                    inner @ Value::Array(_) => format!("{k}: {}", shape(inner, depth + 1)),
                    _ => k.clone(),
                })
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        Value::Object(_) => "{…}".into(),
        Value::Array(items) => match items.first() {
            None => "[]".into(),
            Some(first) => format!("[{}…]", shape(first, depth + 1)),
        },
        Value::String(_) => "text".into(),
        Value::Null => "null".into(),
        _ => "value".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exchange(method: &str, path: &str, status: u16, body: Value) -> Exchange {
        Exchange {
            method: method.into(),
            path: path.into(),
            request: None,
            status,
            body,
        }
    }

    #[test]
    fn the_harness_s_own_delays_do_not_show_across_runs() {
        let line = |delay: &str| {
            format!("PUT /x/send/m.room.message/{{txn_id}}?org.matrix.msc4140.delay={delay} → 200 {{delay_id}}")
        };
        let a = vec![line("1000"), line("847"), "GET /y → 200 {}".to_string()];
        let b = vec![line("1000"), line("458"), "GET /y → 200 {}".to_string()];
        let c = vec![line("86400001"), line("1.5")];
        let only = vec![line("600000")];
        let out = without_harness_numbers(&[&a, &b, &c, &only, &[]]);
        assert_eq!(
            out[0],
            [line("1000"), line("{ms}"), "GET /y → 200 {}".into()]
        );
        assert_eq!(out[1], out[0]);
        // Sent by one run alone where others sent values of their own: the harness's.
        assert_eq!(out[2], [line("{ms}"), line("1.5")]);
        assert_eq!(out[3], [line("{ms}")]);
        assert!(out[4].is_empty());
        // A request one run alone made keeps its values.
        let alone = without_harness_numbers(&[&a, &["GET /y → 200 {}".to_string()]]);
        assert_eq!(alone[0], a);
    }

    #[test]
    fn ids_tokens_and_repeats_do_not_show() {
        let run = |room: &str, delay: &str, txn: &str| {
            observe(&[
                exchange("POST", "/_matrix/client/v3/createRoom", 200, json!({"room_id": room})),
                exchange(
                    "PUT",
                    &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}?org.matrix.msc4140.delay=1000"),
                    200,
                    json!({"delay_id": delay}),
                ),
                exchange("POST", &format!("/x/delayed_events/{delay}/cancel"), 404,
                    json!({"errcode": "M_NOT_FOUND", "error": "no such delay"})),
                exchange("POST", &format!("/x/delayed_events/{delay}/cancel"), 404,
                    json!({"errcode": "M_NOT_FOUND", "error": "no such delay"})),
            ])
        };
        let first = run("%21abc%3Ahs", "syd_aaaa", "dec0123456789abcdef");
        assert_eq!(
            replace_matrix_ids("key-@dec_alice_x7f:localhost"),
            "key-{user_id}"
        );
        assert_eq!(
            replace_matrix_ids("org.example.dec.timing"),
            "org.example.dec.timing"
        );
        let second = run("%21xyz%3Ahs", "syd_bbbb", "decfedcba9876543210");
        assert_eq!(first, second);
        assert_eq!(
            first,
            vec![
                "PUT /_matrix/client/v3/rooms/{room_id}/send/m.room.message/{txn_id}?org.matrix.msc4140.delay=1000 → 200 {delay_id}",
                "POST /x/delayed_events/{delay_id}/cancel → 404 M_NOT_FOUND {errcode, error}",
            ]
        );
    }
}
