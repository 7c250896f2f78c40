//! Every command in README.md is run by a test. Each code block in the README is preceded by a
//! `<!-- readme-test: KIND -->` comment saying how it is checked, and a block without one fails:
//!
//! - `shell`: the lines run in one `bash -e` against a test kernel (fake LLM server), with the built
//!   binaries first in PATH, a private HOME and XDG_RUNTIME_DIR, `LLMKERNEL_SOCKET` and
//!   `LLMKERNEL_PID` set.
//! - `session`: an interactive transcript; the commands after its `llmsh$ ` prompts run, in order, in
//!   one llmsh session against a test kernel, each with status 0. The first session also runs on
//!   the quickstart's real model in the e2e suite (tests/e2e/readme.rs), which checks its answers
//!   and its preemption.
//! - `kernel`: each `llmkernel ...` line starts a kernel (on a private socket) that must report ready
//!   and then shut down cleanly on SIGTERM.
//! - `systemd`: the lines run in one `bash -e` with stand-ins for `systemctl`, `journalctl` and
//!   `loginctl` (CI has no user service manager): `enable --now` starts the installed unit's
//!   ExecStart as a daemon on the socket the socket unit names, `kill -s SIG` signals it, `stop`
//!   stops it; the unit files themselves are checked by `systemd-analyze verify` in daemon.rs.
//! - `toml`: the block parses as a config file.
//! - `python`: the block runs in the pinned client venv of `scripts/python-clients` (skipped, with a
//!   note, where it has not been set up) against a test kernel whose runtime directory holds its
//!   sockets, as `XDG_RUNTIME_DIR` says.
//! - `ci` and `e2e`: cargo and CI commands, which CI runs itself (`.ci/run`), and
//!   `scripts/quickstart`, which the e2e suite runs against the real model.

use crate::support::fake_llm::{FakeConfig, FakeLlm};
use crate::support::{KERNEL, TestKernel};
use std::path::{Path, PathBuf};
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

struct Block {
    kind: String,
    line: usize,
    body: String,
}

fn blocks() -> Vec<Block> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README.md");
    let mut blocks = Vec::new();
    let mut tag: Option<String> = None;
    let mut open: Option<(String, usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        if let Some((kind, start, body)) = open.as_mut() {
            if line.starts_with("```") {
                blocks.push(Block {
                    kind: std::mem::take(kind),
                    line: *start,
                    body: std::mem::take(body),
                });
                open = None;
            } else {
                body.push_str(line);
                body.push('\n');
            }
        } else if let Some(kind) = line
            .strip_prefix("<!-- readme-test: ")
            .and_then(|l| l.strip_suffix(" -->"))
        {
            tag = Some(kind.to_string());
        } else if line.starts_with("```") {
            let kind = tag.take().unwrap_or_else(|| {
                panic!(
                    "README.md:{}: a code block without a readme-test tag",
                    n + 1
                )
            });
            open = Some((kind, n + 1, String::new()));
        }
    }
    blocks
}

/// Directory of the built binaries.
fn bin_dir() -> PathBuf {
    Path::new(KERNEL).parent().expect("bin dir").to_path_buf()
}

fn bash(script: &str, env: &[(&str, &Path)], path_front: &[&Path]) -> std::process::Output {
    let mut path = path_front
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>();
    path.push(std::env::var("PATH").unwrap_or_default());
    let mut cmd = std::process::Command::new("bash");
    cmd.args(["-e", "-c", script])
        .current_dir(ROOT)
        .env("PATH", path.join(":"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("bash")
}

fn assert_ran(block: &Block, out: &std::process::Output) {
    assert!(
        out.status.success(),
        "README.md:{} ({}) failed:\n{}\nstdout:\n{}\nstderr:\n{}",
        block.line,
        block.kind,
        block.body,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A kernel for the README's commands whose runtime directory (the spool, and both sockets, as
/// `$XDG_RUNTIME_DIR/llmkernel.sock` and `$XDG_RUNTIME_DIR/llmkernel-http.sock`) is its own directory
/// in `home`; the blocks get the same `XDG_RUNTIME_DIR`.
async fn kernel(fake: &FakeLlm, home: &Path) -> TestKernel {
    let dir = tempfile::tempdir_in(home).expect("dir");
    let run = dir.path().to_path_buf();
    TestKernel::start_with(dir, &fake.url, &[], move |cmd| {
        cmd.env("XDG_RUNTIME_DIR", run);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_readme_block_is_tagged_and_every_command_in_it_runs() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 12,
        delay: Duration::from_millis(2),
        ..Default::default()
    })
    .await;
    let all = blocks();
    assert!(all.len() >= 8, "README has its code blocks");
    let mut uncovered = Vec::new();
    for block in &all {
        match block.kind.as_str() {
            "shell" => run_shell_block(&fake, block).await,
            "session" => run_session_block(&fake, block).await,
            "kernel" => run_kernel_block(block).await,
            "systemd" => tokio::task::block_in_place(|| run_systemd_block(block)),
            "toml" => {
                let parsed =
                    llmkernel::config::ConfigFile::parse(&block.body, Path::new("README.md"));
                assert!(
                    parsed.is_ok(),
                    "README.md:{}: {:?}",
                    block.line,
                    parsed.err()
                );
            }
            "ci" | "e2e" => uncovered.extend(uncovered_commands(block)),
            "python" => run_python_block(&fake, block).await,
            other => panic!(
                "README.md:{}: unknown readme-test kind `{other}`",
                block.line
            ),
        }
    }
    assert!(
        uncovered.is_empty(),
        "not run by CI or the e2e suite: {uncovered:?}"
    );
}

async fn run_shell_block(fake: &FakeLlm, block: &Block) {
    let home = tempfile::tempdir().expect("home");
    let k = kernel(fake, home.path()).await;
    let pid = PathBuf::from(k.child.id().expect("pid").to_string());
    let run = k.dir.path().to_path_buf();
    let env = [
        ("HOME", home.path()),
        ("XDG_RUNTIME_DIR", &run),
        ("LLMKERNEL_SOCKET", &k.socket),
        ("LLMKERNEL_PID", &pid),
    ];
    let out = tokio::task::block_in_place(|| bash(&block.body, &env, &[&bin_dir()]));
    assert_ran(block, &out);
}

async fn run_session_block(fake: &FakeLlm, block: &Block) {
    let home = tempfile::tempdir().expect("home");
    let k = kernel(fake, home.path()).await;
    let commands: Vec<&str> = block
        .body
        .lines()
        .filter_map(|l| {
            l.strip_prefix("llmsh")
                .and_then(|rest| rest.split_once("$ "))
                .map(|(_, c)| c)
        })
        .collect();
    assert!(
        !commands.is_empty(),
        "README.md:{}: a session without commands",
        block.line
    );
    for (i, _) in commands.iter().enumerate() {
        // llmsh exits with the status of its last command: run the session up to command i.
        let run = k
            .sh_stdin(&format!("{}\n", commands[..=i].join("\n")))
            .await;
        assert!(
            run.status == 0,
            "README.md:{}: `{}` failed:\n{}{}",
            block.line,
            commands[i],
            run.stdout,
            run.stderr
        );
    }
}

async fn run_python_block(fake: &FakeLlm, block: &Block) {
    let Ok(out) = std::process::Command::new("scripts/python-clients")
        .arg("paths")
        .current_dir(ROOT)
        .output()
    else {
        return;
    };
    let python = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || python.is_empty() {
        eprintln!(
            "README.md:{}: skipped: no client venv; run scripts/python-clients setup",
            block.line
        );
        return;
    }
    let home = tempfile::tempdir().expect("home");
    let k = kernel(fake, home.path()).await;
    let out = tokio::process::Command::new(python)
        .args(["-c", &block.body])
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", k.dir.path())
        .output()
        .await
        .expect("python");
    assert_ran(block, &out);
}

async fn run_kernel_block(block: &Block) {
    for line in block
        .body
        .lines()
        .map(|l| l.split("  #").next().unwrap_or(l).trim())
        .filter(|l| !l.is_empty())
    {
        let args: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(args[0], "llmkernel", "README.md:{}: {line}", block.line);
        let dir = tempfile::tempdir().expect("dir");
        // The line's own flags, on a private socket and state directory: it must come up and go down.
        let k = TestKernel::start_with(dir, "", &args[1..], |_| {}).await;
        k.stop().await;
    }
}

/// Stand-ins for the service manager's commands; see the module docs.
const SYSTEMCTL: &str = r#"#!/usr/bin/env bash
set -e
units="$HOME/.config/systemd/user"
pidfile="$XDG_RUNTIME_DIR/llmkernel-readme.pid"
[ "$1" = --user ] || { echo "systemctl stand-in: only --user" >&2; exit 1; }
shift
case "$1" in
  enable)
    [ -f "$units/llmkernel.socket" ] && [ -f "$units/llmkernel.service" ] || { echo "units not installed" >&2; exit 1; }
    exec_start=$(sed -n 's/^ExecStart=//p' "$units/llmkernel.service")
    socket=$(sed -n 's/^ListenStream=%t/'"${XDG_RUNTIME_DIR//\//\\/}"'/p' "$units/llmkernel.socket" | head -n 1)
    $exec_start --socket "$socket" --daemon --pidfile "$pidfile" ;;
  status|daemon-reload|is-active) [ "$1" != is-active ] || [ -f "$pidfile" ] ;;
  reload) kill -HUP "$(cat "$pidfile")" ;;
  kill) sig=$(echo "$@" | sed -n 's/.*-s \(SIG[A-Z0-9]*\).*/\1/p'); kill -s "${sig#SIG}" "$(cat "$pidfile")" ;;
  stop) [ ! -f "$pidfile" ] || kill "$(cat "$pidfile")" 2>/dev/null || true ;;
  *) echo "systemctl stand-in: unexpected $*" >&2; exit 1 ;;
esac
"#;

fn run_systemd_block(block: &Block) {
    let home = tempfile::tempdir().expect("home");
    let run = home.path().join("run");
    let stubs = home.path().join("stubs");
    std::fs::create_dir_all(&run).expect("run");
    std::fs::create_dir_all(&stubs).expect("stubs");
    let stub = |name: &str, text: &str| {
        let path = stubs.join(name);
        std::fs::write(&path, text).expect("stub");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
    };
    stub("systemctl", SYSTEMCTL);
    stub(
        "journalctl",
        "#!/bin/sh\n[ \"$1\" = --user ] && [ \"$2\" = -u ] && [ \"$3\" = llmkernel ]\n",
    );
    stub("loginctl", "#!/bin/sh\n[ \"$1\" = enable-linger ]\n");
    // `journalctl -f` would follow forever; the stand-in returns at once.
    let local_bin = home.path().join(".local/bin");
    let env = [
        ("HOME", home.path()),
        ("XDG_RUNTIME_DIR", &run),
        ("LLMKERNEL_INSTALL_FROM", &bin_dir()),
    ];
    let script = format!("{}\nsystemctl --user stop llmkernel.service\n", block.body);
    let out = bash(&script, &env, &[&stubs, &local_bin]);
    assert_ran(block, &out);
    assert!(
        !local_bin.join("llmkernel").exists(),
        "the block ends by uninstalling"
    );
}

/// The commands of a `ci` or `e2e` block that neither `.ci/run` nor the e2e suite runs.
fn uncovered_commands(block: &Block) -> Vec<String> {
    let ci = std::fs::read_to_string(Path::new(ROOT).join(".ci/run")).expect(".ci/run");
    let e2e = std::fs::read_dir(Path::new(ROOT).join("tests/e2e"))
        .map(|dir| {
            dir.flatten()
                .map(|f| std::fs::read_to_string(f.path()).unwrap_or_default())
                .collect::<String>()
        })
        .unwrap_or_default();
    let commands = block
        .body
        .lines()
        .map(|l| l.split("  #").next().unwrap_or(l).trim())
        .filter(|l| !l.is_empty());
    commands
        .filter(|line| !match *line {
            "cargo test" => ci.contains("cargo test"),
            "bash .ci/run" => Path::new(ROOT).join(".ci/run").exists(),
            "scripts/quickstart" => {
                Path::new(ROOT).join(line).exists() && e2e.contains("quickstart")
            }
            _ => false,
        })
        .map(|line| format!("README.md:{}: {line}", block.line))
        .collect()
}
