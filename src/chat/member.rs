//! A member's side of the chat protocol: signs what its user writes, and
//! checks everything the relay delivers.
//!
//! Every message is verified over the bytes received. Per author, session
//! and channel the member keeps the last sequence number, the chain hash
//! and a window of the numbers just below, so it notices a replay (not
//! shown twice), a late message (shown, marked out of order), a gap ("N
//! messages from alice missing") and a broken chain; per room it keeps the
//! relay's sequence number, so it notices frames the relay dropped,
//! repeated or sent backwards. Across sessions it keeps its [`Contacts`]:
//! which key each name had (learned from verified signatures only) and
//! how far it read each author's sessions, so a name that comes back with
//! another key, or a message from an earlier session delivered as live, is
//! caught in any later session too.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use super::contacts::name_key;
use crate::tls::codec::InvalidMessage;
use crate::tls::{Ed25519Key, Fingerprint, Rng};

use super::contacts::{Contacts, SessionId};
use super::e2e::{self, E2e, wire};
use super::frame::{Frame, MemberInfo, RefusalCode, Standing, flags};
use super::message::{Fields, Kind, MessageError, Signed, chain_hash};

mod room_group;
mod update;
pub use update::{UPDATE_EVERY_MS, UPDATE_EVERY_SEALED, UpdatePolicy};

/// What the member makes of a message's signature and origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigCheck {
    /// The author's key signed exactly these bytes, for this room.
    Valid,
    /// The signature does not verify: the text or a field was altered.
    Invalid,
    /// Signed for another room: moved here by a relay.
    OtherRoom,
    /// A private message for someone else.
    NotForMe,
}

impl SigCheck {
    /// As JSON's `sig` field says it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Invalid => "invalid",
            Self::OtherRoom => "other-room",
            Self::NotForMe => "not-for-me",
        }
    }
}

/// What the member knows of the author's key under that name, from the
/// signatures it verified itself (its [`Contacts`]), never from the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorCheck {
    /// The key this member saw under that name in an earlier session.
    Known,
    /// The key the user verified under that name (safety numbers compared).
    Verified,
    /// The first time this member sees the name: in this session.
    FirstSeen,
    /// The name had another key before: someone else, or a new key.
    Changed {
        /// The key it had.
        was: Fingerprint,
    },
    /// The key is one this member knows under another name: the relay
    /// delivered someone's message under a name that is not theirs.
    OtherName {
        /// The name this member knows the key by.
        known_as: String,
    },
    /// The name looks like a contact's name with another key (a homoglyph).
    LookAlike {
        /// The contact's name.
        of: String,
    },
    /// The relay gave the author a name that no room may bind (not in its
    /// prepared form, mixed scripts, invisible characters): nothing is
    /// learned from it.
    BadName {
        /// Why, in one line.
        why: String,
    },
}

impl AuthorCheck {
    /// As JSON's `author` field says it.
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Self::Known => "known",
            Self::Verified => "verified",
            Self::FirstSeen => "first-seen",
            Self::Changed { .. } => "changed",
            Self::OtherName { .. } => "other-name",
            Self::LookAlike { .. } => "look-alike",
            Self::BadName { .. } => "bad-name",
        }
    }
}

/// When a message was signed, judged against what this member knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// This member verified this message (its session and seq) in an
    /// earlier session: a replay, delivered again as live.
    EarlierSession,
    /// Delivered as live, but signed before this member joined.
    BeforeJoin,
    /// Signed far from this member's clock.
    Skewed,
}

impl Stale {
    /// As JSON's `stale` field says it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::EarlierSession => "earlier-session",
            Self::BeforeJoin => "before-join",
            Self::Skewed => "clock-skew",
        }
    }
}

/// How far a live message may have been signed before this member joined.
pub(crate) const BEFORE_JOIN_MS: u64 = 2 * 60_000;
/// How far a signed time may be from this member's clock.
pub(crate) const SKEW_MS: u64 = 5 * 60_000;
/// How far below an author's last sequence number a late message is still
/// told from a replay.
pub(crate) const WINDOW: u64 = 64;

/// A message as received and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The relay's sequence number (0 for a private message).
    pub room_seq: u64,
    /// Replayed history on joining.
    pub history: bool,
    /// For this member only.
    pub private: bool,
    /// The name the relay gives the author.
    pub from: String,
    /// The author's key fingerprint.
    pub(crate) key: Fingerprint,
    /// What it is.
    pub(crate) kind: Kind,
    /// The text as the author wrote it (escape it before printing).
    pub text: String,
    /// The author's clock, Unix milliseconds.
    pub(crate) time_ms: u64,
    /// The author's sequence number.
    pub(crate) seq: u64,
    /// The signature.
    pub sig: SigCheck,
    /// The author's key under that name.
    pub author: AuthorCheck,
    /// Messages of this author's channel that never arrived before this one.
    pub missing_before: u64,
    /// `prev` is not the hash of the author's previous message.
    pub(crate) chain_broken: bool,
    /// Arrived after a later message of its author's channel.
    pub late: bool,
    /// Signed earlier than a live message can be, or far from our clock.
    pub stale: Option<Stale>,
    /// The relay's private flag disagrees with what the author signed;
    /// the message is judged by what was signed.
    pub mislabeled: bool,
    /// The signed bytes, as received.
    pub(crate) signed: Arc<[u8]>,
    /// It came end to end: sealed in an MLS group the relay cannot read.
    pub e2e: bool,
    /// End to end: the MLS message as the relay forwarded it (all it saw).
    pub(crate) sealed: Option<Arc<[u8]>>,
}

/// What a message's checks add up to, for showing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Signed by the key known under the name (or first seen with it).
    Verified,
    /// Signed, but the name had another key before, or the key another
    /// name, or the name looks like a contact's.
    KeyChanged,
    /// Signed by the right key, but a replay from an earlier session, or
    /// signed before we joined, or far from our clock.
    Stale,
    /// Not to be trusted: see [`Received::sig`] for why.
    Invalid,
}

impl Received {
    /// What the checks add up to.
    pub fn verdict(&self) -> Verdict {
        match (self.sig, &self.author, self.stale) {
            (
                SigCheck::Valid,
                AuthorCheck::Changed { .. }
                | AuthorCheck::OtherName { .. }
                | AuthorCheck::LookAlike { .. }
                | AuthorCheck::BadName { .. },
                _,
            ) => Verdict::KeyChanged,
            (SigCheck::Valid, _, Some(_)) => Verdict::Stale,
            (SigCheck::Valid, _, None) => Verdict::Verified,
            _ => Verdict::Invalid,
        }
    }
}

/// What happened in the room, for the UI and the headless log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChatEvent {
    /// We are in: the name the room knows us by.
    Welcome {
        /// Our name.
        name: String,
        /// History messages that follow.
        history: u16,
        /// The room is end to end (`listen --e2e`): this member reads from
        /// its join on, with no history before it.
        e2e: bool,
    },
    /// We sent a message (not yet delivered).
    Sent {
        /// Its sequence number in its channel.
        seq: u64,
        /// What it is.
        kind: Kind,
        /// The recipient's name for a private message.
        to: Option<String>,
        /// The text.
        text: String,
        /// Whether the relay will acknowledge it (false on a plain-text
        /// connection, which has no acknowledgements).
        acked: bool,
        /// Sealed end to end (MLS): the relay cannot read it.
        e2e: bool,
    },
    /// The relay acknowledged our message.
    Delivered {
        /// Its sequence number.
        seq: u64,
        /// Whether it was private.
        private: bool,
        /// Its place in the room's order (0 when private).
        room_seq: u64,
    },
    /// A signed message.
    Message(Box<Received>),
    /// A guest's unsigned line.
    Guest {
        /// The relay's sequence number.
        room_seq: u64,
        /// Replayed history.
        history: bool,
        /// The guest's name.
        name: String,
        /// The line (escape it before printing).
        text: String,
    },
    /// Someone joined or left.
    Presence {
        /// Joined (else left).
        joined: bool,
        /// Who.
        member: MemberInfo,
        /// Why they left, when they did not choose to.
        reason: String,
    },
    /// A name came back with another key than this member saw before.
    KeyChanged {
        /// The name.
        name: String,
        /// The key it had.
        was: Fingerprint,
        /// The key it has now.
        now: Fingerprint,
    },
    /// Who is in: the answer to `/who` (everyone), or the list that comes
    /// on joining (the most recently active).
    Roster {
        /// Members in the room in all.
        total: u32,
        /// The members listed.
        members: Vec<MemberInfo>,
    },
    /// The relay refused what we sent.
    Refused {
        /// Why, for programs.
        code: RefusalCode,
        /// Why, for people.
        text: String,
    },
    /// A message seen before (same author, session and sequence number),
    /// delivered again: not shown twice.
    Replay {
        /// The author's name.
        from: String,
        /// Its sequence number.
        seq: u64,
    },
    /// The relay's sequence skipped: frames the relay did not deliver.
    RelayGap {
        /// How many.
        missing: u64,
    },
    /// The relay's sequence went backwards or repeated a number: the
    /// relay's lie, told; the checks go on from the number received.
    RelayDisorder {
        /// The number received.
        room_seq: u64,
        /// The last number before it.
        last: u64,
        /// A number this member already received (else one lower than the
        /// last, never received).
        repeated: bool,
    },
    /// The contacts file could not be read or written: this session's
    /// bindings are not kept.
    ContactsNotKept {
        /// Why.
        why: String,
    },
    /// The user marked a contact verified (`/verify`): both safety
    /// numbers, to compare out of band.
    Verified {
        /// The contact's name.
        name: String,
        /// Our key.
        mine: Fingerprint,
        /// Theirs.
        theirs: Fingerprint,
    },
    /// The user ignores a name for this session (`/ignore`).
    Ignoring {
        /// The name.
        name: String,
    },
    /// The first message this member verified from a name: a binding the
    /// driver keeps ([`Member::contacts`]).
    Learned {
        /// The name.
        name: String,
        /// Its key.
        key: Fingerprint,
    },
    /// A `/msg` waits for its end-to-end group with the recipient: the
    /// recipient's key package was asked for. Nothing goes in clear.
    E2eWaiting {
        /// The recipient's name.
        to: String,
        /// The line that waits.
        text: String,
        /// Lines waiting for that group.
        queued: usize,
    },
    /// An end-to-end group with a member is ready: we made it (from its
    /// key package) or joined it (from its Welcome).
    E2eReady {
        /// The other member's name.
        name: String,
        /// Its identity key, which its MLS credential carries.
        key: Fingerprint,
        /// The group's epoch.
        epoch: u64,
        /// We made it (else joined it).
        made: bool,
    },
    /// A step in the life of an end-to-end group (the F5 panel): what it
    /// did, and the group as it is after it.
    E2eStep {
        /// The other member (a pair's group), or who the step is with.
        peer: String,
        /// The group, once there is one.
        group: Option<Vec<u8>>,
        /// What happened.
        step: e2e::Step,
        /// The group after the step (epoch, ratchet tree, epoch values).
        view: Option<Arc<e2e::GroupView>>,
    },
    /// End-to-end input refused: altered, replayed, out of order, a
    /// credential that is not the key the room knows, a group this session
    /// does not hold. Nothing of it is shown as a message.
    E2eRefused {
        /// The name the relay gave its sender.
        from: String,
        /// Why.
        why: String,
    },
    /// The relay says that a room this member knew as end to end (an
    /// earlier session's Welcome) is not: a downgrade. Room lines are not
    /// sent; what comes in clear is still read.
    E2eDowngraded,
    /// The room's end-to-end group changed: this member joined it, or a
    /// commit (ours or another's, checked) moved it to a new epoch.
    E2eGroup {
        /// The group's epoch now.
        epoch: u64,
        /// Members in it now (0: we were removed).
        members: usize,
        /// Who committed (or sent our Welcome).
        by: String,
        /// Members it added.
        adds: usize,
        /// Members it removed.
        removes: usize,
    },
    /// A room line waits, signed, until members who left are removed from
    /// the group (so that they never read it).
    E2eHeld {
        /// The line.
        text: String,
        /// Lines waiting.
        queued: usize,
        /// Who left and is still in the group.
        gone: Vec<String>,
    },
    /// A delivered message that is not a signed message at all.
    Malformed {
        /// The name the relay gave its author.
        from: String,
        /// What is wrong.
        why: String,
    },
    /// The relay answered our resume: what was said since this member
    /// last saw the room (room sequence number `after`) has been shown.
    Resumed {
        /// Where this member left the room.
        after: u64,
        /// The relay's last room sequence number when it answered.
        upto: u64,
        /// False: some of what was said after `after` is older than what
        /// the relay keeps (or more than one answer holds), and was missed.
        complete: bool,
        /// Messages shown from the answer.
        caught_up: u64,
    },
    /// The room's order is behind where this member left it: the relay
    /// started again without its history. What was said before is not
    /// there; the member follows the new order from here.
    OrderRestarted {
        /// The last room sequence number this member saw.
        seen: u64,
        /// The room's sequence number now.
        now: u64,
    },
}

/// Why a line could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ComposeError {
    /// Too long.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// End to end could not be done; nothing is sent in clear.
    #[error("not sent end to end: {0}")]
    E2e(String),
    /// A room line in an end-to-end room before this member is in its group.
    #[error("you are not in the room's end-to-end group yet (nothing was sent in clear)")]
    NotInGroup,
    /// A room line in a room this member knew as end to end and the relay
    /// now says is not.
    #[error(
        "this room was end to end and the relay now says it is not: your lines are not sent in clear (reconnect to an end-to-end relay)"
    )]
    Downgraded,
    /// `/msg` to a name this member has not seen in the room.
    #[error("no member named {0} is known here (/who lists who is in)")]
    UnknownName(String),
    /// `/verify` of a name this member has no verified signature from.
    #[error(
        "you have no message signed by {0} yet: nothing to verify (its key is learned from its first message)"
    )]
    NotAContact(String),
    /// `/msg` to a name whose key changed and was not accepted.
    #[error(
        "not sent: the key of {0} CHANGED since you last saw it; compare safety numbers with them (/verify {0}), then accept the new key with `tlschat trust accept ROOM {0}`"
    )]
    KeyChanged(String),
}

/// A channel: the room, or one recipient's key.
type Channel = Option<[u8; 32]>;

/// Whose messages a chain holds: author key, session, channel.
type ChainId = ([u8; 32], [u8; 16], Channel);

/// Where a chain stands: its last sequence number and message hash, and
/// which of the [`WINDOW`] numbers below the last were received.
#[derive(Debug, Clone, Copy)]
struct Chain {
    last: u64,
    hash: [u8; 32],
    /// Bit `i`: `last - 1 - i` was received.
    below: u64,
}

/// Where a sequence number falls in a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Above the last: `missing` numbers skipped.
    Ahead { missing: u64 },
    /// Below the last, within the window, never received.
    Late,
    /// Received already, or too far below the last to tell.
    Seen,
}

impl Chain {
    fn place(&self, seq: u64) -> Place {
        if seq > self.last {
            return Place::Ahead { missing: seq - self.last - 1 };
        }
        let below = self.last - seq;
        if below == 0 || below > WINDOW || self.below & (1 << (below - 1)) != 0 {
            Place::Seen
        } else {
            Place::Late
        }
    }

    fn take(&mut self, seq: u64, hash: [u8; 32]) {
        if seq > self.last {
            let shift = u32::try_from(seq - self.last).unwrap_or(u32::MAX);
            let moved = self.below.checked_shl(shift).unwrap_or(0);
            let old_last = 1u64.checked_shl(shift - 1).unwrap_or(0);
            *self = Self { last: seq, hash, below: moved | old_last };
        } else if let Some(bit) = (self.last - seq).checked_sub(1) {
            self.below |= 1u64.checked_shl(u32::try_from(bit).unwrap_or(u32::MAX)).unwrap_or(0);
        }
    }
}

/// How many places claimed by invalid messages a member remembers.
const CLAIMED_INVALID: usize = 64;

/// How many room sequence numbers a member remembers, to tell a repeat
/// from a number that went backwards.
const RECENT_ROOM_SEQS: usize = 1024;

/// Live frames a resuming member holds while it waits for the relay's
/// answer; a relay that sends more without answering is broken.
const MAX_HELD: usize = 1024;

/// The most history frames a member takes as one page of the answer to
/// its resume: well above what a relay sends ([`super::relay::MAX_RESUME`]).
const MAX_ANSWER: usize = 4 * super::relay::MAX_RESUME;

/// A member catching up on what it missed since an earlier connection:
/// it sends [`Frame::Resume`] after the Welcome, drops the join's history
/// (the answer carries it, in order), holds the live room frames that
/// arrive before the answer's end, then shows them, each room sequence
/// number once.
#[derive(Debug, Default)]
struct Resume {
    /// The Resume to send, once the Welcome came.
    request: Option<Frame>,
    /// The mark asked after, until the answer's [`Frame::Resumed`].
    asked: Option<u64>,
    /// Join history frames still to come (dropped while resuming).
    join_history: u16,
    /// Live room frames held until the answer is in.
    held: Vec<Frame>,
    /// Room sequence numbers the answer carried: a held live copy of one
    /// is not shown again.
    answered: HashSet<u64>,
    /// Messages shown from the answer.
    shown: u64,
    /// The Welcome came (once per connection).
    welcomed: bool,
    /// The room sequence number of this connection's join: an answer that
    /// ends below it is a page, and the member asks for the next.
    until: u64,
    /// A page said messages were missed (older than the relay keeps).
    missed: bool,
    /// The mark the first page was asked after, once a second is asked for.
    first: Option<u64>,
}

/// The room sequence number of a live room frame (one a resuming member
/// holds), if `frame` is one.
fn live_room_seq(frame: &Frame) -> Option<u64> {
    match frame {
        Frame::Deliver { room_seq, flags: f, .. } | Frame::Guest { room_seq, flags: f, .. }
            if f & flags::HISTORY == 0 && *room_seq != 0 =>
        {
            Some(*room_seq)
        }
        Frame::Presence { room_seq, .. } | Frame::Ack { room_seq, private: false, .. } => Some(*room_seq),
        _ => None,
    }
}

/// The relay's sequence as this member saw it.
#[derive(Debug, Default)]
struct RoomOrder {
    last: Option<u64>,
    recent: HashSet<u64>,
    order: VecDeque<u64>,
}

impl RoomOrder {
    /// Checks `room_seq`; false for a number received before. Compared with
    /// the last one seen, never with `last + 1`: the relay is not trusted,
    /// and a room_seq of u64::MAX must not overflow. A number that goes
    /// backwards is told, and the checks go on from it, so that a lie of
    /// u64::MAX does not switch them off.
    fn check(&mut self, room_seq: u64, out: &mut Vec<ChatEvent>) -> bool {
        let Some(last) = self.last else {
            self.remember(room_seq);
            return true;
        };
        if self.recent.contains(&room_seq) {
            out.push(ChatEvent::RelayDisorder { room_seq, last, repeated: true });
            return false;
        }
        if room_seq > last {
            let missing = room_seq - last - 1;
            if missing > 0 {
                out.push(ChatEvent::RelayGap { missing });
            }
        } else {
            out.push(ChatEvent::RelayDisorder { room_seq, last, repeated: false });
        }
        self.remember(room_seq);
        true
    }

    /// Takes `room_seq` without judging gaps (frames of a group this
    /// member was not in yet went to others); false for a repeat.
    fn follow(&mut self, room_seq: u64) -> bool {
        if self.recent.contains(&room_seq) {
            return false;
        }
        self.remember(room_seq);
        true
    }

    fn remember(&mut self, room_seq: u64) {
        self.last = Some(room_seq);
        if self.recent.insert(room_seq) {
            self.order.push_back(room_seq);
            if self.order.len() > RECENT_ROOM_SEQS
                && let Some(old) = self.order.pop_front()
            {
                self.recent.remove(&old);
            }
        }
    }
}

/// The most chains a member follows at once; beyond, the oldest-started
/// are forgotten (their next message starts the chain again).
const MAX_CHAINS: usize = 100_000;
/// The most names a member keeps from the relay's rosters and presence
/// notices (for `/msg` to someone not yet heard).
const MAX_LISTED: usize = 100_000;

/// The member's state.
pub struct Member {
    room: [u8; 32],
    key: Ed25519Key,
    me: [u8; 32],
    session: [u8; 16],
    /// Our last sequence number and message hash per channel.
    sent: HashMap<Channel, (u64, [u8; 32])>,
    /// Each author's chain, per session and channel.
    chains: HashMap<ChainId, Chain>,
    /// Chains in the order they started, to forget the oldest.
    chain_order: VecDeque<ChainId>,
    /// The places in a chain that a message marked invalid claimed (the
    /// latest few): the next valid message does not count them missing,
    /// since something arrived there and was shown, marked.
    claimed_invalid: VecDeque<(ChainId, u64)>,
    /// What this member remembers across sessions.
    contacts: Contacts,
    /// The keys it learned in this session (first seen here).
    learned_here: HashSet<[u8; 32]>,
    /// For each author session met in this session, how far earlier
    /// sessions had read it.
    read_before: HashMap<SessionId, u64>,
    /// Names the relay listed (roster, presence), with the keys it said
    /// they proved: the relay's word, used only to address `/msg`.
    listed: HashMap<String, [u8; 32]>,
    /// Our name in the room.
    name: Option<String>,
    /// Keys (and guests' names) whose messages are not shown (`/ignore`).
    ignored: HashSet<[u8; 32]>,
    ignored_guests: HashSet<String>,
    /// When we joined (the Welcome), Unix ms.
    joined_ms: Option<u64>,
    /// The relay's sequence.
    order: RoomOrder,
    /// A member list arriving in several frames.
    roster: Vec<MemberInfo>,
    /// Catching up after an earlier connection.
    resume: Resume,
    /// End to end: the MLS state.
    e2e: E2e,
    /// The end-to-end group with each member `/msg` met, and what waits for it.
    pairs: HashMap<[u8; 32], Pair>,
    /// Frames to send besides the user's lines: key packages, Welcomes,
    /// lines that waited for their group ([`Self::take_outgoing`]).
    outgoing: Vec<Frame>,
    /// Key packages made in this session.
    packages_made: usize,
    /// When pair groups update our leaf.
    update_policy: UpdatePolicy,
    /// The end-to-end room (`listen --e2e`).
    room_e2e: room_group::RoomE2e,
}

/// Who sealed a message that came end to end, as the relay names it.
#[derive(Debug, Clone, Copy)]
struct Sealer {
    key: [u8; 32],
    /// A room line (else a `/msg` to us).
    room: bool,
}

/// A `/msg` recipient's end-to-end state.
#[derive(Debug, Default)]
struct Pair {
    /// Groups with this member (at most [`PAIR_GROUPS`]): sent on the last,
    /// read on any.
    groups: VecDeque<Vec<u8>>,
    /// A key package was asked for and not yet answered.
    fetching: bool,
    /// Lines waiting for the group: (text, the name as typed).
    waiting: Vec<(String, String)>,
    /// When our leaf in the newest group is next updated.
    update: update::PairUpdate,
}

/// Groups kept per `/msg` peer: the newest is sent on; an older one is still
/// read (both sides may have made one at once, or the peer started over).
const PAIR_GROUPS: usize = 2;
/// Lines that may wait for one peer's group.
const MAX_WAITING: usize = 16;
/// Peers with an end-to-end group or a line waiting for one.
const MAX_PAIRS: usize = 1000;
/// Key packages one session makes at most: each keeps private keys until a
/// Welcome uses it, so a relay that keeps saying none are left cannot make
/// a member hold more.
const MAX_KEY_PACKAGES_MADE: usize = 64;

/// The longest member list a member accepts: five times the largest room
/// one process can hold here (about 20,000 members, docs/SCALING.md).
const MAX_ROSTER: usize = 100_000;

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member").field("me", &Fingerprint::of_ed25519(&self.me)).finish_non_exhaustive()
    }
}

impl Member {
    /// A member of room `room` (the server key's fingerprint) who signs
    /// with `key`; the session id is drawn from `rng`. It remembers
    /// nothing from earlier sessions: see [`Self::with_contacts`].
    pub fn new(room: [u8; 32], key: Ed25519Key, rng: &mut dyn Rng) -> Self {
        let mut session = [0; 16];
        rng.fill(&mut session);
        let me = key.public_key();
        Self {
            room,
            key,
            me,
            session,
            sent: HashMap::new(),
            chains: HashMap::new(),
            chain_order: VecDeque::new(),
            claimed_invalid: VecDeque::new(),
            contacts: Contacts::new(),
            learned_here: HashSet::new(),
            read_before: HashMap::new(),
            listed: HashMap::new(),
            name: None,
            ignored: HashSet::new(),
            ignored_guests: HashSet::new(),
            joined_ms: None,
            order: RoomOrder::default(),
            roster: Vec::new(),
            resume: Resume::default(),
            e2e: E2e::new(me),
            pairs: HashMap::new(),
            outgoing: Vec::new(),
            packages_made: 0,
            update_policy: UpdatePolicy::default(),
            room_e2e: room_group::RoomE2e::default(),
        }
    }

    /// Frames this member has to send now, besides the user's lines: its
    /// key packages, a Welcome, lines that waited for their group. The
    /// driver sends them after each [`Self::receive`] and [`Self::say`].
    pub fn take_outgoing(&mut self) -> Vec<Frame> {
        std::mem::take(&mut self.outgoing)
    }

    /// Says a user's line: a public one is signed and posted; a private one
    /// (`to`) goes end to end, sealed in the pair's MLS group, or waits for
    /// that group (its key package is asked for); never in clear. The frames
    /// are in [`Self::take_outgoing`].
    pub fn say(
        &mut self,
        kind: Kind,
        text: &str,
        to: Option<&str>,
        now_ms: u64,
    ) -> Result<Vec<ChatEvent>, ComposeError> {
        let Some(name) = to else {
            if self.room_is_e2e() {
                return self.say_e2e_room(kind, text, now_ms);
            }
            let (frame, event) = self.compose(kind, text, None, now_ms)?;
            self.outgoing.push(frame);
            return Ok(vec![event]);
        };
        let key = self.recipient(name)?;
        if text.len() > super::MAX_TEXT {
            return Err(MessageError::TooLong { len: text.len() }.into());
        }
        if !self.pairs.contains_key(&key) && self.pairs.len() >= MAX_PAIRS {
            return Err(ComposeError::E2e(format!("end-to-end groups with {MAX_PAIRS} members already")));
        }
        let pair = self.pairs.entry(key).or_default();
        if pair.groups.back().is_some() {
            let mut out = vec![self.seal_private(key, name, text, now_ms)?];
            self.update_if_due(key, now_ms, &mut out);
            return Ok(out);
        }
        if pair.waiting.len() >= MAX_WAITING {
            return Err(ComposeError::E2e(format!(
                "{MAX_WAITING} lines already wait for the end-to-end group with {}",
                super::printable(name)
            )));
        }
        pair.waiting.push((text.to_owned(), name.to_owned()));
        let queued = pair.waiting.len();
        if !pair.fetching {
            pair.fetching = true;
            self.outgoing.push(Frame::Fetch { key });
        }
        Ok(vec![ChatEvent::E2eWaiting { to: name.to_owned(), text: text.to_owned(), queued }])
    }

    /// Signs a private message to `key` and seals it in the pair's group.
    fn seal_private(
        &mut self,
        key: [u8; 32],
        to: &str,
        text: &str,
        now_ms: u64,
    ) -> Result<ChatEvent, ComposeError> {
        let group = self
            .pairs
            .get(&key)
            .and_then(|p| p.groups.back().cloned())
            .ok_or_else(|| ComposeError::E2e("no end-to-end group".into()))?;
        let (signed, seq) = self.sign(Kind::Private, text, Some(key), now_ms)?;
        let message =
            self.e2e.seal(&self.key, &group, &signed).map_err(|e| ComposeError::E2e(e.to_string()))?;
        self.outgoing.push(Frame::Seal { to: key, seq, message });
        if let Some(pair) = self.pairs.get_mut(&key) {
            pair.update.sealed = pair.update.sealed.saturating_add(1);
        }
        Ok(ChatEvent::Sent {
            seq,
            kind: Kind::Private,
            to: Some(to.to_owned()),
            text: text.to_owned(),
            acked: true,
            e2e: true,
        })
    }

    /// Publishes `n` new key packages.
    fn publish(&mut self, n: usize, out: &mut Vec<ChatEvent>) {
        let mut packages = Vec::new();
        let n = n.min(MAX_KEY_PACKAGES_MADE - self.packages_made.min(MAX_KEY_PACKAGES_MADE));
        if n == 0 {
            if self.packages_made != MAX_KEY_PACKAGES_MADE {
                return;
            }
            // Told once.
            self.packages_made += 1;
            let why = format!(
                "this session made its {MAX_KEY_PACKAGES_MADE} key packages: no more are published (others can no longer start a /msg group with you until you reconnect)"
            );
            out.push(ChatEvent::E2eRefused { from: String::new(), why });
            return;
        }
        self.packages_made += n;
        for _ in 0..n {
            match self.e2e.key_package(&self.key) {
                Ok(p) => packages.push(p),
                Err(e) => {
                    out.push(ChatEvent::E2eRefused { from: String::new(), why: e.to_string() });
                    break;
                }
            }
        }
        if !packages.is_empty() {
            let first = packages.first().and_then(|p| {
                let checked = self.e2e.check_key_package(p, self.me).ok()?;
                Some(E2e::package_info(&checked, p.len()))
            });
            if let Some(first) = first {
                let step = e2e::Step::Published { count: packages.len(), first };
                self.group_step("", None, step, out);
            }
            self.outgoing.push(Frame::Publish { packages });
        }
    }

    /// The relay's answer to our [`Frame::Fetch`]: make the pair's group
    /// and send what waited for it, or say why nothing was sent.
    fn key_package(&mut self, key: [u8; 32], package: &[u8], now_ms: u64, out: &mut Vec<ChatEvent>) {
        let Some(pair) = self.pairs.get_mut(&key) else { return };
        if !std::mem::take(&mut pair.fetching) {
            return;
        }
        let name = pair.waiting.first().map(|(_, to)| to.clone()).unwrap_or_default();
        if pair.groups.back().is_some() {
            // Their Welcome came first: that group serves.
            return;
        }
        let made = if package.is_empty() {
            Err(format!(
                "{} has no end-to-end key package in the room (not in it, or not with a tlschat that does end to end)",
                super::printable(&name)
            ))
        } else {
            self.start_pair(key, package).map_err(|e| e.to_string())
        };
        match made {
            Ok((group, epoch, commit, welcome)) => {
                if let Some(pair) = self.pairs.get_mut(&key) {
                    pair.groups.push_back(group.clone());
                }
                self.pair_started(key, now_ms);
                if let Ok(checked) = self.e2e.check_key_package(package, key) {
                    let info = E2e::package_info(&checked, package.len());
                    self.group_step(&name, None, e2e::Step::Fetched(info), out);
                }
                self.group_step(&name, Some(&group), e2e::Step::Add { added: vec![key] }, out);
                let step = e2e::Step::Commit {
                    from: 0,
                    to: epoch,
                    proposals: vec!["Add"],
                    size: commit,
                    mine: true,
                };
                self.group_step(&name, Some(&group), step, out);
                let step = e2e::Step::Welcome { size: welcome, made: true, members: 2 };
                self.group_step(&name, Some(&group), step, out);
                out.push(ChatEvent::E2eReady { name, key: Fingerprint::of_ed25519(&key), epoch, made: true });
                self.flush_waiting(key, now_ms, out);
            }
            Err(why) => {
                let waiting = self.pairs.remove(&key).map(|p| p.waiting).unwrap_or_default();
                out.push(ChatEvent::E2eRefused { from: name, why: why.clone() });
                for _ in waiting {
                    let text = format!("not sent: no end-to-end group: {why}; nothing was sent in clear");
                    out.push(ChatEvent::Refused { code: RefusalCode::BadMessage, text });
                }
            }
        }
    }

    /// Makes a pair's group from the peer's key package (checked to carry
    /// `key`), and queues the Welcome.
    /// Returns the group, its epoch, and the sizes of the commit and the
    /// Welcome.
    fn start_pair(
        &mut self,
        key: [u8; 32],
        package: &[u8],
    ) -> Result<(Vec<u8>, u64, usize, usize), e2e::E2eError> {
        let group = self.e2e.create(&self.key)?;
        let added = self.e2e.add(&self.key, &group, &[(package, key)]).and_then(|commit| {
            let epoch = self.e2e.confirm(&group)?;
            Ok((commit, epoch))
        });
        let (commit, epoch) = match added {
            Ok(done) => done,
            Err(e) => {
                self.e2e.forget(&group);
                return Err(e);
            }
        };
        let sizes = (commit.commit.len(), commit.welcome.as_ref().map_or(0, Vec::len));
        if let Some(welcome) = commit.welcome {
            self.outgoing.push(Frame::Seal { to: key, seq: 0, message: welcome });
        }
        Ok((group, epoch, sizes.0, sizes.1))
    }

    /// Sends the lines that waited for the pair's group.
    fn flush_waiting(&mut self, key: [u8; 32], now_ms: u64, out: &mut Vec<ChatEvent>) {
        let waiting = self.pairs.get_mut(&key).map(|p| std::mem::take(&mut p.waiting)).unwrap_or_default();
        for (text, to) in waiting {
            match self.seal_private(key, &to, &text, now_ms) {
                Ok(event) => out.push(event),
                Err(e) => out.push(ChatEvent::Refused {
                    code: RefusalCode::BadMessage,
                    text: format!("not sent: {e}"),
                }),
            }
        }
        self.update_if_due(key, now_ms, out);
    }

    /// An MLS message the relay forwarded from `key` (named `from`).
    fn sealed(&mut self, from: String, key: [u8; 32], message: &[u8], now_ms: u64, out: &mut Vec<ChatEvent>) {
        match e2e::wire_format(message) {
            Some(wire::WELCOME) => self.pair_welcome(from, key, message, now_ms, out),
            Some(wire::PRIVATE) => self.pair_private(from, key, message, now_ms, out),
            _ => {
                out.push(ChatEvent::E2eRefused { from, why: "not an MLS Welcome or private message".into() })
            }
        }
    }

    /// A Welcome into a pair's group, from `key`: both credentials must be
    /// the keys the room knows, and the name the one contacts know it by.
    fn pair_welcome(
        &mut self,
        from: String,
        key: [u8; 32],
        message: &[u8],
        now_ms: u64,
        out: &mut Vec<ChatEvent>,
    ) {
        let check = self.check_name(&from, key, false, 0, &mut Vec::new());
        if !matches!(check, AuthorCheck::Known | AuthorCheck::Verified | AuthorCheck::FirstSeen)
            || key == self.me
        {
            let why = format!(
                "a Welcome from {}'s key, which is not the key you know by that name",
                super::printable(&from)
            );
            out.push(ChatEvent::E2eRefused { from, why });
            return;
        }
        if !self.pairs.contains_key(&key) && self.pairs.len() >= MAX_PAIRS {
            out.push(ChatEvent::E2eRefused {
                from,
                why: format!("end-to-end groups with {MAX_PAIRS} members already"),
            });
            return;
        }
        let joined = match self.e2e.join(message, key) {
            Ok(joined) => joined,
            Err(e) => {
                out.push(ChatEvent::E2eRefused { from, why: e.to_string() });
                return;
            }
        };
        if joined.members.len() != 2 || !joined.members.contains(&key) {
            self.e2e.forget(&joined.group);
            let why = "a Welcome into a group that is not the two of you".to_owned();
            out.push(ChatEvent::E2eRefused { from, why });
            return;
        }
        let pair = self.pairs.entry(key).or_default();
        pair.groups.retain(|g| *g != joined.group);
        pair.groups.push_back(joined.group.clone());
        let old = if pair.groups.len() > PAIR_GROUPS { pair.groups.pop_front() } else { None };
        if let Some(old) = old {
            self.e2e.forget(&old);
        }
        self.pair_started(key, now_ms);
        let step = e2e::Step::Welcome { size: message.len(), made: false, members: joined.members.len() };
        self.group_step(&from, Some(&joined.group), step, out);
        out.push(ChatEvent::E2eReady {
            name: from,
            key: Fingerprint::of_ed25519(&key),
            epoch: joined.epoch,
            made: false,
        });
        self.flush_waiting(key, now_ms, out);
    }

    /// A member left: its pair groups go (its next session makes new ones),
    /// and the lines that waited for one are refused.
    fn pair_left(&mut self, key: [u8; 32], out: &mut Vec<ChatEvent>) {
        if let Some(pair) = self.pairs.remove(&key) {
            for group in pair.groups {
                self.e2e.forget(&group);
            }
            for (_, to) in pair.waiting {
                let text = format!(
                    "not sent: no end-to-end group: {} left before it existed; nothing was sent in clear",
                    super::printable(&to)
                );
                out.push(ChatEvent::Refused { code: RefusalCode::BadMessage, text });
            }
        }
    }

    /// The [`Frame::Resume`] to send, once: after the Welcome, when this
    /// member saw the room before (its contacts' mark).
    pub(crate) fn take_resume(&mut self) -> Option<Frame> {
        self.resume.request.take()
    }

    /// The Welcome came: resume from the mark, if there is one and the
    /// room's order has not started again below it.
    fn start_resume(&mut self, room_seq: u64, history: u16, out: &mut Vec<ChatEvent>) {
        if std::mem::replace(&mut self.resume.welcomed, true) {
            return;
        }
        // An end-to-end room keeps no history: nothing to resume.
        if self.e2e_room() {
            return;
        }
        match self.contacts.room_seq() {
            None => {}
            Some(seen) if seen > room_seq => {
                self.contacts.restart_room_seq();
                out.push(ChatEvent::OrderRestarted { seen, now: room_seq });
            }
            Some(after) => {
                self.resume.request = Some(Frame::Resume { after });
                self.resume.asked = Some(after);
                self.resume.join_history = history;
                self.resume.until = room_seq;
            }
        }
    }

    /// While resuming: drops the join's history and holds live room
    /// frames; `None` when `frame` is taken care of.
    fn resuming(&mut self, frame: Frame) -> Result<Option<Frame>, InvalidMessage> {
        if self.resume.asked.is_none() {
            return Ok(Some(frame));
        }
        let history = match &frame {
            Frame::Deliver { flags: f, .. } | Frame::Guest { flags: f, .. } => f & flags::HISTORY != 0,
            _ => false,
        };
        if history && self.resume.join_history > 0 {
            self.resume.join_history -= 1;
            return Ok(None);
        }
        if live_room_seq(&frame).is_some() {
            if self.resume.held.len() >= MAX_HELD {
                return Err(InvalidMessage {
                    what: "chat frame",
                    why: "the relay sent a thousand frames without answering the resume",
                });
            }
            self.resume.held.push(frame);
            return Ok(None);
        }
        Ok(Some(frame))
    }

    /// The end of a page of the answer. Below this connection's join, the
    /// member asks for the next page; at the last, the held live frames are
    /// shown, but not those the answer carried already.
    fn resumed(
        &mut self,
        after: u64,
        upto: u64,
        complete: bool,
        now_ms: u64,
        out: &mut Vec<ChatEvent>,
    ) -> Result<(), InvalidMessage> {
        if self.resume.asked != Some(after) {
            return Err(InvalidMessage { what: "chat frame", why: "a Resumed this member did not ask for" });
        }
        self.resume.missed |= !complete;
        // A page: the relay keeps more before this connection's join. Ask
        // for the rest from where it ended (it only ever moves forward).
        if upto > after && upto < self.resume.until {
            self.resume.answered.clear();
            self.resume.first.get_or_insert(after);
            self.resume.asked = Some(upto);
            self.resume.request = Some(Frame::Resume { after: upto });
            return Ok(());
        }
        self.resume.asked = None;
        let first = self.resume.first.take().unwrap_or(after);
        out.push(ChatEvent::Resumed {
            after: first,
            upto,
            complete: !std::mem::take(&mut self.resume.missed),
            caught_up: std::mem::take(&mut self.resume.shown),
        });
        let answered = std::mem::take(&mut self.resume.answered);
        for frame in std::mem::take(&mut self.resume.held) {
            match (&frame, live_room_seq(&frame)) {
                (Frame::Deliver { .. } | Frame::Guest { .. }, Some(room_seq))
                    if answered.contains(&room_seq) =>
                {
                    // Shown from the answer already; still a number of the room's order.
                    self.order.check(room_seq, out);
                }
                _ => out.extend(self.receive(frame, now_ms)?),
            }
        }
        Ok(())
    }

    /// Whether a history frame of `room_seq` was seen already (on this
    /// connection or an earlier one): it is dropped, not shown twice.
    /// Otherwise it is noted as seen.
    fn seen_before(&mut self, room_seq: u64) -> Result<bool, InvalidMessage> {
        if room_seq == 0 {
            return Ok(false);
        }
        if self.contacts.room_seq().is_some_and(|seen| room_seq <= seen) {
            return Ok(true);
        }
        if self.resume.asked.is_some() {
            if self.resume.answered.len() >= MAX_ANSWER {
                return Err(InvalidMessage {
                    what: "chat frame",
                    why: "an answer to a resume longer than any relay sends",
                });
            }
            self.resume.answered.insert(room_seq);
        }
        Ok(false)
    }

    /// What this member remembered of the room from earlier sessions.
    pub fn with_contacts(mut self, contacts: Contacts) -> Self {
        self.contacts = contacts;
        self
    }

    /// What this member remembers: the driver saves it when it is dirty.
    pub fn contacts(&self) -> &Contacts {
        &self.contacts
    }

    /// The same, to change (`/verify`) or to mark saved.
    pub(crate) fn contacts_mut(&mut self) -> &mut Contacts {
        &mut self.contacts
    }

    /// Our key.
    pub fn public_key(&self) -> [u8; 32] {
        self.me
    }

    /// Signs a message and returns its [`Frame::Post`] and the event that
    /// says it was sent. `to` names the recipient of a private message.
    pub fn compose(
        &mut self,
        kind: Kind,
        text: &str,
        to: Option<&str>,
        now_ms: u64,
    ) -> Result<(Frame, ChatEvent), ComposeError> {
        let recipient = match to {
            Some(name) => Some(self.recipient(name)?),
            None => None,
        };
        let (signed, seq) = self.sign(kind, text, recipient, now_ms)?;
        let kind = if recipient.is_some() { Kind::Private } else { kind };
        let frame = Frame::Post { signed };
        let event = ChatEvent::Sent {
            seq,
            kind,
            to: to.map(str::to_owned),
            text: text.to_owned(),
            acked: true,
            e2e: false,
        };
        Ok((frame, event))
    }

    /// Signs a message in its channel: the bytes and its `seq`.
    fn sign(
        &mut self,
        kind: Kind,
        text: &str,
        recipient: Option<[u8; 32]>,
        now_ms: u64,
    ) -> Result<(Vec<u8>, u64), ComposeError> {
        let kind = if recipient.is_some() { Kind::Private } else { kind };
        let (last, prev) = self.sent.get(&recipient).copied().unwrap_or((0, [0; 32]));
        let fields = Fields {
            room: self.room,
            author: self.me,
            session: self.session,
            seq: last + 1,
            prev,
            time_ms: now_ms,
            kind,
            recipient,
            text: text.to_owned(),
        };
        let signed = fields.sign(&self.key)?;
        self.sent.insert(recipient, (fields.seq, chain_hash(&signed)));
        Ok((signed, fields.seq))
    }

    /// `/verify NAME`: marks the contact verified (the driver saves it) and
    /// gives both safety numbers, for the user to compare out of band.
    pub(crate) fn verify(&mut self, name: &str) -> Result<ChatEvent, ComposeError> {
        let contact = self.contacts.get(name).ok_or_else(|| ComposeError::NotAContact(name.to_owned()))?;
        if contact.changed_to.is_some() {
            return Err(ComposeError::KeyChanged(contact.name.clone()));
        }
        let contact = self.contacts.verify(name).ok_or_else(|| ComposeError::NotAContact(name.to_owned()))?;
        Ok(ChatEvent::Verified {
            name: contact.name.clone(),
            mine: Fingerprint::of_ed25519(&self.me),
            theirs: Fingerprint::of_ed25519(&contact.key),
        })
    }

    /// `/ignore NAME`: what the name's key (or a guest of that name) says
    /// is not shown for the rest of this session; it is still checked.
    pub(crate) fn ignore(&mut self, name: &str) -> Result<ChatEvent, ComposeError> {
        let key =
            self.contacts.get(name).map(|c| c.key).or_else(|| self.listed.get(&name_key(name)).copied());
        match key {
            Some(key) if key == self.me => return Err(ComposeError::UnknownName(name.to_owned())),
            Some(key) => {
                self.ignored.insert(key);
            }
            None if name.starts_with("guest-") => {
                self.ignored_guests.insert(name_key(name));
            }
            None => return Err(ComposeError::UnknownName(name.to_owned())),
        }
        Ok(ChatEvent::Ignoring { name: name.to_owned() })
    }

    /// The key a private message to `name` goes to: a contact's key, else
    /// the key the relay listed; refused while the contact's key changed.
    fn recipient(&self, name: &str) -> Result<[u8; 32], ComposeError> {
        if let Some(contact) = self.contacts.get(name) {
            if contact.changed_to.is_some() {
                return Err(ComposeError::KeyChanged(contact.name.clone()));
            }
            return Ok(contact.key);
        }
        self.listed.get(&name_key(name)).copied().ok_or_else(|| ComposeError::UnknownName(name.to_owned()))
    }

    /// Checks a frame from the relay at `now_ms` (Unix ms, this member's
    /// clock); a frame only members send is an error.
    pub fn receive(&mut self, frame: Frame, now_ms: u64) -> Result<Vec<ChatEvent>, InvalidMessage> {
        let mut out = Vec::new();
        let Some(frame) = self.resuming(frame)? else { return Ok(out) };
        match frame {
            Frame::Welcome { name, room_seq, history, e2e } => {
                self.order.remember(room_seq);
                self.listed.insert(name_key(&name), self.me);
                self.name = Some(name.clone());
                let first = self.joined_ms.is_none();
                self.joined_ms.get_or_insert(now_ms);
                out.push(ChatEvent::Welcome { name, history, e2e });
                self.room_mode(e2e, &mut out);
                self.start_resume(room_seq, history, &mut out);
                if first {
                    self.publish(e2e::KEY_PACKAGES, &mut out);
                }
            }
            Frame::Deliver { room_seq, flags: f, author, .. } if self.e2e_room() => {
                // Nothing of an end-to-end room comes in clear.
                if f & flags::HISTORY == 0 && f & flags::PRIVATE == 0 {
                    self.order.check(room_seq, &mut out);
                }
                let why = "a line in clear in an end-to-end room: not shown".to_owned();
                out.push(ChatEvent::E2eRefused { from: author, why });
            }
            Frame::Deliver { room_seq, flags: f, author, signed } => {
                let history = f & flags::HISTORY != 0;
                let said_private = f & flags::PRIVATE != 0;
                if history && self.seen_before(room_seq)? {
                    return Ok(out);
                }
                let shown = out.len();
                self.deliver(room_seq, history, said_private, author, &signed, now_ms, &mut out, None, None);
                if room_seq != 0 {
                    self.contacts.saw_room_seq(room_seq);
                }
                if history && self.resume.asked.is_some() {
                    self.resume.shown +=
                        out[shown..].iter().filter(|e| matches!(e, ChatEvent::Message(_))).count() as u64;
                }
            }
            Frame::Ack { room_seq, seq, private } => {
                if !private {
                    self.order.check(room_seq, &mut out);
                    self.contacts.saw_room_seq(room_seq);
                    self.room_acked(seq);
                }
                out.push(ChatEvent::Delivered { seq, private, room_seq });
            }
            Frame::Resumed { after, upto, complete } => {
                self.resumed(after, upto, complete, now_ms, &mut out)?
            }
            Frame::Presence { room_seq, joined, member, reason } => {
                let waiting = self.e2e_room() && self.e2e_epoch().is_none();
                let fresh =
                    if waiting { self.order.follow(room_seq) } else { self.order.check(room_seq, &mut out) };
                if !fresh {
                    return Ok(out);
                }
                self.room_presence(member.key, joined, &mut out);
                self.listen(&member, &mut out);
                if !joined {
                    self.pair_left(member.key, &mut out);
                }
                out.push(ChatEvent::Presence { joined, member, reason });
            }
            Frame::Guest { room_seq, flags: f, name, text } => {
                let history = f & flags::HISTORY != 0;
                if history && self.seen_before(room_seq)? {
                    return Ok(out);
                }
                if !history && !self.order.check(room_seq, &mut out) {
                    return Ok(out);
                }
                self.contacts.saw_room_seq(room_seq);
                if history && self.resume.asked.is_some() {
                    self.resume.shown += 1;
                }
                if !self.ignored_guests.contains(&name_key(&name)) {
                    out.push(ChatEvent::Guest { room_seq, history, name, text });
                }
            }
            Frame::Roster { total, last, members } => {
                // A long list comes in several frames: one event for all.
                if self.roster.len() + members.len() > MAX_ROSTER {
                    return Err(InvalidMessage {
                        what: "chat frame",
                        why: "a member list longer than any room",
                    });
                }
                for member in &members {
                    self.listen(member, &mut out);
                    if member.standing != Standing::Guest {
                        self.room_presence(member.key, true, &mut out);
                    }
                }
                self.roster.extend(members);
                if last {
                    out.push(ChatEvent::Roster { total, members: std::mem::take(&mut self.roster) });
                }
            }
            Frame::Refused { code, text } => out.push(ChatEvent::Refused { code, text }),
            Frame::KeyPackage { key, package } => self.key_package(key, &package, now_ms, &mut out),
            Frame::Sealed { room_seq: _, from, key, message } => {
                self.sealed(from, key, &message, now_ms, &mut out)
            }
            Frame::PackagesLeft { left } => {
                let left = usize::from(left);
                if left < e2e::KEY_PACKAGES / 2 {
                    self.publish(e2e::KEY_PACKAGES - left, &mut out);
                }
            }
            Frame::GroupTask { epoch, create, add, remove } => {
                self.group_task(epoch, create, add, remove, now_ms, &mut out)
            }
            Frame::GroupCommitted { room_seq, from, key, epoch, adds, removes, commit } => {
                self.group_committed(room_seq, from, key, epoch, adds, removes, &commit, &mut out)
            }
            Frame::GroupWelcome { room_seq, from, key, index, count, welcome } => {
                self.group_welcome_piece(room_seq, from, key, index, count, &welcome, now_ms, &mut out)
            }
            Frame::GroupMessage { room_seq, from, key, message } => {
                self.group_message(room_seq, from, key, &message, now_ms, &mut out)
            }
            Frame::GroupRetry { epoch, seq } => self.group_retry(epoch, seq, &mut out),
            Frame::Post { .. }
            | Frame::GroupCommit { .. }
            | Frame::GroupSend { .. }
            | Frame::GroupWelcomePiece { .. }
            | Frame::Who
            | Frame::Resume { .. }
            | Frame::Publish { .. }
            | Frame::Fetch { .. }
            | Frame::Seal { .. } => {
                return Err(InvalidMessage { what: "chat frame", why: "a member's frame sent by the relay" });
            }
        }
        self.maybe_update(now_ms, &mut out);
        Ok(out)
    }

    /// Commits a fresh leaf in the end-to-end room's group if it is time:
    /// the driver calls it now and then (it is also checked on each frame).
    pub(crate) fn tick(&mut self, now_ms: u64) -> Vec<ChatEvent> {
        let mut out = Vec::new();
        self.maybe_update(now_ms, &mut out);
        out
    }

    /// Takes note of a member the relay lists: its key addresses `/msg`
    /// until a verified signature says otherwise. The relay's word binds
    /// nothing, but a listed key that is not a contact's is told.
    fn listen(&mut self, member: &MemberInfo, out: &mut Vec<ChatEvent>) {
        if member.standing == Standing::Guest {
            return;
        }
        if let Some(contact) = self.contacts.get(&member.name)
            && contact.key != member.key
            && contact.changed_to != Some(member.key)
        {
            out.push(ChatEvent::KeyChanged {
                name: member.name.clone(),
                was: Fingerprint::of_ed25519(&contact.key),
                now: Fingerprint::of_ed25519(&member.key),
            });
        }
        if self.listed.len() < MAX_LISTED || self.listed.contains_key(&name_key(&member.name)) {
            self.listed.insert(name_key(&member.name), member.key);
        }
    }

    /// What this member knows of `name` with `key`, from its contacts;
    /// learns the binding when `learn` (a verified signature) and it is new.
    fn check_name(
        &mut self,
        name: &str,
        key: [u8; 32],
        learn: bool,
        now_ms: u64,
        out: &mut Vec<ChatEvent>,
    ) -> AuthorCheck {
        // Our own name and key are known without a contact.
        if let Some(me) = self.name.as_deref() {
            match (name_key(name) == name_key(me), key == self.me) {
                (true, true) => return AuthorCheck::Known,
                (true, false) => return AuthorCheck::Changed { was: Fingerprint::of_ed25519(&self.me) },
                (false, true) => return AuthorCheck::OtherName { known_as: me.to_owned() },
                (false, false) => {}
            }
        }
        if let Some(contact) = self.contacts.get(name) {
            if contact.key != key {
                let was = Fingerprint::of_ed25519(&contact.key);
                if learn {
                    self.contacts.changed(name, key);
                }
                return AuthorCheck::Changed { was };
            }
            return if contact.verified {
                AuthorCheck::Verified
            } else if self.learned_here.contains(&key) {
                AuthorCheck::FirstSeen
            } else {
                AuthorCheck::Known
            };
        }
        if let Some(other) = self.contacts.by_key(&key) {
            return AuthorCheck::OtherName { known_as: other.name.clone() };
        }
        // A look-alike of a contact says most: whose name it imitates.
        if let Some(contact) = self.contacts.look_alike(name) {
            return AuthorCheck::LookAlike { of: contact.name.clone() };
        }
        if let Err(why) = super::name::check(name) {
            return AuthorCheck::BadName { why: why.to_string() };
        }
        if learn && key != self.me && self.contacts.learn(name, key, now_ms) {
            self.learned_here.insert(key);
            out.push(ChatEvent::Learned { name: name.to_owned(), key: Fingerprint::of_ed25519(&key) });
        }
        AuthorCheck::FirstSeen
    }

    /// When a live message was signed, against what this member knows.
    fn staleness(&mut self, id: SessionId, seq: u64, time_ms: u64, now_ms: u64) -> Option<Stale> {
        // What earlier sessions read of it: the mark as it was before this
        // session first touched it (this session's own reading is the
        // chain's business).
        if self.read_before.len() >= MAX_CHAINS && !self.read_before.contains_key(&id) {
            self.read_before.clear();
        }
        let before =
            *self.read_before.entry(id).or_insert_with(|| self.contacts.session(&id).map_or(0, |m| m.seq));
        if seq <= before {
            return Some(Stale::EarlierSession);
        }
        if self.joined_ms.is_some_and(|joined| time_ms.saturating_add(BEFORE_JOIN_MS) < joined) {
            return Some(Stale::BeforeJoin);
        }
        (time_ms.abs_diff(now_ms) > SKEW_MS).then_some(Stale::Skewed)
    }

    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        room_seq: u64,
        history: bool,
        said_private: bool,
        from: String,
        bytes: &[u8],
        now_ms: u64,
        out: &mut Vec<ChatEvent>,
        sealed_by: Option<Sealer>,
        sealed: Option<Arc<[u8]>>,
    ) {
        let signed = match Signed::open(bytes) {
            Ok(signed) => signed,
            Err(e) => {
                // Still a frame of the room's order: a malformed message
                // must not hide a gap or a repeat.
                if !history && !said_private {
                    self.order.check(room_seq, out);
                }
                out.push(ChatEvent::Malformed { from, why: e.to_string() });
                return;
            }
        };
        let f = signed.fields();
        if let Some(sealer) = sealed_by {
            // End to end, the MLS sender (the key the relay says sent it,
            // which MLS authenticated) must be the author, writing to us.
            let why = if f.author != sealer.key {
                Some("an end-to-end message whose signed author is not the member who sealed it")
            } else if sealer.room && f.recipient.is_some() {
                Some("a private message sealed as a line of the end-to-end room")
            } else if !sealer.room && f.recipient != Some(self.me) {
                Some("an end-to-end message signed for someone else")
            } else {
                None
            };
            if let Some(why) = why {
                out.push(ChatEvent::Malformed { from, why: why.to_owned() });
                return;
            }
        }
        // What the author signed decides, never the relay's flag.
        let private = f.recipient.is_some();
        let mislabeled = private != said_private;
        if !history && !private {
            // A repeated room_seq is told; the chain below tells whose it was.
            self.order.check(room_seq, out);
        }
        let sig = if !signed.valid() {
            SigCheck::Invalid
        } else if f.room != self.room {
            SigCheck::OtherRoom
        } else if f.recipient.is_some_and(|to| to != self.me) {
            SigCheck::NotForMe
        } else {
            SigCheck::Valid
        };
        // What checking the name tells (a binding learned) follows the message.
        let told_before = out.len();
        let (mut missing_before, mut chain_broken, mut late, mut stale) = (0, false, false, None);
        let author = if sig == SigCheck::Valid {
            let id = (f.author, f.session, f.recipient);
            let hash = signed.hash();
            match self.chains.get(&id).map(|chain| (chain.place(f.seq), chain.hash)) {
                Some((Place::Seen, _)) => {
                    out.push(ChatEvent::Replay { from, seq: f.seq });
                    return;
                }
                Some((Place::Late, _)) => late = true,
                Some((Place::Ahead { missing }, last_hash)) => {
                    let last = f.seq - missing - 1;
                    // Each place once: two invalid copies claiming one
                    // place must not hide another place's gap.
                    let shown_invalid = self
                        .claimed_invalid
                        .iter()
                        .filter(|(c, n)| *c == id && *n > last && *n < f.seq)
                        .map(|(_, n)| *n)
                        .collect::<HashSet<u64>>()
                        .len() as u64;
                    missing_before = missing.saturating_sub(shown_invalid);
                    chain_broken = missing == 0 && f.prev != last_hash;
                }
                None => self.start_chain(id, f.seq, hash),
            }
            if let Some(chain) = self.chains.get_mut(&id) {
                chain.take(f.seq, hash);
            }
            let session = (f.author, f.session, private);
            if !history {
                stale = self.staleness(session, f.seq, f.time_ms, now_ms);
                // A replay is a replay: not also a late message.
                late &= stale != Some(Stale::EarlierSession);
            }
            if f.author != self.me {
                self.contacts.read_up_to(session, f.seq, f.time_ms);
            }
            self.check_name(&from, f.author, true, now_ms, out)
        } else {
            // Its place is noted only so that the author's next message
            // does not count it missing: it came, and is shown as invalid.
            if self.claimed_invalid.len() >= CLAIMED_INVALID {
                self.claimed_invalid.pop_front();
            }
            self.claimed_invalid.push_back(((f.author, f.session, f.recipient), f.seq));
            // A message that does not verify teaches nothing about anyone.
            self.check_name(&from, f.author, false, now_ms, out)
        };
        out.push(ChatEvent::Message(Box::new(Received {
            room_seq,
            history,
            private,
            from,
            key: Fingerprint::of_ed25519(&f.author),
            kind: f.kind,
            text: f.text.clone(),
            time_ms: f.time_ms,
            seq: f.seq,
            sig,
            author,
            missing_before,
            chain_broken,
            late,
            stale,
            mislabeled,
            signed: Arc::from(bytes),
            e2e: sealed_by.is_some(),
            sealed,
        })));
        out[told_before..].rotate_right(1);
        if sig == SigCheck::Valid && self.ignored.contains(&f.author) {
            // Checked like any other, but not shown.
            out.remove(told_before);
        }
    }

    /// Follows a new chain, forgetting the oldest beyond [`MAX_CHAINS`].
    fn start_chain(&mut self, id: ChainId, seq: u64, hash: [u8; 32]) {
        if self.chains.len() >= MAX_CHAINS
            && let Some(old) = self.chain_order.pop_front()
        {
            self.chains.remove(&old);
        }
        self.chains.insert(id, Chain { last: seq, hash, below: 0 });
        self.chain_order.push_back(id);
    }
}
