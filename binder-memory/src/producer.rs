//! Producer bindings: publish to a topic, waiting while a consumed group is full.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bindery::binder::{Confirmation, Producer};
use bindery::{RawMessage, Result};

use crate::broker::{MemoryBroker, Topic};

pub(crate) struct MemoryProducer {
    pub(crate) broker: Arc<MemoryBroker>,
    pub(crate) topic: Arc<Topic>,
}

#[async_trait]
impl Producer for MemoryProducer {
    async fn send(&self, message: RawMessage) -> Result<Confirmation> {
        if self.topic.publish(message, &self.broker) >= self.broker.capacity() {
            // Backpressure: a consumed group is full; wait until its consumers catch up.
            self.topic.wait_for_room(self.broker.capacity()).await;
        }
        Ok(Confirmation::confirmed())
    }

    async fn flush(&self, _timeout: Duration) -> Result<()> {
        Ok(()) // every send is in the broker once `send` returns
    }
}
