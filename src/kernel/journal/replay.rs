//! Replay: the process table rebuilt from the journal's records, in file order. Later records win;
//! output is spliced only at the offset it was written for, so a lost checkpoint cannot splice text
//! wrongly; records of unknown processes are ignored.

use super::record::{
    DurableState, FORMAT_VERSION, MAGIC, OLDEST_FORMAT_VERSION, ProcessImage, Record,
};
use super::{JournalError, Recovered};
use std::path::Path;

/// Rebuilds the process table from records.
pub fn replay(path: &Path, records: &[Record]) -> Result<Recovered, JournalError> {
    let mut out = Recovered {
        next_pid: 1,
        ..Default::default()
    };
    let Some(first) = records.first() else {
        return Ok(out);
    };
    match first {
        Record::Header {
            magic,
            format_version,
        } if magic == MAGIC => {
            if *format_version > FORMAT_VERSION {
                return Err(JournalError::TooNew {
                    path: path.into(),
                    found: *format_version,
                    supported: FORMAT_VERSION,
                });
            }
            if *format_version < OLDEST_FORMAT_VERSION {
                return Err(JournalError::Unreadable {
                    path: path.into(),
                    found: *format_version,
                    supported: FORMAT_VERSION,
                });
            }
        }
        _ => return Err(JournalError::NotAJournal { path: path.into() }),
    }
    let procs = &mut out.processes;
    for record in &records[1..] {
        match record {
            Record::Header { .. } => {}
            Record::Created(c) => {
                out.next_pid = out.next_pid.max(c.pid.0 + 1);
                procs.insert(c.pid, ProcessImage::new(c.clone()));
            }
            Record::Image(image) => {
                out.next_pid = out.next_pid.max(image.pid().0 + 1);
                procs.insert(image.pid(), image.clone());
            }
            Record::NextPid(n) => out.next_pid = out.next_pid.max(*n),
            Record::State {
                pid,
                state,
                enqueued_unix_ms,
                context_switches,
                cpu_ms,
            } => {
                if let Some(p) = procs.get_mut(pid) {
                    p.state = *state;
                    p.created.enqueued_unix_ms = *enqueued_unix_ms;
                    p.context_switches = *context_switches;
                    p.cpu_ms = *cpu_ms;
                }
            }
            Record::Output(o) => {
                if let Some(p) = procs
                    .get_mut(&o.pid)
                    .filter(|p| p.output.len() as u64 == o.offset)
                {
                    p.output.push_str(&o.text);
                    p.tokens_used = o.tokens_used;
                    p.prompt_tokens = o.prompt_tokens;
                }
            }
            Record::Finished {
                pid,
                status,
                note,
                exited_unix_ms,
            } => {
                if let Some(p) = procs.get_mut(pid) {
                    p.state = DurableState::Zombie;
                    p.exit = Some(status.clone());
                    p.note = note.clone();
                    p.exited_unix_ms = Some(*exited_unix_ms);
                }
            }
            Record::Reaped { pid } => {
                procs.remove(pid);
            }
            Record::Reniced { pid, nice } => {
                if let Some(p) = procs.get_mut(pid) {
                    p.created.nice = *nice;
                }
            }
            Record::Asked { pid, ask } => {
                if let Some(p) = procs.get_mut(pid) {
                    *p.ask = ask.clone();
                }
            }
            Record::Linked(link) => {
                if let Some(p) = procs.get_mut(&link.pid) {
                    p.link = Some(Box::new(link.clone()));
                }
            }
            Record::Deadline { pid, deadline } => {
                if let Some(p) = procs.get_mut(pid) {
                    p.deadline = Some(Box::new(*deadline));
                }
            }
            Record::QuotaUsed {
                subject,
                window_start_ms,
                tokens,
            } => {
                out.quota_used.insert(*subject, (*window_start_ms, *tokens));
            }
        }
    }
    Ok(out)
}
