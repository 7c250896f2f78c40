//! Job notices on the kernel's event stream: llmsh follows all its background jobs on one
//! `Subscribe`, so five jobs under a cap of four connections per user each get their `Done` notice
//! live, above the line being typed, and are reaped.

use crate::support::fake_llm::{FakeConfig, FakeLlm};
use crate::support::pty::Terminal;
use crate::support::{TestKernel, config_file};
use std::time::Duration;

#[tokio::test]
async fn five_background_jobs_share_one_event_stream_and_each_done_notice_arrives_live() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 2000,
        delay: Duration::from_millis(10),
        ..Default::default()
    })
    .await;
    // One connection per followed job (the way notices used to work) would not fit.
    let (_dir, config) = config_file("[limits]\nmax_connections_per_uid = 4\n");
    let k = TestKernel::start(&fake.url, &["--config", &config, "--cpus", "5"]).await;
    let home = tempfile::tempdir().expect("home");
    let mut t = Terminal::spawn(&k.socket, home.path(), &[]);
    t.expect("llmsh$ ").await;
    // Ending a second apart, so the output fetch and reap of one ending never meet another's.
    let jobs: Vec<String> = (3..8)
        .map(|n| format!("query \"[tokens={}] j{n}\" &", n * 100))
        .collect();
    t.line(&jobs.join(" "));
    t.expect("llmsh[5]$ ").await;
    t.send("help jo");
    t.expect_screen("five Done notices", |t| {
        t.text().matches("Done").count() == 5
    })
    .await;
    assert!(
        !t.text().contains("llmsh: "),
        "no job was refused: {}",
        t.text()
    );
    t.expect_cursor_row("llmsh$ help jo").await;
    k.eventually("ps -a", "every finished job to be reaped", |ps| {
        ps.lines().count() <= 1
    })
    .await;
}
