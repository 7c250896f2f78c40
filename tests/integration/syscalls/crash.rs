//! A caller survives a crash mid-call: kill -9 the kernel while it waits on two children, and
//! after the restart the children finish and the caller resumes with both their answers.

use super::{results, started_caller};
use crate::support::TestKernel;
use crate::support::ps_row;

#[tokio::test]
async fn sigkill_while_a_caller_waits_on_two_children_and_it_resumes_after_the_restart() {
    let script = r#"[tokens=1] plan <<call spawn {"prompt":"[tokens=80] a"}>> <<call spawn {"prompt":"[tokens=80] b"}>> <<turn>> <<call wait {"pid":2}>> <<call wait {"pid":3}>>"#;
    let (fake, k, cfg) = started_caller(10, "", script).await;
    k.eventually("ps", "the caller blocked and a child streaming", |ps| {
        ps_row(ps, 1).is_some_and(|r| r[5] == "S")
            && ps_row(ps, 2).is_some_and(|r| {
                r[6].split('/').next().and_then(|n| n.parse::<u32>().ok()) > Some(5)
            })
    })
    .await;
    let dir = k.crash().await;

    let path = cfg.path().join("llmkernel.toml");
    let path = path.to_string_lossy().to_string();
    let k = TestKernel::start_in(dir, &fake.url, &["--config", path.as_str()]).await;
    let ps = k.sh("ps").await.stdout;
    assert_eq!(ps_row(&ps, 1).expect("the caller")[5], "S", "{ps}");
    k.eventually("ps", "the caller to finish", |ps| {
        ps_row(ps, 1).is_some_and(|r| r[5] == "Z")
    })
    .await;
    let got = results(&k.sh("cat 1").await.stdout);
    assert_eq!(got.len(), 4, "{got:?}");
    for (r, child) in got[2..].iter().zip([2, 3]) {
        assert_eq!(r["pid"], child);
        assert_eq!(r["status"], "Done", "{got:?}");
        assert!(r["output"].as_str().unwrap().ends_with("t79 "), "{got:?}");
    }
}
