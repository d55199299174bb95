//! Consumer bindings: a task moves records from librdkafka into the runtime's input channel;
//! settlements update the offset tracker, which stores only finished offsets for commit.
//!
//! - Group consumers `subscribe`; anonymous ones `assign` every partition at bind time (at
//!   the high watermark for `latest`), so nothing published after the bind is missed.
//! - Commit policy: `enable.auto.offset.store=false`; when a partition's commit point (see
//!   [`offsets`](crate::offsets)) advances, it is stored and librdkafka commits it every
//!   `commit-interval`. On revoke and on close the commit points are committed synchronously.
//! - Requeue rewinds the partition (seek back); revoked partitions' settlements are ignored.
//! - Backpressure: while the input channel is full the task does not poll, so librdkafka stops
//!   fetching once its own prefetch queue is full.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bindery::binder::{AckHandle, Acknowledger, ConsumerBinding, Delivery, InputChannel, Settlement};
use bindery::headers::names;
use bindery::{Bytes, Error, HeaderValue, Headers, Health, Message, RawMessage, Result};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Headers as _;
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::context::{Context, Lag, Reachability, lock};
use crate::hash::IntMap;
use crate::naming::headers as kh;
use crate::offsets::{EpochCell, Settled, Tracker};

pub(crate) type Client = StreamConsumer<ConsumerCtx>;

/// How long a closing consumer waits for librdkafka to finish leaving its assignment.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a closing consumer serves librdkafka's queue at least, so a rebalance that was
/// still starting (an assignment on its way) is applied and revoked before the consumer goes.
const LEAVE_SETTLE: Duration = Duration::from_millis(100);

/// State shared by the consume task, the acknowledgers and the rebalance callbacks.
pub(crate) struct Shared {
    pub(crate) tracker: Mutex<Tracker>,
    pub(crate) topic: String,
    pub(crate) binding: String,
    /// Group consumers commit; anonymous ones never do.
    pub(crate) commits: bool,
    pub(crate) consumer: OnceLock<Weak<Client>>,
    /// Wakes `bind_consumer` once the group gave this member partitions.
    pub(crate) assigned: Notify,
    /// A commit point moved since the last store.
    pub(crate) dirty: AtomicBool,
    /// The topic name as a header value (shared, not copied per record).
    pub(crate) topic_header: HeaderValue,
}

impl Shared {
    fn client(&self) -> Option<Arc<Client>> {
        self.consumer.get().and_then(Weak::upgrade)
    }

    fn tpl(&self, points: &[(i32, i64)]) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::with_capacity(points.len());
        for (p, o) in points {
            let _ = tpl.add_partition_offset(&self.topic, *p, Offset::Offset(*o));
        }
        tpl
    }

    fn settle(&self, partition: i32, offset: i64, epoch: u64, settlement: Settlement) {
        // The lock also orders stores: a later commit point is never overwritten by an earlier one.
        let mut tracker = lock(&self.tracker);
        match tracker.settle(partition, offset, epoch, settlement) {
            Settled::Nothing => {}
            Settled::Advanced(_) => {
                // Stored by the storer task (a few times per commit interval), not per message.
                self.dirty.store(true, Ordering::Release);
            }
            Settled::Rewind(at) => {
                if let Some(c) = self.client() {
                    tracing::debug!(binding = %self.binding, partition, offset = at, "requeued: re-reading the partition from the requeued offset");
                    if let Err(e) = c.seek(&self.topic, partition, Offset::Offset(at), Duration::ZERO) {
                        tracing::warn!(binding = %self.binding, partition, error = %e, "cannot seek back to a requeued record; it is redelivered after the next rebalance or restart");
                    }
                }
            }
        }
    }

    /// Stores the current commit points for librdkafka's next auto-commit, if any moved.
    fn store_moved(&self) {
        if !self.commits || !self.dirty.swap(false, Ordering::AcqRel) {
            return;
        }
        let Some(c) = self.client() else { return };
        // Under the lock: a later commit point is never overwritten by an earlier one.
        let tracker = lock(&self.tracker);
        let points = tracker.commit_points();
        if let Err(e) = c.store_offsets(&self.tpl(&points)) {
            tracing::debug!(binding = %self.binding, error = %e, "offsets not stored (partitions no longer assigned)");
        }
    }

    /// Commits the given commit points now, waiting for the broker.
    fn commit_sync<C: ConsumerContext>(&self, consumer: &impl Consumer<C>, points: &[(i32, i64)]) {
        if !self.commits || points.is_empty() {
            return;
        }
        match consumer.commit(&self.tpl(points), CommitMode::Sync) {
            Ok(()) => tracing::debug!(binding = %self.binding, ?points, "committed finished offsets"),
            Err(e) => {
                tracing::warn!(binding = %self.binding, error = %e, "committing finished offsets failed; they are committed again later or redelivered")
            }
        }
    }
}

/// Settles the deliveries of one partition in one epoch; the tag is the offset.
struct Lane {
    shared: Arc<Shared>,
    partition: i32,
    epoch: u64,
    /// The partition's epoch now, to answer `is_current` without the tracker's lock.
    current: EpochCell,
}

impl Acknowledger for Lane {
    fn settle(&self, tag: u64, settlement: Settlement) {
        self.shared.settle(self.partition, tag as i64, self.epoch, settlement);
    }

    /// False once the partition was revoked or rewound after this record was handed out.
    fn is_current(&self, tag: u64) -> bool {
        self.current.unchanged_since(self.epoch)
            || lock(&self.shared.tracker).is_current(self.partition, tag as i64, self.epoch)
    }
}

/// The consumer's librdkafka context: the common one plus rebalance handling.
pub(crate) struct ConsumerCtx {
    pub(crate) base: Context,
    pub(crate) shared: Arc<Shared>,
}

impl ClientContext for ConsumerCtx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.base.log(level, fac, log_message)
    }
    fn stats(&self, statistics: Statistics) {
        self.base.stats(statistics)
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self.base.error(error, reason)
    }
}

impl ConsumerContext for ConsumerCtx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let parts: Vec<i32> =
                    tpl.elements_for_topic(&self.shared.topic).iter().map(|e| e.partition()).collect();
                let points = lock(&self.shared.tracker).revoke(&parts);
                tracing::debug!(binding = %self.shared.binding, ?parts, "partitions revoked; committing finished work");
                self.shared.commit_sync(consumer, &points);
            }
            Rebalance::Assign(tpl) => {
                tracing::debug!(binding = %self.shared.binding, partitions = tpl.count(), "partitions assigned");
            }
            Rebalance::Error(e) => {
                tracing::warn!(binding = %self.shared.binding, error = %e, "rebalance failed");
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            if tpl.count() > 0 {
                self.shared.assigned.notify_waiters();
            }
        }
    }
}

/// Header names bindery itself writes, without an allocation per record.
fn header_name(name: &str) -> std::borrow::Cow<'static, str> {
    const KNOWN: &[&str] = &[
        names::ID,
        names::CONTENT_TYPE,
        names::TIMESTAMP,
        names::CORRELATION_ID,
        names::DELIVERY_ATTEMPT,
        names::TRACEPARENT,
        names::REPLY_TO,
    ];
    match KNOWN.iter().find(|k| **k == name) {
        Some(k) => std::borrow::Cow::Borrowed(k),
        None => std::borrow::Cow::Owned(name.to_string()),
    }
}

/// The message the runtime sees for a consumed record.
pub(crate) fn to_message<M: rdkafka::Message>(record: &M, topic: &HeaderValue) -> RawMessage {
    let kafka_headers = record.headers();
    // The record's headers, then ours: id, timestamp, topic, partition, offset, and the key if
    // the record has one. Exactly that many: six (`contentType` and ours) fit a header block.
    let ours = 5 + usize::from(record.key().is_some());
    let mut headers = Headers::with_capacity(kafka_headers.map(|h| h.count()).unwrap_or(0) + ours);
    // Which of the headers we add the record carries already. Almost never any: then ours are
    // appended without a scan of the headers per name.
    let (mut has_id, mut has_timestamp, mut has_ours) = (false, false, false);
    if let Some(hs) = kafka_headers {
        for h in hs.iter() {
            let mut value = h.value.unwrap_or_default();
            match h.key {
                // Spring Kafka before 2.3 wrote String headers JSON-encoded ("\"application/json\"").
                names::CONTENT_TYPE if value.len() >= 2 && value[0] == b'"' && value[value.len() - 1] == b'"' => {
                    value = &value[1..value.len() - 1];
                }
                names::ID => has_id = true,
                names::TIMESTAMP => has_timestamp = true,
                names::KEY | kh::RECEIVED_TOPIC | kh::RECEIVED_PARTITION | kh::OFFSET | kh::TOMBSTONE => {
                    has_ours = true
                }
                _ => {}
            }
            headers.insert(header_name(h.key), HeaderValue::from(value));
        }
    }
    let add = |headers: &mut Headers, name: &'static str, value: HeaderValue| {
        if has_ours { headers.insert(name, value) } else { headers.append(name, value) }
    };
    if let Some(k) = record.key() {
        add(&mut headers, names::KEY, HeaderValue::from(k));
    }
    // Spring never writes `id` or `timestamp` to Kafka (nor does bindery): as Spring does on
    // receipt, a record gets a fresh id, and the record's own timestamp.
    if !has_id {
        headers.append(names::ID, bindery::new_message_id());
    }
    if !has_timestamp {
        if let Some(ms) = record.timestamp().to_millis().and_then(|ms| u64::try_from(ms).ok()) {
            headers.append(names::TIMESTAMP, ms);
        }
    }
    add(&mut headers, kh::RECEIVED_TOPIC, topic.clone());
    add(&mut headers, kh::RECEIVED_PARTITION, HeaderValue::from(u64::try_from(record.partition()).unwrap_or_default()));
    add(&mut headers, kh::OFFSET, HeaderValue::from(u64::try_from(record.offset()).unwrap_or_default()));
    let payload = match record.payload() {
        Some(p) => Bytes::copy_from_slice(p),
        None => {
            // A tombstone: JSON `null`, so an `Option<T>` argument decodes to `None`.
            headers.insert(kh::TOMBSTONE, "true");
            headers.set_content_type(bindery::codec::JSON);
            Bytes::from_static(b"null")
        }
    };
    Message::from_parts(payload, headers)
}

/// Stores moved commit points every `every` until stopped (librdkafka commits them every
/// `commit-interval`; close and revoke commit directly).
pub(crate) async fn storer(shared: Arc<Shared>, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => shared.store_moved(),
        }
    }
}

/// Moves records into `channel` until stopped.
pub(crate) async fn pump(
    client: Arc<Client>,
    shared: Arc<Shared>,
    channel: InputChannel,
    stop: CancellationToken,
    lost: CancellationToken,
) {
    let mut lanes: IntMap<i32, Arc<Lane>> = IntMap::default();
    // One stop future for the whole loop: registering a fresh one per record costs more
    // than the rest of the hand-off.
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    loop {
        let record = tokio::select! {
            biased;
            _ = &mut stopped => return,
            r = client.recv() => r,
        };
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                if let Some((code, reason)) = client.client().fatal_error() {
                    tracing::error!(binding = %shared.binding, %code, "consumer failed for good: {reason}");
                    lost.cancel();
                    return;
                }
                tracing::warn!(binding = %shared.binding, error = %e, "consumer error (librdkafka retries)");
                continue;
            }
        };
        use rdkafka::Message as _;
        let (partition, offset) = (record.partition(), record.offset());
        let lane = {
            let mut tracker = lock(&shared.tracker);
            let Some(epoch) = tracker.admit(partition, offset) else { continue };
            match lanes.get(&partition) {
                Some(l) if l.epoch == epoch => l.clone(),
                _ => {
                    let current = tracker.epoch_cell(partition);
                    let l = Arc::new(Lane { shared: shared.clone(), partition, epoch, current });
                    lanes.insert(partition, l.clone());
                    l
                }
            }
        };
        let message = to_message(&record, &shared.topic_header);
        drop(record);
        let delivery = Delivery::new(message, AckHandle::new(lane, offset as u64), u32::try_from(partition).ok());
        if let Err(delivery) = channel.try_send(delivery) {
            // Full: wait without polling; librdkafka stops fetching when its queue fills.
            tokio::select! {
                r = channel.send(*delivery) => if r.is_err() { return },
                _ = &mut stopped => return, // the unsent delivery requeues (rewinds) on drop
            }
        }
    }
}

pub(crate) struct KafkaConsumer {
    pub(crate) client: Mutex<Option<Arc<Client>>>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) stop: CancellationToken,
    pub(crate) lost: CancellationToken,
    pub(crate) task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    pub(crate) storer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    pub(crate) lag: Arc<Lag>,
    pub(crate) reach: Arc<Reachability>,
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        // Dropped without `close` (the app was aborted): stop handing out records.
        self.stop.cancel();
    }
}

#[async_trait]
impl ConsumerBinding for KafkaConsumer {
    async fn stop(&self) -> Result<()> {
        self.stop.cancel();
        let task = lock(&self.task).take();
        if let Some(t) = task {
            let _ = t.await;
        }
        let storer = lock(&self.storer).take();
        if let Some(t) = storer {
            let _ = t.await;
        }
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        self.stop().await?;
        let client = lock(&self.client).take();
        let Some(client) = client else { return Ok(()) };
        // Commit what finished while the partitions are still this member's.
        let (shared, c) = (self.shared.clone(), client.clone());
        tokio::task::spawn_blocking(move || {
            let points = lock(&shared.tracker).commit_points();
            shared.commit_sync(c.as_ref(), &points);
        })
        .await
        .map_err(|e| Error::broker(format!("closing consumer of `{}` failed: {e}", self.shared.topic)))?;
        // Leave the group (or drop the manual assignment) and let librdkafka finish every
        // rebalance step before the consumer is destroyed: destroying it while an assignment
        // is still being applied (a bind closed while its group was joining) trips librdkafka's
        // `rd_kafka_assignment_in_progress` assertion and aborts the process. The revoke
        // callback commits the finished offsets once more; records read meanwhile are dropped
        // unstored, so they are redelivered.
        if self.shared.commits {
            client.unsubscribe();
        } else if let Err(e) = client.unassign() {
            tracing::debug!(binding = %self.shared.binding, error = %e, "dropping the assignment before close");
        }
        let started = tokio::time::Instant::now();
        let deadline = started + LEAVE_TIMEOUT;
        loop {
            let _ = tokio::time::timeout(Duration::from_millis(50), client.recv()).await;
            let assigned = client.assignment().map(|a| a.count()).unwrap_or(0);
            let now = tokio::time::Instant::now();
            if assigned == 0 && now - started >= LEAVE_SETTLE {
                break;
            }
            if now >= deadline {
                tracing::warn!(binding = %self.shared.binding, assigned, "partitions still assigned when closing the consumer");
                break;
            }
        }
        // Dropping the last handle closes the consumer (blocking until librdkafka is done).
        tokio::task::spawn_blocking(move || drop(client))
            .await
            .map_err(|e| Error::broker(format!("closing consumer of `{}` failed: {e}", self.shared.topic)))?;
        Ok(())
    }

    fn health(&self) -> Health {
        if self.lost.is_cancelled() {
            return Health::down(format!("consumer of topic `{}` failed", self.shared.topic));
        }
        let h = self.reach.health();
        if h.is_up() { Health::up_with(format!("topic `{}`: {}", self.shared.topic, self.lag.describe())) } else { h }
    }

    async fn lost(&self) -> Error {
        self.lost.cancelled().await;
        Error::broker(format!("binding `{}`: Kafka consumer failed fatally", self.shared.binding))
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::Timestamp;
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};

    use super::*;

    fn record(headers: OwnedHeaders) -> OwnedMessage {
        let payload = Some(b"{}".to_vec());
        OwnedMessage::new(
            payload,
            Some(b"k".to_vec()),
            "orders".into(),
            Timestamp::CreateTime(1_764_000_000_123),
            3,
            42,
            Some(headers),
        )
    }

    #[test]
    fn records_without_id_get_a_fresh_one_and_the_record_timestamp() {
        let headers = OwnedHeaders::new().insert(Header { key: "contentType", value: Some("application/json") });
        let topic = HeaderValue::from("orders");
        let (a, b) = (to_message(&record(headers.clone()), &topic), to_message(&record(headers), &topic));
        let id = a.headers().id();
        assert!(id.is_some(), "a uuid id: {:?}", a.headers());
        assert_ne!(id, b.headers().id(), "each receipt gets its own id");
        assert_eq!(a.headers().get_str("timestamp"), Some("1764000000123"));
        assert_eq!(a.headers().key(), Some(&b"k"[..]));
        assert_eq!(a.headers().get_str(kh::OFFSET), Some("42"));
    }

    #[test]
    fn an_id_and_timestamp_on_the_record_are_kept() {
        let headers = OwnedHeaders::new()
            .insert(Header { key: "id", value: Some("from-a-producer") })
            .insert(Header { key: "timestamp", value: Some("5") });
        let m = to_message(&record(headers), &HeaderValue::from("orders"));
        assert_eq!(m.headers().get_str("id"), Some("from-a-producer"));
        assert_eq!(m.headers().get_str("timestamp"), Some("5"));
    }

    #[test]
    fn record_headers_named_like_ours_are_replaced_not_repeated() {
        let headers = OwnedHeaders::new()
            .insert(Header { key: "kafka_offset", value: Some("999") })
            .insert(Header { key: "key", value: Some("forged") })
            .insert(Header { key: "contentType", value: Some("\"application/json\"") })
            .insert(Header { key: "tenant", value: Some("acme") })
            .insert(Header { key: "tenant", value: Some("umbrella") });
        let m = to_message(&record(headers), &HeaderValue::from("orders"));
        let h = m.headers();
        assert_eq!(h.get_str(kh::OFFSET), Some("42"), "the consumed offset, not a header pretending to be it");
        assert_eq!(h.key(), Some(&b"k"[..]));
        assert_eq!(h.content_type(), Some("application/json"), "Spring Kafka < 2.3 quoting removed");
        assert_eq!(h.get_str("tenant"), Some("umbrella"), "a repeated record header: the last one wins");
        let mut names: Vec<&str> = h.iter().map(|(n, _)| n).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "every name once: {:?}", h);
        assert_eq!(h.get_str(kh::RECEIVED_PARTITION), Some("3"));
        assert!(h.id().is_some() && h.timestamp() == Some(1_764_000_000_123));
    }
}
