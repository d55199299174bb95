//! Memory-binder throughput against the raw baseline, in one run on one core.
//!
//! `cargo bench -p bindery-memory --bench throughput [-- <messages>]`
//!
//! Both sides run on a single-threaded tokio runtime (so figures are per core) and move the
//! same JSON payload from a producer to a consumer that decodes it:
//! - raw: `tokio::sync::mpsc` carrying `serde_json`-encoded bytes, decoded on receipt;
//! - bindery: an imperative `Source` publishing to the memory binder, a `#[bindery::sink]` decoding
//!   the payload, with headers, acknowledgements, the retry/dead-letter pipeline and all.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bindery::App;
use bindery::prelude::*;
use bindery_memory::{MemoryBinder, MemoryBroker};
use tokio::sync::Notify;

#[derive(Clone, Serialize, Deserialize)]
struct Event {
    id: u64,
    customer: String,
    cents: u64,
}

fn event(i: u64) -> Event {
    Event { id: i, customer: format!("customer-{}", i % 1000), cents: i * 7 }
}

async fn raw(n: u64) -> Duration {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bindery::Bytes>(1024);
    let start = Instant::now();
    let producer = tokio::spawn(async move {
        for i in 0..n {
            let bytes = serde_json::to_vec(&event(i)).unwrap();
            tx.send(bindery::Bytes::from(bytes)).await.unwrap();
        }
    });
    let mut sum = 0u64;
    while let Some(b) = rx.recv().await {
        let e: Event = serde_json::from_slice(&b).unwrap();
        sum = sum.wrapping_add(e.cents);
    }
    producer.await.unwrap();
    std::hint::black_box(sum);
    start.elapsed()
}

static SEEN: AtomicU64 = AtomicU64::new(0);
static TARGET: AtomicU64 = AtomicU64::new(0);
static DONE: Notify = Notify::const_new();

/// The consumer, written the way users write handlers.
#[bindery::sink(input = "events", group = "bench")]
async fn bench_sink(event: Event) {
    std::hint::black_box(event.cents);
    if SEEN.fetch_add(1, Ordering::Relaxed) + 1 == TARGET.load(Ordering::Relaxed) {
        DONE.notify_one();
    }
}

async fn bindery_run(n: u64) -> Duration {
    SEEN.store(0, Ordering::Relaxed);
    TARGET.store(n, Ordering::Relaxed);
    let broker = MemoryBroker::new();
    let app = App::builder()
        .binder("memory", Arc::new(MemoryBinder::new(broker)))
        .override_binder("memory")
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let source = app.source::<Event>("events").unwrap();
    let start = Instant::now();
    let finished = DONE.notified();
    tokio::pin!(finished);
    finished.as_mut().enable();
    for i in 0..n {
        source.send(event(i)).await.unwrap();
    }
    finished.await;
    let elapsed = start.elapsed();
    app.shutdown().await.unwrap();
    elapsed
}

fn measure(rt: &tokio::runtime::Runtime, n: u64) -> (f64, f64) {
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    // Warm up once, then take the best of three for each side, alternating.
    rt.block_on(raw(n / 10));
    rt.block_on(bindery_run(n / 10));
    let (mut raw_best, mut bindery_best) = (0f64, 0f64);
    for _ in 0..3 {
        raw_best = raw_best.max(rate(rt.block_on(raw(n))));
        bindery_best = bindery_best.max(rate(rt.block_on(bindery_run(n))));
    }
    (raw_best, bindery_best)
}

fn main() {
    let n: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(500_000);
    if let Some(side) = std::env::var_os("BENCH_PROFILE_ONLY") {
        // For profilers (`BENCH_PROFILE_ONLY=bindery|raw`): one side, single-threaded, no report.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let d = if side == "raw" { rt.block_on(raw(n)) } else { rt.block_on(bindery_run(n)) };
        println!("{} only: {:.0} msg/s", side.to_string_lossy(), n as f64 / d.as_secs_f64());
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // in debug mode, where figures mean nothing: there it only checks both paths work.
    if !std::env::args().any(|a| a == "--bench") {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(raw(1_000));
        rt.block_on(bindery_run(1_000));
        println!("throughput bench: smoke run passed (run `cargo bench` for figures)");
        return;
    }
    let single = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (raw1, bindery1) = measure(&single, n);
    let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (raw2, bindery2) = measure(&multi, n);
    println!("memory binder throughput, {n} messages of ~60 B JSON, best of 3");
    println!("{:<34} {:>14} {:>14} {:>8}", "runtime", "raw msg/s", "bindery msg/s", "ratio");
    println!("{:<34} {:>14.0} {:>14.0} {:>8.2}", "current_thread (1 core)", raw1, bindery1, bindery1 / raw1);
    println!("{:<34} {:>14.0} {:>14.0} {:>8.2}", "multi_thread, 2 workers (2 cores)", raw2, bindery2, bindery2 / raw2);
}
