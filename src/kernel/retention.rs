//! The retention timer: reaps zombies nobody collected once `retention_secs` has passed since they
//! ended (see [`state::KernelState::expire_zombies`](super::state::KernelState::expire_zombies)). It
//! sleeps until the next zombie expires, and never longer than [`RECHECK`], so a reload that shortens
//! the retention is noticed; it does not poll the table between.

use super::Kernel;
use super::state::unix_ms;
use std::sync::Arc;
use std::time::Duration;

/// The longest sleep: a reload that shortens the retention takes effect within this, at the cost of
/// one pass over the table a minute.
pub const RECHECK: Duration = Duration::from_secs(60);

/// The shortest sleep: retention is a matter of seconds, and a tenth of one keeps a tiny retention
/// from turning the timer into a busy loop.
pub const MIN_WAIT: Duration = Duration::from_millis(100);

/// Runs until shutdown.
pub async fn reap_expired(kernel: Arc<Kernel>) {
    loop {
        let (reaped, wait) = kernel.update(|s| {
            let now = unix_ms();
            let (reaped, next) = s.expire_zombies(now);
            // With no zombie left, the next one can expire no sooner than a retention from now.
            let wait = next.map_or(s.config.retention, |at| {
                Duration::from_millis(at.saturating_sub(now))
            });
            (reaped, wait)
        });
        if reaped > 0 {
            tracing::info!(reaped, "reaped finished processes past their retention");
        }
        tokio::select! {
            () = tokio::time::sleep(wait.clamp(MIN_WAIT, RECHECK)) => {}
            () = kernel.shutdown.cancelled() => return,
        }
    }
}
