//! System calls on the real model: a `query --syscalls` request, carrying the kernel's tool schemas,
//! is accepted by llama-server started with `--jinja` (a schema its template cannot render is an
//! error there) and answered, and so is a `--must-call` one, which adds `tool_choice: "required"`
//! to its first answer. Whether the 135M model calls a tool is up to its sampling: the llama-server
//! build cached here accepts `"required"` without constraining the output to a call (upstream
//! ggml-org/llama.cpp#27217), and SmolLM2's own template has no tool-call format. So a call is
//! checked only when one is made: it must then be shown in the parent's `cat` with its result, and
//! the parent must end.

use crate::support::{Kernel, eventually, setup};

#[tokio::test]
async fn the_tools_reach_the_model_and_a_call_it_makes_is_honoured() {
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

    let parent = k
        .background(concat!(
            "query --syscalls --must-call --max-tokens 96 ",
            "'Use the spawn tool to ask a helper to say hello.'"
        ))
        .await;
    eventually("the --must-call parent to end", || async {
        k.process(parent).await.is_some_and(|p| p.exit.is_some())
    })
    .await;
    // `wait` reaps the parent, so its output is read first.
    let (_, cat, _) = k.sh(&format!("cat {parent}")).await;
    let (status, _, stderr) = k.sh(&format!("wait {parent}")).await;
    assert_eq!(
        status, 0,
        "a request requiring a call was refused or failed: {stderr}"
    );
    eprintln!("the parent's output: {cat:?}");
    assert!(!cat.trim().is_empty(), "no answer");
    let calls: Vec<&str> = cat
        .lines()
        .filter_map(|l| l.strip_prefix("[tool call "))
        .filter_map(|l| l.split(']').next())
        .collect();
    for id in calls {
        let result = cat
            .lines()
            .find_map(|l| l.strip_prefix(&format!("[tool result {id}] ")))
            .unwrap_or_else(|| panic!("call {id} has no result: {cat:?}"));
        let result: serde_json::Value =
            serde_json::from_str(result).unwrap_or_else(|e| panic!("{result:?}: {e}"));
        assert!(result.is_object(), "{result}");
    }
    k.stop().await;
}
