//! The messages of the wire protocol: one request struct per verb, wrapped in [`Request`], and the
//! kernel's answers, wrapped in [`Response`] inside a [`Reply`]. Every enum here is append-only: a new
//! verb is a new variant at the end, never a reordering, because the variant index is the wire tag.

use super::types::{Deadline, ExitStatus, Pid, ProcessState, ProcessType, Signal};
use serde::{Deserialize, Serialize};

/// Version of the wire protocol, independent of the crate version. Bump it on any change that an
/// older peer would misread; appending a variant a peer never receives does not need a bump.
pub const PROTOCOL_VERSION: u32 = 3;

/// Characters of a prompt that `List` and `Stat` rows carry: enough for any `ps` line, small
/// enough that thousands of rows fit in a frame.
pub const PROMPT_PREVIEW_CHARS: usize = 256;

/// A client's request. `Hello` must stay variant 0 with the version as its first field, so that any
/// two versions can still tell each other apart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    Hello(Hello),
    Submit(SubmitRequest),
    List(ListRequest),
    Signal(SignalRequest),
    Renice(ReniceRequest),
    Wait(WaitRequest),
    Output(OutputRequest),
    Interrupt(InterruptRequest),
    Sched(SchedRequest),
    Interrupts(InterruptsRequest),
    Stat(StatRequest),
    /// `sched` with what switching did and the slots kept for interactive work: answered by
    /// [`Response::SchedInfo`]. Newer than `Sched`, whose answer stays as older shells read it.
    SchedInfo(SchedRequest),
    /// `Submit` with a model or a follow-up of a finished process (`query --model`, `--continue`).
    SubmitAsk(SubmitAskRequest),
    /// Where processes came from (`ps -l`), answered by `Origins`.
    Origins(OriginsRequest),
    Subscribe(SubscribeRequest),
    Free(FreeRequest),
    /// Every backend of the machine (`sched`, `ps -l`), answered by `Backends`.
    Backends(BackendsRequest),
    /// `SubmitAsk` linked to other processes: a pipe's reader, a member of a process group.
    SubmitLinked(super::pipes::SubmitLinkedRequest),
    /// A signal to every process of a group (`kill -SIG -PGID`), answered by `GroupSignalled`.
    SignalGroup(super::pipes::SignalGroupRequest),
    /// Parents, groups and pipes (`ps -l`, `ps f`), answered by `Links`.
    Links(super::pipes::LinksRequest),
    /// `SubmitAsk` with a deadline (`query --deadline 30s`), version 3. Answered as `Submit` is.
    SubmitBy(SubmitByRequest),
    /// Each token quota's use (`quota`), version 3. Answered by `Quotas`.
    Quota(QuotaRequest),
    /// `SubmitLinked` with system calls enabled (`query --syscalls`): the process is offered the
    /// tools `spawn`, `wait`, `kill` and `ps`, and the kernel carries out its calls to them.
    SubmitSyscalls(super::pipes::SubmitLinkedRequest),
    /// `SubmitSyscalls` whose first answer must be a tool call (`query --syscalls --must-call`):
    /// the backend is sent `tool_choice: "required"` for that answer, `"auto"` after it.
    SubmitMustCall(super::pipes::SubmitLinkedRequest),
}

/// The first frame each way: the sender's protocol version and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol_version: u32,
    /// Free text for logs, e.g. `llmsh 0.1.0`.
    pub peer: String,
}

/// Create a process. With `attach`, the reply `Submitted` is followed by the output stream as for
/// [`OutputRequest`] with `follow`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitRequest {
    pub prompt: String,
    pub system: Option<String>,
    pub process_type: ProcessType,
    /// Token allowance; `None` takes the type's default.
    pub max_tokens: Option<u32>,
    pub nice: i8,
    pub attach: bool,
}

/// Create a process as [`SubmitRequest`] does, asking for a `model` other than the configured one,
/// or (`continue_from`) as a follow-up question to a finished process: the new process's
/// conversation is that one's, its answer, then `submit.prompt`, for the same model and parameters.
/// Answered as `Submit` is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitAskRequest {
    pub submit: SubmitRequest,
    pub model: Option<String>,
    pub continue_from: Option<Pid>,
}

/// Create a process as [`SubmitAskRequest`] does, that must be done within `deadline`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitByRequest {
    pub ask: SubmitAskRequest,
    pub deadline: Deadline,
}

/// Show each token quota (`[quotas]`) and what its user or type used of it in the current window.
/// Any user may ask: quotas and their use name users and types, never prompts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaRequest {}

/// The token quotas and their use (`quota`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaTable {
    pub quotas: Vec<QuotaRow>,
}

/// One quota: whose, how much of it is used, and when it renews.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaRow {
    /// A user's name (or `uid N`), or a process type.
    pub subject: String,
    /// Whether `subject` is a process type rather than a user.
    pub is_type: bool,
    /// Tokens used in the current window.
    pub used: u64,
    /// Tokens allowed per window.
    pub limit: u64,
    pub window_ms: u64,
    /// Milliseconds until the window renews.
    pub renews_in_ms: u64,
    /// Processes waiting for this quota to renew.
    pub waiting: u32,
}

/// Where each of `pids` came from: `llmsh`, or `http` and the client's user agent. Processes the
/// asker may not read, and those the kernel knows nothing of, are left out of the answer. Ask for at
/// most [`MAX_ORIGIN_PIDS`] at a time, so the answer fits in a frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginsRequest {
    pub pids: Vec<Pid>,
}

/// Pids one `Origins` request may name: an origin is at most a few dozen bytes, so ten thousand of
/// them stay far below the frame limit.
pub const MAX_ORIGIN_PIDS: usize = 10_000;

/// List processes (`ps`). Answered by `Processes`, or, for a table larger than a frame may be, by
/// `ProcessesPart` frames and the last rows as `Processes`. Prompts are previews (their first
/// [`PROMPT_PREVIEW_CHARS`] characters, then `…`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRequest {
    /// Include other users' processes.
    pub all_users: bool,
}

/// Send a signal to a process (`kill`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalRequest {
    pub pid: Pid,
    pub signal: Signal,
}

/// Change a process's niceness (`renice`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReniceRequest {
    pub pid: Pid,
    pub nice: i8,
}

/// Wait for a process to end and reap it (`wait`). The reply comes when it has ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitRequest {
    pub pid: Pid,
}

/// Read a process's output (`cat`, `fg`). Without `follow`: all of it so far, as one `Output` frame,
/// or, when that is larger than a frame may be, as `OutputPart` frames and the last piece as `Output`.
/// With `follow`: `Output` frames with all of it so far, then an `Output` per new piece, `Stopped` and
/// `Continued` when a signal changes that, and `Exited` last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRequest {
    pub pid: Pid,
    pub follow: bool,
}

/// Raise an interrupt by hand, as a signal to the kernel would.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterruptRequest {
    pub kind: InterruptKind,
    pub message: Option<String>,
}

/// The kernel's interrupt lines. Append-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InterruptKind {
    UserInput,
    Timer,
    System,
}

/// Show (`policy: None`) or switch the scheduling policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedRequest {
    pub policy: Option<String>,
}

/// Show the interrupt lines' counters (`interrupts`), like /proc/interrupts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterruptsRequest {}

/// One process's `ps` row (`cat` uses it to say why a process ended or waits). Answered by
/// `Processes` with that one row; another user's prompt is hidden as in `List`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatRequest {
    pub pid: Pid,
}

/// Follow the kernel's events (`top`, the dashboard). Answered by `Event` frames: a `Snapshot` of the
/// table first (in several frames when it is large), then one frame per event until the client sends
/// anything or closes. A client that reads too slowly loses events, and is told how many by `Lost`.
/// Other users' processes are shown as `ps` shows them: only with `all_users`, and with their prompts
/// hidden.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeRequest {
    /// Include other users' processes.
    pub all_users: bool,
}

/// Show the memory: each backend's slots and context size, what each slot caches, and swap use
/// (`free`). Answered by `Memory`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreeRequest {}

/// What the kernel sends: an answer, or an error that travels as a normal reply.
pub type Reply = Result<Response, Failure>;

/// A successful answer. Append-only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response {
    Hello(HelloReply),
    Submitted(Submitted),
    Processes(ProcessList),
    Signalled(Signalled),
    Reniced(Reniced),
    Exited(Exited),
    Output(OutputChunk),
    Stopped(Pid),
    Continued(Pid),
    Interrupted(Interrupted),
    Sched(SchedStatus),
    InterruptTable(InterruptTable),
    /// A piece of an output too large for one frame, with more to come; the last piece is `Output`.
    OutputPart(OutputChunk),
    /// Some rows of a process table too large for one frame, with more to come; the last rows are
    /// `Processes`.
    ProcessesPart(ProcessList),
    /// Why a followed process still waits (version 2).
    Waiting(WaitingNote),
    SchedInfo(SchedInfo),
    /// Where processes came from (the answer to `Origins`).
    Origins(OriginList),
    /// One event of a subscription (see [`SubscribeRequest`]).
    Event(super::events::Event),
    /// The answer to `Free` (version 2).
    Memory(MemoryStatus),
    /// The answer to `Backends`.
    Backends(BackendTable),
    /// The answer to `SignalGroup`.
    GroupSignalled(super::pipes::GroupSignalled),
    /// The answer to `Links`.
    Links(super::pipes::LinkList),
    /// The answer to `Quota` (version 3).
    Quotas(QuotaTable),
}

/// Processes and where they came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginList {
    pub origins: Vec<ProcessOrigin>,
}

/// Where one process came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessOrigin {
    pub pid: Pid,
    pub origin: String,
}

/// The kernel's hello.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloReply {
    pub protocol_version: u32,
    /// The kernel's crate version, for `llmsh --version`-style reporting.
    pub kernel_version: String,
}

/// A process was created and its creation is acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitted {
    pub pid: Pid,
}

/// The process table as `ps` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessList {
    pub processes: Vec<ProcessInfo>,
    /// Generation slots the kernel time-shares.
    pub cpus: u32,
    pub policy: String,
}

/// One row of `ps`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: Pid,
    pub uid: u32,
    pub process_type: ProcessType,
    /// Effective priority now (base, nice and aging together); higher runs first.
    pub priority: i32,
    pub nice: i8,
    pub state: ProcessState,
    pub tokens_used: u32,
    pub allowance: u32,
    /// Prompt tokens the backend processed for this process, all runs together.
    pub prompt_tokens: u32,
    /// Milliseconds spent on a slot.
    pub cpu_ms: u64,
    /// Milliseconds since the process was created.
    pub age_ms: u64,
    /// The prompt, or `None` when the asker may not read it.
    pub prompt: Option<String>,
    pub context_switches: u32,
    pub slot: Option<u32>,
    /// Place in the run queue (1 runs next) for a waiting process.
    pub queue_position: Option<u32>,
    pub exit: Option<ExitStatus>,
    /// Why the process is in its state, when that is worth saying (a failure, an allowance reached).
    pub note: Option<String>,
    /// For a waiting process: milliseconds until it likely gets a slot, from recent token rates.
    pub eta_ms: Option<u64>,
    /// Its memory: tokens of its conversation in a slot's context, and whether it is swapped out
    /// (version 2).
    pub context: Option<ContextUse>,
}

/// A process's memory, as `ps -l` shows it in CTX.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextUse {
    /// Tokens of its conversation (prompt and answer so far).
    pub used: u32,
    /// Tokens one slot's context holds, when known.
    pub size: Option<u32>,
    /// `used` is an estimate (the backend has no tokenizer the kernel can ask).
    pub estimated: bool,
    /// Its slot's KV cache is saved to swap while it holds no slot.
    pub swapped: bool,
}

/// The memory of the machine (`free`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStatus {
    pub backends: Vec<BackendMemory>,
    pub swap: SwapUse,
}

/// One backend's slots and their contexts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendMemory {
    pub url: String,
    /// Tokens one slot's context holds, when known.
    pub context_tokens: Option<u32>,
    /// Where that number comes from: `server` (the backend says), `config`, or `unknown`.
    pub context_source: String,
    /// How tokens are counted: `server` (the backend's tokenizer) or `estimate`.
    pub tokenizer: String,
    pub slots: Vec<SlotMemory>,
}

/// One slot: who runs on it, and whose conversation its cache holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotMemory {
    pub slot: u32,
    pub running: Option<Pid>,
    /// The process whose conversation the slot's cache holds (the last to run there).
    pub cached: Option<Pid>,
    /// Tokens of that conversation.
    pub used: Option<u32>,
}

/// Swap: slot caches saved to disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapUse {
    /// Swap is on (`[swap] dir` set, on llama-server).
    pub enabled: bool,
    pub dir: Option<String>,
    pub used_bytes: u64,
    pub max_bytes: u64,
    /// Processes swapped out now.
    pub processes: u32,
    /// Saves and restores so far, and restores the server lost (recomputed instead).
    pub saves: u64,
    pub restores: u64,
    pub lost_restores: u64,
    /// Why swap turned itself off (a restore the server lost, a server that refuses saves).
    pub off_reason: Option<String>,
}

/// A signal was delivered; the process's state afterwards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signalled {
    pub pid: Pid,
    pub state: ProcessState,
}

/// Niceness changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reniced {
    pub pid: Pid,
    pub old_nice: i8,
    pub new_nice: i8,
}

/// A process ended (the end of an output stream, or the answer to `wait`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exited {
    pub pid: Pid,
    pub status: ExitStatus,
}

/// Output text of a process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputChunk {
    pub pid: Pid,
    pub text: String,
}

/// An interrupt was raised; the handler process it spawned, if any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interrupted {
    pub kind: InterruptKind,
    pub handler: Option<Pid>,
}

/// The scheduling policy in force and those available.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedStatus {
    pub policy: String,
    pub available: Vec<String>,
    pub quantum_tokens: u32,
    pub cpus: u32,
    pub context_switches: u64,
}

/// The scheduling policy, what switching processes has done and cost, and the slots kept for
/// interactive work (`sched`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedInfo {
    pub status: SchedStatus,
    /// Runs the scheduler cut to give their slot to another process (each a cancelled request).
    pub switches: u64,
    /// Of those, the ones cut at once for more urgent work rather than at a quantum boundary.
    pub urgent_switches: u64,
    /// Runs that resumed a switched-out process and whose prompt size the backend reported.
    pub resumes_measured: u64,
    /// Prompt tokens the backend read for those resumes (the conversations read again).
    pub reread_prompt_tokens: u64,
    /// Slots kept from background work while interactive work comes.
    pub reserved_slots: u32,
    /// Whether they are kept now (interactive work was about within the window).
    pub reservation_active: bool,
    /// The least urgent interactive type; every type above it is interactive too.
    pub interactive_type: ProcessType,
    /// How long after interactive work was last about the slots stay kept, in milliseconds.
    pub reservation_window_ms: u64,
    /// The slots the backend server says it has (llama-server's `total_slots`), once known.
    pub server_slots: Option<u32>,
}

/// The interrupt lines and their counters (`interrupts`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterruptTable {
    pub lines: Vec<InterruptLine>,
    /// The period of the kernel's own interval timer in milliseconds, when one is configured.
    pub timer_period_ms: Option<u64>,
    /// SIGUSR1's mailbox, and how many messages wait in it now.
    pub spool_dir: String,
    pub spooled: u32,
}

/// One interrupt line. A raise either starts a handler process (`handled`) or, when the line's handlers
/// already wait at their limit, merges into them (`coalesced`). One SIGUSR1 delivers every spooled
/// message, so `handled` may exceed `raised` there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterruptLine {
    pub kind: InterruptKind,
    pub raised: u64,
    pub coalesced: u64,
    pub handled: u64,
    /// Handler processes waiting for a slot now.
    pub waiting: u32,
    /// The most that may wait at once; `None` for no limit (USER_INPUT: every query is a process).
    pub max_waiting: Option<u32>,
    /// The type of the handler processes.
    pub handler_type: ProcessType,
}

/// Why a followed process waits for a slot, pushed to its followers when that changes (at most about
/// once a second): a backend failure it waits out, or its place in a long queue. The foreground shell
/// shows it on one status line until tokens flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingNote {
    pub pid: Pid,
    /// In the user's words: `backend … refused the connection; retrying in 4s (attempt 3)`, or
    /// `queued at position 3, about 12s to a slot`.
    pub note: String,
    /// The note says something new (another reason, attempt or queue position), not just a shorter
    /// countdown: a shell that cannot rewrite its line in place prints only these.
    pub news: bool,
}

/// An error reply: a kind a program can act on and a message for a human.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

/// What went wrong, for programs. Append-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureKind {
    /// The request is malformed or its values are out of range.
    BadRequest,
    /// No process has that pid.
    NoSuchProcess,
    /// The asker does not own the process.
    PermissionDenied,
    /// The peers speak different protocol versions.
    VersionMismatch,
    /// The run queue is full; try later.
    QueueFull,
    /// The kernel cannot make the request durable (full disk, unwritable state).
    Unavailable,
    /// The frame could not be read.
    BadFrame,
    /// The kernel is shutting down.
    ShuttingDown,
    /// The prompt does not fit a slot's context (like ENOMEM).
    OutOfMemory,
}

/// Show every backend of the machine: its slots, models, health and rate (`sched`), and which
/// slots are whose (`ps -l`). Answered by `Backends`. Any user may ask; it names no process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendsRequest {}

/// The backends of the machine, and what moving processes between them has done.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendTable {
    pub backends: Vec<BackendRow>,
    /// Processes resumed on another backend than the one they last ran on.
    pub migrations: u64,
    /// Model switches on one-model-at-a-time (`swap`) backends.
    pub model_switches: u64,
}

/// One backend: which of the kernel's slots are its own (`first_slot ..`), and how it does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendRow {
    pub name: String,
    pub url: String,
    /// `llamacpp`, `vllm`, `openai`, or `auto` until learned.
    pub kind: String,
    pub up: bool,
    /// Removed by a reload: draining, it takes no new work.
    pub removed: bool,
    pub first_slot: u32,
    pub slots: u32,
    /// Slots holding a process now.
    pub busy: u32,
    /// The models it serves; empty: whatever it is asked for.
    pub models: Vec<String>,
    /// Tokens generated on it, all runs together.
    pub tokens: u64,
    /// Tokens per second, the last few seconds.
    pub tokens_per_sec: u32,
    /// It holds one model at a time; `loaded_model` is the one it holds.
    pub swap: bool,
    pub loaded_model: Option<String>,
    /// Why it is down, when it is.
    pub down_reason: Option<String>,
}
