//! A query on the real model answers with real text, and several processes run on the server's
//! slots at once.

use crate::support::{Kernel, eventually, setup, words};
use llmkernel::proto::ProcessState;

#[tokio::test]
async fn a_query_answers_with_real_text() {
    let Some(llama) = setup().await else { return };
    let server = llama.server(1).await;
    let k = Kernel::start(&["--backend", &server.url()]).await;
    let (status, stdout, stderr) = k
        .sh(r#"query --max-tokens 24 "What is the capital of France? Answer in one sentence.""#)
        .await;
    assert_eq!(status, 0, "{stderr}");
    assert!(words(&stdout) >= 2, "not an answer: {stdout:?}");
    k.stop().await;
}

#[tokio::test]
async fn several_processes_share_the_servers_slots() {
    let Some(llama) = setup().await else { return };
    let server = llama.server(4).await;
    let k = Kernel::start(&["--backend", &server.url(), "--cpus", "4"]).await;
    let mut pids = Vec::new();
    for n in 0..4 {
        let query = format!(
            "query --type housekeeping --max-tokens 400 \"Count from {n} to 500, separated by commas.\""
        );
        pids.push(k.background(&query).await);
    }
    eventually("two of the server's slots generating at once", || async {
        server
            .slots()
            .await
            .iter()
            .filter(|(busy, _)| *busy)
            .count()
            >= 2
    })
    .await;
    eventually("two processes in state R at once", || async {
        let mut running = 0;
        for pid in &pids {
            running += usize::from(
                k.process(*pid)
                    .await
                    .is_some_and(|p| p.state == ProcessState::Running),
            );
        }
        running >= 2
    })
    .await;
    let list: Vec<_> = pids.iter().map(|p| p.0.to_string()).collect();
    k.sh(&format!("kill -KILL {}", list.join(" "))).await;
    k.stop().await;
}
