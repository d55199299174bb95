//! Every argument and return form the handler macros accept.

use bindery::prelude::*;

#[derive(Serialize, Deserialize)]
struct Order {
    id: u64,
    cents: u64,
}

#[derive(Serialize, Deserialize)]
struct Invoice {
    order: u64,
    cents: u64,
}

fn invoice(order: &Order) -> Invoice {
    Invoice { order: order.id, cents: order.cents }
}

// ---- processors: argument forms ----

/// `T` in, `T` out.
#[bindery::processor(input = "orders", output = "invoices", group = "billing")]
async fn bill(order: Order) -> Invoice {
    invoice(&order)
}

/// `Message<T>` in, `Message<T>` out.
#[bindery::processor]
async fn bill_message(order: Message<Order>) -> Message<Invoice> {
    order.map(|o| invoice(&o))
}

/// `String` in, `Option<T>` out (a filter).
#[bindery::processor]
async fn parse_text(text: String) -> Option<u64> {
    text.trim().parse().ok()
}

/// `Bytes` in, `Vec<T>` out (a split).
#[bindery::processor]
async fn split_bytes(bytes: Bytes) -> Vec<String> {
    bytes.split(|b| *b == b',').map(|part| String::from_utf8_lossy(part).into_owned()).collect()
}

/// `Context` before a `Message<String>`, `Option<Message<T>>` out.
#[bindery::processor]
async fn shout(ctx: Context, text: Message<String>) -> Option<Message<String>> {
    let _ = ctx.correlation_id();
    (!text.payload().is_empty()).then(|| text.map(|t| t.to_uppercase()))
}

/// `Message<Bytes>` before a `Context`, `Vec<Message<T>>` out.
#[bindery::processor]
async fn bytes_len(raw: Message<Bytes>, ctx: Context) -> Vec<Message<usize>> {
    let _ = ctx.delivery_attempt();
    vec![raw.map(|b| b.len())]
}

/// `Result<T, HandlerError>` out.
#[bindery::processor]
async fn bill_checked(order: Order) -> Result<Invoice, HandlerError> {
    if order.cents == 0 {
        return Err(HandlerError::new("nothing to charge"));
    }
    Ok(invoice(&order))
}

/// `Result<Option<Message<T>>, E>` out, with full paths.
#[bindery::processor]
async fn bill_full_paths(
    order: bindery::Message<Order>,
    ctx: bindery::Context,
) -> std::result::Result<Option<bindery::Message<Invoice>>, bindery::HandlerError> {
    ctx.send("audit", order.payload())?;
    Ok(Some(order.map(|o| invoice(&o))))
}

/// `anyhow::Result<Vec<T>>` out.
#[bindery::processor]
async fn bill_anyhow(orders: Vec<Order>) -> anyhow::Result<Vec<Invoice>> {
    Ok(orders.iter().map(invoice).collect())
}

// ---- sinks ----

/// `()` out.
#[bindery::sink(input = "invoices", group = "audit")]
async fn audit(invoice: Invoice) {
    let _ = (invoice.order, invoice.cents);
}

/// `anyhow::Result<()>` out.
#[bindery::sink]
async fn audit_anyhow(invoice: Message<Invoice>) -> anyhow::Result<()> {
    anyhow::ensure!(invoice.payload().cents > 0, "free invoice");
    Ok(())
}

/// `Result<(), HandlerError>` out, with a `Context` after a `String`.
#[bindery::sink]
async fn audit_text(text: String, ctx: Context) -> Result<(), HandlerError> {
    ctx.send("audit-log", &text)?;
    Ok(())
}

/// Explicit `-> ()`, `Bytes` in.
#[bindery::sink]
async fn drop_bytes(bytes: Bytes) -> () {
    let _ = bytes.len();
}

// ---- sources ----

/// A source with an interval returning `T`.
#[bindery::source(output = "ticks", interval = "250ms")]
async fn tick() -> u64 {
    1
}

/// A source with the default interval returning `Option<T>`, taking a `Context`.
#[bindery::source]
async fn maybe_tick(ctx: Context) -> Option<Message<u64>> {
    let _ = ctx.handler_name();
    None
}

/// A fallible source returning `Result<Option<T>, E>`.
#[bindery::source(interval = "5m")]
async fn poll() -> Result<Option<Order>, HandlerError> {
    Ok(Some(Order { id: 1, cents: 100 }))
}

fn main() {}

// Byte payloads pass through unencoded.
#[bindery::processor(input = "bytes-echo-in", output = "bytes-echo-out")]
async fn echo_bytes(raw: Message<Bytes>) -> Vec<Message<Bytes>> {
    vec![raw]
}

#[bindery::processor(input = "bytes-plain-in", output = "bytes-plain-out")]
async fn bytes_plain(raw: Bytes) -> Result<Bytes, HandlerError> {
    Ok(raw)
}
