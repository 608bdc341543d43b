//! What one room lets connections take: a global cap derived from the
//! process's open-file limit, and a cap on connections that have not
//! proved a key (still in the handshake, or guests) per source address, so
//! that a flood of half-open or idle connections from one address cannot
//! stop a member connecting from another.
//!
//! A [`Slot`] is held by each connection's task: taking one counts the
//! connection in, dropping it counts it out, and [`Slot::verified`] moves
//! a member who proved its key out of its address's unverified count.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// File descriptors kept for everything but connections (the listener,
/// files, the terminal, the runtime).
const RESERVED_FDS: usize = 64;

/// The default cap on connections without a proved key, per address.
pub const DEFAULT_UNVERIFIED_PER_ADDRESS: usize = 64;

/// A room's connection caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections at most, of every kind.
    pub max_connections: usize,
    /// Connections at most per source address that have not proved a key.
    pub unverified_per_address: usize,
}

impl Default for Limits {
    /// The open-file limit, less what the process needs besides; 64
    /// unverified connections per address.
    fn default() -> Self {
        let fds = open_file_limit().unwrap_or(1024);
        Self {
            max_connections: fds.saturating_sub(RESERVED_FDS).max(16),
            unverified_per_address: DEFAULT_UNVERIFIED_PER_ADDRESS,
        }
    }
}

/// Raises the process's soft limit on open files to its hard limit, as far
/// as the system lets it, and returns the soft limit then: a room's
/// default cap on connections follows it. The hard limit itself is the
/// administrator's (`ulimit -Hn`, systemd's `LimitNOFILE`).
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// The process's soft limit on open files; `None` where it cannot be
/// read or is unlimited.
pub fn open_file_limit() -> Option<usize> {
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).ok()?;
    (soft != rlimit::INFINITY).then(|| usize::try_from(soft).ok()).flatten()
}

/// Why a connection was refused, in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Every slot is taken.
    #[error("refused a connection from {from}: the room holds its maximum of {max} connections")]
    Full {
        /// Where it came from.
        from: IpAddr,
        /// The cap.
        max: usize,
    },
    /// Its address has too many connections without a proved key.
    #[error(
        "refused a connection from {from}: {max} connections from that address have not proved a key (--max-unverified-per-address)"
    )]
    Unverified {
        /// Where it came from.
        from: IpAddr,
        /// The cap.
        max: usize,
    },
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    unverified: HashMap<IpAddr, usize>,
}

/// The counts behind a room's caps, shared by the accept loop and the
/// connections.
#[derive(Debug, Clone)]
pub(super) struct Occupancy {
    limits: Limits,
    counts: Arc<Mutex<Counts>>,
}

impl Occupancy {
    /// Counts under these caps.
    pub(super) fn new(limits: Limits) -> Self {
        Self { limits, counts: Arc::default() }
    }

    /// A slot for a connection from `from`, or why not.
    pub(super) fn admit(&self, from: IpAddr) -> Result<Slot, Refusal> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.total >= self.limits.max_connections {
            return Err(Refusal::Full { from, max: self.limits.max_connections });
        }
        let unverified = counts.unverified.entry(from).or_insert(0);
        if *unverified >= self.limits.unverified_per_address {
            return Err(Refusal::Unverified { from, max: self.limits.unverified_per_address });
        }
        *unverified += 1;
        counts.total += 1;
        Ok(Slot { occupancy: self.clone(), from, unverified: true })
    }

    /// Connections counted now: in all, and unverified from `from`.
    #[cfg(test)]
    fn counts(&self, from: IpAddr) -> (usize, usize) {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        (counts.total, counts.unverified.get(&from).copied().unwrap_or(0))
    }

    fn leave_unverified(counts: &mut Counts, from: IpAddr) {
        if let Some(n) = counts.unverified.get_mut(&from) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.unverified.remove(&from);
            }
        }
    }
}

/// One connection's place under the caps; dropping it frees the place.
#[derive(Debug)]
pub(super) struct Slot {
    occupancy: Occupancy,
    from: IpAddr,
    unverified: bool,
}

impl Slot {
    /// The connection proved a key: it no longer counts against its
    /// address's unverified cap.
    pub(super) fn verified(&mut self) {
        if std::mem::take(&mut self.unverified) {
            let mut counts = self.occupancy.counts.lock().unwrap_or_else(PoisonError::into_inner);
            Occupancy::leave_unverified(&mut counts, self.from);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.occupancy.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if self.unverified {
            Occupancy::leave_unverified(&mut counts, self.from);
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert_eq!(super::raise_open_file_limit().unwrap(), hard);
        assert_eq!(rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap(), (hard, hard));
        // What the room's default cap reads.
        assert_eq!(super::open_file_limit().map(|n| n as u64), Some(hard));
    }

    use super::*;

    #[test]
    fn one_address_cannot_take_the_unverified_places_of_another_and_verified_members_free_theirs() {
        let occupancy = Occupancy::new(Limits { max_connections: 10, unverified_per_address: 3 });
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let mut slots: Vec<Slot> = (0..3).map(|_| occupancy.admit(a).unwrap()).collect();
        assert_eq!(occupancy.admit(a).unwrap_err(), Refusal::Unverified { from: a, max: 3 });
        let other = occupancy.admit(b).unwrap();
        // A member that proved its key leaves room for the next from its address.
        slots[0].verified();
        slots.push(occupancy.admit(a).unwrap());
        assert_eq!(occupancy.counts(a), (5, 3));
        drop(other);
        drop(slots);
        assert_eq!(occupancy.counts(a), (0, 0));
    }

    #[test]
    fn the_global_cap_refuses_with_its_number() {
        let occupancy = Occupancy::new(Limits { max_connections: 2, unverified_per_address: 10 });
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let _kept = (occupancy.admit(a).unwrap(), occupancy.admit(a).unwrap());
        let refused = occupancy.admit(a).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "refused a connection from 127.0.0.1: the room holds its maximum of 2 connections"
        );
    }

    #[test]
    fn the_open_file_limit_is_read_here() {
        // Linux: /proc/self/limits always names it.
        assert!(open_file_limit().is_some_and(|n| n > 0));
    }
}
