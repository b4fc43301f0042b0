//! The end-to-end checksum, xxh3-128 (default secret, seed 0), computed by our own streaming
//! state for two things the `xxhash-rust` crate's cannot do:
//! - **holes for free.** `update_zeros` hashes a run of zeros (a sparse file's hole) without
//!   touching memory: a stripe of zeros only adds a constant per lane, so a whole 1 KiB block is
//!   eight additions and the block's scramble. A 4 GiB hole costs milliseconds, not seconds.
//! - **AVX2 at run time.** A release build for baseline x86-64 would hash with SSE2 on every
//!   CPU; `kernel` picks AVX2 where the CPU has it.
//!
//! The digest is bit for bit the crate's `xxh3_128` of the same bytes (tested below against it,
//! for every length around the buffer, block and short-input boundaries, and for zero runs
//! anywhere in a stream), so a peer built either way agrees. Inputs of up to 240 bytes take
//! xxh3's short-input formulas, which are the crate's.

mod kernel;

use kernel::{Acc, STRIPE, STRIPES_PER_BLOCK};

/// Bytes held back before stripes are consumed: a digest of up to 240 bytes needs them all.
const BUFFER: usize = 256;
/// Inputs up to this long are hashed by the short-input formulas.
const SHORT_MAX: u64 = 240;

const PRIME32_1: u64 = 0x9E37_79B1;
const PRIME32_2: u64 = 0x85EB_CA77;
const PRIME32_3: u64 = 0xC2B2_AE3D;
const PRIME64_1: u64 = 0x9E37_79B1_85EB_CA87;
const PRIME64_2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const PRIME64_3: u64 = 0x1656_67B1_9E37_79F9;
const PRIME64_4: u64 = 0x85EB_CA77_C2B2_AE63;
const PRIME64_5: u64 = 0x27D4_EB2F_1656_67C5;

/// The accumulator lanes before any input.
const INITIAL: Acc =
    [PRIME32_3, PRIME64_1, PRIME64_2, PRIME64_3, PRIME64_4, PRIME32_2, PRIME64_5, PRIME32_1];

/// xxh3-128 of a stream of bytes and zero runs.
#[derive(Clone)]
pub struct Xxh3 {
    acc: Acc,
    /// Stripes accumulated in the current block.
    stripe: usize,
    /// Bytes seen, zeros included.
    total: u64,
    /// Bytes not yet accumulated: all of them up to `BUFFER`, then 1 to `BUFFER` of them (a
    /// stripe is consumed only once a byte follows it, as the last one is hashed differently).
    pending: [u8; BUFFER],
    pending_len: usize,
    /// The last stripe accumulated: the start of the final stripe when fewer bytes are pending.
    last: [u8; STRIPE],
}

impl Default for Xxh3 {
    fn default() -> Self {
        Self::new()
    }
}

impl Xxh3 {
    /// A fresh state: the digest of nothing so far.
    pub fn new() -> Self {
        Self {
            acc: INITIAL,
            stripe: 0,
            total: 0,
            pending: [0; BUFFER],
            pending_len: 0,
            last: [0; STRIPE],
        }
    }

    /// Hashes `data` next.
    pub fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        let room = BUFFER - self.pending_len;
        if data.len() <= room {
            self.pending[self.pending_len..][..data.len()].copy_from_slice(data);
            self.pending_len += data.len();
            return;
        }
        // Fill the buffer and take its stripes: more follows, so none of them is the last.
        self.pending[self.pending_len..].copy_from_slice(&data[..room]);
        data = &data[room..];
        self.consume_pending();
        let whole = (data.len() - 1) / STRIPE * STRIPE;
        if whole > 0 {
            kernel::consume(&mut self.acc, &mut self.stripe, &data[..whole]);
            self.last.copy_from_slice(&data[whole - STRIPE..whole]);
        }
        self.hold(&data[whole..]);
    }

    /// Hashes `n` zero bytes next, without reading or writing `n` bytes of memory.
    pub fn update_zeros(&mut self, mut n: u64) {
        self.total += n;
        let room = BUFFER - self.pending_len;
        if n <= room as u64 {
            self.pending[self.pending_len..][..n as usize].fill(0);
            self.pending_len += n as usize;
            return;
        }
        self.pending[self.pending_len..].fill(0);
        n -= room as u64;
        self.consume_pending();
        let stripes = (n - 1) / STRIPE as u64;
        if stripes > 0 {
            self.zero_stripes(stripes);
            self.last = [0; STRIPE];
        }
        let rest = (n - stripes * STRIPE as u64) as usize;
        self.pending[..rest].fill(0);
        self.pending_len = rest;
    }

    /// The digest of everything hashed so far (the state stays usable).
    pub fn digest128(&self) -> u128 {
        if self.total <= SHORT_MAX {
            return xxhash_rust::xxh3::xxh3_128(&self.pending[..self.pending_len]);
        }
        let (mut acc, mut stripe) = (self.acc, self.stripe);
        let pending = &self.pending[..self.pending_len];
        let whole = (pending.len() - 1) / STRIPE * STRIPE;
        kernel::consume(&mut acc, &mut stripe, &pending[..whole]);
        let mut final_stripe = [0u8; STRIPE];
        let from_last = STRIPE.saturating_sub(pending.len());
        final_stripe[..from_last].copy_from_slice(&self.last[STRIPE - from_last..]);
        final_stripe[from_last..].copy_from_slice(&pending[pending.len() + from_last - STRIPE..]);
        kernel::accumulate(
            &mut acc,
            &final_stripe,
            &kernel::SECRET[kernel::SECRET.len() - STRIPE - 7..],
        );
        let low = merge(&acc, 11, self.total.wrapping_mul(PRIME64_1));
        let high =
            merge(&acc, kernel::SECRET.len() - STRIPE - 11, !self.total.wrapping_mul(PRIME64_2));
        (u128::from(high) << 64) | u128::from(low)
    }

    /// Accumulates the full buffer's stripes.
    fn consume_pending(&mut self) {
        kernel::consume(&mut self.acc, &mut self.stripe, &self.pending);
        self.last.copy_from_slice(&self.pending[BUFFER - STRIPE..]);
        self.pending_len = 0;
    }

    /// Keeps `rest` (what follows the accumulated stripes) for later.
    fn hold(&mut self, rest: &[u8]) {
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    /// Accumulates `n` stripes of zeros: stripe by stripe to the end of the current block,
    /// then whole blocks at once, then the rest.
    fn zero_stripes(&mut self, mut n: u64) {
        while n > 0 && self.stripe != 0 {
            self.zero_stripe();
            n -= 1;
        }
        for _ in 0..n / STRIPES_PER_BLOCK as u64 {
            for (lane, add) in self.acc.iter_mut().zip(kernel::ZERO_BLOCK) {
                *lane = lane.wrapping_add(add);
            }
            kernel::scramble(&mut self.acc);
        }
        for _ in 0..n % STRIPES_PER_BLOCK as u64 {
            self.zero_stripe();
        }
    }

    fn zero_stripe(&mut self) {
        for (lane, add) in self.acc.iter_mut().zip(kernel::ZERO_STRIPES[self.stripe]) {
            *lane = lane.wrapping_add(add);
        }
        self.stripe += 1;
        if self.stripe == STRIPES_PER_BLOCK {
            kernel::scramble(&mut self.acc);
            self.stripe = 0;
        }
    }
}

/// xxh3-128 of `data`.
pub fn xxh3_128(data: &[u8]) -> u128 {
    let mut hasher = Xxh3::new();
    hasher.update(data);
    hasher.digest128()
}

/// Folds the lanes into 64 bits with the secret at `at`, starting from `seed`.
fn merge(acc: &Acc, at: usize, seed: u64) -> u64 {
    let mut result = seed;
    for pair in 0..4 {
        let a = acc[pair * 2] ^ kernel::word(&kernel::SECRET, at + pair * 16);
        let b = acc[pair * 2 + 1] ^ kernel::word(&kernel::SECRET, at + pair * 16 + 8);
        let product = u128::from(a) * u128::from(b);
        result = result.wrapping_add((product as u64) ^ ((product >> 64) as u64));
    }
    avalanche(result)
}

fn avalanche(mut h: u64) -> u64 {
    h ^= h >> 37;
    h = h.wrapping_mul(0x1656_6791_9E37_79F9);
    h ^ (h >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use xxhash_rust::xxh3::xxh3_128 as reference;

    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    /// One update of every length through four blocks: the short formulas, the buffer's edge,
    /// every block position of the final stripe.
    #[test]
    fn every_length_matches_the_reference() {
        let data = noise(4200, 7);
        for len in 0..data.len() {
            assert_eq!(xxh3_128(&data[..len]), reference(&data[..len]), "length {len}");
        }
    }

    /// A large input in uneven pieces, and a digest taken midway leaves the state usable.
    #[test]
    fn pieces_and_midway_digests_match_the_reference() {
        let data = noise(3 << 20, 11);
        let mut hasher = Xxh3::new();
        let mut at = 0;
        for (i, step) in
            [1, 63, 64, 65, 255, 256, 257, 1023, 1 << 20, 4097].iter().cycle().enumerate()
        {
            let end = (at + step).min(data.len());
            hasher.update(&data[at..end]);
            at = end;
            if i % 3 == 0 {
                assert_eq!(hasher.digest128(), reference(&data[..at]), "after {at} bytes");
            }
            if at == data.len() {
                break;
            }
        }
        assert_eq!(hasher.digest128(), reference(&data));
    }

    /// A hole of 64 MiB and a bit, between data, from a block position that is not 0.
    #[test]
    fn a_large_zero_run_matches_the_reference() {
        let (head, tail) = (noise(1000, 3), noise(77, 5));
        let zeros = (64 << 20) + 12_345;
        let mut hasher = Xxh3::new();
        hasher.update(&head);
        hasher.update_zeros(zeros as u64);
        hasher.update(&tail);
        let whole = [head, vec![0; zeros], tail].concat();
        assert_eq!(hasher.digest128(), reference(&whole));
    }

    /// A zero run that only tops up a nearly full buffer, and a digest right after: the final
    /// stripe then starts in the data stripe taken from the buffer, which must be kept.
    #[test]
    fn a_short_zero_run_after_a_full_buffer_keeps_the_data_before_it() {
        let data = noise(BUFFER, 13);
        for held in BUFFER - STRIPE..BUFFER {
            for zeros in 1..=2 * STRIPE {
                let mut hasher = Xxh3::new();
                hasher.update(&data[..held]);
                hasher.update_zeros(zeros as u64);
                let whole = [&data[..held], &vec![0; zeros]].concat();
                assert_eq!(hasher.digest128(), reference(&whole), "{held} bytes, {zeros} zeros");
            }
        }
    }

    proptest! {
        /// Any mix of data and zero runs, in any pieces, hashes as the bytes they stand for.
        #[test]
        fn data_and_zero_runs_match_the_reference(
            parts in prop::collection::vec((any::<bool>(), 0usize..5000), 0..8),
            seed in any::<u64>(),
        ) {
            let mut hasher = Xxh3::new();
            let mut whole = Vec::new();
            for (i, &(zeros, len)) in parts.iter().enumerate() {
                if zeros {
                    hasher.update_zeros(len as u64);
                    whole.resize(whole.len() + len, 0);
                } else {
                    let data = noise(len, seed ^ i as u64);
                    hasher.update(&data);
                    whole.extend_from_slice(&data);
                }
            }
            prop_assert_eq!(hasher.digest128(), reference(&whole));
        }
    }
}
