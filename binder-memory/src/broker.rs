//! The in-process broker: topics with partitions, consumer groups with per-partition queues,
//! unacknowledged deliveries tracked for redelivery, and fault injection for tests.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use bindery::RawMessage;
use bindery::binder::{AckHandle, Acknowledger, Delivery, InputChannel, Settlement};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Locks, recovering the data if a panicking thread poisoned the lock: the broker's state
/// stays consistent because every critical section is short and panic-free.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// FNV-1a: a stable hash, so a key maps to the same partition in every run.
pub(crate) fn partition_for(key: &[u8], partitions: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(partitions.max(1))) as u32
}

/// Faults to inject, for tests of the at-least-once contract.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> bindery::Result<()> {
/// use bindery::prelude::*;
/// let echo = bindery::Handler::processor("echo", |m: Message<String>, _c: Context| async move {
///     Ok::<_, HandlerError>(vec![m])
/// }).input("in").output("out");
/// let app = bindery_memory::TestApp::builder().registered_handlers(false).handler(echo).start().await?;
/// let faults: &bindery_memory::Faults = app.broker().faults();
/// faults.fail_next_acks(1); // the first acknowledgement is lost ...
/// app.input("in").send_json(&"once").await?;
/// let out = app.output("out");
/// assert_eq!(out.recv_json::<String>().await?, "once");
/// assert_eq!(out.recv_json::<String>().await?, "once"); // ... so the input is handled again
/// app.shutdown().await
/// # }
/// ```
#[derive(Debug, Default)]
pub struct Faults {
    fail_acks: AtomicUsize,
    duplicates: AtomicUsize,
    delay_ms: AtomicU64,
}

impl Faults {
    /// The next `n` acknowledgements are lost: those messages are delivered again.
    ///
    /// ```
    /// bindery_memory::MemoryBroker::new().faults().fail_next_acks(2);
    /// ```
    pub fn fail_next_acks(&self, n: usize) {
        self.fail_acks.store(n, Ordering::SeqCst);
    }

    /// The next `n` deliveries are each delivered twice.
    ///
    /// ```
    /// bindery_memory::MemoryBroker::new().faults().duplicate_next_deliveries(1);
    /// ```
    pub fn duplicate_next_deliveries(&self, n: usize) {
        self.duplicates.store(n, Ordering::SeqCst);
    }

    /// Every delivery waits `delay` before reaching the consumer (zero to stop).
    ///
    /// ```
    /// bindery_memory::MemoryBroker::new().faults().delay_deliveries(std::time::Duration::from_millis(5));
    /// ```
    pub fn delay_deliveries(&self, delay: Duration) {
        self.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    fn take(counter: &AtomicUsize) -> bool {
        counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
    }

    /// Whether any fault is armed (the direct hand-off is then bypassed).
    fn active(&self) -> bool {
        self.fail_acks.load(Ordering::Relaxed) > 0
            || self.duplicates.load(Ordering::Relaxed) > 0
            || self.delay_ms.load(Ordering::Relaxed) > 0
    }

    pub(crate) fn delay(&self) -> Option<Duration> {
        match self.delay_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }
}

/// An in-process broker. Binders of type `memory` with the same `broker` name share one.
///
/// ```
/// let broker = bindery_memory::MemoryBroker::new();
/// assert!(broker.history("nothing-yet").is_empty());
/// ```
#[derive(Debug)]
pub struct MemoryBroker {
    topics: Mutex<HashMap<String, Arc<Topic>>>,
    record: bool,
    queue_capacity: usize,
    faults: Faults,
    next_member: AtomicU64,
}

impl MemoryBroker {
    /// A broker that keeps no history (what production-like runs use).
    ///
    /// ```
    /// let _b = bindery_memory::MemoryBroker::new();
    /// ```
    pub fn new() -> Arc<Self> {
        Arc::new(Self::with(false, 1_024))
    }

    /// A broker whose consumed groups hold at most `capacity` queued messages before
    /// producers wait (the `queue-capacity` setting).
    ///
    /// ```
    /// let _b = bindery_memory::MemoryBroker::with_capacity(100);
    /// ```
    pub fn with_capacity(capacity: usize) -> Arc<Self> {
        Arc::new(Self::with(false, capacity))
    }

    /// A broker that records every message published to every topic, for tests.
    ///
    /// ```
    /// let b = bindery_memory::MemoryBroker::recording();
    /// b.publish("t", bindery::Message::new(bindery::Bytes::from_static(b"1")));
    /// assert_eq!(b.history("t").len(), 1);
    /// ```
    pub fn recording() -> Arc<Self> {
        Arc::new(Self::with(true, 1_024))
    }

    pub(crate) fn with(record: bool, queue_capacity: usize) -> Self {
        Self {
            topics: Mutex::new(HashMap::new()),
            record,
            queue_capacity: queue_capacity.max(1),
            faults: Faults::default(),
            next_member: AtomicU64::new(1),
        }
    }

    /// Fault injection.
    ///
    /// ```
    /// let b = bindery_memory::MemoryBroker::new();
    /// b.faults().fail_next_acks(1);
    /// ```
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    pub(crate) fn topic(&self, name: &str) -> Arc<Topic> {
        lock(&self.topics).entry(name.to_string()).or_insert_with(|| Arc::new(Topic::new(name, self.record))).clone()
    }

    /// Publishes to `topic` right away (no backpressure); for test inputs.
    ///
    /// ```
    /// let b = bindery_memory::MemoryBroker::recording();
    /// b.publish("t", bindery::Message::new(bindery::Bytes::new()));
    /// assert_eq!(b.history("t").len(), 1);
    /// ```
    pub fn publish(&self, topic: &str, message: RawMessage) {
        self.topic(topic).publish(message, self);
    }

    /// Every message published to `topic` so far (recording brokers only).
    ///
    /// ```
    /// assert!(bindery_memory::MemoryBroker::new().history("t").is_empty());
    /// ```
    pub fn history(&self, topic: &str) -> Vec<RawMessage> {
        match lock(&self.topics).get(topic) {
            Some(t) => lock(&t.history).clone(),
            None => Vec::new(),
        }
    }

    /// Waits until `topic` has recorded at least `count` messages (recording brokers only),
    /// then returns them; a timeout error says how many arrived.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let b = bindery_memory::MemoryBroker::recording();
    /// b.publish("t", bindery::Message::new(bindery::Bytes::from_static(b"1")));
    /// let seen = b.wait_for_history("t", 1, std::time::Duration::from_secs(1)).await.unwrap();
    /// assert_eq!(seen.len(), 1);
    /// assert!(b.wait_for_history("t", 2, std::time::Duration::from_millis(10)).await.unwrap_err().is_timeout());
    /// # });
    /// ```
    pub async fn wait_for_history(
        &self,
        topic: &str,
        count: usize,
        timeout: Duration,
    ) -> bindery::Result<Vec<RawMessage>> {
        let t = self.topic(topic);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = t.history_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if t.history_len() >= count {
                return Ok(lock(&t.history).clone());
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(bindery::Error::new(
                    bindery::ErrorKind::Timeout,
                    format!("{} of {count} messages on `{topic}` within {timeout:?}", t.history_len()),
                ));
            }
        }
    }

    /// Messages waiting in `group` on `topic`, not yet delivered.
    ///
    /// ```
    /// assert_eq!(bindery_memory::MemoryBroker::new().queued("t", "g"), 0);
    /// ```
    pub fn queued(&self, topic: &str, group: &str) -> usize {
        let Some(t) = lock(&self.topics).get(topic).cloned() else { return 0 };
        let groups = t.groups.read().unwrap_or_else(|p| p.into_inner());
        groups.get(group).map(|g| lock(&g.state).queued).unwrap_or(0)
    }

    /// Messages delivered from `group` on `topic` but not yet acknowledged.
    ///
    /// ```
    /// assert_eq!(bindery_memory::MemoryBroker::new().unacknowledged("t", "g"), 0);
    /// ```
    pub fn unacknowledged(&self, topic: &str, group: &str) -> usize {
        let Some(t) = lock(&self.topics).get(topic).cloned() else { return 0 };
        let groups = t.groups.read().unwrap_or_else(|p| p.into_inner());
        groups.get(group).map(|g| lock(&g.state).inflight.len()).unwrap_or(0)
    }

    /// Disconnects every consumer of `topic`, as a crashed connection would: their
    /// unacknowledged messages go back to the queue and the bindings report themselves lost.
    ///
    /// ```
    /// bindery_memory::MemoryBroker::new().drop_consumers("t");
    /// ```
    pub fn drop_consumers(&self, topic: &str) {
        let Some(t) = lock(&self.topics).get(topic).cloned() else { return };
        let groups: Vec<Arc<Group>> = t.groups.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        for g in groups {
            let members: Vec<Member> = lock(&g.state).members.clone();
            for m in members {
                m.dropped.cancel();
                g.leave(m.id);
            }
        }
    }

    pub(crate) fn member_id(&self) -> u64 {
        self.next_member.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn capacity(&self) -> usize {
        self.queue_capacity
    }
}

/// A topic: partitions, the groups subscribed to it, and (when recording) its history.
#[derive(Debug)]
pub(crate) struct Topic {
    name: String,
    partitions: AtomicU64,
    round_robin: AtomicU64,
    pub(crate) groups: RwLock<HashMap<String, Arc<Group>>>,
    record: bool,
    history: Mutex<Vec<RawMessage>>,
    pub(crate) history_changed: Notify,
}

impl Topic {
    fn new(name: &str, record: bool) -> Self {
        Self {
            name: name.to_string(),
            partitions: AtomicU64::new(1),
            round_robin: AtomicU64::new(0),
            groups: RwLock::new(HashMap::new()),
            record,
            history: Mutex::new(Vec::new()),
            history_changed: Notify::new(),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn ensure_partitions(&self, n: u32) {
        self.partitions.fetch_max(u64::from(n.max(1)), Ordering::SeqCst);
    }

    fn partition_of(&self, message: &RawMessage) -> u32 {
        let n = self.partitions.load(Ordering::Relaxed) as u32;
        if n <= 1 {
            return 0; // the common case: no key lookup, no shared counter to bump
        }
        match message.headers().key() {
            Some(k) => partition_for(k, n),
            None => (self.round_robin.fetch_add(1, Ordering::Relaxed) % u64::from(n.max(1))) as u32,
        }
    }

    pub(crate) fn history_len(&self) -> usize {
        lock(&self.history).len()
    }

    pub(crate) fn history_at(&self, i: usize) -> Option<RawMessage> {
        lock(&self.history).get(i).cloned()
    }

    /// The group named `name`, created on first use.
    pub(crate) fn group(&self, name: &str, anonymous: bool) -> Arc<Group> {
        let mut groups = self.groups.write().unwrap_or_else(|p| p.into_inner());
        groups.entry(name.to_string()).or_insert_with(|| Arc::new(Group::new(name, anonymous))).clone()
    }

    pub(crate) fn remove_group(&self, name: &str) {
        let removed = self.groups.write().unwrap_or_else(|p| p.into_inner()).remove(name);
        if let Some(g) = removed {
            g.room.notify_waiters(); // producers waiting on it must look again
        }
    }

    /// Appends to every group's queue. Returns the longest queue of a group with members,
    /// so producers know when to wait.
    pub(crate) fn publish(&self, message: RawMessage, broker: &MemoryBroker) -> usize {
        let partition = self.partition_of(&message);
        if self.record {
            lock(&self.history).push(message.clone());
            self.history_changed.notify_waiters();
        }
        let groups = self.groups.read().unwrap_or_else(|p| p.into_inner());
        let mut longest = 0;
        let mut rest = groups.values();
        if let Some(first) = rest.next() {
            for g in rest {
                longest = longest.max(g.push(partition, message.clone(), broker));
            }
            longest = longest.max(first.push(partition, message, broker));
        }
        longest
    }

    /// Waits until no group with members holds more than `capacity` queued messages.
    pub(crate) async fn wait_for_room(&self, capacity: usize) {
        loop {
            let full: Option<Arc<Group>> = {
                let groups = self.groups.read().unwrap_or_else(|p| p.into_inner());
                groups.values().find(|g| g.is_full(capacity)).cloned()
            };
            let Some(g) = full else { return };
            let room = g.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if !g.is_full(capacity) {
                continue;
            }
            room.await;
        }
    }
}

#[derive(Clone)]
pub(crate) struct Member {
    pub(crate) id: u64,
    pub(crate) dropped: CancellationToken,
    /// Where publishers hand messages straight to this member when nothing is queued ahead.
    pub(crate) direct: Option<Direct>,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member").field("id", &self.id).finish_non_exhaustive()
    }
}

/// A member's input channel and the acknowledger of its group.
#[derive(Clone)]
pub(crate) struct Direct {
    pub(crate) channel: InputChannel,
    pub(crate) acker: Arc<dyn Acknowledger>,
}

/// What [`Group::deliver_next`] did.
pub(crate) enum Next {
    Sent,
    Empty,
    Full,
}

/// A group's unacknowledged deliveries, by tag. A tag is a slot's index (low 32 bits) and the
/// slot's generation (high 32 bits). Freed slots are reused most recent first, so the per-message
/// path touches memory that is still in cache and never hashes; an acknowledgement for a delivery
/// taken back since (a rebalance, a rewind) finds a newer generation and is ignored.
#[derive(Debug, Default)]
pub(crate) struct Inflights {
    slots: Vec<(u32, Option<Inflight>)>,
    free: Vec<u32>,
    len: usize,
}

impl Inflights {
    fn insert(&mut self, f: Inflight) -> u64 {
        self.len += 1;
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push((0, None));
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.0 = slot.0.wrapping_add(1);
        slot.1 = Some(f);
        (u64::from(slot.0) << 32) | u64::from(index)
    }

    fn slot(tag: u64) -> (usize, u32) {
        ((tag & 0xFFFF_FFFF) as usize, (tag >> 32) as u32)
    }

    fn get(&self, tag: u64) -> Option<&Inflight> {
        let (index, generation) = Self::slot(tag);
        match self.slots.get(index) {
            Some((g, Some(f))) if *g == generation => Some(f),
            _ => None,
        }
    }

    fn remove(&mut self, tag: u64) -> Option<Inflight> {
        let (index, generation) = Self::slot(tag);
        let f = match self.slots.get_mut(index) {
            Some((g, f @ Some(_))) if *g == generation => f.take(),
            _ => None,
        }?;
        self.len -= 1;
        self.free.push(index as u32);
        Some(f)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The tags of the deliveries `pick` selects.
    fn tags(&self, pick: impl Fn(&Inflight) -> bool) -> Vec<u64> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, (g, f))| f.as_ref().filter(|f| pick(f)).map(|_| (u64::from(*g) << 32) | i as u64))
            .collect()
    }
}

#[derive(Debug)]
pub(crate) struct Inflight {
    partition: u32,
    member: u64,
    /// Position in its partition, so redelivered messages go back where they were.
    seq: u64,
    message: RawMessage,
}

/// Puts `(seq, message)` into a partition queue kept in `seq` order.
fn insert_in_order(queue: &mut VecDeque<(u64, RawMessage)>, seq: u64, message: RawMessage) {
    let at = queue.iter().position(|(s, _)| *s > seq).unwrap_or(queue.len());
    queue.insert(at, (seq, message));
}

#[derive(Debug, Default)]
pub(crate) struct GroupState {
    partitions: Vec<VecDeque<(u64, RawMessage)>>,
    /// Per partition: the position the next published message gets.
    next_seq: Vec<u64>,
    pub(crate) members: Vec<Member>,
    pub(crate) inflight: Inflights,
    /// Per partition: the member holding its unacknowledged messages, and how many.
    holders: Vec<(u64, usize)>,
    /// Per partition: the message at the front is a copy made by the duplicate fault.
    duplicate_at_front: Vec<bool>,
    pub(crate) queued: usize,
    cursor: usize,
    /// Some member sleeps on `ready`: publishers must wake it.
    waiting: bool,
    /// Some producer sleeps on `room`: consumers must wake it.
    room_waiting: bool,
}

/// A consumer group: one queue per partition, shared by its members; each partition is
/// served by exactly one member at a time, which keeps per-partition order.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) name: String,
    pub(crate) anonymous: bool,
    pub(crate) state: Mutex<GroupState>,
    /// Wakes members when messages arrive or assignments change.
    pub(crate) ready: Notify,
    /// Wakes producers when the queue shrinks.
    pub(crate) room: Notify,
}

impl Group {
    fn new(name: &str, anonymous: bool) -> Self {
        Self {
            name: name.to_string(),
            anonymous,
            state: Mutex::new(GroupState::default()),
            ready: Notify::new(),
            room: Notify::new(),
        }
    }

    fn is_full(&self, capacity: usize) -> bool {
        let mut s = lock(&self.state);
        let full = !s.members.is_empty() && s.queued >= capacity;
        s.room_waiting |= full;
        full
    }

    /// Queues a message, or hands it straight to the partition's member when nothing is queued
    /// ahead of it and its channel has room. Returns the queue length if the group has
    /// members, else 0.
    fn push(&self, partition: u32, message: RawMessage, broker: &MemoryBroker) -> usize {
        let mut s = lock(&self.state);
        let p = partition as usize;
        if s.partitions.len() <= p {
            s.partitions.resize_with(p + 1, VecDeque::new);
            s.next_seq.resize(p + 1, 0);
        }
        let seq = s.next_seq[p];
        s.next_seq[p] += 1;
        let message = match Self::try_direct(&mut s, p, seq, message, broker) {
            None => return s.queued,
            Some(m) => m,
        };
        s.partitions[p].push_back((seq, message));
        s.queued += 1;
        let queued = if s.members.is_empty() { 0 } else { s.queued };
        let wake = std::mem::take(&mut s.waiting);
        drop(s);
        if wake {
            self.ready.notify_waiters();
        }
        queued
    }

    /// The direct path; gives the message back when it must be queued instead.
    fn try_direct(
        s: &mut GroupState,
        p: usize,
        seq: u64,
        message: RawMessage,
        broker: &MemoryBroker,
    ) -> Option<RawMessage> {
        let members = s.members.len();
        if members == 0 || !s.partitions[p].is_empty() || broker.faults.active() {
            return Some(message);
        }
        let member = &s.members[p % members];
        let (member, acker) = match &member.direct {
            Some(direct) => (member.id, direct.acker.clone()),
            None => return Some(message),
        };
        if s.holders.get(p).is_some_and(|(holder, n)| *n > 0 && *holder != member) {
            return Some(message);
        }
        let tag = Self::track(s, p, member, seq, message.clone());
        let delivery = Delivery::new(message, AckHandle::new(acker, tag), Some(p as u32));
        let sent = match &s.members[p % members].direct {
            Some(direct) => direct.channel.try_send(delivery),
            None => Err(Box::new(delivery)),
        };
        match sent {
            Ok(()) => None,
            Err(back) => {
                back.ack.disarm();
                Self::untrack(s, tag);
                Some(back.message)
            }
        }
    }

    /// Records a delivery to `member`; returns its tag.
    fn track(s: &mut GroupState, p: usize, member: u64, seq: u64, message: RawMessage) -> u64 {
        let tag = s.inflight.insert(Inflight { partition: p as u32, member, seq, message });
        if s.holders.len() <= p {
            s.holders.resize(p + 1, (0, 0));
        }
        let h = &mut s.holders[p];
        *h = (member, h.1 + 1);
        tag
    }

    /// Pops the next message for `member` and sends it on `direct` under the group lock, so a
    /// publisher's direct hand-off can never overtake it.
    pub(crate) fn deliver_next(&self, member: u64, broker: &MemoryBroker, direct: &Direct) -> Next {
        let mut s = lock(&self.state);
        let Some((tag, p, message)) = Self::pop_locked(&mut s, member, broker) else { return Next::Empty };
        let delivery = Delivery::new(message, AckHandle::new(direct.acker.clone(), tag), Some(p));
        let sent = match direct.channel.try_send(delivery) {
            Ok(()) => true,
            Err(back) => {
                back.ack.disarm();
                if let Some(f) = Self::untrack(&mut s, tag) {
                    s.partitions[p as usize].push_front((f.seq, back.message));
                    s.queued += 1;
                }
                false
            }
        };
        let wake = sent && std::mem::take(&mut s.room_waiting);
        drop(s);
        if wake {
            self.room.notify_waiters();
        }
        if sent { Next::Sent } else { Next::Full }
    }

    fn untrack(s: &mut GroupState, tag: u64) -> Option<Inflight> {
        let f = s.inflight.remove(tag)?;
        if let Some(h) = s.holders.get_mut(f.partition as usize) {
            h.1 = h.1.saturating_sub(1);
        }
        Some(f)
    }

    /// Marks a member as about to sleep until [`ready`](Self::ready) is notified.
    pub(crate) fn set_waiting(&self) {
        lock(&self.state).waiting = true;
    }

    pub(crate) fn join(&self, member: Member) {
        lock(&self.state).members.push(member);
        self.ready.notify_waiters();
    }

    /// Removes a member and puts its unacknowledged messages back at the front of their
    /// partitions, in their original order.
    pub(crate) fn leave(&self, member: u64) {
        let mut s = lock(&self.state);
        s.members.retain(|m| m.id != member);
        let tags = s.inflight.tags(|f| f.member == member);
        Self::return_to_queue(&mut s, &tags);
        drop(s);
        self.ready.notify_waiters();
        self.room.notify_waiters(); // a producer waiting on this member's group may go on
    }

    /// Stops handing new messages to `member` (its binding stopped fetching); what it holds
    /// can still be settled.
    pub(crate) fn pause(&self, member: u64) {
        let mut s = lock(&self.state);
        if let Some(m) = s.members.iter_mut().find(|m| m.id == member) {
            m.direct = None;
        }
    }

    /// Takes the deliveries `tags` back from their members and queues them again, each at its
    /// place in its partition; their late acknowledgements are then ignored.
    fn return_to_queue(s: &mut GroupState, tags: &[u64]) {
        for tag in tags {
            if let Some(f) = Self::untrack(s, *tag) {
                let p = f.partition as usize;
                if s.partitions.len() <= p {
                    s.partitions.resize_with(p + 1, VecDeque::new);
                    s.next_seq.resize(p + 1, 0);
                }
                insert_in_order(&mut s.partitions[p], f.seq, f.message);
                s.queued += 1;
            }
        }
    }

    /// Whether `member` has a message waiting in one of its partitions.
    pub(crate) fn has_work_for(&self, member: u64) -> bool {
        let s = lock(&self.state);
        let members = s.members.len();
        let Some(index) = s.members.iter().position(|m| m.id == member) else { return false };
        s.partitions.iter().enumerate().any(|(p, q)| {
            p % members == index
                && !q.is_empty()
                && !s.holders.get(p).is_some_and(|(holder, n)| *n > 0 && *holder != member)
        })
    }

    /// The next message for `member` from the partitions assigned to it (slow path, used while
    /// deliveries are delayed by a fault).
    pub(crate) fn next_for(&self, member: u64, broker: &MemoryBroker) -> Option<(u64, u32, RawMessage)> {
        let mut s = lock(&self.state);
        let next = Self::pop_locked(&mut s, member, broker);
        let wake = next.is_some() && std::mem::take(&mut s.room_waiting);
        drop(s);
        if wake {
            self.room.notify_waiters();
        }
        next
    }

    fn pop_locked(s: &mut GroupState, member: u64, broker: &MemoryBroker) -> Option<(u64, u32, RawMessage)> {
        let members = s.members.len();
        let index = s.members.iter().position(|m| m.id == member)?;
        let parts = s.partitions.len();
        for step in 0..parts {
            let p = (s.cursor + step) % parts;
            if p % members != index {
                continue;
            }
            // A partition with unacknowledged messages of another member (after a rebalance)
            // waits until those settle, so order per partition holds.
            if s.holders.get(p).is_some_and(|(holder, n)| *n > 0 && *holder != member) {
                continue;
            }
            if let Some((seq, m)) = s.partitions[p].pop_front() {
                s.queued -= 1;
                s.cursor = p + 1;
                // A copy made by the duplicate fault is delivered as is, not duplicated again.
                let is_copy = s.duplicate_at_front.get(p).copied().unwrap_or(false);
                if is_copy {
                    s.duplicate_at_front[p] = false;
                } else if Faults::take(&broker.faults.duplicates) {
                    s.partitions[p].push_front((seq, m.clone()));
                    s.queued += 1;
                    if s.duplicate_at_front.len() <= p {
                        s.duplicate_at_front.resize(p + 1, false);
                    }
                    s.duplicate_at_front[p] = true;
                }
                let tag = Self::track(s, p, member, seq, m.clone());
                return Some((tag, p as u32, m));
            }
        }
        None
    }

    pub(crate) fn settle(&self, tag: u64, settlement: Settlement, faults: &Faults) {
        let mut s = lock(&self.state);
        let Some(f) = s.inflight.get(tag) else { return };
        let (p, member, seq) = (f.partition, f.member, f.seq);
        // A lost acknowledgement (fault): the broker never hears of it, so that one message
        // comes back, as RabbitMQ redelivers an unacknowledged message.
        let lost = settlement == Settlement::Ack && Faults::take(&faults.fail_acks);
        if lost {
            Self::return_to_queue(&mut s, &[tag]);
        } else if settlement == Settlement::Requeue {
            // Rewind the partition, as a Kafka consumer seeks back: this message and every
            // later one the member holds from the partition are delivered again, in order.
            let tags = s.inflight.tags(|f| f.partition == p && f.member == member && f.seq >= seq);
            Self::return_to_queue(&mut s, &tags);
        } else {
            Self::untrack(&mut s, tag);
        }
        // A partition nobody holds any more may now go to the member it is assigned to.
        let released = s.holders.get(p as usize).is_some_and(|(_, n)| *n == 0)
            && s.partitions.get(p as usize).is_some_and(|q| !q.is_empty())
            && std::mem::take(&mut s.waiting);
        drop(s);
        if lost || settlement == Settlement::Requeue || released {
            self.ready.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_partition() {
        let a = partition_for(b"customer-1", 8);
        assert_eq!(a, partition_for(b"customer-1", 8));
        assert!(a < 8);
        let spread: std::collections::HashSet<u32> =
            (0..100).map(|i| partition_for(format!("k{i}").as_bytes(), 4)).collect();
        assert_eq!(spread.len(), 4, "keys should spread over all partitions");
    }

    #[test]
    fn requeued_messages_come_back_first() {
        let broker = MemoryBroker::with(false, 10);
        let topic = broker.topic("t");
        let group = topic.group("g", false);
        group.join(Member { id: 1, dropped: CancellationToken::new(), direct: None });
        for i in 0..3u8 {
            topic.publish(bindery::Message::new(bindery::Bytes::from(vec![i])), &broker);
        }
        let (t0, _, m0) = group.next_for(1, &broker).unwrap();
        assert_eq!(m0.payload()[..], [0]);
        group.settle(t0, Settlement::Requeue, &broker.faults);
        let (_, _, again) = group.next_for(1, &broker).unwrap();
        assert_eq!(again.payload()[..], [0]);
    }

    /// A late acknowledgement of a delivery that was taken back must not settle whatever
    /// delivery reuses its slot.
    #[test]
    fn a_stale_tag_never_matches_the_delivery_reusing_its_slot() {
        let f = |seq| Inflight { partition: 0, member: 1, seq, message: bindery::Message::new(bindery::Bytes::new()) };
        let mut inflight = Inflights::default();
        let old = inflight.insert(f(1));
        let other = inflight.insert(f(2));
        assert_eq!(inflight.remove(old).map(|f| f.seq), Some(1));
        let new = inflight.insert(f(3)); // reuses the freed slot
        assert_ne!(new, old);
        assert!(inflight.get(old).is_none());
        assert!(inflight.remove(old).is_none());
        assert_eq!(inflight.len(), 2);
        let mut tags = inflight.tags(|f| f.seq >= 2);
        tags.sort_unstable();
        let mut expected = vec![other, new];
        expected.sort_unstable();
        assert_eq!(tags, expected);
        assert_eq!(inflight.get(new).map(|f| f.seq), Some(3));
    }

    #[test]
    fn leaving_member_returns_its_messages() {
        let broker = MemoryBroker::with(false, 10);
        let topic = broker.topic("t");
        let group = topic.group("g", false);
        group.join(Member { id: 1, dropped: CancellationToken::new(), direct: None });
        topic.publish(bindery::Message::new(bindery::Bytes::from_static(b"a")), &broker);
        let _ = group.next_for(1, &broker).unwrap();
        assert_eq!(lock(&group.state).inflight.len(), 1);
        group.leave(1);
        group.join(Member { id: 2, dropped: CancellationToken::new(), direct: None });
        let (_, _, m) = group.next_for(2, &broker).unwrap();
        assert_eq!(&m.payload()[..], b"a");
    }
}
