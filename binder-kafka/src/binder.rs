//! The `kafka` binder and its registration.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use bindery::binder::{ConsumerBinding, ConsumerSpec, InputChannel, Producer, ProducerRole, ProducerSpec};
use bindery::{Binder, BinderSettings, Error, Health, Result, StartOffset};
use rdkafka::consumer::Consumer;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::admin::{self, Admin};
use crate::config::{ConfigValue, KafkaBindingOptions, KafkaOptions, is_secret_key};
use crate::consumer::{self, ConsumerCtx, KafkaConsumer, Shared};
use crate::context::{Context, Lag, Reachability, lock};
use crate::naming;
use crate::producer::{self, KafkaProducer};

/// The Kafka binder: topics for destinations, `group.id` for groups, one pipelined producer
/// shared by the binder's output bindings.
///
/// Apps normally get it from config (`type = "kafka"`); build one directly to hand it to
/// `AppBuilder::binder` or a test harness:
///
/// ```no_run
/// # fn main() -> bindery::Result<()> {
/// let mut options = bindery_kafka::KafkaOptions::default();
/// options.brokers = "127.0.0.1:9092".into();
/// let binder = bindery_kafka::KafkaBinder::new(options)?;
/// assert_eq!(bindery::Binder::kind(&binder), "kafka");
/// # Ok(()) }
/// ```
pub struct KafkaBinder {
    opts: Arc<KafkaOptions>,
    reach: Arc<Reachability>,
    secrets: Arc<Vec<String>>,
    admin: Arc<Admin>,
    producer: Mutex<Option<Arc<producer::Client>>>,
}

impl std::fmt::Debug for KafkaBinder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBinder").field("options", &self.opts).finish_non_exhaustive()
    }
}

fn producer_defaults() -> Vec<(&'static str, String)> {
    vec![
        ("enable.idempotence", "true".into()),
        ("acks", "all".into()),
        // Java's default partitioner hashes keys with murmur2: same key, same partition.
        ("partitioner", "murmur2_random".into()),
        ("allow.auto.create.topics", "false".into()),
    ]
}

impl KafkaBinder {
    /// A binder for `options`. Creates no connection yet; fails only on invalid librdkafka
    /// config (with secret values removed from the message).
    ///
    /// ```
    /// let mut o = bindery_kafka::KafkaOptions::default();
    /// o.config.insert("no.such.property".into(), bindery_kafka::ConfigValue::Int(1));
    /// let e = bindery_kafka::KafkaBinder::new(o).unwrap_err();
    /// assert!(e.to_string().contains("no.such.property"), "{e}");
    /// ```
    pub fn new(options: KafkaOptions) -> Result<Self> {
        let secrets: Vec<String> = options
            .config
            .iter()
            .filter(|(k, v)| is_secret_key(k) && !v.to_string().is_empty())
            .map(|(_, v)| v.to_string())
            .collect();
        let reach = Arc::new(Reachability::default());
        let secrets = Arc::new(secrets);
        let ctx = Context { reach: reach.clone(), lag: None, secrets: secrets.clone(), ledger: Arc::default() };
        let cfg = options.client_config(&[("allow.auto.create.topics", "false".into())], &BTreeMap::new());
        let admin: Admin = create(&options, &cfg, ctx, "admin client")?;
        Ok(Self { opts: Arc::new(options), reach, secrets, admin: Arc::new(admin), producer: Mutex::new(None) })
    }

    /// The binder's settings.
    ///
    /// ```no_run
    /// # fn main() -> bindery::Result<()> {
    /// let b = bindery_kafka::KafkaBinder::new(Default::default())?;
    /// assert_eq!(b.options().brokers, "127.0.0.1:9092");
    /// # Ok(()) }
    /// ```
    pub fn options(&self) -> &KafkaOptions {
        &self.opts
    }

    fn context(&self, lag: Option<(String, Arc<Lag>)>) -> Context {
        Context { reach: self.reach.clone(), lag, secrets: self.secrets.clone(), ledger: Arc::default() }
    }

    fn producer_client(&self, overrides: &BTreeMap<String, ConfigValue>) -> Result<Arc<producer::Client>> {
        if !overrides.is_empty() {
            let cfg = self.opts.client_config(&producer_defaults(), overrides);
            return Ok(Arc::new(create(&self.opts, &cfg, self.context(None), "producer")?));
        }
        let mut shared = lock(&self.producer);
        if let Some(p) = shared.as_ref() {
            return Ok(p.clone());
        }
        let cfg = self.opts.client_config(&producer_defaults(), overrides);
        let p: Arc<producer::Client> = Arc::new(create(&self.opts, &cfg, self.context(None), "producer")?);
        *shared = Some(p.clone());
        Ok(p)
    }
}

fn create<T: rdkafka::config::FromClientConfigAndContext<C>, C: rdkafka::ClientContext>(
    opts: &KafkaOptions,
    cfg: &ClientConfig,
    ctx: C,
    what: &str,
) -> Result<T> {
    cfg.create_with_context(ctx).map_err(|e| {
        Error::config(
            "configuration",
            "binders.<kafka>.config",
            format!("cannot create Kafka {what}: {}", opts.redact(&e.to_string())),
        )
    })
}

#[async_trait]
impl Binder for KafkaBinder {
    fn kind(&self) -> &str {
        "kafka"
    }

    async fn bind_producer(&self, spec: &ProducerSpec) -> Result<Arc<dyn Producer>> {
        let options = KafkaBindingOptions::from_map(&spec.binding, &spec.options)?;
        let dead_letter = matches!(spec.role, ProducerRole::DeadLetter { .. });
        let wanted = spec.partition_count.max(self.opts.min_partition_count).max(1) as usize;
        admin::ensure_topic(&self.admin, &self.opts, &spec.binding, &spec.destination, wanted, true).await?;
        let client = self.producer_client(&options.config)?;
        Ok(Arc::new(KafkaProducer {
            ledger: rdkafka::producer::Producer::context(client.as_ref()).ledger.clone(),
            client,
            topic: spec.destination.clone(),
            binding: spec.binding.clone(),
            dead_letter,
        }))
    }

    async fn bind_consumer(&self, spec: &ConsumerSpec, channel: InputChannel) -> Result<Box<dyn ConsumerBinding>> {
        let options = KafkaBindingOptions::from_map(&spec.binding, &spec.options)?;
        let topic = spec.destination.clone();
        let partitions = admin::ensure_topic(
            &self.admin,
            &self.opts,
            &spec.binding,
            &topic,
            self.opts.min_partition_count.max(1) as usize,
            false,
        )
        .await?;
        let anonymous = spec.group.is_none();
        let group = spec.group.clone().unwrap_or_else(naming::anonymous_group);
        let reset = match spec.start_offset {
            StartOffset::Earliest => "earliest",
            _ => "latest",
        };
        let defaults = vec![
            ("group.id", group.clone()),
            ("enable.auto.commit", (!anonymous).to_string()),
            ("enable.auto.offset.store", "false".into()),
            ("auto.commit.interval.ms", self.opts.commit_interval.as_millis().max(1).to_string()),
            ("auto.offset.reset", reset.into()),
            ("enable.partition.eof", "false".into()),
            ("allow.auto.create.topics", "false".into()),
            ("topic.metadata.refresh.interval.ms", "10000".into()),
            // A bounded prefetch, like a RabbitMQ prefetch count: 16 MiB per consumer instead
            // of librdkafka's 64 MiB. Only the size is bounded: smaller bounds stopped fetches
            // early (a 1,000-message count bound, or 4 MiB, read a tansu backlog at 0.7-0.8x
            // the raw client's rate; 16 MiB at 0.98x). See the crate README.
            ("queued.max.messages.kbytes", "16384".into()),
            // Fetch again soon after the queue drains below that bound (librdkafka waits 1 s).
            ("fetch.queue.backoff.ms", "20".into()),
        ];
        let cfg = self.opts.client_config(&defaults, &options.config);
        let lag = Arc::new(Lag::default());
        let shared = Arc::new(Shared {
            tracker: Default::default(),
            topic: topic.clone(),
            binding: spec.binding.clone(),
            commits: !anonymous,
            consumer: OnceLock::new(),
            assigned: Default::default(),
            dirty: Default::default(),
            topic_header: bindery::HeaderValue::from(topic.clone()),
        });
        let ctx = ConsumerCtx { base: self.context(Some((topic.clone(), lag.clone()))), shared: shared.clone() };
        let client: Arc<consumer::Client> = Arc::new(create(&self.opts, &cfg, ctx, "consumer")?);
        let _ = shared.consumer.set(Arc::downgrade(&client));
        let broker_err = |e: rdkafka::error::KafkaError| {
            Error::broker(format!(
                "binding `{}`: cannot consume topic `{topic}`: {}",
                spec.binding,
                self.opts.redact(&e.to_string())
            ))
        };
        let notifier = shared.clone();
        let wait_assigned = notifier.assigned.notified();
        tokio::pin!(wait_assigned);
        wait_assigned.as_mut().enable();
        if anonymous {
            // Every partition, from where the log ends now (or begins): nothing published after
            // this bind returns is missed.
            let c = client.clone();
            let (t, timeout, latest) =
                (topic.clone(), self.opts.bind_timeout, spec.start_offset != StartOffset::Earliest);
            let tpl = tokio::task::spawn_blocking(move || -> rdkafka::error::KafkaResult<TopicPartitionList> {
                let mut tpl = TopicPartitionList::new();
                for p in 0..partitions as i32 {
                    let offset =
                        if latest { Offset::Offset(c.fetch_watermarks(&t, p, timeout)?.1) } else { Offset::Beginning };
                    tpl.add_partition_offset(&t, p, offset)?;
                }
                Ok(tpl)
            })
            .await
            .map_err(|e| Error::broker(format!("assign task failed: {e}")))?
            .map_err(broker_err)?;
            client.assign(&tpl).map_err(broker_err)?;
        } else {
            client.subscribe(&[&topic]).map_err(broker_err)?;
        }
        let stop = CancellationToken::new();
        let lost = CancellationToken::new();
        let task = tokio::spawn(consumer::pump(client.clone(), shared.clone(), channel, stop.clone(), lost.clone()));
        let every = (self.opts.commit_interval / 4)
            .clamp(std::time::Duration::from_millis(10), std::time::Duration::from_millis(250));
        let storer = tokio::spawn(consumer::storer(shared.clone(), every, stop.clone()));
        if !anonymous && spec.start_offset != StartOffset::Earliest {
            // A new group reading from `latest` starts where the log ends at assignment: wait for
            // it, so messages published after this bind returns are seen.
            if tokio::time::timeout(self.opts.bind_timeout, &mut wait_assigned).await.is_err() {
                tracing::warn!(binding = %spec.binding, "no partitions assigned within bind-timeout; consuming once the group assigns some");
            }
        }
        tracing::debug!(binding = %spec.binding, %topic, %group, anonymous, "consumer bound");
        Ok(Box::new(KafkaConsumer {
            client: Mutex::new(Some(client)),
            shared,
            stop,
            lost,
            task: Mutex::new(Some(task)),
            storer: Mutex::new(Some(storer)),
            lag,
            reach: self.reach.clone(),
        }))
    }

    fn dead_letter_destination(&self, destination: &str, group: &str) -> String {
        naming::dead_letter_topic(destination, group)
    }

    fn check_options(&self, binding: &str, options: &BTreeMap<String, serde_json::Value>) -> Result<()> {
        KafkaBindingOptions::from_map(binding, &options.clone().into_iter().collect()).map(|_| ())
    }

    fn health(&self) -> Health {
        self.reach.health()
    }

    async fn shutdown(&self) -> Result<()> {
        let producer = lock(&self.producer).take();
        if let Some(p) = producer {
            let timeout = self.opts.bind_timeout;
            let _ = tokio::task::spawn_blocking(move || {
                use rdkafka::producer::Producer as _;
                p.flush(timeout)
            })
            .await;
        }
        Ok(())
    }
}

fn create_binder(settings: &BinderSettings) -> Result<Arc<dyn Binder>> {
    let options: KafkaOptions = settings.options()?;
    let binder = KafkaBinder::new(options).map_err(|e| {
        if e.is_config() { Error::config("configuration", format!("binders.{}.config", settings.name()), e) } else { e }
    })?;
    Ok(Arc::new(binder))
}

bindery::register_binder!("kafka", create_binder);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_errors_and_debug() {
        let mut o = KafkaOptions::default();
        o.config.insert("sasl.password".into(), ConfigValue::Text("s3cr3t-value".into()));
        // librdkafka quotes the value it rejects: here the secret, in the wrong property.
        o.config.insert("security.protocol".into(), ConfigValue::Text("s3cr3t-value".into()));
        let e = KafkaBinder::new(o.clone()).unwrap_err().to_string();
        assert!(!e.contains("s3cr3t-value"), "{e}");
        assert!(e.contains("security.protocol"), "the error still names the property: {e}");
        o.config.remove("security.protocol");
        let b = KafkaBinder::new(o).unwrap();
        assert!(!format!("{b:?}").contains("s3cr3t-value"));
    }

    #[test]
    fn binding_options_checked_at_startup() {
        let b = KafkaBinder::new(KafkaOptions::default()).unwrap();
        let mut ok = BTreeMap::new();
        ok.insert("config".to_string(), serde_json::json!({"linger.ms": 1}));
        assert!(b.check_options("orders", &ok).is_ok());
        let mut bad = BTreeMap::new();
        bad.insert("lingr".to_string(), serde_json::json!(1));
        let e = b.check_options("orders", &bad).unwrap_err().to_string();
        assert!(e.contains("bindings.orders.options") && e.contains("lingr"), "{e}");
        assert_eq!(b.dead_letter_destination("orders", "billing"), "error.orders.billing");
    }
}
