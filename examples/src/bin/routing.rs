//! Dynamic routing: a sink that picks each message's destination with `Context::send`.
//!
//! `route` sends every order to `orders.<region>`, and large orders to `orders.review` as
//! well. What a handler sends through its `Context` is published only if it succeeds, and its
//! input is acknowledged only once the broker confirmed every message sent.
//!
//! `cargo run -p bindery-examples --bin routing`

use std::time::Duration;

use bindery::prelude::*;
use bindery_examples::{Counter, registered};

use bindery_memory as _;

const CONFIG: &str = r#"
[bindings.orders]
group = "router"

# `route` sends to bindings `orders.eu` and `orders.us` (no section: the destination is the
# binding's name) and `review`:
[bindings.review]
destination = "orders.review"

# The warehouses and fraud review consume those destinations.
[bindings.eu]
destination = "orders.eu"
group = "warehouse-eu"
[bindings.us]
destination = "orders.us"
group = "warehouse-us"
[bindings.review-in]
destination = "orders.review"
group = "fraud"
"#;

#[derive(Debug, Serialize, Deserialize)]
struct Order {
    id: u64,
    region: String,
    cents: u64,
}

static DELIVERED: Counter = Counter::new();

/// Routes each order by its region; large ones also go to review.
#[bindery::sink(input = "orders")]
async fn route(order: Order, ctx: Context) -> Result<(), HandlerError> {
    let lane = format!("orders.{}", order.region); // any binding name, chosen per message
    ctx.send(&lane, &order)?;
    if order.cents >= 50_000 {
        ctx.send("review", &order)?;
    }
    println!("route:  order {} -> {lane}{}", order.id, if order.cents >= 50_000 { " + review" } else { "" });
    Ok(())
}

/// Ships European orders.
#[bindery::sink(input = "eu")]
async fn ship_eu(order: Order) {
    println!("ship_eu: order {} ({} cents)", order.id, order.cents);
    DELIVERED.add(1);
}

/// Ships American orders.
#[bindery::sink(input = "us")]
async fn ship_us(order: Order) {
    println!("ship_us: order {} ({} cents)", order.id, order.cents);
    DELIVERED.add(1);
}

/// Reviews large orders.
#[bindery::sink(input = "review-in")]
async fn review(order: Order) {
    println!("review: order {} ({} cents)", order.id, order.cents);
    DELIVERED.add(1);
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bindery_examples::init_logging();
    let mut builder = App::builder().config(bindery::Config::from_toml_str(CONFIG)?).registered_handlers(false);
    for name in ["route", "ship_eu", "ship_us", "review"] {
        builder = builder.handler(registered(name)?);
    }
    let app = builder.build()?.start().await?;

    let orders = app.source::<Order>("orders")?;
    let batch = [(1, "eu", 1_200), (2, "us", 80_000), (3, "eu", 65_000), (4, "us", 900)];
    for (id, region, cents) in batch {
        orders.send(Order { id, region: region.into(), cents }).await?;
    }

    DELIVERED.wait_for(batch.len() + 2, Duration::from_secs(10)).await?; // 4 shipped, 2 reviewed
    app.shutdown().await?;
    println!("routing: {} orders shipped by region, 2 sent to review", batch.len());
    Ok(())
}
