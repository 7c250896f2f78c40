//! The calls themselves: spawn and wait, parallel spawns, ps, kill, and a caller's conversation
//! carrying the calls and their results back to the model.

use super::{requests_for, results, start, started_caller};
use crate::support::fake_llm::FakeConfig;
use crate::support::ps_row;

#[tokio::test]
async fn a_spawned_child_answers_and_wait_hands_its_output_back_to_the_caller() {
    let (fake, k, _cfg) = start(FakeConfig::default(), "").await;
    let script = r#"[tokens=2] plan <<call spawn {"prompt":"[tokens=3] research","max_tokens":50}>> <<turn>> <<call wait {"pid":2}>>"#;
    let run = k.sh(&format!("query --syscalls '{script}'")).await;
    assert_eq!(run.status, 0, "{run:?}");
    // The foreground query streamed the calls and results with the text (and reaped the caller).
    let cat = run.stdout;
    let got = results(&cat);
    assert_eq!(got.len(), 2, "{cat}");
    assert_eq!(got[0]["pid"], 2, "{cat}");
    assert_eq!(got[1]["pid"], 2);
    assert_eq!(got[1]["status"], "Done");
    assert_eq!(got[1]["output"], "t0 t1 t2 ");
    assert!(cat.contains("[tool call call_0_0] spawn("), "{cat}");
    assert!(
        cat.ends_with("t0 t1 \n"),
        "the answer after the results: {cat}"
    );
    // The child: a USER_SUBPROCESS (the user's own process split its task), the caller's child.
    let ps = k.sh("ps -l").await.stdout;
    let header: Vec<&str> = ps.lines().next().unwrap().split_whitespace().collect();
    let ppid = header.iter().position(|h| *h == "PPID").expect("PPID");
    let child = ps_row(&ps, 2).expect("the child");
    assert_eq!(child[ppid], "1", "{ps}");
    assert!(ps.contains("USER_SUBPROCESS"), "{ps}");
    // The model saw its calls and their results, tied by id.
    let asked = requests_for(&fake, "[tokens=2] plan");
    assert_eq!(asked.len(), 3, "three answers: spawn, wait, the last");
    let last = &asked[2].body["messages"];
    let roles: Vec<&str> = last
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["role"].as_str())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant", "tool"]);
    assert_eq!(last[1]["tool_calls"][0]["id"], "call_0_0");
    assert_eq!(last[1]["tool_calls"][0]["function"]["name"], "spawn");
    assert_eq!(last[2]["tool_call_id"], "call_0_0");
    assert_eq!(last[4]["tool_call_id"], last[3]["tool_calls"][0]["id"]);
    let tools: Vec<&str> = asked[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert_eq!(tools, ["spawn", "wait", "kill", "ps"]);
    assert!(asked[0].body.get("llmkernel_syscalls").is_none());
}

#[tokio::test]
async fn parallel_spawns_run_while_the_caller_waits_blocked_without_a_slot() {
    let script = r#"[tokens=1] plan <<call spawn {"prompt":"[tokens=400] a"}>> <<call spawn {"prompt":"[tokens=400] b"}>> <<turn>> <<call wait {"pid":2}>> <<call wait {"pid":3}>> <<call ps {}>>"#;
    let (_fake, k, _cfg) = started_caller(10, "cpus = 2\n", script).await;
    let ps = k
        .eventually("ps", "the children running and the caller blocked", |ps| {
            let live = |pid| ps_row(ps, pid).is_some_and(|r| r[5] == "R" || r[5] == "Q");
            ps_row(ps, 1).is_some_and(|r| r[5] == "S") && live(2) && live(3)
        })
        .await;
    assert!(
        ps_row(&ps, 2).unwrap()[5] == "R" || ps_row(&ps, 3).unwrap()[5] == "R",
        "{ps}"
    );
    let long = k.sh_wide("ps -l").await.stdout;
    assert!(long.contains("waiting for processes 2, 3"), "{long}");
    k.eventually("ps", "the caller to finish", |ps| {
        ps_row(ps, 1).is_some_and(|r| r[5] == "Z")
    })
    .await;
    let got = results(&k.sh("cat 1").await.stdout);
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(
        (got[0]["pid"].as_u64(), got[1]["pid"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(got[2]["status"], "Done");
    assert_eq!(got[3]["status"], "Done");
    assert!(got[2]["output"].as_str().unwrap().ends_with("t399 "));
    let children = got[4]["children"].as_array().expect("ps lists children");
    assert_eq!(children.len(), 2, "{got:?}");
}

#[tokio::test]
async fn kill_ends_a_child_and_killing_the_caller_kills_its_children() {
    let script = r#"[tokens=1] plan <<call spawn {"prompt":"[tokens=5000] a"}>> <<call spawn {"prompt":"[tokens=5000] b"}>> <<turn>> <<call kill {"pid":2}>> <<call wait {"pid":3}>>"#;
    let (_fake, k, _cfg) = started_caller(20, "", script).await;
    k.eventually("ps", "the caller blocked on its second child", |ps| {
        ps_row(ps, 1).is_some_and(|r| r[5] == "S") && ps_row(ps, 2).is_some_and(|r| r[5] == "Z")
    })
    .await;
    let got = results(&k.sh("cat 1").await.stdout);
    assert_eq!(got.len(), 2, "the spawns' results so far: {got:?}");
    assert_eq!(k.sh("kill 1").await.status, 0);
    k.eventually("ps", "the second child killed with its parent", |ps| {
        ps_row(ps, 3).is_some_and(|r| r[5] == "Z")
    })
    .await;
    let wait = k.sh("wait 3").await;
    assert_eq!(wait.status, 128 + 9, "killed by SIGKILL: {wait:?}");
}

#[tokio::test]
async fn a_caller_stopped_while_it_waits_resumes_with_the_results_on_cont() {
    let script = r#"[tokens=1] plan <<call spawn {"prompt":"[tokens=100] a"}>> <<turn>> <<call wait {"pid":2}>>"#;
    let (_fake, k, _cfg) = started_caller(10, "", script).await;
    k.eventually("ps", "the caller blocked", |ps| {
        ps_row(ps, 1).is_some_and(|r| r[5] == "S")
    })
    .await;
    assert_eq!(k.sh("kill -STOP 1").await.status, 0);
    k.eventually("ps", "the child done and the caller still stopped", |ps| {
        ps_row(ps, 2).is_some_and(|r| r[5] == "Z") && ps_row(ps, 1).is_some_and(|r| r[5] == "T")
    })
    .await;
    assert_eq!(k.sh("kill -CONT 1").await.status, 0);
    k.eventually("ps", "the caller to finish", |ps| {
        ps_row(ps, 1).is_some_and(|r| r[5] == "Z")
    })
    .await;
    let got = results(&k.sh("cat 1").await.stdout);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1]["status"], "Done");
}

#[tokio::test]
async fn must_call_asks_for_a_call_on_the_first_answer_only() {
    let (fake, k, _cfg) = start(FakeConfig::default(), "").await;
    let script = r#"[tokens=2] plan <<call ps {}>> <<turn>> done"#;
    let run = k
        .sh(&format!("query --syscalls --must-call '{script}'"))
        .await;
    assert_eq!(run.status, 0, "{run:?}");
    assert!(run.stdout.contains("[tool call call_0_0] ps("), "{run:?}");
    assert_eq!(results(&run.stdout).len(), 1, "{run:?}");
    let asked = requests_for(&fake, "[tokens=2] plan");
    assert_eq!(asked.len(), 2, "the call, then the answer");
    assert_eq!(asked[0].body["tool_choice"], "required");
    assert_eq!(asked[1].body["tool_choice"], "auto", "{:?}", asked[1].body);
    // Without --must-call the kernel leaves the choice to the server.
    let run = k.sh("query --syscalls '[tokens=2] again'").await;
    assert_eq!(run.status, 0, "{run:?}");
    let asked = requests_for(&fake, "[tokens=2] again");
    assert!(
        asked[0].body.get("tool_choice").is_none(),
        "{:?}",
        asked[0].body
    );
}
