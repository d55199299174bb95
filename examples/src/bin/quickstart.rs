//! The quick start: orders → `bill` (processor) → invoices → `audit` (sink), both from
//! `bindery_examples::billing`.
//!
//! `cargo run -p bindery-examples --bin quickstart` publishes a batch of orders, prints what
//! each handler did, and exits 0. Change `default-binder = "memory"` in `examples/bindery.toml`
//! to `"rabbit"` or `"kafka"` (or set `BINDERY_DEFAULT_BINDER=rabbit`) to run the same handlers
//! on RabbitMQ at `amqp://guest:guest@127.0.0.1:5672/%2f` or Kafka at `127.0.0.1:9092`, the
//! binders' defaults (`scripts/rabbitmq start` and `scripts/tansu start` run such brokers).

use std::time::Duration;

use bindery_examples::billing::{self, Order};

// Link the binders this service may run on; config picks one.
use bindery_kafka as _;
use bindery_memory as _;
use bindery_rabbit as _;

const ORDERS: u64 = 5;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bindery_examples::init_logging();
    let path =
        std::env::args().nth(1).unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/bindery.toml").to_string());
    // Every registered handler: in this binary, `billing::bill` and `billing::audit`.
    let app = bindery::App::from_config(&path)?;
    println!("quickstart: default binder `{}`, config {path}", app.config().default_binder());
    let app = app.start().await?;

    let orders = app.source::<Order>("orders")?;
    for id in 1..=ORDERS {
        orders.send(Order { id, customer: format!("customer-{}", id % 2), cents: 1_000 * id }).await?;
    }
    println!("quickstart: published {ORDERS} orders");

    billing::wait_until_audited(ORDERS as usize, Duration::from_secs(30)).await?;
    app.shutdown().await?;
    println!("quickstart: {ORDERS} orders billed and audited; shut down cleanly");
    Ok(())
}
