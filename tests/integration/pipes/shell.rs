//! The shell's forms: `|`, `<`, `>`, `>>`, `2>`, standard input feeding the first query, `&&`,
//! `||`, `!`, `$?` and `set -o pipefail`.

use super::{asked, start};
use crate::support::fake_llm::{FakeConfig, answer};
use crate::support::run_shell;

#[tokio::test]
async fn a_pipeline_gives_each_query_the_whole_answer_before_it_after_its_prompt() {
    let (fake, k, _cfg) = start(FakeConfig::default(), &[]).await;
    let run = k
        .sh("query 'list the risks' | query 'translate to French' | query 'summarize'")
        .await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!("{}\n", answer(10)),
        "only the last one prints"
    );
    assert_eq!(asked(&fake, "list the risks"), "list the risks");
    let framed = format!("translate to French\n\n{}", answer(10));
    assert_eq!(asked(&fake, "translate to French"), framed);
    assert_eq!(
        asked(&fake, "summarize"),
        format!("summarize\n\n{}", answer(10))
    );
    let ps = k.sh("ps").await.stdout;
    assert_eq!(ps.lines().count(), 1, "every process was collected: {ps}");
}

#[tokio::test]
async fn redirections_read_and_write_files_as_the_user() {
    let (fake, k, _cfg) = start(FakeConfig::default(), &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.md");
    std::fs::write(&notes, "- meeting at 10\n").unwrap();
    let out = dir.path().join("summary.md");
    let (notes, out) = (notes.display(), out.display());
    let run = k
        .sh(&format!("query 'summarize this' < {notes} > {out}"))
        .await;
    assert_eq!((run.status, run.stdout.as_str()), (0, ""), "{run:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("summary.md")).unwrap(),
        answer(10)
    );
    assert_eq!(
        asked(&fake, "summarize this"),
        "summarize this\n\n- meeting at 10\n"
    );
    let run = k.sh(&format!("query again >> {out}")).await;
    assert_eq!(run.status, 0, "{run:?}");
    let both = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert_eq!(both, format!("{}{}", answer(10), answer(10)), ">> appends");
    let missing = k.sh("query x < /nonexistent/notes.md").await;
    assert_eq!(missing.status, 1, "{missing:?}");
    assert!(
        missing
            .stderr
            .contains("/nonexistent/notes.md: No such file or directory")
    );
    assert_eq!(
        fake.requests().len(),
        2,
        "nothing was created for a missing input"
    );
}

#[tokio::test]
async fn a_failure_goes_to_the_2_file_and_fails_the_readers_after_it() {
    let (fake, k, _cfg) = start(FakeConfig::default(), &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let errors = dir.path().join("errors.txt");
    let run = k
        .sh(&format!("query '[status=500] bad' 2> {}", errors.display()))
        .await;
    assert_eq!(run.status, 1, "{run:?}");
    assert!(!run.stderr.contains("HTTP 500"), "{run:?}");
    let written = std::fs::read_to_string(&errors).unwrap();
    assert!(written.contains("answered HTTP 500"), "{written}");
    let run = k.sh("query '[status=500] bad' | query next").await;
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains("answered HTTP 500"), "{run:?}");
    assert!(run.stderr.contains("its input, process"), "{run:?}");
    assert!(
        !fake
            .requests()
            .iter()
            .any(|r| r.user_prompt().starts_with("next")),
        "the reader never ran"
    );
}

#[tokio::test]
async fn the_shells_standard_input_feeds_the_first_query_of_a_command_string() {
    let (fake, k, _cfg) = start(FakeConfig::default(), &[]).await;
    let diff = "--- a/x\n+++ b/x\n+new line\n";
    let run = run_shell(&k.socket, &["-c", "query 'review this diff'"], Some(diff)).await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(run.stdout, format!("{}\n", answer(10)));
    assert_eq!(
        asked(&fake, "review this diff"),
        format!("review this diff\n\n{diff}")
    );
    // Commands read from standard input are commands, not a query's input.
    let run = k.sh_stdin("query plain\n").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(asked(&fake, "plain"), "plain");
}

#[tokio::test]
async fn and_or_lists_negation_and_the_last_status_behave_as_in_sh() {
    let (fake, k, _cfg) = start(FakeConfig::default(), &[]).await;
    let run = k
        .sh("kill 99999 && query skipped; kill 99999 || query ran")
        .await;
    assert_eq!(run.status, 0, "{run:?}");
    let prompts: Vec<String> = fake.requests().iter().map(|r| r.user_prompt()).collect();
    assert_eq!(prompts, ["ran"]);
    assert_eq!(k.sh("kill 99999; exit $?").await.status, 1);
    assert_eq!(k.sh("! kill 99999 && exit 7").await.status, 7);
    assert_eq!(k.sh("! ps").await.status, 1);
    let set = k.sh("set -o pipefail; set -o").await;
    assert_eq!(
        set.stdout.split_whitespace().collect::<Vec<_>>(),
        ["pipefail", "on"]
    );
}

#[tokio::test]
async fn a_builtins_output_and_errors_can_be_redirected_too() {
    let (_fake, k, _cfg) = start(FakeConfig::default(), &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let (out, errors) = (dir.path().join("answer.md"), dir.path().join("errors"));
    let pid = crate::support::job_pid(&k.sh("query 'a draft' &").await.stdout);
    k.eventually("ps", "the draft to finish", |ps| {
        crate::support::ps_row(ps, pid).is_some_and(|r| r[5] == "Z")
    })
    .await;
    let run = k
        .sh(&format!(
            "cat {pid} > {}; ps >> {}; kill 99999 2> {}; ps",
            out.display(),
            out.display(),
            errors.display()
        ))
        .await;
    assert_eq!(run.status, 0, "{run:?}");
    assert!(run.stdout.starts_with("   PID"), "stdout is back: {run:?}");
    assert!(!run.stderr.contains("99999"), "{run:?}");
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(
        written.starts_with(&format!("{}\n", answer(10))),
        "{written}"
    );
    assert!(written.contains("   PID"), "ps appended: {written}");
    let complaint = std::fs::read_to_string(&errors).unwrap();
    assert!(
        complaint.contains("(99999) - No such process"),
        "{complaint}"
    );
    let refused = k.sh("ps < /etc/hostname").await;
    assert_eq!(refused.status, 1);
    assert!(
        refused.stderr.contains("only a query reads a file"),
        "{refused:?}"
    );
}
