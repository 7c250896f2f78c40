//! Memory on the real server: a long conversation (some 1,500 tokens) stopped mid-answer has its slot
//! cache saved to swap when another process takes the slot, restored when it continues, and its
//! answer goes on unbroken; the server counts the prompt and says the slot's size.

use crate::support::{Kernel, eventually, setup};
use llmkernel::proto::ProcessState;

#[tokio::test]
async fn a_long_conversation_switched_out_and_back_with_swap_is_one_unbroken_answer() {
    let Some(llama) = setup().await else { return };
    let swap = tempfile::tempdir().expect("swap dir");
    let dir = swap.path().display().to_string();
    let server = llama.server_with(1, &["--slot-save-path", &dir]).await;
    let config = swap.path().join("llmkernel.toml");
    std::fs::write(&config, format!("[swap]\ndir = {dir:?}\nmin_tokens = 0\n")).expect("config");
    let config = config.display().to_string();
    let k = Kernel::start(&[
        "--backend",
        &server.url(),
        "--cpus",
        "1",
        "--config",
        &config,
    ])
    .await;
    let text = "The keeper climbed the stairs of the lighthouse every evening to light the lamp. "
        .repeat(80);
    let long = k
        .background(&format!(
            "query --system '{text}' --max-tokens 200 'Count from 1 to 500, one number per line.'"
        ))
        .await;
    eventually("the long one to answer (or end)", || async {
        k.process(long)
            .await
            .is_some_and(|p| p.tokens_used >= 8 || p.state == ProcessState::Zombie)
    })
    .await;
    let info = k.process(long).await.expect("row");
    assert_ne!(info.state, ProcessState::Zombie, "it ended: {info:?}");
    let ctx = info.context.expect("CTX");
    assert!(!ctx.estimated, "the server counts the prompt");
    assert_eq!(ctx.size, Some(2048), "the server says the slot's size");
    assert!(ctx.used > 1200, "a long conversation: {ctx:?}");
    let (status, _, stderr) = k.sh(&format!("kill -STOP {}", long.0)).await;
    assert_eq!(status, 0, "{stderr}");
    eventually("the long one to stop", || async {
        k.process(long)
            .await
            .is_some_and(|p| p.state == ProcessState::Stopped && p.slot.is_none())
    })
    .await;
    let before = k.output(long).await;
    let short = k
        .background("query --max-tokens 16 'Name three colours.'")
        .await;
    eventually("the short one to finish", || async {
        k.process(short)
            .await
            .is_some_and(|p| p.state == ProcessState::Zombie)
    })
    .await;
    eventually("the long one to be swapped out", || async {
        k.process(long)
            .await
            .is_some_and(|p| p.context.is_some_and(|c| c.swapped))
    })
    .await;
    let (status, _, stderr) = k.sh(&format!("kill -CONT {}", long.0)).await;
    assert_eq!(status, 0, "{stderr}");
    eventually("the long one to finish", || async {
        k.process(long)
            .await
            .is_some_and(|p| p.state == ProcessState::Zombie)
    })
    .await;
    let after = k.output(long).await;
    eprintln!("before the switch: {before:?}\nafter it: {after:?}");
    assert!(
        after.starts_with(&before) && after.len() > before.len(),
        "the answer did not go on unbroken:\nbefore: {before:?}\nafter:  {after:?}"
    );
    let (_, free, _) = k.sh("free").await;
    assert!(free.contains("1 saves, 1 restores, 0 lost"), "{free}");
    k.stop().await;
}
