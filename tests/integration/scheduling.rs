//! Preemptive scheduling end to end: token quanta, preemption and resumption as continuations,
//! STOP/CONT, renice, the four policies, `ps`'s queue columns, and the backend-specific extras
//! (llama-server slot pinning, vLLM priorities), against the fake server over real HTTP.

use crate::support::fake_llm::{FakeConfig, FakeLlm, Recorded, ServerKind, answer};
use crate::support::{TestKernel, job_pid, ps_row};
use std::time::Duration;

fn paced(delay_ms: u64) -> FakeConfig {
    FakeConfig {
        tokens: 2000,
        delay: Duration::from_millis(delay_ms),
        ..Default::default()
    }
}

/// Tokens used, from a `ps` row.
fn tokens(row: &[String]) -> usize {
    row[6].split('/').next().and_then(|t| t.parse().ok()).unwrap_or(0)
}

async fn background(k: &TestKernel, command: &str) -> u64 {
    let run = k.sh(&format!("{command} &")).await;
    assert_eq!(run.status, 0, "{run:?}");
    job_pid(&run.stdout)
}

async fn state_is(k: &TestKernel, pid: u64, stat: &str) -> Vec<String> {
    let ps = k
        .eventually("ps", &format!("{pid} to be {stat}"), |ps| {
            ps_row(ps, pid).is_some_and(|r| r[5].starts_with(stat))
        })
        .await;
    ps_row(&ps, pid).unwrap_or_default()
}

/// The whole output of a process that has finished, then reaps it.
async fn final_output(k: &TestKernel, pid: u64) -> String {
    state_is(k, pid, "Z").await;
    let out = k.sh(&format!("cat {pid}")).await.stdout;
    assert_eq!(k.sh(&format!("wait {pid}")).await.status, 0);
    out.trim_end_matches('\n').to_string()
}

fn requests_for(fake: &FakeLlm, prompt: &str) -> Vec<Recorded> {
    let requests = fake.requests();
    requests
        .into_iter()
        .filter(|r| r.user_prompt().contains(prompt))
        .collect()
}

/// Tokens the fake sent for requests whose prompt contains `prompt`, before the first token of the
/// first request whose prompt contains `first_of`.
fn sent_before(fake: &FakeLlm, prompt: &str, first_of: &str) -> usize {
    let requests = fake.requests();
    let matches = |i: usize, p: &str| requests[i].user_prompt().contains(p);
    let log = fake.token_log();
    let start = log
        .iter()
        .position(|(i, _)| matches(*i, first_of))
        .expect("the later stream began");
    log[..start].iter().filter(|(i, _)| matches(*i, prompt)).count()
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
    assert_eq!((r.id_slot(), r.cache_prompt(), r.priority()), (None, None, None), "a plain server gets no extras");
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
        hk.push(background(&k, &format!("query --type housekeeping '[tokens=250] chores{n}'")).await);
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
    let slack = 3; // tokens in flight when the switch was decided
    assert!(
        sent.iter().zip(&at_arrival).any(|(s, a)| *s <= a + quantum + slack),
        "the user query waited more than a quantum: sent {sent:?}, at arrival {at_arrival:?}"
    );
    for pid in hk {
        assert_eq!(final_output(&k, pid).await, answer(250), "one unbroken answer");
    }
    let resumed: Vec<Recorded> = fake.requests().into_iter().filter(|r| r.resumed_at() > 0).collect();
    assert!(!resumed.is_empty(), "the preempted process resumed as a continuation");
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
    assert_eq!((qpos(&ps, first), qpos(&ps, second)), (Some("1".into()), Some("2".into())));
    assert_eq!(k.sh(&format!("renice -n -5 {second}")).await.status, 0);
    let ps = k.sh("ps").await.stdout;
    assert_eq!((qpos(&ps, first), qpos(&ps, second)), (Some("2".into()), Some("1".into())));
    k.sh(&format!("kill -KILL {blocker} {first} {second}")).await;
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
    assert!(eta.ends_with('s') && eta[..eta.len() - 1].chars().any(|c| c.is_ascii_digit()), "{row:?}");
    let long = k.sh("ps -l").await.stdout;
    let header: Vec<&str> = long.lines().next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(&header[9..14], ["CSW", "SLOT", "QPOS", "ETA", "TOK/S"]);
    let running = ps_row(&long, blocker).expect("blocker row");
    assert_eq!(running[10], "0", "slot");
    assert!(running[13].parse::<f64>().unwrap_or(0.0) > 0.0, "tokens/s: {running:?}");
    k.sh(&format!("kill -KILL {blocker} {waiting}")).await;
}

#[tokio::test]
async fn rr_alternates_processes_quantum_by_quantum() {
    let fake = FakeLlm::start(paced(20)).await;
    let k = TestKernel::start(&fake.url, &["--policy", "rr", "--quantum", "4"]).await;
    let run = k.sh("query '[tokens=24] alpha' & query --type housekeeping '[tokens=24] beta' &").await;
    let pids: Vec<u64> = run.stdout.lines().map(job_pid).collect();
    for pid in pids {
        assert_eq!(final_output(&k, pid).await, answer(24));
    }
    let order: Vec<(bool, usize)> = fake
        .requests()
        .iter()
        .map(|r| (r.user_prompt().contains("alpha"), r.resumed_at()))
        .collect();
    assert!(order.len() >= 6, "{order:?}");
    assert!(order.windows(2).all(|w| w[0].0 != w[1].0), "turns alternate: {order:?}");
    assert!(order.iter().all(|(_, at)| at % 4 == 0), "switches at quantum boundaries: {order:?}");
}

#[tokio::test]
async fn fair_splits_tokens_by_nice_weight() {
    let fake = FakeLlm::start(paced(3)).await;
    let k = TestKernel::start(&fake.url, &["--policy", "fair", "--quantum", "4"]).await;
    let heavy = background(&k, "query --type housekeeping heavy").await;
    let light = background(&k, "nice -n 5 query light").await;
    let snapshot = |ps: &str| {
        let t = |pid| ps_row(ps, pid).map_or(0, |r| tokens(&r));
        (t(heavy), t(light))
    };
    let ps = k
        .eventually("ps", "both to have run", |ps| {
            let (h, l) = snapshot(ps);
            h >= 20 && l >= 8
        })
        .await;
    let start = snapshot(&ps);
    let ps = k
        .eventually("ps", "a few hundred tokens", |ps| {
            let (h, l) = snapshot(ps);
            h + l >= start.0 + start.1 + 400
        })
        .await;
    let end = snapshot(&ps);
    let ratio = (end.0 - start.0) as f64 / (end.1 - start.1).max(1) as f64;
    assert!((2.3..=4.0).contains(&ratio), "nice 0 : nice 5 = {ratio:.2}, want about 3.05");
    k.sh(&format!("kill -KILL {heavy} {light}")).await;
}

#[tokio::test]
async fn mlfq_sinks_a_long_generator_below_a_new_short_query() {
    let fake = FakeLlm::start(paced(5)).await;
    let k = TestKernel::start(&fake.url, &["--policy", "mlfq", "--quantum", "4"]).await;
    let long = background(&k, "query '[tokens=1500] long'").await;
    k.eventually("ps", "the long generator to sink", |ps| {
        ps_row(ps, long).is_some_and(|r| r[3] == "0" && r[5] == "R")
    })
    .await;
    let run = k.sh("query --type housekeeping '[tokens=5] short' & ps").await;
    let short = job_pid(&run.stdout);
    let at_arrival = tokens(&ps_row(&run.stdout, long).expect("long row"));
    assert_eq!(
        ps_row(&run.stdout, short).map(|r| r[3].clone()),
        Some("3".into()),
        "a newcomer is at the top level"
    );
    assert_eq!(final_output(&k, short).await, answer(5));
    assert!(sent_before(&fake, "long", "short") <= at_arrival + 4 + 3);
    k.sh(&format!("kill -KILL {long}")).await;
}

#[tokio::test]
async fn priority_ages_a_starving_process_past_a_higher_one() {
    let fake = FakeLlm::start(paced(5)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("llmkernel");
    std::fs::create_dir_all(&config).expect("config dir");
    // 1000 points a second: HOUSEKEEPING (20) overtakes USER (80) after 60 ms of waiting.
    std::fs::write(config.join("config.toml"), "aging = 1000\nquantum = 4\n").expect("config");
    let k = TestKernel::start_in(dir, &fake.url, &[]).await;
    let user = background(&k, "query '[tokens=1500] important'").await;
    state_is(&k, user, "R").await;
    let hk = background(&k, "query --type housekeeping '[tokens=8] chores'").await;
    assert_eq!(final_output(&k, hk).await, answer(8));
    let row = ps_row(&k.sh("ps").await.stdout, user).expect("user row");
    assert_ne!(row[5], "Z", "the housekeeping process ran before the user one finished");
    k.sh(&format!("kill -KILL {user}")).await;
}

#[tokio::test]
async fn sched_shows_and_switches_the_policy_at_run_time() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &["--policy", "fair"]).await;
    let run = k.sh("sched").await;
    assert!(run.stdout.contains("policy: fair\n"), "{}", run.stdout);
    assert!(run.stdout.contains("available: priority rr fair mlfq"), "{}", run.stdout);
    let run = k.sh("sched mlfq; sched").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert!(run.stdout.ends_with("context switches: 0\n"));
    assert_eq!(run.stdout.matches("policy: mlfq").count(), 2, "{}", run.stdout);
    let run = k.sh("sched lottery").await;
    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("unknown policy `lottery`"), "{}", run.stderr);
    let pid = background(&k, "query after the switch").await;
    assert_eq!(final_output(&k, pid).await, answer(10));
}

#[tokio::test]
async fn llama_server_gets_each_process_pinned_to_its_slot_with_the_prompt_cache_kept() {
    let fake = FakeLlm::start(FakeConfig {
        kind: ServerKind::LlamaCpp { slots: 2 },
        ..paced(5)
    })
    .await;
    let k = TestKernel::start(&fake.url, &["--cpus", "2", "--quantum", "4"]).await;
    let hk: Vec<u64> = [
        background(&k, "query --type housekeeping '[tokens=60] one'").await,
        background(&k, "query --type housekeeping '[tokens=60] two'").await,
    ]
    .to_vec();
    let user = background(&k, "query '[tokens=10] three'").await;
    for pid in hk.iter().chain([&user]) {
        final_output(&k, *pid).await;
    }
    let requests = fake.requests();
    assert!(requests.len() >= 4, "a preemption and a resume happened");
    assert!(requests.iter().all(|r| r.cache_prompt() == Some(true)));
    let slots: Vec<u64> = requests.iter().filter_map(Recorded::id_slot).collect();
    assert_eq!(slots.len(), requests.len(), "every request is pinned");
    assert!(slots.iter().all(|s| *s < 2));
    assert_ne!(requests[0].id_slot(), requests[1].id_slot());
    assert_eq!(fake.props_requests(), 1, "the kind is learned once");
}

#[tokio::test]
async fn a_configured_backend_kind_overrides_detection() {
    let fake = FakeLlm::start(FakeConfig {
        kind: ServerKind::LlamaCpp { slots: 1 },
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("llmkernel");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(config.join("config.toml"), "[backend]\nkind = \"openai\"\n").expect("config");
    let k = TestKernel::start_in(dir, &fake.url, &[]).await;
    let pid = background(&k, "query plain").await;
    final_output(&k, pid).await;
    let r = &fake.requests()[0];
    assert_eq!((r.id_slot(), r.cache_prompt()), (None, None));
    assert_eq!(fake.props_requests(), 0);
}

#[tokio::test]
async fn vllm_gets_the_effective_priority_until_it_rejects_it() {
    let fake = FakeLlm::start(FakeConfig {
        kind: ServerKind::Vllm { rejects_priority: false },
        ..Default::default()
    })
    .await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let pid = background(&k, "query ranked").await;
    final_output(&k, pid).await;
    let priority = fake.requests()[0].priority();
    assert!(priority.is_some_and(|p| (-82..=-80).contains(&p)), "USER is 80, lower is earlier in vLLM: {priority:?}");

    fake.set(|c| c.kind = ServerKind::Vllm { rejects_priority: true });
    let k = TestKernel::start(&fake.url, &[]).await;
    let pid = background(&k, "query refused").await;
    assert_eq!(final_output(&k, pid).await, answer(10));
    let pid = background(&k, "query again").await;
    final_output(&k, pid).await;
    let refused = requests_for(&fake, "refused");
    assert_eq!(refused.len(), 2, "retried once without the priority");
    assert!(refused[0].priority().is_some() && refused[1].priority().is_none());
    assert!(requests_for(&fake, "again")[0].priority().is_none());
}

#[tokio::test]
async fn a_process_resumed_on_its_pinned_slot_reuses_the_cached_conversation() {
    let fake = FakeLlm::start(FakeConfig {
        kind: ServerKind::LlamaCpp { slots: 1 },
        ..paced(10)
    })
    .await;
    let k = TestKernel::start(&fake.url, &["--quantum", "4"]).await;
    let pid = background(&k, "query '[tokens=60] kept warm'").await;
    k.eventually("ps", "tokens to flow", |ps| {
        ps_row(ps, pid).is_some_and(|r| tokens(&r) >= 12)
    })
    .await;
    k.sh(&format!("kill -STOP {pid}")).await;
    state_is(&k, pid, "T").await;
    let before = fake.prefilled();
    k.sh(&format!("kill -CONT {pid}")).await;
    assert_eq!(final_output(&k, pid).await, answer(60));
    let resumed = &fake.requests()[1];
    assert!(resumed.resumed_at() >= 12 && resumed.id_slot() == Some(0));
    let reprocessed = fake.prefilled() - before;
    assert!(reprocessed <= 3, "the slot's cache held the conversation: {reprocessed} prompt tokens redone");
}
