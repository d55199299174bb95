//! A processor and a sink on Kafka, configured by `kafka-pipeline.toml`:
//! orders → `bill` (processor, group `billing`) → invoices → `audit` (sink, group `audit`).
//!
//! `cargo run -p bindery-kafka --example kafka_pipeline` against the broker at
//! `KAFKA_BROKERS` (default 127.0.0.1:9092; `scripts/tansu start` runs one). It
//! publishes a batch of orders, waits until every invoice was audited, and exits 0.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bindery::prelude::*;
use tokio::sync::Notify;

// Links the `kafka` binder type, which the config names.
use bindery_kafka as _;

#[derive(Debug, Serialize, Deserialize)]
struct Order {
    run: String,
    id: u64,
    customer: String,
    cents: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Invoice {
    run: String,
    order: u64,
    cents: u64,
}

const ORDERS: u64 = 10;

/// This run's id: the topics outlive runs, so handlers count only this run's messages.
static RUN: OnceLock<String> = OnceLock::new();
static AUDITED: Mutex<Option<HashSet<u64>>> = Mutex::new(None);
static CHANGED: Notify = Notify::const_new();

#[bindery::processor(input = "orders", output = "invoices", group = "billing")]
async fn bill(order: Order) -> Invoice {
    Invoice { run: order.run, order: order.id, cents: order.cents + order.cents / 5 }
}

#[bindery::sink(input = "invoices", group = "audit")]
async fn audit(invoice: Message<Invoice>) {
    let correlation = invoice.headers().correlation_id().unwrap_or("-").to_string();
    let invoice = invoice.into_payload();
    if Some(&invoice.run) != RUN.get() {
        return; // an earlier run's invoice
    }
    println!("audit: invoice for order {} over {} cents (correlation {correlation})", invoice.order, invoice.cents);
    if let Ok(mut seen) = AUDITED.lock() {
        seen.get_or_insert_with(HashSet::new).insert(invoice.order);
    }
    CHANGED.notify_waiters();
}

fn audited() -> usize {
    AUDITED.lock().map(|s| s.as_ref().map_or(0, HashSet::len)).unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let run = RUN.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()).clone();
    let brokers = std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/kafka-pipeline.toml");
    let config =
        bindery::Config::load_with_env(path, [("BINDERY_BINDERS__MAIN__BROKERS".to_string(), brokers.clone())])?;
    let app = bindery::App::builder().config(config).build()?.start().await?;
    println!("kafka_pipeline: run {run} on {brokers}");

    let orders = app.source::<Order>("orders")?;
    for id in 1..=ORDERS {
        let order = Order { run: run.clone(), id, customer: format!("customer-{}", id % 3), cents: 1_000 * id };
        orders.send(order).await?;
    }
    println!("kafka_pipeline: published {ORDERS} orders");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let changed = CHANGED.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if audited() as u64 >= ORDERS {
            break;
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            anyhow::bail!("only {} of {ORDERS} invoices audited within 60s", audited());
        }
    }
    app.shutdown().await?;
    println!("kafka_pipeline: {ORDERS} orders billed and audited; shut down cleanly");
    Ok(())
}
