//! Regression tests for defects found in review of the memory binder and the runtime.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bindery::binder::{ConsumerSpec, InputChannel, ProducerSpec};
use bindery::prelude::*;
use bindery::{Binder, Handler};
use bindery_memory::{MemoryBinder, MemoryBroker, TestApp};

/// Runs `f` on a single-threaded runtime in its own thread and fails (instead of hanging the
/// test run) if it does not finish in time.
fn within(limit: Duration, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    rx.recv_timeout(limit).expect("the scenario hung");
}

/// A member that joins while another still holds a partition's messages must wait, not spin
/// (a spin starves a single-threaded runtime, so the holder could never acknowledge).
#[test]
fn a_member_waiting_for_a_held_partition_does_not_spin() {
    within(Duration::from_secs(20), || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let broker = MemoryBroker::new();
            let binder = MemoryBinder::new(broker.clone());
            let mut spec = ProducerSpec::output("out", "held");
            spec.partition_count = 2;
            let producer = binder.bind_producer(&spec).await.unwrap();
            let (tx_a, mut rx_a) = InputChannel::bounded(8);
            let a = binder.bind_consumer(&ConsumerSpec::new("in", "held", Some("g".into())), tx_a).await.unwrap();
            // Unkeyed messages alternate partitions: A gets one from each and holds them.
            for i in 0..2u8 {
                producer.send(Message::new(Bytes::from(vec![i]))).await.unwrap().await.unwrap();
            }
            let mut held = Vec::new();
            for _ in 0..2 {
                held.push(tokio::time::timeout(Duration::from_secs(5), rx_a.recv()).await.unwrap().unwrap());
            }
            // B joins and is assigned partition 1, which A still holds.
            let (tx_b, mut rx_b) = InputChannel::bounded(8);
            let b = binder.bind_consumer(&ConsumerSpec::new("in", "held", Some("g".into())), tx_b).await.unwrap();
            for i in 2..4u8 {
                producer.send(Message::new(Bytes::from(vec![i]))).await.unwrap().await.unwrap();
            }
            // Let the runtime run other tasks; a spinning pump would never give it back.
            tokio::task::yield_now().await;
            for d in held {
                d.ack.ack();
            }
            let got = tokio::time::timeout(Duration::from_secs(5), rx_b.recv()).await.unwrap().unwrap();
            assert_eq!(got.partition, Some(1));
            got.ack.ack();
            a.close().await.unwrap();
            b.close().await.unwrap();
        });
    });
}

/// Messages handed back at shutdown are redelivered in their original order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_handed_back_at_shutdown_keeps_its_order() {
    let broker = MemoryBroker::recording();
    let started = Arc::new(tokio::sync::Notify::new());
    let s = started.clone();
    let slow = Handler::sink("slow", move |_m: Message<u64>, _c: Context| {
        let s = s.clone();
        async move {
            s.notify_one();
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok::<_, HandlerError>(())
        }
    })
    .input("in")
    .group("g");
    let app = |handler: Handler| {
        bindery::App::builder()
            .registered_handlers(false)
            .binder("memory", Arc::new(MemoryBinder::new(broker.clone())))
            .override_binder("memory")
            .config(bindery::Config::from_toml_str("[bindings.in]\ndestination = \"ordered\"").unwrap())
            .handler(handler)
            .build()
            .unwrap()
    };
    let first = app(slow).start().await.unwrap();
    for i in 0..6u64 {
        broker.publish("ordered", Message::new(Bytes::from(serde_json::to_vec(&i).unwrap())));
    }
    started.notified().await;
    first.shutdown().await.unwrap();

    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sn = seen.clone();
    let record = Handler::sink("record", move |m: Message<u64>, _c: Context| {
        let (sn, tx) = (sn.clone(), tx.clone());
        async move {
            sn.lock().unwrap().push(*m.payload());
            let _ = tx.send(());
            Ok::<_, HandlerError>(())
        }
    })
    .input("in")
    .group("g");
    let second = app(record).start().await.unwrap();
    for _ in 0..5 {
        tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap();
    }
    assert_eq!(*seen.lock().unwrap(), [1, 2, 3, 4, 5]);
    second.shutdown().await.unwrap();
}

/// A producer waiting for room is released when the group's last consumer leaves.
#[tokio::test]
async fn a_waiting_producer_is_released_when_the_consumer_leaves() {
    let broker = MemoryBroker::with_capacity(2);
    let binder = MemoryBinder::new(broker.clone());
    let (tx, _rx) = InputChannel::bounded(1);
    let consumer = binder.bind_consumer(&ConsumerSpec::new("in", "leave", Some("g".into())), tx).await.unwrap();
    let producer = binder.bind_producer(&ProducerSpec::output("out", "leave")).await.unwrap();
    for i in 0..3u8 {
        producer.send(Message::new(Bytes::from(vec![i]))).await.unwrap().await.unwrap();
    }
    let p = producer.clone();
    let waiting = tokio::spawn(async move { p.send(Message::new(Bytes::from_static(b"x"))).await.map(|_| ()) });
    tokio::task::yield_now().await;
    consumer.close().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("producer still blocked").unwrap().unwrap();
}

/// Shutdown interrupting a retry hands the message back, and the same key's later messages
/// are not processed ahead of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requeued_message_is_not_overtaken_by_its_key() {
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let first_failed = Arc::new(tokio::sync::Notify::new());
    let (l, f) = (log.clone(), first_failed.clone());
    let flaky = Handler::sink("flaky", move |m: Message<u64>, _c: Context| {
        let (l, f) = (l.clone(), f.clone());
        async move {
            let n = *m.payload();
            if n == 0 {
                l.lock().unwrap().push("0 failed".into());
                f.notify_one();
                return Err(HandlerError::new("not yet"));
            }
            l.lock().unwrap().push(format!("{n} ok"));
            Ok(())
        }
    })
    .input("in")
    .group("g");
    let toml = "[bindings.in]\ndestination = \"keyed\"\n[bindings.in.consumer]\nconcurrency = 2\nmax-attempts = 5\nbackoff-initial = \"10s\"\n";
    let app = TestApp::builder().registered_handlers(false).handler(flaky).config_toml(toml).start().await.unwrap();
    for i in 0..3u64 {
        app.input("keyed").send_message(Message::new(i).with_key("same")).await.unwrap();
    }
    first_failed.notified().await;
    app.shutdown().await.unwrap();
    let log = log.lock().unwrap().clone();
    assert_eq!(log, ["0 failed"], "later messages of the key ran while message 0 was waiting to retry");
}

/// A message waiting out a retry backoff holds up its own partition only: it gives its
/// concurrency slot up meanwhile, so the partitions that shared a worker with it before keep
/// moving, and the dispatcher keeps feeding everyone even when many of the waiting
/// partition's messages queue up behind it. Concurrency still caps the handlers running at once.
#[tokio::test]
async fn a_backoff_holds_up_only_its_own_partition() {
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (l, r, m) = (log.clone(), running.clone(), most.clone());
    let handler = Handler::sink("slow-retry", move |msg: Message<u64>, c: Context| {
        let (l, r, m) = (l.clone(), r.clone(), m.clone());
        async move {
            let now = r.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            m.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
            tokio::task::yield_now().await; // let other lanes start, if they may
            r.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            let n = *msg.payload();
            l.lock().unwrap().push(format!("{n}@{}", c.delivery_attempt()));
            if n == 0 && c.delivery_attempt() == 1 {
                return Err(HandlerError::new("first attempt fails"));
            }
            Ok(())
        }
    })
    .input("in")
    .group("g");
    // No key and four partitions: message i lands on partition i % 4.
    let toml = "[bindings.in]\ndestination = \"spread\"\n[bindings.in.consumer]\nconcurrency = 2\nbackoff-initial = \"1s\"\n\
                [bindings.feed]\ndestination = \"spread\"\n[bindings.feed.producer]\npartition-count = 4\n";
    let app = TestApp::builder().registered_handlers(false).handler(handler).config_toml(toml).start().await.unwrap();
    let source = app.app().unwrap().source::<u64>("feed").unwrap();
    for i in 0..80u64 {
        source.send(i).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while log.lock().unwrap().len() < 81 {
        assert!(tokio::time::Instant::now() < deadline, "not all handled: {:?}", log.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    app.shutdown().await.unwrap();
    let log = log.lock().unwrap().clone();
    let at = |e: &str| log.iter().position(|x| x == e).unwrap();
    let retried = at("0@2");
    let others_done = (1..80u64).filter(|i| i % 4 != 0).map(|i| at(&format!("{i}@1"))).max().unwrap();
    assert!(others_done < retried, "other partitions waited for message 0's backoff: {log:?}");
    let partition0: Vec<&String> =
        log.iter().filter(|e| e.split('@').next().unwrap().parse::<u64>().unwrap() % 4 == 0).collect();
    assert_eq!(partition0[..3], ["0@1", "0@2", "4@1"], "the waiting partition keeps its order: {log:?}");
    assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 2, "concurrency = 2 caps the handlers running at once");
}

#[bindery::processor(input = "shout-in", output = "shout-out")]
async fn shout(text: String) -> String {
    text.to_uppercase()
}

fn registered(name: &str) -> Handler {
    bindery::handler::registered().into_iter().find(|h| h.name() == name).expect("handler is registered")
}

/// `String` payloads are text in both directions: a chain of processors adds no JSON quotes.
#[tokio::test]
async fn string_outputs_are_sent_as_text() {
    let app = TestApp::builder().registered_handlers(false).handler(registered("shout")).start().await.unwrap();
    app.input("shout-in").send_raw(Message::new(Bytes::from_static(b"hi there"))).await.unwrap();
    let out = app.output("shout-out").recv().await.unwrap();
    assert_eq!(&out.payload()[..], b"HI THERE");
    app.shutdown().await.unwrap();
}

/// A zero interval is refused at startup instead of panicking inside the source's task.
#[tokio::test]
async fn a_zero_source_interval_is_a_startup_error() {
    let tick = Handler::source("tick", Duration::ZERO, || async { Ok::<_, HandlerError>(Some(Message::new(1u8))) });
    let err = bindery::App::builder().registered_handlers(false).handler(tick).build().unwrap_err();
    assert!(err.to_string().contains("source `tick` needs an interval"), "{err}");
}

/// A publish-only binding whose name merely contains `-in-` is not mistaken for a handler's.
#[tokio::test]
async fn publish_only_bindings_may_contain_in() {
    let config = bindery::Config::from_toml_str("[bindings.sign-in-events]\ndestination = \"signins\"").unwrap();
    bindery::App::builder().registered_handlers(false).config(config).build().unwrap();
}

/// A producer whose first `fail` confirmations report a broker refusal.
struct Refusing {
    inner: Arc<dyn bindery::binder::Producer>,
    fail: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl bindery::binder::Producer for Refusing {
    async fn send(&self, message: bindery::RawMessage) -> bindery::Result<bindery::binder::Confirmation> {
        let refuse = self
            .fail
            .fetch_update(std::sync::atomic::Ordering::SeqCst, std::sync::atomic::Ordering::SeqCst, |n| {
                n.checked_sub(1)
            })
            .is_ok();
        if refuse {
            return Ok(bindery::binder::Confirmation::failed(bindery::Error::broker("broker refused the record")));
        }
        self.inner.send(message).await
    }

    async fn flush(&self, timeout: Duration) -> bindery::Result<()> {
        self.inner.flush(timeout).await
    }
}

/// The memory binder, except that producers to `refused` fail their first two confirmations.
struct RefusingBinder(MemoryBinder);

#[async_trait::async_trait]
impl Binder for RefusingBinder {
    fn kind(&self) -> &str {
        "memory"
    }
    async fn bind_producer(&self, spec: &ProducerSpec) -> bindery::Result<Arc<dyn bindery::binder::Producer>> {
        let inner = self.0.bind_producer(spec).await?;
        if spec.destination == "refused" {
            return Ok(Arc::new(Refusing { inner, fail: 2.into() }));
        }
        Ok(inner)
    }
    async fn bind_consumer(
        &self,
        spec: &ConsumerSpec,
        channel: InputChannel,
    ) -> bindery::Result<Box<dyn bindery::binder::ConsumerBinding>> {
        self.0.bind_consumer(spec, channel).await
    }
    fn dead_letter_destination(&self, destination: &str, group: &str) -> String {
        self.0.dead_letter_destination(destination, group)
    }
}

/// When the broker refuses a handler's output, the input is not acknowledged: it is delivered
/// again, and the output lands once the broker takes it; nothing is dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_outputs_leave_the_input_unacknowledged() {
    let broker = MemoryBroker::recording();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = calls.clone();
    let relay = Handler::processor("relay", move |m: Message<u64>, _c: Context| {
        c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move { Ok::<_, HandlerError>(vec![m]) }
    })
    .input("in")
    .output("out")
    .group("g");
    let toml = "[bindings.in]\ndestination = \"source\"\n[bindings.in.consumer]\nbackoff-max = \"20ms\"\n\
                [bindings.out]\ndestination = \"refused\"\n";
    let app = bindery::App::builder()
        .registered_handlers(false)
        .binder("memory", Arc::new(RefusingBinder(MemoryBinder::new(broker.clone()))))
        .override_binder("memory")
        .config(bindery::Config::from_toml_str(toml).unwrap())
        .handler(relay)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    broker.publish("source", Message::new(Bytes::from_static(b"7")));
    let out = broker.wait_for_history("refused", 1, Duration::from_secs(5)).await.unwrap();
    assert_eq!(&out[0].payload()[..], b"7");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3, "two refusals, so three deliveries");
    assert!(broker.history("source.g.dlq").is_empty(), "a broker refusal is not the message's fault");
    app.shutdown().await.unwrap();
    assert_eq!(broker.history("refused").len(), 1, "the output was published once, when the broker took it");
    assert_eq!(broker.unacknowledged("source", "g"), 0);
    assert_eq!(broker.queued("source", "g"), 0);
}

/// A concurrent binding whose input never runs dry (handlers slower than a feeder that keeps
/// sending through the shutdown) still shuts down promptly, and no handler runs once shutdown
/// has returned. Guards the dispatcher's fast path, which takes deliveries without a `select!`
/// and so must look for shutdown itself. The feeder's sends fail once the app has shut down.
#[test]
fn a_concurrent_binding_shuts_down_while_deliveries_keep_coming() {
    use std::sync::atomic::{AtomicU64, Ordering};
    within(Duration::from_secs(60), || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let handled = Arc::new(AtomicU64::new(0));
            let h = handled.clone();
            // Handlers slower than the feeder: the binding's input never runs dry.
            let sink = Handler::sink("busy", move |_m: Message<u64>, _c: Context| {
                h.fetch_add(1, Ordering::Relaxed);
                async {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                    Ok::<_, HandlerError>(())
                }
            })
            .input("in")
            .group("g");
            let toml = "[bindings.in]\ndestination = \"busy\"\n[bindings.in.consumer]\nconcurrency = 4\n\
                        [bindings.feed]\ndestination = \"busy\"\n[bindings.feed.producer]\npartition-count = 4\n";
            let app =
                TestApp::builder().registered_handlers(false).handler(sink).config_toml(toml).start().await.unwrap();
            let source = app.app().unwrap().source::<u64>("feed").unwrap();
            let feeder = tokio::spawn(async move {
                let mut i = 0u64;
                loop {
                    if let Err(e) = source.send(i).await {
                        return e;
                    }
                    i += 1;
                    tokio::task::yield_now().await;
                }
            });
            while handled.load(Ordering::Relaxed) < 500 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let started = std::time::Instant::now();
            app.shutdown().await.unwrap();
            let took = started.elapsed();
            assert!(took < Duration::from_secs(10), "shutdown under a steady flow took {took:?}");
            // Sends through a source fail once the app has shut down, rather than going on
            // into a closed binder.
            let stopped = tokio::time::timeout(Duration::from_secs(5), feeder).await;
            let error = stopped.expect("the feeder's sends fail after shutdown").unwrap();
            assert!(error.is_closed(), "{error}");
            let at_shutdown = handled.load(Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(handled.load(Ordering::Relaxed), at_shutdown, "handlers ran after shutdown returned");
        });
    });
}

/// A loop of sends that the broker takes at once never waits, so without a yield it would
/// keep a single-threaded runtime to itself until the queue filled: other tasks (here a
/// stand-in for a health probe or the binding's own consumer) would stall. Each send counts
/// against tokio's cooperative budget, as a channel send does.
#[test]
fn a_tight_send_loop_lets_other_tasks_on_its_thread_run() {
    within(Duration::from_secs(20), || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            // Room for every message, so no send ever has to wait for a consumer.
            let app = bindery::App::builder()
                .registered_handlers(false)
                .binder("memory", Arc::new(MemoryBinder::new(MemoryBroker::with_capacity(100_000))))
                .override_binder("memory")
                .build()
                .unwrap()
                .start()
                .await
                .unwrap();
            let source = app.source::<u32>("coop-out").unwrap();
            let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = ran.clone();
            tokio::spawn(async move { flag.store(true, std::sync::atomic::Ordering::Relaxed) });
            let mut first_seen = None;
            for i in 0..5_000u32 {
                source.send(i).await.unwrap();
                if first_seen.is_none() && ran.load(std::sync::atomic::Ordering::Relaxed) {
                    first_seen = Some(i);
                }
            }
            // tokio's budget is 128 operations per poll.
            let at = first_seen.expect("the other task never ran during 5,000 sends");
            assert!(at <= 200, "the other task first ran after send {at}");
            app.shutdown().await.unwrap();
        });
    });
}
