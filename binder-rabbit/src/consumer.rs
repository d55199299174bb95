//! Consumer bindings: a pump task moves deliveries from a `basic.consume` into the runtime's
//! input channel; an ack task settles them on the broker. After a lost channel or connection
//! the pump opens a new channel (with backoff), re-declares and consumes again; settlements
//! of deliveries from the dead channel are dropped, because the broker already requeued them.
//!
//! Settlements: `Ack` → `basic.ack` (one `multiple` ack for a settled prefix, single acks for
//! the rest), `Requeue` → `basic.nack requeue=true`, `Reject` → `basic.nack requeue=false`
//! (the runtime rejects only when the binding has no dead letter; a group queue declared with
//! `x-dead-letter-exchange` then hands it to `DLX`, which adds RabbitMQ's `x-death` header).
//! Dead letters the runtime published itself are acknowledged with `Ack`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bindery::binder::{AckHandle, Acknowledger, ConsumerBinding, Delivery, InputChannel, Settlement};
use bindery::{Error, Health, Result};
use futures::StreamExt;
use lapin::Channel;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::amqp::to_message;
use crate::connection::Lease;
use crate::topology::{ConsumerPlan, short};

/// Delivery tags are per channel; the handle's tag carries the channel generation in its top
/// bits so a settlement can never reach a newer channel.
const GENERATION_SHIFT: u32 = 40;
const TAG_MASK: u64 = (1 << GENERATION_SHIFT) - 1;

fn encode(generation: u64, tag: u64) -> u64 {
    (generation << GENERATION_SHIFT) | (tag & TAG_MASK)
}

fn decode(handle_tag: u64) -> (u64, u64) {
    (handle_tag >> GENERATION_SHIFT, handle_tag & TAG_MASK)
}

enum AckMsg {
    /// A new channel (generation) took over; everything earlier is void.
    Channel(u64, Channel),
    /// A delivery was handed to the runtime and awaits settlement.
    Delivered(u64),
    /// The runtime settled a delivery (encoded tag).
    Settle(u64, Settlement),
    /// Flush and close the channel, then report.
    Close(oneshot::Sender<()>),
}

/// The runtime's side of settlements: never blocks, just queues for the ack task.
struct Acker {
    tx: mpsc::UnboundedSender<AckMsg>,
}

impl Acknowledger for Acker {
    fn settle(&self, tag: u64, settlement: Settlement) {
        let _ = self.tx.send(AckMsg::Settle(tag, settlement));
    }
}

/// Settles deliveries on the current channel, with `multiple` acks where order allows.
async fn ack_task(mut rx: mpsc::UnboundedReceiver<AckMsg>) {
    let mut current: Option<(u64, Channel)> = None;
    let mut unsettled: BTreeSet<u64> = BTreeSet::new();
    let mut batch = Vec::with_capacity(512);
    let mut acks: Vec<u64> = Vec::with_capacity(512);
    let mut others: Vec<(u64, Settlement)> = Vec::new();
    loop {
        if rx.recv_many(&mut batch, 512).await == 0 {
            return;
        }
        let mut close = None;
        for msg in batch.drain(..) {
            match msg {
                AckMsg::Channel(generation, channel) => {
                    flush(current.as_ref(), &unsettled, &mut acks, &mut others).await;
                    current = Some((generation, channel));
                    unsettled.clear();
                }
                AckMsg::Delivered(tag) => {
                    unsettled.insert(tag);
                }
                AckMsg::Settle(handle_tag, settlement) => {
                    let (generation, tag) = decode(handle_tag);
                    if current.as_ref().is_some_and(|(g, _)| *g == generation) && unsettled.remove(&tag) {
                        match settlement {
                            Settlement::Ack => acks.push(tag),
                            other => others.push((tag, other)),
                        }
                    }
                }
                AckMsg::Close(done) => close = Some(done),
            }
        }
        flush(current.as_ref(), &unsettled, &mut acks, &mut others).await;
        if let Some(done) = close {
            if let Some((_, channel)) = current.take() {
                // Unsettled deliveries go back to the queue when the channel closes.
                let _ = tokio::time::timeout(Duration::from_secs(5), channel.close(200, "binding closed".into())).await;
            }
            let _ = done.send(());
            return;
        }
    }
}

async fn flush(
    current: Option<&(u64, Channel)>,
    unsettled: &BTreeSet<u64>,
    acks: &mut Vec<u64>,
    others: &mut Vec<(u64, Settlement)>,
) {
    let Some((_, channel)) = current else {
        acks.clear();
        others.clear();
        return;
    };
    for (tag, settlement) in others.drain(..) {
        let requeue = settlement == Settlement::Requeue;
        let r = channel.basic_nack(tag, BasicNackOptions { multiple: false, requeue }).await;
        if let Err(e) = r {
            tracing::debug!(error = %e, "nack not sent; the broker redelivers when the channel closes");
        }
    }
    if acks.is_empty() {
        return;
    }
    let (up_to, singles) = plan_acks(acks, unsettled.first().copied());
    let mut result = Ok(());
    if let Some((tag, multiple)) = up_to {
        result = channel.basic_ack(tag, BasicAckOptions { multiple }).await;
    }
    for tag in singles {
        if result.is_err() {
            break;
        }
        result = channel.basic_ack(*tag, BasicAckOptions { multiple: false }).await;
    }
    if let Err(e) = result {
        tracing::debug!(error = %e, "ack not sent; the broker redelivers when the channel closes");
    }
    acks.clear();
}

/// Which `basic.ack`s settle `acks` (delivery tags, any order) while `oldest_unsettled` is still
/// out: everything below the oldest unsettled delivery is settled (acknowledged here, or nacked
/// earlier on the channel), so one `multiple` ack covers those acks; the rest go one by one.
/// Returns `(tag, multiple)` for the covering ack and the single acks.
fn plan_acks(acks: &mut [u64], oldest_unsettled: Option<u64>) -> (Option<(u64, bool)>, &[u64]) {
    acks.sort_unstable();
    let oldest = oldest_unsettled.unwrap_or(u64::MAX);
    let split = acks.partition_point(|t| *t < oldest);
    let up_to = (split > 0).then(|| (acks[split - 1], split > 1));
    (up_to, &acks[split..])
}

struct Shared {
    connector: Lease,
    binding: String,
    plan: ConsumerPlan,
    prefetch: u16,
    input: InputChannel,
    acks: mpsc::UnboundedSender<AckMsg>,
    acker: Arc<dyn Acknowledger>,
    stop: CancellationToken,
    lost: CancellationToken,
    up: AtomicBool,
    last_error: Mutex<String>,
}

/// A consumer binding on one queue.
pub(crate) struct RabbitConsumer {
    shared: Arc<Shared>,
    pump: Mutex<Option<tokio::task::JoinHandle<()>>>,
    ack_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl RabbitConsumer {
    /// Declares the queue and starts consuming; fails when the broker is unreachable or the
    /// topology cannot be declared (the runtime retries the binding).
    pub(crate) async fn bind(
        connector: Lease,
        binding: String,
        plan: ConsumerPlan,
        prefetch: u16,
        input: InputChannel,
    ) -> Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            connector,
            binding,
            plan,
            prefetch,
            input,
            acker: Arc::new(Acker { tx: tx.clone() }),
            acks: tx,
            stop: CancellationToken::new(),
            lost: CancellationToken::new(),
            up: AtomicBool::new(false),
            last_error: Mutex::new(String::new()),
        });
        let (generation, conn) = shared.connector.current().await.map_err(|e| Error::binding(&shared.binding, e))?;
        let (channel, consumer) =
            shared.open(generation, &conn).await.map_err(|e| Error::binding(&shared.binding, e))?;
        let ack_task = tokio::spawn(ack_task(rx));
        shared.up.store(true, Ordering::Relaxed);
        tracing::info!(binding = %shared.binding, queue = %shared.plan.queue, prefetch, "consuming from RabbitMQ");
        let pump = tokio::spawn(shared.clone().pump(generation, channel, consumer));
        Ok(Self { shared, pump: Mutex::new(Some(pump)), ack_task: Mutex::new(Some(ack_task)) })
    }
}

impl Shared {
    async fn open(
        &self,
        generation: u64,
        conn: &lapin::Connection,
    ) -> std::result::Result<(Channel, lapin::Consumer), String> {
        let fail = |what: &str, e: lapin::Error| {
            self.connector.report_broken(generation);
            format!("{what}: {}", self.connector.scrub(e))
        };
        let channel = conn.create_channel().await.map_err(|e| fail("cannot open a channel", e))?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| fail("cannot set the prefetch", e))?;
        self.plan.declare(&channel).await.map_err(|e| self.connector.scrub(e))?;
        let tag = format!("bindery-{}", uuid::Uuid::new_v4().simple());
        let consumer = channel
            .basic_consume(
                short("queue name", &self.plan.queue)?,
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| format!("cannot consume from queue `{}`: {}", self.plan.queue, self.connector.scrub(e)))?;
        Ok((channel, consumer))
    }

    fn set_down(&self, why: String) {
        self.up.store(false, Ordering::Relaxed);
        if let Ok(mut e) = self.last_error.lock() {
            *e = why;
        }
    }

    /// Opens a new channel and consumer after a failure, with backoff; `None` once stopping.
    async fn reopen(&self) -> Option<(u64, Channel, lapin::Consumer)> {
        let options = self.connector.options();
        let mut delay = options.reconnect_initial;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.stop.cancelled() => return None,
            }
            delay = (delay * 2).min(options.reconnect_max);
            let current = tokio::select! {
                c = self.connector.current() => c,
                _ = self.stop.cancelled() => return None,
            };
            let (generation, conn) = match current {
                Ok(c) => c,
                Err(e) if self.connector.is_shut_down() => {
                    self.set_down(e.to_string());
                    return None;
                }
                Err(e) => {
                    self.set_down(e.to_string());
                    continue;
                }
            };
            match self.open(generation, &conn).await {
                Ok((channel, consumer)) => return Some((generation, channel, consumer)),
                Err(why) => {
                    tracing::warn!(binding = %self.binding, queue = %self.plan.queue, reason = %why, retry_in = ?delay, "cannot resume consuming; retrying");
                    self.set_down(why);
                }
            }
        }
    }

    async fn pump(self: Arc<Self>, generation: u64, channel: Channel, consumer: lapin::Consumer) {
        let mut current = Some((generation, channel, consumer));
        loop {
            let (generation, channel, mut consumer) = match current.take() {
                Some(c) => c,
                None => match self.reopen().await {
                    Some(c) => {
                        tracing::info!(binding = %self.binding, queue = %self.plan.queue, "consuming again after reconnecting");
                        c
                    }
                    None => break,
                },
            };
            if self.acks.send(AckMsg::Channel(generation, channel.clone())).is_err() {
                break;
            }
            self.up.store(true, Ordering::Relaxed);
            let why = loop {
                let next = tokio::select! {
                    biased;
                    _ = self.stop.cancelled() => {
                        let _ = channel.basic_cancel(consumer.tag(), BasicCancelOptions::default()).await;
                        return;
                    }
                    next = consumer.next() => next,
                };
                let delivery = match next {
                    Some(Ok(d)) => d,
                    Some(Err(e)) => break self.connector.scrub(e),
                    None => break "the broker cancelled the consumer (queue deleted?)".to_string(),
                };
                let tag = delivery.delivery_tag;
                let _ = self.acks.send(AckMsg::Delivered(tag));
                let message = to_message(delivery.data, &delivery.properties);
                let handle = AckHandle::new(self.acker.clone(), encode(generation, tag));
                let d = Delivery::new(message, handle, self.plan.partition);
                // Fast path without a select when the runtime has room.
                let d = match self.input.try_send(d) {
                    Ok(()) => continue,
                    Err(d) => d,
                };
                tokio::select! {
                    sent = self.input.send(*d) => if sent.is_err() {
                        // The runtime side is gone: the returned delivery's handle requeues it.
                        return;
                    },
                    _ = self.stop.cancelled() => {
                        let _ = channel.basic_cancel(consumer.tag(), BasicCancelOptions::default()).await;
                        return;
                    }
                }
            };
            if self.stop.is_cancelled() {
                return;
            }
            tracing::warn!(binding = %self.binding, queue = %self.plan.queue, reason = %why, "consumer channel lost; reconnecting");
            self.connector.report_broken(generation);
            self.set_down(why);
        }
        if !self.stop.is_cancelled() {
            self.lost.cancel();
        }
    }
}

#[async_trait]
impl ConsumerBinding for RabbitConsumer {
    async fn stop(&self) -> Result<()> {
        self.shared.stop.cancel();
        let pump = self.pump.lock().ok().and_then(|mut p| p.take());
        if let Some(p) = pump {
            let _ = p.await;
        }
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        self.stop().await?;
        let (done, closed) = oneshot::channel();
        if self.shared.acks.send(AckMsg::Close(done)).is_ok() {
            let _ = closed.await;
        }
        let task = self.ack_task.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = task {
            let _ = t.await;
        }
        Ok(())
    }

    fn health(&self) -> Health {
        if self.shared.up.load(Ordering::Relaxed) {
            Health::up()
        } else {
            let why = self.shared.last_error.lock().map(|e| e.clone()).unwrap_or_default();
            Health::down(format!(
                "binding `{}`: not consuming from `{}`: {why}",
                self.shared.binding, self.shared.plan.queue
            ))
        }
    }

    async fn lost(&self) -> Error {
        self.shared.lost.cancelled().await;
        Error::binding(&self.shared.binding, "the RabbitMQ binder was shut down")
    }
}

impl Drop for RabbitConsumer {
    fn drop(&mut self) {
        // Dropped without `close`: stop the pump; the channel closes with the ack task, and
        // the broker requeues whatever was not acknowledged.
        self.shared.stop.cancel();
        if let Ok(mut p) = self.pump.lock() {
            if let Some(p) = p.take() {
                p.abort();
            }
        }
        let (done, _) = oneshot::channel();
        let _ = self.shared.acks.send(AckMsg::Close(done));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiple_acks_never_cover_an_unsettled_delivery() {
        // 1..=5 settled (3 nacked earlier), 6 still with a handler, 7 and 9 acked.
        let mut acks = vec![9, 2, 1, 5, 4, 7];
        let (up_to, singles) = plan_acks(&mut acks, Some(6));
        assert_eq!(up_to, Some((5, true)));
        assert_eq!(singles, [7, 9]);
        // Nothing unsettled: one multiple ack for all.
        let mut acks = vec![3, 1, 2];
        assert_eq!(plan_acks(&mut acks, None), (Some((3, true)), &[][..]));
        // A single ack below the gap is not `multiple` (it would be harmless, but say what we mean).
        let mut acks = vec![4];
        assert_eq!(plan_acks(&mut acks, Some(5)), (Some((4, false)), &[][..]));
        // All acks above the oldest unsettled: singles only.
        let mut acks = vec![8, 7];
        assert_eq!(plan_acks(&mut acks, Some(2)), (None, &[7, 8][..]));
    }

    #[test]
    fn tags_carry_the_channel_generation() {
        let t = encode(3, 12_345);
        assert_eq!(decode(t), (3, 12_345));
        assert_ne!(encode(1, 5), encode(2, 5));
    }
}
