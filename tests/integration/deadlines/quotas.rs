//! Token quotas end to end: a user over quota waits (STAT Q with a note) instead of failing, `quota`
//! shows the use, and the use survives a kill -9 and a restart.

use super::background;
use crate::support::fake_llm::{FakeLlm, answer};
use crate::support::{TestKernel, ps_row};

/// A state directory whose config gives the test's user `quota`.
fn quota_dir(quota: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("llmkernel");
    std::fs::create_dir_all(&config).expect("config dir");
    let uid = nix::unistd::getuid().as_raw();
    let text = format!("[quotas]\n\"{uid}\" = \"{quota}\"\nUSER_SUBPROCESS = \"1M/day\"\n");
    std::fs::write(config.join("config.toml"), text).expect("config");
    dir
}

/// The cells of `quota`'s row for the 30/hour quota.
fn quota_row(table: &str) -> Vec<String> {
    table
        .lines()
        .find(|l| l.contains("30/hour"))
        .map(|l| l.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_user_over_quota_waits_with_a_note_and_the_use_survives_a_crash() {
    let fake = FakeLlm::start(Default::default()).await;
    let args = ["--quantum", "4"];
    let k = TestKernel::start_in(quota_dir("30/hour"), &fake.url, &args).await;
    let first = k.sh("query '[tokens=20] first'").await;
    assert_eq!(first.status, 0, "{first:?}");
    assert_eq!(first.stdout.trim_end(), answer(20).trim_end());
    let second = background(&k, "query '[tokens=20] second'").await;
    let ps = k
        .eventually_wide("ps -l", "the second query to wait for the quota", |ps| {
            ps.contains("quota: 0 of 30/hour left in")
        })
        .await;
    let row = ps_row(&ps, second).unwrap_or_default();
    assert_eq!(row.get(5).map(String::as_str), Some("Q"), "{ps}");
    let table = k.sh("quota").await.stdout;
    let cells = quota_row(&table);
    let used: u64 = cells.get(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    assert!((30..=32).contains(&used), "{table}");
    assert_eq!(
        cells.last().map(String::as_str),
        Some("1"),
        "one waits: {table}"
    );
    assert!(
        table.contains("USER_SUBPROCESS") && table.contains("1M/day"),
        "{table}"
    );

    // An acknowledged change after the use, so the use is on disk before the crash.
    assert_eq!(k.sh(&format!("renice -n 1 {second}")).await.status, 0);
    let dir = k.crash().await;
    let k = TestKernel::start_in(dir, &fake.url, &args).await;
    let table = k.sh("quota").await.stdout;
    let after: u64 = quota_row(&table)
        .get(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    assert_eq!(after, used, "the use survived the restart: {table}");
    k.eventually_wide(
        "ps -l",
        "the restored query to wait for the quota again",
        |ps| {
            ps_row(ps, second).is_some_and(|r| r[5].starts_with('Q'))
                && ps.contains("quota: 0 of 30/hour")
        },
    )
    .await;
    assert_eq!(k.sh(&format!("kill {second}")).await.status, 0);
}
