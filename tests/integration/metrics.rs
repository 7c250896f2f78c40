//! GET /metrics on `[metrics] listen`: a scripted workload, then a scrape parsed with a Prometheus
//! text parser and checked against what the workload did; and a non-loopback address is refused.

use crate::support::fake_llm::{FakeConfig, FakeLlm};
use crate::support::{TestKernel, config_file, kernel_command, kernel_refuses};
use prometheus_parse::{Sample, Scrape, Value};

/// A free loopback port (the kernel binds it a moment later).
fn free_port() -> u16 {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    socket.local_addr().expect("addr").port()
}

async fn scrape(port: u16) -> (String, Scrape) {
    let response = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("GET /metrics");
    assert!(response.status().is_success());
    let kind = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    let body = response.text().await.expect("body");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let parsed = Scrape::parse(lines).expect("a valid Prometheus exposition");
    (kind, parsed)
}

fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matches =
        |s: &&Sample| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v));
    scrape.samples.iter().find(matches).map(|s| match &s.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
        Value::Summary(_) => f64::NAN,
    })
}

#[tokio::test]
async fn metrics_count_a_scripted_workload() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 12,
        ..FakeConfig::default()
    })
    .await;
    let port = free_port();
    let (_dir, config) = config_file(&format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    let k = TestKernel::start(&fake.url, &["--config", &config, "--cpus", "1"]).await;
    let run = k
        .sh("query one\nquery two\nquery three\nquery --type HOUSEKEEPING chores\n")
        .await;
    assert_eq!(run.status, 0, "{}{}", run.stdout, run.stderr);
    let (kind, m) = scrape(port).await;
    assert!(kind.contains("text"), "{kind}");
    let user = [("process_type", "USER")];
    let chores = [("process_type", "HOUSEKEEPING")];
    assert_eq!(
        value(&m, "llmkernel_processes_created_total", &user),
        Some(3.0)
    );
    assert_eq!(
        value(&m, "llmkernel_processes_created_total", &chores),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "llmkernel_tokens_generated_total", &user),
        Some(36.0)
    );
    assert_eq!(
        value(&m, "llmkernel_tokens_generated_total", &chores),
        Some(12.0)
    );
    assert_eq!(
        value(&m, "llmkernel_time_to_first_token_seconds", &user),
        Some(3.0)
    );
    assert_eq!(
        value(&m, "llmkernel_queue_wait_seconds", &chores),
        Some(1.0)
    );
    assert_eq!(value(&m, "llmkernel_queue_length", &[]), Some(0.0));
    assert_eq!(value(&m, "llmkernel_slots", &[]), Some(1.0));
    let closed = [("state", "closed")];
    assert_eq!(value(&m, "llmkernel_backend_circuit", &closed), Some(1.0));
    assert_eq!(
        value(&m, "llmkernel_backend_failures_total", &[]),
        Some(0.0)
    );
    assert!(value(&m, "llmkernel_journal_syncs_total", &[]).is_some_and(|n| n >= 4.0));
    assert!(value(&m, "llmkernel_context_switches_total", &[]).is_some());
    let decisions = value(&m, "llmkernel_scheduling_decision_seconds", &[]);
    assert!(decisions.is_some_and(|n| n >= 4.0), "{decisions:?}");
    let waiting_users = [("state", "waiting"), ("process_type", "USER")];
    assert_eq!(value(&m, "llmkernel_processes", &waiting_users), Some(0.0));
}

#[tokio::test]
async fn a_metrics_address_off_loopback_is_refused() {
    let (_dir, config) = config_file("[metrics]\nlisten = \"0.0.0.0:9464\"\n");
    let mut command = kernel_command(&[&"--check-config", &"--config", &config]);
    command.arg("--backend").arg("http://127.0.0.1:9/v1");
    let stderr = kernel_refuses(command).await;
    assert!(stderr.contains("not a loopback address"), "{stderr}");
}

#[tokio::test]
async fn the_metrics_listener_serves_no_dashboard_since_nothing_there_authenticates() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let port = free_port();
    let (_dir, config) = config_file(&format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    let _k = TestKernel::start(&fake.url, &["--config", &config]).await;
    for path in ["/", "/v1/events", "/api/view"] {
        let reply = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
            .await
            .expect("GET");
        assert_eq!(reply.status(), 404, "{path}");
    }
}
