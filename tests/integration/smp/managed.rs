//! A `[[backends]]` entry with a `command`: the kernel starts that server with itself, takes its
//! slot count from it, and stops it when it stops. The "server" is a `sh` standing in as the process
//! while a fake answers HTTP, as in the one-backend managed tests.

use super::{entry, fake, kernel};
use crate::support::fake_llm::{FakeConfig, FakeLlm, ServerKind};

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

#[tokio::test]
async fn a_managed_backend_entry_starts_its_server_and_stops_it_with_the_kernel() {
    let managed = FakeLlm::start(FakeConfig {
        kind: ServerKind::LlamaCpp { slots: 3 },
        model: "m".into(),
        ..FakeConfig::default()
    })
    .await;
    let other = fake("m", 0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("server.pid");
    let script = format!("echo $$ > {}; exec sleep 600", pidfile.display());
    let config = format!(
        "{}command = [\"sh\", \"-c\", {script:?}]\n{}",
        entry("managed", &managed.url),
        entry("other", &other.url)
    );
    let mut k = kernel(&config, &[]).await;
    let server: i32 = std::fs::read_to_string(&pidfile)
        .expect("the kernel started its server before it was ready")
        .trim()
        .parse()
        .expect("pid");
    let sched = k.sh_wide("sched").await.stdout;
    assert!(
        sched.contains("cpus: 4") && sched.contains("0/3"),
        "{sched}"
    );
    assert_eq!(k.sh("query hello").await.status, 0);
    assert!(alive(server));
    k.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(k.exit_code().await, Some(0));
    assert!(!alive(server), "the kernel's server outlived it");
}
