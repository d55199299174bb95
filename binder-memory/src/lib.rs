//! # bindery-memory
//!
//! The in-process binder for bindery, and [`TestApp`], the harness that runs your handlers on
//! it in unit tests. It keeps every promise the broker binders keep — groups, partitions and
//! per-key order, redelivery of unacknowledged messages, retry and dead letters — so a test
//! that passes here means the same on Kafka or RabbitMQ.
//!
//! ```
//! use bindery::prelude::*;
//! use bindery_memory::TestApp;
//!
//! #[derive(Serialize, Deserialize)]
//! struct Order { id: u64, cents: u64 }
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! struct Invoice { order: u64, cents: u64 }
//!
//! #[bindery::processor(input = "doc-orders", output = "doc-invoices")]
//! async fn bill(order: Order) -> Invoice {
//!     Invoice { order: order.id, cents: order.cents + 100 }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> bindery::Result<()> {
//! let app = TestApp::start().await?;
//! app.input("doc-orders").send_json(&Order { id: 1, cents: 900 }).await?;
//! let invoice: Invoice = app.output("doc-invoices").recv_json().await?;
//! assert_eq!(invoice, Invoice { order: 1, cents: 1000 });
//! app.shutdown().await
//! # }
//! ```

mod binder;
mod broker;
mod config;
mod consumer;
pub mod naming;
mod producer;
mod testing;

pub use binder::{MemoryBinder, shared_broker};
pub use broker::{Faults, MemoryBroker};
pub use config::MemoryOptions;
pub use testing::{Input, Output, TestApp, TestAppBuilder};
