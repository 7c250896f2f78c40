//! One subscriber's bounded queue of events. The kernel never waits for a subscriber: when the queue
//! is full an event is dropped and counted, and the count reaches the subscriber as one
//! `Lost { count }` event in the place the events went missing.

use crate::proto::Event;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

/// Events one subscriber may have waiting: a few seconds of a busy kernel's state changes for a
/// client that pauses (a terminal being resized, a slow link), yet bounded memory per subscriber.
pub const SUBSCRIBER_BUFFER: usize = 1024;

/// A subscriber's queue, shared by the bus (which pushes) and the subscription (which drains).
pub struct Queue {
    pub uid: u32,
    pub all_users: bool,
    inner: Mutex<Inner>,
    ready: Notify,
    closed: AtomicBool,
    capacity: usize,
}

#[derive(Default)]
struct Inner {
    events: VecDeque<Event>,
    /// Events dropped since the last one queued.
    lost: u64,
}

impl Queue {
    pub fn new(uid: u32, all_users: bool, capacity: usize) -> Queue {
        Queue {
            uid,
            all_users,
            inner: Mutex::default(),
            ready: Notify::new(),
            closed: AtomicBool::new(false),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A queue is plain data: keep serving it even if a holder panicked.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `event`, or counts it lost when the queue is full.
    pub fn push(&self, event: Event) {
        let mut inner = self.lock();
        if inner.events.len() >= self.capacity {
            inner.lost += 1;
            return;
        }
        if inner.lost > 0 {
            let count = std::mem::take(&mut inner.lost);
            inner.events.push_back(Event::Lost { count });
        }
        inner.events.push_back(event);
        drop(inner);
        self.ready.notify_one();
    }

    /// Everything waiting, in order, with the count of events lost after them last.
    pub fn drain(&self) -> Vec<Event> {
        let mut inner = self.lock();
        let mut events: Vec<Event> = inner.events.drain(..).collect();
        if inner.lost > 0 {
            let count = std::mem::take(&mut inner.lost);
            events.push(Event::Lost { count });
        }
        events
    }

    /// Waits until something may be waiting (a wake-up is never missed: `Notify` keeps one permit).
    pub async fn ready(&self) {
        self.ready.notified().await;
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Pid;

    #[test]
    fn a_full_queue_drops_and_reports_the_count_where_events_went_missing() {
        let q = Queue::new(1, false, 2);
        for pid in 1..=5 {
            q.push(Event::Reaped(Pid(pid)));
        }
        assert_eq!(
            q.drain(),
            vec![
                Event::Reaped(Pid(1)),
                Event::Reaped(Pid(2)),
                Event::Lost { count: 3 }
            ]
        );
        q.push(Event::Reaped(Pid(6)));
        q.push(Event::Reaped(Pid(7)));
        q.push(Event::Reaped(Pid(8)));
        q.drain();
        q.push(Event::Reaped(Pid(9)));
        assert_eq!(q.drain(), vec![Event::Reaped(Pid(9))]);
    }

    #[test]
    fn losses_between_drains_come_before_the_next_event() {
        let q = Queue::new(1, false, 1);
        q.push(Event::Reaped(Pid(1)));
        q.push(Event::Reaped(Pid(2)));
        let first = q.drain();
        assert_eq!(first, vec![Event::Reaped(Pid(1)), Event::Lost { count: 1 }]);
        q.push(Event::Reaped(Pid(3)));
        assert_eq!(q.drain(), vec![Event::Reaped(Pid(3))]);
    }
}
