//! Memory end to end: a slot's context learned from the server, prompts refused or allowances cut at
//! submit, `context full` when the server meets the end of a slot, CTX in `ps -l`, `free`, and swap
//! (a stopped process's slot cache saved when its slot is given away, restored when it resumes, and
//! recomputed when the server silently loses it).

use crate::scheduling::{background, final_output, state_is};
use crate::support::fake_llm::{FakeConfig, FakeLlm, ServerKind, answer};
use crate::support::{TestKernel, ps_row};
use std::path::Path;
use std::time::Duration;

/// A fake llama-server with one slot of `context` tokens.
async fn llama(context: usize) -> FakeLlm {
    FakeLlm::start(FakeConfig {
        kind: ServerKind::LlamaCpp { slots: 1 },
        context,
        tokens: 2000,
        ..Default::default()
    })
    .await
}

/// A kernel against `url` with `config` as its config file.
async fn kernel_with_config(url: &str, config: &str, args: &[&str]) -> TestKernel {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_dir = dir.path().join("llmkernel");
    std::fs::create_dir_all(&config_dir).expect("config dir");
    std::fs::write(config_dir.join("config.toml"), config).expect("config");
    TestKernel::start_in(dir, url, args).await
}

#[tokio::test]
async fn a_prompt_that_does_not_fit_a_slot_is_refused_at_submit() {
    let fake = llama(20).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let words = vec!["word"; 30].join(" ");
    let run = k.sh(&format!("query '{words}'")).await;
    assert_ne!(run.status, 0, "{run:?}");
    // `user:`, 30 words and `assistant:`, as the server counts them.
    assert!(
        run.stderr
            .contains("the prompt is 32 tokens; a slot holds 20"),
        "{run:?}"
    );
    assert!(fake.requests().is_empty(), "nothing reached the backend");
}

#[tokio::test]
async fn an_allowance_past_the_context_is_cut_to_fit_with_a_note() {
    let fake = llama(50).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    // `user: [tokens=100] hi there assistant:` is 5 tokens: 45 are left of the slot.
    let pid = background(&k, "query '[tokens=100] hi there'").await;
    let row = state_is(&k, pid, "Z").await;
    assert_eq!(row[6], "45/45", "{row:?}");
    let ps = k.sh_wide("ps -l").await.stdout;
    assert!(
        ps.contains("stopped at its token allowance (45, cut from 4000 to fit the context)"),
        "{ps}"
    );
    assert_eq!(
        final_output(&k, pid).await.trim_end(),
        answer(45).trim_end()
    );
    assert_eq!(fake.requests()[0].body["max_tokens"], 45);
}

#[tokio::test]
async fn a_server_that_stops_at_the_end_of_its_context_ends_the_process_context_full() {
    // A plain OpenAI server says nothing of its context: the kernel learns of the end from the
    // answer (`length` before the allowance) and keeps the output.
    let fake = FakeLlm::start(FakeConfig {
        context: 30,
        tokens: 2000,
        ..Default::default()
    })
    .await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let pid = background(&k, "query 'a question'").await;
    state_is(&k, pid, "Z").await;
    let ps = k.sh_wide("ps -l").await.stdout;
    assert!(ps.contains("[context full"), "{ps}");
    assert!(!ps.contains("token allowance"), "{ps}");
    let done = k.sh(&format!("wait {pid}")).await;
    assert_eq!(done.status, 0, "exit 0, output kept");
}

#[tokio::test]
async fn a_configured_context_names_the_slot_in_the_context_full_note_and_ctx_is_an_estimate() {
    let fake = FakeLlm::start(FakeConfig {
        context: 30,
        tokens: 2000,
        ..Default::default()
    })
    .await;
    // The kernel believes in 1000 tokens a slot; the server holds 30.
    let k = kernel_with_config(&fake.url, "[backend]\ncontext = 1000\n", &[]).await;
    let pid = background(&k, "query 'a question'").await;
    state_is(&k, pid, "Z").await;
    let ps = k.sh_wide("ps -l").await.stdout;
    assert!(ps.contains("[context full: 1000 tokens per slot]"), "{ps}");
    let row = ps_row(&ps, pid).expect("row");
    assert!(
        row[8].starts_with('~') && row[8].ends_with("/1000"),
        "{row:?}"
    );
}

#[tokio::test]
async fn a_prompt_that_surely_fits_starts_before_the_server_counts_it() {
    let fake = FakeLlm::start(FakeConfig {
        kind: ServerKind::LlamaCpp { slots: 1 },
        count_after_generation: true,
        ..Default::default()
    })
    .await;
    let k = TestKernel::start(&fake.url, &[]).await;
    // A few words and 4000 tokens of allowance fit 8192 whatever the tokenizer: the generation is
    // asked for at once, and the exact count, which this server gives only after that, still
    // reaches `ps -l` (a kernel that waited for it would give up after 2 s and keep an estimate).
    let pid = background(&k, "query '[tokens=3] hello'").await;
    state_is(&k, pid, "Z").await;
    let mut ctx = String::new();
    for _ in 0..100 {
        let ps = k.sh_wide("ps -l").await.stdout;
        ctx = ps_row(&ps, pid).expect("row")[8].clone();
        if ctx == "7/8192" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        ctx, "7/8192",
        "the server's count (4 words of prompt, 3 answered)"
    );
    // Some 8500 bytes might not fit 8192 tokens: that prompt is counted before it starts.
    fake.set(|c| c.count_after_generation = false);
    let big = "word ".repeat(1700);
    let pid = background(&k, &format!("query --max-tokens 100 '{big}'")).await;
    state_is(&k, pid, "Z").await;
    let requests = fake.requests();
    let counts = fake.counted_at();
    assert!(counts[counts.len() - 1] < requests[requests.len() - 1].at);
}

#[tokio::test]
async fn ps_l_shows_ctx_counted_by_the_server_and_free_shows_the_slots() {
    let fake = llama(8192).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let pid = background(&k, "query '[tokens=10] hello'").await;
    state_is(&k, pid, "Z").await;
    let ps = k.sh_wide("ps -l").await.stdout;
    let row = ps_row(&ps, pid).expect("row");
    // `user: [tokens=10] hello assistant:` (4 tokens) and 10 answered.
    assert_eq!(row[8], "14/8192", "{ps}");
    let free = k.sh("free").await;
    assert_eq!(free.status, 0, "{free:?}");
    assert!(
        free.stdout
            .contains("context 8192 tokens per slot (server), tokens counted by server"),
        "{}",
        free.stdout
    );
    assert!(free.stdout.contains("swap: off"), "{}", free.stdout);
    let sched = k.sh("sched").await.stdout;
    assert!(
        sched.contains("context per slot: 8192 tokens\nswap: off\n"),
        "{sched}"
    );
    let slot: Vec<_> = free
        .stdout
        .lines()
        .nth(2)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        slot,
        ["0", "-", "-", "-"],
        "an ended process's cache is forgotten"
    );
    let long = background(&k, "query '[tokens=2000] [delay=10] long'").await;
    let mine = long.to_string();
    k.eventually("free", "the slot to show its process", |free| {
        free.lines().nth(2).is_some_and(|l| {
            let cols: Vec<_> = l.split_whitespace().collect();
            cols.len() == 4 && cols[1] == mine && cols[2] == mine && cols[3].ends_with("/8192")
        })
    })
    .await;
    assert_eq!(k.sh(&format!("kill {long}")).await.status, 0);
}

/// A fake llama-server with swap (`--slot-save-path` in `dir`), and a kernel told of it.
async fn swapping(dir: &Path, lossy: bool) -> (FakeLlm, TestKernel) {
    let fake = FakeLlm::start(FakeConfig {
        kind: ServerKind::LlamaCpp { slots: 1 },
        tokens: 2000,
        delay: Duration::from_millis(10),
        slot_save_dir: Some(dir.to_path_buf()),
        lossy_restore: lossy,
        ..Default::default()
    })
    .await;
    let config = format!(
        "[swap]\ndir = {:?}\nmin_tokens = 0\n",
        dir.display().to_string()
    );
    let k = kernel_with_config(&fake.url, &config, &["--cpus", "1"]).await;
    (fake, k)
}

/// Runs a long process, stops it mid-answer, runs another on its slot, and continues it. Returns
/// the long one's pid and its output.
async fn stop_run_another_and_continue(k: &TestKernel, dir: &Path) -> (u64, String) {
    let long = background(k, "query '[tokens=150] long'").await;
    k.eventually("ps", "the long one to produce tokens", |ps| {
        ps_row(ps, long).is_some_and(|r| r[6].split('/').next().is_some_and(|t| t != "0"))
    })
    .await;
    assert_eq!(k.sh(&format!("kill -STOP {long}")).await.status, 0);
    state_is(k, long, "T").await;
    let short = background(k, "query '[tokens=5] short'").await;
    final_output(k, short).await;
    let file = dir.join(format!("llmkernel-{long}.swap"));
    let ps = k
        .eventually("ps -l", "the stopped one to be swapped out", |ps| {
            ps_row(ps, long).is_some_and(|r| r[5] == "TW")
        })
        .await;
    assert!(file.exists(), "its swap file is in the save path:\n{ps}");
    assert_eq!(k.sh(&format!("kill -CONT {long}")).await.status, 0);
    let out = final_output(k, long).await;
    (long, out)
}

#[tokio::test]
async fn a_stopped_process_is_swapped_out_when_its_slot_is_given_away_and_restored_on_resume() {
    let swap = tempfile::tempdir().expect("swap dir");
    let (fake, k) = swapping(swap.path(), false).await;
    let (long, out) = stop_run_another_and_continue(&k, swap.path()).await;
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
    let resume = fake
        .requests()
        .into_iter()
        .filter(|r| r.user_prompt().contains("long"))
        .nth(1)
        .expect("the resume");
    assert!(resume.resumed_at() > 0);
    // The long one's 4 prompt tokens, the short one's 3 past the shared `user:`, and nothing for
    // the resume: the restored cache held the whole conversation.
    assert_eq!(fake.prefilled(), 7, "the resume was not evaluated again");
    let free = k.sh("free").await.stdout;
    assert!(free.contains("1 saves, 1 restores, 0 lost"), "{free}");
    assert!(
        !swap.path().join(&file).exists(),
        "the swap file is removed once restored"
    );
}

#[tokio::test]
async fn a_restore_the_server_silently_loses_is_recomputed_and_turns_swap_off() {
    let swap = tempfile::tempdir().expect("swap dir");
    let (fake, k) = swapping(swap.path(), true).await;
    let (_, out) = stop_run_another_and_continue(&k, swap.path()).await;
    assert_eq!(
        out.trim_end(),
        answer(150).trim_end(),
        "one unbroken answer, recomputed"
    );
    assert_eq!(fake.slot_actions().len(), 2);
    assert!(fake.prefilled() > 7 + 4, "the resume was evaluated again");
    let free = k
        .eventually("free", "swap to turn itself off", |f| {
            f.contains("swap: off (the server reported 0 cached tokens after restoring")
        })
        .await;
    assert!(free.contains("conversations are recomputed"), "{free}");
}

#[tokio::test]
async fn swap_files_of_an_earlier_kernel_are_removed_at_start() {
    let swap = tempfile::tempdir().expect("swap dir");
    let stale = swap.path().join("llmkernel-99.swap");
    let other = swap.path().join("someone-else.bin");
    std::fs::write(&stale, b"old cache").expect("stale file");
    std::fs::write(&other, b"not ours").expect("other file");
    let (_fake, k) = swapping(swap.path(), false).await;
    assert!(!stale.exists(), "a stale swap file is removed");
    assert!(
        other.exists(),
        "files that are not the kernel's are left alone"
    );
    let free = k.sh("free").await.stdout;
    assert!(free.contains("0 processes swapped out"), "{free}");
}

#[tokio::test]
async fn a_server_that_refuses_saves_turns_swap_off_and_processes_recompute() {
    let swap = tempfile::tempdir().expect("swap dir");
    let fake = llama(8192).await; // no --slot-save-path: saves are refused
    let config = format!(
        "[swap]\ndir = {:?}\nmin_tokens = 0\n",
        swap.path().display().to_string()
    );
    let k = kernel_with_config(&fake.url, &config, &["--cpus", "1"]).await;
    let long = background(&k, "query '[tokens=400] [delay=10] long'").await;
    k.eventually("ps", "the long one to produce tokens", |ps| {
        ps_row(ps, long).is_some_and(|r| r[6].split('/').next().is_some_and(|t| t != "0"))
    })
    .await;
    assert_eq!(k.sh(&format!("kill -STOP {long}")).await.status, 0);
    state_is(&k, long, "T").await;
    let short = background(&k, "query '[tokens=5] short'").await;
    final_output(&k, short).await;
    let free = k
        .eventually("free", "swap to turn off", |f| {
            f.contains("swap: off (the server refused to save slot 0")
        })
        .await;
    assert!(free.contains("conversations are recomputed"), "{free}");
    assert_eq!(k.sh(&format!("kill -CONT {long}")).await.status, 0);
    let out = final_output(&k, long).await;
    assert_eq!(out.trim_end(), answer(400).trim_end());
}

#[tokio::test]
async fn a_swapped_out_process_that_ends_leaves_no_swap_file() {
    let swap = tempfile::tempdir().expect("swap dir");
    let (_fake, k) = swapping(swap.path(), false).await;
    let long = background(&k, "query '[tokens=400] long'").await;
    k.eventually("ps", "the long one to produce tokens", |ps| {
        ps_row(ps, long).is_some_and(|r| r[6].split('/').next().is_some_and(|t| t != "0"))
    })
    .await;
    assert_eq!(k.sh(&format!("kill -STOP {long}")).await.status, 0);
    state_is(&k, long, "T").await;
    let short = background(&k, "query '[tokens=5] short'").await;
    final_output(&k, short).await;
    k.eventually("ps", "the stopped one to be swapped out", |ps| {
        ps_row(ps, long).is_some_and(|r| r[5] == "TW")
    })
    .await;
    let file = swap.path().join(format!("llmkernel-{long}.swap"));
    assert!(file.exists());
    assert_eq!(k.sh(&format!("kill -KILL {long}")).await.status, 0);
    k.eventually("free", "the swap to be empty", |f| {
        f.contains("0 of 1073741824 bytes")
    })
    .await;
    for _ in 0..400 {
        if !file.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        !file.exists(),
        "the swap file is removed when its process ends"
    );
}
