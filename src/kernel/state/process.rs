//! One LLM process: its request (prompt, type, nice, allowance, owner), where it is in its life, what
//! it has produced, and who is listening. The process table owns these; the scheduler only sees pids.
//! The fields are private to the state: every change to a process is a transition of
//! [`KernelState`](super::KernelState); the rest of the kernel reads through the accessors here.

use crate::kernel::journal::writer::Ack;
use crate::proto::{
    ChatMessage, ExitStatus, Pid, ProcessInfo, ProcessState, ProcessType, Reply, Response, Role,
};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// What the process asked for; fixed at creation.
#[derive(Clone, Debug)]
pub struct Spec {
    pub uid: u32,
    pub process_type: ProcessType,
    pub system: Option<String>,
    pub prompt: String,
    /// Token allowance (the rlimit on generated tokens).
    pub allowance: u32,
}

/// What an OpenAI-style request asked for beyond a prompt: a whole conversation, a model and the
/// sampling parameters, all passed to the backend as they came and kept across context switches.
/// The default (an `llmsh` query) is a system prompt and one question for the configured model.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ask {
    /// The conversation to answer; empty means the spec's system prompt and prompt.
    pub messages: Vec<ChatMessage>,
    /// The model to ask for; `None` takes the configured one.
    pub model: Option<String>,
    /// The request's other fields (temperature, stop, tools, …) as a JSON object's text, forwarded
    /// untouched. Text rather than a JSON value: the journal's encoding cannot hold a free-form value.
    pub params: Option<String>,
    /// Where the process came from, as `ps -l` shows it: `llmsh`, or `http` and the user agent.
    pub origin: Option<String>,
    /// When it must be done by (`query --deadline`). Not in the journal's `Asked` record, whose
    /// encoding stays as it was: the process's deadline is recorded on its own.
    #[serde(skip)]
    pub deadline: Option<crate::proto::Deadline>,
}

impl Ask {
    /// Whether a continuation could break the answer, so the process must not be switched out at
    /// a quantum boundary: tool calls, a response format, several choices, or log-probabilities.
    pub fn unsliced(&self) -> bool {
        let Some(params) = self.params.as_deref() else {
            return false;
        };
        let Ok(serde_json::Value::Object(map)) = serde_json::from_str(params) else {
            return false;
        };
        let present = |key: &str| map.get(key).is_some_and(|v| !v.is_null());
        let tools = map
            .get("tools")
            .is_some_and(|t| t.as_array().is_none_or(|a| !a.is_empty()));
        let choices = map
            .get("n")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(1);
        let logprobs = map
            .get("logprobs")
            .is_some_and(|v| v.as_bool() != Some(false) && !v.is_null());
        tools || present("response_format") || choices > 1 || logprobs || present("top_logprobs")
    }
}

/// A generation in progress on a slot.
#[derive(Debug)]
pub struct Run {
    /// Distinguishes this run's events from a previous run's late ones.
    pub(super) id: u64,
    pub(super) slot: u32,
    pub(super) cancel: CancellationToken,
    pub(super) started: Instant,
    pub(super) tokens: u32,
    /// Set when the kernel has decided this run ends; the slot is released when the run task reports.
    pub(super) ending: bool,
}

/// A backend failure the process is waiting out (see [`crate::kernel::circuit`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Failed tries since the process last made progress.
    pub(super) failures: u32,
    /// Kernel-clock milliseconds of the first of them: the retry budget counts from here.
    pub(super) since_ms: u64,
    /// When the backend may be tried again (kernel clock).
    pub(super) at_ms: u64,
    /// What went wrong last, in the user's words.
    pub(super) reason: String,
    /// Tries the backend failed while its health check answered (the request's own failures),
    /// counted against `request_attempts`.
    pub(super) rejections: u32,
}

impl Retry {
    /// The note `ps -l` shows: `backend … refused the connection; retrying in 4s (attempt 3)`.
    pub fn note(&self, now_ms: u64) -> String {
        let attempt = self.failures.saturating_add(1);
        if self.at_ms > now_ms {
            let wait = seconds(self.at_ms - now_ms);
            format!("{}; retrying in {wait} (attempt {attempt})", self.reason)
        } else {
            format!("{}; retrying (attempt {attempt})", self.reason)
        }
    }
}

/// Milliseconds as a short number of seconds: `0.5s`, `4s`, `30s`.
pub fn seconds(ms: u64) -> String {
    if ms >= 10_000 {
        format!("{}s", ms.div_ceil(1000))
    } else {
        let tenths = ms.div_ceil(100);
        if tenths.is_multiple_of(10) {
            format!("{}s", tenths / 10)
        } else {
            format!("{}.{}s", tenths / 10, tenths % 10)
        }
    }
}

/// Something to do when the running process next reaches a quantum boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtBoundary {
    Nothing,
    /// TERM: end with the output so far.
    Terminate,
}

#[derive(Debug)]
pub struct Process {
    pub(super) pid: Pid,
    pub(super) spec: Spec,
    pub(super) ask: Ask,
    /// Never switched out at a quantum boundary (see [`Ask::unsliced`]).
    pub(super) unsliced: bool,
    pub(super) nice: i8,
    pub(super) state: ProcessState,
    pub(super) output: String,
    pub(super) tokens_used: u32,
    pub(super) prompt_tokens: u32,
    pub(super) created: Instant,
    pub(super) cpu_ms: u64,
    /// When the process last entered the run queue, in kernel-clock milliseconds (drives aging).
    pub(super) enqueued_ms: u64,
    pub(super) run: Option<Run>,
    pub(super) at_boundary: AtBoundary,
    pub(super) context_switches: u32,
    pub(super) last_slot: Option<u32>,
    pub(super) exit: Option<ExitStatus>,
    pub(super) note: Option<String>,
    /// Set while the process waits out a failing backend.
    pub(super) retry: Option<Retry>,
    /// Clients following the output. Each channel is bounded; a follower that falls that far behind is
    /// dropped (its stream ends with an error) rather than letting the kernel buffer without limit.
    pub(super) followers: Vec<mpsc::Sender<Reply>>,
    /// A waiter has collected the exit status; the process leaves the table once its run is gone.
    pub(super) collected: bool,
    /// Bytes of `output` already in the journal.
    pub(super) checkpointed: usize,
    /// Wall-clock milliseconds when it ended (for the retention of finished output).
    pub(super) exited_unix_ms: Option<u64>,
    /// Resolves once the exit is durable (set when the process ends): a client that follows an
    /// ended process hears of its exit only then.
    pub(super) exit_ack: Option<Ack>,
    /// Clients blocked in `wait`.
    pub(super) waiters: Vec<oneshot::Sender<ExitStatus>>,
    /// Its conversation's size as admitted (see [`crate::kernel::memory`]).
    pub(super) memory: crate::kernel::memory::ProcessMemory,
    /// The structured parts of its answer, delta by delta, for a request that has them (tool calls,
    /// several choices, log-probabilities; see [`super::choices`]). As long as the answer: each
    /// delta is a token the allowance or the backend's `max_tokens` counts.
    pub(super) choices: Vec<crate::llm::ChoiceDelta>,
    /// Its parent, group and pipe (see [`super::pipes`]).
    pub(super) link: super::pipes::Link,
    /// When it must be done by, if its request said (see [`super::deadlines`]).
    pub(super) deadline: Option<super::deadlines::ProcessDeadline>,
    /// Told to wrap up before its allowance (see [`super::soft_limit`]).
    pub(super) wrap_up: Option<super::soft_limit::WrapUp>,
}

impl Process {
    pub fn new(pid: Pid, spec: Spec, nice: i8, now_ms: u64) -> Process {
        Process {
            pid,
            spec,
            ask: Ask::default(),
            unsliced: false,
            nice,
            state: ProcessState::Waiting,
            output: String::new(),
            tokens_used: 0,
            prompt_tokens: 0,
            created: Instant::now(),
            cpu_ms: 0,
            enqueued_ms: now_ms,
            run: None,
            at_boundary: AtBoundary::Nothing,
            context_switches: 0,
            last_slot: None,
            exit: None,
            note: None,
            retry: None,
            followers: Vec::new(),
            collected: false,
            checkpointed: 0,
            exited_unix_ms: None,
            waiters: Vec::new(),
            exit_ack: None,
            memory: Default::default(),
            choices: Vec::new(),
            link: Default::default(),
            deadline: None,
            wrap_up: None,
        }
    }

    /// The process with what its request asked for beyond a prompt.
    pub fn with_ask(mut self, ask: Ask) -> Process {
        self.unsliced = ask.unsliced();
        self.ask = ask;
        self
    }

    pub fn state(&self) -> ProcessState {
        self.state
    }

    /// What it asked for beyond a prompt.
    pub fn ask(&self) -> &Ask {
        &self.ask
    }

    /// Its owner.
    pub fn uid(&self) -> u32 {
        self.spec.uid
    }

    /// Prompt tokens the backend processed for it, all runs together.
    pub fn prompt_tokens(&self) -> u32 {
        self.prompt_tokens
    }

    pub fn tokens_used(&self) -> u32 {
        self.tokens_used
    }

    /// Its deadline, if its request set one.
    pub fn deadline(&self) -> Option<&super::deadlines::ProcessDeadline> {
        self.deadline.as_ref()
    }

    /// How it ended, once it has.
    pub fn exit(&self) -> Option<&ExitStatus> {
        self.exit.as_ref()
    }

    /// Whether it has a run on a slot that the kernel has not already ended.
    pub fn holds_its_slot(&self) -> bool {
        self.run.as_ref().is_some_and(|r| !r.ending)
    }

    /// What it has produced so far.
    pub fn output(&self) -> &str {
        &self.output
    }

    /// Tokens the process may still generate.
    pub fn remaining_tokens(&self) -> u32 {
        self.spec.allowance.saturating_sub(self.tokens_used)
    }

    /// The conversation to send: the request's messages (or system and user), and the partial
    /// answer to continue after a switch, joined to a final assistant message if the request
    /// ended with one (a prefilled answer).
    pub fn conversation(&self) -> Vec<ChatMessage> {
        let mut messages = self.asked_messages();
        // With system calls, the output before `answered` is already in the conversation.
        let answered = crate::kernel::syscalls::answered(&self.ask);
        let answer = self.output.get(answered..).unwrap_or_default();
        if !answer.is_empty() {
            match messages.last_mut() {
                Some(last) if last.role == Role::Assistant => last.content.push_str(answer),
                _ => messages.push(ChatMessage {
                    role: Role::Assistant,
                    content: answer.to_string(),
                }),
            }
        }
        messages
    }

    /// The conversation as asked, without any answer.
    pub fn asked_messages(&self) -> Vec<ChatMessage> {
        if !self.ask.messages.is_empty() {
            return self.ask.messages.clone();
        }
        let mut messages = Vec::with_capacity(3);
        if let Some(system) = &self.spec.system {
            messages.push(ChatMessage {
                role: Role::System,
                content: system.clone(),
            });
        }
        messages.push(ChatMessage {
            role: Role::User,
            content: self.spec.prompt.clone(),
        });
        messages
    }

    /// Sends a frame to every follower, dropping those that are gone or too far behind.
    pub fn broadcast(&mut self, reply: Reply) {
        self.followers
            .retain(|tx| tx.try_send(reply.clone()).is_ok());
    }

    /// Forgets followers and waiters whose clients have gone, so a process that never produces
    /// another frame (a stopped one) does not keep them all.
    pub fn forget_departed(&mut self) {
        self.followers.retain(|tx| !tx.is_closed());
        self.waiters.retain(|w| !w.is_closed());
    }

    /// Milliseconds on a slot, including the current run.
    pub fn cpu_ms_now(&self) -> u64 {
        let current = self
            .run
            .as_ref()
            .map_or(0, |r| r.started.elapsed().as_millis() as u64);
        self.cpu_ms + current
    }

    /// Ends the process with `status`. Followers and waiters are handed over in the returned
    /// [`ExitNotice`], to be told once the exit is durable. The caller releases the slot.
    pub fn exit_with(&mut self, status: ExitStatus) -> ExitNotice {
        self.state = ProcessState::Zombie;
        self.exit = Some(status.clone());
        if let Some(run) = &mut self.run {
            run.cancel.cancel();
            run.ending = true;
        }
        ExitNotice {
            exited: crate::proto::Exited {
                pid: self.pid,
                status,
            },
            followers: std::mem::take(&mut self.followers),
            waiters: std::mem::take(&mut self.waiters),
        }
    }

    /// The note `ps -l` shows at `now_ms`: why it ended or stopped early, or the backend failure
    /// it waits out.
    pub fn note_at(&self, now_ms: u64) -> Option<String> {
        match &self.retry {
            Some(retry) if self.state == ProcessState::Waiting => Some(retry.note(now_ms)),
            _ => self
                .note
                .clone()
                .or_else(|| self.link.waiting_note())
                .or_else(|| self.syscall_note()),
        }
    }

    /// The `ps` row; `readable` says whether the asker may see the prompt.
    pub fn info(&self, priority: i32, queue_position: Option<u32>, readable: bool) -> ProcessInfo {
        ProcessInfo {
            pid: self.pid,
            uid: self.spec.uid,
            process_type: self.spec.process_type,
            priority,
            nice: self.nice,
            state: self.state,
            tokens_used: self.tokens_used,
            allowance: self.spec.allowance,
            prompt_tokens: self.prompt_tokens,
            cpu_ms: self.cpu_ms_now(),
            age_ms: self.created.elapsed().as_millis() as u64,
            prompt: readable.then(|| self.spec.prompt.clone()),
            context_switches: self.context_switches,
            slot: self.run.as_ref().map(|r| r.slot),
            queue_position,
            exit: self.exit.clone(),
            note: self.note.clone(),
            eta_ms: None,
            context: None,
        }
    }
}

/// Who must hear of a process's exit, held until the exit is durable.
pub struct ExitNotice {
    exited: crate::proto::Exited,
    followers: Vec<mpsc::Sender<Reply>>,
    waiters: Vec<oneshot::Sender<ExitStatus>>,
}

impl ExitNotice {
    /// Whether a waiter is still there to take the status (the process is then collected).
    pub fn collects(&self) -> bool {
        self.waiters.iter().any(|w| !w.is_closed())
    }

    /// Tells every follower and waiter.
    pub fn deliver(self) {
        for tx in self.followers {
            let _ = tx.try_send(Ok(Response::Exited(self.exited.clone())));
        }
        // Every waiter gets the status (no short-circuit).
        for waiter in self.waiters {
            let _ = waiter.send(self.exited.status.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_short_and_never_round_down_to_zero() {
        let shown: Vec<String> = [1, 500, 4000, 4001, 9999, 30_000, 30_001]
            .into_iter()
            .map(seconds)
            .collect();
        assert_eq!(shown, ["0.1s", "0.5s", "4s", "4.1s", "10s", "30s", "31s"]);
    }

    #[test]
    fn departed_followers_and_waiters_are_forgotten_and_present_ones_kept() {
        let spec = Spec {
            uid: 1,
            process_type: ProcessType::User,
            system: None,
            prompt: "p".into(),
            allowance: 10,
        };
        let mut p = Process::new(Pid(1), spec, 0, 0);
        let (gone_tx, gone_rx) = mpsc::channel(1);
        let (kept_tx, _kept_rx) = mpsc::channel(1);
        let (gone_waiter, gone_status) = oneshot::channel();
        let (kept_waiter, _kept_status) = oneshot::channel();
        p.followers.extend([gone_tx, kept_tx]);
        p.waiters.extend([gone_waiter, kept_waiter]);
        drop((gone_rx, gone_status));
        p.forget_departed();
        assert_eq!((p.followers.len(), p.waiters.len()), (1, 1));
    }

    fn spec() -> Spec {
        Spec {
            uid: 1,
            process_type: ProcessType::User,
            system: Some("sys".into()),
            prompt: "q".into(),
            allowance: 10,
        }
    }

    fn message(role: Role, content: &str) -> ChatMessage {
        ChatMessage {
            role,
            content: content.into(),
        }
    }

    #[test]
    fn requests_that_a_continuation_could_break_are_unsliced() {
        let ask = |params: &str| Ask {
            params: Some(params.into()),
            ..Ask::default()
        };
        for (params, unsliced) in [
            (r#"{"temperature":0.2,"stop":["x"]}"#, false),
            (r#"{"tools":[{"type":"function"}]}"#, true),
            (r#"{"tools":[]}"#, false),
            (r#"{"response_format":{"type":"json_object"}}"#, true),
            (r#"{"n":2}"#, true),
            (r#"{"n":1}"#, false),
            (r#"{"logprobs":true}"#, true),
            (r#"{"logprobs":false}"#, false),
        ] {
            assert_eq!(ask(params).unsliced(), unsliced, "{params}");
        }
        assert!(!Ask::default().unsliced());
    }

    #[test]
    fn a_conversation_is_sent_as_asked_and_a_partial_answer_continues_it() {
        let mut plain = Process::new(Pid(1), spec(), 0, 0);
        plain.output = "part".into();
        let roles: Vec<Role> = plain.conversation().iter().map(|m| m.role).collect();
        assert_eq!(roles, [Role::System, Role::User, Role::Assistant]);
        let ask = Ask {
            messages: vec![
                message(Role::User, "a"),
                message(Role::Assistant, "b"),
                message(Role::Tool, "c"),
            ],
            ..Ask::default()
        };
        let mut asked = Process::new(Pid(2), spec(), 0, 0).with_ask(ask);
        assert_eq!(asked.conversation().len(), 3);
        asked.output = "d".into();
        assert_eq!(asked.conversation()[3], message(Role::Assistant, "d"));
        let prefilled = Ask {
            messages: vec![message(Role::User, "a"), message(Role::Assistant, "The ")],
            ..Ask::default()
        };
        let mut p = Process::new(Pid(3), spec(), 0, 0).with_ask(prefilled);
        p.output = "end".into();
        let conversation = p.conversation();
        assert_eq!(conversation.len(), 2);
        assert_eq!(conversation[1], message(Role::Assistant, "The end"));
    }

    #[test]
    fn retry_note_says_why_when_and_which_attempt() {
        let retry = Retry {
            failures: 2,
            since_ms: 0,
            at_ms: 5000,
            reason: "backend http://x/v1 refused the connection".into(),
            rejections: 0,
        };
        assert_eq!(
            retry.note(1000),
            "backend http://x/v1 refused the connection; retrying in 4s (attempt 3)"
        );
        assert_eq!(
            retry.note(6000),
            "backend http://x/v1 refused the connection; retrying (attempt 3)"
        );
    }
}
