//! The runtime on the memory binder: startup errors, a broker that is down at start,
//! imperative and polled sources, outputs (context sends, filters, splits, headers, keys,
//! content types) and shutdown.
//!
//! The attribute-macro handlers below are registered for the whole test binary, so every other
//! test builds its handlers in code and turns the registered ones off.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bindery::binder::{ConsumerBinding, ConsumerSpec, InputChannel, Producer, ProducerSpec};
use bindery::prelude::*;
use bindery::{Binder, Config, Handler, Health, RawMessage};
use bindery_memory::{MemoryBinder, MemoryBroker, TestApp};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// Upper bound for every wait on an event.
const WAIT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    customer: String,
}

fn order(id: u64, customer: &str) -> Order {
    Order { id, customer: customer.to_string() }
}

fn config(toml: &str) -> Config {
    Config::from_toml_str_with_env(toml, Vec::<(String, String)>::new()).unwrap()
}

/// Waits for the next value on `rx`, failing the test after [`WAIT`].
async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
        .unwrap_or_else(|| panic!("channel closed while waiting for {what}"))
}

/// A sink that forwards every payload it sees to the returned receiver.
fn recording_sink<T>(name: &str, input: &str) -> (Handler, mpsc::UnboundedReceiver<T>)
where
    T: serde::de::DeserializeOwned + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let h = Handler::sink(name, move |m: Message<T>, _ctx: Context| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(m.into_payload());
            Ok::<_, HandlerError>(())
        }
    })
    .input(input);
    (h, rx)
}

fn json(value: &impl Serialize) -> RawMessage {
    Message::new(Bytes::from(serde_json::to_vec(value).unwrap())).with_content_type("application/json")
}

// ------------------------------------------------------------------ startup errors

#[tokio::test]
async fn two_handlers_on_one_input_binding_is_a_startup_error_naming_both() {
    let (a, _ra) = recording_sink::<u64>("first-consumer", "shared-in");
    let (b, _rb) = recording_sink::<u64>("second-consumer", "shared-in");
    let err = bindery::App::builder().registered_handlers(false).config(config("")).handler(a).handler(b).build();
    let msg = err.unwrap_err().to_string();
    assert!(msg.contains("first-consumer"), "{msg}");
    assert!(msg.contains("second-consumer"), "{msg}");
    assert!(msg.contains("shared-in"), "should name the binding: {msg}");
}

#[tokio::test]
async fn two_handlers_with_one_name_is_a_startup_error() {
    let (a, _ra) = recording_sink::<u64>("twin", "twin-a-in");
    let (b, _rb) = recording_sink::<u64>("twin", "twin-b-in");
    let msg = bindery::App::builder()
        .registered_handlers(false)
        .config(config(""))
        .handler(a)
        .handler(b)
        .build()
        .unwrap_err()
        .to_string();
    assert!(msg.contains("`twin`"), "{msg}");
}

#[tokio::test]
async fn binding_section_for_a_missing_handler_is_a_startup_error() {
    let (real, _rx) = recording_sink::<u64>("real", "real-in-0");
    let err = bindery::App::builder()
        .registered_handlers(false)
        .config(config("[bindings.ghost-in-0]\ngroup = \"g\"\n[bindings.real-in-0]\ngroup = \"g\"\n"))
        .handler(real)
        .build()
        .unwrap_err();
    let msg = err.to_string();
    assert!(err.is_config(), "{msg}");
    assert!(msg.contains("bindings.ghost-in-0"), "should name the section: {msg}");
    assert!(msg.contains("`ghost`"), "should name the missing handler: {msg}");
    assert!(msg.contains("real"), "should list the registered handlers: {msg}");

    let (real, _rx) = recording_sink::<u64>("real", "real-in-0");
    let msg = bindery::App::builder()
        .registered_handlers(false)
        .config(config("[bindings.ghost-out-0]\ndestination = \"x\"\n"))
        .handler(real)
        .build()
        .unwrap_err()
        .to_string();
    assert!(msg.contains("bindings.ghost-out-0") && msg.contains("`ghost`"), "{msg}");
}

fn assert_not_linked(msg: &str) {
    assert!(msg.contains("`kafka`"), "should name the type: {msg}");
    assert!(msg.contains("not linked"), "should say the type is not linked: {msg}");
    assert!(msg.contains("memory"), "should list the linked types: {msg}");
    assert!(msg.contains("use bindery_kafka as _;"), "should suggest naming the crate: {msg}");
}

#[tokio::test]
async fn binding_on_an_unlinked_binder_type_is_a_startup_error() {
    let (h, _rx) = recording_sink::<u64>("kafka-user", "kafka-user-in");
    let err = bindery::App::builder()
        .registered_handlers(false)
        .config(config("[bindings.kafka-user-in]\nbinder = \"kafka\"\n"))
        .handler(h)
        .build()
        .unwrap_err();
    assert!(err.is_config(), "{err}");
    assert_not_linked(&err.to_string());
}

#[tokio::test]
async fn default_binder_of_an_unlinked_type_is_a_startup_error_naming_the_handler() {
    let (h, _rx) = recording_sink::<u64>("kafka-default-user", "kafka-default-in");
    let msg = bindery::App::builder()
        .registered_handlers(false)
        .config(config("default-binder = \"kafka\"\n"))
        .handler(h)
        .build()
        .unwrap_err()
        .to_string();
    assert_not_linked(&msg);
    assert!(msg.contains("kafka-default-user"), "should name the handler: {msg}");
}

#[tokio::test]
async fn named_binder_entry_of_an_unlinked_type_is_a_startup_error() {
    let (h, _rx) = recording_sink::<u64>("main-user", "main-user-in");
    let msg = bindery::App::builder()
        .registered_handlers(false)
        .config(config("[binders.main]\ntype = \"kafka\"\n[bindings.main-user-in]\nbinder = \"main\"\n"))
        .handler(h)
        .build()
        .unwrap_err()
        .to_string();
    assert_not_linked(&msg);
    assert!(msg.contains("binders.main"), "should name the entry: {msg}");
}

#[tokio::test]
async fn dead_letter_without_a_group_is_a_startup_error() {
    let broker = MemoryBroker::recording();
    let (h, _rx) = recording_sink::<u64>("dl-no-group", "dl-no-group-in");
    let built = bindery::App::builder()
        .registered_handlers(false)
        .binder("memory", Arc::new(MemoryBinder::new(broker)))
        .config(config("[bindings.dl-no-group-in.consumer]\ndead-letter = true\n"))
        .handler(h)
        .build();
    let err = match built {
        Err(e) => e,
        Ok(app) => app.start().await.unwrap_err(),
    };
    let msg = err.to_string();
    assert!(err.is_config(), "{msg}");
    assert!(msg.contains("bindings.dl-no-group-in.consumer.dead-letter"), "should name the key: {msg}");
    assert!(msg.contains("group"), "should say a group is needed: {msg}");
}

#[tokio::test]
async fn a_failed_start_leaves_no_consumer_behind() {
    // The first handler is valid and binds; the second is misconfigured, so the app fails to
    // start. Nothing of the failed app may keep consuming: a healthy app started afterwards
    // on the same broker and group must get the messages.
    let broker = MemoryBroker::recording();
    let (zombie, mut zombie_rx) = recording_sink::<u64>("zombie", "zombie-in");
    let (bad, _bad_rx) = recording_sink::<u64>("misconfigured", "misconfigured-in");
    let toml = "[bindings.zombie-in]\ngroup = \"workers\"\n[bindings.misconfigured-in.consumer]\ndead-letter = true\n";
    let failed = match bindery::App::builder()
        .registered_handlers(false)
        .binder("memory", Arc::new(MemoryBinder::new(broker.clone())))
        .config(config(toml))
        .handler(zombie)
        .handler(bad)
        .build()
    {
        Err(_) => true,
        Ok(app) => app.start().await.is_err(),
    };
    assert!(failed, "the app must not start");

    let (good, mut good_rx) = recording_sink::<u64>("good", "zombie-in");
    let app = bindery::App::builder()
        .registered_handlers(false)
        .binder("memory", Arc::new(MemoryBinder::new(broker.clone())))
        .config(config("[bindings.zombie-in]\ngroup = \"workers\"\n"))
        .handler(good)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    for i in 0..3u64 {
        broker.publish("zombie-in", json(&i));
    }
    let got = tokio::time::timeout(WAIT, async {
        let mut got = Vec::new();
        while got.len() < 3 {
            got.push(good_rx.recv().await.unwrap());
        }
        got
    })
    .await;
    let zombie_saw: Vec<u64> = std::iter::from_fn(|| zombie_rx.try_recv().ok()).collect();
    assert!(zombie_saw.is_empty(), "a handler of the app that failed to start consumed {zombie_saw:?}");
    assert_eq!(got.expect("the healthy app got nothing: the failed app still consumes"), [0, 1, 2]);
    app.shutdown().await.unwrap();
}

// ------------------------------------------------------------------ broker down at start

/// A memory binder whose broker is "down" for the first `fail` consumer binds.
struct Flaky {
    inner: MemoryBinder,
    fails_left: AtomicUsize,
    events: mpsc::UnboundedSender<&'static str>,
}

#[async_trait]
impl Binder for Flaky {
    fn kind(&self) -> &str {
        "memory"
    }

    async fn bind_producer(&self, spec: &ProducerSpec) -> bindery::Result<Arc<dyn Producer>> {
        self.inner.bind_producer(spec).await
    }

    async fn bind_consumer(
        &self,
        spec: &ConsumerSpec,
        channel: InputChannel,
    ) -> bindery::Result<Box<dyn ConsumerBinding>> {
        let failing = self.fails_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if failing {
            let _ = self.events.send("failed");
            return Err(bindery::Error::binding(&spec.binding, "broker unreachable (injected)"));
        }
        let bound = self.inner.bind_consumer(spec, channel).await;
        let _ = self.events.send("bound");
        bound
    }

    fn dead_letter_destination(&self, destination: &str, group: &str) -> String {
        self.inner.dead_letter_destination(destination, group)
    }
}

#[tokio::test]
async fn broker_down_at_start_keeps_retrying_reports_down_then_consumes() {
    let broker = MemoryBroker::recording();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let flaky = Arc::new(Flaky {
        inner: MemoryBinder::new(broker.clone()),
        fails_left: AtomicUsize::new(3),
        events: events_tx,
    });
    let (sink, mut seen) = recording_sink::<Order>("down-sink", "down-in");
    let app = bindery::App::builder()
        .registered_handlers(false)
        .binder("memory", flaky.clone())
        .config(config("binding-retry-interval = \"50ms\"\n[bindings.down-in]\ngroup = \"g\"\n"))
        .handler(sink.group("g"))
        .build()
        .unwrap()
        .start()
        .await
        .expect("the app starts while the broker is down");

    assert_eq!(next(&mut events, "first bind attempt").await, "failed");
    assert_eq!(next(&mut events, "second bind attempt").await, "failed");
    // The first failure was recorded before the second attempt began.
    let health = app.health();
    assert!(!health.is_up(), "health must be down while the broker is down");
    assert!(health.detail().contains("broker unreachable (injected)"), "{}", health.detail());
    assert!(health.detail().contains("down-in"), "should name the binding: {}", health.detail());

    assert_eq!(next(&mut events, "third bind attempt").await, "failed");
    assert_eq!(next(&mut events, "fourth bind attempt").await, "bound");
    broker.publish("down-in", json(&order(1, "c-1")));
    assert_eq!(next(&mut seen, "the message after the broker came back").await, order(1, "c-1"));
    assert_eq!(app.health(), Health::up());
    app.shutdown().await.unwrap();
}

// ------------------------------------------------------------------ sources

#[tokio::test]
async fn imperative_source_publishes_to_the_bindings_destination() {
    let app = TestApp::builder()
        .registered_handlers(false)
        .config_toml("[bindings.imp-out]\ndestination = \"imp-dest\"\n")
        .start()
        .await
        .unwrap();
    let source = app.app().unwrap().source::<Order>("imp-out").unwrap();
    source.send(order(1, "c-1")).await.unwrap();
    source.send_message(Message::new(order(2, "c-2")).with_header("tenant", "acme")).await.unwrap();

    let out = app.output("imp-dest");
    let first = out.recv_message::<Order>().await.unwrap();
    assert_eq!(*first.payload(), order(1, "c-1"));
    assert_eq!(first.headers().content_type(), Some("application/json"));
    assert!(first.headers().id().is_some(), "published messages get an id");
    assert!(first.headers().timestamp().is_some(), "published messages get a timestamp");
    let second = out.recv_message::<Order>().await.unwrap();
    assert_eq!(*second.payload(), order(2, "c-2"));
    assert_eq!(second.headers().get_str("tenant"), Some("acme"));
    assert_eq!(second.headers().content_type(), Some("application/json"));
    assert!(
        second.headers().id().is_some_and(|id| Some(id) != first.headers().id()),
        "a message sent with headers gets its own id"
    );
    assert!(second.headers().timestamp().is_some(), "a message sent with headers gets a timestamp");
    assert!(app.output("imp-out").all().is_empty(), "nothing goes to the binding name itself");
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn polled_source_publishes_every_interval_and_skips_none() {
    let calls = Arc::new(AtomicU64::new(0));
    let c = calls.clone();
    let source = Handler::source("poller", Duration::from_millis(10), move || {
        let n = c.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, HandlerError>(n.is_multiple_of(2).then(|| Message::new(n))) }
    })
    .output("poller-out");
    let app = TestApp::builder()
        .registered_handlers(false)
        .handler(source)
        .config_toml("[bindings.poller-out]\ndestination = \"poll-dest\"\n")
        .start()
        .await
        .unwrap();
    let out = app.output("poll-dest");
    let got = [
        out.recv_json::<u64>().await.unwrap(),
        out.recv_json::<u64>().await.unwrap(),
        out.recv_json::<u64>().await.unwrap(),
    ];
    assert_eq!(got, [0, 2, 4], "ticks returning None publish nothing");
    assert!(calls.load(Ordering::SeqCst) >= 5);
    app.shutdown().await.unwrap();
}

// ------------------------------------------------------------------ outputs

#[tokio::test]
async fn context_send_is_published_once_only_for_the_successful_attempt() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let a = attempts.clone();
    let sink = Handler::sink("ctx-router", move |m: Message<u64>, ctx: Context| {
        let a = a.clone();
        async move {
            a.fetch_add(1, Ordering::SeqCst);
            ctx.send("ctx-audit", &(*m.payload(), ctx.delivery_attempt()))?;
            if *m.payload() == 1 && ctx.delivery_attempt() == 1 {
                return Err(HandlerError::new("first attempt fails"));
            }
            Ok(())
        }
    })
    .input("ctx-in");
    let app = TestApp::builder()
        .registered_handlers(false)
        .handler(sink)
        .config_toml(
            "[bindings.ctx-in.consumer]\nmax-attempts = 3\nbackoff-initial = \"10ms\"\n\
             [bindings.ctx-audit]\ndestination = \"ctx-audit-dest\"\n",
        )
        .start()
        .await
        .unwrap();
    app.input("ctx-in").send_message(Message::new(1u64).with_correlation_id("conv-1")).await.unwrap();
    app.input("ctx-in").send_json(&2u64).await.unwrap();

    let out = app.output("ctx-audit-dest");
    let first = out.recv_message::<(u64, u32)>().await.unwrap();
    assert_eq!(*first.payload(), (1, 2), "only the second, successful attempt's send is published");
    assert_eq!(first.headers().correlation_id(), Some("conv-1"), "context sends carry the correlation id");
    let second = out.recv_json::<(u64, u32)>().await.unwrap();
    assert_eq!(second, (2, 1), "the send of the failed attempt must not be published");
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(out.all().len(), 2);
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn context_send_of_a_handler_that_never_succeeds_is_never_published() {
    let sink = Handler::sink("ctx-doomed", move |m: Message<u64>, ctx: Context| async move {
        ctx.send("ctx-doomed-audit", m.payload())?;
        if *m.payload() == 0 {
            return Err(HandlerError::new("always fails"));
        }
        Ok(())
    })
    .input("ctx-doomed-in")
    .group("g");
    let app = TestApp::builder()
        .registered_handlers(false)
        .handler(sink)
        .config_toml("[bindings.ctx-doomed-in.consumer]\nmax-attempts = 2\nbackoff-initial = \"5ms\"\n")
        .start()
        .await
        .unwrap();
    app.input("ctx-doomed-in").send_json(&0u64).await.unwrap();
    app.input("ctx-doomed-in").send_json(&7u64).await.unwrap();
    // The marker's send is published after the doomed message was dead-lettered.
    assert_eq!(app.output("ctx-doomed-audit").recv_json::<u64>().await.unwrap(), 7);
    assert_eq!(app.dead_letters("ctx-doomed-in", "g").len(), 1);
    assert_eq!(app.output("ctx-doomed-audit").all().len(), 1);
    app.shutdown().await.unwrap();
}

#[bindery::processor(input = "rt-filter-in", output = "rt-filter-out")]
async fn rt_filter(n: i64) -> Option<i64> {
    (n % 2 == 0).then_some(n * 10)
}

#[bindery::processor(input = "rt-split-in", output = "rt-split-out")]
async fn rt_split(batch: Vec<Order>) -> Vec<Order> {
    batch
}

#[bindery::processor(input = "rt-keyed-in", output = "rt-keyed-out")]
async fn rt_keyed(o: Order) -> Result<Message<u64>, HandlerError> {
    Ok(Message::new(o.id).with_key(o.customer.clone()).with_header("customer", o.customer))
}

#[tokio::test]
async fn macro_processor_returning_option_filters() {
    let app = TestApp::builder().start().await.unwrap();
    for n in [1i64, 2, 3, 4] {
        app.input("rt-filter-in").send_json(&n).await.unwrap();
    }
    let out = app.output("rt-filter-out");
    assert_eq!(out.recv_json::<i64>().await.unwrap(), 20);
    assert_eq!(out.recv_json::<i64>().await.unwrap(), 40);
    // 4 came after 3, so 3 was handled: it published nothing.
    assert_eq!(out.all().len(), 2, "None must publish nothing");
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn macro_processor_returning_vec_splits() {
    let app = TestApp::builder().start().await.unwrap();
    app.input("rt-split-in").send_json(&vec![order(1, "a"), order(2, "b"), order(3, "c")]).await.unwrap();
    app.input("rt-split-in").send_json(&Vec::<Order>::new()).await.unwrap();
    app.input("rt-split-in").send_message(Message::new(vec![order(4, "d")]).with_correlation_id("c-4")).await.unwrap();
    let out = app.output("rt-split-out");
    for id in 1..=3 {
        assert_eq!(out.recv_json::<Order>().await.unwrap().id, id);
    }
    let last = out.recv_message::<Order>().await.unwrap();
    assert_eq!(last.payload().id, 4, "an empty Vec publishes nothing");
    assert_eq!(last.headers().correlation_id(), Some("c-4"));
    assert_eq!(out.all().len(), 4);
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn macro_processor_returning_message_keeps_headers_and_key() {
    let app = TestApp::builder().start().await.unwrap();
    app.input("rt-keyed-in").send_json(&order(9, "c-9")).await.unwrap();
    let m = app.output("rt-keyed-out").recv_message::<u64>().await.unwrap();
    assert_eq!(*m.payload(), 9);
    assert_eq!(m.headers().key(), Some(&b"c-9"[..]));
    assert_eq!(m.headers().get_str("customer"), Some("c-9"));
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn message_outputs_keep_headers_and_key() {
    let p = Handler::processor("hdr", |m: Message<String>, _ctx: Context| async move {
        let text = m.into_payload();
        Ok::<_, HandlerError>(vec![
            Message::new(text.to_uppercase()).with_header("tenant", "acme").with_key("k-1"),
            Message::new(text).with_correlation_id("own-correlation").with_header("n", 2u64),
        ])
    })
    .input("hdr-in")
    .output("hdr-out");
    let app = TestApp::builder()
        .registered_handlers(false)
        .handler(p)
        .config_toml("[bindings.hdr-out]\ndestination = \"hdr-dest\"\n")
        .start()
        .await
        .unwrap();
    app.input("hdr-in").send_message(Message::new("hi".to_string()).with_correlation_id("conv-9")).await.unwrap();
    let out = app.output("hdr-dest");
    let first = out.recv_message::<String>().await.unwrap();
    assert_eq!(first.payload(), "HI");
    assert_eq!(first.headers().get_str("tenant"), Some("acme"));
    assert_eq!(first.headers().key(), Some(&b"k-1"[..]));
    assert_eq!(first.headers().correlation_id(), Some("conv-9"), "correlation is copied from the input");
    assert_eq!(first.headers().content_type(), Some("application/json"));
    assert!(first.headers().id().is_some());
    let second = out.recv_message::<String>().await.unwrap();
    assert_eq!(second.payload(), "hi");
    assert_eq!(second.headers().correlation_id(), Some("own-correlation"), "a handler's own correlation id wins");
    assert_eq!(second.headers().get_str("n"), Some("2"));
    assert_eq!(second.headers().key(), None);
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn partition_key_pointer_sets_the_key_header_from_the_payload() {
    let p = Handler::processor("pk", |m: Message<Order>, _ctx: Context| async move {
        let o = m.into_payload();
        Ok::<_, HandlerError>(vec![Message::new(o.clone()), Message::new(o).with_key("explicit")])
    })
    .input("pk-in")
    .output("pk-out");
    let app = TestApp::builder()
        .registered_handlers(false)
        .handler(p)
        .config_toml(
            "[bindings.pk-out]\ndestination = \"pk-dest\"\n[bindings.pk-out.producer]\npartition-key = \"/customer\"\n\
             [bindings.pk-num.producer]\npartition-key = \"/id\"\n\
             [bindings.pk-hdr.producer]\npartition-key = \"header:tenant\"\n",
        )
        .start()
        .await
        .unwrap();
    app.input("pk-in").send_json(&order(5, "c-42")).await.unwrap();
    let out = app.output("pk-dest");
    let derived = out.recv().await.unwrap();
    assert_eq!(derived.headers().key(), Some(&b"c-42"[..]), "key from /customer");
    let explicit = out.recv().await.unwrap();
    assert_eq!(explicit.headers().key(), Some(&b"explicit"[..]), "a key set by the handler wins");

    let running = app.app().unwrap();
    running.source::<Order>("pk-num").unwrap().send(order(77, "x")).await.unwrap();
    assert_eq!(app.output("pk-num").recv().await.unwrap().headers().key(), Some(&b"77"[..]));
    running
        .source::<Order>("pk-hdr")
        .unwrap()
        .send_message(Message::new(order(1, "y")).with_header("tenant", "acme"))
        .await
        .unwrap();
    assert_eq!(app.output("pk-hdr").recv().await.unwrap().headers().key(), Some(&b"acme"[..]));
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn text_plain_bindings_carry_strings_unquoted() {
    let p = Handler::processor("shout", |m: Message<String>, _ctx: Context| async move {
        Ok::<_, HandlerError>(vec![Message::new(m.into_payload().to_uppercase())])
    })
    .input("txt-in")
    .output("txt-out");
    let app = TestApp::builder()
        .registered_handlers(false)
        .handler(p)
        .config_toml(
            "[bindings.txt-in]\ncontent-type = \"text/plain\"\n[bindings.txt-out]\ncontent-type = \"text/plain\"\n",
        )
        .start()
        .await
        .unwrap();
    // No contentType header: the binding's content type applies.
    app.input("txt-in").send_raw(Message::new(Bytes::from_static(b"hello"))).await.unwrap();
    // An explicit header works too.
    app.input("txt-in")
        .send_raw(Message::new(Bytes::from_static(b"again")).with_content_type("text/plain; charset=utf-8"))
        .await
        .unwrap();
    let out = app.output("txt-out");
    let first = out.recv().await.unwrap();
    assert_eq!(&first.payload()[..], b"HELLO");
    assert_eq!(first.headers().content_type(), Some("text/plain"));
    assert_eq!(&out.recv().await.unwrap().payload()[..], b"AGAIN");
    app.shutdown().await.unwrap();
}

// ------------------------------------------------------------------ shutdown

#[tokio::test]
async fn shutdown_returns_ok_after_work_is_settled() {
    let (sink, mut seen) = recording_sink::<u64>("shut-sink", "shut-in");
    let source = Handler::source("shut-ticker", Duration::from_millis(5), || async {
        Ok::<_, HandlerError>(Some(Message::new(1u8)))
    });
    let app =
        TestApp::builder().registered_handlers(false).handler(sink.group("g")).handler(source).start().await.unwrap();
    app.input("shut-in").send_json(&3u64).await.unwrap();
    assert_eq!(next(&mut seen, "the message").await, 3);
    app.output("shut-ticker-out-0").recv().await.unwrap();
    let broker = app.broker().clone();
    tokio::time::timeout(WAIT, app.shutdown()).await.expect("shutdown finishes").expect("shutdown is clean");
    assert_eq!(broker.unacknowledged("shut-in", "g"), 0);
    assert_eq!(broker.queued("shut-in", "g"), 0);
    // The source is stopped: nothing more is published once shutdown returned. A running
    // 5ms ticker would publish again well within 50ms; none may arrive.
    let published = broker.history("shut-ticker-out-0").len();
    let more = broker.wait_for_history("shut-ticker-out-0", published + 1, Duration::from_millis(50)).await;
    assert!(more.is_err(), "the source kept publishing after shutdown");
}
