//! Background processes and their control from llmsh: `&`, `ps`, `kill`, `wait`, `cat`, `nice`,
//! `renice`, scheduling order, interrupts, and the script and stdin modes.

use crate::support::fake_llm::{FakeConfig, FakeLlm, answer};
use crate::support::{STEP, TestKernel, job_pid, ps_row};
use std::time::Duration;

fn slow() -> FakeConfig {
    FakeConfig {
        tokens: 2000,
        delay: Duration::from_millis(10),
        ..Default::default()
    }
}

#[tokio::test]
async fn background_query_prints_job_and_pid_and_ps_shows_it() {
    let fake = FakeLlm::start(slow()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let run = k.sh("query \"a long story\" &").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert!(run.stdout.starts_with("[1] "), "{}", run.stdout);
    let pid = job_pid(&run.stdout);
    let ps = k
        .eventually("ps", "the process to run", |ps| {
            ps_row(ps, pid).is_some_and(|r| r[5] == "R")
        })
        .await;
    let header: Vec<&str> = ps.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "PID", "USER", "TYPE", "URG", "NI", "STAT", "TOKENS", "TIME", "QPOS", "ETA", "PROMPT"
        ]
    );
    let row = ps_row(&ps, pid).unwrap();
    assert_eq!(row[2], "USER");
    assert_eq!(row[3], "80");
    assert_eq!(row[4], "0");
    assert!(row[6].ends_with("/4000"), "{row:?}");
    assert_eq!(row[10..].join(" "), "a long story");
    let long = k.sh("ps -l").await;
    assert!(
        long.stdout.lines().next().unwrap().contains("CSW"),
        "{}",
        long.stdout
    );
}

#[tokio::test]
async fn kill_term_kill_and_int_end_with_128_plus_signal_and_keep_output() {
    let fake = FakeLlm::start(slow()).await;
    let k = TestKernel::start(&fake.url, &["--cpus", "3", "--quantum", "4"]).await;
    let pids: Vec<u64> = [
        k.sh("query one &").await,
        k.sh("query two &").await,
        k.sh("query three &").await,
    ]
    .iter()
    .map(|r| job_pid(&r.stdout))
    .collect();
    for pid in &pids {
        k.eventually("ps", "tokens to flow", |ps| {
            ps_row(ps, *pid)
                .is_some_and(|r| r[6].split('/').next().unwrap().parse::<u32>().unwrap() >= 5)
        })
        .await;
    }
    let run = k
        .sh(&format!(
            "kill {}; kill -KILL {}; kill -s INT {}",
            pids[0], pids[1], pids[2]
        ))
        .await;
    assert_eq!(run.status, 0, "{run:?}");
    for (pid, want) in pids.iter().zip([143, 137, 130]) {
        let cat = k.sh(&format!("cat {pid}")).await;
        assert!(
            cat.stdout.starts_with("t0 t1 t2 t3 t4 "),
            "output kept: {}",
            cat.stdout
        );
        let run = k.sh(&format!("wait {pid}")).await;
        assert_eq!(run.status, want, "pid {pid}: {run:?}");
    }
    fake.wait_for("every stream to be dropped", STEP, |f| f.disconnects() == 3)
        .await;
    assert_eq!(
        fake.completed(),
        0,
        "the server saw each kill as a disconnect"
    );
}

#[tokio::test]
async fn term_waits_for_the_quantum_boundary() {
    let fake = FakeLlm::start(slow()).await;
    let k = TestKernel::start(&fake.url, &["--quantum", "16"]).await;
    let pid = job_pid(&k.sh("query story &").await.stdout);
    k.eventually("ps", "tokens to flow", |ps| {
        ps_row(ps, pid).is_some_and(|r| !r[6].starts_with("0/"))
    })
    .await;
    k.sh(&format!("kill -TERM {pid}")).await;
    assert_eq!(k.sh(&format!("wait {pid}")).await.status, 143);
    // `wait` reaped it, so cat has nothing to read now; the tokens are counted in the fake's stream.
    let req = &fake.requests()[0];
    assert_eq!(req.user_prompt(), "story");
}

#[tokio::test]
async fn wait_returns_the_exit_status_and_reaps() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let pid = job_pid(&k.sh("query quick &").await.stdout);
    let run = k.sh(&format!("wait {pid}")).await;
    assert_eq!(run.status, 0, "{run:?}");
    let again = k.sh(&format!("wait {pid}")).await;
    assert_eq!(again.status, 127);
    assert!(
        again
            .stderr
            .contains(&format!("wait: pid {pid} is not a child of this shell")),
        "{}",
        again.stderr
    );
    assert!(
        ps_row(&k.sh("ps").await.stdout, pid).is_none(),
        "reaped processes leave the table"
    );
}

#[tokio::test]
async fn finished_background_process_is_a_zombie_until_waited_for_and_cat_prints_it() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let pid = job_pid(&k.sh("query quick &").await.stdout);
    k.eventually("ps", "the process to finish", |ps| {
        ps_row(ps, pid).is_some_and(|r| r[5] == "Z")
    })
    .await;
    let cat = k.sh(&format!("cat {pid}")).await;
    assert_eq!(cat.stdout, format!("{}\n", answer(10)));
    assert_eq!(k.sh(&format!("wait {pid}")).await.status, 0);
}

#[tokio::test]
async fn nice_and_renice_change_niceness() {
    let fake = FakeLlm::start(slow()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let first = job_pid(&k.sh("query first &").await.stdout);
    let pid = job_pid(&k.sh("nice -n 5 query waiting &").await.stdout);
    let ps = k
        .eventually("ps", "the niced process to wait", |ps| {
            ps_row(ps, pid).is_some()
        })
        .await;
    let row = ps_row(&ps, pid).unwrap();
    assert_eq!((row[4].as_str(), row[5].as_str()), ("5", "QN"), "{row:?}");
    let run = k.sh(&format!("renice -n 10 {pid}")).await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!("{pid} (process ID) old priority 5, new priority 10\n")
    );
    let row = ps_row(&k.sh("ps").await.stdout, pid).unwrap();
    assert_eq!(row[4], "10");
    assert_eq!(row[3], "70", "priority is 20 x USER(4) - nice");
    let run = k.sh(&format!("renice -n 99 {pid}")).await;
    assert_ne!(run.status, 0);
    assert!(run.stderr.contains("out of range"), "{}", run.stderr);
    k.sh(&format!("kill -KILL {first} {pid}")).await;
}

#[tokio::test]
async fn higher_priority_types_run_first_and_system_processes_run() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 30,
        delay: Duration::from_millis(5),
        ..Default::default()
    })
    .await;
    let k = TestKernel::start(&fake.url, &["--quantum", "1000"]).await;
    // SYSTEM: more urgent work would switch a less urgent blocker out at once.
    let blocker = job_pid(&k.sh("query --type system blocker &").await.stdout);
    k.eventually("ps", "the blocker to run", |ps| {
        ps_row(ps, blocker).is_some_and(|r| r[5] == "R")
    })
    .await;
    k.sh("query --type llm_initiated low & query --type user mid & query --type user_subprocess sub &").await;
    let run = k.sh("interrupt system \"disk almost full\"").await;
    assert_eq!(run.status, 0, "{run:?}");
    let handler: u64 = run.stdout.trim().parse().expect("handler pid");
    assert_eq!(
        k.sh(&format!("wait {handler}")).await.status,
        0,
        "SYSTEM processes run"
    );
    fake.wait_for("all five requests", STEP, |f| f.requests().len() == 5)
        .await;
    let order: Vec<String> = fake.requests().iter().map(|r| r.user_prompt()).collect();
    assert_eq!(
        order,
        [
            "blocker",
            "Address the following system event: disk almost full",
            "mid",
            "sub",
            "low"
        ],
        "SYSTEM, then USER, USER_SUBPROCESS, LLM_INITIATED"
    );
    let system = &fake.requests()[1].messages()[0];
    assert_eq!(system.1, "You are a system management bot.");
}

#[tokio::test]
async fn script_file_and_stdin_run_the_same_builtins_and_return_the_last_status() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let script = k.dir.path().join("script.llmsh");
    std::fs::write(
        &script,
        "# a script\nquery 'first\nline' &\nwait\nquery --max-tokens 2 again\nbogus\n",
    )
    .unwrap();
    let run = crate::support::run_shell(&k.socket, &[script.to_str().unwrap()], None).await;
    assert_eq!(run.status, 127, "{run:?}");
    assert!(
        run.stdout.contains("[1] ") && run.stdout.contains("t0 t1 \n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("llmsh: bogus: command not found"),
        "{}",
        run.stderr
    );
    assert_eq!(
        fake.requests()[0].user_prompt(),
        "first\nline",
        "quotes continue across lines"
    );

    let run = k
        .sh_stdin("query --max-tokens 1 hi\nexit 3\nquery never\n")
        .await;
    assert_eq!(run.status, 3, "{run:?}");
    assert_eq!(run.stdout, "t0 \n");
}

#[tokio::test]
async fn bad_input_gets_a_clear_message_and_a_nonzero_status() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    for (line, status, message) in [
        (
            "frobnicate",
            127,
            "llmsh: frobnicate: command not found (try `help`)",
        ),
        (
            "qurey hi",
            127,
            "llmsh: qurey: command not found; did you mean 'query'?",
        ),
        (
            "query \"$(date)\"",
            2,
            "not supported, even inside double quotes; put it in single quotes",
        ),
        ("query", 2, "query: a prompt is required"),
        (
            "query --colour red hi",
            2,
            "query: --colour: invalid option",
        ),
        (
            "kill abc",
            1,
            "kill: abc: arguments must be process or job IDs",
        ),
        ("kill 999", 1, "kill: (999) - No such process"),
        (
            "kill -WINCH 1",
            1,
            "kill: WINCH: invalid signal specification",
        ),
        ("kill %9", 1, "kill: %9: no such job"),
        ("cat 999", 1, "cat: (999) - No such process"),
        ("renice -n 1 999", 1, "renice: (999) - No such process"),
        ("query --nice 40 hi", 1, "nice 40 is out of range"),
        (
            "query hi | cat",
            2,
            "cat: only queries can be piped or redirected",
        ),
        ("query \"unterminated", 2, "missing closing `\"`"),
        ("ps &", 2, "only a query can run in the background"),
        ("ps -z", 2, "ps: -z: invalid option"),
    ] {
        let run = k.sh(line).await;
        assert_eq!(run.status, status, "{line}: {run:?}");
        assert!(run.stderr.contains(message), "{line}: {}", run.stderr);
    }
    assert!(fake.requests().is_empty(), "nothing reached the backend");
}

#[tokio::test]
async fn a_dollar_inside_quotes_is_text_and_clear_off_a_terminal_writes_nothing() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let run = k
        .sh("query --max-tokens 1 \"How much is $5 in euros?\"; query --max-tokens 1 'costs $HOME'")
        .await;
    assert_eq!(run.status, 0, "{run:?}");
    let prompts: Vec<String> = fake.requests().iter().map(|r| r.user_prompt()).collect();
    assert_eq!(prompts, ["How much is $5 in euros?", "costs $HOME"]);
    let run = k.sh("clear").await;
    assert_eq!((run.status, run.stdout.as_str()), (0, ""), "{run:?}");
}

#[tokio::test]
async fn wait_and_fg_print_what_a_background_job_said_and_leave_no_zombie() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let run = k.sh("query \"[tokens=3] q\" & wait").await;
    assert_eq!(run.status, 0, "{run:?}");
    let pid = job_pid(&run.stdout);
    assert_eq!(run.stdout, format!("[1] {pid}\nt0 t1 t2 \n"), "{run:?}");
    let ps = k.sh("ps -a").await.stdout;
    assert!(ps_row(&ps, pid).is_none(), "reaped once shown: {ps}");

    // `wait %1` and `fg` (the job may have finished by then or not: the same either way).
    let run = k
        .sh("query \"[tokens=2] a\" & wait %1; query \"[tokens=2] b\" & fg")
        .await;
    assert_eq!(run.status, 0, "{run:?}");
    let pids: Vec<u64> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with('['))
        .map(job_pid)
        .collect();
    assert_eq!(
        run.stdout,
        format!(
            "[1] {}\nt0 t1 \n[1] {}\nquery \"[tokens=2] b\"\nt0 t1 \n",
            pids[0], pids[1]
        ),
        "{run:?}"
    );
    let ps = k.sh("ps -a").await.stdout;
    for pid in pids {
        assert!(ps_row(&ps, pid).is_none(), "{pid} reaped: {ps}");
    }
}

#[tokio::test]
async fn jobs_shows_what_a_finished_job_said_before_listing_it_done_and_reaps_it() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    // One slot, and the background job fits one quantum: it has ended before the foreground query
    // gets the slot, so `jobs` finds it done.
    let k = TestKernel::start(&fake.url, &["--cpus", "1"]).await;
    let run = k
        .sh("query \"[tokens=2] a\" & query --max-tokens 1 b; jobs; jobs")
        .await;
    assert_eq!(run.status, 0, "{run:?}");
    let pid = job_pid(&run.stdout);
    assert_eq!(
        run.stdout,
        format!("[1] {pid}\nt0 \nt0 t1 \n[1]+  Done                    query \"[tokens=2] a\"\n"),
        "{run:?}"
    );
    let ps = k.sh("ps -a").await.stdout;
    assert!(ps_row(&ps, pid).is_none(), "reaped once reported: {ps}");
}
