//! systemd's readiness protocol (sd_notify): datagrams like `READY=1` or `STATUS=...` to the socket in
//! `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace). Without the variable it does nothing.

use std::os::unix::net::UnixDatagram;

/// Sends one notification; returns whether it was sent.
pub fn notify(message: &str) -> bool {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return false;
    };
    let target = target.to_string_lossy().into_owned();
    let sent = match target.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|addr| socket.send_to_addr(message.as_bytes(), &addr))
        }
        None => socket.send_to(message.as_bytes(), &target),
    };
    sent.is_ok()
}
