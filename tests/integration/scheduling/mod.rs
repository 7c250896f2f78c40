//! Preemptive scheduling end to end: token quanta, preemption and resumption as continuations,
//! STOP/CONT, renice, the four policies, `ps`'s queue columns, and the backend-specific extras
//! (llama-server slot pinning, vLLM priorities), against the fake server over real HTTP. The
//! policies' own properties are in [`policies`], the backend extras in [`backends`], switching at
//! once and the slots kept for interactive work in [`switching`]; the helpers here serve them all.

mod backends;
mod policies;
mod switching;

use crate::support::fake_llm::{FakeConfig, FakeLlm, Recorded, answer};
use crate::support::{TestKernel, job_pid, ps_row};
use std::time::Duration;

pub(super) fn paced(delay_ms: u64) -> FakeConfig {
    FakeConfig {
        tokens: 2000,
        delay: Duration::from_millis(delay_ms),
        ..Default::default()
    }
}

/// Tokens used, from a `ps` row.
pub(super) fn tokens(row: &[String]) -> usize {
    row[6]
        .split('/')
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

pub(super) async fn background(k: &TestKernel, command: &str) -> u64 {
    let run = k.sh(&format!("{command} &")).await;
    assert_eq!(run.status, 0, "{run:?}");
    job_pid(&run.stdout)
}

pub(super) async fn state_is(k: &TestKernel, pid: u64, stat: &str) -> Vec<String> {
    let ps = k
        .eventually("ps", &format!("{pid} to be {stat}"), |ps| {
            ps_row(ps, pid).is_some_and(|r| r[5].starts_with(stat))
        })
        .await;
    ps_row(&ps, pid).unwrap_or_default()
}

/// The whole output of a process that has finished, then reaps it.
pub(super) async fn final_output(k: &TestKernel, pid: u64) -> String {
    state_is(k, pid, "Z").await;
    let out = k.sh(&format!("cat {pid}")).await.stdout;
    assert_eq!(k.sh(&format!("wait {pid}")).await.status, 0);
    out.trim_end_matches('\n').to_string()
}

pub(super) fn requests_for(fake: &FakeLlm, prompt: &str) -> Vec<Recorded> {
    let requests = fake.requests();
    requests
        .into_iter()
        .filter(|r| r.user_prompt().contains(prompt))
        .collect()
}

/// Tokens the fake sent for requests whose prompt contains `prompt`, before the first token of the
/// first request whose prompt contains `first_of`.
pub(super) fn sent_before(fake: &FakeLlm, prompt: &str, first_of: &str) -> usize {
    let requests = fake.requests();
    let matches = |i: usize, p: &str| requests[i].user_prompt().contains(p);
    let log = fake.token_log();
    let start = log
        .iter()
        .position(|(i, _)| matches(*i, first_of))
        .expect("the later stream began");
    log[..start]
        .iter()
        .filter(|(i, _)| matches(*i, prompt))
        .count()
}

#[tokio::test]
async fn an_uncontended_long_answer_is_one_request_on_one_stream() {
    let fake = FakeLlm::start(paced(1)).await;
    let k = TestKernel::start(&fake.url, &["--quantum", "4"]).await;
    let pid = background(&k, "query '[tokens=200] alone'").await;
    assert_eq!(final_output(&k, pid).await, answer(200));
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "no switch when nothing waits");
    assert_eq!(fake.disconnects(), 0);
    let r = &requests[0];
    assert_eq!(
        (r.id_slot(), r.cache_prompt(), r.priority()),
        (None, None, None),
        "a plain server gets no extras"
    );
    let sched = k.sh("sched").await.stdout;
    assert!(sched.contains("context switches: 0"), "{sched}");
}

async fn user_query_preempts_housekeeping(echo_prefix: bool) {
    let quantum = 8;
    let fake = FakeLlm::start(FakeConfig {
        echo_prefix,
        ..paced(10)
    })
    .await;
    let k = TestKernel::start(&fake.url, &["--cpus", "2", "--quantum", "8"]).await;
    let mut hk = Vec::new();
    for n in 0..2 {
        hk.push(
            background(
                &k,
                &format!("query --type housekeeping '[tokens=250] chores{n}'"),
            )
            .await,
        );
    }
    for pid in &hk {
        k.eventually("ps", "housekeeping to run", |ps| {
            ps_row(ps, *pid).is_some_and(|r| r[5] == "R" && tokens(&r) >= 10)
        })
        .await;
    }
    // The `ps` right after the query: an upper bound of what each had generated when it arrived.
    let run = k.sh("query --type user '[tokens=20] question' & ps").await;
    let user = job_pid(&run.stdout);
    let at_arrival: Vec<usize> = hk
        .iter()
        .map(|pid| tokens(&ps_row(&run.stdout, *pid).expect("housekeeping row")))
        .collect();
    assert_eq!(final_output(&k, user).await, answer(20));
    let sent: Vec<usize> = (0..2)
        .map(|n| sent_before(&fake, &format!("chores{n}"), "question"))
        .collect();
    // Tokens already sent into the socket buffers when the switch was decided: a few, but up to
    // another quantum when the machine is loaded and the kernel reads behind the server.
    let slack = quantum;
    assert!(
        sent.iter()
            .zip(&at_arrival)
            .any(|(s, a)| *s <= a + quantum + slack),
        "the user query waited more than a quantum: sent {sent:?}, at arrival {at_arrival:?}"
    );
    for pid in hk {
        assert_eq!(
            final_output(&k, pid).await,
            answer(250),
            "one unbroken answer"
        );
    }
    let resumed: Vec<Recorded> = fake
        .requests()
        .into_iter()
        .filter(|r| r.resumed_at() > 0)
        .collect();
    assert!(
        !resumed.is_empty(),
        "the preempted process resumed as a continuation"
    );
    let sched = k.sh("sched").await.stdout;
    assert!(!sched.contains("context switches: 0"), "{sched}");
    let long = k.sh("ps -l").await;
    assert!(long.status == 0);
}

#[tokio::test]
async fn a_user_query_preempts_housekeeping_within_a_quantum_and_the_preempted_one_resumes_whole() {
    user_query_preempts_housekeeping(false).await;
}

#[tokio::test]
async fn preemption_and_resume_read_as_one_answer_when_the_server_echoes_the_prefix() {
    user_query_preempts_housekeeping(true).await;
}

#[tokio::test]
async fn stop_frees_the_slot_at_once_and_cont_takes_one_again() {
    let fake = FakeLlm::start(paced(10)).await;
    let k = TestKernel::start(&fake.url, &["--quantum", "4"]).await;
    let a = background(&k, "query '[tokens=60] first'").await;
    k.eventually("ps", "tokens to flow", |ps| {
        ps_row(ps, a).is_some_and(|r| tokens(&r) >= 4)
    })
    .await;
    let b = background(&k, "query --type housekeeping '[tokens=60] second'").await;
    state_is(&k, b, "Q").await;
    assert_eq!(k.sh(&format!("kill -STOP {a}")).await.status, 0);
    let row = state_is(&k, a, "T").await;
    assert!(tokens(&row) > 0, "output kept");
    state_is(&k, b, "R").await;
    assert!(k.sh(&format!("cat {a}")).await.stdout.starts_with("t0 "));
    assert_eq!(k.sh(&format!("kill -CONT {a}")).await.status, 0);
    state_is(&k, a, "R").await;
    assert_eq!(final_output(&k, a).await, answer(60));
    assert_eq!(final_output(&k, b).await, answer(60));
}

#[tokio::test]
async fn renice_reorders_the_run_queue() {
    let fake = FakeLlm::start(paced(10)).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let blocker = background(&k, "query blocker").await;
    state_is(&k, blocker, "R").await;
    let first = background(&k, "query --type housekeeping first").await;
    let second = background(&k, "nice -n 5 query --type housekeeping second").await;
    let ps = k.sh("ps").await.stdout;
    let qpos = |ps: &str, pid| ps_row(ps, pid).map(|r| r[8].clone());
    assert_eq!(
        (qpos(&ps, first), qpos(&ps, second)),
        (Some("1".into()), Some("2".into()))
    );
    assert_eq!(k.sh(&format!("renice -n -5 {second}")).await.status, 0);
    let ps = k.sh("ps").await.stdout;
    assert_eq!(
        (qpos(&ps, first), qpos(&ps, second)),
        (Some("2".into()), Some("1".into()))
    );
    k.sh(&format!("kill -KILL {blocker} {first} {second}"))
        .await;
}

#[tokio::test]
async fn ps_shows_queue_place_and_eta_and_ps_l_switches_slot_and_rate() {
    let fake = FakeLlm::start(paced(5)).await;
    let k = TestKernel::start(&fake.url, &["--quantum", "4"]).await;
    let warmup = background(&k, "query '[tokens=10] warm up'").await;
    final_output(&k, warmup).await;
    let blocker = background(&k, "query '[tokens=1500] blocker'").await;
    k.eventually("ps", "tokens to flow", |ps| {
        ps_row(ps, blocker).is_some_and(|r| tokens(&r) >= 5)
    })
    .await;
    let waiting = background(&k, "query --type housekeeping waiting").await;
    let row = state_is(&k, waiting, "Q").await;
    assert_eq!(row[8], "1");
    let eta = &row[9];
    assert!(
        eta.ends_with('s') && eta[..eta.len() - 1].chars().any(|c| c.is_ascii_digit()),
        "{row:?}"
    );
    let long = k.sh("ps -l").await.stdout;
    let header: Vec<&str> = long
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(&header[10..15], ["CSW", "SLOT", "QPOS", "ETA", "TOK/S"]);
    let running = ps_row(&long, blocker).expect("blocker row");
    assert_eq!(running[11], "0", "slot");
    assert!(
        running[14].parse::<f64>().unwrap_or(0.0) > 0.0,
        "tokens/s: {running:?}"
    );
    k.sh(&format!("kill -KILL {blocker} {waiting}")).await;
}
