//! TLS end to end on the local node's AMQPS listener (127.0.0.1:5671), whose certificate is
//! signed by the throwaway CA `scripts/rabbitmq start` makes under `target/rabbitmq/tls/`:
//! an app bound over `amqps://` trusting that CA relays messages with their headers; the same
//! URI without the CA is refused with an error about the certificate; a missing or malformed
//! `tls-ca-file` is a configuration error naming the key and the path.
//!
//! `TEST_RABBITS_URI` (default `amqps://guest:guest@localhost:5671/%2f`) and `TEST_RABBIT_TLS_CA`
//! (default `<workspace>/target/rabbitmq/tls/ca.pem`; the client certificate and key are
//! `client.pem` and `client-key.pem` next to it) point the tests elsewhere. Nothing is skipped:
//! without the broker or the CA the tests fail, saying to run `scripts/rabbitmq start`.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bindery::binder::ProducerSpec;
use bindery::{App, Binder, Config, Context, Handler, HandlerError, Headers, Message};
use bindery_rabbit::{RabbitBinder, RabbitOptions};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

const MESSAGES: u64 = 200;

fn tls_uri() -> String {
    std::env::var("TEST_RABBITS_URI").unwrap_or_else(|_| "amqps://guest:guest@localhost:5671/%2f".into())
}

fn ca_file() -> PathBuf {
    std::env::var_os("TEST_RABBIT_TLS_CA").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("target").join("rabbitmq").join("tls").join("ca.pem")
    })
}

/// A file next to the CA (`client.pem`, `client-key.pem`).
fn tls_file(name: &str) -> PathBuf {
    ca_file().parent().expect("the CA path has a directory").join(name)
}

/// Fails the test, saying what to do, when the CA file or the TLS listener is missing.
fn require_tls_broker() {
    let ca = ca_file();
    assert!(
        ca.is_file(),
        "no CA certificate at {} — `scripts/rabbitmq start` makes it (or set TEST_RABBIT_TLS_CA). \
         These tests never skip.",
        ca.display()
    );
    let uri: lapin::uri::AMQPUri = tls_uri().parse().expect("TEST_RABBITS_URI is an amqps:// URI");
    let addr = format!("{}:{}", uri.authority.host, uri.authority.port);
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(&addr.as_str())
        .map(|addrs| {
            addrs.into_iter().any(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(3)).is_ok())
        })
        .unwrap_or(false);
    assert!(
        reachable,
        "nothing listens for AMQPS at {addr} — start the broker with `scripts/rabbitmq start` (it opens \
         127.0.0.1:5671 with a certificate from its own CA), or point TEST_RABBITS_URI at one. These tests never skip."
    );
}

/// Options for the TLS listener, trusting the script's CA.
fn tls_options(connection_name: &str) -> RabbitOptions {
    let mut o = RabbitOptions::new(tls_uri());
    o.tls_ca_file = Some(ca_file());
    o.connection_name = Some(connection_name.to_string());
    o.reconnect_max = Duration::from_secs(1);
    o
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Item {
    id: u64,
    text: String,
}

#[derive(Default)]
struct Seen {
    messages: Mutex<HashMap<u64, (Item, Headers)>>,
    changed: Notify,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processor_and_sink_round_trip_over_amqps_with_headers() {
    require_tls_broker();
    let (dest_in, dest_out) = (common::unique("tls-in"), common::unique("tls-out"));
    let connection_name = common::unique("bindery-tls-test");
    let seen = Arc::new(Seen::default());

    let relay = Handler::processor("relay", |m: Message<Item>, _ctx: Context| async move {
        let item = m.payload().clone();
        Ok::<_, HandlerError>(vec![
            Message::new(Item { id: item.id, text: item.text.to_uppercase() }).with_header("hop", "relay"),
        ])
    })
    .input("relay-in")
    .output("relay-out");
    let s = seen.clone();
    let sink = Handler::sink("sink", move |m: Message<Item>, _ctx: Context| {
        let s = s.clone();
        async move {
            let id = m.payload().id;
            s.messages.lock().unwrap().insert(id, (m.payload().clone(), m.headers().clone()));
            s.changed.notify_waiters();
            Ok::<_, HandlerError>(())
        }
    })
    .input("sink-in");
    let toml = format!(
        "[bindings.relay-in]\ndestination = \"{dest_in}\"\ngroup = \"relay\"\n\
         [bindings.relay-out]\ndestination = \"{dest_out}\"\n\
         [bindings.sink-in]\ndestination = \"{dest_out}\"\ngroup = \"sink\"\n\
         [bindings.feed]\ndestination = \"{dest_in}\"\n"
    );
    let binder = RabbitBinder::new(tls_options(&connection_name)).expect("the script's CA is a valid tls-ca-file");
    let app = common::start_on(binder, &toml, vec![relay, sink]).await;

    let feed = app.source::<Item>("feed").unwrap();
    let mut confirms = Vec::new();
    for id in 0..MESSAGES {
        let message = Message::new(Item { id, text: format!("message {id}") })
            .with_header("tenant", "acme")
            .with_correlation_id(format!("corr-{id}"));
        confirms.push(feed.dispatch(message).await.expect("publish over amqps"));
    }
    for c in confirms {
        c.await.expect("the broker confirms over amqps");
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let changed = seen.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let count = seen.messages.lock().unwrap().len() as u64;
        if count == MESSAGES {
            break;
        }
        assert!(
            tokio::time::timeout_at(deadline, changed).await.is_ok(),
            "{count} of {MESSAGES} messages reached the sink over amqps within 30s"
        );
    }

    // The connection the app used is a TLS one on the AMQPS port, as the broker sees it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let connection = loop {
        let found = common::admin_list("connections")
            .into_iter()
            .find(|c| c["client_properties"]["connection_name"] == connection_name.as_str());
        if let Some(c) = found {
            break c;
        }
        assert!(Instant::now() < deadline, "the management API never listed connection {connection_name}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    app.shutdown().await.unwrap();

    assert_eq!(connection["ssl"], true, "{connection}");
    let port = tls_uri().parse::<lapin::uri::AMQPUri>().unwrap().authority.port;
    assert_eq!(connection["port"], port, "{connection}");
    let seen = seen.messages.lock().unwrap();
    for id in 0..MESSAGES {
        let (item, headers) = seen.get(&id).unwrap_or_else(|| panic!("message {id} missing"));
        assert_eq!(item.text, format!("MESSAGE {id}"));
        assert_eq!(headers.get_str("hop"), Some("relay"), "{headers:?}");
        assert_eq!(headers.correlation_id(), Some(format!("corr-{id}").as_str()), "{headers:?}");
        assert_eq!(headers.content_type(), Some("application/json"), "{headers:?}");
        assert!(headers.id().is_some() && headers.timestamp().is_some(), "{headers:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqps_without_the_ca_is_refused_with_a_certificate_error() {
    require_tls_broker();
    let mut options = RabbitOptions::new(tls_uri());
    options.connect_timeout = Duration::from_secs(2);
    options.reconnect_max = Duration::from_millis(200);
    let binder = RabbitBinder::new(options).unwrap();
    let started = Instant::now();
    let Err(err) = binder.bind_producer(&ProducerSpec::output("out", common::unique("tls-untrusted"))).await else {
        panic!("a broker certificate from an unknown CA must not be trusted");
    };
    let took = started.elapsed();
    let health = binder.health();
    binder.shutdown().await.unwrap();

    let text = err.to_string();
    eprintln!("refused as expected after {took:?}: {text}");
    assert!(took < Duration::from_secs(10), "the refusal took {took:?}: {text}");
    assert!(text.contains("certificate") && text.contains("TLS"), "the error says why: {text}");
    assert!(text.contains("tls-ca-file"), "the error names the setting to fix: {text}");
    assert!(text.contains("guest:***@") && !text.contains("guest:guest"), "the URI is redacted: {text}");
    assert!(!health.is_up());
    assert!(health.detail().contains("certificate"), "{}", health.detail());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_files_are_loaded_and_presented() {
    require_tls_broker();
    let mut options = tls_options(&common::unique("bindery-tls-client-cert"));
    options.tls_cert_file = Some(tls_file("client.pem"));
    options.tls_key_file = Some(tls_file("client-key.pem"));
    let binder = RabbitBinder::new(options).expect("the script's client certificate and key are valid");
    assert!(!format!("{binder:?}").contains("PRIVATE KEY"), "the key's content is never shown");
    let producer = binder
        .bind_producer(&ProducerSpec::output("out", common::unique("tls-client-cert")))
        .await
        .expect("binds over amqps with a client certificate");
    let confirm = producer.send(bindery::RawMessage::new(bytes::Bytes::from_static(b"{}"))).await.unwrap();
    confirm.await.expect("the broker confirms");
    binder.shutdown().await.unwrap();
}

#[tokio::test]
async fn missing_or_malformed_tls_files_are_config_errors_naming_key_and_path() {
    let dir = std::env::temp_dir().join(common::unique("bindery-tls-config"));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("no-such-ca.pem");
    let garbage = dir.join("not-a-cert.pem");
    std::fs::write(&garbage, "this is not a certificate\n").unwrap();

    for (file, says) in [(&missing, "cannot read"), (&garbage, "no PEM certificate")] {
        // Through the config file and the binder registry, as an app meets it.
        let toml = format!(
            "[binders.mq]\ntype = \"rabbit\"\nuri = \"amqps://guest:guest@localhost:5671/%2f\"\ntls-ca-file = \"{}\"\n\
             [bindings.out]\ndestination = \"tls-config\"\nbinder = \"mq\"\n",
            file.display()
        );
        // The app fails to start (its output bindings are created then), whichever step it is.
        let err = match App::builder().registered_handlers(false).config(Config::from_toml_str(&toml).unwrap()).build()
        {
            Err(e) => e,
            Ok(app) => match app.start().await {
                Err(e) => e,
                Ok(running) => {
                    let source = running.source::<serde_json::Value>("out").map(|_| ());
                    running.shutdown().await.unwrap();
                    source.expect_err("a binder with an unusable tls-ca-file must not be created")
                }
            },
        };
        let text = err.to_string();
        assert!(err.is_config(), "{text}");
        assert!(text.contains("binders.mq.tls-ca-file"), "names the key: {text}");
        assert!(text.contains(&file.display().to_string()), "names the file: {text}");
        assert!(text.contains(says), "{text}");
        assert!(!text.contains("guest:guest"), "{text}");
    }

    // TLS files with a plain amqp:// URI would silently not be used.
    let mut plain = RabbitOptions::new("amqp://localhost:5672/%2f");
    plain.tls_ca_file = Some(garbage.clone());
    let text = plain.validate("mq").unwrap_err().to_string();
    assert!(text.contains("binders.mq.tls-ca-file") && text.contains("amqps://"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
