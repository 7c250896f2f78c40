//! The OpenAI-compatible front door against the real model: the requests the official `openai` SDK
//! sends (a whole answer; a stream with `stream_options.include_usage`) come back as answers in its
//! shape, and a process that `llmsh` kills ends its client's stream with an error event.

use crate::support::{Kernel, STEP, setup, words};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The front door's socket beside the kernel's.
fn door(k: &Kernel) -> PathBuf {
    k.socket.with_file_name("llmkernel-http.sock")
}

/// A response read so far: its raw bytes, which grow as the server writes.
struct Exchange {
    stream: tokio::net::UnixStream,
    raw: Vec<u8>,
}

impl Exchange {
    /// POSTs `body` to `uri` on `socket` with the headers the SDK sends.
    async fn post(socket: &Path, uri: &str, body: &Value) -> Exchange {
        let body = body.to_string();
        let request = format!(
            "POST {uri} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nUser-Agent: OpenAI/Python e2e\r\n\
             Authorization: Bearer unused\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut stream = tokio::net::UnixStream::connect(socket)
            .await
            .expect("connect to the front door");
        stream.write_all(request.as_bytes()).await.expect("send");
        Exchange {
            stream,
            raw: Vec::new(),
        }
    }

    /// Reads until `cond` holds of the bytes so far (or the response ends).
    async fn read_until(&mut self, cond: impl Fn(&[u8]) -> bool) {
        let mut buf = [0u8; 8192];
        while !cond(&self.raw) {
            let read = tokio::time::timeout(STEP, self.stream.read(&mut buf))
                .await
                .expect("the front door answered in time")
                .expect("read");
            if read == 0 {
                return;
            }
            self.raw.extend_from_slice(&buf[..read]);
        }
    }

    /// The whole response: (status, headers' text, body de-chunked).
    async fn finish(mut self) -> (u16, String, String) {
        self.read_until(|_| false).await;
        let text = String::from_utf8_lossy(&self.raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let head = head.to_ascii_lowercase();
        let body = if head.contains("transfer-encoding: chunked") {
            dechunk(body)
        } else {
            body.to_string()
        };
        (status, head, body)
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The JSON `data:` payloads of an event stream, and whether it ended with `[DONE]`.
fn events(body: &str) -> (Vec<Value>, bool) {
    let data: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    let done = data.last() == Some(&"[DONE]");
    let json = data
        .iter()
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect();
    (json, done)
}

/// Whether the bytes so far hold a streamed chunk with text.
fn has_text(raw: &[u8]) -> bool {
    let needle = b"{\"content\":\"";
    raw.windows(needle.len() + 1)
        .any(|w| w.starts_with(needle) && w[needle.len()] != b'"')
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(|v| v.trim().to_string())
}

#[tokio::test]
async fn the_front_door_answers_whole_and_streamed_and_a_kill_ends_the_stream_with_an_error() {
    let Some(llama) = setup().await else { return };
    let server = llama.server(1).await;
    let k = Kernel::start(&["--backend", &server.url()]).await;
    let socket = door(&k);
    let question = "What is the capital of France? Answer in one sentence.";

    let whole = serde_json::json!({
        "messages": [{ "role": "user", "content": question }],
        "max_tokens": 24,
    });
    let (status, head, body) = Exchange::post(&socket, "/v1/chat/completions", &whole)
        .await
        .finish()
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(header(&head, "x-llmkernel-pid").is_some(), "{head}");
    let v: Value = serde_json::from_str(&body).expect("a JSON completion");
    let text = v["choices"][0]["message"]["content"].as_str().unwrap_or("");
    assert!(words(text) >= 2, "not an answer: {v}");
    assert!(v["usage"]["completion_tokens"].as_u64() > Some(0), "{v}");

    let streamed = serde_json::json!({
        "messages": [{ "role": "user", "content": question }],
        "max_tokens": 24,
        "stream": true,
        "stream_options": { "include_usage": true },
    });
    let (status, _, body) = Exchange::post(&socket, "/v1/chat/completions", &streamed)
        .await
        .finish()
        .await;
    assert_eq!(status, 200, "{body}");
    let (chunks, done) = events(&body);
    assert!(done, "no [DONE]: {body}");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(words(&text) >= 2, "not an answer: {body}");
    assert!(
        chunks
            .iter()
            .any(|c| c["usage"]["completion_tokens"].as_u64() > Some(0))
    );

    let long = serde_json::json!({
        "messages": [{ "role": "user", "content": "Count from 1 to 500, separated by commas." }],
        "max_tokens": 400,
        "stream": true,
    });
    let mut exchange = Exchange::post(&socket, "/v1/chat/completions", &long).await;
    exchange.read_until(has_text).await;
    let head = String::from_utf8_lossy(&exchange.raw).to_ascii_lowercase();
    let pid = header(&head, "x-llmkernel-pid").expect("a pid");
    let (status, _, stderr) = k.sh(&format!("kill -KILL {pid}")).await;
    assert_eq!(status, 0, "{stderr}");
    let (_, _, body) = exchange.finish().await;
    let (chunks, done) = events(&body);
    assert!(!done, "a killed answer ended as if complete: {body}");
    let last = chunks.last().expect("events");
    assert!(
        last["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("killed")),
        "{last}"
    );
    k.stop().await;
}
