//! Placement: which worker owns a room. Pure and stable, shared by the server, the
//! simulator and the load generator.

/// Index of a worker (one hub per worker), `0..workers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct WorkerId(pub u16);

impl WorkerId {
    /// The index as a `usize`, for indexing per-worker tables.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// The worker that owns `room` among `workers` workers.
///
/// FNV-1a over the room id's bytes, reduced modulo `workers`. The function is part of the
/// public contract: it never changes between versions, so any process can compute it.
/// `workers == 0` is treated as one worker.
///
/// ```
/// use hubbub_core::{owner_of, WorkerId};
/// assert_eq!(owner_of("global", 1), WorkerId(0));
/// let w = owner_of("lobby", 4);
/// assert!(w.0 < 4);
/// assert_eq!(w, owner_of("lobby", 4));
/// ```
pub fn owner_of(room: &str, workers: u16) -> WorkerId {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in room.as_bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    WorkerId((hash % u64::from(workers.max(1))) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_values() {
        // Pinned: changing the function would move rooms between workers across versions.
        assert_eq!(
            owner_of("", 7),
            WorkerId((0xcbf2_9ce4_8422_2325u64 % 7) as u16)
        );
        assert_eq!(owner_of("global", 0), WorkerId(0));
    }

    #[test]
    fn spreads_rooms() {
        let mut counts = [0u32; 4];
        for i in 0..4000 {
            counts[owner_of(&format!("room-{i}"), 4).index()] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }
}
