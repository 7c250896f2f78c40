//! The config file and its precedence: flag > environment > file > default; `--check-config`.

use crate::support::fake_llm::{FakeConfig, FakeLlm};
use crate::support::{KERNEL, TestKernel};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn check(file: &str) -> (i32, String, String) {
    let out = std::process::Command::new(KERNEL)
        .args(["--check-config", file])
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_accepts_the_shipped_example_and_names_key_and_line_of_errors() {
    let example = format!("{ROOT}/packaging/config.toml.example");
    let (code, stdout, _) = check(&example);
    assert_eq!(
        (code, stdout.trim()),
        (0, format!("{example}: ok").as_str())
    );
    let dir = tempfile::tempdir().expect("tempdir");
    for (text, want) in [
        (
            "cpus = 2\nquantum = 0\n",
            ":2: `quantum` must be at least 1 token",
        ),
        (
            "[backend]\nurl = \"x\"\ncolour = 3\n",
            ":3: unknown field `colour`",
        ),
        (
            "cpus = 2\npolicy = \"lottery\"\n",
            ":2: `policy`: unknown variant `lottery`, expected one of `priority`, `rr`, `fair`, `mlfq`, `edf`",
        ),
        (
            "[backend]\nkind = \"tgi\"\n",
            ":2: `kind`: unknown variant `tgi`, expected one of `auto`, `llamacpp`, `vllm`, `openai`",
        ),
        ("[types.ROOT]\nallowance = 1\n", "[types.ROOT]"),
        ("[interrupts.timer]\nperiod_secs = -1\n", "period_secs"),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).expect("write");
        let (code, _, stderr) = check(path.to_str().expect("utf-8"));
        assert_eq!(code, 1, "{text}");
        assert!(stderr.contains(want), "{text}: {stderr}");
        assert!(stderr.contains(&format!("{}:", path.display())), "{stderr}");
    }
    let (code, _, stderr) = check("/nonexistent/llmkernel.toml");
    assert_eq!(code, 1);
    assert!(
        stderr.contains("cannot read config /nonexistent/llmkernel.toml"),
        "{stderr}"
    );
}

#[test]
fn a_bad_policy_flag_is_a_usage_error_and_one_in_the_file_names_file_line_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(KERNEL)
        .args(["--policy", "nope", "--socket"])
        .arg(dir.path().join("never.sock"))
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("'nope'") && stderr.contains("--policy"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[possible values: priority, rr, fair, mlfq, edf]"),
        "{stderr}"
    );
    assert!(!dir.path().join("never.sock").exists(), "nothing started");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "quantum = 8\npolicy = \"nope\"\n").expect("write");
    let out = std::process::Command::new(KERNEL)
        .arg("--config")
        .arg(&bad)
        .arg("--socket")
        .arg(dir.path().join("never.sock"))
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let want = format!("{}:2: `policy`: unknown variant `nope`", bad.display());
    assert!(stderr.contains(&want), "{stderr}");

    let file = dir.path().join("k.toml");
    std::fs::write(&file, "policy = \"fair\"\n").expect("write");
    let out = std::process::Command::new(KERNEL)
        .args(["--policy", "mlfq", "--check-config"])
        .arg(&file)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout.trim(), format!("{}: ok", file.display()));
}

#[tokio::test]
async fn the_policy_comes_from_the_flag_over_the_file() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("k.toml");
    std::fs::write(&file, "policy = \"fair\"\n").expect("write");
    let file = file.to_string_lossy().into_owned();
    let k = TestKernel::start(&fake.url, &["--config", &file]).await;
    assert!(k.sh("sched").await.stdout.contains("policy: fair\n"));
    drop(k);
    let k = TestKernel::start(&fake.url, &["--config", &file, "--policy", "rr"]).await;
    assert!(k.sh("sched").await.stdout.contains("policy: rr\n"));
}

#[tokio::test]
async fn flag_beats_environment_which_beats_the_file() {
    let by_file = FakeLlm::start(FakeConfig::default()).await;
    let by_env = FakeLlm::start(FakeConfig::default()).await;
    let by_flag = FakeLlm::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("k.toml");
    std::fs::write(
        &file,
        format!(
            "cpus = 1\n[backend]\nurl = \"{}\"\nmodel = \"from-file\"\n",
            by_file.url
        ),
    )
    .expect("config");
    let file = file.to_string_lossy().into_owned();

    // File alone.
    let k = TestKernel::start_in(tempfile::tempdir().expect("dir"), "", &["--config", &file]).await;
    assert_eq!(k.sh("query --max-tokens 1 a").await.status, 0);
    assert_eq!(by_file.requests().len(), 1);
    assert_eq!(by_file.requests()[0].body["model"], "from-file");
    drop(k);

    // The environment beats the file.
    let env_url = by_env.url.clone();
    let k = TestKernel::start_with(
        tempfile::tempdir().expect("dir"),
        "",
        &["--config", &file],
        move |cmd| {
            cmd.env("LLMKERNEL_BACKEND", env_url)
                .env("LLMKERNEL_MODEL", "from-env");
        },
    )
    .await;
    assert_eq!(k.sh("query --max-tokens 1 b").await.status, 0);
    assert_eq!(by_env.requests().len(), 1);
    assert_eq!(by_env.requests()[0].body["model"], "from-env");
    drop(k);

    // A flag beats the environment.
    let env_url = by_env.url.clone();
    let k = TestKernel::start_with(
        tempfile::tempdir().expect("dir"),
        &by_flag.url,
        &["--config", &file, "--model", "from-flag"],
        move |cmd| {
            cmd.env("LLMKERNEL_BACKEND", env_url)
                .env("LLMKERNEL_MODEL", "from-env");
        },
    )
    .await;
    assert_eq!(k.sh("query --max-tokens 1 c").await.status, 0);
    assert_eq!(by_flag.requests().len(), 1);
    assert_eq!(by_flag.requests()[0].body["model"], "from-flag");
    assert_eq!((by_file.requests().len(), by_env.requests().len()), (1, 1));
}

#[test]
fn a_backend_that_is_not_a_url_stops_the_kernel_before_it_starts() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(KERNEL)
            .args(args)
            .env_remove("LLMKERNEL_BACKEND")
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("k.sock");
    let socket = socket.to_str().expect("utf-8");
    // A flag: a usage error (2), from --check-config and at start-up alike.
    for args in [
        &["--backend", "not a url", "--check-config"][..],
        &["--backend", "not a url", "--socket", socket][..],
    ] {
        let (code, stderr) = run(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("`not a url` is not a URL"),
            "{args:?}: {stderr}"
        );
    }
    // A config file: a bad config (1), naming the key and its line.
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "cpus = 1\n[backend]\nurl = \"localhost:8080\"\n").expect("write");
    let path = path.to_str().expect("utf-8");
    for args in [
        &["--check-config", path][..],
        &["--config", path, "--socket", socket][..],
    ] {
        let (code, stderr) = run(args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains(":3: `url` in [backend]: `localhost:8080` is not an http(s) URL")
                && stderr.contains("did you mean `http://localhost:8080`?"),
            "{args:?}: {stderr}"
        );
    }
    assert!(!dir.path().join("k.sock").exists(), "never listened");
}
