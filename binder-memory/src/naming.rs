//! Destination names on the memory broker.
//!
//! ```
//! use bindery::Binder;
//! use bindery_memory::{MemoryBinder, MemoryBroker, naming};
//!
//! let binder = MemoryBinder::new(MemoryBroker::new());
//! let dlq = naming::dead_letter_topic("orders.v1", "billing");
//! assert_eq!(dlq, "orders.v1.billing.dlq");
//! assert_eq!(binder.dead_letter_destination("orders.v1", "billing"), dlq); // what the binder uses
//! ```

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
