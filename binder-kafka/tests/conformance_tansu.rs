//! The shared conformance suite on a real Kafka-protocol broker: tansu, started with
//! `scripts/tansu start` (address from `TEST_KAFKA_BROKERS`, default 127.0.0.1:9092).
//! No broker is a failure, never a skip.
//!
//! Broker behaviour found (tansu 0.6), and how this file deals with it:
//! - tansu has no CreatePartitions API. In the suite, consumers bind first and create their
//!   topic; the publisher then asks for 4 partitions. The harness sets the binder's
//!   `min-partition-count = 4` so topics are created with 4 partitions up front (without it,
//!   growing the topic fails with "the broker does not support it", by design a bind error).
//! - BROKERS.md reports that a member joining right after the others left can wait forever
//!   for an assignment. The cases that do exactly that (`unfinished_work_is_redelivered`,
//!   `lost_consumer_work_is_redelivered`, `graceful_shutdown_drains_in_flight`) pass here with
//!   `session.timeout.ms = 6000`, repeatedly, because a closing bindery consumer commits and
//!   leaves the group explicitly. So no case is excluded: all 13 run on tansu.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bindery::conformance::Harness;
use bindery::{Binder, RawMessage, Result};
use bindery_kafka::naming;

struct OnTansu(String);

impl OnTansu {
    fn new() -> Self {
        support::init_logs();
        let brokers = support::real_brokers();
        support::require_broker(&brokers);
        OnTansu(brokers)
    }
}

#[async_trait]
impl Harness for OnTansu {
    fn binder(&self) -> Arc<dyn Binder> {
        let mut options = support::options(&self.0);
        // tansu has no CreatePartitions API: topics a consumer creates before the publisher
        // binds must already have the publisher's partition count (4 in the suite).
        options.min_partition_count = 4;
        Arc::new(bindery_kafka::KafkaBinder::new(options).expect("kafka binder"))
    }

    async fn dead_letters(
        &self,
        destination: &str,
        group: &str,
        expected: usize,
        timeout: Duration,
    ) -> Result<Vec<RawMessage>> {
        support::read_topic(&self.0, &naming::dead_letter_topic(destination, group), expected, timeout).await
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(20)
    }
}

bindery::conformance_tests!(OnTansu::new());
