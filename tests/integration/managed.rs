//! The managed backend through the real binary: `[backend] command` starts a server process with the
//! kernel, the slot count follows the server's, and the kernel stops it when it stops. The "server"
//! here is a `sh` standing in as the process while the fake answers HTTP; the real llama-server is
//! the e2e suite's business.

use crate::support::fake_llm::{FakeConfig, FakeLlm, ServerKind};
use crate::support::{TestKernel, kernel_command, kernel_refuses};
use std::path::Path;

/// A config whose managed "server" writes its pid to `pidfile` and then waits.
fn config(dir: &Path, url: &str, pidfile: &Path, extra: &str) -> std::path::PathBuf {
    let script = format!("echo $$ > {}; exec sleep 600", pidfile.display());
    let path = dir.join("managed.toml");
    let text =
        format!("[backend]\nurl = \"{url}\"\ncommand = [\"sh\", \"-c\", {script:?}]\n{extra}");
    std::fs::write(&path, text).expect("write config");
    path
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

#[tokio::test]
async fn managed_server_sets_the_slot_count_and_stops_with_the_kernel() {
    let fake = FakeLlm::start(FakeConfig {
        kind: ServerKind::LlamaCpp { slots: 3 },
        ..FakeConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("server.pid");
    let config = config(dir.path(), &fake.url, &pidfile, "");
    let mut k = TestKernel::start(&fake.url, &["--config", config.to_str().unwrap()]).await;
    let server: i32 = std::fs::read_to_string(&pidfile)
        .expect("the kernel started its server before it was ready")
        .trim()
        .parse()
        .expect("pid");
    let sched = k.sh("sched").await;
    assert!(sched.stdout.contains("cpus: 3"), "{}", sched.stdout);
    let run = k.sh("query hello").await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(alive(server));
    k.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(k.exit_code().await, Some(0));
    assert!(!alive(server), "the kernel's server outlived it");
}

#[tokio::test]
async fn a_managed_server_that_never_gets_ready_stops_the_kernel_starting_with_a_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("server.pid");
    let url = "http://127.0.0.1:9/v1";
    let config = config(dir.path(), url, &pidfile, "startup_timeout_secs = 0.5\n");
    let (socket, state) = (dir.path().join("k.sock"), dir.path().join("state"));
    let stderr = kernel_refuses(kernel_command(&[
        &"--config",
        &config,
        &"--socket",
        &socket,
        &"--state-dir",
        &state,
    ]))
    .await;
    assert!(
        stderr.contains(
            "llmkernel: the backend command `sh` was not ready at http://127.0.0.1:9/health"
        ),
        "{stderr}"
    );
    let server: i32 = std::fs::read_to_string(&pidfile)
        .expect("pidfile")
        .trim()
        .parse()
        .expect("pid");
    assert!(
        !alive(server),
        "the server that never got ready was left running"
    );
}
