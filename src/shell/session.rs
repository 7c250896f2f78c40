//! A shell session: the socket it talks to, its job table and last status, and the loop step that
//! runs one line. The same session serves `-c`, scripts, piped stdin and the interactive editor.

use super::client::{Client, ClientError};
use super::jobs::{JobState, JobTable, SharedJobs};
use super::notices::Notifier;
use super::signals::TerminalKeys;
use crate::proto::{ListRequest, Pid, ProcessState, Request, Response};
use std::path::PathBuf;
use std::sync::{Arc, MutexGuard, PoisonError};

/// One shell session.
pub struct Shell {
    pub socket: PathBuf,
    /// This shell's jobs; see [`Shell::jobs`].
    jobs: SharedJobs,
    /// Watches background jobs and tells the user when they stop or end (interactive only).
    notifier: Option<Arc<Notifier>>,
    pub last_status: i32,
    /// On a terminal, with job control (Ctrl-Z, notices).
    pub interactive: bool,
    /// Set by `exit`: the status to leave with.
    pub exit_requested: Option<i32>,
    /// `exit` with stopped jobs warns once, as bash does.
    pub warned_stopped_jobs: bool,
    /// Ctrl-C and Ctrl-Z presses, counted by the interactive shell.
    pub keys: Option<TerminalKeys>,
    /// How pipelines run: `set -o pipefail`, and the shell's standard input feeding the first query.
    pub pipes: super::pipeline::PipeOptions,
}

impl Shell {
    /// A session on `socket`; `interactive` on a terminal.
    pub fn new(socket: PathBuf, interactive: bool) -> Shell {
        Shell {
            socket,
            jobs: SharedJobs::default(),
            notifier: None,
            last_status: 0,
            interactive,
            exit_requested: None,
            warned_stopped_jobs: false,
            keys: None,
            pipes: Default::default(),
        }
    }

    /// The job table, locked. Do not hold it across an `.await` or call this twice in one statement.
    pub fn jobs(&self) -> MutexGuard<'_, JobTable> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The job table itself, to share with the prompt and the completer.
    pub fn shared_jobs(&self) -> SharedJobs {
        Arc::clone(&self.jobs)
    }

    /// Turns on job notices; `live` prints above the line being edited.
    pub fn enable_notices(&mut self, live: std::sync::mpsc::SyncSender<String>) -> Arc<Notifier> {
        let notifier = Arc::new(Notifier::new(self.shared_jobs(), self.socket.clone(), live));
        self.notifier = Some(Arc::clone(&notifier));
        notifier
    }

    /// A job went to the background (`&`, or stopped): watch it, to tell the user when it changes.
    pub fn watch_job(&self, pid: Pid) {
        if let Some(notifier) = &self.notifier {
            notifier.watch(pid);
        }
    }

    /// A job comes to the foreground, where its changes are reported as they happen.
    pub fn unwatch_job(&self, pid: Pid) {
        if let Some(notifier) = &self.notifier {
            notifier.unwatch(pid);
        }
    }

    /// A new connection to the kernel.
    pub async fn client(&self) -> Result<Client, ClientError> {
        Client::connect(&self.socket).await
    }

    /// Runs one line; returns its status (that of its last command).
    pub async fn execute(&mut self, line: &str) -> i32 {
        super::pipeline::run_line(self, line).await
    }

    /// Asks the kernel how this shell's jobs are doing and updates their states.
    pub async fn refresh_jobs(&mut self) {
        // A reported pipeline's earlier queries are collected with it (its last one was reaped
        // with its notice).
        let stages = self.jobs().take_ended_stages();
        for pid in stages {
            let _ = self
                .call(Request::Wait(crate::proto::WaitRequest { pid }))
                .await;
        }
        if self.jobs().is_empty() {
            return;
        }
        let Ok(mut client) = self.client().await else {
            return;
        };
        let Ok(Response::Processes(list)) = client
            .call(Request::List(ListRequest { all_users: false }))
            .await
        else {
            return;
        };
        let mut jobs = self.jobs();
        let pids: Vec<Pid> = jobs.iter().map(|j| j.pid).collect();
        for pid in pids {
            let row = list.processes.iter().find(|p| p.pid == pid);
            let state = match row {
                Some(p) if p.state == ProcessState::Zombie => {
                    JobState::Done(p.exit.clone().unwrap_or(crate::proto::ExitStatus::Finished))
                }
                Some(p) if p.state == ProcessState::Stopped => JobState::Stopped,
                Some(_) => JobState::Running,
                // Reaped elsewhere (another shell's `wait`): it is done, status unknown to us.
                None => JobState::Done(crate::proto::ExitStatus::Finished),
            };
            jobs.update_state(pid, state);
        }
    }

    /// Connects and sends one request.
    pub async fn call(&self, request: Request) -> Result<Response, ClientError> {
        self.client().await?.call(request).await
    }

    /// Complains about a reply of the wrong kind; returns status 1.
    pub fn unexpected(&self, command: &str, response: &Response) -> i32 {
        self.complain(command, ClientError::unexpected(response));
        1
    }

    /// Prints `llmsh: CMD: MESSAGE` on stderr. The message may carry a backend's or a model's text
    /// (a failure reason), so its control characters are made visible.
    pub fn complain(&self, command: &str, message: impl std::fmt::Display) {
        let message = message.to_string();
        eprintln!(
            "llmsh: {command}: {}",
            super::terminal_safe::escape(&message)
        );
    }
}
