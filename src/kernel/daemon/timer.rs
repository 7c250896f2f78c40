//! The kernel's own interval timer: `setitimer(ITIMER_REAL)`, which sends the process SIGALRM every
//! period, the same doorbell an operator's `kill -ALRM` rings. Off unless `[interrupts.timer]
//! period_secs` is set; re-armed on reload.

use std::io;
use std::time::Duration;

/// Arms the timer to ring every `period`, or disarms it with `None`.
pub fn arm(period: Option<Duration>) -> io::Result<()> {
    let every = timeval(period.unwrap_or(Duration::ZERO));
    let value = nix::libc::itimerval {
        it_interval: every,
        it_value: every,
    };
    // SAFETY: setitimer reads `value`, a valid itimerval on our stack, and is given no place to
    // write the old value.
    let rc = unsafe { nix::libc::setitimer(nix::libc::ITIMER_REAL, &value, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The armed period, if any.
#[cfg(test)]
pub fn period() -> io::Result<Option<Duration>> {
    let mut value = nix::libc::itimerval {
        it_interval: timeval(Duration::ZERO),
        it_value: timeval(Duration::ZERO),
    };
    // SAFETY: getitimer writes one itimerval into `value`, which is valid and ours.
    let rc = unsafe { nix::libc::getitimer(nix::libc::ITIMER_REAL, &mut value) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let i = value.it_interval;
    let period = Duration::from_secs(i.tv_sec as u64) + Duration::from_micros(i.tv_usec as u64);
    Ok((!period.is_zero()).then_some(period))
}

fn timeval(d: Duration) -> nix::libc::timeval {
    nix::libc::timeval {
        tv_sec: d.as_secs() as nix::libc::time_t,
        tv_usec: d.subsec_micros() as nix::libc::suseconds_t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arming_sets_the_period_and_none_disarms() {
        // A period far longer than the test, so no SIGALRM is ever delivered to the test process.
        let hour = Duration::from_secs(3600) + Duration::from_millis(250);
        arm(Some(hour)).unwrap();
        assert_eq!(period().unwrap(), Some(hour));
        arm(None).unwrap();
        assert_eq!(period().unwrap(), None);
    }
}
