//! The seam between bindings and a broker: [`Binder`], its producers and consumers, and the
//! acknowledgement handles that travel with every delivery.
//!
//! Binders never see handlers. A consumer binding pushes [`Delivery`]s into the bounded
//! [`InputChannel`] the runtime gives it; the runtime settles each one through its
//! [`AckHandle`]. A producer binding takes encoded messages and returns a [`Confirmation`]
//! that resolves once the broker has the message.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use bindery::binder::{AckHandle, Delivery, InputChannel};
//!
//! // The runtime makes the channel; a consumer binding feeds it.
//! let (channel, mut deliveries) = InputChannel::bounded(16);
//! let message = bindery::Message::new(bindery::Bytes::from_static(b"{}"));
//! channel.send(Delivery::new(message, AckHandle::none(), Some(0))).await.unwrap();
//! // The runtime runs the handler, then settles the delivery.
//! let d = deliveries.recv().await.unwrap();
//! assert_eq!(d.partition, Some(0));
//! d.ack.ack();
//! # });
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use crate::config::{BinderSettings, StartOffset};
use crate::error::{Error, Result};
use crate::message::RawMessage;

/// Everything a binder needs to create a producer binding.
///
/// ```
/// use bindery::binder::{ProducerRole, ProducerSpec};
/// let mut spec = ProducerSpec::output("bill-out-0", "invoices.v1");
/// spec.partition_count = 4; // what `partition-count` sets
/// assert_eq!(spec.binding, "bill-out-0");
/// assert_eq!(spec.role, ProducerRole::Output);
/// assert!(spec.options.is_empty());
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ProducerSpec {
    /// The binding name (`bill-out-0`), for logs and errors.
    pub binding: String,
    /// Topic / exchange / memory topic to publish to.
    pub destination: String,
    /// Number of partitions the destination should have.
    pub partition_count: u32,
    /// What the producer is for.
    pub role: ProducerRole,
    /// Binder-specific `[bindings.<name>.options]`.
    pub options: serde_json::Map<String, serde_json::Value>,
}

impl ProducerSpec {
    /// A spec for an ordinary output binding.
    ///
    /// ```
    /// let s = bindery::binder::ProducerSpec::output("bill-out-0", "invoices");
    /// assert_eq!(s.destination, "invoices");
    /// assert_eq!(s.partition_count, 1);
    /// ```
    pub fn output(binding: impl Into<String>, destination: impl Into<String>) -> Self {
        Self {
            binding: binding.into(),
            destination: destination.into(),
            partition_count: 1,
            role: ProducerRole::Output,
            options: Default::default(),
        }
    }
}

/// Why a producer exists.
///
/// ```
/// use bindery::binder::ProducerRole;
/// let role = ProducerRole::DeadLetter { source_destination: "orders".into(), group: "billing".into() };
/// // A binder picks the topology from the role, e.g. a memory-style DLQ name:
/// let name = match &role {
///     ProducerRole::DeadLetter { source_destination, group } => format!("{source_destination}.{group}.dlq"),
///     _ => String::new(),
/// };
/// assert_eq!(name, "orders.billing.dlq");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProducerRole {
    /// An output binding of a handler or source.
    Output,
    /// The dead-letter producer of a consumer binding.
    DeadLetter {
        /// The destination the failed messages were consumed from.
        source_destination: String,
        /// The consumer group.
        group: String,
    },
}

/// Everything a binder needs to create a consumer binding.
///
/// ```
/// use bindery::binder::ConsumerSpec;
/// let mut spec = ConsumerSpec::new("audit-in-0", "invoices", None);
/// assert_eq!(spec.start_offset, bindery::StartOffset::Latest); // anonymous: only new messages
/// assert_eq!((spec.concurrency, spec.instance_index, spec.instance_count), (1, 0, 1));
/// spec.concurrency = 4; // what `[bindings.<name>.consumer] concurrency` sets
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConsumerSpec {
    /// The binding name (`audit-in-0`).
    pub binding: String,
    /// Topic / exchange / memory topic to consume.
    pub destination: String,
    /// Consumer group; `None` is an anonymous subscriber that sees every message.
    pub group: Option<String>,
    /// Handler concurrency; binders size prefetch windows from it.
    pub concurrency: usize,
    /// Where a new group starts.
    pub start_offset: StartOffset,
    /// This instance among `instance_count` (partitioned consumers).
    pub instance_index: u32,
    /// Number of instances.
    pub instance_count: u32,
    /// Binder-specific `[bindings.<name>.options]`.
    pub options: serde_json::Map<String, serde_json::Value>,
}

impl ConsumerSpec {
    /// A spec with defaults: concurrency 1, latest without a group, earliest with one.
    ///
    /// ```
    /// let s = bindery::binder::ConsumerSpec::new("audit-in-0", "invoices", Some("audit".into()));
    /// assert_eq!(s.start_offset, bindery::StartOffset::Earliest);
    /// ```
    pub fn new(binding: impl Into<String>, destination: impl Into<String>, group: Option<String>) -> Self {
        let start_offset = if group.is_some() { StartOffset::Earliest } else { StartOffset::Latest };
        Self {
            binding: binding.into(),
            destination: destination.into(),
            group,
            concurrency: 1,
            start_offset,
            instance_index: 0,
            instance_count: 1,
            options: Default::default(),
        }
    }
}

/// Up, down, or not known yet.
///
/// ```
/// let h = bindery::Health::down("broker unreachable");
/// assert!(!h.is_up());
/// assert_eq!(h.detail(), "broker unreachable");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    status: HealthStatus,
    detail: String,
}

/// The state in a [`Health`] report.
///
/// ```
/// use bindery::{Health, binder::HealthStatus};
/// assert_eq!(Health::up().status(), HealthStatus::Up);
/// assert_eq!(Health::down("connection refused").status(), HealthStatus::Down);
/// assert_eq!(Health::unknown("connecting").status(), HealthStatus::Unknown);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HealthStatus {
    /// Working.
    Up,
    /// Not working; see the detail.
    Down,
    /// Not checked yet (binding being created).
    Unknown,
}

impl Health {
    /// Healthy.
    ///
    /// ```
    /// assert!(bindery::Health::up().is_up());
    /// ```
    pub fn up() -> Self {
        Self { status: HealthStatus::Up, detail: String::new() }
    }

    /// Healthy, with a detail worth showing (consumer lag, connected broker).
    ///
    /// ```
    /// let h = bindery::Health::up_with("lag 0");
    /// assert!(h.is_up());
    /// assert_eq!(h.detail(), "lag 0");
    /// ```
    pub fn up_with(detail: impl Into<String>) -> Self {
        Self { status: HealthStatus::Up, detail: detail.into() }
    }

    /// Unhealthy, with the reason.
    ///
    /// ```
    /// assert_eq!(bindery::Health::down("x").status(), bindery::binder::HealthStatus::Down);
    /// ```
    pub fn down(detail: impl Into<String>) -> Self {
        Self { status: HealthStatus::Down, detail: detail.into() }
    }

    /// Not known yet.
    ///
    /// ```
    /// assert!(!bindery::Health::unknown("starting").is_up());
    /// ```
    pub fn unknown(detail: impl Into<String>) -> Self {
        Self { status: HealthStatus::Unknown, detail: detail.into() }
    }

    /// The state.
    ///
    /// ```
    /// assert_eq!(bindery::Health::up().status(), bindery::binder::HealthStatus::Up);
    /// ```
    pub fn status(&self) -> HealthStatus {
        self.status
    }

    /// True when up.
    ///
    /// ```
    /// assert!(bindery::Health::up().is_up());
    /// ```
    pub fn is_up(&self) -> bool {
        self.status == HealthStatus::Up
    }

    /// Why it is in this state (empty when up, unless made with [`up_with`](Self::up_with)).
    ///
    /// ```
    /// assert_eq!(bindery::Health::up().detail(), "");
    /// ```
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

/// Resolves when the broker has taken a published message.
///
/// Producers return it from [`Producer::send`] so callers can keep many sends in flight and
/// wait for all of them together.
///
/// ```
/// # tokio_test_block_on(async {
/// use bindery::binder::Confirmation;
/// assert!(Confirmation::confirmed().await.is_ok());
/// let (tx, c) = Confirmation::channel();
/// tx.confirm(Err(bindery::Error::broker("nack")));
/// assert!(c.await.unwrap_err().is_broker());
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[must_use = "a send is only confirmed once its Confirmation resolves Ok"]
pub struct Confirmation {
    inner: ConfirmationInner,
}

enum ConfirmationInner {
    Ready(Option<Result<()>>),
    Channel(oneshot::Receiver<Result<()>>),
    Future(Pin<Box<dyn Future<Output = Result<()>> + Send>>),
    /// Number `seq` of `ledger`; `open` until it resolved.
    Ledger {
        ledger: Arc<dyn Ledger>,
        seq: u64,
        open: bool,
    },
}

/// Keeps the confirmations of many sends by number, so a producer can hand out a
/// [`Confirmation`] per message without allocating a channel for each (see
/// [`Confirmation::ledger`]). The Kafka binder keeps one per librdkafka producer, fed by its
/// delivery callback.
///
/// A ledger whose sends are all confirmed at once:
///
/// ```
/// use std::sync::Arc;
/// use std::task::{Context, Poll};
/// use bindery::binder::{Confirmation, Ledger};
///
/// struct AllConfirmed;
/// impl Ledger for AllConfirmed {
///     fn poll_confirmed(&self, _seq: u64, _cx: &mut Context<'_>) -> Poll<bindery::Result<()>> {
///         Poll::Ready(Ok(()))
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let ledger = Arc::new(AllConfirmed);
/// assert!(Confirmation::ledger(ledger.clone(), 1).await.is_ok());
/// assert!(Confirmation::ledger(ledger, 2).await.is_ok());
/// # });
/// ```
pub trait Ledger: Send + Sync + 'static {
    /// `Ready` with the outcome once send `seq` was confirmed or refused; otherwise `Pending`,
    /// and `cx` is woken when it is settled.
    fn poll_confirmed(&self, seq: u64, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<()>>;

    /// The confirmation of `seq` was dropped before it resolved: nothing needs to be kept for
    /// it any more. The default keeps nothing to begin with.
    fn forget(&self, _seq: u64) {}
}

impl std::fmt::Debug for Confirmation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Confirmation")
    }
}

/// The sending half of [`Confirmation::channel`]. Dropping it unconfirmed fails the send.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use bindery::binder::Confirmation;
/// let (confirmer, confirmation) = Confirmation::channel();
/// // A broker client's delivery callback reports later, maybe on another thread:
/// std::thread::spawn(move || confirmer.confirm(Ok(())));
/// assert!(confirmation.await.is_ok());
///
/// let (confirmer, confirmation) = Confirmation::channel();
/// drop(confirmer); // the client went away unconfirmed: the send failed
/// assert!(confirmation.await.unwrap_err().is_broker());
/// # });
/// ```
#[derive(Debug)]
pub struct Confirmer(oneshot::Sender<Result<()>>);

impl Confirmer {
    /// Reports the broker's verdict.
    ///
    /// ```
    /// let (tx, _c) = bindery::binder::Confirmation::channel();
    /// tx.confirm(Ok(()));
    /// ```
    pub fn confirm(self, result: Result<()>) {
        let _ = self.0.send(result);
    }
}

impl Confirmation {
    /// Already confirmed (in-memory brokers, fire-and-forget).
    ///
    /// ```
    /// let _c = bindery::binder::Confirmation::confirmed();
    /// ```
    pub fn confirmed() -> Self {
        Self { inner: ConfirmationInner::Ready(Some(Ok(()))) }
    }

    /// Already failed.
    ///
    /// ```
    /// let _c = bindery::binder::Confirmation::failed(bindery::Error::broker("down"));
    /// ```
    pub fn failed(error: Error) -> Self {
        Self { inner: ConfirmationInner::Ready(Some(Err(error))) }
    }

    /// A confirmation completed later through the returned [`Confirmer`].
    ///
    /// ```
    /// let (confirmer, confirmation) = bindery::binder::Confirmation::channel();
    /// confirmer.confirm(Ok(()));
    /// # drop(confirmation);
    /// ```
    pub fn channel() -> (Confirmer, Self) {
        let (tx, rx) = oneshot::channel();
        (Confirmer(tx), Self { inner: ConfirmationInner::Channel(rx) })
    }

    /// A confirmation backed by any future.
    ///
    /// ```
    /// let _c = bindery::binder::Confirmation::from_future(async { Ok(()) });
    /// ```
    pub fn from_future(f: impl Future<Output = Result<()>> + Send + 'static) -> Self {
        Self { inner: ConfirmationInner::Future(Box::pin(f)) }
    }

    /// The confirmation of send number `seq`, kept by `ledger` (see [`Ledger`]); costs no
    /// allocation.
    ///
    /// See [`Ledger`] for an example.
    ///
    /// ```
    /// # use std::task::{Context, Poll};
    /// # struct Never;
    /// # impl bindery::binder::Ledger for Never {
    /// #     fn poll_confirmed(&self, _: u64, _: &mut Context<'_>) -> Poll<bindery::Result<()>> { Poll::Pending }
    /// # }
    /// let _pending = bindery::binder::Confirmation::ledger(std::sync::Arc::new(Never), 7);
    /// ```
    pub fn ledger(ledger: Arc<dyn Ledger>, seq: u64) -> Self {
        Self { inner: ConfirmationInner::Ledger { ledger, seq, open: true } }
    }
}

impl Drop for Confirmation {
    fn drop(&mut self) {
        if let ConfirmationInner::Ledger { ledger, seq, open: true } = &self.inner {
            ledger.forget(*seq);
        }
    }
}

impl Future for Confirmation {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<()>> {
        use std::task::Poll;
        match &mut self.inner {
            ConfirmationInner::Ready(r) => {
                Poll::Ready(r.take().unwrap_or_else(|| Err(Error::closed("confirmation polled twice"))))
            }
            ConfirmationInner::Channel(rx) => match Pin::new(rx).poll(cx) {
                Poll::Ready(Ok(r)) => Poll::Ready(r),
                Poll::Ready(Err(_)) => {
                    Poll::Ready(Err(Error::broker("producer closed before the broker confirmed the message")))
                }
                Poll::Pending => Poll::Pending,
            },
            ConfirmationInner::Future(f) => f.as_mut().poll(cx),
            ConfirmationInner::Ledger { ledger, seq, open } => {
                if !*open {
                    return Poll::Ready(Err(Error::closed("confirmation polled twice")));
                }
                let r = ledger.poll_confirmed(*seq, cx);
                if r.is_ready() {
                    *open = false;
                }
                r
            }
        }
    }
}

/// A producer binding: publishes encoded messages to one destination.
///
/// A producer that keeps what it is sent, as an in-process binder might:
///
/// ```
/// use std::sync::Mutex;
/// use std::time::Duration;
/// use bindery::RawMessage;
/// use bindery::binder::{Confirmation, Producer};
///
/// #[derive(Default)]
/// struct Collect(Mutex<Vec<RawMessage>>);
///
/// #[async_trait::async_trait]
/// impl Producer for Collect {
///     async fn send(&self, message: RawMessage) -> bindery::Result<Confirmation> {
///         self.0.lock().unwrap().push(message);
///         Ok(Confirmation::confirmed()) // in memory: confirmed at once
///     }
///
///     async fn flush(&self, _timeout: Duration) -> bindery::Result<()> {
///         Ok(()) // nothing is ever pending
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let p = Collect::default();
/// let confirmation = p.send(bindery::Message::new(bindery::Bytes::from_static(b"hi"))).await.unwrap();
/// confirmation.await.unwrap();
/// assert_eq!(&p.0.lock().unwrap()[0].payload()[..], b"hi");
/// // `try_send` is not overridden, so it hands the message back for `send`:
/// assert!(p.try_send(bindery::Message::new(bindery::Bytes::new())).is_err());
/// # });
/// ```
#[async_trait]
pub trait Producer: Send + Sync + 'static {
    /// Hands `message` to the broker client. Returns once it is queued (waiting if the client's
    /// queue is full); the returned [`Confirmation`] resolves when the broker has it.
    async fn send(&self, message: RawMessage) -> Result<Confirmation>;

    /// Queues `message` if that can be done without waiting; otherwise hands it back so the
    /// caller falls back to [`send`](Producer::send). Clients with a non-blocking enqueue
    /// (librdkafka, an in-process queue) implement it to skip `send`'s boxed future on the
    /// per-message path; the default always hands the message back.
    fn try_send(&self, message: RawMessage) -> std::result::Result<Result<Confirmation>, RawMessage> {
        Err(message)
    }

    /// Waits until everything sent so far is confirmed or `timeout` passes.
    async fn flush(&self, timeout: Duration) -> Result<()>;

    /// Whether this producer puts the `id` and `timestamp` headers on the wire. A binder whose
    /// brokers carry neither (Kafka, as Spring maps it: the record has its own timestamp and
    /// consumers give each record a fresh id) returns false, and the runtime then does not
    /// generate them for its messages. The default is true.
    ///
    /// ```
    /// # use bindery::binder::{Confirmation, Producer};
    /// struct Quiet;
    /// #[async_trait::async_trait]
    /// impl Producer for Quiet {
    ///     async fn send(&self, _m: bindery::RawMessage) -> bindery::Result<Confirmation> { Ok(Confirmation::confirmed()) }
    ///     async fn flush(&self, _t: std::time::Duration) -> bindery::Result<()> { Ok(()) }
    ///     fn writes_identity(&self) -> bool { false }
    /// }
    /// assert!(!Quiet.writes_identity());
    /// ```
    fn writes_identity(&self) -> bool {
        true
    }
}

/// How a delivery was settled.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use bindery::binder::{AckHandle, Acknowledger, Settlement};
///
/// struct Last(Mutex<Option<Settlement>>);
/// impl Acknowledger for Last {
///     fn settle(&self, _tag: u64, s: Settlement) { *self.0.lock().unwrap() = Some(s); }
/// }
///
/// let last = Arc::new(Last(Mutex::new(None)));
/// AckHandle::new(last.clone(), 1).reject();
/// assert_eq!(*last.0.lock().unwrap(), Some(Settlement::Reject));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settlement {
    /// Done: never deliver again.
    Ack,
    /// Not done: deliver again (to this or another member of the group).
    Requeue,
    /// Give up without redelivery (the runtime dead-letters before rejecting).
    Reject,
}

/// A binder's side of acknowledgements: settles the delivery with tag `tag`.
///
/// Must not block: hand slow work (a network ack) to a task.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use bindery::binder::{AckHandle, Acknowledger, Settlement};
///
/// /// Counts acknowledgements; a broker binder would commit an offset or send a basic.ack.
/// #[derive(Default)]
/// struct Count(AtomicUsize);
/// impl Acknowledger for Count {
///     fn settle(&self, _tag: u64, settlement: Settlement) {
///         if settlement == Settlement::Ack {
///             self.0.fetch_add(1, Ordering::SeqCst);
///         }
///     }
/// }
///
/// let acks = Arc::new(Count::default());
/// AckHandle::new(acks.clone(), 1).ack();
/// AckHandle::new(acks.clone(), 2).requeue();
/// assert_eq!(acks.0.load(Ordering::SeqCst), 1);
/// ```
pub trait Acknowledger: Send + Sync + 'static {
    /// Records the outcome of delivery `tag`.
    fn settle(&self, tag: u64, settlement: Settlement);

    /// Whether delivery `tag` is still this consumer's to handle. A binder whose broker takes
    /// work back before it is settled (Kafka revoking a partition in a rebalance, or a requeue
    /// rewinding it) answers `false` for the deliveries it already handed out: the runtime then
    /// skips them instead of running the handler on work that will be delivered again.
    ///
    /// ```
    /// use bindery::binder::{AckHandle, Acknowledger, Settlement};
    /// struct Revoked;
    /// impl Acknowledger for Revoked {
    ///     fn settle(&self, _: u64, _: Settlement) {}
    ///     fn is_current(&self, _: u64) -> bool { false }
    /// }
    /// assert!(!AckHandle::new(std::sync::Arc::new(Revoked), 1).is_current());
    /// ```
    fn is_current(&self, _tag: u64) -> bool {
        true
    }
}

/// The acknowledgement handle travelling with a delivery. Settle it once; dropping it
/// unsettled requeues the message, so a lost handle never loses a message.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use bindery::binder::{AckHandle, Acknowledger, Settlement};
///
/// #[derive(Default)]
/// struct Log(Mutex<Vec<(u64, Settlement)>>);
/// impl Acknowledger for Log {
///     fn settle(&self, tag: u64, s: Settlement) { self.0.lock().unwrap().push((tag, s)); }
/// }
///
/// let log = Arc::new(Log::default());
/// AckHandle::new(log.clone(), 1).ack();
/// drop(AckHandle::new(log.clone(), 2)); // never settled: requeued
/// assert_eq!(*log.0.lock().unwrap(), [(1, Settlement::Ack), (2, Settlement::Requeue)]);
/// ```
pub struct AckHandle {
    acker: Option<Arc<dyn Acknowledger>>,
    tag: u64,
}

impl std::fmt::Debug for AckHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckHandle").field("tag", &self.tag).finish()
    }
}

impl AckHandle {
    /// A handle settling `tag` through `acker`.
    ///
    /// See the type's example.
    ///
    /// ```
    /// # use bindery::binder::*;
    /// struct Nop;
    /// impl Acknowledger for Nop { fn settle(&self, _: u64, _: Settlement) {} }
    /// AckHandle::new(std::sync::Arc::new(Nop), 7).ack();
    /// ```
    pub fn new(acker: Arc<dyn Acknowledger>, tag: u64) -> Self {
        Self { acker: Some(acker), tag }
    }

    /// A handle whose settlement goes nowhere (for messages nothing can redeliver).
    ///
    /// ```
    /// bindery::binder::AckHandle::none().ack();
    /// ```
    pub fn none() -> Self {
        Self { acker: None, tag: 0 }
    }

    /// The binder's tag for this delivery.
    ///
    /// ```
    /// assert_eq!(bindery::binder::AckHandle::none().tag(), 0);
    /// ```
    pub fn tag(&self) -> u64 {
        self.tag
    }

    /// Whether the delivery is still this consumer's to handle (see
    /// [`Acknowledger::is_current`]).
    ///
    /// ```
    /// assert!(bindery::binder::AckHandle::none().is_current());
    /// ```
    pub fn is_current(&self) -> bool {
        self.acker.as_ref().is_none_or(|a| a.is_current(self.tag))
    }

    /// Settles the delivery.
    ///
    /// ```
    /// bindery::binder::AckHandle::none().settle(bindery::binder::Settlement::Reject);
    /// ```
    pub fn settle(mut self, settlement: Settlement) {
        if let Some(acker) = self.acker.take() {
            acker.settle(self.tag, settlement);
        }
    }

    /// Gives the handle up without settling, returning its tag: for a binder that takes an
    /// undelivered delivery back (its channel was full) and keeps tracking it itself.
    ///
    /// ```
    /// use bindery::binder::*;
    /// struct Panics;
    /// impl Acknowledger for Panics { fn settle(&self, _: u64, _: Settlement) { unreachable!() } }
    /// let tag = AckHandle::new(std::sync::Arc::new(Panics), 9).disarm();
    /// assert_eq!(tag, 9);
    /// ```
    pub fn disarm(mut self) -> u64 {
        self.acker = None;
        self.tag
    }

    /// Done.
    ///
    /// ```
    /// bindery::binder::AckHandle::none().ack();
    /// ```
    pub fn ack(self) {
        self.settle(Settlement::Ack)
    }

    /// Deliver again.
    ///
    /// ```
    /// bindery::binder::AckHandle::none().requeue();
    /// ```
    pub fn requeue(self) {
        self.settle(Settlement::Requeue)
    }

    /// Drop without redelivery.
    ///
    /// ```
    /// bindery::binder::AckHandle::none().reject();
    /// ```
    pub fn reject(self) {
        self.settle(Settlement::Reject)
    }
}

impl Drop for AckHandle {
    fn drop(&mut self) {
        if let Some(acker) = self.acker.take() {
            acker.settle(self.tag, Settlement::Requeue);
        }
    }
}

/// One consumed message with its acknowledgement handle.
///
/// ```
/// use bindery::binder::{AckHandle, Delivery};
/// let d = Delivery::new(bindery::Message::new(bindery::Bytes::from_static(b"{}")), AckHandle::none(), Some(3));
/// assert_eq!(d.partition, Some(3));
/// assert_eq!(&d.message.payload()[..], b"{}");
/// d.ack.ack(); // settled once the handler is done
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Delivery {
    /// The message as received.
    pub message: RawMessage,
    /// Settles it.
    pub ack: AckHandle,
    /// The partition it came from, when the broker has partitions; keeps per-partition order.
    pub partition: Option<u32>,
}

impl Delivery {
    /// A delivery.
    ///
    /// ```
    /// let d = bindery::binder::Delivery::new(bindery::Message::new(bytes::Bytes::new()), bindery::binder::AckHandle::none(), Some(0));
    /// assert_eq!(d.partition, Some(0));
    /// ```
    pub fn new(message: RawMessage, ack: AckHandle, partition: Option<u32>) -> Self {
        Self { message, ack, partition }
    }
}

/// The bounded pipe a consumer binding feeds; `send` waits when the handler side is busy,
/// which is how backpressure reaches the broker client.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let (tx, mut rx) = bindery::binder::InputChannel::bounded(8);
/// tx.send(bindery::binder::Delivery::new(bindery::Message::new(bytes::Bytes::new()), bindery::binder::AckHandle::none(), None)).await.unwrap();
/// assert!(rx.recv().await.is_some());
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct InputChannel {
    tx: mpsc::Sender<Delivery>,
}

impl InputChannel {
    /// A channel holding at most `capacity` deliveries, and its receiving end.
    ///
    /// ```
    /// let (_tx, _rx) = bindery::binder::InputChannel::bounded(1);
    /// ```
    pub fn bounded(capacity: usize) -> (Self, mpsc::Receiver<Delivery>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self { tx }, rx)
    }

    /// Passes a delivery to the handler side, waiting for room. Fails (returning the
    /// delivery, whose handle then requeues on drop) when the binding is shutting down.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let (tx, rx) = bindery::binder::InputChannel::bounded(1);
    /// drop(rx);
    /// let d = bindery::binder::Delivery::new(bindery::Message::new(bytes::Bytes::new()), bindery::binder::AckHandle::none(), None);
    /// assert!(tx.send(d).await.is_err());
    /// # });
    /// ```
    pub async fn send(&self, delivery: Delivery) -> std::result::Result<(), Box<Delivery>> {
        self.tx.send(delivery).await.map_err(|e| Box::new(e.0))
    }

    /// Passes a delivery if there is room right now; otherwise hands it back.
    ///
    /// ```
    /// let (tx, _rx) = bindery::binder::InputChannel::bounded(1);
    /// let d = || bindery::binder::Delivery::new(bindery::Message::new(bytes::Bytes::new()), bindery::binder::AckHandle::none(), None);
    /// assert!(tx.try_send(d()).is_ok());
    /// assert!(tx.try_send(d()).is_err()); // full
    /// ```
    pub fn try_send(&self, delivery: Delivery) -> std::result::Result<(), Box<Delivery>> {
        self.tx.try_send(delivery).map_err(|e| match e {
            mpsc::error::TrySendError::Full(d) | mpsc::error::TrySendError::Closed(d) => Box::new(d),
        })
    }

    /// Waits until the channel has room for a delivery; false once it is closed.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let (tx, _rx) = bindery::binder::InputChannel::bounded(1);
    /// assert!(tx.wait_for_room().await);
    /// # });
    /// ```
    pub async fn wait_for_room(&self) -> bool {
        self.tx.reserve().await.is_ok()
    }

    /// True once the handler side has gone away.
    ///
    /// ```
    /// let (tx, rx) = bindery::binder::InputChannel::bounded(1);
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Resolves once the handler side has gone away.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let (tx, rx) = bindery::binder::InputChannel::bounded(1);
    /// drop(rx);
    /// tx.closed().await;
    /// # });
    /// ```
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

/// A live consumer binding.
///
/// A binding that replays a fixed list of messages into its channel:
///
/// ```
/// use std::sync::Mutex;
/// use bindery::binder::{AckHandle, ConsumerBinding, Delivery, InputChannel};
///
/// struct Replay(Mutex<Option<tokio::task::JoinHandle<()>>>);
///
/// impl Replay {
///     fn start(messages: Vec<bindery::RawMessage>, channel: InputChannel) -> Self {
///         let task = tokio::spawn(async move {
///             for m in messages {
///                 // `send` waits while the handler side is busy: backpressure.
///                 if channel.send(Delivery::new(m, AckHandle::none(), None)).await.is_err() {
///                     return; // shutting down
///                 }
///             }
///         });
///         Replay(Mutex::new(Some(task)))
///     }
/// }
///
/// #[async_trait::async_trait]
/// impl ConsumerBinding for Replay {
///     async fn stop(&self) -> bindery::Result<()> {
///         if let Some(task) = self.0.lock().unwrap().take() {
///             task.abort();
///         }
///         Ok(())
///     }
///
///     async fn close(&self) -> bindery::Result<()> {
///         self.stop().await
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> bindery::Result<()> {
/// let (channel, mut deliveries) = InputChannel::bounded(4);
/// let binding = Replay::start(vec![bindery::Message::new(bindery::Bytes::from_static(b"1"))], channel);
/// let d = deliveries.recv().await.unwrap();
/// assert_eq!(&d.message.payload()[..], b"1");
/// d.ack.ack();
/// assert!(binding.health().is_up()); // the default
/// binding.close().await
/// # }
/// ```
#[async_trait]
pub trait ConsumerBinding: Send + Sync + 'static {
    /// Stops fetching new messages. Deliveries already handed out can still be settled.
    async fn stop(&self) -> Result<()>;

    /// Releases the binding after the runtime settled everything it could.
    async fn close(&self) -> Result<()>;

    /// Whether the binding is consuming. A binding that lost its broker reports down.
    fn health(&self) -> Health {
        Health::up()
    }

    /// Resolves when the binding ends on its own (broker gone for good, consumer dropped),
    /// so the runtime can bind again. The default never resolves.
    async fn lost(&self) -> Error {
        std::future::pending().await
    }
}

/// An adapter between bindings and one broker.
///
/// Implementations register a [`BinderFactory`] with [`register_binder!`](crate::register_binder)
/// so config can name them by type.
///
/// A binder that publishes into a shared log and cannot consume, run by an app:
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use bindery::RawMessage;
/// use bindery::binder::{Binder, Confirmation, ConsumerBinding, ConsumerSpec, InputChannel, Producer, ProducerSpec};
///
/// type Log = Arc<Mutex<Vec<(String, RawMessage)>>>;
///
/// struct LogProducer { destination: String, log: Log }
///
/// #[async_trait::async_trait]
/// impl Producer for LogProducer {
///     async fn send(&self, message: RawMessage) -> bindery::Result<Confirmation> {
///         self.log.lock().unwrap().push((self.destination.clone(), message));
///         Ok(Confirmation::confirmed())
///     }
///     async fn flush(&self, _timeout: Duration) -> bindery::Result<()> {
///         Ok(())
///     }
/// }
///
/// #[derive(Default)]
/// struct LogBinder(Log);
///
/// #[async_trait::async_trait]
/// impl Binder for LogBinder {
///     fn kind(&self) -> &str {
///         "log"
///     }
///     async fn bind_producer(&self, spec: &ProducerSpec) -> bindery::Result<Arc<dyn Producer>> {
///         Ok(Arc::new(LogProducer { destination: spec.destination.clone(), log: self.0.clone() }))
///     }
///     async fn bind_consumer(&self, spec: &ConsumerSpec, _channel: InputChannel) -> bindery::Result<Box<dyn ConsumerBinding>> {
///         Err(bindery::Error::binding(&spec.binding, "the log binder cannot consume"))
///     }
///     fn dead_letter_destination(&self, destination: &str, group: &str) -> String {
///         format!("{destination}.{group}.dlq")
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> bindery::Result<()> {
/// let binder = LogBinder::default();
/// let log = binder.0.clone();
/// let app = bindery::App::builder()
///     .registered_handlers(false)
///     .binder("log", Arc::new(binder))
///     .override_binder("log")
///     .config(bindery::Config::from_toml_str("[bindings.greetings]\ndestination = \"greetings.v1\"")?)
///     .build()?
///     .start()
///     .await?;
/// app.source::<String>("greetings")?.send("hello".into()).await?;
/// app.shutdown().await?;
/// let log = log.lock().unwrap();
/// assert_eq!(log[0].0, "greetings.v1");
/// assert_eq!(&log[0].1.payload()[..], b"\"hello\"");
/// # Ok(()) }
/// ```
#[async_trait]
pub trait Binder: Send + Sync + 'static {
    /// The binder type name (`memory`, `kafka`, `rabbit`).
    fn kind(&self) -> &str;

    /// Creates a producer binding.
    async fn bind_producer(&self, spec: &ProducerSpec) -> Result<Arc<dyn Producer>>;

    /// Creates a consumer binding feeding `channel`.
    async fn bind_consumer(&self, spec: &ConsumerSpec, channel: InputChannel) -> Result<Box<dyn ConsumerBinding>>;

    /// The dead-letter destination of `destination`/`group` on this broker (Spring's naming).
    fn dead_letter_destination(&self, destination: &str, group: &str) -> String;

    /// Checks a binding's `[bindings.<name>.options]` at startup. The default accepts none:
    /// a binder that reads options overrides this and rejects the keys it does not know.
    fn check_options(
        &self,
        binding: &str,
        options: &std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Result<()> {
        match options.keys().next() {
            None => Ok(()),
            Some(key) => Err(Error::config(
                "configuration",
                format!("bindings.{binding}.options.{key}"),
                format!("the `{}` binder takes no binding options", self.kind()),
            )),
        }
    }

    /// Broker reachability.
    fn health(&self) -> Health {
        Health::up()
    }

    /// Closes connections after all bindings were closed.
    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }
}

/// Creates a binder of one type from its settings. Registered with
/// [`register_binder!`](crate::register_binder); looked up by [`kind`](Self::kind).
///
/// ```
/// use std::sync::Arc;
/// use bindery::binder::BinderFactory;
///
/// fn create(settings: &bindery::BinderSettings) -> bindery::Result<Arc<dyn bindery::Binder>> {
///     Err(bindery::Error::binding(settings.name(), "no broker in this example"))
/// }
///
/// // `register_binder!("example", create)` submits exactly this to the registry.
/// static FACTORY: BinderFactory = BinderFactory::new("example", create);
/// assert_eq!(FACTORY.kind(), "example");
/// let created = FACTORY.create(&bindery::BinderSettings::defaults("example"));
/// assert!(matches!(created, Err(e) if e.is_binding()));
/// ```
pub struct BinderFactory {
    kind: &'static str,
    create: fn(&BinderSettings) -> Result<Arc<dyn Binder>>,
}

impl std::fmt::Debug for BinderFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinderFactory").field("kind", &self.kind).finish()
    }
}

impl BinderFactory {
    /// A factory for binder type `kind`.
    ///
    /// ```
    /// fn create(_: &bindery::BinderSettings) -> bindery::Result<std::sync::Arc<dyn bindery::Binder>> {
    ///     Err(bindery::Error::binding("-", "not built"))
    /// }
    /// let f = bindery::binder::BinderFactory::new("nothing", create);
    /// assert_eq!(f.kind(), "nothing");
    /// ```
    pub const fn new(kind: &'static str, create: fn(&BinderSettings) -> Result<Arc<dyn Binder>>) -> Self {
        Self { kind, create }
    }

    /// The type name.
    ///
    /// ```
    /// assert!(bindery::binder::registered_kinds().iter().all(|k| !k.is_empty()));
    /// ```
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Builds a binder.
    ///
    /// ```
    /// fn create(_: &bindery::BinderSettings) -> bindery::Result<std::sync::Arc<dyn bindery::Binder>> {
    ///     Err(bindery::Error::binding("-", "not built"))
    /// }
    /// let f = bindery::binder::BinderFactory::new("nothing", create);
    /// assert!(f.create(&bindery::BinderSettings::defaults("nothing")).is_err());
    /// ```
    pub fn create(&self, settings: &BinderSettings) -> Result<Arc<dyn Binder>> {
        (self.create)(settings)
    }
}

inventory::collect!(BinderFactory);

/// The binder types linked into this program.
///
/// ```
/// let kinds = bindery::binder::registered_kinds();
/// assert!(kinds.windows(2).all(|w| w[0] <= w[1]));
/// ```
pub fn registered_kinds() -> Vec<&'static str> {
    let mut kinds: Vec<_> = inventory::iter::<BinderFactory>.into_iter().map(|f| f.kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds
}

/// Creates a binder of type `settings.kind()`, or explains which types are linked.
pub(crate) fn create_binder(settings: &BinderSettings) -> Result<Arc<dyn Binder>> {
    match inventory::iter::<BinderFactory>.into_iter().find(|f| f.kind == settings.kind()) {
        Some(factory) => factory.create(settings),
        None => {
            let linked = registered_kinds();
            Err(Error::config(
                "configuration",
                format!("binders.{}", settings.name()),
                format!(
                    "binder type `{}` is not linked into this program (linked: {}). Add its crate as a dependency and name it once, e.g. `use bindery_{} as _;`",
                    settings.kind(),
                    if linked.is_empty() { "none".to_string() } else { linked.join(", ") },
                    settings.kind()
                ),
            ))
        }
    }
}

/// Registers a binder type so config can name it. Call once, at module level, in the binder crate.
///
/// ```
/// use std::sync::Arc;
/// fn create(_: &bindery::BinderSettings) -> bindery::Result<Arc<dyn bindery::Binder>> {
///     Err(bindery::Error::binding("-", "example only"))
/// }
/// bindery::register_binder!("example-only", create);
/// assert!(bindery::binder::registered_kinds().contains(&"example-only"));
/// ```
#[macro_export]
macro_rules! register_binder {
    ($kind:expr, $create:expr) => {
        $crate::__private::inventory::submit! {
            $crate::binder::BinderFactory::new($kind, $create)
        }
    };
}
