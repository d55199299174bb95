//! RabbitMQ binder throughput and latency against raw lapin, in one process, on one broker.
//!
//! `scripts/rabbitmq start`, then `cargo bench -p bindery-rabbit --bench throughput [-- <messages>]`
//! (`TEST_RABBIT_URI` for another broker).
//!
//! Both sides move the same ~100-byte JSON payload, persistent, with publisher confirms and
//! prefetch 256, through a durable topic exchange into a durable queue:
//! - produce: publish `n` messages keeping up to 1,000 unconfirmed, until all are confirmed
//!   (raw: `basic_publish` + `PublisherConfirm`; bindery: `Source::dispatch` + `Confirmation`);
//! - consume: drain the `n` messages, decoding each (raw: `basic_consume`, `serde_json`, one
//!   `basic_ack` per delivery; bindery: a sink handler, acks by the runtime);
//! - latency: one message at a time, publish → handler, p50/p99 over 2,000 messages.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../../bench-support/report.rs"]
mod report;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bindery::prelude::*;
use bindery::{Context, Handler, HandlerError};
use bindery_rabbit::{RabbitBinder, RabbitOptions};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::Notify;

const WINDOW: usize = 1_000;
const PREFETCH: u16 = 256;

#[derive(Clone, Serialize, Deserialize)]
struct Event {
    id: u64,
    customer: String,
    cents: u64,
    sent_ns: u64,
    note: String,
}

fn epoch() -> &'static Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

fn event(i: u64) -> Event {
    Event {
        id: i,
        customer: format!("customer-{:04}", i % 1000),
        cents: i * 7,
        sent_ns: now_ns(),
        note: "x".repeat(24),
    }
}

fn uri() -> String {
    std::env::var("TEST_RABBIT_URI").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

async fn connect() -> Connection {
    match Connection::connect(&uri(), ConnectionProperties::default()).await {
        Ok(c) => c,
        Err(e) => panic!("RabbitMQ not reachable ({e}); start it with `scripts/rabbitmq start`"),
    }
}

/// A durable topic exchange and a durable queue `<exchange>.bench` bound with `#`, declared
/// with the arguments the binder gives group queues (so both sides store the same way).
async fn declare(conn: &Connection, exchange: &str) -> String {
    let ch = conn.create_channel().await.unwrap();
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    ch.exchange_declare(exchange.into(), ExchangeKind::Topic, durable, FieldTable::default()).await.unwrap();
    let queue = format!("{exchange}.bench");
    let mut args = FieldTable::default();
    args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("DLX".into()));
    args.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(queue.as_str().into()));
    let qd = QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare(queue.as_str().into(), qd, args).await.unwrap();
    ch.queue_bind(
        queue.as_str().into(),
        exchange.into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    queue
}

async fn cleanup(conn: &Connection, exchange: &str) {
    let ch = conn.create_channel().await.unwrap();
    let _ = ch.queue_delete(format!("{exchange}.bench").as_str().into(), QueueDeleteOptions::default()).await;
    let _ = ch.queue_delete(format!("{exchange}.bench.dlq").as_str().into(), QueueDeleteOptions::default()).await;
    let _ = ch.exchange_delete(exchange.into(), Default::default()).await;
}

struct Figures {
    produce: f64,
    consume: f64,
    p50: Duration,
    p99: Duration,
}

// ---------------------------------------------------------------- raw lapin

async fn raw_publish(ch: &lapin::Channel, exchange: &str, i: u64) -> lapin::PublisherConfirm {
    let body = serde_json::to_vec(&event(i)).unwrap();
    let props = BasicProperties::default().with_content_type("application/json".into()).with_delivery_mode(2);
    ch.basic_publish(exchange.into(), exchange.into(), BasicPublishOptions::default(), &body, props).await.unwrap()
}

async fn raw(n: u64, latency_samples: u64) -> Figures {
    let conn = connect().await;
    let exchange = format!("bench-raw-{}", uuid::Uuid::new_v4().simple());
    let queue = declare(&conn, &exchange).await;
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();

    let start = Instant::now();
    let mut pending = VecDeque::with_capacity(WINDOW);
    for i in 0..n {
        if pending.len() >= WINDOW {
            let c: lapin::PublisherConfirm = pending.pop_front().unwrap();
            assert!(c.await.unwrap().is_ack());
        }
        pending.push_back(raw_publish(&ch, &exchange, i).await);
    }
    for c in pending {
        assert!(c.await.unwrap().is_ack());
    }
    let produce = n as f64 / start.elapsed().as_secs_f64();

    let cch = conn.create_channel().await.unwrap();
    cch.basic_qos(PREFETCH, BasicQosOptions::default()).await.unwrap();
    let start = Instant::now();
    let mut consumer = cch
        .basic_consume(queue.as_str().into(), "raw-bench".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let mut sum = 0u64;
    for _ in 0..n {
        let d = consumer.next().await.unwrap().unwrap();
        let e: Event = serde_json::from_slice(&d.data).unwrap();
        sum = sum.wrapping_add(e.cents);
        d.acker.ack(BasicAckOptions::default()).await.unwrap();
    }
    let consume = n as f64 / start.elapsed().as_secs_f64();
    std::hint::black_box(sum);

    // Latency: one message at a time, received by a consumer task as the sink would be.
    let received = Arc::new(Notify::new());
    let (r, lat_tx) = (received.clone(), std::sync::Arc::new(std::sync::Mutex::new(Vec::new())));
    let lat_out = lat_tx.clone();
    let reader = tokio::spawn(async move {
        for _ in 0..latency_samples {
            let d = consumer.next().await.unwrap().unwrap();
            let e: Event = serde_json::from_slice(&d.data).unwrap();
            lat_out.lock().unwrap().push(now_ns() - e.sent_ns);
            d.acker.ack(BasicAckOptions::default()).await.unwrap();
            r.notify_one();
        }
    });
    for i in 0..latency_samples {
        raw_publish(&ch, &exchange, i).await.await.unwrap();
        received.notified().await;
    }
    reader.await.unwrap();
    let mut lat: Vec<Duration> = lat_tx.lock().unwrap().drain(..).map(Duration::from_nanos).collect();
    cleanup(&conn, &exchange).await;
    let _ = conn.close(200, "bench done".into()).await;
    Figures { produce, consume, p50: report::percentile(&mut lat, 0.5), p99: report::percentile(&mut lat, 0.99) }
}

/// Raw lapin publishing the headers bindery puts on every message (`id`, `timestamp`): what
/// the message format itself costs the broker, apart from the framework.
async fn raw_produce_with_headers(n: u64) -> f64 {
    let conn = connect().await;
    let exchange = format!("bench-rawh-{}", uuid::Uuid::new_v4().simple());
    declare(&conn, &exchange).await;
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let start = Instant::now();
    let mut pending = VecDeque::with_capacity(WINDOW);
    for i in 0..n {
        if pending.len() >= WINDOW {
            let c: lapin::PublisherConfirm = pending.pop_front().unwrap();
            assert!(c.await.unwrap().is_ack());
        }
        let body = serde_json::to_vec(&event(i)).unwrap();
        let mut headers = FieldTable::default();
        headers.insert("id".into(), AMQPValue::LongString(uuid::Uuid::new_v4().to_string().into()));
        headers.insert("timestamp".into(), AMQPValue::LongString(now_ns().to_string().into()));
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_headers(headers);
        let c = ch
            .basic_publish(
                exchange.as_str().into(),
                exchange.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                props,
            )
            .await
            .unwrap();
        pending.push_back(c);
    }
    for c in pending {
        assert!(c.await.unwrap().is_ack());
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    cleanup(&conn, &exchange).await;
    let _ = conn.close(200, "bench done".into()).await;
    rate
}

// ---------------------------------------------------------------- bindery

struct Counter {
    seen: AtomicU64,
    target: AtomicU64,
    done: Notify,
    latencies: std::sync::Mutex<Vec<u64>>,
    record_latency: std::sync::atomic::AtomicBool,
}

fn binder() -> Arc<RabbitBinder> {
    Arc::new(RabbitBinder::new(RabbitOptions::new(uri())).unwrap())
}

async fn bindery_run(n: u64, latency_samples: u64) -> Figures {
    let conn = connect().await;
    let exchange = format!("bench-bindery-{}", uuid::Uuid::new_v4().simple());
    declare(&conn, &exchange).await;
    let producer = App::builder()
        .registered_handlers(false)
        .binder("rabbit", binder())
        .override_binder("rabbit")
        .config(bindery::Config::from_toml_str(&format!("[bindings.out]\ndestination = \"{exchange}\"\n")).unwrap())
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let source = producer.source::<Event>("out").unwrap();
    // The output binding is bound on first use: do that before timing, as the raw side opens
    // its channel before timing. The consumer then drains n + 1 messages.
    source.send(event(n)).await.unwrap();
    let n_in_queue = n + 1;

    let start = Instant::now();
    let mut pending = VecDeque::with_capacity(WINDOW);
    for i in 0..n {
        if pending.len() >= WINDOW {
            let c: bindery::binder::Confirmation = pending.pop_front().unwrap();
            c.await.unwrap();
        }
        pending.push_back(source.dispatch(Message::new(event(i))).await.unwrap());
    }
    for c in pending {
        c.await.unwrap();
    }
    let produce = n as f64 / start.elapsed().as_secs_f64();

    let counter = Arc::new(Counter {
        seen: AtomicU64::new(0),
        target: AtomicU64::new(n_in_queue),
        done: Notify::new(),
        latencies: std::sync::Mutex::new(Vec::new()),
        record_latency: false.into(),
    });
    let c = counter.clone();
    let sink = Handler::sink("bench", move |m: Message<Event>, _ctx: Context| {
        let c = c.clone();
        async move {
            let e = m.into_payload();
            if c.record_latency.load(Ordering::Relaxed) {
                c.latencies.lock().unwrap().push(now_ns() - e.sent_ns);
            }
            std::hint::black_box(e.cents);
            if c.seen.fetch_add(1, Ordering::Relaxed) + 1 == c.target.load(Ordering::Relaxed) {
                c.done.notify_one();
            }
            Ok::<_, HandlerError>(())
        }
    })
    .input("in");
    let config = format!(
        "[bindings.in]\ndestination = \"{exchange}\"\ngroup = \"bench\"\n[bindings.in.options]\nprefetch = {PREFETCH}\n"
    );
    let finished = counter.done.notified();
    tokio::pin!(finished);
    finished.as_mut().enable();
    let start = Instant::now();
    let consumer = App::builder()
        .registered_handlers(false)
        .binder("rabbit", binder())
        .override_binder("rabbit")
        .config(bindery::Config::from_toml_str(&config).unwrap())
        .handler(sink)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    finished.await;
    let consume = n_in_queue as f64 / start.elapsed().as_secs_f64();

    counter.record_latency.store(true, Ordering::Relaxed);
    for i in 0..latency_samples {
        counter.target.store(n_in_queue + i + 1, Ordering::Relaxed);
        let finished = counter.done.notified();
        tokio::pin!(finished);
        finished.as_mut().enable();
        source.send(event(i)).await.unwrap();
        finished.await;
    }
    let mut lat: Vec<Duration> = counter.latencies.lock().unwrap().drain(..).map(Duration::from_nanos).collect();
    consumer.shutdown().await.unwrap();
    producer.shutdown().await.unwrap();
    cleanup(&conn, &exchange).await;
    let _ = conn.close(200, "bench done".into()).await;
    Figures { produce, consume, p50: report::percentile(&mut lat, 0.5), p99: report::percentile(&mut lat, 0.99) }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // in debug mode, where figures mean nothing: there it only checks both paths work.
    if !std::env::args().any(|a| a == "--bench") {
        rt.block_on(raw(200, 10));
        rt.block_on(raw_produce_with_headers(200));
        rt.block_on(bindery_run(200, 10));
        println!("throughput bench: smoke run passed against RabbitMQ (run `cargo bench` for figures)");
        return;
    }
    let n: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(30_000);
    if let Some(side) = std::env::var_os("BENCH_PROFILE_ONLY") {
        // For profilers (`BENCH_PROFILE_ONLY=bindery|raw`): one side, no report.
        let f = if side == "raw" { rt.block_on(raw(n, 10)) } else { rt.block_on(bindery_run(n, 10)) };
        println!("{} only: produce {:.0} msg/s, consume {:.0} msg/s", side.to_string_lossy(), f.produce, f.consume);
        return;
    }
    let samples = 2_000;
    println!(
        "RabbitMQ at {}: {n} messages of ~100 B JSON, confirms on, prefetch {PREFETCH}",
        bindery_rabbit::SecretUri::new(uri())
    );
    // Warm up, then alternate sides and keep each side's best of three.
    rt.block_on(raw(n / 10, 100));
    rt.block_on(bindery_run(n / 10, 100));
    let mut best: [Option<Figures>; 2] = [None, None];
    let (mut produced, mut consumed, mut produced_same) =
        (report::Rounds::default(), report::Rounds::default(), report::Rounds::default());
    for round in 0..3 {
        let r = rt.block_on(raw(n, samples));
        let h = rt.block_on(raw_produce_with_headers(n));
        let b = rt.block_on(bindery_run(n, samples));
        produced.push(r.produce, b.produce);
        consumed.push(r.consume, b.consume);
        produced_same.push(h, b.produce);
        println!(
            "round {round}: raw {:.0}/{:.0} msg/s (p99 {:?}), raw+headers {h:.0} msg/s, bindery {:.0}/{:.0} msg/s (p99 {:?})",
            r.produce, r.consume, r.p99, b.produce, b.consume, b.p99
        );
        for (slot, f) in best.iter_mut().zip([r, b]) {
            *slot = Some(match slot.take() {
                None => f,
                Some(old) => Figures {
                    produce: old.produce.max(f.produce),
                    consume: old.consume.max(f.consume),
                    p50: old.p50.min(f.p50),
                    p99: old.p99.min(f.p99),
                },
            });
        }
    }
    let [Some(r), Some(b)] = best else { unreachable!() };
    let with_headers = produced_same.best().0;
    println!();
    println!("{:<10} {:>14} {:>14} {:>12} {:>12}", "", "produce msg/s", "consume msg/s", "p50", "p99");
    println!("{:<10} {:>14.0} {:>14.0} {:>12?} {:>12?}", "raw lapin", r.produce, r.consume, r.p50, r.p99);
    println!("{:<10} {:>14.0} {:>14.0} {:>12?} {:>12?}", "bindery", b.produce, b.consume, b.p50, b.p99);
    println!(
        "{:<10} {:>13.2}x {:>13.2}x {:>12} {:>12}",
        "ratio",
        b.produce / r.produce,
        b.consume / r.consume,
        format!("+{:?}", b.p50.saturating_sub(r.p50)),
        format!("+{:?}", b.p99.saturating_sub(r.p99))
    );
    println!(
        "raw lapin with bindery's id/timestamp headers: {with_headers:.0} msg/s produce; bindery / that: {:.2}x",
        b.produce / with_headers
    );
    let us = report::micros;
    let rss = report::peak_rss_kib();
    report::record(serde_json::json!({ "binder": "rabbit", "broker": "RabbitMQ 3.10", "case": "produce (confirms)",
        "payload_bytes": 100, "messages": n, "raw": r.produce, "bindery": b.produce,
        "round_ratios": produced.ratios(), "peak_rss_kib": rss }));
    report::record(serde_json::json!({ "binder": "rabbit", "broker": "RabbitMQ 3.10", "case": "consume (manual acks)",
        "payload_bytes": 100, "messages": n, "raw": r.consume, "bindery": b.consume, "round_ratios": consumed.ratios(),
        "raw_p50_us": us(r.p50), "raw_p99_us": us(r.p99), "bindery_p50_us": us(b.p50), "bindery_p99_us": us(b.p99),
        "peak_rss_kib": rss }));
    report::record(
        serde_json::json!({ "binder": "rabbit", "broker": "RabbitMQ 3.10", "case": "produce vs raw with the same headers",
        "payload_bytes": 100, "messages": n, "raw": with_headers, "bindery": b.produce,
        "round_ratios": produced_same.ratios() }),
    );
}
