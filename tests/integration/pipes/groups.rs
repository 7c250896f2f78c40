//! A pipeline in the kernel: its readers wait blocked (STAT `S`, PPID and PGID in `ps -l`, under
//! their upstream in `ps f`), a group takes one signal, a killed upstream fails its reader and a
//! reader that ends unread breaks its upstream's pipe (141), and a background pipeline outlives
//! the shell that started it.

use super::start;
use crate::support::fake_llm::{FakeConfig, answer};
use crate::support::{job_pid, ps_row};
use std::time::Duration;

fn slow() -> FakeConfig {
    FakeConfig {
        tokens: 10,
        delay: Duration::from_millis(10),
        ..Default::default()
    }
}

/// The pids of a background pipeline, first to last: the last is printed, the others precede it.
fn pipeline_pids(stdout: &str, stages: u64) -> Vec<u64> {
    let last = job_pid(stdout);
    (last + 1 - stages..=last).collect()
}

#[tokio::test]
async fn a_reader_waits_blocked_in_ps_with_its_parent_and_group_and_under_it_in_the_forest() {
    let (_fake, k, _cfg) = start(slow(), &[]).await;
    let run = k
        .sh("query '[tokens=5000] long story' | query 'translate it' &")
        .await;
    assert_eq!(run.status, 0, "{run:?}");
    let pids = pipeline_pids(&run.stdout, 2);
    let (up, reader) = (pids[0], pids[1]);
    let ps = k
        .eventually_wide("ps -l", "the upstream to run", |ps| {
            ps_row(ps, up).is_some_and(|r| r[5] == "R")
        })
        .await;
    let header: Vec<&str> = ps.lines().next().unwrap().split_whitespace().collect();
    let ppid = header.iter().position(|h| *h == "PPID").expect("PPID");
    assert_eq!(header[ppid + 1], "PGID", "{ps}");
    let up_text = up.to_string();
    let row = ps_row(&ps, reader).expect("the reader is listed");
    assert_eq!(
        (row[ppid].as_str(), row[ppid + 1].as_str()),
        (up_text.as_str(), up_text.as_str())
    );
    assert_eq!(row[5], "S", "{ps}");
    assert!(
        ps.contains(&format!("[waiting for the output of {up}]")),
        "{ps}"
    );
    let up_row = ps_row(&ps, up).unwrap();
    assert_eq!(
        (up_row[ppid].as_str(), up_row[ppid + 1].as_str()),
        ("-", up_text.as_str())
    );
    let forest = k.sh("ps f").await.stdout;
    let lines: Vec<&str> = forest.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("long story"))
        .expect("upstream row");
    assert!(lines[at + 1].ends_with("\\_ translate it"), "{forest}");
    let jobs = k.sh(&format!("kill -TERM -{up}; wait {reader}")).await;
    assert_eq!(jobs.status, 143, "{jobs:?}");
    assert_eq!(k.sh(&format!("wait {up}")).await.status, 143);
}

#[tokio::test]
async fn a_killed_upstream_fails_its_reader_and_a_reader_ending_unread_breaks_the_pipe() {
    let (_fake, k, _cfg) = start(slow(), &[]).await;
    let run = k.sh("query '[tokens=5000] endless' | query next &").await;
    let pids = pipeline_pids(&run.stdout, 2);
    let wait = k
        .sh(&format!("kill -9 {}; wait {}", pids[0], pids[1]))
        .await;
    assert_eq!(wait.status, 1, "{wait:?}");
    let reason = format!("its input, process {}, was killed by SIGKILL", pids[0]);
    assert!(wait.stderr.contains(&reason), "{wait:?}");

    let run = k.sh("query '[tokens=5000] endless' | query next &").await;
    let pids = pipeline_pids(&run.stdout, 2);
    let wait = k.sh(&format!("kill {}; wait {}", pids[1], pids[0])).await;
    assert_eq!(wait.status, 141, "SIGPIPE: {wait:?}");
}

#[tokio::test]
async fn a_pipeline_is_one_job_that_kill_and_wait_take_whole() {
    let (_fake, k, _cfg) = start(slow(), &[]).await;
    let run = k
        .sh("query '[tokens=5000] a' | query b & jobs; kill %1; wait %1")
        .await;
    assert_eq!(run.status, 143, "{run:?}");
    let jobs: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("[1]+"))
        .collect();
    assert_eq!(jobs.len(), 1, "{run:?}");
    assert!(
        jobs[0].contains("query '[tokens=5000] a' | query b"),
        "{run:?}"
    );
    let ps = k.sh("ps").await.stdout;
    assert_eq!(
        ps.lines().count(),
        1,
        "the whole pipeline was collected: {ps}"
    );
    let run = k.sh("query a | query b & wait").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert!(
        run.stdout.contains(&answer(10)),
        "wait shows the last answer: {run:?}"
    );
}

#[tokio::test]
async fn a_background_pipeline_keeps_running_after_the_shell_exits() {
    let (fake, k, _cfg) = start(slow(), &[]).await;
    let run = k.sh("query 'first draft' | query 'improve it' &").await;
    assert_eq!(run.status, 0, "{run:?}");
    let pids = pipeline_pids(&run.stdout, 2);
    k.eventually("ps", "both to finish", |ps| {
        pids.iter()
            .all(|p| ps_row(ps, *p).is_some_and(|r| r[5] == "Z"))
    })
    .await;
    assert_eq!(
        k.sh(&format!("cat {}", pids[1])).await.stdout,
        format!("{}\n", answer(10))
    );
    assert_eq!(
        fake.requests()[1].user_prompt(),
        format!("improve it\n\n{}", answer(10))
    );
}
