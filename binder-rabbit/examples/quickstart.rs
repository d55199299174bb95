//! The quick start on RabbitMQ: the same `bill` (processor) and `audit` (sink) handlers as
//! `cargo run -p bindery-examples --bin quickstart`, from `bindery_examples::billing`, with
//! `default-binder = "rabbit"` in `binder-rabbit/examples/bindery.toml` — the one changed line.
//!
//! `scripts/rabbitmq start`, then `cargo run -p bindery-rabbit --example quickstart`.
//! `BINDERY_RABBIT_URI` points it at another broker.

use std::sync::Arc;
use std::time::Duration;

use bindery_examples::billing::{self, Order};
use bindery_rabbit::{RabbitBinder, RabbitOptions};

const ORDERS: u64 = 5;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bindery_examples::init_logging();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/bindery.toml");
    let mut builder = bindery::App::builder().config(bindery::Config::load(path)?);
    if let Ok(uri) = std::env::var("BINDERY_RABBIT_URI") {
        // The `rabbit` binder reference, pointed at another broker.
        builder = builder.binder("rabbit", Arc::new(RabbitBinder::new(RabbitOptions::new(uri))?));
    }
    let app = builder.build()?.start().await?;
    println!("quickstart: on RabbitMQ, config {path}");

    let before = billing::audited();
    let orders = app.source::<Order>("orders")?;
    for id in 1..=ORDERS {
        orders.send(Order { id, customer: format!("customer-{}", id % 2), cents: 1_000 * id }).await?;
    }
    println!("quickstart: published {ORDERS} orders");

    billing::wait_until_audited(before + ORDERS as usize, Duration::from_secs(30)).await?;
    app.shutdown().await?;
    println!("quickstart: {ORDERS} orders billed and audited through RabbitMQ; shut down cleanly");
    Ok(())
}
