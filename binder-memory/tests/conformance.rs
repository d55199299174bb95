//! The shared conformance suite on the memory binder.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bindery::conformance::Harness;
use bindery::{Binder, RawMessage, Result};
use bindery_memory::{MemoryBinder, MemoryBroker, naming};

/// One recording broker per case; every app gets its own binder instance on it.
struct Memory(Arc<MemoryBroker>);

impl Memory {
    fn new() -> Self {
        Memory(MemoryBroker::recording())
    }
}

#[async_trait]
impl Harness for Memory {
    fn binder(&self) -> Arc<dyn Binder> {
        Arc::new(MemoryBinder::new(self.0.clone()))
    }

    async fn dead_letters(
        &self,
        destination: &str,
        group: &str,
        expected: usize,
        timeout: Duration,
    ) -> Result<Vec<RawMessage>> {
        self.0.wait_for_history(&naming::dead_letter_topic(destination, group), expected, timeout).await
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(5)
    }
}

bindery::conformance_tests!(Memory::new());
