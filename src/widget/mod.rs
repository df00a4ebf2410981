//! The widget half (MSC4157): the harness plays the widget against a widget driver that runs as a
//! child process (`bridge.rs`), with the session's user logged in on the homeserver under test.
//! `session.rs` is the widget's side of the widget API (handshake, send_event, update) that the
//! cases in `suites/msc4157/` use; what happened on the homeserver is judged with the harness's
//! own client, as for MSC4140. `driver.rs` is what the rest of the harness knows of the driver
//! (`--driver`, its identity in the results, its log).

pub mod bridge;
pub mod driver;
pub mod session;

pub use bridge::{BridgeSession, DriverIdentity};
pub use driver::{DriverInfo, DriverLog, DriverSpec};
pub use session::{caps, Approval, Reply, Widget};

/// Starts the driver once before the cases, for a fresh user in a fresh room, and returns what
/// it said about itself; the error (a usage problem: exit 2) carries what the driver printed.
pub async fn probe(
    env: &std::sync::Arc<crate::ctx::Env>,
    spec: &DriverSpec,
) -> Result<DriverInfo, String> {
    let ctx = crate::ctx::Ctx::new(env.clone(), "msc4157.probe.driver");
    let started = async {
        let user = ctx.user("probe").await?;
        let room = ctx.room(&user, &[]).await?;
        ctx.widget(&user, &room, Approval::All).await
    };
    match started.await {
        Ok(widget) => Ok(DriverInfo {
            driver: spec.label.clone(),
            name: widget.identity().name.clone(),
            version: widget.identity().version.clone(),
        }),
        Err(stop) => Err(format!(
            "the widget driver `{}` could not start: {}\nCheck the command, or run it by hand with the \
             BRIDGE_* variables docs/widget-drivers.md lists.",
            spec.label,
            stop.message()
        )),
    }
}
