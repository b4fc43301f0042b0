//! The inner loop of xxh3: accumulating 64-byte stripes into the eight 64-bit lanes, and the
//! scramble that ends each 1 KiB block. x86-64 picks AVX2 at run time where the CPU has it
//! (a build for baseline x86-64 would otherwise stay on SSE2 everywhere), SSE2 otherwise;
//! other targets run the scalar form, which is also the reference the SIMD forms are tested
//! against. The arithmetic follows the xxHash specification (and xxhash-rust's kernels).

/// The eight accumulator lanes.
pub type Acc = [u64; 8];

/// Bytes per stripe.
pub const STRIPE: usize = 64;
/// Stripes per block: the secret advances 8 bytes a stripe over its first 128 bytes.
pub const STRIPES_PER_BLOCK: usize = (SECRET.len() - STRIPE) / 8;
/// Where the block scramble's key starts in the secret.
const SCRAMBLE_AT: usize = SECRET.len() - STRIPE;

const PRIME32_1: u64 = 0x9E37_79B1;

/// xxh3's default secret (the specification's `kSecret`).
pub const SECRET: [u8; 192] = [
    0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
    0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
    0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
    0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
    0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
    0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
    0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
    0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
    0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
    0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
    0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
    0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
];

/// The little-endian word at `at`.
pub const fn word(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    let mut i = 0;
    while i < 8 {
        w[i] = bytes[at + i];
        i += 1;
    }
    u64::from_le_bytes(w)
}

/// Accumulates whole stripes of `data` (its length a multiple of `STRIPE`), `stripe` being the
/// position in the current block; scrambles at each block's end.
pub fn consume(acc: &mut Acc, stripe: &mut usize, data: &[u8]) {
    debug_assert_eq!(data.len() % STRIPE, 0);
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, just checked.
            unsafe { avx2::consume(acc, stripe, data) }
        } else {
            // SAFETY: every x86-64 CPU has SSE2.
            unsafe { sse2::consume(acc, stripe, data) }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    scalar_consume(acc, stripe, data);
}

/// The scalar form of `consume`: the reference.
#[cfg(any(test, not(target_arch = "x86_64")))]
pub fn scalar_consume(acc: &mut Acc, stripe: &mut usize, data: &[u8]) {
    for chunk in data.chunks_exact(STRIPE) {
        accumulate(acc, chunk, &SECRET[*stripe * 8..]);
        *stripe += 1;
        if *stripe == STRIPES_PER_BLOCK {
            scramble(acc);
            *stripe = 0;
        }
    }
}

/// Accumulates one stripe with the key at the start of `secret`.
pub fn accumulate(acc: &mut Acc, input: &[u8], secret: &[u8]) {
    for lane in 0..8 {
        let data = word(input, lane * 8);
        let key = data ^ word(secret, lane * 8);
        acc[lane ^ 1] = acc[lane ^ 1].wrapping_add(data);
        acc[lane] = acc[lane].wrapping_add((key & 0xFFFF_FFFF) * (key >> 32));
    }
}

/// The block-end scramble.
pub fn scramble(acc: &mut Acc) {
    for (lane, a) in acc.iter_mut().enumerate() {
        let key = word(&SECRET, SCRAMBLE_AT + lane * 8);
        *a = (*a ^ (*a >> 47) ^ key).wrapping_mul(PRIME32_1);
    }
}

/// What one stripe of zeros adds to each lane, by the stripe's position in its block: with no
/// data, only the key's two halves multiply, and no lane feeds another.
pub const ZERO_STRIPES: [Acc; STRIPES_PER_BLOCK] = {
    let mut table = [[0u64; 8]; STRIPES_PER_BLOCK];
    let mut stripe = 0;
    while stripe < STRIPES_PER_BLOCK {
        let mut lane = 0;
        while lane < 8 {
            let key = word(&SECRET, stripe * 8 + lane * 8);
            table[stripe][lane] = (key & 0xFFFF_FFFF) * (key >> 32);
            lane += 1;
        }
        stripe += 1;
    }
    table
};

/// What a whole block of zeros adds to each lane before its scramble.
pub const ZERO_BLOCK: Acc = {
    let mut sum = [0u64; 8];
    let mut stripe = 0;
    while stripe < STRIPES_PER_BLOCK {
        let mut lane = 0;
        while lane < 8 {
            sum[lane] = sum[lane].wrapping_add(ZERO_STRIPES[stripe][lane]);
            lane += 1;
        }
        stripe += 1;
    }
    sum
};

/// The same loop for each instruction set, with that set enabled for the whole loop so the
/// intrinsics inline.
macro_rules! simd_consume {
    ($feature:literal, $accumulate:ident, $scramble:ident) => {
        #[target_feature(enable = $feature)]
        pub fn consume(acc: &mut Acc, stripe: &mut usize, data: &[u8]) {
            for chunk in data.chunks_exact(STRIPE) {
                $accumulate(acc, chunk, &SECRET[*stripe * 8..*stripe * 8 + STRIPE]);
                *stripe += 1;
                if *stripe == STRIPES_PER_BLOCK {
                    $scramble(acc, &SECRET[SCRAMBLE_AT..]);
                    *stripe = 0;
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use super::{Acc, PRIME32_1, SCRAMBLE_AT, SECRET, STRIPE, STRIPES_PER_BLOCK};
    use std::arch::x86_64::*;

    simd_consume!("sse2", accumulate, scramble);

    #[target_feature(enable = "sse2")]
    fn accumulate(acc: &mut Acc, input: &[u8], secret: &[u8]) {
        assert!(input.len() >= STRIPE && secret.len() >= STRIPE);
        let lanes = acc.as_mut_ptr().cast::<__m128i>();
        for i in 0..4 {
            // SAFETY: `i` < 4 keeps every 16-byte access inside the 64 bytes asserted above
            // (and inside the 64-byte accumulator); unaligned loads and stores throughout.
            unsafe {
                let data = _mm_loadu_si128(input.as_ptr().add(i * 16).cast());
                let key = _mm_loadu_si128(secret.as_ptr().add(i * 16).cast());
                let data_key = _mm_xor_si128(data, key);
                let product = _mm_mul_epu32(data_key, _mm_shuffle_epi32::<0x31>(data_key));
                let swapped = _mm_shuffle_epi32::<0x4E>(data);
                let sum = _mm_add_epi64(_mm_loadu_si128(lanes.add(i)), swapped);
                _mm_storeu_si128(lanes.add(i), _mm_add_epi64(product, sum));
            }
        }
    }

    #[target_feature(enable = "sse2")]
    fn scramble(acc: &mut Acc, secret: &[u8]) {
        assert!(secret.len() >= STRIPE);
        let lanes = acc.as_mut_ptr().cast::<__m128i>();
        let prime = _mm_set1_epi32(PRIME32_1 as i32);
        for i in 0..4 {
            // SAFETY: as in `accumulate`.
            unsafe {
                let a = _mm_loadu_si128(lanes.add(i));
                let key = _mm_loadu_si128(secret.as_ptr().add(i * 16).cast());
                let mixed = _mm_xor_si128(_mm_xor_si128(a, _mm_srli_epi64::<47>(a)), key);
                let low = _mm_mul_epu32(mixed, prime);
                let high = _mm_mul_epu32(_mm_shuffle_epi32::<0x31>(mixed), prime);
                _mm_storeu_si128(lanes.add(i), _mm_add_epi64(low, _mm_slli_epi64::<32>(high)));
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Acc, PRIME32_1, SCRAMBLE_AT, SECRET, STRIPE, STRIPES_PER_BLOCK};
    use std::arch::x86_64::*;

    simd_consume!("avx2", accumulate, scramble);

    #[target_feature(enable = "avx2")]
    fn accumulate(acc: &mut Acc, input: &[u8], secret: &[u8]) {
        assert!(input.len() >= STRIPE && secret.len() >= STRIPE);
        let lanes = acc.as_mut_ptr().cast::<__m256i>();
        for i in 0..2 {
            // SAFETY: `i` < 2 keeps every 32-byte access inside the 64 bytes asserted above
            // (and inside the 64-byte accumulator); unaligned loads and stores throughout.
            unsafe {
                let data = _mm256_loadu_si256(input.as_ptr().add(i * 32).cast());
                let key = _mm256_loadu_si256(secret.as_ptr().add(i * 32).cast());
                let data_key = _mm256_xor_si256(data, key);
                let product = _mm256_mul_epu32(data_key, _mm256_srli_epi64::<32>(data_key));
                let swapped = _mm256_shuffle_epi32::<0x4E>(data);
                let sum = _mm256_add_epi64(_mm256_loadu_si256(lanes.add(i)), swapped);
                _mm256_storeu_si256(lanes.add(i), _mm256_add_epi64(product, sum));
            }
        }
    }

    #[target_feature(enable = "avx2")]
    fn scramble(acc: &mut Acc, secret: &[u8]) {
        assert!(secret.len() >= STRIPE);
        let lanes = acc.as_mut_ptr().cast::<__m256i>();
        let prime = _mm256_set1_epi32(PRIME32_1 as i32);
        for i in 0..2 {
            // SAFETY: as in `accumulate`.
            unsafe {
                let a = _mm256_loadu_si256(lanes.add(i));
                let key = _mm256_loadu_si256(secret.as_ptr().add(i * 32).cast());
                let mixed = _mm256_xor_si256(_mm256_xor_si256(a, _mm256_srli_epi64::<47>(a)), key);
                let low = _mm256_mul_epu32(mixed, prime);
                let high = _mm256_mul_epu32(_mm256_srli_epi64::<32>(mixed), prime);
                _mm256_storeu_si256(
                    lanes.add(i),
                    _mm256_add_epi64(low, _mm256_slli_epi64::<32>(high)),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(len: usize) -> Vec<u8> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// Every kernel this CPU can run gives the scalar reference's lanes, from every position in
    /// a block, over more than one block.
    #[test]
    fn each_kernel_matches_the_scalar_reference() {
        let data = noise(STRIPE * 40);
        for start in 0..STRIPES_PER_BLOCK {
            let (mut want, mut want_at) = ([7u64, 1, 2, 3, 4, 5, 6, 8], start);
            scalar_consume(&mut want, &mut want_at, &data);
            #[cfg(target_arch = "x86_64")]
            {
                let (mut got, mut at) = ([7u64, 1, 2, 3, 4, 5, 6, 8], start);
                // SAFETY: SSE2 is baseline on x86-64.
                unsafe { sse2::consume(&mut got, &mut at, &data) };
                assert_eq!((got, at), (want, want_at), "sse2 from stripe {start}");
                if std::is_x86_feature_detected!("avx2") {
                    let (mut got, mut at) = ([7u64, 1, 2, 3, 4, 5, 6, 8], start);
                    // SAFETY: checked just above.
                    unsafe { avx2::consume(&mut got, &mut at, &data) };
                    assert_eq!((got, at), (want, want_at), "avx2 from stripe {start}");
                }
            }
            let (mut got, mut at) = ([7u64, 1, 2, 3, 4, 5, 6, 8], start);
            consume(&mut got, &mut at, &data);
            assert_eq!((got, at), (want, want_at), "dispatched from stripe {start}");
        }
    }

    /// The zero tables are what accumulating real zeros adds.
    #[test]
    fn zero_tables_are_what_zeros_add() {
        let zeros = [0u8; STRIPE];
        let mut block = [0u64; 8];
        for (stripe, add) in ZERO_STRIPES.iter().enumerate() {
            let mut acc = [0u64; 8];
            accumulate(&mut acc, &zeros, &SECRET[stripe * 8..]);
            assert_eq!(&acc, add, "stripe {stripe}");
            accumulate(&mut block, &zeros, &SECRET[stripe * 8..]);
        }
        assert_eq!(block, ZERO_BLOCK);
    }
}
