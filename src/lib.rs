//! llmkernel: an operating system whose processes are LLM generations.
//!
//! The daemon (`llmkernel`, [`kernel`]) owns the generation slots of an OpenAI-compatible LLM server
//! ([`llm`]) and time-shares them between processes with a preemptive scheduler; the shell (`llmsh`,
//! [`shell`]) gives job control over them. They talk over a Unix socket with the protocol in [`proto`].
//! Other programs reach the same processes through the OpenAI-compatible front door ([`http`]): HTTP
//! on a socket beside the kernel's, whose handlers call the same kernel entry points as the verbs.
//!
//! # The wire protocol, step by step
//!
//! 1. The client connects to the kernel's Unix stream socket. Before reading a byte the kernel checks
//!    the peer's credentials (SO_PEERCRED): by default only its own user and root are served.
//! 2. Every frame is a 4-byte big-endian length followed by that many bytes of payload, at most
//!    [`proto::MAX_FRAME_BYTES`]. A larger length closes the connection with an error reply.
//! 3. The payload is one message in bincode 2 (`config::standard()`, serde encoding) decoded with a byte
//!    limit equal to the frame limit. Trailing bytes after the message are an error.
//! 4. The first frame each way is a hello carrying [`proto::PROTOCOL_VERSION`]: the client sends
//!    [`proto::Request::Hello`], the kernel answers [`proto::Response::Hello`] or, on a mismatch, a
//!    [`proto::Failure`] naming both versions, and closes.
//! 5. Then the client sends requests one at a time. Each is answered by one [`proto::Reply`]
//!    (`Result<Response, Failure>`: errors are normal replies), except the streaming ones: `Submit` (and
//!    `SubmitAsk`, which adds a model or a follow-up, and `SubmitLinked`, which adds a pipe's input
//!    and a process group) with
//!    `attach` and `Output` with `follow` answer with the output so far, each new piece, `Stopped` /
//!    `Continued` when a signal changes the process, `Waiting` (at most about once a second) when why
//!    it waits for a slot changes, and `Exited` last; `Wait` answers when the process
//!    ends; `Subscribe` answers with `Event` frames, a snapshot first, until the client speaks or
//!    closes (a subscriber too slow to read loses events and is told how many). An answer larger than a frame comes in pieces: `Output` without `follow` as `OutputPart`
//!    frames and the last piece as `Output`, `List` as `ProcessesPart` pages and the last as
//!    `Processes` (a short answer is the one frame an older client expects). A client that wants to
//!    act while it follows a stream opens a second connection.
//! 6. A frame that cannot be read (oversized, torn, undecodable) gets an error reply where possible and
//!    closes that connection; the kernel and its other clients carry on.
//!
//! # Compatibility
//!
//! Enum variants are append-only: a new verb or reply is a new last variant, never a reordering, and
//! `Hello` stays variant 0 with the version first so that any two versions can recognise each other.
//! Any change that an older peer would misread bumps [`proto::PROTOCOL_VERSION`]; golden-byte tests pin
//! a sample of every message so such a change cannot happen by accident. A client that uses a newer
//! verb falls back where it can: `query` sends `Submit` unless `--model` needs `SubmitAsk` (or
//! `--continue`, a pipe or a redirection needs `SubmitLinked`), and `ps -l` shows the table without
//! origins (or parents and groups) when the kernel answers `Origins` (or `Links`) with an error.

pub mod config;
pub mod http;
pub mod kernel;
pub mod llm;
pub mod proto;
pub mod shell;
