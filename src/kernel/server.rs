//! The socket server: accepts connections, checks who is calling (SO_PEERCRED) before reading a byte,
//! exchanges hellos, and hands each request to its verb's handler. A bad frame gets an error reply
//! where possible and closes that connection only; the kernel and every other client carry on.

use super::Kernel;
use super::verbs;
use crate::proto::{
    CodecError, Connection, Failure, FailureKind, HelloReply, PROTOCOL_VERSION, Reply, Request,
    Response,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{UnixListener, UnixStream};

/// How long a new connection may take to say hello.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may sit between requests before the kernel closes it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// A connection as the kernel sees it.
pub type Conn = Connection<UnixStream>;

/// Who is on the other end of a connection.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
}

/// Accepts connections until shutdown.
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

fn admitted(kernel: &Kernel, stream: &UnixStream) -> Option<Peer> {
    let cred = stream.peer_cred().ok()?;
    let uid = cred.uid();
    (uid == 0 || uid == kernel.owner_uid).then_some(Peer {
        uid,
        pid: cred.pid(),
    })
}

async fn connection(kernel: Arc<Kernel>, stream: UnixStream) {
    let Some(peer) = admitted(&kernel, &stream) else {
        tracing::warn!("refused a connection from a peer that is not the kernel's user or root");
        return;
    };
    let mut conn = Connection::new(stream);
    if let Err(e) = session(&kernel, peer, &mut conn).await {
        tracing::debug!(uid = peer.uid, "connection ended: {e}");
        let _ = conn
            .write::<Reply>(&Err(Failure::new(FailureKind::BadFrame, e.to_string())))
            .await;
    }
}

async fn session(kernel: &Arc<Kernel>, peer: Peer, conn: &mut Conn) -> Result<(), CodecError> {
    let hello = match tokio::time::timeout(HANDSHAKE_TIMEOUT, conn.read::<Request>()).await {
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
            next = tokio::time::timeout(IDLE_TIMEOUT, conn.read::<Request>()) => next,
        };
        match next {
            Err(_) | Ok(Ok(None)) => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(Some(request))) => verbs::handle(kernel, peer, request, conn).await?,
        }
    }
}
