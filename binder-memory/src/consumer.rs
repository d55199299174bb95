//! Consumer bindings: a pump task per member moves messages from its group's partitions into
//! the runtime's input channel.

use std::sync::Arc;

use async_trait::async_trait;
use bindery::binder::{AckHandle, Acknowledger, ConsumerBinding, Delivery, Settlement};
use bindery::{Error, Health, Result};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::broker::{Direct, Group, Member, MemoryBroker, Next, Topic};

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
    direct: Direct,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Some(delay) = broker.faults().delay() {
                // Slow path while deliveries are delayed: pop, wait, then hand over.
                if let Some((tag, partition, message)) = group.next_for(member.id, &broker) {
                    tokio::time::sleep(delay).await;
                    let delivery = Delivery::new(message, AckHandle::new(direct.acker.clone(), tag), Some(partition));
                    tokio::select! {
                        sent = direct.channel.send(delivery) => if sent.is_err() {
                            group.leave(member.id); // the runtime side is gone: return its work
                            return;
                        },
                        _ = member.dropped.cancelled() => return,
                        _ = stop.cancelled() => return,
                    }
                    continue;
                }
            } else {
                match group.deliver_next(member.id, &broker, &direct) {
                    Next::Sent => continue,
                    Next::Full => {
                        tokio::select! {
                            open = direct.channel.wait_for_room() => if !open {
                                group.leave(member.id);
                                return;
                            },
                            _ = member.dropped.cancelled() => return,
                            _ = stop.cancelled() => return,
                        }
                        continue;
                    }
                    Next::Empty => {}
                }
            }
            // Nothing for us: sleep until a publisher, a requeue or a rebalance wakes us.
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
                _ = direct.channel.closed() => {
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
        self.group.pause(self.member.id); // no more direct hand-offs either
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
