//! `GET /v1/events`: the kernel's `Subscribe` stream as server-sent events, one JSON event per
//! message, shaped as the wire's [`Event`] (`{"Snapshot": {…}}`, `{"Changed": {…}}`,
//! `{"Reaped": 7}`, …): first the snapshot of the table, then every change as it happens, with a
//! sample of rates once a second. `?all=1` follows every user's processes as `ps -a` shows them
//! (others' prompts hidden). The subscription ends when the client goes away or the kernel stops;
//! one that reads too slowly loses events and is told so (`Lost`), as on the socket.

use crate::http::Door;
use crate::kernel::events::Subscription;
use crate::kernel::server::Peer;
use crate::proto::Event;
use axum::Extension;
use axum::extract::State;
use axum::http::Uri;
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::convert::Infallible;
use tokio_util::sync::CancellationToken;

/// How many processes one snapshot message carries at most, in bytes of wire rows: a browser parses
/// each message whole, so a huge table comes in several messages rather than one of megabytes.
const SNAPSHOT_PAGE_BYTES: usize = 256 * 1024;

/// Whether the query asks for every user's processes (`all=1`, as `/v1/processes` takes it).
pub fn wants_all(uri: &Uri) -> bool {
    uri.query().is_some_and(|q| {
        q.split('&')
            .any(|kv| matches!(kv, "all=1" | "all=true" | "all"))
    })
}

pub async fn stream(
    State(door): State<Door>,
    Extension(peer): Extension<Peer>,
    uri: Uri,
) -> Response {
    let kernel = door.kernel;
    let all = wants_all(&uri);
    let (subscription, snapshot) = kernel.read(|s| {
        kernel
            .events
            .subscribe(s, peer.uid, all, SNAPSHOT_PAGE_BYTES)
    });
    let relay = Relay {
        subscription,
        pending: snapshot.into(),
        shutdown: kernel.shutdown.clone(),
    };
    let messages = futures::stream::unfold(relay, |mut relay| async move {
        let event = relay.next().await?;
        Some((Ok::<_, Infallible>(message(&event)), relay))
    });
    Sse::new(messages)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// One subscription's events, one at a time.
struct Relay {
    subscription: Subscription,
    pending: VecDeque<Event>,
    shutdown: CancellationToken,
}

impl Relay {
    /// The next event, or `None` when the kernel shuts down.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            tokio::select! {
                events = self.subscription.next() => self.pending.extend(events),
                () = self.shutdown.cancelled() => return None,
            }
        }
    }
}

/// `event` as one server-sent message of JSON.
fn message(event: &Event) -> sse::Event {
    match serde_json::to_string(event) {
        Ok(json) => sse::Event::default().data(json),
        // Every event is plain data that serializes; say so rather than drop it silently.
        Err(e) => sse::Event::default()
            .event("error")
            .data(format!("an event could not be encoded: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Pid;

    #[test]
    fn events_travel_as_the_wire_shapes_them_in_json() {
        let reaped = serde_json::to_value(Event::Reaped(Pid(7))).unwrap();
        assert_eq!(reaped, serde_json::json!({"Reaped": 7}));
        let switch = serde_json::to_value(Event::ContextSwitch {
            pid: Pid(3),
            slot: 1,
        })
        .unwrap();
        assert_eq!(
            switch,
            serde_json::json!({"ContextSwitch": {"pid": 3, "slot": 1}})
        );
    }

    #[test]
    fn all_is_asked_for_as_the_process_list_takes_it() {
        for (uri, all) in [
            ("/v1/events", false),
            ("/v1/events?all=1", true),
            ("/v1/events?x=2&all", true),
            ("/v1/events?all=0", false),
        ] {
            assert_eq!(wants_all(&uri.parse().unwrap()), all, "{uri}");
        }
    }
}
