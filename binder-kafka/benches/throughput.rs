//! Kafka-binder throughput against raw rdkafka, in one process run, same broker, same topic
//! shape (1 partition), 100 B and 512 B JSON payloads.
//!
//! `cargo bench -p bindery-kafka --bench throughput [-- <messages>]` — on librdkafka's mock
//! cluster always, and also on the broker at `BENCH_KAFKA_BROKERS` when set (tansu:
//! `scripts/tansu start`, then `BENCH_KAFKA_BROKERS=127.0.0.1:9092`).
//!
//! - produce: raw `ThreadedProducer` (serialize, enqueue, count delivery reports) vs an
//!   imperative bindery `Source` (`dispatch`, then await every confirmation); both idempotent,
//!   `acks=all`.
//! - consume with commits: raw `StreamConsumer` loop (decode, store offset, auto-commit) vs a
//!   bindery sink (decode, settle, tracker, store, auto-commit). Both read the same records,
//!   timed from the first record to the last so group joins do not count.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "../../bench-support/report.rs"]
mod report;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bindery::binder::ProducerSpec;
use bindery::{App, Binder, Config, Context, Handler, HandlerError, Message, RunningApp};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext, Message as _};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

#[derive(Clone, Serialize, Deserialize)]
struct Event {
    id: u64,
    customer: String,
    pad: String,
}

fn event(i: u64, size: usize) -> Event {
    // {"id":…,"customer":"customer-…","pad":"…"} padded to about `size` bytes.
    let base = 40;
    Event { id: i, customer: format!("customer-{}", i % 1000), pad: "x".repeat(size.saturating_sub(base)) }
}

enum Broker {
    Mock(Arc<support::Mock>),
    Real(String),
}

impl Broker {
    fn brokers(&self) -> String {
        match self {
            Broker::Mock(m) => m.bootstrap.clone(),
            Broker::Real(b) => b.clone(),
        }
    }

    fn binder(&self) -> Arc<dyn Binder> {
        match self {
            Broker::Mock(m) => support::mock_binder(m),
            Broker::Real(b) => support::binder(b),
        }
    }

    async fn topic(&self) -> String {
        let t = format!("bench-{}", uuid::Uuid::new_v4().simple());
        self.binder().bind_producer(&ProducerSpec::output("bench", t.clone())).await.unwrap();
        t
    }
}

fn producer_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set("log_level", "3");
    c
}

#[derive(Default)]
struct Counted(Arc<(AtomicU64, Notify, AtomicU64)>);
impl ClientContext for Counted {}
impl ProducerContext for Counted {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        if r.is_err() {
            self.0.2.fetch_add(1, Ordering::Relaxed);
        }
        self.0.0.fetch_add(1, Ordering::Relaxed);
        self.0.1.notify_one();
    }
}

/// Waits for `f` with a deadline, naming the phase if it never finishes.
async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(120), f).await {
        Ok(v) => v,
        Err(_) => panic!("benchmark phase `{what}` did not finish within 120 s"),
    }
}

/// `with_headers`: each record also carries the `contentType` header bindery's records carry
/// (the only header a bindery source writes to Kafka), for a like-for-like comparison.
async fn raw_produce(broker: &Broker, n: u64, size: usize, with_headers: bool) -> Duration {
    let topic = broker.topic().await;
    let counted = Counted::default();
    let done = counted.0.clone();
    let p: ThreadedProducer<Counted> = producer_config(&broker.brokers()).create_with_context(counted).unwrap();
    // Connect and get the producer id before the clock starts (bindery's producer is bound,
    // and so connected, before its clock starts too).
    p.send(BaseRecord::<(), [u8], ()>::to(&topic).payload(&b"{}"[..])).map_err(|(e, _)| e).unwrap();
    within("raw producer warm-up", async {
        while done.0.load(Ordering::Relaxed) < 1 {
            let _ = tokio::time::timeout(Duration::from_millis(10), done.1.notified()).await;
        }
    })
    .await;
    let start = Instant::now();
    for i in 0..n {
        let bytes = serde_json::to_vec(&event(i, size)).unwrap();
        let mut rec = BaseRecord::<(), [u8], ()>::to(&topic).payload(&bytes[..]);
        if with_headers {
            rec = rec.headers(
                OwnedHeaders::new_with_capacity(1)
                    .insert(Header { key: "contentType", value: Some(&b"application/json"[..]) }),
            );
        }
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    tokio::time::sleep(Duration::from_millis(1)).await; // queue full
                }
            }
        }
    }
    within("raw produce deliveries", async {
        while done.0.load(Ordering::Relaxed) < n + 1 {
            let _ = tokio::time::timeout(Duration::from_millis(10), done.1.notified()).await;
        }
    })
    .await;
    assert_eq!(done.2.load(Ordering::Relaxed), 0, "raw deliveries failed");
    start.elapsed()
}

async fn app(broker: &Broker, toml: &str, handlers: Vec<Handler>) -> RunningApp {
    let mut b = App::builder()
        .registered_handlers(false)
        .binder("k", broker.binder())
        .override_binder("k")
        .config(Config::from_toml_str_with_env(toml, []).unwrap());
    for h in handlers {
        b = b.handler(h);
    }
    b.build().unwrap().start().await.unwrap()
}

async fn bindery_produce(broker: &Broker, n: u64, size: usize, topic: Option<String>) -> Duration {
    let topic = match topic {
        Some(t) => t,
        None => broker.topic().await,
    };
    let a = app(broker, &format!("[bindings.out]\ndestination = \"{topic}\"\n"), Vec::new()).await;
    let source = a.source::<Event>("out").unwrap();
    // Bind and connect the producer (and get its idempotent producer id) before the clock
    // starts, as the raw side does: a new producer's first delivery takes ~0.5 s.
    within("bindery producer warm-up", source.send(event(0, size))).await.unwrap();
    let start = Instant::now();
    let mut pending = Vec::with_capacity(n as usize);
    for i in 0..n {
        pending.push(source.dispatch(Message::new(event(i, size))).await.unwrap());
    }
    within("bindery produce confirmations", async {
        for c in pending {
            c.await.unwrap();
        }
    })
    .await;
    let elapsed = start.elapsed();
    a.shutdown().await.unwrap();
    elapsed
}

async fn raw_consume(broker: &Broker, topic: &str, n: u64) -> Duration {
    let c: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.brokers())
        .set("group.id", format!("raw-{}", uuid::Uuid::new_v4().simple()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.commit.interval.ms", "1000")
        .set("session.timeout.ms", "6000")
        .set("log_level", "3")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    let mut start = None;
    let mut sum = 0u64;
    for i in 0..n {
        let m = within(&format!("raw consume (record {i} of {n})"), c.recv()).await.unwrap();
        start.get_or_insert_with(Instant::now);
        let e: Event = serde_json::from_slice(m.payload().unwrap()).unwrap();
        sum = sum.wrapping_add(e.id);
        c.store_offset_from_message(&m).unwrap();
    }
    std::hint::black_box(sum);
    start.unwrap().elapsed()
}

async fn bindery_consume(broker: &Broker, topic: &str, n: u64) -> Duration {
    let seen = Arc::new((AtomicU64::new(0), Notify::new(), std::sync::Mutex::new(None::<Instant>)));
    let s = seen.clone();
    let sink = Handler::sink("bench", move |e: Message<Event>, _ctx: Context| {
        let s = s.clone();
        async move {
            std::hint::black_box(e.payload().id);
            if s.0.fetch_add(1, Ordering::Relaxed) == 0 {
                *s.2.lock().unwrap() = Some(Instant::now());
            }
            if s.0.load(Ordering::Relaxed) >= n {
                s.1.notify_one();
            }
            Ok::<_, HandlerError>(())
        }
    })
    .input("in");
    let group = format!("bindery-{}", uuid::Uuid::new_v4().simple());
    let toml = format!("[bindings.in]\ndestination = \"{topic}\"\ngroup = \"{group}\"\n");
    let wait = seen.1.notified();
    tokio::pin!(wait);
    wait.as_mut().enable();
    let a = app(broker, &toml, vec![sink]).await;
    if tokio::time::timeout(Duration::from_secs(120), wait).await.is_err() {
        panic!(
            "benchmark phase `bindery consume` did not finish within 120 s: {} of {n} records handled",
            seen.0.load(Ordering::Relaxed)
        );
    }
    let elapsed = seen.2.lock().unwrap().unwrap().elapsed();
    a.shutdown().await.unwrap();
    elapsed
}

struct Figures {
    produce: (f64, f64),
    /// Raw produce with bindery's headers, and bindery's produce again.
    produce_same_headers: (f64, f64),
    consume: (f64, f64),
}

async fn measure(broker: &Broker, n: u64, size: usize, rounds: usize) -> Figures {
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let (mut p_raw, mut p_b, mut c_raw, mut c_b, mut p_raw_h) = (0f64, 0f64, 0f64, 0f64, 0f64);
    // One topic both consumers read, filled by bindery (so records carry bindery's headers).
    let topic = broker.topic().await;
    bindery_produce(broker, n - 1, size, Some(topic.clone())).await; // plus its warm-up record
    for _ in 0..rounds {
        p_raw = p_raw.max(rate(raw_produce(broker, n, size, false).await));
        p_b = p_b.max(rate(bindery_produce(broker, n, size, None).await));
        p_raw_h = p_raw_h.max(rate(raw_produce(broker, n, size, true).await));
        c_raw = c_raw.max(rate(raw_consume(broker, &topic, n).await));
        c_b = c_b.max(rate(bindery_consume(broker, &topic, n).await));
    }
    Figures { produce: (p_raw, p_b), produce_same_headers: (p_raw_h, p_b), consume: (c_raw, c_b) }
}

fn report(name: &str, n: u64, size: usize, f: &Figures) {
    for (what, (raw, b)) in
        [("produce", f.produce), ("produce (same hdrs)", f.produce_same_headers), ("consume+commit", f.consume)]
    {
        println!(
            "{name:<8} {size:>4} B  {what:<19} raw {raw:>10.0} msg/s  bindery {b:>10.0} msg/s  ratio {:>5.2}  ({n} msgs)",
            b / raw
        );
    }
}

/// How many records of about `size` payload bytes one mock-cluster partition keeps.
///
/// librdkafka's mock broker keeps at most 5 MiB of record batches per partition and drops the
/// oldest beyond that (`rdkafka_mock.c`, `max_size`). A consume phase that reads more than that
/// from the start of a topic silently misses the dropped records and waits forever for its
/// count, which is how the earlier "raw 512 B consume did not finish" stalls came about. Runs
/// on the mock cluster stay under 4 MiB (bindery's headers add about 150 bytes a record).
fn mock_retained(size: usize) -> u64 {
    (4 << 20) / (size as u64 + 150)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(if full { 50_000 } else { 200 });
    let rounds = if full { 3 } else { 1 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::env::var("BENCH_WORKERS").ok().and_then(|v| v.parse().ok()).unwrap_or(2))
        .enable_all()
        .build()
        .unwrap();
    if let Ok(side) = std::env::var("BENCH_PROFILE_ONLY") {
        // For profilers (`BENCH_PROFILE_ONLY=produce|consume|raw-produce|raw-consume`): one
        // side only (raw produce with bindery's header), on the mock cluster, three times, no
        // report.
        let broker = Broker::Mock(Arc::new(support::Mock::new()));
        let n = n.min(mock_retained(100));
        rt.block_on(async {
            let topic = broker.topic().await;
            if side.ends_with("consume") {
                bindery_produce(&broker, n - 1, 100, Some(topic.clone())).await;
            }
            for _ in 0..3 {
                let d = match side.as_str() {
                    "consume" => bindery_consume(&broker, &topic, n).await,
                    "raw-consume" => raw_consume(&broker, &topic, n).await,
                    "raw-produce" => raw_produce(&broker, n, 100, true).await,
                    _ => bindery_produce(&broker, n, 100, None).await,
                };
                println!("{side} only: {:.0} msg/s", n as f64 / d.as_secs_f64());
            }
        });
        return;
    }
    let mut brokers = vec![("mock", Broker::Mock(Arc::new(support::Mock::new())))];
    if let Ok(b) = std::env::var("BENCH_KAFKA_BROKERS") {
        brokers.push(("real", Broker::Real(b)));
    }
    for (name, broker) in &brokers {
        for size in [100usize, 512] {
            let n = if *name == "mock" { n.min(mock_retained(size)) } else { n };
            let f = rt.block_on(measure(broker, n, size, rounds));
            if full {
                report(name, n, size, &f);
                let broker_label = if *name == "mock" { "librdkafka MockCluster" } else { "tansu 0.6.0" };
                for (case, (raw, bindery)) in [
                    ("produce", f.produce),
                    ("produce vs raw with the same headers", f.produce_same_headers),
                    ("consume + commit", f.consume),
                ] {
                    report::record(serde_json::json!({ "binder": "kafka", "broker": broker_label, "case": case,
                        "payload_bytes": size, "messages": n, "raw": raw, "bindery": bindery,
                        "peak_rss_kib": report::peak_rss_kib() }));
                }
            }
        }
    }
    if !full {
        println!("throughput bench: smoke run passed (run `cargo bench -p bindery-kafka` for figures)");
    }
}
