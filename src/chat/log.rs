//! The room's ordered log: every room message the relay delivered, by
//! `room_seq`, as members are sent it when it is history (the frame
//! flagged history) and as guests read it (one line). A joiner gets the
//! last [`Config::history`](super::relay::Config::history) of it, a member
//! that resumes everything after the last `room_seq` it saw
//! ([`Log::after`]).
//!
//! What is kept is bounded by a [`Retention`]: at most so many messages,
//! so many bytes, and none older than so many days; the oldest go first.
//! The log remembers the last `room_seq` it let go of, so that it can say
//! whether what it holds after a given point is complete.
//!
//! Sans-IO: the caller says what time it is. `crate::store::room_log` keeps the same
//! log on disk, and a relay started again is given it back
//! ([`Relay::restore`](super::relay::Relay::restore)).

use std::collections::VecDeque;
use std::sync::Arc;

/// How much of the room's log is kept (`listen --keep-messages`,
/// `--keep-days`, `--keep-mib`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Messages at most.
    pub messages: usize,
    /// Bytes at most (each entry's frame and line).
    pub bytes: usize,
    /// Milliseconds a message is kept at most; 0 keeps them whatever their age.
    pub age_ms: u64,
}

impl Retention {
    /// One day, in milliseconds.
    pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;
}

impl Default for Retention {
    /// 10,000 messages, 64 MiB, 30 days.
    fn default() -> Self {
        Self { messages: 10_000, bytes: 64 << 20, age_ms: 30 * Self::DAY_MS }
    }
}

/// One message of the room's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Past {
    /// Its place in the room's order.
    pub(crate) room_seq: u64,
    /// When the relay delivered it (Unix milliseconds).
    pub(crate) at_ms: u64,
    /// The `Deliver` or `Guest` frame, flagged history.
    pub(crate) frame: Arc<[u8]>,
    /// The line a guest is sent.
    pub(crate) line: Arc<[u8]>,
}

impl Past {
    /// What it counts for against [`Retention::bytes`].
    pub(crate) fn size(&self) -> usize {
        self.frame.len() + self.line.len()
    }
}

/// The room's log in memory, oldest first.
#[derive(Debug)]
pub(crate) struct Log {
    keep: Retention,
    entries: VecDeque<Past>,
    bytes: usize,
    /// The highest `room_seq` let go of (0: nothing was).
    forgotten: u64,
}

impl Log {
    /// An empty log.
    pub(crate) fn new(keep: Retention) -> Self {
        Self { keep, entries: VecDeque::new(), bytes: 0, forgotten: 0 }
    }

    /// A log given back (from disk): `entries` in any order, `forgotten`
    /// as it was kept; what the retention no longer allows at `now_ms` is
    /// let go of at once. Entries at or below `forgotten`, and repeats,
    /// are dropped.
    pub(crate) fn restore(keep: Retention, forgotten: u64, mut entries: Vec<Past>, now_ms: u64) -> Self {
        entries.sort_by_key(|p| p.room_seq);
        entries.dedup_by_key(|p| p.room_seq);
        let mut log = Self::new(keep);
        log.forgotten = forgotten;
        for past in entries.into_iter().filter(|p| p.room_seq > forgotten) {
            log.bytes += past.size();
            log.entries.push_back(past);
        }
        log.trim(now_ms);
        log
    }

    /// Adds the next message (its `room_seq` above every one kept) and
    /// lets go of what the retention no longer allows.
    pub(crate) fn push(&mut self, past: Past, now_ms: u64) {
        self.bytes += past.size();
        self.entries.push_back(past);
        self.trim(now_ms);
    }

    /// Lets go of messages older than the retention allows at `now_ms`
    /// (the room calls it now and then, quiet or not). Returns whether any went.
    pub(crate) fn expire(&mut self, now_ms: u64) -> bool {
        let before = self.forgotten;
        self.trim(now_ms);
        self.forgotten != before
    }

    fn trim(&mut self, now_ms: u64) {
        let too_old = |p: &Past| self.keep.age_ms > 0 && now_ms.saturating_sub(p.at_ms) > self.keep.age_ms;
        while let Some(front) = self.entries.front() {
            if self.entries.len() <= self.keep.messages && self.bytes <= self.keep.bytes && !too_old(front) {
                break;
            }
            self.bytes -= front.size();
            self.forgotten = self.forgotten.max(front.room_seq);
            self.entries.pop_front();
        }
    }

    /// Every message kept with a `room_seq` above `after`, in order, and
    /// whether that is all of them: false when messages after `after`
    /// were let go of (the gap is older than the room keeps).
    pub(crate) fn after(&self, after: u64) -> (impl Iterator<Item = &Past>, bool) {
        let start = self.entries.partition_point(|p| p.room_seq <= after);
        (self.entries.range(start..), after >= self.forgotten)
    }

    /// The last `n` messages, in order.
    pub(crate) fn last(&self, n: usize) -> impl Iterator<Item = &Past> {
        self.entries.range(self.entries.len().saturating_sub(n)..)
    }

    /// Messages kept.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is kept.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes kept.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The highest `room_seq` let go of (0: none was).
    pub(crate) fn forgotten(&self) -> u64 {
        self.forgotten
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn past(room_seq: u64, at_ms: u64, len: usize) -> Past {
        Past { room_seq, at_ms, frame: vec![1; len].into(), line: Arc::from(&b"x\n"[..]) }
    }

    fn seqs<'a>(it: impl Iterator<Item = &'a Past>) -> Vec<u64> {
        it.map(|p| p.room_seq).collect()
    }

    #[test]
    fn keeps_at_most_so_many_messages_and_says_when_a_gap_is_older_than_that() {
        let mut log = Log::new(Retention { messages: 3, bytes: usize::MAX, age_ms: 0 });
        // Presences take room_seqs too: the log's numbers have holes.
        for seq in [1, 2, 4, 5, 7] {
            log.push(past(seq, 0, 10), 0);
        }
        assert_eq!(seqs(log.last(10)), [4, 5, 7]);
        assert_eq!(log.forgotten(), 2);
        let (kept, complete) = log.after(2);
        assert_eq!((seqs(kept), complete), (vec![4, 5, 7], true));
        // 3 was a presence, not a message: nothing after 3 was let go of.
        let (kept, complete) = log.after(3);
        assert_eq!((seqs(kept), complete), (vec![4, 5, 7], true));
        let (kept, complete) = log.after(1);
        assert_eq!((seqs(kept), complete), (vec![4, 5, 7], false));
        let (kept, complete) = log.after(5);
        assert_eq!((seqs(kept), complete), (vec![7], true));
        let (kept, complete) = log.after(7);
        assert_eq!((seqs(kept), complete), (vec![], true));
        assert_eq!(seqs(log.last(2)), [5, 7]);
    }

    #[test]
    fn keeps_at_most_so_many_bytes() {
        let mut log = Log::new(Retention { messages: 100, bytes: 100, age_ms: 0 });
        for seq in 1..=10 {
            log.push(past(seq, 0, 28), 0);
        }
        // 30 bytes each: three fit in 100.
        assert_eq!(seqs(log.last(100)), [8, 9, 10]);
        assert_eq!(log.bytes(), 90);
        // One larger than the whole budget is not kept at all.
        log.push(past(11, 0, 200), 0);
        assert!(log.is_empty());
        assert_eq!((log.bytes(), log.forgotten()), (0, 11));
    }

    #[test]
    fn lets_go_of_messages_older_than_the_age_even_when_the_room_is_quiet() {
        let day = Retention::DAY_MS;
        let mut log = Log::new(Retention { messages: 100, bytes: usize::MAX, age_ms: 2 * day });
        log.push(past(1, 0, 1), 0);
        log.push(past(2, day, 1), day);
        assert!(!log.expire(2 * day));
        assert_eq!(log.len(), 2);
        assert!(log.expire(2 * day + 1));
        assert_eq!((seqs(log.last(10)), log.forgotten()), (vec![2], 1));
        // Age 0: kept whatever their age.
        let mut log = Log::new(Retention { messages: 100, bytes: usize::MAX, age_ms: 0 });
        log.push(past(1, 0, 1), 0);
        assert!(!log.expire(u64::MAX));
    }

    #[test]
    fn a_restored_log_is_in_order_without_repeats_and_within_its_retention() {
        let keep = Retention { messages: 3, bytes: usize::MAX, age_ms: 0 };
        let entries =
            vec![past(9, 0, 1), past(3, 0, 1), past(5, 0, 1), past(5, 0, 1), past(7, 0, 1), past(2, 0, 1)];
        let log = Log::restore(keep, 2, entries, 0);
        assert_eq!(seqs(log.last(10)), [5, 7, 9]);
        assert_eq!(log.forgotten(), 3);
        assert_eq!(log.bytes(), 9);
    }
}
