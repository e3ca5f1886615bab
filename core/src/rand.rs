//! A small deterministic generator for the random bits of message ids. The driver seeds
//! it; the core never asks the operating system for randomness, so a seeded simulation
//! replays exactly.

/// SplitMix64: fast, statistically sound for id entropy (not for secrets).
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A UUID v7 for `unix_ms`: 48 bits of time, then random bits.
    pub(crate) fn uuid_v7(&mut self, unix_ms: u64) -> uuid::Uuid {
        let a = self.next_u64().to_le_bytes();
        let b = self.next_u64().to_le_bytes();
        let mut bytes = [0u8; 10];
        bytes[..8].copy_from_slice(&a);
        bytes[8..].copy_from_slice(&b[..2]);
        uuid::Builder::from_unix_timestamp_millis(unix_ms, &bytes).into_uuid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v7_ids_carry_time_and_differ() {
        let mut rng = SplitMix64::new(1);
        let a = rng.uuid_v7(1_700_000_000_000);
        let b = rng.uuid_v7(1_700_000_000_001);
        assert_eq!(a.get_version_num(), 7);
        assert_ne!(a, b);
        assert!(
            a.to_string() < b.to_string(),
            "time-ordered across milliseconds"
        );
    }
}
