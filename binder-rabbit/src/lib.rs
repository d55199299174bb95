//! # bindery-rabbit
//!
//! The RabbitMQ binder for bindery: binder type `rabbit`, on [`lapin`](https://docs.rs/lapin)
//! (AMQP 0-9-1). It declares exchanges and queues exactly as Spring Cloud Stream's RabbitMQ
//! binder does, so a bindery service can join an existing Spring system on the same broker.
//!
//! ## Quick start
//!
//! The handlers are the same as on any other binder; one config line picks RabbitMQ:
//!
//! ```toml
//! default-binder = "mq"            # was "memory"
//!
//! [binders.mq]
//! type = "rabbit"
//! uri = "amqp://guest:guest@127.0.0.1:5672/%2f"
//!
//! [bindings.bill-in-0]
//! destination = "orders"
//! group = "billing"
//! ```
//!
//! ```no_run
//! use bindery::prelude::*;
//! use bindery_rabbit as _; // links the `rabbit` binder type into the program
//!
//! #[derive(Serialize, Deserialize)]
//! struct Order { id: u64, cents: u64 }
//! #[derive(Serialize, Deserialize)]
//! struct Invoice { order: u64, cents: u64 }
//!
//! #[bindery::processor(input = "orders", output = "invoices")]
//! async fn bill(order: Order) -> Result<Invoice, bindery::HandlerError> {
//!     Ok(Invoice { order: order.id, cents: order.cents })
//! }
//!
//! #[tokio::main]
//! async fn main() -> bindery::Result<()> {
//!     bindery::App::from_config("bindery.toml")?.run().await
//! }
//! ```
//!
//! ## Topology (Spring Cloud Stream's defaults)
//!
//! | bindery | RabbitMQ |
//! |---|---|
//! | destination `orders` | durable topic exchange `orders` |
//! | group `billing` | durable queue `orders.billing`, bound with `#`, `x-dead-letter-exchange=DLX`, `x-dead-letter-routing-key=orders.billing` |
//! | no group | exclusive auto-delete queue `orders.anonymous.<base64url uuid>` |
//! | `partition-count = n` | routing key `orders-<abs(key.hashCode()) % n>` |
//! | `instance-count > 1` | queue `orders.billing-<instance-index>` bound with `orders-<instance-index>` |
//! | dead letters | direct exchange `DLX`, durable queue `orders.billing.dlq` bound with `orders.billing` |
//!
//! See [`naming`] for the names, [`RabbitOptions`] for the binder's settings and
//! [`BindingOptions`] for `[bindings.<name>.options]` (quorum queues, TTL, max length,
//! `declare = false` for existing infrastructure).
//!
//! ## Delivery
//!
//! Producers publish with publisher confirms, many in flight; a send's confirmation resolves
//! on the broker's ack. Consumers acknowledge manually, only after the runtime settled a
//! delivery (handler done and outputs confirmed). After a lost connection the binder reconnects
//! with backoff, re-declares, resumes consuming and republishes unconfirmed messages; the broker
//! redelivers unacknowledged deliveries. Health is down in between.

pub mod amqp;
mod binder;
mod config;
mod connection;
mod consumer;
pub mod naming;
mod producer;
mod topology;

pub use binder::RabbitBinder;
pub use config::{BindingOptions, ExchangeType, RabbitOptions, SecretUri};
