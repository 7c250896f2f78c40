//! The front door socket-activated: systemd's `llmkernel.socket` listens on both the kernel's socket
//! and the front door's, and hands both over (`LISTEN_FDS=2`, both named after the unit); the kernel
//! tells the front door's by its path and serves HTTP on it, binding nothing of its own.

use super::client::call;
use crate::support::fake_llm::{FakeConfig, FakeLlm, answer};
use crate::support::{KERNEL, run_shell};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Stdio;

/// Starts the kernel with `listeners` as fds 3, 4, … as systemd passes them: through `sh`, which
/// sets LISTEN_PID to its own pid and then becomes the kernel with `exec`.
fn spawn_activated(
    dir: &Path,
    backend: &str,
    listeners: &[&UnixListener],
) -> tokio::process::Child {
    use std::os::fd::AsRawFd;
    let fds: Vec<i32> = listeners.iter().map(|l| l.as_raw_fd()).collect();
    let names = vec!["llmkernel.socket"; fds.len()].join(":");
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "LISTEN_PID=$$ LISTEN_FDS={} LISTEN_FDNAMES={names} exec \"$0\" \"$@\"",
            fds.len()
        ))
        .arg(KERNEL)
        .arg("--backend")
        .arg(backend)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--socket")
        .arg(dir.join("unused.sock"))
        .env("XDG_CONFIG_HOME", dir)
        .env("XDG_RUNTIME_DIR", dir)
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    // SAFETY: between fork and exec this only calls fcntl and dup2, which are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            use nix::libc;
            // Out of the way first (a listener may already sit on 3 or 4), then into place; dup2
            // leaves the new descriptors open across exec.
            let mut high = Vec::with_capacity(fds.len());
            for fd in &fds {
                let moved = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 100);
                if moved < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                high.push(moved);
            }
            for (at, fd) in high.iter().enumerate() {
                if libc::dup2(*fd, 3 + at as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn().expect("spawn socket-activated llmkernel")
}

#[tokio::test]
async fn the_kernel_serves_http_on_the_front_door_socket_systemd_passes() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("llmkernel.sock");
    let http = dir.path().join("llmkernel-http.sock");
    let main_listener = UnixListener::bind(&socket).unwrap();
    let http_listener = UnixListener::bind(&http).unwrap();
    // The front door's first: the kernel goes by the path, not the place.
    let mut child = spawn_activated(dir.path(), &fake.url, &[&http_listener, &main_listener]);
    drop((main_listener, http_listener));
    // The request waits in the socket's backlog until the kernel accepts it: no readiness needed.
    let body = r#"{"messages":[{"role":"user","content":"[tokens=3] activated"}]}"#;
    let reply = call(&http, "POST", "/v1/chat/completions", &[], body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["choices"][0]["message"]["content"], answer(3));
    let run = run_shell(&socket, &["-c", "query \"[tokens=2] also here\""], None).await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(run.stdout, format!("{}\n", answer(2)));
    assert!(
        !dir.path().join("unused-http.sock").exists(),
        "the kernel bound a front door of its own"
    );
    let _ = child.start_kill();
    let _ = child.wait().await;
}
