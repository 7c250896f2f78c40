//! The managed backend on the real llama-server: the kernel starts it, takes its slot count, restarts
//! it after `kill -9`, and stops it with itself; and `scripts/quickstart` gets from nothing to an
//! answer and leaves nothing running.

use crate::support::{
    KERNEL, Kernel, ROOT, alive, children, eventually, free_port, healthy, setup, signal,
};
use std::path::Path;
use std::process::Stdio;

#[tokio::test]
async fn the_managed_server_is_restarted_after_kill_9_and_stopped_with_the_kernel() {
    let Some(llama) = setup().await else { return };
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    let command: Vec<String> = llama.command(port, 2);
    let text = format!("[backend]\nurl = \"http://127.0.0.1:{port}/v1\"\ncommand = {command:?}\n");
    std::fs::write(&config, text).expect("write config");
    let k = Kernel::start(&["--config", config.to_str().expect("utf-8 path")]).await;
    let (_, sched, _) = k.sh("sched").await;
    assert!(
        sched.contains("cpus: 3") && sched.contains("reserved: 1 slot"),
        "the slot count is not the server's -np 2 and the slot kept for interactive work:\n{sched}"
    );
    let servers = children(k.pid);
    assert_eq!(servers.len(), 1, "one server process: {servers:?}");
    let first = servers[0];

    signal(first, nix::sys::signal::Signal::SIGKILL);
    let root = format!("http://127.0.0.1:{port}");
    eventually("a new server to be up", || async {
        children(k.pid).iter().any(|pid| *pid != first) && healthy(&root).await
    })
    .await;
    let second = children(k.pid)[0];
    let (status, stdout, stderr) = k.sh(r#"query --max-tokens 16 "Say hello.""#).await;
    assert_eq!(status, 0, "{stderr}");
    assert!(!stdout.trim().is_empty(), "no answer after the restart");

    k.stop().await;
    assert!(!alive(second), "the server outlived the kernel");
}

#[tokio::test]
async fn quickstart_answers_a_query_and_leaves_nothing_running() {
    let Some(_llama) = setup().await else { return };
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let bin_dir = Path::new(KERNEL).parent().expect("binary directory");
    let run = tokio::process::Command::new(Path::new(ROOT).join("scripts/quickstart"))
        .args(["-c", r#"query --max-tokens 16 "Say hello.""#])
        .env("LLMKERNEL_BIN_DIR", bin_dir)
        .env("LLMKERNEL_QUICKSTART_DIR", dir.path())
        .env("LLAMA_PORT", port.to_string())
        .env_remove("LLMKERNEL_SOCKET")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(crate::support::STEP * 2, run)
        .await
        .expect("quickstart finished in time")
        .expect("run scripts/quickstart");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stdout.trim().is_empty(), "no answer:\n{stderr}");
    for step in [
        "step 1/4",
        "step 2/4",
        "step 3/4",
        "step 4/4",
        "stopping the kernel",
    ] {
        assert!(
            stderr.contains(step),
            "quickstart did not say {step:?}:\n{stderr}"
        );
    }
    assert!(
        !healthy(&format!("http://127.0.0.1:{port}")).await,
        "llama-server still answers after quickstart ended"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("read dir").collect();
    assert!(left.is_empty(), "quickstart left {left:?} behind");
}
