//! The delivery pipeline, as small layers composed in one place ([`Pipeline::process`]):
//!
//! ```text
//! delivery ─▶ decode check ─▶ retry(handler, isolated from panics) ─▶ correlation ─▶ publish + confirm ─▶ ack
//!                  │                      │ (attempts exhausted)
//!                  └──────── not retryable ┴──▶ dead letter (confirmed) ─▶ ack
//! ```
//!
//! Each layer is a plain function or struct tested on its own below.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::Failure;
use crate::binder::{AckHandle, Confirmation, Delivery, Settlement};
use crate::config::ConsumerConfig;
use crate::error::Result;
use crate::handler::{HandlerEnv, HandlerFn, HandlerFuture, Invocation, Outputs};
use crate::headers::{Headers, names};
use crate::message::{Message, RawMessage};
use crate::runtime::OutputBinding;

// ---------------------------------------------------------------- decode check

/// Rejects messages whose content type no codec handles before the handler ever runs.
pub(crate) fn check_content_type(inv: &Invocation) -> std::result::Result<(), Failure> {
    if !inv.state.foreign_type {
        return Ok(()); // none, or the binding's own type, which has a codec
    }
    let Some(value) = inv.raw().headers().get(names::CONTENT_TYPE) else { return Ok(()) };
    if value.as_bytes() == inv.env.input_content_type.as_bytes() {
        return Ok(()); // the binding's own type, which has a codec
    }
    match value.as_str() {
        Some(ct) if inv.env.runtime.codecs.supports(ct) => Ok(()),
        Some(ct) => Err(Failure::decode(format!("unsupported content type `{ct}`"))),
        None => Err(Failure::decode("contentType header is not UTF-8")),
    }
}

// ---------------------------------------------------------------- panic isolation

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "handler panicked".to_string()
    }
}

/// Runs a handler future, turning a panic into a [`Failure::panic`].
struct CatchUnwind {
    inner: HandlerFuture,
}

impl Future for CatchUnwind {
    type Output = std::result::Result<Outputs, Failure>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let inner = &mut self.inner;
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => Poll::Ready(Err(Failure::panic(panic_message(payload)))),
        }
    }
}

/// Calls the handler once; a panic in it is a failed attempt, never a crash.
pub(crate) async fn invoke_isolated(func: &HandlerFn, inv: Invocation) -> std::result::Result<Outputs, Failure> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| func(inv))) {
        Ok(fut) => CatchUnwind { inner: fut }.await,
        Err(payload) => Err(Failure::panic(panic_message(payload))),
    }
}

// ---------------------------------------------------------------- retry

/// Exponential backoff between attempts (Spring's `maxAttempts`, `backOff*`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RetryPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) initial: Duration,
    pub(crate) multiplier: f64,
    pub(crate) max: Duration,
}

impl RetryPolicy {
    pub(crate) fn from_config(c: &ConsumerConfig) -> Self {
        Self {
            max_attempts: c.max_attempts.max(1),
            initial: c.backoff_initial,
            multiplier: c.backoff_multiplier,
            max: c.backoff_max,
        }
    }

    /// Delay before attempt `next` (2 = the first retry).
    pub(crate) fn delay_before(&self, next: u32) -> Duration {
        let exp = next.saturating_sub(2).min(64) as i32;
        let secs = self.initial.as_secs_f64() * self.multiplier.powi(exp);
        let capped = secs.min(self.max.as_secs_f64());
        Duration::try_from_secs_f64(capped).unwrap_or(self.max)
    }
}

/// How the retry layer ended.
#[derive(Debug)]
pub(crate) enum Attempts {
    Succeeded(Outputs),
    /// Gave up: the last failure and how many attempts were made.
    Failed(Failure, u32),
    /// Shutdown interrupted a backoff: hand the message back to the broker.
    Interrupted,
}

/// A message's hold on one of its binding's `concurrency` slots while it runs. A message
/// waiting out a retry backoff gives its slot up, so other keys' messages run meanwhile, and
/// takes one again before its next attempt; its own key waits for it either way.
pub(crate) struct Slot<'a> {
    slots: Option<&'a tokio::sync::Semaphore>,
    held: Option<tokio::sync::SemaphorePermit<'a>>,
}

impl<'a> Slot<'a> {
    /// No limit to share (a binding that runs one message at a time).
    pub(crate) fn unshared() -> Self {
        Self { slots: None, held: None }
    }

    /// Waits for a free slot of `slots`.
    pub(crate) async fn take(slots: &'a tokio::sync::Semaphore) -> Self {
        Self { slots: Some(slots), held: slots.acquire().await.ok() }
    }

    /// Runs `wait` without the slot, then takes one again.
    async fn idle<F: Future>(&mut self, wait: F) -> F::Output {
        self.held = None;
        let out = wait.await;
        if let Some(slots) = self.slots {
            self.held = slots.acquire().await.ok();
        }
        out
    }
}

/// Runs attempts until one succeeds, a failure is not retryable, or attempts run out.
pub(crate) async fn retry(
    policy: &RetryPolicy,
    func: &HandlerFn,
    inv: &Invocation,
    cancel: &CancellationToken,
    slot: &mut Slot<'_>,
) -> Attempts {
    let mut attempt = 1;
    loop {
        inv.state.attempt.store(attempt, std::sync::atomic::Ordering::Relaxed);
        if inv.state.has_sends.load(std::sync::atomic::Ordering::Acquire) {
            if let Ok(mut sends) = inv.state.sends.lock() {
                sends.clear(); // sends of a failed attempt are never published
            }
        }
        match invoke_isolated(func, inv.clone()).await {
            Ok(out) => return Attempts::Succeeded(out),
            Err(failure) if !failure.is_retryable() || attempt >= policy.max_attempts => {
                return Attempts::Failed(failure, attempt);
            }
            Err(failure) => {
                let delay = policy.delay_before(attempt + 1);
                tracing::debug!(handler = %inv.env.handler, attempt, ?delay, %failure, "attempt failed; retrying");
                let interrupted = slot
                    .idle(async {
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => false,
                            _ = cancel.cancelled() => true,
                        }
                    })
                    .await;
                if interrupted {
                    return Attempts::Interrupted;
                }
                attempt += 1;
            }
        }
    }
}

// ---------------------------------------------------------------- correlation

/// Copies the conversation onto an output: `correlationId` (the input's, else its `id`) and
/// the W3C `traceparent`, unless the handler set them itself.
pub(crate) fn propagate(inbound: &Headers, out: &mut Headers) {
    if let Some(cid) = inbound.get(names::CORRELATION_ID).or_else(|| inbound.get(names::ID)) {
        out.insert_if_absent(names::CORRELATION_ID, cid.clone());
    }
    if let Some(tp) = inbound.get(names::TRACEPARENT) {
        out.insert_if_absent(names::TRACEPARENT, tp.clone());
    }
}

// ---------------------------------------------------------------- dead letter

/// Publishes failed messages to the binder's dead-letter destination with the reason.
pub(crate) struct DeadLetter {
    pub(crate) out: Arc<OutputBinding>,
    pub(crate) original_destination: String,
}

/// The dead letter for `original`: same payload and headers plus the failure headers.
pub(crate) fn dead_letter_message(
    original: &RawMessage,
    original_destination: &str,
    failure: &Failure,
    attempts: u32,
) -> RawMessage {
    let mut headers = original.headers().clone();
    headers.insert(names::ORIGINAL_DESTINATION, original_destination.to_string());
    headers.insert(names::EXCEPTION_MESSAGE, failure.message().to_string());
    headers.insert(names::EXCEPTION_KIND, failure.kind());
    headers.insert(names::DELIVERY_ATTEMPT, attempts);
    Message::from_parts(original.payload().clone(), headers)
}

impl DeadLetter {
    /// Sends the dead letter; the confirmation resolves once the broker has it.
    pub(crate) async fn send(&self, original: &RawMessage, failure: &Failure, attempts: u32) -> Result<Confirmation> {
        let msg = dead_letter_message(original, &self.original_destination, failure, attempts);
        self.out.send(msg).await
    }
}

// ---------------------------------------------------------------- publish outputs

/// Publishes every output (returned and sent through the context) and waits until the broker
/// confirmed all of them.
pub(crate) async fn publish_outputs(inv: &Invocation, outputs: Outputs) -> Result<()> {
    confirm_all(send_outputs(inv, outputs).await?).await
}

/// Publishes every output (returned and sent through the context) and returns the
/// confirmations still outstanding (those already confirmed are left out; one already failed
/// is the error).
pub(crate) async fn send_outputs(inv: &Invocation, outputs: Outputs) -> Result<Vec<Confirmation>> {
    let mut items = outputs.items;
    if inv.state.has_sends.load(std::sync::atomic::Ordering::Acquire) {
        if let Ok(mut sends) = inv.state.sends.lock() {
            items.append(&mut sends);
        }
    }
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let inbound = inv.raw().headers();
    let mut pending = Vec::new();
    for (binding, mut raw) in items {
        propagate(inbound, raw.headers_mut());
        let out = match binding {
            None => inv
                .env
                .output
                .clone()
                .ok_or_else(|| crate::Error::binding(&inv.env.handler, "handler has no output binding"))?,
            Some(name) => inv.env.runtime.output(&name)?,
        };
        if let Some(confirmation) = outstanding(out.send(raw).await?)? {
            pending.push(confirmation);
        }
    }
    Ok(pending)
}

/// `None` if the broker already confirmed (the memory binder does so at once, and such inputs
/// settle inline, without a task); the confirmation if it is still outstanding.
fn outstanding(mut confirmation: Confirmation) -> Result<Option<Confirmation>> {
    match Pin::new(&mut confirmation).poll(&mut TaskContext::from_waker(std::task::Waker::noop())) {
        Poll::Ready(result) => result.map(|()| None),
        Poll::Pending => Ok(Some(confirmation)),
    }
}

/// Waits for every confirmation; the first failure is the error.
pub(crate) async fn confirm_all(confirmations: Vec<Confirmation>) -> Result<()> {
    for c in confirmations {
        c.await?;
    }
    Ok(())
}

/// How many inputs of one consumer binding may wait for their outputs' broker confirmations at
/// once. The worker moves on to the next input meanwhile (a confirmation takes a broker round
/// trip, or a producer's linger: waiting for each in turn would cap a processor at a few
/// hundred messages per second); each input is still acknowledged only after its outputs were
/// confirmed.
pub(crate) const CONFIRM_WINDOW: u32 = 512;

// ---------------------------------------------------------------- composition

/// One consumer binding's pipeline.
pub(crate) struct Pipeline {
    pub(crate) env: Arc<HandlerEnv>,
    pub(crate) func: HandlerFn,
    pub(crate) retry: RetryPolicy,
    pub(crate) dead_letter: Option<DeadLetter>,
    pub(crate) binding: String,
    pub(crate) cancel: CancellationToken,
    /// Inputs whose outputs await confirmation hold one permit each (of [`CONFIRM_WINDOW`]).
    pub(crate) confirming: Arc<tokio::sync::Semaphore>,
}

impl Pipeline {
    /// Takes one delivery all the way to its settlement.
    pub(crate) async fn process(&self, delivery: Delivery) {
        self.process_in(delivery, &mut Slot::unshared()).await;
    }

    /// [`process`](Self::process) holding `slot`, which it gives up during retry backoffs.
    pub(crate) async fn process_in(&self, delivery: Delivery, slot: &mut Slot<'_>) {
        let Delivery { message, ack, .. } = delivery;
        if !ack.is_current() {
            // Taken back by the broker (a revoked partition, a rewind): it comes again, to
            // this consumer or another; handling it now would only duplicate the work.
            tracing::debug!(binding = %self.binding, "skipping a delivery the broker took back");
            return settle(ack, Settlement::Requeue);
        }
        let inv = Invocation::new(message, self.env.clone());
        let attempts = match check_content_type(&inv) {
            Err(failure) => Attempts::Failed(failure, 1),
            Ok(()) => retry(&self.retry, &self.func, &inv, &self.cancel, slot).await,
        };
        let pending = match attempts {
            // A sink's common case: nothing to publish, so nothing to wait for.
            Attempts::Succeeded(outputs)
                if outputs.is_empty() && !inv.state.has_sends.load(std::sync::atomic::Ordering::Acquire) =>
            {
                return settle(ack, Settlement::Ack);
            }
            Attempts::Succeeded(outputs) => match send_outputs(&inv, outputs).await {
                Ok(pending) if pending.is_empty() => return settle(ack, Settlement::Ack),
                Ok(pending) => pending,
                Err(e) => {
                    let settlement = after_confirmation(Err(e), &self.binding, self.retry.max, &self.cancel).await;
                    return settle(ack, settlement);
                }
            },
            Attempts::Interrupted => return settle(ack, Settlement::Requeue),
            Attempts::Failed(failure, attempts) => match self.fail(&inv, failure, attempts).await {
                Failed::Settled(settlement) => return settle(ack, settlement),
                Failed::Confirming(pending) => vec![pending],
            },
        };
        drop(inv); // the window below may wait; the input's buffers are not needed for that
        self.settle_when_confirmed(pending, ack).await;
    }

    /// Acknowledges the input once its outputs are confirmed, off the worker: it goes on with
    /// the next input while at most [`CONFIRM_WINDOW`] inputs wait (then it waits too).
    async fn settle_when_confirmed(&self, pending: Vec<Confirmation>, ack: AckHandle) {
        let (binding, pause, cancel) = (self.binding.clone(), self.retry.max, self.cancel.clone());
        // The window is never closed; without a permit the input simply settles in place.
        let Ok(permit) = self.confirming.clone().acquire_owned().await else {
            return settle(ack, after_confirmation(confirm_all(pending).await, &binding, pause, &cancel).await);
        };
        tokio::spawn(async move {
            settle(ack, after_confirmation(confirm_all(pending).await, &binding, pause, &cancel).await);
            drop(permit);
        });
    }

    /// Waits until every input waiting for confirmations was settled (before the binding closes).
    pub(crate) async fn drain_confirmations(&self) {
        if let Ok(all) = self.confirming.acquire_many(CONFIRM_WINDOW).await {
            drop(all);
        }
    }

    /// Dead-letters a message that failed for good. The input is acknowledged only once the
    /// dead letter is confirmed; that wait happens off the worker, like an output's, so a flood
    /// of bad messages does not hold up the good ones behind a broker round trip each.
    async fn fail(&self, inv: &Invocation, failure: Failure, attempts: u32) -> Failed {
        let Some(dl) = &self.dead_letter else {
            tracing::error!(binding = %self.binding, %failure, attempts, "message failed and the binding has no dead letter (no group, or dead-letter = false); dropped");
            return Failed::Settled(Settlement::Reject);
        };
        match dl.send(inv.raw(), &failure, attempts).await.and_then(outstanding) {
            Ok(pending) => {
                tracing::warn!(binding = %self.binding, %failure, attempts, "message dead-lettered");
                match pending {
                    None => Failed::Settled(Settlement::Ack),
                    Some(confirmation) => Failed::Confirming(confirmation),
                }
            }
            Err(e) => {
                tracing::error!(binding = %self.binding, %failure, error = %e, "dead letter not confirmed; the input will be redelivered");
                pause_before_redelivery(self.retry.max, &self.cancel).await;
                Failed::Settled(Settlement::Requeue)
            }
        }
    }
}

/// What became of an input that failed for good.
enum Failed {
    /// Settle it now.
    Settled(Settlement),
    /// Its dead letter was sent; acknowledge it once this confirms (requeue if it fails).
    Confirming(Confirmation),
}

/// The settlement of an input whose outputs were sent: ack once confirmed; if the broker
/// refused them, requeue after a pause.
async fn after_confirmation(
    confirmed: Result<()>,
    binding: &str,
    pause: Duration,
    cancel: &CancellationToken,
) -> Settlement {
    match confirmed {
        Ok(()) => Settlement::Ack,
        Err(e) => {
            tracing::warn!(%binding, error = %e, "outputs not confirmed; the input will be redelivered");
            pause_before_redelivery(pause, cancel).await;
            Settlement::Requeue
        }
    }
}

/// When the broker refused our outputs, redelivering at once would spin: wait the binding's
/// largest retry delay first (cut short by shutdown).
async fn pause_before_redelivery(pause: Duration, cancel: &CancellationToken) {
    tokio::select! {
        _ = tokio::time::sleep(pause) => {}
        _ = cancel.cancelled() => {}
    }
}

/// The last layer: tells the binder.
pub(crate) fn settle(ack: AckHandle, settlement: Settlement) {
    ack.settle(settlement)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::{Outputs, handler_fn};

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy {
            max_attempts: 5,
            initial: Duration::from_secs(1),
            multiplier: 2.0,
            max: Duration::from_secs(3),
        };
        assert_eq!(p.delay_before(2), Duration::from_secs(1));
        assert_eq!(p.delay_before(3), Duration::from_secs(2));
        assert_eq!(p.delay_before(4), Duration::from_secs(3));
        assert_eq!(p.delay_before(40), Duration::from_secs(3));
    }

    #[test]
    fn correlation_prefers_correlation_id_then_id() {
        let mut inbound = Headers::new();
        inbound.insert("id", "the-id");
        let mut out = Headers::new();
        propagate(&inbound, &mut out);
        assert_eq!(out.correlation_id(), Some("the-id"));

        inbound.set_correlation_id("conv-1");
        inbound.insert("traceparent", "00-abc-def-01");
        let mut out = Headers::new();
        propagate(&inbound, &mut out);
        assert_eq!(out.correlation_id(), Some("conv-1"));
        assert_eq!(out.traceparent(), Some("00-abc-def-01"));

        let mut own = Headers::new();
        own.set_correlation_id("mine");
        propagate(&inbound, &mut own);
        assert_eq!(own.correlation_id(), Some("mine"));
    }

    #[test]
    fn dead_letter_carries_reason() {
        let original = Message::new(bytes::Bytes::from_static(b"{bad")).with_header("tenant", "acme");
        let dl = dead_letter_message(&original, "orders", &Failure::decode("invalid JSON"), 1);
        assert_eq!(dl.payload(), original.payload());
        assert_eq!(dl.headers().get_str("tenant"), Some("acme"));
        assert_eq!(dl.headers().get_str("x-original-destination"), Some("orders"));
        assert_eq!(dl.headers().get_str("x-exception-message"), Some("invalid JSON"));
        assert_eq!(dl.headers().get_str("x-exception-kind"), Some("decode"));
        assert_eq!(dl.headers().delivery_attempt(), Some(1));
    }

    fn test_invocation() -> Invocation {
        crate::runtime::test_invocation(Message::new(bytes::Bytes::from_static(b"1")))
    }

    #[test]
    fn content_type_check_lets_known_types_through() {
        let with = |ct: &[u8]| {
            let m = Message::new(bytes::Bytes::from_static(b"1")).with_header("contentType", ct.to_vec());
            check_content_type(&crate::runtime::test_invocation(m))
        };
        assert!(with(b"application/json").is_ok());
        assert!(with(b"text/plain; charset=utf-8").is_ok());
        assert!(with(b"application/vnd.order+json").is_ok());
        let unknown = with(b"application/x-avro").unwrap_err();
        assert_eq!((unknown.kind(), unknown.is_retryable()), ("decode", false));
        assert!(unknown.message().contains("application/x-avro"));
        assert_eq!(with(&[0xff, 0xfe]).unwrap_err().kind(), "decode");
        // No header: the binding's content type applies.
        assert!(check_content_type(&test_invocation()).is_ok());
    }

    #[tokio::test]
    async fn nothing_to_publish_is_confirmed_at_once() {
        assert!(publish_outputs(&test_invocation(), Outputs::none()).await.is_ok());
    }

    #[tokio::test]
    async fn outputs_without_an_output_binding_are_an_error() {
        let inv = test_invocation();
        let err = inv.output(Message::new(1u8)).unwrap_err();
        assert_eq!(err.kind(), "encode");
        assert!(err.message().contains("no output binding"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_stops_after_max_attempts_with_backoff() {
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let c = calls.clone();
        let func = handler_fn(move |_inv| {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Err::<Outputs, _>(Failure::handler("nope")) }
        });
        let policy = RetryPolicy {
            max_attempts: 3,
            initial: Duration::from_millis(100),
            multiplier: 2.0,
            max: Duration::from_secs(1),
        };
        let start = tokio::time::Instant::now();
        let out = retry(&policy, &func, &test_invocation(), &CancellationToken::new(), &mut Slot::unshared()).await;
        assert!(matches!(out, Attempts::Failed(ref f, 3) if f.kind() == "handler"), "{out:?}");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert_eq!(start.elapsed(), Duration::from_millis(300)); // 100 + 200, virtual time
    }

    #[tokio::test(start_paused = true)]
    async fn decode_failures_are_not_retried() {
        let func = handler_fn(|_inv| async { Err::<Outputs, _>(Failure::decode("bad")) });
        let policy = RetryPolicy {
            max_attempts: 5,
            initial: Duration::from_secs(1),
            multiplier: 2.0,
            max: Duration::from_secs(1),
        };
        let out = retry(&policy, &func, &test_invocation(), &CancellationToken::new(), &mut Slot::unshared()).await;
        assert!(matches!(out, Attempts::Failed(_, 1)), "{out:?}");
    }

    #[tokio::test]
    async fn deliveries_the_broker_took_back_are_skipped_and_requeued() {
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let c = calls.clone();
        let pipeline = Pipeline {
            env: crate::runtime::test_env(),
            func: handler_fn(move |_inv| {
                c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { Ok::<_, Failure>(Outputs::none()) }
            }),
            retry: RetryPolicy { max_attempts: 1, initial: Duration::ZERO, multiplier: 1.0, max: Duration::ZERO },
            dead_letter: None,
            binding: "in".into(),
            cancel: CancellationToken::new(),
            confirming: Arc::new(tokio::sync::Semaphore::new(CONFIRM_WINDOW as usize)),
        };
        for current in [false, true] {
            let acks = Arc::new(crate::runtime::RecordingAcks { current, ..crate::runtime::RecordingAcks::new() });
            let message = Message::from_parts(bytes::Bytes::from_static(b"1"), crate::Headers::new());
            pipeline.process(Delivery::new(message, AckHandle::new(acks.clone(), 1), None)).await;
            let expected = if current { Settlement::Ack } else { Settlement::Requeue };
            assert_eq!(acks.settlements(), [expected], "current = {current}");
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1, "only the current delivery was handled");
    }

    #[tokio::test]
    async fn panics_become_failures() {
        let func = handler_fn(|_inv| async {
            if true {
                panic!("kaboom");
            }
            Ok(Outputs::none())
        });
        let out = invoke_isolated(&func, test_invocation()).await;
        let failure = out.unwrap_err();
        assert_eq!(failure.kind(), "panic");
        assert_eq!(failure.message(), "kaboom");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_interrupts_backoff() {
        let func = handler_fn(|_inv| async { Err::<Outputs, _>(Failure::handler("later")) });
        let policy = RetryPolicy {
            max_attempts: 5,
            initial: Duration::from_secs(60),
            multiplier: 1.0,
            max: Duration::from_secs(60),
        };
        let cancel = CancellationToken::new();
        cancel.cancel();
        let out = retry(&policy, &func, &test_invocation(), &cancel, &mut Slot::unshared()).await;
        assert!(matches!(out, Attempts::Interrupted), "{out:?}");
    }
}
