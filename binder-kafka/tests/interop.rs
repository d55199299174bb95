//! Interop with a Kafka client nobody here wrote: Python `confluent-kafka` (pinned in
//! `scripts/requirements-interop.txt`), against the real broker (`scripts/tansu start`).
//! Python or the module missing is a failure, never a skip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bindery::{App, Config, Context, Handler, HandlerError, Message};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    customer: String,
    cents: u64,
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop").join(name)
}

fn require_python() {
    let out = Command::new("python3")
        .args(["-c", "import confluent_kafka; print(confluent_kafka.version())"])
        .output()
        .unwrap_or_else(|e| panic!("python3 is required for the interop tests and could not run: {e}"));
    assert!(
        out.status.success(),
        "python3 cannot import confluent_kafka: install it with `pip install -r scripts/requirements-interop.txt`\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn python(args: Vec<String>) -> String {
    let out = tokio::task::spawn_blocking(move || Command::new("python3").args(&args).output())
        .await
        .unwrap()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python interop script failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_producer_to_bindery_sink() {
    require_python();
    let brokers = support::real_brokers();
    support::require_broker(&brokers);
    let topic = unique("interop-in");
    let seen: Arc<Mutex<Vec<Message<Option<Order>>>>> = Arc::default();
    let changed = Arc::new(Notify::new());
    let (s, c) = (seen.clone(), changed.clone());
    let sink = Handler::sink("orders", move |m: Message<Option<Order>>, _ctx: Context| {
        let (s, c) = (s.clone(), c.clone());
        async move {
            s.lock().unwrap().push(m);
            c.notify_waiters();
            Ok::<_, HandlerError>(())
        }
    })
    .input("orders-in");
    let toml = format!("[bindings.orders-in]\ndestination = \"{topic}\"\ngroup = \"interop\"\n");
    let app = App::builder()
        .registered_handlers(false)
        .binder("k", support::binder(&brokers))
        .override_binder("k")
        .config(Config::from_toml_str_with_env(&toml, []).unwrap())
        .handler(sink)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    python(vec![script("produce.py").display().to_string(), brokers.clone(), topic.clone()]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let wake = changed.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        if seen.lock().unwrap().len() >= 4 {
            break;
        }
        assert!(
            tokio::time::timeout_at(deadline, wake).await.is_ok(),
            "the sink got {} of 4 records",
            seen.lock().unwrap().len()
        );
    }
    let got = seen.lock().unwrap().clone();
    for (i, m) in got[..3].iter().enumerate() {
        let h = m.headers();
        assert_eq!(m.payload().as_ref().map(|o| o.id), Some(i as u64), "order preserved on one key");
        assert_eq!(h.key(), Some(&b"customer-7"[..]), "record key arrives as the key header");
        assert_eq!(h.content_type(), Some("application/json"));
        assert_eq!(h.correlation_id(), Some(format!("py-corr-{i}").as_str()));
        assert_eq!(h.get_str("x-origin"), Some("python ✓"));
    }
    assert_eq!(got[3].payload(), &None, "a tombstone reaches an Option<T> handler as None");
    assert_eq!(got[3].headers().get_str(bindery_kafka::naming::headers::TOMBSTONE), Some("true"));
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindery_source_to_python_consumer() {
    require_python();
    let brokers = support::real_brokers();
    support::require_broker(&brokers);
    let topic = unique("interop-out");
    let toml =
        format!("[bindings.out]\ndestination = \"{topic}\"\n[bindings.out.producer]\npartition-key = \"/customer\"\n");
    let app = App::builder()
        .registered_handlers(false)
        .binder("k", support::binder(&brokers))
        .override_binder("k")
        .config(Config::from_toml_str_with_env(&toml, []).unwrap())
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let out = app.source::<Order>("out").unwrap();
    out.send_message(
        Message::new(Order { id: 1, customer: "customer-9".into(), cents: 250 }).with_correlation_id("rust-corr-1"),
    )
    .await
    .unwrap();
    // An entity deleted: a keyed `null` goes out as a tombstone.
    app.source::<Option<Order>>("out").unwrap().send_message(Message::new(None).with_key("customer-9")).await.unwrap();
    let printed = python(vec![
        script("consume.py").display().to_string(),
        brokers.clone(),
        topic.clone(),
        "2".into(),
        "30".into(),
    ])
    .await;
    let records: Vec<serde_json::Value> = serde_json::from_str(printed.trim()).expect("consume.py prints JSON");
    let first = &records[0];
    assert_eq!(first["key"], "customer-9");
    assert_eq!(first["value"], serde_json::json!({"id": 1, "customer": "customer-9", "cents": 250}));
    assert_eq!(first["headers"]["contentType"], "application/json");
    assert_eq!(first["headers"]["correlationId"], "rust-corr-1");
    // Like Spring's Kafka header mapper: `id` and `timestamp` stay off the wire.
    assert!(first["headers"].get("id").is_none() && first["headers"].get("timestamp").is_none(), "{first}");
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let sent_ms = first["timestamp"].as_i64().unwrap_or_default();
    assert!((now_ms - 600_000..=now_ms).contains(&sent_ms), "the record's own timestamp is when it was sent: {first}");
    assert!(first["headers"].get("key").is_none(), "the key travels as the record key, not a header");
    let tomb = &records[1];
    assert_eq!(tomb["key"], "customer-9");
    assert!(tomb["value"].is_null(), "tombstone has a null value: {tomb}");
    app.shutdown().await.unwrap();
}
