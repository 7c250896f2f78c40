//! Hostile and careless clients: who may connect, what they may touch, and peers that send garbage,
//! stall, or come in thousands. Each gets a clear error or a closed connection in bounded time, and the
//! kernel and its other clients carry on.

use crate::support::fake_llm::{FakeConfig, FakeLlm};
use crate::support::{SHELL, STEP, TestKernel, config_file, job_pid};
use llmkernel::proto::{
    Connection, FailureKind, Hello, PROTOCOL_VERSION, Reply, Request, Response,
};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

async fn start_with(fake: &FakeLlm, config: &str) -> TestKernel {
    let (dir, path) = config_file(config);
    TestKernel::start_in(dir, &fake.url, &["--config", &path]).await
}

async fn connect(k: &TestKernel) -> Connection<UnixStream> {
    Connection::new(UnixStream::connect(&k.socket).await.expect("connect"))
}

async fn hello(conn: &mut Connection<UnixStream>) -> Reply {
    let hello = Request::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        peer: "t".into(),
    });
    conn.write(&hello).await.expect("write");
    tokio::time::timeout(STEP, conn.read::<Reply>())
        .await
        .expect("reply in time")
        .expect("read")
        .expect("frame")
}

/// Runs llmsh as `nobody` (uid 65534), or returns None with a printed reason when that is impossible.
async fn sh_as_nobody(k: &TestKernel, commands: &str) -> Option<crate::support::ShellRun> {
    if !nix::unistd::getuid().is_root() {
        eprintln!("skipped: running a client as another uid needs root");
        return None;
    }
    // Let another user reach the socket, so the kernel's own credential check is what decides.
    std::fs::set_permissions(k.dir.path(), std::fs::Permissions::from_mode(0o755)).ok()?;
    std::fs::set_permissions(&k.socket, std::fs::Permissions::from_mode(0o666)).ok()?;
    let out = tokio::process::Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            SHELL,
            "--socket",
        ])
        .arg(&k.socket)
        .args(["-c", commands])
        .output()
        .await
        .ok()?;
    Some(crate::support::ShellRun {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

#[tokio::test]
async fn other_users_are_refused_unless_their_group_is_admitted() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 5000,
        delay: Duration::from_millis(10),
        ..Default::default()
    })
    .await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let Some(run) = sh_as_nobody(&k, "ps").await else {
        return;
    };
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("permission denied: uid 65534 may not use this kernel"),
        "{}",
        run.stderr
    );

    let k = start_with(&fake, "[limits]\nallowed_group = \"nogroup\"\n").await;
    let root_pid = job_pid(&k.sh("query \"a secret prompt\" &").await.stdout);
    let Some(run) = sh_as_nobody(&k, "ps -a").await else {
        return;
    };
    assert_eq!(run.status, 0, "{run:?}");
    assert!(
        run.stdout.contains("<hidden>") && !run.stdout.contains("secret"),
        "{}",
        run.stdout
    );
    let run = sh_as_nobody(&k, &format!("kill {root_pid}; cat {root_pid}"))
        .await
        .expect("ran before");
    assert!(
        run.stderr
            .contains(&format!("kill: ({root_pid}) - Operation not permitted")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("cat: ({root_pid}) - Operation not permitted")),
        "{}",
        run.stderr
    );
    let run = sh_as_nobody(
        &k,
        "query --nice -5 \"[tokens=2] mine\"; query \"[tokens=2] mine\"",
    )
    .await
    .expect("ran");
    assert!(
        run.stderr
            .contains("only root or the kernel's user may set nice below 0"),
        "{}",
        run.stderr
    );
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(run.stdout, "t0 t1 \n");
}

#[tokio::test]
async fn connections_over_the_cap_get_an_error_and_the_rest_carry_on() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = start_with(&fake, "[limits]\nmax_connections = 4\n").await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = connect(&k).await;
        assert!(matches!(hello(&mut c).await, Ok(Response::Hello(_))));
        held.push(c);
    }
    let mut over = connect(&k).await;
    let failure = hello(&mut over).await.expect_err("refused");
    assert_eq!(failure.kind, FailureKind::Unavailable);
    assert!(
        failure.message.contains("too many connections"),
        "{}",
        failure.message
    );
    held.pop();
    let run = k
        .eventually("ps", "a freed connection slot", |out| {
            out.starts_with("   PID")
        })
        .await;
    assert!(run.contains("PROMPT"));
}

#[tokio::test]
async fn silent_and_stalled_peers_are_closed_in_bounded_time() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = start_with(
        &fake,
        "[limits]\nhandshake_timeout_secs = 0.3\nidle_timeout_secs = 0.3\n",
    )
    .await;
    // Connects and says nothing.
    let mut silent = UnixStream::connect(&k.socket).await.expect("connect");
    let mut buf = Vec::new();
    tokio::time::timeout(STEP, silent.read_to_end(&mut buf))
        .await
        .expect("closed by the kernel")
        .expect("read");
    // Half a frame, then nothing.
    let mut half = UnixStream::connect(&k.socket).await.expect("connect");
    half.write_all(&50u32.to_be_bytes()).await.expect("write");
    half.write_all(b"abc").await.expect("write");
    tokio::time::timeout(STEP, half.read_to_end(&mut buf))
        .await
        .expect("closed by the kernel")
        .expect("read");
    // Says hello, then stalls mid-frame.
    let mut stalled = connect(&k).await;
    assert!(matches!(hello(&mut stalled).await, Ok(Response::Hello(_))));
    let raw = UnixStream::connect(&k.socket).await.expect("connect");
    drop(raw);
    assert_eq!(k.sh("ps").await.status, 0, "the kernel still serves");
}

#[tokio::test]
async fn absurd_values_are_refused_with_reasons() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = start_with(&fake, "[limits]\nmax_prompt_bytes = 1000\n").await;
    let big = "x".repeat(2000);
    for (line, message) in [
        (
            "query --max-tokens 4000000000 hi".to_string(),
            "max tokens 4000000000 is out of range",
        ),
        (
            "query --max-tokens 0 hi".to_string(),
            "max tokens 0 is out of range",
        ),
        ("query --nice 20 hi".to_string(), "nice 20 is out of range"),
        (format!("query {big}"), "over the kernel's limit of 1000"),
        (
            "wait 123456789".to_string(),
            "pid 123456789 is not a child of this shell",
        ),
        (
            "kill -9 18446744073709551615".to_string(),
            "No such process",
        ),
    ] {
        let run = k.sh(&line).await;
        assert_ne!(run.status, 0, "{line}");
        assert!(run.stderr.contains(message), "{line}: {}", run.stderr);
    }
    // A prompt bigger than a frame never leaves the shell.
    let huge = "y".repeat(5 * 1024 * 1024);
    let script = k.dir.path().join("huge.llmsh");
    std::fs::write(&script, format!("query {huge}\n")).expect("script");
    let run = crate::support::run_shell(&k.socket, &[script.to_str().expect("path")], None).await;
    assert_eq!(run.status, 1);
    assert!(
        run.stderr.contains("over the 4194304-byte limit"),
        "{}",
        run.stderr
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn a_full_run_queue_refuses_new_processes_at_once() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 5000,
        delay: Duration::from_millis(10),
        ..Default::default()
    })
    .await;
    let k = start_with(&fake, "[limits]\nmax_queue = 2\n").await;
    let run = k.sh("query a & query b & query c & query d &").await;
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("run queue is full (2 processes waiting)"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stdout.lines().count(),
        3,
        "three acknowledged: one runs, two wait\n{}",
        run.stdout
    );
}

#[tokio::test]
async fn a_thousand_connections_at_once_leave_the_kernel_serving() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let socket = k.socket.clone();
        tasks.spawn(async move {
            let Ok(stream) = UnixStream::connect(&socket).await else {
                return (false, false);
            };
            let mut c = Connection::new(stream);
            match hello(&mut c).await {
                Ok(Response::Hello(_)) => (true, false),
                // One user's connections beyond its cap are refused, and told why.
                Err(f) => (false, f.message.contains("max_connections_per_uid")),
                Ok(_) => (false, false),
            }
        });
    }
    let (mut answered, mut refused) = (0, 0);
    while let Some(outcome) = tasks.join_next().await {
        let (ok, capped) = outcome.unwrap_or((false, false));
        answered += usize::from(ok);
        refused += usize::from(capped);
    }
    assert!(answered > 0, "connections were served");
    assert!(
        answered + refused >= 500,
        "most connections were served or told why not ({answered} served, {refused} refused)"
    );
    assert_eq!(k.sh("ps").await.status, 0);
}
