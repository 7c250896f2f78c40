//! One answer, however the scheduler runs it: the process's output followed from the kernel (the
//! same follower `fg` uses) and sent as one OpenAI completion with one id — streamed as server-sent
//! events or returned whole with `usage`. Continuations after a preemption only add text (the
//! backend's echo of the partial answer is removed before it reaches the process), so the client
//! sees one unbroken answer. While the process waits, SSE comments say where it stands
//! (`: queued position=3 eta=12s`, `: preempted`, `: stopped`), which also keeps idle connections
//! alive. A client that leaves kills its process ([`KillOnDrop`]), unless it asked to detach. A
//! request with tools, several choices or log-probabilities is answered from the structured deltas
//! the process received ([`super::structured`]), not from its output text.

use super::error::{ApiError, PID_HEADER};
use super::request::Flavor;
use super::structured;

mod stream;
use crate::kernel::Kernel;
use crate::kernel::process::seconds;
use crate::kernel::state::Follower;
use crate::llm::ChoiceDelta;
use crate::proto::{ExitStatus, Pid, ProcessState, Response, Signal};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response as HttpResponse};
use serde_json::{Value, json};
use std::sync::Arc;
pub use stream::streamed;

/// Kills the process when the client goes away before its answer is complete (the handler or its
/// stream is dropped), as `kill` would: the backend's compute stops. Disarmed once the answer is
/// complete, or from the start for a detached request.
struct KillOnDrop {
    kernel: Arc<Kernel>,
    pid: Pid,
    uid: u32,
    armed: bool,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.armed {
            let (pid, uid) = (self.pid, self.uid);
            tracing::debug!(%pid, "HTTP client left; killing its process");
            self.kernel.update(|s| {
                let _ = s.signal(uid, pid, Signal::Kill);
            });
        }
    }
}

/// How an answer ended.
struct Finish {
    reason: &'static str,
    prompt_tokens: u32,
    completion_tokens: u32,
}

/// What the follower brought next.
enum Step {
    Text(String),
    /// Structured parts of the answer (tool calls, choices, log-probabilities), in order.
    Deltas(Vec<ChoiceDelta>),
    /// Where the process stands (an SSE comment).
    Status(String),
    /// The kernel's lines of a system-call process's calls or results (SSE comments).
    Calls(String),
    End(Result<Finish, ApiError>),
}

/// A process's answer on its way to one HTTP client.
pub struct Answer {
    kernel: Arc<Kernel>,
    pid: Pid,
    uid: u32,
    flavor: Flavor,
    id: String,
    created: u64,
    model: String,
    follower: Follower,
    guard: KillOnDrop,
    detach: bool,
    /// What the last status comment said (a new one is sent only when it changes).
    last_status: Option<String>,
    was_running: bool,
    /// The answer has structured parts ([`super::structured`]): they, not the output text, are
    /// what the client gets.
    structured: bool,
    /// Structured deltas already sent.
    deltas_sent: usize,
    /// The exit, held until the last structured deltas are out.
    exit_held: Option<ExitStatus>,
    /// The process has system calls: the kernel's lines of calls and results are not its text
    /// ([`super::syscalls`]).
    syscalls: bool,
}

impl Answer {
    pub fn new(
        kernel: Arc<Kernel>,
        pid: Pid,
        uid: u32,
        flavor: Flavor,
        model: String,
        follower: Follower,
        detach: bool,
    ) -> Answer {
        let prefix = match flavor {
            Flavor::Chat => "chatcmpl",
            Flavor::Text => "cmpl",
        };
        Answer {
            guard: KillOnDrop {
                kernel: Arc::clone(&kernel),
                pid,
                uid,
                armed: !detach,
            },
            kernel,
            pid,
            uid,
            flavor,
            id: format!("{prefix}-llmkernel-{}", pid.0),
            created: crate::kernel::state::unix_ms() / 1000,
            model,
            follower,
            detach,
            last_status: None,
            was_running: false,
            structured: false,
            deltas_sent: 0,
            exit_held: None,
            syscalls: false,
        }
    }

    /// The answer as its structured parts (for a request with tools, several choices or
    /// log-probabilities, whose stream the backend client reads whole).
    pub fn structured(mut self, on: bool) -> Answer {
        self.structured = on;
        self
    }

    /// An answer whose calls and results are the kernel's ([`super::syscalls`]): streamed as SSE
    /// comments, left out of a whole answer.
    pub fn syscalls(mut self, on: bool) -> Answer {
        self.syscalls = on;
        self
    }

    /// The structured deltas the process received since the last call.
    fn new_deltas(&mut self) -> Option<Vec<ChoiceDelta>> {
        if !self.structured {
            return None;
        }
        let from = self.deltas_sent;
        let deltas = self.kernel.read(|s| {
            s.get(self.pid)
                .map(|p| p.choices_from(from).to_vec())
                .unwrap_or_default()
        });
        self.deltas_sent += deltas.len();
        (!deltas.is_empty()).then_some(deltas)
    }

    /// The next thing to tell the client.
    async fn step(&mut self) -> Step {
        let kernel = Arc::clone(&self.kernel);
        loop {
            let changed = kernel.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(deltas) = self.new_deltas() {
                return Step::Deltas(deltas);
            }
            if let Some(status) = self.exit_held.take() {
                return Step::End(self.finish(status));
            }
            if let Some(status) = self.status() {
                return Step::Status(status);
            }
            tokio::select! {
                frame = self.follower.rx.recv() => match frame {
                    Some(Ok(Response::Output(chunk))) if self.syscalls && super::syscalls::is_calls_or_results(&chunk.text) => return Step::Calls(chunk.text),
                    Some(Ok(Response::Output(chunk))) if !self.structured => return Step::Text(chunk.text),
                    // The structured parts are read out before the end.
                    Some(Ok(Response::Exited(exited))) if self.structured => self.exit_held = Some(exited.status),
                    Some(Ok(Response::Stopped(_))) => return Step::Status("stopped".into()),
                    Some(Ok(Response::Continued(_))) => return Step::Status("continued".into()),
                    Some(Ok(Response::Exited(exited))) => return Step::End(self.finish(exited.status)),
                    Some(Ok(_)) => {}
                    Some(Err(failure)) => return Step::End(Err(failure.into())),
                    None => {
                        if let Some(deltas) = self.new_deltas() {
                            return Step::Deltas(deltas);
                        }
                        return Step::End(self.ended_before().await);
                    }
                },
                () = &mut changed => {}
                () = kernel.shutdown.cancelled() => {
                    // The kernel leaving is not the client leaving: the process stays, durable,
                    // for the next start.
                    self.guard.armed = false;
                    let e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", "the kernel is shutting down");
                    return Step::End(Err(e));
                }
            }
        }
    }

    /// A follower that was registered after the process ended, or fell too far behind.
    async fn ended_before(&mut self) -> Result<Finish, ApiError> {
        match self.follower.ended.take() {
            Some((exited, ack)) => {
                let _ = ack.durable().await;
                self.finish(exited.status)
            }
            None => Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the answer's stream fell too far behind",
            )),
        }
    }

    /// A status comment when where the process stands has changed: its place in the queue, or that
    /// it was switched out.
    fn status(&mut self) -> Option<String> {
        let info = self.kernel.read(|s| s.stat(self.pid, self.uid))?;
        let running = info.state == ProcessState::Running;
        let preempted = self.was_running && info.state == ProcessState::Waiting;
        self.was_running = running;
        let status = match info.queue_position {
            Some(position) if info.state == ProcessState::Waiting => {
                let eta = info
                    .eta_ms
                    .map_or(String::new(), |ms| format!(" eta={}", seconds(ms)));
                format!("queued position={position}{eta}")
            }
            _ => return None,
        };
        if preempted {
            self.last_status = Some(status);
            return Some("preempted".into());
        }
        if self.last_status.as_ref() == Some(&status) {
            return None;
        }
        self.last_status = Some(status.clone());
        Some(status)
    }

    /// The end of the answer: its usage, and the process reaped unless detached (a detached one
    /// stays for `cat` and `/v1/processes/{pid}/output`).
    fn finish(&mut self, status: ExitStatus) -> Result<Finish, ApiError> {
        self.guard.armed = false;
        let (pid, uid, detach) = (self.pid, self.uid, self.detach);
        let counts = self.kernel.update(|s| {
            let counts = s.get(pid).map(|p| {
                (
                    p.prompt_tokens(),
                    p.tokens_used(),
                    s.stat(pid, uid).and_then(|i| i.note),
                )
            });
            if !detach {
                let _ = s.collect(uid, pid);
            }
            counts
        });
        let (prompt_tokens, completion_tokens, note) = counts.unwrap_or_default();
        match status {
            ExitStatus::Finished => Ok(Finish {
                // A note on a finished process says it was cut short (allowance, output limit);
                // a structured answer's choices say how each finished themselves.
                reason: if note.is_some() { "length" } else { "stop" },
                prompt_tokens,
                completion_tokens,
            }),
            ExitStatus::Killed { signal } => Err(ApiError::killed(
                pid,
                format!("process {pid} was killed by SIG{signal}; its answer is incomplete"),
            )),
            ExitStatus::Failed { reason } => {
                let mut e = ApiError::new(StatusCode::BAD_GATEWAY, "server_error", reason);
                e.code = Some("backend_failed");
                Err(e)
            }
        }
    }

    fn chunk(&self, text: Option<&str>, finish: Option<&str>) -> Value {
        let choice = match self.flavor {
            Flavor::Chat => {
                let delta = match text {
                    Some(t) => json!({ "content": t }),
                    None if finish.is_none() => json!({ "role": "assistant", "content": "" }),
                    None => json!({}),
                };
                json!({ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish })
            }
            Flavor::Text => {
                json!({ "index": 0, "text": text.unwrap_or(""), "logprobs": null, "finish_reason": finish })
            }
        };
        json!({
            "id": self.id,
            "object": self.object(true),
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        })
    }

    fn object(&self, streamed: bool) -> &'static str {
        match (self.flavor, streamed) {
            (Flavor::Chat, true) => "chat.completion.chunk",
            (Flavor::Chat, false) => "chat.completion",
            (Flavor::Text, _) => "text_completion",
        }
    }
}

fn usage(f: &Finish) -> Value {
    json!({
        "prompt_tokens": f.prompt_tokens,
        "completion_tokens": f.completion_tokens,
        "total_tokens": f.prompt_tokens + f.completion_tokens,
    })
}

fn with_pid(mut response: HttpResponse, pid: Pid) -> HttpResponse {
    response
        .headers_mut()
        .insert(PID_HEADER, HeaderValue::from(pid.0));
    response
}

/// The whole answer as one completion with `usage`.
pub async fn whole(mut answer: Answer) -> HttpResponse {
    let mut text = String::new();
    let mut deltas = Vec::new();
    let finish = loop {
        match answer.step().await {
            Step::Text(t) => text.push_str(&t),
            Step::Deltas(d) => deltas.extend(d),
            Step::Status(_) | Step::Calls(_) => {}
            Step::End(end) => break end,
        }
    };
    let pid = answer.pid;
    let finish = match finish {
        Ok(f) => f,
        Err(mut e) => {
            e.pid = Some(pid);
            return e.into_response();
        }
    };
    let choices = if answer.structured {
        structured::whole_choices(answer.flavor, &deltas, finish.reason)
    } else {
        vec![match answer.flavor {
            Flavor::Chat => json!({
                "index": 0,
                "message": { "role": "assistant", "content": text },
                "logprobs": null,
                "finish_reason": finish.reason,
            }),
            Flavor::Text => json!({
                "index": 0, "text": text, "logprobs": null, "finish_reason": finish.reason,
            }),
        }]
    };
    let body = json!({
        "id": answer.id,
        "object": answer.object(false),
        "created": answer.created,
        "model": answer.model,
        "choices": choices,
        "usage": usage(&finish),
    });
    with_pid(axum::Json(body).into_response(), pid)
}
