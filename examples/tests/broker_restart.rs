//! Broker restarts: while the relay service (a child process) moves events, the broker is
//! stopped and started again. The service must recover by itself and lose nothing; the run
//! reports how long the flow took to resume after the broker was back.
//!
//! RabbitMQ is restarted with `scripts/rabbitmq restart` (its data survives, so durable queues
//! and their messages do). Kafka runs on librdkafka's MockCluster, owned by this runner while the
//! service connects to it over TCP: its broker is taken down (`broker_down`: connections dropped,
//! new ones refused) for at least 5 s, until the service's log shows it lost the broker, and
//! brought up again with its log intact.
//!
//! tansu runs on its object-store storage (`s3://`) against a local S3 server (moto, started
//! by `scripts/s3`), so its topics, records and committed offsets outlive the broker process. It
//! is stopped with SIGTERM and started again on the same storage (`scripts/tansu restart`) on a
//! port of its own (19092). Two tansu 0.6.0 storage engines were tried before and fail: on
//! `memory://` (what the other tansu runs use) a restart loses every topic, so "0 lost" cannot
//! be asked of it; its SQLite storage (feature `libsql`) ended its storage task within seconds of
//! the flow starting, before any restart (`unreachable!` at `tansu-storage/src/service.rs:337`).
//! Known limits of the `s3://` storage, found while setting this run up and left out of it:
//! - it advances an idempotent producer's sequence before it writes the batch, so a stop in
//!   between loses a record it then acknowledges to the producer's retry as a duplicate. Seen
//!   after SIGKILL while setting the run up, and once in this run after SIGTERM (1 of 500
//!   events). The run stops tansu with SIGTERM and its clients send without idempotence
//!   (`support::Broker::binder_toml`), so a retry writes the record again;
//! - two producers writing one partition at once can be given the same offset (tansu relies
//!   on the S3 server's conditional puts; moto checks and writes in two steps), so the relay
//!   and the feeder here each write their own topic;
//! - every fetch lists every batch of the partition, and the runs' tansu configuration sends
//!   one record per batch (see `support::Broker::binder_toml`), so the event count is small.
//!
//! Event count: `RESTART_MESSAGES` (default 10,000 on RabbitMQ and 3,000 on the MockCluster);
//! `RESTART_TANSU_MESSAGES` for tansu (default 200).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::{Broker, Scenario, feed_ids, rabbit, terminate};

/// How long the MockCluster broker stays down at least.
const MOCK_DOWN_FOR: Duration = Duration::from_secs(5);

/// What the service logs when librdkafka has lost every broker (its health then reports DOWN).
const NOTICED: &str = "AllBrokersDown";

fn messages(default: u64) -> u64 {
    std::env::var("RESTART_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs the relay on `broker` (after `prepare` readied the broker for the scenario), calls
/// `restart` once a quarter of the events were recorded, and checks every event arrives. The
/// second half of the events is fed from the moment the restart begins, so events flow through
/// the restart however fast the first half went.
async fn restart_run(broker: Broker, n: u64, prepare: impl FnOnce(&Scenario), restart: impl FnOnce(&Scenario)) {
    println!("broker restart run on {}: {n} events", broker.label());
    let mut scenario = Scenario::new(&broker);
    prepare(&scenario);
    let child = scenario.start();
    let started = Instant::now();
    let config = scenario.config.clone();
    let first_half = tokio::spawn(async move { feed_ids(&config, 0..n / 2).await });

    let deadline = Instant::now() + Duration::from_secs(60);
    while (scenario.recorded().0.len() as u64) < n / 4 {
        assert!(Instant::now() < deadline, "the relay did not record a quarter of the events within 60s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let down_at = Instant::now();
    let config = scenario.config.clone();
    let second_half = tokio::spawn(async move { feed_ids(&config, n / 2..n).await });
    tokio::task::block_in_place(|| restart(&scenario));
    let back_at = Instant::now();
    // Resumed = the sink records something it had not before the broker came back.
    let at_back = scenario.recorded().1;
    let resume_deadline = Instant::now() + Duration::from_secs(120);
    let recovered = loop {
        let (ids, total) = scenario.recorded();
        if total > at_back || ids.len() as u64 >= n {
            break back_at.elapsed();
        }
        assert!(Instant::now() < resume_deadline, "the relay did not resume within 120s of the broker's restart");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    first_half.await.unwrap().unwrap();
    second_half.await.unwrap().unwrap();

    let (ids, total) = support::wait_for_all(&scenario, n).await;
    terminate(child);
    let lost: Vec<u64> = (0..n).filter(|id| !ids.contains(id)).collect();
    println!(
        "broker restart run on {}: broker down for {:?}, flow resumed {:?} after it was back; {} of {n} recorded, {} lost, {} duplicates, {:?} in all",
        broker.label(),
        back_at - down_at,
        recovered,
        ids.len(),
        lost.len(),
        total - ids.len(),
        started.elapsed()
    );
    assert!(
        lost.is_empty(),
        "{} events lost on {} across a broker restart (first: {:?}); logs in {}",
        lost.len(),
        broker.label(),
        &lost[..lost.len().min(10)],
        scenario.dir.display()
    );
    let _ = std::fs::remove_dir_all(&scenario.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_restart_loses_nothing() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/rabbitmq");
    restart_run(
        rabbit(),
        messages(10_000),
        |_| {},
        |_| {
            let status = std::process::Command::new(script).arg("restart").status().unwrap();
            assert!(status.success(), "scripts/rabbitmq restart failed: {status}");
        },
    )
    .await;
}

/// The Kafka run: librdkafka's MockCluster in this process, its one broker taken down and
/// brought up again while the service (a child process) moves events through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_and_up_on_kafka_mock_cluster_loses_nothing() {
    let cluster = rdkafka::mocking::MockCluster::new(1).expect("a librdkafka mock cluster");
    let brokers = cluster.bootstrap_servers();
    restart_run(
        Broker::Kafka { label: "kafka-mock", brokers },
        messages(3_000),
        |scenario| {
            for topic in scenario.kafka_topics() {
                cluster.create_topic(&topic, support::MOCK_PARTITIONS, 1).expect("mock topic");
            }
        },
        |scenario| {
            let logged = scenario.log().len();
            // -1: every broker of the cluster (it has one).
            cluster.broker_down(-1).expect("broker down");
            let down_at = Instant::now();
            let noticed = loop {
                let log = scenario.log();
                let news = log.get(logged..).unwrap_or_default();
                if news.contains(NOTICED) {
                    break Some(down_at.elapsed());
                }
                if down_at.elapsed() > Duration::from_secs(10) {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            std::thread::sleep(MOCK_DOWN_FOR.saturating_sub(down_at.elapsed()));
            cluster.broker_up(-1).expect("broker up");
            // Reported, not asserted: when librdkafka declares every broker down depends on its
            // reconnect timers (seen from 26 µs to 38 s after the outage began). What the run
            // asserts is that nothing is lost and the flow resumes by itself.
            match noticed {
                Some(after) => println!("  the service logged `{NOTICED}` {after:?} after the broker went down"),
                None => println!("  the service did not log `{NOTICED}` within 10 s of the broker going down"),
            }
        },
    )
    .await;
    drop(cluster);
}

/// A tansu of this run's own, on `s3://` storage in a local S3 server, both started by the
/// project's scripts; stopped (tansu first) when dropped, also when the run fails.
struct DurableTansu {
    env: Vec<(String, String)>,
}

const DURABLE_TANSU_ADDR: &str = "127.0.0.1:19092";

impl DurableTansu {
    fn script(name: &str) -> std::process::Command {
        let mut c = std::process::Command::new(format!("{}/../scripts/{name}", env!("CARGO_MANIFEST_DIR")));
        c.env("S3_STATE_DIR", Self::state("s3"))
            .env("TANSU_ADDR", DURABLE_TANSU_ADDR)
            .env("TANSU_STATE_DIR", Self::state("tansu-s3"))
            .env("TANSU_STORAGE", "s3://tansu/");
        c
    }

    fn state(name: &str) -> String {
        format!("{}/../target/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    fn run(what: &str, command: &mut std::process::Command) {
        let status = command.status().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(status.success(), "{what} failed: {status}");
    }

    fn start() -> Self {
        Self::run("scripts/s3 start", Self::script("s3").arg("start"));
        let out = Self::script("s3").arg("env").output().expect("scripts/s3 env");
        let env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>();
        assert!(env.iter().any(|(k, _)| k == "AWS_ENDPOINT"), "scripts/s3 env printed no endpoint");
        let tansu = Self { env };
        Self::run("scripts/tansu start (s3 storage)", tansu.tansu().arg("start"));
        tansu
    }

    fn tansu(&self) -> std::process::Command {
        let mut c = Self::script("tansu");
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    fn restart(&self) {
        Self::run("scripts/tansu restart (s3 storage)", self.tansu().arg("restart"));
    }
}

impl Drop for DurableTansu {
    fn drop(&mut self) {
        let _ = self.tansu().arg("stop").status();
        let _ = Self::script("s3").arg("stop").status();
    }
}

/// tansu stopped (SIGTERM) and started again on its durable storage while the relay moves
/// events through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tansu_restart_on_durable_storage_loses_nothing() {
    let tansu = DurableTansu::start();
    let n = std::env::var("RESTART_TANSU_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    restart_run(
        Broker::Kafka { label: "kafka-tansu-s3", brokers: DURABLE_TANSU_ADDR.into() },
        n,
        |_| {},
        |_| tansu.restart(),
    )
    .await;
    drop(tansu);
}
