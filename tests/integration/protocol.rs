//! The wire as a peer sees it: hellos, version mismatches, bad frames, and a kernel that is not there.

use crate::support::fake_llm::{FakeConfig, FakeLlm};
use crate::support::{STEP, TestKernel, run_shell};
use llmkernel::proto::{
    Connection, FailureKind, Hello, ListRequest, PROTOCOL_VERSION, Reply, Request, Response,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

async fn hello(conn: &mut Connection<UnixStream>, version: u32) -> Reply {
    conn.write(&Request::Hello(Hello {
        protocol_version: version,
        peer: "test".into(),
    }))
    .await
    .unwrap();
    tokio::time::timeout(STEP, conn.read::<Reply>())
        .await
        .unwrap()
        .unwrap()
        .expect("a reply")
}

#[tokio::test]
async fn hello_then_requests_on_one_connection() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let mut conn = Connection::new(UnixStream::connect(&k.socket).await.unwrap());
    assert!(
        matches!(hello(&mut conn, PROTOCOL_VERSION).await, Ok(Response::Hello(h)) if h.protocol_version == PROTOCOL_VERSION)
    );
    for _ in 0..3 {
        conn.write(&Request::List(ListRequest { all_users: false }))
            .await
            .unwrap();
        assert!(matches!(
            conn.read::<Reply>().await.unwrap(),
            Some(Ok(Response::Processes(_)))
        ));
    }
}

#[tokio::test]
async fn version_mismatch_names_both_versions() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let mut conn = Connection::new(UnixStream::connect(&k.socket).await.unwrap());
    let failure = hello(&mut conn, PROTOCOL_VERSION + 7).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::VersionMismatch);
    assert!(
        failure
            .message
            .contains(&format!("client speaks {}", PROTOCOL_VERSION + 7)),
        "{}",
        failure.message
    );
    assert!(
        failure
            .message
            .contains(&format!("speaks {PROTOCOL_VERSION}")),
        "{}",
        failure.message
    );
    assert!(
        conn.read::<Reply>().await.unwrap().is_none(),
        "then the kernel closes"
    );
}

#[tokio::test]
async fn bad_frames_get_an_error_and_close_only_that_connection() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let bad_frames: Vec<Vec<u8>> = vec![
        u32::MAX.to_be_bytes().to_vec(), // oversized length prefix
        [&3u32.to_be_bytes()[..], &[0xff, 0xff, 0xff]].concat(), // garbage payload
        [&1u32.to_be_bytes()[..], &[200]].concat(), // unknown variant tag
    ];
    for frame in bad_frames {
        let mut raw = UnixStream::connect(&k.socket).await.unwrap();
        raw.write_all(&frame).await.unwrap();
        let mut reply = Vec::new();
        tokio::time::timeout(STEP, raw.read_to_end(&mut reply))
            .await
            .unwrap()
            .unwrap();
        assert!(
            reply.len() > 4,
            "an error reply before the close for {frame:?}"
        );
        let payload = &reply[4..];
        let decoded: Reply = llmkernel::proto::decode(payload).unwrap();
        assert!(matches!(decoded, Err(f) if f.kind == FailureKind::BadFrame));
    }
    // A torn frame: the peer hangs up mid-frame. The kernel must shrug that off too.
    let mut raw = UnixStream::connect(&k.socket).await.unwrap();
    raw.write_all(&100u32.to_be_bytes()).await.unwrap();
    raw.write_all(b"half").await.unwrap();
    drop(raw);
    let run = k.sh("ps").await;
    assert_eq!(run.status, 0, "the kernel still serves: {run:?}");
}

#[tokio::test]
async fn first_frame_must_be_a_hello() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let mut conn = Connection::new(UnixStream::connect(&k.socket).await.unwrap());
    conn.write(&Request::List(ListRequest { all_users: true }))
        .await
        .unwrap();
    let reply = conn.read::<Reply>().await.unwrap().unwrap();
    assert!(
        matches!(reply, Err(f) if f.kind == FailureKind::BadRequest && f.message.contains("hello"))
    );
}

#[tokio::test]
async fn shell_explains_how_to_start_a_kernel_that_is_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nobody.sock");
    let run = run_shell(&socket, &["-c", "ps"], None).await;
    assert_eq!(run.status, 1);
    assert!(
        run.stderr.contains(&format!(
            "cannot connect to the kernel at {}",
            socket.display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("systemctl --user start llmkernel.socket"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn a_second_kernel_on_the_same_socket_refuses_to_start() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let out = tokio::process::Command::new(crate::support::KERNEL)
        .arg("--socket")
        .arg(&k.socket)
        .arg("--backend")
        .arg(&fake.url)
        .env("XDG_CONFIG_HOME", k.dir.path())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another llmkernel is already serving"));
    assert_eq!(k.sh("ps").await.status, 0, "the first kernel is untouched");
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly_and_removes_the_socket() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 5000,
        delay: std::time::Duration::from_millis(10),
        ..Default::default()
    })
    .await;
    let mut k = TestKernel::start(&fake.url, &[]).await;
    k.sh("query busy &").await;
    fake.wait_for("the stream to start", STEP, |f| f.active() == 1)
        .await;
    k.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(k.exit_code().await, Some(0));
    assert!(!k.socket.exists(), "socket removed");
    fake.wait_for("the stream to be dropped", STEP, |f| f.disconnects() == 1)
        .await;
}
