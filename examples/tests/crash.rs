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
//! Brokers: RabbitMQ at `BINDERY_TEST_RABBIT_URI` and tansu at `BINDERY_TEST_KAFKA_BROKERS`
//! (started by `scripts/test`), and librdkafka's MockCluster living in this runner process while
//! the service connects to it over TCP. A broker that cannot be reached fails the run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bindery::prelude::*;

use bindery_kafka as _;
use bindery_rabbit as _;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Event {
    id: u64,
    #[serde(default)]
    poison: bool,
    #[serde(default)]
    body: String,
}

/// Where the service runs.
enum Broker {
    Rabbit(String),
    Kafka { label: &'static str, brokers: String },
}

impl Broker {
    fn label(&self) -> &str {
        match self {
            Broker::Rabbit(_) => "rabbit",
            Broker::Kafka { label, .. } => label,
        }
    }

    /// The `[binders.broker]` entry both the service and the feeder use.
    fn binder_toml(&self) -> String {
        match self {
            Broker::Rabbit(uri) => format!("[binders.broker]\ntype = \"rabbit\"\nuri = \"{uri}\"\n"),
            Broker::Kafka { brokers, .. } => format!(
                "[binders.broker]\ntype = \"kafka\"\nbrokers = \"{brokers}\"\n[binders.broker.config]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n"
            ),
        }
    }
}

fn rabbit() -> Broker {
    Broker::Rabbit(
        std::env::var("BINDERY_TEST_RABBIT_URI").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
    )
}

fn tansu() -> Broker {
    Broker::Kafka {
        label: "kafka-tansu",
        brokers: std::env::var("BINDERY_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into()),
    }
}

/// Run parameters from the environment, with the short version's defaults.
struct Params {
    messages: u64,
    kills: u32,
    seed: u64,
}

impl Params {
    fn from_env() -> Self {
        let num = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
        let clock =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        Params {
            messages: num("CRASH_MESSAGES", 10_000),
            kills: num("CRASH_KILLS", 3) as u32,
            seed: num("CRASH_SEED", clock),
        }
    }
}

/// xorshift64*: a tiny seeded generator, so a run's kill moments can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = (hi - lo).as_millis() as u64;
        lo + Duration::from_millis(self.next() % span.max(1))
    }
}

/// One run's files and names.
struct Scenario {
    dir: PathBuf,
    config: PathBuf,
    record: PathBuf,
    starts: u32,
}

impl Scenario {
    fn new(broker: &Broker) -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("bindery-crash-{}-{}", broker.label(), &tag[..12]));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("relay.toml");
        let toml = format!(
            r#"default-binder = "broker"
shutdown-timeout = "10s"
binding-retry-interval = "1s"

{binder}
[bindings.relay-in]
destination = "crash-in-{tag}"
group = "relay"

[bindings.relay-in.consumer]
concurrency = 4
max-attempts = 2
backoff-initial = "10ms"

[bindings.relay-out]
destination = "crash-out-{tag}"

[bindings.record-in]
destination = "crash-out-{tag}"
group = "recorder"

[bindings.relay-feed]
destination = "crash-in-{tag}"
"#,
            binder = broker.binder_toml()
        );
        std::fs::write(&config, toml).unwrap();
        let record = dir.join("record.txt");
        Scenario { dir, config, record, starts: 0 }
    }

    /// Starts the service and waits until its bindings are up.
    fn start(&mut self) -> Child {
        self.starts += 1;
        let log = self.dir.join(format!("relay-{}.log", self.starts));
        let child = Command::new(env!("CARGO_BIN_EXE_relay"))
            .arg("--serve")
            .env("RELAY_CONFIG", &self.config)
            .env("RELAY_RECORD", &self.record)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut child = child;
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("relay: ready") {
                return child;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("relay exited with {status} before it was ready:\n{text}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("relay not ready within 90s:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Ids recorded so far: (distinct, total lines). A line torn by SIGKILL is not counted; its
    /// delivery was never acknowledged, so it comes again.
    fn recorded(&self) -> (HashSet<u64>, usize) {
        let text = std::fs::read_to_string(&self.record).unwrap_or_default();
        let mut ids = HashSet::new();
        let mut total = 0;
        for line in text.lines() {
            if let Ok(id) = line.parse::<u64>() {
                ids.insert(id);
                total += 1;
            }
        }
        (ids, total)
    }
}

/// Stops the service with SIGTERM (a graceful drain), or SIGKILL after 20 s.
fn terminate(mut child: Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Publishes `n` events into the relay's input through bindery itself, pipelined.
async fn feed(config: &Path, n: u64) -> bindery::Result<()> {
    let app = bindery::App::builder().config_file(config).registered_handlers(false).build()?.start().await?;
    let source = app.source::<Event>("relay-feed")?;
    let mut pending = std::collections::VecDeque::new();
    for id in 0..n {
        pending.push_back(source.dispatch(Message::new(Event { id, poison: false, body: String::new() })).await?);
        if pending.len() >= 512 {
            if let Some(c) = pending.pop_front() {
                c.await?;
            }
        }
    }
    for c in pending {
        c.await?;
    }
    app.shutdown().await
}

/// The whole run on one broker; returns the duplicate count.
async fn crash_run(broker: Broker) -> u64 {
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
    let mut child = scenario.start();
    let started = Instant::now();

    let config = scenario.config.clone();
    let n = p.messages;
    let feeder = tokio::spawn(async move { feed(&config, n).await });

    let mut rng = Rng::new(p.seed);
    let mut kill_log = Vec::new();
    for k in 0..p.kills {
        tokio::time::sleep(rng.between(Duration::from_millis(300), Duration::from_millis(2_500))).await;
        let before = scenario.recorded().0.len();
        child.kill().unwrap(); // SIGKILL: no drain, no flush, unacknowledged work stays at the broker
        child.wait().unwrap();
        let t = Instant::now();
        child = tokio::task::block_in_place(|| scenario.start());
        kill_log.push(format!(
            "kill {} at {:?} with {before} recorded; back in {:?}",
            k + 1,
            started.elapsed(),
            t.elapsed()
        ));
    }
    feeder.await.unwrap().unwrap();

    let deadline = Instant::now() + Duration::from_secs(120);
    let (ids, total) = loop {
        let (ids, total) = scenario.recorded();
        if ids.len() as u64 >= p.messages || Instant::now() > deadline {
            break (ids, total);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
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
    crash_run(rabbit()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_and_restart_on_tansu_loses_nothing() {
    crash_run(tansu()).await;
}
