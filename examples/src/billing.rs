//! The quick start's handlers: orders → [`bill`] (processor) → invoices → [`audit`] (sink).
//!
//! Binding names are `orders` and `invoices`; `examples/bindery.toml` maps them to the
//! destinations `orders.v1` and `invoices.v1`, gives `orders` the group `billing` and three
//! attempts, and keys invoices by order. `tests/billing.rs` runs both handlers on
//! `bindery_memory::TestApp`.

use std::time::Duration;

use bindery::prelude::*;

use crate::Counter;

/// An order to bill.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Order number.
    pub id: u64,
    /// Who ordered.
    pub customer: String,
    /// Net amount in cents.
    pub cents: u64,
}

/// The invoice for one order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    /// The order's number.
    pub order: u64,
    /// Amount with tax, in cents.
    pub cents: u64,
}

/// Bills an order: 20% tax on top. An order of zero cents is an error, so it is retried and
/// then dead-lettered.
#[bindery::processor(input = "orders", output = "invoices")]
pub async fn bill(order: Order) -> Result<Invoice, HandlerError> {
    if order.cents == 0 {
        return Err(HandlerError::new(format!("order {} has nothing to bill", order.id)));
    }
    let invoice = Invoice { order: order.id, cents: order.cents * 120 / 100 };
    println!("bill:  order {} for {} -> invoice of {} cents", order.id, order.customer, invoice.cents);
    Ok(invoice)
}

/// Records every invoice with its correlation id.
#[bindery::sink(input = "invoices", group = "audit")]
pub async fn audit(msg: Message<Invoice>) -> anyhow::Result<()> {
    let correlation = msg.headers().correlation_id().unwrap_or("-").to_string();
    let invoice = msg.into_payload();
    println!("audit: invoice for order {} ({} cents), correlation {correlation}", invoice.order, invoice.cents);
    AUDITED.add(1);
    Ok(())
}

/// Invoices [`audit`] recorded in this process: the stand-in for an audit store.
static AUDITED: Counter = Counter::new();

/// How many invoices [`audit`] has recorded in this process.
pub fn audited() -> usize {
    AUDITED.get()
}

/// Waits until [`audit`] has recorded `n` invoices in this process; an error after `timeout`.
pub async fn wait_until_audited(n: usize, timeout: Duration) -> anyhow::Result<()> {
    AUDITED.wait_for(n, timeout).await
}
