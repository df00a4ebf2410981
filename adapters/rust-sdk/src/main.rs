//! The bridge contract (see the suite's README, "Testing a widget driver") around
//! matrix-rust-sdk's `WidgetDriver`: widget-API JSON lines on stdin go to the driver, the
//! driver's messages go to stdout one per line, the SDK's log goes to stderr.
//!
//! This file is glue; the library under test is `matrix_sdk::widget`. As in Element X, the
//! driver starts the capability negotiation when the widget says `content_loaded`
//! (`BRIDGE_INIT_ON_CONTENT_LOAD=true`), and the client keeps syncing so that the driver can
//! pass the room's new events on to the widget.

use std::{env, process::ExitCode};

use matrix_sdk::{
    authentication::matrix::MatrixSession,
    config::SyncSettings,
    ruma::{OwnedDeviceId, OwnedRoomId, OwnedUserId},
    widget::{Capabilities, CapabilitiesProvider, WidgetDriver, WidgetSettings},
    Client, SessionMeta, SessionTokens,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The matrix-sdk release built, from Cargo.lock (build.rs).
const SDK_VERSION: &str = env!("MATRIX_SDK_VERSION");

fn var(name: &str) -> Result<String, String> {
    env::var(name).map_err(|_| format!("{name} is not set (the harness passes it)"))
}

/// Approves what the harness says the user approves: everything asked for, or the
/// intersection of what was asked with the given list.
struct Approver {
    approved: Option<Vec<String>>,
}

impl CapabilitiesProvider for Approver {
    async fn acquire_capabilities(&self, requested: Capabilities) -> Capabilities {
        let Some(approved) = &self.approved else {
            return requested;
        };
        let asked: Vec<String> =
            serde_json::from_value(serde_json::to_value(&requested).unwrap()).unwrap_or_default();
        let granted: Vec<&String> = asked.iter().filter(|c| approved.contains(c)).collect();
        serde_json::from_value(serde_json::json!(granted)).unwrap_or_default()
    }
}

async fn run() -> Result<(), String> {
    let homeserver = var("BRIDGE_HOMESERVER_URL")?;
    let user_id: OwnedUserId = var("BRIDGE_USER_ID")?
        .try_into()
        .map_err(|e| format!("BRIDGE_USER_ID: {e}"))?;
    let device_id: OwnedDeviceId = var("BRIDGE_DEVICE_ID")?.into();
    let room_id: OwnedRoomId = var("BRIDGE_ROOM_ID")?
        .try_into()
        .map_err(|e| format!("BRIDGE_ROOM_ID: {e}"))?;
    let widget_id = var("BRIDGE_WIDGET_ID")?;
    // Absent: the contract before the variable existed (start at once).
    let init_on_content_load = match env::var("BRIDGE_INIT_ON_CONTENT_LOAD").as_deref() {
        Ok("true") => true,
        Ok("false") | Err(_) => false,
        Ok(other) => {
            return Err(format!(
                "BRIDGE_INIT_ON_CONTENT_LOAD is {other:?}, not true or false"
            ))
        }
    };
    let approved = match env::var("BRIDGE_APPROVED_CAPABILITIES") {
        Ok(list) if list != "*" => {
            Some(serde_json::from_str::<Vec<String>>(&list).map_err(|e| {
                format!("BRIDGE_APPROVED_CAPABILITIES is not a JSON list of strings: {e}")
            })?)
        }
        _ => None,
    };

    let client = Client::builder()
        .homeserver_url(&homeserver)
        .build()
        .await
        .map_err(|e| format!("building the client: {e}"))?;
    let session = MatrixSession {
        meta: SessionMeta { user_id, device_id },
        tokens: SessionTokens {
            access_token: var("BRIDGE_ACCESS_TOKEN")?,
            refresh_token: None,
        },
    };
    client
        .restore_session(session)
        .await
        .map_err(|e| format!("restoring the session: {e}"))?;
    // One sync so that the client knows the room it drives the widget in.
    client
        .sync_once(SyncSettings::default())
        .await
        .map_err(|e| format!("first sync: {e}"))?;
    let room = client
        .get_room(&room_id)
        .ok_or_else(|| format!("the user is not in room {room_id} after the first sync"))?;

    let settings = WidgetSettings::new(widget_id, init_on_content_load, "https://widget.invalid/")
        .map_err(|e| format!("widget settings: {e}"))?;
    let (driver, handle) = WidgetDriver::new(settings);

    let mut stdout = tokio::io::stdout();
    let hello = serde_json::json!({"bridge": {"name": "matrix-rust-sdk", "version": SDK_VERSION}});
    stdout
        .write_all(format!("{hello}\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stdout.flush().await.map_err(|e| e.to_string())?;

    let to_widget = {
        let handle = handle.clone();
        tokio::spawn(async move {
            while let Some(message) = handle.recv().await {
                let line = format!("{}\n", message.replace('\n', " "));
                if stdout.write_all(line.as_bytes()).await.is_err() || stdout.flush().await.is_err()
                {
                    break;
                }
            }
        })
    };
    let from_widget = tokio::spawn(async move {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if !line.trim().is_empty() && !handle.send(line).await {
                break;
            }
        }
    });

    // Syncing goes on beside the driver: it hears of the room's new events through the
    // client's event handlers, which only a running sync feeds.
    let keep_syncing = async {
        if let Err(e) = client.sync(SyncSettings::default()).await {
            eprintln!("widget-bridge-rust-sdk: the sync loop ended: {e}");
        }
        std::future::pending::<()>().await
    };

    tokio::select! {
        result = driver.run(room, Approver { approved }) => {
            result.map_err(|()| "the widget driver stopped".to_owned())
        }
        _ = from_widget => Ok(()), // stdin closed: the harness is done
        _ = to_widget => Ok(()),
        () = keep_syncing => unreachable!("pending forever"),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "matrix_sdk::widget=debug,warn".into()),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("widget-bridge-rust-sdk: {message}");
            ExitCode::from(2)
        }
    }
}
