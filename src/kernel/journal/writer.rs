//! The journal writer: one thread owns the journal file. The kernel state hands it records through
//! [`JournalHandle`] and goes on at once (under its lock, on a runtime thread, nothing waits for the
//! disk); the thread takes every record that has arrived, writes them in one `write` and makes them
//! durable with one `fdatasync` (group commit, as PostgreSQL's WAL writer does), then runs each
//! record's completion: whoever must not answer before a record is on disk (a `Submit`, a `kill`, a
//! `wait`) waits for that. Compactions travel down the same queue, so they land in order with the
//! records around them.
//!
//! A failed write marks the journal damaged: every later record fails at once, without touching the
//! disk, until a compaction rewrites the file from memory. The state asks for that compaction when
//! a creation arrives and, less and less often, by itself ([`JournalHandle::wants_compaction`]).

use super::record::Record;
use super::{Journal, file};
use crate::proto::Pid;
use futures::FutureExt;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Why a record is not on disk, as completions see it.
pub type WriteError = Arc<str>;

/// What to do once a record is on disk (`Ok`) or known not to be (`Err`). Runs on the writer thread:
/// keep it short (send on a channel).
pub type Completion = Box<dyn FnOnce(Result<(), WriteError>) + Send>;

/// Most bytes written in one batch: a bound on the writer's buffer; a longer queue is written in
/// several batches, each synced.
const BATCH_BYTES: usize = 4 * 1024 * 1024;

/// The first wait before a damaged journal is rewritten again by itself; it doubles up to
/// [`REWRITE_BACKOFF_MAX`], so a full disk is not rewritten on every record.
const REWRITE_BACKOFF_MIN: Duration = Duration::from_millis(500);
const REWRITE_BACKOFF_MAX: Duration = Duration::from_secs(30);

enum Entry {
    Append {
        /// Boxed: records differ much in size and most entries are small.
        record: Box<Record>,
        then: Option<Completion>,
    },
    Compact {
        records: Vec<Record>,
        next_pid: u64,
    },
}

/// What the writer thread tells the state without a lock.
#[derive(Default)]
struct Shared {
    damaged: AtomicBool,
    /// A compaction has been asked for and not yet carried out.
    compacting: AtomicBool,
    /// Bytes of the journal on disk (for tests and the crash checks).
    synced_len: AtomicU64,
    /// Batches written and synced: with records, the measure of group commit.
    batches: AtomicU64,
    /// Nanoseconds spent writing and syncing those batches (the metrics' journal sync latency).
    sync_nanos: AtomicU64,
}

/// A record's acknowledgement: resolves once the record is on disk, or with why it is not. Clones
/// resolve together (an exit's acknowledgement is awaited by every client that follows it).
#[derive(Clone, Debug)]
pub struct Ack(Option<futures::future::Shared<oneshot::Receiver<Result<(), WriteError>>>>);

impl Ack {
    /// An acknowledgement with nothing to wait for (no journal, or nothing was recorded).
    pub fn done() -> Ack {
        Ack(None)
    }

    /// A pending acknowledgement and the completion that resolves it.
    pub fn pending() -> (Ack, impl FnOnce(Result<(), WriteError>) + Send + 'static) {
        let (tx, rx) = oneshot::channel();
        (Ack(Some(rx.shared())), move |result| {
            let _ = tx.send(result);
        })
    }

    /// Waits until the record is durable.
    pub async fn durable(self) -> Result<(), WriteError> {
        match self.0 {
            None => Ok(()),
            Some(rx) => rx
                .await
                .unwrap_or_else(|_| Err("the journal writer has stopped".into())),
        }
    }
}

/// The state's end of the journal: appends without waiting, and knows when to compact.
pub struct JournalHandle {
    /// Unbounded because the state must never block (it holds the kernel's lock on a runtime
    /// thread): the writer drains everything that arrived at each sync, so the queue holds at most
    /// what the kernel produces during one `fdatasync`.
    tx: Option<mpsc::Sender<Entry>>,
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    dir: std::path::PathBuf,
    /// Records appended since the last compaction.
    appended: u64,
    compact_after: u64,
    /// When a damaged journal may be rewritten again by itself, and the wait after that.
    next_rewrite: Option<(Instant, Duration)>,
}

impl JournalHandle {
    /// Starts the writer thread on `journal`.
    pub fn spawn(journal: Journal, compact_after: u64) -> std::io::Result<JournalHandle> {
        let shared = Arc::new(Shared::default());
        shared
            .synced_len
            .store(journal.synced_len(), Ordering::Release);
        let (tx, rx) = mpsc::channel();
        let dir = journal.dir.clone();
        let thread = std::thread::Builder::new().name("journal".into()).spawn({
            let shared = Arc::clone(&shared);
            move || Writer::new(journal, shared).run(rx)
        })?;
        Ok(JournalHandle {
            tx: Some(tx),
            shared,
            thread: Some(thread),
            dir,
            appended: 0,
            compact_after: compact_after.max(1),
            next_rewrite: None,
        })
    }

    /// Queues a record; `then` runs once it is on disk or known not to be.
    pub fn append(&mut self, record: Record, then: Option<Completion>) {
        self.appended += 1;
        let entry = Entry::Append {
            record: Box::new(record),
            then,
        };
        if let Some(Entry::Append {
            then: Some(then), ..
        }) = self.send(entry)
        {
            then(Err("the journal writer has stopped".into()));
        }
    }

    /// Queues a rewrite of the journal as `records`. The caller takes them from a state that includes
    /// every record queued before (the writer applies entries in order).
    pub fn compact(&mut self, records: Vec<Record>, next_pid: u64) {
        self.appended = 0;
        self.shared.compacting.store(true, Ordering::Release);
        let _ = self.send(Entry::Compact { records, next_pid });
    }

    /// Sends `entry` to the writer; gives it back if the writer is gone.
    fn send(&mut self, entry: Entry) -> Option<Entry> {
        match &self.tx {
            Some(tx) => tx.send(entry).err().map(|e| e.0),
            None => Some(entry),
        }
    }

    /// Whether the state should take a snapshot and [`compact`](Self::compact) now: the journal has
    /// grown by more records than both the configured threshold and twice the `live` processes a
    /// compaction would write (which keeps compaction amortized O(1) per record however large the
    /// table is), or it is damaged and the backoff since the last try has passed.
    pub fn wants_compaction(&mut self, live: usize) -> bool {
        if self.shared.compacting.load(Ordering::Acquire) {
            return false;
        }
        if !self.is_damaged() {
            self.next_rewrite = None;
            return self.appended >= self.compact_after.max(2 * live as u64);
        }
        let now = Instant::now();
        match self.next_rewrite {
            Some((at, _)) if now < at => false,
            Some((_, wait)) => {
                let wait = (wait * 2).min(REWRITE_BACKOFF_MAX);
                self.next_rewrite = Some((now + wait, wait));
                true
            }
            None => {
                self.next_rewrite = Some((now + REWRITE_BACKOFF_MIN, REWRITE_BACKOFF_MIN));
                true
            }
        }
    }

    /// Whether a write failed and no compaction has rewritten the journal since.
    pub fn is_damaged(&self) -> bool {
        self.shared.damaged.load(Ordering::Acquire)
    }

    /// Whether a compaction is queued and not yet carried out.
    pub fn is_compacting(&self) -> bool {
        self.shared.compacting.load(Ordering::Acquire)
    }

    /// Bytes of the journal known to be on disk.
    pub fn synced_len(&self) -> u64 {
        self.shared.synced_len.load(Ordering::Acquire)
    }

    /// Batches written and synced so far (each one `fdatasync`).
    pub fn batches(&self) -> u64 {
        self.shared.batches.load(Ordering::Relaxed)
    }

    /// Nanoseconds spent writing and syncing batches so far.
    pub fn sync_nanos(&self) -> u64 {
        self.shared.sync_nanos.load(Ordering::Relaxed)
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Writes what is queued, stops the thread and releases the state directory.
    pub fn close(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for JournalHandle {
    fn drop(&mut self) {
        self.shut();
    }
}

/// The writer thread's state.
struct Writer {
    journal: Journal,
    shared: Arc<Shared>,
    /// Framed records of the batch being gathered.
    buf: Vec<u8>,
    /// Their completions, in order.
    then: Vec<Completion>,
    /// Processes whose creation could not be written since the last compaction: a compaction drops
    /// them, since their submitter was told they were not created.
    failed_creations: HashSet<Pid>,
    /// Creations in the batch being gathered.
    creations: Vec<Pid>,
}

impl Writer {
    fn new(journal: Journal, shared: Arc<Shared>) -> Writer {
        Writer {
            journal,
            shared,
            buf: Vec::new(),
            then: Vec::new(),
            failed_creations: HashSet::new(),
            creations: Vec::new(),
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Entry>) {
        while let Ok(first) = rx.recv() {
            let mut next = Some(first);
            while let Some(entry) = next.take() {
                self.take(entry);
                if self.buf.len() >= BATCH_BYTES {
                    self.commit();
                }
                next = rx.try_recv().ok();
            }
            self.commit();
        }
    }

    fn take(&mut self, entry: Entry) {
        match entry {
            Entry::Append { record, then } => {
                if let Record::Created(c) = &*record {
                    self.creations.push(c.pid);
                }
                match file::frame(&record) {
                    Ok(bytes) => self.buf.extend_from_slice(&bytes),
                    Err(e) => {
                        tracing::error!("cannot encode a journal record: {e}");
                        if let Some(then) = then {
                            then(Err(format!("cannot encode a journal record: {e}").into()));
                        }
                        return;
                    }
                }
                self.then.extend(then);
            }
            Entry::Compact { records, next_pid } => {
                // What came before goes to the old file first, so a failed compaction loses nothing.
                self.commit();
                self.compact(records, next_pid);
            }
        }
    }

    /// Writes and syncs the gathered batch, then runs its completions.
    fn commit(&mut self) {
        if self.buf.is_empty() && self.then.is_empty() && self.creations.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        let result = self
            .journal
            .write_synced(&self.buf)
            .map_err(|e| WriteError::from(e.to_string()));
        match &result {
            Ok(()) => {
                let nanos = started.elapsed().as_nanos() as u64;
                self.shared.sync_nanos.fetch_add(nanos, Ordering::Relaxed);
                self.shared.batches.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::error!("cannot write the journal: {e}");
                self.failed_creations.extend(self.creations.iter().copied());
            }
        }
        self.publish();
        self.buf.clear();
        self.creations.clear();
        for then in self.then.drain(..) {
            then(result.clone());
        }
    }

    fn compact(&mut self, records: Vec<Record>, next_pid: u64) {
        let failed = &self.failed_creations;
        let kept: Vec<Record> = records
            .into_iter()
            .filter(|r| record_pid(r).is_none_or(|pid| !failed.contains(&pid)))
            .collect();
        match self.journal.compact(&kept, next_pid) {
            Ok(()) => self.failed_creations.clear(),
            Err(e) => tracing::error!("cannot compact the journal: {e}"),
        }
        self.shared.compacting.store(false, Ordering::Release);
        self.publish();
    }

    fn publish(&self) {
        let damaged = self.journal.is_damaged();
        self.shared.damaged.store(damaged, Ordering::Release);
        self.shared
            .synced_len
            .store(self.journal.synced_len(), Ordering::Release);
    }
}

/// The process a compaction record belongs to.
fn record_pid(record: &Record) -> Option<Pid> {
    match record {
        Record::Image(image) => Some(image.pid()),
        Record::Output(o) => Some(o.pid),
        Record::Deadline { pid, .. } => Some(*pid),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
