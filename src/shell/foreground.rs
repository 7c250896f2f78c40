//! A process in the foreground: its output streams to stdout as it arrives. Ctrl-C (SIGINT) sends it
//! INT; on a terminal Ctrl-Z (SIGTSTP) stops it and hands the prompt back, as bash does for a job.
//! After `fg`, only what the job produced while it was away is printed, then the stream goes on.
//!
//! While the process waits for a slot (behind a failing backend, or in a long queue), the kernel
//! says why ([`Response::Waiting`]) and the shell keeps one status line on stderr: on a terminal it
//! is rewritten in place and erased when tokens flow; otherwise each new reason is printed once.

use super::client::{Client, ClientError};
use super::jobs::JobState;
use super::session::Shell;
use super::signals::{KeyWatch, NoFlushGuard};
use super::terminal_safe;
use crate::proto::{Pid, Request, Response, Signal, SignalRequest, WaitRequest, WaitingNote};
use std::io::{IsTerminal, Write};
use tokio::signal::unix::{SignalKind, signal};

/// Status bash gives a job stopped by Ctrl-Z (128 + SIGTSTP).
pub const STOPPED_STATUS: i32 = 148;

/// Where a foreground process's output and failure go: stdout and stderr unless redirected.
#[derive(Default)]
pub struct Sink {
    /// `> FILE`, `>> FILE`: the output goes here as it comes.
    pub out: Option<std::fs::File>,
    /// `2> FILE`: a failure's reason goes here.
    pub errors: Option<std::fs::File>,
}

/// Follows `pid` on `client` (already streaming) until it exits or is stopped. `job` is its number in
/// the job table when it already has one (`fg`); what that job already printed is not printed again.
pub async fn attach(
    sh: &mut Shell,
    client: Client,
    pid: Pid,
    command: &str,
    job: Option<u32>,
) -> i32 {
    attach_to(sh, client, pid, command, job, Sink::default()).await
}

/// [`attach`] with the output and the failure's reason sent where `sink` says.
pub async fn attach_to(
    sh: &mut Shell,
    mut client: Client,
    pid: Pid,
    command: &str,
    job: Option<u32>,
    sink: Sink,
) -> i32 {
    let Sink { out, mut errors } = sink;
    let _no_flush = sh.keys.as_ref().map(|_| NoFlushGuard::set());
    let (mut ctrl_c, mut ctrl_z) = match &sh.keys {
        Some(keys) => (
            KeyWatch::Counted(keys.ctrl_c.clone()),
            KeyWatch::Counted(keys.ctrl_z.clone()),
        ),
        None => match signal(SignalKind::interrupt()) {
            Ok(sigint) => (KeyWatch::Listening(sigint), KeyWatch::Never),
            Err(_) => (KeyWatch::Never, KeyWatch::Never),
        },
    };
    let mut screen = Screen {
        skip: job
            .and_then(|id| sh.jobs().get(id).map(|j| j.shown))
            .unwrap_or(0),
        seen: 0,
        at_line_start: true,
        out,
        held: None,
        echoes_keys: sh.keys.is_some() && super::signals::echoes_control_keys(),
        status: StatusLine {
            terminal: std::io::stderr().is_terminal(),
            shown: false,
        },
    };
    loop {
        // Keys first: a press that is pending when a chunk arrives holds that chunk back.
        tokio::select! {
            biased;
            () = ctrl_c.pressed() => {
                screen.hold(false);
                send_signal(sh, pid, Signal::Int).await;
            }
            () = ctrl_z.pressed() => {
                screen.hold(true);
                send_signal(sh, pid, Signal::Stop).await;
            }
            reply = client.recv() => match reply {
                Ok(Response::Output(chunk)) => {
                    if !screen.show(&chunk.text) {
                        // Whoever read our output is gone; the process has no one to answer to.
                        send_signal(sh, pid, Signal::Int).await;
                        return 0;
                    }
                }
                Ok(Response::Exited(exited)) => {
                    screen.end_line();
                    screen.release_after_stop();
                    // Collect the zombie: a foreground process's status belongs to this shell.
                    let _ = client.call(Request::Wait(WaitRequest { pid })).await;
                    if let Some(id) = job {
                        sh.jobs().remove(id);
                    }
                    if let crate::proto::ExitStatus::Failed { reason } = &exited.status {
                        report_failure(pid, reason, errors.as_mut());
                    }
                    return exited.status.code();
                }
                Ok(Response::Stopped(_)) => {
                    screen.end_line();
                    stopped(sh, pid, command, job, screen.shown());
                    return STOPPED_STATUS;
                }
                Ok(Response::Continued(_)) => {}
                Ok(Response::Waiting(note)) => screen.waiting(&note),
                Ok(other) => {
                    sh.complain(command, ClientError::unexpected(&other));
                    return 1;
                }
                Err(e) => {
                    screen.end_line();
                    sh.complain(command, e);
                    return 1;
                }
            },
        }
    }
}

/// The foreground process was stopped: it becomes (or stays) a job, current, in the background,
/// and the shell says so as bash does (`[1]+  Stopped  query ...`).
fn stopped(sh: &mut Shell, pid: Pid, command: &str, job: Option<u32>, shown: usize) {
    let line = {
        let mut jobs = sh.jobs();
        let id = match job {
            Some(id) => id,
            None => jobs.add(pid, command, JobState::Stopped),
        };
        jobs.make_current(id);
        if let Some(j) = jobs.get_mut(id) {
            j.state = JobState::Stopped;
            j.shown = shown;
            j.unreported = false;
        }
        let marker = jobs.marker(id);
        jobs.get(id)
            .map(|j| super::builtins::jobs::format_job(j, marker, false))
    };
    if let Some(line) = line {
        println!("{line}");
    }
    sh.watch_job(pid);
}

/// What the attach loop has put on the terminal.
struct Screen {
    /// Bytes at the start of the output that were already shown before (`fg` after Ctrl-Z).
    skip: usize,
    /// Bytes of the output received so far, shown, skipped or held.
    seen: usize,
    at_line_start: bool,
    /// After Ctrl-C or Ctrl-Z, output is held back rather than printed after the `^C`/`^Z` the
    /// terminal echoed; `fg` shows it later.
    held: Option<Held>,
    /// The terminal echoes `^C` and `^Z` (ECHOCTL), so the cursor is no longer at a line start.
    echoes_keys: bool,
    /// Why the process waits, while it does (stderr).
    status: StatusLine,
    /// `> FILE`: the output goes there instead of stdout.
    out: Option<std::fs::File>,
}

/// Output held back since a key was pressed.
struct Held {
    /// Bytes of the output shown (or skipped) when the key was pressed.
    shown: usize,
    /// Ctrl-Z: the text is shown if the process ends before it stops. Ctrl-C drops it.
    by_stop: bool,
    text: String,
}

impl Screen {
    /// Shows the part of a chunk not shown before; false when stdout is gone.
    fn show(&mut self, text: &str) -> bool {
        self.status.clear();
        let start = self.skip.saturating_sub(self.seen).min(text.len());
        self.seen += text.len();
        // The output only grows, so the shown part ends on a character boundary; if not, show all.
        let new = text.get(start..).unwrap_or(text);
        if new.is_empty() {
            return true;
        }
        if let Some(held) = &mut self.held {
            if held.by_stop {
                held.text.push_str(new);
            }
            return true;
        }
        if let Some(file) = &mut self.out {
            // A write error (a full disk) is reported once the process is stopped for it.
            return file.write_all(new.as_bytes()).is_ok();
        }
        self.at_line_start = new.ends_with('\n');
        write_out(new)
    }

    /// A key was pressed: output from now on is held back.
    fn hold(&mut self, by_stop: bool) {
        if self.held.is_none() {
            self.held = Some(Held {
                shown: self.seen.max(self.skip),
                by_stop,
                text: String::new(),
            });
        }
    }

    /// Bytes of the output shown so far (or before): where `fg` picks up.
    fn shown(&self) -> usize {
        self.held
            .as_ref()
            .map_or(self.seen.max(self.skip), |h| h.shown)
    }

    /// Ends the line output left open, and the one the terminal's `^C`/`^Z` echo left open; the
    /// waiting line goes first.
    fn end_line(&mut self) {
        self.status.clear();
        if !self.at_line_start || (self.held.is_some() && self.echoes_keys) {
            write_out("\n");
        }
    }

    /// The process ended although Ctrl-Z was pressed: what it said meanwhile is shown after all.
    fn release_after_stop(&mut self) {
        if let Some(held) = self.held.take_if(|h| h.by_stop && !h.text.is_empty()) {
            write_out(&held.text);
            if !held.text.ends_with('\n') {
                write_out("\n");
            }
        }
    }

    /// Says why the process waits, unless a line of its output is half written.
    fn waiting(&mut self, note: &WaitingNote) {
        if self.at_line_start {
            self.status.show(note);
        }
    }
}

/// The one status line on stderr while the foreground process waits.
struct StatusLine {
    /// Whether stderr is a terminal (the line is rewritten in place).
    terminal: bool,
    /// The line is on the terminal now, without a newline.
    shown: bool,
}

impl StatusLine {
    fn show(&mut self, note: &WaitingNote) {
        let mut line = format!("waiting: {}", terminal_safe::one_line(&note.note));
        let mut err = std::io::stderr().lock();
        if self.terminal {
            // One row, so that `\r` gets back to its start: cut to the terminal's width.
            let width = super::render::terminal_width().saturating_sub(1).max(10);
            if let Some((cut, _)) = line.char_indices().nth(width) {
                line.truncate(cut);
            }
            let _ = write!(err, "\r\x1b[2K{line}");
            self.shown = true;
        } else if note.news {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    /// Erases the line (tokens flow, or the process ended or stopped).
    fn clear(&mut self) {
        if std::mem::take(&mut self.shown) {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

/// Resolves when the user presses Ctrl-C on a terminal; never otherwise. For builtins that block
/// (`wait`), so that Ctrl-C gives the prompt back as in bash.
pub async fn interrupted(sh: &Shell) {
    match &sh.keys {
        Some(keys) => KeyWatch::Counted(keys.ctrl_c.clone()).pressed().await,
        None => std::future::pending().await,
    }
}

/// Prints a process's failure as `llmsh: PID: REASON` on stderr, or into the `2>` file.
pub fn report_failure(pid: Pid, reason: &str, errors: Option<&mut std::fs::File>) {
    match errors {
        Some(file) => {
            let _ = writeln!(file, "llmsh: {pid}: {reason}");
        }
        None => eprintln!("llmsh: {pid}: {}", terminal_safe::escape(reason)),
    }
}

/// Sends a signal on a second connection (the first is busy streaming). A job that is a pipeline
/// gets it as a whole: every process of its group.
pub async fn send_signal(sh: &Shell, pid: Pid, signal: Signal) {
    let group = sh.jobs().by_pid(pid).and_then(|j| j.pgid);
    let request = match group {
        Some(pgid) => Request::SignalGroup(crate::proto::SignalGroupRequest { pgid, signal }),
        None => Request::Signal(SignalRequest { pid, signal }),
    };
    let result = match sh.client().await {
        Ok(mut c) => c.call(request).await.map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        sh.complain("kill", e);
    }
}

/// Writes a process's output to stdout at once, its control characters made visible on a terminal
/// (raw bytes to a pipe or file; see [`terminal_safe`]); false when stdout is gone (a closed pipe).
pub fn write_out(text: &str) -> bool {
    terminal_safe::write_output(text)
}
