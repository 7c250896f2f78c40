//! `retention_secs` while the kernel runs: finished processes nobody collects (every interrupt
//! handler, a background query never waited for) leave the table once the retention has passed.

use crate::support::fake_llm::{FakeConfig, FakeLlm};
use crate::support::{TestKernel, config_file, job_pid};

#[tokio::test]
async fn uncollected_zombies_are_reaped_once_the_retention_has_passed() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let (dir, path) = config_file("retention_secs = 1\n");
    let k = TestKernel::start_in(dir, &fake.url, &["--config", &path]).await;
    let query = k.sh("query \"[tokens=2] background\" &").await;
    let pid = job_pid(&query.stdout);
    let handler = k.sh("interrupt timer").await;
    assert_eq!(handler.status, 0, "{handler:?}");
    k.eventually("ps -a", "the finished processes to be reaped", |ps| {
        ps.lines().skip(1).all(|l| l.trim().is_empty())
    })
    .await;
    let cat = k.sh(&format!("cat {pid}")).await;
    assert!(cat.stderr.contains("No such process"), "{cat:?}");
    assert_eq!(fake.requests().len(), 2, "both ran before they were reaped");
}
