//! The control-request round trip: `ps` with one process in the table, sent as raw frame bytes to
//! the kernel, against a plain Unix-socket server on a runtime like the kernel's that reads a frame
//! and writes back the kernel's own reply bytes. The same client code times both, in alternating
//! rounds; what differs is the kernel's work (decode, look up, encode) between reading and writing.
//! Threads are pinned so that both sides have the same placement: first everything on one CPU, then
//! (with two CPUs or more) the client on one and both servers on another.

use super::support::affinity;
use super::{BenchKernel, Figure, kernel_answer, percentile, us};
use llmkernel::proto::{Hello, ListRequest, PROTOCOL_VERSION, Request, decode, encode};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

const WARMUP: usize = 2_000;
const ROUNDS: usize = 10;
const PER_ROUND: usize = 2_000;

/// A frame: 4-byte big-endian length, then the payload.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

/// Writes `request` and reads one frame back; returns the payload.
async fn call(stream: &mut UnixStream, request: &[u8], reply: &mut Vec<u8>) {
    stream.write_all(request).await.expect("write");
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await.expect("read length");
    reply.resize(u32::from_be_bytes(len) as usize, 0);
    stream.read_exact(reply).await.expect("read payload");
}

/// Serves `reply` (a whole frame) for every frame read, on a runtime of its own like the kernel's.
fn echo_server(path: &Path, reply: Vec<u8>, cpu: Option<usize>) {
    let listener = std::os::unix::net::UnixListener::bind(path).expect("bind echo");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        affinity::pin(cpu);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .on_thread_start(move || affinity::pin(cpu))
            .enable_all()
            .build()
            .expect("echo runtime");
        runtime.block_on(async move {
            let listener = UnixListener::from_std(listener).expect("listener");
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let reply = reply.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let mut len = [0u8; 4];
                        if stream.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        buf.resize(u32::from_be_bytes(len) as usize, 0);
                        if stream.read_exact(&mut buf).await.is_err()
                            || stream.write_all(&reply).await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
    });
}

async fn time(stream: &mut UnixStream, request: &[u8], n: usize, out: &mut Vec<Duration>) {
    let mut reply = Vec::new();
    for _ in 0..n {
        let start = Instant::now();
        call(stream, request, &mut reply).await;
        out.push(start.elapsed());
    }
}

/// Round trips through the kernel and to the echo server, with the client on `client_cpu` and both
/// servers on `server_cpu`: (kernel samples, echo samples, request bytes, reply bytes).
async fn measure(
    url: &str,
    client_cpu: Option<usize>,
    server_cpu: Option<usize>,
) -> (Vec<Duration>, Vec<Duration>, usize, usize) {
    affinity::pin(client_cpu);
    let config = llmkernel::config::KernelConfig {
        backend_url: url.to_string(),
        ..Default::default()
    };
    let kernel = BenchKernel::start_on(config, server_cpu);
    let mut client = kernel.connect().await;
    kernel_answer(&mut client, 4).await; // one (finished) process in the table
    let mut to_kernel = UnixStream::connect(&kernel.socket).await.expect("connect");
    let hello = Request::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        peer: "bench".into(),
    });
    let mut reply = Vec::new();
    let hello = frame(&encode(&hello).expect("hello"));
    call(&mut to_kernel, &hello, &mut reply).await;
    let ps = frame(&encode(&Request::List(ListRequest { all_users: false })).expect("ps"));
    call(&mut to_kernel, &ps, &mut reply).await;
    let listed: llmkernel::proto::Reply = decode(&reply).expect("ps reply");
    match &listed {
        Ok(llmkernel::proto::Response::Processes(l)) => assert_eq!(l.processes.len(), 1),
        other => panic!("ps: {other:?}"),
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let echo_path = dir.path().join("echo.sock");
    echo_server(&echo_path, frame(&reply), server_cpu);
    let mut to_echo = UnixStream::connect(&echo_path).await.expect("connect echo");
    let (mut k, mut e) = (Vec::new(), Vec::new());
    time(&mut to_kernel, &ps, WARMUP, &mut Vec::new()).await;
    time(&mut to_echo, &ps, WARMUP, &mut Vec::new()).await;
    for _ in 0..ROUNDS {
        time(&mut to_kernel, &ps, PER_ROUND, &mut k).await;
        time(&mut to_echo, &ps, PER_ROUND, &mut e).await;
    }
    kernel.stop();
    affinity::pin(None);
    (k, e, ps.len(), reply.len() + 4)
}

/// The figures on one CPU (each round trip two context switches: the strictest case, where the
/// kernel's own work weighs most), with the cross-CPU ratio (two wake-ups) in the note.
pub async fn figures(url: &str) -> Vec<Figure> {
    let (mut k, mut e, request, reply) = measure(url, Some(0), Some(0)).await;
    let cross = match affinity::cpus() {
        1 => None,
        _ => Some(measure(url, Some(0), Some(1)).await),
    };
    let mut figure = |key, p: f64, target| {
        let (kp, ep) = (percentile(&mut k, p), percentile(&mut e, p));
        let cross = cross
            .clone()
            .map_or(String::new(), |(mut ck, mut ce, _, _)| {
                let (ckp, cep) = (percentile(&mut ck, p), percentile(&mut ce, p));
                format!(
                    "; client and server on different CPUs: {:.1} us vs {:.1} us, ratio {:.2}",
                    us(ckp),
                    us(cep),
                    us(ckp) / us(cep)
                )
            });
        Figure::new(
            key,
            us(kp) / us(ep),
            target,
            format!(
                "`ps` of one process ({request} request bytes, {reply} reply bytes), {} round trips a side, \
                 client and server on one CPU: kernel {:.1} us, raw echo {:.1} us{cross}",
                k.len(),
                us(kp),
                us(ep)
            ),
        )
    };
    vec![
        figure("rtt_p50_ratio", 0.5, "<= 1.5"),
        figure("rtt_p99_ratio", 0.99, "<= 3"),
    ]
}
