//! Memory: a process's memory is its conversation in a slot's context window. This module knows how
//! big a slot's context is (the backend says, else `[backend] context`), counts a conversation in
//! tokens (the backend's own tokenizer where it has one, else an estimate labelled as such), admits
//! a new process only when its prompt fits ([`admission`]), and keeps swap: slot caches saved to disk
//! while their processes hold no slot ([`swap`]).
//!
//! What the kernel state keeps of it is [`Memory`] (one per kernel) and [`ProcessMemory`] (one per
//! process); the state's transitions update them.

pub mod admission;
pub mod affinity;
pub mod swap;
pub mod swap_record;

use crate::proto::Pid;

/// Where the context size of a slot comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContextSource {
    /// The backend said (llama-server's `/props`).
    Server,
    /// `[backend] context` in the config.
    Config,
}

impl ContextSource {
    pub fn name(self) -> &'static str {
        match self {
            ContextSource::Server => "server",
            ContextSource::Config => "config",
        }
    }
}

/// A number of tokens, counted by the backend or estimated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenCount {
    pub tokens: u32,
    pub estimated: bool,
}

/// Bytes of text per token in an estimate: English text with common BPE vocabularies runs 3.5 to 4.5.
const BYTES_PER_TOKEN: usize = 4;
/// Tokens a chat template adds around each message (role markers, separators), in an estimate.
const TEMPLATE_TOKENS_PER_MESSAGE: usize = 4;

/// An estimate of a conversation's tokens: its bytes over [`BYTES_PER_TOKEN`], plus the template's.
pub fn estimate_tokens<'a>(texts: impl IntoIterator<Item = &'a str>) -> TokenCount {
    let tokens: usize = texts
        .into_iter()
        .map(|t| t.len().div_ceil(BYTES_PER_TOKEN) + TEMPLATE_TOKENS_PER_MESSAGE)
        .sum();
    TokenCount {
        tokens: u32::try_from(tokens).unwrap_or(u32::MAX),
        estimated: true,
    }
}

/// The kernel's memory: the context one slot holds, how tokens are counted, what each slot's cache
/// holds, and swap.
#[derive(Debug, Default)]
pub struct Memory {
    /// Tokens one slot holds, once known, and where that comes from.
    pub context: Option<(u32, ContextSource)>,
    /// The backend's own tokenizer counted the last prompt admitted.
    pub server_tokenizer: bool,
    /// `cached[i]`: the process whose conversation slot `i`'s cache holds (the last to run there).
    pub cached: Vec<Option<Pid>>,
    /// `heads[i]`: the beginning of the last conversation slot `i` read, kept after its process
    /// ends, for [`affinity`].
    pub heads: Vec<String>,
    pub swap: swap::SwapSpace,
}

impl Memory {
    pub fn new(slots: u32, swap: swap::SwapSpace) -> Memory {
        Memory {
            cached: vec![None; slots as usize],
            heads: vec![String::new(); slots as usize],
            swap,
            ..Memory::default()
        }
    }

    /// Tokens one slot holds, when known.
    pub fn context_tokens(&self) -> Option<u32> {
        self.context.map(|(n, _)| n)
    }

    /// What `ps -l` and notes say when a process met the end of its context.
    pub fn context_full_note(&self) -> String {
        match self.context_tokens() {
            Some(n) => format!("context full: {n} tokens per slot"),
            None => "context full: the backend's slot ended the answer".to_string(),
        }
    }

    /// Forgets a process that has ended: no slot's cache is worth keeping for it.
    pub fn forget(&mut self, pid: Pid) {
        for cached in &mut self.cached {
            if *cached == Some(pid) {
                *cached = None;
            }
        }
        self.swap.discard(pid);
    }
}

/// What the kernel knows of one process's memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessMemory {
    /// Tokens of its prompt (system and user), as admitted.
    pub prompt: Option<TokenCount>,
    /// The allowance it asked for, when admission cut it to fit the context.
    pub cut_from: Option<u32>,
    /// The slot's context size at admission (for the note of a cut allowance).
    pub context_size: Option<u32>,
    /// Tokens a swap restore put in its slot, until the backend's answer says how many it found.
    pub restored: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_estimate_is_bytes_over_four_plus_the_template_and_says_so() {
        let n = estimate_tokens(["12345678", "1"]);
        assert_eq!(
            n,
            TokenCount {
                tokens: 2 + 4 + 1 + 4,
                estimated: true
            }
        );
    }

    #[test]
    fn the_context_full_note_names_the_slot_size_when_known() {
        let mut m = Memory::new(1, swap::SwapSpace::default());
        assert!(m.context_full_note().starts_with("context full"));
        m.context = Some((2048, ContextSource::Server));
        assert_eq!(m.context_full_note(), "context full: 2048 tokens per slot");
    }
}
