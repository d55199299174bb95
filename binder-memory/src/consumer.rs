//! Consumer bindings: a pump task per member moves messages from its group's partitions into
//! the runtime's input channel.

use std::sync::Arc;

use async_trait::async_trait;
use bindery::binder::{AckHandle, Acknowledger, ConsumerBinding, Delivery, InputChannel, Settlement};
use bindery::{Error, Health, Result};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::broker::{Group, Member, MemoryBroker, Topic};

/// Settles deliveries of one group.
pub(crate) struct GroupAcker {
    pub(crate) broker: Arc<MemoryBroker>,
    pub(crate) group: Arc<Group>,
}

impl Acknowledger for GroupAcker {
    fn settle(&self, tag: u64, settlement: Settlement) {
        self.group.settle(tag, settlement, self.broker.faults());
    }
}

pub(crate) struct MemoryConsumer {
    pub(crate) topic: Arc<Topic>,
    pub(crate) group: Arc<Group>,
    pub(crate) member: Member,
    pub(crate) stop: CancellationToken,
    pub(crate) pump: std::sync::Mutex<Option<JoinHandle<()>>>,
}

pub(crate) fn spawn_pump(
    broker: Arc<MemoryBroker>,
    group: Arc<Group>,
    member: Member,
    channel: InputChannel,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let acker: Arc<dyn Acknowledger> = Arc::new(GroupAcker { broker: broker.clone(), group: group.clone() });
    tokio::spawn(async move {
        loop {
            // Move everything available, then sleep until a publisher or a requeue wakes us.
            while let Some((tag, partition, message)) = group.next_for(member.id, &broker) {
                let ack = AckHandle::new(acker.clone(), tag);
                if let Some(delay) = broker.faults().delay() {
                    tokio::time::sleep(delay).await;
                }
                let delivery = Delivery::new(message, ack, Some(partition));
                let delivery = match channel.try_send(delivery) {
                    Ok(()) => continue,
                    Err(d) => *d, // full (or closed: the send below tells)
                };
                tokio::select! {
                    biased;
                    sent = channel.send(delivery) => if sent.is_err() {
                        // The runtime side is gone (aborted): leave, returning unsettled work.
                        group.leave(member.id);
                        return;
                    },
                    _ = member.dropped.cancelled() => return,
                    _ = stop.cancelled() => return,
                }
            }
            let ready = group.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            group.set_waiting();
            if group.has_work_for(member.id) {
                continue;
            }
            tokio::select! {
                _ = &mut ready => {}
                _ = stop.cancelled() => return,
                _ = member.dropped.cancelled() => return,
                _ = channel.closed() => {
                    group.leave(member.id);
                    return;
                }
            }
        }
    })
}

impl Drop for MemoryConsumer {
    fn drop(&mut self) {
        // Dropped without `close` (the app was aborted): nothing will settle our deliveries.
        self.stop.cancel();
        self.group.leave(self.member.id);
        if self.group.anonymous {
            self.topic.remove_group(&self.group.name);
        }
    }
}

#[async_trait]
impl ConsumerBinding for MemoryConsumer {
    async fn stop(&self) -> Result<()> {
        self.stop.cancel();
        let pump = self.pump.lock().ok().and_then(|mut p| p.take());
        if let Some(p) = pump {
            let _ = p.await;
        }
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        self.stop().await?;
        self.group.leave(self.member.id);
        if self.group.anonymous {
            self.topic.remove_group(&self.group.name);
        }
        Ok(())
    }

    fn health(&self) -> Health {
        if self.member.dropped.is_cancelled() { Health::down("consumer was dropped") } else { Health::up() }
    }

    async fn lost(&self) -> Error {
        self.member.dropped.cancelled().await;
        Error::binding(self.topic.name(), "consumer dropped by the memory broker")
    }
}
