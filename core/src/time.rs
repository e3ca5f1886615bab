//! Time as an input: a monotonic instant for timers and a wall-clock reading for
//! timestamps. The core never reads a clock; the driver passes a [`Now`] to every input.

use std::time::Duration;

/// A monotonic instant, in nanoseconds since an epoch the driver chose.
///
/// Every hub of one process must use the same epoch, because fan-out latency is measured
/// between an instant taken on one worker and one taken on another.
///
/// ```
/// use hubbub_core::Mono;
/// use std::time::Duration;
/// let t = Mono::from_nanos(1_000);
/// assert_eq!(t + Duration::from_micros(1), Mono::from_nanos(2_000));
/// assert_eq!(Mono::from_nanos(2_000).saturating_since(t), Duration::from_micros(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mono(u64);

impl Mono {
    /// The instant `nanos` nanoseconds after the driver's epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Mono(nanos)
    }

    /// Nanoseconds since the driver's epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Mono) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl std::ops::Add<Duration> for Mono {
    type Output = Mono;
    fn add(self, rhs: Duration) -> Mono {
        Mono(
            self.0
                .saturating_add(u64::try_from(rhs.as_nanos()).unwrap_or(u64::MAX)),
        )
    }
}

/// Wall-clock time as milliseconds since the Unix epoch (UTC).
///
/// ```
/// use hubbub_core::UnixMillis;
/// assert_eq!(UnixMillis(0).to_rfc3339().as_str(), "1970-01-01T00:00:00.000Z");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixMillis(pub u64);

impl UnixMillis {
    /// Whole seconds since the Unix epoch.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// The minute this instant falls in, counted from the Unix epoch.
    pub const fn minute(self) -> u64 {
        self.0 / 60_000
    }

    /// RFC 3339, UTC, exactly millisecond precision (`YYYY-MM-DDTHH:MM:SS.mmmZ`), so that
    /// string order is time order. Years past 9999 are clamped to 9999-12-31T23:59:59.999Z.
    pub fn to_rfc3339(self) -> Rfc3339 {
        const MAX_MS: u64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
        let ms = self.0.min(MAX_MS);
        let secs = ms / 1000;
        let (y, m, d) = civil_from_days((secs / 86_400) as i64);
        let sod = secs % 86_400;
        let mut out = *b"0000-00-00T00:00:00.000Z";
        put(&mut out[0..4], y as u64);
        put(&mut out[5..7], m as u64);
        put(&mut out[8..10], d as u64);
        put(&mut out[11..13], sod / 3600);
        put(&mut out[14..16], (sod / 60) % 60);
        put(&mut out[17..19], sod % 60);
        put(&mut out[20..23], ms % 1000);
        Rfc3339(out)
    }
}

/// Writes `value` as zero-padded decimal digits filling `dst`.
fn put(dst: &mut [u8], mut value: u64) {
    for b in dst.iter_mut().rev() {
        *b = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
/// Howard Hinnant's `civil_from_days`, valid for every day this type can hold.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A formatted RFC 3339 timestamp: 24 ASCII bytes, no allocation.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rfc3339([u8; 24]);

impl Rfc3339 {
    /// The timestamp as a string slice.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written into the array.
        std::str::from_utf8(&self.0).unwrap_or("1970-01-01T00:00:00.000Z")
    }
}

impl std::fmt::Debug for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The time inputs of one call: the monotonic instant and the wall clock, read together
/// by the driver.
///
/// ```
/// use hubbub_core::{Mono, Now, UnixMillis};
/// let now = Now::new(Mono::from_nanos(5), UnixMillis(1_700_000_000_000));
/// assert_eq!(now.wall.as_secs(), 1_700_000_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic instant, for timers, rate limits and latency.
    pub mono: Mono,
    /// Wall-clock time, for timestamps, token expiry and per-minute buckets.
    pub wall: UnixMillis,
}

impl Now {
    /// Bundles the two readings.
    pub const fn new(mono: Mono, wall: UnixMillis) -> Self {
        Now { mono, wall }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_instants() {
        assert_eq!(
            UnixMillis(1_795_257_000_123).to_rfc3339().as_str(),
            "2026-11-21T10:30:00.123Z"
        );
        assert_eq!(
            UnixMillis(951_782_400_000).to_rfc3339().as_str(),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            UnixMillis(u64::MAX).to_rfc3339().as_str(),
            "9999-12-31T23:59:59.999Z"
        );
    }

    /// Days-from-civil, the inverse, written independently to check the forward map.
    fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m as i64 + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d as i64 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    proptest! {
        #[test]
        fn format_round_trips_and_orders(a in 0u64..253_402_300_799_999, b in 0u64..253_402_300_799_999) {
            let s = UnixMillis(a).to_rfc3339();
            let text = s.as_str();
            let y: i64 = text[0..4].parse().unwrap();
            let m: u32 = text[5..7].parse().unwrap();
            let d: u32 = text[8..10].parse().unwrap();
            let hh: u64 = text[11..13].parse().unwrap();
            let mm: u64 = text[14..16].parse().unwrap();
            let ss: u64 = text[17..19].parse().unwrap();
            let ms: u64 = text[20..23].parse().unwrap();
            let back = days_from_civil(y, m, d) as u64 * 86_400_000 + hh * 3_600_000 + mm * 60_000 + ss * 1000 + ms;
            prop_assert_eq!(back, a);
            prop_assert_eq!(a.cmp(&b), text.cmp(UnixMillis(b).to_rfc3339().as_str()));
        }
    }
}
