//! How long a waiting process will wait, estimated from recent runs. The kernel records every stint on
//! a slot (how many tokens, how long); moving averages of the stint length and the per-slot token rate
//! give the time one turn takes, and a process at queue position `p` on `cpus` slots waits about
//! `ceil(p / cpus)` turns. Rough by nature (answers end early, priorities reorder the queue) but cheap,
//! and it follows the backend's real speed.

use std::time::Duration;

/// How much the latest stint weighs against the history (an exponential moving average).
const WEIGHT_OF_LATEST: f64 = 0.2;

/// Moving averages of recent stints on the slots.
#[derive(Clone, Debug, Default)]
pub struct RateEstimate {
    stint_tokens: Option<f64>,
    tokens_per_sec: Option<f64>,
}

fn blend(old: Option<f64>, new: f64) -> f64 {
    old.map_or(new, |old| old + WEIGHT_OF_LATEST * (new - old))
}

impl RateEstimate {
    /// A process left a slot after generating `tokens` in `elapsed`.
    pub fn record_stint(&mut self, tokens: u32, elapsed: Duration) {
        if tokens == 0 {
            return; // a run that failed or was stopped before its first token says nothing of speed
        }
        self.stint_tokens = Some(blend(self.stint_tokens, f64::from(tokens)));
        let secs = elapsed.as_secs_f64();
        if secs > 0.0 {
            self.tokens_per_sec = Some(blend(self.tokens_per_sec, f64::from(tokens) / secs));
        }
    }

    /// Recent tokens per second on one slot.
    pub fn tokens_per_sec(&self) -> Option<f64> {
        self.tokens_per_sec
    }

    /// Milliseconds until the process at queue `position` (1 runs next) gets one of `cpus` slots;
    /// `None` until a stint has been seen.
    pub fn eta_ms(&self, position: u32, cpus: u32) -> Option<u64> {
        let turns = position.div_ceil(cpus.max(1));
        let turn_secs = self.stint_tokens? / self.tokens_per_sec?;
        Some((f64::from(turns) * turn_secs * 1000.0).round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_estimate_before_any_stint() {
        assert_eq!(RateEstimate::default().eta_ms(1, 1), None);
    }

    #[test]
    fn eta_counts_turns_of_an_average_stint() {
        let mut r = RateEstimate::default();
        r.record_stint(32, Duration::from_secs(1));
        r.record_stint(0, Duration::from_secs(9));
        assert_eq!(r.tokens_per_sec(), Some(32.0));
        assert_eq!(r.eta_ms(1, 2), Some(1000));
        assert_eq!(r.eta_ms(2, 2), Some(1000));
        assert_eq!(r.eta_ms(3, 2), Some(2000));
    }

    #[test]
    fn recent_stints_move_the_average_gradually() {
        let mut r = RateEstimate::default();
        r.record_stint(10, Duration::from_secs(1));
        r.record_stint(20, Duration::from_secs(1));
        assert_eq!(r.tokens_per_sec(), Some(12.0));
    }
}
