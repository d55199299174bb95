//! The binder driven directly (no runtime) on the mock cluster: requeue re-reads the partition,
//! health reports the consumer's lag.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use bindery::binder::{ConsumerSpec, InputChannel, ProducerSpec};
use bindery::{Binder, Bytes, Message};

async fn recv(rx: &mut tokio::sync::mpsc::Receiver<bindery::binder::Delivery>) -> bindery::binder::Delivery {
    tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .expect("a delivery within 15 s")
        .expect("channel open")
}

fn offset(d: &bindery::binder::Delivery) -> &str {
    d.message.headers().get_str(bindery_kafka::naming::headers::OFFSET).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeue_rereads_from_the_requeued_offset_and_lag_shows_in_health() {
    let mock = Arc::new(support::Mock::new());
    let topic = format!("direct-{}", uuid::Uuid::new_v4().simple());
    mock.cluster().create_topic(&topic, 1, 1).unwrap();
    let binder = support::binder(&mock.bootstrap);
    let producer = binder.bind_producer(&ProducerSpec::output("out", topic.clone())).await.unwrap();
    let (channel, mut rx) = InputChannel::bounded(8);
    let consumer =
        binder.bind_consumer(&ConsumerSpec::new("in", topic.clone(), Some("g".into())), channel).await.unwrap();
    for i in 0..3u8 {
        producer.send(Message::new(Bytes::from(vec![b'0' + i])).with_key("k")).await.unwrap().await.unwrap();
    }
    let first = recv(&mut rx).await;
    let second = recv(&mut rx).await;
    assert_eq!((offset(&first), offset(&second)), ("0", "1"));
    first.ack.ack();
    // Requeue offset 1: the partition is re-read from 1, so 1 and then 2 arrive again. (Record 2
    // may already sit in the channel from before the rewind: it is delivered too, and its
    // settlement is ignored because it predates the rewind.)
    second.ack.requeue();
    let mut seen = Vec::new();
    while !(seen.iter().position(|o| o == "1").is_some_and(|i| seen[i..].iter().any(|o| o == "2"))) {
        assert!(seen.len() < 6, "offset 1 was not re-read after its requeue: {seen:?}");
        let d = recv(&mut rx).await;
        seen.push(offset(&d).to_string());
        d.ack.ack();
    }
    // Every record is finished: the commit reaches the end and the lag goes to 0.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let h = consumer.health();
        if h.is_up() && h.detail().contains("lag 0 ") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "health never showed lag 0: {h:?}");
        tokio::time::sleep(Duration::from_millis(100)).await; // statistics arrive every 500 ms
    }
    consumer.close().await.unwrap();
    assert!(binder.health().is_up(), "{:?}", binder.health());
}
