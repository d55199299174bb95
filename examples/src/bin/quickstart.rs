//! The quick start: orders → `bill` (processor) → invoices → `audit` (sink).
//!
//! `cargo run -p bindery-examples --bin quickstart` publishes a batch of orders, prints what
//! each handler did, and exits 0. Set `default-binder` in `examples/bindery.toml` (or
//! `BINDERY_DEFAULT_BINDER`) to run it on another broker.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bindery::prelude::*;
use tokio::sync::Notify;

// Link the binders this service may run on; config picks one.
use bindery_memory as _;

#[derive(Debug, Serialize, Deserialize)]
struct Order {
    id: u64,
    customer: String,
    cents: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Invoice {
    order: u64,
    cents: u64,
}

const ORDERS: u64 = 5;
static AUDITED: AtomicUsize = AtomicUsize::new(0);
static AUDIT_DONE: Notify = Notify::const_new();

/// Bills an order: 20% tax on top.
#[bindery::processor(input = "orders", output = "invoices")]
async fn bill(order: Order) -> Result<Invoice, HandlerError> {
    if order.cents == 0 {
        return Err(HandlerError::new(format!("order {} has nothing to bill", order.id)));
    }
    let invoice = Invoice { order: order.id, cents: order.cents * 120 / 100 };
    println!("bill:  order {} for {} -> invoice of {} cents", order.id, order.customer, invoice.cents);
    Ok(invoice)
}

/// Records every invoice.
#[bindery::sink(input = "invoices", group = "audit")]
async fn audit(msg: Message<Invoice>) -> anyhow::Result<()> {
    let correlation = msg.headers().correlation_id().unwrap_or("-").to_string();
    let invoice = msg.into_payload();
    println!("audit: invoice for order {} ({} cents), correlation {correlation}", invoice.order, invoice.cents);
    if AUDITED.fetch_add(1, Ordering::SeqCst) + 1 == ORDERS as usize {
        AUDIT_DONE.notify_one();
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bindery_examples::init_logging();
    let path =
        std::env::args().nth(1).unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/bindery.toml").to_string());
    let app = bindery::App::from_config(&path)?;
    println!("quickstart: default binder `{}`, config {path}", app.config().default_binder());
    let app = app.start().await?;

    let orders = app.source::<Order>("orders")?;
    for id in 1..=ORDERS {
        orders.send(Order { id, customer: format!("customer-{}", id % 2), cents: 1_000 * id }).await?;
    }
    println!("quickstart: published {ORDERS} orders");

    if tokio::time::timeout(Duration::from_secs(30), AUDIT_DONE.notified()).await.is_err() {
        anyhow::bail!("only {} of {ORDERS} invoices audited within 30s", AUDITED.load(Ordering::SeqCst));
    }
    app.shutdown().await?;
    println!("quickstart: {ORDERS} orders billed and audited; shut down cleanly");
    Ok(())
}
