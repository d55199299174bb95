//! The shared conformance suite on librdkafka's in-process mock cluster (the gating tier).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bindery::conformance::Harness;
use bindery::{Binder, RawMessage, Result};
use bindery_kafka::naming;

/// One mock cluster per case; every app gets its own binder (its own clients) on it.
struct OnMock(Arc<support::Mock>);

#[async_trait]
impl Harness for OnMock {
    fn binder(&self) -> Arc<dyn Binder> {
        support::mock_binder(&self.0)
    }

    async fn dead_letters(
        &self,
        destination: &str,
        group: &str,
        expected: usize,
        timeout: Duration,
    ) -> Result<Vec<RawMessage>> {
        support::read_topic(&self.0.bootstrap, &naming::dead_letter_topic(destination, group), expected, timeout).await
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(15)
    }
}

bindery::conformance_tests!(OnMock(Arc::new(support::Mock::new())));
