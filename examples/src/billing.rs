//! The quick start's handlers: orders → [`bill`] (processor) → invoices → [`audit`] (sink).
//!
//! Binding names are `orders` and `invoices`; `examples/bindery.toml` maps them to the
//! destinations `orders.v1` and `invoices.v1`, gives `orders` the group `billing` and three
//! attempts, and keys invoices by order. `tests/billing.rs` runs both handlers on
//! `bindery_memory::TestApp`:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! use bindery_examples::billing::{Invoice, Order};
//!
//! let app = bindery_memory::TestApp::start().await?; // `bill` and `audit`, with ./bindery.toml
//! app.input("orders.v1").send_json(&Order { id: 9, customer: "acme".into(), cents: 250 }).await?;
//! let invoice = app.output("invoices.v1").recv_message::<Invoice>().await?;
//! assert_eq!(*invoice.payload(), Invoice { order: 9, cents: 300 });
//! assert_eq!(invoice.headers().key(), Some(&b"9"[..])); // partition-key = "/order"
//! app.shutdown().await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use bindery::prelude::*;

use crate::Counter;

/// An order to bill.
///
/// ```
/// use bindery_examples::billing::Order;
/// let order: Order = serde_json::from_str(r#"{"id":1,"customer":"acme","cents":1000}"#).unwrap();
/// assert_eq!(order, Order { id: 1, customer: "acme".into(), cents: 1000 });
/// ```
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
///
/// ```
/// use bindery_examples::billing::Invoice;
/// let json = serde_json::to_string(&Invoice { order: 1, cents: 1200 }).unwrap();
/// assert_eq!(json, r#"{"order":1,"cents":1200}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    /// The order's number.
    pub order: u64,
    /// Amount with tax, in cents.
    pub cents: u64,
}

/// Bills an order: 20% tax on top. An order of zero cents is an error, so it is retried and
/// then dead-lettered.
///
/// The attribute leaves the function callable, so it can be unit-tested directly:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use bindery_examples::billing::{Invoice, Order, bill};
/// let invoice = bill(Order { id: 1, customer: "acme".into(), cents: 1000 }).await.unwrap();
/// assert_eq!(invoice, Invoice { order: 1, cents: 1200 });
/// assert!(bill(Order { id: 2, customer: "acme".into(), cents: 0 }).await.is_err());
/// # }
/// ```
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
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> anyhow::Result<()> {
/// use bindery_examples::billing::{Invoice, audit, audited};
/// let before = audited();
/// audit(bindery::Message::new(Invoice { order: 1, cents: 1200 }).with_correlation_id("c-1")).await?;
/// assert!(audited() > before);
/// # Ok(()) }
/// ```
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
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> anyhow::Result<()> {
/// use bindery_examples::billing::{Invoice, audit, audited};
/// let before = audited();
/// for order in 1..=3 {
///     audit(bindery::Message::new(Invoice { order, cents: 100 })).await?;
/// }
/// assert!(audited() >= before + 3); // counted for the whole process
/// # Ok(()) }
/// ```
pub fn audited() -> usize {
    AUDITED.get()
}

/// Waits until [`audit`] has recorded `n` invoices in this process; an error after `timeout`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> anyhow::Result<()> {
/// use bindery_examples::billing::{Order, audited, wait_until_audited};
/// let app = bindery_memory::TestApp::start().await?; // `bill` and `audit` with ./bindery.toml
/// let before = audited();
/// app.input("orders.v1").send_json(&Order { id: 3, customer: "acme".into(), cents: 500 }).await?;
/// wait_until_audited(before + 1, std::time::Duration::from_secs(5)).await?; // billed, then audited
/// app.shutdown().await?;
/// # Ok(()) }
/// ```
pub async fn wait_until_audited(n: usize, timeout: Duration) -> anyhow::Result<()> {
    AUDITED.wait_for(n, timeout).await
}
