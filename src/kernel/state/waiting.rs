//! Why followed processes wait, for the foreground shell's status line: a backend failure the process
//! waits out (its own, or the one that holds the whole queue), or its place in a queue it has waited
//! in for a while. The kernel's waiting clock ([`crate::kernel::waiting`]) asks once a second and
//! pushes what changed as [`Response::Waiting`].

use super::KernelState;
use crate::kernel::process::{Process, seconds};
use crate::proto::{Pid, ProcessState, Response, WaitingNote};
use std::collections::HashMap;

/// How long a process waits in the queue before its place is worth a status line: a foreground
/// query that gets a slot within a second needs none.
pub const LONG_WAIT_MS: u64 = 1000;

/// One process's waiting note, and its stem: what must change for the note to be news (the reason
/// and attempt, or the queue position; not the countdown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub stem: String,
}

impl KernelState {
    /// The note of every waiting process that someone follows.
    pub fn waiting_notes(&self) -> Vec<(Pid, Note)> {
        let now = self.now_ms();
        let followed: Vec<&Process> = self
            .table
            .values()
            .filter(|p| p.state == ProcessState::Waiting && !p.followers.is_empty())
            .collect();
        if followed.is_empty() {
            return Vec::new();
        }
        let mut positions: Option<HashMap<Pid, u32>> = None;
        let mut notes = Vec::new();
        for p in followed {
            let note = if let Some(retry) = &p.retry {
                Note {
                    text: retry.note(now),
                    stem: format!("{} #{}", retry.reason, retry.failures),
                }
            } else if let Some(text) = self.circuit.waiting_note(&self.config.backend_url, now) {
                let stem = format!("circuit #{}", self.circuit.failures());
                Note { text, stem }
            } else if now.saturating_sub(p.enqueued_ms) >= LONG_WAIT_MS {
                let positions = positions.get_or_insert_with(|| {
                    let order = self.scheduler.queue_order().enumerate();
                    order.map(|(i, pid)| (pid, i as u32 + 1)).collect()
                });
                let Some(&position) = positions.get(&p.pid) else {
                    continue;
                };
                let text = match self.rates.eta_ms(position, self.config.cpus) {
                    Some(eta) => format!(
                        "queued at position {position}, about {} to a slot",
                        seconds(eta)
                    ),
                    None => format!("queued at position {position}"),
                };
                Note {
                    text,
                    stem: format!("queued #{position}"),
                }
            } else {
                continue;
            };
            notes.push((p.pid, note));
        }
        notes
    }

    /// Pushes a waiting note to `pid`'s followers. A follower whose buffer is full misses it (the
    /// next one comes within a second) rather than being dropped as for output.
    pub fn tell_waiting(&self, pid: Pid, note: &Note, news: bool) {
        let Some(p) = self.table.get(&pid) else {
            return;
        };
        let reply = Ok(Response::Waiting(WaitingNote {
            pid,
            note: note.text.clone(),
            news,
        }));
        for follower in &p.followers {
            let _ = follower.try_send(reply.clone());
        }
    }
}

/// What the waiting clock last told each process's followers.
#[derive(Debug, Default)]
pub struct Shown {
    notes: HashMap<Pid, Note>,
}

impl Shown {
    /// Takes the notes of now; returns those to push (changed since last time) with whether each is
    /// news. A process that stopped waiting is forgotten, so its next wait is news again.
    pub fn update(&mut self, now: Vec<(Pid, Note)>) -> Vec<(Pid, Note, bool)> {
        let mut changed = Vec::new();
        let mut next = HashMap::with_capacity(now.len());
        for (pid, note) in now {
            match self.notes.get(&pid) {
                Some(old) if old.text == note.text => {}
                old => {
                    let news = old.is_none_or(|o| o.stem != note.stem);
                    changed.push((pid, note.clone(), news));
                }
            }
            next.insert(pid, note);
        }
        self.notes = next;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(text: &str, stem: &str) -> Note {
        Note {
            text: text.into(),
            stem: stem.into(),
        }
    }

    #[test]
    fn only_changed_notes_are_pushed_and_only_new_stems_are_news() {
        let mut shown = Shown::default();
        let a = Pid(1);
        let first = shown.update(vec![(a, note("down; retrying in 4s", "down #1"))]);
        assert_eq!(first, [(a, note("down; retrying in 4s", "down #1"), true)]);
        assert!(
            shown
                .update(vec![(a, note("down; retrying in 4s", "down #1"))])
                .is_empty()
        );
        let countdown = shown.update(vec![(a, note("down; retrying in 3s", "down #1"))]);
        assert_eq!(
            countdown,
            [(a, note("down; retrying in 3s", "down #1"), false)]
        );
        let next = shown.update(vec![(a, note("down; retrying in 8s", "down #2"))]);
        assert!(next[0].2, "another attempt is news");
        assert!(shown.update(vec![]).is_empty());
        let again = shown.update(vec![(a, note("down; retrying in 8s", "down #2"))]);
        assert!(again[0].2, "a new wait is news again");
    }
}
