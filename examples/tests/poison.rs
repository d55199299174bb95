//! Poison floods: 1% of the events fed to the relay service are bad — half cannot be decoded
//! (a field of the wrong type), half are rejected by the handler on every attempt. Each bad one
//! must reach the dead-letter destination with its reason in the headers, the service must not
//! crash, and every good event must be recorded. The run prints the good events' throughput
//! beside a clean run's on the same broker (the comparison is a measurement, not an assertion).
//!
//! Brokers: RabbitMQ (dead letters in the queue `<destination>.<group>.dlq`), tansu at
//! `TEST_KAFKA_BROKERS` and librdkafka's MockCluster in this runner (dead letters in the topic
//! `error.<destination>.<group>`, read back with a plain rdkafka consumer). A broker that cannot
//! be reached fails the run.
//!
//! `POISON_MESSAGES` sets the event count (default 10,000 on RabbitMQ, 2,000 on the MockCluster
//! and 1,000 on tansu, where these runs moved 45–200 events/s in a debug build; `scripts/prove`
//! runs 100,000).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bindery::prelude::*;
use futures::StreamExt;
use rdkafka::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use support::{Broker, Scenario, rabbit, tansu, terminate};

fn messages(default: u64) -> u64 {
    std::env::var("POISON_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Dead letters keyed by event id: the headers (as text) of each copy found.
type DeadLetters = HashMap<u64, Vec<HashMap<String, String>>>;

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

/// Feeds `n` events and returns how long the sink took to record every good one. `prepare`
/// readies the broker for the scenario before the service starts.
async fn run(broker: &Broker, n: u64, poisoned: bool, prepare: &dyn Fn(&Scenario)) -> (Scenario, Duration) {
    let mut scenario = Scenario::new(broker);
    prepare(&scenario);
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
async fn rabbit_dead_letters(uri: &str, queue: &str, expected: usize) -> DeadLetters {
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
    let mut out = DeadLetters::new();
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
        out.entry(id).or_default().push(headers);
    }
    let _ = conn.close(200, "done".into()).await;
    out
}

/// Reads the dead-letter topic `topic` (Kafka) from the beginning with a plain rdkafka consumer
/// until `expected` distinct events are there, then until it has been quiet for 2 s (so extra
/// copies are seen too).
async fn kafka_dead_letters(brokers: &str, topic: &str, expected: usize) -> DeadLetters {
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("poison-check-{}", uuid::Uuid::new_v4().simple()))
        .set("enable.auto.commit", "false")
        .set("log_level", "3")
        .create()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let partitions = loop {
        if let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(2)) {
            if let Some(t) = md.topics().iter().find(|t| t.name() == topic && t.error().is_none()) {
                if !t.partitions().is_empty() {
                    break t.partitions().len();
                }
            }
        }
        assert!(Instant::now() < deadline, "dead-letter topic `{topic}` never appeared at {brokers}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut assignment = rdkafka::TopicPartitionList::new();
    for p in 0..partitions as i32 {
        assignment.add_partition_offset(topic, p, rdkafka::Offset::Beginning).unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut out = DeadLetters::new();
    loop {
        let wait = if out.len() < expected {
            deadline.saturating_duration_since(Instant::now())
        } else {
            Duration::from_secs(2)
        };
        let Ok(record) = tokio::time::timeout(wait, consumer.recv()).await else { break };
        let record = record.unwrap();
        let body: serde_json::Value = serde_json::from_slice(record.payload().unwrap_or_default()).unwrap();
        let id = body["id"].as_u64().unwrap();
        let mut headers = HashMap::new();
        if let Some(h) = record.headers() {
            for header in h.iter() {
                let value = String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned();
                headers.insert(header.key.to_string(), value);
            }
        }
        out.entry(id).or_default().push(headers);
    }
    out
}

/// Where this scenario's relay reads from.
fn input_destination(scenario: &Scenario) -> String {
    format!("crash-in-{}", scenario.tag)
}

/// The whole check on one broker: a clean run, a poisoned run, every bad event in the dead
/// letters with its reason, every good one recorded, and the two runs' throughput printed.
/// A broker for one run, and what readies it for a scenario (it owns what must stay alive
/// while the broker is in use, such as an in-process cluster).
type Setup = (Broker, Box<dyn Fn(&Scenario)>);

/// The clean run, then the poisoned one, each on a broker `setup` gives. In-process brokers
/// are made afresh for each run: librdkafka's MockCluster moved the same clean run about 20%
/// slower when it came second on one cluster, which a comparison must not count.
async fn flood(n: u64, setup: &dyn Fn() -> Setup) {
    let (broker, prepare) = setup();
    let (clean, clean_took) = run(&broker, n, false, &*prepare).await;
    let _ = std::fs::remove_dir_all(&clean.dir);
    drop(prepare);
    let (broker, prepare) = setup();
    let (scenario, took) = run(&broker, n, true, &*prepare).await;

    let bad_ids: Vec<u64> = (0..n).filter(|id| bad(*id).is_some()).collect();
    let destination = input_destination(&scenario);
    let dead = match &broker {
        Broker::Rabbit(uri) => rabbit_dead_letters(uri, &format!("{destination}.relay.dlq"), bad_ids.len()).await,
        Broker::Kafka { brokers, .. } => {
            kafka_dead_letters(brokers, &format!("error.{destination}.relay"), bad_ids.len()).await
        }
    };
    for id in &bad_ids {
        let copies = dead.get(id).unwrap_or_else(|| panic!("bad event {id} is not among the dead letters"));
        for headers in copies {
            let kind = headers.get("x-exception-kind").map(String::as_str);
            let message = headers.get("x-exception-message").cloned().unwrap_or_default();
            match bad(*id) {
                Some(Bad::Undecodable) => {
                    assert_eq!(kind, Some("decode"), "event {id}: {headers:?}");
                    assert!(!message.is_empty(), "event {id}: no reason given: {headers:?}");
                }
                _ => {
                    assert_eq!(kind, Some("handler"), "event {id}: {headers:?}");
                    assert!(message.contains("poisoned"), "event {id}: reason missing: {message}");
                }
            }
            assert_eq!(headers.get("x-original-destination"), Some(&destination), "event {id}");
            if let Broker::Kafka { .. } = broker {
                // Spring Kafka's record of where the dead letter came from.
                assert_eq!(headers.get("kafka_dlt-original-topic"), Some(&destination), "event {id}: {headers:?}");
                for name in ["kafka_dlt-original-partition", "kafka_dlt-original-offset"] {
                    let value = headers.get(name).and_then(|v| v.parse::<u64>().ok());
                    assert!(value.is_some(), "event {id}: no numeric {name}: {headers:?}");
                }
            }
        }
    }
    assert_eq!(dead.len(), bad_ids.len(), "only the bad events are dead letters");
    let copies: usize = dead.values().map(Vec::len).sum();
    let (ids, _) = scenario.recorded();
    let good = n as usize - bad_ids.len();
    assert_eq!(ids.len(), good, "every good event recorded, no bad one");
    let rate = |count: usize, d: Duration| count as f64 / d.as_secs_f64();
    println!(
        "poison flood on {}: {} bad of {n} all dead-lettered with reasons ({} dead-letter records); good events {:.0}/s vs clean run {:.0}/s ({:.2}x)",
        broker.label(),
        bad_ids.len(),
        copies,
        rate(good, took),
        rate(n as usize, clean_took),
        rate(good, took) / rate(n as usize, clean_took)
    );
    let _ = std::fs::remove_dir_all(&scenario.dir);
    drop(prepare);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_flood_on_rabbitmq_dead_letters_every_bad_event() {
    flood(messages(10_000), &|| (rabbit(), Box::new(|_: &Scenario| {}))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_flood_on_tansu_dead_letters_every_bad_event() {
    let broker = tansu();
    let Broker::Kafka { brokers, .. } = &broker else { unreachable!() };
    // Fail at once, and say why, when nothing answers there.
    let probe: rdkafka::consumer::BaseConsumer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).set("log_level", "0").create().unwrap();
    if let Err(e) = probe.fetch_metadata(None, Duration::from_secs(10)) {
        panic!(
            "no Kafka-protocol broker at {brokers} ({e}); start tansu with `scripts/tansu start` or set TEST_KAFKA_BROKERS"
        );
    }
    drop(probe);
    flood(messages(1_000), &|| (tansu(), Box::new(|_: &Scenario| {}))).await;
}

/// librdkafka's mock cluster, in this runner; the service reaches it over TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_flood_on_kafka_mock_cluster_dead_letters_every_bad_event() {
    let setup = || -> Setup {
        let cluster = rdkafka::mocking::MockCluster::new(1).expect("a librdkafka mock cluster");
        let brokers = cluster.bootstrap_servers();
        let prepare = move |scenario: &Scenario| {
            for topic in scenario.kafka_topics() {
                cluster.create_topic(&topic, support::MOCK_PARTITIONS, 1).expect("mock topic");
            }
        };
        (Broker::Kafka { label: "kafka-mock", brokers }, Box::new(prepare))
    };
    flood(messages(2_000), &setup).await;
}
