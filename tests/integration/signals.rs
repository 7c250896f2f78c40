//! Real signals to a real kernel process: SIGUSR1 and the spool, SIGALRM and the interval timer, a
//! signal storm, SIGHUP reloads, and SIGTERM shutdowns.

use crate::support::STEP;
use crate::support::fake_llm::{FakeConfig, FakeLlm, answer};
use crate::support::systemd::ObservedKernel;
use llmkernel::proto::{
    Connection, Hello, OutputRequest, PROTOCOL_VERSION, Pid, Reply, Request, Response,
};
use nix::sys::signal::Signal::{SIGALRM, SIGHUP, SIGTERM, SIGUSR1};
use std::time::Duration;

/// One row of `interrupts`: raised, coalesced, handled, waiting.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Row {
    raised: u64,
    coalesced: u64,
    handled: u64,
    waiting: u64,
}

fn row(table: &str, name: &str) -> Row {
    let cols: Vec<_> = table
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} row in {table}"))
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let n = |i: usize| cols[i].parse().unwrap_or(0);
    Row {
        raised: n(1),
        coalesced: n(2),
        handled: n(3),
        waiting: n(4),
    }
}

async fn interrupts(k: &ObservedKernel) -> String {
    let run = k.kernel.sh("interrupts").await;
    assert_eq!(run.status, 0, "{run:?}");
    run.stdout
}

#[tokio::test]
async fn sigusr1_without_spooled_messages_starts_a_system_handler_with_the_default_message() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = ObservedKernel::start(&fake.url, "", &[], &[]).await;
    k.kernel.signal(SIGUSR1);
    fake.wait_for("the handler's request", STEP, |f| f.completed() == 1)
        .await;
    let messages = fake.requests()[0].messages();
    assert_eq!(
        messages[..2],
        [
            ("system".into(), "You are a system management bot.".into()),
            (
                "user".into(),
                "Address the following system event: A system event occurred.".into()
            ),
        ]
    );
    let ps = k
        .kernel
        .eventually("ps", "the handler to finish", |ps| ps.contains(" Z "))
        .await;
    assert!(ps.contains("SYSTEM"), "{ps}");
    let system = row(&interrupts(&k).await, "SYSTEM");
    assert_eq!((system.raised, system.handled), (1, 1));
}

#[tokio::test]
async fn sigusr1_delivers_spooled_messages_in_name_order_and_deletes_them() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = ObservedKernel::start(&fake.url, "", &[], &[]).await;
    let spool = k.spool();
    assert!(spool.is_dir(), "the default spool is created at start");
    std::fs::write(spool.join("002-fan"), "Fan failure\n").unwrap();
    std::fs::write(spool.join("001-disk"), "Low disk space").unwrap();
    std::fs::write(spool.join(".003-partial"), "not yet").unwrap();
    k.kernel.signal(SIGUSR1);
    fake.wait_for("both handlers to run", STEP, |f| f.completed() == 2)
        .await;
    let prompts: Vec<_> = fake.requests().iter().map(|r| r.user_prompt()).collect();
    assert_eq!(
        prompts,
        [
            "Address the following system event: Low disk space",
            "Address the following system event: Fan failure",
        ]
    );
    let mut left: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, [".003-partial"], "delivered messages are deleted");
    let table = interrupts(&k).await;
    let system = row(&table, "SYSTEM");
    assert_eq!((system.raised, system.coalesced, system.handled), (1, 0, 2));
    assert!(table.contains("(0 messages waiting)"), "{table}");
}

#[tokio::test]
async fn spooled_messages_beyond_the_limit_wait_in_the_spool_and_follow_as_handlers_start() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let config = "[interrupts.system]\nmax_waiting = 1\n";
    let k = ObservedKernel::start(&fake.url, config, &[], &[]).await;
    for n in 1..=5 {
        std::fs::write(k.spool().join(format!("{n:02}")), format!("event {n}")).unwrap();
    }
    k.kernel.signal(SIGUSR1);
    fake.wait_for("all five handlers", STEP, |f| f.completed() == 5)
        .await;
    let prompts: Vec<_> = fake.requests().iter().map(|r| r.user_prompt()).collect();
    let want: Vec<_> = (1..=5)
        .map(|n| format!("Address the following system event: event {n}"))
        .collect();
    assert_eq!(prompts, want, "one ring, every message, in order");
    let system = row(&interrupts(&k).await, "SYSTEM");
    assert_eq!((system.raised, system.handled), (1, 5));
    assert_eq!(std::fs::read_dir(k.spool()).unwrap().count(), 0);
}

#[tokio::test]
async fn sigalrm_starts_a_housekeeping_handler() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = ObservedKernel::start(&fake.url, "", &[], &[]).await;
    k.kernel.signal(SIGALRM);
    fake.wait_for("the handler's request", STEP, |f| f.completed() == 1)
        .await;
    let req = &fake.requests()[0];
    assert_eq!(req.messages()[0].1, "You are a system maintenance bot.");
    assert_eq!(req.user_prompt(), "Perform routine system check.");
    assert_eq!(req.body["max_tokens"], 500, "HOUSEKEEPING allowance");
    let ps = k
        .kernel
        .eventually("ps", "the handler in ps", |ps| ps.contains("HOUSEKEEPING"))
        .await;
    assert!(ps.contains("routine system check"), "{ps}");
}

#[tokio::test]
async fn the_interval_timer_raises_timer_interrupts_by_itself() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let config = "[interrupts.timer]\nperiod_secs = 0.1\n";
    let k = ObservedKernel::start(&fake.url, config, &[], &[]).await;
    fake.wait_for("three timer handlers", STEP, |f| f.completed() >= 3)
        .await;
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.user_prompt() == "Perform routine system check.")
    );
    let table = interrupts(&k).await;
    assert!(table.contains("interval timer every 100ms"), "{table}");
    let timer = row(&table, "TIMER");
    assert!(timer.raised >= 3, "{table}");
    assert_eq!(timer.raised, timer.handled + timer.coalesced, "{table}");
}

#[tokio::test]
async fn sighup_arms_and_disarms_the_interval_timer() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let mut k = ObservedKernel::start(&fake.url, "", &[], &[]).await;
    std::fs::write(&k.config, "[interrupts.timer]\nperiod_secs = 0.05\n").unwrap();
    k.kernel.signal(SIGHUP);
    fake.wait_for("timer handlers", STEP, |f| f.completed() >= 2)
        .await;
    std::fs::write(&k.config, "").unwrap();
    k.kernel.signal(SIGHUP);
    k.notify.next_with_line("RELOADING=1").await;
    k.notify.next_with_line("READY=1").await;
    let table = interrupts(&k).await;
    assert!(!table.contains("interval timer"), "{table}");
    let log = k.log();
    assert!(
        log.contains("interval timer every 50ms") && log.contains("interval timer off"),
        "{log}"
    );
}

/// Rings SIGUSR1 once and waits until the kernel has counted it.
async fn ring_once(k: &ObservedKernel) {
    let before = row(&interrupts(k).await, "SYSTEM").raised;
    k.kernel.signal(SIGUSR1);
    k.kernel
        .eventually("interrupts", "the ring to be counted", |t| {
            row(t, "SYSTEM").raised > before
        })
        .await;
}

#[tokio::test]
async fn a_storm_of_sigusr1_leaves_a_healthy_kernel_with_bounded_handlers() {
    // Handlers never get a token: whatever is queued stays queued.
    let fake = FakeLlm::start(FakeConfig {
        delay: Duration::from_secs(600),
        ..Default::default()
    })
    .await;
    let k = ObservedKernel::start(&fake.url, "", &[], &[]).await;
    let pid = nix::unistd::Pid::from_raw(k.kernel.child.id().unwrap() as i32);
    for _ in 0..1000 {
        nix::sys::signal::kill(pid, SIGUSR1).unwrap();
    }
    // The burst may have reached the kernel as a single ring; ring on until the limit is met.
    for _ in 0..10 {
        ring_once(&k).await;
    }
    let table = interrupts(&k).await;
    let system = row(&table, "SYSTEM");
    assert_eq!(system.handled, 5, "one running, four waiting: {table}");
    assert_eq!(system.waiting, 4, "{table}");
    assert!(system.coalesced >= 5, "{table}");
    assert!(system.raised <= 1010, "{table}");
    assert_eq!(system.raised, system.handled + system.coalesced, "{table}");
    let ps = k.kernel.sh("ps").await.stdout;
    let handlers: Vec<u64> = ps
        .lines()
        .filter(|l| l.contains("SYSTEM"))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(handlers.len(), 5, "{ps}");
    let by_hand = k.kernel.sh("interrupt system by hand").await;
    assert_eq!(by_hand.status, 1, "{by_hand:?}");
    assert!(by_hand.stderr.contains("coalesced"), "{by_hand:?}");
    // Healthy: the handlers can be killed and a query then runs to the end.
    let kill = format!(
        "kill -KILL {}",
        handlers
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert_eq!(k.kernel.sh(&kill).await.status, 0);
    let query = k.kernel.sh("query '[delay=0] are you alive?'").await;
    assert_eq!(query.status, 0, "{query:?}");
    assert_eq!(query.stdout, format!("{}\n", answer(10)));
}

#[tokio::test]
async fn sighup_applies_a_valid_config_and_keeps_the_running_one_when_invalid() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let config = "quantum = 8\n[interrupts.system]\nprompt = \"Old: {message}\"\n";
    let mut k = ObservedKernel::start(&fake.url, config, &[], &[]).await;
    let new = "quantum = 5\ncpus = 2\n[interrupts.system]\nprompt = \"New: {message}\"\n";
    std::fs::write(&k.config, new).unwrap();
    k.kernel.signal(SIGHUP);
    let reloading = k.notify.next_with_line("RELOADING=1").await;
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    k.notify.next_with_line("READY=1").await;
    let sched = k.kernel.sh("sched").await.stdout;
    assert!(sched.contains("quantum: 5 tokens"), "{sched}");
    assert!(sched.contains("cpus: 1"), "cpus needs a restart: {sched}");
    assert!(
        k.log()
            .contains("changes to cpus take effect after a restart"),
        "{}",
        k.log()
    );
    assert_eq!(k.kernel.sh("interrupt system disk").await.status, 0);
    fake.wait_for("the handler", STEP, |f| f.completed() == 1)
        .await;
    assert_eq!(fake.requests()[0].user_prompt(), "New: disk");

    std::fs::write(&k.config, "quantum = 0\n").unwrap();
    k.kernel.signal(SIGHUP);
    k.notify.next_with_line("RELOADING=1").await;
    k.notify.next_with_line("READY=1").await;
    let log = k.log();
    assert!(
        log.contains("config reload failed, keeping the running config") && log.contains("quantum"),
        "{log}"
    );
    let sched = k.kernel.sh("sched").await.stdout;
    assert!(sched.contains("quantum: 5 tokens"), "{sched}");
}

#[tokio::test]
async fn sigterm_with_running_processes_stops_them_keeps_output_and_exits_zero() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 5000,
        delay: Duration::from_millis(10),
        ..Default::default()
    })
    .await;
    let mut k = ObservedKernel::start(&fake.url, "", &["--cpus", "2"], &[]).await;
    k.kernel.sh("query one &").await;
    let attached = {
        let socket = k.kernel.socket.clone();
        tokio::spawn(
            async move { crate::support::run_shell(&socket, &["-c", "query two"], None).await },
        )
    };
    let both_generating = |ps: &str| {
        let generating = ps.lines().skip(1).filter(|l| {
            let cols: Vec<_> = l.split_whitespace().collect();
            let used = cols[6]
                .split('/')
                .next()
                .and_then(|u| u.parse::<u32>().ok());
            cols[5].starts_with('R') && used.is_some_and(|u| u >= 2)
        });
        generating.count() == 2
    };
    k.kernel
        .eventually("ps", "both processes to generate", both_generating)
        .await;
    k.kernel.signal(SIGTERM);
    k.notify.next_with_line("STOPPING=1").await;
    assert_eq!(k.kernel.exit_code().await, Some(0));
    assert!(!k.kernel.socket.exists(), "socket removed");
    fake.wait_for("the streams to be dropped", STEP, |f| f.disconnects() == 2)
        .await;
    let attached = attached.await.unwrap();
    assert_ne!(attached.status, 0, "{attached:?}");
    assert!(
        attached.stdout.starts_with("t0 t1 "),
        "output kept: {attached:?}"
    );
    assert!(
        attached.stderr.contains("shutting down"),
        "the client is told: {attached:?}"
    );
}

/// A client following `pid` that never reads: once its socket buffer fills, the kernel's writes to
/// it block.
async fn stuck_follower(k: &ObservedKernel, pid: Pid) -> Connection<tokio::net::UnixStream> {
    let stream = tokio::net::UnixStream::connect(&k.kernel.socket)
        .await
        .unwrap();
    let mut conn = Connection::new(stream);
    conn.write(&Request::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        peer: "stuck".into(),
    }))
    .await
    .unwrap();
    let hello = conn.read::<Reply>().await.unwrap();
    assert!(matches!(hello, Some(Ok(Response::Hello(_)))));
    conn.write(&Request::Output(OutputRequest { pid, follow: true }))
        .await
        .unwrap();
    conn
}

/// Starts a long fast process and a follower that stopped reading it, with thousands of frames due.
async fn kernel_with_a_stuck_client()
-> (FakeLlm, ObservedKernel, Connection<tokio::net::UnixStream>) {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 30_000,
        delay: Duration::from_millis(1),
        ..Default::default()
    })
    .await;
    // A stall limit far away, so the stuck client is still there when the kernel shuts down.
    let config = "[limits]\nstall_timeout_secs = 3600\n";
    let k = ObservedKernel::start(&fake.url, config, &[], &[]).await;
    let run = k.kernel.sh("query --max-tokens 30000 flood &").await;
    let pid = crate::support::job_pid(&run.stdout);
    let conn = stuck_follower(&k, Pid(pid)).await;
    let enough = |out: &str| out.split_whitespace().count() >= 3000;
    k.kernel
        .eventually(&format!("cat {pid}"), "3000 tokens", enough)
        .await;
    (fake, k, conn)
}

#[tokio::test]
async fn a_second_sigterm_during_shutdown_exits_at_once() {
    let (_fake, mut k, _conn) = kernel_with_a_stuck_client().await;
    k.kernel.signal(SIGTERM);
    k.notify.next_with_line("STOPPING=1").await;
    k.kernel.signal(SIGTERM);
    assert_eq!(k.kernel.exit_code().await, Some(1));
    let log = k.log();
    assert!(log.contains("second termination signal"), "{log}");
    assert!(!k.kernel.socket.exists(), "socket removed even so");
}

#[tokio::test]
async fn a_client_that_stopped_reading_delays_shutdown_by_the_grace_period_only() {
    let (_fake, mut k, _conn) = kernel_with_a_stuck_client().await;
    k.kernel.signal(SIGTERM);
    assert_eq!(k.kernel.exit_code().await, Some(0));
    let log = k.log();
    assert!(log.contains("connections still open"), "{log}");
}
