//! The dashboard in a real browser: Debian's chromium, headless, driven through chromedriver
//! (WebDriver) with fantoccini. The page loads behind the TCP login, shows a running process, its
//! kill button kills it (the kernel then reports it killed), another's stop, cont and renice
//! buttons do what they say, and a screenshot is saved as
//! `target/dashboard.png` for review. Without chromium the test fails and says how to install it.

use super::{kernel_row, killed_by_the_kernel, slow_backend, with_keys};
use crate::support::fake_llm::FakeLlm;
use crate::support::{STEP, job_pid};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::{Child, Command};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const KEY: &str = "sk-browser";
/// Samples (one a second) the page has drawn before the screenshot, so its chart has a line.
const SAMPLES_BEFORE_SCREENSHOT: u64 = 8;

/// chromedriver in its own process group; dropping it kills the group, chromium included, even
/// when the test fails half-way.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(id) = self.child.id() {
            let group = nix::unistd::Pid::from_raw(id as i32);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

fn require_browser() {
    for path in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: the dashboard's browser test needs Debian's chromium and \
             chromedriver; run `scripts/browser setup` (as root) to install them"
        );
    }
}

async fn start_driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn chromedriver");
    let driver = Driver { child, port };
    let deadline = tokio::time::Instant::now() + STEP;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromedriver did not listen"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    driver
}

async fn open_browser(driver: &Driver, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,800", format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a chromium session through chromedriver")
}

/// Waits until `script` (a function body) returns true in the page.
async fn until(browser: &Client, what: &str, script: &str) {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let value = browser.execute(script, vec![]).await.unwrap_or(Value::Null);
        if value == Value::Bool(true) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the page never showed {what}; it shows: {:?}",
            browser.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Clicks the `action` button of `pid`'s row.
async fn click(browser: &Client, pid: u64, action: &str) {
    let css = format!(r#"tr[data-pid="{pid}"] button[data-action="{action}"]"#);
    browser
        .find(Locator::Css(&css))
        .await
        .unwrap_or_else(|e| panic!("no {action} button for {pid}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {action} for {pid}: {e}"));
}

fn screenshot_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard.png")
}

#[tokio::test]
async fn in_chromium_the_dashboard_shows_a_running_process_and_its_kill_button_kills_it() {
    require_browser();
    let fake = FakeLlm::start(slow_backend()).await;
    let (k, addr, _keys) = with_keys(&fake, KEY).await;
    let mut pids = Vec::new();
    for story in [
        "a story about rivers",
        "a poem about salt",
        "a tale of two slots",
    ] {
        pids.push(job_pid(&k.sh(&format!("query {story} &")).await.stdout));
    }
    let driver = start_driver().await;
    let profile = tempfile::tempdir().expect("profile dir");
    let browser = open_browser(&driver, profile.path()).await;
    browser
        .goto(&format!("http://{addr}/"))
        .await
        .expect("open /");
    let key = browser
        .wait()
        .at_most(STEP)
        .for_element(Locator::Id("key"))
        .await
        .expect("the login form");
    key.send_keys(KEY).await.expect("type the key");
    browser
        .find(Locator::Id("login"))
        .await
        .expect("the login button")
        .click()
        .await
        .expect("log in");
    let running = browser
        .wait()
        .at_most(STEP)
        .for_element(Locator::Css(r#"tr[data-state="Running"]"#))
        .await
        .expect("a running process in the table");
    let pid: u64 = running
        .attr("data-pid")
        .await
        .ok()
        .flatten()
        .and_then(|p| p.parse().ok())
        .expect("the row's pid");
    until(
        &browser,
        "samples for the chart",
        &format!("return view.samples.length >= {SAMPLES_BEFORE_SCREENSHOT};"),
    )
    .await;
    let png = browser.screenshot().await.expect("a screenshot");
    std::fs::write(screenshot_path(), png).expect("save target/dashboard.png");
    click(&browser, pid, "kill").await;
    killed_by_the_kernel(&addr, KEY, pid).await;
    until(
        &browser,
        "the process ended",
        &format!(r#"const r = document.querySelector('tr[data-pid="{pid}"]'); return !r || r.classList.contains("ended");"#),
    )
    .await;
    let other = pids
        .iter()
        .copied()
        .find(|p| *p != pid)
        .expect("another process");
    click(&browser, other, "stop").await;
    kernel_row(&addr, KEY, other, "stopped", |r| r["state"] == "Stopped").await;
    click(&browser, other, "cont").await;
    kernel_row(&addr, KEY, other, "continued", |r| r["state"] != "Stopped").await;
    let nice = browser
        .find(Locator::Css(&format!(r#"tr[data-pid="{other}"] input"#)))
        .await
        .expect("the nice field");
    nice.clear().await.expect("clear the nice field");
    nice.send_keys("5").await.expect("type a niceness");
    click(&browser, other, "renice").await;
    kernel_row(&addr, KEY, other, "reniced", |r| r["nice"] == 5).await;
    let errors = browser
        .execute("return scriptErrors;", vec![])
        .await
        .expect("read the page's script errors");
    assert_eq!(errors, json!([]), "the page's script failed");
    let _ = browser.close().await;
    drop(driver);
}
