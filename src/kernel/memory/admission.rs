//! Admission by memory, at submit: a prompt that does not fit a slot's context is refused (like
//! `ENOMEM`), and a prompt whose allowance would run past the context has its allowance cut to what
//! fits, with a note. The slot's context size is asked of the backend (llama-server's `/props`,
//! learned once) or taken from `[backend] context`; the prompt is counted by the backend's own
//! tokenizer where it has one, else estimated. A prompt whose bytes alone prove it fits (a
//! tokenizer makes at most a token of each byte) is not waited for: it starts at once, and is
//! counted afterwards for `ps -l` ([`count_later`]).

use super::{ContextSource, TokenCount, estimate_tokens};
use crate::kernel::Kernel;
use crate::kernel::process::Spec;
use crate::proto::{ChatMessage, Failure, FailureKind, Pid, Role};
use std::sync::Arc;
use std::time::Duration;

/// How long admission waits for the backend to say its context size or count a prompt: a server
/// too busy to answer this in time gets the estimate (or no check), never a stalled submit.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// What admission decided for a process it lets in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admitted {
    pub prompt: TokenCount,
    /// The allowance asked for, when it was cut.
    pub cut_from: Option<u32>,
    /// The conversation to count exactly once the process is created ([`count_later`]): admission
    /// decided on a bound and only estimated it.
    pub count_later: Option<Vec<ChatMessage>>,
}

/// Admits `spec` (cutting its allowance if need be) or refuses it.
pub async fn admit(kernel: &Arc<Kernel>, spec: &mut Spec) -> Result<Admitted, Failure> {
    let backend = kernel.backend();
    let configured = kernel.read(|s| s.config.context_tokens);
    let asked = tokio::time::timeout(ASK_TIMEOUT, backend.context_size())
        .await
        .ok()
        .flatten();
    let context = match (asked, configured) {
        (Some(n), _) => Some((n, ContextSource::Server)),
        (None, Some(n)) => Some((n, ContextSource::Config)),
        (None, None) => None,
    };
    let messages = prompt_messages(spec);
    // A count the decision does not need is not waited for: it is two round trips to a server that
    // may be busy generating (some 6 ms of a question's first token on two loaded cores). It is
    // made after the process is created instead, for `ps -l` and `free`.
    let needs_count = context.is_none_or(|(size, _)| !surely_fits(&messages, spec.allowance, size));
    let counted = match needs_count {
        true => tokio::time::timeout(ASK_TIMEOUT, backend.count_tokens(&messages))
            .await
            .ok()
            .flatten(),
        false => None,
    };
    let prompt = match counted {
        Some(tokens) => TokenCount {
            tokens,
            estimated: false,
        },
        None => estimate_tokens(messages.iter().map(|m| m.content.as_str())),
    };
    kernel.update(|s| {
        if context.is_some() {
            s.memory.context = context;
        }
        if needs_count {
            s.memory.server_tokenizer = !prompt.estimated;
        }
    });
    let count_later = (!needs_count).then_some(messages);
    let Some((size, _)) = context else {
        return Ok(Admitted {
            prompt,
            cut_from: None,
            count_later,
        });
    };
    let cut_from = fit(spec, prompt, size)?;
    Ok(Admitted {
        prompt,
        cut_from,
        count_later,
    })
}

/// Counts the prompt of `pid`, admitted on a bound, with the backend's tokenizer, and records the
/// count unless the process has gone (spawned once the process is created, so the count never
/// delays its start).
pub fn count_later(kernel: &Arc<Kernel>, pid: Pid, messages: Vec<ChatMessage>) {
    // A burst of submits must not become a burst of counts in front of the server's generations:
    // past a few at a time the count is skipped, and `ps -l` keeps the estimate until the server
    // reports the prompt it read.
    let Ok(permit) = LATER_COUNTS.try_acquire() else {
        return;
    };
    let kernel = kernel.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let backend = kernel.backend();
        let counted = tokio::time::timeout(ASK_TIMEOUT, backend.count_tokens(&messages)).await;
        if let Ok(Some(tokens)) = counted {
            kernel.update(|s| s.counted(pid, tokens));
        }
    });
}

/// Counts made after creation at once, at most (each is two small requests to the server).
static LATER_COUNTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Tokens a chat template may add to a conversation whatever its text: role markers, and a default
/// system prompt some templates put in (SmolLM2's and Llama 3's are a few dozen tokens).
const TEMPLATE_TOKENS_BOUND: usize = 256;
/// Tokens a template may add around each message.
const TEMPLATE_TOKENS_PER_MESSAGE_BOUND: usize = 16;

/// Whether `messages` and an answer of `allowance` tokens fit a `size`-token slot whatever the
/// tokenizer: a byte-level tokenizer makes at most one token of each byte, so bytes plus what a
/// template adds bound the prompt from above.
fn surely_fits(messages: &[ChatMessage], allowance: u32, size: u32) -> bool {
    let bound: usize = TEMPLATE_TOKENS_BOUND
        + messages
            .iter()
            .map(|m| m.content.len() + TEMPLATE_TOKENS_PER_MESSAGE_BOUND)
            .sum::<usize>();
    bound.saturating_add(allowance as usize) <= size as usize
}

/// Refuses a prompt of `prompt` tokens that leaves no room in a `size`-token slot, or cuts the
/// allowance to the room left; returns the allowance asked for when it was cut. A spawned child
/// is fitted by this too (`crate::kernel::state`'s `syscalls`).
pub(crate) fn fit(spec: &mut Spec, prompt: TokenCount, size: u32) -> Result<Option<u32>, Failure> {
    let about = if prompt.estimated { "about " } else { "" };
    if prompt.tokens >= size {
        return Err(Failure::new(
            FailureKind::OutOfMemory,
            format!(
                "the prompt is {about}{} tokens; a slot holds {size}",
                prompt.tokens
            ),
        ));
    }
    let room = size - prompt.tokens;
    if spec.allowance <= room {
        return Ok(None);
    }
    let asked = spec.allowance;
    spec.allowance = room;
    Ok(Some(asked))
}

/// The note of a process whose allowance admission cut.
pub fn cut_note(asked: u32, allowance: u32, size: Option<u32>) -> String {
    match size {
        Some(size) => {
            format!("token allowance cut from {asked} to {allowance} to fit a {size}-token slot")
        }
        None => format!("token allowance cut from {asked} to {allowance} to fit the context"),
    }
}

fn prompt_messages(spec: &Spec) -> Vec<ChatMessage> {
    let system = spec.system.iter().map(|s| ChatMessage {
        role: Role::System,
        content: s.clone(),
    });
    let user = ChatMessage {
        role: Role::User,
        content: spec.prompt.clone(),
    };
    system.chain([user]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ProcessType;

    fn spec(allowance: u32) -> Spec {
        Spec {
            uid: 1,
            process_type: ProcessType::User,
            system: None,
            prompt: "p".into(),
            allowance,
        }
    }

    fn counted(tokens: u32) -> TokenCount {
        TokenCount {
            tokens,
            estimated: false,
        }
    }

    fn user(content: &str) -> Vec<ChatMessage> {
        vec![ChatMessage {
            role: Role::User,
            content: content.into(),
        }]
    }

    #[test]
    fn only_a_prompt_whose_bytes_leave_room_for_the_answer_surely_fits() {
        let question = user("Name a colour.");
        assert!(surely_fits(&question, 4, 2048));
        assert!(surely_fits(&question, 384, 2048));
        // The answer's allowance, the template and each byte as a token must all fit.
        assert!(!surely_fits(&question, 2000, 2048));
        assert!(!surely_fits(&user(&"x".repeat(1800)), 4, 2048));
    }

    #[test]
    fn a_prompt_that_fills_the_slot_is_refused_as_out_of_memory() {
        let err = fit(&mut spec(10), counted(2048), 2048).unwrap_err();
        assert_eq!(err.kind, FailureKind::OutOfMemory);
        assert_eq!(err.message, "the prompt is 2048 tokens; a slot holds 2048");
        let estimated = TokenCount {
            tokens: 3000,
            estimated: true,
        };
        let err = fit(&mut spec(10), estimated, 2048).unwrap_err();
        assert_eq!(
            err.message,
            "the prompt is about 3000 tokens; a slot holds 2048"
        );
    }

    #[test]
    fn an_allowance_past_the_context_is_cut_to_the_room_left() {
        let mut s = spec(4000);
        assert_eq!(fit(&mut s, counted(48), 2048), Ok(Some(4000)));
        assert_eq!(s.allowance, 2000);
        let mut s = spec(100);
        assert_eq!(fit(&mut s, counted(48), 2048), Ok(None));
        assert_eq!(s.allowance, 100);
    }
}
