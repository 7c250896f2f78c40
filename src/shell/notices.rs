//! Job notices on a terminal: `[1]+  Done  query ...` when a background job ends, `Stopped` when one
//! is stopped. While jobs are in the background one task on the shell's runtime follows them all on
//! the kernel's event stream ([`follow`], `Subscribe`) and records their state changes in the shared
//! job table. Between command
//! lines the shell prints the pending notices before the prompt; while the user edits a line the
//! watcher prints them at once, above the line, through reedline's external printer. A notice is
//! taken out of the table under the same lock that decides where it goes, so it is printed once.
//!
//! A job that ended in the background says what it had to say with its notice, as its output would
//! have appeared on the terminal in bash: the output not shown yet (fetched with a plain `Output`
//! request, as `cat` does), then `[1]+  Done ...`; and then the shell reaps it with `Wait`, so jobs
//! reported `Done` leave no zombies in `ps`. A job this shell never reports (it still runs when the
//! shell exits) stays in the kernel until someone waits for it or its retention runs out.

mod follow;

use super::client::Client;
use super::foreground::write_out;
use super::jobs::{Finished, JobState, JobTable, Notice, SharedJobs, unshown};
use crate::proto::{OutputRequest, Pid, Request, Response, WaitRequest};
use follow::Command;
use std::path::Path;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::mpsc;

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
    /// Tells the follower of the event stream which jobs to report, once it runs. Unbounded: one
    /// message per job put in or taken out of the background, at the pace the user types.
    follower: Mutex<Option<mpsc::UnboundedSender<Command>>>,
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
            follower: Mutex::new(None),
        }
    }

    fn table(&self) -> MutexGuard<'_, JobTable> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The editor is about to read a line: returns the notices to print before the prompt (with
    /// [`report`]); from now on notices are printed live.
    pub fn begin_line(&self) -> Vec<Notice> {
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
        let mut follower = self.follower.lock().unwrap_or_else(PoisonError::into_inner);
        let sender = follower.get_or_insert_with(|| {
            let (sender, commands) = mpsc::unbounded_channel();
            tokio::spawn(follow::run(Arc::downgrade(self), commands));
            sender
        });
        let _ = sender.send(Command::Watch(pid));
    }

    /// Stops following `pid`: it comes to the foreground, where the shell reports it itself.
    pub fn unwatch(&self, pid: Pid) {
        let follower = self.follower.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = follower.as_ref() {
            let _ = sender.send(Command::Unwatch(pid));
        }
    }

    /// A followed job changed: records it; an ending goes with the output the job had not shown
    /// (fetched on a task of its own, so the stream keeps being read), then the job is reaped.
    fn report_change(self: Arc<Self>, pid: Pid, state: JobState) {
        if !matches!(state, JobState::Done(_)) {
            self.record(pid, state, "");
            return;
        }
        tokio::spawn(async move {
            // Fetched before taking the lock, which never waits.
            let shown = self.table().by_pid(pid).map_or(0, |j| j.shown);
            let rest = unshown_output(&self.socket, pid, shown).await;
            if self.record(pid, state, &rest) {
                reap(&self.socket, pid).await;
            }
        });
    }

    /// Records a state change; while a line is being edited, prints the notice above it, after
    /// `output` when the change is `pid` ending (the output it had not shown). Returns whether that
    /// ending was reported here, so the caller reaps the process.
    pub fn record(&self, pid: Pid, state: JobState, output: &str) -> bool {
        let mut table = self.table();
        if !table.update_state(pid, state) || !self.reading.load(Ordering::SeqCst) {
            return false;
        }
        // Another job's ending, whose output is not at hand, waits for the prompt.
        let notices: Vec<(u32, Notice)> = table
            .notices()
            .into_iter()
            .filter(|(_, n)| n.finished.is_none_or(|f| f.pid == pid))
            .collect();
        if notices.is_empty() {
            return false;
        }
        let mut text = String::new();
        let mut ended_here = false;
        for (_, notice) in &notices {
            if notice.finished.is_some() {
                ended_here = true;
                // Model output, above the line: shown as safely as a foreground answer.
                text.push_str(&super::terminal_safe::for_stdout(output));
                if !output.is_empty() && !output.ends_with('\n') {
                    text.push('\n');
                }
            }
            text.push_str(&notice.line);
            text.push('\n');
        }
        // The editor's terminal is raw: every line break needs its carriage return. The printer
        // ends the message with one of its own.
        let text = text.trim_end_matches('\n').replace('\n', "\r\n");
        // A full or closed printer leaves the notices pending for the next prompt.
        if self.live.try_send(text).is_err() {
            return false;
        }
        let ids: Vec<u32> = notices.iter().map(|(id, _)| *id).collect();
        table.mark_reported(&ids);
        ended_here
    }
}

/// Prints notices taken from the job table: a finished job's output not shown yet goes first, and
/// the job is reaped once its notice is out.
pub async fn report(socket: &Path, notices: Vec<Notice>) {
    for notice in notices {
        let Some(finished) = notice.finished else {
            println!("{}", notice.line);
            continue;
        };
        print_unshown(socket, finished).await;
        println!("{}", notice.line);
        reap(socket, finished.pid).await;
    }
}

/// Prints what a finished job had not shown yet, ending its last line.
pub async fn print_unshown(socket: &Path, finished: Finished) {
    let rest = unshown_output(socket, finished.pid, finished.shown).await;
    if !rest.is_empty() {
        write_out(&rest);
        if !rest.ends_with('\n') {
            write_out("\n");
        }
    }
}

/// The output of `pid` past its first `shown` bytes, as a plain `Output` request (`cat`) gives it;
/// empty when the kernel cannot say (the process is gone, the kernel is down).
pub async fn unshown_output(socket: &Path, pid: Pid, shown: usize) -> String {
    let Ok(mut client) = Client::connect(socket).await else {
        return String::new();
    };
    let request = Request::Output(OutputRequest { pid, follow: false });
    match client.call(request).await {
        Ok(Response::Output(chunk)) => unshown(&chunk.text, 0, shown).to_string(),
        _ => String::new(),
    }
}

/// Collects a finished job's exit status so the kernel forgets it. Failing here (someone else
/// reaped it, the kernel is gone) leaves nothing to do.
pub async fn reap(socket: &Path, pid: Pid) {
    if let Ok(mut client) = Client::connect(socket).await {
        let _ = client.call(Request::Wait(WaitRequest { pid })).await;
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
        assert!(!n.record(Pid(7), JobState::Done(ExitStatus::Finished), "answer"));
        assert!(live.try_recv().is_err());
        let before = n.begin_line();
        assert_eq!(before.len(), 1);
        assert!(before[0].line.starts_with("[1]+  Done"), "{before:?}");
        assert!(
            before[0].finished.is_some(),
            "printed with its output, then reaped"
        );
        assert!(n.begin_line().is_empty());
    }

    #[test]
    fn a_job_ending_while_a_line_is_edited_is_printed_live_once() {
        let (n, live) = notifier();
        assert!(n.begin_line().is_empty());
        assert!(n.record(Pid(7), JobState::Done(ExitStatus::Finished), "t0\nt1"));
        assert!(!n.record(Pid(7), JobState::Done(ExitStatus::Finished), "t0\nt1"));
        let line = live.try_recv().expect("a live notice");
        assert!(
            line.starts_with("t0\r\nt1\r\n[1]+  Done"),
            "its output first: {line:?}"
        );
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
        assert!(!n.record(Pid(7), JobState::Stopped, ""));
        n.end_line();
        let before = n.begin_line();
        assert!(before[0].line.starts_with("[1]+  Stopped"), "{before:?}");
    }
}
