//! The running daemon's side of systemd: `STATUS=` kept current with the process counts, and
//! `WATCHDOG=1` pings. Both tasks sleep until there is something to say; neither polls.

use crate::kernel::{Kernel, notify};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// At most one `STATUS=` per interval: tokens change the process table many times a second, and
/// systemd only needs a line a human reads.
pub const STATUS_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Sends `STATUS=` whenever the summary changes from `sent` (at most once per
/// [`STATUS_MIN_INTERVAL`]).
pub fn spawn_status(kernel: Arc<Kernel>, sent: String) -> Option<JoinHandle<()>> {
    if !notify::enabled() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut last = sent;
        loop {
            let changed = kernel.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let line = kernel.status_line();
            if line != last {
                notify::notify(&[notify::NotifyState::Status(&line)]);
                last = line;
            }
            tokio::select! {
                _ = kernel.shutdown.cancelled() => return,
                _ = &mut changed => {}
            }
            tokio::select! {
                _ = kernel.shutdown.cancelled() => return,
                _ = tokio::time::sleep(STATUS_MIN_INTERVAL) => {}
            }
        }
    }))
}

/// Pings the watchdog at half of `$WATCHDOG_USEC`, when systemd set it for this process. Each ping
/// takes the state lock first, so a wedged kernel stops pinging and systemd restarts it.
pub fn spawn_watchdog(kernel: Arc<Kernel>) -> Option<JoinHandle<()>> {
    let every = notify::watchdog_interval()?;
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = kernel.shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            kernel.status_line();
            notify::notify(&[notify::NotifyState::Watchdog]);
        }
    }))
}
