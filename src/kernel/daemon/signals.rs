//! Real signals to the daemon, turned into kernel events by one thread. Every signal is a doorbell:
//! the operating system already merges a signal that arrives while the same one is pending, and each
//! target here merges again (interrupt doorbells, the reload bell, the shutdown token), so no burst of
//! signals can queue work. SIGUSR1 rings the SYSTEM interrupt, SIGALRM the TIMER interrupt, SIGHUP
//! asks for a config reload, SIGTERM and SIGINT start a graceful shutdown, and a second one during
//! shutdown ends it at once.

use crate::kernel::{Kernel, notify};
use signal_hook::consts::{SIGALRM, SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::{Handle, Signals};
use std::io;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The signals the daemon handles, installed but not yet routed.
pub struct SignalRouter {
    signals: Signals,
}

/// Where routed signals go.
pub struct Targets {
    pub kernel: Arc<Kernel>,
    /// Cancelled by the first SIGTERM/SIGINT: graceful shutdown.
    pub shutdown: CancellationToken,
    /// Cancelled by a second one: stop waiting and exit.
    pub force: CancellationToken,
    /// Rung by SIGHUP; holds one permit however many SIGHUPs arrive.
    pub reload: Arc<Notify>,
}

/// Stops the routing thread when dropped.
pub struct RoutingGuard {
    handle: Handle,
}

impl Drop for RoutingGuard {
    fn drop(&mut self) {
        self.handle.close();
    }
}

impl SignalRouter {
    /// Installs the handlers. From here on these signals no longer kill the process; any that arrive
    /// before [`SignalRouter::route`] wait, pending, until then.
    pub fn install() -> io::Result<SignalRouter> {
        // A write past RLIMIT_FSIZE should fail with EFBIG, which the journal handles (refusing new
        // processes until it can write), not kill the daemon.
        // SAFETY: setting a signal to SIG_IGN installs no handler code; nothing else runs yet.
        unsafe {
            nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGXFSZ,
                nix::sys::signal::SigHandler::SigIgn,
            )
        }
        .map_err(io::Error::from)?;
        let signals = Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGALRM])?;
        Ok(SignalRouter { signals })
    }

    /// Starts routing signals to `targets` on a thread of its own.
    pub fn route(self, targets: Targets) -> io::Result<RoutingGuard> {
        let mut signals = self.signals;
        let handle = signals.handle();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    deliver(signal, &targets);
                }
            })?;
        Ok(RoutingGuard { handle })
    }
}

fn deliver(signal: i32, t: &Targets) {
    match signal {
        SIGUSR1 => t.kernel.interrupts.system_bell.ring(),
        SIGALRM => t.kernel.interrupts.timer_bell.ring(),
        SIGHUP => t.reload.notify_one(),
        SIGTERM | SIGINT if t.shutdown.is_cancelled() => {
            tracing::warn!("second termination signal: exiting at once");
            t.force.cancel();
        }
        SIGTERM | SIGINT => {
            tracing::info!("shutting down");
            notify::notify(&[notify::NotifyState::Stopping]);
            t.shutdown.cancel();
        }
        _ => {}
    }
}
