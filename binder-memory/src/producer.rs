//! Producer bindings: publish to a topic, waiting while a consumed group is full.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bindery::binder::{Confirmation, Producer};
use bindery::{RawMessage, Result};

use crate::broker::{MemoryBroker, Topic};

pub(crate) struct MemoryProducer {
    pub(crate) broker: Arc<MemoryBroker>,
    pub(crate) topic: Arc<Topic>,
    /// The last publish found a consumed group at capacity: the next one must wait for room.
    pub(crate) congested: AtomicBool,
}

#[async_trait]
impl Producer for MemoryProducer {
    async fn send(&self, message: RawMessage) -> Result<Confirmation> {
        if self.congested.load(Ordering::Relaxed) {
            // Backpressure: a consumed group is full; wait until its consumers catch up.
            self.topic.wait_for_room(self.broker.capacity()).await;
        }
        let longest = self.topic.publish(message, &self.broker);
        self.congested.store(longest >= self.broker.capacity(), Ordering::Relaxed);
        Ok(Confirmation::confirmed())
    }

    fn try_send(&self, message: RawMessage) -> std::result::Result<Result<Confirmation>, RawMessage> {
        if self.congested.load(Ordering::Relaxed) {
            return Err(message); // `send` waits for room first
        }
        let longest = self.topic.publish(message, &self.broker);
        self.congested.store(longest >= self.broker.capacity(), Ordering::Relaxed);
        Ok(Ok(Confirmation::confirmed()))
    }

    async fn flush(&self, _timeout: Duration) -> Result<()> {
        Ok(()) // every send is in the broker once `send` returns
    }
}
