//! Ctrl-C and SIGTERM: the homeservers a run started are shut down however the process ends.

use crate::homeserver::Target;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Set once Ctrl-C or SIGTERM arrived: the run then ends with 130 and no verdict, even if its
/// cases finished (failing, as their server went away) before the shutdown did.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether Ctrl-C or SIGTERM arrived.
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn interrupt_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminated => {},
    }
}

/// What the interrupt handler stops: the targets running, or else the start-up still going.
pub(crate) struct InterruptHandler {
    running: Arc<Mutex<Vec<Arc<dyn Target>>>>,
    startup: Arc<Notify>,
}

impl InterruptHandler {
    /// On Ctrl-C or SIGTERM: shut the running targets down and exit 130; during start-up (no
    /// target yet), tell the start-up to give up instead, so that dropping it cleans up what it
    /// made.
    pub(crate) fn install(runtime: &tokio::runtime::Runtime) -> InterruptHandler {
        let handler = InterruptHandler {
            running: Default::default(),
            startup: Arc::new(Notify::new()),
        };
        let (running, startup) = (handler.running.clone(), handler.startup.clone());
        runtime.spawn(async move {
            interrupt_signal().await;
            INTERRUPTED.store(true, Ordering::SeqCst);
            eprintln!("\ninterrupted: stopping the homeserver and exiting");
            let running = running.lock().unwrap().clone();
            if running.is_empty() {
                startup.notify_one();
            } else {
                futures::future::join_all(running.iter().map(|t| t.shutdown())).await;
                std::process::exit(130);
            }
        });
        handler
    }

    /// Resolves when an interrupt arrived during start-up.
    pub(crate) async fn startup_interrupted(&self) {
        self.startup.notified().await
    }

    /// The targets to shut down on an interrupt from now on; none once they are shut down.
    pub(crate) fn set_running(&self, targets: Vec<Arc<dyn Target>>) {
        *self.running.lock().unwrap() = targets;
    }
}
