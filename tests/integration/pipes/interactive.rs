//! A foreground pipeline on a terminal: Ctrl-Z stops the whole group and `jobs` shows one line;
//! `fg` brings it back and its last answer streams to the end.

use crate::support::TestKernel;
use crate::support::fake_llm::{FakeConfig, FakeLlm};
use crate::support::pty::{Terminal, keys};
use std::time::Duration;

#[tokio::test]
async fn ctrl_z_stops_a_whole_pipeline_and_fg_resumes_it() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 30,
        delay: Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    let k = TestKernel::start(&fake.url, &["--cpus", "2"]).await;
    let home = tempfile::tempdir().expect("home");
    let mut t = Terminal::spawn(&k.socket, home.path(), &[]);
    t.expect("llmsh$ ").await;
    let line = "query '[tokens=100] draft' | query polish";
    t.line(line);
    k.eventually("ps", "the first stage to run", |ps| {
        ps.lines()
            .skip(1)
            .any(|l| l.contains(" R ") && l.contains("draft"))
    })
    .await;
    t.send(keys::CTRL_Z);
    t.expect(&format!("[1]+  Stopped                 {line}"))
        .await;
    t.expect("llmsh[1]$ ").await;
    k.eventually("ps", "both stages stopped", |ps| {
        ps.lines().skip(1).filter(|l| l.contains(" T ")).count() == 2
    })
    .await;
    t.line("jobs");
    t.expect(&format!("[1]+  Stopped                 {line}\n"))
        .await;
    t.expect("llmsh[1]$ ").await;
    assert_eq!(
        t.text().matches("Stopped").count(),
        2,
        "one line per job: {}",
        t.text()
    );
    t.line("fg");
    t.expect("t29 ").await;
    t.expect("llmsh$ ").await;
    let ps = k.sh("ps").await.stdout;
    assert_eq!(
        ps.lines().count(),
        1,
        "fg collected the whole pipeline: {ps}"
    );
    t.line("exit $?");
    assert_eq!(t.exit_status().await, 0);
    let polish = fake
        .requests()
        .iter()
        .map(|r| r.user_prompt())
        .find(|p| p.starts_with("polish"))
        .expect("the reader ran");
    assert_eq!(
        polish,
        format!("polish\n\n{}", crate::support::fake_llm::answer(100))
    );
}

#[tokio::test]
async fn a_background_pipeline_is_reported_done_once_and_collected_whole() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let home = tempfile::tempdir().expect("home");
    let mut t = Terminal::spawn(&k.socket, home.path(), &[]);
    t.expect("llmsh$ ").await;
    t.line("query first | query second &");
    t.expect("[1]+  Done                    query first | query second")
        .await;
    t.line("");
    t.expect("llmsh$ ").await;
    k.eventually("ps", "the whole pipeline to be collected", |ps| {
        ps.lines().count() == 1
    })
    .await;
    t.line("exit");
    assert_eq!(t.exit_status().await, 0);
}
