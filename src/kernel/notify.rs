//! systemd's notification protocol (sd_notify): datagrams like `READY=1` or `STATUS=...` to the socket
//! in `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace). Without the variable every call
//! does nothing, so the kernel runs the same with or without systemd. The messages the kernel sends:
//! `READY=1` once the socket is bound and the state loaded, `STATUS=` with the process counts when
//! they change, `RELOADING=1` with `MONOTONIC_USEC=` then `READY=1` around a SIGHUP reload,
//! `STOPPING=1` at shutdown, `WATCHDOG=1` at half of `$WATCHDOG_USEC` when systemd asks for it, and
//! `EXTEND_TIMEOUT_USEC=` while a managed backend server loads its model before READY=1.

use std::future::Future;
use std::os::unix::net::UnixDatagram;
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

/// Sends one notification; returns whether it was sent.
pub fn notify(message: &str) -> bool {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(target) => notify_to(&target.to_string_lossy(), message),
        None => false,
    }
}

/// Sends one notification to `target` (a path, or `@name` for the abstract namespace).
pub fn notify_to(target: &str, message: &str) -> bool {
    let Ok(socket) = UnixDatagram::unbound() else {
        return false;
    };
    let sent = match target.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|addr| socket.send_to_addr(message.as_bytes(), &addr))
        }
        None => socket.send_to(message.as_bytes(), target),
    };
    sent.is_ok()
}

/// The message that starts a reload: `RELOADING=1` stamped with the monotonic clock, as systemd's
/// `Type=notify-reload` wants it (and plain `Type=notify` accepts).
pub fn reloading_message() -> String {
    let usec = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000)
        .unwrap_or(0);
    format!("RELOADING=1\nMONOTONIC_USEC={usec}")
}

/// Runs `work` (a start-up step that may take long, like a model loading) while sending
/// `EXTEND_TIMEOUT_USEC=` every [`EXTEND_EVERY`], the first at once, so systemd's start timeout
/// does not strike while the step makes its own progress. Without `$NOTIFY_SOCKET`, just `work`.
pub async fn extend_startup_while<F: Future>(work: F) -> F::Output {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(target) => {
            let target = target.to_string_lossy().into_owned();
            extend_while(&target, EXTEND_EVERY, EXTEND_BY, work).await
        }
        None => work.await,
    }
}

/// [`extend_startup_while`] towards `target`, asking for `by` more every `every`.
pub async fn extend_while<F: Future>(
    target: &str,
    every: Duration,
    by: Duration,
    work: F,
) -> F::Output {
    let message = format!("EXTEND_TIMEOUT_USEC={}", by.as_micros());
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(work);
    loop {
        tokio::select! {
            biased;
            _ = ticks.tick() => {
                notify_to(target, &message);
            }
            done = &mut work => return done,
        }
    }
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, when it is set for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    watchdog_interval_from(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// [`watchdog_interval`] from the variables' values: `WATCHDOG_PID`, when set, must be ours.
pub fn watchdog_interval_from(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|u| *u > 0)?;
    if pid.is_some_and(|p| p.trim().parse::<u32>().ok() != Some(me)) {
        return None;
    }
    Some(Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_pings_at_half_the_timeout_and_only_for_its_own_pid() {
        let half = Some(Duration::from_secs(15));
        assert_eq!(watchdog_interval_from(Some("30000000"), None, 7), half);
        assert_eq!(watchdog_interval_from(Some("30000000"), Some("7"), 7), half);
        assert_eq!(watchdog_interval_from(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval_from(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval_from(Some("soon"), None, 7), None);
        assert_eq!(watchdog_interval_from(None, None, 7), None);
    }

    #[test]
    fn a_notification_arrives_as_one_datagram() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        assert!(notify_to(path.to_str().unwrap(), &reloading_message()));
        let mut buf = [0u8; 128];
        let n = listener.recv(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("RELOADING=1"));
        let usec = lines.next().and_then(|l| l.strip_prefix("MONOTONIC_USEC="));
        assert!(
            usec.is_some_and(|u| u.parse::<u64>().unwrap() > 0),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_long_start_up_asks_for_more_time_as_it_goes() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("notify");
        let listener = tokio::net::UnixDatagram::bind(&path).unwrap();
        // The "start-up" ends once it has heard three asks: so they came at once and kept coming.
        let work = async {
            let mut buf = [0u8; 128];
            let mut asks = Vec::new();
            while asks.len() < 3 {
                let n = listener.recv(&mut buf).await.unwrap();
                asks.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            asks
        };
        let every = Duration::from_millis(10);
        let asks = extend_while(path.to_str().unwrap(), every, EXTEND_BY, work).await;
        assert!(
            asks.iter().all(|m| m == "EXTEND_TIMEOUT_USEC=30000000"),
            "{asks:?}"
        );
    }
}
