//! Pipes and process groups. A process has a parent (the process whose output feeds it, or that
//! `query --continue` followed up) and a group (the pipeline it belongs to; a lone process leads
//! its own). A pipe's reader is created blocked (STAT `S`): it holds no slot and no place in the run
//! queue. When its upstream ends the reader is settled at once: a finished upstream's whole output
//! becomes the reader's input ([`frame_input`]: its prompt, a blank line, the input) and the reader
//! joins the run queue; an upstream that failed or was killed makes the reader fail (exit 1) with the
//! reason. A reader that ends before reading leaves its upstream writing for nobody: when no other
//! reader is left, the upstream is ended by SIGPIPE (exit 141), as a Unix writer is.
//!
//! Every change is journaled ([`Record::Linked`], and the input as the reader's conversation in
//! [`Record::Asked`]), so a pipeline survives a crash: on restore, readers whose upstream ended
//! while the kernel was down are settled as they would have been.

use super::KernelState;
use crate::kernel::journal::record::{LinkRecord, Record};
use crate::kernel::journal::writer::Ack;
use crate::kernel::process::{Ask, Spec};
use crate::proto::{
    ExitStatus, Failure, FailureKind, Pid, ProcessLink, ProcessState, Role, Signal, Signalled,
    frame_input,
};

/// A process's place among others.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Link {
    pub(super) ppid: Option<Pid>,
    /// `None` until set: the process leads a group of its own (its pgid is its pid).
    pub(super) pgid: Option<Pid>,
    /// `ppid` feeds it through a pipe.
    pub(super) piped: bool,
    /// It still waits for its input.
    pub(super) blocked: bool,
    /// Processes blocked on its output (not journaled: rebuilt from theirs).
    pub(super) readers: Vec<Pid>,
    /// Being ended with its whole group by one signal: its ending settles no reader and breaks no
    /// pipe, since the other members get the signal themselves.
    pub(super) group_ending: bool,
}

impl Link {
    /// The note `ps -l` shows of a blocked process.
    pub fn waiting_note(&self) -> Option<String> {
        let up = self.ppid.filter(|_| self.blocked)?;
        Some(format!("waiting for the output of {up}"))
    }

    fn record(&self, pid: Pid) -> LinkRecord {
        LinkRecord {
            pid,
            ppid: self.ppid,
            pgid: self.pgid.unwrap_or(pid),
            piped: self.piped,
            blocked: self.blocked,
        }
    }

    /// Whether there is anything to journal (a lone process that reads nothing has no link).
    fn worth_recording(&self, pid: Pid) -> bool {
        self.ppid.is_some() || self.pgid.is_some_and(|g| g != pid)
    }

    pub(super) fn from_record(record: &LinkRecord) -> Link {
        Link {
            ppid: record.ppid,
            pgid: Some(record.pgid).filter(|g| *g != record.pid),
            piped: record.piped,
            blocked: record.blocked,
            ..Link::default()
        }
    }
}

/// How a new process is linked to others.
#[derive(Clone, Copy, Debug, Default)]
pub struct NewLink {
    /// Read this process's output (a pipe).
    pub input_from: Option<Pid>,
    /// Its parent when it reads nothing: the process it followed up.
    pub continued_from: Option<Pid>,
    /// Join this group (checked to exist and be the asker's).
    pub pgid: Option<Pid>,
}

impl KernelState {
    /// Checks that `uid` may link a new process as `link` asks: the upstream is its own and not
    /// reaped, the group has a process of its own.
    pub fn check_link(&self, uid: u32, link: &NewLink) -> Result<(), Failure> {
        if let Some(up) = link.input_from {
            self.owned(up, uid)?;
        }
        if let Some(pgid) = link.pgid {
            let member = self
                .table
                .values()
                .any(|p| p.pgid() == pgid && (uid == 0 || p.spec.uid == uid));
            if !member {
                return Err(Failure::new(
                    FailureKind::NoSuchProcess,
                    format!("({pgid}) - No such process group"),
                ));
            }
        }
        Ok(())
    }

    /// Creates a process linked as `link` says (checked by [`KernelState::check_link`]): a pipe's
    /// reader is created blocked, and settled at once if its upstream has already ended.
    pub fn create_linked(&mut self, spec: Spec, ask: Ask, nice: i8, link: NewLink) -> (Pid, Ack) {
        let (pid, created) = self.create_asked(spec, ask, nice);
        let Some(p) = self.table.get_mut(&pid) else {
            return (pid, created);
        };
        p.link.ppid = link.input_from.or(link.continued_from);
        p.link.pgid = link.pgid;
        p.link.piped = link.input_from.is_some();
        p.link.blocked = link.input_from.is_some();
        if !p.link.worth_recording(pid) {
            return (pid, created);
        }
        if p.link.blocked {
            p.state = ProcessState::Blocked;
            self.scheduler.retire(pid);
        }
        let ack = self.record_link(pid);
        if let Some(up) = link.input_from {
            match self.table.get_mut(&up) {
                Some(u) if u.exit.is_none() => u.link.readers.push(pid),
                _ => self.settle_reader(pid, up),
            }
        }
        (pid, ack)
    }

    /// Journals where `pid` sits among others.
    fn record_link(&mut self, pid: Pid) -> Ack {
        let Some(p) = self.table.get(&pid) else {
            return Ack::done();
        };
        let record = p.link.record(pid);
        self.record_acked(Record::Linked(record))
    }

    /// `pid` has ended: its readers are settled and, if it ended before reading its own input,
    /// its upstream may have nobody left to write for. Called by every ending.
    pub(super) fn pipe_ended(&mut self, pid: Pid) {
        let Some(p) = self.table.get_mut(&pid) else {
            return;
        };
        if p.link.group_ending {
            p.link.readers.clear();
            return;
        }
        let readers = std::mem::take(&mut p.link.readers);
        let upstream = p.link.ppid.filter(|_| p.link.blocked);
        for reader in readers {
            self.settle_reader(reader, pid);
        }
        if let Some(up) = upstream {
            self.break_pipe(up, pid);
        }
    }

    /// Gives `reader` the output of `up`, which has ended, or fails it if `up` did not finish.
    fn settle_reader(&mut self, reader: Pid, up: Pid) {
        let live_reader = self
            .table
            .get(&reader)
            .is_some_and(|r| r.link.blocked && r.exit.is_none() && !r.link.group_ending);
        if !live_reader {
            return;
        }
        let reason = match self.table.get(&up).map(|u| u.exit.clone()) {
            Some(None) => return,
            Some(Some(ExitStatus::Finished)) => match self.feed(reader, up) {
                Ok(()) => return,
                Err(reason) => reason,
            },
            Some(Some(ExitStatus::Failed { reason })) => {
                format!("its input, process {up}, failed: {reason}")
            }
            Some(Some(ExitStatus::Killed { signal })) => {
                format!("its input, process {up}, was killed by SIG{signal}")
            }
            None => format!("its input, process {up}, is gone"),
        };
        self.finish(reader, ExitStatus::Failed { reason }, None);
    }

    /// Makes `up`'s output the input of `reader` and lets it run (unless it is stopped: CONT does).
    fn feed(&mut self, reader: Pid, up: Pid) -> Result<(), String> {
        let input = self
            .table
            .get(&up)
            .map(|u| u.output.clone())
            .unwrap_or_default();
        let limit = self.config.max_prompt_bytes;
        let Some(p) = self.table.get_mut(&reader) else {
            return Ok(());
        };
        let mut messages = p.asked_messages();
        let framed = match messages.iter_mut().rev().find(|m| m.role == Role::User) {
            Some(last) => {
                last.content = frame_input(&last.content, &input);
                true
            }
            None => false,
        };
        if !framed {
            messages.push(crate::proto::ChatMessage {
                role: Role::User,
                content: input,
            });
        }
        let bytes: usize = messages.iter().map(|m| m.content.len()).sum();
        if bytes > limit {
            return Err(format!(
                "its prompt with the output of process {up} is {bytes} bytes, over the kernel's \
                 limit of {limit}"
            ));
        }
        p.ask.messages = messages;
        p.link.blocked = false;
        let ask = p.ask.clone();
        let blocked = p.state == ProcessState::Blocked;
        self.record(Record::Asked { pid: reader, ask });
        let _ = self.record_link(reader);
        if blocked {
            self.enqueue(reader);
            let _ = self.record_state(reader);
        }
        Ok(())
    }

    /// `reader` of `up` ended without reading: `up` gets SIGPIPE once nobody else reads it.
    fn break_pipe(&mut self, up: Pid, reader: Pid) {
        let Some(u) = self.table.get_mut(&up) else {
            return;
        };
        u.link.readers.retain(|r| *r != reader);
        if u.exit.is_some() || u.link.group_ending || !u.link.readers.is_empty() {
            return;
        }
        let note = format!("its reader, process {reader}, ended before reading its output");
        let status = ExitStatus::Killed {
            signal: Signal::Pipe,
        };
        self.finish(up, status, Some(note));
    }

    /// Delivers `signal` to every live process of group `pgid` that `uid` may signal. Members ended
    /// by it settle no reader and break no pipe among themselves: each gets the signal itself.
    pub fn signal_group(
        &mut self,
        uid: u32,
        pgid: Pid,
        signal: Signal,
    ) -> Result<(Vec<Signalled>, Vec<Ack>), Failure> {
        let members: Vec<Pid> = self
            .table
            .values()
            .filter(|p| p.pgid() == pgid && p.exit.is_none())
            .filter(|p| uid == 0 || p.spec.uid == uid)
            .map(|p| p.pid)
            .collect();
        if members.is_empty() {
            return Err(Failure::new(
                FailureKind::NoSuchProcess,
                format!("({pgid}) - No such process group"),
            ));
        }
        let ending = matches!(
            signal,
            Signal::Kill | Signal::Int | Signal::Pipe | Signal::Term | Signal::Hup
        );
        for pid in &members {
            if let Some(p) = self.table.get_mut(pid) {
                p.link.group_ending = ending;
            }
        }
        let mut signalled = Vec::with_capacity(members.len());
        let mut acks = Vec::with_capacity(members.len());
        for pid in members {
            let (state, ack) = self.signal(uid, pid, signal)?;
            acks.push(ack);
            signalled.push(Signalled { pid, state });
        }
        // A running member told to end at its boundary still settles outsiders when it does.
        for s in &signalled {
            if let Some(p) = self.table.get_mut(&s.pid) {
                p.link.group_ending = false;
            }
        }
        Ok((signalled, acks))
    }

    /// Processes blocked on a pipe's input.
    pub fn blocked(&self) -> usize {
        self.table
            .values()
            .filter(|p| p.state == ProcessState::Blocked)
            .count()
    }

    /// The links of `pids` that `uid` may read.
    pub fn links(&self, pids: &[Pid], uid: u32) -> Vec<ProcessLink> {
        pids.iter()
            .filter_map(|pid| {
                let p = self.owned(*pid, uid).ok()?;
                Some(ProcessLink {
                    pid: *pid,
                    ppid: p.link.ppid,
                    pgid: p.pgid(),
                    blocked_on: p.link.ppid.filter(|_| p.link.blocked),
                })
            })
            .collect()
    }

    /// After a restore: rebuilds who reads whom, and settles readers whose upstream ended while
    /// the kernel was down (or was reaped meanwhile).
    pub(super) fn restore_pipes(&mut self) {
        let blocked: Vec<(Pid, Pid)> = self
            .table
            .values()
            .filter(|p| p.link.blocked && p.exit.is_none())
            .filter_map(|p| Some((p.pid, p.link.ppid?)))
            .collect();
        for (reader, up) in blocked {
            match self.table.get_mut(&up) {
                Some(u) if u.exit.is_none() => u.link.readers.push(reader),
                _ => self.settle_reader(reader, up),
            }
        }
    }

    /// The link to journal with a process's image (compaction).
    pub(super) fn link_record(&self, pid: Pid) -> Option<LinkRecord> {
        let p = self.table.get(&pid)?;
        p.link.worth_recording(pid).then(|| p.link.record(pid))
    }
}

impl crate::kernel::process::Process {
    /// Its process group.
    pub fn pgid(&self) -> Pid {
        self.link.pgid.unwrap_or(self.pid)
    }
}

#[cfg(test)]
#[path = "pipes_tests.rs"]
mod tests;
