//! `packaging/install.sh` installs into a temporary prefix and uninstalls cleanly.

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn install_sh_installs_into_a_prefix_and_uninstalls() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let prefix = tmp.path().join("local");
    let units = tmp.path().join("units");
    let bin_dir = Path::new(crate::support::KERNEL).parent().expect("bin dir");
    let run = |extra: &[&str]| {
        let out = Command::new("bash")
            .arg(Path::new(ROOT).join("packaging/install.sh"))
            .args(["--user", "--prefix"])
            .arg(&prefix)
            .arg("--unit-dir")
            .arg(&units)
            .args(extra)
            .env("PATH", "/usr/bin:/bin") // no systemctl side effects needed: daemon-reload failure is ignored
            .output()
            .expect("install.sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["--from", bin_dir.to_str().expect("utf-8 path")]);
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

    run(&["--uninstall"]);
    assert!(!prefix.join("bin/llmkernel").exists() && !units.join("llmkernel.service").exists());
    assert!(!prefix.join("share/llmkernel/installed-files").exists());
}
