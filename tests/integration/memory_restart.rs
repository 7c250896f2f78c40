//! Swap across a kernel restart: the kernel is killed with SIGKILL while a process is swapped out;
//! the next kernel on the same state reuses the file when the server still matches (the resume is
//! a restore, one unbroken answer), and removes it when the server changed or the process is gone
//! (the conversation is recomputed).

use crate::scheduling::{background, final_output, state_is};
use crate::support::fake_llm::{FakeConfig, FakeLlm, ServerKind, answer};
use crate::support::{STEP, TestKernel, ps_row};
use std::path::Path;
use std::time::Duration;

/// A fake llama-server with one slot and `--slot-save-path` in `dir`, serving `model`.
async fn llama_with_swap(dir: &Path, model: &str) -> FakeLlm {
    FakeLlm::start(FakeConfig {
        kind: ServerKind::LlamaCpp { slots: 1 },
        tokens: 2000,
        delay: Duration::from_millis(10),
        slot_save_dir: Some(dir.to_path_buf()),
        model: model.into(),
        ..Default::default()
    })
    .await
}

/// A kernel directory whose config turns swap on in `swap`.
fn kernel_dir(swap: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_dir = dir.path().join("llmkernel");
    std::fs::create_dir_all(&config_dir).expect("config dir");
    let config = format!(
        "[swap]\ndir = {:?}\nmin_tokens = 0\n",
        swap.display().to_string()
    );
    std::fs::write(config_dir.join("config.toml"), config).expect("config");
    dir
}

const ARGS: &[&str] = &["--cpus", "1"];

/// Runs a long process, stops it, runs another on its slot so that the long one is swapped out,
/// then kills the kernel with SIGKILL. Returns the kernel's directory and the long one's pid.
async fn swap_out_and_crash(fake: &FakeLlm, swap: &Path) -> (tempfile::TempDir, u64) {
    let k = TestKernel::start_in(kernel_dir(swap), &fake.url, ARGS).await;
    let long = background(&k, "query '[tokens=150] long'").await;
    k.eventually("ps", "the long one to produce tokens", |ps| {
        ps_row(ps, long).is_some_and(|r| r[6].split('/').next().is_some_and(|t| t != "0"))
    })
    .await;
    assert_eq!(k.sh(&format!("kill -STOP {long}")).await.status, 0);
    state_is(&k, long, "T").await;
    let short = background(&k, "query '[tokens=5] short'").await;
    final_output(&k, short).await;
    k.eventually("ps -l", "the stopped one to be swapped out", |ps| {
        ps_row(ps, long).is_some_and(|r| r[5] == "TW")
    })
    .await;
    assert!(swap.join(format!("llmkernel-{long}.swap")).exists());
    assert!(
        swap.join(format!("llmkernel-{long}.record")).exists(),
        "its record is next to it"
    );
    (k.crash().await, long)
}

/// Waits until `path` is gone.
async fn removed(path: &Path) {
    let deadline = tokio::time::Instant::now() + STEP;
    while path.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} is still there",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn after_a_crash_a_swapped_out_process_resumes_by_restore_when_the_server_still_matches() {
    let swap = tempfile::tempdir().expect("swap dir");
    let fake = llama_with_swap(swap.path(), "fake-model").await;
    let (dir, long) = swap_out_and_crash(&fake, swap.path()).await;
    let k = TestKernel::start_in(dir, &fake.url, ARGS).await;
    let ps = k.sh("ps -l").await.stdout;
    let row = ps_row(&ps, long).expect("the stopped process is back");
    assert_eq!(row[5], "TW", "still swapped out after the restart:\n{ps}");
    let prefilled = fake.prefilled();
    assert_eq!(k.sh(&format!("kill -CONT {long}")).await.status, 0);
    let out = final_output(&k, long).await;
    assert_eq!(
        out.trim_end(),
        answer(150).trim_end(),
        "one unbroken answer"
    );
    let file = format!("llmkernel-{long}.swap");
    assert_eq!(
        fake.slot_actions(),
        [format!("save {file}"), format!("restore {file}")]
    );
    assert_eq!(
        fake.prefilled(),
        prefilled,
        "the resume was not evaluated again"
    );
    removed(&swap.path().join(&file)).await;
    removed(&swap.path().join(format!("llmkernel-{long}.record"))).await;
}

#[tokio::test]
async fn after_a_crash_a_file_another_server_saved_is_removed_and_the_process_recomputes() {
    let swap = tempfile::tempdir().expect("swap dir");
    let first = llama_with_swap(swap.path(), "fake-model").await;
    let (dir, long) = swap_out_and_crash(&first, swap.path()).await;
    // The same save path, another model: the saved cache would restore as noise.
    let other = llama_with_swap(swap.path(), "another-model").await;
    let k = TestKernel::start_in(dir, &other.url, ARGS).await;
    assert_eq!(k.sh(&format!("kill -CONT {long}")).await.status, 0);
    let out = final_output(&k, long).await;
    assert_eq!(
        out.trim_end(),
        answer(150).trim_end(),
        "one unbroken answer, recomputed"
    );
    assert!(
        other.slot_actions().is_empty(),
        "nothing restored: {:?}",
        other.slot_actions()
    );
    assert!(
        other.prefilled() > 0,
        "the conversation was evaluated again"
    );
    removed(&swap.path().join(format!("llmkernel-{long}.swap"))).await;
    removed(&swap.path().join(format!("llmkernel-{long}.record"))).await;
}

#[tokio::test]
async fn at_start_swap_files_of_processes_that_are_gone_or_without_a_record_are_removed() {
    let swap = tempfile::tempdir().expect("swap dir");
    let fake = llama_with_swap(swap.path(), "fake-model").await;
    let put = |name: &str, text: &str| {
        let path = swap.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let unknown = put("llmkernel-42.swap", "t0 t1");
    let unknown_record = put("llmkernel-42.record", "server=x\ntokens=2\n");
    let unrecorded = put("llmkernel-43.swap", "t0 t1");
    let other = put("someone-else.bin", "not ours");
    let k = TestKernel::start_in(kernel_dir(swap.path()), &fake.url, ARGS).await;
    removed(&unrecorded).await;
    removed(&unknown).await;
    removed(&unknown_record).await;
    assert!(
        other.exists(),
        "files that are not the kernel's are left alone"
    );
    let free = k.sh("free").await.stdout;
    assert!(free.contains("0 processes swapped out"), "{free}");
}
