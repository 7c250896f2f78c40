//! The answer as server-sent events ([`streamed`]): a first chunk with the role, a chunk per piece
//! of text (or per structured delta), SSE comments while the process waits (and for a process with
//! system calls, its calls and results), a last chunk with the
//! finish reason, the usage when asked, and `[DONE]`; or an error event.

use super::{Answer, Finish, Step, structured, usage, with_pid};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response as HttpResponse};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::convert::Infallible;

/// What the event stream still has to send.
struct Streaming {
    answer: Answer,
    pending: VecDeque<Event>,
    include_usage: bool,
    done: bool,
    /// The choices a structured answer has streamed, and whether each said how it finished.
    choices_seen: Vec<(u32, bool)>,
}

impl Streaming {
    /// The usage chunk when asked, then `[DONE]`.
    fn end_with_usage(&mut self, f: &Finish) {
        if self.include_usage {
            let mut u = self.answer.chunk(None, None);
            u["choices"] = json!([]);
            u["usage"] = usage(f);
            self.pending.push_back(data(&u));
        }
        self.pending.push_back(Event::default().data("[DONE]"));
    }
}

fn data(value: &Value) -> Event {
    Event::default().data(value.to_string())
}

/// The answer as server-sent events: a first chunk with the role, one chunk per piece of text,
/// a last chunk with the finish reason, the usage when asked, and `[DONE]`; or an error event.
pub fn streamed(answer: Answer, include_usage: bool) -> HttpResponse {
    let pid = answer.pid;
    let first = data(&answer.chunk(None, None));
    let state = Streaming {
        answer,
        pending: VecDeque::from([first]),
        include_usage,
        done: false,
        choices_seen: Vec::new(),
    };
    let events = futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(event) = st.pending.pop_front() {
                return Some((Ok::<_, Infallible>(event), st));
            }
            if st.done {
                return None;
            }
            match st.answer.step().await {
                Step::Text(t) => st.pending.push_back(data(&st.answer.chunk(Some(&t), None))),
                Step::Deltas(deltas) => {
                    for d in &deltas {
                        st.choices_seen.push((d.index, d.finish_reason.is_some()));
                        let mut chunk = st.answer.chunk(None, None);
                        chunk["choices"] =
                            json!([structured::streamed_choice(st.answer.flavor, d)]);
                        st.pending.push_back(data(&chunk));
                    }
                }
                Step::Status(s) => st.pending.push_back(Event::default().comment(s)),
                Step::Calls(lines) => {
                    // One comment per line: a comment cannot hold a line break.
                    let event = lines
                        .split(['\n', '\r'])
                        .filter(|l| !l.is_empty())
                        .fold(Event::default(), |event, line| event.comment(line));
                    st.pending.push_back(event);
                }
                Step::End(end) => {
                    st.done = true;
                    match end {
                        Ok(f) if st.answer.structured => {
                            for index in structured::unfinished(&st.choices_seen) {
                                let mut last = st.answer.chunk(None, Some(f.reason));
                                last["choices"][0]["index"] = index.into();
                                st.pending.push_back(data(&last));
                            }
                            st.end_with_usage(&f);
                        }
                        Ok(f) => {
                            let last = st.answer.chunk(None, Some(f.reason));
                            st.pending.push_back(data(&last));
                            st.end_with_usage(&f);
                        }
                        Err(e) => st.pending.push_back(data(&e.body())),
                    }
                }
            }
        }
    });
    let sse = Sse::new(events).keep_alive(KeepAlive::default());
    with_pid(sse.into_response(), pid)
}
