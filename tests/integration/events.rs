//! `Subscribe`: a snapshot first, then the events of a process's life as they happen, and samples.

use crate::support::fake_llm::{FakeConfig, FakeLlm};
use crate::support::{STEP, TestKernel};
use llmkernel::proto::{
    Connection, Event, Hello, PROTOCOL_VERSION, ProcessState, ProcessType, Reply, Request,
    Response, SubmitRequest, SubscribeRequest,
};
use std::path::Path;
use std::time::Duration;
use tokio::net::UnixStream;

async fn connect(socket: &Path) -> Connection<UnixStream> {
    let mut conn = Connection::new(UnixStream::connect(socket).await.unwrap());
    conn.write(&Request::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        peer: "test".into(),
    }))
    .await
    .unwrap();
    assert!(matches!(
        conn.read::<Reply>().await,
        Ok(Some(Ok(Response::Hello(_))))
    ));
    conn
}

async fn next_event(conn: &mut Connection<UnixStream>) -> Event {
    match tokio::time::timeout(STEP, conn.read::<Reply>()).await {
        Ok(Ok(Some(Ok(Response::Event(event))))) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Reads events until `want` matches one, within a step; returns the events read before it too.
async fn until(conn: &mut Connection<UnixStream>, want: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the awaited event never came; events: {seen:#?}"
        );
        let event = next_event(conn).await;
        let done = want(&event);
        seen.push(event);
        if done {
            return seen;
        }
    }
}

#[tokio::test]
async fn a_subscriber_sees_the_snapshot_then_a_process_live_and_its_exit() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 40,
        delay: Duration::from_millis(60),
        ..FakeConfig::default()
    })
    .await;
    let k = TestKernel::start(&fake.url, &["--cpus", "1"]).await;
    let mut sub = connect(&k.socket).await;
    sub.write(&Request::Subscribe(SubscribeRequest { all_users: false }))
        .await
        .unwrap();
    match next_event(&mut sub).await {
        Event::Snapshot(s) => {
            assert!(s.complete && s.processes.is_empty() && s.cpus == 1, "{s:?}")
        }
        other => panic!("the first event is the snapshot, got {other:?}"),
    }
    let mut client = connect(&k.socket).await;
    let submit = SubmitRequest {
        prompt: "watch me".into(),
        system: None,
        process_type: ProcessType::User,
        max_tokens: None,
        nice: 0,
        attach: false,
    };
    client.write(&Request::Submit(submit)).await.unwrap();
    let Ok(Some(Ok(Response::Submitted(s)))) = client.read::<Reply>().await else {
        panic!("submitted")
    };
    let pid = s.pid;
    let created = until(&mut sub, |e| matches!(e, Event::Created(r) if r.pid == pid)).await;
    let Some(Event::Created(row)) = created.last() else {
        unreachable!()
    };
    assert_eq!(
        row.prompt.as_deref(),
        Some("watch me"),
        "its owner reads the prompt"
    );
    // While it generates, samples carry its token rate.
    until(&mut sub, |e| {
        matches!(e, Event::Sample(s) if s.processes.iter().any(|t| t.pid == pid && t.tokens_used > 0)
            && s.slots == vec![Some(pid)])
    })
    .await;
    let ended = until(
        &mut sub,
        |e| matches!(e, Event::Changed(r) if r.pid == pid && r.exit.is_some()),
    )
    .await;
    let Some(Event::Changed(row)) = ended.last() else {
        unreachable!()
    };
    assert_eq!(row.state, ProcessState::Zombie);
    assert_eq!(row.tokens_used, 40);
}

#[tokio::test]
async fn a_subscription_ends_when_its_client_speaks_and_the_kernel_carries_on() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let mut sub = connect(&k.socket).await;
    sub.write(&Request::Subscribe(SubscribeRequest { all_users: true }))
        .await
        .unwrap();
    assert!(matches!(next_event(&mut sub).await, Event::Snapshot(_)));
    drop(sub);
    let out = k.sh("query -b 'after'\nwait\n").await;
    assert_eq!(out.status, 0, "{}{}", out.stdout, out.stderr);
}
