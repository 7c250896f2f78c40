//! System calls on the real model: a `query --syscalls` request, carrying the kernel's tool schemas,
//! is accepted by llama-server started with `--jinja` (a schema its template cannot render is an
//! error there) and answered; when the small model does make a call, the kernel carries it out and
//! gives it a result. Whether a 135M model calls a tool at all is up to its sampling, so the call is
//! checked only when one is made.

use crate::support::{Kernel, setup};

#[tokio::test]
async fn the_tools_reach_the_model_and_a_call_it_makes_is_answered() {
    let Some(llama) = setup().await else { return };
    let server = llama.server_with(2, &["--jinja"]).await;
    let k = Kernel::start(&["--backend", &server.url(), "--cpus", "2"]).await;
    let (status, stdout, stderr) = k
        .sh(concat!(
            "query --syscalls --max-tokens 96 ",
            "'Call the spawn tool with the prompt \"Say hello.\" and then call wait with its pid.'"
        ))
        .await;
    eprintln!("the answer: {stdout:?}");
    assert_eq!(
        status, 0,
        "a request offering tools was refused or failed: {stderr}"
    );
    assert!(!stdout.trim().is_empty(), "no answer");
    if stdout.contains("[tool call") {
        assert!(
            stdout.contains("[tool result"),
            "a call was made but never answered: {stdout:?}"
        );
    }
    k.stop().await;
}
