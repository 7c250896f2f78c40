//! The socket server: accepts connections, checks who is calling (SO_PEERCRED) before reading a byte,
//! then takes a connection slot (capped in all and per uid, see [`super::admission`]), exchanges
//! hellos, and hands each request to its verb's handler. A bad frame gets an error reply where
//! possible and closes that connection only; the kernel and every other client carry on.
//!
//! No peer can hold the kernel's resources for long: every frame it sends must be complete within
//! `stall_timeout` of its first byte, every reply must be taken within `idle_timeout` (as long as a
//! connection may sit idle), and large frames are buffered only within a kernel-wide byte budget
//! ([`FRAME_BUDGET_BYTES`]).

use super::Kernel;
use super::admission::Caller;
use super::verbs;
use crate::proto::{
    CodecError, Connection, Failure, FailureKind, HelloReply, PROTOCOL_VERSION, ReadLimits, Reply,
    Request, Response,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};

/// A connection as the kernel sees it.
pub type Conn = Connection<UnixStream>;

/// Who is on the other end of a connection.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
}

/// Memory all connections together may hold in half-read large frames: eight frames at the limit.
/// A peer waiting for budget is not read from, so its frame stays in its own socket buffer; the
/// stall limit bounds how long any frame holds its share.
pub const FRAME_BUDGET_BYTES: usize = 8 * crate::proto::MAX_FRAME_BYTES;

/// Accepts connections until shutdown. Each connection's task checks the caller's credentials
/// first, and only then takes a connection slot.
pub async fn serve(kernel: &Arc<Kernel>, listener: UnixListener) {
    loop {
        let accepted = tokio::select! {
            _ = kernel.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                let kernel = Arc::clone(kernel);
                kernel
                    .tracker
                    .clone()
                    .spawn(async move { connection(kernel, stream).await });
            }
            Err(e) => {
                // Out of file descriptors and the like: say so, and give the system a moment rather
                // than spinning on the same error.
                tracing::warn!("accept failed: {e}");
                tokio::select! {
                    _ = kernel.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    }
}

/// Writes one error reply and closes, without decoding anything from the peer. What the peer sent
/// meanwhile (its hello) is drained first, for a bounded time and size: closing a Unix socket with
/// unread data would reset the connection and the peer might never see the reply.
async fn refuse(stream: UnixStream, kind: FailureKind, message: &str) {
    use tokio::io::AsyncReadExt;
    let mut conn = Connection::new(stream);
    let reply: Reply = Err(Failure::new(kind, message));
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.write(&reply)).await;
    let mut stream = conn.into_inner();
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let drain = async {
        let mut left = 64 * 1024;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left -= n.min(left),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

async fn connection(kernel: Arc<Kernel>, stream: UnixStream) {
    let Ok(cred) = stream.peer_cred() else { return };
    let caller = Caller {
        uid: cred.uid(),
        gid: cred.gid(),
        pid: cred.pid(),
    };
    if !kernel.admission.admits(caller) {
        tracing::warn!(
            uid = caller.uid,
            "refused a connection from a user who may not use this kernel"
        );
        let message = format!(
            "permission denied: uid {} may not use this kernel",
            caller.uid
        );
        return refuse(stream, FailureKind::PermissionDenied, &message).await;
    }
    // The slot is taken only now, so callers who may not connect cannot use up the slots.
    let (max_total, max_per_uid, stall, idle) = kernel.read(|s| {
        let c = &s.config;
        (
            c.max_connections,
            c.max_connections_per_uid,
            c.stall_timeout,
            c.idle_timeout,
        )
    });
    let _slot = match kernel.connections.take(caller.uid, max_total, max_per_uid) {
        Ok(slot) => slot,
        Err(no_slot) => {
            tracing::debug!(uid = caller.uid, "refused a connection: {no_slot}");
            return refuse(stream, FailureKind::Unavailable, &no_slot.to_string()).await;
        }
    };
    let peer = Peer {
        uid: caller.uid,
        pid: caller.pid,
    };
    let limits = ReadLimits {
        budget: kernel.frame_budget.clone(),
        stall,
    };
    let mut conn = Connection::with_limits(stream, limits);
    // A reply may wait for its reader as long as a connection may sit idle: a person paging through
    // `llmsh … | less` is a slow reader, not an attack, and the per-uid cap already keeps stuck
    // readers from locking others out.
    conn.set_write_timeout(Some(idle));
    match session(&kernel, peer, &mut conn).await {
        Ok(()) => {}
        // A peer that does not read gets nothing more; one that broke the connection neither.
        Err(e @ (CodecError::WriteStalled { .. } | CodecError::Io(_))) => {
            tracing::debug!(uid = peer.uid, "connection dropped: {e}");
        }
        Err(e) => {
            tracing::debug!(uid = peer.uid, "connection ended: {e}");
            let _ = conn
                .write::<Reply>(&Err(Failure::new(FailureKind::BadFrame, e.to_string())))
                .await;
        }
    }
}

async fn session(kernel: &Arc<Kernel>, peer: Peer, conn: &mut Conn) -> Result<(), CodecError> {
    let (handshake_timeout, idle_timeout) =
        kernel.read(|s| (s.config.handshake_timeout, s.config.idle_timeout));
    let hello = match tokio::time::timeout(handshake_timeout, conn.read::<Request>()).await {
        Err(_) | Ok(Ok(None)) => return Ok(()),
        Ok(result) => result?,
    };
    match hello {
        Some(Request::Hello(h)) if h.protocol_version == PROTOCOL_VERSION => {
            let reply = HelloReply {
                protocol_version: PROTOCOL_VERSION,
                kernel_version: env!("CARGO_PKG_VERSION").to_string(),
            };
            conn.write::<Reply>(&Ok(Response::Hello(reply))).await?;
        }
        Some(Request::Hello(h)) => {
            let message = format!(
                "protocol version mismatch: client speaks {}, kernel {} speaks {}; restart the older of the two \
                 (the kernel: `systemctl --user restart llmkernel`)",
                h.protocol_version,
                env!("CARGO_PKG_VERSION"),
                PROTOCOL_VERSION
            );
            return conn
                .write::<Reply>(&Err(Failure::new(FailureKind::VersionMismatch, message)))
                .await;
        }
        Some(_) => {
            let failure = Failure::new(FailureKind::BadRequest, "the first frame must be a hello");
            return conn.write::<Reply>(&Err(failure)).await;
        }
        None => return Ok(()),
    }
    loop {
        let next = tokio::select! {
            _ = kernel.shutdown.cancelled() => return Ok(()),
            next = tokio::time::timeout(idle_timeout, conn.read::<Request>()) => next,
        };
        match next {
            Err(_) | Ok(Ok(None)) => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(Some(request))) => verbs::handle(kernel, peer, request, conn).await?,
        }
    }
}
