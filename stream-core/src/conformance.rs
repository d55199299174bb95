//! The binder conformance suite: one set of behavioural tests every binder must pass, the way
//! every Watermill backend runs the same pub/sub tests.
//!
//! A binder crate implements [`Harness`] for its broker and expands [`conformance_tests!`](crate::conformance_tests)
//! once; each rule of the delivery contract becomes its own `#[tokio::test]`:
//!
//! ```no_run
//! use std::{sync::Arc, time::Duration};
//!
//! struct MyBroker(Arc<dyn bindery::Binder>);
//! # impl MyBroker { fn new() -> Self { unimplemented!() } }
//!
//! #[async_trait::async_trait]
//! impl bindery::conformance::Harness for MyBroker {
//!     fn binder(&self) -> Arc<dyn bindery::Binder> { self.0.clone() }
//!     async fn dead_letters(&self, destination: &str, group: &str, expected: usize, timeout: Duration)
//!         -> bindery::Result<Vec<bindery::RawMessage>> {
//!         // read `expected` messages of the broker's dead-letter destination
//! #       let _ = (destination, group, expected, timeout);
//!         Ok(Vec::new())
//!     }
//! }
//!
//! bindery::conformance_tests!(MyBroker::new());
//! # fn main() {}
//! ```
//!
//! (`binder-memory/tests/conformance.rs` is the complete, running example. This module and
//! its examples exist only with bindery's `conformance` feature, which binder crates enable in
//! their dev-dependencies.)
//!
//! Every case uses fresh, random destination and group names, so cases can share a broker.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};

use crate::binder::{
    AckHandle, Acknowledger, Binder, Confirmation, ConsumerBinding, ConsumerSpec, Delivery, InputChannel, Producer,
    ProducerSpec, Settlement,
};
use crate::{
    App, Config, Context, Error, ErrorKind, Handler, HandlerError, Health, Message, RawMessage, Result, RunningApp,
};

/// What a binder's test crate provides so the suite can drive its broker.
///
/// A harness for a broker whose binders `connect` creates (a sketch: a real one reads the
/// dead-letter destination through its own client):
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use bindery::conformance::Harness;
///
/// struct MyBroker {
///     connect: fn() -> Arc<dyn bindery::Binder>,
/// }
///
/// #[async_trait::async_trait]
/// impl Harness for MyBroker {
///     fn binder(&self) -> Arc<dyn bindery::Binder> {
///         (self.connect)()
///     }
///
///     async fn dead_letters(
///         &self,
///         destination: &str,
///         group: &str,
///         expected: usize,
///         timeout: Duration,
///     ) -> bindery::Result<Vec<bindery::RawMessage>> {
///         let dlq = self.binder().dead_letter_destination(destination, group);
///         Err(bindery::Error::new(
///             bindery::ErrorKind::Timeout,
///             format!("{expected} dead letters on {dlq} not read within {timeout:?}"),
///         ))
///     }
///
///     fn timeout(&self) -> Duration {
///         Duration::from_secs(30) // a broker with slow group rebalances
///     }
/// }
/// ```
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// A new binder instance (its own connections) on the broker under test. The suite creates
    /// one per app, so two apps are really two clients.
    fn binder(&self) -> Arc<dyn Binder>;

    /// Reads `expected` dead letters of `destination`/`group`, waiting up to `timeout`.
    async fn dead_letters(
        &self,
        destination: &str,
        group: &str,
        expected: usize,
        timeout: Duration,
    ) -> Result<Vec<RawMessage>>;

    /// How long to wait for any one expected event. Brokers with group rebalances need more.
    fn timeout(&self) -> Duration {
        Duration::from_secs(10)
    }
}

/// The payload every case sends.
///
/// ```
/// use bindery::conformance::Probe;
/// let p = Probe { id: 7, key: "customer-1".into(), seq: 0 };
/// let json = serde_json::to_string(&p).unwrap();
/// assert_eq!(json, r#"{"id":7,"key":"customer-1","seq":0}"#);
/// assert_eq!(serde_json::from_str::<Probe>(&json).unwrap(), p);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// Unique within a case.
    pub id: u64,
    /// Partition key.
    pub key: String,
    /// Position within its key.
    pub seq: u64,
}

fn probe(id: u64, key: &str, seq: u64) -> Probe {
    Probe { id, key: key.to_string(), seq }
}

fn fail(what: impl Into<String>) -> Error {
    Error::new(ErrorKind::Handler, format!("conformance: {}", what.into()))
}

fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<()> {
    if cond { Ok(()) } else { Err(fail(what())) }
}

/// Unique names so cases never see each other's messages.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Collects what a handler received and wakes waiters.
#[derive(Clone, Default)]
struct Collector {
    seen: Arc<Mutex<Vec<Message<Probe>>>>,
    changed: Arc<Notify>,
}

impl Collector {
    fn push(&self, m: Message<Probe>) {
        if let Ok(mut v) = self.seen.lock() {
            v.push(m);
        }
        self.changed.notify_waiters();
    }

    fn snapshot(&self) -> Vec<Message<Probe>> {
        self.seen.lock().map(|v| v.clone()).unwrap_or_default()
    }

    fn len(&self) -> usize {
        self.seen.lock().map(|v| v.len()).unwrap_or(0)
    }

    /// Waits until `pred` holds over everything seen.
    async fn wait_until(&self, timeout: Duration, what: &str, pred: impl Fn(&[Message<Probe>]) -> bool) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if pred(&self.snapshot()) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(fail(format!(
                    "timed out after {timeout:?} waiting for {what} ({} messages seen)",
                    self.len()
                )));
            }
        }
    }

    fn sink(&self, name: &str, input: &str) -> Handler {
        let c = self.clone();
        Handler::sink(name, move |m: Message<Probe>, _ctx: Context| {
            let c = c.clone();
            async move {
                c.push(m);
                Ok::<_, HandlerError>(())
            }
        })
        .input(input)
    }
}

async fn start(h: &dyn Harness, toml: &str, handlers: Vec<Handler>) -> Result<RunningApp> {
    start_on(h.binder(), toml, handlers).await
}

/// Starts an app on `binder` (the harness's, or one wrapped to watch or break it).
async fn start_on(binder: Arc<dyn Binder>, toml: &str, handlers: Vec<Handler>) -> Result<RunningApp> {
    let mut b = App::builder()
        .registered_handlers(false)
        .binder("under-test", binder)
        .override_binder("under-test")
        .config(Config::from_toml_str(toml)?);
    for handler in handlers {
        b = b.handler(handler);
    }
    b.build()?.start().await
}

/// A publisher app: binding `out` to `destination` with `partitions` partitions keyed by `/key`.
async fn publisher(h: &dyn Harness, destination: &str, partitions: u32) -> Result<RunningApp> {
    let toml = format!(
        "[bindings.out]\ndestination = \"{destination}\"\n[bindings.out.producer]\npartition-key = \"/key\"\npartition-count = {partitions}\n"
    );
    start(h, &toml, Vec::new()).await
}

async fn publish(app: &RunningApp, probes: impl IntoIterator<Item = Probe>) -> Result<()> {
    let source = app.source::<Probe>("out")?;
    for p in probes {
        source.send(p).await?;
    }
    Ok(())
}

/// A consumer group name for one case: its role plus the case's unique suffix. Cases run
/// concurrently on one broker; sharing a group name would make them one Kafka consumer group,
/// where every member joining or leaving rebalances (and redelivers) the others' work.
fn group(dest: &str, role: &str) -> String {
    format!("{role}-{}", dest.rsplit('-').next().unwrap_or(dest))
}

fn consumer_toml(binding: &str, destination: &str, group: Option<&str>, extra: &str) -> String {
    let mut t = format!("[bindings.{binding}]\ndestination = \"{destination}\"\n");
    if let Some(g) = group {
        t.push_str(&format!("group = \"{g}\"\n"));
    }
    t.push_str(&format!("[bindings.{binding}.consumer]\nbackoff-initial = \"20ms\"\nbackoff-max = \"100ms\"\n{extra}"));
    t
}

fn ids(v: &[Message<Probe>]) -> HashSet<u64> {
    v.iter().map(|m| m.payload().id).collect()
}

/// Two groups on one destination each get every message.
///
/// ```no_run
/// // In a binder's test crate, with a Harness for its broker:
/// async fn check(h: &dyn bindery::conformance::Harness) -> bindery::Result<()> {
///     bindery::conformance::groups_each_get_every_message(h).await
/// }
/// ```
pub async fn groups_each_get_every_message(h: &dyn Harness) -> Result<()> {
    let dest = unique("groups");
    let (a, b) = (Collector::default(), Collector::default());
    let toml = consumer_toml("a-in", &dest, Some(&group(&dest, "group-a")), "")
        + &consumer_toml("b-in", &dest, Some(&group(&dest, "group-b")), "");
    let app = start(h, &toml, vec![a.sink("a", "a-in"), b.sink("b", "b-in")]).await?;
    let pubr = publisher(h, &dest, 1).await?;
    publish(&pubr, (0..20).map(|i| probe(i, "k", i))).await?;
    for (name, c) in [("group-a", &a), ("group-b", &b)] {
        c.wait_until(h.timeout(), &format!("{name} to receive all 20"), |v| ids(v).len() == 20).await?;
    }
    pubr.shutdown().await?;
    app.shutdown().await
}

/// Members of one group split the messages: once both members have work, each message
/// reaches one member.
///
/// While the second member joins, a broker that moves partitions between members (Kafka's group
/// protocol) may hand it records the first member handled but had not committed yet: at least
/// once allows that, so messages published before both members had work only have to arrive.
///
/// ```no_run
/// // In a binder's test crate, with a Harness for its broker:
/// async fn check(h: &dyn bindery::conformance::Harness) -> bindery::Result<()> {
///     bindery::conformance::group_members_split_messages(h).await
/// }
/// ```
pub async fn group_members_split_messages(h: &dyn Harness) -> Result<()> {
    let dest = unique("split");
    let (a, b) = (Collector::default(), Collector::default());
    let toml = consumer_toml("in", &dest, Some(&group(&dest, "workers")), "");
    let app_a = start(h, &toml, vec![a.sink("w", "in")]).await?;
    let app_b = start(h, &toml, vec![b.sink("w", "in")]).await?;
    let pubr = publisher(h, &dest, 4).await?;
    // Publish in rounds until both members have work (brokers rebalance at their own pace).
    let deadline = Instant::now() + h.timeout() * 3;
    let mut sent = 0u64;
    while a.len() == 0 || b.len() == 0 {
        ensure(Instant::now() < deadline, || format!("both members never received work ({} / {})", a.len(), b.len()))?;
        publish(&pubr, (sent..sent + 16).map(|i| probe(i, &format!("key-{i}"), 0))).await?;
        sent += 16;
        // Give the round time to arrive: wake on either member's next message, or go on.
        let (na, nb) = (a.changed.notified(), b.changed.notified());
        let _ = tokio::time::timeout(Duration::from_millis(200), async { tokio::join!(na, nb) }).await;
    }
    // Both members have partitions now: what is published from here on is split.
    let settled_from = sent;
    publish(&pubr, (sent..sent + 32).map(|i| probe(i, &format!("key-{i}"), 0))).await?;
    sent += 32;
    let all = |a: &Collector, b: &Collector| {
        let mut s = ids(&a.snapshot());
        s.extend(ids(&b.snapshot()));
        s.len() as u64
    };
    let deadline = tokio::time::Instant::now() + h.timeout();
    while all(&a, &b) < sent {
        ensure(tokio::time::Instant::now() < deadline, || format!("only {} of {sent} messages arrived", all(&a, &b)))?;
        let _ = tokio::time::timeout(Duration::from_millis(50), a.changed.notified()).await;
    }
    let (ia, ib) = (ids(&a.snapshot()), ids(&b.snapshot()));
    let mut both: Vec<_> = ia.intersection(&ib).filter(|id| **id >= settled_from).collect();
    both.sort_unstable();
    ensure(both.is_empty(), || {
        format!("messages {both:?}, published after both members had work, reached both members of one group")
    })?;
    pubr.shutdown().await?;
    app_a.shutdown().await?;
    app_b.shutdown().await
}

/// Subscribers without a group each get every message.
///
/// ```no_run
/// // In a binder's test crate, with a Harness for its broker:
/// async fn check(h: &dyn bindery::conformance::Harness) -> bindery::Result<()> {
///     bindery::conformance::anonymous_subscribers_get_every_message(h).await
/// }
/// ```
pub async fn anonymous_subscribers_get_every_message(h: &dyn Harness) -> Result<()> {
    let dest = unique("anon");
    let (a, b) = (Collector::default(), Collector::default());
    let toml = consumer_toml("in", &dest, None, "");
    let app_a = start(h, &toml, vec![a.sink("s", "in")]).await?;
    let app_b = start(h, &toml, vec![b.sink("s", "in")]).await?;
    let pubr = publisher(h, &dest, 1).await?;
    publish(&pubr, (0..10).map(|i| probe(i, "k", i))).await?;
    a.wait_until(h.timeout(), "first anonymous subscriber to get all 10", |v| ids(v).len() == 10).await?;
    b.wait_until(h.timeout(), "second anonymous subscriber to get all 10", |v| ids(v).len() == 10).await?;
    pubr.shutdown().await?;
    app_a.shutdown().await?;
    app_b.shutdown().await
}

/// With concurrency 4, messages run in parallel but one key's messages run one at a time, in order.
///
/// ```no_run
/// // In a binder's test crate, with a Harness for its broker:
/// async fn check(h: &dyn bindery::conformance::Harness) -> bindery::Result<()> {
///     bindery::conformance::per_key_order_with_concurrency(h).await
/// }
/// ```
pub async fn per_key_order_with_concurrency(h: &dyn Harness) -> Result<()> {
    let dest = unique("order");
    let seen = Collector::default();
    let running: Arc<Mutex<HashSet<String>>> = Arc::default();
    let gauge = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let overlap = Arc::new(AtomicBool::new(false));
    let (s, r, g, p, o) = (seen.clone(), running.clone(), gauge.clone(), peak.clone(), overlap.clone());
    let sink = Handler::sink("ordered", move |m: Message<Probe>, _ctx: Context| {
        let (s, r, g, p, o) = (s.clone(), r.clone(), g.clone(), p.clone(), o.clone());
        async move {
            let key = m.payload().key.clone();
            if let Ok(mut set) = r.lock() {
                if !set.insert(key.clone()) {
                    o.store(true, Ordering::SeqCst);
                }
            }
            let now = g.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(2 + m.payload().id % 3)).await;
            g.fetch_sub(1, Ordering::SeqCst);
            if let Ok(mut set) = r.lock() {
                set.remove(&key);
            }
            s.push(m);
            Ok::<_, HandlerError>(())
        }
    })
    .input("in");
    let app =
        start(h, &consumer_toml("in", &dest, Some(&group(&dest, "ordered")), "concurrency = 4\n"), vec![sink]).await?;
    let pubr = publisher(h, &dest, 4).await?;
    let keys = 7u64; // coprime with the concurrency, so no accidental key-to-worker mapping
    let per_key = 25u64;
    publish(
        &pubr,
        (0..per_key).flat_map(|seq| (0..keys).map(move |k| probe(seq * keys + k, &format!("key-{k}"), seq))),
    )
    .await?;
    seen.wait_until(h.timeout() * 2, "all keyed messages", |v| ids(v).len() as u64 == keys * per_key).await?;
    let mut last: HashMap<String, u64> = HashMap::new();
    for m in seen.snapshot() {
        let p = m.payload();
        if let Some(prev) = last.insert(p.key.clone(), p.seq) {
            ensure(p.seq > prev, || format!("key {} processed seq {} after {prev}", p.key, p.seq))?;
        }
    }
    ensure(!overlap.load(Ordering::SeqCst), || "two messages of one key ran at the same time".into())?;
    ensure(peak.load(Ordering::SeqCst) > 1, || "concurrency 4 never ran two messages in parallel".into())?;
    pubr.shutdown().await?;
    app.shutdown().await
}

/// A failing handler is attempted `max-attempts` times with growing backoff, then the message
/// is dead-lettered with the contract's headers.
///
/// ```no_run
/// // In a binder's test crate, with a Harness for its broker:
/// async fn check(h: &dyn bindery::conformance::Harness) -> bindery::Result<()> {
///     bindery::conformance::retry_with_backoff_then_dead_letter(h).await
/// }
/// ```
pub async fn retry_with_backoff_then_dead_letter(h: &dyn Harness) -> Result<()> {
    let dest = unique("retry");
    let attempts: Arc<Mutex<Vec<(Instant, u32)>>> = Arc::default();
    let a = attempts.clone();
    let sink = Handler::sink("fails", move |_m: Message<Probe>, ctx: Context| {
        let a = a.clone();
        async move {
            if let Ok(mut v) = a.lock() {
                v.push((Instant::now(), ctx.delivery_attempt()));
            }
            Err::<(), _>(HandlerError::new("inventory service unavailable"))
        }
    })
    .input("in");
    let extra = "max-attempts = 3\nbackoff-initial = \"100ms\"\nbackoff-multiplier = 2.0\nbackoff-max = \"1s\"\n";
    let mut toml = format!(
        "[bindings.in]\ndestination = \"{dest}\"\ngroup = \"{}\"\n[bindings.in.consumer]\n",
        group(&dest, "billing")
    );
    toml.push_str(extra);
    let app = start(h, &toml, vec![sink]).await?;
    let pubr = publisher(h, &dest, 1).await?;
    publish(&pubr, [probe(1, "k", 0)]).await?;
    let dead = h.dead_letters(&dest, &group(&dest, "billing"), 1, h.timeout()).await?;
    ensure(dead.len() == 1, || format!("expected 1 dead letter, got {}", dead.len()))?;
    let d = dead[0].headers();
    ensure(d.get_str("x-original-destination") == Some(dest.as_str()), || format!("x-original-destination: {d:?}"))?;
    ensure(d.get_str("x-exception-message") == Some("inventory service unavailable"), || {
        format!("x-exception-message: {d:?}")
    })?;
    ensure(d.get_str("x-exception-kind") == Some("handler"), || format!("x-exception-kind: {d:?}"))?;
    ensure(d.delivery_attempt() == Some(3), || format!("deliveryAttempt: {d:?}"))?;
    let body: Probe =
        serde_json::from_slice(dead[0].payload()).map_err(|e| fail(format!("dead letter payload: {e}")))?;
    ensure(body == probe(1, "k", 0), || format!("dead letter payload changed: {body:?}"))?;
    let v = attempts.lock().map(|v| v.clone()).unwrap_or_default();
    ensure(v.len() == 3, || format!("expected 3 attempts, saw {}", v.len()))?;
    ensure(v.iter().map(|(_, n)| *n).collect::<Vec<_>>() == [1, 2, 3], || format!("attempt numbers {v:?}"))?;
    let gap1 = v[1].0 - v[0].0;
    let gap2 = v[2].0 - v[1].0;
    ensure(gap1 >= Duration::from_millis(100) && gap1 < Duration::from_millis(1000), || {
        format!("first backoff {gap1:?}")
    })?;
    ensure(gap2 >= Duration::from_millis(200) && gap2 < Duration::from_millis(1100), || {
        format!("second backoff {gap2:?}")
    })?;
    pubr.shutdown().await?;
    app.shutdown().await
}

/// An undecodable payload is never given to the handler nor retried: it goes straight to the
/// dead letter and the consumer carries on.
///
/// ```no_run
/// // In a binder's test crate, with a Harness for its broker:
/// async fn check(h: &dyn bindery::conformance::Harness) -> bindery::Result<()> {
///     bindery::conformance::undecodable_goes_straight_to_dead_letter(h).await
/// }
/// ```
pub async fn undecodable_goes_straight_to_dead_letter(h: &dyn Harness) -> Result<()> {
    let dest = unique("poison");
    let good = Collector::default();
    let toml = consumer_toml("in", &dest, Some(&group(&dest, "billing")), "max-attempts = 5\n");
    let app = start(h, &toml, vec![good.sink("typed", "in")]).await?;
    let pubr = start(h, &format!("[bindings.raw]\ndestination = \"{dest}\"\n"), Vec::new()).await?;
    let raw = pubr.source::<String>("raw")?;
    // Well-formed JSON of the wrong shape; bytes labelled JSON that are not JSON (published
    // straight through the binder, as a foreign client would); text where a Probe is expected.
    raw.send_message(Message::new("not a probe".to_string())).await?;
    let producer = h.binder().bind_producer(&ProducerSpec::output("foreign", dest.clone())).await?;
    let garbage = Message::new(bytes::Bytes::from_static(b"{\"id\": oops \xff"))
        .with_content_type("application/json")
        .with_header("id", uuid::Uuid::new_v4());
    producer.send(garbage).await?.await?;
    raw.send_message(Message::new("{\"id\": oops".to_string()).with_content_type("text/plain")).await?;
    let typed = pubr.source::<Probe>("raw")?;
    typed.send(probe(7, "k", 0)).await?;
    good.wait_until(h.timeout(), "the good message after three bad ones", |v| ids(v).contains(&7)).await?;
    let dead = h.dead_letters(&dest, &group(&dest, "billing"), 3, h.timeout()).await?;
    ensure(dead.len() == 3, || format!("expected 3 dead letters, got {}", dead.len()))?;
    for d in &dead {
        let hd = d.headers();
        ensure(hd.get_str("x-exception-kind") == Some("decode"), || format!("x-exception-kind: {hd:?}"))?;
        ensure(hd.delivery_attempt() == Some(1), || format!("decode failures must not be retried: {hd:?}"))?;
        ensure(hd.get_str("x-exception-message").is_some_and(|m| !m.is_empty()), || "no reason given".into())?;
    }
    ensure(good.len() == 1, || format!("handler saw {} messages; undecodable ones must never reach it", good.len()))?;
    pubr.shutdown().await?;
    app.shutdown().await
}

/// A panicking handler is a failed attempt: retried, dead-lettered, and the app keeps going.
///
/// ```no_run
/// // In a binder's test crate, with a Harness for its broker:
/// async fn check(h: &dyn bindery::conformance::Harness) -> bindery::Result<()> {
///     bindery::conformance::panicking_handler_is_isolated(h).await
/// }
/// ```
pub async fn panicking_handler_is_isolated(h: &dyn Harness) -> Result<()> {
    let dest = unique("panic");
    let good = Collector::default();
    let g = good.clone();
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let sink = Handler::sink("panicky", move |m: Message<Probe>, _ctx: Context| {
        let (g, c) = (g.clone(), c.clone());
        async move {
            if m.payload().key == "boom" {
                c.fetch_add(1, Ordering::SeqCst);
                panic!("handler exploded on purpose");
            }
            g.push(m);
            Ok::<_, HandlerError>(())
        }
    })
    .input("in");
    let app = start(h, &consumer_toml("in", &dest, Some(&group(&dest, "g")), "max-attempts = 2\n"), vec![sink]).await?;
    let pubr = publisher(h, &dest, 1).await?;
    publish(&pubr, [probe(1, "ok", 0), probe(2, "boom", 0), probe(3, "ok", 1)]).await?;
    good.wait_until(h.timeout(), "messages around the panicking one", |v| ids(v) == HashSet::from([1, 3])).await?;
    let dead = h.dead_letters(&dest, &group(&dest, "g"), 1, h.timeout()).await?;
    let hd = dead.first().map(|d| d.headers().clone()).unwrap_or_default();
    ensure(hd.get_str("x-exception-kind") == Some("panic"), || format!("x-exception-kind: {hd:?}"))?;
    ensure(hd.get_str("x-exception-message") == Some("handler exploded on purpose"), || format!("{hd:?}"))?;
    ensure(calls.load(Ordering::SeqCst) == 2, || {
        format!("panicking message attempted {} times", calls.load(Ordering::SeqCst))
    })?;
    ensure(app.health().is_up(), || format!("app unhealthy after a panic: {:?}", app.health()))?;
    pubr.shutdown().await?;
    app.shutdown().await
}

/// Work a consumer took but never finished is delivered again to the group after that
/// consumer goes away.
///
/// ```no_run
/// // In a binder's test crate, with a Harness for its broker:
/// async fn check(h: &dyn bindery::conformance::Harness) -> bindery::Result<()> {
///     bindery::conformance::unfinished_work_is_redelivered(h).await
/// }
/// ```
pub async fn unfinished_work_is_redelivered(h: &dyn Harness) -> Result<()> {
    let dest = unique("redeliver");
    let started = Collector::default();
    let s = started.clone();
    let stuck = Handler::sink("stuck", move |m: Message<Probe>, _ctx: Context| {
        let s = s.clone();
        async move {
            s.push(m);
            std::future::pending::<()>().await; // never finishes, never acknowledges
            Ok::<_, HandlerError>(())
        }
    })
    .input("in");
    let toml = consumer_toml("in", &dest, Some(&group(&dest, "workers")), "") + "shutdown-timeout = \"200ms\"\n";
    let toml = format!("shutdown-timeout = \"200ms\"\n{}", toml.replace("shutdown-timeout = \"200ms\"\n", ""));
    let first = start(h, &toml, vec![stuck]).await?;
    let pubr = publisher(h, &dest, 1).await?;
    publish(&pubr, [probe(1, "k", 0)]).await?;
    started.wait_until(h.timeout(), "the first consumer to take the message", |v| !v.is_empty()).await?;
    // The stuck handler cannot finish within shutdown-timeout: shutdown gives up on it.
    let res = first.shutdown().await;
    ensure(res.as_ref().is_err_and(Error::is_timeout), || {
        format!("shutdown should report the unfinished work: {res:?}")
    })?;
    let second = Collector::default();
    let app2 =
        start(h, &consumer_toml("in", &dest, Some(&group(&dest, "workers")), ""), vec![second.sink("next", "in")])
            .await?;
    second.wait_until(h.timeout() * 2, "redelivery to the next group member", |v| ids(v).contains(&1)).await?;
    pubr.shutdown().await?;
    app2.shutdown().await
}

/// Work a consumer took and never settled (its process crashed, its connection dropped) is
/// delivered again to the group once that consumer is gone: the binder itself must redeliver,
/// without any help from the runtime.
///
/// ```no_run
/// // In a binder's test crate, with a Harness for its broker:
/// async fn check(h: &dyn bindery::conformance::Harness) -> bindery::Result<()> {
///     bindery::conformance::lost_consumer_work_is_redelivered(h).await
/// }
/// ```
pub async fn lost_consumer_work_is_redelivered(h: &dyn Harness) -> Result<()> {
    let dest = unique("crash");
    let first_seen = Collector::default();
    // The first consumer's acknowledgements never reach the broker, as if it crashed.
    let crashing = Arc::new(Crashing { inner: h.binder(), held: Arc::default() });
    let held = crashing.held.clone();
    let toml = consumer_toml("in", &dest, Some(&group(&dest, "workers")), "");
    let first = start_on(crashing, &toml, vec![first_seen.sink("first", "in")]).await?;
    let pubr = publisher(h, &dest, 1).await?;
    publish(&pubr, [probe(1, "k", 0), probe(2, "k", 1)]).await?;
    first_seen.wait_until(h.timeout(), "the first consumer to handle both", |v| ids(v).len() == 2).await?;
    first.shutdown().await?; // closes its binding with both deliveries unsettled at the broker
    let second = Collector::default();
    let app2 =
        start(h, &consumer_toml("in", &dest, Some(&group(&dest, "workers")), ""), vec![second.sink("next", "in")])
            .await?;
    let result = second
        .wait_until(h.timeout() * 2, "redelivery of the lost consumer's work", |v| ids(v) == HashSet::from([1, 2]))
        .await;
    // The lost consumer's handles are given up without settling (never acknowledged).
    if let Ok(mut held) = held.lock() {
        for handle in held.drain(..) {
            handle.disarm();
        }
    }
    result?;
    pubr.shutdown().await?;
    app2.shutdown().await
}

/// An input is acknowledged only after the broker confirmed every output it produced, and
/// waiting for those confirmations does not hold up the next input (the worker goes on).
///
/// ```no_run
/// // In a binder's test crate, with a Harness for its broker:
/// async fn check(h: &dyn bindery::conformance::Harness) -> bindery::Result<()> {
///     bindery::conformance::outputs_confirmed_before_input_ack(h).await
/// }
/// ```
pub async fn outputs_confirmed_before_input_ack(h: &dyn Harness) -> Result<()> {
    let dest_in = unique("confirm-in");
    let dest_out = unique("confirm-out");
    let log: Arc<EventLog> = Arc::default();
    let watched = Arc::new(Watched { inner: h.binder(), log: log.clone() });
    let handled = log.clone();
    let relay = Handler::processor("relay", move |m: Message<Probe>, _ctx: Context| {
        let handled = handled.clone();
        async move {
            if let Some(id) = m.headers().id() {
                handled.push(Event::Handled(id.to_string()));
            }
            let p = m.into_payload();
            Ok::<_, HandlerError>(vec![Message::new(p.clone()), Message::new(Probe { id: p.id + 1000, ..p })])
        }
    })
    .input("in")
    .output("out");
    let toml = format!(
        "{}[bindings.out]\ndestination = \"{dest_out}\"\n",
        consumer_toml("in", &dest_in, Some(&group(&dest_in, "relay")), "")
    );
    let app = start_on(watched, &toml, vec![relay]).await?;
    let pubr = publisher(h, &dest_in, 1).await?;
    publish(&pubr, (0..5).map(|i| probe(i, "k", i))).await?;
    check_confirmed_acks(&log, 5, 2, h.timeout()).await?;
    pubr.shutdown().await?;
    app.shutdown().await
}

/// Waits until `inputs` inputs were acknowledged, then checks the event log: each was
/// acknowledged only after `per_input` confirmations of what it sent, and the worker handled
/// the next inputs meanwhile instead of waiting for those confirmations.
async fn check_confirmed_acks(log: &EventLog, inputs: usize, per_input: usize, timeout: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let changed = log.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let acked = log.snapshot().iter().filter(|e| matches!(e, Event::Acked(_))).count();
        if acked >= inputs {
            break;
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            return Err(fail(format!("only {acked} of {inputs} inputs acknowledged within {timeout:?}")));
        }
    }
    let events = log.snapshot();
    // Confirmations take CONFIRM_DELAY each; had the worker waited for them, no input would be
    // handled before the one ahead of it was acknowledged.
    let first_ack = events.iter().position(|e| matches!(e, Event::Acked(_))).unwrap_or(events.len());
    let handled_before = events[..first_ack].iter().filter(|e| matches!(e, Event::Handled(_))).count();
    ensure(handled_before >= 2, || {
        format!(
            "only {handled_before} input(s) handled before the first acknowledgement: the worker waited for confirmations: {events:?}"
        )
    })?;
    for (i, e) in events.iter().enumerate() {
        if let Event::Acked(id) = e {
            let confirmed = events[..i].iter().filter(|e| matches!(e, Event::Confirmed(c) if c == id)).count();
            ensure(confirmed == per_input, || {
                format!("input {id} acknowledged after {confirmed} of {per_input} confirmations: {events:?}")
            })?;
        }
    }
    Ok(())
}

/// A message that failed for good is acknowledged only once its dead letter is confirmed, and
/// the worker goes on with the next messages while that confirmation is on its way.
///
/// ```no_run
/// // In a binder's test crate, with a Harness for its broker:
/// async fn check(h: &dyn bindery::conformance::Harness) -> bindery::Result<()> {
///     bindery::conformance::dead_letter_confirmed_before_input_ack(h).await
/// }
/// ```
pub async fn dead_letter_confirmed_before_input_ack(h: &dyn Harness) -> Result<()> {
    let dest = unique("dlq-confirm");
    let log: Arc<EventLog> = Arc::default();
    let watched = Arc::new(Watched { inner: h.binder(), log: log.clone() });
    let handled = log.clone();
    let reject = Handler::sink("reject", move |m: Message<Probe>, _ctx: Context| {
        if let Some(id) = m.headers().id() {
            handled.push(Event::Handled(id.to_string()));
        }
        async { Err::<(), _>(HandlerError::new("rejected for good")) }
    })
    .input("in");
    let toml = consumer_toml(
        "in",
        &dest,
        Some(&group(&dest, "rejecter")),
        "max-attempts = 1
",
    );
    let app = start_on(watched, &toml, vec![reject]).await?;
    let pubr = publisher(h, &dest, 1).await?;
    publish(&pubr, (0..5).map(|i| probe(i, "k", i))).await?;
    check_confirmed_acks(&log, 5, 1, h.timeout()).await?;
    let dead = h.dead_letters(&dest, &group(&dest, "rejecter"), 5, h.timeout()).await?;
    ensure(dead.len() == 5, || format!("expected 5 dead letters, got {}", dead.len()))?;
    pubr.shutdown().await?;
    app.shutdown().await
}

/// `correlationId` (else the input's `id`) and `traceparent` are copied onto outputs.
///
/// ```no_run
/// // In a binder's test crate, with a Harness for its broker:
/// async fn check(h: &dyn bindery::conformance::Harness) -> bindery::Result<()> {
///     bindery::conformance::correlation_and_trace_propagate(h).await
/// }
/// ```
pub async fn correlation_and_trace_propagate(h: &dyn Harness) -> Result<()> {
    let dest_in = unique("corr-in");
    let dest_out = unique("corr-out");
    let out = Collector::default();
    let inbound_ids: Arc<Mutex<HashMap<u64, String>>> = Arc::default();
    let ids_seen = inbound_ids.clone();
    let relay = Handler::processor("relay", move |m: Message<Probe>, ctx: Context| {
        let ids_seen = ids_seen.clone();
        async move {
            if let (Ok(mut seen), Some(id)) = (ids_seen.lock(), ctx.headers().get_str("id")) {
                seen.insert(m.payload().id, id.to_string());
            }
            Ok::<_, HandlerError>(vec![Message::new(m.into_payload())])
        }
    })
    .input("in")
    .output("out");
    let toml = format!(
        "{}{}[bindings.out]\ndestination = \"{dest_out}\"\n",
        consumer_toml("in", &dest_in, Some(&group(&dest_in, "relay")), ""),
        consumer_toml("seen", &dest_out, Some(&group(&dest_out, "check")), "")
    );
    let app = start(h, &toml, vec![relay, out.sink("check", "seen")]).await?;
    let pubr = publisher(h, &dest_in, 1).await?;
    let source = pubr.source::<Probe>("out")?;
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    source
        .send_message(
            Message::new(probe(1, "k", 0)).with_correlation_id("conversation-1").with_header("traceparent", tp),
        )
        .await?;
    source.send(probe(2, "k", 1)).await?;
    out.wait_until(h.timeout(), "both relayed messages", |v| ids(v).len() == 2).await?;
    let inbound = inbound_ids.lock().map(|m| m.clone()).unwrap_or_default();
    for m in out.snapshot() {
        let hd = m.headers();
        match m.payload().id {
            1 => {
                ensure(hd.correlation_id() == Some("conversation-1"), || format!("correlationId not kept: {hd:?}"))?;
                ensure(hd.traceparent() == Some(tp), || format!("traceparent not propagated: {hd:?}"))?;
            }
            n => {
                let input_id = inbound.get(&n).cloned().unwrap_or_default();
                ensure(!input_id.is_empty() && hd.correlation_id() == Some(input_id.as_str()), || {
                    format!("correlationId should be the input id {input_id:?}: {hd:?}")
                })?;
                ensure(hd.get_str("id") != Some(input_id.as_str()), || "an output must get its own id".into())?;
            }
        }
        ensure(hd.content_type().is_some_and(|c| c.starts_with("application/json")), || {
            format!("contentType: {hd:?}")
        })?;
        ensure(hd.id().is_some(), || format!("outputs need a fresh uuid id: {hd:?}"))?;
    }
    pubr.shutdown().await?;
    app.shutdown().await
}

/// Unicode and binary header values arrive byte for byte.
///
/// ```no_run
/// // In a binder's test crate, with a Harness for its broker:
/// async fn check(h: &dyn bindery::conformance::Harness) -> bindery::Result<()> {
///     bindery::conformance::headers_round_trip(h).await
/// }
/// ```
pub async fn headers_round_trip(h: &dyn Harness) -> Result<()> {
    let dest = unique("headers");
    let seen = Collector::default();
    let app = start(h, &consumer_toml("in", &dest, Some(&group(&dest, "g")), ""), vec![seen.sink("s", "in")]).await?;
    let pubr = publisher(h, &dest, 1).await?;
    let binary: Vec<u8> = vec![0, 1, 127, 128, 254, 255];
    let long = "x".repeat(300);
    let msg = Message::new(probe(1, "k", 0))
        .with_header("x-unicode", "grüße, 世界 🌍")
        .with_header("x-binary", binary.clone())
        .with_header("x-long", long.clone())
        .with_header("x-empty", "");
    pubr.source::<Probe>("out")?.send_message(msg).await?;
    seen.wait_until(h.timeout(), "the message", |v| !v.is_empty()).await?;
    let got = seen.snapshot();
    let hd = got[0].headers();
    ensure(hd.get_str("x-unicode") == Some("grüße, 世界 🌍"), || format!("unicode header: {hd:?}"))?;
    ensure(hd.get("x-binary").map(|v| v.as_bytes()) == Some(&binary[..]), || format!("binary header: {hd:?}"))?;
    ensure(hd.get_str("x-long") == Some(long.as_str()), || "long header changed".into())?;
    ensure(hd.get_str("x-empty") == Some(""), || format!("empty header: {hd:?}"))?;
    pubr.shutdown().await?;
    app.shutdown().await
}

/// Shutdown lets the handler in progress finish and acknowledges its message.
///
/// ```no_run
/// // In a binder's test crate, with a Harness for its broker:
/// async fn check(h: &dyn bindery::conformance::Harness) -> bindery::Result<()> {
///     bindery::conformance::graceful_shutdown_drains_in_flight(h).await
/// }
/// ```
pub async fn graceful_shutdown_drains_in_flight(h: &dyn Harness) -> Result<()> {
    let dest = unique("drain");
    let started = Collector::default();
    let finished = Arc::new(AtomicBool::new(false));
    let (s, f) = (started.clone(), finished.clone());
    let slow = Handler::sink("slow", move |m: Message<Probe>, _ctx: Context| {
        let (s, f) = (s.clone(), f.clone());
        async move {
            s.push(m);
            tokio::time::sleep(Duration::from_millis(300)).await;
            f.store(true, Ordering::SeqCst);
            Ok::<_, HandlerError>(())
        }
    })
    .input("in");
    let app = start(h, &consumer_toml("in", &dest, Some(&group(&dest, "drain")), ""), vec![slow]).await?;
    let pubr = publisher(h, &dest, 1).await?;
    publish(&pubr, [probe(1, "k", 0)]).await?;
    started.wait_until(h.timeout(), "the slow handler to start", |v| !v.is_empty()).await?;
    app.shutdown().await?;
    ensure(finished.load(Ordering::SeqCst), || "shutdown returned before the in-flight handler finished".into())?;
    // The drained message was acknowledged: the next member of the group sees only new work.
    let next = Collector::default();
    let app2 =
        start(h, &consumer_toml("in", &dest, Some(&group(&dest, "drain")), ""), vec![next.sink("next", "in")]).await?;
    publish(&pubr, [probe(2, "k", 1)]).await?;
    next.wait_until(h.timeout() * 2, "the marker message", |v| ids(v).contains(&2)).await?;
    ensure(!ids(&next.snapshot()).contains(&1), || {
        "the drained message was delivered again: it was not acknowledged".into()
    })?;
    pubr.shutdown().await?;
    app2.shutdown().await
}

/// Every case, in order; stops at the first failure.
///
/// ```no_run
/// async fn check(h: &dyn bindery::conformance::Harness) {
///     if let Err(e) = bindery::conformance::run_all(h).await {
///         panic!("the binder breaks the delivery contract: {e}");
///     }
/// }
/// ```
pub async fn run_all(h: &dyn Harness) -> Result<()> {
    groups_each_get_every_message(h).await?;
    group_members_split_messages(h).await?;
    anonymous_subscribers_get_every_message(h).await?;
    per_key_order_with_concurrency(h).await?;
    retry_with_backoff_then_dead_letter(h).await?;
    undecodable_goes_straight_to_dead_letter(h).await?;
    panicking_handler_is_isolated(h).await?;
    unfinished_work_is_redelivered(h).await?;
    lost_consumer_work_is_redelivered(h).await?;
    outputs_confirmed_before_input_ack(h).await?;
    dead_letter_confirmed_before_input_ack(h).await?;
    correlation_and_trace_propagate(h).await?;
    headers_round_trip(h).await?;
    graceful_shutdown_drains_in_flight(h).await
}

/// Expands to one `#[tokio::test]` per conformance case, each calling the case with the
/// harness built by `$harness`.
///
/// In a binder crate's `tests/conformance.rs`:
///
/// ```no_run
/// # use std::{sync::Arc, time::Duration};
/// # struct MyBroker;
/// # #[async_trait::async_trait]
/// # impl bindery::conformance::Harness for MyBroker {
/// #     fn binder(&self) -> Arc<dyn bindery::Binder> { unimplemented!() }
/// #     async fn dead_letters(&self, _: &str, _: &str, _: usize, _: Duration)
/// #         -> bindery::Result<Vec<bindery::RawMessage>> { Ok(Vec::new()) }
/// # }
/// // One #[tokio::test] per case: groups_each_get_every_message, ..., graceful_shutdown_drains_in_flight.
/// bindery::conformance_tests!(MyBroker);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($harness:expr) => {
        $crate::conformance_tests!(@cases $harness;
            groups_each_get_every_message,
            group_members_split_messages,
            anonymous_subscribers_get_every_message,
            per_key_order_with_concurrency,
            retry_with_backoff_then_dead_letter,
            undecodable_goes_straight_to_dead_letter,
            panicking_handler_is_isolated,
            unfinished_work_is_redelivered,
            lost_consumer_work_is_redelivered,
            outputs_confirmed_before_input_ack,
            dead_letter_confirmed_before_input_ack,
            correlation_and_trace_propagate,
            headers_round_trip,
            graceful_shutdown_drains_in_flight
        );
    };
    (@cases $harness:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let harness = $harness;
                if let Err(e) = $crate::conformance::$case(&harness).await {
                    panic!("{}: {e}", stringify!($case));
                }
            }
        )*
    };
}

// ---------------------------------------------------------------- instrumented binder

#[derive(Clone, Debug, PartialEq)]
enum Event {
    /// The handler ran for the input with this id.
    Handled(String),
    /// An output whose correlation id is this input id was confirmed.
    Confirmed(String),
    /// The input with this id was acknowledged.
    Acked(String),
}

/// Wraps the binder under test and records confirmations and acknowledgements in order.
/// The order in which the instrumented binder saw confirmations and acknowledgements.
#[derive(Default)]
struct EventLog {
    events: Mutex<Vec<Event>>,
    changed: Notify,
}

impl EventLog {
    fn push(&self, e: Event) {
        if let Ok(mut events) = self.events.lock() {
            events.push(e);
        }
        self.changed.notify_waiters();
    }

    fn snapshot(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

/// How long the instrumented binder holds back every confirmation.
const CONFIRM_DELAY: Duration = Duration::from_millis(200);

struct Watched {
    inner: Arc<dyn Binder>,
    log: Arc<EventLog>,
}

struct WatchedProducer {
    inner: Arc<dyn Producer>,
    log: Arc<EventLog>,
}

#[async_trait]
impl Producer for WatchedProducer {
    async fn send(&self, message: RawMessage) -> Result<Confirmation> {
        // Outputs carry their input's correlation id; a dead letter carries its input's id.
        let h = message.headers();
        let correlation = h.correlation_id().or_else(|| h.get_str("id")).unwrap_or_default().to_string();
        let confirmation = self.inner.send(message).await?;
        let log = self.log.clone();
        Ok(Confirmation::from_future(async move {
            // Slow confirmations make an early ack, and a worker waiting for them, visible.
            tokio::time::sleep(CONFIRM_DELAY).await;
            let r = confirmation.await;
            if r.is_ok() {
                log.push(Event::Confirmed(correlation));
            }
            r
        }))
    }

    async fn flush(&self, timeout: Duration) -> Result<()> {
        self.inner.flush(timeout).await
    }

    fn writes_identity(&self) -> bool {
        self.inner.writes_identity()
    }
}

struct WatchedAcks {
    handles: Mutex<HashMap<u64, (String, AckHandle)>>,
    log: Arc<EventLog>,
}

impl Acknowledger for WatchedAcks {
    fn settle(&self, tag: u64, settlement: Settlement) {
        let entry = self.handles.lock().ok().and_then(|mut h| h.remove(&tag));
        if let Some((id, handle)) = entry {
            if settlement == Settlement::Ack {
                self.log.push(Event::Acked(id));
            }
            handle.settle(settlement);
        }
    }
}

/// Binds a consumer of `inner` whose deliveries reach `channel` with their acknowledgement
/// handles replaced by `wrap` (which receives the broker's own handle).
async fn intercept(
    inner: &dyn Binder,
    spec: &ConsumerSpec,
    channel: InputChannel,
    mut wrap: impl FnMut(&RawMessage, AckHandle) -> AckHandle + Send + 'static,
) -> Result<Box<dyn ConsumerBinding>> {
    let (tx, mut rx): (InputChannel, mpsc::Receiver<Delivery>) = InputChannel::bounded(16);
    let inner = inner.bind_consumer(spec, tx).await?;
    let forward = tokio::spawn(async move {
        while let Some(d) = rx.recv().await {
            let ack = wrap(&d.message, d.ack);
            if channel.send(Delivery::new(d.message, ack, d.partition)).await.is_err() {
                return;
            }
        }
    });
    Ok(Box::new(WatchedConsumer { inner, forward }))
}

struct WatchedConsumer {
    inner: Box<dyn ConsumerBinding>,
    forward: tokio::task::JoinHandle<()>,
}

#[async_trait]
impl ConsumerBinding for WatchedConsumer {
    async fn stop(&self) -> Result<()> {
        self.inner.stop().await
    }
    async fn close(&self) -> Result<()> {
        let r = self.inner.close().await;
        self.forward.abort();
        r
    }
    fn health(&self) -> Health {
        self.inner.health()
    }
    async fn lost(&self) -> Error {
        self.inner.lost().await
    }
}

#[async_trait]
impl Binder for Watched {
    fn kind(&self) -> &str {
        self.inner.kind()
    }

    async fn bind_producer(&self, spec: &ProducerSpec) -> Result<Arc<dyn Producer>> {
        Ok(Arc::new(WatchedProducer { inner: self.inner.bind_producer(spec).await?, log: self.log.clone() }))
    }

    async fn bind_consumer(&self, spec: &ConsumerSpec, channel: InputChannel) -> Result<Box<dyn ConsumerBinding>> {
        let acks = Arc::new(WatchedAcks { handles: Mutex::new(HashMap::new()), log: self.log.clone() });
        let mut next = 0u64;
        intercept(self.inner.as_ref(), spec, channel, move |message, ack| {
            next += 1;
            let id = message.headers().get_str("id").unwrap_or_default().to_string();
            if let Ok(mut h) = acks.handles.lock() {
                h.insert(next, (id, ack));
            }
            AckHandle::new(acks.clone(), next)
        })
        .await
    }

    fn dead_letter_destination(&self, destination: &str, group: &str) -> String {
        self.inner.dead_letter_destination(destination, group)
    }

    fn health(&self) -> Health {
        self.inner.health()
    }
}

/// Wraps the binder under test; its consumers' settlements never reach the broker, and the
/// broker-side handles are held (neither settled nor dropped) until the case gives them up.
struct Crashing {
    inner: Arc<dyn Binder>,
    held: Arc<Mutex<Vec<AckHandle>>>,
}

struct Swallow;

impl Acknowledger for Swallow {
    fn settle(&self, _tag: u64, _settlement: Settlement) {}
}

#[async_trait]
impl Binder for Crashing {
    fn kind(&self) -> &str {
        self.inner.kind()
    }

    async fn bind_producer(&self, spec: &ProducerSpec) -> Result<Arc<dyn Producer>> {
        self.inner.bind_producer(spec).await
    }

    async fn bind_consumer(&self, spec: &ConsumerSpec, channel: InputChannel) -> Result<Box<dyn ConsumerBinding>> {
        let held = self.held.clone();
        let swallow: Arc<dyn Acknowledger> = Arc::new(Swallow);
        intercept(self.inner.as_ref(), spec, channel, move |_message, ack| {
            if let Ok(mut h) = held.lock() {
                h.push(ack);
            }
            AckHandle::new(swallow.clone(), 0)
        })
        .await
    }

    fn dead_letter_destination(&self, destination: &str, group: &str) -> String {
        self.inner.dead_letter_destination(destination, group)
    }
}
