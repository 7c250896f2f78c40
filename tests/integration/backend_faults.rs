//! A backend that misbehaves: refused connections, names that do not resolve, HTTP 429/500/503 (with
//! `Retry-After`) and 400, no first byte in time, a stall or a reset mid-stream, malformed events, an
//! answer that ignores `max_tokens`, and a server that goes away and comes back. Each process ends in
//! exactly one state with its reason in `ps -l`, `wait` and `cat`, no slot stays held, work resumes
//! by itself when the backend answers again, and `ps`/`sched`/`interrupts` never wait on the backend.
//! Backoffs and timeouts come from the config file, short, so each test takes a second or two.

use crate::support::fake_llm::{FakeConfig, FakeLlm, Fault, answer};
use crate::support::{STEP, TestKernel, config_file, job_pid, ps_row};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One bad request against a healthy backend, and `Retry-After` kept in bounds.
mod requests;
/// Streams that misbehave: huge lines, empty chunks, invalid UTF-8, trickling bodies, resets.
mod streams;
/// The foreground query's status line while it waits.
mod waiting;

/// Backoff short enough for tests: 50 ms doubling up to 200 ms.
const QUICK: &str = "[backend]\nbackoff_initial_secs = 0.05\nbackoff_max_secs = 0.2\n";

async fn start(url: &str, extra: &str, args: &[&str]) -> (TestKernel, tempfile::TempDir) {
    let (dir, path) = config_file(&format!("{QUICK}{extra}"));
    let mut all = vec!["--config", path.as_str()];
    all.extend_from_slice(args);
    (TestKernel::start(url, &all).await, dir)
}

/// A loopback URL nothing listens on.
fn dead_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    format!("http://127.0.0.1:{port}/v1")
}

fn fake(fault: Fault, limit: Option<usize>) -> FakeConfig {
    FakeConfig {
        fault: Some(fault),
        fault_limit: limit,
        ..Default::default()
    }
}

/// Whether `pid`'s `ps` row has state `stat`.
fn has_state(ps: &str, pid: u64, stat: &str) -> bool {
    ps_row(ps, pid).is_some_and(|cols| cols.get(5).is_some_and(|s| s == stat))
}

/// The line of `pid` in a `ps -l` listing.
fn ps_line(ps: &str, pid: u64) -> String {
    ps.lines()
        .find(|l| l.split_whitespace().next() == Some(&pid.to_string()))
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn refused_connection_is_retried_then_fails_with_the_reason_in_ps_cat_and_wait() {
    let url = dead_url();
    let (k, _cfg) = start(&url, "retry_for_secs = 3\n", &[]).await;
    let pid = job_pid(&k.sh("query hello &").await.stdout);
    let refused = format!("backend {url} refused the connection");
    let ps = k
        .eventually_wide("ps -l", "a retry note", |ps| {
            ps_line(ps, pid).contains(&format!("[{refused}; retrying"))
        })
        .await;
    assert!(
        has_state(&ps, pid, "Q"),
        "it waits in the queue, holding no slot:\n{ps}"
    );
    let ps = k
        .eventually_wide("ps -l", "the process to give up", |ps| {
            has_state(ps, pid, "Z")
        })
        .await;
    let line = ps_line(&ps, pid);
    assert!(
        line.contains(&format!("[{refused} (gave up after ")),
        "{line}"
    );
    let cat = k.sh(&format!("cat {pid}")).await;
    assert_eq!(cat.status, 0, "{cat:?}");
    assert!(
        cat.stderr
            .contains(&format!("llmsh: cat: {pid}: {refused} (gave up after ")),
        "{cat:?}"
    );
    let wait = k.sh(&format!("wait {pid}")).await;
    assert_eq!(wait.status, 1, "{wait:?}");
    assert!(
        wait.stderr
            .contains(&format!("llmsh: wait: {pid}: {refused}")),
        "{wait:?}"
    );
}

#[tokio::test]
async fn unresolvable_backend_is_named_and_fails_after_its_retries() {
    let url = "http://llm-backend.invalid:5001/v1";
    let (k, _cfg) = start(url, "max_retries = 2\n", &[]).await;
    let run = k.sh("query hello").await;
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("backend {url} could not be resolved")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("(gave up after 3 tries in "),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn http_429_is_retried_no_sooner_than_retry_after_in_seconds_or_as_a_date() {
    let limited = Fault::RetryAfter {
        status: 429,
        value: "1".into(),
    };
    let fake = FakeLlm::start(fake(limited, Some(1))).await;
    // Retry-After is honoured up to the longest backoff: make that longer than what is asked here.
    let (_cfg, path) =
        config_file("[backend]\nbackoff_initial_secs = 0.05\nbackoff_max_secs = 5\n");
    let k = TestKernel::start(&fake.url, &["--config", &path]).await;
    let run = k.sh("query hello").await;
    assert_eq!(
        (run.status, run.stdout.as_str()),
        (0, "t0 t1 t2 t3 t4 t5 t6 t7 t8 t9 \n")
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "one refusal, one answer");
    let waited = requests[1].at - requests[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}"
    );

    // A date has whole seconds only: take a whole second 2 to 3 s ahead, and check the retry came
    // no sooner than that moment (not a duration measured from some other one).
    let (wall, mono) = (SystemTime::now(), Instant::now());
    let since_epoch = wall.duration_since(UNIX_EPOCH).expect("clock after 1970");
    let retry_at = UNIX_EPOCH + Duration::from_secs(since_epoch.as_secs() + 3);
    let retry_at_mono = mono + retry_at.duration_since(wall).unwrap_or_default();
    fake.set(|c| {
        c.fault = Some(Fault::RetryAfter {
            status: 503,
            value: httpdate::fmt_http_date(retry_at),
        });
        c.fault_limit = Some(2);
    });
    let run = k.sh("query again").await;
    assert_eq!(run.status, 0, "{run:?}");
    let requests = fake.requests();
    assert_eq!(requests.len(), 4);
    // The kernel counts in whole milliseconds (twice: the wait, then its timer): allow it a few.
    let early = retry_at_mono.saturating_duration_since(requests[3].at);
    assert!(
        early <= Duration::from_millis(5),
        "retried {early:?} before the date"
    );
}

#[tokio::test]
async fn http_500_and_503_are_retried_until_the_backend_answers() {
    let fake = FakeLlm::start(fake(Fault::Status(503), Some(3))).await;
    let (k, _cfg) = start(&fake.url, "", &[]).await;
    let run = k.sh("query hello").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(run.stdout, format!("{}\n", answer(10)));
    assert_eq!(fake.requests().len(), 4, "three refusals, then the answer");

    // Two more faults: a 500 while the server's health check answers is tried again at once, up to
    // three tries in all.
    fake.set(|c| {
        c.fault = Some(Fault::Status(500));
        c.fault_limit = Some(5);
    });
    let run = k.sh("query again").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(fake.requests().len(), 7);
}

#[tokio::test]
async fn http_400_fails_at_once_without_a_retry() {
    let fake = FakeLlm::start(fake(Fault::Status(400), None)).await;
    let (k, _cfg) = start(&fake.url, "", &[]).await;
    let run = k.sh("query hello").await;
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr.contains("answered HTTP 400: injected failure"),
        "{}",
        run.stderr
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn no_first_byte_within_the_timeout_is_retried() {
    let hang = Fault::FirstByteDelay(Duration::from_secs(60));
    let fake = FakeLlm::start(fake(hang, Some(1))).await;
    let (k, _cfg) = start(&fake.url, "first_token_timeout_secs = 0.3\n", &[]).await;
    let run = k.sh("query hello").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(run.stdout, format!("{}\n", answer(10)));
    assert_eq!(fake.requests().len(), 2);

    fake.set(|c| c.fault_limit = None);
    let (k, _cfg) = start(
        &fake.url,
        "first_token_timeout_secs = 0.3\nmax_retries = 0\n",
        &[],
    )
    .await;
    let run = k.sh("query hello").await;
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr.contains("sent nothing within 0.3s"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn a_stall_mid_stream_resumes_where_the_output_stopped() {
    let fake = FakeLlm::start(fake(Fault::StallAfter(3), Some(1))).await;
    let (k, _cfg) = start(&fake.url, "token_timeout_secs = 0.3\n", &[]).await;
    let run = k.sh("query hello").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!("{}\n", answer(10)),
        "one unbroken answer"
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].resumed_at(),
        3,
        "continued after the three tokens kept"
    );
}

#[tokio::test]
async fn a_connection_reset_mid_stream_resumes_where_the_output_stopped() {
    let fake = FakeLlm::start(fake(Fault::ResetAfter(4), Some(1))).await;
    let (k, _cfg) = start(&fake.url, "", &[]).await;
    let run = k.sh("query hello").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(run.stdout, format!("{}\n", answer(10)));
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].resumed_at(), 4);
}

#[tokio::test]
async fn malformed_events_fail_at_once_keeping_the_output_and_the_reason() {
    let fake = FakeLlm::start(fake(Fault::MalformedAfter(2), None)).await;
    let (k, _cfg) = start(&fake.url, "", &[]).await;
    let pid = job_pid(&k.sh("query hello &").await.stdout);
    let ps = k
        .eventually_wide("ps -l", "the process to fail", |ps| has_state(ps, pid, "Z"))
        .await;
    assert!(
        ps_line(&ps, pid).contains("sent a malformed stream"),
        "{ps}"
    );
    let cat = k.sh(&format!("cat {pid}")).await;
    assert_eq!(
        cat.stdout, "t0 t1 \n",
        "the output before the failure is kept"
    );
    assert!(cat.stderr.contains("sent a malformed stream"), "{cat:?}");
    let wait = k.sh(&format!("wait {pid}")).await;
    assert_eq!(wait.status, 1);
    assert!(wait.stderr.contains("sent a malformed stream"), "{wait:?}");
    assert_eq!(fake.requests().len(), 1, "not retried");
}

#[tokio::test]
async fn an_endless_answer_is_cut_at_the_allowance_and_frees_its_slot() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 1_000_000,
        delay: Duration::from_millis(1),
        ..fake(Fault::IgnoreMaxTokens, None)
    })
    .await;
    let (k, _cfg) = start(&fake.url, "", &[]).await;
    let pid = job_pid(&k.sh("query --max-tokens 5 hello &").await.stdout);
    let ps = k
        .eventually_wide("ps -l", "the allowance to end it", |ps| {
            has_state(ps, pid, "Z")
        })
        .await;
    let line = ps_line(&ps, pid);
    assert!(line.contains(" 5/5 "), "{line}");
    assert!(
        line.contains("[stopped at its token allowance (5)]"),
        "{line}"
    );
    assert_eq!(
        k.sh(&format!("cat {pid}")).await.stdout,
        format!("{}\n", answer(5))
    );
    fake.wait_for("the endless stream to be dropped", STEP, |f| {
        f.disconnects() == 1
    })
    .await;
    let run = k.sh("query --max-tokens 3 again").await;
    assert_eq!((run.status, run.stdout), (0, format!("{}\n", answer(3))));
}

#[tokio::test]
async fn work_resumes_by_itself_when_the_backend_comes_back() {
    let mut fake = FakeLlm::start(FakeConfig::default()).await;
    let (k, _cfg) = start(&fake.url, "", &["--cpus", "2"]).await;
    assert_eq!(k.sh("query warm").await.status, 0);
    fake.stop().await;
    let started = k.sh("query a & query b & query c &").await.stdout;
    let pids: Vec<u64> = started.lines().map(job_pid).collect();
    assert_eq!(pids.len(), 3, "{started}");
    k.eventually_wide("ps -l", "processes waiting out the dead backend", |ps| {
        pids.iter().all(|pid| has_state(ps, *pid, "Q"))
            && pids
                .iter()
                .any(|pid| ps_line(ps, *pid).contains("; retrying"))
    })
    .await;
    let before = fake.requests().len();
    fake.restart().await;
    k.eventually("ps", "every process to finish", |ps| {
        pids.iter().all(|pid| has_state(ps, *pid, "Z"))
    })
    .await;
    for pid in &pids {
        let cat = k.sh(&format!("cat {pid}")).await;
        assert_eq!(cat.stdout, format!("{}\n", answer(10)), "{cat:?}");
        let wait = k.sh(&format!("wait {pid}")).await;
        assert_eq!(wait.status, 0, "{pid}: {wait:?}");
    }
    let requests = fake.requests();
    assert!(
        requests.len() >= before + 3,
        "every process ran after the restart"
    );
    assert!(fake.max_active() <= 2, "never more streams than slots");
    k.eventually("ps", "an empty table", |ps| ps.lines().count() == 1)
        .await;
}

#[tokio::test]
async fn ps_sched_and_interrupts_answer_while_every_slot_hangs() {
    let hang = Fault::FirstByteDelay(Duration::from_secs(600));
    let fake = FakeLlm::start(fake(hang, None)).await;
    let (k, _cfg) = start(
        &fake.url,
        "first_token_timeout_secs = 600\n",
        &["--cpus", "2"],
    )
    .await;
    let started = k.sh("query a & query b & query c &").await.stdout;
    let pids: Vec<u64> = started.lines().map(job_pid).collect();
    fake.wait_for("both slots' requests to hang", STEP, |f| {
        f.requests().len() == 2
    })
    .await;
    let ps = k.sh("ps").await;
    assert_eq!(ps.status, 0, "{ps:?}");
    let states: Vec<bool> = pids
        .iter()
        .map(|p| has_state(&ps.stdout, *p, "R"))
        .collect();
    assert_eq!(states, [true, true, false], "{}", ps.stdout);
    assert!(has_state(&ps.stdout, pids[2], "Q"));
    let sched = k.sh("sched").await;
    assert_eq!(sched.status, 0, "{sched:?}");
    let interrupts = k.sh("interrupts").await;
    assert_eq!(interrupts.status, 0, "{interrupts:?}");
}

#[tokio::test]
async fn no_slot_stays_held_after_failures() {
    let fake = FakeLlm::start(FakeConfig {
        delay: Duration::from_millis(20),
        ..fake(Fault::Status(500), Some(2))
    })
    .await;
    let (k, _cfg) = start(
        &fake.url,
        "token_timeout_secs = 0.3\nmax_retries = 0\n",
        &["--cpus", "2"],
    )
    .await;
    assert_eq!(k.sh("query a & query b & wait").await.status, 0);
    for fault in [
        Fault::StallAfter(1),
        Fault::ResetAfter(1),
        Fault::MalformedAfter(1),
    ] {
        fake.set(|c| {
            c.fault = Some(fault);
            c.fault_limit = None;
        });
        assert_eq!(k.sh("query x").await.status, 1);
    }
    fake.set(|c| c.fault = None);
    let started = k
        .sh("query '[tokens=200] a' & query '[tokens=200] b' &")
        .await
        .stdout;
    let pids: Vec<u64> = started.lines().map(job_pid).collect();
    k.eventually("ps", "both slots to run", |ps| {
        pids.iter().all(|p| has_state(ps, *p, "R"))
    })
    .await;
}
