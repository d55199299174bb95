//! Crash runs: the relay service (`src/bin/relay.rs`) runs as a child process on a real broker
//! while this runner feeds it events, kills it with SIGKILL at seeded random moments, and
//! restarts it. At the end every event id must have reached the recording sink at least once
//! (0 lost); duplicates are counted and reported — redelivery after a crash is the at-least-once
//! contract.
//!
//! The README test command runs the short version (10,000 events, 3 kills per broker). The long
//! one is `scripts/prove crash` (100,000 events, 10 kills); any run can be tuned with
//! `CRASH_MESSAGES`, `CRASH_KILLS` and `CRASH_SEED` (printed by every run, so a failure can be
//! replayed).
//!
//! Brokers: RabbitMQ at `TEST_RABBIT_URI` and tansu at `TEST_KAFKA_BROKERS`
//! (started by `scripts/test`), and librdkafka's MockCluster living in this runner process while
//! the service connects to it over TCP. A broker that cannot be reached fails the run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::{Broker, Params, Rng, Scenario, feed_ids, rabbit, tansu, terminate};

/// The whole run on one broker; returns the duplicate count.
async fn crash_run(broker: Broker, prepare: impl FnOnce(&Scenario)) -> u64 {
    let p = Params::from_env();
    println!(
        "crash run on {}: {} events, {} kills, seed {} (replay with CRASH_SEED={})",
        broker.label(),
        p.messages,
        p.kills,
        p.seed,
        p.seed
    );
    let mut scenario = Scenario::new(&broker);
    prepare(&scenario);
    let mut child = scenario.start();
    let started = Instant::now();

    // The events are fed in one segment per incarnation: the next segment from the moment of
    // each restart, so every incarnation has work to be killed in, however fast the flow is.
    let n = p.messages;
    let segments = u64::from(p.kills) + 1;
    let segment = |i: u64| i * n / segments..(i + 1) * n / segments;
    let config = scenario.config.clone();
    let first = segment(0);
    let mut feeders = vec![tokio::spawn(async move { feed_ids(&config, first).await })];

    let mut rng = Rng::new(p.seed);
    let mut kill_log = Vec::new();
    let mut progress_mark = 0;
    for k in 0..p.kills {
        // Kill only while work flows: wait until this incarnation recorded something new, then
        // a random moment later.
        let deadline = Instant::now() + Duration::from_secs(120);
        while scenario.recorded().1 <= progress_mark {
            assert!(
                Instant::now() < deadline,
                "the relay made no progress within 120s (logs in {})",
                scenario.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(rng.between(Duration::from_millis(50), Duration::from_millis(1_500))).await;
        let before = scenario.recorded().0.len();
        child.kill().unwrap(); // SIGKILL: no drain, no flush, unacknowledged work stays at the broker
        child.wait().unwrap();
        let t = Instant::now();
        progress_mark = scenario.recorded().1;
        let config = scenario.config.clone();
        let next = segment(u64::from(k) + 1);
        feeders.push(tokio::spawn(async move { feed_ids(&config, next).await }));
        child = tokio::task::block_in_place(|| scenario.start());
        kill_log.push(format!(
            "kill {} at {:?} with {before} recorded; back in {:?}",
            k + 1,
            started.elapsed(),
            t.elapsed()
        ));
    }
    for feeder in feeders {
        feeder.await.unwrap().unwrap();
    }

    let (ids, total) = support::wait_for_all(&scenario, p.messages).await;
    terminate(child);
    for line in &kill_log {
        println!("  {line}");
    }
    let lost: Vec<u64> = (0..p.messages).filter(|id| !ids.contains(id)).collect();
    let duplicates = (total - ids.len()) as u64;
    println!(
        "crash run on {}: {} of {} recorded, {} lost, {} duplicates, {:?} in all (seed {})",
        broker.label(),
        ids.len(),
        p.messages,
        lost.len(),
        duplicates,
        started.elapsed(),
        p.seed
    );
    assert!(
        lost.is_empty(),
        "{} events lost on {} (first: {:?}); seed {}; logs in {}",
        lost.len(),
        broker.label(),
        &lost[..lost.len().min(10)],
        p.seed,
        scenario.dir.display()
    );
    let _ = std::fs::remove_dir_all(&scenario.dir);
    duplicates
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_and_restart_on_rabbitmq_loses_nothing() {
    crash_run(rabbit(), |_| {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_and_restart_on_tansu_loses_nothing() {
    crash_run(tansu(), |_| {}).await;
}

/// librdkafka's mock cluster, in this runner process; the service reaches it over TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_and_restart_on_kafka_mock_cluster_loses_nothing() {
    let cluster = rdkafka::mocking::MockCluster::new(1).expect("a librdkafka mock cluster");
    let brokers = cluster.bootstrap_servers();
    crash_run(Broker::Kafka { label: "kafka-mock", brokers }, |scenario| {
        for topic in scenario.kafka_topics() {
            cluster.create_topic(&topic, support::MOCK_PARTITIONS, 1).expect("mock topic");
        }
    })
    .await;
    drop(cluster);
}
