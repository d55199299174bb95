//! Producers wait while a consumed group is full, and go on once its consumer catches up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bindery::binder::{ConsumerSpec, InputChannel, ProducerSpec};
use bindery::{Binder, Bytes, Message};
use bindery_memory::{MemoryBinder, MemoryBroker};

#[tokio::test]
async fn a_full_group_holds_producers_back_until_consumed() {
    let broker = MemoryBroker::with_capacity(4);
    let binder = MemoryBinder::new(broker.clone());
    let (tx, mut rx) = InputChannel::bounded(1);
    let consumer = binder.bind_consumer(&ConsumerSpec::new("in", "bp", Some("g".into())), tx).await.unwrap();
    let producer = binder.bind_producer(&ProducerSpec::output("out", "bp")).await.unwrap();
    // One message fills the consumer's channel, four more fill the group's queue.
    for i in 0..5u8 {
        producer.send(Message::new(Bytes::from(vec![i]))).await.unwrap().await.unwrap();
    }
    assert_eq!(broker.queued("bp", "g"), 4);
    // The next send must wait: nothing is being consumed.
    let blocked = tokio::time::timeout(Duration::from_millis(100), producer.send(Message::new(Bytes::from(vec![5]))));
    assert!(blocked.await.is_err(), "a producer must wait while the consumed group is full");
    // Consuming makes room; the send then goes through and every message arrives in order.
    let sender = {
        let producer = producer.clone();
        tokio::spawn(async move { producer.send(Message::new(Bytes::from(vec![5]))).await.unwrap().await })
    };
    let mut seen = Vec::new();
    while seen.len() < 6 {
        let d = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
        seen.push(d.message.payload()[0]);
        d.ack.ack();
    }
    sender.await.unwrap().unwrap();
    assert_eq!(seen, [0, 1, 2, 3, 4, 5]);
    consumer.close().await.unwrap();
}
