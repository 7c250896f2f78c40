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

/// A stand-in llama-server (the kernel recognises the name) that writes its arguments to `args`
/// and waits; the fake answers HTTP for it.
fn llama_server_script(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("llama-server");
    let args = dir.join("args");
    let script = format!(
        "#!/bin/sh\necho \"$@\" > {}\nexec sleep 600\n",
        args.display()
    );
    std::fs::write(&path, script).expect("write the script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[tokio::test]
async fn the_managed_llama_server_gets_the_kept_slot_on_top_of_its_np_and_sched_shows_it() {
    // The command asks for 3 slots of 2,048 tokens; the server comes up with 4 (3 + the kept one).
    let fake = FakeLlm::start(FakeConfig {
        kind: ServerKind::LlamaCpp { slots: 4 },
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = llama_server_script(dir.path());
    let config = dir.path().join("managed.toml");
    let text = format!(
        "[backend]\nurl = \"{}\"\ncommand = [{:?}, \"-np\", \"3\", \"-c\", \"6144\"]\n",
        fake.url,
        server.display().to_string()
    );
    std::fs::write(&config, text).expect("write config");
    let k =
        crate::support::TestKernel::start(&fake.url, &["--config", config.to_str().unwrap()]).await;
    let args = std::fs::read_to_string(dir.path().join("args")).expect("the server's arguments");
    assert_eq!(
        args.trim(),
        "-np 4 -c 8192",
        "3 slots + 1 kept, 2048 tokens each"
    );
    let sched = k.sh("sched").await;
    assert_eq!(sched.status, 0, "{sched:?}");
    assert!(sched.stdout.contains("cpus: 4\n"), "{}", sched.stdout);
    assert!(
        sched
            .stdout
            .contains("reserved: 1 slot for USER and above, free for background work now"),
        "{}",
        sched.stdout
    );
    assert!(!sched.stdout.contains("warning"), "{}", sched.stdout);
}
