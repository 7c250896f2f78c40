//! What a peer may ask of a shared kernel: SYSTEM processes and SYSTEM interrupts are for root and the
//! kernel's user only, like nice below 0; `max_queue` counts stopped processes and holds under
//! concurrent submits.

use crate::frames::submit;
use crate::support::fake_llm::{FakeConfig, FakeLlm};
use crate::support::{SHELL, ShellRun, TestKernel, config_file};
use llmkernel::proto::{FailureKind, ProcessType, Response};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

async fn start_with(fake: &FakeLlm, config: &str) -> TestKernel {
    let (dir, path) = config_file(config);
    TestKernel::start_in(dir, &fake.url, &["--config", &path]).await
}

/// A backend whose answers last minutes: processes stay where a test puts them.
async fn slow_backend() -> FakeLlm {
    FakeLlm::start(FakeConfig {
        tokens: 100_000,
        delay: Duration::from_millis(50),
        ..Default::default()
    })
    .await
}

/// Runs llmsh as `nobody` in group `nogroup`, or returns None with a printed reason when that is
/// impossible.
async fn sh_as_nobody(k: &TestKernel, commands: &str) -> Option<ShellRun> {
    if !nix::unistd::getuid().is_root() {
        eprintln!("skipped: running a client as another uid needs root");
        return None;
    }
    std::fs::set_permissions(k.dir.path(), std::fs::Permissions::from_mode(0o755)).ok()?;
    std::fs::set_permissions(&k.socket, std::fs::Permissions::from_mode(0o666)).ok()?;
    let out = tokio::process::Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(SHELL)
        .arg("--socket")
        .arg(&k.socket)
        .args(["-c", commands])
        .output()
        .await
        .ok()?;
    Some(ShellRun {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

#[tokio::test]
async fn a_group_member_may_not_start_system_processes_or_raise_system_interrupts() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = start_with(&fake, "[limits]\nallowed_group = \"nogroup\"\n").await;
    let Some(run) = sh_as_nobody(
        &k,
        "query --type system \"[tokens=2] urgent\"; interrupt system \"disk\"; query \"[tokens=2] mine\"",
    )
    .await
    else {
        return;
    };
    let denied = "only root or the kernel's user may start SYSTEM processes";
    assert_eq!(run.stderr.matches(denied).count(), 2, "{run:?}");
    assert_eq!(run.stdout, "t0 t1 \n", "{run:?}");
    let ps = k.sh("ps -a").await;
    assert!(!ps.stdout.contains("SYSTEM"), "{}", ps.stdout);

    // The kernel's own user may.
    let run = k.sh("query --type system \"[tokens=2] urgent\"").await;
    assert_eq!(
        (run.status, run.stdout.as_str()),
        (0, "t0 t1 \n"),
        "{run:?}"
    );
}

fn kind_of(reply: &llmkernel::proto::Reply) -> Option<FailureKind> {
    reply.as_ref().err().map(|f| f.kind)
}

#[tokio::test]
async fn stopped_processes_count_toward_the_queue_limit() {
    let fake = slow_backend().await;
    let k = start_with(&fake, "cpus = 1\n[limits]\nmax_queue = 2\n").await;
    let run = k
        .sh("query a & query b & query c & kill -STOP %2 %3; ps")
        .await;
    assert_eq!(run.status, 0, "{run:?}");
    let over = submit(&k, "d", ProcessType::User).await;
    assert_eq!(kind_of(&over), Some(FailureKind::QueueFull), "{over:?}");
    let message = over.err().map(|f| f.message).unwrap_or_default();
    assert!(message.contains("2 stopped"), "{message}");
}

#[tokio::test]
async fn concurrent_submits_never_overshoot_the_queue_limit() {
    let fake = slow_backend().await;
    let k = start_with(&fake, "cpus = 1\n[limits]\nmax_queue = 5\n").await;
    let first = submit(&k, "runs", ProcessType::User).await;
    assert!(matches!(first, Ok(Response::Submitted(_))), "{first:?}");
    let k = std::sync::Arc::new(k);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let k = std::sync::Arc::clone(&k);
        tasks.spawn(async move { submit(&k, &format!("q{i}"), ProcessType::User).await });
    }
    let (mut accepted, mut full) = (0, 0);
    while let Some(reply) = tasks.join_next().await {
        match reply.expect("submit task") {
            Ok(Response::Submitted(_)) => accepted += 1,
            reply if kind_of(&reply) == Some(FailureKind::QueueFull) => full += 1,
            other => panic!("unexpected reply: {other:?}"),
        }
    }
    assert_eq!((accepted, full), (5, 35));
}
