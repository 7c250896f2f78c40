//! The Unix socket's listener: each caller's credentials are read at accept (SO_PEERCRED) and, for a
//! caller the kernel admits, a connection slot is taken from the same caps as `llmsh`'s connections
//! (`max_connections`, `max_connections_per_uid`), held as long as the HTTP connection is open. A
//! caller refused either way still gets an HTTP answer saying why ([`super::door::identify`]).

use crate::kernel::Kernel;
use crate::kernel::admission::{Caller, SlotGuard};
use axum::serve::Listener;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};

/// Who connected, as the listener found them.
#[derive(Clone, Debug)]
pub struct Visitor {
    /// `None` when the credentials could not be read.
    pub caller: Option<Caller>,
    /// Why no connection slot was left for an admitted caller.
    pub no_slot: Option<String>,
}

/// The Unix socket's listener.
pub struct PeerListener {
    pub(super) listener: UnixListener,
    pub(super) kernel: Arc<Kernel>,
}

/// An accepted connection with its slot, given back when the connection closes.
pub struct Admitted {
    stream: UnixStream,
    _slot: Option<SlotGuard>,
}

impl Listener for PeerListener {
    type Io = Admitted;
    type Addr = Visitor;

    async fn accept(&mut self) -> (Admitted, Visitor) {
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => return self.admit(stream),
                Err(e) => {
                    // Out of file descriptors and the like: give the system a moment.
                    tracing::warn!("HTTP accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Visitor> {
        Ok(Visitor {
            caller: None,
            no_slot: None,
        })
    }
}

impl PeerListener {
    fn admit(&self, stream: UnixStream) -> (Admitted, Visitor) {
        let caller = stream.peer_cred().ok().map(|cred| Caller {
            uid: cred.uid(),
            gid: cred.gid(),
            pid: cred.pid(),
        });
        let mut visitor = Visitor {
            caller,
            no_slot: None,
        };
        // Only an admitted caller takes a slot, so others cannot use the slots up.
        let slot = match caller.filter(|c| self.kernel.admission.admits(*c)) {
            Some(c) => {
                let (total, per_uid) = self
                    .kernel
                    .read(|s| (s.config.max_connections, s.config.max_connections_per_uid));
                match self.kernel.connections.take(c.uid, total, per_uid) {
                    Ok(slot) => Some(slot),
                    Err(no_slot) => {
                        visitor.no_slot = Some(no_slot.to_string());
                        None
                    }
                }
            }
            None => None,
        };
        let admitted = Admitted {
            stream,
            _slot: slot,
        };
        (admitted, visitor)
    }
}

impl AsyncRead for Admitted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
