//! `TestApp`, the harness of SPEC §6: recorded outputs, successive receives, timeouts that
//! name the destination, dead letters with their headers, and raw inputs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bindery::Handler;
use bindery::prelude::*;
use bindery_memory::TestApp;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    cents: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Invoice {
    order: u64,
    cents: u64,
}

/// The §6 example's handler, registered for this test binary.
#[bindery::processor(input = "ta-orders", output = "ta-invoices", group = "billing")]
async fn ta_bill(order: Order) -> Result<Invoice, HandlerError> {
    if order.cents == 0 {
        return Err(HandlerError::new("nothing to bill"));
    }
    Ok(Invoice { order: order.id, cents: order.cents + 100 })
}

#[tokio::test]
async fn start_runs_the_registered_handlers() {
    let app = TestApp::builder()
        .config_toml("[bindings.ta-orders.consumer]\nbackoff-initial = \"1ms\"\n")
        .start()
        .await
        .unwrap();
    app.input("ta-orders").send_json(&Order { id: 1, cents: 900 }).await.unwrap();
    let inv: Invoice = app.output("ta-invoices").recv_json().await.unwrap();
    assert_eq!(inv, Invoice { order: 1, cents: 1000 });
    assert!(app.dead_letters("ta-orders", "billing").is_empty());

    app.input("ta-orders").send_json(&Order { id: 2, cents: 0 }).await.unwrap();
    let dl = app.output("ta-orders.billing.dlq").recv().await.unwrap();
    assert_eq!(dl.headers().get_str("x-exception-message"), Some("nothing to bill"));
    assert_eq!(app.dead_letters("ta-orders", "billing").len(), 1);
    app.shutdown().await.unwrap();
}

/// A processor `n -> n * 2` from `in` to `out`, built in code.
fn doubler(input: &str, output: &str) -> Handler {
    Handler::processor(&format!("doubler-{input}"), |m: Message<u64>, _ctx: Context| async move {
        Ok::<_, HandlerError>(vec![Message::new(m.into_payload() * 2)])
    })
    .input(input)
    .output(output)
}

async fn quiet_app(handlers: Vec<Handler>, toml: &str) -> TestApp {
    let mut b = TestApp::builder().registered_handlers(false).config_toml(toml);
    for h in handlers {
        b = b.handler(h);
    }
    b.start().await.unwrap()
}

#[tokio::test]
async fn output_sees_messages_produced_before_it_was_called() {
    let app = quiet_app(vec![], "[bindings.early-out]\ndestination = \"early-dest\"\n").await;
    // `send` returns once the broker confirmed: these exist before anyone asks for the output.
    let source = app.app().unwrap().source::<u64>("early-out").unwrap();
    for i in 0..3u64 {
        source.send(i).await.unwrap();
    }
    let out = app.output("early-dest");
    assert_eq!(out.all().len(), 3);
    for i in 0..3u64 {
        assert_eq!(out.recv_json::<u64>().await.unwrap(), i);
    }
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn successive_recv_calls_return_successive_messages() {
    let app = quiet_app(vec![doubler("succ-in", "succ-out")], "").await;
    for i in 1..=5u64 {
        app.input("succ-in").send_json(&i).await.unwrap();
    }
    let out = app.output("succ-out");
    let got: Vec<u64> = [
        out.recv_json().await.unwrap(),
        out.recv_json().await.unwrap(),
        app.output("succ-out").recv_json().await.unwrap(),
        out.recv_json().await.unwrap(),
        out.recv_json().await.unwrap(),
    ]
    .into();
    assert_eq!(got, [2, 4, 6, 8, 10]);
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn recv_waits_for_a_message_produced_later() {
    let app = quiet_app(vec![doubler("later-in", "later-out")], "").await;
    let out = app.output("later-out");
    let input = app.input("later-in");
    let (got, sent) = tokio::join!(out.recv_json::<u64>(), async move { input.send_json(&5u64).await });
    sent.unwrap();
    assert_eq!(got.unwrap(), 10);
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn recv_times_out_with_an_error_naming_the_destination() {
    let app = TestApp::builder()
        .registered_handlers(false)
        .config_toml("")
        .recv_timeout(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let began = Instant::now();
    let err = app.output("nothing-ever-arrives").recv().await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(err.to_string().contains("nothing-ever-arrives"), "{err}");
    assert!(began.elapsed() >= Duration::from_millis(100), "gave up after {:?}", began.elapsed());

    // After one message the next receive times out again, instead of repeating the message.
    app.app().unwrap().source::<u64>("once").unwrap().send(1).await.unwrap();
    assert_eq!(app.output("once").recv_json::<u64>().await.unwrap(), 1);
    let err = app.output("once").recv().await.unwrap_err();
    assert!(err.is_timeout() && err.to_string().contains("once"), "{err}");
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn dead_letters_carry_the_failure_headers() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let a = attempts.clone();
    let sink = Handler::sink("always-fails", move |_m: Message<Order>, _ctx: Context| {
        a.fetch_add(1, Ordering::SeqCst);
        async { Err::<(), _>(HandlerError::new("card declined")) }
    })
    .input("dl-in")
    .group("billing");
    let app = quiet_app(
        vec![sink],
        "[bindings.dl-in]\ndestination = \"dl-orders\"\n\
         [bindings.dl-in.consumer]\nmax-attempts = 2\nbackoff-initial = \"5ms\"\n",
    )
    .await;
    app.input("dl-orders")
        .send_message(Message::new(Order { id: 7, cents: 1 }).with_header("tenant", "acme"))
        .await
        .unwrap();
    // Wait on the dead-letter destination itself, then inspect through `dead_letters`.
    app.output("dl-orders.billing.dlq").recv().await.unwrap();
    let dls = app.dead_letters("dl-orders", "billing");
    assert_eq!(dls.len(), 1);
    let dl = &dls[0];
    assert_eq!(serde_json::from_slice::<Order>(dl.payload()).unwrap(), Order { id: 7, cents: 1 });
    let h = dl.headers();
    assert_eq!(h.get_str("x-original-destination"), Some("dl-orders"));
    assert_eq!(h.get_str("x-exception-message"), Some("card declined"));
    assert_eq!(h.get_str("x-exception-kind"), Some("handler"));
    assert_eq!(h.delivery_attempt(), Some(2), "deliveryAttempt counts the attempts made");
    assert_eq!(h.get_str("tenant"), Some("acme"), "the original headers are kept");
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert!(app.dead_letters("dl-orders", "other-group").is_empty());
    assert!(app.dead_letters("dl-in", "billing").is_empty(), "dead letters are named by destination");
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn invalid_json_goes_to_dead_letters_and_never_reaches_the_handler() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sink = Handler::sink("strict", move |m: Message<Order>, _ctx: Context| {
        s.lock().unwrap().push(m.payload().clone());
        let _ = tx.send(());
        async { Ok::<_, HandlerError>(()) }
    })
    .input("raw-in")
    .group("strict");
    let app = quiet_app(vec![sink], "[bindings.raw-in.consumer]\nmax-attempts = 5\nbackoff-initial = \"1s\"\n").await;
    app.input("raw-in")
        .send_raw(Message::new(Bytes::from_static(b"{not json")).with_content_type("application/json"))
        .await
        .unwrap();
    app.input("raw-in")
        .send_raw(Message::new(Bytes::from_static(b"{\"id\": 1}")).with_content_type("application/json"))
        .await
        .unwrap();
    app.input("raw-in").send_json(&Order { id: 3, cents: 30 }).await.unwrap();

    // Both bad inputs are dead-lettered at once (no retries, no backoff), in order.
    let dlq = app.output("raw-in.strict.dlq");
    let first = dlq.recv().await.unwrap();
    assert_eq!(&first.payload()[..], b"{not json", "the payload is kept as it was");
    assert_eq!(first.headers().get_str("x-exception-kind"), Some("decode"));
    assert_eq!(first.headers().get_str("x-original-destination"), Some("raw-in"));
    assert_eq!(first.headers().delivery_attempt(), Some(1), "bad input is not retried");
    assert!(first.headers().get_str("x-exception-message").is_some_and(|m| !m.is_empty()));
    let second = dlq.recv().await.unwrap();
    assert_eq!(&second.payload()[..], b"{\"id\": 1}");
    assert_eq!(second.headers().get_str("x-exception-kind"), Some("decode"));

    // The consumer keeps going with the next good message.
    tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("the good message is handled");
    assert_eq!(*seen.lock().unwrap(), [Order { id: 3, cents: 30 }], "the handler only ever saw the good message");
    assert_eq!(app.dead_letters("raw-in", "strict").len(), 2);
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn unsupported_content_type_goes_to_dead_letters() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sink = Handler::sink("typed", move |m: Message<u64>, _ctx: Context| {
        let _ = tx.send(*m.payload());
        async { Ok::<_, HandlerError>(()) }
    })
    .input("ct-in")
    .group("g");
    let app = quiet_app(vec![sink], "").await;
    app.input("ct-in")
        .send_raw(Message::new(Bytes::from_static(b"1")).with_content_type("application/x-unknown"))
        .await
        .unwrap();
    app.input("ct-in").send_json(&2u64).await.unwrap();
    let dl = app.output("ct-in.g.dlq").recv().await.unwrap();
    assert_eq!(dl.headers().get_str("x-exception-kind"), Some("decode"));
    assert!(dl.headers().get_str("x-exception-message").is_some_and(|m| m.contains("application/x-unknown")));
    assert_eq!(tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap(), Some(2));
    assert!(rx.try_recv().is_err(), "the undecodable message never reached the handler");
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn config_binders_are_replaced_by_memory() {
    // A service's real config names brokers; under TestApp everything runs in memory.
    let toml = "default-binder = \"kafka\"\n\
                [binders.main]\ntype = \"rabbit\"\nuri = \"amqp://nowhere\"\n\
                [bindings.swap-in]\nbinder = \"main\"\ndestination = \"swap-orders\"\n\
                [bindings.swap-out]\nbinder = \"kafka\"\ndestination = \"swap-invoices\"\n";
    let app = quiet_app(vec![doubler("swap-in", "swap-out")], toml).await;
    app.input("swap-orders").send_json(&8u64).await.unwrap();
    assert_eq!(app.output("swap-invoices").recv_json::<u64>().await.unwrap(), 16);
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn config_file_is_read() {
    let dir = std::env::temp_dir().join(format!("bindery-testapp-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bindery.yaml");
    std::fs::write(
        &path,
        "bindings:\n  file-in:\n    destination: file-orders\n  file-out:\n    destination: file-invoices\n",
    )
    .unwrap();
    let app = TestApp::builder()
        .registered_handlers(false)
        .handler(doubler("file-in", "file-out"))
        .config_file(&path)
        .start()
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    app.input("file-orders").send_json(&3u64).await.unwrap();
    assert_eq!(app.output("file-invoices").recv_json::<u64>().await.unwrap(), 6);
    app.shutdown().await.unwrap();
}
