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

#[path = "../../bench-support/report.rs"]
mod report;

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

fn measure(rt: &tokio::runtime::Runtime, n: u64) -> report::Rounds {
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    // Warm up once, then five rounds alternating the sides: on a shared machine the best round
    // of each side is the one least disturbed by other work.
    rt.block_on(raw(n / 10));
    rt.block_on(bindery_run(n / 10));
    let mut rounds = report::Rounds::default();
    for _ in 0..5 {
        let raw = rate(rt.block_on(raw(n)));
        rounds.push(raw, rate(rt.block_on(bindery_run(n))));
    }
    rounds
}

/// One message at a time, send to handler: the time each took (raw mpsc vs bindery).
async fn raw_latency(n: u64) -> Vec<Duration> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Instant, bindery::Bytes)>(1024);
    let (back_tx, mut back) = tokio::sync::mpsc::channel::<Duration>(1);
    tokio::spawn(async move {
        while let Some((sent, b)) = rx.recv().await {
            let e: Event = serde_json::from_slice(&b).unwrap();
            std::hint::black_box(e.cents);
            let _ = back_tx.send(sent.elapsed()).await;
        }
    });
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        tx.send((Instant::now(), bindery::Bytes::from(serde_json::to_vec(&event(i)).unwrap()))).await.unwrap();
        out.push(back.recv().await.unwrap());
    }
    out
}

async fn bindery_latency(n: u64) -> Vec<Duration> {
    let (back_tx, mut back) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let sink = bindery::Handler::sink("latency", move |e: Message<Event>, _ctx: Context| {
        std::hint::black_box(e.payload().cents);
        let _ = back_tx.send(Instant::now());
        async { Ok::<_, HandlerError>(()) }
    })
    .input("lat-in");
    let config = "[bindings.lat-in]\ndestination = \"lat\"\ngroup = \"g\"\n[bindings.lat-out]\ndestination = \"lat\"\n";
    let app = App::builder()
        .registered_handlers(false)
        .binder("memory", Arc::new(MemoryBinder::new(MemoryBroker::new())))
        .override_binder("memory")
        .config(bindery::Config::from_toml_str(config).unwrap())
        .handler(sink)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let source = app.source::<Event>("lat-out").unwrap();
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let sent = Instant::now();
        source.send(event(i)).await.unwrap();
        out.push(back.recv().await.unwrap() - sent);
    }
    app.shutdown().await.unwrap();
    out
}

/// `bindings` sinks on as many destinations, fed round-robin; returns msg/s over all.
async fn bindings_run(bindings: usize, n: u64) -> f64 {
    let seen = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Notify::new());
    let mut config = String::new();
    let mut builder = App::builder()
        .registered_handlers(false)
        .binder("memory", Arc::new(MemoryBinder::new(MemoryBroker::new())))
        .override_binder("memory");
    for b in 0..bindings {
        config.push_str(&format!(
            "[bindings.in-{b}]\ndestination = \"d{b}\"\ngroup = \"g\"\n[bindings.out-{b}]\ndestination = \"d{b}\"\n"
        ));
        let (seen, done) = (seen.clone(), done.clone());
        builder = builder.handler(
            bindery::Handler::sink(&format!("sink-{b}"), move |e: Message<Event>, _ctx: Context| {
                std::hint::black_box(e.payload().cents);
                if seen.fetch_add(1, Ordering::Relaxed) + 1 == n {
                    done.notify_one();
                }
                async { Ok::<_, HandlerError>(()) }
            })
            .input(&format!("in-{b}")),
        );
    }
    let app = builder.config(bindery::Config::from_toml_str(&config).unwrap()).build().unwrap().start().await.unwrap();
    let sources: Vec<_> = (0..bindings).map(|b| app.source::<Event>(&format!("out-{b}")).unwrap()).collect();
    let finished = done.notified();
    tokio::pin!(finished);
    finished.as_mut().enable();
    let start = Instant::now();
    for i in 0..n {
        sources[i as usize % bindings].send(event(i)).await.unwrap();
    }
    finished.await;
    let rate = n as f64 / start.elapsed().as_secs_f64();
    app.shutdown().await.unwrap();
    rate
}

/// One destination with `partitions` partitions keyed by customer, consumed with concurrency
/// `partitions`; returns msg/s.
async fn partitions_run(partitions: u32, n: u64) -> f64 {
    let seen = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Notify::new());
    let config = format!(
        "[bindings.in]\ndestination = \"p\"\ngroup = \"g\"\n[bindings.in.consumer]\nconcurrency = {partitions}\n[bindings.out]\ndestination = \"p\"\n[bindings.out.producer]\npartition-key = \"/customer\"\npartition-count = {partitions}\n"
    );
    let (s2, d2) = (seen.clone(), done.clone());
    let app = App::builder()
        .registered_handlers(false)
        .binder("memory", Arc::new(MemoryBinder::new(MemoryBroker::new())))
        .override_binder("memory")
        .config(bindery::Config::from_toml_str(&config).unwrap())
        .handler(
            bindery::Handler::sink("keyed", move |e: Message<Event>, _ctx: Context| {
                std::hint::black_box(e.payload().cents);
                if s2.fetch_add(1, Ordering::Relaxed) + 1 == n {
                    d2.notify_one();
                }
                async { Ok::<_, HandlerError>(()) }
            })
            .input("in"),
        )
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let source = app.source::<Event>("out").unwrap();
    let finished = done.notified();
    tokio::pin!(finished);
    finished.as_mut().enable();
    let start = Instant::now();
    for i in 0..n {
        source.send(event(i)).await.unwrap();
    }
    finished.await;
    let rate = n as f64 / start.elapsed().as_secs_f64();
    app.shutdown().await.unwrap();
    rate
}

fn main() {
    let n: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(500_000);
    if let Some(side) = std::env::var_os("BENCH_PROFILE_ONLY") {
        // For profilers (`BENCH_PROFILE_ONLY=bindery|raw`): one side, single-threaded (or on
        // `BENCH_WORKERS` worker threads when set), no report; `partitions`: the keyed scaling
        // run alone, `BENCH_PARTITIONS` partitions on 2 workers.
        if side == "partitions" {
            let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            let p = std::env::var("BENCH_PARTITIONS").ok().and_then(|p| p.parse().ok()).unwrap_or(4);
            println!("{p} partitions: {:.0} msg/s", multi.block_on(partitions_run(p, n)));
            return;
        }
        // Built only for the one-side runs, so a `partitions` run has no idle runtime beside it.
        let rt = match std::env::var("BENCH_WORKERS").ok().and_then(|w| w.parse().ok()) {
            Some(w) => tokio::runtime::Builder::new_multi_thread().worker_threads(w).enable_all().build().unwrap(),
            None => tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
        };
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
        assert_eq!(rt.block_on(raw_latency(10)).len(), 10);
        assert_eq!(rt.block_on(bindery_latency(10)).len(), 10);
        assert!(rt.block_on(bindings_run(3, 300)) > 0.0);
        assert!(rt.block_on(partitions_run(2, 300)) > 0.0);
        println!("throughput bench: smoke run passed (run `cargo bench` for figures)");
        return;
    }
    let single = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let rounds1 = measure(&single, n);
    let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let rounds2 = measure(&multi, n);
    let ((raw1, bindery1), (raw2, bindery2)) = (rounds1.best(), rounds2.best());
    println!("memory binder throughput, {n} messages of ~60 B JSON, best of 5");
    println!("{:<34} {:>14} {:>14} {:>8}", "runtime", "raw msg/s", "bindery msg/s", "ratio");
    println!("{:<34} {:>14.0} {:>14.0} {:>8.2}", "current_thread (1 core)", raw1, bindery1, bindery1 / raw1);
    println!("{:<34} {:>14.0} {:>14.0} {:>8.2}", "multi_thread, 2 workers (2 cores)", raw2, bindery2, bindery2 / raw2);
    println!("ratio of each round: 1 core {}; 2 workers {}", rounds1.shown(), rounds2.shown());
    let rates = |r: &report::Rounds| r.bindery_rates().iter().map(|b| format!("{b:.0}")).collect::<Vec<_>>().join(" ");
    println!("bindery msg/s of each round: 1 core {}; 2 workers {}", rates(&rounds1), rates(&rounds2));

    let lat_n = 20_000;
    let mut raw_lat = single.block_on(raw_latency(lat_n));
    let mut bindery_lat = single.block_on(bindery_latency(lat_n));
    let (rp50, rp99) = report::p50_p99_us(&mut raw_lat);
    let (bp50, bp99) = report::p50_p99_us(&mut bindery_lat);
    println!(
        "latency, one message at a time ({lat_n}): raw p50 {rp50:.1} us p99 {rp99:.1} us; bindery p50 {bp50:.1} us p99 {bp99:.1} us"
    );

    let scale_n = n / 5;
    let bindings: Vec<(usize, f64)> =
        [1, 4, 16, 64].iter().map(|&b| (b, multi.block_on(bindings_run(b, scale_n)))).collect();
    let partitions: Vec<(u32, f64)> =
        [1, 2, 4, 8].iter().map(|&p| (p, multi.block_on(partitions_run(p, scale_n)))).collect();
    println!("scaling ({scale_n} messages, 2 workers):");
    for (b, r) in &bindings {
        println!("  {b:>2} bindings    {r:>12.0} msg/s");
    }
    for (p, r) in &partitions {
        println!("  {p:>2} partitions  {r:>12.0} msg/s");
    }
    let rss = report::peak_rss_kib();
    println!("peak RSS of this run: {rss} KiB");

    let base = serde_json::json!({ "binder": "memory", "broker": "in-process", "payload_bytes": 60, "messages": n });
    let with = |extra: serde_json::Value| {
        let mut v = base.clone();
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        v
    };
    report::record(with(serde_json::json!({ "case": "produce+consume, 1 core", "raw": raw1, "bindery": bindery1,
        "round_ratios": rounds1.ratios(), "bindery_rounds": rounds1.bindery_rates(), "raw_p50_us": rp50, "raw_p99_us": rp99, "bindery_p50_us": bp50,
        "bindery_p99_us": bp99, "peak_rss_kib": rss })));
    report::record(with(serde_json::json!({ "case": "produce+consume, 2 cores", "raw": raw2, "bindery": bindery2,
        "round_ratios": rounds2.ratios(), "peak_rss_kib": rss })));
    for (b, r) in bindings {
        report::record(with(serde_json::json!({ "case": "scaling", "bindings": b, "bindery": r })));
    }
    for (p, r) in partitions {
        report::record(with(serde_json::json!({ "case": "scaling", "partitions": p, "bindery": r })));
    }
}
