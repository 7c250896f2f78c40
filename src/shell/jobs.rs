//! The shell's job table: processes this shell started, numbered from 1, with bash's current (`%+`,
//! `%%`) and previous (`%-`) jobs and its spec forms (`%N`, `%string`, `%?string`).

use crate::proto::{ExitStatus, Pid};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    Running,
    Stopped,
    Done(ExitStatus),
}

#[derive(Clone, Debug)]
pub struct Job {
    pub id: u32,
    pub pid: Pid,
    pub command: String,
    pub state: JobState,
}

impl Job {
    /// The state word bash prints in `jobs` and notices.
    pub fn state_word(&self) -> String {
        match &self.state {
            JobState::Running => "Running".into(),
            JobState::Stopped => "Stopped".into(),
            JobState::Done(ExitStatus::Finished) => "Done".into(),
            JobState::Done(status) => format!("Exit {}", status.code()),
        }
    }
}

#[derive(Default)]
pub struct JobTable {
    jobs: Vec<Job>,
    current: Option<u32>,
    previous: Option<u32>,
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
        });
        self.make_current(id);
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

    pub fn get_mut(&mut self, id: u32) -> Option<&mut Job> {
        self.jobs.iter_mut().find(|j| j.id == id)
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
