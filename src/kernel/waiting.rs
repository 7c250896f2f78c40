//! The waiting clock: once a second, the notes of waiting processes that someone follows are
//! compared with what their followers were last told, and what changed is pushed to them
//! ([`crate::proto::Response::Waiting`]), so a foreground `query` says why it waits (see
//! [`super::state::waiting`]). One tick a second: the notes count down in seconds, and a shell shows
//! at most one line per process.

use super::Kernel;
use super::state::waiting::Shown;
use std::sync::Arc;
use std::time::Duration;

/// How often notes are looked at: the countdown is in whole seconds at its coarsest.
const TICK: Duration = Duration::from_secs(1);

/// Pushes waiting notes until the kernel shuts down.
pub(crate) async fn report_waits(kernel: Arc<Kernel>) {
    let mut shown = Shown::default();
    let mut tick = tokio::time::interval(TICK);
    // A late tick is not made up for: the next note simply reads a little later.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = kernel.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        kernel.read(|s| {
            for (pid, note, news) in shown.update(s.waiting_notes()) {
                s.tell_waiting(pid, &note, news);
            }
        });
    }
}
