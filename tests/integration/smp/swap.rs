//! A server that holds one model at a time (`swap = true`): waiting work for the loaded model goes
//! first, so the model is switched once, not between every two processes; the switch is counted.

use super::{background, fake, final_output, kernel, running_with};

#[tokio::test]
async fn a_swap_server_runs_the_loaded_models_work_before_switching_once() {
    let server = fake("x", 10).await;
    let config = format!(
        "[[backends]]\nname = \"one\"\nurl = \"{}\"\nslots = 1\nmodels = [\"x\", \"y\"]\nswap = true\n",
        server.url
    );
    let k = kernel(&config, &["--quantum", "1000"]).await;
    let x1 = background(&k, "query --model x --max-tokens 200 '[tokens=200] x-one'").await;
    running_with(&k, x1, 1).await;
    let y1 = background(&k, "query --model y --max-tokens 5 '[tokens=5] y-one'").await;
    let x2 = background(&k, "query --model x --max-tokens 5 '[tokens=5] x-two'").await;
    for pid in [x1, x2, y1] {
        final_output(&k, pid).await;
    }
    let order: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.user_prompt())
        .filter_map(|p| {
            ["x-one", "x-two", "y-one"]
                .into_iter()
                .find(|n| p.contains(n))
        })
        .map(String::from)
        .collect();
    assert_eq!(
        order,
        ["x-one", "x-two", "y-one"],
        "x's work first, though y came before x-two"
    );
    let sched = k.sh_wide("sched").await.stdout;
    assert!(
        sched.contains("model switches 1") && sched.contains("[swap: y]"),
        "{sched}"
    );
}
