//! The chat pane's scrollback: entries, who wrote them, how far each of
//! our own lines has got, and the bounds that keep it in memory.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::chat;

/// How many log entries are kept; older ones are dropped. The issue asks
/// for at least 10,000 without slowing a frame: drawing only visits the
/// entries on screen, so this bounds memory, not frame time.
pub(crate) const MAX_LOG: usize = 50_000;

/// The most bytes the scrollback's entries may hold (their text and the
/// signed bytes kept with them); past it the oldest go, whatever their
/// count. Peers choose what they send: 50,000 texts of 4 KiB of control
/// bytes, each escaped to five times its size, would otherwise be gigabytes.
pub const MAX_LOG_BYTES: usize = 64 << 20;

/// How many of the newest signed messages keep their bytes and checks, to
/// open in the side panel; older ones show their text only.
pub const KEEP_SIGNED: usize = 2_000;

/// How a notice is styled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Neutral news (a peer joined, the help text).
    Info,
    /// Good news (handshake complete, keys updated).
    Success,
    /// Something failed or was refused.
    Error,
}

/// How far one of our own lines has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Typed; the connection has not sent it yet.
    Pending,
    /// A `/msg` waiting for its end-to-end group (never sent in clear).
    Waiting,
    /// Sent as the author's message `seq`; not yet acknowledged.
    Sent {
        /// Its sequence number in its channel.
        seq: u64,
        /// Whether it was private (its channel).
        private: bool,
    },
    /// The relay acknowledged it: it is in the room.
    Delivered,
    /// Sent on a connection without acknowledgements (not a tlschat room).
    Unacknowledged,
    /// Not sent: refused before it left (too long, an unknown name, a
    /// connection that is over) or by the relay (too fast). Shown so, and
    /// still in the input history to edit and send again.
    Refused,
}

/// What the member's checks found about a message's author.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Signed by the key this member knows under the name from an earlier
    /// session: `✓`.
    Verified,
    /// Signed; the name is first seen in this session (nothing to compare
    /// it with yet): `✓ new`.
    FirstSeen,
    /// Signed by the key the user verified out of band (`/verify`):
    /// `✓ verified`.
    Checked,
    /// Signed by the right key, but replayed from an earlier session, or
    /// signed long before it arrived: `⚠ STALE`.
    Stale,
    /// A guest's or a plain peer's line: no signature.
    Unverified,
    /// The signature does not verify, or the message is not for this room
    /// or this member: shown, and marked.
    Invalid,
    /// Signed, but the name had another key before.
    KeyChanged,
}

/// Who wrote a log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Author {
    /// The user of this terminal.
    Me(Delivery),
    /// A peer, by the name shown.
    Peer(String),
    /// A room member (or guest), by name, with what the checks found.
    Member {
        /// The name the relay gives it (escaped).
        name: String,
        /// The checks' verdict.
        mark: Mark,
    },
    /// tlschat itself.
    System(Level),
}

/// How a message entry is shown besides its author.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tags {
    /// Replayed history, from before we joined.
    pub(crate) history: bool,
    /// A private message (to us, or from us with `to`).
    pub(crate) private: bool,
    /// An action (`/me`).
    pub(crate) action: bool,
    /// It mentions our name.
    pub mention: bool,
    /// Sealed end to end (MLS): the relay could not read it.
    pub(crate) e2e: bool,
}

/// One line of the chat log (wrapped when drawn).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// When it arrived, Unix seconds.
    pub(crate) at: u64,
    /// Who wrote it.
    pub author: Author,
    /// What it says (no control characters).
    pub text: String,
    /// How it is shown.
    pub tags: Tags,
    /// A signed message's bytes and checks, to open in the side panel.
    pub signed: Option<Arc<chat::Received>>,
    /// When a live message was signed, where that is more than a minute
    /// from when it arrived (`at`), Unix seconds.
    pub(crate) signed_at: Option<u64>,
}

impl Entry {
    pub(crate) fn new(at: u64, author: Author, text: String) -> Self {
        Self { at, author, text, tags: Tags::default(), signed: None, signed_at: None }
    }

    /// About what the entry holds in memory, in bytes.
    pub(crate) fn cost(&self) -> usize {
        std::mem::size_of::<Self>() + self.text.len() + self.signed.as_ref().map_or(0, |m| m.signed.len())
    }
}

/// The message pane's scrollback and where the view is in it.
#[derive(Debug, Default)]
pub struct ChatLog {
    pub(crate) entries: VecDeque<Entry>,
    /// What the entries hold, in bytes (see [`Entry::cost`]).
    pub(crate) bytes: usize,
    /// Entries ever dropped from the front: `entries[i]` is entry number
    /// `dropped + i` of the session.
    pub(crate) dropped: u64,
    /// The session numbers of the entries that keep their signed bytes,
    /// oldest first.
    pub(crate) signed: VecDeque<u64>,
    /// The session number of the first entry that arrived after the user
    /// last left the terminal: the read marker goes above it.
    pub(crate) read_up_to: Option<u64>,
    /// How many entries from the newest the view's bottom is: 0 is live.
    pub(crate) scroll: usize,
    /// Entries that arrived while scrolled back.
    pub(crate) unread: usize,
}

impl ChatLog {
    /// All entries, oldest first.
    pub fn entries(&self) -> &VecDeque<Entry> {
        &self.entries
    }

    /// How far back the view is, in entries; 0 is live.
    pub fn scroll(&self) -> usize {
        self.scroll
    }

    /// Entries that arrived while the view was scrolled back.
    pub fn unread(&self) -> usize {
        self.unread
    }

    /// Marks where the user stopped reading: everything until now is read.
    pub(crate) fn mark_read(&mut self) {
        self.read_up_to = Some(self.dropped + self.entries.len() as u64);
    }

    /// The index of the first entry the user has not read since they last
    /// left the terminal, if any arrived: the read marker goes above it.
    pub(crate) fn read_marker(&self) -> Option<usize> {
        let at = usize::try_from(self.read_up_to?.checked_sub(self.dropped)?).ok()?;
        (at < self.entries.len()).then_some(at)
    }

    /// The bytes the entries hold, about (see [`MAX_LOG_BYTES`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn push(&mut self, entry: Entry) {
        if entry.signed.is_some() {
            self.signed.push_back(self.dropped + self.entries.len() as u64);
            if self.signed.len() > KEEP_SIGNED {
                self.forget_oldest_signed();
            }
        }
        self.bytes += entry.cost();
        self.entries.push_back(entry);
        while self.entries.len() > MAX_LOG || (self.bytes > MAX_LOG_BYTES && self.entries.len() > 1) {
            let Some(old) = self.entries.pop_front() else { break };
            self.bytes = self.bytes.saturating_sub(old.cost());
            self.dropped += 1;
        }
        if self.scroll > 0 {
            // Keep the view where the reader left it.
            self.scroll = (self.scroll + 1).min(self.entries.len().saturating_sub(1));
            self.unread += 1;
        }
    }

    /// The oldest entry that keeps its signed bytes lets them go.
    pub(crate) fn forget_oldest_signed(&mut self) {
        let Some(number) = self.signed.pop_front() else { return };
        let Some(at) = number.checked_sub(self.dropped) else { return };
        if let Some(entry) = usize::try_from(at).ok().and_then(|at| self.entries.get_mut(at)) {
            let before = entry.cost();
            entry.signed = None;
            self.bytes = self.bytes.saturating_sub(before - entry.cost());
        }
    }

    /// Our own lines among the latest entries, oldest first, with their
    /// log index.
    pub(crate) fn mine(&mut self) -> impl Iterator<Item = (usize, &mut Entry)> {
        const LOOK_BACK: usize = 1000;
        let start = self.entries.len().saturating_sub(LOOK_BACK);
        self.entries
            .range_mut(start..)
            .enumerate()
            .map(move |(i, e)| (start + i, e))
            .filter(|(_, e)| matches!(e.author, Author::Me(_)))
    }

    /// The network took one of our pending lines, the one that shows
    /// `shown`: it moves on to `to`. The network answers our lines in the
    /// order they were typed, each with "sent" or "not sent"; so pending
    /// lines typed before it that are still pending were refused (a refusal
    /// that came without a line to point at, or was missed).
    pub(crate) fn mark_sent(&mut self, shown: &str, to: Delivery, e2e: bool) {
        // A line waiting for its end-to-end group is answered later, when
        // the group exists: it is not one the connection skipped.
        let pending: Vec<(usize, bool, bool)> = self
            .mine()
            .filter(|(_, e)| matches!(e.author, Author::Me(Delivery::Pending | Delivery::Waiting)))
            .map(|(i, e)| (i, e.text == shown, e.author == Author::Me(Delivery::Waiting)))
            .collect();
        // None that shows this text (it scrolled out, or /clear took it):
        // better no mark than another line's.
        let Some(&(at, _, _)) = pending.iter().find(|(_, same, _)| *same) else { return };
        for (i, _, waiting) in pending.iter().take_while(|(i, _, _)| *i < at) {
            if let (false, Some(e)) = (*waiting, self.entries.get_mut(*i)) {
                e.author = Author::Me(Delivery::Refused);
            }
        }
        if let Some(e) = self.entries.get_mut(at) {
            e.author = Author::Me(to);
            e.tags.e2e |= e2e;
        }
    }

    /// Moves on the oldest (or, with `oldest` false, the newest) of our
    /// lines whose delivery matches `which`; returns whether there was one.
    /// Our latest line showing `shown` that was sent and not acknowledged
    /// (its connection ended first) is marked delivered: the room's
    /// history, replayed on reconnecting, has it. Whether one was.
    pub(crate) fn mark_in_history(&mut self, shown: &str) -> bool {
        let found = self
            .mine()
            .filter(|(_, e)| {
                matches!(e.author, Author::Me(Delivery::Sent { private: false, .. })) && e.text == shown
            })
            .map(|(i, _)| i)
            .last();
        found
            .and_then(|i| self.entries.get_mut(i))
            .map(|e| e.author = Author::Me(Delivery::Delivered))
            .is_some()
    }

    pub(crate) fn mark_mine(
        &mut self,
        which: impl Fn(&Delivery) -> bool,
        to: Delivery,
        oldest: bool,
    ) -> bool {
        let mut mine = self.mine().filter_map(|(_, e)| match &mut e.author {
            Author::Me(d) if which(d) => Some(d),
            _ => None,
        });
        let found = if oldest { mine.next() } else { mine.last() };
        found.map(|d| *d = to).is_some()
    }

    pub(crate) fn scroll_by(&mut self, back: isize) -> bool {
        let max = self.entries.len().saturating_sub(1);
        let old = self.scroll;
        self.scroll = self.scroll.saturating_add_signed(back).min(max);
        if self.scroll == 0 {
            self.unread = 0;
        }
        self.scroll != old
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Kind;
    use crate::tls;

    pub(crate) fn signed_entry(text_len: usize) -> Entry {
        let mut entry = Entry::new(0, Author::System(Level::Info), "x".repeat(text_len));
        let received = chat::Received {
            room_seq: 1,
            history: false,
            private: false,
            from: "alice".into(),
            key: tls::Fingerprint([1; 32]),
            kind: Kind::Text,
            text: String::new(),
            time_ms: 0,
            seq: 1,
            sig: chat::SigCheck::Valid,
            author: chat::AuthorCheck::Known,
            missing_before: 0,
            chain_broken: false,
            late: false,
            stale: None,
            mislabeled: false,
            signed: Arc::from(vec![0u8; 4_000]),
            e2e: false,
            sealed: None,
        };
        entry.signed = Some(Arc::new(received));
        entry
    }

    #[test]
    pub(crate) fn the_scrollback_is_bounded_in_bytes_and_keeps_the_newest_signed_bytes() {
        let mut log = ChatLog::default();
        for _ in 0..4_000 {
            log.push(signed_entry(24_000));
        }
        assert!(log.bytes <= MAX_LOG_BYTES, "{}", log.bytes);
        let kept = log.entries.iter().filter(|e| e.signed.is_some()).count();
        assert!(kept <= KEEP_SIGNED && kept > 0, "{kept}");
        // The newest keep theirs; what was let go is counted out.
        assert!(log.entries.back().is_some_and(|e| e.signed.is_some()));
        let counted: usize = log.entries.iter().map(Entry::cost).sum();
        assert_eq!(counted, log.bytes);
        // Small entries are bounded by count.
        let mut log = ChatLog::default();
        for _ in 0..MAX_LOG + 10 {
            log.push(Entry::new(0, Author::System(Level::Info), "hi".into()));
        }
        assert_eq!(log.entries.len(), MAX_LOG);
    }
}
