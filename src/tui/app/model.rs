//! The model's types: [`App`] and what it is made of besides the log,
//! the input line and the panels; the messages it takes ([`Msg`]) and
//! what an update answers ([`Update`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::KeyEvent;

use super::delay::StepDelay;
use super::dialog::FirstContact;
use super::groups::{GroupShown, GroupStep};
use super::input::{Input, Typist};
use super::log::{Author, ChatLog, Entry, Level};
use super::panel::Panel;
use crate::chat;
use crate::net::{Intent, NetEvent};

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
        Self { instant: Instant::now(), unix: crate::clock::unix_now() }
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
    pub(crate) offset: i32,
    pub(crate) zone: Zone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zone {
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
    /// is due (see [`App::next_delayed`]).
    Tick,
    /// We started talking to `peer` (a client's connect, or a server's listen).
    Started {
        /// Whom or where, as the user typed it.
        peer: String,
        /// What the status bar says meanwhile, e.g. "connecting" or "listening".
        state: String,
        /// Whether we host a room (many connections) rather than join one.
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
    /// A first-contact question from the trust gate: shown as a dialog
    /// that takes every key until it is answered (see `FirstContact`).
    Question(crate::store::pins::Question),
    /// The client's connection is over: `None` after a clean close, else why
    /// it failed (net's `connect` returns its error rather than sending it).
    Ended(Option<String>),
}

/// What [`App::update`] decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct Update {
    /// Whether anything visible changed.
    pub redraw: bool,
    /// What the network must do, in order: lines to say (the event loop
    /// paces them, see [`crate::tui::Pacer`]), requests, and
    /// [`Intent::Close`] to leave. The same intents a headless stdin's
    /// lines become (`Command::intent`).
    pub intents: Vec<Intent>,
    /// What the terminal or the step gate must do, besides the network.
    pub local: Option<Local>,
    /// Ring the terminal's bell: a line mentions us.
    pub bell: bool,
}

/// What a key asks of the event loop itself rather than of the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// Send the handshake flight held by `--step` (its step gate).
    Release,
    /// Show the scrollback bare (Alt-L, as weechat): off the alternate
    /// screen, one line per entry, wrapped by the terminal itself, so that
    /// a long line (the room's invite) is selected and copied whole.
    Bare,
}

impl Update {
    pub(crate) const NONE: Self = Self { redraw: false, intents: Vec::new(), local: None, bell: false };
    pub(crate) const REDRAW: Self = Self { redraw: true, intents: Vec::new(), local: None, bell: false };

    /// Redraw, and hand `intents` to the network.
    pub(crate) fn send(intents: Vec<Intent>) -> Self {
        Self { redraw: true, intents, local: None, bell: false }
    }

    /// Redraw, and ask `local` of the event loop.
    pub(crate) fn local(local: Local) -> Self {
        Self { redraw: true, intents: Vec::new(), local: Some(local), bell: false }
    }

    pub(crate) fn redraw_if(redraw: bool) -> Self {
        Self { redraw, ..Self::NONE }
    }
}

/// Whether the app joins a room or hosts one.
#[derive(Debug, Default)]
pub(crate) enum Mode {
    /// A client: one connection, whose handshake the panel shows.
    #[default]
    Client,
    /// A room's host: many connections, each with a handshake panel of
    /// its own, so that the panel can follow any member.
    Room {
        /// The room's own key, short, for the status bar.
        key: Option<String>,
        /// The room's connections, oldest first.
        conns: Vec<Conn>,
        /// The connection the panel follows, picked in the member list;
        /// `None` follows the newest handshake.
        pinned: Option<SocketAddr>,
        /// The row picked in the member list (0 follows the newest).
        row: usize,
    },
}

impl Mode {
    /// A room's mode, with its key if known.
    pub(crate) fn room(key: Option<String>) -> Self {
        Self::Room { key, conns: Vec::new(), pinned: None, row: 0 }
    }
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

/// The TUI's whole state. Only [`App::update`] changes it.
#[derive(Debug)]
pub struct App {
    pub(crate) log: ChatLog,
    pub(crate) input: Input,
    pub(crate) panel: Panel,
    pub(crate) focus: Focus,
    /// F2's choice; `None` follows the terminal's width.
    pub(crate) panel_choice: Option<bool>,
    pub(crate) size: (u16, u16),
    /// Animation frame, advanced by ticks only.
    pub(crate) frame: u64,
    pub(crate) color: bool,
    pub(crate) peer: String,
    pub(crate) state: String,
    pub(crate) quitting: bool,
    /// The first-contact dialog, while it waits for an answer.
    pub(crate) dialog: Option<FirstContact>,
    /// Client or room host, with what only a host has.
    pub(crate) mode: Mode,
    pub(crate) sent: (u64, u64),
    pub(crate) received: (u64, u64),
    /// `--step-delay`: the network's events held back to be shown slowly.
    pub(crate) step_delay: StepDelay,
    /// A handshake flight is held until Space (`--step`).
    pub(crate) held: bool,
    /// Our name in the room, once welcomed: lines that mention it are
    /// highlighted.
    pub(crate) me: Option<String>,
    /// The room is end to end (`listen --e2e`), as its Welcome said.
    pub(crate) e2e_room: bool,
    /// A mention arrived since the last update: ring the bell.
    pub(crate) ring: bool,
    /// Whether mentions ring the bell (`--no-bell` turns it off).
    pub(crate) bell: bool,
    /// The room's members, as the last join, leave and `/who` told.
    pub(crate) members: Vec<chat::MemberInfo>,
    /// What the side panel shows.
    pub(crate) side: Side,
    /// With [`Focus::Messages`]: the log index of the picked message.
    pub(crate) picked: Option<usize>,
    /// `--reveal`: the session's secret values are on screen.
    pub(crate) secrets_shown: bool,
    /// When Esc was pressed, and whether a `[` or `O` followed: the start
    /// of an escape sequence split by a slow link (see `escape_tail`).
    pub(crate) esc_tail: Option<(Instant, bool)>,
    /// How times are shown.
    pub(crate) clock: Clock,
    /// The join or leave last shown, by name: the room's note that repeats
    /// it is not shown again.
    pub(crate) shown_presence: Option<(String, bool)>,
    /// The highest place in the room's order shown so far (a message, or
    /// one of ours delivered): history replayed after a reconnect (the
    /// tamper lab's) is not shown twice.
    pub(crate) room_seen: u64,
    /// Whether this connection's history repeated lines already shown
    /// (said once, where the first was skipped).
    pub(crate) history_folded: bool,
    /// The last lab case's outcome in one line, said again once the room
    /// is joined anew after the lab's reconnect (so it stays in view), and
    /// whether that reconnect is under way (its room list, unchanged, is
    /// not listed again).
    pub(crate) lab_verdict: Option<(Level, String)>,
    pub(crate) lab_rejoining: bool,
    /// Members whose connection closed with close_notify, their leaving
    /// not yet shown.
    pub(crate) closed_by_peer: Vec<String>,
    /// The end-to-end groups' steps (F5).
    pub(crate) group_steps: std::collections::VecDeque<GroupStep>,
    /// The groups as last seen, the panel's last (F5).
    pub(crate) groups_shown: Vec<GroupShown>,
    /// Groups seen in this session, to number them.
    pub(crate) groups_numbered: usize,
    /// The group picked in the panel (Up/Down); `None` follows the newest.
    pub(crate) group_pick: Option<Vec<u8>>,
    /// How far the group panel is scrolled (PgUp/PgDn).
    pub(crate) group_scroll: u16,
}

/// One of a room's connections, for the member list and the panel.
#[derive(Debug)]
pub struct Conn {
    /// Its address.
    pub(crate) peer: SocketAddr,
    /// Who it is: `alice ✓`, or `guest` before or without a key.
    pub(crate) label: String,
    /// Whether it is still connected (one that ended stays while followed).
    pub(crate) open: bool,
    pub(crate) panel: Panel,
}

/// Connections a room's TUI keeps a panel for; beyond, the oldest goes.
pub(crate) const MAX_CONNS: usize = 256;

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
            mode: Mode::Client,
            dialog: None,
            sent: (0, 0),
            received: (0, 0),
            step_delay: StepDelay::default(),
            held: false,
            me: None,
            e2e_room: false,
            ring: false,
            bell: true,
            members: Vec::new(),
            side: Side::Handshake,
            picked: None,
            secrets_shown: false,
            esc_tail: None,
            clock: Clock::UTC,
            shown_presence: None,
            room_seen: 0,
            history_folded: false,
            lab_verdict: None,
            lab_rejoining: false,
            closed_by_peer: Vec::new(),
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

    /// The app with the panel's steps shown to one handshake message per
    /// `delay` (`--step-delay`).
    #[must_use]
    pub fn with_step_delay(mut self, delay: Duration) -> Self {
        self.step_delay.delay = delay;
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
        self.mode = Mode::room(Some(key));
        self
    }

    /// The room's own key, short (a room's host only).
    pub(crate) fn room_key(&self) -> Option<&str> {
        match &self.mode {
            Mode::Room { key, .. } => key.as_deref(),
            Mode::Client => None,
        }
    }

    /// Whether this is a tlschat room (we were welcomed, or we host it):
    /// its lines are signed, and the relay reads them.
    pub(crate) fn in_room(&self) -> bool {
        self.me.is_some() || self.room_key().is_some()
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

    /// The app with the terminal bell for mentions on or off.
    #[must_use]
    pub fn with_bell(mut self, bell: bool) -> Self {
        self.bell = bell;
        self
    }

    /// When a step held back by the step delay is due: the event loop sends
    /// [`Msg::Tick`] then. `None` when nothing waits.
    pub fn next_delayed(&self) -> Option<Instant> {
        self.step_delay.due()
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
        match &self.mode {
            Mode::Room { conns, pinned: Some(peer), .. } => {
                conns.iter().find(|c| c.peer == *peer).map_or(&self.panel, |c| &c.panel)
            }
            _ => &self.panel,
        }
    }

    pub(crate) fn panel_mut(&mut self) -> &mut Panel {
        match &mut self.mode {
            Mode::Room { conns, pinned: Some(peer), .. } => {
                match conns.iter_mut().find(|c| c.peer == *peer) {
                    Some(c) => &mut c.panel,
                    None => &mut self.panel,
                }
            }
            _ => &mut self.panel,
        }
    }

    /// Whether the first-contact dialog is open (the event loop takes the
    /// next question only once it is answered).
    pub fn asking(&self) -> bool {
        self.dialog.is_some()
    }

    /// Whether this app hosts a room.
    pub(crate) fn is_room(&self) -> bool {
        matches!(self.mode, Mode::Room { .. })
    }

    /// A room's connections (a host's only), oldest first.
    pub fn conns(&self) -> &[Conn] {
        match &self.mode {
            Mode::Room { conns, .. } => conns,
            Mode::Client => &[],
        }
    }

    /// The connection the panel follows, if one was picked (a host's only).
    pub fn pinned(&self) -> Option<SocketAddr> {
        match &self.mode {
            Mode::Room { pinned, .. } => *pinned,
            Mode::Client => None,
        }
    }

    /// Who types here, for what a command may ask ([`Command::intent`]).
    pub(crate) fn typist(&self) -> Typist {
        if self.is_room() { Typist::Host } else { Typist::Member }
    }

    /// Applies `f` to every panel that shows `peer`.
    pub(crate) fn panels_of(&mut self, peer: SocketAddr, f: impl Fn(&mut Panel)) {
        if self.panel.peer == Some(peer) {
            f(&mut self.panel);
        }
        if let Mode::Room { conns, .. } = &mut self.mode
            && let Some(c) = conns.iter_mut().find(|c| c.peer == peer)
        {
            f(&mut c.panel);
        }
    }

    /// Which part takes keys.
    pub fn focus(&self) -> Focus {
        self.focus
    }

    /// The connection state for the status bar.
    pub fn state(&self) -> &str {
        &self.state
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

    pub(crate) fn notice(&mut self, now: Now, level: Level, text: String) {
        self.log.push(Entry::new(now.unix, Author::System(level), text));
    }
}

/// Whether colour is allowed: not when `NO_COLOR` is set to anything
/// non-empty (<https://no-color.org>).
pub(crate) fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
