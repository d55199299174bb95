//! The `memory` binder and its registration.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use bindery::binder::{Acknowledger, ConsumerBinding, ConsumerSpec, InputChannel, Producer, ProducerSpec};
use bindery::{Binder, BinderSettings, Result};
use tokio_util::sync::CancellationToken;

use crate::broker::{Direct, Member, MemoryBroker};
use crate::config::MemoryOptions;
use crate::consumer::{GroupAcker, MemoryConsumer, spawn_pump};
use crate::naming;
use crate::producer::MemoryProducer;

/// A binder on an in-process [`MemoryBroker`]: every rule of the delivery contract, no network.
///
/// ```
/// let binder = bindery_memory::MemoryBinder::new(bindery_memory::MemoryBroker::new());
/// assert_eq!(bindery::Binder::kind(&binder), "memory");
/// ```
#[derive(Clone, Debug)]
pub struct MemoryBinder {
    broker: Arc<MemoryBroker>,
}

impl MemoryBinder {
    /// A binder on `broker`.
    ///
    /// ```
    /// let b = bindery_memory::MemoryBinder::new(bindery_memory::MemoryBroker::recording());
    /// assert!(b.broker().history("x").is_empty());
    /// ```
    pub fn new(broker: Arc<MemoryBroker>) -> Self {
        Self { broker }
    }

    /// The broker behind this binder.
    ///
    /// ```
    /// let b = bindery_memory::MemoryBinder::new(bindery_memory::MemoryBroker::new());
    /// b.broker().faults().duplicate_next_deliveries(1);
    /// ```
    pub fn broker(&self) -> &Arc<MemoryBroker> {
        &self.broker
    }
}

#[async_trait]
impl Binder for MemoryBinder {
    fn kind(&self) -> &str {
        "memory"
    }

    async fn bind_producer(&self, spec: &ProducerSpec) -> Result<Arc<dyn Producer>> {
        let topic = self.broker.topic(&spec.destination);
        topic.ensure_partitions(spec.partition_count);
        Ok(Arc::new(MemoryProducer { broker: self.broker.clone(), topic, congested: Default::default() }))
    }

    async fn bind_consumer(&self, spec: &ConsumerSpec, channel: InputChannel) -> Result<Box<dyn ConsumerBinding>> {
        let topic = self.broker.topic(&spec.destination);
        let id = self.broker.member_id();
        let (group_name, anonymous) = match &spec.group {
            Some(g) => (g.clone(), false),
            None => (naming::anonymous_group(&spec.binding, id), true),
        };
        let group = topic.group(&group_name, anonymous);
        let acker: Arc<dyn Acknowledger> = Arc::new(GroupAcker { broker: self.broker.clone(), group: group.clone() });
        let direct = Direct { channel, acker };
        let member = Member { id, dropped: CancellationToken::new(), direct: Some(direct.clone()) };
        group.join(member.clone());
        let stop = CancellationToken::new();
        let pump = spawn_pump(self.broker.clone(), group.clone(), member.clone(), direct, stop.clone());
        Ok(Box::new(MemoryConsumer { topic, group, member, stop, pump: Mutex::new(Some(pump)) }))
    }

    fn dead_letter_destination(&self, destination: &str, group: &str) -> String {
        naming::dead_letter_topic(destination, group)
    }
}

fn brokers() -> &'static Mutex<HashMap<String, Arc<MemoryBroker>>> {
    static BROKERS: OnceLock<Mutex<HashMap<String, Arc<MemoryBroker>>>> = OnceLock::new();
    BROKERS.get_or_init(Default::default)
}

/// The process-wide broker called `name` (what `[binders.*] type = "memory"` uses).
///
/// ```
/// let a = bindery_memory::shared_broker("doc");
/// let b = bindery_memory::shared_broker("doc");
/// assert!(std::sync::Arc::ptr_eq(&a, &b));
/// ```
pub fn shared_broker(name: &str) -> Arc<MemoryBroker> {
    shared_broker_with(name, MemoryOptions::default().queue_capacity)
}

fn shared_broker_with(name: &str, capacity: usize) -> Arc<MemoryBroker> {
    let mut map = brokers().lock().unwrap_or_else(|p| p.into_inner());
    map.entry(name.to_string()).or_insert_with(|| Arc::new(MemoryBroker::with(false, capacity))).clone()
}

fn create(settings: &BinderSettings) -> Result<Arc<dyn Binder>> {
    let opts: MemoryOptions = settings.options()?;
    Ok(Arc::new(MemoryBinder::new(shared_broker_with(&opts.broker, opts.queue_capacity))))
}

bindery::register_binder!("memory", create);
