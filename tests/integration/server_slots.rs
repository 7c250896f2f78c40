//! What the kernel says about the server: more `--cpus` than the server has slots is a warning at
//! start-up and in `sched`, naming both numbers.

use crate::support::STEP;
use crate::support::fake_llm::{FakeConfig, FakeLlm, ServerKind};
use crate::support::systemd::ObservedKernel;
use std::time::Duration;

async fn llama_server_with_two_slots() -> FakeLlm {
    FakeLlm::start(FakeConfig {
        kind: ServerKind::LlamaCpp { slots: 2 },
        ..Default::default()
    })
    .await
}

/// Waits until the kernel's log holds `text`.
async fn log_says(k: &ObservedKernel, text: &str) -> String {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let log = k.log();
        if log.contains(text) {
            return log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {text:?} in {log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const WARNING: &str = "--cpus 4 but the server has 2 slots: 2 of the kernel's processes";

#[tokio::test]
async fn more_cpus_than_the_server_has_slots_is_a_warning_at_start_up_and_in_sched() {
    let fake = llama_server_with_two_slots().await;
    let k = ObservedKernel::start(&fake.url, "", &["--cpus", "4"], &[]).await;
    let log = log_says(&k, WARNING).await;
    assert!(log.contains("WARN"), "{log}");
    let sched = k.kernel.sh("sched").await;
    assert_eq!(sched.status, 0, "{sched:?}");
    assert!(sched.stdout.contains("cpus: 4\n"), "{}", sched.stdout);
    assert!(
        sched.stdout.contains(&format!("warning: {WARNING}")),
        "{}",
        sched.stdout
    );
}

#[tokio::test]
async fn as_many_cpus_as_server_slots_is_no_warning() {
    let fake = llama_server_with_two_slots().await;
    let k = ObservedKernel::start(&fake.url, "", &["--cpus", "2"], &[]).await;
    log_says(&k, "the server has 2 slots; the kernel uses 2").await;
    let sched = k.kernel.sh("sched").await;
    assert!(!sched.stdout.contains("warning"), "{}", sched.stdout);
    assert!(!k.log().contains("WARN"), "{}", k.log());
}
