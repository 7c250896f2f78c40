//! The shell's connection to the kernel: connect, exchange hellos, and send requests. Errors come back
//! in words a user can act on: where the shell looked for the kernel and how to start it. Before
//! sending anything the shell checks who serves the socket (SO_PEERCRED): its own user, root, or the
//! user named by `$LLMSH_KERNEL_USER` (a shared kernel), never an impostor in a shared directory.

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
    #[error(
        "refusing the kernel at {path}: it runs as {kernel}, not as you (uid {me}) or root, and \
         could be an impostor; if it is a shared kernel you trust, set {TRUSTED_KERNEL_USER_VAR}={kernel_user}"
    )]
    Untrusted {
        path: PathBuf,
        kernel: String,
        kernel_user: String,
        me: u32,
    },
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

/// The environment variable naming a user (name or uid) whose kernel llmsh trusts besides its own
/// user and root: the user a shared kernel runs as.
pub const TRUSTED_KERNEL_USER_VAR: &str = "LLMSH_KERNEL_USER";

/// Whether a kernel running as `kernel_uid` may be talked to by `me`: our own, root's, or the one
/// `trusted` (the value of [`TRUSTED_KERNEL_USER_VAR`], a user name or uid) names.
pub fn trusts_kernel(kernel_uid: u32, me: u32, trusted: Option<&str>) -> bool {
    if kernel_uid == me || kernel_uid == 0 {
        return true;
    }
    let Some(trusted) = trusted.map(str::trim).filter(|t| !t.is_empty()) else {
        return false;
    };
    match trusted.parse::<u32>() {
        Ok(uid) => uid == kernel_uid,
        Err(_) => nix::unistd::User::from_name(trusted)
            .ok()
            .flatten()
            .is_some_and(|u| u.uid.as_raw() == kernel_uid),
    }
}

/// Checks with SO_PEERCRED who serves the socket before a word is sent: a socket in a shared
/// directory could be anyone's, and prompts are private.
fn check_kernel_owner(stream: &UnixStream, path: &Path) -> Result<(), ClientError> {
    let cred = stream.peer_cred().map_err(|e| ClientError::NotRunning {
        path: path.to_path_buf(),
        reason: format!("cannot tell who serves the socket: {e}"),
    })?;
    let me = nix::unistd::getuid().as_raw();
    let trusted = std::env::var(TRUSTED_KERNEL_USER_VAR).ok();
    if trusts_kernel(cred.uid(), me, trusted.as_deref()) {
        return Ok(());
    }
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(cred.uid()))
        .ok()
        .flatten()
        .map(|u| u.name);
    Err(ClientError::Untrusted {
        path: path.to_path_buf(),
        kernel: match &name {
            Some(n) => format!("uid {} ({n})", cred.uid()),
            None => format!("uid {}", cred.uid()),
        },
        kernel_user: name.unwrap_or_else(|| cred.uid().to_string()),
        me,
    })
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
        check_kernel_owner(&stream, path)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_is_trusted_as_ourselves_root_or_the_named_user() {
        assert!(trusts_kernel(1000, 1000, None));
        assert!(trusts_kernel(0, 1000, None));
        assert!(!trusts_kernel(1001, 1000, None));
        assert!(!trusts_kernel(1001, 1000, Some("")));
        assert!(trusts_kernel(1001, 1000, Some("1001")));
        assert!(!trusts_kernel(1001, 1000, Some("1002")));
        assert!(
            trusts_kernel(65534, 1000, Some("nobody"))
                || nix::unistd::User::from_name("nobody")
                    .ok()
                    .flatten()
                    .is_none()
        );
        assert!(!trusts_kernel(65533, 1000, Some("nobody")));
    }
}
