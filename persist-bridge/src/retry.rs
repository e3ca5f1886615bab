//! The retry policy of batch writes, behind a small trait so that it is tested against a
//! fake client.
//!
//! One batch goes through [`write_with_retry`]: it calls [`BatchWriter::write`], keeps
//! what came back unprocessed, sleeps an exponential backoff with full jitter and tries
//! again, at most [`RetryPolicy::max_attempts`] calls in all. What is left then is either
//! *failed* (the store answered but kept refusing: throttling, 5xx, validation) or *parked*
//! (the store is away: timeouts, no connection, table missing) — parked items are not lost,
//! the bridge writes them again once the store answers.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::WriteError;

/// Exponential backoff with full jitter: before retry `n` (1-based) sleep a uniformly
/// random time in `[0, min(cap, base · 2^(n-1))]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first ceiling.
    pub base: Duration,
    /// The largest ceiling.
    pub cap: Duration,
    /// Calls per batch, the first included (at least 1).
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// The ceiling of the sleep before retry `retry` (1-based): `min(cap, base · 2^(retry-1))`.
    ///
    /// ```
    /// use hubbub_persist_bridge::RetryPolicy;
    /// use std::time::Duration;
    /// let p = RetryPolicy { base: Duration::from_millis(10), cap: Duration::from_millis(100), max_attempts: 5 };
    /// assert_eq!(p.ceiling(1), Duration::from_millis(10));
    /// assert_eq!(p.ceiling(3), Duration::from_millis(40));
    /// assert_eq!(p.ceiling(60), Duration::from_millis(100));
    /// ```
    pub fn ceiling(&self, retry: u32) -> Duration {
        let shift = retry.saturating_sub(1).min(31);
        self.base
            .checked_mul(1u32 << shift)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// A sleep drawn uniformly from `[0, ceiling(retry)]` (full jitter).
    pub fn delay(&self, retry: u32, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = u64::try_from(self.ceiling(retry).as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rng.u64(0..=ceiling))
    }
}

/// One BatchWriteItem-like call, so that the retry loop can run against a fake.
pub trait BatchWriter {
    /// What one request item is.
    type Item: Send;

    /// Writes `items` in one call. `Ok` holds the indexes (into `items`) of those the
    /// store left unprocessed; `Err` means none was written.
    fn write(
        &self,
        items: &[Self::Item],
    ) -> impl Future<Output = Result<Vec<usize>, WriteError>> + Send;
}

/// What became of one batch.
#[derive(Debug)]
pub struct Outcome<T> {
    /// Items written.
    pub written: usize,
    /// Item retries (an item sent three times counts two).
    pub retried: usize,
    /// Calls made.
    pub attempts: u32,
    /// Items given up on, with the last error.
    pub failed: Vec<T>,
    /// Items kept for when the store answers again, with the error that showed the outage.
    pub parked: Vec<T>,
    /// The last error seen, if any.
    pub last_error: Option<WriteError>,
    /// Total backoff slept.
    pub slept: Duration,
}

/// Writes one batch with retries: unprocessed items and retryable errors are tried again
/// after [`RetryPolicy::delay`], at most `max_attempts` calls in all. What is left then is
/// *failed* if the store answered but kept refusing (throttling, 5xx, validation) or
/// *parked* if it is away (timeouts, no connection, table missing, credentials refused).
/// `on_call` receives the duration of every call (for the latency histogram).
pub async fn write_with_retry<W: BatchWriter>(
    writer: &W,
    mut items: Vec<W::Item>,
    policy: &RetryPolicy,
    rng: &mut fastrand::Rng,
    mut on_call: impl FnMut(Duration),
) -> Outcome<W::Item> {
    let mut out = Outcome {
        written: 0,
        retried: 0,
        attempts: 0,
        failed: Vec::new(),
        parked: Vec::new(),
        last_error: None,
        slept: Duration::ZERO,
    };
    let max_attempts = policy.max_attempts.max(1);
    while !items.is_empty() {
        out.attempts += 1;
        let started = Instant::now();
        let result = writer.write(&items).await;
        on_call(started.elapsed());
        let error = match result {
            Ok(mut unprocessed) => {
                unprocessed.sort_unstable();
                unprocessed.dedup();
                unprocessed.retain(|&i| i < items.len());
                out.written += items.len() - unprocessed.len();
                if unprocessed.is_empty() {
                    items.clear();
                    break;
                }
                items = keep_indexes(items, &unprocessed);
                WriteError::Throttled(format!("{} items unprocessed", items.len()))
            }
            Err(e) => e,
        };
        let parks = error.is_outage();
        let retryable = error.is_retryable();
        out.last_error = Some(error);
        if !retryable || out.attempts >= max_attempts {
            if parks {
                out.parked = items;
            } else {
                out.failed = items;
            }
            return out;
        }
        out.retried += items.len();
        let delay = policy.delay(out.attempts, rng);
        out.slept += delay;
        tokio::time::sleep(delay).await;
    }
    out
}

/// The elements of `items` at the (sorted, distinct, in-range) `indexes`, in order.
fn keep_indexes<T>(items: Vec<T>, indexes: &[usize]) -> Vec<T> {
    let mut wanted = indexes.iter().copied().peekable();
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, item)| {
            if wanted.peek() == Some(&i) {
                wanted.next();
                Some(item)
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// Answers each call with the next scripted result; records what each call carried.
    struct Fake {
        script: Mutex<VecDeque<Result<Vec<usize>, WriteError>>>,
        otherwise: Result<Vec<usize>, WriteError>,
        calls: Mutex<Vec<Vec<u32>>>,
    }

    impl Fake {
        fn new(script: Vec<Result<Vec<usize>, WriteError>>) -> Self {
            Fake {
                script: Mutex::new(script.into()),
                otherwise: Ok(Vec::new()),
                calls: Mutex::new(Vec::new()),
            }
        }
        fn always(result: Result<Vec<usize>, WriteError>) -> Self {
            Fake {
                otherwise: result,
                ..Fake::new(Vec::new())
            }
        }
        fn calls(&self) -> Vec<Vec<u32>> {
            self.calls.lock().map(|c| c.clone()).unwrap_or_default()
        }
    }

    impl BatchWriter for Fake {
        type Item = u32;
        fn write(
            &self,
            items: &[u32],
        ) -> impl Future<Output = Result<Vec<usize>, WriteError>> + Send {
            if let Ok(mut calls) = self.calls.lock() {
                calls.push(items.to_vec());
            }
            let next = self
                .script
                .lock()
                .ok()
                .and_then(|mut s| s.pop_front())
                .unwrap_or_else(|| self.otherwise.clone());
            async move { next }
        }
    }

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(200),
            max_attempts,
        }
    }

    /// The same shape, 100 times faster, for tests that really sleep.
    fn fast(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_micros(100),
            cap: Duration::from_millis(2),
            max_attempts,
        }
    }

    #[test]
    fn ceilings_double_up_to_the_cap_without_overflow() {
        let p = policy(5);
        let ms: Vec<u128> = (1..=7).map(|n| p.ceiling(n).as_millis()).collect();
        assert_eq!(ms, [10, 20, 40, 80, 160, 200, 200]);
        assert_eq!(p.ceiling(0), Duration::from_millis(10));
        assert_eq!(p.ceiling(u32::MAX), Duration::from_millis(200));
        let huge = RetryPolicy {
            base: Duration::from_secs(u64::MAX / 2),
            cap: Duration::from_secs(1),
            max_attempts: 3,
        };
        assert_eq!(huge.ceiling(40), Duration::from_secs(1));
    }

    #[test]
    fn full_jitter_stays_within_zero_and_the_ceiling_and_spreads() {
        let p = policy(5);
        let mut rng = fastrand::Rng::with_seed(7);
        for retry in 1..=8 {
            let ceiling = p.ceiling(retry);
            let samples: Vec<Duration> = (0..5000).map(|_| p.delay(retry, &mut rng)).collect();
            assert!(samples.iter().all(|d| *d <= ceiling), "retry {retry}");
            let min = samples.iter().min().copied().unwrap_or_default();
            let max = samples.iter().max().copied().unwrap_or_default();
            assert!(min < ceiling / 10, "retry {retry}: min {min:?}");
            assert!(max > ceiling * 9 / 10, "retry {retry}: max {max:?}");
        }
    }

    #[tokio::test]
    async fn success_at_first_call() {
        let fake = Fake::new(vec![Ok(vec![])]);
        let mut rng = fastrand::Rng::with_seed(1);
        let out = write_with_retry(&fake, vec![1, 2, 3], &fast(5), &mut rng, |_| {}).await;
        assert_eq!((out.written, out.retried, out.attempts), (3, 0, 1));
        assert!(out.failed.is_empty() && out.parked.is_empty());
    }

    #[tokio::test]
    async fn unprocessed_items_are_retried_alone() {
        let fake = Fake::new(vec![Ok(vec![1, 3]), Ok(vec![1]), Ok(vec![])]);
        let mut rng = fastrand::Rng::with_seed(1);
        let mut calls = 0;
        let out = write_with_retry(&fake, vec![10, 11, 12, 13], &fast(5), &mut rng, |_| {
            calls += 1
        })
        .await;
        assert_eq!(
            fake.calls(),
            vec![vec![10, 11, 12, 13], vec![11, 13], vec![13]]
        );
        assert_eq!((out.written, out.retried, out.attempts), (4, 3, 3));
        assert_eq!(calls, 3);
        assert!(out.failed.is_empty() && out.parked.is_empty());
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts_within_the_backoff_bound() {
        let fake = Fake::always(Err(WriteError::Throttled("slow down".into())));
        let mut rng = fastrand::Rng::with_seed(3);
        let p = fast(4);
        let out = write_with_retry(&fake, vec![1, 2], &p, &mut rng, |_| {}).await;
        let slept = out.slept;
        assert_eq!(fake.calls().len(), 4);
        assert_eq!(out.attempts, 4);
        assert_eq!(out.failed, vec![1, 2]);
        assert!(out.parked.is_empty());
        assert_eq!(out.retried, 2 * 3);
        assert_eq!(out.written, 0);
        let bound: Duration = (1..4).map(|n| p.ceiling(n)).sum();
        assert!(slept <= bound, "slept {slept:?} > {bound:?}");
        assert!(matches!(out.last_error, Some(WriteError::Throttled(_))));
    }

    #[tokio::test]
    async fn items_unprocessed_to_the_end_fail() {
        let fake = Fake::always(Ok(vec![0]));
        let mut rng = fastrand::Rng::with_seed(3);
        let out = write_with_retry(&fake, vec![5, 6], &fast(3), &mut rng, |_| {}).await;
        assert_eq!(out.written, 1);
        assert_eq!(out.failed, vec![5]);
        assert_eq!(out.attempts, 3);
    }

    #[tokio::test]
    async fn transient_errors_then_success() {
        let fake = Fake::new(vec![
            Err(WriteError::Server("500".into())),
            Err(WriteError::Timeout("attempt".into())),
            Ok(vec![]),
        ]);
        let mut rng = fastrand::Rng::with_seed(3);
        let out = write_with_retry(&fake, vec![1, 2, 3], &fast(5), &mut rng, |_| {}).await;
        assert_eq!((out.written, out.retried, out.attempts), (3, 6, 3));
        assert!(out.failed.is_empty() && out.parked.is_empty());
    }

    #[tokio::test]
    async fn an_outage_parks_the_batch_instead_of_failing_it() {
        let fake = Fake::always(Err(WriteError::Unreachable("refused".into())));
        let mut rng = fastrand::Rng::with_seed(3);
        let out = write_with_retry(&fake, vec![1, 2], &fast(3), &mut rng, |_| {}).await;
        assert_eq!(out.parked, vec![1, 2]);
        assert!(out.failed.is_empty());
        assert_eq!(out.attempts, 3);
    }

    #[tokio::test]
    async fn a_missing_table_parks_at_once() {
        let fake = Fake::always(Err(WriteError::TableMissing("gone".into())));
        let mut rng = fastrand::Rng::with_seed(3);
        let out = write_with_retry(&fake, vec![1], &fast(5), &mut rng, |_| {}).await;
        assert_eq!((out.attempts, out.parked.len()), (1, 1));
    }

    #[tokio::test]
    async fn a_rejected_batch_fails_at_once() {
        let fake = Fake::always(Err(WriteError::Rejected("ValidationException".into())));
        let mut rng = fastrand::Rng::with_seed(3);
        let out = write_with_retry(&fake, vec![1, 2], &fast(5), &mut rng, |_| {}).await;
        assert_eq!((out.attempts, out.failed.len(), out.retried), (1, 2, 0));
    }

    #[tokio::test]
    async fn bogus_unprocessed_indexes_are_ignored() {
        let fake = Fake::new(vec![Ok(vec![7, 0, 0]), Ok(vec![])]);
        let mut rng = fastrand::Rng::with_seed(3);
        let out = write_with_retry(&fake, vec![1, 2], &fast(5), &mut rng, |_| {}).await;
        assert_eq!(fake.calls(), vec![vec![1, 2], vec![1]]);
        assert_eq!(out.written, 2);
    }
}
