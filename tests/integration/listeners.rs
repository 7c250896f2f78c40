//! Clients that ask for a process's output or wait for it and then go away: the kernel forgets them,
//! so a stopped process asked about thousands of times holds no more memory than one asked once.

use crate::frames::{raw, recv, submit};
use crate::support::TestKernel;
use crate::support::fake_llm::{FakeConfig, FakeLlm};
use llmkernel::proto::{OutputRequest, Pid, ProcessType, Request, Response, WaitRequest};
use std::time::Duration;

/// Resident memory of process `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// `count` requests about `pid`, half `cat`-style output snapshots and half `wait`s, each on its own
/// connection that closes at once, from a few clients in parallel.
async fn ask_and_leave(k: &TestKernel, pid: Pid, count: usize) {
    const CLIENTS: usize = 8;
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let socket = k.socket.clone();
        tasks.spawn(async move {
            for i in (client..count).step_by(CLIENTS) {
                let mut conn = raw(&socket).await;
                if i % 2 == 0 {
                    let req = OutputRequest { pid, follow: false };
                    conn.write(&Request::Output(req)).await.expect("write");
                    match recv(&mut conn).await {
                        Ok(Response::Output(_)) => {}
                        other => panic!("no output: {other:?}"),
                    }
                } else {
                    // The wait blocks (the process is stopped); the client leaves without its answer.
                    conn.write(&Request::Wait(WaitRequest { pid }))
                        .await
                        .expect("write");
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("client task");
    }
}

#[tokio::test]
async fn output_and_wait_requests_that_leave_do_not_pile_up_on_a_stopped_process() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 100_000,
        delay: Duration::from_millis(50),
        ..Default::default()
    })
    .await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let pid = match submit(&k, "story", ProcessType::User).await {
        Ok(Response::Submitted(s)) => s.pid,
        other => panic!("not submitted: {other:?}"),
    };
    let stop = k.sh(&format!("kill -STOP {pid}")).await;
    assert_eq!(stop.status, 0, "{stop:?}");
    let kernel_pid = k.child.id().expect("kernel pid");
    ask_and_leave(&k, pid, 2_000).await; // warm up: buffers and pools reach their working size
    let before = rss_kib(kernel_pid);
    ask_and_leave(&k, pid, 20_000).await;
    let after = rss_kib(kernel_pid);
    let grown_kib = after.saturating_sub(before);
    eprintln!("kernel RSS {before} KiB -> {after} KiB");
    assert!(
        grown_kib < 12 * 1024,
        "the kernel grew by {grown_kib} KiB over 20,000 requests that left"
    );
    // And the process still answers the way it should.
    let mut conn = raw(&k.socket).await;
    conn.write(&Request::Output(OutputRequest { pid, follow: false }))
        .await
        .expect("write");
    assert!(matches!(recv(&mut conn).await, Ok(Response::Output(_))));
}
