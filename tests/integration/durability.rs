//! Nothing is lost across a crash or a restart: the durable process table, against the real kernel
//! binary killed with SIGKILL at random moments, a torn journal tail, a full disk, an old format, and
//! a planned SIGTERM restart.

use crate::support::fake_llm::{FakeConfig, FakeLlm, answer};
use crate::support::{TestKernel, config_file, job_pid, kernel_command, kernel_refuses, ps_row};
use std::collections::BTreeSet;
use std::time::Duration;

/// Iterations of the crash test in the normal suite; `LLMKERNEL_CRASH_ITERATIONS` runs a longer soak
/// (scripts/soak-crash).
const CRASH_ITERATIONS: usize = 100;

/// The pids `ps -a` lists, failing on a duplicate.
fn listed(ps: &str) -> BTreeSet<u64> {
    let mut seen = BTreeSet::new();
    for line in ps.lines().skip(1) {
        let pid: u64 = line
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .expect("pid column");
        assert!(seen.insert(pid), "pid {pid} listed twice:\n{ps}");
    }
    seen
}

/// A seeded xorshift, so a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A second kernel on `k`'s state directory exits at once, naming `k`.
pub async fn assert_second_kernel_is_refused(k: &TestKernel, backend: &str) {
    let (socket, state) = (k.dir.path().join("second.sock"), k.dir.path().join("state"));
    let mut command = kernel_command(&[&"--socket", &socket, &"--state-dir", &state]);
    command
        .args(["--backend", backend])
        .env("XDG_CONFIG_HOME", k.dir.path());
    let stderr = kernel_refuses(command).await;
    let holder = k.child.id().expect("pid").to_string();
    assert!(
        stderr.contains("in use") && stderr.contains(&holder),
        "{stderr}"
    );
}

#[tokio::test]
async fn sigkill_at_random_moments_loses_no_acknowledged_process_and_no_output() {
    const TOKENS: usize = 16;
    let iterations = std::env::var("LLMKERNEL_CRASH_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CRASH_ITERATIONS);
    let fake = FakeLlm::start(FakeConfig {
        tokens: TOKENS,
        delay: Duration::from_millis(1),
        ..Default::default()
    })
    .await;
    // Compaction every few records, so some kills land in the middle of one; every other start
    // compacts at each record, so a creation is the record that triggers one.
    let config_text =
        |every: u32| format!("cpus = 2\nquantum = 4\njournal_compact_records = {every}\n");
    let (mut dir, config) = config_file(&config_text(7));
    let args = ["--config", config.as_str()];
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut acked = BTreeSet::new();
    for i in 0..iterations {
        std::fs::write(&config, config_text([7, 1][i % 2])).expect("config");
        let k = TestKernel::start_in(dir, &fake.url, &args).await;
        let present = listed(&k.sh("ps -a").await.stdout);
        assert_eq!(
            present, acked,
            "iteration {i}: every acknowledged process, exactly once"
        );
        if i % 10 == 0 {
            assert_second_kernel_is_refused(&k, &fake.url).await;
        }
        let run = k.sh(&format!("query \"crash test {i}\" &")).await;
        for line in run.stdout.lines() {
            acked.insert(job_pid(line));
        }
        // Kill right after the acknowledgements, or mid-stream, or once things settle.
        let wait_ms = [0, 2, 5, 10, 20, 40][rng.below(6) as usize];
        if wait_ms > 0 {
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        }
        dir = k.crash().await;
        // A write under way when the machine lost power: bytes past the last sync, some of them.
        if rng.below(3) == 0 {
            let journal = dir.path().join("state/journal.log");
            let torn: Vec<u8> = (0..1 + rng.below(64))
                .map(|_| rng.below(256) as u8)
                .collect();
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&journal)
                .expect("journal");
            std::io::Write::write_all(&mut file, &torn).expect("torn write");
        }
    }
    let k = TestKernel::start_in(dir, &fake.url, &args).await;
    assert_eq!(listed(&k.sh("ps -a").await.stdout), acked);
    k.eventually("ps -a", "every process to finish", |ps| {
        ps.lines()
            .skip(1)
            .all(|l| l.split_whitespace().nth(5) == Some("Z"))
    })
    .await;
    let whole = answer(TOKENS);
    for pid in &acked {
        let cat = k.sh(&format!("cat {pid}")).await;
        assert_eq!(
            cat.stdout,
            format!("{whole}\n"),
            "pid {pid}: one unbroken answer, exactly once"
        );
        assert_eq!(k.sh(&format!("wait {pid}")).await.status, 0);
    }
    assert!(
        listed(&k.sh("ps -a").await.stdout).is_empty(),
        "all collected"
    );
}

#[tokio::test]
async fn a_planned_restart_loses_nothing_and_keeps_every_state() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 400,
        delay: Duration::from_millis(5),
        ..Default::default()
    })
    .await;
    let (dir, config) = config_file("quantum = 8\n");
    let args = ["--config", config.as_str()];
    let k = TestKernel::start_in(dir, &fake.url, &args).await;
    let done = job_pid(&k.sh("query \"[tokens=3] quick\" &").await.stdout);
    k.eventually("ps", "the quick one to finish", |ps| {
        ps_row(ps, done).is_some_and(|r| r[5] == "Z")
    })
    .await;
    let running = job_pid(&k.sh("query long &").await.stdout);
    let w1 = job_pid(
        &k.sh("query --type housekeeping first-waiting &")
            .await
            .stdout,
    );
    let w2 = job_pid(
        &k.sh("query --type housekeeping second-waiting &")
            .await
            .stdout,
    );
    let stopped = job_pid(&k.sh("query --type housekeeping to-stop &").await.stdout);
    k.sh(&format!("kill -STOP {stopped}")).await;
    k.eventually("ps", "tokens to flow", |ps| {
        ps_row(ps, running)
            .is_some_and(|r| r[6].split('/').next().and_then(|n| n.parse::<u32>().ok()) > Some(20))
    })
    .await;
    let dir = k.stop().await;
    assert!(
        dir.path().join("state/journal.log").exists(),
        "the journal exists"
    );

    let k = TestKernel::start_in(dir, &fake.url, &args).await;
    let ps = k.sh("ps").await.stdout;
    assert_eq!(ps_row(&ps, done).expect("finished one")[5], "Z");
    assert_eq!(ps_row(&ps, stopped).expect("stopped one")[5], "T");
    let partial = k.sh(&format!("cat {running}")).await.stdout;
    assert!(
        partial.len() > "t0 t1 ".len() && answer(400).starts_with(partial.trim_end_matches('\n')),
        "{partial}"
    );
    assert_eq!(
        k.sh(&format!("cat {done}")).await.stdout,
        format!("{}\n", answer(3))
    );
    assert_eq!(
        k.sh(&format!("wait {done}")).await.status,
        0,
        "wait works after a restart"
    );
    // The interrupted one resumes as a continuation and finishes whole; the waiting ones keep order.
    assert_eq!(k.sh(&format!("wait {running}")).await.status, 0);
    assert_eq!(
        k.sh(&format!("cat {running}")).await.stdout,
        "",
        "collected"
    );
    assert_eq!(k.sh(&format!("wait {w1} {w2}")).await.status, 0);
    let prompts: Vec<String> = fake.requests().iter().map(|r| r.user_prompt()).collect();
    let first = prompts
        .iter()
        .position(|p| p == "first-waiting")
        .expect("first ran");
    let second = prompts
        .iter()
        .position(|p| p == "second-waiting")
        .expect("second ran");
    assert!(
        first < second,
        "waiting processes keep their order: {prompts:?}"
    );
    let resumed = fake
        .requests()
        .iter()
        .filter(|r| r.user_prompt() == "long")
        .count();
    assert!(
        resumed >= 2,
        "the interrupted process continued in a new request"
    );
}

#[tokio::test]
async fn a_torn_journal_tail_is_cut_and_the_kernel_starts() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let pid = job_pid(&k.sh("query \"[tokens=2] kept\" &").await.stdout);
    let dir = k.crash().await;
    let journal = dir.path().join("state/journal.log");
    let mut bytes = std::fs::read(&journal).expect("journal");
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3]); // half a record: a length and a few bytes
    std::fs::write(&journal, &bytes).expect("tear");
    let k = TestKernel::start_in(dir, &fake.url, &[]).await;
    assert!(
        ps_row(&k.sh("ps").await.stdout, pid).is_some(),
        "the process before the tear survives"
    );
    assert_eq!(k.sh(&format!("wait {pid}")).await.status, 0);
    assert!(std::fs::read(&journal).expect("journal").len() < bytes.len() + 64);
}

#[tokio::test]
async fn a_full_disk_refuses_new_processes_and_recovers_when_space_returns() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 2,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let limit = 6 * 1024;
    let k = TestKernel::start_with(dir, &fake.url, &[], move |cmd| {
        // The file-size limit applies to every file the kernel writes, its stderr too when that is
        // a file (as under CI): keep the log out of it.
        cmd.stderr(std::process::Stdio::null());
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec here.
        unsafe {
            cmd.pre_exec(move || {
                let unlimited = nix::sys::resource::RLIM_INFINITY;
                nix::sys::resource::setrlimit(
                    nix::sys::resource::Resource::RLIMIT_FSIZE,
                    limit,
                    unlimited,
                )
                .map_err(std::io::Error::from)
            });
        }
    })
    .await;
    let mut refused = None;
    for i in 0..400 {
        let run = k.sh(&format!("query --max-tokens 2 \"job {i}\"")).await;
        if run.status != 0 {
            refused = Some(run);
            break;
        }
    }
    let refused = refused.expect("the journal hit the size limit");
    assert!(
        refused.stderr.contains("cannot record"),
        "{}",
        refused.stderr
    );
    assert_eq!(k.sh("ps").await.status, 0, "the kernel stays up");
    // Space returns: raise the limit of the running kernel.
    let pid = k.child.id().expect("pid") as i32;
    let unlimited = nix::libc::rlimit {
        rlim_cur: nix::libc::RLIM_INFINITY,
        rlim_max: nix::libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit reads `unlimited` and writes nothing (null old-limit pointer).
    let raised = unsafe {
        nix::libc::prlimit(
            pid,
            nix::libc::RLIMIT_FSIZE,
            &unlimited,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(raised, 0, "prlimit");
    let run = k
        .sh("query --max-tokens 2 \"after the disk had room again\"")
        .await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(run.stdout, "t0 t1 \n");
}

#[tokio::test]
async fn state_of_an_unreadable_format_stops_the_kernel_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    // A header record of journal format 0 (an older llmkernel), framed as the journal frames it.
    let header = llmkernel::kernel::journal::record::Record::Header {
        magic: llmkernel::kernel::journal::record::MAGIC.into(),
        format_version: 0,
    };
    let frame = llmkernel::kernel::journal::file::frame(&header).expect("frame");
    std::fs::write(state.join("journal.log"), frame).expect("write");
    let socket = dir.path().join("k.sock");
    let mut command = kernel_command(&[&"--socket", &socket, &"--state-dir", &state]);
    command.env("XDG_CONFIG_HOME", dir.path());
    let stderr = kernel_refuses(command).await;
    assert!(
        stderr.contains("journal format 0") && stderr.contains("move the state directory away"),
        "{stderr}"
    );
}
