//! Replies that would be larger than a frame: a `ps` of many long prompts carries previews (in pages
//! when the table is still too large), and a `cat` of megabytes of output streams it in pieces.

use crate::support::fake_llm::{FakeConfig, FakeLlm};
use crate::support::{STEP, TestKernel, config_file, job_pid, ps_row};
use llmkernel::proto::{
    Connection, Hello, MAX_FRAME_BYTES, OutputRequest, PROTOCOL_VERSION, Pid, ProcessType, Reply,
    Request, Response, SubmitRequest,
};
use std::path::Path;
use tokio::net::UnixStream;

/// A raw protocol connection to the kernel at `socket`, past the hello.
pub async fn raw(socket: &Path) -> Connection<UnixStream> {
    let stream = UnixStream::connect(socket).await.expect("connect");
    let mut conn = Connection::new(stream);
    let hello = Request::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        peer: "test".into(),
    });
    conn.write(&hello).await.expect("write hello");
    match recv(&mut conn).await {
        Ok(Response::Hello(_)) => conn,
        other => panic!("no hello: {other:?}"),
    }
}

/// The next reply on `conn`, within a step.
pub async fn recv(conn: &mut Connection<UnixStream>) -> Reply {
    tokio::time::timeout(STEP, conn.read::<Reply>())
        .await
        .expect("reply in time")
        .expect("read a frame")
        .expect("a frame, not a close")
}

/// Submits a background process on its own connection; gives its pid or the kernel's failure.
pub async fn submit(k: &TestKernel, prompt: &str, process_type: ProcessType) -> Reply {
    let mut conn = raw(&k.socket).await;
    let req = SubmitRequest {
        prompt: prompt.into(),
        system: None,
        process_type,
        max_tokens: None,
        nice: 0,
        attach: false,
    };
    conn.write(&Request::Submit(req))
        .await
        .expect("write submit");
    recv(&mut conn).await
}

fn pid_of(reply: Reply) -> u64 {
    match reply {
        Ok(Response::Submitted(s)) => s.pid.0,
        other => panic!("not submitted: {other:?}"),
    }
}

#[tokio::test]
async fn ps_of_many_long_prompts_shows_previews_and_every_row() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let (dir, path) = config_file("[limits]\nmax_prompt_bytes = 200000\n");
    let k = TestKernel::start_in(dir, &fake.url, &["--config", &path]).await;
    let prompt = format!("long{}", "p".repeat(100 * 1024));
    let count = 50; // 5 MB of prompts: over the frame limit if sent whole
    for _ in 0..count {
        pid_of(submit(&k, &prompt, ProcessType::User).await);
    }
    let run = k.sh_wide("ps -l").await;
    assert_eq!(run.status, 0, "{run:?}");
    let rows = run.stdout.lines().skip(1).count();
    assert_eq!(rows, count, "{}", run.stdout);
    assert!(run.stdout.contains("longppp"), "{}", run.stdout);
    // Each row holds a preview, not 100 KiB.
    assert!(run.stdout.len() < 100 * 1024, "{} bytes", run.stdout.len());
}

/// An answer of `tokens` fake tokens padded with `pad` bytes each.
fn padded_answer(tokens: usize, pad: usize) -> String {
    (0..tokens)
        .map(|i| format!("t{i}{} ", "x".repeat(pad)))
        .collect()
}

#[tokio::test]
async fn cat_and_fg_of_more_than_a_frame_of_output_get_all_of_it() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let (tokens, pad) = (1300, 4096); // about 5.3 MB of output
    let run = k
        .sh(&format!("query '[tokens={tokens}][pad={pad}] tell' &"))
        .await;
    let pid = job_pid(&run.stdout);
    k.eventually("ps", "the big answer to finish", |ps| {
        ps_row(ps, pid).is_some_and(|r| r[5] == "Z")
    })
    .await;
    let answer = padded_answer(tokens, pad);
    assert!(answer.len() > MAX_FRAME_BYTES);

    let cat = k.sh(&format!("cat {pid}")).await;
    assert_eq!(cat.status, 0, "{}", cat.stderr);
    assert!(
        cat.stdout == format!("{answer}\n"),
        "cat printed {} bytes",
        cat.stdout.len()
    );

    // Following it (as `fg` does) gets the same text in frames under the limit, then the exit.
    let mut conn = raw(&k.socket).await;
    let follow = OutputRequest {
        pid: Pid(pid),
        follow: true,
    };
    conn.write(&Request::Output(follow)).await.expect("write");
    let mut followed = String::new();
    loop {
        match recv(&mut conn).await {
            Ok(Response::Output(chunk)) => followed.push_str(&chunk.text),
            Ok(Response::Exited(_)) => break,
            other => panic!("unexpected frame: {other:?}"),
        }
    }
    assert!(followed == answer, "followed {} bytes", followed.len());
}

#[tokio::test]
async fn ps_of_a_table_larger_than_a_frame_even_in_previews_comes_in_pages() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 100_000,
        delay: std::time::Duration::from_millis(50),
        ..Default::default()
    })
    .await;
    let (dir, path) = config_file("cpus = 1\n");
    let k = TestKernel::start_in(dir, &fake.url, &["--config", &path]).await;
    // A preview of 256 four-byte characters is about 1 KiB a row: 4,500 rows are over 4 MiB.
    let prompt = "😀".repeat(300);
    let count = 4_500;
    let k = std::sync::Arc::new(k);
    let mut tasks = tokio::task::JoinSet::new();
    const CLIENTS: usize = 8;
    for client in 0..CLIENTS {
        let (k, prompt) = (std::sync::Arc::clone(&k), prompt.clone());
        tasks.spawn(async move {
            let mut conn = raw(&k.socket).await;
            for _ in (client..count).step_by(CLIENTS) {
                let req = SubmitRequest {
                    prompt: prompt.clone(),
                    system: None,
                    process_type: ProcessType::User,
                    max_tokens: None,
                    nice: 0,
                    attach: false,
                };
                conn.write(&Request::Submit(req)).await.expect("write");
                pid_of(recv(&mut conn).await);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("submitting client");
    }
    let run = k.sh("ps").await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().skip(1).count(), count);
}
