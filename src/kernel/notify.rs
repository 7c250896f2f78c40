//! systemd's notification protocol (sd_notify), spoken through the `sd-notify` crate rather than by
//! hand: it finds `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace), formats the
//! datagram and reads `$WATCHDOG_USEC`/`$WATCHDOG_PID` as systemd documents them. Without the
//! variable every call does nothing, so the kernel runs the same with or without systemd. The
//! messages the kernel sends: `READY=1` once the socket is bound and the state loaded, `STATUS=` with
//! the process counts when they change, `RELOADING=1` with `MONOTONIC_USEC=` then `READY=1` around a
//! SIGHUP reload, `STOPPING=1` at shutdown, `WATCHDOG=1` at half of `$WATCHDOG_USEC` when systemd
//! asks for it, and `EXTEND_TIMEOUT_USEC=` while a managed backend server loads its model before
//! READY=1. A child the kernel starts never inherits these variables (see the supervisor).

pub use sd_notify::NotifyState;
use std::future::Future;
use std::time::Duration;

/// How often a slow start-up asks systemd for more time.
pub const EXTEND_EVERY: Duration = Duration::from_secs(10);
/// How much more time each ask wants: three asks' worth, so one late ask on a busy machine does
/// not let the start timeout strike.
pub const EXTEND_BY: Duration = Duration::from_secs(30);

/// Whether a service manager listens (`$NOTIFY_SOCKET` is set).
pub fn enabled() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

/// Sends one notification (several states in one datagram); returns whether it was sent.
pub fn notify(states: &[NotifyState]) -> bool {
    enabled() && sd_notify::notify(states).is_ok()
}

/// `READY=1` with the status line.
pub fn ready(status: &str) -> bool {
    notify(&[NotifyState::Ready, NotifyState::Status(status)])
}

/// Starts a reload: `RELOADING=1` stamped with the monotonic clock, as systemd's
/// `Type=notify-reload` wants it (and plain `Type=notify` accepts).
pub fn reloading() -> bool {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[NotifyState::Reloading, now]),
        Err(_) => notify(&[NotifyState::Reloading]),
    }
}

/// Runs `work` (a start-up step that may take long, like a model loading) while sending
/// `EXTEND_TIMEOUT_USEC=` every [`EXTEND_EVERY`], the first at once, so systemd's start timeout
/// does not strike while the step makes its own progress. Without `$NOTIFY_SOCKET`, just `work`.
pub async fn extend_startup_while<F: Future>(work: F) -> F::Output {
    if !enabled() {
        return work.await;
    }
    extend_while(EXTEND_EVERY, EXTEND_BY, work, |by| {
        notify(&[NotifyState::ExtendTimeoutUsec(by)]);
    })
    .await
}

/// [`extend_startup_while`] with the ask (`send`, given the microseconds wanted) made every `every`.
pub async fn extend_while<F: Future>(
    every: Duration,
    by: Duration,
    work: F,
    send: impl Fn(u32),
) -> F::Output {
    let usec = u32::try_from(by.as_micros()).unwrap_or(u32::MAX);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(work);
    loop {
        tokio::select! {
            biased;
            _ = ticks.tick() => send(usec),
            done = &mut work => return done,
        }
    }
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, when systemd set it for this process
/// (`$WATCHDOG_PID`, when set, is ours).
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        .filter(|t| !t.is_zero())
        .map(|t| t / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_long_start_up_asks_for_more_time_as_it_goes() {
        let (asked, mut heard) = tokio::sync::mpsc::unbounded_channel();
        // The "start-up" ends once it has heard three asks: so they came at once and kept coming.
        let work = async {
            let mut asks = Vec::new();
            while asks.len() < 3 {
                asks.push(heard.recv().await.expect("asks"));
            }
            asks
        };
        let every = Duration::from_millis(10);
        let asks = extend_while(every, EXTEND_BY, work, |usec| {
            let _ = asked.send(usec);
        })
        .await;
        assert_eq!(asks, [30_000_000; 3]);
    }

    #[test]
    fn states_read_as_systemd_expects() {
        let lines = [
            NotifyState::Ready,
            NotifyState::Status("1 processes"),
            NotifyState::ExtendTimeoutUsec(30_000_000),
        ]
        .map(|s| s.to_string());
        assert_eq!(
            lines,
            [
                "READY=1",
                "STATUS=1 processes",
                "EXTEND_TIMEOUT_USEC=30000000"
            ]
        );
    }
}
