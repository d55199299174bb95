//! Poison floods: 1% of the events fed to the relay service are bad — half cannot be decoded
//! (a field of the wrong type), half are rejected by the handler on every attempt. Each bad one
//! must reach the dead-letter destination with its reason in the headers, the service must not
//! crash, and every good event must be recorded. The run prints the good events' throughput
//! beside a clean run's on the same broker (the comparison is a measurement, not an assertion).
//!
//! `POISON_MESSAGES` sets the event count (default 10,000; `scripts/prove` runs 100,000).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bindery::prelude::*;
use futures::StreamExt;
use support::{Broker, Scenario, rabbit, terminate};

fn messages() -> u64 {
    std::env::var("POISON_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

/// What a bad event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bad {
    Undecodable,
    Rejected,
}

/// Every hundredth event is bad, alternating the two kinds.
fn bad(id: u64) -> Option<Bad> {
    match id % 200 {
        7 => Some(Bad::Undecodable),
        107 => Some(Bad::Rejected),
        _ => None,
    }
}

fn payload(id: u64, poisoned: bool) -> serde_json::Value {
    match bad(id).filter(|_| poisoned) {
        // `poison` must be a bool: this does not decode as the relay's `Event`.
        Some(Bad::Undecodable) => serde_json::json!({ "id": id, "poison": "certainly" }),
        Some(Bad::Rejected) => serde_json::json!({ "id": id, "poison": true }),
        None => serde_json::json!({ "id": id, "poison": false, "body": "x".repeat(40) }),
    }
}

/// Feeds `n` events and returns how long the sink took to record every good one.
async fn run(broker: &Broker, n: u64, poisoned: bool) -> (Scenario, Duration) {
    let mut scenario = Scenario::new(broker);
    let child = scenario.start();
    let app = bindery::App::builder()
        .config_file(&scenario.config)
        .registered_handlers(false)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let source = app.source::<serde_json::Value>("relay-feed").unwrap();
    let good = (0..n).filter(|id| !poisoned || bad(*id).is_none()).count();
    let started = Instant::now();
    let mut pending = std::collections::VecDeque::new();
    for id in 0..n {
        pending.push_back(source.dispatch(Message::new(payload(id, poisoned))).await.unwrap());
        if pending.len() >= 512 {
            pending.pop_front().unwrap().await.unwrap();
        }
    }
    for c in pending {
        c.await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if scenario.recorded().0.len() >= good {
            break;
        }
        assert!(Instant::now() < deadline, "good events not all recorded within 120s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    app.shutdown().await.unwrap();
    // Still alive: bad input never takes the service down.
    let mut child = child;
    assert!(child.try_wait().unwrap().is_none(), "the relay exited during the run");
    terminate(child);
    (scenario, took)
}

/// Reads every dead letter of `queue` (RabbitMQ), keyed by event id, with the headers as text.
async fn rabbit_dead_letters(uri: &str, queue: &str, expected: usize) -> HashMap<u64, HashMap<String, String>> {
    let conn = lapin::Connection::connect(uri, lapin::ConnectionProperties::default()).await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "poison-check".into(),
            lapin::options::BasicConsumeOptions { no_ack: true, ..Default::default() },
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    let mut out = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while out.len() < expected {
        let Ok(Some(delivery)) = tokio::time::timeout_at(deadline, consumer.next()).await else { break };
        let delivery = delivery.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&delivery.data).unwrap();
        let id = body["id"].as_u64().unwrap();
        let mut headers = HashMap::new();
        if let Some(table) = delivery.properties.headers() {
            for (k, v) in table.inner() {
                let text = match v {
                    lapin::types::AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                    other => format!("{other:?}"),
                };
                headers.insert(k.to_string(), text);
            }
        }
        out.insert(id, headers);
    }
    let _ = conn.close(200, "done".into()).await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_flood_on_rabbitmq_dead_letters_every_bad_event() {
    let broker = rabbit();
    let Broker::Rabbit(uri) = &broker else { unreachable!() };
    let n = messages();
    let (clean, clean_took) = run(&broker, n, false).await;
    let _ = std::fs::remove_dir_all(&clean.dir);
    let (scenario, took) = run(&broker, n, true).await;

    let bad_ids: Vec<u64> = (0..n).filter(|id| bad(*id).is_some()).collect();
    let destination = std::fs::read_to_string(&scenario.config)
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("destination = \"crash-in-").map(|rest| format!("crash-in-{}", rest.trim_end_matches('"')))
        })
        .unwrap();
    let dead = rabbit_dead_letters(uri, &format!("{destination}.relay.dlq"), bad_ids.len()).await;
    for id in &bad_ids {
        let headers = dead.get(id).unwrap_or_else(|| panic!("bad event {id} is not in the dead-letter queue"));
        let kind = headers.get("x-exception-kind").map(String::as_str);
        let message = headers.get("x-exception-message").cloned().unwrap_or_default();
        match bad(*id) {
            Some(Bad::Undecodable) => assert_eq!(kind, Some("decode"), "event {id}: {headers:?}"),
            _ => {
                assert_eq!(kind, Some("handler"), "event {id}: {headers:?}");
                assert!(message.contains("poisoned"), "event {id}: reason missing: {message}");
            }
        }
        assert_eq!(headers.get("x-original-destination"), Some(&destination), "event {id}");
    }
    assert_eq!(dead.len(), bad_ids.len(), "only the bad events are dead letters");
    let (ids, _) = scenario.recorded();
    let good = n as usize - bad_ids.len();
    assert_eq!(ids.len(), good, "every good event recorded, no bad one");
    let rate = |count: usize, d: Duration| count as f64 / d.as_secs_f64();
    println!(
        "poison flood on rabbit: {} bad of {n} all dead-lettered with reasons; good events {:.0}/s vs clean run {:.0}/s ({:.2}x)",
        bad_ids.len(),
        rate(good, took),
        rate(n as usize, clean_took),
        rate(good, took) / rate(n as usize, clean_took)
    );
    let _ = std::fs::remove_dir_all(&scenario.dir);
}
