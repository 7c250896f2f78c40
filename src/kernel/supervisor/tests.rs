//! The supervisor against real child processes (`sh`, `sleep`) and a small HTTP server on loopback
//! standing in for the server's health endpoints.

use super::*;
use axum::Router;
use axum::routing::get;

/// A closed port: nothing ever answers there.
const NOWHERE: &str = "http://127.0.0.1:9/v1";
const DEADLINE: Duration = Duration::from_secs(15);

fn managed(command: &[&str], startup_timeout: Duration) -> ManagedBackend {
    ManagedBackend {
        command: command.iter().map(|s| s.to_string()).collect(),
        health_url: None,
        startup_timeout,
    }
}

/// Serves `router` on a free loopback port; returns its base URL (`…/v1`).
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/v1")
}

fn alive(pid: u32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
}

async fn start(m: &ManagedBackend, url: &str) -> Result<Supervisor, SupervisorError> {
    Supervisor::start(m, url, &CancellationToken::new()).await
}

#[tokio::test]
async fn a_command_that_exits_before_it_is_ready_is_an_error_with_its_last_output() {
    let script = "echo loading; echo 'error: bad model file' >&2; exit 3";
    let m = managed(&["sh", "-c", script], DEADLINE);
    let err = start(&m, NOWHERE).await.err().unwrap().to_string();
    assert!(err.contains("`sh` exited (exit status 3)"), "{err}");
    assert!(err.contains("error: bad model file"), "{err}");
}

#[tokio::test]
async fn a_missing_program_is_an_error_naming_it() {
    let m = managed(&["/nonexistent/llama-server"], DEADLINE);
    let err = start(&m, NOWHERE).await.err().unwrap().to_string();
    assert!(
        err.starts_with("cannot start the backend command `/nonexistent/llama-server`"),
        "{err}"
    );
}

/// Live processes whose command line or environment holds `marker` (a zombie has neither).
fn processes_marked(marker: &str) -> Vec<String> {
    let holds = |bytes: Vec<u8>| bytes.windows(marker.len()).any(|w| w == marker.as_bytes());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|entry| {
            let read = |file| std::fs::read(entry.path().join(file)).unwrap_or_default();
            holds(read("cmdline")) || holds(read("environ"))
        })
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn a_server_that_never_gets_ready_times_out_and_is_stopped() {
    // The stand-in carries a marker at every stage, in its command line (as `sh -c SCRIPT` and as
    // `env`) and then in its environment (as `sleep`), so it is found whether or not a busy machine
    // let it run its first command within the 400 ms.
    let marker = format!("LLMKERNEL_NEVER_READY={}", std::process::id());
    let script = format!("exec env {marker} sleep 60");
    let m = managed(&["sh", "-c", &script], Duration::from_millis(400));
    let err = start(&m, NOWHERE).await.err().unwrap().to_string();
    assert!(
        err.contains("was not ready at http://127.0.0.1:9/health within 400ms"),
        "{err}"
    );
    assert_eq!(
        processes_marked(&marker),
        Vec::<String>::new(),
        "the server that never got ready was left running"
    );
}

#[tokio::test]
async fn a_server_without_health_is_ready_once_it_lists_models_and_slots_come_from_np() {
    let url = serve(Router::new().route("/v1/models", get(|| async { "{\"data\":[]}" }))).await;
    // `sh -c SCRIPT sh -np 2`: the arguments only matter for the slot count.
    let m = managed(&["sh", "-c", "exec sleep 60", "sh", "-np", "2"], DEADLINE);
    let s = start(&m, &url).await.unwrap();
    assert_eq!(s.slots, Some(2));
    let pid = match &*s.status().borrow() {
        BackendStatus::Up { pid } => *pid,
        other => panic!("{other:?}"),
    };
    s.spawn(CancellationToken::new()).stop().await;
    assert!(!alive(pid));
}

#[tokio::test]
async fn a_server_that_dies_is_restarted_and_stopped_at_the_end() {
    let router = Router::new()
        .route("/health", get(|| async { "{\"status\":\"ok\"}" }))
        .route("/props", get(|| async { "{\"total_slots\":3}" }));
    let url = serve(router).await;
    let s = start(&managed(&["sleep", "600"], DEADLINE), &url)
        .await
        .unwrap();
    assert_eq!(s.slots, Some(3), "the slot count is the server's own");
    let mut status = s.status();
    let first = match &*status.borrow() {
        BackendStatus::Up { pid } => *pid,
        other => panic!("{other:?}"),
    };
    let handle = s.spawn(CancellationToken::new());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let wait = |cond: fn(&BackendStatus, u32) -> bool| {
        let mut status = status.clone();
        async move {
            tokio::time::timeout(DEADLINE, status.wait_for(|s| cond(s, first)))
                .await
                .expect("status change in time")
                .map(|s| s.clone())
                .unwrap()
        }
    };
    wait(|s, _| matches!(s, BackendStatus::Restarting { restarts: 1 })).await;
    let second =
        match wait(|s, first| matches!(s, BackendStatus::Up { pid } if *pid != first)).await {
            BackendStatus::Up { pid } => pid,
            other => panic!("{other:?}"),
        };
    assert!(alive(second));
    handle.stop().await;
    assert!(!alive(second), "stopping the kernel stops its server");
    assert_eq!(*status.borrow_and_update(), BackendStatus::Stopped);
}

#[tokio::test]
async fn stopping_while_a_restart_waits_starts_no_new_server() {
    let url = serve(Router::new().route("/health", get(|| async { "ok" }))).await;
    let dir = tempfile::tempdir().unwrap();
    let starts = dir.path().join("starts");
    let script = format!("echo $$ >> {}; exec sleep 600", starts.display());
    let s = start(&managed(&["sh", "-c", &script], DEADLINE), &url)
        .await
        .unwrap();
    let mut status = s.status();
    let handle = s.spawn(CancellationToken::new());
    // The stand-in is "ready" at once (the health endpoint is ours); wait for it to say its pid.
    let deadline = Instant::now() + DEADLINE;
    let first: i32 = loop {
        assert!(
            Instant::now() < deadline,
            "the stand-in never wrote its pid"
        );
        let written = std::fs::read_to_string(&starts).unwrap_or_default();
        if let Ok(pid) = written.trim().parse() {
            break pid;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    tokio::time::timeout(
        DEADLINE,
        status.wait_for(|s| matches!(s, BackendStatus::Restarting { .. })),
    )
    .await
    .expect("restarting in time")
    .unwrap();
    handle.stop().await;
    assert_eq!(*status.borrow_and_update(), BackendStatus::Stopped);
    let started = std::fs::read_to_string(&starts).unwrap();
    assert_eq!(
        started.lines().count(),
        1,
        "a server was started after the stop"
    );
}
