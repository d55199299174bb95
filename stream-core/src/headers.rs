//! Message headers: an ordered, small map from names to byte values, with typed accessors
//! for the standard headers Spring Cloud Stream uses.
//!
//! ```
//! use bindery::headers::names;
//!
//! let mut h = bindery::Headers::new();
//! h.set_correlation_id("order-42");
//! h.insert("x-tenant", "acme");
//! assert_eq!(h.get_str(names::CORRELATION_ID), Some("order-42")); // Spring's spelling
//! assert_eq!(h.correlation_id(), Some("order-42"));
//! assert_eq!(h.get_str("x-tenant"), Some("acme"));
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use smallvec::SmallVec;
use uuid::Uuid;

/// Names of the standard headers, spelled the way Spring writes them.
///
/// ```
/// assert_eq!(bindery::headers::names::CONTENT_TYPE, "contentType");
/// ```
pub mod names {
    /// Unique message id (a UUID), set on every message bindery produces.
    ///
    /// ```
    /// assert_eq!(bindery::headers::names::ID, "id");
    /// ```
    pub const ID: &str = "id";
    /// Creation time, milliseconds since the Unix epoch.
    ///
    /// ```
    /// assert_eq!(bindery::headers::names::TIMESTAMP, "timestamp");
    /// ```
    pub const TIMESTAMP: &str = "timestamp";
    /// MIME type of the payload, e.g. `application/json`.
    ///
    /// ```
    /// assert_eq!(bindery::headers::names::CONTENT_TYPE, "contentType");
    /// ```
    pub const CONTENT_TYPE: &str = "contentType";
    /// Ties the messages of one conversation together; copied from input to outputs.
    ///
    /// ```
    /// assert_eq!(bindery::headers::names::CORRELATION_ID, "correlationId");
    /// ```
    pub const CORRELATION_ID: &str = "correlationId";
    /// Where a reply should go.
    ///
    /// ```
    /// assert_eq!(bindery::headers::names::REPLY_TO, "replyTo");
    /// ```
    pub const REPLY_TO: &str = "replyTo";
    /// Partition key: messages with one key keep their order.
    ///
    /// ```
    /// assert_eq!(bindery::headers::names::KEY, "key");
    /// ```
    pub const KEY: &str = "key";
    /// Which attempt at processing this is (1 for the first).
    ///
    /// ```
    /// assert_eq!(bindery::headers::names::DELIVERY_ATTEMPT, "deliveryAttempt");
    /// ```
    pub const DELIVERY_ATTEMPT: &str = "deliveryAttempt";
    /// W3C trace context, propagated from input to outputs.
    ///
    /// ```
    /// assert_eq!(bindery::headers::names::TRACEPARENT, "traceparent");
    /// ```
    pub const TRACEPARENT: &str = "traceparent";
    /// Dead letters: the destination the message was consumed from.
    ///
    /// ```
    /// assert_eq!(bindery::headers::names::ORIGINAL_DESTINATION, "x-original-destination");
    /// ```
    pub const ORIGINAL_DESTINATION: &str = "x-original-destination";
    /// Dead letters: why processing failed.
    ///
    /// ```
    /// assert_eq!(bindery::headers::names::EXCEPTION_MESSAGE, "x-exception-message");
    /// ```
    pub const EXCEPTION_MESSAGE: &str = "x-exception-message";
    /// Dead letters: the class of failure (`decode`, `handler`, `panic`).
    ///
    /// ```
    /// assert_eq!(bindery::headers::names::EXCEPTION_KIND, "x-exception-kind");
    /// ```
    pub const EXCEPTION_KIND: &str = "x-exception-kind";
}

/// One header value: bytes, usually UTF-8 text.
///
/// Short values (ids, timestamps, content types) are stored inline, so creating and cloning
/// them allocates nothing; longer ones share a reference-counted buffer.
///
/// ```
/// use bindery::HeaderValue;
/// let v = HeaderValue::from("grüße");
/// assert_eq!(v.as_str(), Some("grüße"));
/// let raw = HeaderValue::from(vec![0u8, 159, 146, 150]);
/// assert_eq!(raw.as_str(), None);
/// assert_eq!(raw.as_bytes(), &[0u8, 159, 146, 150]);
/// ```
#[derive(Clone)]
pub struct HeaderValue(Repr);

const INLINE: usize = 38;

#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; INLINE] },
    Shared(Bytes),
}

impl HeaderValue {
    /// A value from static text, without copying.
    ///
    /// ```
    /// assert_eq!(bindery::HeaderValue::from_static("a").as_str(), Some("a"));
    /// ```
    pub const fn from_static(s: &'static str) -> Self {
        Self(Repr::Shared(Bytes::from_static(s.as_bytes())))
    }

    fn inline(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > INLINE {
            return None;
        }
        let mut buf = [0u8; INLINE];
        buf[..bytes.len()].copy_from_slice(bytes);
        Some(Self(Repr::Inline { len: bytes.len() as u8, buf }))
    }

    fn copy(bytes: &[u8]) -> Self {
        Self::inline(bytes).unwrap_or_else(|| Self(Repr::Shared(Bytes::copy_from_slice(bytes))))
    }

    /// The raw bytes.
    ///
    /// ```
    /// assert_eq!(bindery::HeaderValue::from("ab").as_bytes(), b"ab");
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, buf } => &buf[..*len as usize],
            Repr::Shared(b) => b,
        }
    }

    /// The value as text, if it is valid UTF-8.
    ///
    /// ```
    /// assert_eq!(bindery::HeaderValue::from("x").as_str(), Some("x"));
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.as_bytes()).ok()
    }

    /// The value as a `Bytes` handle.
    ///
    /// ```
    /// assert_eq!(bindery::HeaderValue::from("x").to_bytes().len(), 1);
    /// ```
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            Repr::Inline { .. } => Bytes::copy_from_slice(self.as_bytes()),
            Repr::Shared(b) => b.clone(),
        }
    }
}

impl PartialEq for HeaderValue {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
impl Eq for HeaderValue {}
impl std::hash::Hash for HeaderValue {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl fmt::Debug for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(s) => fmt::Debug::fmt(s, f),
            None => write!(f, "bytes{:?}", self.as_bytes()),
        }
    }
}

impl From<&str> for HeaderValue {
    fn from(s: &str) -> Self {
        Self::copy(s.as_bytes())
    }
}
impl From<String> for HeaderValue {
    fn from(s: String) -> Self {
        Self::inline(s.as_bytes()).unwrap_or_else(|| Self(Repr::Shared(Bytes::from(s))))
    }
}
impl From<Vec<u8>> for HeaderValue {
    fn from(v: Vec<u8>) -> Self {
        Self::inline(&v).unwrap_or_else(|| Self(Repr::Shared(Bytes::from(v))))
    }
}
impl From<&[u8]> for HeaderValue {
    fn from(v: &[u8]) -> Self {
        Self::copy(v)
    }
}
impl From<Bytes> for HeaderValue {
    fn from(v: Bytes) -> Self {
        Self(Repr::Shared(v))
    }
}
impl From<u64> for HeaderValue {
    /// Decimal text, written straight into the inline buffer two digits at a time (binders
    /// add offsets, partitions and timestamps to every record they consume).
    fn from(mut v: u64) -> Self {
        const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
            2021222324252627282930313233343536373839\
            4041424344454647484950515253545556575859\
            6061626364656667686970717273747576777879\
            8081828384858687888990919293949596979899";
        let mut buf = [0u8; INLINE];
        let mut i = 20; // u64::MAX has 20 digits
        while v >= 100 {
            let pair = (v % 100) as usize * 2;
            v /= 100;
            i -= 2;
            buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        }
        if v >= 10 {
            let pair = v as usize * 2;
            i -= 2;
            buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        } else {
            i -= 1;
            buf[i] = b'0' + v as u8;
        }
        buf.copy_within(i..20, 0);
        Self(Repr::Inline { len: (20 - i) as u8, buf })
    }
}
impl From<u32> for HeaderValue {
    fn from(v: u32) -> Self {
        Self::from(u64::from(v))
    }
}
impl HeaderValue {
    /// An empty value, to be overwritten in place (see [`set_uuid`](Self::set_uuid)).
    pub(crate) const EMPTY: Self = Self(Repr::Inline { len: 0, buf: [0; INLINE] });

    /// Makes this value `id`'s hyphenated text, written where the value lives. Formatting into
    /// a temporary and moving it here made the move's wide loads wait on the formatter's byte
    /// stores (store-to-load forwarding fails): building the identity headers fell from 5.5-5.8%
    /// to 3.9-4.4% of the memory bench's perf samples.
    pub(crate) fn set_uuid(&mut self, id: Uuid) {
        self.0 = Repr::Inline { len: uuid::fmt::Hyphenated::LENGTH as u8, buf: [0; INLINE] };
        if let Repr::Inline { buf, .. } = &mut self.0 {
            id.hyphenated().encode_lower(&mut buf[..uuid::fmt::Hyphenated::LENGTH]);
        }
    }
}

impl From<Uuid> for HeaderValue {
    fn from(v: Uuid) -> Self {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        Self::copy(v.hyphenated().encode_lower(&mut buf).as_bytes())
    }
}

/// A random (version 4) UUID for the `id` header.
///
/// Like Spring's `AlternativeJdkIdGenerator`: a per-thread generator seeded once from the
/// operating system's randomness, then a fast PRNG (xorshift128+). Ids only need to be unique,
/// not secret, and this keeps id generation off the per-message profile. Binders use it for
/// messages that arrive without an `id` (Spring never writes `id` to Kafka, for one).
///
/// ```
/// let (a, b) = (bindery::new_message_id(), bindery::new_message_id());
/// assert_ne!(a, b);
/// assert_eq!(a.get_version_num(), 4);
/// ```
pub fn new_message_id() -> Uuid {
    use std::cell::Cell;
    fn seed() -> [u64; 2] {
        let (a, b) = uuid::Uuid::new_v4().as_u64_pair();
        [a | 1, b | 1] // xorshift state must not be all zero
    }
    fn next(s: &mut [u64; 2]) -> u64 {
        let mut s1 = s[0];
        let s0 = s[1];
        let result = s0.wrapping_add(s1);
        s[0] = s0;
        s1 ^= s1 << 23;
        s[1] = s1 ^ s0 ^ (s1 >> 18) ^ (s0 >> 5);
        result
    }
    thread_local! {
        static STATE: Cell<[u64; 2]> = Cell::new(seed());
    }
    STATE.with(|cell| {
        let mut state = cell.get();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&next(&mut state).to_le_bytes());
        bytes[8..].copy_from_slice(&next(&mut state).to_le_bytes());
        cell.set(state);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    })
}

type Entry = (Cow<'static, str>, HeaderValue);

/// How many headers a block holds in the same allocation as its reference count: the content
/// type and identity every message gets plus a correlation id, key and traceparent; or a Kafka
/// record's `contentType` with the five headers the binder adds. More move the entries to an
/// allocation of their own. Measured both ways: four entries (280 bytes) saved the memory bench
/// two L1 misses a message, but made every Kafka record spill, 520 instructions more each in
/// the fetch task; six (424 bytes) keep the Kafka consumer below its cost before blocks existed.
const INLINE_ENTRIES: usize = 6;

/// The entries, in one allocation with their reference count up to [`INLINE_ENTRIES`].
pub(crate) type Block = SmallVec<[Entry; INLINE_ENTRIES]>;

/// Message headers: insertion-ordered names (case-sensitive, as on every broker) to values.
///
/// Messages carry few headers, so lookups scan a small vector; that beats hashing here.
/// The vector is shared copy-on-write, so cloning headers (fan-out to several consumer
/// groups, redelivery bookkeeping) costs one reference count.
///
/// ```
/// use bindery::Headers;
/// let mut h = Headers::new();
/// h.insert("tenant", "acme");
/// h.set_correlation_id("c-1");
/// assert_eq!(h.get_str("tenant"), Some("acme"));
/// assert_eq!(h.correlation_id(), Some("c-1"));
/// assert_eq!(h.len(), 2);
/// ```
#[derive(Clone, Default)]
pub struct Headers {
    /// `None` until the first header: empty headers (most `Message::new`) allocate nothing.
    entries: Option<Arc<Block>>,
}

/// Emptied header blocks kept for reuse on the thread that dropped them.
///
/// A block with its reference counts is about 400 bytes: too big for the allocator's fast
/// bins, so each message's block was a slow-path `malloc` and `free`, and a fresh block was
/// written into memory that had left the L1 cache (five write misses a message on the memory
/// bench). A block dropped by a consumer and taken by the next send is still in cache. Only
/// blocks with their entries inline are kept, at most `KEPT` per thread (about 51 KiB), plus
/// at most `SPARE_BATCHES` batches of `BATCH` moving between threads (about 200 KiB).
mod pool {
    use std::cell::RefCell;
    use std::sync::{Arc, Mutex, MutexGuard};

    use super::Block;

    pub(super) const KEPT: usize = 128;
    /// Blocks a full pool hands over at once, and an empty one takes at once.
    pub(super) const BATCH: usize = KEPT / 2;
    /// Batches kept for any thread: 8 × 64 blocks of about 400 bytes, about 200 KiB.
    pub(super) const SPARE_BATCHES: usize = 8;

    pub(super) type Blocks = Vec<Arc<Block>>;

    thread_local! {
        static POOL: RefCell<Blocks> = const { RefCell::new(Vec::new()) };
    }

    /// Batches of empty blocks between threads. When messages are built on one thread and
    /// dropped on another (a sender on one worker, its consumer on the other), the dropping
    /// thread's pool fills up and the building thread's stays empty: without this, one thread
    /// would free every block and the other allocate every block, and a free of memory that
    /// another thread allocated is glibc's slow path. One lock per 64 blocks. Two workers,
    /// nine alternating runs of the memory bench: median 524k -> 605k msg/s.
    pub(super) struct Spare(Mutex<Vec<Blocks>>);

    static SPARE: Spare = Spare::new();

    impl Spare {
        pub(super) const fn new() -> Self {
            Self(Mutex::new(Vec::new()))
        }

        fn lock(&self) -> MutexGuard<'_, Vec<Blocks>> {
            self.0.lock().unwrap_or_else(|p| p.into_inner())
        }

        /// A block from `local`, refilled with a spare batch when empty.
        pub(super) fn take_into(&self, local: &mut Blocks) -> Option<Arc<Block>> {
            if local.is_empty() {
                *local = self.lock().pop()?;
            }
            local.pop()
        }

        /// Keeps `block` in `local`, first handing a batch over when `local` is full. A batch
        /// beyond [`SPARE_BATCHES`] is freed (after the lock is released).
        pub(super) fn keep(&self, local: &mut Blocks, block: Arc<Block>) {
            if local.len() >= KEPT {
                let batch = local.split_off(KEPT - BATCH);
                let mut spare = self.lock();
                if spare.len() < SPARE_BATCHES {
                    spare.push(batch);
                }
            }
            local.push(block);
        }

        /// How many blocks the spare batches hold.
        #[cfg(test)]
        pub(super) fn spared(&self) -> usize {
            self.lock().iter().map(Vec::len).sum()
        }
    }

    /// An empty block, reused when this thread (or a spare batch) has one.
    pub(super) fn take() -> Arc<Block> {
        POOL.try_with(|p| p.try_borrow_mut().ok().and_then(|mut p| SPARE.take_into(&mut p)))
            .ok()
            .flatten()
            .unwrap_or_else(|| Arc::new(Block::new()))
    }

    /// How many blocks this thread keeps now.
    #[cfg(test)]
    pub(super) fn kept() -> usize {
        POOL.with(|p| p.borrow().len())
    }

    /// Keeps `shared` for reuse if it was the last reference to an inline block.
    pub(super) fn give(mut shared: Arc<Block>) {
        let Some(block) = Arc::get_mut(&mut shared) else { return };
        if block.spilled() {
            return;
        }
        block.clear();
        let _ = POOL.try_with(|p| {
            if let Ok(mut p) = p.try_borrow_mut() {
                SPARE.keep(&mut p, shared);
            }
        });
    }
}

impl Drop for Headers {
    fn drop(&mut self) {
        if let Some(shared) = self.entries.take() {
            pool::give(shared);
        }
    }
}

impl Headers {
    /// No headers.
    ///
    /// ```
    /// assert!(bindery::Headers::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Room for `n` headers without reallocating.
    ///
    /// ```
    /// assert!(bindery::Headers::with_capacity(4).is_empty());
    /// ```
    pub fn with_capacity(n: usize) -> Self {
        Self {
            entries: (n > 0)
                .then(|| if n <= INLINE_ENTRIES { pool::take() } else { Arc::new(Block::with_capacity(n)) }),
        }
    }

    /// Headers whose entries `fill` pushes into a block (names known to be distinct).
    pub(crate) fn filled(fill: impl FnOnce(&mut Block)) -> Self {
        let mut shared = pool::take();
        if let Some(block) = Arc::get_mut(&mut shared) {
            fill(block);
        }
        Self { entries: Some(shared) }
    }

    fn slice(&self) -> &[Entry] {
        self.entries.as_deref().map(Block::as_slice).unwrap_or_default()
    }

    fn entries_mut(&mut self) -> &mut Block {
        let shared = self.entries.get_or_insert_with(pool::take);
        if Arc::get_mut(shared).is_none() {
            // Copy on write, with room for the few headers usually added next (a correlation
            // id, a key), so the copy is not grown again at once.
            let mut own = Block::with_capacity(shared.len() + 4);
            own.extend(shared.iter().cloned());
            *shared = Arc::new(own);
        }
        Arc::make_mut(shared)
    }

    /// Sets `name` to `value`, replacing an earlier value.
    ///
    /// ```
    /// let mut h = bindery::Headers::new();
    /// h.insert("a", "1");
    /// h.insert("a", "2");
    /// assert_eq!(h.get_str("a"), Some("2"));
    /// ```
    pub fn insert(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<HeaderValue>) {
        let name = name.into();
        let value = value.into();
        let entries = self.entries_mut();
        match entries.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => entries.push((name, value)),
        }
    }

    /// Sets `name` only when it is not present yet.
    ///
    /// ```
    /// let mut h = bindery::Headers::new();
    /// h.insert_if_absent("a", "1");
    /// h.insert_if_absent("a", "2");
    /// assert_eq!(h.get_str("a"), Some("1"));
    /// ```
    pub fn insert_if_absent(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<HeaderValue>) {
        let name = name.into();
        if !self.contains(&name) {
            self.entries_mut().push((name, value.into()));
        }
    }

    /// Adds `name` at the end without looking for an earlier header of that name: for binders
    /// turning a broker record into headers, which know the names they add are new and would
    /// otherwise scan the headers once per name. When `name` is present already, [`get`]
    /// keeps returning the earlier value; use [`insert`] when that can happen.
    ///
    /// [`get`]: Headers::get
    /// [`insert`]: Headers::insert
    ///
    /// ```
    /// let mut h = bindery::Headers::with_capacity(2);
    /// h.append("kafka_offset", 42u64);
    /// h.append("kafka_receivedPartitionId", 3u32);
    /// assert_eq!(h.get_str("kafka_offset"), Some("42"));
    /// assert_eq!(h.len(), 2);
    /// ```
    pub fn append(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<HeaderValue>) {
        self.entries_mut().push((name.into(), value.into()));
    }

    /// The value of `name`.
    ///
    /// ```
    /// let mut h = bindery::Headers::new();
    /// h.insert("bin", vec![1u8, 2]);
    /// assert_eq!(h.get("bin").map(|v| v.as_bytes()), Some(&[1u8, 2][..]));
    /// ```
    pub fn get(&self, name: &str) -> Option<&HeaderValue> {
        self.slice().iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The value of `name` as text (None if absent or not UTF-8).
    ///
    /// ```
    /// let mut h = bindery::Headers::new();
    /// h.insert("a", "x");
    /// assert_eq!(h.get_str("a"), Some("x"));
    /// ```
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(HeaderValue::as_str)
    }

    /// Whether `name` is present.
    ///
    /// ```
    /// assert!(!bindery::Headers::new().contains("id"));
    /// ```
    pub fn contains(&self, name: &str) -> bool {
        self.slice().iter().any(|(n, _)| n == name)
    }

    /// Removes `name`, returning its value.
    ///
    /// ```
    /// let mut h = bindery::Headers::new();
    /// h.insert("a", "x");
    /// assert!(h.remove("a").is_some());
    /// assert!(h.is_empty());
    /// ```
    pub fn remove(&mut self, name: &str) -> Option<HeaderValue> {
        let at = self.slice().iter().position(|(n, _)| n == name)?;
        Some(self.entries_mut().remove(at).1)
    }

    /// Number of headers.
    ///
    /// ```
    /// assert_eq!(bindery::Headers::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.slice().len()
    }

    /// True when there are no headers.
    ///
    /// ```
    /// assert!(bindery::Headers::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.slice().is_empty()
    }

    /// All headers in insertion order.
    ///
    /// ```
    /// let mut h = bindery::Headers::new();
    /// h.insert("a", "1");
    /// let names: Vec<&str> = h.iter().map(|(n, _)| n).collect();
    /// assert_eq!(names, ["a"]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &HeaderValue)> {
        self.slice().iter().map(|(n, v)| (n.as_ref(), v))
    }

    /// The `id` header as a UUID.
    ///
    /// ```
    /// let mut h = bindery::Headers::new();
    /// let id = uuid::Uuid::nil();
    /// h.insert("id", id);
    /// assert_eq!(h.id(), Some(id));
    /// ```
    pub fn id(&self) -> Option<Uuid> {
        self.get_str(names::ID).and_then(|s| Uuid::parse_str(s).ok())
    }

    /// The `timestamp` header, milliseconds since the Unix epoch.
    ///
    /// ```
    /// let mut h = bindery::Headers::new();
    /// h.insert("timestamp", 1_700_000_000_000u64);
    /// assert_eq!(h.timestamp(), Some(1_700_000_000_000));
    /// ```
    pub fn timestamp(&self) -> Option<u64> {
        self.get_str(names::TIMESTAMP).and_then(|s| s.parse().ok())
    }

    /// The `contentType` header.
    ///
    /// ```
    /// let mut h = bindery::Headers::new();
    /// h.set_content_type("text/plain");
    /// assert_eq!(h.content_type(), Some("text/plain"));
    /// ```
    pub fn content_type(&self) -> Option<&str> {
        self.get_str(names::CONTENT_TYPE)
    }

    /// Sets `contentType`.
    ///
    /// ```
    /// let mut h = bindery::Headers::new();
    /// h.set_content_type("application/json");
    /// assert_eq!(h.get_str("contentType"), Some("application/json"));
    /// ```
    pub fn set_content_type(&mut self, value: impl Into<HeaderValue>) {
        self.insert(names::CONTENT_TYPE, value);
    }

    /// The `correlationId` header.
    ///
    /// ```
    /// assert_eq!(bindery::Headers::new().correlation_id(), None);
    /// ```
    pub fn correlation_id(&self) -> Option<&str> {
        self.get_str(names::CORRELATION_ID)
    }

    /// Sets `correlationId`.
    ///
    /// ```
    /// let mut h = bindery::Headers::new();
    /// h.set_correlation_id("abc");
    /// assert_eq!(h.correlation_id(), Some("abc"));
    /// ```
    pub fn set_correlation_id(&mut self, value: impl Into<HeaderValue>) {
        self.insert(names::CORRELATION_ID, value);
    }

    /// The `replyTo` header.
    ///
    /// ```
    /// let mut h = bindery::Headers::new();
    /// h.set_reply_to("replies");
    /// assert_eq!(h.reply_to(), Some("replies"));
    /// ```
    pub fn reply_to(&self) -> Option<&str> {
        self.get_str(names::REPLY_TO)
    }

    /// Sets `replyTo`.
    ///
    /// ```
    /// let mut h = bindery::Headers::new();
    /// h.set_reply_to("r");
    /// assert!(h.contains("replyTo"));
    /// ```
    pub fn set_reply_to(&mut self, value: impl Into<HeaderValue>) {
        self.insert(names::REPLY_TO, value);
    }

    /// The partition `key` header, as bytes.
    ///
    /// ```
    /// let mut h = bindery::Headers::new();
    /// h.set_key("customer-7");
    /// assert_eq!(h.key(), Some(&b"customer-7"[..]));
    /// ```
    pub fn key(&self) -> Option<&[u8]> {
        self.get(names::KEY).map(HeaderValue::as_bytes)
    }

    /// Sets the partition `key`.
    ///
    /// ```
    /// let mut h = bindery::Headers::new();
    /// h.set_key("k");
    /// assert_eq!(h.get_str("key"), Some("k"));
    /// ```
    pub fn set_key(&mut self, value: impl Into<HeaderValue>) {
        self.insert(names::KEY, value);
    }

    /// The `deliveryAttempt` header (1 = first attempt).
    ///
    /// ```
    /// let mut h = bindery::Headers::new();
    /// h.insert("deliveryAttempt", 3u32);
    /// assert_eq!(h.delivery_attempt(), Some(3));
    /// ```
    pub fn delivery_attempt(&self) -> Option<u32> {
        self.get_str(names::DELIVERY_ATTEMPT).and_then(|s| s.parse().ok())
    }

    /// The W3C `traceparent` header.
    ///
    /// ```
    /// assert_eq!(bindery::Headers::new().traceparent(), None);
    /// ```
    pub fn traceparent(&self) -> Option<&str> {
        self.get_str(names::TRACEPARENT)
    }
}

impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.slice() == other.slice()
    }
}

impl Eq for Headers {}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<N: Into<Cow<'static, str>>, V: Into<HeaderValue>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut h = Headers::new();
        for (n, v) in iter {
            h.insert(n, v);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_written_as_uuid_writes_them() {
        let ids =
            [Uuid::nil(), Uuid::max(), Uuid::from_u128(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210), new_message_id()];
        for id in ids {
            let text = id.hyphenated().to_string();
            assert_eq!(HeaderValue::from(id).as_str(), Some(text.as_str()));
            // Written in place over whatever the value held: empty, inline text, shared bytes.
            let long = "a value too long to be kept inline in a header value".repeat(2);
            for mut v in [HeaderValue::EMPTY, HeaderValue::from("short"), HeaderValue::from(long.as_str())] {
                v.set_uuid(id);
                assert_eq!(v.as_str(), Some(text.as_str()));
                assert_eq!(v, HeaderValue::from(id));
            }
        }
    }

    #[test]
    fn reused_blocks_start_empty_and_shared_blocks_are_never_reused() {
        let full = |tag: &str| {
            let mut h = Headers::new();
            for i in 0..INLINE_ENTRIES {
                h.insert(format!("h{i}"), format!("{tag}-{i}"));
            }
            h
        };
        // Blocks dropped by their last holder go back to this thread's pool...
        let dropped: Vec<Headers> = (0..8).map(|i| full(&format!("old{i}"))).collect();
        // ...except while someone else still holds them.
        let kept: Vec<Headers> = dropped.iter().take(3).cloned().collect();
        drop(dropped);
        for _ in 0..8 {
            let mut fresh = Headers::with_capacity(2);
            assert!(fresh.is_empty(), "a reused block kept entries: {fresh:?}");
            fresh.insert("a", "1");
            assert_eq!(
                fresh.iter().map(|(n, v)| (n.to_string(), v.as_str().map(str::to_string))).collect::<Vec<_>>(),
                [("a".to_string(), Some("1".to_string()))]
            );
            let filled = Headers::filled(|b| b.push(("b".into(), HeaderValue::from("2"))));
            assert_eq!(filled.len(), 1);
            assert_eq!(filled.get_str("b"), Some("2"));
        }
        for (i, h) in kept.iter().enumerate() {
            for j in 0..INLINE_ENTRIES {
                assert_eq!(h.get_str(&format!("h{j}")), Some(format!("old{i}-{j}").as_str()));
            }
        }
        // A thread's pool is bounded.
        let many: Vec<Headers> = (0..pool::KEPT * 2).map(|i| full(&i.to_string())).collect();
        drop(many);
        assert!(pool::kept() <= pool::KEPT, "{}", pool::kept());
    }

    #[test]
    fn full_pools_hand_batches_to_empty_ones() {
        use std::sync::Arc;
        // One thread's pool (`sender`) builds every message, another's (`consumer`) drops them.
        let spare = pool::Spare::new();
        let (mut sender, mut consumer) = (pool::Blocks::new(), pool::Blocks::new());
        assert!(spare.take_into(&mut sender).is_none(), "nothing to reuse yet");
        let built: Vec<Arc<Block>> = (0..pool::KEPT * 2).map(|_| Arc::new(Block::new())).collect();
        let addresses: Vec<*const Block> = built.iter().map(Arc::as_ptr).collect();
        for b in built {
            spare.keep(&mut consumer, b);
        }
        assert!(consumer.len() <= pool::KEPT, "{}", consumer.len());
        assert_eq!(consumer.len() + spare.spared(), pool::KEPT * 2, "no block lost on the way");
        assert_eq!(spare.spared(), 2 * pool::BATCH);
        // The sender's empty pool takes a whole batch of the consumer's blocks.
        let reused = spare.take_into(&mut sender).expect("a spare batch");
        assert!(addresses.contains(&Arc::as_ptr(&reused)));
        assert_eq!(sender.len(), pool::BATCH - 1);
        assert_eq!(spare.spared(), pool::BATCH);
        // What is kept for other threads is bounded.
        for _ in 0..pool::KEPT * 20 {
            spare.keep(&mut consumer, Arc::new(Block::new()));
        }
        assert_eq!(spare.spared(), pool::SPARE_BATCHES * pool::BATCH);
        assert!(consumer.len() <= pool::KEPT);
    }

    #[test]
    fn changing_a_clone_leaves_the_shared_original_alone() {
        let mut original = Headers::new();
        original.insert(names::CONTENT_TYPE, "application/json");
        let mut copy = original.clone();
        copy.insert(names::CORRELATION_ID, "c-1");
        copy.insert(names::CONTENT_TYPE, "text/plain");
        assert_eq!(original.len(), 1);
        assert_eq!(original.content_type(), Some("application/json"));
        assert_eq!(copy.content_type(), Some("text/plain"));
        assert_eq!(copy.correlation_id(), Some("c-1"));
        // The copy has room for the headers usually added next.
        assert!(copy.entries.as_ref().is_some_and(|e| e.capacity() >= 5), "{:?}", copy.entries);
    }

    #[test]
    fn numbers_are_written_as_decimal_text() {
        let mut values = vec![0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 65_535, 1_764_000_000_123, u64::MAX];
        values.extend((0..20).map(|p| 10u64.pow(p)));
        values.extend((1..20).map(|p| 10u64.pow(p) - 1));
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x >> (x % 64));
        }
        for v in values {
            assert_eq!(HeaderValue::from(v).as_str(), Some(v.to_string().as_str()), "{v}");
        }
    }
}
