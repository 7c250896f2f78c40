//! Local peers that would lock others out, and who may trust whom on the socket: clients that stop
//! reading, one user's many connections, a client stalled mid-frame, a reload of the connection
//! limits and the group, a file at the socket path, a socket directory in /tmp made by someone else,
//! a kernel run by another user, and group membership through supplementary groups. Tests that run
//! a process as another uid need root and say so when skipped.

use crate::support::fake_llm::{FakeConfig, FakeLlm};
use crate::support::systemd::ObservedKernel;
use crate::support::{KERNEL, SHELL, STEP, ShellRun, TestKernel, config_file, run_shell_env};
use llmkernel::proto::{
    Connection, FailureKind, Hello, ListRequest, MAX_FRAME_BYTES, PROTOCOL_VERSION, Reply, Request,
    Response, encode,
};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::OwnedReadHalf;

async fn start_with(fake: &FakeLlm, config: &str) -> TestKernel {
    let (dir, path) = config_file(config);
    TestKernel::start_in(dir, &fake.url, &["--config", &path]).await
}

/// A message as the bytes of one frame.
fn frame(msg: &Request) -> Vec<u8> {
    let payload = encode(msg).expect("encode");
    let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&payload);
    bytes
}

fn hello_request() -> Request {
    Request::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        peer: "t".into(),
    })
}

async fn read_reply(conn: &mut Connection<UnixStream>) -> Option<Reply> {
    tokio::time::timeout(STEP, conn.read::<Reply>())
        .await
        .expect("a reply or a close in time")
        .expect("read")
}

async fn connect_and_hello(socket: &Path) -> (Connection<UnixStream>, Reply) {
    let mut conn = Connection::new(UnixStream::connect(socket).await.expect("connect"));
    conn.write(&hello_request()).await.expect("write hello");
    let reply = read_reply(&mut conn).await.expect("a reply");
    (conn, reply)
}

/// A client that says hello, then sends `ps` requests back to back and never reads a reply: the
/// kernel's replies fill the socket until its writes block. Returns the unread end (kept open) and
/// the writer, which ends once the kernel closes the connection.
async fn jam(socket: &Path) -> (OwnedReadHalf, tokio::task::JoinHandle<()>) {
    let (conn, reply) = connect_and_hello(socket).await;
    assert!(matches!(reply, Ok(Response::Hello(_))), "{reply:?}");
    let (read, mut write) = conn.into_inner().into_split();
    let request = frame(&Request::List(ListRequest { all_users: true }));
    let writer = tokio::spawn(async move { while write.write_all(&request).await.is_ok() {} });
    (read, writer)
}

#[tokio::test]
async fn clients_that_stop_reading_are_cut_off_and_others_get_in() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = start_with(
        &fake,
        "[limits]\nmax_connections = 3\nstall_timeout_secs = 0.5\n",
    )
    .await;
    let mut jams = Vec::new();
    for _ in 0..3 {
        jams.push(jam(&k.socket).await);
    }
    let run = k
        .eventually("ps", "the stuck clients' slots to be freed", |out| {
            out.starts_with("   PID")
        })
        .await;
    assert!(run.contains("PROMPT"));
    // Reading the replies would unblock the kernel; instead, each writer ends when the kernel
    // closes its connection.
    for (_unread, writer) in jams {
        tokio::time::timeout(STEP, writer)
            .await
            .expect("the kernel cut off a client that stopped reading")
            .expect("writer");
    }
}

#[tokio::test]
async fn one_user_over_its_connection_cap_gets_a_clear_error() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = start_with(&fake, "[limits]\nmax_connections_per_uid = 2\n").await;
    let uid = nix::unistd::getuid().as_raw();
    let mut held = Vec::new();
    for _ in 0..2 {
        let (conn, reply) = connect_and_hello(&k.socket).await;
        assert!(matches!(reply, Ok(Response::Hello(_))), "{reply:?}");
        held.push(conn);
    }
    let (_over, reply) = connect_and_hello(&k.socket).await;
    let failure = reply.expect_err("refused");
    assert_eq!(failure.kind, FailureKind::Unavailable);
    let expected = format!("too many connections from uid {uid} (2, max_connections_per_uid)");
    assert!(failure.message.contains(&expected), "{}", failure.message);
    let run = k.sh("ps").await;
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    held.pop();
    k.eventually("ps", "a freed slot of this user", |out| {
        out.starts_with("   PID")
    })
    .await;
}

#[tokio::test]
async fn a_client_stalled_in_the_middle_of_a_big_frame_is_cut_off() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    // The idle limit stays at its default (minutes): the stall limit is what cuts the client off.
    let k = start_with(&fake, "[limits]\nstall_timeout_secs = 0.5\n").await;
    let mut stream = UnixStream::connect(&k.socket).await.expect("connect");
    stream
        .write_all(&frame(&hello_request()))
        .await
        .expect("hello");
    // Announces a frame at the limit, sends a little of it, and stops.
    stream
        .write_all(&(MAX_FRAME_BYTES as u32).to_be_bytes())
        .await
        .expect("prefix");
    stream
        .write_all(&vec![0u8; 64 * 1024])
        .await
        .expect("some payload");
    let mut conn = Connection::new(stream);
    let hello = read_reply(&mut conn).await;
    assert!(matches!(hello, Some(Ok(Response::Hello(_)))), "{hello:?}");
    let failure = read_reply(&mut conn)
        .await
        .expect("an error reply")
        .expect_err("an error");
    assert_eq!(failure.kind, FailureKind::BadFrame);
    assert!(
        failure.message.contains("stopped in the middle of a frame"),
        "{}",
        failure.message
    );
    assert!(read_reply(&mut conn).await.is_none(), "then closed");
    assert_eq!(k.sh("ps").await.status, 0, "the kernel still serves");
}

#[tokio::test]
async fn a_file_at_the_socket_path_is_never_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "my notes\n").expect("notes");
    let out = tokio::process::Command::new(KERNEL)
        .arg("--socket")
        .arg(&notes)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--backend")
        .arg("http://127.0.0.1:9/v1")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .stdin(Stdio::null())
        .output();
    let out = tokio::time::timeout(STEP, out)
        .await
        .expect("the kernel gave up in time")
        .expect("run llmkernel");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "refusing to replace {}: it is a regular file, not a socket",
            notes.display()
        )),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&notes).expect("notes"),
        "my notes\n"
    );
}

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    if nix::unistd::getuid().is_root() {
        return true;
    }
    eprintln!("skipped: running a kernel or client as another uid needs root");
    false
}

#[tokio::test]
async fn llmsh_refuses_a_kernel_run_by_another_user_unless_told_to_trust_it() {
    if !is_root() {
        return;
    }
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let owner = Some(nix::unistd::Uid::from_raw(NOBODY));
    nix::unistd::chown(dir.path(), owner, None).expect("chown");
    let notify = dir.path().join(format!("notify-{}", std::process::id()));
    let k = TestKernel::start_with(dir, &fake.url, &[], |command| {
        // The harness's notify socket is root's; let the kernel's user write to it.
        let _ = std::fs::set_permissions(&notify, std::fs::Permissions::from_mode(0o666));
        command.uid(NOBODY).gid(NOBODY);
    })
    .await;
    let run = k.sh("ps").await;
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "refusing the kernel at {}: it runs as uid {NOBODY} (nobody), not as you (uid 0) or root",
            k.socket.display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("set LLMSH_KERNEL_USER=nobody"),
        "{}",
        run.stderr
    );
    let run = run_shell_env(
        &k.socket,
        &["-c", "ps"],
        None,
        &[("LLMSH_KERNEL_USER", "nobody")],
    )
    .await;
    assert_eq!(run.status, 0, "{run:?}");
}

/// Runs llmsh under `setpriv ARGS`, with the socket opened to other users.
async fn sh_under_setpriv(k: &TestKernel, setpriv: &[&str], commands: &str) -> ShellRun {
    std::fs::set_permissions(k.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&k.socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let out = tokio::process::Command::new("setpriv")
        .args(setpriv)
        .arg(SHELL)
        .arg("--socket")
        .arg(&k.socket)
        .args(["-c", commands])
        .output();
    let out = tokio::time::timeout(STEP, out)
        .await
        .expect("llmsh in time")
        .expect("run setpriv");
    ShellRun {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn a_supplementary_group_of_the_client_admits_it_to_a_shared_kernel() {
    if !is_root() {
        return;
    }
    let Some(users) = nix::unistd::Group::from_name("users").ok().flatten() else {
        eprintln!("skipped: no `users` group");
        return;
    };
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = start_with(&fake, "[limits]\nallowed_group = \"users\"\n").await;
    let ids = ["--reuid", "65534", "--regid", "65534"];
    // nobody is not listed in `users`, and its primary group is nogroup: only the process's own
    // supplementary group makes it a member.
    let gid = users.gid.as_raw().to_string();
    let member = [&ids[..], &["--groups", &gid]].concat();
    let run = sh_under_setpriv(&k, &member, "ps").await;
    assert_eq!(run.status, 0, "{run:?}");
    let stranger = [&ids[..], &["--clear-groups"]].concat();
    let run = sh_under_setpriv(&k, &stranger, "ps").await;
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("permission denied: uid 65534 may not use this kernel"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn a_reload_applies_connection_limits_and_the_group_and_says_so() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let config = "[limits]\nmax_connections_per_uid = 4\n";
    let mut k = ObservedKernel::start(&fake.url, config, &[], &[]).await;
    let (_held, reply) = connect_and_hello(&k.kernel.socket).await;
    assert!(matches!(reply, Ok(Response::Hello(_))), "{reply:?}");
    let new = "[limits]\nmax_connections_per_uid = 1\nallowed_group = \"users\"\n";
    std::fs::write(&k.config, new).expect("rewrite config");
    k.kernel.signal(nix::sys::signal::Signal::SIGHUP);
    k.notify.next_with_line("RELOADING=1").await;
    k.notify.next_with_line("READY=1").await;
    let log = k.log();
    assert!(
        log.contains("reload: max_connections_per_uid 4 -> 1: applied to new connections"),
        "{log}"
    );
    assert!(
        log.contains("reload: allowed_group (none) -> users: applied"),
        "{log}"
    );
    let (_over, reply) = connect_and_hello(&k.kernel.socket).await;
    let failure = reply.expect_err("the lowered cap applies at once");
    assert!(
        failure.message.contains("max_connections_per_uid"),
        "{}",
        failure.message
    );
}

/// Removes a directory when dropped (one made outside the test's temporary directory).
struct RemoveDir(std::path::PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn a_default_socket_directory_made_by_someone_else_is_refused() {
    if !is_root() {
        return;
    }
    // Without $XDG_RUNTIME_DIR, nobody's kernel uses /tmp/llmkernel-65534, which anyone could have
    // made first: here root plays the one who did, and leaves it open to all.
    let shared = std::path::PathBuf::from(format!("/tmp/llmkernel-{NOBODY}"));
    if shared.exists() {
        eprintln!("skipped: {} exists already", shared.display());
        return;
    }
    std::fs::create_dir(&shared).expect("mkdir");
    let _cleanup = RemoveDir(shared.clone());
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let home = tempfile::tempdir().expect("tempdir");
    let owner = Some(nix::unistd::Uid::from_raw(NOBODY));
    nix::unistd::chown(home.path(), owner, None).expect("chown");
    let out = tokio::process::Command::new(KERNEL)
        .arg("--state-dir")
        .arg(home.path().join("state"))
        .arg("--backend")
        .arg("http://127.0.0.1:9/v1")
        .env("XDG_CONFIG_HOME", home.path())
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("LLMKERNEL_SOCKET")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null())
        .output();
    let out = tokio::time::timeout(STEP, out)
        .await
        .expect("the kernel gave up in time")
        .expect("run llmkernel");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "refusing the socket directory {}: it belongs to another user (owner uid 0, mode 0777)",
            shared.display()
        )),
        "{stderr}"
    );
    assert!(
        !shared.join("llmkernel.sock").exists(),
        "no socket in the foreign directory"
    );
}
