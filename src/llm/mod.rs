//! Backend clients: how the kernel talks to the LLM server that owns the generation slots. The
//! OpenAI-compatible streaming chat-completions client comes first ([`Backend`]); backend-specific
//! extras (llama.cpp slot pinning, vLLM priorities) sit beside it and switch on by what the server is.

mod bounded;
mod choice;
mod continuation;
mod error;
pub mod event_stream;
mod kind;
mod llamacpp;
mod message_parts;
mod openai;
mod sse;
mod token_stream;

pub use choice::{
    AssembledChoice, ChoiceDelta, ToolCall, ToolCallDelta, assemble, has_structured_parts,
    render_call,
};
pub use continuation::EchoFilter;
pub use error::BackendError;
pub use kind::BackendKind;
pub(crate) use kind::{llamacpp_props, root_url};
pub use llamacpp::SlotFile;
pub use message_parts::{MESSAGE_PARTS_KEY, message_parts};
pub use openai::{Backend, BackendSettings, Generation, HEALTH_TIMEOUT};
pub use sse::{ChunkError, StreamEvent, parse_chunk, parse_structured};
pub use token_stream::TokenStream;
