//! The `rabbit` binder and its registration.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bindery::binder::{ConsumerBinding, ConsumerSpec, InputChannel, Producer, ProducerRole, ProducerSpec};
use bindery::{Binder, BinderSettings, Error, Health, Result};

use crate::config::{BindingOptions, RabbitOptions};
use crate::connection::{Connector, Lease};
use crate::consumer::RabbitConsumer;
use crate::naming;
use crate::producer::{ProducerTopology, RabbitProducer, Routing};
use crate::topology::{ConsumerPlan, short};

/// A binder on one RabbitMQ broker: one AMQP connection (re-established after failures), a
/// confirm-mode channel per producer binding and a channel per consumer binding.
///
/// Apps normally get it from config (`type = "rabbit"`); tests and tools can build one:
///
/// ```no_run
/// # async fn demo() -> bindery::Result<()> {
/// use std::sync::Arc;
/// let binder = bindery_rabbit::RabbitBinder::new(bindery_rabbit::RabbitOptions::new("amqp://127.0.0.1:5672/%2f"))?;
/// let app = bindery::App::builder().binder("rabbit", Arc::new(binder)).override_binder("rabbit").build()?.start().await?;
/// app.shutdown().await
/// # }
/// ```
pub struct RabbitBinder {
    connector: Lease,
}

impl std::fmt::Debug for RabbitBinder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitBinder").field("options", self.connector.options()).finish()
    }
}

impl RabbitBinder {
    /// A binder for the broker `options` name. Connects on first use, not here.
    ///
    /// ```
    /// let b = bindery_rabbit::RabbitBinder::new(bindery_rabbit::RabbitOptions::new("amqp://u:pw@h/%2f")).unwrap();
    /// assert_eq!(bindery::Binder::kind(&b), "rabbit");
    /// assert!(!format!("{b:?}").contains("pw@"));
    /// assert!(bindery_rabbit::RabbitBinder::new(bindery_rabbit::RabbitOptions::new("kafka://h")).is_err());
    /// ```
    pub fn new(options: RabbitOptions) -> Result<Self> {
        Self::named(options, "rabbit")
    }

    fn named(options: RabbitOptions, name: &str) -> Result<Self> {
        let tls = options.checked(name)?;
        Ok(Self { connector: Lease::new(Connector::new(options, tls, name.to_string())) })
    }

    /// Default prefetch for a consumer with `concurrency` handlers: enough unacknowledged
    /// deliveries in flight to keep every handler busy while acks travel.
    ///
    /// ```
    /// assert_eq!(bindery_rabbit::RabbitBinder::default_prefetch(1), 256);
    /// assert_eq!(bindery_rabbit::RabbitBinder::default_prefetch(8), 512);
    /// ```
    pub fn default_prefetch(concurrency: usize) -> u16 {
        (concurrency.saturating_mul(64)).clamp(256, usize::from(u16::MAX)) as u16
    }
}

#[async_trait]
impl Binder for RabbitBinder {
    fn kind(&self) -> &str {
        "rabbit"
    }

    async fn bind_producer(&self, spec: &ProducerSpec) -> Result<Arc<dyn Producer>> {
        let options = BindingOptions::from_spec(&spec.binding, &spec.options)?;
        let bad = |e: String| Error::binding(&spec.binding, e);
        let (exchange, routing, topology) = match &spec.role {
            ProducerRole::DeadLetter { source_destination, group } => (
                short("exchange name", naming::DEAD_LETTER_EXCHANGE).map_err(bad)?,
                Routing::Fixed(
                    short("routing key", &naming::dead_letter_routing_key(source_destination, group)).map_err(bad)?,
                ),
                ProducerTopology::DeadLetter { destination: source_destination.clone(), group: group.clone() },
            ),
            _ => {
                let exchange = short("exchange name", &naming::exchange(&spec.destination)).map_err(bad)?;
                let routing = if spec.partition_count > 1 {
                    Routing::Partitioned { destination: spec.destination.clone(), count: spec.partition_count }
                } else {
                    Routing::Fixed(short("routing key", &spec.destination).map_err(bad)?)
                };
                let topology =
                    ProducerTopology::Exchange { destination: spec.destination.clone(), options: options.clone() };
                (exchange, routing, topology)
            }
        };
        let producer = RabbitProducer::bind(
            self.connector.clone(),
            spec.binding.clone(),
            exchange,
            routing,
            options.persistent,
            topology,
        )
        .await?;
        Ok(Arc::new(producer))
    }

    async fn bind_consumer(&self, spec: &ConsumerSpec, channel: InputChannel) -> Result<Box<dyn ConsumerBinding>> {
        let options = BindingOptions::from_spec(&spec.binding, &spec.options)?;
        if spec.instance_count > 1 && spec.instance_index >= spec.instance_count {
            return Err(Error::binding(
                &spec.binding,
                format!("instance-index {} is not below instance-count {}", spec.instance_index, spec.instance_count),
            ));
        }
        let prefetch = options.prefetch.unwrap_or_else(|| Self::default_prefetch(spec.concurrency)).max(1);
        let plan = ConsumerPlan::new(spec, options);
        let consumer =
            RabbitConsumer::bind(self.connector.clone(), spec.binding.clone(), plan, prefetch, channel).await?;
        Ok(Box::new(consumer))
    }

    fn dead_letter_destination(&self, destination: &str, group: &str) -> String {
        naming::dead_letter_queue(destination, group)
    }

    fn check_options(&self, binding: &str, options: &BTreeMap<String, serde_json::Value>) -> Result<()> {
        BindingOptions::check(binding, options)
    }

    fn health(&self) -> Health {
        self.connector.health()
    }

    async fn shutdown(&self) -> Result<()> {
        self.connector.shutdown().await;
        Ok(())
    }
}

fn create(settings: &BinderSettings) -> Result<Arc<dyn Binder>> {
    let options: RabbitOptions = settings.options()?;
    Ok(Arc::new(RabbitBinder::named(options, settings.name())?))
}

bindery::register_binder!("rabbit", create);
