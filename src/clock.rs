//! The wall clock, read in one place, and its dates.
//!
//! [`UnixTime::now`] is the program's only reading of the system's wall
//! clock; [`unix_now`] and [`unix_now_ms`] are that reading in the units
//! the rest of the program counts in (certificate validity and name
//! bindings in seconds, signed messages and rate limits in milliseconds).
//! The sans-IO layers (`tls`, `chat`) never read it: their callers pass the
//! time in. Durations (handshake step times, timers) are measured on the
//! monotonic clock, `Instant`, not here.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A reading of the wall clock: the time since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime(Duration);

impl UnixTime {
    /// The Unix epoch itself.
    #[cfg(test)]
    pub(crate) const EPOCH: Self = Self(Duration::ZERO);

    /// The wall clock, now; the epoch for a clock set before 1970.
    pub fn now() -> Self {
        Self(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default())
    }

    /// The time `since` after the epoch.
    #[cfg(test)]
    pub(crate) const fn since_epoch(since: Duration) -> Self {
        Self(since)
    }

    /// The time since the epoch.
    pub const fn duration(self) -> Duration {
        self.0
    }

    /// Whole seconds since the epoch.
    pub(crate) const fn secs(self) -> u64 {
        self.0.as_secs()
    }

    /// Milliseconds since the epoch.
    pub(crate) fn millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }

    /// Microseconds since the epoch.
    pub(crate) fn micros(self) -> u64 {
        u64::try_from(self.0.as_micros()).unwrap_or(u64::MAX)
    }
}

/// Unix time in seconds, now: what certificate validity is checked against.
pub fn unix_now() -> u64 {
    UnixTime::now().secs()
}

/// Unix time in milliseconds, now: what a member signs and checks, and what
/// the room's rate limits count in.
pub fn unix_now_ms() -> u64 {
    UnixTime::now().millis()
}

/// A Unix time as `YYYY-MM-DD` (UTC).
pub(crate) fn date(unix: i64) -> String {
    // Days to civil date: Howard Hinnant's algorithm.
    let days = unix.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// A Unix time as `YYYY-MM-DDTHH:MM:SSZ` (ISO 8601, UTC).
pub(crate) fn timestamp(unix: u64) -> String {
    let date = date(i64::try_from(unix).unwrap_or(i64::MAX));
    let secs = unix % 86_400;
    format!("{date}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reading_in_every_unit() {
        let t = UnixTime::since_epoch(Duration::from_micros(1_750_000_000_123_456));
        assert_eq!(
            (t.secs(), t.millis(), t.micros()),
            (1_750_000_000, 1_750_000_000_123, 1_750_000_000_123_456)
        );
        assert_eq!(UnixTime::EPOCH.secs(), 0);
        // The clock reads after this code was written, and moves forward.
        let (a, b) = (UnixTime::now(), UnixTime::now());
        assert!(a.secs() > 1_750_000_000 && b >= a);
    }

    #[test]
    fn dates_and_timestamps_are_utc() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(-1), "1969-12-31");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(1_793_577_600 + 12 * 3600 + 4 * 60 + 5), "2026-11-02T12:04:05Z");
    }
}
