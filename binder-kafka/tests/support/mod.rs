//! Test support: librdkafka's in-process mock cluster, a real-broker address, and a plain
//! rdkafka reader for checking what landed on a topic.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bindery::{Bytes, Error, ErrorKind, HeaderValue, Headers, Message, RawMessage, Result};
use bindery_kafka::{ConfigValue, KafkaBinder, KafkaOptions};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers as _;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, Producer as _};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// An in-process Kafka cluster (librdkafka's mock), alive as long as this value.
pub struct Mock {
    owner: BaseProducer,
    pub bootstrap: String,
}

impl Mock {
    pub fn new() -> Self {
        init_logs();
        let owner: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", "1")
            .set("log_level", "3")
            .create()
            .expect("mock cluster client");
        let handle = owner.client().native_ptr();
        #[allow(unsafe_code)]
        // SAFETY: `handle` is the live client created above, which owns the mock cluster; the
        // cluster pointer is used at once, while `owner` is borrowed, and never stored.
        unsafe {
            let cluster = rdkafka::bindings::rd_kafka_handle_mock_cluster(handle);
            assert!(!cluster.is_null(), "client has no mock cluster");
            // Groups rebalance at once instead of waiting 3 s for more members.
            rdkafka::bindings::rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, 0);
        }
        let bootstrap = owner.client().mock_cluster().expect("mock cluster").bootstrap_servers();
        Mock { owner, bootstrap }
    }

    /// The mock cluster, for fault injection.
    pub fn cluster(&self) -> MockCluster<'_, rdkafka::producer::DefaultProducerContext> {
        self.owner.client().mock_cluster().expect("mock cluster")
    }
}

/// The binder on a mock cluster. librdkafka's mock broker has no CreateTopics/CreatePartitions
/// API, so destinations are created through the mock's own API first (4 partitions, as a
/// broker's `num.partitions` would), then the binder finds them existing.
pub struct MockBinder {
    pub inner: Arc<KafkaBinder>,
    pub mock: Arc<Mock>,
}

impl MockBinder {
    fn create(&self, topic: &str, partitions: u32) {
        let _ = self.mock.cluster().create_topic(topic, partitions.max(4) as i32, 1);
    }
}

#[async_trait::async_trait]
impl bindery::Binder for MockBinder {
    fn kind(&self) -> &str {
        self.inner.kind()
    }
    async fn bind_producer(&self, spec: &bindery::binder::ProducerSpec) -> Result<Arc<dyn bindery::binder::Producer>> {
        self.create(&spec.destination, spec.partition_count);
        self.inner.bind_producer(spec).await
    }
    async fn bind_consumer(
        &self,
        spec: &bindery::binder::ConsumerSpec,
        channel: bindery::binder::InputChannel,
    ) -> Result<Box<dyn bindery::binder::ConsumerBinding>> {
        self.create(&spec.destination, 1);
        self.inner.bind_consumer(spec, channel).await
    }
    fn dead_letter_destination(&self, destination: &str, group: &str) -> String {
        self.inner.dead_letter_destination(destination, group)
    }
    fn check_options(
        &self,
        binding: &str,
        options: &std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Result<()> {
        self.inner.check_options(binding, options)
    }
    fn health(&self) -> bindery::Health {
        self.inner.health()
    }
    async fn shutdown(&self) -> Result<()> {
        self.inner.shutdown().await
    }
}

pub fn mock_binder(mock: &Arc<Mock>) -> Arc<MockBinder> {
    Arc::new(MockBinder { inner: binder(&mock.bootstrap), mock: mock.clone() })
}

/// Binder options for a test broker: short sessions, fast metadata refresh.
pub fn options(brokers: &str) -> KafkaOptions {
    let mut o = KafkaOptions::default();
    o.brokers = brokers.to_string();
    o.replication_factor = 1;
    o.commit_interval = Duration::from_millis(100);
    o.health_interval = Duration::from_millis(500);
    for (k, v) in [
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "500"),
        ("topic.metadata.refresh.interval.ms", "1000"),
        ("log_level", "3"),
    ] {
        o.config.insert(k.into(), ConfigValue::Text(v.into()));
    }
    // Diagnosing a run: TEST_KAFKA_DEBUG=cgrp,fetch turns on librdkafka's debug contexts
    // (seen with RUST_LOG=librdkafka=debug).
    if let Ok(contexts) = std::env::var("TEST_KAFKA_DEBUG") {
        o.config.insert("debug".into(), ConfigValue::Text(contexts));
        o.config.insert("log_level".into(), ConfigValue::Text("7".into()));
    }
    o
}

pub fn binder(brokers: &str) -> Arc<KafkaBinder> {
    Arc::new(KafkaBinder::new(options(brokers)).expect("kafka binder"))
}

/// The message a plain rdkafka consumer sees (headers, key as `key`, payload).
pub fn to_message<M: rdkafka::Message>(m: &M) -> RawMessage {
    let mut headers = Headers::new();
    if let Some(hs) = m.headers() {
        for h in hs.iter() {
            headers.insert(h.key.to_string(), HeaderValue::from(h.value.unwrap_or_default()));
        }
    }
    if let Some(k) = m.key() {
        headers.insert("key", HeaderValue::from(k));
    }
    Message::from_parts(Bytes::copy_from_slice(m.payload().unwrap_or_default()), headers)
}

/// Reads `expected` records of `topic` from the beginning (waiting for the topic to appear).
pub async fn read_topic(brokers: &str, topic: &str, expected: usize, timeout: Duration) -> Result<Vec<RawMessage>> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{}", uuid::Uuid::new_v4().simple()))
        .set("enable.auto.commit", "false")
        .set("log_level", "3")
        .create()
        .map_err(|e| Error::broker(e.to_string()))?;
    let deadline = Instant::now() + timeout;
    let partitions = loop {
        let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(2));
        if let Ok(md) = md {
            if let Some(t) = md.topics().iter().find(|t| t.name() == topic && t.error().is_none()) {
                if !t.partitions().is_empty() {
                    break t.partitions().len();
                }
            }
        }
        if Instant::now() > deadline {
            return Err(Error::new(ErrorKind::Timeout, format!("topic `{topic}` never appeared")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        tpl.add_partition_offset(topic, p, Offset::Beginning).map_err(|e| Error::broker(e.to_string()))?;
    }
    consumer.assign(&tpl).map_err(|e| Error::broker(e.to_string()))?;
    let mut out = Vec::new();
    while out.len() < expected {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(m)) => out.push(to_message(&m)),
            Ok(Err(e)) => tracing_warn(&e.to_string()),
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("{} of {expected} records on `{topic}` within {timeout:?}", out.len()),
                ));
            }
        }
    }
    Ok(out)
}

fn tracing_warn(e: &str) {
    eprintln!("reader: {e}");
}

/// The real broker's address for the tansu tier.
pub fn real_brokers() -> String {
    std::env::var("TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// Fails loudly when no broker answers at `brokers`.
pub fn require_broker(brokers: &str) {
    let consumer: rdkafka::consumer::BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", brokers).set("log_level", "0").create().expect("probe client");
    if let Err(e) = consumer.fetch_metadata(None, Duration::from_secs(5)) {
        panic!(
            "no Kafka-protocol broker at {brokers} ({e}). Start one with `scripts/tansu start` \
             (or point TEST_KAFKA_BROKERS at a broker); these tests never skip."
        );
    }
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}
