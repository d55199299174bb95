//! Delivery confirmations by sequence number: one ledger per librdkafka producer.
//!
//! Each record gets the next sequence number as its delivery opaque (a plain integer, so
//! librdkafka carries no allocation of ours), and its [`Confirmation`] asks the ledger about that
//! number. The delivery callback marks the number settled, keeps the error if there was one and
//! wakes the confirmation's task if one is waiting. Settled numbers are kept as a bitmap from the
//! lowest unsettled one, which stays small because librdkafka reports every record it took
//! (delivered, failed, timed out or purged). The bitmap spans from the oldest unsettled record
//! to the newest: one bit per record sent meanwhile, so a record held up for librdkafka's whole
//! `message.timeout.ms` (5 minutes by default) while others flow at 100,000 a second costs
//! about 4 MB until it settles.
//!
//! Most confirmations are asked about after their record settled and never failed. Two atomics
//! answer those without the lock: the number below which every record is settled, and whether
//! any failure is kept.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Poll, Waker};

use bindery::binder::{Confirmation, Ledger};
use bindery::{Error, Result};

use crate::context::lock;
use crate::hash::{IntMap, IntSet};

#[derive(Default)]
struct State {
    /// Every number below `base` is settled; `base` is a multiple of 64.
    base: u64,
    /// Bit `i` of word `w`: number `base + 64 * w + i` is settled.
    settled: VecDeque<u64>,
    /// Settled numbers whose send failed, until their confirmation takes the error.
    failed: IntMap<u64, Error>,
    /// Confirmations waiting for their number.
    waiting: IntMap<u64, Waker>,
    /// Unsettled numbers whose confirmation was dropped: their outcome is not kept.
    abandoned: IntSet<u64>,
}

impl State {
    fn is_settled(&self, seq: u64) -> bool {
        if seq < self.base {
            return true;
        }
        let at = seq - self.base;
        usize::try_from(at / 64).ok().and_then(|w| self.settled.get(w)).is_some_and(|word| word & (1 << (at % 64)) != 0)
    }

    /// Marks `seq` settled; returns the new `base` if it moved.
    fn mark(&mut self, seq: u64) -> Option<u64> {
        if seq < self.base {
            return None;
        }
        let at = seq - self.base;
        let Ok(w) = usize::try_from(at / 64) else { return None };
        if self.settled.len() <= w {
            self.settled.resize(w + 1, 0);
        }
        self.settled[w] |= 1 << (at % 64);
        let before = self.base;
        while self.settled.front() == Some(&u64::MAX) {
            self.settled.pop_front();
            self.base += 64;
        }
        (self.base != before).then_some(self.base)
    }
}

/// The confirmations of one producer's records.
#[derive(Default)]
pub(crate) struct DeliveryLedger {
    next: AtomicU64,
    state: std::sync::Mutex<State>,
    /// `State::base` as last stored: every number below it is settled.
    settled_below: AtomicU64,
    /// Whether `State::failed` may hold an error. Set before `settled_below` moves past the
    /// failed number, so a reader that sees the number settled also sees the flag.
    any_failed: AtomicBool,
}

impl DeliveryLedger {
    /// A number for the next record.
    pub(crate) fn issue(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// The confirmation of record `seq`.
    pub(crate) fn confirmation(self: &Arc<Self>, seq: u64) -> Confirmation {
        Confirmation::ledger(self.clone(), seq)
    }

    /// Record `seq` is settled: delivered (`Ok`) or not. Also used for a number whose record
    /// librdkafka never took, so the bitmap can move past it.
    pub(crate) fn settle(&self, seq: u64, outcome: Result<()>) {
        let waker = {
            let mut s = lock(&self.state);
            let abandoned = !s.abandoned.is_empty() && s.abandoned.remove(&seq);
            if let (Err(e), false) = (outcome, abandoned) {
                s.failed.insert(seq, e);
                self.any_failed.store(true, Ordering::Release);
            }
            if let Some(base) = s.mark(seq) {
                self.settled_below.store(base, Ordering::Release);
            }
            if s.waiting.is_empty() { None } else { s.waiting.remove(&seq) }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Settled and never failed, as far as the atomics tell without the lock. A settled number
    /// has no waiter left (settling removes it) and, with no failure kept, no error to hand out.
    fn settled_clean(&self, seq: u64) -> bool {
        seq < self.settled_below.load(Ordering::Acquire) && !self.any_failed.load(Ordering::Acquire)
    }

    /// Takes the error kept for `seq`, if any; once none is kept, says so to `settled_clean`.
    fn take_failure(&self, s: &mut State, seq: u64) -> Option<Error> {
        let failure = s.failed.remove(&seq);
        if s.failed.is_empty() {
            self.any_failed.store(false, Ordering::Release);
        }
        failure
    }

    /// Bitmap words, kept errors, waiters and abandoned numbers.
    #[cfg(test)]
    fn kept(&self) -> (usize, usize, usize, usize) {
        let s = lock(&self.state);
        (s.settled.len(), s.failed.len(), s.waiting.len(), s.abandoned.len())
    }
}

impl Ledger for DeliveryLedger {
    fn poll_confirmed(&self, seq: u64, cx: &mut std::task::Context<'_>) -> Poll<Result<()>> {
        if self.settled_clean(seq) {
            return Poll::Ready(Ok(()));
        }
        let mut s = lock(&self.state);
        if s.is_settled(seq) {
            // Most records were never waited for and never failed: skip the lookups then.
            if !s.waiting.is_empty() {
                s.waiting.remove(&seq);
            }
            return Poll::Ready(match s.failed.is_empty() {
                true => Ok(()),
                false => self.take_failure(&mut s, seq).map_or(Ok(()), Err),
            });
        }
        match s.waiting.get_mut(&seq) {
            Some(w) if w.will_wake(cx.waker()) => {}
            Some(w) => w.clone_from(cx.waker()),
            None => {
                s.waiting.insert(seq, cx.waker().clone());
            }
        }
        Poll::Pending
    }

    fn forget(&self, seq: u64) {
        if self.settled_clean(seq) {
            return;
        }
        let mut s = lock(&self.state);
        s.waiting.remove(&seq);
        if s.is_settled(seq) {
            self.take_failure(&mut s, seq);
        } else {
            s.abandoned.insert(seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll(c: &mut Confirmation) -> Poll<Result<()>> {
        std::pin::Pin::new(c).poll(&mut std::task::Context::from_waker(Waker::noop()))
    }

    use std::future::Future as _;

    #[test]
    fn confirms_in_any_order_and_keeps_only_the_unsettled_window() {
        let ledger = Arc::new(DeliveryLedger::default());
        let seqs: Vec<u64> = (0..200).map(|_| ledger.issue()).collect();
        let mut confirmations: Vec<Confirmation> = seqs.iter().map(|s| ledger.confirmation(*s)).collect();
        // Deliveries arrive out of order (several partitions), the last one first.
        for s in seqs.iter().rev().take(100) {
            ledger.settle(*s, Ok(()));
        }
        assert!(poll(&mut confirmations[0]).is_pending());
        assert!(matches!(poll(&mut confirmations[150]), Poll::Ready(Ok(()))));
        for s in seqs.iter().take(100) {
            ledger.settle(*s, Ok(()));
        }
        assert!(matches!(poll(&mut confirmations[0]), Poll::Ready(Ok(()))));
        // Everything below 192 is settled: only the last partial word is kept, no waiter remains.
        assert_eq!(ledger.kept(), (1, 0, 0, 0));
    }

    #[test]
    fn a_failed_send_fails_its_own_confirmation_only() {
        let ledger = Arc::new(DeliveryLedger::default());
        let (a, b) = (ledger.issue(), ledger.issue());
        let (mut ca, mut cb) = (ledger.confirmation(a), ledger.confirmation(b));
        ledger.settle(a, Err(Error::broker("message timed out")));
        ledger.settle(b, Ok(()));
        match poll(&mut ca) {
            Poll::Ready(Err(e)) => assert!(e.to_string().contains("timed out"), "{e}"),
            other => panic!("expected the send's error, got {other:?}"),
        }
        assert!(matches!(poll(&mut cb), Poll::Ready(Ok(()))));
        assert_eq!(ledger.kept().1, 0, "the error is handed out once, then dropped");
    }

    #[test]
    fn a_failure_in_a_settled_word_is_still_handed_out() {
        let ledger = Arc::new(DeliveryLedger::default());
        let seqs: Vec<u64> = (0..130).map(|_| ledger.issue()).collect();
        let mut confirmations: Vec<Confirmation> = seqs.iter().map(|s| ledger.confirmation(*s)).collect();
        for s in &seqs {
            let outcome = if *s == 5 { Err(Error::broker("record too large")) } else { Ok(()) };
            ledger.settle(*s, outcome);
        }
        // Both words are full, so the lock-free watermark covers every number below 128.
        assert_eq!(ledger.settled_below.load(Ordering::Relaxed), 128);
        assert!(matches!(poll(&mut confirmations[6]), Poll::Ready(Ok(()))));
        match poll(&mut confirmations[5]) {
            Poll::Ready(Err(e)) => assert!(e.to_string().contains("too large"), "{e}"),
            other => panic!("the failed record must get its error, got {other:?}"),
        }
        assert!(!ledger.any_failed.load(Ordering::Relaxed), "its error was handed out: nothing is kept");
        assert!(matches!(poll(&mut confirmations[7]), Poll::Ready(Ok(()))));
        assert!(matches!(poll(&mut confirmations[129]), Poll::Ready(Ok(()))));
        assert_eq!(ledger.kept(), (1, 0, 0, 0));

        // A failure dropped unseen: forgetting it clears the flag too.
        let more: Vec<u64> = (0..126).map(|_| ledger.issue()).collect();
        let c = ledger.confirmation(more[0]);
        for s in &more {
            let outcome = if *s == more[0] { Err(Error::broker("purged")) } else { Ok(()) };
            ledger.settle(*s, outcome);
        }
        assert!(ledger.any_failed.load(Ordering::Relaxed));
        drop(c);
        assert!(!ledger.any_failed.load(Ordering::Relaxed));
        assert_eq!(ledger.kept().1, 0);
    }

    #[test]
    fn a_dropped_confirmation_leaves_nothing_behind() {
        let ledger = Arc::new(DeliveryLedger::default());
        let s = ledger.issue();
        let mut c = ledger.confirmation(s);
        assert!(poll(&mut c).is_pending()); // now waiting
        assert_eq!(ledger.kept().2, 1);
        drop(c);
        assert_eq!(ledger.kept(), (0, 0, 0, 1));
        ledger.settle(s, Err(Error::broker("purged")));
        assert_eq!(ledger.kept(), (1, 0, 0, 0), "nobody will ask for that error: not kept");

        // Dropped after it failed, before anyone looked: the error goes with it.
        let s = ledger.issue();
        let c = ledger.confirmation(s);
        ledger.settle(s, Err(Error::broker("purged")));
        assert_eq!(ledger.kept().1, 1);
        drop(c);
        assert_eq!(ledger.kept().1, 0);
    }

    #[tokio::test]
    async fn a_waiting_task_is_woken_from_another_thread() {
        let ledger = Arc::new(DeliveryLedger::default());
        let s = ledger.issue();
        let c = ledger.confirmation(s);
        let l = ledger.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            l.settle(s, Ok(()));
        });
        tokio::time::timeout(std::time::Duration::from_secs(5), c).await.unwrap().unwrap();
        t.join().unwrap();
    }
}
