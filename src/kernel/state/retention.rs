//! Retention while the kernel runs: a process that ended and that nobody collected (every interrupt
//! handler, a background query never waited for) is reaped once `retention` has passed since it
//! ended, as a restart would drop it. The timer that calls this lives in [`crate::kernel::retention`].

use super::KernelState;
use crate::proto::{Pid, ProcessState};

impl KernelState {
    /// Reaps the zombies that ended more than the retention before `now_unix_ms`. Returns how many
    /// it reaped, and when (wall-clock milliseconds) the next remaining one expires. A zombie whose
    /// run has not let go of its slot yet is left for a later pass.
    pub fn expire_zombies(&mut self, now_unix_ms: u64) -> (usize, Option<u64>) {
        let retention_ms = u64::try_from(self.config.retention.as_millis()).unwrap_or(u64::MAX);
        let mut expired: Vec<Pid> = Vec::new();
        let mut next: Option<u64> = None;
        for p in self.table.values() {
            if p.state != ProcessState::Zombie || p.run.is_some() {
                continue;
            }
            let Some(ended) = p.exited_unix_ms else {
                continue;
            };
            let expiry = ended.saturating_add(retention_ms);
            if expiry <= now_unix_ms {
                expired.push(p.pid);
            } else {
                next = Some(next.map_or(expiry, |n| n.min(expiry)));
            }
        }
        let reaped = expired
            .into_iter()
            .filter(|pid| self.reap(*pid).is_some())
            .count();
        (reaped, next)
    }
}

#[cfg(test)]
mod tests {
    use super::KernelState;
    use crate::config::KernelConfig;
    use crate::kernel::make_policy;
    use crate::kernel::process::Spec;
    use crate::kernel::scheduler::Scheduler;
    use crate::proto::{ExitStatus, Pid, ProcessType, Signal};
    use std::time::Duration;

    fn state(retention: Duration) -> KernelState {
        let config = KernelConfig {
            cpus: 1,
            retention,
            ..KernelConfig::default()
        };
        let policy = make_policy(crate::config::PolicyKind::RoundRobin, &config);
        KernelState::new(config, Scheduler::new(policy))
    }

    fn create(s: &mut KernelState) -> Pid {
        let spec = Spec {
            uid: 1000,
            process_type: ProcessType::Housekeeping,
            system: None,
            prompt: "check".into(),
            allowance: 10,
        };
        s.create(spec, 0).expect("create")
    }

    /// Ends `pid` (never dispatched, so no run holds it) as if `ended` wall-clock ms.
    fn end_at(s: &mut KernelState, pid: Pid, ended: u64) {
        s.finish(
            pid,
            ExitStatus::Killed {
                signal: Signal::Term,
            },
            None,
        );
        s.get_mut(pid).expect("zombie").exited_unix_ms = Some(ended);
    }

    #[test]
    fn zombies_past_the_retention_are_reaped_and_the_next_expiry_is_told() {
        let mut s = state(Duration::from_secs(10));
        let (old, young, live) = (create(&mut s), create(&mut s), create(&mut s));
        end_at(&mut s, old, 1_000);
        end_at(&mut s, young, 8_000);
        assert_eq!(s.expire_zombies(12_000), (1, Some(18_000)));
        assert!(s.get(old).is_none());
        assert!(s.get(young).is_some() && s.get(live).is_some());
        assert_eq!(s.expire_zombies(18_000), (1, None));
        assert!(s.get(live).is_some(), "a live process is never expired");
    }

    #[test]
    fn a_huge_retention_never_overflows() {
        let mut s = state(Duration::MAX);
        let pid = create(&mut s);
        end_at(&mut s, pid, u64::MAX - 5);
        assert_eq!(s.expire_zombies(u64::MAX - 1), (0, Some(u64::MAX)));
    }
}
