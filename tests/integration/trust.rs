//! Who may trust whom on the socket: a file at the socket path is never deleted, a socket directory
//! in /tmp made by someone else is refused, llmsh refuses a kernel run by another user unless told
//! to trust it, and a shared kernel's group admits members through their supplementary groups.
//! Tests that run a process as another uid need root and say so when skipped.

use crate::support::fake_llm::{FakeConfig, FakeLlm};
use crate::support::{
    SHELL, STEP, ShellRun, TestKernel, config_file, kernel_command, kernel_refuses, run_shell_env,
};
use std::os::unix::fs::PermissionsExt;

async fn start_with(fake: &FakeLlm, config: &str) -> TestKernel {
    let (dir, path) = config_file(config);
    TestKernel::start_in(dir, &fake.url, &["--config", &path]).await
}

#[tokio::test]
async fn a_file_at_the_socket_path_is_never_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "my notes\n").expect("notes");
    let state = dir.path().join("state");
    let mut command = kernel_command(&[&"--socket", &notes, &"--state-dir", &state]);
    command.args(["--backend", "http://127.0.0.1:9/v1"]);
    let stderr = kernel_refuses(command).await;
    assert!(
        stderr.contains(&format!(
            "refusing to replace {}: it is a regular file, not a socket",
            notes.display()
        )),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&notes).expect("notes"),
        "my notes\n"
    );
}

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    if nix::unistd::getuid().is_root() {
        return true;
    }
    eprintln!("skipped: running a kernel or client as another uid needs root");
    false
}

#[tokio::test]
async fn llmsh_refuses_a_kernel_run_by_another_user_unless_told_to_trust_it() {
    if !is_root() {
        return;
    }
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let owner = Some(nix::unistd::Uid::from_raw(NOBODY));
    nix::unistd::chown(dir.path(), owner, None).expect("chown");
    let notify = dir.path().join(format!("notify-{}", std::process::id()));
    let k = TestKernel::start_with(dir, &fake.url, &[], |command| {
        // The harness's notify socket is root's; let the kernel's user write to it.
        let _ = std::fs::set_permissions(&notify, std::fs::Permissions::from_mode(0o666));
        command.uid(NOBODY).gid(NOBODY);
    })
    .await;
    let run = k.sh("ps").await;
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "refusing the kernel at {}: it runs as uid {NOBODY} (nobody), not as you (uid 0) or root",
            k.socket.display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("set LLMSH_KERNEL_USER=nobody"),
        "{}",
        run.stderr
    );
    let run = run_shell_env(
        &k.socket,
        &["-c", "ps"],
        None,
        &[("LLMSH_KERNEL_USER", "nobody")],
    )
    .await;
    assert_eq!(run.status, 0, "{run:?}");
}

/// Runs llmsh under `setpriv ARGS`, with the socket opened to other users.
async fn sh_under_setpriv(k: &TestKernel, setpriv: &[&str], commands: &str) -> ShellRun {
    std::fs::set_permissions(k.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&k.socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let out = tokio::process::Command::new("setpriv")
        .args(setpriv)
        .arg(SHELL)
        .arg("--socket")
        .arg(&k.socket)
        .args(["-c", commands])
        .output();
    let out = tokio::time::timeout(STEP, out)
        .await
        .expect("llmsh in time")
        .expect("run setpriv");
    ShellRun {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn a_supplementary_group_of_the_client_admits_it_to_a_shared_kernel() {
    if !is_root() {
        return;
    }
    let Some(users) = nix::unistd::Group::from_name("users").ok().flatten() else {
        eprintln!("skipped: no `users` group");
        return;
    };
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = start_with(&fake, "[limits]\nallowed_group = \"users\"\n").await;
    let ids = ["--reuid", "65534", "--regid", "65534"];
    // nobody is not listed in `users`, and its primary group is nogroup: only the process's own
    // supplementary group makes it a member.
    let gid = users.gid.as_raw().to_string();
    let member = [&ids[..], &["--groups", &gid]].concat();
    let run = sh_under_setpriv(&k, &member, "ps").await;
    assert_eq!(run.status, 0, "{run:?}");
    let stranger = [&ids[..], &["--clear-groups"]].concat();
    let run = sh_under_setpriv(&k, &stranger, "ps").await;
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("permission denied: uid 65534 may not use this kernel"),
        "{}",
        run.stderr
    );
}

/// Removes a directory when dropped (one made outside the test's temporary directory).
struct RemoveDir(std::path::PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn a_default_socket_directory_made_by_someone_else_is_refused() {
    if !is_root() {
        return;
    }
    // Without $XDG_RUNTIME_DIR, nobody's kernel uses /tmp/llmkernel-65534, which anyone could have
    // made first: here root plays the one who did, and leaves it open to all.
    let shared = std::path::PathBuf::from(format!("/tmp/llmkernel-{NOBODY}"));
    if shared.exists() {
        eprintln!("skipped: {} exists already", shared.display());
        return;
    }
    std::fs::create_dir(&shared).expect("mkdir");
    let _cleanup = RemoveDir(shared.clone());
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let home = tempfile::tempdir().expect("tempdir");
    let owner = Some(nix::unistd::Uid::from_raw(NOBODY));
    nix::unistd::chown(home.path(), owner, None).expect("chown");
    let state = home.path().join("state");
    let mut command = kernel_command(&[&"--state-dir", &state]);
    command
        .args(["--backend", "http://127.0.0.1:9/v1"])
        .env("XDG_CONFIG_HOME", home.path())
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("LLMKERNEL_SOCKET")
        .uid(NOBODY)
        .gid(NOBODY);
    let stderr = kernel_refuses(command).await;
    assert!(
        stderr.contains(&format!(
            "refusing the socket directory {}: it belongs to another user (owner uid 0, mode 0777)",
            shared.display()
        )),
        "{stderr}"
    );
    assert!(
        !shared.join("llmkernel.sock").exists(),
        "no socket in the foreign directory"
    );
}
