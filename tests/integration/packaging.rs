//! `packaging/install.sh` installs into a temporary prefix and uninstalls cleanly.

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A `systemctl` stand-in on PATH that logs its arguments; `--user show-environment` (asked to find
/// a user manager) succeeds only when `manager` is true.
fn fake_systemctl(dir: &Path, manager: bool) -> std::path::PathBuf {
    let bin = dir.join("fake-bin");
    std::fs::create_dir_all(&bin).expect("fake bin");
    let log = dir.join("systemctl.log");
    let script = format!(
        "#!/bin/sh\necho \"$*\" >>'{}'\ncase \"$*\" in *show-environment*) exit {} ;; esac\nexit 0\n",
        log.display(),
        if manager { 0 } else { 1 }
    );
    let path = bin.join("systemctl");
    std::fs::write(&path, script).expect("fake systemctl");
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&path, mode).expect("chmod");
    bin
}

/// Runs install.sh with `extra` arguments; returns its stdout.
fn install_sh(prefix: &Path, units: &Path, path: &str, extra: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(Path::new(ROOT).join("packaging/install.sh"))
        .args(["--user", "--prefix"])
        .arg(prefix)
        .arg("--unit-dir")
        .arg(units)
        .args(extra)
        .env("PATH", path)
        .output()
        .expect("install.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn install_sh_installs_into_a_prefix_and_uninstalls() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let prefix = tmp.path().join("local");
    let units = tmp.path().join("units");
    let bin_dir = Path::new(crate::support::KERNEL).parent().expect("bin dir");
    let path = format!(
        "{}:/usr/bin:/bin",
        fake_systemctl(tmp.path(), true).display()
    );
    let run = |extra: &[&str]| install_sh(&prefix, &units, &path, extra);
    let said = run(&["--from", bin_dir.to_str().expect("utf-8 path")]);
    assert!(
        said.contains("systemctl --user enable --now llmkernel.socket"),
        "{said}"
    );
    for file in [
        "bin/llmkernel",
        "bin/llmsh",
        "share/man/man1/llmsh.1",
        "share/man/man8/llmkernel.8",
        "share/man/man5/llmkernel.toml.5",
        "share/bash-completion/completions/llmsh",
        "share/zsh/site-functions/_llmsh",
        "share/fish/vendor_completions.d/llmsh.fish",
        "share/doc/llmkernel/config.toml.example",
        "share/doc/llmkernel/LICENSE",
    ] {
        assert!(prefix.join(file).exists(), "{file} installed");
    }
    if Command::new("strip").arg("--version").output().is_ok() {
        for bin in ["llmkernel", "llmsh"] {
            let built = bin_dir.join(bin).metadata().expect("built").len();
            let installed = prefix.join("bin").join(bin).metadata().expect("installed");
            assert!(
                installed.len() < built / 2,
                "{bin} is stripped: {} of {built} bytes",
                installed.len()
            );
        }
    }
    let service = std::fs::read_to_string(units.join("llmkernel.service")).expect("service unit");
    assert!(
        service.contains(&format!("{}/bin/llmkernel", prefix.display())),
        "ExecStart points into the prefix"
    );
    assert!(units.join("llmkernel.socket").exists());
    let version = Command::new(prefix.join("bin/llmsh"))
        .arg("--version")
        .output()
        .expect("installed llmsh runs");
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("llmsh "));

    // As `systemctl --user enable llmkernel.socket` leaves it.
    let wants = units.join("sockets.target.wants");
    std::fs::create_dir_all(&wants).expect("wants");
    std::os::unix::fs::symlink(
        units.join("llmkernel.socket"),
        wants.join("llmkernel.socket"),
    )
    .expect("enable link");
    run(&["--uninstall"]);
    assert!(!prefix.join("bin/llmkernel").exists() && !units.join("llmkernel.service").exists());
    assert!(!prefix.join("share/llmkernel/installed-files").exists());
    assert!(
        std::fs::symlink_metadata(wants.join("llmkernel.socket")).is_err(),
        "no dangling enable link"
    );
    let log = std::fs::read_to_string(tmp.path().join("systemctl.log")).expect("systemctl log");
    assert!(
        log.contains("--user disable --now llmkernel.socket llmkernel.service"),
        "{log}"
    );
}

#[test]
fn install_sh_without_a_user_manager_says_what_to_run_instead() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let prefix = tmp.path().join("local");
    let units = tmp.path().join("units");
    let bin_dir = Path::new(crate::support::KERNEL).parent().expect("bin dir");
    let path = format!(
        "{}:/usr/bin:/bin",
        fake_systemctl(tmp.path(), false).display()
    );
    let from = bin_dir.to_str().expect("utf-8 path");
    let said = install_sh(&prefix, &units, &path, &["--from", from]);
    assert!(said.contains("no systemd user manager"), "{said}");
    assert!(
        said.contains(&format!("{}/bin/llmkernel --daemon", prefix.display())),
        "{said}"
    );
    let wants = units.join("sockets.target.wants");
    std::fs::create_dir_all(&wants).expect("wants");
    std::os::unix::fs::symlink(
        units.join("llmkernel.socket"),
        wants.join("llmkernel.socket"),
    )
    .expect("enable link");
    install_sh(&prefix, &units, &path, &["--uninstall"]);
    assert!(
        std::fs::symlink_metadata(wants.join("llmkernel.socket")).is_err(),
        "no dangling enable link without a manager either"
    );
    let log = std::fs::read_to_string(tmp.path().join("systemctl.log")).unwrap_or_default();
    assert!(!log.contains("disable"), "no manager to ask: {log}");
}

#[test]
fn quickstart_help_prints_its_help_only() {
    let out = Command::new("bash")
        .arg(Path::new(ROOT).join("scripts/quickstart"))
        .arg("--help")
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("quickstart --help");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(help.starts_with("From a fresh clone"), "{help}");
    assert!(help.contains("scripts/quickstart -c COMMANDS"), "{help}");
    assert!(
        !help.contains("set -") && !help.contains("ROOT="),
        "no script after the help: {help}"
    );
    assert!(out.stderr.is_empty(), "nothing else happens: {out:?}");
}
