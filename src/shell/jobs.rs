//! The shell's job table: processes this shell started, numbered from 1, with bash's current (`%+`,
//! `%%`) and previous (`%-`) jobs and its spec forms (`%N`, `%string`, `%?string`). On a terminal the
//! table is shared with the tasks that watch background jobs ([`SharedJobs`]), and it remembers which
//! state changes the user has not been told about yet.
//!
//! Every byte of a job's output is shown once. The table counts what has been shown ([`Job::shown`]);
//! whoever ends a job's life in this shell (the attach loop, `wait`, and the `Done` notice, whether
//! before the prompt, above the line being edited or in `jobs`) prints the rest first and then
//! reaps the process, so a finished job leaves no zombie behind once it was reported.

use crate::proto::{ExitStatus, Pid, Signal};
use std::sync::{Arc, Mutex};

/// The job table as the shell's main thread and its job watchers share it. A std mutex: it is held
/// only for short, synchronous updates, never across an `.await`.
pub type SharedJobs = Arc<Mutex<JobTable>>;

/// Where a job is, as `jobs` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    Running,
    Stopped,
    Done(ExitStatus),
}

/// A process this shell started and still tracks.
#[derive(Clone, Debug)]
pub struct Job {
    pub id: u32,
    pub pid: Pid,
    pub command: String,
    pub state: JobState,
    /// Bytes of the output already printed (in the foreground or by `wait`), so what prints it
    /// next prints only what is new.
    pub shown: usize,
    /// The job stopped or ended in the background and the user has not been told yet.
    pub unreported: bool,
    /// A pipeline's process group (its first process): signals go to all of it. `None` for a
    /// single process.
    pub pgid: Option<Pid>,
    /// Every process of the job in pipeline order; `pid` is the last, whose status is the job's.
    pub pids: Vec<Pid>,
}

impl Job {
    /// The state word bash prints in `jobs` and notices.
    pub fn state_word(&self) -> String {
        match &self.state {
            JobState::Running => "Running".into(),
            JobState::Stopped => "Stopped".into(),
            JobState::Done(ExitStatus::Finished) => "Done".into(),
            JobState::Done(ExitStatus::Killed { signal }) => match signal {
                Signal::Term => "Terminated".into(),
                Signal::Kill => "Killed".into(),
                Signal::Int => "Interrupt".into(),
                Signal::Hup => "Hangup".into(),
                Signal::Pipe => "Broken pipe".into(),
                other => format!("Exit {}", 128 + other.number()),
            },
            JobState::Done(status) => format!("Exit {}", status.code()),
        }
    }
}

/// A line to tell the user about a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// bash's line: `[1]+  Done                    query ...`.
    pub line: String,
    /// For a job that ended: print its output from here, then reap it.
    pub finished: Option<Finished>,
}

/// A job that ended and has been taken off the table: the output it had not shown yet goes
/// before its notice, and then the shell reaps the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finished {
    pub pid: Pid,
    /// Bytes of its output already shown.
    pub shown: usize,
}

/// The part of an output chunk not shown yet: `seen` bytes of the output came before `chunk`, and
/// the first `shown` bytes of the output are already on the screen. A count that falls inside a
/// character (it cannot, the output only grows) moves on to the next whole one.
pub fn unshown(chunk: &str, seen: usize, shown: usize) -> &str {
    let mut start = shown.saturating_sub(seen).min(chunk.len());
    while !chunk.is_char_boundary(start) {
        start += 1;
    }
    &chunk[start..]
}

/// This shell's jobs.
#[derive(Default)]
pub struct JobTable {
    jobs: Vec<Job>,
    current: Option<u32>,
    previous: Option<u32>,
    /// The earlier processes of pipelines whose ending was reported: the shell collects them
    /// before the next prompt ([`JobTable::take_ended_stages`]).
    ended_stages: Vec<Pid>,
}

impl JobTable {
    /// Adds a job and makes it current; returns its number.
    pub fn add(&mut self, pid: Pid, command: &str, state: JobState) -> u32 {
        let id = self.jobs.iter().map(|j| j.id).max().unwrap_or(0) + 1;
        self.jobs.push(Job {
            id,
            pid,
            command: command.to_string(),
            state,
            shown: 0,
            unreported: false,
            pgid: None,
            pids: vec![pid],
        });
        self.make_current(id);
        id
    }

    /// Adds a pipeline as one job (its last process stands for it); returns its number.
    pub fn add_pipeline(&mut self, pids: &[Pid], command: &str, state: JobState) -> u32 {
        let (Some(first), Some(last)) = (pids.first(), pids.last()) else {
            return 0;
        };
        let id = self.add(*last, command, state);
        if let Some(job) = self.get_mut(id) {
            job.pgid = (pids.len() > 1).then_some(*first);
            job.pids = pids.to_vec();
        }
        id
    }

    /// Makes a job current, the old current previous.
    pub fn make_current(&mut self, id: u32) {
        if self.current != Some(id) {
            self.previous = self.current;
            self.current = Some(id);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Job> {
        self.jobs.iter()
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    pub fn by_pid(&self, pid: Pid) -> Option<&Job> {
        self.jobs.iter().find(|j| j.pid == pid)
    }

    /// The job numbered `id`.
    pub fn get(&self, id: u32) -> Option<&Job> {
        self.jobs.iter().find(|j| j.id == id)
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut Job> {
        self.jobs.iter_mut().find(|j| j.id == id)
    }

    /// Records what the kernel says of `pid` while it is in the background. A change to stopped or
    /// done is remembered until [`JobTable::mark_reported`]; returns whether anything changed.
    pub fn update_state(&mut self, pid: Pid, state: JobState) -> bool {
        let Some(job) = self.jobs.iter_mut().find(|j| j.pid == pid) else {
            return false;
        };
        if job.state == state {
            return false;
        }
        job.unreported = state != JobState::Running;
        job.state = state;
        true
    }

    /// The notices bash would print now (`[1]+  Done  query ...`), with the job each is about.
    pub fn notices(&self) -> Vec<(u32, Notice)> {
        self.jobs
            .iter()
            .filter(|j| j.unreported || matches!(j.state, JobState::Done(_)))
            .map(|j| {
                let line = crate::shell::builtins::jobs::format_job(j, self.marker(j.id), false);
                let finished = matches!(j.state, JobState::Done(_)).then_some(Finished {
                    pid: j.pid,
                    shown: j.shown,
                });
                (j.id, Notice { line, finished })
            })
            .collect()
    }

    /// The user has been told about these jobs: finished ones are forgotten, as bash does.
    pub fn mark_reported(&mut self, ids: &[u32]) {
        for &id in ids {
            let done = match self.get_mut(id) {
                Some(job) => {
                    job.unreported = false;
                    matches!(job.state, JobState::Done(_))
                }
                None => false,
            };
            if done && let Some(job) = self.remove(id) {
                let earlier = job.pids.len().saturating_sub(1);
                self.ended_stages.extend_from_slice(&job.pids[..earlier]);
            }
        }
    }

    /// The earlier processes of reported pipelines, for the shell to collect.
    pub fn take_ended_stages(&mut self) -> Vec<Pid> {
        std::mem::take(&mut self.ended_stages)
    }

    /// The notices to print now; marks them reported. Whoever takes a finished job's notice
    /// prints its output and reaps it (see [`crate::shell::notices::report`]).
    pub fn take_notices(&mut self) -> Vec<Notice> {
        let notices = self.notices();
        let ids: Vec<u32> = notices.iter().map(|(id, _)| *id).collect();
        self.mark_reported(&ids);
        notices.into_iter().map(|(_, notice)| notice).collect()
    }

    /// `+` for the current job, `-` for the previous, blank otherwise.
    pub fn marker(&self, id: u32) -> char {
        if self.current == Some(id) {
            '+'
        } else if self.previous == Some(id) {
            '-'
        } else {
            ' '
        }
    }

    /// Removes a job; fixes up current and previous as bash does.
    pub fn remove(&mut self, id: u32) -> Option<Job> {
        let index = self.jobs.iter().position(|j| j.id == id)?;
        let job = self.jobs.remove(index);
        if self.previous == Some(id) {
            self.previous = None;
        }
        if self.current == Some(id) {
            self.current = self.previous.take();
        }
        let mut rest = self
            .jobs
            .iter()
            .rev()
            .map(|j| j.id)
            .filter(|j| Some(*j) != self.current);
        if self.current.is_none() {
            self.current = rest.next();
        }
        if self.previous.is_none() {
            self.previous = self
                .jobs
                .iter()
                .rev()
                .map(|j| j.id)
                .find(|j| Some(*j) != self.current);
        }
        Some(job)
    }

    /// Resolves a job spec (`%1`, `%%`, `%+`, `%-`, `%query`, `%?word`). The error is bash's wording
    /// without the command name.
    pub fn resolve(&self, spec: &str) -> Result<&Job, String> {
        let Some(body) = spec.strip_prefix('%') else {
            return Err(format!("{spec}: no such job"));
        };
        let found = match body {
            "" | "%" | "+" => self
                .current
                .and_then(|id| self.jobs.iter().find(|j| j.id == id)),
            "-" => self
                .previous
                .and_then(|id| self.jobs.iter().find(|j| j.id == id)),
            n if n.bytes().all(|b| b.is_ascii_digit()) => n
                .parse::<u32>()
                .ok()
                .and_then(|id| self.jobs.iter().find(|j| j.id == id)),
            s => {
                let matches: Vec<&Job> = match s.strip_prefix('?') {
                    Some(inner) => self
                        .jobs
                        .iter()
                        .filter(|j| j.command.contains(inner))
                        .collect(),
                    None => self
                        .jobs
                        .iter()
                        .filter(|j| j.command.starts_with(s))
                        .collect(),
                };
                if matches.len() > 1 {
                    return Err(format!("{spec}: ambiguous job spec"));
                }
                matches.into_iter().next()
            }
        };
        found.ok_or_else(|| format!("{spec}: no such job"))
    }

    /// A job spec's job, or without a spec the current job (`fg`, `bg`), in bash's words.
    pub fn resolve_or_current(&self, spec: Option<&str>) -> Result<&Job, String> {
        match spec {
            Some(spec) => self.resolve(spec),
            None => self.current().ok_or_else(|| "no current job".to_string()),
        }
    }

    /// The current job, if any.
    pub fn current(&self) -> Option<&Job> {
        self.current
            .and_then(|id| self.jobs.iter().find(|j| j.id == id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> JobTable {
        let mut t = JobTable::default();
        t.add(Pid(10), "query one", JobState::Running);
        t.add(Pid(11), "query two", JobState::Running);
        t.add(Pid(12), "ps", JobState::Stopped);
        t
    }

    #[test]
    fn job_specs_resolve_like_bash() {
        let t = table();
        for (spec, want) in [
            ("%1", Ok(Pid(10))),
            ("%%", Ok(Pid(12))),
            ("%+", Ok(Pid(12))),
            ("%", Ok(Pid(12))),
            ("%-", Ok(Pid(11))),
            ("%ps", Ok(Pid(12))),
            ("%?two", Ok(Pid(11))),
            ("%9", Err("%9: no such job".to_string())),
            ("%query", Err("%query: ambiguous job spec".to_string())),
        ] {
            assert_eq!(t.resolve(spec).map(|j| j.pid), want, "{spec}");
        }
    }

    #[test]
    fn background_changes_are_reported_once_and_done_jobs_forgotten() {
        let mut t = table();
        assert!(t.take_notices().is_empty());
        assert!(t.update_state(Pid(10), JobState::Stopped));
        assert!(!t.update_state(Pid(10), JobState::Stopped));
        assert!(t.update_state(Pid(11), JobState::Done(ExitStatus::Finished)));
        assert!(!t.update_state(Pid(99), JobState::Stopped));
        t.get_mut(2).unwrap().shown = 5;
        let notices = t.take_notices();
        assert_eq!(notices.len(), 2, "{notices:?}");
        assert!(notices[0].line.starts_with("[1]   Stopped"), "{notices:?}");
        assert_eq!(notices[0].finished, None);
        assert!(notices[1].line.starts_with("[2]-  Done"), "{notices:?}");
        assert_eq!(
            notices[1].finished,
            Some(Finished {
                pid: Pid(11),
                shown: 5
            }),
            "a finished job's output is shown from where it was left"
        );
        assert!(t.take_notices().is_empty());
        assert_eq!(t.len(), 2);
        assert!(t.update_state(Pid(10), JobState::Running));
        assert!(t.take_notices().is_empty(), "a continued job is not news");
    }

    #[test]
    fn state_words_follow_bash() {
        let mut t = table();
        for (status, want) in [
            (ExitStatus::Finished, "Done"),
            (ExitStatus::Failed { reason: "x".into() }, "Exit 1"),
            (
                ExitStatus::Killed {
                    signal: Signal::Term,
                },
                "Terminated",
            ),
            (
                ExitStatus::Killed {
                    signal: Signal::Kill,
                },
                "Killed",
            ),
            (
                ExitStatus::Killed {
                    signal: Signal::Int,
                },
                "Interrupt",
            ),
            (
                ExitStatus::Killed {
                    signal: Signal::Pipe,
                },
                "Broken pipe",
            ),
        ] {
            let job = t.get_mut(1).unwrap();
            job.state = JobState::Done(status);
            assert_eq!(job.state_word(), want);
        }
    }

    #[test]
    fn only_the_output_not_shown_yet_is_printed() {
        for (chunk, seen, shown, want) in [
            ("abcdef", 0, 0, "abcdef"),
            ("abcdef", 0, 4, "ef"),
            ("def", 3, 4, "ef"),
            ("def", 3, 2, "def"),
            ("abc", 0, 9, ""),
            ("aé", 0, 2, ""),
            ("éa", 0, 1, "a"),
        ] {
            assert_eq!(unshown(chunk, seen, shown), want, "{chunk} {seen} {shown}");
        }
    }

    #[test]
    fn removing_the_current_job_promotes_the_previous() {
        let mut t = table();
        t.remove(3);
        assert_eq!(t.marker(2), '+');
        assert_eq!(t.marker(1), '-');
        t.remove(2);
        assert_eq!(t.marker(1), '+');
        assert!(t.resolve("%-").is_err());
    }
}
