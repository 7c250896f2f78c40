//! The one event stream behind a shell's job notices: while any job is in the background, the shell
//! holds a single `Subscribe` to its own processes and turns the kernel's events into job states
//! (`Changed` to stopped, running or ended; `Reaped` when another shell collected it). Nothing is
//! polled, and a shell with twenty background jobs holds one connection, not twenty.
//!
//! The follower knows the last state of every process the stream has shown (the snapshot, then
//! each change), so a job that is put in the background after its process already ended is
//! reported at once, and one whose events are still on their way is reported when they arrive.
//! With no job left to follow the stream is closed; a lost connection waits for the next job, since
//! the shell asks the kernel for every job's state before each prompt anyway.

use super::Notifier;
use crate::proto::{Event, ExitStatus, Pid, ProcessInfo, ProcessState, Request, Response};
use crate::proto::{ListRequest, SubscribeRequest};
use crate::shell::client::Client;
use crate::shell::jobs::JobState;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use tokio::sync::mpsc;

/// What the shell tells the follower.
pub enum Command {
    /// A job is now in the background: report its changes.
    Watch(Pid),
    /// The job came to the foreground (the shell reports it itself) or was forgotten.
    Unwatch(Pid),
}

/// The job state a row of the table stands for.
fn job_state(row: &ProcessInfo) -> JobState {
    match row.state {
        ProcessState::Zombie => JobState::Done(row.exit.clone().unwrap_or(ExitStatus::Finished)),
        ProcessState::Stopped => JobState::Stopped,
        _ => JobState::Running,
    }
}

/// The follower's view: the jobs it reports, and the last state of every process it has seen.
#[derive(Default)]
struct Follow {
    watched: HashSet<Pid>,
    known: HashMap<Pid, JobState>,
}

impl Follow {
    /// Records `state` for `pid`; returns it when it is news about a watched job.
    fn saw(&mut self, pid: Pid, state: JobState) -> Option<JobState> {
        let changed = self.known.insert(pid, state.clone()).as_ref() != Some(&state);
        (changed && self.watched.contains(&pid)).then_some(state)
    }

    /// The job news in `event`.
    fn event(&mut self, event: Event) -> Vec<(Pid, JobState)> {
        match event {
            Event::Snapshot(snapshot) => {
                let mut news: Vec<_> = snapshot
                    .processes
                    .iter()
                    .filter_map(|row| Some((row.pid, self.saw(row.pid, job_state(row))?)))
                    .collect();
                if snapshot.complete {
                    // A job the table no longer holds was collected while nobody followed it.
                    let gone: Vec<Pid> = (self.watched.iter())
                        .filter(|pid| !self.known.contains_key(pid))
                        .copied()
                        .collect();
                    news.extend(
                        gone.into_iter()
                            .map(|pid| (pid, JobState::Done(ExitStatus::Finished))),
                    );
                }
                news
            }
            Event::Created(row) | Event::Changed(row) => {
                let state = job_state(&row);
                self.saw(row.pid, state)
                    .map(|s| (row.pid, s))
                    .into_iter()
                    .collect()
            }
            // Collected by someone else (another shell's `wait`): done, its status unknown here.
            Event::Reaped(pid) => {
                let known = self.known.remove(&pid);
                let done = !matches!(known, Some(JobState::Done(_)));
                (done && self.watched.contains(&pid))
                    .then_some((pid, JobState::Done(ExitStatus::Finished)))
                    .into_iter()
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    /// A job to follow: its ending, when the stream already showed it. Only an ending: a stopped
    /// or running state seen earlier may be older than what the shell knows (it has just stopped
    /// the job on Ctrl-Z, or continued it with `bg`), and the events still on their way say the rest.
    fn watch(&mut self, pid: Pid) -> Option<JobState> {
        self.watched.insert(pid);
        self.known
            .get(&pid)
            .filter(|s| matches!(s, JobState::Done(_)))
            .cloned()
    }
}

/// Follows the jobs the shell names through `commands`, until the shell drops its sender or the
/// notifier is gone. Runs on the shell's runtime.
pub async fn run(notifier: Weak<Notifier>, mut commands: mpsc::UnboundedReceiver<Command>) {
    let mut follow = Follow::default();
    loop {
        // Idle until there is a job to follow.
        while follow.watched.is_empty() {
            match commands.recv().await {
                Some(Command::Watch(pid)) => {
                    follow.watch(pid);
                }
                Some(Command::Unwatch(_)) => {}
                None => return,
            }
        }
        let Some(socket) = notifier.upgrade().map(|n| n.socket.clone()) else {
            return;
        };
        let Some(mut client) = subscribe(&socket).await else {
            // The kernel is away: wait for the next job before trying again.
            if !drain_until_watch(&mut commands, &mut follow).await {
                return;
            }
            continue;
        };
        follow.known.clear();
        loop {
            let news = tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Watch(pid)) => follow.watch(pid).map(|s| vec![(pid, s)]).unwrap_or_default(),
                    Some(Command::Unwatch(pid)) => {
                        follow.watched.remove(&pid);
                        Vec::new()
                    }
                    None => return,
                },
                reply = client.recv() => match reply {
                    Ok(Response::Event(Event::Lost { .. })) => relist(&socket, &mut follow).await,
                    Ok(Response::Event(event)) => follow.event(event),
                    Ok(_) | Err(_) => break,
                },
            };
            let Some(n) = notifier.upgrade() else { return };
            for (pid, state) in news {
                if matches!(state, JobState::Done(_)) {
                    follow.watched.remove(&pid);
                }
                Arc::clone(&n).report_change(pid, state);
            }
            if follow.watched.is_empty() {
                break; // nothing left to follow: close the stream
            }
        }
    }
}

async fn subscribe(socket: &std::path::Path) -> Option<Client> {
    let mut client = Client::connect(socket).await.ok()?;
    let request = Request::Subscribe(SubscribeRequest { all_users: false });
    client.send(request).await.ok()?;
    Some(client)
}

/// After lost events: every watched job's state from the table, as `ps` gives it.
async fn relist(socket: &std::path::Path, follow: &mut Follow) -> Vec<(Pid, JobState)> {
    let Ok(mut client) = Client::connect(socket).await else {
        return Vec::new();
    };
    let Ok(Response::Processes(list)) = client
        .call(Request::List(ListRequest { all_users: false }))
        .await
    else {
        return Vec::new();
    };
    let mut news: Vec<(Pid, JobState)> = list
        .processes
        .iter()
        .filter_map(|row| Some((row.pid, follow.saw(row.pid, job_state(row))?)))
        .collect();
    let listed: HashSet<Pid> = list.processes.iter().map(|r| r.pid).collect();
    for pid in follow.watched.clone() {
        if !listed.contains(&pid) {
            news.extend(follow.event(Event::Reaped(pid)));
        }
    }
    news
}

/// Waits for a new job to follow after the kernel could not be reached; false when the shell is gone.
async fn drain_until_watch(
    commands: &mut mpsc::UnboundedReceiver<Command>,
    follow: &mut Follow,
) -> bool {
    loop {
        match commands.recv().await {
            Some(Command::Watch(pid)) => {
                follow.watch(pid);
                return true;
            }
            Some(Command::Unwatch(pid)) => {
                follow.watched.remove(&pid);
            }
            None => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Snapshot;

    fn row(pid: u64, state: ProcessState) -> ProcessInfo {
        ProcessInfo {
            pid: Pid(pid),
            uid: 1000,
            process_type: crate::proto::ProcessType::User,
            priority: 80,
            nice: 0,
            state,
            tokens_used: 0,
            allowance: 10,
            prompt_tokens: 0,
            cpu_ms: 0,
            age_ms: 0,
            prompt: None,
            context_switches: 0,
            slot: None,
            queue_position: None,
            exit: (state == ProcessState::Zombie).then_some(ExitStatus::Finished),
            note: None,
            eta_ms: None,
            context: None,
        }
    }

    #[test]
    fn a_watched_job_is_reported_once_per_change_and_others_not_at_all() {
        let mut f = Follow::default();
        assert_eq!(f.watch(Pid(1)), None);
        let created = f.event(Event::Created(row(1, ProcessState::Running)));
        assert_eq!(created, vec![(Pid(1), JobState::Running)]);
        assert!(
            f.event(Event::Changed(row(1, ProcessState::Running)))
                .is_empty()
        );
        assert!(
            f.event(Event::Changed(row(2, ProcessState::Stopped)))
                .is_empty()
        );
        let stopped = f.event(Event::Changed(row(1, ProcessState::Stopped)));
        assert_eq!(stopped, vec![(Pid(1), JobState::Stopped)]);
        let done = f.event(Event::Changed(row(1, ProcessState::Zombie)));
        assert_eq!(done, vec![(Pid(1), JobState::Done(ExitStatus::Finished))]);
        assert!(
            f.event(Event::Reaped(Pid(1))).is_empty(),
            "reported done once"
        );
    }

    #[test]
    fn a_job_put_in_the_background_after_it_ended_is_reported_from_what_was_seen() {
        let mut f = Follow::default();
        let snapshot = Event::Snapshot(Snapshot {
            processes: vec![row(4, ProcessState::Zombie), row(5, ProcessState::Stopped)],
            complete: true,
            cpus: 1,
            policy: "priority".into(),
            backend: crate::proto::BackendHealth {
                circuit: crate::proto::Circuit::Closed,
                failures: 0,
            },
            context_switches: 0,
        });
        assert!(f.event(snapshot).is_empty(), "not a job yet");
        assert_eq!(f.watch(Pid(4)), Some(JobState::Done(ExitStatus::Finished)));
        assert_eq!(
            f.watch(Pid(5)),
            None,
            "the shell may know better than a stop seen before"
        );
        assert!(
            f.event(Event::Changed(row(7, ProcessState::Zombie)))
                .is_empty()
        );
        f.watch(Pid(9));
        let reaped = f.event(Event::Reaped(Pid(9)));
        assert_eq!(reaped, vec![(Pid(9), JobState::Done(ExitStatus::Finished))]);
    }
}
