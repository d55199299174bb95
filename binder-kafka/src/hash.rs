//! A hasher for the binder's integer-keyed maps (partition numbers, delivery sequence numbers).
//!
//! Those keys are small or sequential integers chosen by the broker or by us, never by a
//! remote party trying to collide them, and SipHash cost more than the rest of a map update on
//! the per-record paths. One multiplication by a 64-bit odd constant spreads them over the high
//! bits, which hashbrown reads first.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

const SPREAD: u64 = 0x9E37_79B9_7F4A_7C15;

/// Multiplicative hashing of integer keys.
#[derive(Default)]
pub(crate) struct IntHash(u64);

impl Hasher for IntHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(SPREAD);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(SPREAD);
    }
    fn write_i32(&mut self, n: i32) {
        self.write_u64(u64::from(n as u32));
    }
}

/// A map keyed by an integer, hashed by [`IntHash`].
pub(crate) type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHash>>;
/// A set of integers, hashed by [`IntHash`].
pub(crate) type IntSet<K> = HashSet<K, BuildHasherDefault<IntHash>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_keys_spread_over_the_high_bits() {
        let tops: HashSet<u64> = (0u64..128)
            .map(|n| {
                let mut h = IntHash::default();
                h.write_u64(n);
                h.finish() >> 57
            })
            .collect();
        assert!(tops.len() > 64, "only {} distinct top-7-bit groups for 128 keys", tops.len());
        let mut m: IntMap<i32, i32> = IntMap::default();
        m.extend((0..1000).map(|p| (p, -p)));
        assert!((0..1000).all(|p| m.get(&p) == Some(&-p)));
    }
}
