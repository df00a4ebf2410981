//! Replies under construction, and the Matrix error replies the endpoints use.

use std::time::Duration;

use serde_json::{json, Value};
use wiremock::ResponseTemplate;

/// A response under construction (cloneable, so transaction ids can replay it).
#[derive(Clone, Debug)]
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: Value,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) delay: Option<Duration>,
}

/// Handlers return `Err` for error replies so that `?` works.
pub(super) type Res = Result<Reply, Reply>;

impl Reply {
    pub(super) fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub(super) fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub(super) fn into_template(self) -> ResponseTemplate {
        let mut t = ResponseTemplate::new(self.status).set_body_json(self.body);
        for (k, v) in self.headers {
            t = t.insert_header(k, v.as_str());
        }
        match self.delay {
            Some(d) => t.set_delay(d),
            None => t,
        }
    }
}

pub(super) fn ok(body: Value) -> Reply {
    Reply {
        status: 200,
        body,
        headers: Vec::new(),
        delay: None,
    }
}

pub(super) fn err(status: u16, errcode: &str, msg: impl Into<String>) -> Reply {
    ok(json!({"errcode": errcode, "error": msg.into()})).with_status(status)
}

pub(super) fn forbidden(msg: impl Into<String>) -> Reply {
    err(403, "M_FORBIDDEN", msg)
}
pub(super) fn not_found(msg: impl Into<String>) -> Reply {
    err(404, "M_NOT_FOUND", msg)
}
pub(super) fn bad_json(msg: impl Into<String>) -> Reply {
    err(400, "M_BAD_JSON", msg)
}
pub(super) fn not_json() -> Reply {
    err(400, "M_NOT_JSON", "Content not JSON.")
}
pub(super) fn invalid_param(msg: impl Into<String>) -> Reply {
    err(400, "M_INVALID_PARAM", msg)
}
pub(super) fn missing_param(name: &str) -> Reply {
    err(400, "M_MISSING_PARAM", format!("Missing parameter: {name}"))
}
pub(super) fn unrecognized() -> Reply {
    err(404, "M_UNRECOGNIZED", "Unrecognized request")
}
pub(super) fn guest_forbidden() -> Reply {
    err(403, "M_GUEST_ACCESS_FORBIDDEN", "Guest access not allowed")
}
pub(super) fn conflict(msg: impl Into<String>) -> Reply {
    err(409, "M_UNKNOWN", msg)
}
