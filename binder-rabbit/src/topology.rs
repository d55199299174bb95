//! Declaring exchanges, queues and bindings the way Spring Cloud Stream does, again after every
//! reconnection (declarations are idempotent when the arguments match).

use bindery::binder::ConsumerSpec;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};

use crate::config::BindingOptions;
use crate::naming;

/// Makes an AMQP short string (names, routing keys) or explains which one is too long.
pub(crate) fn short(what: &str, value: &str) -> Result<ShortString, String> {
    ShortString::try_new(value).map_err(|_| format!("{what} `{value}` is longer than AMQP's 255-byte limit"))
}

/// What a consumer binding consumes from and how that queue is set up.
#[derive(Clone, Debug)]
pub(crate) struct ConsumerPlan {
    pub(crate) destination: String,
    pub(crate) group: Option<String>,
    pub(crate) queue: String,
    pub(crate) binding_key: String,
    /// Set for partitioned consumers: the instance index, reported as `Delivery::partition`.
    pub(crate) partition: Option<u32>,
    pub(crate) options: BindingOptions,
}

impl ConsumerPlan {
    pub(crate) fn new(spec: &ConsumerSpec, options: BindingOptions) -> Self {
        let partitioned = spec.instance_count > 1;
        let partition = partitioned.then_some(spec.instance_index);
        let queue = match (&spec.group, partition) {
            (Some(g), Some(i)) => naming::partitioned_queue(&spec.destination, g, i),
            (Some(g), None) => naming::group_queue(&spec.destination, g),
            (None, _) => naming::anonymous_queue(&spec.destination),
        };
        let binding_key = match (&options.binding_routing_key, partition) {
            (Some(k), _) => k.clone(),
            (None, Some(i)) => naming::partition_routing_key(&spec.destination, i),
            (None, None) => naming::BIND_ALL.to_string(),
        };
        Self {
            destination: spec.destination.clone(),
            group: spec.group.clone(),
            queue,
            binding_key,
            partition,
            options,
        }
    }

    /// The group queue's arguments: dead-lettering to `DLX` (as Spring's `autoBindDlq`), queue
    /// type, TTL, length limit.
    pub(crate) fn queue_arguments(&self) -> FieldTable {
        let mut args = FieldTable::default();
        let o = &self.options;
        if let (Some(group), true) = (&self.group, o.auto_bind_dlq) {
            args.insert("x-dead-letter-exchange".into(), long(naming::DEAD_LETTER_EXCHANGE));
            args.insert(
                "x-dead-letter-routing-key".into(),
                long(&naming::dead_letter_routing_key(&self.destination, group)),
            );
        }
        if o.quorum && self.group.is_some() {
            args.insert("x-queue-type".into(), long("quorum"));
        }
        if let Some(ttl) = o.ttl {
            args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl.as_millis().min(i64::MAX as u128) as i64));
        }
        if let Some(max) = o.max_length {
            args.insert("x-max-length".into(), AMQPValue::LongLongInt(max.min(i64::MAX as u64) as i64));
        }
        args
    }

    /// Declares (or, with `declare = false`, checks) everything the consumer needs.
    pub(crate) async fn declare(&self, channel: &Channel) -> Result<(), String> {
        let queue = short("queue name", &self.queue)?;
        let anonymous = self.group.is_none();
        if !self.options.declare && !anonymous {
            // Existing infrastructure: only make sure the queue is there.
            let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
            return channel.queue_declare(queue, passive, FieldTable::default()).await.map(|_| ()).map_err(|e| {
                format!("queue `{}` does not exist or is not accessible (declare = false): {e}", self.queue)
            });
        }
        if self.options.declare {
            declare_exchange(channel, &self.destination, &self.options).await?;
        }
        if let (Some(group), true) = (&self.group, self.options.auto_bind_dlq) {
            declare_dead_letter_queue(channel, &self.destination, group).await?;
        }
        let options = if anonymous {
            QueueDeclareOptions { durable: false, exclusive: true, auto_delete: true, ..QueueDeclareOptions::default() }
        } else {
            QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() }
        };
        channel.queue_declare(queue.clone(), options, self.queue_arguments()).await.map_err(|e| {
            format!(
                "cannot declare queue `{}` (if it exists with other arguments, delete it or match its quorum/ttl/max-length/auto-bind-dlq options): {e}",
                self.queue
            )
        })?;
        channel
            .queue_bind(
                queue,
                short("exchange name", &self.destination)?,
                short("routing key", &self.binding_key)?,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| format!("cannot bind queue `{}` to exchange `{}`: {e}", self.queue, self.destination))
    }
}

fn long(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

/// The destination's durable exchange (topic unless configured otherwise); with
/// `declare = false` only checks that it exists.
pub(crate) async fn declare_exchange(
    channel: &Channel,
    destination: &str,
    options: &BindingOptions,
) -> Result<(), String> {
    let name = short("exchange name", destination)?;
    if !options.declare {
        let passive = ExchangeDeclareOptions { passive: true, ..ExchangeDeclareOptions::default() };
        return channel
            .exchange_declare(name, options.exchange_type.kind(), passive, FieldTable::default())
            .await
            .map_err(|e| format!("exchange `{destination}` does not exist (declare = false): {e}"));
    }
    let durable = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
    channel.exchange_declare(name, options.exchange_type.kind(), durable, FieldTable::default()).await.map_err(|e| {
        format!(
            "cannot declare exchange `{destination}` (does it exist with another type than `{:?}`?): {e}",
            options.exchange_type
        )
    })
}

/// The `DLX` direct exchange and `<destination>.<group>.dlq` bound to it.
pub(crate) async fn declare_dead_letter_queue(channel: &Channel, destination: &str, group: &str) -> Result<(), String> {
    let durable = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
    channel
        .exchange_declare(naming::DEAD_LETTER_EXCHANGE.into(), ExchangeKind::Direct, durable, FieldTable::default())
        .await
        .map_err(|e| format!("cannot declare exchange `{}`: {e}", naming::DEAD_LETTER_EXCHANGE))?;
    let dlq = naming::dead_letter_queue(destination, group);
    let queue = short("queue name", &dlq)?;
    channel
        .queue_declare(
            queue.clone(),
            QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() },
            FieldTable::default(),
        )
        .await
        .map_err(|e| format!("cannot declare dead-letter queue `{dlq}`: {e}"))?;
    channel
        .queue_bind(
            queue,
            naming::DEAD_LETTER_EXCHANGE.into(),
            short("routing key", &naming::dead_letter_routing_key(destination, group))?,
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| format!("cannot bind `{dlq}` to `{}`: {e}", naming::DEAD_LETTER_EXCHANGE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(group: Option<&str>, index: u32, count: u32) -> ConsumerSpec {
        let mut s = ConsumerSpec::new("in", "orders", group.map(str::to_string));
        s.instance_index = index;
        s.instance_count = count;
        s
    }

    #[test]
    fn group_queue_plan_is_springs() {
        let p = ConsumerPlan::new(&spec(Some("billing"), 0, 1), BindingOptions::default());
        assert_eq!((p.queue.as_str(), p.binding_key.as_str(), p.partition), ("orders.billing", "#", None));
        let args = p.queue_arguments();
        assert_eq!(args.inner().get("x-dead-letter-exchange"), Some(&long("DLX")));
        assert_eq!(args.inner().get("x-dead-letter-routing-key"), Some(&long("orders.billing")));
        assert_eq!(args.inner().len(), 2);
    }

    #[test]
    fn partitioned_plan_uses_the_instance_index() {
        let p = ConsumerPlan::new(&spec(Some("billing"), 1, 3), BindingOptions::default());
        assert_eq!((p.queue.as_str(), p.binding_key.as_str(), p.partition), ("orders.billing-1", "orders-1", Some(1)));
    }

    #[test]
    fn anonymous_and_options() {
        let p = ConsumerPlan::new(&spec(None, 0, 1), BindingOptions::default());
        assert!(p.queue.starts_with("orders.anonymous."));
        assert!(p.queue_arguments().inner().is_empty());
        let o = BindingOptions {
            quorum: true,
            ttl: Some(std::time::Duration::from_secs(2)),
            max_length: Some(10),
            auto_bind_dlq: false,
            binding_routing_key: Some("eu.*".into()),
            ..BindingOptions::default()
        };
        let p = ConsumerPlan::new(&spec(Some("g"), 0, 1), o);
        let args = p.queue_arguments();
        assert_eq!(args.inner().get("x-queue-type"), Some(&long("quorum")));
        assert_eq!(args.inner().get("x-message-ttl"), Some(&AMQPValue::LongLongInt(2000)));
        assert_eq!(args.inner().get("x-max-length"), Some(&AMQPValue::LongLongInt(10)));
        assert!(!args.contains_key("x-dead-letter-exchange"));
        assert_eq!(p.binding_key, "eu.*");
        assert!(short("queue name", &"q".repeat(256)).unwrap_err().contains("255"));
    }
}
