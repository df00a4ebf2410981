//! The evidence of a case: each request and its answer as the results show them, secrets
//! redacted and bodies capped. The client records it; results, observations and reports read it.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// JSON keys whose values never leave the harness.
const SECRET_KEYS: [&str; 5] = [
    "access_token",
    "refresh_token",
    "password",
    "mac",
    "new_password",
];

/// Largest body kept in evidence; bigger ones are cut so result files stay readable.
const MAX_EVIDENCE_BODY: usize = 4000;

/// One request and its answer, as shown in results.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
    pub status: u16,
    pub body: Value,
}

/// The evidence log of one case, shared by all of its clients.
#[derive(Clone, Default)]
pub struct Evidence {
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    /// When each recorded request left and its answer arrived, on the harness's clock: the time
    /// the case spent waiting for the server (or a widget driver), not on its own work.
    waits: Arc<Mutex<Vec<(Instant, Instant)>>>,
}

impl Evidence {
    pub fn push(&self, exchange: Exchange) {
        self.exchanges.lock().unwrap().push(exchange);
    }
    pub fn snapshot(&self) -> Vec<Exchange> {
        self.exchanges.lock().unwrap().clone()
    }

    /// Notes that the case waited from `sent` to `answered` for an answer.
    pub fn waited(&self, sent: Instant, answered: Instant) {
        self.waits.lock().unwrap().push((sent, answered));
    }

    /// How much of the span `from..to` the case spent waiting for answers (waits that overlap,
    /// as concurrent requests do, count once).
    pub fn waiting_within(&self, from: Instant, to: Instant) -> Duration {
        let mut spans: Vec<(Instant, Instant)> = self
            .waits
            .lock()
            .unwrap()
            .iter()
            .map(|&(sent, answered)| (sent.max(from), answered.min(to)))
            .filter(|(start, end)| start < end)
            .collect();
        spans.sort();
        let mut total = Duration::ZERO;
        let mut covered_until: Option<Instant> = None;
        for (start, end) in spans {
            let start = covered_until.map_or(start, |until| start.max(until));
            if end > start {
                total += end - start;
                covered_until = Some(end);
            }
        }
        total
    }
}

/// Replaces secret values anywhere in a JSON document and caps its size.
pub fn redact(value: &Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (key, inner) in map.iter_mut() {
                    if SECRET_KEYS.contains(&key.as_str()) {
                        *inner = Value::String("<redacted>".into());
                    } else {
                        walk(inner);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut copy = value.clone();
    walk(&mut copy);
    let text = copy.to_string();
    if text.len() > MAX_EVIDENCE_BODY {
        let cut: String = text.chars().take(MAX_EVIDENCE_BODY).collect();
        json!({ "truncated": cut })
    } else {
        copy
    }
}
