//! Local peers that would lock others out: clients that stop reading, one user's many
//! connections, a client stalled mid-frame, big frames trickled by many peers, and a reload of the
//! connection limits and the group. Who may trust whom on the socket is in `trust.rs`.

use crate::support::fake_llm::{FakeConfig, FakeLlm};
use crate::support::systemd::ObservedKernel;
use crate::support::{STEP, TestKernel, config_file};
use llmkernel::proto::{
    Connection, FailureKind, Hello, ListRequest, MAX_FRAME_BYTES, PROTOCOL_VERSION, Reply, Request,
    Response, encode,
};
use std::path::Path;
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
        "[limits]\nmax_connections = 3\nidle_timeout_secs = 0.5\n",
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

/// The kernel's resident memory, in KiB.
fn rss_kib(k: &TestKernel) -> u64 {
    let pid = k.child.id().expect("kernel pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test]
async fn big_frames_trickled_by_many_peers_hold_no_more_than_the_frame_budget() {
    const PEERS: usize = 32;
    let fake = FakeLlm::start(FakeConfig::default()).await;
    // The stall limit far away: the peers below hold their half-sent frames for the whole test.
    let k = start_with(&fake, "[limits]\nstall_timeout_secs = 3600\n").await;
    let before = rss_kib(&k);
    // All of a frame at the limit but its last byte: a frame the kernel can never finish.
    let mut almost = (MAX_FRAME_BYTES as u32).to_be_bytes().to_vec();
    almost.resize(4 + MAX_FRAME_BYTES - 1, 0);
    let almost = std::sync::Arc::new(almost);
    let (sent, mut sent_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut peers = tokio::task::JoinSet::new();
    for _ in 0..PEERS {
        let (conn, reply) = connect_and_hello(&k.socket).await;
        assert!(matches!(reply, Ok(Response::Hello(_))), "{reply:?}");
        let (almost, sent) = (almost.clone(), sent.clone());
        peers.spawn(async move {
            let mut stream = conn.into_inner();
            // Done only once the kernel has read nearly all of it (the socket holds far less).
            if stream.write_all(&almost).await.is_ok() {
                let _ = sent.send(());
            }
            std::future::pending::<()>().await;
        });
    }
    // The kernel-wide budget lets eight such frames in (llmkernel::kernel::server).
    for _ in 0..8 {
        tokio::time::timeout(STEP, sent_rx.recv())
            .await
            .expect("eight frames read in time");
    }
    assert_eq!(k.sh("ps").await.status, 0, "others are still served");
    let grown_mib = rss_kib(&k).saturating_sub(before) / 1024;
    let unbounded_mib = (PEERS * MAX_FRAME_BYTES / (1024 * 1024)) as u64;
    assert!(
        grown_mib < 64,
        "{PEERS} peers' half-sent frames grew the kernel by {grown_mib} MiB (unbounded: \
         {unbounded_mib} MiB)"
    );
    peers.abort_all();
}
