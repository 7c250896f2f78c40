//! Backend extras end to end: llama-server slot pinning and prompt cache, vLLM priorities (and a vLLM
//! that rejects them), and a configured backend kind overriding detection.

use super::{background, final_output, paced, requests_for, state_is, tokens};
use crate::support::fake_llm::{FakeConfig, FakeLlm, Recorded, ServerKind, answer};
use crate::support::{TestKernel, ps_row};

#[tokio::test]
async fn llama_server_gets_each_process_pinned_to_its_slot_with_the_prompt_cache_kept() {
    let fake = FakeLlm::start(FakeConfig {
        kind: ServerKind::LlamaCpp { slots: 2 },
        ..paced(5)
    })
    .await;
    let k = TestKernel::start(&fake.url, &["--cpus", "2", "--quantum", "4"]).await;
    let hk: Vec<u64> = [
        background(&k, "query --type housekeeping '[tokens=60] one'").await,
        background(&k, "query --type housekeeping '[tokens=60] two'").await,
    ]
    .to_vec();
    let user = background(&k, "query '[tokens=10] three'").await;
    for pid in hk.iter().chain([&user]) {
        final_output(&k, *pid).await;
    }
    let requests = fake.requests();
    assert!(requests.len() >= 4, "a preemption and a resume happened");
    assert!(requests.iter().all(|r| r.cache_prompt() == Some(true)));
    let slots: Vec<u64> = requests.iter().filter_map(Recorded::id_slot).collect();
    assert_eq!(slots.len(), requests.len(), "every request is pinned");
    assert!(slots.iter().all(|s| *s < 2));
    assert_ne!(requests[0].id_slot(), requests[1].id_slot());
    assert_eq!(fake.props_requests(), 1, "the kind is learned once");
}

#[tokio::test]
async fn a_configured_backend_kind_overrides_detection() {
    let fake = FakeLlm::start(FakeConfig {
        kind: ServerKind::LlamaCpp { slots: 1 },
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("llmkernel");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(config.join("config.toml"), "[backend]\nkind = \"openai\"\n").expect("config");
    let k = TestKernel::start_in(dir, &fake.url, &[]).await;
    let pid = background(&k, "query plain").await;
    final_output(&k, pid).await;
    let r = &fake.requests()[0];
    assert_eq!((r.id_slot(), r.cache_prompt()), (None, None));
    assert_eq!(fake.props_requests(), 0);
}

#[tokio::test]
async fn vllm_gets_the_effective_priority_until_it_rejects_it() {
    let fake = FakeLlm::start(FakeConfig {
        kind: ServerKind::Vllm {
            rejects_priority: false,
        },
        ..Default::default()
    })
    .await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let pid = background(&k, "query ranked").await;
    final_output(&k, pid).await;
    let priority = fake.requests()[0].priority();
    assert!(
        priority.is_some_and(|p| (-82..=-80).contains(&p)),
        "USER is 80, lower is earlier in vLLM: {priority:?}"
    );

    fake.set(|c| {
        c.kind = ServerKind::Vllm {
            rejects_priority: true,
        }
    });
    let k = TestKernel::start(&fake.url, &[]).await;
    let pid = background(&k, "query refused").await;
    assert_eq!(final_output(&k, pid).await, answer(10));
    let pid = background(&k, "query again").await;
    final_output(&k, pid).await;
    let refused = requests_for(&fake, "refused");
    assert_eq!(refused.len(), 2, "retried once without the priority");
    assert!(refused[0].priority().is_some() && refused[1].priority().is_none());
    assert!(requests_for(&fake, "again")[0].priority().is_none());
}

#[tokio::test]
async fn a_process_resumed_on_its_pinned_slot_reuses_the_cached_conversation() {
    let fake = FakeLlm::start(FakeConfig {
        kind: ServerKind::LlamaCpp { slots: 1 },
        ..paced(10)
    })
    .await;
    let k = TestKernel::start(&fake.url, &["--quantum", "4"]).await;
    let pid = background(&k, "query '[tokens=60] kept warm'").await;
    k.eventually("ps", "tokens to flow", |ps| {
        ps_row(ps, pid).is_some_and(|r| tokens(&r) >= 12)
    })
    .await;
    k.sh(&format!("kill -STOP {pid}")).await;
    state_is(&k, pid, "T").await;
    let before = fake.prefilled();
    k.sh(&format!("kill -CONT {pid}")).await;
    assert_eq!(final_output(&k, pid).await, answer(60));
    let resumed = &fake.requests()[1];
    assert!(resumed.resumed_at() >= 12 && resumed.id_slot() == Some(0));
    let reprocessed = fake.prefilled() - before;
    assert!(
        reprocessed <= 3,
        "the slot's cache held the conversation: {reprocessed} prompt tokens redone"
    );
}
