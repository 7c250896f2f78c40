//! What the journal records: one [`Record`] per durable event in a process's life, and the
//! [`ProcessImage`] that replaying them rebuilds. Variants are append-only, like the wire's; a change
//! an older kernel would misread bumps [`FORMAT_VERSION`].

use crate::proto::{ExitStatus, Pid, ProcessType};
use serde::{Deserialize, Serialize};

/// The journal's format version, written in its header record.
pub const FORMAT_VERSION: u32 = 1;

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
}
