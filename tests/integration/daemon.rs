//! The kernel as a service: `--daemon` readiness and pidfile, the systemd notify protocol (READY,
//! STATUS, WATCHDOG, EXTEND_TIMEOUT_USEC), socket activation from LISTEN_FDS, what a managed server
//! inherits, and the shipped unit files.

use crate::support::fake_llm::{FakeConfig, FakeLlm, ServerKind, answer};
use crate::support::systemd::ObservedKernel;
use crate::support::{KERNEL, STEP, TestKernel, run_shell};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

/// Kills a daemon (not our child) if a test ends early.
struct DaemonGuard(Option<i32>);

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

async fn run_daemon(dir: &Path, backend: &str, socket: &Path, pidfile: &Path) -> Output {
    tokio::process::Command::new(KERNEL)
        .arg("--daemon")
        .arg("--pidfile")
        .arg(pidfile)
        .arg("--socket")
        .arg(socket)
        .arg("--backend")
        .arg(backend)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env("XDG_CONFIG_HOME", dir)
        .env("XDG_RUNTIME_DIR", dir)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run llmkernel --daemon")
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// Waits until `cond` holds, checking every few milliseconds, or panics after [`STEP`].
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + STEP;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn daemon_parent_exits_once_the_daemon_serves_and_the_pidfile_lives_as_long_as_it() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("k.sock");
    let pidfile = dir.path().join("k.pid");
    let out = run_daemon(dir.path(), &fake.url, &socket, &pidfile).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .expect("pidfile written before the parent exits")
        .trim()
        .parse()
        .unwrap();
    let _guard = DaemonGuard(Some(pid));
    assert!(alive(pid));
    // No retry: the parent's exit means the socket already accepts.
    let run = run_shell(&socket, &["-c", "query hello"], None).await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(run.stdout, format!("{}\n", answer(10)));

    let second = run_daemon(dir.path(), &fake.url, &socket, &pidfile).await;
    assert_eq!(second.status.code(), Some(1), "{second:?}");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains(&format!("already running as pid {pid}")),
        "{err}"
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    until("the daemon to exit", || !alive(pid)).await;
    assert!(!pidfile.exists(), "pidfile removed on exit");
    assert!(!socket.exists(), "socket removed on exit");
}

#[tokio::test]
async fn daemon_that_cannot_start_makes_the_parent_fail_with_its_error() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let pidfile = k.dir.path().join("second.pid");
    let out = run_daemon(k.dir.path(), &fake.url, &k.socket, &pidfile).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another llmkernel is already serving"),
        "{err}"
    );
    until("the failed daemon's pidfile to go", || !pidfile.exists()).await;
    assert_eq!(k.sh("ps").await.status, 0, "the first kernel is untouched");
}

#[tokio::test]
async fn ready_then_status_lines_with_process_counts_reach_the_notify_socket() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 5000,
        delay: Duration::from_millis(10),
        ..Default::default()
    })
    .await;
    let mut k = ObservedKernel::start(&fake.url, "", &[], &[]).await;
    let ready = k.notify.messages[0].clone();
    assert_eq!(
        ready, "READY=1\nSTATUS=0 processes, 0 running, 0 waiting",
        "READY=1 comes with the first STATUS"
    );
    k.kernel.sh("query one &").await;
    k.kernel.sh("query two &").await;
    let status = k
        .notify
        .next_matching("a STATUS with both processes", |m| {
            m == "STATUS=2 processes, 1 running, 1 waiting"
        })
        .await;
    assert!(status.starts_with("STATUS="));
}

#[tokio::test]
async fn watchdog_pings_come_at_half_the_watchdog_timeout() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let mut k = ObservedKernel::start(&fake.url, "", &[], &[("WATCHDOG_USEC", "200000")]).await;
    for _ in 0..3 {
        k.notify.next_with_line("WATCHDOG=1").await;
    }
}

/// Starts the kernel with a listening socket already bound as fd 3, as systemd passes it: through
/// `sh`, which sets LISTEN_PID to its own pid and then becomes the kernel with `exec`.
fn spawn_socket_activated(
    dir: &Path,
    backend: &str,
    listener: &std::os::unix::net::UnixListener,
) -> tokio::process::Child {
    use std::os::fd::AsRawFd;
    let fd = listener.as_raw_fd();
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\"")
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
    // SAFETY: between fork and exec this only calls dup2 and fcntl, which are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            use nix::libc;
            if fd == 3 {
                let flags = libc::fcntl(3, libc::F_GETFD);
                libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().expect("spawn socket-activated llmkernel")
}

#[tokio::test]
async fn socket_activation_serves_the_socket_from_listen_fds_and_leaves_it_to_systemd() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("activated.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let mut child = spawn_socket_activated(dir.path(), &fake.url, &listener);
    drop(listener);
    // The connection waits in the socket's backlog until the kernel accepts it: no readiness needed.
    let run = run_shell(&socket, &["-c", "query activated"], None).await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(run.stdout, format!("{}\n", answer(10)));
    assert!(
        !dir.path().join("unused.sock").exists(),
        "--socket is not bound"
    );
    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(STEP, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(socket.exists(), "systemd's socket is systemd's to remove");
}

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[tokio::test]
async fn systemd_units_pass_systemd_analyze_verify() {
    let Ok(which) = std::process::Command::new("sh")
        .args(["-c", "command -v systemd-analyze"])
        .output()
    else {
        eprintln!("skipped: cannot run sh");
        return;
    };
    if !which.status.success() {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    }
    // The units run /usr/bin/llmkernel, where packages put it; verify them pointed at the built binary
    // the way packaging/install.sh points them at an install prefix.
    let home = tempfile::tempdir().unwrap();
    let runtime = home.path().join("run");
    std::fs::create_dir(&runtime).unwrap();
    let units = tempfile::tempdir().unwrap();
    for unit in ["llmkernel.socket", "llmkernel.service"] {
        let text = std::fs::read_to_string(repo_file(&format!("systemd/{unit}"))).unwrap();
        std::fs::write(
            units.path().join(unit),
            text.replace("/usr/bin/llmkernel", KERNEL),
        )
        .unwrap();
    }
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--user", "llmkernel.socket", "llmkernel.service"])
        .current_dir(units.path())
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.trim().is_empty(), "warnings: {stderr}");
}

#[tokio::test]
async fn a_pidfile_that_is_a_symbolic_link_is_refused_and_its_target_untouched() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("precious");
    std::fs::write(&target, "keep\n").unwrap();
    let pidfile = dir.path().join("k.pid");
    std::os::unix::fs::symlink(&target, &pidfile).unwrap();
    let out = run_daemon(dir.path(), &fake.url, &dir.path().join("k.sock"), &pidfile).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("k.pid: it is a symbolic link"), "{err}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep\n");
}

#[tokio::test]
async fn a_managed_server_gets_start_time_from_systemd_and_none_of_its_variables() {
    let fake = FakeLlm::start(FakeConfig {
        kind: ServerKind::LlamaCpp { slots: 1 },
        ..FakeConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("server.env");
    let script = format!(
        "env > {0}.tmp && mv {0}.tmp {0}; exec sleep 600",
        env_file.display()
    );
    let config = format!(
        "[backend]\nurl = \"{}\"\ncommand = [\"sh\", \"-c\", {script:?}]\n",
        fake.url
    );
    // Socket-activation variables meant for another process (LISTEN_PID is not the kernel's), which
    // the kernel therefore leaves in its environment.
    let systemd_env = [
        ("LISTEN_FDS", "1"),
        ("LISTEN_PID", "1"),
        ("LISTEN_FDNAMES", "llmkernel.socket"),
    ];
    let k = ObservedKernel::start(&fake.url, &config, &[], &systemd_env).await;
    let extend = k
        .notify
        .messages
        .iter()
        .position(|m| m.starts_with("EXTEND_TIMEOUT_USEC="));
    let ready = k
        .notify
        .messages
        .iter()
        .position(|m| m.starts_with("READY=1"));
    assert!(
        extend.is_some() && extend < ready,
        "more start time asked while the server loads: {:?}",
        k.notify.messages
    );
    until("the server to write its environment", || env_file.exists()).await;
    let env = std::fs::read_to_string(&env_file).unwrap();
    assert!(env.contains("PATH="), "{env}");
    for var in [
        "NOTIFY_SOCKET",
        "LISTEN_FDS",
        "LISTEN_PID",
        "LISTEN_FDNAMES",
    ] {
        assert!(
            !env.lines().any(|l| l.starts_with(&format!("{var}="))),
            "the server inherited {var}:\n{env}"
        );
    }
}
