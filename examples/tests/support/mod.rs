//! Shared pieces of the out-of-process runs (`crash.rs`, `broker_restart.rs`, `poison.rs`): the relay
//! service as a child process, its config on a given broker, a feeder, and the record of what
//! reached the sink.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bindery::prelude::*;

// The feeders in the runner process talk to the same brokers as the service.
use bindery_kafka as _;
use bindery_rabbit as _;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    id: u64,
    #[serde(default)]
    poison: bool,
    #[serde(default)]
    body: String,
}

/// Where the service runs.
pub enum Broker {
    Rabbit(String),
    Kafka { label: &'static str, brokers: String },
}

impl Broker {
    pub fn label(&self) -> &str {
        match self {
            Broker::Rabbit(_) => "rabbit",
            Broker::Kafka { label, .. } => label,
        }
    }

    /// The `[binders.broker]` entry both the service and the feeder use.
    pub fn binder_toml(&self) -> String {
        match self {
            Broker::Rabbit(uri) => format!("[binders.broker]\ntype = \"rabbit\"\nuri = \"{uri}\"\n"),
            Broker::Kafka { label, brokers } => {
                // tansu (0.6.0) answers a Fetch that starts inside a record batch with the batches
                // *after* it, so a consumer resuming from a committed offset in the middle of a
                // batch never sees the rest of that batch
                // (binder-kafka/tests/interop/tansu_fetch_mid_batch.py). One record per batch
                // makes every committed offset a batch boundary.
                let mut tansu =
                    if label.contains("tansu") { "\"batch.num.messages\" = \"1\"\n" } else { "" }.to_string();
                // tansu's object-store storage (the broker-restart run) advances an idempotent
                // producer's sequence before it writes the batch. A stop in between leaves the
                // sequence moved and the batch unwritten; the producer's retry is then answered
                // DUPLICATE_SEQUENCE_NUMBER, which Kafka clients take as "already written", and
                // the record is gone (one event in a 500-event run; tansu-storage 0.6.0
                // `dynostore.rs`, `produce`). Without idempotence the retry writes it again.
                if label.contains("s3") {
                    tansu.push_str("\"enable.idempotence\" = \"false\"\n");
                }
                format!(
                    "[binders.broker]\ntype = \"kafka\"\nbrokers = \"{brokers}\"\n[binders.broker.config]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n{tansu}"
                )
            }
        }
    }
}

/// Partitions of each topic a run creates on librdkafka's mock cluster. The mock broker keeps
/// only 5 MiB of records per partition and drops the oldest beyond that, read or not; spread
/// over this many partitions, a full-size run's backlog (100,000 events of about 250 bytes)
/// stays far inside what it keeps, so nothing is lost to the broker itself.
pub const MOCK_PARTITIONS: i32 = 16;

pub fn rabbit() -> Broker {
    Broker::Rabbit(std::env::var("TEST_RABBIT_URI").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()))
}

pub fn tansu() -> Broker {
    Broker::Kafka {
        label: "kafka-tansu",
        brokers: std::env::var("TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into()),
    }
}

/// Run parameters from the environment, with the short version's defaults.
pub struct Params {
    pub messages: u64,
    pub kills: u32,
    pub seed: u64,
}

impl Params {
    pub fn from_env() -> Self {
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
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = (hi - lo).as_millis() as u64;
        lo + Duration::from_millis(self.next() % span.max(1))
    }
}

/// One run's files and names.
pub struct Scenario {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub record: PathBuf,
    pub starts: u32,
    /// Suffix of this run's destination names.
    pub tag: String,
}

impl Scenario {
    pub fn new(broker: &Broker) -> Self {
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
        Scenario { dir, config, record, starts: 0, tag }
    }

    /// Every topic/exchange the run uses, dead-letter topics included (Kafka naming), for
    /// brokers where the runner must create them first (librdkafka's mock cluster has no
    /// CreateTopics).
    pub fn kafka_topics(&self) -> Vec<String> {
        let (input, output) = (format!("crash-in-{}", self.tag), format!("crash-out-{}", self.tag));
        vec![format!("error.{input}.relay"), format!("error.{output}.recorder"), input, output]
    }

    /// Starts the service and waits until its bindings are up.
    pub fn start(&mut self) -> Service {
        self.starts += 1;
        let log = self.dir.join(format!("relay-{}.log", self.starts));
        let child = Command::new(env!("CARGO_BIN_EXE_relay"))
            .arg("--serve")
            .env("RELAY_CONFIG", &self.config)
            .env("RELAY_RECORD", &self.record)
            .env("RUST_LOG", std::env::var("RELAY_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut child = child;
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("relay: ready") {
                return Service(child);
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

    /// What the running incarnation of the service has logged so far (its stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("relay-{}.log", self.starts))).unwrap_or_default()
    }

    /// Ids recorded so far: (distinct, total lines). A line torn by SIGKILL is not counted; its
    /// delivery was never acknowledged, so it comes again.
    pub fn recorded(&self) -> (HashSet<u64>, usize) {
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

/// How long the final wait goes on without a new record before the run gives up.
pub const STALL_LIMIT: Duration = Duration::from_secs(120);

/// Waits until all `n` events were recorded, or until nothing new was recorded for
/// [`STALL_LIMIT`]: a slow broker (tansu with one record per batch moved 400–1,100 events/s
/// on 2 cores, depending on the day) may take long, but a run that stopped moving ends.
/// Returns what was recorded, as [`Scenario::recorded`].
pub async fn wait_for_all(scenario: &Scenario, n: u64) -> (HashSet<u64>, usize) {
    let mut last = (0usize, Instant::now());
    loop {
        let (ids, total) = scenario.recorded();
        if ids.len() as u64 >= n || (total == last.0 && last.1.elapsed() > STALL_LIMIT) {
            return (ids, total);
        }
        if total != last.0 {
            last = (total, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The service as a child process. Dropped while still running (a run that failed and
/// unwound), it is killed, so a failed run never leaves a service behind consuming the broker.
pub struct Service(Child);

impl std::ops::Deref for Service {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Service {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Stops the service with SIGTERM (a graceful drain), or SIGKILL after 20 s.
pub fn terminate(mut child: Service) {
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

/// Publishes `n` events into the relay's input through bindery itself, pipelined. A send the
/// broker did not confirm (it may be restarting) is sent again until it is: the feeder is
/// at-least-once too.
pub async fn feed(config: &Path, n: u64) -> bindery::Result<()> {
    feed_ids(config, 0..n).await
}

/// Feeds the events with the ids in `ids` (see [`feed`]).
pub async fn feed_ids(config: &Path, ids: std::ops::Range<u64>) -> bindery::Result<()> {
    let app = bindery::App::builder().config_file(config).registered_handlers(false).build()?.start().await?;
    let source = app.source::<Event>("relay-feed")?;
    let event = |id| Message::new(Event { id, poison: false, body: String::new() });
    let mut pending = std::collections::VecDeque::new();
    let mut resent = 0u64;
    for id in ids {
        match source.dispatch(event(id)).await {
            Ok(c) => pending.push_back((id, c)),
            Err(_) => resend(&source, event(id), &mut resent).await?,
        }
        if pending.len() >= 512 {
            if let Some((id, c)) = pending.pop_front() {
                if c.await.is_err() {
                    resend(&source, event(id), &mut resent).await?;
                }
            }
        }
    }
    for (id, c) in pending {
        if c.await.is_err() {
            resend(&source, event(id), &mut resent).await?;
        }
    }
    if resent > 0 {
        println!("  feeder: {resent} sends repeated after the broker did not confirm them");
    }
    app.shutdown().await
}

async fn resend(source: &bindery::Source<Event>, message: Message<Event>, resent: &mut u64) -> bindery::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        *resent += 1;
        match source.send_message(message.clone()).await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}
