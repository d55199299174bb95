//! Unit tests of the quick start's handlers (`bindery_examples::billing`) on the memory binder.
//!
//! `TestApp::start()` runs every registered handler — here `bill` and `audit` — with
//! `./bindery.toml`, which under `cargo test` is `examples/bindery.toml`: so inputs and outputs
//! are addressed by the destinations it names (`orders.v1`, `invoices.v1`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bindery::Message;
use bindery_examples::billing::{Invoice, Order};
use bindery_memory::TestApp;

fn order(id: u64, cents: u64) -> Order {
    Order { id, customer: "acme".into(), cents }
}

#[tokio::test]
async fn an_order_is_billed() -> anyhow::Result<()> {
    let app = TestApp::start().await?;
    app.input("orders.v1").send_json(&order(1, 1_000)).await?;
    let inv: Invoice = app.output("invoices.v1").recv_json().await?;
    assert_eq!(inv, Invoice { order: 1, cents: 1_200 });
    assert!(app.dead_letters("orders.v1", "billing").is_empty());
    app.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn invoices_are_keyed_by_order() -> anyhow::Result<()> {
    let app = TestApp::start().await?;
    app.input("orders.v1").send_json(&order(42, 500)).await?;
    let inv = app.output("invoices.v1").recv().await?;
    // `partition-key = "/order"` in bindery.toml.
    assert_eq!(inv.headers().key(), Some(&b"42"[..]));
    app.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_zero_cents_order_is_retried_then_dead_lettered() -> anyhow::Result<()> {
    let app = TestApp::start().await?;
    app.input("orders.v1").send_json(&order(7, 0)).await?;

    // Wait for the dead letter (three attempts, 100ms then 200ms apart), then inspect it.
    let dlq = bindery_memory::naming::dead_letter_topic("orders.v1", "billing");
    app.output(&dlq).recv().await?;
    let dead = app.dead_letters("orders.v1", "billing");
    assert_eq!(dead.len(), 1);
    let headers = dead[0].headers();
    assert_eq!(headers.get_str("x-original-destination"), Some("orders.v1"));
    assert_eq!(headers.get_str("x-exception-kind"), Some("handler"));
    assert_eq!(headers.get_str("x-exception-message"), Some("order 7 has nothing to bill"));
    assert_eq!(headers.delivery_attempt(), Some(3)); // max-attempts = 3
    let payload: Order = serde_json::from_slice(dead[0].payload())?;
    assert_eq!(payload, order(7, 0));
    assert!(app.output("invoices.v1").all().is_empty(), "a failed order produces no invoice");
    app.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn an_undecodable_order_goes_straight_to_the_dead_letter() -> anyhow::Result<()> {
    let app = TestApp::start().await?;
    let raw = Message::new(bindery::Bytes::from_static(b"{not json")).with_content_type("application/json");
    app.input("orders.v1").send_raw(raw).await?;
    app.input("orders.v1").send_json(&order(2, 100)).await?;

    // The consumer keeps going: the next order is billed.
    let inv: Invoice = app.output("invoices.v1").recv_json().await?;
    assert_eq!(inv.order, 2);
    let dead = app.dead_letters("orders.v1", "billing");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].headers().get_str("x-exception-kind"), Some("decode"));
    assert_eq!(dead[0].headers().delivery_attempt(), Some(1), "bad input is not retried");
    app.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn the_correlation_id_follows_the_order() -> anyhow::Result<()> {
    let app = TestApp::start().await?;
    let orders = app.input("orders.v1");
    let invoices = app.output("invoices.v1");

    // An inbound `correlationId` is copied onto the invoice…
    orders.send_message(Message::new(order(1, 100)).with_correlation_id("checkout-42")).await?;
    let inv = invoices.recv_message::<Invoice>().await?;
    assert_eq!(inv.headers().correlation_id(), Some("checkout-42"));

    // …and without one, the order's `id` becomes the invoice's correlation id.
    orders.send_message(Message::new(order(2, 100)).with_header("id", "order-message-2")).await?;
    let inv = invoices.recv_message::<Invoice>().await?;
    assert_eq!(inv.headers().correlation_id(), Some("order-message-2"));
    app.shutdown().await?;
    Ok(())
}
