//! A doorbell: how a signal reaches the kernel. Ringing counts the ring and wakes the kernel's
//! interrupt task; however many rings arrive before the task looks, it wakes once and takes them all.
//! That is the coalescing a POSIX signal already has (a pending standard signal is one bit), kept all
//! the way up, so a storm of signals costs one wake-up, never a queue of work.

use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Notify;

#[derive(Default)]
pub struct Doorbell {
    /// Rings not yet taken.
    rings: AtomicU64,
    /// Holds at most one wake-up (`notify_one` stores a single permit), whatever the number of rings.
    bell: Notify,
}

impl Doorbell {
    /// Rings once. Safe from any thread (the signal thread rings it).
    pub fn ring(&self) {
        self.rings.fetch_add(1, Ordering::SeqCst);
        self.bell.notify_one();
    }

    /// Takes every ring since the last take.
    pub fn take(&self) -> u64 {
        self.rings.swap(0, Ordering::SeqCst)
    }

    /// Waits for a ring; returns at once if one came since the last wait.
    pub async fn rung(&self) {
        self.bell.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn many_rings_wake_once_and_are_taken_together() {
        let bell = Doorbell::default();
        for _ in 0..1000 {
            bell.ring();
        }
        bell.rung().await; // the stored wake-up
        assert_eq!(bell.take(), 1000);
        assert_eq!(bell.take(), 0, "taken rings are gone");
        let second = tokio::time::timeout(std::time::Duration::from_millis(20), bell.rung()).await;
        assert!(
            second.is_err(),
            "a thousand rings left one wake-up, not many"
        );
    }

    #[tokio::test]
    async fn a_ring_between_take_and_wait_is_not_lost() {
        let bell = Doorbell::default();
        assert_eq!(bell.take(), 0);
        bell.ring();
        bell.rung().await;
        assert_eq!(bell.take(), 1);
    }
}
