//! A keyed entity stream with a tombstone (a compacted-topic style "customer" stream).
//!
//! Upserts are keyed by customer id; deleting a customer publishes a record with that key and
//! a null value (a tombstone). The sink takes `Message<Option<Customer>>`: `Some` upserts its
//! view, `None` removes the key.
//!
//! `cargo run -p bindery-kafka --example entity_tombstones` against `KAFKA_BROKERS`
//! (default 127.0.0.1:9092); exits 0 once the view shows the deletion.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bindery::prelude::*;
use tokio::sync::Notify;

use bindery_kafka as _;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Customer {
    name: String,
    tier: String,
}

const CONFIG: &str = r#"
default-binder = "kafka"

[binders.kafka]
type = "kafka"                      # brokers from KAFKA_BROKERS (default 127.0.0.1:9092)
replication-factor = 1

[bindings.customers]
destination = "bindery-example.customers"
"#;

static RUN: OnceLock<String> = OnceLock::new();
static VIEW: Mutex<BTreeMap<String, Customer>> = Mutex::new(BTreeMap::new());
static DELETED: Mutex<Vec<String>> = Mutex::new(Vec::new());
static CHANGED: Notify = Notify::const_new();

#[bindery::sink(input = "customers", group = "customer-view")]
async fn view(msg: Message<Option<Customer>>) {
    let Some(key) = msg.headers().key().and_then(|k| std::str::from_utf8(k).ok()).map(str::to_string) else {
        return; // entity streams are keyed
    };
    let Some(run) = RUN.get() else { return };
    if !key.starts_with(run.as_str()) {
        return; // an earlier run's entity
    }
    match msg.into_payload() {
        Some(customer) => {
            println!("view: upsert {key} = {customer:?}");
            if let Ok(mut v) = VIEW.lock() {
                v.insert(key, customer);
            }
        }
        None => {
            println!("view: tombstone {key}: removed");
            if let Ok(mut v) = VIEW.lock() {
                v.remove(&key);
            }
            if let Ok(mut d) = DELETED.lock() {
                d.push(key);
            }
        }
    }
    CHANGED.notify_waiters();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let run = RUN.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()).clone();
    let brokers = std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let config = bindery::Config::from_toml_str_with_env(
        CONFIG,
        [("BINDERY_BINDERS__KAFKA__BROKERS".to_string(), brokers.clone())],
    )?;
    let app = bindery::App::builder().config(config).build()?.start().await?;
    println!("entity_tombstones: run {run} on {brokers}");

    let (ada, bob) = (format!("{run}-ada"), format!("{run}-bob"));
    let customers = app.source::<Option<Customer>>("customers")?;
    let upsert = |name: &str, tier: &str| Some(Customer { name: name.into(), tier: tier.into() });
    customers.send_message(Message::new(upsert("Ada", "gold")).with_key(ada.clone())).await?;
    customers.send_message(Message::new(upsert("Bob", "silver")).with_key(bob.clone())).await?;
    customers.send_message(Message::new(upsert("Bob", "gold")).with_key(bob.clone())).await?;
    // Ada leaves: a keyed null is a tombstone on Kafka.
    customers.send_message(Message::new(None).with_key(ada.clone())).await?;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let changed = CHANGED.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let done = DELETED.lock().map(|d| d.contains(&ada)).unwrap_or(false)
            && VIEW.lock().map(|v| v.get(&bob).is_some_and(|c| c.tier == "gold")).unwrap_or(false);
        if done {
            break;
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            anyhow::bail!("the view never showed the deletion within 60s: {:?}", VIEW.lock().map(|v| v.clone()));
        }
    }
    let view = VIEW.lock().map(|v| v.clone()).unwrap_or_default();
    anyhow::ensure!(!view.contains_key(&ada) && view.len() == 1, "unexpected view {view:?}");
    app.shutdown().await?;
    println!("entity_tombstones: view after the tombstone: {view:?}");
    Ok(())
}
