//! Interop with a client nobody here wrote: Python `pika` (pinned in
//! `scripts/requirements-interop.txt`) publishes to the exchange a bindery sink consumes, and
//! reads from a queue a bindery source feeds.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bindery::{Context, Handler, HandlerError, Message};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Notify;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Order {
    id: u64,
    customer: String,
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("interop").join(name)
}

fn python(args: &[&str]) -> Command {
    let mut c = Command::new("python3");
    c.args(args);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pika_publishes_to_a_bindery_sink() {
    common::require_broker();
    let dest = common::unique("interop-in");
    let got: Arc<Mutex<Vec<Message<Order>>>> = Arc::default();
    let changed = Arc::new(Notify::new());
    let (g, c) = (got.clone(), changed.clone());
    let sink = Handler::sink("orders", move |m: Message<Order>, _ctx: Context| {
        let (g, c) = (g.clone(), c.clone());
        async move {
            g.lock().unwrap().push(m);
            c.notify_waiters();
            Ok::<_, HandlerError>(())
        }
    })
    .input("in");
    let toml = format!("[bindings.in]\ndestination = \"{dest}\"\ngroup = \"audit\"\n");
    let app = common::start_on(common::binder(), &toml, vec![sink]).await;

    // Spring's routing key for a non-partitioned destination is the destination itself.
    let out = python(&[script("publish.py").to_str().unwrap(), &common::uri(), &dest, &dest, "3"])
        .output()
        .expect("python3 must be installed (with pika: pip install -r scripts/requirements-interop.txt)");
    assert!(
        out.status.success(),
        "publish.py failed (is pika installed? pip install -r scripts/requirements-interop.txt):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let notified = changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if got.lock().unwrap().len() >= 3 {
            break;
        }
        assert!(tokio::time::timeout_at(deadline, notified).await.is_ok(), "the sink did not get pika's 3 messages");
    }
    let got = std::mem::take(&mut *got.lock().unwrap());
    let mut ids: Vec<u64> = got.iter().map(|m| m.payload().id).collect();
    ids.sort_unstable();
    assert_eq!(ids, [0, 1, 2]);
    for m in got.iter() {
        let h = m.headers();
        let id = m.payload().id;
        assert_eq!(m.payload().customer, format!("c-{id}"));
        assert_eq!(h.content_type(), Some("application/json"), "{h:?}");
        assert_eq!(h.get_str("tenant"), Some("acme"), "{h:?}");
        assert_eq!(h.get_str("x-origin"), Some("pika"), "{h:?}");
        assert_eq!(h.get("x-bin").map(|v| v.as_bytes()), Some(&[0u8, 255][..]), "{h:?}");
        assert_eq!(h.correlation_id(), Some(format!("pika-{id}").as_str()), "{h:?}");
    }
    app.shutdown().await.unwrap();
}

async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    let line = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await;
    line.ok().flatten().expect("consume.py printed nothing within 30s (is pika installed?)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pika_reads_what_a_bindery_source_publishes() {
    common::require_broker();
    let dest = common::unique("interop-out");
    let queue = format!("{dest}.pika");
    let mut child = python(&[script("consume.py").to_str().unwrap(), &common::uri(), &dest, &queue, "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 must be installed (with pika: pip install -r scripts/requirements-interop.txt)");
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    assert_eq!(next(&mut rx).await, "READY");

    let toml = format!("[bindings.out]\ndestination = \"{dest}\"\n");
    let app = common::start_on(common::binder(), &toml, vec![]).await;
    let source = app.source::<Order>("out").unwrap();
    source
        .send_message(
            Message::new(Order { id: 1, customer: "c-1".into() })
                .with_header("tenant", "acme")
                .with_header("x-bin", vec![0u8, 255])
                .with_correlation_id("conv-1"),
        )
        .await
        .unwrap();
    source.send(Order { id: 2, customer: "c-2".into() }).await.unwrap();

    let first: Value = serde_json::from_str(&next(&mut rx).await).unwrap();
    let second: Value = serde_json::from_str(&next(&mut rx).await).unwrap();
    assert!(child.wait().unwrap().success(), "consume.py failed");
    let body: Order = serde_json::from_str(first["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, Order { id: 1, customer: "c-1".into() });
    assert_eq!(first["content_type"], "application/json", "{first}");
    assert_eq!(first["delivery_mode"], 2, "persistent by default: {first}");
    let h = &first["headers"];
    assert_eq!(h["tenant"], "acme", "{first}");
    assert_eq!(h["x-bin"], json!({"hex": "00ff"}), "{first}");
    assert_eq!(h["correlationId"], "conv-1", "{first}");
    assert!(h["id"].as_str().is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()), "a uuid id header: {first}");
    assert!(h.get("contentType").is_none(), "contentType travels as the AMQP property only: {first}");
    let body: Order = serde_json::from_str(second["body"].as_str().unwrap()).unwrap();
    assert_eq!(body.id, 2);
    app.shutdown().await.unwrap();
}
