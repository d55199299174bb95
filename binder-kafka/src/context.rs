//! librdkafka client contexts: broker reachability, lag from statistics, logs through `tracing`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bindery::Health;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

const UP: u8 = 1;
const DOWN: u8 = 2;

/// Whether this binder's clients reach a broker, shared by all of them.
#[derive(Debug, Default)]
pub(crate) struct Reachability {
    state: AtomicU8,
    reason: Mutex<String>,
}

impl Reachability {
    pub(crate) fn up(&self) {
        self.state.store(UP, Ordering::Relaxed);
    }

    pub(crate) fn down(&self, reason: String) {
        *lock(&self.reason) = reason;
        self.state.store(DOWN, Ordering::Relaxed);
    }

    pub(crate) fn health(&self) -> Health {
        match self.state.load(Ordering::Relaxed) {
            UP => Health::up(),
            DOWN => Health::down(lock(&self.reason).clone()),
            _ => Health::unknown("not connected yet"),
        }
    }
}

/// Lag per partition of one consumer, from librdkafka statistics.
#[derive(Debug, Default)]
pub(crate) struct Lag {
    pub(crate) partitions: Mutex<BTreeMap<i32, i64>>,
}

impl Lag {
    pub(crate) fn describe(&self) -> String {
        let p = lock(&self.partitions);
        if p.is_empty() {
            return "lag unknown (no statistics yet)".into();
        }
        let total: i64 = p.values().sum();
        let parts: Vec<String> = p.iter().map(|(k, v)| format!("p{k}={v}")).collect();
        format!("lag {total} ({})", parts.join(", "))
    }
}

/// The context of every client a binder creates.
#[derive(Clone)]
pub(crate) struct Context {
    pub(crate) reach: Arc<Reachability>,
    /// For consumers: where statistics put the lag of `topic`.
    pub(crate) lag: Option<(String, Arc<Lag>)>,
    /// Secret values to strip from anything librdkafka says.
    pub(crate) secrets: Arc<Vec<String>>,
    /// For producers: the confirmations of their records.
    pub(crate) ledger: Arc<crate::ledger::DeliveryLedger>,
}

impl Context {
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.secrets.iter() {
            out = out.replace(s.as_str(), "<redacted>");
        }
        out
    }
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        let msg = self.redact(log_message);
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", facility = fac, "{msg}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", facility = fac, "{msg}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", facility = fac, "{msg}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility = fac, "{msg}"),
        }
    }

    fn stats(&self, statistics: Statistics) {
        if statistics.brokers.values().any(|b| b.state == "UP") {
            self.reach.up();
        }
        if let Some((topic, lag)) = &self.lag {
            if let Some(t) = statistics.topics.get(topic) {
                let mut map = BTreeMap::new();
                for (id, p) in &t.partitions {
                    if *id >= 0 && p.desired && p.consumer_lag >= 0 {
                        map.insert(*id, p.consumer_lag);
                    }
                }
                *lock(&lag.partitions) = map;
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let reason = self.redact(reason);
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.reach.down(format!("all brokers down: {reason}"));
        }
        tracing::warn!(target: "librdkafka", "{}: {reason}", self.redact(&error.to_string()));
    }
}
