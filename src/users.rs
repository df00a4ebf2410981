//! Creating fresh users on the target: Synapse's shared-secret admin API (nonce + HMAC-SHA1), or
//! open registration with `m.login.dummy`.

use crate::client::{Client, Resp};
use crate::endpoints;
use crate::homeserver::Registration;
use crate::outcome::Stop;
use hmac::{Hmac, Mac};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::json;

fn random_text(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect::<String>()
}

/// A localpart that says which case made the user, unique per run.
pub fn fresh_localpart(label: &str) -> String {
    let clean: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(24)
        .collect();
    format!("dec_{clean}_{}", random_text(8).to_lowercase())
}

/// Registers a new user and answers a client logged in as them.
pub async fn register(
    anon: &Client,
    registration: &Registration,
    label: &str,
) -> Result<Client, Stop> {
    let localpart = fresh_localpart(label);
    let password = random_text(20);
    let resp = match registration {
        Registration::SharedSecret(secret) => {
            register_with_secret(anon, secret, &localpart, &password).await?
        }
        Registration::Open => register_open(anon, &localpart, &password).await?,
    };
    logged_in_from(anon, resp, Some(&password))
}

/// How a guest account was registered: the Client-Server API's `?kind=guest` query parameter,
/// or `"kind": "guest"` in the body, which some servers want instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestForm {
    QueryParam,
    Body,
}

impl GuestForm {
    pub fn describe(self) -> &'static str {
        match self {
            GuestForm::QueryParam => "the `kind=guest` query parameter",
            GuestForm::Body => {
                "`\"kind\": \"guest\"` in the body (the server refused the `kind=guest` query parameter)"
            }
        }
    }
}

/// Registers a guest account: with `?kind=guest` first, then with the kind in the body.
pub async fn register_guest(anon: &Client) -> Result<(Client, GuestForm), Stop> {
    let by_query = anon
        .post(endpoints::REGISTER)
        .query("kind", "guest")
        .json(json!({}))
        .send()
        .await?;
    if by_query.is_success() {
        return Ok((logged_in_from(anon, by_query, None)?, GuestForm::QueryParam));
    }
    let by_body = anon
        .post(endpoints::REGISTER)
        .json(json!({"kind": "guest"}))
        .send()
        .await?;
    if by_body.is_success() {
        return Ok((logged_in_from(anon, by_body, None)?, GuestForm::Body));
    }
    Err(Stop::Skip(format!(
        "the server does not offer guest accounts: with ?kind=guest {}; with \"kind\": \"guest\" in \
         the body {}",
        by_query.describe(),
        by_body.describe()
    )))
}

fn logged_in_from(anon: &Client, resp: Resp, password: Option<&str>) -> Result<Client, Stop> {
    let user_id = resp.str_field("user_id");
    let token = resp.str_field("access_token");
    match (user_id, token) {
        (Some(user_id), Some(token)) => Ok(anon.logged_in(user_id, token, password)),
        _ => Err(Stop::Error(format!(
            "registration gave no user_id/access_token: {}",
            resp.describe()
        ))),
    }
}

async fn register_with_secret(
    anon: &Client,
    secret: &str,
    localpart: &str,
    password: &str,
) -> Result<Resp, Stop> {
    let nonce_resp = anon
        .get(endpoints::SYNAPSE_ADMIN_REGISTER)
        .send()
        .await?
        .setup_step("get a registration nonce")?;
    let nonce = nonce_resp
        .str_field("nonce")
        .ok_or_else(|| Stop::Error(format!("no nonce: {}", nonce_resp.describe())))?
        .to_string();
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    for (i, part) in [nonce.as_str(), localpart, password, "notadmin"]
        .iter()
        .enumerate()
    {
        if i > 0 {
            mac.update(b"\x00");
        }
        mac.update(part.as_bytes());
    }
    let mac = hex::encode(mac.finalize().into_bytes());
    let body = json!({"nonce": nonce, "username": localpart, "password": password, "admin": false, "mac": mac});
    anon.post(endpoints::SYNAPSE_ADMIN_REGISTER)
        .json(body)
        .send()
        .await?
        .setup_step("register a user with the shared secret")
}

async fn register_open(anon: &Client, localpart: &str, password: &str) -> Result<Resp, Stop> {
    let mut body = json!({"username": localpart, "password": password, "inhibit_login": false});
    let first = anon
        .post(endpoints::REGISTER)
        .json(body.clone())
        .send()
        .await?;
    if first.is_success() {
        return Ok(first);
    }
    // The usual user-interactive auth round: answer the session with the dummy stage.
    let session = first.str_field("session").map(str::to_string);
    if first.status != 401 || session.is_none() {
        return Err(Stop::Error(format!(
            "open registration is not available ({}); give --registration-shared-secret",
            first.describe()
        )));
    }
    body["auth"] = json!({"type": "m.login.dummy", "session": session});
    anon.post(endpoints::REGISTER)
        .json(body)
        .send()
        .await?
        .setup_step("register a user (m.login.dummy)")
}
