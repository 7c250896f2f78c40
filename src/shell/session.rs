//! A shell session: the socket it talks to, its job table and last status, and the loop step that
//! runs one line. The same session serves `-c`, scripts, piped stdin and the interactive editor.

use super::builtins;
use super::client::{Client, ClientError};
use super::jobs::{JobState, JobTable};
use super::parser;
use crate::proto::{ListRequest, ProcessState, Request, Response};
use std::path::PathBuf;

pub struct Shell {
    pub socket: PathBuf,
    pub jobs: JobTable,
    pub last_status: i32,
    /// On a terminal, with job control (Ctrl-Z, notices).
    pub interactive: bool,
    /// Set by `exit`: the status to leave with.
    pub exit_requested: Option<i32>,
    /// `exit` with stopped jobs warns once, as bash does.
    pub warned_stopped_jobs: bool,
}

impl Shell {
    pub fn new(socket: PathBuf, interactive: bool) -> Shell {
        Shell {
            socket,
            jobs: JobTable::default(),
            last_status: 0,
            interactive,
            exit_requested: None,
            warned_stopped_jobs: false,
        }
    }

    /// A new connection to the kernel.
    pub async fn client(&self) -> Result<Client, ClientError> {
        Client::connect(&self.socket).await
    }

    /// Runs one line; returns its status (that of its last command).
    pub async fn execute(&mut self, line: &str) -> i32 {
        let commands = match parser::parse(line) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("llmsh: {e}");
                self.last_status = 2;
                return 2;
            }
        };
        for command in commands {
            if command.words.is_empty() {
                continue;
            }
            self.last_status = builtins::dispatch(self, &command).await;
            if self.exit_requested.is_some() {
                break;
            }
        }
        self.last_status
    }

    /// Asks the kernel how this shell's jobs are doing and updates their states.
    pub async fn refresh_jobs(&mut self) {
        if self.jobs.is_empty() {
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
        let ids: Vec<_> = self.jobs.iter().map(|j| (j.id, j.pid)).collect();
        for (id, pid) in ids {
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
            if let Some(job) = self.jobs.get_mut(id) {
                job.state = state;
            }
        }
    }

    /// Reports finished jobs (`[1]+  Done  query ...`) and forgets them, as bash does before a prompt.
    pub fn take_done_notices(&mut self) -> Vec<String> {
        let done: Vec<_> = self
            .jobs
            .iter()
            .filter(|j| matches!(j.state, JobState::Done(_)))
            .map(|j| j.id)
            .collect();
        let mut notices = Vec::new();
        for id in done {
            let marker = self.jobs.marker(id);
            if let Some(job) = self.jobs.remove(id) {
                notices.push(super::builtins::jobs::format_job(&job, marker, false));
            }
        }
        notices
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

    /// Prints `llmsh: CMD: MESSAGE` on stderr.
    pub fn complain(&self, command: &str, message: impl std::fmt::Display) {
        eprintln!("llmsh: {command}: {message}");
    }
}
