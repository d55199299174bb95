//! Destination names on the memory broker.

/// Dead letters of `destination`/`group` go to `<destination>.<group>.dlq` (the RabbitMQ
/// binder's queue name, which reads well in tests).
///
/// ```
/// assert_eq!(bindery_memory::naming::dead_letter_topic("orders", "billing"), "orders.billing.dlq");
/// ```
pub fn dead_letter_topic(destination: &str, group: &str) -> String {
    format!("{destination}.{group}.dlq")
}

/// The group name an anonymous subscriber gets: unique, never shared.
pub(crate) fn anonymous_group(binding: &str, member: u64) -> String {
    format!("anonymous.{binding}.{member}")
}
