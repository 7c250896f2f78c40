//! The wire protocol between `llmkernel` and its clients: value types, messages, and the codec that
//! frames them. See the crate docs for the exchange step by step.

mod codec;
mod events;
mod messages;
mod pieces;
mod pipes;
mod types;

#[cfg(test)]
mod golden;

pub use codec::{
    CodecError, Connection, FrameBudget, INLINE_FRAME_BYTES, LENGTH_PREFIX_BYTES, MAX_FRAME_BYTES,
    ReadLimits, decode, encode,
};
pub use events::*;
pub use messages::*;
pub use pieces::pieces;
pub use pipes::*;
pub use types::*;
