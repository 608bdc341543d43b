//! The room's side of the chat protocol: who is in, what each frame that
//! arrives means, and which frames go to whom. Sans-IO: the caller (one
//! task in [`crate::net`]) feeds it joins, frames, guests' lines and
//! leaves with the time, and carries out the [`Decision`]s it returns in
//! order. That one caller is what gives the room one total order.
//!
//! A message is encoded once: the same `Arc<[u8]>` goes to every member
//! who takes frames, and one plain line to every guest.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::e2e::{self, wire};
use super::frame::{
    Frame, MAX_KEY_PACKAGE, MAX_PUBLISHED, MAX_ROSTER, MAX_SEALED, MemberInfo, RefusalCode, Standing, flags,
};
use super::group::{self, Group};
use super::log::Log;
pub use super::log::{Past, Retention};
use super::message::{Kind, MAX_TEXT, MessageError, Signed, Verified};
use super::name::{self, NameError};
use super::printable;

/// A seat in the room, named by the caller.
pub type SeatId = u64;

/// The time, as the caller gives it to the room: the wall clock for what
/// is kept and shown (when a message was said, how long a member has been
/// idle), and a monotonic clock for the rate limits, which a wall clock
/// set back (or forward) must not stall (or open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Unix milliseconds.
    pub(crate) unix_ms: u64,
    /// Time since any fixed start (the room task's), never going back.
    pub(crate) mono: Duration,
}

impl From<u64> for Now {
    /// Both clocks read `ms`: for a simulation (tests, seeds) whose one
    /// clock only moves forward.
    fn from(ms: u64) -> Self {
        Self { unix_ms: ms, mono: Duration::from_millis(ms) }
    }
}

/// The room's host: `tlschat listen`'s own user.
pub(crate) const HOST: SeatId = 0;

/// How a seat receives the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Chat frames (ALPN `tlschat/1`, and the host).
    Frames,
    /// Plain text lines (guests).
    Lines,
}

/// How fast a member may post: a bucket of `burst` messages that refills
/// at `per_sec`; `strikes` refused posts in a row disconnect the member.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rate {
    /// Messages that may be sent at once (a paste of a few lines).
    pub(crate) burst: u32,
    /// Messages per second, sustained.
    pub(crate) per_sec: u32,
    /// Posts refused in a row for speed before the member is disconnected.
    pub(crate) strikes: u32,
}

impl Default for Rate {
    fn default() -> Self {
        Self { burst: 20, per_sec: 5, strikes: 50 }
    }
}

/// The most history frames one answer to [`Frame::Resume`] holds: the
/// oldest after the member's mark. A member further behind asks again
/// from the last one it got, page by page, so a page never fills the
/// seat's queue of [`crate::net::SEAT_QUEUE`] frames, which also carries
/// the join's history and roster.
pub(crate) const MAX_RESUME: usize = 256;

/// Seats one key may hold at once, unless the room says otherwise.
pub(crate) const SEATS_PER_KEY: usize = 4;

/// The room's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The room's id: the server key's fingerprint.
    pub(crate) room: [u8; 32],
    /// Messages replayed to a member who joins (the last of the log).
    pub(crate) history: usize,
    /// How much of the room's log is kept (see [`super::log`]).
    pub(crate) keep: Retention,
    /// Members at most, the host not counted.
    pub(crate) max_members: usize,
    /// Each member's posting rate.
    pub(crate) rate: Rate,
    /// Joins and leaves are announced to everyone while the room has at
    /// most this many members; in a larger room they would cost every
    /// member a frame per arrival (a join storm of n members, n²/2 frames),
    /// so members ask with `/who` instead.
    pub(crate) announce_up_to: usize,
    /// Seats one key may hold at once (several devices), so that one key
    /// cannot fill the room.
    pub(crate) seats_per_key: usize,
    /// Whether guests (no key) may join (`listen --no-guests`: not).
    pub(crate) guests: bool,
    /// Keys the host banned: refused on joining.
    pub(crate) banned: HashSet<[u8; 32]>,
    /// The room is ordered by a bus that several relays share
    /// (`listen --cluster`, [`crate::net::cluster`]): what this relay accepts
    /// (posts, guests' lines, joins and leaves it announces) it hands on as
    /// [`Decision::Publish`] instead of numbering it, and it fans out what
    /// the bus ordered, fed back through [`Relay::ordered`].
    pub(crate) bus: bool,
    /// The room is end to end (`listen --e2e`): one MLS group that the
    /// relay orders and cannot read ([`super::group`]); members only, one
    /// seat per key, at most [`group::MAX_MEMBERS`], no history.
    pub(crate) e2e: bool,
}

impl Config {
    /// Defaults for a room with this id: 100 messages of history, 1,000 members.
    pub fn new(room: [u8; 32]) -> Self {
        Self {
            room,
            history: 100,
            keep: Retention::default(),
            max_members: 1000,
            rate: Rate::default(),
            announce_up_to: 200,
            seats_per_key: SEATS_PER_KEY,
            guests: true,
            banned: HashSet::new(),
            bus: false,
            e2e: false,
        }
    }
}

/// Who takes a seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joiner {
    /// A member whose key the handshake proved, with the name bound to it.
    Verified {
        /// The name.
        name: String,
        /// The identity key.
        key: [u8; 32],
    },
    /// A guest: no key, lines in and out.
    Guest,
    /// The host.
    Host {
        /// The name.
        name: String,
        /// The identity key.
        key: [u8; 32],
    },
}

/// A frame from a member, as the task that decoded it (the seat's own)
/// hands it to the room: a post is opened and its signature checked
/// there, once, and what the room receives is the outcome, a
/// `Verified` message or why it is none. Only `Inbound::check` makes
/// one, so the room orders no post whose signature was not checked, and
/// checks none itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound(Checked);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Checked {
    /// A post, opened.
    Post(Opened),
    /// Any other frame, as it came.
    Other(Frame),
}

/// A post's signed message, as its seat's task found it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Opened {
    /// Its signature holds.
    Verified(Verified),
    /// Well formed, but its signature does not verify.
    BadSignature,
    /// Its text is longer than [`MAX_TEXT`] (this many bytes).
    TooLong(usize),
    /// Not a signed message: why.
    Malformed(String),
}

impl Inbound {
    /// Checks `frame` for the room: a [`Frame::Post`]'s message is opened
    /// and its signature verified (the costly part, done by the caller's
    /// task); any other frame is passed on as it is.
    pub(crate) fn check(frame: Frame) -> Self {
        Self(match frame {
            Frame::Post { signed } => Checked::Post(match Signed::open(&signed) {
                Ok(message) => message.verified().map_or(Opened::BadSignature, Opened::Verified),
                Err(MessageError::TooLong { len }) => Opened::TooLong(len),
                Err(e) => Opened::Malformed(e.to_string()),
            }),
            other => Checked::Other(other),
        })
    }

    /// A post whose signature holds, with its proof.
    #[cfg(test)]
    pub(crate) fn post(verified: Verified) -> Self {
        Self(Checked::Post(Opened::Verified(verified)))
    }

    /// The frame, unless it is a post.
    pub(crate) fn as_frame(&self) -> Option<&Frame> {
        match &self.0 {
            Checked::Other(frame) => Some(frame),
            Checked::Post(_) => None,
        }
    }

    /// Whether it is a post whose signature verified.
    #[cfg(test)]
    pub(crate) fn is_verified_post(&self) -> bool {
        matches!(self.0, Checked::Post(Opened::Verified(_)))
    }
}

impl From<Frame> for Inbound {
    fn from(frame: Frame) -> Self {
        Self::check(frame)
    }
}

/// An entry the bus ordered ([`Config::bus`]), as the task that reads the
/// bus hands it to the room: decoded there, and a `Deliver`'s signed
/// message opened and its signature checked there, once, whichever relay
/// published it (the bus is trusted with the order, not with what was
/// said, nor with who said it). Only [`BusEntry::check`] makes one, so
/// [`Relay::ordered`] orders no post whose signature was not checked, and
/// checks none itself (its fields are private to this module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BusEntry {
    room_seq: u64,
    origin: Option<SeatId>,
    entry: Result<Entry, String>,
}

/// A bus entry's frame, as the bus reader found it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// A member's post (a `Deliver` with no flags): its author's name as
    /// the publishing relay gave it, and the message.
    Post { author: String, message: BusPost },
    /// Any other frame, as it came.
    Other(Frame),
}

/// A post's signed message, as the bus reader found it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BusPost {
    /// Its signature holds.
    Verified(Verified),
    /// Well formed, but its signature does not verify; with what else
    /// could be wrong with it, which is said first.
    BadSignature {
        /// It names a recipient.
        private: bool,
        /// The room it was signed for.
        room: [u8; 32],
    },
    /// Not a signed message.
    Malformed,
}

impl BusEntry {
    /// Checks `entry`, the frame the bus ordered at `room_seq` (published
    /// with room_seq 0 by `origin` when it was this relay's seat): decoded
    /// as exactly one frame, and a post's message opened with its
    /// signature verified (the costly part, done by the caller's task).
    pub(crate) fn check(room_seq: u64, entry: &[u8], origin: Option<SeatId>) -> Self {
        let entry = decode_entry(entry).map(|frame| match frame {
            Frame::Deliver { flags: 0, author, signed, .. } => {
                let message = match Signed::open(&signed) {
                    Ok(message) => {
                        let f = message.fields();
                        let bad = BusPost::BadSignature { private: f.recipient.is_some(), room: f.room };
                        message.verified().map_or(bad, BusPost::Verified)
                    }
                    Err(_) => BusPost::Malformed,
                };
                Entry::Post { author, message }
            }
            other => Entry::Other(other),
        });
        Self { room_seq, origin, entry }
    }

    /// The number the bus gave it.
    #[cfg(test)]
    pub(crate) fn room_seq(&self) -> u64 {
        self.room_seq
    }

    /// The seat of this relay's that said it, when it was one.
    #[cfg(test)]
    pub(crate) fn origin(&self) -> Option<SeatId> {
        self.origin
    }

    /// Whether it is a post whose signature verified.
    #[cfg(test)]
    pub(crate) fn is_verified_post(&self) -> bool {
        matches!(self.entry, Ok(Entry::Post { message: BusPost::Verified(_), .. }))
    }
}

/// One of the relay's decisions: what the caller must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send these bytes (a frame, or a guest's line) to this seat.
    Send(SeatId, Arc<[u8]>),
    /// Disconnect this seat, telling it why (the refusal is already queued
    /// before this). Its departure has already been announced.
    Close(SeatId, String),
    /// A line for the room operator's log.
    Note(String),
    /// Hand this entry (a `Deliver`, `Guest` or `Presence` frame whose
    /// room_seq is 0) from this seat to the bus that orders the room
    /// (`Config::bus`); it comes back numbered through
    /// `Relay::ordered`, or refused through `Relay::unpublished`.
    Publish(SeatId, Arc<[u8]>),
    /// What this seat asked for is not on this relay, and the room has
    /// other relays (`Config::bus`): the caller asks them (see
    /// `crate::chat::peers`) and answers the seat.
    Remote(SeatId, Remote),
}

/// An end-to-end request that may concern the room's other relays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// A key package of `key`'s: no seat here had one. The caller answers
    /// with [`Frame::KeyPackage`] (empty when no relay has one).
    Fetch {
        /// Whose.
        key: [u8; 32],
    },
    /// A [`Frame::Sealed`] for the seats of `to` on other relays; `here`
    /// says whether a seat of this relay got it already. The caller
    /// acknowledges `seq` (when not 0) once some seat got it, or refuses
    /// it when none did.
    Seal {
        /// The recipient's key.
        to: [u8; 32],
        /// The sender's message number, 0 for a Welcome.
        seq: u64,
        /// The `Sealed` frame as this relay's seats receive it.
        frame: Arc<[u8]>,
        /// A seat here got it.
        here: bool,
    },
}

/// Why a seat was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// The name breaks the name rules, or is (or looks like) the name of
    /// another key in the room.
    #[error("{0}")]
    Name(String),
    /// The room has its maximum of members.
    #[error("the room is full ({0} members)")]
    Full(usize),
    /// The seat is taken.
    #[error("seat {0} is taken")]
    Taken(SeatId),
    /// The key holds as many seats as one key may.
    #[error("this key is already in the room {0} times, the most one key may be")]
    TooManySeats(usize),
    /// A guest, in a room for members only.
    #[error("this room admits members with a key only (no guests): connect with `tlschat connect`")]
    NoGuests,
    /// The host banned this key.
    #[error("the host banned this key from the room")]
    Banned,
    /// A guest, in an end-to-end room.
    #[error(
        "this room is end to end: members only; a guest has no key to be added with (connect with `tlschat connect`)"
    )]
    EndToEnd,
}

#[derive(Debug)]
struct Seat {
    name: String,
    standing: Standing,
    key: [u8; 32],
    transport: Transport,
    /// When it last posted, or joined (ms).
    active_ms: u64,
    /// Tokens in its rate bucket, in thousandths, and when it was last
    /// filled (on the monotonic clock, see [`Now`]).
    tokens_milli: u64,
    filled: Duration,
    strikes: u32,
    /// The session id of its first post: one per connection.
    session: Option<[u8; 16]>,
    /// The last sequence number per channel (`None`: the room).
    last_seq: HashMap<Option<[u8; 32]>, u64>,
    /// Its refused posts, for the operator's sampled note.
    refusals: Refusals,
    /// Where its resume stands (one per connection, however many pages).
    resume: ResumeState,
    /// The key packages it published, each handed out once (end to end).
    packages: VecDeque<Vec<u8>>,
    /// Seated, but its join is on its way through the bus: it hears
    /// nothing until the bus has ordered the join, which is then its
    /// welcome's room_seq, as with a lone relay.
    waiting: bool,
}

/// A seat's resume: one per connection, in as many pages as it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResumeState {
    /// It has not asked.
    NotAsked,
    /// It was sent a page ending at this room sequence number, and may
    /// ask for the rest from there.
    Paged(u64),
    /// It has it all.
    Done,
}

/// How often the operator hears of one member's refused posts.
const NOTE_EVERY_MS: u64 = 60_000;

/// A seat's refused posts since the last note about them.
#[derive(Debug, Clone, Copy)]
struct Refusals {
    /// When the last note was made (ms); the next one comes a minute later.
    since_ms: Option<u64>,
    /// Refusals since then that no note told.
    untold: u64,
}

impl Seat {
    fn info(&self, now_ms: u64) -> MemberInfo {
        let idle = now_ms.saturating_sub(self.active_ms) / 1000;
        MemberInfo {
            name: self.name.clone(),
            standing: self.standing,
            key: self.key,
            idle_secs: u32::try_from(idle).unwrap_or(u32::MAX),
        }
    }

    /// Takes a token if there is one.
    fn take_token(&mut self, rate: Rate, mono: Duration) -> bool {
        let full = u64::from(rate.burst) * 1000;
        let elapsed = u64::try_from(mono.saturating_sub(self.filled).as_millis()).unwrap_or(u64::MAX);
        self.tokens_milli =
            self.tokens_milli.saturating_add(elapsed.saturating_mul(u64::from(rate.per_sec))).min(full);
        self.filled = self.filled.max(mono);
        if self.tokens_milli >= 1000 {
            self.tokens_milli -= 1000;
            true
        } else {
            false
        }
    }
}

/// The room.
#[derive(Debug)]
pub struct Relay {
    config: Config,
    seats: BTreeMap<SeatId, Seat>,
    /// The last room sequence number given.
    room_seq: u64,
    /// The room's messages, as the retention keeps them.
    log: Log,
    guests: u64,
    /// The names of the keys seated, by comparison key and by look (see
    /// [`name`]): whose they are and how many seats use them.
    names: HashMap<String, Held>,
    /// Counts joins and leaves: what the room's other relays were last told.
    changes: u64,
    /// The room's other relays ([`Config::bus`]): the most recently active
    /// of their members, and how many they seat, for the list a joiner gets.
    elsewhere: (Vec<MemberInfo>, usize),
    /// The room's MLS group, in an end-to-end room.
    group: Option<Group>,
    /// The monotonic time last given (see [`Now`]): the rate limits' clock.
    mono: Duration,
}

impl Relay {
    /// An empty room.
    pub fn new(config: Config) -> Self {
        let log = Log::new(config.keep);
        let group = config.e2e.then(Group::new);
        Self {
            config,
            seats: BTreeMap::new(),
            room_seq: 0,
            log,
            guests: 0,
            names: HashMap::new(),
            changes: 0,
            elsewhere: (Vec::new(), 0),
            group,
            mono: Duration::ZERO,
        }
    }

    /// The room as it was kept (see `crate::store::room_log`): its last `room_seq`,
    /// the highest one its log let go of, and the messages kept. The
    /// room's order goes on from `room_seq` (or the last entry's, if
    /// higher); nobody is seated.
    pub(crate) fn restore(
        config: Config,
        room_seq: u64,
        forgotten: u64,
        entries: Vec<Past>,
        now_ms: u64,
    ) -> Self {
        let log = Log::restore(config.keep, forgotten, entries, now_ms);
        let last = log.last(1).next().map_or(0, |p| p.room_seq);
        let room_seq = room_seq.max(last).max(log.forgotten());
        Self { room_seq, log, ..Self::new(config) }
    }

    /// The last room sequence number given (to a message, or a join or
    /// leave announced).
    pub(crate) fn room_seq(&self) -> u64 {
        self.room_seq
    }

    /// The room's log.
    pub(crate) fn log(&self) -> &Log {
        &self.log
    }

    /// Every message kept after `after`, in order, and whether that is
    /// all of them (false: some were older than the room keeps).
    pub(crate) fn entries_after(&self, after: u64) -> (impl Iterator<Item = &Past>, bool) {
        self.log.after(after)
    }

    /// Lets go of messages the retention no longer allows at `now_ms`;
    /// returns whether any went.
    pub(crate) fn expire(&mut self, now_ms: u64) -> bool {
        self.log.expire(now_ms)
    }

    /// Whether the room is end to end ([`Config::e2e`]).
    pub(crate) fn e2e(&self) -> bool {
        self.config.e2e
    }

    /// The room's id.
    pub(crate) fn room(&self) -> [u8; 32] {
        self.config.room
    }

    /// Everyone present, the host included: what `/who`, the status page
    /// and a guest's welcome count.
    pub(crate) fn present(&self) -> usize {
        self.seats.len()
    }

    /// Members present, the host not counted: what `max_members` caps.
    pub(crate) fn members(&self) -> usize {
        self.seats.len() - usize::from(self.seats.contains_key(&HOST))
    }

    /// The members as `/who` lists them.
    pub(crate) fn roster(&self, now_ms: u64) -> Vec<MemberInfo> {
        self.seats.values().map(|s| s.info(now_ms)).collect()
    }

    /// The name a seat goes by.
    pub(crate) fn name(&self, id: SeatId) -> Option<&str> {
        self.seats.get(&id).map(|s| s.name.as_str())
    }

    /// Takes the time given: the monotonic clock is kept for the rate
    /// limits (it never goes back here, whatever is given); the wall
    /// clock's milliseconds are returned.
    fn clock(&mut self, now: impl Into<Now>) -> u64 {
        let now = now.into();
        self.mono = self.mono.max(now.mono);
        now.unix_ms
    }

    /// Seats `id`: welcomes it (with the history) and tells everyone else.
    pub fn join(
        &mut self,
        id: SeatId,
        joiner: Joiner,
        transport: Transport,
        now: impl Into<Now>,
    ) -> Result<Vec<Decision>, JoinError> {
        let now_ms = self.clock(now);
        if self.seats.contains_key(&id) {
            return Err(JoinError::Taken(id));
        }
        let max_members = if self.config.e2e {
            self.config.max_members.min(group::MAX_MEMBERS)
        } else {
            self.config.max_members
        };
        if id != HOST && self.members() >= max_members {
            return Err(JoinError::Full(max_members));
        }
        let seats_per_key = if self.config.e2e { 1 } else { self.config.seats_per_key };
        match &joiner {
            Joiner::Guest if self.config.e2e => return Err(JoinError::EndToEnd),
            Joiner::Guest if !self.config.guests => return Err(JoinError::NoGuests),
            Joiner::Verified { key, .. } if self.config.banned.contains(key) => {
                return Err(JoinError::Banned);
            }
            Joiner::Verified { key, .. } => {
                let seats = self.seats.values().filter(|s| s.key == *key).count();
                if seats >= seats_per_key {
                    return Err(JoinError::TooManySeats(seats));
                }
            }
            Joiner::Guest | Joiner::Host { .. } => {}
        }
        let (name, standing, key) = match joiner {
            Joiner::Verified { name, key } => (name, Standing::Verified, key),
            Joiner::Host { name, key } => (name, Standing::Host, key),
            Joiner::Guest => {
                self.guests += 1;
                (format!("guest-{}", self.guests), Standing::Guest, [0; 32])
            }
        };
        if standing != Standing::Guest {
            self.take_name(&name, key)?;
        }
        let seat = Seat {
            name,
            standing,
            key,
            transport,
            active_ms: now_ms,
            tokens_milli: u64::from(self.config.rate.burst) * 1000,
            filled: self.mono,
            strikes: 0,
            session: None,
            last_seq: HashMap::new(),
            refusals: Refusals { since_ms: None, untold: 0 },
            resume: ResumeState::NotAsked,
            packages: VecDeque::new(),
            waiting: false,
        };
        let info = seat.info(now_ms);
        self.seats.insert(id, seat);
        self.changes += 1;
        let announce = self.members() <= self.config.announce_up_to;
        let note = format!("{} joined ({})", info.name, info.standing.as_str());
        if announce && self.config.bus {
            // Welcomed once the bus has ordered the join (see `ordered`).
            if let Some(seat) = self.seats.get_mut(&id) {
                seat.waiting = true;
            }
            let presence = Frame::Presence { room_seq: 0, joined: true, member: info, reason: String::new() };
            let mut out = vec![Decision::Publish(id, presence.wire())];
            if id != HOST {
                out.push(Decision::Note(note));
            }
            return Ok(out);
        }
        if announce {
            self.room_seq += 1;
        }
        let mut out = self.greet(id, now_ms);
        if announce {
            let line: Arc<[u8]> = format!("* {note}\n").into_bytes().into();
            let presence = Frame::Presence {
                room_seq: self.room_seq,
                joined: true,
                member: info,
                reason: String::new(),
            };
            self.broadcast(Some(id), &presence.wire(), &line, &mut out);
        }
        if id != HOST {
            out.push(Decision::Note(note));
        }
        if let Some(group) = self.group.as_mut() {
            group.joined(id, key);
            out.extend(self.group_task(now_ms));
        }
        Ok(out)
    }

    /// What a seat hears on taking its seat: the welcome (with this
    /// room_seq), the history and, for members, who is here.
    fn greet(&self, id: SeatId, now_ms: u64) -> Vec<Decision> {
        let mut out = Vec::new();
        let Some(seat) = self.seats.get(&id) else { return out };
        let (transport, info) = (seat.transport, seat.info(now_ms));
        let replayed = self.config.history.min(self.log.len()).min(usize::from(u16::MAX));
        let history = u16::try_from(replayed).unwrap_or(u16::MAX);
        let welcome = match transport {
            Transport::Frames => {
                let e2e = self.config.e2e;
                Frame::Welcome { name: info.name.clone(), room_seq: self.room_seq, history, e2e }
                    .wire()
                    .to_vec()
            }
            Transport::Lines => format!(
                "tlschat: you are {} (unverified guest); {} in the room, the host included.\n\
                 tlschat: each line you type goes to the room as it is, unsigned and shown as unverified; \
                 commands such as /who or /msg are for members with tlschat (`tlschat connect`).\n",
                info.name,
                self.present() + self.elsewhere.1
            )
            .into_bytes(),
        };
        out.push(Decision::Send(id, welcome.into()));
        for past in self.log.last(replayed) {
            let bytes = match transport {
                Transport::Frames => past.frame.clone(),
                Transport::Lines => past.line.clone(),
            };
            out.push(Decision::Send(id, bytes));
        }
        if transport == Transport::Frames {
            // Who is here: the most recently active, one frame whatever the
            // room's size (a join must not cost the room more as it grows).
            let (others, elsewhere) = &self.elsewhere;
            let total = u32::try_from(self.seats.len() + elsewhere).unwrap_or(u32::MAX);
            let mut recent: Vec<&Seat> = self.seats.values().collect();
            if recent.len() > MAX_ROSTER {
                // The most recent first, without sorting the whole room.
                recent.select_nth_unstable_by_key(MAX_ROSTER, |s| std::cmp::Reverse(s.active_ms));
                recent.truncate(MAX_ROSTER);
            }
            let mut members: Vec<MemberInfo> = recent.into_iter().map(|s| s.info(now_ms)).collect();
            members.extend(others.iter().cloned());
            most_recent(&mut members);
            out.push(Decision::Send(id, Frame::Roster { total, last: true, members }.wire()));
        }
        out
    }

    /// Unseats `id` and tells everyone else; `reason` is empty when it
    /// left by itself.
    pub fn leave(&mut self, id: SeatId, reason: &str, now_ms: u64) -> Vec<Decision> {
        let mut out = Vec::new();
        let announce = self.members() <= self.config.announce_up_to;
        let Some(seat) = self.seats.remove(&id) else { return out };
        self.changes += 1;
        if seat.standing != Standing::Guest {
            self.release_name(&seat.name);
        }
        if announce && !self.config.bus {
            self.room_seq += 1;
        }
        let info = seat.info(now_ms);
        let why = if reason.is_empty() { String::new() } else { format!(": {reason}") };
        let note = format!("{} left{why}", info.name);
        if announce && self.config.bus {
            let presence =
                Frame::Presence { room_seq: 0, joined: false, member: info, reason: reason.to_owned() };
            out.push(Decision::Publish(id, presence.wire()));
        } else if announce {
            let line: Arc<[u8]> = format!("* {note}\n").into_bytes().into();
            let presence = Frame::Presence {
                room_seq: self.room_seq,
                joined: false,
                member: info,
                reason: reason.to_owned(),
            };
            self.broadcast(None, &presence.wire(), &line, &mut out);
        }
        out.push(Decision::Note(note));
        if let Some(group) = self.group.as_mut() {
            group.left(id);
            out.extend(self.group_task(now_ms));
        }
        out
    }

    /// The host removes a member: every seat of the key behind `name` is
    /// disconnected (code 6), and with `ban` the key is refused from now on.
    /// Returns the key, for the caller to keep a ban, and what to do.
    pub(crate) fn remove(
        &mut self,
        name: &str,
        ban: bool,
        now_ms: u64,
    ) -> Result<([u8; 32], Vec<Decision>), String> {
        let wanted = name::key(name);
        let (key, standing) = self
            .seats
            .iter()
            .find(|(id, s)| **id != HOST && s.standing != Standing::Host && name::key(&s.name) == wanted)
            .map(|(_, s)| (s.key, s.standing))
            .ok_or_else(|| {
                format!("nobody named {} is in the room (/who lists who is in)", printable(name))
            })?;
        let targets: Vec<SeatId> = self
            .seats
            .iter()
            .filter(|(id, s)| {
                **id != HOST && (s.key == key && standing != Standing::Guest || name::key(&s.name) == wanted)
            })
            .map(|(id, _)| *id)
            .collect();
        let reason = if ban { "banned by the host" } else { "removed by the host" };
        let mut out = Vec::new();
        for id in targets {
            out.extend(self.expel(id, RefusalCode::Disconnected, reason, now_ms));
        }
        if ban && standing != Standing::Guest {
            self.config.banned.insert(key);
        }
        Ok((key, out))
    }

    /// A frame from a member who speaks frames, checked by its seat's
    /// task (`Inbound::check`).
    pub fn frame(&mut self, id: SeatId, frame: Inbound, now: impl Into<Now>) -> Vec<Decision> {
        let now_ms = self.clock(now);
        let mut out = Vec::new();
        if !self.seats.contains_key(&id) {
            return out;
        }
        let frame = match frame.0 {
            Checked::Post(_) if self.config.e2e => {
                let text = "not sent: this room is end to end; a line in clear is refused (update tlschat)";
                out.extend(self.refuse(
                    id,
                    RefusalCode::BadMessage,
                    text.to_owned(),
                    "a line in clear",
                    now_ms,
                ));
                return out;
            }
            Checked::Post(opened) => {
                self.post(id, opened, now_ms, &mut out);
                return out;
            }
            Checked::Other(frame) => frame,
        };
        match frame {
            Frame::Who => {
                // Everyone, in as many frames as it takes.
                let roster = self.roster(now_ms);
                let total = u32::try_from(roster.len()).unwrap_or(u32::MAX);
                let chunks: Vec<&[MemberInfo]> = roster.chunks(MAX_ROSTER).collect();
                for (i, chunk) in chunks.iter().enumerate() {
                    let frame = Frame::Roster { total, last: i + 1 == chunks.len(), members: chunk.to_vec() };
                    out.push(Decision::Send(id, frame.wire()));
                }
            }
            frame @ (Frame::GroupCommit { .. }
            | Frame::GroupSend { .. }
            | Frame::GroupWelcomePiece { .. }) => self.group_frame(id, frame, now_ms, &mut out),
            Frame::Resume { after } => self.resume(id, after, now_ms, &mut out),
            Frame::Publish { packages } => self.publish(id, packages, now_ms, &mut out),
            Frame::Fetch { key } => self.fetch(id, key, now_ms, &mut out),
            Frame::Seal { to, seq, message } => self.seal(id, to, seq, message, now_ms, &mut out),
            // Frames only the relay sends are a protocol violation.
            other => {
                let reason = format!("sent a frame only the relay may send ({})", other.name());
                out.extend(self.expel(id, RefusalCode::BadMessage, &reason, now_ms));
            }
        }
        out
    }

    /// A line from a guest.
    pub fn guest_line(&mut self, id: SeatId, text: &str, now: impl Into<Now>) -> Vec<Decision> {
        let now_ms = self.clock(now);
        let mut out = Vec::new();
        let (rate, mono) = (self.config.rate, self.mono);
        let Some(seat) = self.seats.get_mut(&id) else { return out };
        if !seat.take_token(rate, mono) {
            return self.throttled(id, now_ms);
        }
        if text.len() > MAX_TEXT {
            let text = format!("not sent: the line is {} bytes long; the most is {MAX_TEXT}", text.len());
            return self.refuse(id, RefusalCode::TooLong, text, "too long", now_ms);
        }
        let Some(seat) = self.seats.get_mut(&id) else { return out };
        seat.strikes = 0;
        seat.active_ms = now_ms;
        let name = seat.name.clone();
        if self.config.bus {
            let entry = Frame::Guest { room_seq: 0, flags: 0, name, text: text.to_owned() };
            out.push(Decision::Publish(id, entry.wire()));
            return out;
        }
        self.room_seq += 1;
        let frame =
            Frame::Guest { room_seq: self.room_seq, flags: 0, name: name.clone(), text: text.to_owned() };
        let past = Frame::Guest {
            room_seq: self.room_seq,
            flags: flags::HISTORY,
            name: name.clone(),
            text: text.to_owned(),
        };
        let line = unsigned_line(&name, text);
        let line: Arc<[u8]> = line.into_bytes().into();
        self.remember(self.room_seq, now_ms, past.wire(), line.clone());
        self.broadcast(Some(id), &frame.wire(), &line, &mut out);
        out
    }

    fn post(&mut self, id: SeatId, opened: Opened, now_ms: u64, out: &mut Vec<Decision>) {
        let room = self.config.room;
        let (rate, mono) = (self.config.rate, self.mono);
        let Some(seat) = self.seats.get_mut(&id) else { return };
        // The rate comes first: a refused post costs a token like any other
        // (its signature was checked by its seat's task, not the room's).
        // The host runs the room: its own lines are not rate limited.
        if id != HOST && !seat.take_token(rate, mono) {
            out.extend(self.throttled(id, now_ms));
            return;
        }
        let verified = match opened {
            Opened::Verified(verified) => verified,
            Opened::TooLong(len) => {
                let text = format!("not sent: the message is {len} bytes long; the most is {MAX_TEXT}");
                out.extend(self.refuse(id, RefusalCode::TooLong, text, "too long", now_ms));
                return;
            }
            Opened::Malformed(e) => {
                out.extend(self.expel(
                    id,
                    RefusalCode::BadMessage,
                    &format!("sent a malformed message: {e}"),
                    now_ms,
                ));
                return;
            }
            Opened::BadSignature => {
                let problem = "its signature does not verify";
                let text = format!("not sent: the relay refused your message: {problem}");
                out.extend(self.refuse(id, RefusalCode::BadMessage, text, problem, now_ms));
                return;
            }
        };
        let signed = verified.message();
        let bytes = signed.bytes();
        let f = signed.fields();
        let problem = if f.author != seat.key || seat.standing == Standing::Guest {
            Some("it is signed by a key other than the one this connection proved")
        } else if f.room != room {
            Some("it was signed for another room")
        } else if seat.session.is_some_and(|s| s != f.session) {
            Some("its session id is not this connection's")
        } else if seat.last_seq.get(&f.recipient).is_some_and(|&last| f.seq <= last) {
            Some("its sequence number was already used (a replay)")
        } else {
            None
        };
        if let Some(problem) = problem {
            let text = format!("not sent: the relay refused your message: {problem}");
            out.extend(self.refuse(id, RefusalCode::BadMessage, text, problem, now_ms));
            return;
        }
        let Some(seat) = self.seats.get_mut(&id) else { return };
        seat.strikes = 0;
        seat.session = Some(f.session);
        seat.last_seq.insert(f.recipient, f.seq);
        seat.active_ms = now_ms;
        let author = seat.name.clone();
        let seq = f.seq;
        match f.recipient {
            Some(to) => {
                let targets = self.member_seats(to, id);
                if targets.is_empty() {
                    let text = "not sent: nobody with that key is in the room (private messages reach members with tlschat only)".to_owned();
                    out.push(Decision::Send(id, refusal(Transport::Frames, RefusalCode::NoSuchMember, text)));
                    return;
                }
                let frame: Arc<[u8]> =
                    Frame::Deliver { room_seq: 0, flags: flags::PRIVATE, author, signed: bytes.to_vec() }
                        .wire();
                for target in targets {
                    out.push(Decision::Send(target, frame.clone()));
                }
                out.push(Decision::Send(id, Frame::Ack { room_seq: 0, seq, private: true }.wire()));
            }
            None if self.config.bus => {
                // Numbered, fanned out and acknowledged once the bus has it.
                let entry = Frame::Deliver { room_seq: 0, flags: 0, author, signed: bytes.to_vec() };
                out.push(Decision::Publish(id, entry.wire()));
            }
            None => {
                self.room_seq += 1;
                let room_seq = self.room_seq;
                let action = f.kind == Kind::Action;
                let text = printable(&f.text);
                let line = if action {
                    format!("* {author} {text}\n")
                } else {
                    format!("[{author} \u{2713}] {text}\n")
                };
                let line: Arc<[u8]> = line.into_bytes().into();
                let live =
                    Frame::Deliver { room_seq, flags: 0, author: author.clone(), signed: bytes.to_vec() };
                let past = Frame::Deliver { room_seq, flags: flags::HISTORY, author, signed: bytes.to_vec() };
                self.remember(room_seq, now_ms, past.wire(), line.clone());
                self.broadcast(Some(id), &live.wire(), &line, out);
                out.push(Decision::Send(id, Frame::Ack { room_seq, seq, private: false }.wire()));
            }
        }
    }

    /// Takes a token from a seat's bucket for an end-to-end frame; the host
    /// is not limited. False when the seat is gone or over its rate (the
    /// refusal is in `out`).
    fn e2e_token(&mut self, id: SeatId, now_ms: u64, out: &mut Vec<Decision>) -> bool {
        let (rate, mono) = (self.config.rate, self.mono);
        let Some(seat) = self.seats.get_mut(&id) else { return false };
        if id != HOST && !seat.take_token(rate, mono) {
            out.extend(self.throttled(id, now_ms));
            return false;
        }
        true
    }

    /// A member publishes key packages: kept for its seat, at most
    /// [`MAX_PUBLISHED`]. The relay checks only that each says it is one.
    /// No rate token: the cap bounds what a seat holds, and a publish over
    /// it is refused as a strike.
    fn publish(&mut self, id: SeatId, packages: Vec<Vec<u8>>, now_ms: u64, out: &mut Vec<Decision>) {
        let Some(seat) = self.seats.get_mut(&id) else { return };
        let problem = if packages.iter().any(|p| e2e::wire_format(p) != Some(wire::KEY_PACKAGE)) {
            Some("something published as a key package is not one")
        } else if packages.iter().any(|p| p.len() > MAX_KEY_PACKAGE) {
            Some("a key package longer than any real one")
        } else if seat.packages.len() + packages.len() > MAX_PUBLISHED {
            Some("more key packages than the relay keeps for one seat")
        } else {
            None
        };
        if let Some(problem) = problem {
            let text = format!("not published: {problem} (at most {MAX_PUBLISHED})");
            out.extend(self.refuse(id, RefusalCode::BadMessage, text, problem, now_ms));
            return;
        }
        seat.strikes = 0;
        seat.packages.extend(packages);
        out.extend(self.group_task(now_ms));
    }

    /// The room's group has work: the task for its committer, handing out
    /// the key packages it needs (their owners told how many are left).
    fn group_task(&mut self, now_ms: u64) -> Vec<Decision> {
        let mut out = Vec::new();
        let Some(group) = self.group.as_mut() else { return out };
        let seats = &mut self.seats;
        let task = group.next_task(now_ms, &mut |sid| {
            let seat = seats.get_mut(&sid)?;
            let package = seat.packages.pop_front()?;
            let left = u16::try_from(seat.packages.len()).unwrap_or(u16::MAX);
            out.push(Decision::Send(sid, Frame::PackagesLeft { left }.wire()));
            Some(package)
        });
        if let Some((seat, task)) = task {
            out.push(Decision::Send(seat, task.wire()));
        }
        out
    }

    /// Called now and then: a group task its committer let go unanswered
    /// for [`group::TASK_WAIT_MS`] goes to the next member in line.
    pub(crate) fn group_tick(&mut self, now_ms: u64) -> Vec<Decision> {
        let Some(group) = self.group.as_mut() else { return Vec::new() };
        if !group.overdue(now_ms) {
            return Vec::new();
        }
        let mut out =
            vec![Decision::Note("a group task went unanswered: the next member in line gets it".into())];
        out.extend(self.group_task(now_ms));
        out
    }

    /// A [`Frame::GroupCommit`], [`Frame::GroupSend`] or
    /// [`Frame::GroupWelcomePiece`]: see [`super::group`].
    fn group_frame(&mut self, id: SeatId, frame: Frame, now_ms: u64, out: &mut Vec<Decision>) {
        // A Welcome's later pieces take no rate token: its first did, and
        // one Welcome is at most `pieces::MAX_PIECES` pieces.
        let later_piece = matches!(frame, Frame::GroupWelcomePiece { index: 1.., .. });
        if !later_piece && !self.e2e_token(id, now_ms, out) {
            return;
        }
        let Some(seat) = self.seats.get(&id) else { return };
        let (key, name) = (seat.key, seat.name.clone());
        let Some(group) = self.group.as_mut() else {
            let why = "not taken: this room is not end to end";
            out.extend(self.refuse(id, RefusalCode::BadMessage, why.to_owned(), why, now_ms));
            return;
        };
        let commit = matches!(frame, Frame::GroupCommit { .. });
        let taken = match frame {
            Frame::GroupCommit { epoch, adds, removes, commit, welcome } => {
                group.commit(id, key, &name, epoch, adds, removes, commit, welcome, &mut self.room_seq)
            }
            Frame::GroupSend { epoch, seq, message } => {
                group.send(id, key, &name, epoch, seq, message, &mut self.room_seq)
            }
            Frame::GroupWelcomePiece { epoch, index, count, bytes } => {
                group.piece(id, epoch, index, count, &bytes)
            }
            _ => return,
        };
        match taken {
            Ok(sends) => {
                if let Some(seat) = self.seats.get_mut(&id) {
                    seat.strikes = 0;
                    seat.active_ms = now_ms;
                }
                out.extend(sends.into_iter().map(|(sid, bytes)| Decision::Send(sid, bytes)));
                if commit {
                    out.extend(self.group_task(now_ms));
                }
            }
            Err(group::Refusal::Retry { epoch, seq }) => {
                out.push(Decision::Send(id, Frame::GroupRetry { epoch, seq }.wire()))
            }
            Err(group::Refusal::Refused(why)) => {
                out.extend(self.refuse(id, RefusalCode::BadMessage, why.clone(), &why, now_ms))
            }
        }
    }

    /// A member asks for a key package of `key`'s: one is handed out (and
    /// its owner told how many are left), or an empty answer if none.
    fn fetch(&mut self, id: SeatId, key: [u8; 32], now_ms: u64, out: &mut Vec<Decision>) {
        if !self.e2e_token(id, now_ms, out) {
            return;
        }
        match self.take_package(id, key, out) {
            None if self.config.bus => out.push(Decision::Remote(id, Remote::Fetch { key })),
            package => {
                let package = package.unwrap_or_default();
                out.push(Decision::Send(id, Frame::KeyPackage { key, package }.wire()));
            }
        }
    }

    /// Hands out one of the key packages a seat of `key` published (not
    /// `except`'s), telling its owner how many are left; `None` if no
    /// seat here has one. For [`Frame::Fetch`], and for another relay's
    /// fetch through the bus.
    pub(crate) fn take_package(
        &mut self,
        except: SeatId,
        key: [u8; 32],
        out: &mut Vec<Decision>,
    ) -> Option<Vec<u8>> {
        let owner = self
            .seats
            .iter()
            .find(|(sid, s)| {
                **sid != except && s.key == key && s.standing != Standing::Guest && !s.packages.is_empty()
            })
            .map(|(sid, _)| *sid);
        owner.and_then(|o| {
            let seat = self.seats.get_mut(&o)?;
            let package = seat.packages.pop_front()?;
            let left = u16::try_from(seat.packages.len()).unwrap_or(u16::MAX);
            out.push(Decision::Send(o, Frame::PackagesLeft { left }.wire()));
            Some(package)
        })
    }

    /// An MLS message for the member(s) with key `to`: forwarded unread,
    /// with the sender's name and key, and acknowledged when it carries a
    /// message's `seq`.
    fn seal(
        &mut self,
        id: SeatId,
        to: [u8; 32],
        seq: u64,
        message: Vec<u8>,
        now_ms: u64,
        out: &mut Vec<Decision>,
    ) {
        if !self.e2e_token(id, now_ms, out) {
            return;
        }
        if message.len() > MAX_SEALED {
            let text = format!(
                "not sent: the MLS message is {} bytes long; the most is {MAX_SEALED}",
                message.len()
            );
            out.extend(self.refuse(id, RefusalCode::TooLong, text, "too long", now_ms));
            return;
        }
        if !matches!(e2e::wire_format(&message), Some(wire::WELCOME | wire::PRIVATE)) {
            let why = "not an MLS Welcome or private message";
            out.extend(self.refuse(id, RefusalCode::BadMessage, format!("not sent: {why}"), why, now_ms));
            return;
        }
        let targets = self.member_seats(to, id);
        if targets.is_empty() && !self.config.bus {
            out.push(Decision::Send(id, sealed_nowhere()));
            return;
        }
        let Some(seat) = self.seats.get_mut(&id) else { return };
        seat.strikes = 0;
        seat.active_ms = now_ms;
        let frame: Arc<[u8]> =
            Frame::Sealed { room_seq: 0, from: seat.name.clone(), key: seat.key, message }.wire();
        let here = !targets.is_empty();
        for target in targets {
            out.push(Decision::Send(target, frame.clone()));
        }
        if self.config.bus {
            out.push(Decision::Remote(id, Remote::Seal { to, seq, frame, here }));
        } else if seq != 0 {
            out.push(Decision::Send(id, Frame::Ack { room_seq: 0, seq, private: true }.wire()));
        }
    }

    /// A post refused for speed; enough refusals in a row disconnect.
    fn throttled(&mut self, id: SeatId, now_ms: u64) -> Vec<Decision> {
        let rate = self.config.rate;
        let text = format!(
            "not sent: slow down (at most {} messages at once, {} a second)",
            rate.burst, rate.per_sec
        );
        self.refuse(id, RefusalCode::RateLimited, text, "too fast", now_ms)
    }

    /// Refuses a post: tells its author why (the connection is kept), counts
    /// a strike, and disconnects after [`Rate::strikes`] refusals in a row.
    /// The operator's note is sampled: the first refusal of a minute is
    /// told at once, the rest as a count when the minute is over.
    fn refuse(
        &mut self,
        id: SeatId,
        code: RefusalCode,
        text: String,
        why: &str,
        now_ms: u64,
    ) -> Vec<Decision> {
        let rate = self.config.rate;
        let Some(seat) = self.seats.get_mut(&id) else { return Vec::new() };
        seat.strikes += 1;
        if seat.strikes >= rate.strikes {
            let reason = match code {
                RefusalCode::RateLimited => format!("flooding: more than {} messages a second", rate.per_sec),
                _ => format!("{} refused posts in a row (the last: {why})", seat.strikes),
            };
            return self.expel(id, RefusalCode::Disconnected, &reason, now_ms);
        }
        let mut out = vec![Decision::Send(id, refusal(seat.transport, code, text))];
        let refusals = &mut seat.refusals;
        if refusals.since_ms.is_none_or(|since| now_ms.saturating_sub(since) >= NOTE_EVERY_MS) {
            if refusals.untold > 0 {
                out.push(Decision::Note(format!(
                    "{} more posts refused from {} in the last minute",
                    refusals.untold, seat.name
                )));
            }
            out.push(Decision::Note(format!("refused a post from {}: {why}", seat.name)));
            *refusals = Refusals { since_ms: Some(now_ms), untold: 0 };
        } else {
            refusals.untold += 1;
        }
        out
    }

    /// Tells a seat why it is being disconnected, announces its leaving
    /// and asks the caller to close it.
    pub(crate) fn expel(
        &mut self,
        id: SeatId,
        code: RefusalCode,
        reason: &str,
        now_ms: u64,
    ) -> Vec<Decision> {
        let Some(seat) = self.seats.get(&id) else { return Vec::new() };
        let mut out =
            vec![Decision::Send(id, refusal(seat.transport, code, format!("disconnected: {reason}")))];
        out.extend(self.leave(id, reason, now_ms));
        out.push(Decision::Close(id, reason.to_owned()));
        out
    }

    /// Counts a seat under `name` for `key`, or refuses it: the name breaks
    /// the rules, or it is (or looks like) a name another key is seated
    /// under. One lookup per look, whatever the room's size.
    fn take_name(&mut self, name: &str, key: [u8; 32]) -> Result<(), JoinError> {
        let name = name::check(name)
            .map_err(|why: NameError| JoinError::Name(format!("{}: {why}", printable(name))))?;
        let entries = name_entries(&name);
        if let Some(held) = entries.iter().find_map(|e| self.names.get(e).filter(|h| h.key != key)) {
            let what = if held.name_key == name.key() {
                "is".to_owned()
            } else {
                format!("looks like {}, which is", held.shown)
            };
            return Err(JoinError::Name(format!(
                "the name {name} {what} the name of another key in this room"
            )));
        }
        for entry in entries {
            let held = self.names.entry(entry).or_insert_with(|| Held {
                key,
                seats: 0,
                name_key: name.key().to_owned(),
                shown: name.as_str().to_owned(),
            });
            held.seats += 1;
        }
        Ok(())
    }

    /// Uncounts a seat that took `name`.
    fn release_name(&mut self, name: &str) {
        let Ok(name) = name::check(name) else { return };
        for entry in name_entries(&name) {
            if let Some(held) = self.names.get_mut(&entry) {
                held.seats -= 1;
                if held.seats == 0 {
                    self.names.remove(&entry);
                }
            }
        }
    }

    /// An entry the bus ordered ([`Config::bus`]), checked by the task
    /// that reads the bus ([`BusEntry::check`]): the frame some relay
    /// published (room_seq 0), `origin` the seat that said it when this
    /// relay published it. The entry is numbered, kept as history and
    /// fanned out to every seat but its author's; the author is
    /// acknowledged with the bus's number, and a member whose join this
    /// is gets its welcome. A post is checked as a member's post is (a
    /// signature that does not verify, another room, a private message)
    /// and skipped if it fails: the bus and the other relays are trusted
    /// with the order, not with what was said. An entry numbered at or
    /// below the last one is a repeat and changes nothing.
    pub(crate) fn ordered(&mut self, entry: BusEntry, now_ms: u64) -> Vec<Decision> {
        let mut out = Vec::new();
        let BusEntry { room_seq, origin, entry } = entry;
        if room_seq <= self.room_seq {
            return out;
        }
        self.room_seq = room_seq;
        let skipped = |why: &str| Decision::Note(format!("skipped the bus's entry {room_seq}: {why}"));
        let frame = match entry {
            Ok(Entry::Post { author, message }) => {
                self.ordered_post(room_seq, origin, author, &message, now_ms, &mut out);
                return out;
            }
            Ok(Entry::Other(frame)) => frame,
            Err(why) => {
                out.push(skipped(&why));
                return out;
            }
        };
        match frame {
            Frame::Guest { flags: 0, name, text, .. } => {
                if text.len() > MAX_TEXT {
                    out.push(skipped("a guest's line over the limit"));
                    return out;
                }
                let line = unsigned_line(&name, &text);
                let line: Arc<[u8]> = line.into_bytes().into();
                let live = Frame::Guest { room_seq, flags: 0, name: name.clone(), text: text.clone() };
                let past = Frame::Guest { room_seq, flags: flags::HISTORY, name, text };
                self.remember(room_seq, now_ms, past.wire(), line.clone());
                self.broadcast(origin, &live.wire(), &line, &mut out);
            }
            Frame::Presence { joined, member, reason, .. } => {
                let welcomed = origin.filter(|id| joined && self.seats.get(id).is_some_and(|s| s.waiting));
                if let Some(seat) = welcomed.and_then(|id| self.seats.get_mut(&id)) {
                    seat.waiting = false;
                }
                if let Some(id) = welcomed {
                    out.extend(self.greet(id, now_ms));
                }
                let why = if reason.is_empty() { String::new() } else { format!(": {}", printable(&reason)) };
                let what = if joined {
                    format!("{} joined ({})", printable(&member.name), member.standing.as_str())
                } else {
                    format!("{} left{why}", printable(&member.name))
                };
                let line: Arc<[u8]> = format!("* {what}\n").into_bytes().into();
                let presence = Frame::Presence { room_seq, joined, member, reason };
                self.broadcast(origin, &presence.wire(), &line, &mut out);
            }
            other => out.push(skipped(&format!("a {} frame is not a room entry", other.name()))),
        }
        out
    }

    /// A post the bus ordered at `room_seq`: skipped with a note when it
    /// is not one a member may post to this room, else numbered, kept,
    /// fanned out and acknowledged to its author.
    fn ordered_post(
        &mut self,
        room_seq: u64,
        origin: Option<SeatId>,
        author: String,
        message: &BusPost,
        now_ms: u64,
        out: &mut Vec<Decision>,
    ) {
        let skipped = |why: &str| Decision::Note(format!("skipped the bus's entry {room_seq}: {why}"));
        let (private, room, verified) = match message {
            BusPost::Verified(verified) => {
                let f = verified.message().fields();
                (f.recipient.is_some(), f.room, Some(verified))
            }
            &BusPost::BadSignature { private, room } => (private, room, None),
            BusPost::Malformed => {
                out.push(skipped("a malformed message"));
                return;
            }
        };
        let verified = match (private, room == self.config.room, verified) {
            (true, _, _) => Err("a private message"),
            (_, false, _) => Err("signed for another room"),
            (_, _, None) => Err("its signature does not verify"),
            (_, _, Some(verified)) => Ok(verified),
        };
        let verified = match verified {
            Ok(verified) => verified,
            Err(problem) => {
                out.push(skipped(&format!("from {}: {problem}", printable(&author))));
                return;
            }
        };
        let message = verified.message();
        let f = message.fields();
        let signed = message.bytes().to_vec();
        let line: Arc<[u8]> = post_line(&author, f.kind, &f.text).into_bytes().into();
        let live = Frame::Deliver { room_seq, flags: 0, author: author.clone(), signed: signed.clone() };
        let past = Frame::Deliver { room_seq, flags: flags::HISTORY, author, signed };
        self.remember(room_seq, now_ms, past.wire(), line.clone());
        self.broadcast(origin, &live.wire(), &line, out);
        if let Some(id) = origin.filter(|id| self.seats.contains_key(id)) {
            let ack = Frame::Ack { room_seq, seq: f.seq, private: false };
            out.push(Decision::Send(id, ack.wire()));
        }
    }

    /// The bus did not take what `id` published ([`Decision::Publish`]):
    /// a post or a line is refused to its author (the connection kept), a
    /// join waiting for the bus is refused and closed.
    pub(crate) fn unpublished(&mut self, id: SeatId, entry: &[u8], why: &str, now_ms: u64) -> Vec<Decision> {
        let Some(seat) = self.seats.get(&id) else { return Vec::new() };
        let (transport, waiting) = (seat.transport, seat.waiting);
        match decode_entry(entry) {
            Ok(Frame::Presence { joined: true, .. }) if waiting => {
                let reason = format!("the room's bus did not take the join ({why})");
                self.expel(id, RefusalCode::Disconnected, &reason, now_ms)
            }
            Ok(Frame::Deliver { .. } | Frame::Guest { .. }) => {
                let text = format!("not sent: the room's bus did not take it ({why})");
                vec![
                    Decision::Send(id, refusal(transport, RefusalCode::Disconnected, text)),
                    Decision::Note(format!("the bus did not take an entry from seat {id}: {why}")),
                ]
            }
            _ => vec![Decision::Note(format!("the bus did not take an entry from seat {id}: {why}"))],
        }
    }

    fn remember(&mut self, room_seq: u64, at_ms: u64, frame: Arc<[u8]>, line: Arc<[u8]>) {
        self.log.push(Past { room_seq, at_ms, frame, line }, at_ms);
    }

    /// A member's [`Frame::Resume`]: the kept room frames after `after`,
    /// oldest first, at most [`MAX_RESUME`] of them, then
    /// [`Frame::Resumed`]. Its `upto` is the room's last number when that
    /// is all, or the last frame's when more are kept: the member then asks
    /// again from there, and only from there. Each request costs a token of
    /// the member's rate.
    fn resume(&mut self, id: SeatId, after: u64, now_ms: u64, out: &mut Vec<Decision>) {
        let (rate, mono) = (self.config.rate, self.mono);
        let Some(seat) = self.seats.get_mut(&id) else { return };
        if id != HOST && !seat.take_token(rate, mono) {
            out.extend(self.throttled(id, now_ms));
            return;
        }
        let allowed = match seat.resume {
            ResumeState::NotAsked => true,
            ResumeState::Paged(next) => next == after,
            ResumeState::Done => false,
        };
        if !allowed {
            let text = "not resumed: a connection resumes once, right after joining".to_owned();
            out.extend(self.refuse(id, RefusalCode::BadMessage, text, "resumed twice", now_ms));
            return;
        }
        let (entries, complete) = self.log.after(after);
        let mut page: Vec<(u64, Arc<[u8]>)> =
            entries.take(MAX_RESUME + 1).map(|p| (p.room_seq, p.frame.clone())).collect();
        let more = page.len() > MAX_RESUME;
        page.truncate(MAX_RESUME);
        let upto = match page.last() {
            Some(&(last, _)) if more => last,
            _ => self.room_seq,
        };
        seat.resume = if more { ResumeState::Paged(upto) } else { ResumeState::Done };
        out.extend(page.into_iter().map(|(_, frame)| Decision::Send(id, frame)));
        out.push(Decision::Send(id, Frame::Resumed { after, upto, complete }.wire()));
    }

    /// A `Sealed` frame another relay routed to
    /// the seats of `to` here: queued for each; returns how many.
    pub(crate) fn deliver_to_key(&self, to: [u8; 32], frame: &Arc<[u8]>, out: &mut Vec<Decision>) -> usize {
        let targets = self.member_seats(to, SeatId::MAX);
        for &target in &targets {
            out.push(Decision::Send(target, frame.clone()));
        }
        targets.len()
    }

    /// Every seat of `key` is disconnected (code 6) with `reason`, and
    /// with `ban` the key is refused from now on: a removal the host of
    /// another relay of the room made.
    pub(crate) fn remove_key(
        &mut self,
        key: [u8; 32],
        ban: bool,
        reason: &str,
        now_ms: u64,
    ) -> Vec<Decision> {
        let targets: Vec<SeatId> = self
            .seats
            .iter()
            .filter(|(id, s)| **id != HOST && s.key == key && s.standing == Standing::Verified)
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::new();
        for id in targets {
            out.extend(self.expel(id, RefusalCode::Disconnected, reason, now_ms));
        }
        if ban {
            self.config.banned.insert(key);
        }
        out
    }

    /// Who the room's other relays seat, as they last said: the joiner's
    /// list then names the most recently active of the whole room, and
    /// counts all of it.
    pub(crate) fn seated_elsewhere<'a>(
        &mut self,
        members: impl Iterator<Item = &'a MemberInfo>,
        count: usize,
    ) {
        let mut recent: Vec<&MemberInfo> = members.collect();
        if recent.len() > MAX_ROSTER {
            recent.select_nth_unstable_by_key(MAX_ROSTER, |m| m.idle_secs);
            recent.truncate(MAX_ROSTER);
        }
        self.elsewhere = (recent.into_iter().cloned().collect(), count);
    }

    /// How many joins and leaves this relay has seen: when it changes,
    /// the room's other relays are sent the roster again.
    pub(crate) fn changes(&self) -> u64 {
        self.changes
    }

    /// The next guest is `guest-N`: a room on a bus numbers its guests
    /// there, so that two relays never both have a `guest-1`.
    pub(crate) fn number_next_guest(&mut self, n: u64) {
        self.guests = n.saturating_sub(1);
    }

    /// The seats of the member with `key` that take frames (a private
    /// message's or an MLS message's recipients), `except` the sender's.
    fn member_seats(&self, key: [u8; 32], except: SeatId) -> Vec<SeatId> {
        self.seats
            .iter()
            .filter(|(sid, s)| **sid != except && s.key == key && s.transport == Transport::Frames)
            .map(|(sid, _)| *sid)
            .collect()
    }

    /// Queues `frame` for every seat that takes frames and `line` for
    /// every guest, except `except`.
    fn broadcast(
        &self,
        except: Option<SeatId>,
        frame: &Arc<[u8]>,
        line: &Arc<[u8]>,
        out: &mut Vec<Decision>,
    ) {
        for (&id, seat) in &self.seats {
            if Some(id) == except || seat.waiting {
                continue;
            }
            let bytes = match seat.transport {
                Transport::Frames => frame.clone(),
                Transport::Lines => line.clone(),
            };
            out.push(Decision::Send(id, bytes));
        }
    }
}

/// A refusal as a seat of `transport` receives it: a `Refused` frame, or
/// for a guest a line `tlschat: TEXT`.
pub(crate) fn refusal(transport: Transport, code: RefusalCode, text: String) -> Arc<[u8]> {
    match transport {
        Transport::Frames => Frame::Refused { code, text }.wire(),
        Transport::Lines => format!("tlschat: {text}\n").into_bytes().into(),
    }
}

/// Keeps the [`MAX_ROSTER`] most recently active of `members`.
fn most_recent(members: &mut Vec<MemberInfo>) {
    if members.len() > MAX_ROSTER {
        members.select_nth_unstable_by_key(MAX_ROSTER, |m| m.idle_secs);
        members.truncate(MAX_ROSTER);
    }
}

/// The refusal of a `Seal` that reached nobody.
pub(crate) fn sealed_nowhere() -> Arc<[u8]> {
    refusal(
        Transport::Frames,
        RefusalCode::NoSuchMember,
        "not sent: nobody with that key is in the room".to_owned(),
    )
}

/// A room message as a guest reads it.
/// A guest's line as guests receive it: unsigned, and said to be.
fn unsigned_line(name: &str, text: &str) -> String {
    format!("[{} (unverified)] {}\n", printable(name), printable(text))
}

fn post_line(author: &str, kind: Kind, text: &str) -> String {
    let (author, text) = (printable(author), printable(text));
    if kind == Kind::Action {
        format!("* {author} {text}\n")
    } else {
        format!("[{author} \u{2713}] {text}\n")
    }
}

/// One frame, exactly: what a relay published to the bus.
fn decode_entry(entry: &[u8]) -> Result<Frame, String> {
    let mut buffer = super::FrameBuffer::default();
    buffer.push(entry);
    match buffer.next_frame() {
        Ok(Some(frame)) if buffer.pending() == 0 => Ok(frame),
        Ok(_) => Err("not one whole frame".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// A name seated under a key, in [`Relay`]'s index of names.
#[derive(Debug)]
struct Held {
    key: [u8; 32],
    /// Seats that use it.
    seats: usize,
    /// Its comparison key, and the name as the first seat gave it.
    name_key: String,
    shown: String,
}

/// A name's entries in [`Relay`]'s index: its comparison key and looks.
fn name_entries(name: &name::Name) -> Vec<String> {
    std::iter::once(format!("key:{}", name.key())).chain(name.looks().map(|l| format!("look:{l}"))).collect()
}
