//! What the binder declares, read back through the management API (`rabbitmqadmin`): exactly
//! the names and arguments Spring Cloud Stream's RabbitMQ binder uses.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bindery::binder::{ConsumerSpec, InputChannel};
use bindery::{App, Binder, Config, Context, Handler, HandlerError, Message};
use bindery_rabbit::naming;
use lapin::options::{BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use serde_json::{Value, json};
use tokio::sync::Notify;

#[derive(Clone, Default)]
struct Keys {
    seen: Arc<Mutex<Vec<String>>>,
    changed: Arc<Notify>,
}

impl Keys {
    fn sink(&self, name: &str, input: &str) -> Handler {
        let k = self.clone();
        Handler::sink(name, move |m: Message<Value>, _ctx: Context| {
            let k = k.clone();
            async move {
                k.seen.lock().unwrap().push(m.payload()["key"].as_str().unwrap_or_default().to_string());
                k.changed.notify_waiters();
                Ok::<_, HandlerError>(())
            }
        })
        .input(input)
    }

    fn snapshot(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize, what: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.seen.lock().unwrap().len() >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!("timed out waiting for {n} messages at {what}; got {:?}", self.snapshot());
            }
        }
    }
}

fn find<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("`{name}` not declared"))
}

fn bindings_of(destination: &str) -> Vec<(String, String)> {
    common::admin_list("bindings")
        .into_iter()
        .filter(|b| b["destination"] == destination && b["source"] != "")
        .map(|b| (b["source"].as_str().unwrap().to_string(), b["routing_key"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_topology_is_springs() {
    let dest = common::unique("topo");
    let keys = Keys::default();
    let toml = format!(
        "[bindings.in]\ndestination = \"{dest}\"\ngroup = \"billing\"\n[bindings.anon]\ndestination = \"{dest}\"\n[bindings.out]\ndestination = \"{dest}\"\n"
    );
    let app = common::start(&toml, vec![keys.sink("s", "in"), keys.sink("a", "anon")]).await;
    app.source::<Value>("out").unwrap().send(json!({"key": "k"})).await.unwrap();
    keys.wait_for(2, "the group and the anonymous subscriber").await;

    let exchanges = common::admin_list("exchanges");
    let x = find(&exchanges, &dest);
    assert_eq!((x["type"].as_str(), x["durable"].as_bool()), (Some("topic"), Some(true)), "{x}");
    let dlx = find(&exchanges, "DLX");
    assert_eq!((dlx["type"].as_str(), dlx["durable"].as_bool()), (Some("direct"), Some(true)), "{dlx}");

    let queues = common::admin_list("queues");
    let group = find(&queues, &format!("{dest}.billing"));
    assert_eq!(group["durable"], true);
    assert_eq!(group["exclusive"], false);
    assert_eq!(group["auto_delete"], false);
    assert_eq!(
        group["arguments"],
        json!({"x-dead-letter-exchange": "DLX", "x-dead-letter-routing-key": format!("{dest}.billing")})
    );
    let dlq = find(&queues, &format!("{dest}.billing.dlq"));
    assert_eq!((dlq["durable"].as_bool(), &dlq["arguments"]), (Some(true), &json!({})));
    let prefix = format!("{dest}.anonymous.");
    let anon: Vec<&Value> = queues.iter().filter(|q| q["name"].as_str().unwrap().starts_with(&prefix)).collect();
    assert_eq!(anon.len(), 1, "one anonymous queue: {anon:?}");
    let name = anon[0]["name"].as_str().unwrap();
    assert_eq!(name.len(), prefix.len() + 22, "base64url uuid suffix: {name}");
    assert_eq!((anon[0]["exclusive"].as_bool(), anon[0]["auto_delete"].as_bool()), (Some(true), Some(true)));
    assert_eq!(anon[0]["durable"], false);

    assert_eq!(bindings_of(&format!("{dest}.billing")), vec![(dest.clone(), "#".to_string())]);
    assert_eq!(bindings_of(name), vec![(dest.clone(), "#".to_string())]);
    assert_eq!(bindings_of(&format!("{dest}.billing.dlq")), vec![("DLX".to_string(), format!("{dest}.billing"))]);
    app.shutdown().await.unwrap();
    // The anonymous queue goes away with its consumer; the group queue stays.
    let queues = common::admin_list("queues");
    assert!(!queues.iter().any(|q| q["name"].as_str().unwrap().starts_with(&prefix)), "anonymous queue left behind");
    find(&queues, &format!("{dest}.billing"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_routing_follows_java_hash_codes() {
    let dest = common::unique("parts");
    let consumer = |index: u32| {
        format!(
            "instance-index = {index}\ninstance-count = 2\n[bindings.in]\ndestination = \"{dest}\"\ngroup = \"p\"\n"
        )
    };
    let (k0, k1) = (Keys::default(), Keys::default());
    let app0 = common::start(&consumer(0), vec![k0.sink("s", "in")]).await;
    let app1 = common::start(&consumer(1), vec![k1.sink("s", "in")]).await;
    let producer = format!(
        "[bindings.out]\ndestination = \"{dest}\"\n[bindings.out.producer]\npartition-key = \"/key\"\npartition-count = 2\n"
    );
    let pubr = common::start(&producer, Vec::new()).await;
    let keys: Vec<String> = (0..20).map(|i| format!("customer-{i}")).collect();
    for k in &keys {
        pubr.source::<Value>("out").unwrap().send(json!({"key": k})).await.unwrap();
    }
    let expected =
        |p: u32| -> HashSet<String> { keys.iter().filter(|k| naming::select_partition(k, 2) == p).cloned().collect() };
    let (e0, e1) = (expected(0), expected(1));
    assert!(!e0.is_empty() && !e1.is_empty(), "the keys should cover both partitions");
    k0.wait_for(e0.len(), "instance 0").await;
    k1.wait_for(e1.len(), "instance 1").await;
    assert_eq!(k0.snapshot().into_iter().collect::<HashSet<_>>(), e0);
    assert_eq!(k1.snapshot().into_iter().collect::<HashSet<_>>(), e1);

    let queues = common::admin_list("queues");
    find(&queues, &format!("{dest}.p-0"));
    find(&queues, &format!("{dest}.p-1"));
    assert_eq!(bindings_of(&format!("{dest}.p-0")), vec![(dest.clone(), format!("{dest}-0"))]);
    assert_eq!(bindings_of(&format!("{dest}.p-1")), vec![(dest.clone(), format!("{dest}-1"))]);
    pubr.shutdown().await.unwrap();
    app0.shutdown().await.unwrap();
    app1.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_ttl_and_max_length_options() {
    let dest = common::unique("quorum");
    let keys = Keys::default();
    let toml = format!(
        "[bindings.in]\ndestination = \"{dest}\"\ngroup = \"q\"\n[bindings.in.options]\nquorum = true\nttl = \"1m\"\nmax-length = 1000\n\
         [bindings.out]\ndestination = \"{dest}\"\n"
    );
    let app = common::start(&toml, vec![keys.sink("s", "in")]).await;
    app.source::<Value>("out").unwrap().send(json!({"key": "q"})).await.unwrap();
    keys.wait_for(1, "the quorum queue consumer").await;
    let queues = common::admin_list("queues");
    let q = find(&queues, &format!("{dest}.q"));
    assert_eq!(q["type"], "quorum", "{q}");
    assert_eq!(q["arguments"]["x-queue-type"], "quorum");
    assert_eq!(q["arguments"]["x-message-ttl"], 60_000);
    assert_eq!(q["arguments"]["x-max-length"], 1_000);
    assert_eq!(q["arguments"]["x-dead-letter-exchange"], "DLX");
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declare_false_uses_existing_infrastructure() {
    let dest = common::unique("legacy");
    let queue = naming::group_queue(&dest, "old");
    // Infrastructure someone else made: a direct exchange and a queue with its own binding.
    let conn = common::connect().await;
    let ch = conn.create_channel().await.unwrap();
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    ch.exchange_declare(dest.as_str().into(), lapin::ExchangeKind::Direct, durable, FieldTable::default())
        .await
        .unwrap();
    let qd = QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare(queue.as_str().into(), qd, FieldTable::default()).await.unwrap();
    ch.queue_bind(
        queue.as_str().into(),
        dest.as_str().into(),
        "legacy-key".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();

    let keys = Keys::default();
    let toml = format!(
        "[bindings.in]\ndestination = \"{dest}\"\ngroup = \"old\"\n[bindings.in.consumer]\ndead-letter = false\n[bindings.in.options]\ndeclare = false\n"
    );
    let app = common::start(&toml, vec![keys.sink("s", "in")]).await;
    let props = lapin::BasicProperties::default().with_content_type("application/json".into());
    ch.basic_publish(
        dest.as_str().into(),
        "legacy-key".into(),
        BasicPublishOptions::default(),
        br#"{"key":"legacy"}"#,
        props,
    )
    .await
    .unwrap();
    keys.wait_for(1, "the consumer of the existing queue").await;
    assert_eq!(keys.snapshot(), vec!["legacy".to_string()]);
    // Nothing was declared or bound by bindery: the queue keeps its one binding, arguments empty,
    // and no dead-letter queue appeared.
    assert_eq!(bindings_of(&queue), vec![(dest.clone(), "legacy-key".to_string())]);
    let queues = common::admin_list("queues");
    assert_eq!(find(&queues, &queue)["arguments"], json!({}));
    assert!(!queues.iter().any(|q| q["name"] == format!("{queue}.dlq")));
    app.shutdown().await.unwrap();

    // A queue that does not exist is a clear binding error, not a silent declaration.
    let binder = common::binder();
    let mut spec = ConsumerSpec::new("in", common::unique("missing"), Some("g".into()));
    spec.options.insert("declare".into(), json!(false));
    let (tx, _rx) = InputChannel::bounded(8);
    let Err(err) = binder.bind_consumer(&spec, tx).await else { panic!("binding to a missing queue must fail") };
    let text = err.to_string();
    assert!(
        text.contains("binding `in`") && text.contains(".g` does not exist") && text.contains("declare = false"),
        "{text}"
    );
    binder.shutdown().await.unwrap();
    let _ = conn.close(200, "done".into()).await;
}

#[test]
fn java_hash_codes_pick_springs_partitions() {
    // `"…".hashCode()` on a JVM, and Spring's abs(hash) % count.
    assert_eq!(naming::java_string_hash("hello"), 99_162_322);
    assert_eq!(naming::java_string_hash("Hello, World!"), 1_498_789_909);
    assert_eq!(naming::java_string_hash("polygenelubricants"), i32::MIN);
    assert_eq!(naming::select_partition("hello", 3), 99_162_322 % 3);
    assert_eq!(naming::select_partition("polygenelubricants", 7), 0);
}

#[tokio::test]
async fn unknown_binding_option_is_refused_naming_the_key() {
    let toml = "[bindings.in]\ndestination = \"x\"\ngroup = \"g\"\n[bindings.in.options]\nprefech = 10\n";
    let sink = Keys::default().sink("s", "in");
    let built = App::builder()
        .registered_handlers(false)
        .binder("rabbit", Arc::new(common::binder()))
        .override_binder("rabbit")
        .config(Config::from_toml_str(toml).unwrap())
        .handler(sink)
        .build();
    let Err(err) = built else { panic!("unknown option must be refused") };
    assert!(err.to_string().contains("bindings.in.options.prefech"), "{err}");
}
