//! Retry with exponential backoff, then the dead letter.
//!
//! `charge` fails twice for payment 2 and then succeeds; it always fails for payment 3, which
//! is dead-lettered after `max-attempts`. A second sink reads the dead-letter destination
//! (`<destination>.<group>.dlq` on the memory binder) and prints the headers bindery added.
//!
//! `cargo run -p bindery-examples --bin retry_dead_letter`

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bindery::prelude::*;
use bindery_examples::{Counter, registered};

use bindery_memory as _;

const CONFIG: &str = r#"
[bindings.payments]
group = "ledger"                  # a group: failed messages get a dead letter

[bindings.payments.consumer]
max-attempts = 3                  # 1 try + 2 retries
backoff-initial = "100ms"         # then 200ms (multiplier 2.0), capped at backoff-max
backoff-multiplier = 2.0
backoff-max = "1s"

[bindings.failed-payments]
destination = "payments.ledger.dlq"  # the memory binder's name; Kafka's is error.payments.ledger
group = "ops"
"#;

#[derive(Debug, Serialize, Deserialize)]
struct Payment {
    id: u64,
    cents: u64,
}

static CHARGED: Counter = Counter::new();
static DEAD: Counter = Counter::new();

fn elapsed_ms() -> u128 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis()
}

/// Charges a payment through a flaky gateway.
#[bindery::sink(input = "payments")]
async fn charge(payment: Payment, ctx: Context) -> Result<(), HandlerError> {
    let attempt = ctx.delivery_attempt();
    let outcome = match payment.id {
        2 if attempt < 3 => Err(HandlerError::new("gateway timeout")),
        3 => Err(HandlerError::new("card declined")),
        _ => Ok(()),
    };
    let said = outcome.as_ref().map_or_else(|e| format!("failed: {e}"), |()| "charged".into());
    println!("charge: payment {} attempt {attempt} at t+{}ms -> {said}", payment.id, elapsed_ms());
    if outcome.is_ok() {
        CHARGED.add(1);
    }
    outcome
}

/// Reads the dead letters of `payments` for group `ledger`.
#[bindery::sink(input = "failed-payments")]
async fn report(msg: Message<Payment>) {
    println!("report: dead letter for payment {}:", msg.payload().id);
    for name in ["x-original-destination", "x-exception-kind", "x-exception-message", "deliveryAttempt"] {
        println!("report:   {name} = {}", msg.headers().get_str(name).unwrap_or("-"));
    }
    DEAD.add(1);
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bindery_examples::init_logging();
    let app = App::builder()
        .config(bindery::Config::from_toml_str(CONFIG)?)
        .registered_handlers(false)
        .handler(registered("charge")?)
        .handler(registered("report")?)
        .build()?
        .start()
        .await?;

    elapsed_ms(); // t = 0
    let payments = app.source::<Payment>("payments")?;
    for id in 1..=3 {
        payments.send(Payment { id, cents: 1_000 * id }).await?;
    }

    CHARGED.wait_for(2, Duration::from_secs(10)).await?;
    DEAD.wait_for(1, Duration::from_secs(10)).await?;
    app.shutdown().await?;
    println!("retry_dead_letter: 2 payments charged, 1 dead-lettered");
    Ok(())
}
