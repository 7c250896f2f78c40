//! Who is calling the front door. On the Unix socket the caller's credentials (SO_PEERCRED) are
//! taken at accept and admitted by the kernel's own rule ([`crate::kernel::admission`]), so a user
//! gets the same identity and rights as with `llmsh`. On TCP the caller names itself with a bearer
//! key from the keys file ([`super::keys`]), or, from the dashboard's own page, with the same key
//! as its login cookie ([`super::dashboard::login`]); without a keys file (loopback only) every TCP caller is
//! the unprivileged `nobody`. A TCP request's `Host` must name the listener itself (`localhost`,
//! a loopback address, or the configured address, with its port), so a web page whose DNS name was
//! rebound to 127.0.0.1 cannot reach it.

use super::Door;
use super::admitted::{PeerListener, Visitor};
use super::dashboard::login;
use super::error::ApiError;
use super::keys::Keys;
use crate::config::HttpConfig;
use crate::kernel::Kernel;
use crate::kernel::listener::{self, SocketGuard};
use crate::kernel::server::Peer;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::IncomingStream;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::{TcpListener, UnixListener};

/// The uid of TCP callers when no keys file names them: `nobody`, who may not raise priorities.
pub const ANONYMOUS_UID: u32 = 65534;

/// Why the front door could not open.
#[derive(Debug, thiserror::Error)]
pub enum DoorError {
    #[error("HTTP front door: {0}")]
    Socket(#[from] listener::ListenError),
    #[error("HTTP front door: cannot listen on {addr}: {source}")]
    Tcp {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "HTTP front door: refusing to listen on {0} without `keys_file`: only a loopback address \
         may be served without keys"
    )]
    OpenWithoutKeys(SocketAddr),
    #[error("HTTP front door: {0}")]
    Keys(#[from] super::keys::KeysError),
}

/// How a connection reached the door (axum's connect info).
#[derive(Clone, Debug)]
pub enum Origin {
    /// The Unix socket, with the caller's credentials when the kernel could read them.
    Unix(Visitor),
    Tcp(SocketAddr),
}

impl Connected<IncomingStream<'_, PeerListener>> for Origin {
    fn connect_info(stream: IncomingStream<'_, PeerListener>) -> Origin {
        Origin::Unix(stream.remote_addr().clone())
    }
}

impl Connected<IncomingStream<'_, TcpListener>> for Origin {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Origin {
        Origin::Tcp(*stream.remote_addr())
    }
}

/// How TCP callers are checked.
pub struct TcpRules {
    pub(super) keys: Option<Keys>,
    /// Host names a request may carry (without the port).
    hosts: Vec<String>,
    port: u16,
}

impl TcpRules {
    /// Whether `host` (a `Host` header) names this listener.
    pub(super) fn host_allowed(&self, host: &str) -> bool {
        let (name, port) = match host.rsplit_once(':') {
            Some((name, port)) if !name.ends_with(':') && !port.contains(']') => (name, Some(port)),
            _ => (host, None),
        };
        let port_ok = port.is_none_or(|p| p.parse::<u16>() == Ok(self.port));
        port_ok && self.hosts.iter().any(|h| h.eq_ignore_ascii_case(name))
    }
}

/// The front door's socket for a kernel socket: `llmkernel.sock` → `llmkernel-http.sock` in the
/// same directory, so kernels on differently named sockets in one directory do not collide.
pub fn socket_path(kernel_socket: &Path) -> std::path::PathBuf {
    let stem = kernel_socket
        .file_stem()
        .map_or("llmkernel".into(), |s| s.to_string_lossy().into_owned());
    kernel_socket.with_file_name(format!("{stem}{}", super::SOCKET_SUFFIX))
}

/// The front door's listeners, bound at the kernel's start.
pub struct Listeners {
    unix: Option<(UnixListener, SocketGuard)>,
    tcp: Option<(TcpListener, Arc<TcpRules>)>,
}

/// Binds the Unix socket beside `kernel_socket` (when enabled) and the TCP address (when
/// configured). A non-loopback address without a keys file is refused here, before anything runs.
pub async fn bind(
    config: &HttpConfig,
    kernel_socket: Option<&Path>,
) -> Result<Listeners, DoorError> {
    let inherited = listener::take_http_from_systemd().filter(|_| config.enabled);
    let unix = match (inherited, kernel_socket.map(socket_path)) {
        // Socket-activated: systemd owns the socket (and removes it).
        (Some(std_listener), _) => {
            let _ = std_listener.set_nonblocking(true);
            let listener = UnixListener::from_std(std_listener).map_err(|source| {
                let path = "the front door's socket from systemd".into();
                listener::ListenError::Bind { path, source }
            })?;
            Some((listener, listener::systemd_guard()))
        }
        (None, Some(path)) if config.enabled => {
            let (std_listener, guard) = listener::bind(&path)?;
            let _ = std_listener.set_nonblocking(true);
            let listener = UnixListener::from_std(std_listener)
                .map_err(|source| listener::ListenError::Bind { path, source })?;
            Some((listener, guard))
        }
        _ => None,
    };
    let tcp = match config.listen {
        None => None,
        Some(addr) => {
            if !addr.ip().is_loopback() && config.keys_file.is_none() {
                return Err(DoorError::OpenWithoutKeys(addr));
            }
            let keys = match &config.keys_file {
                Some(path) => Some(Keys::load(path)?),
                None => None,
            };
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| DoorError::Tcp { addr, source })?;
            let bound = listener.local_addr().unwrap_or(addr);
            let mut hosts = vec!["localhost".to_string(), "127.0.0.1".into(), "[::1]".into()];
            hosts.push(match bound.ip() {
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            });
            let rules = TcpRules {
                keys,
                hosts,
                port: bound.port(),
            };
            Some((listener, Arc::new(rules)))
        }
    };
    Ok(Listeners { unix, tcp })
}

impl Listeners {
    /// The TCP address actually bound (port 0 picks one), if any.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }
}

/// Serves the front door until the kernel shuts down.
pub async fn serve(kernel: Arc<Kernel>, listeners: Listeners) {
    let Listeners { unix, tcp } = listeners;
    let shutdown = kernel.shutdown.clone();
    let mut tasks = tokio::task::JoinSet::new();
    if let Some((listener, guard)) = unix {
        let app = super::router(Door {
            kernel: Arc::clone(&kernel),
            tcp: None,
        });
        let shutdown = shutdown.clone();
        let owner = Arc::clone(&kernel);
        tasks.spawn(async move {
            let _guard = guard;
            let service = app.into_make_service_with_connect_info::<Origin>();
            let listener = PeerListener {
                listener,
                kernel: owner,
            };
            let served = axum::serve(listener, service)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!("HTTP front door (socket) stopped: {e}");
            }
        });
    }
    if let Some((listener, rules)) = tcp {
        let app = super::router(Door {
            kernel: Arc::clone(&kernel),
            tcp: Some(rules),
        });
        tasks.spawn(async move {
            let service = app.into_make_service_with_connect_info::<Origin>();
            let served = axum::serve(listener, service)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!("HTTP front door (TCP) stopped: {e}");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Identifies the caller of every request (a [`Peer`] in the request's extensions), or answers
/// for it: 403 for a user the kernel does not admit or a foreign `Host`, 401 without a valid key.
pub async fn identify(
    State(door): State<Door>,
    ConnectInfo(origin): ConnectInfo<Origin>,
    mut request: Request,
    next: Next,
) -> Response {
    match peer_of(&door, origin, request.method(), request.headers()) {
        Ok(peer) => {
            request.extensions_mut().insert(peer);
            next.run(request).await
        }
        Err(e) => login::or_form(e, request.method(), request.uri().path()),
    }
}

fn peer_of(
    door: &Door,
    origin: Origin,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Peer, ApiError> {
    match origin {
        Origin::Unix(Visitor {
            caller: Some(caller),
            no_slot,
        }) if door.kernel.admission.admits(caller) => match no_slot {
            None => Ok(Peer {
                uid: caller.uid,
                pid: caller.pid,
            }),
            Some(why) => {
                let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", why);
                e.retry_after = Some(1);
                Err(e)
            }
        },
        Origin::Unix(Visitor { caller, .. }) => {
            let who = caller.map_or("an unknown user".into(), |c| format!("uid {}", c.uid));
            Err(ApiError::forbidden(format!(
                "permission denied: {who} may not use this kernel"
            )))
        }
        Origin::Tcp(_) => {
            let Some(rules) = door.tcp.as_ref() else {
                return Err(ApiError::forbidden("TCP callers are not served here"));
            };
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
            if !host.is_some_and(|h| rules.host_allowed(h)) {
                return Err(ApiError::forbidden(format!(
                    "the Host header {host:?} does not name this server; use localhost or its address"
                )));
            }
            let Some(keys) = &rules.keys else {
                return Ok(Peer {
                    uid: ANONYMOUS_UID,
                    pid: None,
                });
            };
            let presented = headers
                .get(header::AUTHORIZATION)
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.split_once(' '))
                // The scheme is case-insensitive (RFC 9110).
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, key)| key.to_string());
            // A browser presents the key as the dashboard's cookie, from the dashboard alone.
            let presented = match presented {
                Some(key) => Some(key),
                None => login::cookie_key(headers)
                    .map(|key| {
                        login::check_origin(method, headers, |h| rules.host_allowed(h))
                            .map(|()| key)
                    })
                    .transpose()?,
            };
            match presented.and_then(|key| keys.uid_of(key.trim())) {
                Some(uid) => Ok(Peer { uid, pid: None }),
                None => Err(ApiError::unauthorized()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_front_door_sits_beside_the_kernel_socket_named_after_it() {
        let path = socket_path(Path::new("/run/user/1/llmkernel.sock"));
        assert_eq!(path, Path::new("/run/user/1/llmkernel-http.sock"));
        assert_eq!(
            socket_path(Path::new("/t/k2.sock")),
            Path::new("/t/k2-http.sock")
        );
    }

    #[test]
    fn only_hosts_naming_the_listener_with_its_port_are_allowed() {
        let rules = TcpRules {
            keys: None,
            hosts: vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()],
            port: 8080,
        };
        for (host, allowed) in [
            ("localhost:8080", true),
            ("127.0.0.1:8080", true),
            ("[::1]:8080", true),
            ("LOCALHOST", true),
            ("localhost:8081", false),
            ("evil.example:8080", false),
            ("127.0.0.1.evil.example:8080", false),
        ] {
            assert_eq!(rules.host_allowed(host), allowed, "{host}");
        }
    }
}
