//! The kernel's event bus: what `Subscribe` streams (`top`, the dashboard) and what the metrics count.
//!
//! After every update (`Kernel::update`, the one place every change passes through) the bus
//! compares the state with its last look ([`tracker`]) and hands the differences to each subscriber's
//! bounded queue ([`queue`]): process created, state/slot/nice changed or ended, reaped, context
//! switches, backend health. Interrupts are published by the interrupt lines, and a sampler task adds
//! the rates once a second ([`SAMPLE_INTERVAL`]). With no subscriber and no metrics the bus does not
//! look at all, so an unwatched kernel pays one uncontended lock per update.
//!
//! A subscriber sees other users' processes as `ps` shows them: only when it asked for all users, and
//! with their prompts hidden. Lock order: the state's lock, then the bus's (never the other way).

pub mod queue;
pub mod tracker;

use super::state::KernelState;
use super::state::observe::Observed;
use crate::proto::{BackendHealth, Event, ProcessInfo, Sample, Snapshot};
use queue::Queue;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tracker::Tracker;

/// How often rates are sampled: the tokens/s a person watching `top` expects to see move, at a
/// cost of one look at the table per second while someone watches.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// What the metrics learn from the changes the tracker finds.
pub trait Recorder: Send + Sync {
    fn created(&self, process: &Observed);
    fn tokens(&self, process: &Observed, generated: u32, prompt: u32);
    /// Time from creation to its first generated token.
    fn first_token(&self, process: &Observed, after: Duration);
    /// Put on a slot after waiting `waited_ms` in the queue.
    fn dispatched(&self, process: &Observed, waited_ms: u64);
    fn context_switches(&self, count: u64);
    fn backend(&self, health: &BackendHealth);
    /// A dispatch pass that put processes on slots took `took`.
    fn scheduled(&self, took: Duration);
}

#[derive(Default)]
struct Inner {
    subscribers: Vec<Arc<Queue>>,
    tracker: Tracker,
    recorder: Option<Arc<dyn Recorder>>,
    /// The previous sample's time, total tokens, context switches and per-process tokens.
    last_sample: Option<(Instant, u64, u64, HashMap<crate::proto::Pid, u32>)>,
}

impl Inner {
    fn watched(&self) -> bool {
        !self.subscribers.is_empty() || self.recorder.is_some()
    }

    fn deliver(&mut self, event: &Event, owner: Option<u32>) {
        self.subscribers.retain(|q| !q.is_closed());
        for q in &self.subscribers {
            if let Some(event) = visible(event, owner, q) {
                q.push(event);
            }
        }
    }
}

/// The bus: subscribers' queues and the tracker, behind one lock.
#[derive(Default)]
pub struct EventBus {
    inner: Mutex<Inner>,
}

/// A subscription: drain its queue; dropping it unsubscribes.
pub struct Subscription {
    queue: Arc<Queue>,
}

impl Subscription {
    /// Waits for events and takes all that are waiting (with `Lost` where some were dropped).
    pub async fn next(&self) -> Vec<Event> {
        loop {
            let events = self.queue.drain();
            if !events.is_empty() {
                return events;
            }
            self.queue.ready().await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.queue.close();
    }
}

impl EventBus {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The bus's data stays consistent between statements; keep serving it after a panic.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts changes into `recorder` from now on (the metrics), whether or not anyone subscribes.
    pub fn set_recorder(&self, state: &KernelState, recorder: Arc<dyn Recorder>) {
        let mut inner = self.lock();
        if !inner.watched() {
            inner.tracker.reset(state);
        }
        for o in state.observe() {
            recorder.created(&o);
        }
        inner.recorder = Some(recorder);
    }

    /// Publishes what changed in `state` since the last look; `decided` is how long the update's
    /// dispatch pass took, when it put processes on slots. Called with the state locked.
    pub fn after_update(&self, state: &KernelState, decided: Option<Duration>) {
        let mut inner = self.lock();
        inner.subscribers.retain(|q| !q.is_closed());
        if !inner.watched() {
            return;
        }
        let recorder = inner.recorder.clone();
        if let (Some(r), Some(took)) = (&recorder, decided) {
            r.scheduled(took);
        }
        let events = inner.tracker.changes(state, recorder.as_deref());
        for (event, owner) in events {
            inner.deliver(&event, owner);
        }
    }

    /// Publishes an event that is not a change of the table (an interrupt).
    pub fn publish(&self, event: Event) {
        self.lock().deliver(&event, None);
    }

    /// Subscribes `uid`, returning the subscription and the snapshot frames to send before its
    /// events. Called with the state locked, so no change falls between the snapshot and the stream.
    pub fn subscribe(
        &self,
        state: &KernelState,
        uid: u32,
        all_users: bool,
        page_bytes: usize,
    ) -> (Subscription, Vec<Event>) {
        let mut inner = self.lock();
        inner.subscribers.retain(|q| !q.is_closed());
        if !inner.watched() {
            inner.tracker.reset(state);
        }
        let queue = Arc::new(Queue::new(uid, all_users, queue::SUBSCRIBER_BUFFER));
        inner.subscribers.push(Arc::clone(&queue));
        let rows = state.list(uid, all_users);
        let mut pages = crate::kernel::verbs::list_pages(rows, page_bytes);
        let last = pages.len() - 1;
        let frames = pages
            .drain(..)
            .enumerate()
            .map(|(i, processes)| {
                Event::Snapshot(Snapshot {
                    processes,
                    complete: i == last,
                    cpus: state.config.cpus,
                    policy: state.scheduler().policy_name().to_string(),
                    backend: tracker::health(state),
                    context_switches: state.context_switches,
                })
            })
            .collect();
        (Subscription { queue }, frames)
    }

    /// Publishes a sample of rates since the previous one, when someone subscribes. Called with the
    /// state locked.
    pub fn sample(&self, state: &KernelState) {
        let mut inner = self.lock();
        inner.subscribers.retain(|q| !q.is_closed());
        if inner.subscribers.is_empty() {
            inner.last_sample = None;
            return;
        }
        let now = Instant::now();
        let tokens = inner.tracker.tokens_total;
        let switches = state.context_switches;
        let ticks = state.ticks();
        let per_process: HashMap<_, _> =
            ticks.iter().map(|(_, t)| (t.pid, t.tokens_used)).collect();
        let previous = inner
            .last_sample
            .replace((now, tokens, switches, per_process));
        let Some((then, then_tokens, then_switches, then_per_process)) = previous else {
            return;
        };
        let secs = now.duration_since(then).as_secs_f64().max(1e-3);
        let rate = |delta: u64| delta as f64 / secs;
        let slots = state.slot_holders();
        let mut sample = Sample {
            interval_ms: (secs * 1000.0) as u64,
            tokens_per_s: rate(tokens.saturating_sub(then_tokens)),
            switches_per_s: rate(switches.saturating_sub(then_switches)),
            queue: state.waiting() as u32,
            running: slots.iter().flatten().count() as u32,
            cpus: state.config.cpus,
            slots,
            processes: Vec::new(),
        };
        let owners: Vec<u32> = ticks.iter().map(|(uid, _)| *uid).collect();
        sample.processes = ticks
            .into_iter()
            .map(|(_, mut t)| {
                let before = then_per_process
                    .get(&t.pid)
                    .copied()
                    .unwrap_or(t.tokens_used);
                t.tokens_per_s = rate(u64::from(t.tokens_used.saturating_sub(before)));
                t
            })
            .collect();
        for q in &inner.subscribers {
            let mut own = sample.clone();
            own.processes = sample
                .processes
                .iter()
                .zip(&owners)
                .filter(|(_, uid)| may_see(q, **uid))
                .map(|(t, _)| t.clone())
                .collect();
            q.push(Event::Sample(own));
        }
    }
}

/// Whether the subscriber `q` sees processes of `owner` at all.
fn may_see(q: &Queue, owner: u32) -> bool {
    q.all_users || q.uid == 0 || q.uid == owner
}

/// `event` as subscriber `q` may see it: a row of another user's process only for a subscriber of all
/// users, and with its prompt hidden, as `ps` shows it.
fn visible(event: &Event, owner: Option<u32>, q: &Queue) -> Option<Event> {
    let Some(owner) = owner else {
        return Some(event.clone());
    };
    if !may_see(q, owner) {
        return None;
    }
    let hide = |row: &ProcessInfo| {
        let mut row = row.clone();
        if q.uid != 0 && q.uid != owner {
            row.prompt = None;
        }
        row
    };
    match event {
        Event::Created(row) => Some(Event::Created(hide(row))),
        Event::Changed(row) => Some(Event::Changed(hide(row))),
        other => Some(other.clone()),
    }
}

/// Publishes a sample every [`SAMPLE_INTERVAL`] until shutdown (nothing while nobody subscribes).
pub async fn sample(kernel: Arc<super::Kernel>) {
    let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => kernel.read(|s| kernel.events.sample(s)),
            () = kernel.shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Pid, ProcessState, ProcessType};

    fn row(uid: u32) -> ProcessInfo {
        ProcessInfo {
            pid: Pid(3),
            uid,
            process_type: ProcessType::User,
            priority: 80,
            nice: 0,
            state: ProcessState::Running,
            tokens_used: 0,
            allowance: 10,
            prompt_tokens: 0,
            cpu_ms: 0,
            age_ms: 0,
            prompt: Some("secret".into()),
            context_switches: 0,
            slot: Some(0),
            queue_position: None,
            exit: None,
            note: None,
            eta_ms: None,
            context: None,
        }
    }

    fn prompt_seen(event: Option<Event>) -> Option<Option<String>> {
        match event {
            Some(Event::Changed(r)) => Some(r.prompt),
            _ => None,
        }
    }

    #[test]
    fn a_subscriber_that_does_not_read_loses_events_and_is_told_how_many() {
        use crate::config::KernelConfig;
        use crate::kernel::scheduler::{Scheduler, make_policy};
        let config = KernelConfig::default();
        let policy = make_policy(config.policy, &config);
        let state = KernelState::new(config, Scheduler::new(policy));
        let bus = EventBus::default();
        let (sub, snapshot) = bus.subscribe(&state, 1, false, 1 << 20);
        assert!(
            matches!(&snapshot[..], [Event::Snapshot(s)] if s.complete && s.processes.is_empty())
        );
        let raised = Event::Interrupt(crate::proto::InterruptRaised {
            kind: crate::proto::InterruptKind::Timer,
            handler: None,
        });
        for _ in 0..queue::SUBSCRIBER_BUFFER + 10 {
            bus.publish(raised.clone());
        }
        let events = sub.queue.drain();
        assert_eq!(events.len(), queue::SUBSCRIBER_BUFFER + 1);
        assert_eq!(events.last(), Some(&Event::Lost { count: 10 }));
        drop(sub);
        bus.publish(raised);
        assert!(
            bus.lock().subscribers.is_empty(),
            "a dropped subscription is forgotten"
        );
    }

    #[test]
    fn another_users_process_is_seen_as_ps_shows_it() {
        let event = Event::Changed(row(1000));
        let own = Queue::new(1000, false, 4);
        let other = Queue::new(2000, false, 4);
        let other_all = Queue::new(2000, true, 4);
        let root = Queue::new(0, false, 4);
        let seen = |q: &Queue| prompt_seen(visible(&event, Some(1000), q));
        assert_eq!(seen(&own), Some(Some("secret".into())));
        assert_eq!(seen(&other), None, "not listed without all users");
        assert_eq!(seen(&other_all), Some(None), "listed, prompt hidden");
        assert_eq!(seen(&root), Some(Some("secret".into())));
        let switch = Event::ContextSwitch {
            pid: Pid(3),
            slot: 0,
        };
        assert!(visible(&switch, Some(1000), &other).is_none());
        assert!(visible(&switch, Some(1000), &other_all).is_some());
    }
}
