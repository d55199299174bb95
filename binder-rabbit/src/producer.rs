//! Producer bindings: publisher confirms with many publishes in flight. Each send returns a
//! [`Confirmation`] that resolves on the broker's `basic.ack`; a publish whose channel dies
//! before the confirm is published again on the next connection (until `publish-timeout`),
//! so a broker restart costs at most duplicates, never a lost message.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;
use bindery::binder::{Confirmation, Producer};
use bindery::{Error, RawMessage, Result};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel};
use tokio::time::Instant;

use crate::amqp::to_properties;
use crate::connection::Lease;
use crate::naming;

/// A publish on its way to the socket: resolves to lapin's confirm handle and the message back.
type Write = Pin<Box<dyn Future<Output = (lapin::Result<lapin::PublisherConfirm>, RawMessage)> + Send>>;

/// The first publish attempt of a message.
enum First {
    /// Handed to lapin on channel generation `.0`.
    Writing(u64, Write),
    /// Not published yet (no connection when it was sent).
    Unsent(RawMessage),
}

/// What a producer must (re)declare on every new channel.
#[derive(Clone, Debug)]
pub(crate) enum ProducerTopology {
    /// The destination exchange (`None` when `declare = false` and it only needs to exist).
    Exchange { destination: String, options: crate::config::BindingOptions },
    /// `DLX` and the group's dead-letter queue.
    DeadLetter { destination: String, group: String },
}

/// Where each message goes.
#[derive(Clone, Debug)]
pub(crate) enum Routing {
    /// Spring's default: the destination name.
    Fixed(ShortString),
    /// `<destination>-<n>`, n picked from the `key` header as Spring does.
    Partitioned { destination: String, count: u32 },
}

pub(crate) struct Inner {
    pub(crate) connector: Lease,
    pub(crate) binding: String,
    pub(crate) exchange: ShortString,
    pub(crate) routing: Routing,
    pub(crate) persistent: bool,
    pub(crate) topology: ProducerTopology,
    pub(crate) publish_timeout: Duration,
    /// Shared, not cloned per message: a lapin `Channel` clone copies a dozen handles.
    channel: std::sync::Mutex<Option<(u64, Arc<Channel>)>>,
    reopen: tokio::sync::Mutex<()>,
}

/// A producer binding on one exchange.
pub(crate) struct RabbitProducer {
    inner: Arc<Inner>,
}

impl RabbitProducer {
    pub(crate) async fn bind(
        connector: Lease,
        binding: String,
        exchange: ShortString,
        routing: Routing,
        persistent: bool,
        topology: ProducerTopology,
    ) -> Result<Self> {
        let publish_timeout = connector.options().publish_timeout;
        let inner = Arc::new(Inner {
            connector,
            binding,
            exchange,
            routing,
            persistent,
            topology,
            publish_timeout,
            channel: std::sync::Mutex::new(None),
            reopen: tokio::sync::Mutex::new(()),
        });
        inner.channel(0).await?; // declare now: a bad topology fails the bind, not the first send
        Ok(Self { inner })
    }
}

impl Inner {
    /// A usable confirm-mode channel: the current one, or a new one (waiting for a connection).
    /// `broken` names a channel generation known to be dead.
    async fn channel(&self, broken: u64) -> Result<(u64, Arc<Channel>)> {
        if let Some(c) = self.live_channel(broken) {
            return Ok(c);
        }
        // One task reopens; the others wait for its result instead of queueing up their own
        // `connect-timeout` waits behind it.
        let _one_at_a_time = match self.reopen.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                let _reopened = self.reopen.lock().await;
                return self.live_channel(broken).ok_or_else(|| {
                    Error::broker(format!("binding `{}`: no channel to RabbitMQ yet; reconnecting", self.binding))
                });
            }
        };
        if let Some(c) = self.live_channel(broken) {
            return Ok(c);
        }
        let (generation, conn) = self.connector.current().await?;
        let fail = |what: String| {
            self.connector.report_broken(generation);
            Error::binding(&self.binding, what)
        };
        let channel = conn.create_channel().await.map_err(|e| fail(format!("cannot open a channel: {e}")))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| fail(format!("cannot enable publisher confirms: {e}")))?;
        let declared = match &self.topology {
            ProducerTopology::Exchange { destination, options } => {
                crate::topology::declare_exchange(&channel, destination, options).await
            }
            ProducerTopology::DeadLetter { destination, group } => {
                crate::topology::declare_dead_letter_queue(&channel, destination, group).await
            }
        };
        declared.map_err(|e| Error::binding(&self.binding, self.connector.scrub(e)))?;
        let channel = Arc::new(channel);
        if let Ok(mut slot) = self.channel.lock() {
            *slot = Some((generation, channel.clone()));
        }
        Ok((generation, channel))
    }

    /// Hands a publish to lapin and returns its confirmation. Never waits: the first poll of
    /// `basic_publish` queues the frames with lapin (so publishes keep the order of the sends)
    /// and registers the confirm; waiting for the socket write and the broker's ack happens
    /// inside the confirmation, so a send costs no round trip to lapin's I/O loop.
    fn start(
        self: &Arc<Self>,
        generation: u64,
        channel: Arc<Channel>,
        rk: ShortString,
        props: BasicProperties,
        message: RawMessage,
    ) -> Confirmation {
        let (exchange, key) = (self.exchange.clone(), rk.clone());
        let mut write: Write = Box::pin(async move {
            let written =
                channel.basic_publish(exchange, key, BasicPublishOptions::default(), message.payload(), props).await;
            (written, message)
        });
        // Polled here with a no-op waker; the confirmation polls it again with a real one.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if let Poll::Ready(done) = write.as_mut().poll(&mut cx) {
            write = Box::pin(std::future::ready(done));
        }
        Confirmation::from_future(self.clone().confirm(First::Writing(generation, write), rk))
    }

    fn live_channel(&self, broken: u64) -> Option<(u64, Arc<Channel>)> {
        let slot = self.channel.lock().ok()?;
        match &*slot {
            Some((g, c)) if *g != broken && c.status().connected() => Some((*g, c.clone())),
            _ => None,
        }
    }

    fn routing_key(&self, message: &RawMessage) -> Result<ShortString> {
        match &self.routing {
            Routing::Fixed(k) => Ok(k.clone()),
            Routing::Partitioned { destination, count } => {
                let partition = match message.headers().key() {
                    Some(key) => naming::select_partition(&String::from_utf8_lossy(key), *count),
                    None => 0,
                };
                crate::topology::short("routing key", &naming::partition_routing_key(destination, partition))
                    .map_err(|e| Error::binding(&self.binding, e))
            }
        }
    }

    async fn publish(
        &self,
        channel: &Channel,
        rk: ShortString,
        message: &RawMessage,
        props: BasicProperties,
    ) -> lapin::Result<lapin::PublisherConfirm> {
        channel.basic_publish(self.exchange.clone(), rk, BasicPublishOptions::default(), message.payload(), props).await
    }

    /// Waits for the broker's verdict on a publish, publishing again on a new channel when the
    /// old one died first.
    async fn confirm(self: Arc<Self>, first: First, rk: ShortString) -> Result<()> {
        let deadline = Instant::now() + self.publish_timeout;
        let mut last_error = String::new();
        let mut broken = 0;
        let mut pause = self.connector.options().reconnect_initial;
        let (mut pending, message) = match first {
            First::Writing(generation, write) => match write.await {
                (Ok(confirm), message) => (Some((generation, confirm)), message),
                (Err(e), message) => {
                    last_error = self.connector.scrub(e);
                    broken = generation;
                    self.connector.report_broken(generation);
                    (None, message)
                }
            },
            First::Unsent(message) => (None, message),
        };
        loop {
            if let Some((generation, confirm)) = pending.take() {
                match confirm.await {
                    Ok(lapin::Confirmation::Nack(_)) => {
                        return Err(Error::broker(format!(
                            "binding `{}`: RabbitMQ refused (nack) a message for exchange `{}`",
                            self.binding, self.exchange
                        )));
                    }
                    Ok(_) => return Ok(()),
                    Err(e) => {
                        last_error = self.connector.scrub(e);
                        broken = generation;
                        self.connector.report_broken(generation);
                    }
                }
            }
            if Instant::now() >= deadline || self.connector.is_shut_down() {
                return Err(Error::broker(format!(
                    "binding `{}`: message to exchange `{}` not confirmed within {:?}: {last_error}",
                    self.binding, self.exchange, self.publish_timeout
                )));
            }
            let republished = tokio::time::timeout_at(deadline, async {
                let (generation, channel) = self.channel(broken).await?;
                let props = to_properties(&message, self.persistent).map_err(|e| Error::binding(&self.binding, e))?;
                match self.publish(&channel, rk.clone(), &message, props).await {
                    Ok(c) => Ok::<_, Error>(Ok((generation, c))),
                    Err(e) => Ok(Err((generation, e))),
                }
            })
            .await;
            match republished {
                Ok(Ok(Ok(next))) => {
                    tracing::debug!(binding = %self.binding, "republished an unconfirmed message after reconnecting");
                    pending = Some(next);
                }
                Ok(Ok(Err((generation, e)))) => {
                    last_error = self.connector.scrub(e);
                    broken = generation;
                    self.connector.report_broken(generation);
                }
                Ok(Err(e)) => {
                    // No connection yet, or it died while declaring: keep trying until the
                    // deadline, pausing so a broker that keeps refusing is not hammered.
                    last_error = e.to_string();
                    let _ = tokio::time::timeout_at(deadline, tokio::time::sleep(pause)).await;
                    pause = (pause * 2).min(self.connector.options().reconnect_max);
                }
                Err(_) => {} // deadline; reported above
            }
        }
    }
}

#[async_trait]
impl Producer for RabbitProducer {
    async fn send(&self, message: RawMessage) -> Result<Confirmation> {
        let inner = &self.inner;
        let props = to_properties(&message, inner.persistent).map_err(|e| Error::binding(&inner.binding, e))?;
        let rk = inner.routing_key(&message)?;
        let (generation, channel) = match inner.channel(0).await {
            Ok(c) => c,
            // Broker unreachable right now: the confirmation keeps trying until publish-timeout.
            Err(e) if e.is_broker() => {
                return Ok(Confirmation::from_future(inner.clone().confirm(First::Unsent(message), rk)));
            }
            Err(e) => return Err(e),
        };
        Ok(inner.start(generation, channel, rk, props, message))
    }

    fn try_send(&self, message: RawMessage) -> std::result::Result<Result<Confirmation>, RawMessage> {
        let inner = &self.inner;
        // Without a live channel, `send` waits for one.
        let Some((generation, channel)) = inner.live_channel(0) else { return Err(message) };
        let props = match to_properties(&message, inner.persistent) {
            Ok(p) => p,
            Err(e) => return Ok(Err(Error::binding(&inner.binding, e))),
        };
        let rk = match inner.routing_key(&message) {
            Ok(k) => k,
            Err(e) => return Ok(Err(e)),
        };
        Ok(Ok(inner.start(generation, channel, rk, props, message)))
    }

    async fn flush(&self, timeout: Duration) -> Result<()> {
        let channel = self.inner.channel.lock().ok().and_then(|c| c.as_ref().map(|(_, c)| c.clone()));
        let Some(channel) = channel else { return Ok(()) };
        match tokio::time::timeout(timeout, channel.wait_for_confirms()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Error::broker(format!(
                "binding `{}`: confirms lost while flushing: {}",
                self.inner.binding,
                self.inner.connector.scrub(e)
            ))),
            Err(_) => Err(Error::new(
                bindery::ErrorKind::Timeout,
                format!("binding `{}`: unconfirmed messages after {timeout:?}", self.inner.binding),
            )),
        }
    }
}
