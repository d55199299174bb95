//! Settlement on the broker: batched (`multiple`) acks leave nothing unacknowledged and
//! acknowledge nothing twice, and a rejected message goes through RabbitMQ's own dead-lettering
//! (`x-death`) when the binding has no dead letter of its own.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bindery::{Context, Handler, HandlerError, Message};
use lapin::options::BasicGetOptions;
use serde_json::{Value, json};
use tokio::sync::Notify;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_settlements_ack_everything_exactly_once() {
    const N: u64 = 600;
    let dest = common::unique("acks");
    let seen: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    let changed = Arc::new(Notify::new());
    let (s, c) = (seen.clone(), changed.clone());
    // Eight workers finishing in a scrambled order, so settlements arrive with gaps.
    let sink = Handler::sink("scrambled", move |m: Message<Value>, _ctx: Context| {
        let (s, c) = (s.clone(), c.clone());
        async move {
            let id = m.payload()["id"].as_u64().unwrap_or_default();
            tokio::time::sleep(Duration::from_micros((id * 7919) % 3_000)).await;
            *s.lock().unwrap().entry(id).or_default() += 1;
            c.notify_waiters();
            Ok::<_, HandlerError>(())
        }
    })
    .input("in");
    let toml = format!(
        "[bindings.in]\ndestination = \"{dest}\"\ngroup = \"g\"\n[bindings.in.consumer]\nconcurrency = 8\n\
         [bindings.out]\ndestination = \"{dest}\"\n"
    );
    let app = common::start(&toml, vec![sink]).await;
    let out = app.source::<Value>("out").unwrap();
    let mut pending = Vec::new();
    for id in 0..N {
        // Distinct keys spread the messages over all workers.
        pending.push(out.dispatch(Message::new(json!({"id": id})).with_key(format!("k{id}"))).await.unwrap());
    }
    for p in pending {
        p.await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let notified = changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if seen.lock().unwrap().len() as u64 == N {
            break;
        }
        assert!(tokio::time::timeout_at(deadline, notified).await.is_ok(), "not all {N} messages arrived");
    }
    app.shutdown().await.unwrap();
    // Closing the channel would have requeued anything left unacknowledged: the queue must be
    // empty, and nothing may have been delivered twice (a double ack closes the channel and
    // redelivers).
    let conn = common::connect().await;
    let ch = conn.create_channel().await.unwrap();
    let left = ch.basic_get(format!("{dest}.g").as_str().into(), BasicGetOptions { no_ack: true }).await.unwrap();
    assert!(left.is_none(), "a message was left unacknowledged: {:?}", left.map(|m| m.delivery.data));
    let twice: Vec<u64> = seen.lock().unwrap().iter().filter(|(_, n)| **n > 1).map(|(id, _)| *id).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let _ = conn.close(200, "done".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_messages_are_dead_lettered_by_the_broker_with_x_death() {
    let dest = common::unique("reject");
    let sink = Handler::sink("fails", |_m: Message<Value>, _ctx: Context| async move {
        Err::<(), _>(HandlerError::new("always fails"))
    })
    .input("in");
    // No dead letter of the runtime's own: after the last attempt the runtime rejects, and the
    // group queue's x-dead-letter-exchange hands the message to DLX.
    let toml = format!(
        "[bindings.in]\ndestination = \"{dest}\"\ngroup = \"g\"\n[bindings.in.consumer]\nmax-attempts = 1\ndead-letter = false\n\
         [bindings.out]\ndestination = \"{dest}\"\n"
    );
    let app = common::start(&toml, vec![sink]).await;
    app.source::<Value>("out")
        .unwrap()
        .send_message(Message::new(json!({"id": 1})).with_header("tenant", "acme"))
        .await
        .unwrap();
    let dead = common::read_queue(&format!("{dest}.g.dlq"), 1, Duration::from_secs(10)).await.unwrap();
    app.shutdown().await.unwrap();
    let h = dead[0].headers();
    let death: Value = serde_json::from_str(h.get_str("x-death").expect("RabbitMQ's x-death header")).unwrap();
    assert_eq!(death[0]["queue"], format!("{dest}.g"), "{death}");
    assert_eq!(death[0]["reason"], "rejected", "{death}");
    assert_eq!(death[0]["exchange"], dest, "{death}");
    assert_eq!(h.get_str("tenant"), Some("acme"), "original headers kept: {h:?}");
    assert_eq!(serde_json::from_slice::<Value>(dead[0].payload()).unwrap(), json!({"id": 1}));
}
