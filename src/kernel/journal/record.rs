//! What the journal records: one [`Record`] per durable event in a process's life, and the
//! [`ProcessImage`] that replaying them rebuilds. Variants are append-only, like the wire's; a change
//! an older kernel would misread bumps [`FORMAT_VERSION`]. Version 2 added [`Record::Asked`] (a
//! request's conversation, model and parameters) after version 1's records, which it reads as they
//! are: a version-2 kernel replays a version-1 journal, a version-1 kernel refuses a version-2 one
//! as too new rather than misreading the new record. Version 3 added [`Record::Linked`] (a
//! process's parent, group and pipe), [`Record::QuotaUsed`] (what a user or type used of its
//! token quota) and [`Record::Deadline`] (when a process must be done by), read the same way:
//! older journals have no links, so every process in them leads a group of its own.

use crate::kernel::process::Ask;
use crate::proto::{ExitStatus, Pid, ProcessType};
use serde::{Deserialize, Serialize};

/// The journal's format version, written in its header record.
pub const FORMAT_VERSION: u32 = 3;

/// The oldest format this kernel still replays (its records are a subset of the current ones).
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// The first record of every journal file.
pub const MAGIC: &str = "llmkernel-journal";

/// Where a process stands, as far as the journal knows. A process that was running when the kernel
/// stopped is recorded as `Running` and comes back waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DurableState {
    Waiting,
    Running,
    Stopped,
    Zombie,
}

/// What a process asked for; fixed at creation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedRecord {
    pub pid: Pid,
    pub uid: u32,
    pub process_type: ProcessType,
    pub system: Option<String>,
    pub prompt: String,
    pub allowance: u32,
    pub nice: i8,
    /// Wall-clock milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
    /// When it entered the run queue, wall-clock milliseconds (keeps the queue order across restarts).
    pub enqueued_unix_ms: u64,
}

/// Output produced since the previous checkpoint of this process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRecord {
    pub pid: Pid,
    /// Bytes of output before `text`: replay checks it, so a lost checkpoint cannot splice text wrongly.
    pub offset: u64,
    pub text: String,
    pub tokens_used: u32,
    pub prompt_tokens: u32,
}

/// A whole process, as compaction writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessImage {
    pub created: CreatedRecord,
    pub state: DurableState,
    pub output: String,
    pub tokens_used: u32,
    pub prompt_tokens: u32,
    pub context_switches: u32,
    pub cpu_ms: u64,
    pub exit: Option<ExitStatus>,
    pub note: Option<String>,
    /// Wall-clock milliseconds when the process ended (for retention).
    pub exited_unix_ms: Option<u64>,
    /// What the request asked beyond a prompt: written as its own [`Record::Asked`] after the
    /// image, so the image's encoding stays version 1's.
    /// Boxed: most processes ask nothing beyond a prompt, and records stay small in the writer's queue.
    #[serde(skip)]
    pub ask: Box<Ask>,
    /// Its parent, group and pipe: written as its own [`Record::Linked`] after the image, for the
    /// same reason as `ask`; `None` for a process that leads a group of its own and reads nothing.
    /// Boxed, as `ask` is.
    #[serde(skip)]
    pub link: Option<Box<LinkRecord>>,
    /// When it must be done by: written as its own [`Record::Deadline`] after the image, like `ask`.
    /// Boxed, like `ask`: few processes have one.
    #[serde(skip)]
    pub deadline: Option<Box<DeadlineRecord>>,
}

/// A process's deadline as the journal keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineRecord {
    /// Kernel-clock milliseconds (the Unix epoch's, continued across restarts) it must be done by.
    pub at_ms: u64,
    /// As asked: how long after its creation.
    pub within_ms: u64,
    pub soft: bool,
}

impl ProcessImage {
    pub fn new(created: CreatedRecord) -> ProcessImage {
        ProcessImage {
            created,
            state: DurableState::Waiting,
            output: String::new(),
            tokens_used: 0,
            prompt_tokens: 0,
            context_switches: 0,
            cpu_ms: 0,
            exit: None,
            note: None,
            exited_unix_ms: None,
            ask: Box::default(),
            link: None,
            deadline: None,
        }
    }

    pub fn pid(&self) -> Pid {
        self.created.pid
    }
}

/// One journal record. Append-only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    Header {
        magic: String,
        format_version: u32,
    },
    Created(CreatedRecord),
    /// The process changed state (dispatched, preempted, stopped, continued).
    State {
        pid: Pid,
        state: DurableState,
        enqueued_unix_ms: u64,
        context_switches: u32,
        cpu_ms: u64,
    },
    Output(OutputRecord),
    Finished {
        pid: Pid,
        status: ExitStatus,
        note: Option<String>,
        exited_unix_ms: u64,
    },
    Reaped {
        pid: Pid,
    },
    Reniced {
        pid: Pid,
        nice: i8,
    },
    /// A whole process (compaction).
    Image(ProcessImage),
    /// The next pid to hand out (compaction; keeps pids unique after reaped ones are dropped).
    NextPid(u64),
    /// What a process's request asked beyond a prompt (conversation, model, parameters, origin);
    /// follows its `Created` or `Image` record, and only when there is something to say.
    Asked {
        pid: Pid,
        ask: Ask,
    },
    /// A process's parent, group and pipe (version 3): follows its `Created` or `Image` record when
    /// it has any, and again when it has read its input.
    Linked(LinkRecord),
    /// The tokens a quota's subject used in the window starting at `window_start_ms` (kernel-clock
    /// milliseconds), as of this record; later records win.
    QuotaUsed {
        subject: crate::config::quotas::QuotaSubject,
        window_start_ms: u64,
        tokens: u64,
    },
    /// When a process must be done by; follows its `Created` or `Image` record.
    Deadline {
        pid: Pid,
        deadline: DeadlineRecord,
    },
}

/// Where a process sits among others (see [`crate::kernel::state::pipes`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRecord {
    pub pid: Pid,
    /// The process whose output feeds it, or that it followed up (`query --continue`).
    pub ppid: Option<Pid>,
    /// Its process group (the pipeline's first process).
    pub pgid: Pid,
    /// `ppid` feeds it through a pipe.
    pub piped: bool,
    /// It still waits for that input.
    pub blocked: bool,
}

/// Most bytes of output in one record: far below the frame limit, so no record of a process, however
/// much it wrote, can be too large to write or to read back.
pub const OUTPUT_CHUNK_BYTES: usize = 256 * 1024;

/// Output records for `text` written at byte `offset` of a process's output, each at most
/// [`OUTPUT_CHUNK_BYTES`]; all carry the counts as of the end.
pub fn output_records(
    pid: Pid,
    offset: u64,
    text: &str,
    tokens_used: u32,
    prompt_tokens: u32,
) -> Vec<Record> {
    let mut at = offset;
    crate::proto::pieces(text, OUTPUT_CHUNK_BYTES)
        .into_iter()
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let record = Record::Output(OutputRecord {
                pid,
                offset: at,
                text: piece.to_string(),
                tokens_used,
                prompt_tokens,
            });
            at += piece.len() as u64;
            record
        })
        .collect()
}

/// The records compaction writes for one process: its image with the first chunk of its output, then
/// the rest of the output in bounded chunks.
pub fn image_records(mut image: ProcessImage) -> Vec<Record> {
    let output = std::mem::take(&mut image.output);
    let first = crate::proto::pieces(&output, OUTPUT_CHUNK_BYTES)
        .into_iter()
        .next()
        .unwrap_or_default();
    image.output = first.to_string();
    let first = image.output.len() as u64;
    let (pid, tokens, prompt_tokens) = (image.pid(), image.tokens_used, image.prompt_tokens);
    let ask = std::mem::take(&mut image.ask);
    let link = image.link.take();
    let deadline = image.deadline.take();
    let mut records = vec![Record::Image(image)];
    if *ask != Ask::default() {
        records.push(Record::Asked { pid, ask: *ask });
    }
    records.extend(link.map(|l| Record::Linked(*l)));
    if let Some(deadline) = deadline {
        records.push(Record::Deadline {
            pid,
            deadline: *deadline,
        });
    }
    records.extend(output_records(
        pid,
        first,
        &output[first as usize..],
        tokens,
        prompt_tokens,
    ));
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_output_is_cut_into_bounded_records_at_character_boundaries() {
        let text = "é".repeat(OUTPUT_CHUNK_BYTES); // two bytes a character
        let records = output_records(Pid(1), 10, &text, 5, 1);
        assert_eq!(records.len(), 2);
        let mut offset = 10;
        let mut joined = String::new();
        for r in &records {
            let Record::Output(o) = r else { panic!() };
            assert!(o.text.len() <= OUTPUT_CHUNK_BYTES);
            assert_eq!(o.offset, offset);
            offset += o.text.len() as u64;
            joined.push_str(&o.text);
        }
        assert_eq!(joined, text);
    }
}
