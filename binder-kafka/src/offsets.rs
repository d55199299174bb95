//! Which offsets may be committed: per partition, the lowest offset not yet finished.
//!
//! The consumer admits every record it hands to the runtime; settlements arrive in any order
//! (concurrency > 1 runs different keys of one partition in parallel). The commit point of a
//! partition is the lowest admitted offset not yet settled, or the offset after the last
//! admitted one when all are settled — so a gap (an unfinished record) holds the commit back
//! no matter how many later records finished. A requeue rewinds the partition: everything
//! from the requeued offset on is forgotten and will be admitted again when the consumer
//! re-reads it; settlements of the forgotten deliveries are ignored (their epoch is stale).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bindery::binder::Settlement;

use crate::hash::IntMap;

/// One admitted record of a partition.
#[derive(Debug, Clone, Copy)]
struct Slot {
    offset: i64,
    /// The partition's epoch when the record was admitted.
    epoch: u64,
    settled: bool,
}

#[derive(Debug)]
struct Partition {
    /// Epoch given to records admitted now.
    epoch: u64,
    /// `epoch`, readable without the tracker's lock; 0 once the partition is revoked.
    cell: Arc<AtomicU64>,
    /// Admitted records in offset order (they are admitted in that order). The first one is
    /// never settled: settled records at the front are dropped as they finish, so the front is
    /// the commit point. Settled records behind an unsettled one stay until it finishes, or
    /// until the window is compacted.
    window: VecDeque<Slot>,
    /// Compact (drop settled records from the middle) when the window reaches this length:
    /// memory then follows the number of unsettled records, as with a map of them, while
    /// in-order work costs a push and a pop.
    compact_at: usize,
    /// The offset after the last admitted one.
    next: i64,
    /// After a rewind: the only offset admitted next (records fetched before the seek are skipped).
    rewind_to: Option<i64>,
}

/// The shortest window that is compacted.
const MIN_COMPACT: usize = 1024;

impl Partition {
    fn commit_point(&self) -> i64 {
        self.window.front().map_or(self.next, |s| s.offset)
    }

    /// The position of the unsettled record at `offset` admitted in `epoch`.
    fn find(&self, offset: i64, epoch: u64) -> Option<usize> {
        let i = self.window.binary_search_by_key(&offset, |s| s.offset).ok()?;
        let s = self.window[i];
        (s.epoch == epoch && !s.settled).then_some(i)
    }
}

/// A partition's current epoch, read without the tracker's lock. A record admitted in the
/// epoch the cell still shows is outstanding for sure (each delivery is settled once, after
/// the runtime asked): only a rewind or a revoke, which change the cell, can take it back.
/// When the cell moved on, [`Tracker::is_current`] decides under the lock (records before a
/// rewind point stay current). This keeps the lock, which the consuming task needs for every
/// record it admits, to two takings a record instead of three.
#[derive(Debug, Clone)]
pub(crate) struct EpochCell(Arc<AtomicU64>);

impl EpochCell {
    /// True when nothing was rewound or revoked since `epoch`.
    pub(crate) fn unchanged_since(&self, epoch: u64) -> bool {
        self.0.load(Ordering::Acquire) == epoch
    }
}

/// What a settlement changed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Settled {
    /// Stale (revoked partition, rewound delivery) or not moving the commit point.
    Nothing,
    /// The commit point of the partition moved to this offset.
    Advanced(i64),
    /// The partition must be re-read from this offset.
    Rewind(i64),
}

/// Offsets of all partitions of one consumer.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    partitions: IntMap<i32, Partition>,
    epochs: u64,
}

impl Tracker {
    fn epoch(&mut self) -> u64 {
        self.epochs += 1;
        self.epochs
    }

    /// Admits a fetched record; `None` means skip it (already admitted, or fetched before a
    /// rewind took effect). Otherwise the epoch to settle it with.
    pub(crate) fn admit(&mut self, partition: i32, offset: i64) -> Option<u64> {
        if !self.partitions.contains_key(&partition) {
            let epoch = self.epoch();
            let p = Partition {
                epoch,
                cell: Arc::new(AtomicU64::new(epoch)),
                window: VecDeque::new(),
                compact_at: MIN_COMPACT,
                next: offset,
                rewind_to: None,
            };
            self.partitions.insert(partition, p);
        }
        let p = self.partitions.get_mut(&partition)?;
        if offset < p.next {
            return None;
        }
        match p.rewind_to {
            Some(at) if at != offset => return None,
            Some(_) => p.rewind_to = None,
            None => {}
        }
        if p.window.len() >= p.compact_at {
            p.window.retain(|s| !s.settled);
            p.compact_at = MIN_COMPACT.max(2 * p.window.len());
        }
        p.window.push_back(Slot { offset, epoch: p.epoch, settled: false });
        p.next = offset + 1;
        Some(p.epoch)
    }

    /// Records how the record at `offset` (admitted in `epoch`) was settled.
    pub(crate) fn settle(&mut self, partition: i32, offset: i64, epoch: u64, settlement: Settlement) -> Settled {
        let Some(p) = self.partitions.get_mut(&partition) else { return Settled::Nothing };
        let Some(i) = p.find(offset, epoch) else { return Settled::Nothing };
        match settlement {
            Settlement::Requeue => {
                p.window.truncate(i);
                p.next = offset;
                p.rewind_to = Some(offset);
                self.epochs += 1;
                p.epoch = self.epochs;
                p.cell.store(p.epoch, Ordering::Release);
                Settled::Rewind(offset)
            }
            // Ack, and Reject (the runtime dead-lettered it first): done either way.
            _ => {
                p.window[i].settled = true;
                if i > 0 {
                    return Settled::Nothing;
                }
                while p.window.front().is_some_and(|s| s.settled) {
                    p.window.pop_front();
                }
                Settled::Advanced(p.commit_point())
            }
        }
    }

    /// Whether the record at `offset`, admitted in `epoch`, is still outstanding: false once its
    /// partition was revoked, or rewound to it or before it.
    pub(crate) fn is_current(&self, partition: i32, offset: i64, epoch: u64) -> bool {
        self.partitions.get(&partition).is_some_and(|p| p.find(offset, epoch).is_some())
    }

    /// The epoch of `partition` as a cell that follows it without the tracker's lock (see
    /// [`EpochCell`]).
    pub(crate) fn epoch_cell(&self, partition: i32) -> EpochCell {
        EpochCell(self.partitions.get(&partition).map_or_else(|| Arc::new(AtomicU64::new(0)), |p| p.cell.clone()))
    }

    /// The commit point of every partition.
    pub(crate) fn commit_points(&self) -> Vec<(i32, i64)> {
        let mut v: Vec<_> = self.partitions.iter().map(|(k, p)| (*k, p.commit_point())).collect();
        v.sort_unstable();
        v
    }

    /// Forgets revoked partitions, returning their commit points; later settlements of their
    /// records are ignored.
    pub(crate) fn revoke(&mut self, partitions: &[i32]) -> Vec<(i32, i64)> {
        let mut v: Vec<_> = partitions
            .iter()
            .filter_map(|k| {
                let p = self.partitions.remove(k)?;
                p.cell.store(0, Ordering::Release); // epochs start at 1: no lane matches any more
                Some((*k, p.commit_point()))
            })
            .collect();
        v.sort_unstable();
        v
    }

    /// Records handed out and not settled, over all partitions.
    #[cfg(test)]
    pub(crate) fn unsettled(&self) -> usize {
        self.partitions.values().map(|p| p.window.iter().filter(|s| !s.settled).count()).sum()
    }

    /// Records the tracker holds (settled ones behind an unsettled one included).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.partitions.values().map(|p| p.window.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Settlement::*;

    /// A tracker with `offsets` of partition 0 admitted (in one epoch, which it returns).
    fn admitted(offsets: std::ops::Range<i64>) -> (Tracker, u64) {
        let mut t = Tracker::default();
        let mut epoch = 0;
        for o in offsets {
            epoch = t.admit(0, o).unwrap();
        }
        (t, epoch)
    }

    #[test]
    fn in_order_acks_advance() {
        let mut t = Tracker::default();
        let e = t.admit(0, 10).unwrap();
        assert_eq!(t.commit_points(), [(0, 10)]);
        assert_eq!(t.admit(0, 11), Some(e));
        assert_eq!(t.settle(0, 10, e, Ack), Settled::Advanced(11));
        assert_eq!(t.settle(0, 11, e, Ack), Settled::Advanced(12));
        assert_eq!(t.commit_points(), [(0, 12)]);
        assert_eq!(t.unsettled(), 0);
    }

    #[test]
    fn gap_holds_commit_back() {
        let (mut t, e) = admitted(0..5);
        // Out-of-order completion: 1..4 finish, 0 is still running.
        for o in (1..5).rev() {
            assert_eq!(t.settle(0, o, e, Ack), Settled::Nothing);
        }
        assert_eq!(t.commit_points(), [(0, 0)], "unfinished offset 0 must not be committed past");
        assert_eq!(t.settle(0, 0, e, Ack), Settled::Advanced(5));
    }

    #[test]
    fn offset_gaps_in_the_log_are_fine() {
        // Compacted topics and transaction markers leave holes in offsets.
        let mut t = Tracker::default();
        let e = t.admit(3, 100).unwrap();
        t.admit(3, 105).unwrap();
        assert_eq!(t.settle(3, 105, e, Ack), Settled::Nothing);
        assert_eq!(t.settle(3, 100, e, Ack), Settled::Advanced(106));
    }

    #[test]
    fn epoch_cells_move_only_on_rewind_and_revoke() {
        let (mut t, e) = admitted(0..4);
        let cell = t.epoch_cell(0);
        assert!(cell.unchanged_since(e));
        // Settling and admitting more leave the epoch as it is: the lock-free answer holds.
        assert_eq!(t.settle(0, 0, e, Ack), Settled::Advanced(1));
        assert_eq!(t.admit(0, 4), Some(e));
        assert!(cell.unchanged_since(e));
        // A rewind moves it: lanes of the old epoch ask the tracker, which still knows offset 1.
        assert_eq!(t.settle(0, 2, e, Requeue), Settled::Rewind(2));
        assert!(!cell.unchanged_since(e));
        let f = t.admit(0, 2).unwrap();
        assert!(cell.unchanged_since(f), "the cell follows the partition's new epoch");
        assert!(t.is_current(0, 1, e));
        // A revoke leaves it matching no epoch, also after the partition comes back.
        t.revoke(&[0]);
        assert!(!cell.unchanged_since(f) && !cell.unchanged_since(e));
        let g = t.admit(0, 2).unwrap();
        assert!(!cell.unchanged_since(g), "a reassigned partition has a new cell");
        assert!(t.epoch_cell(0).unchanged_since(g));
        assert!(!t.epoch_cell(9).unchanged_since(g), "an unknown partition matches nothing");
    }

    #[test]
    fn revoked_and_rewound_records_are_no_longer_current() {
        let (mut t, e) = admitted(0..4);
        let f = t.admit(1, 50).unwrap();
        assert!(t.is_current(0, 1, e) && t.is_current(1, 50, f));
        // A requeue of offset 2 rewinds partition 0: 2 and 3 come again, 0 and 1 are still out.
        assert_eq!(t.settle(0, 2, e, Requeue), Settled::Rewind(2));
        assert!(t.is_current(0, 1, e));
        assert!(!t.is_current(0, 2, e) && !t.is_current(0, 3, e));
        // Settled records are not current either.
        assert_eq!(t.settle(0, 1, e, Ack), Settled::Nothing); // offset 0 is still out
        assert!(!t.is_current(0, 1, e));
        // Revoking partition 1 takes its records back.
        t.revoke(&[1]);
        assert!(!t.is_current(1, 50, f));
    }

    #[test]
    fn reject_counts_as_done() {
        let mut t = Tracker::default();
        let e = t.admit(0, 0).unwrap();
        assert_eq!(t.settle(0, 0, e, Reject), Settled::Advanced(1));
    }

    #[test]
    fn requeue_rewinds_and_ignores_stale() {
        let (mut t, e) = admitted(0..4);
        assert_eq!(t.settle(0, 0, e, Ack), Settled::Advanced(1));
        assert_eq!(t.settle(0, 2, e, Requeue), Settled::Rewind(2));
        assert_eq!(t.commit_points(), [(0, 1)]);
        // Offset 1 (before the rewind) is still tracked under its own epoch.
        // Offset 3 was handed out before the rewind: its settlement is stale.
        assert_eq!(t.settle(0, 3, e, Ack), Settled::Nothing);
        // Records fetched before the seek took effect are skipped until offset 2 comes back.
        assert_eq!(t.admit(0, 3), None);
        let e2 = t.admit(0, 2).unwrap();
        assert_ne!(e2, e);
        assert_eq!(t.admit(0, 3), Some(e2));
        assert_eq!(t.settle(0, 2, e2, Ack), Settled::Nothing, "offset 1 still unsettled");
        assert_eq!(t.settle(0, 1, e, Ack), Settled::Advanced(3));
        assert_eq!(t.settle(0, 3, e2, Ack), Settled::Advanced(4));
    }

    #[test]
    fn duplicates_are_skipped() {
        let mut t = Tracker::default();
        t.admit(0, 5).unwrap();
        assert_eq!(t.admit(0, 5), None);
        assert_eq!(t.admit(0, 4), None);
    }

    #[test]
    fn revoke_returns_points_and_forgets() {
        let mut t = Tracker::default();
        let e0 = t.admit(0, 0).unwrap();
        t.admit(0, 1).unwrap();
        let e1 = t.admit(1, 7).unwrap();
        t.settle(0, 1, e0, Ack);
        assert_eq!(t.revoke(&[0, 2]), [(0, 0)], "only finished work counts");
        assert_eq!(t.settle(0, 0, e0, Ack), Settled::Nothing, "revoked: never committed by us");
        assert_eq!(t.commit_points(), [(1, 7)]);
        // Reassigned later: a new epoch, old settlements stay ignored.
        let e0b = t.admit(0, 0).unwrap();
        assert_ne!(e0b, e0);
        assert_eq!(t.settle(0, 0, e0, Ack), Settled::Nothing);
        assert_eq!(t.settle(1, 7, e1, Ack), Settled::Advanced(8));
    }

    #[test]
    fn a_stuck_record_holds_the_commit_but_not_the_memory() {
        // Offset 0 never finishes while 10,000 later records do.
        let mut t = Tracker::default();
        let e = t.admit(0, 0).unwrap();
        for o in 1..10_000 {
            assert_eq!(t.admit(0, o), Some(e));
            assert_eq!(t.settle(0, o, e, Ack), Settled::Nothing);
        }
        assert_eq!(t.commit_points(), [(0, 0)]);
        assert_eq!(t.unsettled(), 1);
        assert!(t.held() <= 2 * MIN_COMPACT, "settled records are compacted away: {} held", t.held());
        // Compaction kept what matters: offset 0 finishing commits past everything.
        assert!(t.is_current(0, 0, e) && !t.is_current(0, 5, e));
        assert_eq!(t.settle(0, 0, e, Ack), Settled::Advanced(10_000));
        assert_eq!(t.held(), 0);
    }

    #[test]
    fn settling_twice_changes_nothing() {
        let (mut t, e) = admitted(0..3);
        assert_eq!(t.settle(0, 1, e, Ack), Settled::Nothing);
        assert_eq!(t.settle(0, 1, e, Requeue), Settled::Nothing, "already done: no rewind");
        assert_eq!(t.settle(0, 0, e, Ack), Settled::Advanced(2));
        assert_eq!(t.settle(0, 0, e, Ack), Settled::Nothing);
    }
}
