//! Fault injection on the memory broker: lost acknowledgements, duplicate deliveries, dropped
//! consumers and slow deliveries. The runtime must keep the at-least-once promise through all
//! of them: every message handled, everything eventually acknowledged, nothing lost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bindery::Handler;
use bindery::prelude::*;
use bindery_memory::{MemoryBroker, TestApp};
use tokio::sync::{Notify, mpsc};

/// Upper bound for every wait on an event.
const WAIT: Duration = Duration::from_secs(5);

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
        .unwrap_or_else(|| panic!("channel closed while waiting for {what}"))
}

/// Polls a broker condition (acknowledgements have no event to wait on) until it holds or
/// [`WAIT`] passes.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out after {WAIT:?} waiting until {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn all_settled(broker: &MemoryBroker, topic: &str, group: &str) {
    eventually(&format!("{topic}/{group} has nothing queued or unacknowledged"), || {
        broker.unacknowledged(topic, group) == 0 && broker.queued(topic, group) == 0
    })
    .await;
}

/// A sink in group `g` that reports every payload it handles.
fn recording_sink(name: &str, input: &str) -> (Handler, mpsc::UnboundedReceiver<u64>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let h = Handler::sink(name, move |m: Message<u64>, _ctx: Context| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(*m.payload());
            Ok::<_, HandlerError>(())
        }
    })
    .input(input)
    .group("g");
    (h, rx)
}

async fn start(handler: Handler, toml: &str) -> TestApp {
    TestApp::builder().registered_handlers(false).handler(handler).config_toml(toml).start().await.unwrap()
}

fn counts(seen: &[u64]) -> BTreeMap<u64, usize> {
    let mut m = BTreeMap::new();
    for s in seen {
        *m.entry(*s).or_insert(0) += 1;
    }
    m
}

#[tokio::test]
async fn failed_acks_cause_exactly_those_messages_to_be_redelivered() {
    let (sink, mut seen_rx) = recording_sink("lost-acks", "lost-acks-in");
    let app = start(sink, "").await;
    app.broker().faults().fail_next_acks(2);
    for i in 0..4u64 {
        app.input("lost-acks-in").send_json(&i).await.unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(next(&mut seen_rx, "a delivery").await);
    }
    all_settled(app.broker(), "lost-acks-in", "g").await;
    assert!(seen_rx.try_recv().is_err(), "more deliveries than 4 messages + 2 lost acks: {seen:?}");

    // The first two handled messages lost their acks: those two, and only those, came back.
    let c = counts(&seen);
    assert_eq!(c.keys().copied().collect::<Vec<_>>(), [0, 1, 2, 3], "every message handled: {seen:?}");
    for (msg, n) in &c {
        let expected = if seen[..2].contains(msg) { 2 } else { 1 };
        assert_eq!(*n, expected, "message {msg} handled {n} times: {seen:?}");
    }
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn duplicated_deliveries_are_each_delivered_twice_and_all_acknowledged() {
    let (sink, mut seen_rx) = recording_sink("dups", "dups-in");
    let app = start(sink, "").await;
    app.broker().faults().duplicate_next_deliveries(2);
    for i in 0..3u64 {
        app.input("dups-in").send_json(&i).await.unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(next(&mut seen_rx, "a delivery").await);
    }
    all_settled(app.broker(), "dups-in", "g").await;
    assert!(seen_rx.try_recv().is_err(), "more deliveries than 3 messages + 2 duplicates: {seen:?}");
    let c = counts(&seen);
    assert_eq!(c.keys().copied().collect::<Vec<_>>(), [0, 1, 2], "every message handled: {seen:?}");
    assert!(c.values().all(|n| *n <= 2), "no delivery may be duplicated more than once: {seen:?}");
    assert_eq!(c.values().filter(|n| **n == 2).count(), 2, "two messages delivered twice: {seen:?}");
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn one_duplicate_delivery_reaches_the_handler_twice() {
    let (sink, mut seen_rx) = recording_sink("dup-one", "dup-one-in");
    let app = start(sink, "").await;
    app.broker().faults().duplicate_next_deliveries(1);
    app.input("dup-one-in").send_json(&7u64).await.unwrap();
    app.input("dup-one-in").send_json(&8u64).await.unwrap();
    let seen = [
        next(&mut seen_rx, "a delivery").await,
        next(&mut seen_rx, "a delivery").await,
        next(&mut seen_rx, "a delivery").await,
    ];
    assert_eq!(seen, [7, 7, 8]);
    all_settled(app.broker(), "dup-one-in", "g").await;
    assert!(seen_rx.try_recv().is_err());
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn dropped_consumers_redeliver_unacked_work_and_the_runtime_binds_again() {
    // The handler holds the first message until the test lets it go, so it is unacknowledged
    // when the broker drops the consumer.
    let (tx, mut seen_rx) = mpsc::unbounded_channel();
    let gate = Arc::new(Notify::new());
    let g = gate.clone();
    let held = Arc::new(AtomicBool::new(false));
    let sink = Handler::sink("dropped", move |m: Message<u64>, _ctx: Context| {
        let (tx, g, held) = (tx.clone(), g.clone(), held.clone());
        async move {
            let _ = tx.send(*m.payload());
            if *m.payload() == 1 && !held.swap(true, Ordering::SeqCst) {
                g.notified().await;
            }
            Ok::<_, HandlerError>(())
        }
    })
    .input("dropped-in")
    .group("g");
    let app = start(sink, "binding-retry-interval = \"50ms\"\n").await;
    let broker = app.broker().clone();

    app.input("dropped-in").send_json(&1u64).await.unwrap();
    assert_eq!(next(&mut seen_rx, "the first delivery").await, 1);
    assert_eq!(broker.unacknowledged("dropped-in", "g"), 1);

    broker.drop_consumers("dropped-in");
    assert_eq!(broker.unacknowledged("dropped-in", "g"), 0, "unacked work goes back to the queue");
    assert_eq!(broker.queued("dropped-in", "g"), 1);
    // Published while nobody consumes: kept for the group.
    app.input("dropped-in").send_json(&2u64).await.unwrap();
    gate.notify_one(); // the old attempt finishes; its ack cannot count any more

    assert_eq!(next(&mut seen_rx, "the redelivery after rebinding").await, 1);
    assert_eq!(next(&mut seen_rx, "the message published while unbound").await, 2);
    app.input("dropped-in").send_json(&3u64).await.unwrap();
    assert_eq!(next(&mut seen_rx, "a message published after rebinding").await, 3);
    all_settled(&broker, "dropped-in", "g").await;
    eventually("the app reports healthy again", || app.app().unwrap().health().is_up()).await;
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn dropping_an_idle_consumer_reports_down_then_recovers() {
    let (sink, mut seen_rx) = recording_sink("idle-drop", "idle-drop-in");
    // A retry interval long enough to observe the gap, short enough for a test.
    let app = start(sink, "binding-retry-interval = \"300ms\"\n").await;
    let broker = app.broker().clone();
    app.input("idle-drop-in").send_json(&1u64).await.unwrap();
    assert_eq!(next(&mut seen_rx, "the first message").await, 1);

    broker.drop_consumers("idle-drop-in");
    eventually("health reports the lost binding", || !app.app().unwrap().health().is_up()).await;
    app.input("idle-drop-in").send_json(&2u64).await.unwrap();
    assert_eq!(next(&mut seen_rx, "a message after the consumer came back").await, 2);
    eventually("the app reports healthy again", || app.app().unwrap().health().is_up()).await;
    all_settled(&broker, "idle-drop-in", "g").await;
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn delayed_deliveries_arrive_late_but_all_arrive_in_order() {
    let (sink, mut seen_rx) = recording_sink("slow", "slow-in");
    let app = start(sink, "").await;
    let delay = Duration::from_millis(20);
    app.broker().faults().delay_deliveries(delay);
    let began = Instant::now();
    for i in 0..5u64 {
        app.input("slow-in").send_json(&i).await.unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(next(&mut seen_rx, "a delayed delivery").await);
    }
    let took = began.elapsed();
    assert_eq!(seen, [0, 1, 2, 3, 4]);
    assert!(took >= delay * 5, "five deliveries delayed {delay:?} each took only {took:?}");

    app.broker().faults().delay_deliveries(Duration::ZERO);
    app.input("slow-in").send_json(&5u64).await.unwrap();
    assert_eq!(next(&mut seen_rx, "an undelayed delivery").await, 5);
    all_settled(app.broker(), "slow-in", "g").await;
    assert!(seen_rx.try_recv().is_err());
    app.shutdown().await.unwrap();
}
