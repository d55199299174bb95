//! The shared conformance suite on a real RabbitMQ (`scripts/rabbitmq start`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bindery::conformance::Harness;
use bindery::{Binder, RawMessage, Result};
use bindery_rabbit::naming;

struct Rabbit;

impl Rabbit {
    fn new() -> Self {
        Rabbit
    }
}

#[async_trait]
impl Harness for Rabbit {
    fn binder(&self) -> Arc<dyn Binder> {
        Arc::new(common::binder())
    }

    async fn dead_letters(
        &self,
        destination: &str,
        group: &str,
        expected: usize,
        timeout: Duration,
    ) -> Result<Vec<RawMessage>> {
        common::read_queue(&naming::dead_letter_queue(destination, group), expected, timeout).await
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(10)
    }
}

bindery::conformance_tests!({
    common::require_broker(); // fails loudly when the broker is down
    Rabbit::new()
});
