//! A small HTTP/1.1 client for the front door's tests, over a Unix or TCP stream: requests go out
//! with `Connection: close`, so a whole response is what the server wrote until it closed; a
//! streamed one can be read as it comes ([`Streaming`]).

use crate::support::STEP;
use std::path::Path;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// One whole response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn pid(&self) -> u64 {
        self.header("x-llmkernel-pid")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no X-LLMKernel-Pid in {:?}", self.headers))
    }

    /// The `data:` payloads of a server-sent event stream, in order.
    pub fn events(&self) -> Vec<String> {
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
            .map(str::to_string)
            .collect()
    }

    /// The text of a streamed chat answer: every chunk's `delta.content`, joined.
    pub fn streamed_text(&self) -> String {
        self.events()
            .iter()
            .filter_map(|e| serde_json::from_str::<serde_json::Value>(e).ok())
            .filter_map(|v| {
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect()
    }
}

/// The request bytes.
pub fn request_bytes(method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut text = format!("{method} {uri} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        text.push_str("Host: localhost\r\n");
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        text.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text.into_bytes()
}

/// Sends a request on the front door's Unix socket and reads the whole response.
pub async fn call(
    socket: &Path,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .expect("connect to the HTTP socket");
    exchange(stream, method, uri, headers, body).await
}

/// As [`call`], on a TCP address.
pub async fn call_tcp(
    addr: &str,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect over TCP");
    exchange(stream, method, uri, headers, body).await
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    stream
        .write_all(&request_bytes(method, uri, headers, body))
        .await
        .expect("send");
    let mut raw = Vec::new();
    tokio::time::timeout(STEP * 2, stream.read_to_end(&mut raw))
        .await
        .expect("the response did not end in time")
        .expect("read");
    parse(&raw)
}

/// Parses a whole response (chunked or not).
pub fn parse(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            out.push_str(&rest[..n.min(rest.len())]);
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// A response being read as it streams.
pub struct Streaming {
    stream: tokio::net::UnixStream,
    pub raw: Vec<u8>,
}

impl Streaming {
    /// Sends a request and returns at once.
    pub async fn open(socket: &Path, uri: &str, headers: &[(&str, &str)], body: &str) -> Streaming {
        let mut stream = tokio::net::UnixStream::connect(socket)
            .await
            .expect("connect");
        stream
            .write_all(&request_bytes("POST", uri, headers, body))
            .await
            .expect("send");
        Streaming {
            stream,
            raw: Vec::new(),
        }
    }

    /// Reads until what arrived contains `needle`.
    pub async fn read_until(&mut self, needle: &str) {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&self.raw).contains(needle) {
            let n = tokio::time::timeout(STEP, self.stream.read(&mut buf))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no {needle:?} in time; got {:?}",
                        String::from_utf8_lossy(&self.raw)
                    )
                })
                .expect("read");
            assert!(
                n > 0,
                "closed before {needle:?}: {:?}",
                String::from_utf8_lossy(&self.raw)
            );
            self.raw.extend_from_slice(&buf[..n]);
        }
    }

    /// The pid the response's headers name (once they have arrived).
    pub async fn pid(&mut self) -> u64 {
        self.read_until("\r\n\r\n").await;
        parse(&self.raw).pid()
    }

    /// Reads the rest and parses the whole response.
    pub async fn finish(mut self) -> Reply {
        let mut rest = Vec::new();
        tokio::time::timeout(STEP * 2, self.stream.read_to_end(&mut rest))
            .await
            .expect("the stream did not end in time")
            .expect("read");
        self.raw.extend(rest);
        parse(&self.raw)
    }
}

/// The front door's socket beside the kernel's.
pub fn http_socket(kernel_socket: &Path) -> std::path::PathBuf {
    kernel_socket.with_file_name("llmkernel-http.sock")
}

/// A chat request body.
pub fn chat_body(prompt: &str, extra: &str) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(",{extra}")
    };
    format!(r#"{{"messages":[{{"role":"user","content":"{prompt}"}}]{extra}}}"#)
}
