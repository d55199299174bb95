//! Shared test support: the broker address, a loud failure when it is down, plain lapin
//! helpers that read what bindery wrote, and the management API through `rabbitmqadmin`.
#![allow(dead_code, unreachable_pub, clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use bindery::RawMessage;
use bindery_rabbit::{RabbitBinder, RabbitOptions};
use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};

/// `TEST_RABBIT_URI`, default the local node `scripts/rabbitmq start` runs.
pub fn uri() -> String {
    std::env::var("TEST_RABBIT_URI").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// The repository's `scripts/rabbitmq`.
pub fn broker_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("scripts").join("rabbitmq")
}

/// A plain lapin connection; panics with instructions when the broker is not there.
pub async fn connect() -> Connection {
    require_broker();
    let uri = uri();
    let attempt =
        tokio::time::timeout(Duration::from_secs(5), Connection::connect(&uri, ConnectionProperties::default()));
    match attempt.await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => panic!(
            "RabbitMQ is not reachable at {} ({e}). Start it with `scripts/rabbitmq start` \
             (or point TEST_RABBIT_URI at a broker).",
            redacted()
        ),
        Err(_) => {
            panic!("RabbitMQ did not answer at {} within 5s. Start it with `scripts/rabbitmq start`.", redacted())
        }
    }
}

/// Fails the test, saying what to do, when nothing listens at the broker's address.
pub fn require_broker() {
    let parsed: lapin::uri::AMQPUri = uri().parse().expect("TEST_RABBIT_URI is an amqp:// URI");
    let addr = format!("{}:{}", parsed.authority.host, parsed.authority.port);
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(&addr.as_str())
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(3)).is_ok());
    assert!(
        reachable,
        "RabbitMQ is not reachable at {} — start it with `scripts/rabbitmq start` \
         (or point TEST_RABBIT_URI at a broker). These tests never skip.",
        redacted()
    );
}

fn redacted() -> String {
    bindery_rabbit::SecretUri::new(uri()).redacted()
}

/// Options for the broker under test, with quick reconnection.
pub fn options() -> RabbitOptions {
    let mut o = RabbitOptions::new(uri());
    o.reconnect_max = Duration::from_secs(1);
    o
}

/// A fresh binder (its own connection) on the broker under test.
pub fn binder() -> RabbitBinder {
    RabbitBinder::new(options()).expect("valid test options")
}

/// Reads `expected` messages from `queue` (declared durable if missing), acking them, waiting
/// at most `timeout`.
pub async fn read_queue(queue: &str, expected: usize, timeout: Duration) -> bindery::Result<Vec<RawMessage>> {
    let conn = connect().await;
    let channel = conn.create_channel().await.map_err(|e| bindery::Error::broker(e.to_string()))?;
    channel
        .queue_declare(queue.into(), QueueDeclareOptions { durable: true, ..Default::default() }, FieldTable::default())
        .await
        .map_err(|e| bindery::Error::broker(e.to_string()))?;
    let mut consumer = channel
        .basic_consume(queue.into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .map_err(|e| bindery::Error::broker(e.to_string()))?;
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while out.len() < expected {
        match tokio::time::timeout_at(deadline, consumer.next()).await {
            Ok(Some(Ok(d))) => {
                let _ = d.acker.ack(BasicAckOptions::default()).await;
                out.push(bindery_rabbit::amqp::to_message(d.data, &d.properties));
            }
            Ok(other) => return Err(bindery::Error::broker(format!("consumer on {queue} ended: {other:?}"))),
            Err(_) => {
                return Err(bindery::Error::new(
                    bindery::ErrorKind::Timeout,
                    format!("{} of {expected} messages on {queue} within {timeout:?}", out.len()),
                ));
            }
        }
    }
    let _ = conn.close(200, "done".into()).await;
    Ok(out)
}

/// `rabbitmqadmin -f raw_json list <what>` as JSON (exchanges, queues, bindings).
pub fn admin_list(what: &str) -> Vec<serde_json::Value> {
    let out = std::process::Command::new(broker_script())
        .args(["admin", "-f", "raw_json", "list", what])
        .output()
        .expect("run scripts/rabbitmq admin");
    assert!(
        out.status.success(),
        "rabbitmqadmin failed ({}): {}. Is the broker running with the management plugin (`scripts/rabbitmq start`)?",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("rabbitmqadmin prints JSON")
}

/// A name no other run uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Starts an app from `toml` with `handlers` on `binder` (no registered handlers).
pub async fn start_on(binder: RabbitBinder, toml: &str, handlers: Vec<bindery::Handler>) -> bindery::RunningApp {
    let mut b = bindery::App::builder()
        .registered_handlers(false)
        .binder("rabbit", std::sync::Arc::new(binder))
        .override_binder("rabbit")
        .config(bindery::Config::from_toml_str(toml).unwrap());
    for h in handlers {
        b = b.handler(h);
    }
    b.build().unwrap().start().await.unwrap()
}

/// Starts an app on the local test broker (failing loudly when it is down).
pub async fn start(toml: &str, handlers: Vec<bindery::Handler>) -> bindery::RunningApp {
    require_broker();
    start_on(binder(), toml, handlers).await
}
