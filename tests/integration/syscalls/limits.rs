//! What a model cannot do: spawn past its child limit (a loop meets `EAGAIN`, never a fork bomb),
//! nest past the depth limit, give a child a bigger allowance than it has left, make a malformed
//! call (`EINVAL`), or touch a process that is not its child (`EPERM`, `ESRCH`).

use super::{results, start};
use crate::support::fake_llm::FakeConfig;

#[tokio::test]
async fn a_model_spawning_in_a_loop_meets_eagain_at_its_child_limit() {
    let (_fake, k, _cfg) = start(FakeConfig::default(), "[syscalls]\nmax_children = 3\n").await;
    let turn = r#"<<call spawn {"prompt":"[tokens=1] again","max_tokens":5}>>"#;
    let script = format!("[tokens=1] loop {}", [turn; 6].join(" <<turn>> "));
    let run = k.sh(&format!("query --syscalls '{script}'")).await;
    assert_eq!(run.status, 0, "{run:?}");
    let got = results(&run.stdout);
    assert_eq!(got.len(), 6, "{got:?}");
    for (i, r) in got.iter().enumerate() {
        if i < 3 {
            assert_eq!(r["pid"].as_u64(), Some(i as u64 + 2), "{got:?}");
        } else {
            assert_eq!(r["error"], "EAGAIN", "{got:?}");
        }
    }
    let ps = k.sh("ps").await.stdout;
    assert_eq!(ps.lines().count(), 1 + 3, "three children: {ps}");
}

#[tokio::test]
async fn the_depth_limit_and_the_callers_allowance_bound_its_children() {
    let (_fake, k, _cfg) = start(FakeConfig::default(), "[syscalls]\nmax_depth = 0\n").await;
    let script = r#"[tokens=1] deep <<call spawn {"prompt":"x"}>>"#;
    let run = k.sh(&format!("query --syscalls '{script}'")).await;
    assert_eq!(run.status, 0, "{run:?}");
    let got = results(&run.stdout);
    assert_eq!(got[0]["error"], "EAGAIN", "{got:?}");
    assert!(got[0]["message"].as_str().unwrap().contains("deep"));

    let (_fake, k, _cfg) = start(FakeConfig::default(), "").await;
    let script = r#"[tokens=1] rich <<call spawn {"prompt":"[tokens=3] child","max_tokens":30000}>> <<turn>> <<call wait {"pid":2}>>"#;
    let run = k
        .sh(&format!("query --syscalls --max-tokens 40 '{script}' &"))
        .await;
    assert_eq!(run.status, 0, "{run:?}");
    let ps = k
        .eventually("ps", "the caller to finish", |ps| {
            crate::support::ps_row(ps, 1).is_some_and(|r| r[5] == "Z")
        })
        .await;
    let child = crate::support::ps_row(&ps, 2).expect("the child");
    let allowance: u32 = child[6].split('/').nth(1).unwrap().parse().unwrap();
    assert!(
        allowance < 40,
        "the child's allowance is what the caller had left: {ps}"
    );
    let parent = crate::support::ps_row(&ps, 1).expect("the caller");
    let used: u32 = parent[6].split('/').next().unwrap().parse().unwrap();
    assert!(
        used >= 3 + 3,
        "the child's tokens are charged to the caller: {ps}"
    );
}

#[tokio::test]
async fn malformed_calls_and_other_processes_pids_are_tool_errors() {
    let (_fake, k, _cfg) = start(FakeConfig::default(), "").await;
    assert_eq!(k.sh("query '[tokens=1] bystander' &").await.status, 0);
    let script = r#"[tokens=1] probe <<call spawn {"prompt":5}>> <<call wait {"pid":99}>> <<call kill {"pid":1}>> <<call wait {"pid":2}>> <<call fork {}>> <<call kill {not json>>"#;
    let run = k.sh(&format!("query --syscalls '{script}'")).await;
    assert_eq!(run.status, 0, "{run:?}");
    let got = results(&run.stdout);
    let errors: Vec<&str> = got.iter().filter_map(|r| r["error"].as_str()).collect();
    assert_eq!(
        errors,
        ["EINVAL", "ESRCH", "EPERM", "EPERM", "EINVAL", "EINVAL"],
        "{got:?}"
    );
    let wait = k.sh("wait 1").await;
    assert_eq!(wait.status, 0, "the bystander finished, unkilled: {wait:?}");
}

/// The script of a child that spawns a leaf and waits for it, as a JSON string inside its parent's
/// `spawn` (its `<<`/`>>` escaped, so the parent's own script does not read it as its calls).
const MIDDLE: &str = r#"[tokens=1] middle \u003c\u003ccall spawn {\"prompt\":\"[tokens=2] leaf\"}\u003e\u003e \u003c\u003cturn\u003e\u003e \u003c\u003ccall wait {\"pid\":3}\u003e\u003e"#;

#[tokio::test]
async fn children_spawn_their_own_children_down_to_the_depth_limit() {
    let script = format!(
        r#"[tokens=1] top <<call spawn {{"prompt":"{MIDDLE}"}}>> <<turn>> <<call wait {{"pid":2}}>>"#
    );
    let (_fake, k, _cfg) = start(FakeConfig::default(), "").await;
    let run = k.sh(&format!("query --syscalls '{script}'")).await;
    assert_eq!(run.status, 0, "{run:?}");
    let got = results(&run.stdout);
    let middle = got[1]["output"].as_str().expect("the middle's output");
    assert!(
        middle.contains(r#""output":"t0 t1 ""#),
        "the leaf's answer came up through the middle: {middle}"
    );
    let ps = k.sh("ps -l").await.stdout;
    let header: Vec<&str> = ps.lines().next().unwrap().split_whitespace().collect();
    let at = |name| header.iter().position(|h| *h == name).unwrap();
    let leaf = crate::support::ps_row(&ps, 3).expect("the leaf");
    assert_eq!(
        (leaf[at("PPID")].as_str(), leaf[at("PGID")].as_str()),
        ("2", "1"),
        "{ps}"
    );

    let (_fake, k, _cfg) = start(FakeConfig::default(), "[syscalls]\nmax_depth = 1\n").await;
    let run = k.sh(&format!("query --syscalls '{script}'")).await;
    assert_eq!(run.status, 0, "{run:?}");
    let got = results(&run.stdout);
    let middle = got[1]["output"].as_str().expect("the middle's output");
    assert!(middle.contains("EAGAIN"), "one level only: {middle}");
}
