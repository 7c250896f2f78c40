//! The soft limit end to end: past its threshold a query's next request carries the system note of
//! the tokens left, before the answer so far, and the answer arrives as one unbroken text.

use crate::support::TestKernel;
use crate::support::fake_llm::{FakeLlm, answer};

#[tokio::test]
async fn past_its_soft_limit_a_query_is_told_to_conclude_and_its_answer_stays_whole() {
    let fake = FakeLlm::start(Default::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("llmkernel");
    std::fs::create_dir_all(&config).expect("config dir");
    let text = "[soft_limit]\nfraction = 0.5\ntypes_off = [\"HOUSEKEEPING\"]\n";
    std::fs::write(config.join("config.toml"), text).expect("config");
    let k = TestKernel::start_in(dir, &fake.url, &["--quantum", "4"]).await;
    let run = k.sh("query --max-tokens 40 '[tokens=30] essay'").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        run.stdout.trim_end(),
        answer(30).trim_end(),
        "one unbroken answer"
    );
    let requests = fake.requests();
    assert_eq!(
        requests.len(),
        2,
        "cut once, at the boundary past 20 tokens"
    );
    let messages = requests[1].body["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let roles: Vec<&str> = messages.iter().filter_map(|m| m["role"].as_str()).collect();
    assert_eq!(roles, ["user", "system", "assistant"], "{messages:?}");
    let note = messages[1]["content"].as_str().unwrap_or("");
    assert!(note.starts_with("You have 20 tokens left"), "{note}");

    let chores = k
        .sh("query --type housekeeping --max-tokens 40 '[tokens=30] chores'")
        .await;
    assert_eq!(chores.status, 0, "{chores:?}");
    assert_eq!(fake.requests().len(), 3, "a type with it off is never cut");
}
