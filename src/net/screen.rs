//! The operator's events from the room's task (and the host's seat's),
//! sent without waiting.
//!
//! The room's task never waits for the operator's screen (or the headless
//! log, or the log file behind it): an event that finds the screen's
//! queue full is dropped and counted, and the operator is told how many
//! were lost as soon as the queue has room again (or at the room's next
//! tick). The room moves at its members' speed, not at the terminal's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc::{self, error::TrySendError};

use super::NetEvent;
use crate::chat::ChatEvent;

/// Where the room's task sends the operator's events.
#[derive(Debug)]
pub(super) struct Screen {
    events: mpsc::Sender<NetEvent>,
    /// The host's seat, which the host's own events name.
    local: SocketAddr,
    /// Events dropped since the room started (shared with the
    /// [`super::RoomHandle`]).
    dropped: Arc<AtomicU64>,
    /// Dropped since the operator was last told.
    untold: u64,
}

impl Screen {
    pub(super) fn new(events: mpsc::Sender<NetEvent>, local: SocketAddr, dropped: Arc<AtomicU64>) -> Self {
        Self { events, local, dropped, untold: 0 }
    }

    /// Another sender to the same screen, counting into the same count
    /// (the host's seat's task).
    pub(super) fn sibling(&self) -> Self {
        Self::new(self.events.clone(), self.local, self.dropped.clone())
    }

    /// Sends `event` if the screen's queue has room; else counts it.
    pub(super) fn send(&mut self, event: NetEvent) {
        self.tell_dropped();
        self.offer(event);
    }

    /// A note for the operator's log.
    pub(super) fn note(&mut self, note: String) {
        self.send(NetEvent::RoomNote { note });
    }

    /// Events of the host's own (refusals of what it asked).
    pub(super) fn host(&mut self, event: ChatEvent) {
        self.send(NetEvent::Chat { peer: self.local, event });
    }

    /// A frame for the host's seat that its full queue could not take:
    /// the host's screen misses it, counted like an event dropped.
    pub(super) fn missed(&mut self) {
        self.untold += 1;
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Tells the operator how many events were dropped, if any were and
    /// the queue now has room for the note.
    pub(super) fn tell_dropped(&mut self) {
        if self.untold == 0 {
            return;
        }
        let note = format!(
            "{} event(s) of the room were not shown: the screen fell behind (the room did not wait)",
            self.untold
        );
        if self.events.try_send(NetEvent::RoomNote { note }).is_ok() {
            self.untold = 0;
        }
    }

    fn offer(&mut self, event: NetEvent) {
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.untold += 1;
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // Nobody watches any more: nothing to count.
            Err(TrySendError::Closed(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts_and_the_operator_is_told_once_there_is_room() {
        let (tx, mut rx) = mpsc::channel(2);
        let dropped = Arc::new(AtomicU64::new(0));
        let mut screen = Screen::new(tx, "127.0.0.1:1".parse().unwrap(), dropped.clone());
        for i in 0..5 {
            screen.note(format!("note {i}"));
        }
        assert_eq!(dropped.load(Ordering::Relaxed), 3);
        let note = |e: Option<NetEvent>| match e {
            Some(NetEvent::RoomNote { note }) => note,
            other => panic!("{other:?}"),
        };
        assert_eq!(note(rx.try_recv().ok()), "note 0");
        assert_eq!(note(rx.try_recv().ok()), "note 1");
        assert!(rx.try_recv().is_err());
        // Room again: the count first, then what comes.
        screen.note("later".into());
        assert!(note(rx.try_recv().ok()).starts_with("3 event(s) of the room were not shown"));
        assert_eq!(note(rx.try_recv().ok()), "later");
        assert_eq!(dropped.load(Ordering::Relaxed), 3);
    }
}
