//! How long a client waits before it connects again after its connection
//! dropped: exponential backoff with jitter, capped. Sans-IO: the caller
//! gives the randomness, so the schedule is tested exactly.
//!
//! The n-th wait (from 0) is drawn uniformly from the upper half of
//! `min(cap, first * 2^n)`: never less than half of it, so that a person's
//! client does not hammer a relay that is down, and spread over the other
//! half, so that the members a restarted relay dropped do not all come
//! back in the same instant.

use std::time::Duration;

use crate::tls::Rng;

/// The first wait's ceiling: the first attempt comes after 0.5 to 1 s.
const FIRST: Duration = Duration::from_secs(1);
/// The ceiling of every wait: a relay down for long is tried once every
/// 30 to 60 s.
const CAP: Duration = Duration::from_secs(60);

/// A backoff schedule: the waits before each attempt since the last
/// success.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    first: Duration,
    cap: Duration,
    /// Attempts made since the last [`Self::reset`].
    attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(FIRST, CAP)
    }
}

impl Backoff {
    /// A schedule whose first wait is at most `first` and no wait more than `cap`.
    pub(crate) fn new(first: Duration, cap: Duration) -> Self {
        Self { first, cap: cap.max(first), attempts: 0 }
    }

    /// The wait before the next attempt, which it counts.
    pub(crate) fn next_delay(&mut self, rng: &mut dyn Rng) -> Duration {
        let ceiling = self.ceiling(self.attempts);
        self.attempts = self.attempts.saturating_add(1);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        let half = ceiling_ms / 2;
        let mut bytes = [0; 8];
        rng.fill(&mut bytes);
        let spread = (ceiling_ms - half).saturating_add(1);
        Duration::from_millis(half + u64::from_be_bytes(bytes) % spread)
    }

    /// The most the `n`-th wait (from 0) can be.
    pub(crate) fn ceiling(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
        self.first.checked_mul(factor).map_or(self.cap, |d| d.min(self.cap))
    }

    /// Attempts since the last success.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Connected again: the next drop starts from the first wait.
    pub(crate) fn reset(&mut self) {
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::SeededRng;

    /// Randomness that always gives the same byte.
    struct Fixed(u8);

    impl Rng for Fixed {
        fn fill(&mut self, out: &mut [u8]) {
            out.fill(self.0);
        }
    }

    #[test]
    fn the_schedule_doubles_to_its_cap_between_half_and_all_of_each_ceiling() {
        let mut low = Backoff::default();
        let lows: Vec<u64> = (0..9).map(|_| low.next_delay(&mut Fixed(0)).as_millis() as u64).collect();
        assert_eq!(lows, [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
        let mut high = Backoff::default();
        let highs: Vec<u64> = (0..9).map(|_| high.next_delay(&mut Fixed(0xff)).as_millis() as u64).collect();
        // 0xffff_ffff_ffff_ffff % (ceiling / 2 + 1), on top of the half.
        let expect: Vec<u64> = [1000u64, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000]
            .iter()
            .map(|&c| c / 2 + u64::MAX % (c / 2 + 1))
            .collect();
        assert_eq!(highs, expect);
        assert_eq!(high.attempts(), 9);
    }

    #[test]
    fn every_wait_stays_within_its_window_and_a_reset_starts_again() {
        let mut rng = SeededRng::new_for_testing_only(5);
        let mut b = Backoff::default();
        let mut spread = std::collections::HashSet::new();
        for round in 0..3 {
            for n in 0..40 {
                let ceiling = b.ceiling(n);
                let d = b.next_delay(&mut rng);
                assert!(d >= ceiling / 2 && d <= ceiling, "round {round}, attempt {n}: {d:?} of {ceiling:?}");
                assert!(d <= CAP);
                spread.insert(d);
            }
            b.reset();
            assert_eq!(b.attempts(), 0);
            assert_eq!(b.ceiling(0), FIRST);
        }
        assert!(spread.len() > 60, "jittered, not a fixed schedule: {} distinct waits", spread.len());
    }

    #[test]
    fn a_huge_attempt_count_neither_overflows_nor_passes_the_cap() {
        let mut b = Backoff::default();
        assert_eq!(b.ceiling(u32::MAX), CAP);
        assert_eq!(b.ceiling(63), CAP);
        // A cap below the first wait is raised to it.
        assert_eq!(Backoff::new(CAP * 2, CAP).ceiling(9), CAP * 2);
        b.attempts = u32::MAX;
        assert!(b.next_delay(&mut Fixed(7)) <= Duration::from_secs(60));
        assert_eq!(b.attempts(), u32::MAX);
    }
}
