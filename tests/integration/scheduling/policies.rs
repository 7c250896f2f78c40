//! Each policy's defining property end to end: rr alternates, fair splits by weight, mlfq sinks long
//! generators, priority ages a starving process up; and `sched` switching policies at run time.

use super::{background, final_output, paced, state_is, tokens};
use crate::support::fake_llm::{FakeConfig, FakeLlm, answer};
use crate::support::{STEP, TestKernel, job_pid, ps_row};

#[tokio::test]
async fn rr_alternates_processes_quantum_by_quantum() {
    let fake = FakeLlm::start(paced(20)).await;
    let k = TestKernel::start(&fake.url, &["--policy", "rr", "--quantum", "4"]).await;
    let run = k
        .sh("query '[tokens=24] alpha' & query --type housekeeping '[tokens=24] beta' &")
        .await;
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
    assert!(
        order.windows(2).all(|w| w[0].0 != w[1].0),
        "turns alternate: {order:?}"
    );
    assert!(
        order.iter().all(|(_, at)| at % 4 == 0),
        "switches at quantum boundaries: {order:?}"
    );
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
    assert!(
        (2.3..=4.0).contains(&ratio),
        "nice 0 : nice 5 = {ratio:.2}, want about 3.05"
    );
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
    let run = k
        .sh("query --type housekeeping '[tokens=5] short' & ps")
        .await;
    let short = job_pid(&run.stdout);
    let at_arrival = tokens(&ps_row(&run.stdout, long).expect("long row"));
    assert_eq!(
        ps_row(&run.stdout, short).map(|r| r[3].clone()),
        Some("3".into()),
        "a newcomer is at the top level"
    );
    assert_eq!(final_output(&k, short).await, answer(5));
    // The long generator yields at its first quantum boundary after the newcomer arrived: it keeps
    // at most a quantum more than it had then. (The fake's own count of tokens sent is no measure:
    // on a busy machine it streams on for as long as the kernel takes to hang up.)
    let long_requests = |f: &FakeLlm| {
        let all = f.requests();
        all.into_iter()
            .filter(|r| r.user_prompt().contains("long"))
            .collect::<Vec<_>>()
    };
    fake.wait_for("the long generator to resume", STEP, |f| {
        long_requests(f).len() >= 2
    })
    .await;
    let kept = long_requests(&fake)[1].resumed_at();
    assert!(
        kept <= at_arrival + 4,
        "kept {kept} tokens, had {at_arrival} when the newcomer arrived"
    );
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
    assert_ne!(
        row[5], "Z",
        "the housekeeping process ran before the user one finished"
    );
    k.sh(&format!("kill -KILL {user}")).await;
}

#[tokio::test]
async fn sched_shows_and_switches_the_policy_at_run_time() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &["--policy", "fair"]).await;
    let run = k.sh("sched").await;
    assert!(run.stdout.contains("policy: fair\n"), "{}", run.stdout);
    assert!(
        run.stdout.contains("available: priority rr fair mlfq"),
        "{}",
        run.stdout
    );
    let run = k.sh("sched mlfq; sched").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert!(
        run.stdout.contains("context switches: 0\n"),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stdout.matches("policy: mlfq").count(),
        2,
        "{}",
        run.stdout
    );
    let run = k.sh("sched lottery").await;
    assert_eq!(run.status, 1);
    assert!(
        run.stderr.contains("unknown policy `lottery`"),
        "{}",
        run.stderr
    );
    let pid = background(&k, "query after the switch").await;
    assert_eq!(final_output(&k, pid).await, answer(10));
}
