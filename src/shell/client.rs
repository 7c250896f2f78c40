//! The shell's connection to the kernel: connect, exchange hellos, and send requests. Errors come back
//! in words a user can act on: where the shell looked for the kernel and how to start it.

use crate::proto::{
    CodecError, Connection, Failure, FailureKind, Hello, PROTOCOL_VERSION, Reply, Request, Response,
};
use std::path::{Path, PathBuf};
use tokio::net::UnixStream;

/// What can go wrong talking to the kernel.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot connect to the kernel at {path}: {reason}\n\
         is it running? start it with `llmkernel` or `systemctl --user start llmkernel.socket`"
    )]
    NotRunning { path: PathBuf, reason: String },
    #[error("{0}")]
    Kernel(Failure),
    #[error("lost the connection to the kernel: {0}")]
    Protocol(#[from] CodecError),
    #[error("the kernel closed the connection")]
    Closed,
    #[error("the kernel sent an unexpected reply: {0}")]
    Unexpected(String),
}

impl ClientError {
    /// The kernel's failure kind, if the kernel answered with one.
    pub fn kind(&self) -> Option<FailureKind> {
        match self {
            ClientError::Kernel(f) => Some(f.kind),
            _ => None,
        }
    }

    pub fn unexpected(response: &Response) -> ClientError {
        ClientError::Unexpected(format!("{response:?}").chars().take(120).collect())
    }
}

/// One connection to the kernel.
pub struct Client {
    conn: Connection<UnixStream>,
}

impl Client {
    /// Connects and exchanges hellos.
    pub async fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| ClientError::NotRunning {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        let mut client = Client {
            conn: Connection::new(stream),
        };
        let hello = Hello {
            protocol_version: PROTOCOL_VERSION,
            peer: format!("llmsh {}", env!("CARGO_PKG_VERSION")),
        };
        // A kernel that refuses us (permissions, too many connections) answers before reading our
        // hello and closes; the write may then fail, but its reply says why.
        let sent = client.send(Request::Hello(hello)).await;
        match (sent, client.recv().await) {
            (_, Ok(Response::Hello(_))) => Ok(client),
            (_, Err(e @ ClientError::Kernel(_))) | (Ok(()), Err(e)) | (Err(e), Err(_)) => Err(e),
            (_, Ok(other)) => Err(ClientError::unexpected(&other)),
        }
    }

    /// Sends a request without waiting for the reply (for streams).
    pub async fn send(&mut self, request: Request) -> Result<(), ClientError> {
        Ok(self.conn.write(&request).await?)
    }

    /// Reads the next reply.
    pub async fn recv(&mut self) -> Result<Response, ClientError> {
        match self.conn.read::<Reply>().await? {
            Some(Ok(response)) => Ok(response),
            Some(Err(failure)) => Err(ClientError::Kernel(failure)),
            None => Err(ClientError::Closed),
        }
    }

    /// Sends a request and reads its reply.
    pub async fn call(&mut self, request: Request) -> Result<Response, ClientError> {
        self.send(request).await?;
        self.recv().await
    }
}
