//! The TUI's model and its one mutator, [`App::update`].
//!
//! Everything the screen shows lives in [`App`]: the chat log, the input
//! line with its history, the handshake panel's state and the animation
//! frame. Inputs arrive as [`Msg`]s (terminal events, the network's
//! [`NetEvent`]s, ticks) together with the time they were received, and
//! `update` answers with an [`Update`]: whether the screen must be redrawn,
//! and what the network should do ([`Action`]). Drawing (in [`crate::tui::ui`])
//! only reads `&App`, and never looks at a clock: every time shown was
//! passed in here, so a test with a fixed clock gets the same screen every
//! run. With a step delay (`--step-delay`) the network's events wait in a
//! queue here and are let out, in order, by [`Msg::Tick`]s at the times
//! [`App::next_reveal`] names.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::chat::{self, ChatEvent, Kind, Verdict};
use crate::net::{Closer, Intent, NetEvent};
use crate::present::report;
use crate::teach::schedule::Schedule;
use crate::tls::{self, AlertDescription, Direction, Field, HandshakeStep, SecretKind, Summary};

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

/// Below this width the handshake panel is hidden unless F2 asks for it.
pub(crate) const NARROW: u16 = 72;

/// Below this height (rows in all) the panel is hidden unless asked for.
pub(crate) const SHORT: u16 = 12;

/// The chat pane keeps at least this many columns beside the panel; where
/// it cannot, the panel gives way (or, asked for, takes the chat's place).
pub const MIN_CHAT: u16 = 40;

/// Where the side panel goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// Not shown.
    Hidden,
    /// On the right of the chat pane.
    Beside,
    /// In the chat pane's place (asked for on a screen too small for
    /// both): F2 or Esc gives the chat back.
    Instead,
}

/// The side panel's width on a screen `width` columns wide.
pub(crate) fn panel_width(width: u16) -> u16 {
    let two_fifths = u16::try_from(u32::from(width) * 2 / 5).unwrap_or(u16::MAX);
    two_fifths.clamp(30, 60).min(width)
}

/// Entries scrolled per mouse-wheel notch.
const WHEEL_STEP: usize = 3;

/// The time of an input: monotonic for durations (handshake step times),
/// wall clock for the chat's timestamps. The caller reads the clocks once
/// per input ([`Now::system`]); tests pass fixed values.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Monotonic time.
    pub instant: Instant,
    /// Seconds since the Unix epoch (UTC).
    pub unix: u64,
}

impl Now {
    /// The system's clocks, now. Only the event loop calls this, never a view.
    pub fn system() -> Self {
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Self { instant: Instant::now(), unix }
    }

    /// `self` moved on by `by`, on both clocks (for tests and replays).
    #[must_use]
    pub fn after(self, by: Duration) -> Self {
        Self { instant: self.instant + by, unix: self.unix + by.as_secs() }
    }
}

/// How the chat's times are shown: local time, at the offset from UTC read
/// once when the program started, or UTC (`--utc`, and the tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Seconds east of UTC.
    offset: i32,
    zone: Zone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Zone {
    Utc,
    Local,
    /// Local time was wanted, but its offset could not be read.
    Unknown,
}

impl Clock {
    /// UTC.
    pub const UTC: Self = Self { offset: 0, zone: Zone::Utc };

    /// Local time, `offset` seconds east of UTC; UTC, and said so in
    /// `/help`, when the offset could not be read (`None`).
    pub fn local(offset: Option<i32>) -> Self {
        match offset {
            Some(offset) => Self { offset, zone: Zone::Local },
            None => Self { offset: 0, zone: Zone::Unknown },
        }
    }

    /// `HH:MM` of the Unix time `unix`.
    pub fn hh_mm(self, unix: u64) -> String {
        let at = i128::from(unix) + i128::from(self.offset);
        let minutes = at.div_euclid(60);
        format!("{:02}:{:02}", minutes.div_euclid(60).rem_euclid(24), minutes.rem_euclid(60))
    }

    /// What `/help` says about the times.
    pub fn describe(self) -> String {
        match self.zone {
            Zone::Utc => return "times are UTC (without --utc: local time)".into(),
            Zone::Unknown => return "times are UTC: the local time's offset could not be read".into(),
            Zone::Local => {}
        }
        let sign = if self.offset < 0 { '-' } else { '+' };
        let minutes = self.offset.unsigned_abs() / 60;
        format!(
            "times are local, UTC{sign}{:02}:{:02} (--utc shows UTC); history shows when each line was written",
            minutes / 60,
            minutes % 60
        )
    }
}

/// Something that happened, for [`App::update`].
#[derive(Debug)]
pub enum Msg {
    /// A key was pressed (releases and repeats of other kinds are dropped by
    /// the caller; see [`crate::tui`]).
    Key(KeyEvent),
    /// Text pasted into the terminal (bracketed paste).
    Paste(String),
    /// Mouse wheel: positive scrolls back in time, negative forward.
    Wheel(i8),
    /// The terminal's size, at start and on every resize.
    Resize {
        /// Columns.
        width: u16,
        /// Rows.
        height: u16,
    },
    /// The terminal lost (false) or regained (true) the user's focus:
    /// where they stopped reading is marked when they leave.
    Focus(bool),
    /// The animation clock ticked, or a step held back by the step delay
    /// is due (see [`App::next_reveal`]).
    Tick,
    /// We started talking to `peer` (a client's connect, or a server's listen).
    Started {
        /// Whom or where, as the user typed it.
        peer: String,
        /// What the status bar says meanwhile, e.g. "connecting" or "listening".
        state: String,
        /// Whether we serve a room (many connections) rather than join one.
        server: bool,
    },
    /// The network reported something.
    Net(NetEvent),
    /// A notice for the chat pane from the event loop itself.
    Notice {
        /// How it is styled.
        level: Level,
        /// What it says.
        text: String,
    },
    /// The process was asked to stop (`SIGTERM`, or `SIGHUP` when the
    /// terminal closed), by this name: as `/quit`.
    Signal(&'static str),
    /// The last `lines` of our lines could not be handed to the network
    /// (the connection is over, or too much waits): they are marked not
    /// sent, and `reason` is said.
    NotSent {
        /// How many of the newest pending lines.
        lines: usize,
        /// Why, in one line.
        reason: String,
    },
    /// The client's connection is over: `None` after a clean close, else why
    /// it failed (net's `connect` returns its error rather than sending it).
    Ended(Option<String>),
}

/// What the network should do, decided by a key press.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Say this in the room: text, an action, or a private message `to`.
    Say {
        /// What kind.
        kind: Kind,
        /// The text.
        text: String,
        /// `/msg NAME`: the recipient.
        to: Option<String>,
    },
    /// Say these, in order: the lines of a paste, or the pieces of a line
    /// too long for one message. The event loop paces them.
    SayAll(Vec<Said>),
    /// Ask who is in the room.
    Who,
    /// Update our traffic keys (KeyUpdate).
    Rekey,
    /// Send the handshake flight held by `--step`.
    Release,
    /// The tamper lab: break this on purpose (`/tamper CASE`).
    Tamper(crate::teach::lab::Case),
    /// Show the scrollback bare (Alt-L, as weechat): off the alternate
    /// screen, one line per entry, wrapped by the terminal itself, so that
    /// a long line (the room's invite) is selected and copied whole.
    Bare,
    /// Ask the connection or the room (`/ignore`, `/verify`, the host's
    /// `/kick`, `/ban`, `/invite`).
    Ask(crate::net::Intent),
    /// Close with close_notify and leave.
    Quit,
}

/// One message to say, as [`Action::Say`] has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    /// What kind.
    pub kind: Kind,
    /// The text.
    pub text: String,
    /// `/msg NAME`: the recipient.
    pub to: Option<String>,
}

/// `text` cut into pieces of at most `max` bytes, each ending on a
/// character boundary: after the last space of a piece when that space is
/// in its second half (the space is dropped), else at the last character
/// that fits. Text within `max` is one piece.
pub(crate) fn pieces(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut end = max;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            // max is smaller than one character: the character alone.
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (piece, next) = match rest.get(..end).and_then(|head| head.rfind(' ')) {
            Some(space) if space >= end / 2 && space > 0 => (&rest[..space], &rest[space + 1..]),
            _ => rest.split_at(end),
        };
        out.push(piece);
        rest = next;
    }
    out.push(rest);
    out
}

/// What [`App::update`] decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct Update {
    /// Whether anything visible changed.
    pub redraw: bool,
    /// What to ask of the network, if anything.
    pub action: Option<Action>,
    /// Ring the terminal's bell: a line mentions us.
    pub bell: bool,
}

impl Update {
    const NONE: Self = Self { redraw: false, action: None, bell: false };
    const REDRAW: Self = Self { redraw: true, action: None, bell: false };

    fn act(action: Action) -> Self {
        Self { redraw: true, action: Some(action), bell: false }
    }

    fn redraw_if(redraw: bool) -> Self {
        Self { redraw, action: None, bell: false }
    }
}

// ---------------------------------------------------------------------------
// Chat log

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
    fn new(at: u64, author: Author, text: String) -> Self {
        Self { at, author, text, tags: Tags::default(), signed: None, signed_at: None }
    }

    /// About what the entry holds in memory, in bytes.
    fn cost(&self) -> usize {
        std::mem::size_of::<Self>() + self.text.len() + self.signed.as_ref().map_or(0, |m| m.signed.len())
    }
}

/// The message pane's scrollback and where the view is in it.
#[derive(Debug, Default)]
pub struct ChatLog {
    entries: VecDeque<Entry>,
    /// What the entries hold, in bytes (see [`Entry::cost`]).
    bytes: usize,
    /// Entries ever dropped from the front: `entries[i]` is entry number
    /// `dropped + i` of the session.
    dropped: u64,
    /// The session numbers of the entries that keep their signed bytes,
    /// oldest first.
    signed: VecDeque<u64>,
    /// The session number of the first entry that arrived after the user
    /// last left the terminal: the read marker goes above it.
    read_up_to: Option<u64>,
    /// How many entries from the newest the view's bottom is: 0 is live.
    scroll: usize,
    /// Entries that arrived while scrolled back.
    unread: usize,
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
    fn mark_read(&mut self) {
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

    fn push(&mut self, entry: Entry) {
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
    fn forget_oldest_signed(&mut self) {
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
    fn mine(&mut self) -> impl Iterator<Item = (usize, &mut Entry)> {
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
    fn mark_sent(&mut self, shown: &str, to: Delivery, e2e: bool) {
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
    fn mark_in_history(&mut self, shown: &str) -> bool {
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

    fn mark_mine(&mut self, which: impl Fn(&Delivery) -> bool, to: Delivery, oldest: bool) -> bool {
        let mut mine = self.mine().filter_map(|(_, e)| match &mut e.author {
            Author::Me(d) if which(d) => Some(d),
            _ => None,
        });
        let found = if oldest { mine.next() } else { mine.last() };
        found.map(|d| *d = to).is_some()
    }

    fn scroll_by(&mut self, back: isize) -> bool {
        let max = self.entries.len().saturating_sub(1);
        let old = self.scroll;
        self.scroll = self.scroll.saturating_add_signed(back).min(max);
        if self.scroll == 0 {
            self.unread = 0;
        }
        self.scroll != old
    }
}

// ---------------------------------------------------------------------------
// Input line

/// The input line: text, cursor and history.
#[derive(Debug, Default)]
pub struct Input {
    text: String,
    /// Byte offset of the cursor, always on a char boundary.
    cursor: usize,
    history: Vec<String>,
    /// Which history entry is shown while browsing with Up/Down.
    browsing: Option<usize>,
    /// What was typed before browsing started.
    draft: String,
}

impl Input {
    /// The text typed so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The cursor's byte offset in [`Self::text`].
    pub(crate) fn cursor(&self) -> usize {
        self.cursor
    }

    fn insert(&mut self, s: &str) {
        self.text.insert_str(self.cursor, s);
        self.cursor += s.len();
    }

    fn prev_boundary(&self) -> usize {
        self.text.get(..self.cursor).and_then(|s| s.char_indices().next_back()).map_or(0, |(i, _)| i)
    }

    fn next_boundary(&self) -> usize {
        self.text
            .get(self.cursor..)
            .and_then(|s| s.chars().next())
            .map_or(self.cursor, |c| self.cursor + c.len_utf8())
    }

    fn backspace(&mut self) {
        let start = self.prev_boundary();
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    fn delete(&mut self) {
        let end = self.next_boundary();
        self.text.replace_range(self.cursor..end, "");
    }

    /// Ctrl-W: the whitespace before the cursor, then the word before that.
    fn delete_word(&mut self) {
        let before = self.text.get(..self.cursor).unwrap_or_default();
        let trimmed = before.trim_end();
        let start = trimmed.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    fn set(&mut self, text: String) {
        self.cursor = text.len();
        self.text = text;
    }

    fn history_back(&mut self) -> bool {
        let index = match self.browsing {
            None if self.history.is_empty() => return false,
            None => {
                self.draft = std::mem::take(&mut self.text);
                self.history.len() - 1
            }
            Some(0) => return false,
            Some(i) => i - 1,
        };
        self.browsing = Some(index);
        self.set(self.history.get(index).cloned().unwrap_or_default());
        true
    }

    fn history_forward(&mut self) -> bool {
        let Some(i) = self.browsing else { return false };
        if i + 1 < self.history.len() {
            self.browsing = Some(i + 1);
            self.set(self.history.get(i + 1).cloned().unwrap_or_default());
        } else {
            self.browsing = None;
            let draft = std::mem::take(&mut self.draft);
            self.set(draft);
        }
        true
    }

    /// Takes the line for sending and remembers it.
    fn take(&mut self) -> String {
        let line = std::mem::take(&mut self.text);
        self.cursor = 0;
        self.browsing = None;
        self.draft.clear();
        if !line.trim().is_empty() && self.history.last() != Some(&line) {
            self.history.push(line.clone());
        }
        line
    }
}

// ---------------------------------------------------------------------------
// Handshake panel

/// A check the engine made at a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Check {
    /// What was checked.
    pub(crate) what: &'static str,
    /// Whether it passed.
    pub(crate) ok: bool,
    /// Why, in one line.
    pub(crate) detail: String,
}

/// One handshake message as the panel shows it, with what happened at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepView {
    /// 1-based message number.
    pub(crate) number: usize,
    /// Sent or received.
    pub(crate) direction: Direction,
    /// The message's name.
    pub name: &'static str,
    /// One-line summary.
    pub(crate) summary: String,
    /// Decoded fields.
    pub(crate) fields: Vec<Field>,
    /// The message's bytes.
    pub bytes: Vec<u8>,
    /// Whether it travelled encrypted.
    pub(crate) encrypted: bool,
    /// Transcript hash up to this message.
    pub(crate) transcript_hash: Option<[u8; 32]>,
    /// When it happened, since the handshake started.
    pub at: Duration,
    /// Secrets derived right after this message (labels only).
    pub(crate) secrets: Vec<SecretKind>,
    /// Checks made on it.
    pub(crate) checks: Vec<Check>,
}

impl StepView {
    /// Whether a check at this step failed.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| !c.ok)
    }
}

/// How the handshake stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not started, or messages still awaited.
    InProgress,
    /// Done: what was negotiated.
    Done(Box<Summary>),
    /// Failed, and why.
    Failed(String),
}

/// The handshake panel's model: the steps of the current connection and
/// the user's place in them.
#[derive(Debug)]
pub struct Panel {
    /// The connection shown.
    peer: Option<SocketAddr>,
    /// When its first step arrived.
    start: Option<Instant>,
    steps: Vec<StepView>,
    /// Messages expected in all, as last reported.
    expected: usize,
    outcome: Outcome,
    key_updates: u64,
    /// Messages in the handshake, set when it completes.
    handshake_len: Option<usize>,
    selected: usize,
    expanded: bool,
    /// Lines scrolled in the expanded detail.
    detail_scroll: u16,
    /// The connection's key schedule (F4), filled in from the same events.
    schedule: Schedule,
    /// Lines scrolled in the key schedule view.
    schedule_scroll: u16,
}

impl Default for Panel {
    fn default() -> Self {
        Self {
            peer: None,
            start: None,
            steps: Vec::new(),
            expected: 0,
            outcome: Outcome::InProgress,
            key_updates: 0,
            handshake_len: None,
            selected: 0,
            expanded: false,
            detail_scroll: 0,
            schedule: Schedule::default(),
            schedule_scroll: 0,
        }
    }
}

impl Panel {
    /// The messages so far.
    pub fn steps(&self) -> &[StepView] {
        &self.steps
    }

    /// How many messages the handshake is expected to have.
    pub(crate) fn expected(&self) -> usize {
        self.expected
    }

    /// How the handshake stands.
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// Whether the panel has started showing a connection.
    pub(crate) fn started(&self) -> bool {
        self.peer.is_some()
    }

    /// Key updates seen since the handshake, both ways.
    pub fn key_updates(&self) -> u64 {
        self.key_updates
    }

    /// How many messages the handshake had, once it is done; the engine
    /// numbers later messages (KeyUpdate) on from there.
    pub(crate) fn handshake_len(&self) -> Option<usize> {
        self.handshake_len
    }

    /// The selected step's index.
    pub fn selected(&self) -> usize {
        self.selected
    }

    /// Whether the selected step is expanded.
    pub fn expanded(&self) -> bool {
        self.expanded
    }

    /// Lines scrolled in the expanded detail.
    pub(crate) fn detail_scroll(&self) -> u16 {
        self.detail_scroll
    }

    /// The connection's key schedule, as far as it is known.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Lines scrolled in the key schedule view.
    pub fn schedule_scroll(&self) -> u16 {
        self.schedule_scroll
    }

    /// Messages still awaited (spinners), none once done or failed.
    pub fn pending(&self) -> usize {
        match self.outcome {
            Outcome::InProgress if self.peer.is_some() => {
                self.expected.saturating_sub(self.last_number()).max(1)
            }
            _ => 0,
        }
    }

    /// The number of the latest message (the dummy ChangeCipherSpec shares
    /// the number of the message before it: it is not counted).
    pub(crate) fn last_number(&self) -> usize {
        self.steps.last().map_or(0, |s| s.number)
    }

    /// Whether `peer`'s events are the ones this panel shows, taking a new
    /// connection when the old one is over (a room's next member).
    fn follows(&mut self, peer: SocketAddr, step: &HandshakeStep) -> bool {
        match self.peer {
            Some(p) if p == peer => true,
            Some(_) if matches!(self.outcome, Outcome::InProgress) => false,
            _ if step.number <= 1 => {
                *self = Self { peer: Some(peer), ..Self::default() };
                true
            }
            _ => false,
        }
    }

    fn step(&mut self, step: HandshakeStep, now: Instant) {
        self.schedule.step(&step);
        let start = *self.start.get_or_insert(now);
        self.expected = step.expected;
        match step.step {
            tls::Step::Message { direction, name, summary, fields, bytes, encrypted, transcript_hash } => {
                let follow = self.selected + 1 >= self.steps.len() && !self.expanded;
                // What the peer chose (SNI, ALPN, names) is shown escaped.
                let summary = crate::present::escape::printable(&summary).into_owned();
                let fields = fields
                    .into_iter()
                    .map(|f| tls::Field {
                        value: crate::present::escape::printable(&f.value).into_owned(),
                        ..f
                    })
                    .collect();
                self.steps.push(StepView {
                    number: step.number,
                    direction,
                    name,
                    summary,
                    fields,
                    bytes,
                    encrypted,
                    transcript_hash,
                    at: now.saturating_duration_since(start),
                    secrets: Vec::new(),
                    checks: Vec::new(),
                });
                if follow {
                    self.selected = self.steps.len() - 1;
                }
            }
            tls::Step::SecretDerived { kind } => {
                if let Some(last) = self.steps.last_mut() {
                    last.secrets.push(kind);
                }
            }
            tls::Step::Check { what, ok, detail } => {
                if !ok {
                    self.outcome = Outcome::Failed(format!("{what}: {detail}"));
                }
                if let Some(last) = self.steps.last_mut() {
                    last.checks.push(Check { what, ok, detail });
                }
            }
        }
    }

    fn fail(&mut self, reason: String) {
        if matches!(self.outcome, Outcome::InProgress) {
            self.outcome = Outcome::Failed(reason);
        }
    }

    fn select(&mut self, delta: isize) -> bool {
        let last = self.steps.len().saturating_sub(1);
        let old = self.selected;
        self.selected = self.selected.saturating_add_signed(delta).min(last);
        if old != self.selected {
            self.detail_scroll = 0;
        }
        old != self.selected
    }
}

// ---------------------------------------------------------------------------
// Teaching pace

/// What waits behind the step delay: the network's events, and the end of
/// the connection, which must not overtake them.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "nearly every entry is a NetEvent: boxing would allocate for each"
)]
enum Delayed {
    Net(NetEvent),
    Ended(Option<String>),
}

/// `--step-delay`: the network's events are queued and handed to the app
/// in order, one handshake message every `delay` (the checks and secrets
/// of a message, and whatever is not a message, follow at once). Only the
/// reveal is slowed: the engine ran at full speed, and each event keeps
/// the time it arrived, which is the time the panel shows.
#[derive(Debug, Default)]
struct Reveal {
    delay: Duration,
    queue: VecDeque<(Delayed, Now)>,
    /// When the next message may be shown.
    next: Option<Instant>,
}

impl Reveal {
    /// The next event that is due at `now`, and when it arrived.
    fn pop_due(&mut self, now: Instant) -> Option<(Delayed, Now)> {
        let is_message = matches!(
            self.queue.front()?,
            (
                Delayed::Net(NetEvent::Step {
                    step: HandshakeStep { step: tls::Step::Message { .. }, .. },
                    ..
                }),
                _
            )
        );
        if is_message {
            if self.next.is_some_and(|next| now < next) {
                return None;
            }
            self.next = Some(now + self.delay);
        }
        self.queue.pop_front()
    }

    /// When the message at the front of the queue is due, if one waits.
    fn due(&self) -> Option<Instant> {
        self.next.filter(|_| !self.queue.is_empty())
    }
}

// ---------------------------------------------------------------------------
// The app

/// What Tab found to complete at the end of the input line.
enum Completion {
    /// A member's name, now in the line.
    Done,
    /// A partly typed word that no member's name starts.
    NoMatch(String),
    /// No word (an empty line, a space, the cursor inside): Tab moves the focus.
    NoWord,
}

/// Which part of the screen takes keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Focus {
    /// The input line (and the chat pane's scrolling).
    #[default]
    Input,
    /// The handshake panel.
    Panel,
    /// The chat pane: Up/Down pick a signed message, Enter opens it in the
    /// side panel.
    Messages,
}

/// What the side panel shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Side {
    /// The handshake's steps (the default).
    #[default]
    Handshake,
    /// The room's members (F3).
    Members,
    /// The key schedule (F4): the RFC 8446 §7.1 tree, with values and the
    /// commands that recompute them under `--reveal`.
    Schedule,
    /// One signed message, its bytes and checks (Enter on a message).
    Message(Arc<chat::Received>),
    /// The end-to-end groups' life, step by step (F5).
    Groups,
}

mod groups;
pub(crate) use groups::{GroupShown, GroupStep};

/// The TUI's whole state. Only [`App::update`] changes it.
#[derive(Debug)]
pub struct App {
    log: ChatLog,
    input: Input,
    panel: Panel,
    focus: Focus,
    /// F2's choice; `None` follows the terminal's width.
    panel_choice: Option<bool>,
    size: (u16, u16),
    /// Animation frame, advanced by ticks only.
    frame: u64,
    color: bool,
    peer: String,
    state: String,
    quitting: bool,
    server: bool,
    sent: (u64, u64),
    received: (u64, u64),
    reveal: Reveal,
    /// A handshake flight is held until Space (`--step`).
    held: bool,
    /// Our name in the room, once welcomed: lines that mention it are
    /// highlighted.
    me: Option<String>,
    /// The room is end to end (`listen --e2e`), as its Welcome said.
    e2e_room: bool,
    /// A mention arrived since the last update: ring the bell.
    ring: bool,
    /// Whether mentions ring the bell (`--no-bell` turns it off).
    bell: bool,
    /// The room's members, as the last join, leave and `/who` told.
    members: Vec<chat::MemberInfo>,
    /// What the side panel shows.
    side: Side,
    /// With [`Focus::Messages`]: the log index of the picked message.
    picked: Option<usize>,
    /// A room's connections, each with its own handshake panel, so that
    /// the panel can follow any member (server only).
    conns: Vec<Conn>,
    /// `--reveal`: the session's secret values are on screen.
    secrets_shown: bool,
    /// The connection the panel follows, picked in the member list; `None`
    /// follows the newest handshake.
    pinned: Option<SocketAddr>,
    /// In a room's member list: the row picked (0 follows the newest).
    conn_row: usize,
    /// When Esc was pressed, and whether a `[` or `O` followed: the start
    /// of an escape sequence split by a slow link (see `escape_tail`).
    esc_tail: Option<(Instant, bool)>,
    /// How times are shown.
    clock: Clock,
    /// The join or leave last shown, by name: the room's note that repeats
    /// it is not shown again.
    shown_presence: Option<(String, bool)>,
    /// The highest place in the room's order shown so far (a message, or
    /// one of ours delivered): history replayed after a reconnect (the
    /// tamper lab's) is not shown twice.
    room_seen: u64,
    /// Whether this connection's history repeated lines already shown
    /// (said once, where the first was skipped).
    history_folded: bool,
    /// The last lab case's outcome in one line, said again once the room
    /// is joined anew after the lab's reconnect (so it stays in view), and
    /// whether that reconnect is under way (its room list, unchanged, is
    /// not listed again).
    lab_verdict: Option<(Level, String)>,
    lab_rejoining: bool,
    /// Members whose connection closed with close_notify, their leaving
    /// not yet shown.
    closed_by_peer: Vec<String>,
    /// A room's own key, short, for the host's status bar.
    room_key: Option<String>,
    /// The end-to-end groups' steps (F5).
    group_steps: std::collections::VecDeque<GroupStep>,
    /// The groups as last seen, the panel's last (F5).
    groups_shown: Vec<GroupShown>,
    /// Groups seen in this session, to number them.
    groups_numbered: usize,
    /// The group picked in the panel (Up/Down); `None` follows the newest.
    group_pick: Option<Vec<u8>>,
    /// How far the group panel is scrolled (PgUp/PgDn).
    group_scroll: u16,
}

/// How long after an Esc (or a character of the sequence it began) the
/// rest of a split escape sequence is still taken as one: a slow link's
/// delay, longer than any key repeat, shorter than typing `Esc [` by hand.
const ESC_TAIL: Duration = Duration::from_millis(300);

/// One of a room's connections, for the member list and the panel.
#[derive(Debug)]
pub struct Conn {
    /// Its address.
    pub(crate) peer: SocketAddr,
    /// Who it is: `alice ✓`, or `guest` before or without a key.
    pub(crate) label: String,
    /// Whether it is still connected (one that ended stays while followed).
    pub(crate) open: bool,
    panel: Panel,
}

/// Connections a room's TUI keeps a panel for; beyond, the oldest goes.
const MAX_CONNS: usize = 256;

/// The `/help` text, one notice per line.
const HELP: &[&str] = &[
    "commands: /help  /who or /names (members)  /me ACTION  /msg NAME TEXT (private, end to end)  //text (a line starting with /)",
    "          /rekey (update traffic keys)  /clear (empty the scrollback)  /nick (how names are chosen)",
    "          /quit (close with close_notify; a bare exit is sent as a message)",
    "          /verify NAME (both safety numbers; marks NAME verified)  /ignore NAME (this session)",
    "          host: /kick NAME  /ban NAME (by key, kept)  /invite NAME FINGERPRINT (into a --closed room)",
    "marks: ✓ signature checked, a key you knew · ✓ new first seen this session · ✓ verified safety numbers compared",
    "       ⚠ KEY CHANGED not the key you know for the name (or a look-alike) · ⚠ STALE a replay, or signed long ago",
    "       ✗ INVALID the signature fails · (unverified) a guest: the relay's word only",
    "       your lines: · sent  ✓✓ the relay acknowledged  ✗ not sent",
    "          /tamper CASE (the lab, in demo or connect --lab: break one thing, see which check catches it;",
    "          CASE: flip replay reorder finished cert, cert name, mitm sig; /tamper alone explains each)",
    "keys: Enter send · Up/Down history · Ctrl-W delete word · Ctrl-U clear · Home/End · Ctrl-C quit",
    "      PgUp/PgDn or wheel scroll · End back to live · F2 panel on/off · F3 members · F4 key schedule · F5 end-to-end groups",
    "      Tab completes a member's name, else moves the focus: panel, then messages",
    "      panel: Up/Down select a step · Enter expand · PgUp/PgDn scroll details · Esc back",
    "      messages: Up/Down pick a signed message · Enter opens its bytes and checks · Esc back",
    "      Space sends a flight held by --step · Alt-L bare view: the scrollback as plain lines, to copy long ones whole",
];

impl App {
    /// A new app; `color` is false when NO_COLOR is set (see `color_allowed`).
    pub fn new(color: bool) -> Self {
        Self {
            log: ChatLog::default(),
            input: Input::default(),
            panel: Panel::default(),
            focus: Focus::Input,
            panel_choice: None,
            size: (80, 24),
            frame: 0,
            color,
            peer: String::new(),
            state: "starting".into(),
            quitting: false,
            server: false,
            sent: (0, 0),
            received: (0, 0),
            reveal: Reveal::default(),
            held: false,
            me: None,
            e2e_room: false,
            ring: false,
            bell: true,
            members: Vec::new(),
            side: Side::Handshake,
            picked: None,
            conns: Vec::new(),
            pinned: None,
            conn_row: 0,
            secrets_shown: false,
            esc_tail: None,
            clock: Clock::UTC,
            shown_presence: None,
            room_seen: 0,
            history_folded: false,
            lab_verdict: None,
            lab_rejoining: false,
            closed_by_peer: Vec::new(),
            room_key: None,
            group_steps: std::collections::VecDeque::new(),
            groups_shown: Vec::new(),
            groups_numbered: 0,
            group_pick: None,
            group_scroll: 0,
        }
    }

    /// The app with `--reveal` on: the panel, the key schedule view and a
    /// banner show that the session's secret values are on screen.
    #[must_use]
    pub fn with_reveal(mut self, reveal: bool) -> Self {
        self.secrets_shown = reveal;
        self
    }

    /// Whether the session's secret values are shown (`--reveal`).
    pub(crate) fn secrets_shown(&self) -> bool {
        self.secrets_shown
    }

    /// The app with the panel's reveal slowed to one handshake message per
    /// `delay` (`--step-delay`).
    #[must_use]
    pub fn with_step_delay(mut self, delay: Duration) -> Self {
        self.reveal.delay = delay;
        self
    }

    /// The app with times shown by `clock` (UTC by default).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// A room's app with the room's own key (its short form), which the
    /// host's status bar shows.
    #[must_use]
    pub fn with_room_key(mut self, key: String) -> Self {
        self.room_key = Some(key);
        self
    }

    /// The room's own key, short (a room's host only).
    pub(crate) fn room_key(&self) -> Option<&str> {
        self.room_key.as_deref()
    }

    /// Whether this is a tlschat room (we were welcomed, or we host it):
    /// its lines are signed, and the relay reads them.
    pub(crate) fn in_room(&self) -> bool {
        self.me.is_some() || self.room_key.is_some()
    }

    /// The app of an end-to-end room's host (`listen --e2e`), whose header
    /// says that the room is end to end before anyone joins.
    #[must_use]
    pub fn with_e2e_room(mut self, e2e: bool) -> Self {
        self.e2e_room = e2e;
        self
    }

    /// Whether the room is end to end (`listen --e2e`): one MLS group the
    /// relay cannot read.
    pub(crate) fn e2e_room(&self) -> bool {
        self.e2e_room
    }

    /// How times are shown.
    pub(crate) fn clock(&self) -> Clock {
        self.clock
    }

    /// The app with the terminal bell for mentions on or off.
    #[must_use]
    pub fn with_bell(mut self, bell: bool) -> Self {
        self.bell = bell;
        self
    }

    /// When a step held back by the step delay is due: the event loop sends
    /// [`Msg::Tick`] then. `None` when nothing waits.
    pub fn next_reveal(&self) -> Option<Instant> {
        self.reveal.due()
    }

    /// Whether a handshake flight is held until Space (`--step`).
    pub fn held(&self) -> bool {
        self.held
    }

    /// The chat log.
    pub fn log(&self) -> &ChatLog {
        &self.log
    }

    /// The input line.
    pub fn input(&self) -> &Input {
        &self.input
    }

    /// The handshake panel's state: the pinned connection's in a room
    /// that follows one member, else the newest handshake's.
    pub fn panel(&self) -> &Panel {
        self.pinned
            .and_then(|peer| self.conns.iter().find(|c| c.peer == peer))
            .map_or(&self.panel, |c| &c.panel)
    }

    fn panel_mut(&mut self) -> &mut Panel {
        match self.pinned.and_then(|peer| self.conns.iter().position(|c| c.peer == peer)) {
            Some(i) => &mut self.conns[i].panel,
            None => &mut self.panel,
        }
    }

    /// Whether this app serves a room.
    pub(crate) fn is_server(&self) -> bool {
        self.server
    }

    /// A room's connections (server only), oldest first.
    pub fn conns(&self) -> &[Conn] {
        &self.conns
    }

    /// The connection the panel follows, if one was picked.
    pub fn pinned(&self) -> Option<SocketAddr> {
        self.pinned
    }

    /// The row picked in a room's member list (0: follow the newest).
    pub(crate) fn conn_row(&self) -> usize {
        self.conn_row
    }

    /// Applies `f` to every panel that shows `peer`.
    fn panels_of(&mut self, peer: SocketAddr, f: impl Fn(&mut Panel)) {
        if self.panel.peer == Some(peer) {
            f(&mut self.panel);
        }
        if let Some(c) = self.conns.iter_mut().find(|c| c.peer == peer) {
            f(&mut c.panel);
        }
    }

    /// Which part takes keys.
    pub fn focus(&self) -> Focus {
        self.focus
    }

    /// The animation frame.
    pub(crate) fn frame(&self) -> u64 {
        self.frame
    }

    /// Whether colours may be used.
    pub(crate) fn color(&self) -> bool {
        self.color
    }

    /// The peer or address, as the user named it.
    pub(crate) fn peer(&self) -> &str {
        &self.peer
    }

    /// The connection state for the status bar.
    pub fn state(&self) -> &str {
        &self.state
    }

    /// Chat lines and bytes we sent.
    pub(crate) fn sent(&self) -> (u64, u64) {
        self.sent
    }

    /// Chat lines and bytes we received.
    pub(crate) fn received(&self) -> (u64, u64) {
        self.received
    }

    /// The room's members as last heard (joins, leaves, `/who`).
    pub(crate) fn members(&self) -> &[chat::MemberInfo] {
        &self.members
    }

    /// What the side panel shows.
    pub fn side(&self) -> &Side {
        &self.side
    }

    /// The log index of the message picked in the chat pane, if any.
    pub(crate) fn picked(&self) -> Option<usize> {
        self.picked.filter(|_| self.focus == Focus::Messages)
    }

    /// Whether the user asked to leave.
    pub fn quitting(&self) -> bool {
        self.quitting
    }

    /// Whether the panel is shown at `width` columns (and the last height).
    pub fn panel_visible(&self, width: u16) -> bool {
        self.panel_place(width, self.size.1) != Place::Hidden
    }

    /// Where the panel goes on a `width`×`height` screen: beside the chat
    /// when the chat keeps [`MIN_CHAT`] columns (by itself only from
    /// [`NARROW`] columns and [`SHORT`] rows); asked for (F2, F3, F4, a
    /// message opened) where both do not fit, in the chat's place.
    pub(crate) fn panel_place(&self, width: u16, height: u16) -> Place {
        let fits = width.saturating_sub(panel_width(width)) >= MIN_CHAT;
        match self.panel_choice {
            Some(false) => Place::Hidden,
            Some(true) if fits => Place::Beside,
            Some(true) => Place::Instead,
            None if fits && width >= NARROW && height >= SHORT => Place::Beside,
            None => Place::Hidden,
        }
    }

    /// Whether something moves on screen, so ticks matter; when not, the
    /// event loop can stop its tick timer and idle.
    pub fn animating(&self) -> bool {
        // A held flight waits for the user: no spinner then.
        self.panel.pending() > 0 && self.panel_visible(self.size.0) && !self.held
    }

    /// The one mutator: applies `msg`, received at `now`.
    pub fn update(&mut self, msg: Msg, now: Now) -> Update {
        match msg {
            Msg::Key(key) if key.kind == KeyEventKind::Press => self.key(key, now),
            Msg::Key(_) => Update::NONE,
            Msg::Paste(text) => self.paste(&text, now),
            Msg::Wheel(notches) => {
                let back = isize::from(notches) * WHEEL_STEP as isize;
                Update::redraw_if(self.log.scroll_by(back))
            }
            Msg::Focus(false) => {
                self.log.mark_read();
                Update::NONE
            }
            Msg::Focus(true) => Update::NONE,
            Msg::Resize { width, height } => {
                let resized = self.size != (width, height);
                self.size = (width, height);
                // A panel asked for on a larger screen gives way to the chat.
                if resized && self.panel_place(width, height) == Place::Instead {
                    self.panel_choice = None;
                }
                if !self.panel_visible(width) && self.focus == Focus::Panel {
                    self.focus = Focus::Input;
                }
                Update::REDRAW
            }
            Msg::Tick => {
                let revealed = self.reveal_due(now);
                if self.animating() {
                    self.frame = self.frame.wrapping_add(1);
                }
                Update::redraw_if(revealed || self.animating())
            }
            Msg::Started { peer, state, server } => {
                self.peer = peer;
                self.state = state;
                self.server = server;
                let text = format!("{}: {}", self.state, self.peer);
                self.notice(now, Level::Info, text);
                Update::REDRAW
            }
            Msg::Net(event) => {
                self.reveal.queue.push_back((Delayed::Net(event), now));
                let redraw = self.reveal_due(now);
                Update { redraw, action: None, bell: std::mem::take(&mut self.ring) }
            }
            Msg::Notice { level, text } => {
                self.notice(now, level, text);
                Update::REDRAW
            }
            Msg::Signal(name) => {
                self.notice(now, Level::Info, format!("{name}: closing"));
                self.quit()
            }
            Msg::NotSent { lines, reason } => {
                for _ in 0..lines {
                    let _ = self.log.mark_mine(|d| *d == Delivery::Pending, Delivery::Refused, false);
                }
                self.notice(now, Level::Error, reason);
                Update::REDRAW
            }
            Msg::Ended(error) => {
                self.reveal.queue.push_back((Delayed::Ended(error), now));
                Update::redraw_if(self.reveal_due(now))
            }
        }
    }

    /// Applies the delayed inputs that are due; returns whether there were any.
    fn reveal_due(&mut self, now: Now) -> bool {
        let mut any = false;
        while let Some((delayed, arrived)) = self.reveal.pop_due(now.instant) {
            any = true;
            match delayed {
                Delayed::Net(event) => self.net(event, arrived),
                Delayed::Ended(error) => self.ended(error, arrived),
            }
        }
        any
    }

    fn ended(&mut self, error: Option<String>, now: Now) {
        self.held = false;
        match error {
            None => {
                self.state = "closed".into();
            }
            Some(reason) => {
                self.panel.fail(reason.clone());
                self.state = "failed".into();
                self.notice(now, Level::Error, reason);
            }
        }
        self.notice(now, Level::Info, "connection over: /quit or Ctrl-C to leave".into());
    }

    fn notice(&mut self, now: Now, level: Level, text: String) {
        self.log.push(Entry::new(now.unix, Author::System(level), text));
    }

    fn net(&mut self, event: NetEvent, now: Now) {
        match event {
            NetEvent::Step { peer, step } => {
                if self.server {
                    self.conn_step(peer, &step, now);
                }
                if self.panel.follows(peer, &step) {
                    self.panel.step(step, now.instant);
                    if !self.server {
                        self.state = match self.panel.outcome {
                            Outcome::Failed(_) => "failed".into(),
                            // A KeyUpdate is a message after the handshake.
                            Outcome::Done(_) => "connected".into(),
                            Outcome::InProgress => "handshaking".into(),
                        };
                    }
                }
            }
            NetEvent::ServerKey { cert, .. } => {
                self.notice(
                    now,
                    Level::Info,
                    format!(
                        "the room proved its key {}: your certificate, which says who you are, is not sent until you trust it",
                        cert.fingerprint.short()
                    ),
                );
                if !self.server {
                    self.state = "awaiting your trust".into();
                }
            }
            NetEvent::Connected { peer, summary } => {
                let who = summary
                    .peer
                    .as_ref()
                    .map_or_else(|| peer.to_string(), |c| chat::printable(&c.subject).into_owned());
                let fp = summary
                    .peer
                    .as_ref()
                    .map(|c| format!(", safety number {}", c.fingerprint.short()))
                    .unwrap_or_default();
                self.notice(
                    now,
                    Level::Success,
                    format!("handshake complete with {who}: {}{fp}", summary.suite),
                );
                if let Some(c) = self.conns.iter_mut().find(|c| c.peer == peer) {
                    c.label = match summary.peer.as_ref().and_then(crate::store::identity::name_of) {
                        Some(name) => format!("{name} \u{2713}"),
                        None => "guest".into(),
                    };
                }
                let connected_at = self.panel.peer == Some(peer);
                self.panels_of(peer, |p| {
                    p.outcome = Outcome::Done(Box::new(summary.clone()));
                    p.handshake_len = Some(p.last_number());
                });
                if connected_at && !self.server {
                    self.state = "connected".into();
                }
            }
            NetEvent::KeyUpdated { peer, direction, update_requested, generation } => {
                let what = match direction {
                    Direction::Sent => format!("KeyUpdate sent to {peer}: our sending keys"),
                    Direction::Received => format!("KeyUpdate from {peer}: its sending keys"),
                };
                let asked = if update_requested { " (update requested)" } else { "" };
                self.notice(now, Level::Success, format!("{what} are now generation {generation}{asked}"));
                self.panels_of(peer, |p| p.key_updates += 1);
            }
            NetEvent::AlertSent { peer, alert } => {
                if alert == AlertDescription::CLOSE_NOTIFY {
                    return;
                }
                let reason = format!("alert {alert} sent to {peer}");
                self.panels_of(peer, |p| p.fail(reason.clone()));
                self.notice(now, Level::Error, reason);
            }
            NetEvent::Text { peer, line } => {
                self.received.0 += 1;
                self.received.1 += line.len() as u64 + 1;
                self.log.push(Entry::new(now.unix, Author::Peer(peer.to_string()), line));
            }
            NetEvent::Revealed { peer, revealed } => {
                // The engine reveals only when asked; the app shows only then too.
                if self.secrets_shown {
                    self.panels_of(peer, |p| p.schedule.reveal(revealed.clone()));
                }
            }
            NetEvent::StatusPage { peer } => {
                self.notice(now, Level::Info, format!("{peer} fetched the room's status page over HTTP"));
            }
            NetEvent::Held { .. } => {
                self.held = true;
                self.state = "paused".into();
                self.notice(now, Level::Info, "the next flight is ready and held: Space sends it".into());
            }
            NetEvent::Closed { peer, by } => {
                // A room's member: its leaving says it, once (see `chat`).
                let member = self
                    .conns
                    .iter()
                    .find(|c| c.peer == peer)
                    .and_then(|c| c.label.strip_suffix(" \u{2713}"))
                    .map(str::to_owned);
                if let (true, Closer::Peer, Some(name)) = (self.server, by, member) {
                    if self.shown_presence.as_ref() != Some(&(name.clone(), false)) {
                        self.closed_by_peer.push(name);
                    }
                    self.conn_gone(peer);
                    return;
                }
                let text = match by {
                    Closer::Peer => format!("{peer} left (close_notify)"),
                    Closer::Us => format!("closed the connection to {peer} (close_notify)"),
                };
                self.notice(now, Level::Info, text);
                if self.panel.peer == Some(peer) && !self.server {
                    self.state = "closed".into();
                }
                self.conn_gone(peer);
            }
            NetEvent::Failed { peer, during_handshake, error } => {
                let reason = chat::printable(&error.to_string()).into_owned();
                if self.panel.peer == Some(peer) && !self.server {
                    self.state = "failed".into();
                }
                self.panels_of(peer, |p| p.fail(reason.clone()));
                self.conn_gone(peer);
                let when = if during_handshake { "handshake with" } else { "connection to" };
                self.notice(now, Level::Error, format!("{when} {peer} failed: {reason}"));
            }
            NetEvent::AcceptFailed { error } => {
                self.notice(now, Level::Error, format!("accepting a connection failed: {error}"));
            }
            NetEvent::Chat { event, .. } => self.chat(event, now),
            NetEvent::RoomNote { note } => {
                let note = chat::printable(&note).into_owned();
                if !self.repeats_presence(&note) {
                    self.notice(now, Level::Info, note);
                }
            }
            NetEvent::CaptureStopped { note } => self.notice(now, Level::Error, note),
            NetEvent::Refused { refusal, .. } => self.notice(now, Level::Error, refusal.to_string()),
            NetEvent::Lab(report) => self.lab(&report, now),
            NetEvent::Reconnecting { attempt, delay, .. } => {
                // The next handshake gets a panel of its own, and the
                // room's rejoin (its roster, its history) is folded.
                self.panel.peer = None;
                self.lab_rejoining = true;
                self.state =
                    format!("reconnecting: attempt {attempt}, next in {:.0} s", delay.as_secs_f64().ceil());
                for line in report::connection_lines(&event) {
                    self.notice(now, Level::Error, line);
                }
            }
            NetEvent::Back { .. } => {
                self.state = "back".into();
                for line in report::connection_lines(&event) {
                    self.notice(now, Level::Success, line);
                }
            }
        }
    }

    /// Whether a room's note repeats the join or leave just shown from the
    /// room's presence event (the relay says both: the note for logs).
    fn repeats_presence(&mut self, note: &str) -> bool {
        let Some((name, joined)) = &self.shown_presence else { return false };
        let repeats = if *joined {
            note.starts_with(&format!("{name} joined ("))
        } else {
            note == format!("{name} left") || note.starts_with(&format!("{name} left: "))
        };
        if repeats {
            self.shown_presence = None;
        }
        repeats
    }

    /// What the tamper lab did, and what caught it.
    fn lab(&mut self, report: &crate::teach::lab::Report, now: Now) {
        use crate::teach::lab::Report;
        let level = match report {
            Report::Ended { .. } | Report::Marked { .. } if report.caught() => Level::Success,
            Report::Ended { .. } | Report::Marked { .. } => Level::Error,
            _ => Level::Info,
        };
        if let Report::Ended { case, .. } = report {
            self.panel.fail(format!("tamper {case}: see the chat pane"));
            self.state = "tampered".into();
            self.lab_verdict = report.summary().map(|s| (level, format!("[lab] {}", chat::printable(&s))));
        }
        if let Report::Reconnecting = report {
            // The next handshake gets a panel of its own.
            self.panel.peer = None;
            self.state = "reconnecting".into();
            self.lab_rejoining = true;
        }
        for line in report.lines() {
            self.notice(now, level, format!("[lab] {}", chat::printable(&line)));
        }
    }

    /// A room's connection takes note of its handshake step.
    fn conn_step(&mut self, peer: SocketAddr, step: &HandshakeStep, now: Now) {
        if !self.conns.iter().any(|c| c.peer == peer) {
            if step.number > 1 {
                return;
            }
            if self.conns.len() >= MAX_CONNS
                && let Some(oldest) = self.conns.iter().position(|c| Some(c.peer) != self.pinned)
            {
                self.conns.remove(oldest);
            }
            self.conns.push(Conn { peer, label: "handshaking".into(), open: true, panel: Panel::default() });
        }
        if let Some(c) = self.conns.iter_mut().find(|c| c.peer == peer)
            && c.panel.follows(peer, step)
        {
            c.panel.step(step.clone(), now.instant);
        }
    }

    /// A room's connection is over: it leaves the list, unless the panel
    /// follows it (then it stays, to be read, until another is picked).
    fn conn_gone(&mut self, peer: SocketAddr) {
        if self.pinned == Some(peer) {
            if let Some(c) = self.conns.iter_mut().find(|c| c.peer == peer) {
                c.open = false;
            }
        } else {
            self.conns.retain(|c| c.peer != peer);
        }
        self.conn_row = self.conn_row.min(self.conns.len());
    }

    /// Keys on a room's member list: Up/Down pick a connection, Enter
    /// makes the panel follow it (row 0: the newest handshake).
    fn conns_key(&mut self, key: KeyEvent) -> Update {
        match key.code {
            KeyCode::Up => self.conn_row = self.conn_row.saturating_sub(1),
            KeyCode::Down => self.conn_row = (self.conn_row + 1).min(self.conns.len()),
            KeyCode::Enter | KeyCode::Char(' ') => {
                self.pinned = self.conn_row.checked_sub(1).and_then(|i| self.conns.get(i)).map(|c| c.peer);
                // Connections that ended while followed go now.
                let pinned = self.pinned;
                self.conns.retain(|c| c.open || Some(c.peer) == pinned);
                self.conn_row = self.conn_row.min(self.conns.len());
                self.side = Side::Handshake;
            }
            KeyCode::Esc => {
                self.side = Side::Handshake;
                self.focus = Focus::Input;
            }
            _ => return Update::NONE,
        }
        Update::REDRAW
    }

    /// The rest of an escape sequence that a slow link split after its Esc:
    /// the terminal's parser gave Esc, and now gives `[` (or `O`), digits
    /// and a final letter as if typed. They are taken here as the key they
    /// spell (an arrow, Home, End) or dropped; never typed into the input.
    fn escape_tail(&mut self, key: KeyEvent, now: Now) -> Option<Update> {
        let (at, started) = self.esc_tail.take()?;
        let plain = key.modifiers.difference(KeyModifiers::SHIFT).is_empty();
        let KeyCode::Char(c) = key.code else { return None };
        if !plain || now.instant.saturating_duration_since(at) > ESC_TAIL {
            return None;
        }
        if !started {
            if c == '[' || c == 'O' {
                self.esc_tail = Some((now.instant, true));
                return Some(Update::NONE);
            }
            return None;
        }
        if c.is_ascii_digit() || c == ';' {
            self.esc_tail = Some((now.instant, true));
            return Some(Update::NONE);
        }
        let code = match c {
            'A' => KeyCode::Up,
            'B' => KeyCode::Down,
            'C' => KeyCode::Right,
            'D' => KeyCode::Left,
            'H' => KeyCode::Home,
            'F' => KeyCode::End,
            // Any other final byte ends a sequence we do not act on.
            '@'..='~' => return Some(Update::NONE),
            _ => return None,
        };
        Some(self.key(KeyEvent::new(code, KeyModifiers::NONE), now))
    }

    fn key(&mut self, key: KeyEvent, now: Now) -> Update {
        if let Some(update) = self.escape_tail(key, now) {
            return update;
        }
        if key.code == KeyCode::Esc {
            self.esc_tail = Some((now.instant, false));
        }
        if key.code == KeyCode::Tab && self.focus == Focus::Input {
            match self.complete_name() {
                Completion::Done => return Update::REDRAW,
                Completion::NoMatch(word) => {
                    // Said, rather than the focus moving away unexplained.
                    let word = crate::present::escape::printable(&word).into_owned();
                    let text = format!(
                        "Tab: no member's name starts with {word:?} (/who lists them; Tab after a space moves the focus)"
                    );
                    self.notice(now, Level::Info, text);
                    return Update::REDRAW;
                }
                Completion::NoWord => {}
            }
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        match key.code {
            KeyCode::Char('c') if ctrl => return self.quit(),
            KeyCode::Char('l' | 'L') if alt => return Update::act(Action::Bare),
            KeyCode::Char(' ') if self.held => {
                self.held = false;
                let done = matches!(self.panel.outcome, Outcome::Done(_));
                self.state = if done { "connected" } else { "handshaking" }.into();
                return Update::act(Action::Release);
            }
            KeyCode::F(2) => {
                self.panel_choice = Some(!self.panel_visible(self.size.0));
                if !self.panel_visible(self.size.0) {
                    self.focus = Focus::Input;
                }
                return Update::REDRAW;
            }
            KeyCode::F(3) => return self.show_side(Side::Members),
            KeyCode::F(4) => return self.show_side(Side::Schedule),
            KeyCode::F(5) => return self.show_side(Side::Groups),
            KeyCode::Tab | KeyCode::BackTab => {
                let visible = self.panel_visible(self.size.0);
                // Messages are picked in the chat pane, beside the panel.
                let beside = self.panel_place(self.size.0, self.size.1) == Place::Beside;
                let messages = self.last_signed(self.log.entries().len()).is_some();
                self.focus = match self.focus {
                    Focus::Input if visible => Focus::Panel,
                    Focus::Input | Focus::Panel if messages && beside => Focus::Messages,
                    _ => Focus::Input,
                };
                if self.focus == Focus::Messages {
                    self.picked = self.last_signed(self.log.entries().len());
                }
                return Update::REDRAW;
            }
            KeyCode::PageUp if self.focus == Focus::Input || !self.panel_scrolls() => {
                return Update::redraw_if(self.log.scroll_by(self.page()));
            }
            KeyCode::PageDown if self.focus == Focus::Input || !self.panel_scrolls() => {
                return Update::redraw_if(self.log.scroll_by(-self.page()));
            }
            _ => {}
        }
        match self.focus {
            Focus::Panel if self.server && self.side == Side::Members => self.conns_key(key),
            Focus::Panel if self.side == Side::Schedule => self.schedule_key(key),
            Focus::Panel if self.side == Side::Groups => self.groups_key(key),
            Focus::Panel => self.panel_key(key),
            Focus::Input => self.input_key(key, now),
            Focus::Messages => self.messages_key(key),
        }
    }

    /// F3 and F4: `side` in the panel, shown if it was hidden; again, the
    /// handshake (and the chat, where the panel had taken its place).
    fn show_side(&mut self, side: Side) -> Update {
        let (width, height) = self.size;
        if self.side == side && self.panel_visible(width) {
            self.side = Side::Handshake;
            if self.panel_place(width, height) == Place::Instead {
                self.panel_choice = None;
                self.focus = Focus::Input;
            }
        } else {
            self.side = side;
            if !self.panel_visible(width) {
                self.panel_choice = Some(true);
            }
        }
        Update::REDRAW
    }

    /// Keys while a message is picked in the chat pane.
    fn messages_key(&mut self, key: KeyEvent) -> Update {
        let Some(at) = self.picked else {
            self.focus = Focus::Input;
            return Update::REDRAW;
        };
        match key.code {
            KeyCode::Up => {
                if let Some(before) = self.last_signed(at) {
                    self.picked = Some(before);
                }
            }
            KeyCode::Down => {
                if let Some(after) = self.next_signed(at) {
                    self.picked = Some(after);
                }
            }
            KeyCode::Enter | KeyCode::Char(' ') => {
                let signed = self.log.entries().get(at).and_then(|e| e.signed.clone());
                self.side = match (signed, &self.side) {
                    (Some(m), Side::Message(open)) if Arc::ptr_eq(&m, open) => Side::Handshake,
                    (Some(m), _) => Side::Message(m),
                    (None, _) => return Update::NONE,
                };
                // Show the panel even where it is hidden for want of room.
                self.panel_choice = Some(true);
            }
            KeyCode::Esc => {
                if matches!(self.side, Side::Message(_)) {
                    self.side = Side::Handshake;
                } else {
                    self.focus = Focus::Input;
                }
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.focus = Focus::Input;
                self.input.insert(c.encode_utf8(&mut [0; 4]));
            }
            _ => return Update::NONE,
        }
        Update::REDRAW
    }

    /// The last signed message before log index `before`.
    fn last_signed(&self, before: usize) -> Option<usize> {
        let entries = self.log.entries();
        (0..before.min(entries.len())).rev().find(|&i| entries.get(i).is_some_and(|e| e.signed.is_some()))
    }

    /// The first signed message after log index `after`.
    fn next_signed(&self, after: usize) -> Option<usize> {
        let entries = self.log.entries();
        (after + 1..entries.len()).find(|&i| entries.get(i).is_some_and(|e| e.signed.is_some()))
    }

    /// Tab on a partly typed name at the end of the line: completes it to
    /// the one member name it starts (the first, in order, if several do).
    fn complete_name(&mut self) -> Completion {
        let text = self.input.text();
        if self.input.cursor() != text.len() {
            return Completion::NoWord;
        }
        let start = text.rfind(' ').map_or(0, |i| i + 1);
        let word = &text[start..];
        if word.is_empty() {
            return Completion::NoWord;
        }
        let lower = word.to_lowercase();
        let mut names: Vec<&str> = self
            .members
            .iter()
            .map(|m| m.name.as_str())
            .filter(|n| n.to_lowercase().starts_with(&lower) && n.len() > word.len())
            .collect();
        names.sort_unstable();
        let Some(name) = names.first() else { return Completion::NoMatch(word.to_owned()) };
        // At the start of a line a name is an address: "alice: ".
        let completed = if start == 0 { format!("{name}: ") } else { format!("{name} ") };
        let mut line = text[..start].to_owned();
        line.push_str(&completed);
        self.input.set(line);
        Completion::Done
    }

    fn page(&self) -> isize {
        isize::try_from(self.size.1.saturating_sub(4) / 2).unwrap_or(1).max(1)
    }

    /// Whether PgUp/PgDn scroll the panel rather than the chat: in an
    /// expanded step, and in the key schedule view when it has the focus.
    fn panel_scrolls(&self) -> bool {
        self.panel().expanded
            || (self.focus == Focus::Panel && matches!(self.side, Side::Schedule | Side::Groups))
    }

    /// Keys in the key schedule view: scrolling, Esc back to the input.
    fn schedule_key(&mut self, key: KeyEvent) -> Update {
        let p = self.panel_mut();
        let old = p.schedule_scroll;
        match key.code {
            KeyCode::Up => p.schedule_scroll = old.saturating_sub(1),
            KeyCode::Down => p.schedule_scroll = old.saturating_add(1),
            KeyCode::PageUp => p.schedule_scroll = old.saturating_sub(8),
            KeyCode::PageDown => p.schedule_scroll = old.saturating_add(8),
            KeyCode::Home => p.schedule_scroll = 0,
            KeyCode::Esc => {
                self.focus = Focus::Input;
                return Update::REDRAW;
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.focus = Focus::Input;
                self.input.insert(c.encode_utf8(&mut [0; 4]));
                return Update::REDRAW;
            }
            _ => return Update::NONE,
        }
        Update::redraw_if(old != self.panel().schedule_scroll)
    }

    fn panel_key(&mut self, key: KeyEvent) -> Update {
        let p = self.panel_mut();
        let changed = match key.code {
            KeyCode::Up => p.select(-1),
            KeyCode::Down => p.select(1),
            KeyCode::Home => p.select(isize::MIN / 2),
            KeyCode::End => p.select(isize::MAX / 2),
            KeyCode::Enter | KeyCode::Char(' ') if !p.steps.is_empty() => {
                p.expanded = !p.expanded;
                p.detail_scroll = 0;
                true
            }
            KeyCode::PageDown => {
                p.detail_scroll = p.detail_scroll.saturating_add(8);
                true
            }
            KeyCode::PageUp => {
                p.detail_scroll = p.detail_scroll.saturating_sub(8);
                true
            }
            KeyCode::Esc => {
                if p.expanded {
                    p.expanded = false;
                } else {
                    self.focus = Focus::Input;
                }
                true
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                // Typing goes to the input line, wherever the focus was.
                self.focus = Focus::Input;
                self.input.insert(c.encode_utf8(&mut [0; 4]));
                true
            }
            _ => false,
        };
        Update::redraw_if(changed)
    }

    fn input_key(&mut self, key: KeyEvent, now: Now) -> Update {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let i = &mut self.input;
        match key.code {
            KeyCode::Enter => return self.submit(now),
            KeyCode::Char('w') if ctrl => i.delete_word(),
            KeyCode::Char('u') if ctrl => i.set(String::new()),
            KeyCode::Char('a') if ctrl => i.cursor = 0,
            KeyCode::Char('e') if ctrl => i.cursor = i.text.len(),
            KeyCode::Char(_) if ctrl => return Update::NONE,
            KeyCode::Char(c) => i.insert(c.encode_utf8(&mut [0; 4])),
            KeyCode::Backspace => i.backspace(),
            KeyCode::Delete => i.delete(),
            KeyCode::Left => i.cursor = i.prev_boundary(),
            KeyCode::Right => i.cursor = i.next_boundary(),
            KeyCode::Home => i.cursor = 0,
            KeyCode::End => {
                // End of the line, and back to live in the pane.
                i.cursor = i.text.len();
                self.log.scroll_by(isize::MIN / 2);
            }
            KeyCode::Up => return Update::redraw_if(i.history_back()),
            KeyCode::Down => return Update::redraw_if(i.history_forward()),
            KeyCode::Esc => {
                self.log.scroll_by(isize::MIN / 2);
                // A panel in the chat's place gives it back.
                if self.panel_place(self.size.0, self.size.1) == Place::Instead {
                    self.panel_choice = None;
                }
            }
            _ => return Update::NONE,
        }
        Update::REDRAW
    }

    fn quit(&mut self) -> Update {
        self.quitting = true;
        self.state = "closing".into();
        Update::act(Action::Quit)
    }

    fn submit(&mut self, now: Now) -> Update {
        let line = self.input.take();
        match Command::parse(&line) {
            Command::Empty => Update::NONE,
            Command::Quit => self.quit(),
            Command::Help => {
                for text in HELP {
                    self.notice(now, Level::Info, (*text).to_owned());
                }
                self.notice(now, Level::Info, self.clock.describe());
                Update::REDRAW
            }
            Command::Rekey => {
                self.notice(now, Level::Info, "asking for a key update…".into());
                Update::act(Action::Rekey)
            }
            Command::Who => Update::act(Action::Who),
            Command::Clear => {
                self.log = ChatLog::default();
                self.picked = None;
                if self.focus == Focus::Messages {
                    self.focus = Focus::Input;
                }
                Update::REDRAW
            }
            Command::Nick => {
                let known = self.me.as_ref().map(|me| format!("; here you are {me}")).unwrap_or_default();
                self.notice(now, Level::Info, format!("{NICK_HELP}{known}"));
                Update::REDRAW
            }
            Command::TamperHelp => {
                for text in crate::teach::lab::usage() {
                    self.notice(now, Level::Info, text);
                }
                Update::REDRAW
            }
            Command::Tamper(_) if self.server => {
                let text =
                    "/tamper is for clients: run it in tlschat demo or tlschat connect --lab".to_owned();
                self.notice(now, Level::Error, text);
                Update::REDRAW
            }
            Command::Tamper(case) => Update::act(Action::Tamper(case)),
            Command::Ignore(name) => Update::act(Action::Ask(Intent::Ignore { name })),
            Command::Verify(name) => Update::act(Action::Ask(Intent::Verify { name })),
            Command::Remove { .. } | Command::Invite { .. } if !self.server => {
                let text = "/kick, /ban and /invite are the host's: run them in tlschat listen".to_owned();
                self.notice(now, Level::Error, text);
                Update::REDRAW
            }
            Command::Remove { name, ban } => Update::act(Action::Ask(Intent::Remove { name, ban })),
            Command::Invite { name, fingerprint } => {
                Update::act(Action::Ask(Intent::Invite { name, fingerprint }))
            }
            Command::Say { kind, text, to } => self.say(now, kind, text, to),
            Command::Wrong(why) => {
                self.notice(now, Level::Error, why);
                Update::REDRAW
            }
        }
    }

    /// Shows our own line (sent, not yet delivered) and asks for it to be said.
    fn say(&mut self, now: Now, kind: Kind, text: String, to: Option<String>) -> Update {
        self.say_lines(now, kind, &[text], to)
    }

    /// Shows our `lines` and asks for each to be said, in order. A line
    /// longer than a message may be ([`chat::MAX_TEXT`] bytes) is cut into
    /// several, at a space near the end where there is one.
    fn say_lines(&mut self, now: Now, kind: Kind, lines: &[String], to: Option<String>) -> Update {
        self.log.scroll_by(isize::MIN / 2);
        let mut said = Vec::new();
        for piece in lines.iter().flat_map(|line| pieces(line, chat::MAX_TEXT)) {
            self.sent.0 += 1;
            self.sent.1 += piece.len() as u64 + 1;
            let mut entry =
                Entry::new(now.unix, Author::Me(Delivery::Pending), shown_as(piece, to.as_deref()));
            entry.tags.action = kind == Kind::Action;
            entry.tags.private = to.is_some();
            self.log.push(entry);
            said.push(Said { kind, text: piece.to_owned(), to: to.clone() });
        }
        match said.len() {
            0 => Update::NONE,
            1 => {
                let Said { kind, text, to } = said.remove(0);
                Update::act(Action::Say { kind, text, to })
            }
            _ => Update::act(Action::SayAll(said)),
        }
    }

    /// A bracketed paste. One line goes into the input line, to be edited
    /// and sent with Enter. Several are sent at once, one message per line
    /// in order, empty lines skipped, as irssi does: the text typed before
    /// the paste joins its first line; after `/me ` each line is an action
    /// and after `/msg NAME ` each goes to NAME. Pasted lines are text:
    /// a pasted `/quit` is said, not run.
    fn paste(&mut self, text: &str, now: Now) -> Update {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        let mut lines: Vec<String> = text
            .split('\n')
            .map(|line| {
                line.chars().map(|c| if c == '\t' { ' ' } else { c }).filter(|c| !c.is_control()).collect()
            })
            .collect();
        // A paste that ends with a newline does not end with an empty line.
        if lines.len() > 1 && lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        self.focus = Focus::Input;
        if lines.len() <= 1 {
            self.input.insert(lines.first().map_or("", String::as_str));
            return Update::REDRAW;
        }
        let typed = self.input.text().to_owned();
        let (kind, to, before) = if let Some(rest) = typed.strip_prefix("/me ") {
            (Kind::Action, None, rest.trim_start())
        } else if let Some((name, rest)) =
            typed.strip_prefix("/msg ").and_then(|r| r.trim_start().split_once(' '))
        {
            (Kind::Private, Some(name.to_owned()), rest.trim_start())
        } else if typed.starts_with('/') && !typed.starts_with("//") {
            let why = "a paste of several lines goes after text, /me or /msg NAME: not sent".to_owned();
            self.notice(now, Level::Error, why);
            return Update::REDRAW;
        } else {
            (Kind::Text, None, typed.as_str())
        };
        if let Some(first) = lines.first_mut() {
            first.insert_str(0, before);
        }
        lines.retain(|line| !line.trim().is_empty());
        self.input.set(String::new());
        self.say_lines(now, kind, &lines, to)
    }

    /// What the room reports.
    fn chat(&mut self, event: ChatEvent, now: Now) {
        self.group_steps_of(&event, now);
        match &event {
            // A reconnect (the lab's) replays what is already on screen:
            // one line says so, and the scrollback keeps what came after.
            ChatEvent::Message(m) if m.history && m.room_seq != 0 && m.room_seq <= self.room_seen => {
                if !self.history_folded {
                    self.history_folded = true;
                    self.notice(
                        now,
                        Level::Info,
                        "the room's history is already shown above: not repeated".into(),
                    );
                }
                return;
            }
            // One of ours whose acknowledgement the ended connection never
            // brought (the lab's replay): on screen already, now delivered.
            ChatEvent::Message(m)
                if m.history
                    && m.kind == Kind::Text
                    && self.me.as_deref() == Some(m.from.as_str())
                    && self.log.mark_in_history(&chat::printable(&m.text)) =>
            {
                self.room_seen = self.room_seen.max(m.room_seq);
                return;
            }
            ChatEvent::Message(m) => self.room_seen = self.room_seen.max(m.room_seq),
            ChatEvent::Delivered { room_seq, .. } => self.room_seen = self.room_seen.max(*room_seq),
            ChatEvent::Welcome { .. } => self.history_folded = false,
            // The room's list closes the lab's rejoining: the same members
            // are not listed again, and the case's outcome is said again.
            ChatEvent::Roster { members, .. } if self.lab_rejoining => {
                self.lab_rejoining = false;
                let seated = |ms: &[chat::MemberInfo]| {
                    let mut v: Vec<_> = ms.iter().map(|m| (m.name.clone(), m.key)).collect();
                    v.sort();
                    v
                };
                let same = seated(members) == seated(&self.members);
                if let Some((level, verdict)) = self.lab_verdict.take() {
                    if same {
                        self.notice(now, Level::Info, "the room's members are as before".into());
                    }
                    self.notice(now, level, verdict);
                }
                if same {
                    if let ChatEvent::Roster { members, .. } = event {
                        self.members = members;
                    }
                    return;
                }
            }
            _ => {}
        }
        let level = match &event {
            ChatEvent::Welcome { .. } => Level::Success,
            ChatEvent::Presence { .. } | ChatEvent::Roster { .. } | ChatEvent::E2eWaiting { .. } => {
                Level::Info
            }
            ChatEvent::E2eReady { .. } => Level::Success,
            _ => Level::Error,
        };
        let mut texts = report::notices(&event);
        if self.me.is_some() {
            // Said once, on the first welcome: not again on a reconnect.
            texts.retain(|t| t != report::RELAY_READS);
        }
        if let ChatEvent::Presence { joined, member, reason } = &event {
            let name = chat::printable(&member.name).into_owned();
            // A member whose connection closed with close_notify just now:
            // one line says both.
            if let Some(at) = self.closed_by_peer.iter().position(|n| *n == name)
                && !joined
                && reason.is_empty()
            {
                self.closed_by_peer.remove(at);
                if let Some(text) = texts.first_mut() {
                    text.push_str(" (close_notify)");
                }
            }
            self.shown_presence = Some((name, *joined));
        }
        for text in texts {
            self.notice(now, level, text);
        }
        match event {
            ChatEvent::Welcome { name, e2e, .. } => {
                self.me = Some(name);
                self.e2e_room = e2e;
            }
            ChatEvent::E2eWaiting { to, text, .. } => {
                self.log.mark_sent(&shown_as(&text, Some(&to)), Delivery::Waiting, false);
            }
            ChatEvent::Sent { seq, kind, acked, to, text, e2e } => {
                let delivery = if acked {
                    Delivery::Sent { seq, private: kind == Kind::Private }
                } else {
                    Delivery::Unacknowledged
                };
                self.log.mark_sent(&shown_as(&text, to.as_deref()), delivery, e2e);
            }
            ChatEvent::Refused { code, text } => self.refused(code, &text),
            ChatEvent::Delivered { seq, private, .. } => {
                self.log.mark_mine(|d| *d == Delivery::Sent { seq, private }, Delivery::Delivered, false);
            }
            ChatEvent::Message(m) => self.message(*m, now),
            ChatEvent::Guest { history, name, text, .. } => {
                self.received.0 += 1;
                self.received.1 += text.len() as u64;
                let author =
                    Author::Member { name: chat::printable(&name).into_owned(), mark: Mark::Unverified };
                let mut entry = Entry::new(now.unix, author, chat::printable(&text).into_owned());
                entry.tags.history = history;
                self.push_mentioning(entry);
            }
            ChatEvent::Presence { joined, member, .. } => {
                self.members.retain(|m| m.name != member.name || m.key != member.key);
                if joined {
                    self.members.push(member);
                }
            }
            ChatEvent::Roster { members, .. } => self.members = members,
            _ => {}
        }
    }

    /// A refusal that answers one of our lines marks it "not sent". The
    /// connection refuses a line it cannot sign (too long, a `/msg` to an
    /// unknown name) as it takes it: that answers the oldest pending line.
    /// The relay refuses a line it received (too fast, altered): that
    /// answers the oldest line sent and not yet acknowledged, since the
    /// relay answers each line, in order. The connection's refusals are
    /// all `BadMessage`, as is the relay's refusal of an altered line:
    /// only the relay's says "not sent: the relay …". Other refusals
    /// (`/who` on a plain server, a failed `/verify`) do not say "not sent".
    fn refused(&mut self, code: chat::RefusalCode, text: &str) {
        use chat::RefusalCode as Code;
        let sent = |d: &Delivery| matches!(d, Delivery::Sent { .. });
        let pending = |d: &Delivery| *d == Delivery::Pending;
        let waiting = |d: &Delivery| *d == Delivery::Waiting;
        let _ = match code {
            Code::TooLong | Code::RateLimited | Code::NoSuchMember => {
                self.log.mark_mine(sent, Delivery::Refused, true)
            }
            Code::BadMessage if text.starts_with("not sent: no end-to-end group") => {
                self.log.mark_mine(waiting, Delivery::Refused, true)
            }
            Code::BadMessage if text.starts_with("not sent: the relay ") => {
                self.log.mark_mine(sent, Delivery::Refused, true)
            }
            Code::BadMessage if text.starts_with("not sent:") => {
                self.log.mark_mine(pending, Delivery::Refused, true)
            }
            _ => false,
        };
    }

    /// A signed message, with what the checks found (the notices about it
    /// are already in the log).
    fn message(&mut self, m: chat::Received, now: Now) {
        let mark = match (m.verdict(), &m.author) {
            (Verdict::Verified, chat::AuthorCheck::FirstSeen) => Mark::FirstSeen,
            (Verdict::Verified, chat::AuthorCheck::Verified) => Mark::Checked,
            (Verdict::Verified, _) => Mark::Verified,
            (Verdict::Stale, _) => Mark::Stale,
            (Verdict::KeyChanged, _) => Mark::KeyChanged,
            (Verdict::Invalid, _) => Mark::Invalid,
        };
        let text = chat::printable(&m.text);
        let text = match report::warning(m.sig) {
            Some(why) => format!("{text}  [{why}]"),
            None => text.into_owned(),
        };
        self.received.0 += 1;
        self.received.1 += m.text.len() as u64;
        let name = chat::printable(&m.from).into_owned();
        // Our own line, replayed as history: ours, as it was live (the
        // member knows our name and key without a contact).
        let ours = m.sig == chat::SigCheck::Valid
            && m.author == chat::AuthorCheck::Known
            && self.me.as_deref() == Some(m.from.as_str());
        // History shows when the line was written (its author's signed
        // time), not when it was replayed.
        let at = if m.history { m.time_ms / 1000 } else { now.unix };
        let author = if ours { Author::Me(Delivery::Delivered) } else { Author::Member { name, mark } };
        let mut entry = Entry::new(at, author, text);
        if !m.history && (m.time_ms / 1000).abs_diff(now.unix) > 60 {
            entry.signed_at = Some(m.time_ms / 1000);
        }
        entry.tags = Tags {
            history: m.history,
            private: m.private,
            action: m.kind == Kind::Action,
            mention: false,
            e2e: m.e2e,
        };
        // The text is kept once, as shown; the signed bytes hold it as written.
        let m = chat::Received { text: String::new(), ..m };
        entry.signed = Some(Arc::new(m));
        if ours {
            self.log.push(entry);
        } else {
            self.push_mentioning(entry);
        }
    }

    /// Adds a peer's entry; one that mentions our name is highlighted and
    /// rings the bell (not for history).
    fn push_mentioning(&mut self, mut entry: Entry) {
        let history = entry.tags.history;
        if let Some(me) = &self.me {
            let mentioned = entry
                .text
                .to_lowercase()
                .split(|c: char| !(c.is_alphanumeric() || "._-".contains(c)))
                .any(|w| w == me.to_lowercase());
            entry.tags.mention = mentioned;
            self.ring |= mentioned && !history && self.bell;
        }
        self.log.push(entry);
    }
}

/// What `/msg` without a name and text says.
const MSG_USAGE: &str = "/msg NAME TEXT: a private message to one member, end to end (/who lists them)";

/// What `/nick` says: there is no nick to change in a room.
pub(crate) const NICK_HELP: &str = "/nick: a room binds your name to your key, so it is not changed per room: \
     /quit, run `tlschat id --name NEW`, and connect again (a room that bound your old name keeps it for your key)";

/// How one of our lines shows in the log: a private one with its recipient.
fn shown_as(text: &str, to: Option<&str>) -> String {
    match to {
        Some(to) => format!("\u{2192} {to}: {text}"),
        None => text.to_owned(),
    }
}

/// A line the user typed, understood: the same in the TUI and on a
/// headless stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// Nothing but spaces.
    Empty,
    /// `/quit` (or irssi's `/exit`). A bare `exit` is a message like any
    /// other: it is said, not obeyed.
    Quit,
    /// `/help`.
    Help,
    /// `/rekey`.
    Rekey,
    /// `/who`, or `/names` as irssi and weechat call it.
    Who,
    /// `/clear`: empties the scrollback on this screen.
    Clear,
    /// `/nick`, with or without a name: names are bound to the key, so it
    /// explains how to choose one ([`NICK_HELP`]).
    Nick,
    /// `/tamper` alone: what each case does.
    TamperHelp,
    /// `/tamper CASE`.
    Tamper(crate::teach::lab::Case),
    /// A line of chat, `/me ACTION` or `/msg NAME TEXT`. `//text` says `/text`.
    Say {
        /// What kind.
        kind: Kind,
        /// The text.
        text: String,
        /// The recipient of a private message.
        to: Option<String>,
    },
    /// `/ignore NAME`: stop showing what NAME says, for this session.
    Ignore(String),
    /// `/verify NAME`: both safety numbers, and NAME marked verified.
    Verify(String),
    /// The host's `/kick NAME` and `/ban NAME`.
    Remove {
        /// Who.
        name: String,
        /// `/ban`: refuse the key from now on.
        ban: bool,
    },
    /// The host's `/invite NAME FINGERPRINT`.
    Invite {
        /// The name.
        name: String,
        /// The key.
        fingerprint: crate::tls::Fingerprint,
    },
    /// A command used wrongly, or unknown: why, in one line.
    Wrong(String),
}

impl Command {
    /// Reads a typed line.
    pub(crate) fn parse(line: &str) -> Self {
        let line = line.trim_end_matches(['\r', '\n']);
        let command = line.trim();
        let say = |kind, text: &str, to: Option<&str>| Self::Say {
            kind,
            text: text.to_owned(),
            to: to.map(str::to_owned),
        };
        match command {
            "" => Self::Empty,
            "/quit" | "/exit" => Self::Quit,
            "/help" => Self::Help,
            "/rekey" => Self::Rekey,
            "/who" | "/names" => Self::Who,
            "/clear" => Self::Clear,
            "/tamper" => Self::TamperHelp,
            "/msg" => Self::Wrong(MSG_USAGE.into()),
            "/me" => Self::Wrong("/me ACTION: says ACTION as an action (* you ACTION)".into()),
            _ if command == "/nick" || command.starts_with("/nick ") => Self::Nick,
            _ => {
                if let Some(case) = command.strip_prefix("/tamper ") {
                    return match crate::teach::lab::Case::parse(case) {
                        Some(case) => Self::Tamper(case),
                        None => Self::Wrong(format!(
                            "unknown tamper case {:?}: /tamper lists them",
                            crate::present::escape::printable(case.trim())
                        )),
                    };
                }
                let one_name = |rest: &str, usage: &str| match rest.split_whitespace().collect::<Vec<_>>()[..]
                {
                    [name] => Ok(name.to_owned()),
                    _ => Err(Self::Wrong(usage.to_owned())),
                };
                let word = command.split_whitespace().next().unwrap_or("");
                let rest = command[word.len()..].trim();
                match word {
                    "/ignore" => {
                        return one_name(rest, "/ignore NAME: stop showing what NAME says, for this session")
                            .map_or_else(|e| e, Self::Ignore);
                    }
                    "/verify" => {
                        return one_name(
                            rest,
                            "/verify NAME: show both safety numbers, and mark NAME verified",
                        )
                        .map_or_else(|e| e, Self::Verify);
                    }
                    "/kick" | "/ban" => {
                        let ban = word == "/ban";
                        let usage = if ban {
                            "/ban NAME: disconnect NAME and refuse its key from now on (host)"
                        } else {
                            "/kick NAME: disconnect NAME (host)"
                        };
                        return one_name(rest, usage).map_or_else(|e| e, |name| Self::Remove { name, ban });
                    }
                    "/invite" => {
                        let usage = "/invite NAME FINGERPRINT: bind NAME to that key, so a closed room admits it (host)";
                        return match rest.split_once(' ') {
                            Some((name, fp)) => match crate::tls::Fingerprint::parse(fp.trim()) {
                                Some(fingerprint) => Self::Invite { name: name.to_owned(), fingerprint },
                                None => Self::Wrong(usage.to_owned()),
                            },
                            None => Self::Wrong(usage.to_owned()),
                        };
                    }
                    _ => {}
                }
                if let Some(action) = command.strip_prefix("/me ") {
                    return say(Kind::Action, action.trim(), None);
                }
                if let Some(rest) = command.strip_prefix("/msg ") {
                    return match rest.trim().split_once(' ') {
                        Some((name, text)) if !text.trim().is_empty() => {
                            say(Kind::Private, text.trim(), Some(name))
                        }
                        _ => Self::Wrong(MSG_USAGE.into()),
                    };
                }
                if let Some(text) = line.strip_prefix('/') {
                    if text.starts_with('/') {
                        return say(Kind::Text, text, None);
                    }
                    return Self::Wrong(format!("unknown command {command}: /help lists them"));
                }
                say(Kind::Text, line, None)
            }
        }
    }
}

/// Whether colour is allowed: not when `NO_COLOR` is set to anything
/// non-empty (<https://no-color.org>).
pub(crate) fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed_entry(text_len: usize) -> Entry {
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
    fn the_scrollback_is_bounded_in_bytes_and_keeps_the_newest_signed_bytes() {
        let mut log = ChatLog::default();
        for _ in 0..4_000 {
            log.push(signed_entry(24_000));
        }
        assert!(log.bytes() <= MAX_LOG_BYTES, "{}", log.bytes());
        let kept = log.entries().iter().filter(|e| e.signed.is_some()).count();
        assert!(kept <= KEEP_SIGNED && kept > 0, "{kept}");
        // The newest keep theirs; what was let go is counted out.
        assert!(log.entries().back().is_some_and(|e| e.signed.is_some()));
        let counted: usize = log.entries().iter().map(Entry::cost).sum();
        assert_eq!(counted, log.bytes());
        // Small entries are bounded by count.
        let mut log = ChatLog::default();
        for _ in 0..MAX_LOG + 10 {
            log.push(Entry::new(0, Author::System(Level::Info), "hi".into()));
        }
        assert_eq!(log.entries().len(), MAX_LOG);
    }
}
