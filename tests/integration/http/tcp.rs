//! The front door on loopback TCP: without a keys file every caller is the unprivileged `nobody`;
//! with one, a bearer key names the user; a `Host` that does not name the listener is refused.

use super::client::call_tcp;
use crate::support::fake_llm::{FakeConfig, FakeLlm};
use crate::support::{TestKernel, config_file};
use std::os::unix::fs::PermissionsExt;

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[tokio::test]
async fn without_keys_tcp_callers_are_nobody_and_may_not_raise_priority() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let port = free_port();
    let (_cfg, path) = config_file(&format!("[http]\nlisten = \"127.0.0.1:{port}\"\n"));
    let _k = TestKernel::start(&fake.url, &["--config", &path]).await;
    let addr = format!("127.0.0.1:{port}");
    let host = [("Host", addr.as_str())];
    let body = super::client::chat_body("hi", "");
    let reply = call_tcp(&addr, "POST", "/v1/chat/completions", &host, &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let pid = reply.pid();
    let negative = [("Host", addr.as_str()), ("X-LLMKernel-Nice", "-5")];
    let refused = call_tcp(&addr, "POST", "/v1/chat/completions", &negative, &body).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let rebound = [("Host", "evil.example")];
    let wrong_host = call_tcp(&addr, "GET", "/health", &rebound, "").await;
    assert_eq!(wrong_host.status, 403, "{}", wrong_host.body);
    assert!(wrong_host.header("access-control-allow-origin").is_none());
    let _ = pid;
}

#[tokio::test]
async fn with_keys_a_bearer_key_names_the_user_and_a_missing_one_is_refused() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let port = free_port();
    let uid = nix::unistd::getuid().as_raw();
    let (cfg, _) = config_file("");
    let keys = cfg.path().join("keys");
    std::fs::write(&keys, format!("sk-right {uid}\n")).unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\nkeys_file = \"{}\"\n",
        keys.display()
    );
    let (_cfg2, path) = config_file(&text);
    let k = TestKernel::start(&fake.url, &["--config", &path]).await;
    let addr = format!("127.0.0.1:{port}");
    let body = super::client::chat_body("hi", "");
    for auth in [None, Some("Bearer sk-wrong")] {
        let mut headers = vec![("Host", addr.as_str())];
        headers.extend(auth.map(|a| ("Authorization", a)));
        let reply = call_tcp(&addr, "POST", "/v1/chat/completions", &headers, &body).await;
        assert_eq!(reply.status, 401, "{}", reply.body);
    }
    let headers = [
        ("Host", addr.as_str()),
        ("Authorization", "bearer sk-right"),
        ("X-LLMKernel-Detach", "1"),
    ];
    let reply = call_tcp(&addr, "POST", "/v1/chat/completions", &headers, &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let row = call_tcp(
        &addr,
        "GET",
        &format!("/v1/processes/{}", reply.pid()),
        &headers,
        "",
    )
    .await;
    assert_eq!(row.json()["uid"], uid);
    let ps = k.sh("ps").await;
    assert!(
        crate::support::ps_row(&ps.stdout, reply.pid()).is_some(),
        "{ps:?}"
    );
}
