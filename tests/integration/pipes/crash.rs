//! A pipeline survives a crash: kill -9 the kernel while the first query streams and its readers
//! wait, and after the restart every stage completes with its input and output intact.

use crate::support::fake_llm::{FakeConfig, FakeLlm, answer};
use crate::support::{TestKernel, config_file, job_pid, ps_row};
use std::time::Duration;

#[tokio::test]
async fn sigkill_mid_pipeline_and_the_pipeline_completes_after_the_restart() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 10,
        delay: Duration::from_millis(5),
        ..Default::default()
    })
    .await;
    let (dir, config) = config_file("quantum = 8\n");
    let args = ["--config", config.as_str()];
    let k = TestKernel::start_in(dir, &fake.url, &args).await;
    let run = k
        .sh("query '[tokens=300] draft' | query 'shorten' | query 'title' &")
        .await;
    assert_eq!(run.status, 0, "{run:?}");
    let last = job_pid(&run.stdout);
    let (first, middle) = (last - 2, last - 1);
    k.eventually("ps", "the first stage to stream", |ps| {
        ps_row(ps, first)
            .is_some_and(|r| r[6].split('/').next().and_then(|n| n.parse::<u32>().ok()) > Some(20))
            && ps_row(ps, middle).is_some_and(|r| r[5] == "S")
    })
    .await;
    let dir = k.crash().await;

    let k = TestKernel::start_in(dir, &fake.url, &args).await;
    let ps = k.sh("ps").await.stdout;
    assert_eq!(
        ps_row(&ps, middle).expect("the middle stage")[5],
        "S",
        "{ps}"
    );
    assert_eq!(ps_row(&ps, last).expect("the last stage")[5], "S", "{ps}");
    let wait = k.sh(&format!("wait {last}")).await;
    assert_eq!(wait.status, 0, "{wait:?}");
    assert_eq!(
        k.sh(&format!("cat {first}")).await.stdout,
        format!("{}\n", answer(300))
    );
    let prompts: Vec<String> = fake.requests().iter().map(|r| r.user_prompt()).collect();
    let shorten = format!("shorten\n\n{}", answer(300));
    assert!(
        prompts.contains(&shorten),
        "the whole first output: {prompts:?}"
    );
    let title = format!("title\n\n{}", answer(10));
    assert!(prompts.contains(&title), "{prompts:?}");
}
