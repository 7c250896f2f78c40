//! Job notices on a terminal: `[1]+  Done  query ...` when a background job ends, `Stopped` when one
//! is stopped. Each job in the background has a watcher task on the shell's runtime that follows the
//! process through the kernel and records its state changes in the shared job table. Between command
//! lines the shell prints the pending notices before the prompt; while the user edits a line the
//! watcher prints them at once, above the line, through reedline's external printer. A notice is
//! taken out of the table under the same lock that decides where it goes, so it is printed once.

use super::client::Client;
use super::jobs::{JobState, JobTable, SharedJobs};
use crate::proto::{OutputRequest, Pid, Request, Response};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio_util::sync::CancellationToken;

/// Lines reedline's external printer may hold before it is drained: it drains every poll (100 ms),
/// so this is only reached by a burst of many jobs ending at once. A notice that does not fit stays
/// pending and is printed before the next prompt instead.
pub const LIVE_NOTICE_CAPACITY: usize = 64;

/// The notices of one interactive shell.
pub struct Notifier {
    jobs: SharedJobs,
    socket: PathBuf,
    /// Sends lines to print above the line being edited (reedline's external printer).
    live: SyncSender<String>,
    /// Whether the editor is reading a line, so notices go out at once. Changed only with the job
    /// table locked, and read by watchers with it locked: a notice is either taken before the prompt
    /// or sent live, never both.
    reading: AtomicBool,
    /// The running watchers, by pid, each with a generation so an old watcher ending late does not
    /// forget a newer one.
    watchers: Mutex<HashMap<Pid, (u64, CancellationToken)>>,
    generation: std::sync::atomic::AtomicU64,
}

impl Notifier {
    /// Notices for `jobs`, whose processes are followed on the kernel at `socket`; `live` prints
    /// above the line being edited.
    pub fn new(jobs: SharedJobs, socket: PathBuf, live: SyncSender<String>) -> Notifier {
        Notifier {
            jobs,
            socket,
            live,
            reading: AtomicBool::new(false),
            watchers: Mutex::new(HashMap::new()),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn table(&self) -> MutexGuard<'_, JobTable> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The editor is about to read a line: returns the notices to print before the prompt; from now
    /// on notices are printed live.
    pub fn begin_line(&self) -> Vec<String> {
        let mut table = self.table();
        let notices = table.take_notices();
        self.reading.store(true, Ordering::SeqCst);
        notices
    }

    /// The editor has a line: notices wait for the next prompt again.
    pub fn end_line(&self) {
        let _table = self.table();
        self.reading.store(false, Ordering::SeqCst);
    }

    /// Starts following `pid`, a job that is now in the background (run with `&` or stopped).
    /// Must be called on the shell's runtime.
    pub fn watch(self: &Arc<Self>, pid: Pid) {
        let token = CancellationToken::new();
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let old = self
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(pid, (generation, token.clone()));
        if let Some((_, old)) = old {
            old.cancel();
        }
        let notifier = Arc::clone(self);
        tokio::spawn(async move {
            tokio::select! {
                () = token.cancelled() => {}
                () = notifier.follow(pid) => {}
            }
            let mut watchers = notifier
                .watchers
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if watchers.get(&pid).is_some_and(|(g, _)| *g == generation) {
                watchers.remove(&pid);
            }
        });
    }

    /// Stops following `pid`: it comes to the foreground, where the shell reports it itself.
    pub fn unwatch(&self, pid: Pid) {
        let old = self
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&pid);
        if let Some((_, token)) = old {
            token.cancel();
        }
    }

    /// Follows the process until it exits. A lost connection ends the watch quietly: the shell asks
    /// the kernel for every job's state before each prompt anyway.
    async fn follow(&self, pid: Pid) {
        let Ok(mut client) = Client::connect(&self.socket).await else {
            return;
        };
        let request = Request::Output(OutputRequest { pid, follow: true });
        if client.send(request).await.is_err() {
            return;
        }
        loop {
            let state = match client.recv().await {
                Ok(Response::Output(_) | Response::Waiting(_)) => continue,
                Ok(Response::Stopped(_)) => JobState::Stopped,
                Ok(Response::Continued(_)) => JobState::Running,
                Ok(Response::Exited(exited)) => JobState::Done(exited.status),
                Ok(_) | Err(_) => return,
            };
            let done = matches!(state, JobState::Done(_));
            self.record(pid, state);
            if done {
                return;
            }
        }
    }

    /// Records a state change; while a line is being edited, prints the notice above it.
    pub fn record(&self, pid: Pid, state: JobState) {
        let mut table = self.table();
        if !table.update_state(pid, state) || !self.reading.load(Ordering::SeqCst) {
            return;
        }
        let notices = table.notices();
        if notices.is_empty() {
            return;
        }
        let text: Vec<&str> = notices.iter().map(|(_, line)| line.as_str()).collect();
        // A full or closed printer leaves the notices pending for the next prompt.
        if self.live.try_send(text.join("\n")).is_ok() {
            let ids: Vec<u32> = notices.iter().map(|(id, _)| *id).collect();
            table.mark_reported(&ids);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ExitStatus;

    fn notifier() -> (Notifier, std::sync::mpsc::Receiver<String>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(LIVE_NOTICE_CAPACITY);
        let jobs: SharedJobs = Arc::default();
        jobs.lock()
            .unwrap()
            .add(Pid(7), "query story", JobState::Running);
        (Notifier::new(jobs, PathBuf::from("/nonexistent"), tx), rx)
    }

    #[test]
    fn a_job_ending_between_lines_is_reported_before_the_next_prompt_only() {
        let (n, live) = notifier();
        n.record(Pid(7), JobState::Done(ExitStatus::Finished));
        assert!(live.try_recv().is_err());
        let before = n.begin_line();
        assert_eq!(before.len(), 1);
        assert!(before[0].starts_with("[1]+  Done"), "{before:?}");
        assert!(n.begin_line().is_empty());
    }

    #[test]
    fn a_job_ending_while_a_line_is_edited_is_printed_live_once() {
        let (n, live) = notifier();
        assert!(n.begin_line().is_empty());
        n.record(Pid(7), JobState::Done(ExitStatus::Finished));
        n.record(Pid(7), JobState::Done(ExitStatus::Finished));
        let line = live.try_recv().expect("a live notice");
        assert!(line.starts_with("[1]+  Done"), "{line}");
        assert!(live.try_recv().is_err());
        n.end_line();
        assert!(n.begin_line().is_empty());
        assert!(n.table().is_empty());
    }

    #[test]
    fn a_notice_that_cannot_be_printed_live_waits_for_the_prompt() {
        let (n, live) = notifier();
        drop(live);
        n.begin_line();
        n.record(Pid(7), JobState::Stopped);
        n.end_line();
        let before = n.begin_line();
        assert!(before[0].starts_with("[1]+  Stopped"), "{before:?}");
    }
}
