//! The broker restarts while 10,000 messages flow through a processor into a sink: every
//! message must reach the sink at least once and the app must recover by itself.
//!
//! Restarts the local node with `scripts/rabbitmq restart` (its data survives the restart).
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bindery::{Context, Handler, HandlerError, Message};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

const MESSAGES: u64 = 10_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Item {
    id: u64,
}

#[derive(Default)]
struct Seen {
    counts: Mutex<HashMap<u64, u32>>,
    changed: Notify,
}

impl Seen {
    fn record(&self, id: u64) {
        if let Ok(mut c) = self.counts.lock() {
            *c.entry(id).or_default() += 1;
        }
        self.changed.notify_waiters();
    }

    fn distinct(&self) -> u64 {
        self.counts.lock().map(|c| c.len() as u64).unwrap_or(0)
    }

    fn total(&self) -> u64 {
        self.counts.lock().map(|c| c.values().map(|n| u64::from(*n)).sum()).unwrap_or(0)
    }

    /// Waits until `pred(distinct, total)` holds, or fails after `timeout`.
    async fn wait(&self, timeout: Duration, what: &str, pred: impl Fn(u64, u64) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if pred(self.distinct(), self.total()) {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!(
                    "timed out after {timeout:?} waiting for {what}: {} distinct of {MESSAGES} seen",
                    self.distinct()
                );
            }
        }
    }
}

fn restart_broker() -> Duration {
    let started = Instant::now();
    let out =
        std::process::Command::new(common::broker_script()).arg("restart").output().expect("run scripts/rabbitmq");
    assert!(
        out.status.success(),
        "scripts/rabbitmq restart failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_survive_a_broker_restart() {
    common::require_broker();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (dest_in, dest_out) = (format!("restart-in-{suffix}"), format!("restart-out-{suffix}"));
    let seen = Arc::new(Seen::default());

    let relay = Handler::processor("relay", |m: Message<Item>, _ctx: Context| async move {
        Ok::<_, HandlerError>(vec![Message::new(m.into_payload())])
    })
    .input("relay-in")
    .output("relay-out");
    let s = seen.clone();
    // The sink takes about a millisecond a message, so a backlog waits in the broker's durable
    // queue while it restarts, however fast the relay and the feed are: with lanes the whole
    // flow once finished before the broker went down, and the test waited in vain for a
    // message after the restart (CI).
    let sink = Handler::sink("sink", move |m: Message<Item>, _ctx: Context| {
        let s = s.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            s.record(m.payload().id);
            Ok::<_, HandlerError>(())
        }
    })
    .input("sink-in");
    let toml = format!(
        "binding-retry-interval = \"500ms\"\n\
         [bindings.relay-in]\ndestination = \"{dest_in}\"\ngroup = \"relay\"\n[bindings.relay-in.consumer]\nconcurrency = 4\n\
         [bindings.relay-out]\ndestination = \"{dest_out}\"\n\
         [bindings.sink-in]\ndestination = \"{dest_out}\"\ngroup = \"sink\"\n\
         [bindings.feed]\ndestination = \"{dest_in}\"\n"
    );
    let app = common::start_on(common::binder(), &toml, vec![relay, sink]).await;
    // `start` can return a moment before the runtime marks its consumer bindings up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app.health().is_up() {
        assert!(Instant::now() < deadline, "app not healthy before the restart: {:?}", app.health());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The feed keeps up to 500 publishes in flight and counts what the broker confirmed. It
    // publishes the second half only once the restart begins, so messages flow through the
    // restart however fast the first half went.
    let feed = app.source::<Item>("feed").unwrap();
    let restarting = Arc::new(tokio::sync::Notify::new());
    let second_half = restarting.clone();
    let publisher = tokio::spawn(async move {
        let mut pending = FuturesUnordered::new();
        let mut failed = Vec::new();
        for id in 0..MESSAGES {
            if id == MESSAGES / 2 {
                second_half.notified().await;
            }
            if pending.len() >= 500 {
                if let Some((id, Err(e))) = pending.next().await {
                    failed.push((id, e));
                }
            }
            match feed.dispatch(Message::new(Item { id })).await {
                Ok(c) => pending.push(async move { (id, c.await) }),
                Err(e) => failed.push((id, e)),
            }
        }
        while let Some((id, r)) = pending.next().await {
            if let Err(e) = r {
                failed.push((id, e));
            }
        }
        failed
    });

    // Restart once the flow is well under way.
    seen.wait(Duration::from_secs(60), "the flow to start", |d, _| d >= 1_500).await;
    let before = seen.distinct();
    // Restart the broker. Meanwhile sample, every 50 ms, the app's health (it must report DOWN)
    // and the broker's AMQP port, to time the recovery from the moment the broker accepts
    // connections again until the app is healthy and a message reached the sink.
    let amqp: lapin::uri::AMQPUri = common::uri().parse().unwrap();
    let port = format!("{}:{}", amqp.authority.host, amqp.authority.port);
    let port_open = || async {
        matches!(
            tokio::time::timeout(Duration::from_millis(200), tokio::net::TcpStream::connect(&port)).await,
            Ok(Ok(_))
        )
    };
    let (mut went_down, mut port_closed) = (false, false);
    let mut broker_back: Option<Instant> = None;
    let mut healthy_again: Option<Instant> = None;
    restarting.notify_one();
    let restart = tokio::task::spawn_blocking(restart_broker);
    tokio::pin!(restart);
    let restart_took = loop {
        tokio::select! {
            took = &mut restart => break took.unwrap(),
            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                let up = app.health().is_up();
                went_down |= !up;
                let open = port_open().await;
                port_closed |= !open;
                if port_closed && open && broker_back.is_none() {
                    broker_back = Some(Instant::now());
                }
                if broker_back.is_some() && up && healthy_again.is_none() {
                    healthy_again = Some(Instant::now());
                }
            }
        }
    };
    let at_restart = seen.total();
    seen.wait(Duration::from_secs(60), "the first message after the restart", |_, t| t > at_restart).await;
    let flowing_again = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    while healthy_again.is_none() {
        if app.health().is_up() {
            healthy_again = Some(Instant::now());
        }
        assert!(Instant::now() < deadline, "app still unhealthy after the restart: {:?}", app.health());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let broker_back = broker_back.expect("the broker's port was seen closed and open again");
    let recovered_in = healthy_again.unwrap_or(flowing_again).saturating_duration_since(broker_back);
    seen.wait(Duration::from_secs(180), "every message after the restart", |d, _| d == MESSAGES).await;

    let failed = publisher.await.unwrap();
    assert!(failed.is_empty(), "{} publishes failed, first: {:?}", failed.len(), failed.first());
    let counts = seen.counts.lock().unwrap().clone();
    let missing: Vec<u64> = (0..MESSAGES).filter(|id| !counts.contains_key(id)).collect();
    assert!(missing.is_empty(), "lost messages: {missing:?}");
    let duplicates: u64 = counts.values().map(|n| u64::from(*n) - 1).sum();
    println!(
        "restart test: {MESSAGES} messages, {before} delivered before the restart; `scripts/rabbitmq restart` took \
         {restart_took:?}; app healthy {recovered_in:?} after the broker accepted connections again; {duplicates} duplicates"
    );
    assert!(went_down, "health never reported DOWN while the broker was restarting");
    assert!(port_closed, "the broker never went away: was the restarted node the one under test?");
    app.shutdown().await.unwrap();
}
