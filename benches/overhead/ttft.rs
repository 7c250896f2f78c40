//! Time to first token at 1,000 submissions a second (open loop: each starts on time whether or not
//! earlier ones are done), straight to the fake server with the kernel's own HTTP client, and through
//! a kernel with enough slots that nothing queues, its state directory on the machine's disk (every
//! submission is made durable before its first token is delivered). The figure is against a backend
//! whose first token comes 5 ms after the request, as a fast GPU server's does: the journal's sync
//! runs while the backend works. The note adds the same against an instant backend (where the sync
//! is all there is to wait for), and with every thread pinned to one CPU.

use super::support::affinity;
use super::support::fake_openai::FakeOpenAi;
use super::{
    BenchKernel, Figure, ROUNDS, direct_answer, direct_backend, kernel_answer, percentile, us,
};
use llmkernel::config::KernelConfig;
use llmkernel::shell::client::Client;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SUBMISSIONS_PER_SEC: u64 = 1_000;
/// How long each side runs per round.
const ROUND: Duration = Duration::from_secs(2);
/// When the backend's first token comes: a fast GPU server's time to first token.
const FIRST_TOKEN: Duration = Duration::from_millis(5);
/// Tokens per answer (only the first is timed).
const ANSWER_TOKENS: u32 = 4;

/// (direct, through the kernel) samples, with every thread on `cpu` when given.
async fn samples(cpu: Option<usize>, first_token: Duration) -> (Vec<Duration>, Vec<Duration>) {
    affinity::pin(cpu);
    let fake = FakeOpenAi::start_on(cpu);
    fake.set_token_delay(first_token);
    let config = KernelConfig {
        backend_url: fake.url.clone(),
        cpus: 256,
        max_connections: 4096,
        max_connections_per_uid: 4096,
        ..KernelConfig::default()
    };
    let kernel = BenchKernel::start_on(config, cpu);
    let backend = direct_backend(&fake.url);
    let pool: Arc<Mutex<Vec<Client>>> = Arc::default();
    let (mut direct, mut through) = (Vec::new(), Vec::new());
    for round in 0..=ROUNDS {
        let d = open_loop(|| {
            let backend = Arc::clone(&backend);
            async move { direct_answer(&backend, ANSWER_TOKENS).await.0 }
        })
        .await;
        let k = open_loop(|| {
            let pool = Arc::clone(&pool);
            let socket = kernel.socket.clone();
            async move {
                let taken = pool.lock().expect("pool").pop();
                let mut client = match taken {
                    Some(c) => c,
                    None => Client::connect(&socket).await.expect("connect"),
                };
                let ttft = kernel_answer(&mut client, ANSWER_TOKENS).await.0;
                pool.lock().expect("pool").push(client);
                ttft
            }
        })
        .await;
        if round > 0 {
            // Round 0 warms connections, pools and caches on both sides.
            direct.extend(d);
            through.extend(k);
        }
    }
    kernel.stop();
    affinity::pin(None);
    (direct, through)
}

/// The figures; the fake server here is one per placement, started in [`samples`].
pub async fn figures() -> Vec<Figure> {
    let (mut direct, mut through) = samples(None, FIRST_TOKEN).await;
    let (mut instant_direct, mut instant_through) = samples(None, Duration::ZERO).await;
    let (mut one_direct, mut one_through) = samples(Some(0), FIRST_TOKEN).await;
    let mut figure = |key, p: f64, target| {
        let (d, k) = (percentile(&mut direct, p), percentile(&mut through, p));
        let (id, ik) = (
            percentile(&mut instant_direct, p),
            percentile(&mut instant_through, p),
        );
        let (od, ok) = (
            percentile(&mut one_direct, p),
            percentile(&mut one_through, p),
        );
        Figure::new(
            key,
            us(k) - us(d),
            target,
            format!(
                "{SUBMISSIONS_PER_SEC} submissions/s, first token {} ms after the request, {} samples a side: \
                 direct {:.0} us, through the kernel {:.0} us; instant backend: {:.0} us vs {:.0} us, added \
                 {:.0} us; all threads on one CPU: {:.0} us vs {:.0} us, added {:.0} us",
                FIRST_TOKEN.as_millis(),
                direct.len(),
                us(d),
                us(k),
                us(id),
                us(ik),
                us(ik) - us(id),
                us(od),
                us(ok),
                us(ok) - us(od)
            ),
        )
    };
    vec![
        figure("ttft_added_us_p50", 0.5, "<= 100"),
        figure("ttft_added_us_p99", 0.99, "<= 1000"),
    ]
}

/// Starts `one()` every 1/[`SUBMISSIONS_PER_SEC`] for [`ROUND`] without waiting for earlier
/// ones (open loop), then collects what each returned.
async fn open_loop<F, Fut>(one: F) -> Vec<Duration>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Duration> + Send + 'static,
{
    let period = Duration::from_micros(1_000_000 / SUBMISSIONS_PER_SEC);
    let count = (ROUND.as_micros() / period.as_micros()) as usize;
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        tick.tick().await;
        tasks.push(tokio::spawn(one()));
    }
    let mut samples = Vec::with_capacity(count);
    for task in tasks {
        samples.push(task.await.expect("request"));
    }
    samples
}
