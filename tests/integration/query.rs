//! `query` end to end: streaming, the prototype's form, the model and allowance sent to the backend,
//! slots, and failures a user understands.

use crate::support::fake_llm::{FakeConfig, FakeLlm, Fault, answer};
use crate::support::{SHELL, STEP, TestKernel, config_file};
use std::time::Duration;
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn foreground_query_prints_the_whole_answer_and_exits_zero() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let run = k
        .sh("query \"Calculate the fibonacci sequence up to 10 terms\"")
        .await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(run.stdout, format!("{}\n", answer(10)));
    let req = &fake.requests()[0];
    assert_eq!(
        req.user_prompt(),
        "Calculate the fibonacci sequence up to 10 terms"
    );
    assert_eq!(req.body["stream"], true);
    assert_eq!(
        req.body["model"], "fake-model",
        "model comes from GET /models"
    );
    assert_eq!(req.body["max_tokens"], 4000, "USER allowance");
}

#[tokio::test]
async fn tokens_stream_to_stdout_while_the_backend_is_still_generating() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 400,
        delay: Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let mut child = tokio::process::Command::new(SHELL)
        .arg("--socket")
        .arg(&k.socket)
        .args(["-c", "query stream please"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while !seen.contains("t2 ") {
        let n = tokio::time::timeout(STEP, stdout.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "stdout closed before the first tokens");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert_eq!(
        fake.active(),
        1,
        "first tokens arrived while the answer was still being generated"
    );
    assert_eq!(fake.completed(), 0);
}

#[tokio::test]
async fn prototype_form_sends_system_and_user_messages() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let run = k
        .sh("query user=\"Calculate fib\" system=\"You are a math bot.\"")
        .await;
    assert_eq!(run.status, 0, "{run:?}");
    let messages = fake.requests()[0].messages();
    assert_eq!(
        messages,
        vec![
            ("system".into(), "You are a math bot.".into()),
            ("user".into(), "Calculate fib".into())
        ]
    );
}

#[tokio::test]
async fn configured_model_and_max_tokens_reach_the_backend() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &["--model", "smol"]).await;
    let run = k.sh("query --max-tokens 3 --type housekeeping hi").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!("{}\n", answer(3)),
        "generation stops at the allowance"
    );
    let body = &fake.requests()[0].body;
    assert_eq!(body["model"], "smol");
    assert_eq!(body["max_tokens"], 3);
}

#[tokio::test]
async fn dead_backend_fails_the_process_with_a_reason_and_the_kernel_carries_on() {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/v1");
    // No retries: the first failure ends the process (backend_faults.rs covers retrying).
    let (_cfg, cfg) = config_file("[backend]\nmax_retries = 0\n");
    let k = TestKernel::start(&url, &["--config", &cfg]).await;
    let run = k.sh("query hello").await;
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("backend {url} refused the connection")),
        "{}",
        run.stderr
    );
    let ps = k.sh("ps").await;
    assert_eq!(ps.status, 0, "the kernel still serves: {ps:?}");
}

#[tokio::test]
async fn http_error_and_broken_stream_end_the_process_as_failed() {
    let fake = FakeLlm::start(FakeConfig {
        fault: Some(Fault::Status(500)),
        ..Default::default()
    })
    .await;
    let (_cfg, cfg) = config_file("[backend]\nmax_retries = 0\n");
    let k = TestKernel::start(&fake.url, &["--config", &cfg]).await;
    let run = k.sh("query hello").await;
    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("HTTP 500"), "{}", run.stderr);

    fake.set(|c| c.fault = Some(Fault::MalformedAfter(2)));
    let run = k.sh("query hello").await;
    assert_eq!(run.status, 1);
    assert_eq!(run.stdout, "t0 t1 \n", "output before the failure is kept");
    assert!(run.stderr.contains("malformed stream"), "{}", run.stderr);

    fake.set(|c| c.fault = Some(Fault::ResetAfter(1)));
    let run = k.sh("query hello").await;
    assert_eq!(run.status, 1);
    assert_eq!(run.stdout, "t0 \n");
    assert!(
        run.stderr.contains("broke off the stream"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn stalled_backend_times_out_between_tokens() {
    let fake = FakeLlm::start(FakeConfig {
        fault: Some(Fault::StallAfter(1)),
        ..Default::default()
    })
    .await;
    let (_cfg, cfg) = config_file("[backend]\ntoken_timeout_secs = 0.3\nmax_retries = 0\n");
    let k = TestKernel::start(&fake.url, &["--config", &cfg]).await;
    let run = k.sh("query hello").await;
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains("stalled"), "{}", run.stderr);
    assert_eq!(run.stdout, "t0 \n");
}

#[tokio::test]
async fn cpus_bound_how_many_processes_generate_at_once() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 20,
        delay: Duration::from_millis(10),
        ..Default::default()
    })
    .await;
    let k = TestKernel::start(&fake.url, &["--cpus", "2"]).await;
    let run = k.sh("query a & query b & query c & query d & wait").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(fake.completed(), 4);
    // At most two: a busy machine may submit the later queries only after the first ones ended.
    let most = fake.max_active();
    assert!(most <= 2, "two slots, two streams at most, saw {most}");

    let fake1 = FakeLlm::start(FakeConfig {
        tokens: 20,
        delay: Duration::from_millis(5),
        ..Default::default()
    })
    .await;
    let k1 = TestKernel::start(&fake1.url, &[]).await;
    let run = k1.sh("query a & query b & query c & wait").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(fake1.max_active(), 1, "one slot by default");
}
