//! Kafka-binder throughput against raw rdkafka, in one process run, same broker, same topic
//! (1 partition on tansu, 4 on the mock cluster), 100 B and 512 B JSON payloads.
//!
//! `cargo bench -p bindery-kafka --bench throughput [-- <messages>]` — on librdkafka's mock
//! cluster always, and also on the broker at `BENCH_KAFKA_BROKERS` when set (tansu:
//! `scripts/tansu start`, then `BENCH_KAFKA_BROKERS=127.0.0.1:9092`).
//!
//! - produce: raw `ThreadedProducer` (serialize, enqueue, count delivery reports) vs an
//!   imperative bindery `Source` (`dispatch`, then await every confirmation); both idempotent,
//!   `acks=all`. Again against raw records carrying bindery's one header (`contentType`).
//! - consume with commits: raw `StreamConsumer` loop (decode, store offset, auto-commit) vs a
//!   bindery sink (decode, settle, tracker, store, auto-commit). Both read the same records,
//!   timed from the first record to the last so group joins do not count. Again against a raw
//!   loop that also reads each record's headers, as bindery does (librdkafka parses them only
//!   when asked).
//! - On the mock cluster, consume phases read at most what it keeps of a partition (5 MiB);
//!   produce phases send the full count.
//! - one at a time (100 B): each record sent only after the previous one reached the consumer;
//!   p50/p99 of send-to-handler latency, and the rate that gives.
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
/// `sender_polls`: when not 0, the sending loop also serves ready delivery reports after every
/// that many records, as bindery's producer does (only for profiling: the measured raw side
/// leaves polling to the producer's thread, as a plain `ThreadedProducer` user does).
async fn raw_produce(broker: &Broker, n: u64, size: usize, with_headers: bool, sender_polls: u64) -> Duration {
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
        if sender_polls != 0 && i.is_multiple_of(sender_polls) {
            p.poll(Duration::ZERO);
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

/// `read_headers`: each record's headers are also read, and its `contentType` checked, as
/// every bindery consumer does (librdkafka parses a record's headers only when asked).
async fn raw_consume(broker: &Broker, topic: &str, n: u64, read_headers: bool) -> Duration {
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
        if read_headers {
            use rdkafka::message::Headers as _;
            let json = m.headers().and_then(|h| {
                h.iter().find(|h| h.key == "contentType").map(|h| h.value == Some(&b"application/json"[..]))
            });
            assert_eq!(json, Some(true), "records carry bindery's contentType header");
        }
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

/// The consumers' `fetch.wait.max.ms` in the latency phase: well below the producers' 5 ms
/// linger. With both at 5 ms, a record landed on the broker about when the waiting fetch was
/// answered empty, and whether it made that answer or waited out the next fetch flipped on a
/// few hundred microseconds: the mock cluster's p50 jumped between 5.5 and 10.6 ms from run to
/// run, for either side. At 1 ms both sides measured 6.5–6.6 ms in four runs.
const LATENCY_FETCH_WAIT_MS: &str = "1";

/// One record at a time, 100 B: the time from handing a record to the client until the consumer
/// has it decoded (raw: `ThreadedProducer::send` to `StreamConsumer::recv`; bindery: `dispatch`
/// to the sink handler). Both consumers read without a group (raw: every partition assigned;
/// bindery: an anonymous binding), so no group join or commit is timed; both are in place and
/// have read a first record before the clock runs, and both producers keep librdkafka's default
/// `linger.ms` (5 ms). Both consumers set `fetch.wait.max.ms` to [`LATENCY_FETCH_WAIT_MS`]:
/// neither the mock cluster nor tansu answers a waiting fetch when a record arrives, so with
/// librdkafka's default (500 ms) every record waited out the fetch (p50 501 ms on both sides).
async fn raw_latency(broker: &Broker, n: u64) -> Vec<Duration> {
    let topic = broker.topic().await;
    let c: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.brokers())
        .set("group.id", format!("raw-lat-{}", uuid::Uuid::new_v4().simple()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", LATENCY_FETCH_WAIT_MS)
        .set("log_level", "3")
        .create()
        .unwrap();
    // Every partition of the topic (the mock cluster makes 4; records without a key go to any).
    let metadata = c.fetch_metadata(Some(&topic), Duration::from_secs(30)).unwrap();
    let mut partitions = rdkafka::TopicPartitionList::new();
    for p in metadata.topics()[0].partitions() {
        partitions.add_partition_offset(&topic, p.id(), rdkafka::Offset::Beginning).unwrap();
    }
    c.assign(&partitions).unwrap();
    let p: ThreadedProducer<Counted> =
        producer_config(&broker.brokers()).create_with_context(Counted::default()).unwrap();
    let send = |i: u64| {
        let bytes = serde_json::to_vec(&event(i, 100)).unwrap();
        let headers = OwnedHeaders::new_with_capacity(1)
            .insert(Header { key: "contentType", value: Some(&b"application/json"[..]) });
        p.send(BaseRecord::<(), [u8], ()>::to(&topic).payload(&bytes[..]).headers(headers))
            .map_err(|(e, _)| e)
            .unwrap();
    };
    send(0);
    within("raw latency warm-up", c.recv()).await.unwrap();
    let mut samples = Vec::with_capacity(n as usize);
    for i in 1..=n {
        let start = Instant::now();
        send(i);
        let m = within("raw latency record", c.recv()).await.unwrap();
        let e: Event = serde_json::from_slice(m.payload().unwrap()).unwrap();
        samples.push(start.elapsed());
        assert_eq!(e.id, i, "raw latency: records arrive in order");
    }
    samples
}

async fn bindery_latency(broker: &Broker, n: u64) -> Vec<Duration> {
    let topic = broker.topic().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    let sink = Handler::sink("latency", move |e: Message<Event>, _ctx: Context| {
        let tx = tx.clone();
        async move {
            let _ = tx.send((e.payload().id, Instant::now()));
            Ok::<_, HandlerError>(())
        }
    })
    .input("in");
    let toml = format!(
        "[bindings.in]\ndestination = \"{topic}\"\n[bindings.in.options.config]\n\"fetch.wait.max.ms\" = \"{LATENCY_FETCH_WAIT_MS}\"\n[bindings.out]\ndestination = \"{topic}\"\n"
    );
    let a = app(broker, &toml, vec![sink]).await;
    let source = a.source::<Event>("out").unwrap();
    source.send(event(0, 100)).await.unwrap();
    within("bindery latency warm-up", rx.recv()).await.unwrap();
    let mut samples = Vec::with_capacity(n as usize);
    for i in 1..=n {
        let start = Instant::now();
        let confirmation = source.dispatch(Message::new(event(i, 100))).await.unwrap();
        let (id, at) = within("bindery latency record", rx.recv()).await.unwrap();
        samples.push(at.duration_since(start));
        assert_eq!(id, i, "bindery latency: records arrive in order");
        confirmation.await.unwrap();
    }
    a.shutdown().await.unwrap();
    samples
}

struct Figures {
    produce: report::Rounds,
    /// Raw produce with bindery's headers, and bindery's produce again.
    produce_same_headers: report::Rounds,
    consume: report::Rounds,
    /// Raw consume reading each record's headers, and bindery's consume again.
    consume_same_headers: report::Rounds,
}

/// `rounds` rounds of every phase; produce phases send `n_produce` records, consume phases
/// read `n_consume`. The report takes each side's best round.
async fn measure(broker: &Broker, n_produce: u64, n_consume: u64, size: usize, rounds: usize) -> Figures {
    let produced = |d: Duration| n_produce as f64 / d.as_secs_f64();
    let consumed = |d: Duration| n_consume as f64 / d.as_secs_f64();
    let mut f = Figures {
        produce: Default::default(),
        produce_same_headers: Default::default(),
        consume: Default::default(),
        consume_same_headers: Default::default(),
    };
    // One topic both consumers read, filled by bindery (so records carry bindery's headers).
    let topic = broker.topic().await;
    bindery_produce(broker, n_consume - 1, size, Some(topic.clone())).await; // plus its warm-up record
    for _ in 0..rounds {
        let p_raw = produced(raw_produce(broker, n_produce, size, false, 0).await);
        let p_b = produced(bindery_produce(broker, n_produce, size, None).await);
        let p_raw_h = produced(raw_produce(broker, n_produce, size, true, 0).await);
        let c_raw = consumed(raw_consume(broker, &topic, n_consume, false).await);
        let c_b = consumed(bindery_consume(broker, &topic, n_consume).await);
        let c_raw_h = consumed(raw_consume(broker, &topic, n_consume, true).await);
        f.produce.push(p_raw, p_b);
        f.produce_same_headers.push(p_raw_h, p_b);
        f.consume.push(c_raw, c_b);
        f.consume_same_headers.push(c_raw_h, c_b);
    }
    f
}

/// The report's rows for one broker and size: (case, messages, rounds).
fn rows(f: &Figures, n_produce: u64, n_consume: u64) -> [(&'static str, u64, &report::Rounds); 4] {
    [
        ("produce", n_produce, &f.produce),
        ("produce vs raw with the same headers", n_produce, &f.produce_same_headers),
        ("consume + commit", n_consume, &f.consume),
        ("consume vs raw reading the headers", n_consume, &f.consume_same_headers),
    ]
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
    // Best of five: single phases on this 2-core machine move by a third from run to run.
    let rounds = if full { 5 } else { 1 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::env::var("BENCH_WORKERS").ok().and_then(|v| v.parse().ok()).unwrap_or(2))
        .enable_all()
        .build()
        .unwrap();
    if let Ok(side) = std::env::var("BENCH_PROFILE_ONLY") {
        // For profilers (`BENCH_PROFILE_ONLY=produce|consume|raw-produce|raw-produce-bare|
        // raw-produce-sender-polls|raw-consume`): one side only (`raw-produce` with bindery's
        // header, `raw-produce-bare` without, `raw-produce-sender-polls` with the header and the
        // sending loop serving delivery reports every 8 records), three times, no report, with
        // `BENCH_SIZE`-byte payloads (100 when unset); on the broker at `BENCH_KAFKA_BROKERS`
        // when set, else on the mock cluster. `latency`: the one-at-a-time phase alone, both sides.
        let broker = match std::env::var("BENCH_KAFKA_BROKERS") {
            Ok(b) => Broker::Real(b),
            Err(_) => Broker::Mock(Arc::new(support::Mock::new())),
        };
        if side == "latency" {
            // One-at-a-time latency alone: raw, then bindery, p50/p99 of `n` records each.
            for _ in 0..2 {
                let (r50, r99) = report::p50_p99_us(&mut rt.block_on(raw_latency(&broker, n)));
                let (b50, b99) = report::p50_p99_us(&mut rt.block_on(bindery_latency(&broker, n)));
                println!(
                    "latency: raw p50 {r50:.0} us p99 {r99:.0} us; bindery p50 {b50:.0} us p99 {b99:.0} us ({n} records)"
                );
            }
            return;
        }
        // Payload size from `BENCH_SIZE` (100 B when unset). The mock cluster's retention
        // bounds what a consumer can read back, not what a producer can send.
        let size = std::env::var("BENCH_SIZE").ok().and_then(|s| s.parse().ok()).unwrap_or(100);
        let n =
            if matches!(broker, Broker::Mock(_)) && side.ends_with("consume") { n.min(mock_retained(size)) } else { n };
        rt.block_on(async {
            let topic = broker.topic().await;
            if side.ends_with("consume") {
                bindery_produce(&broker, n - 1, size, Some(topic.clone())).await;
            }
            for _ in 0..3 {
                let d = match side.as_str() {
                    "consume" => bindery_consume(&broker, &topic, n).await,
                    "raw-consume" => raw_consume(&broker, &topic, n, false).await,
                    "raw-produce" => raw_produce(&broker, n, size, true, 0).await,
                    "raw-produce-bare" => raw_produce(&broker, n, size, false, 0).await,
                    "raw-produce-sender-polls" => raw_produce(&broker, n, size, true, 8).await,
                    _ => bindery_produce(&broker, n, size, None).await,
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
            // The mock cluster drops a partition's oldest records beyond 5 MiB: that bounds what
            // a consumer can read back, not what a producer can send.
            let n_consume = if *name == "mock" { n.min(mock_retained(size)) } else { n };
            let f = rt.block_on(measure(broker, n, n_consume, size, rounds));
            let broker_label = if *name == "mock" { "librdkafka MockCluster" } else { "tansu 0.6.0" };
            for (case, messages, rounds) in rows(&f, n, n_consume) {
                let (raw, bindery) = rounds.best();
                let each = rounds.shown();
                println!(
                    "{name:<8} {size:>4} B  {case:<36} raw {raw:>10.0} msg/s  bindery {bindery:>10.0} msg/s  ratio {:>5.2}  ({messages} msgs; rounds {each})",
                    bindery / raw
                );
                if full {
                    report::record(serde_json::json!({ "binder": "kafka", "broker": broker_label, "case": case,
                        "payload_bytes": size, "messages": messages, "raw": raw, "bindery": bindery,
                        "round_ratios": rounds.ratios(), "peak_rss_kib": report::peak_rss_kib() }));
                }
            }
        }
        let lat_n = if full { 500 } else { 20 };
        let (mut raw_lat, mut b_lat) = (Vec::new(), Vec::new());
        for _ in 0..rounds.min(2) {
            raw_lat.extend(rt.block_on(raw_latency(broker, lat_n)));
            b_lat.extend(rt.block_on(bindery_latency(broker, lat_n)));
        }
        let mean = |v: &[Duration]| v.iter().sum::<Duration>().as_secs_f64() / v.len() as f64;
        let (raw_rate, b_rate) = (1.0 / mean(&raw_lat), 1.0 / mean(&b_lat));
        let (r50, r99) = report::p50_p99_us(&mut raw_lat);
        let (b50, b99) = report::p50_p99_us(&mut b_lat);
        println!(
            "{name:<8}  100 B  one at a time       raw p50 {r50:>8.0} us p99 {r99:>8.0} us  bindery p50 {b50:>8.0} us p99 {b99:>8.0} us  ({} records)",
            raw_lat.len()
        );
        if full {
            let broker_label = if *name == "mock" { "librdkafka MockCluster" } else { "tansu 0.6.0" };
            report::record(serde_json::json!({ "binder": "kafka", "broker": broker_label,
                "case": "one at a time, send to handler", "payload_bytes": 100, "messages": raw_lat.len(),
                "raw": raw_rate, "bindery": b_rate, "raw_p50_us": r50, "raw_p99_us": r99,
                "bindery_p50_us": b50, "bindery_p99_us": b99, "peak_rss_kib": report::peak_rss_kib() }));
        }
    }
    if !full {
        println!("throughput bench: smoke run passed (run `cargo bench -p bindery-kafka` for figures)");
    }
}
