//! A password in the URI never reaches errors, health details or logs, even when the broker
//! refuses it.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bindery::Binder;
use bindery::binder::ProducerSpec;
use bindery_rabbit::{RabbitBinder, RabbitOptions};

const SECRET: &str = "Wr0ngS3cretPassw0rd";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_password_is_never_shown() {
    common::require_broker();
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    // The local broker's address with the wrong password.
    let good: lapin::uri::AMQPUri = common::uri().parse().unwrap();
    let uri = format!("amqp://guest:{SECRET}@{}:{}/%2f", good.authority.host, good.authority.port);
    let mut options = RabbitOptions::new(uri);
    options.connect_timeout = Duration::from_secs(2);
    options.reconnect_max = Duration::from_millis(200);
    let binder = RabbitBinder::new(options).unwrap();
    assert!(!format!("{binder:?}").contains(SECRET));

    let Err(err) = binder.bind_producer(&ProducerSpec::output("out", "creds")).await else {
        panic!("a wrong password must not connect");
    };
    let health = binder.health();
    binder.shutdown().await.unwrap();
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();

    assert!(err.to_string().contains("guest:***@"), "the error names the broker, redacted: {err}");
    assert!(!err.to_string().contains(SECRET), "{err}");
    assert!(!health.is_up());
    assert!(!health.detail().contains(SECRET), "{}", health.detail());
    assert!(logs.contains("cannot connect to RabbitMQ"), "the refusal is logged: {logs}");
    assert!(!logs.contains(SECRET), "the password leaked into the logs:\n{logs}");
}
