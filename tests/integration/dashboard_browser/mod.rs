//! The dashboard at `/` of the front door: its files and event stream behind the front door's
//! authentication (here over the Unix socket, and the TCP login with a key), and in a real headless
//! chromium driven through WebDriver ([`webdriver`]).

mod webdriver;

use crate::support::fake_llm::{FakeConfig, FakeLlm};
use crate::support::{STEP, TestKernel, config_file, job_pid};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A backend slow enough that a process is still running while a test looks at it.
pub fn slow_backend() -> FakeConfig {
    FakeConfig {
        tokens: 100_000,
        delay: Duration::from_millis(20),
        ..FakeConfig::default()
    }
}

/// Reads a GET of `uri` on the front door's socket until what arrived contains `needle` (the
/// answer may never end, as the event stream does not).
async fn get_until(socket: &Path, uri: &str, needle: &str) -> String {
    let mut stream = tokio::net::UnixStream::connect(socket)
        .await
        .expect("connect");
    let request = format!("GET {uri} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    while !String::from_utf8_lossy(&got).contains(needle) {
        let n = tokio::time::timeout(STEP, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in time: {}", String::from_utf8_lossy(&got)))
            .expect("read");
        assert!(
            n > 0,
            "closed before {needle:?}: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn the_page_its_files_and_the_event_stream_are_served_on_the_front_door_socket() {
    let fake = FakeLlm::start(slow_backend()).await;
    let k = TestKernel::start(&fake.url, &["--cpus", "1"]).await;
    let pid = job_pid(&k.sh("query a dashboard story &").await.stdout);
    let socket = k.socket.with_file_name("llmkernel-http.sock");
    let page = get_until(&socket, "/", "</html>").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("dashboard.js") && page.contains("<canvas"));
    let script = get_until(&socket, "/dashboard.js", "connect();").await;
    assert!(script.contains("text/javascript"), "{script}");
    let style = get_until(&socket, "/dashboard.css", "text/css").await;
    assert!(style.starts_with("HTTP/1.1 200"), "{style}");
    // The stream starts with the snapshot, the running process in it, then samples keep coming.
    let events = get_until(&socket, "/v1/events", "\"Sample\"").await;
    assert!(events.contains("text/event-stream"), "{events}");
    let snapshot = events
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e.get("Snapshot").is_some())
        .unwrap_or_else(|| panic!("no snapshot in {events}"));
    let rows = snapshot["Snapshot"]["processes"].as_array().cloned();
    let row = rows
        .unwrap_or_default()
        .into_iter()
        .find(|r| r["pid"] == pid)
        .unwrap_or_else(|| panic!("pid {pid} in {snapshot}"));
    assert_eq!(
        row["prompt"], "a dashboard story",
        "its owner sees the prompt"
    );
}

/// A kernel whose front door listens on loopback TCP with a keys file naming the test's user.
pub async fn with_keys(fake: &FakeLlm, key: &str) -> (TestKernel, String, tempfile::TempDir) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let uid = nix::unistd::getuid().as_raw();
    let (dir, _) = config_file("");
    let keys = dir.path().join("keys");
    std::fs::write(&keys, format!("{key} {uid}\n")).expect("keys file");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let text = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\nkeys_file = \"{}\"\n",
        keys.display()
    );
    let (_cfg, config) = config_file(&text);
    let k = TestKernel::start(&fake.url, &["--config", &config, "--cpus", "2"]).await;
    (k, format!("127.0.0.1:{port}"), dir)
}

#[tokio::test]
async fn on_tcp_a_browser_logs_in_with_a_key_and_the_cookie_acts_only_from_the_dashboard() {
    let fake = FakeLlm::start(slow_backend()).await;
    let (k, addr, _keys) = with_keys(&fake, "sk-dash").await;
    let pid = job_pid(&k.sh("query a story &").await.stdout);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let base = format!("http://{addr}");
    let form = http.get(format!("{base}/")).send().await.expect("GET /");
    assert_eq!(form.status(), 401);
    assert!(form.text().await.unwrap_or_default().contains("<form"));
    let wrong = http
        .post(format!("{base}/login"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("key=sk-wrong")
        .send()
        .await
        .expect("POST /login");
    assert_eq!(wrong.status(), 401);
    let right = http
        .post(format!("{base}/login"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("key=sk-dash")
        .send()
        .await
        .expect("POST /login");
    assert_eq!(right.status(), 303);
    let cookie = right
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .expect("a cookie")
        .to_string();
    let page = http
        .get(format!("{base}/"))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("GET / with the cookie");
    assert_eq!(page.status(), 200);
    let kill = |origin: &str| {
        http.delete(format!("{base}/v1/processes/{pid}"))
            .header("Cookie", &cookie)
            .header("Origin", origin)
            .send()
    };
    let foreign = kill("http://127.0.0.1:1").await.expect("DELETE");
    assert_eq!(foreign.status(), 403, "another page may not use the cookie");
    let own = kill(&base).await.expect("DELETE");
    assert_eq!(own.status(), 200, "{:?}", own.text().await);
    killed_by_the_kernel(&addr, "sk-dash", pid).await;
    drop(k);
}

/// Waits until the kernel reports `pid` killed (`GET /v1/processes/{pid}` with the bearer key).
pub async fn killed_by_the_kernel(addr: &str, key: &str, pid: u64) {
    kernel_row(addr, key, pid, "killed", |row| {
        row["exit"]["Killed"]["signal"] == "Kill"
    })
    .await;
}

/// Waits until `cond` holds of the kernel's row for `pid` (`GET /v1/processes/{pid}` with the
/// bearer key).
pub async fn kernel_row(
    addr: &str,
    key: &str,
    pid: u64,
    what: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let row: serde_json::Value = reqwest::Client::new()
            .get(format!("http://{addr}/v1/processes/{pid}"))
            .bearer_auth(key)
            .send()
            .await
            .expect("GET the process")
            .json()
            .await
            .unwrap_or_default();
        if cond(&row) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pid {pid} was not reported {what}: {row}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
