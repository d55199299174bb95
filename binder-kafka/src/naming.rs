//! Topic and group names on Kafka, following Spring Cloud Stream's defaults.
//!
//! ```
//! use bindery_kafka::naming;
//! assert_eq!(naming::dead_letter_topic("orders.v1", "billing"), "error.orders.v1.billing");
//! assert!(naming::anonymous_group().starts_with("anonymous."));
//! ```

/// The dead-letter topic of `destination` consumed by `group`: `error.<destination>.<group>`.
///
/// ```
/// assert_eq!(bindery_kafka::naming::dead_letter_topic("a", "g"), "error.a.g");
/// ```
pub fn dead_letter_topic(destination: &str, group: &str) -> String {
    format!("error.{destination}.{group}")
}

/// A fresh group id for an anonymous subscriber (`anonymous.<uuid>`, as Spring names them).
///
/// ```
/// assert_ne!(bindery_kafka::naming::anonymous_group(), bindery_kafka::naming::anonymous_group());
/// ```
pub fn anonymous_group() -> String {
    format!("anonymous.{}", uuid::Uuid::new_v4().simple())
}

/// Kafka header names bindery reads and writes besides the message's own headers.
pub mod headers {
    /// Consumed messages carry the topic they came from (Spring's inbound name).
    pub const RECEIVED_TOPIC: &str = "kafka_receivedTopic";
    /// Consumed messages carry their partition, in decimal (Spring's inbound name).
    pub const RECEIVED_PARTITION: &str = "kafka_receivedPartitionId";
    /// Consumed messages carry their offset, in decimal (Spring's inbound name).
    pub const OFFSET: &str = "kafka_offset";
    /// On dead letters: the topic the failed record was read from (Spring Kafka's name).
    pub const DLT_ORIGINAL_TOPIC: &str = "kafka_dlt-original-topic";
    /// On dead letters: its partition, in decimal.
    pub const DLT_ORIGINAL_PARTITION: &str = "kafka_dlt-original-partition";
    /// On dead letters: its offset, in decimal.
    pub const DLT_ORIGINAL_OFFSET: &str = "kafka_dlt-original-offset";
    /// Set (to `true`) on a consumed tombstone (a record with a null value).
    pub const TOMBSTONE: &str = "kafka_tombstone";
}

#[cfg(test)]
mod tests {
    #[test]
    fn spring_names() {
        assert_eq!(super::dead_letter_topic("orders", "billing"), "error.orders.billing");
        let g = super::anonymous_group();
        assert_eq!(g.len(), "anonymous.".len() + 32);
    }
}
