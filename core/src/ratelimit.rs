//! Per-connection token bucket, driven by the monotonic time it is given.

use crate::time::Mono;

/// Rate-limit settings: `per_sec` tokens refill each second, up to `burst`.
/// A non-positive `per_sec` or `burst` disables limiting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained messages per second.
    pub per_sec: f64,
    /// Bucket size: messages accepted at once after an idle period.
    pub burst: f64,
}

impl RateLimit {
    /// Whether this setting limits anything.
    pub fn enabled(&self) -> bool {
        self.per_sec > 0.0 && self.burst > 0.0
    }
}

impl Default for RateLimit {
    /// The protocol's defaults: 5 per second, bursts of 10.
    fn default() -> Self {
        RateLimit {
            per_sec: 5.0,
            burst: 10.0,
        }
    }
}

/// A token bucket. Starts full.
///
/// ```
/// use hubbub_core::{Mono, RateLimit, TokenBucket};
/// let limit = RateLimit { per_sec: 1.0, burst: 2.0 };
/// let mut bucket = TokenBucket::new(limit, Mono::from_nanos(0));
/// assert!(bucket.try_take(limit, Mono::from_nanos(0)));
/// assert!(bucket.try_take(limit, Mono::from_nanos(0)));
/// assert!(!bucket.try_take(limit, Mono::from_nanos(0)));
/// assert!(bucket.try_take(limit, Mono::from_nanos(1_000_000_000))); // one token a second
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    last: Mono,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(limit: RateLimit, now: Mono) -> Self {
        TokenBucket {
            tokens: limit.burst.max(0.0),
            last: now,
        }
    }

    /// Refills for the time since the last call, then takes one token if there is one.
    /// Always `true` when `limit` is disabled.
    pub fn try_take(&mut self, limit: RateLimit, now: Mono) -> bool {
        if !limit.enabled() {
            return true;
        }
        let elapsed = now.saturating_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * limit.per_sec).min(limit.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn disabled_never_limits() {
        for limit in [
            RateLimit {
                per_sec: 0.0,
                burst: 10.0,
            },
            RateLimit {
                per_sec: 5.0,
                burst: -1.0,
            },
        ] {
            let mut b = TokenBucket::new(limit, Mono::from_nanos(0));
            assert!((0..10_000).all(|_| b.try_take(limit, Mono::from_nanos(0))));
        }
    }

    #[test]
    fn refill_boundary() {
        let limit = RateLimit {
            per_sec: 5.0,
            burst: 10.0,
        };
        let mut b = TokenBucket::new(limit, Mono::from_nanos(0));
        assert_eq!(
            (0..20)
                .filter(|_| b.try_take(limit, Mono::from_nanos(0)))
                .count(),
            10
        );
        // 199.999 ms later: 0.99999 of a token, still refused; at 200 ms exactly, one.
        assert!(!b.try_take(limit, Mono::from_nanos(SEC / 5 - 1_000)));
        assert!(b.try_take(limit, Mono::from_nanos(SEC / 5)));
        assert!(!b.try_take(limit, Mono::from_nanos(SEC / 5)));
    }

    proptest! {
        /// Over any window, accepted <= burst + rate * elapsed.
        #[test]
        fn never_exceeds_budget(gaps in proptest::collection::vec(0u64..400_000_000, 1..200)) {
            let limit = RateLimit { per_sec: 5.0, burst: 10.0 };
            let mut b = TokenBucket::new(limit, Mono::from_nanos(0));
            let (mut t, mut accepted) = (0u64, 0u64);
            for g in gaps {
                t += g;
                if b.try_take(limit, Mono::from_nanos(t)) { accepted += 1; }
            }
            let budget = 10.0 + 5.0 * (t as f64 / SEC as f64);
            prop_assert!(accepted as f64 <= budget + 1e-9);
        }
    }
}
