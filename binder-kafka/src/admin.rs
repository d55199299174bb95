//! Topics: created on bind when missing, grown when asked for more partitions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bindery::{Error, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;

use crate::config::KafkaOptions;
use crate::context::Context;

pub(crate) type Admin = AdminClient<Context>;

/// Partitions of `topic`, or `None` when it does not exist.
pub(crate) async fn partitions(admin: &Arc<Admin>, topic: &str, timeout: Duration) -> Result<Option<usize>> {
    let client = admin.clone();
    let name = topic.to_string();
    let md = tokio::task::spawn_blocking(move || client.inner().fetch_metadata(Some(&name), timeout))
        .await
        .map_err(|e| Error::broker(format!("metadata task failed: {e}")))?;
    let md = md.map_err(|e| Error::broker(format!("cannot read metadata of topic `{topic}`: {e}")))?;
    admin.inner().context().reach.up();
    match md.topics().iter().find(|t| t.name() == topic) {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(Some(t.partitions().len())),
        _ => Ok(None),
    }
}

/// Makes sure `topic` exists with at least `wanted` partitions, per the binder's options.
pub(crate) async fn ensure_topic(
    admin: &Arc<Admin>,
    opts: &KafkaOptions,
    binding: &str,
    topic: &str,
    wanted: usize,
    grow: bool,
) -> Result<usize> {
    let unreachable = |e: Error| {
        Error::broker(format!(
            "binding `{binding}`: cannot reach Kafka at `{}` to check topic `{topic}`: {e}",
            opts.brokers
        ))
    };
    let deadline = Instant::now() + opts.bind_timeout;
    let left = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
    let have = partitions(admin, topic, left()).await.map_err(unreachable)?;
    let ops = AdminOptions::new().operation_timeout(Some(left())).request_timeout(Some(left()));
    match have {
        Some(n) if n >= wanted || !grow => Ok(n),
        Some(n) => {
            if !opts.auto_add_partitions {
                return Err(Error::binding(
                    binding,
                    format!(
                        "topic `{topic}` has {n} partitions but partition-count is {wanted}; add partitions to the topic, lower partition-count, or set `auto-add-partitions = true` on the binder"
                    ),
                ));
            }
            let np = NewPartitions::new(topic, wanted);
            let r = admin.create_partitions([&np], &ops).await;
            check(r.map(|v| v.into_iter().map(|x| x.map(|_| ())).collect()), binding, topic, "add partitions to")?;
            tracing::info!(binding, topic, from = n, to = wanted, "added partitions to topic");
            wait_for(admin, topic, wanted, deadline).await.map_err(unreachable)
        }
        None => {
            if !opts.auto_create_topics {
                return Err(Error::binding(
                    binding,
                    format!("topic `{topic}` does not exist and `auto-create-topics` is false on the binder"),
                ));
            }
            let count = i32::try_from(wanted.max(1)).unwrap_or(i32::MAX);
            let nt = NewTopic::new(topic, count, TopicReplication::Fixed(i32::from(opts.replication_factor)));
            let r = admin.create_topics([&nt], &ops).await;
            check(r.map(|v| v.into_iter().map(|x| x.map(|_| ())).collect()), binding, topic, "create")?;
            tracing::info!(binding, topic, partitions = count, "created topic");
            wait_for(admin, topic, 1, deadline).await.map_err(unreachable)
        }
    }
}

fn check(
    r: rdkafka::error::KafkaResult<Vec<std::result::Result<(), (String, RDKafkaErrorCode)>>>,
    binding: &str,
    topic: &str,
    what: &str,
) -> Result<()> {
    let unsupported = || {
        Error::broker(format!(
            "binding `{binding}`: cannot {what} topic `{topic}`: the broker does not support it; create the topic yourself with enough partitions, or set `min-partition-count` on the binder so topics are created large enough"
        ))
    };
    let results = r.map_err(|e| match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::UnsupportedFeature) => unsupported(),
        _ => Error::broker(format!("binding `{binding}`: cannot {what} topic `{topic}`: {e}")),
    })?;
    for res in results {
        match res {
            Ok(()) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, RDKafkaErrorCode::UnsupportedFeature)) => return Err(unsupported()),
            Err((_, code)) => {
                return Err(Error::broker(format!("binding `{binding}`: cannot {what} topic `{topic}`: {code}")));
            }
        }
    }
    Ok(())
}

/// Waits until metadata shows `topic` with at least `min` partitions.
async fn wait_for(admin: &Arc<Admin>, topic: &str, min: usize, deadline: Instant) -> Result<usize> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
        if let Some(n) = partitions(admin, topic, left).await? {
            if n >= min {
                return Ok(n);
            }
        }
        if Instant::now() >= deadline {
            return Err(Error::new(bindery::ErrorKind::Timeout, format!("topic `{topic}` not visible in metadata")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
