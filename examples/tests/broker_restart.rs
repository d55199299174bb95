//! Broker restarts: while the relay service (a child process) moves events, the broker is
//! stopped and started again. The service must recover by itself and lose nothing; the run
//! reports how long the flow took to resume after the broker was back.
//!
//! RabbitMQ is restarted with `scripts/rabbitmq restart` (its data survives, so durable queues
//! and their messages do). Event count: `RESTART_MESSAGES` (default 10,000).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::{Broker, Scenario, feed, rabbit, terminate};

fn messages() -> u64 {
    std::env::var("RESTART_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

/// Runs the relay on `broker`, calls `restart` once a quarter of the events were recorded, and
/// checks every event arrives.
async fn restart_run(broker: Broker, restart: impl FnOnce()) {
    let n = messages();
    println!("broker restart run on {}: {n} events", broker.label());
    let mut scenario = Scenario::new(&broker);
    let child = scenario.start();
    let started = Instant::now();
    let config = scenario.config.clone();
    let feeder = tokio::spawn(async move { feed(&config, n).await });

    let deadline = Instant::now() + Duration::from_secs(60);
    while (scenario.recorded().0.len() as u64) < n / 4 {
        assert!(Instant::now() < deadline, "the relay did not record a quarter of the events within 60s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let down_at = Instant::now();
    tokio::task::block_in_place(restart);
    let back_at = Instant::now();
    // Resumed = the sink records something it had not before the broker came back.
    let at_back = scenario.recorded().1;
    let resume_deadline = Instant::now() + Duration::from_secs(120);
    let recovered = loop {
        let (ids, total) = scenario.recorded();
        if total > at_back || ids.len() as u64 >= n {
            break back_at.elapsed();
        }
        assert!(Instant::now() < resume_deadline, "the relay did not resume within 120s of the broker's restart");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    feeder.await.unwrap().unwrap();

    let deadline = Instant::now() + Duration::from_secs(120);
    let (ids, total) = loop {
        let (ids, total) = scenario.recorded();
        if ids.len() as u64 >= n || Instant::now() > deadline {
            break (ids, total);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    terminate(child);
    let lost: Vec<u64> = (0..n).filter(|id| !ids.contains(id)).collect();
    println!(
        "broker restart run on {}: broker down for {:?}, flow resumed {:?} after it was back; {} of {n} recorded, {} lost, {} duplicates, {:?} in all",
        broker.label(),
        back_at - down_at,
        recovered,
        ids.len(),
        lost.len(),
        total - ids.len(),
        started.elapsed()
    );
    assert!(
        lost.is_empty(),
        "{} events lost on {} across a broker restart (first: {:?}); logs in {}",
        lost.len(),
        broker.label(),
        &lost[..lost.len().min(10)],
        scenario.dir.display()
    );
    let _ = std::fs::remove_dir_all(&scenario.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_restart_loses_nothing() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/rabbitmq");
    restart_run(rabbit(), || {
        let status = std::process::Command::new(script).arg("restart").status().unwrap();
        assert!(status.success(), "scripts/rabbitmq restart failed: {status}");
    })
    .await;
}
