//! A member's side of the chat protocol: signs what its user writes, and
//! checks everything the relay delivers.
//!
//! Every message is verified over the bytes received. Per author, session
//! and channel the member keeps the last sequence number and chain hash, so
//! it notices a replay (shown once, flagged), a gap ("N messages from alice
//! missing") and a broken chain; per room it keeps the relay's sequence
//! number, so it notices frames the relay dropped. It remembers which key
//! each name had, and says loudly when a name comes back with another key.

use std::collections::HashMap;
use std::sync::Arc;

use crate::identity::public_key_fingerprint;
use crate::tls::codec::InvalidMessage;
use crate::tls::{Ed25519Key, Fingerprint, Rng};

use super::frame::{Frame, MemberInfo, RefusalCode, Standing, flags};
use super::message::{Fields, Kind, MessageError, Signed, chain_hash};

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
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Invalid => "invalid",
            Self::OtherRoom => "other-room",
            Self::NotForMe => "not-for-me",
        }
    }
}

/// What the member knows of the author's key under that name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorCheck {
    /// The key this member has seen under that name before.
    Known,
    /// The first time this member sees the name.
    FirstSeen,
    /// The name had another key before: someone else, or a new key.
    Changed {
        /// The key it had.
        was: Fingerprint,
    },
}

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
    pub key: Fingerprint,
    /// What it is.
    pub kind: Kind,
    /// The text as the author wrote it (escape it before printing).
    pub text: String,
    /// The author's clock, Unix milliseconds.
    pub time_ms: u64,
    /// The author's sequence number.
    pub seq: u64,
    /// The signature.
    pub sig: SigCheck,
    /// The author's key under that name.
    pub author: AuthorCheck,
    /// Messages of this author's channel that never arrived before this one.
    pub missing_before: u64,
    /// `prev` is not the hash of the author's previous message.
    pub chain_broken: bool,
    /// The signed bytes, as received.
    pub signed: Arc<[u8]>,
}

/// What a message's checks add up to, for showing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Signed by the key known under the name (or first seen with it).
    Verified,
    /// Signed, but the name had another key before.
    KeyChanged,
    /// Not to be trusted: see [`Received::sig`] for why.
    Invalid,
}

impl Received {
    /// What the checks add up to.
    pub fn verdict(&self) -> Verdict {
        match (self.sig, self.author) {
            (SigCheck::Valid, AuthorCheck::Changed { .. }) => Verdict::KeyChanged,
            (SigCheck::Valid, _) => Verdict::Verified,
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
    /// A delivered message that is not a signed message at all.
    Malformed {
        /// The name the relay gave its author.
        from: String,
        /// What is wrong.
        why: String,
    },
}

/// Why a line could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ComposeError {
    /// Too long.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// `/msg` to a name this member has not seen in the room.
    #[error("no member named {0} is known here (/who lists who is in)")]
    UnknownName(String),
}

/// A channel: the room, or one recipient's key.
type Channel = Option<[u8; 32]>;

/// Whose messages a chain holds: author key, session, channel.
type ChainId = ([u8; 32], [u8; 16], Channel);

/// Where a chain stands: its last sequence number and message hash.
type ChainEnd = (u64, [u8; 32]);

/// The member's state.
pub struct Member {
    room: [u8; 32],
    key: Ed25519Key,
    me: [u8; 32],
    session: [u8; 16],
    /// Our last sequence number and message hash per channel.
    sent: HashMap<Channel, ChainEnd>,
    /// Each author's last sequence number and hash, per session and channel.
    chains: HashMap<ChainId, ChainEnd>,
    /// The key first seen under each name (lower case).
    names: HashMap<String, [u8; 32]>,
    /// The last room sequence number seen live.
    room_seq: Option<u64>,
    /// A member list arriving in several frames.
    roster: Vec<MemberInfo>,
}

/// The longest member list a member accepts: more than any room holds.
const MAX_LISTED: usize = 1_000_000;

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member").field("me", &public_key_fingerprint(&self.me)).finish_non_exhaustive()
    }
}

impl Member {
    /// A member of room `room` (the server key's fingerprint) who signs
    /// with `key`; the session id is drawn from `rng`.
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
            names: HashMap::new(),
            room_seq: None,
            roster: Vec::new(),
        }
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
            Some(name) => Some(
                *self
                    .names
                    .get(&name.to_ascii_lowercase())
                    .ok_or_else(|| ComposeError::UnknownName(name.to_owned()))?,
            ),
            None => None,
        };
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
        let frame = Frame::Post { signed };
        let event = ChatEvent::Sent {
            seq: fields.seq,
            kind,
            to: to.map(str::to_owned),
            text: text.to_owned(),
            acked: true,
        };
        Ok((frame, event))
    }

    /// Checks a frame from the relay; a frame only members send is an error.
    pub fn receive(&mut self, frame: Frame) -> Result<Vec<ChatEvent>, InvalidMessage> {
        let mut out = Vec::new();
        match frame {
            Frame::Welcome { name, room_seq, history } => {
                self.room_seq = Some(room_seq);
                self.names.insert(name.to_ascii_lowercase(), self.me);
                out.push(ChatEvent::Welcome { name, history });
            }
            Frame::Deliver { room_seq, flags: f, author, signed } => {
                let history = f & flags::HISTORY != 0;
                let private = f & flags::PRIVATE != 0;
                if !history && !private {
                    // A frame the relay sends twice is caught by the author's
                    // chain below, which also tells whose it was.
                    self.in_order(room_seq, &mut out);
                }
                self.deliver(room_seq, history, private, author, &signed, &mut out);
            }
            Frame::Ack { room_seq, seq, private } => {
                if !private {
                    self.in_order(room_seq, &mut out);
                }
                out.push(ChatEvent::Delivered { seq, private, room_seq });
            }
            Frame::Presence { room_seq, joined, member, reason } => {
                self.in_order(room_seq, &mut out);
                self.learn(&member, &mut out);
                out.push(ChatEvent::Presence { joined, member, reason });
            }
            Frame::Guest { room_seq, flags: f, name, text } => {
                let history = f & flags::HISTORY != 0;
                if !history && !self.in_order(room_seq, &mut out) {
                    return Ok(out);
                }
                out.push(ChatEvent::Guest { room_seq, history, name, text });
            }
            Frame::Roster { total, last, members } => {
                for member in &members {
                    self.learn(member, &mut out);
                }
                // A long list comes in several frames: one event for all.
                if self.roster.len() + members.len() > MAX_LISTED {
                    return Err(InvalidMessage {
                        what: "chat frame",
                        why: "a member list longer than any room",
                    });
                }
                self.roster.extend(members);
                if last {
                    out.push(ChatEvent::Roster { total, members: std::mem::take(&mut self.roster) });
                }
            }
            Frame::Refused { code, text } => out.push(ChatEvent::Refused { code, text }),
            Frame::Post { .. } | Frame::Who => {
                return Err(InvalidMessage { what: "chat frame", why: "a member's frame sent by the relay" });
            }
        }
        Ok(out)
    }

    /// Checks the relay's sequence number; false for one already seen.
    /// Compared with the last one seen, never with `last + 1`: the relay is
    /// not trusted, and a room_seq of u64::MAX must not overflow.
    fn in_order(&mut self, room_seq: u64, out: &mut Vec<ChatEvent>) -> bool {
        if let Some(last) = self.room_seq {
            if room_seq <= last {
                return false;
            }
            let missing = room_seq - last - 1;
            if missing > 0 {
                out.push(ChatEvent::RelayGap { missing });
            }
        }
        self.room_seq = Some(room_seq);
        true
    }

    /// Remembers the key of a verified member's name, flagging a change.
    fn learn(&mut self, member: &MemberInfo, out: &mut Vec<ChatEvent>) {
        if member.standing == Standing::Guest {
            return;
        }
        if let AuthorCheck::Changed { was } = self.check_name(&member.name, member.key) {
            out.push(ChatEvent::KeyChanged {
                name: member.name.clone(),
                was,
                now: public_key_fingerprint(&member.key),
            });
        }
    }

    /// What we know of `name`'s key; remembers it if it is new.
    fn check_name(&mut self, name: &str, key: [u8; 32]) -> AuthorCheck {
        match self.names.get(&name.to_ascii_lowercase()) {
            Some(known) if *known == key => AuthorCheck::Known,
            Some(known) => AuthorCheck::Changed { was: public_key_fingerprint(known) },
            None => {
                self.names.insert(name.to_ascii_lowercase(), key);
                AuthorCheck::FirstSeen
            }
        }
    }

    fn deliver(
        &mut self,
        room_seq: u64,
        history: bool,
        private: bool,
        from: String,
        bytes: &[u8],
        out: &mut Vec<ChatEvent>,
    ) {
        let signed = match Signed::open(bytes) {
            Ok(signed) => signed,
            Err(e) => {
                out.push(ChatEvent::Malformed { from, why: e.to_string() });
                return;
            }
        };
        let f = signed.fields();
        let sig = if !signed.valid() {
            SigCheck::Invalid
        } else if f.room != self.room {
            SigCheck::OtherRoom
        } else if private != f.recipient.is_some() || f.recipient.is_some_and(|to| to != self.me) {
            SigCheck::NotForMe
        } else {
            SigCheck::Valid
        };
        let (mut missing_before, mut chain_broken) = (0, false);
        let author = if sig == SigCheck::Valid {
            let chain = (f.author, f.session, f.recipient);
            match self.chains.get(&chain) {
                Some(&(last, _)) if f.seq <= last => {
                    out.push(ChatEvent::Replay { from, seq: f.seq });
                    return;
                }
                Some(&(last, hash)) => {
                    missing_before = f.seq - last - 1;
                    chain_broken = missing_before == 0 && f.prev != hash;
                }
                None => {}
            }
            self.chains.insert(chain, (f.seq, signed.hash()));
            self.check_name(&from, f.author)
        } else {
            // A message that does not verify teaches nothing about anyone.
            match self.names.get(&from.to_ascii_lowercase()) {
                Some(known) if *known == f.author => AuthorCheck::Known,
                Some(known) => AuthorCheck::Changed { was: public_key_fingerprint(known) },
                None => AuthorCheck::FirstSeen,
            }
        };
        out.push(ChatEvent::Message(Box::new(Received {
            room_seq,
            history,
            private,
            from,
            key: public_key_fingerprint(&f.author),
            kind: f.kind,
            text: f.text.clone(),
            time_ms: f.time_ms,
            seq: f.seq,
            sig,
            author,
            missing_before,
            chain_broken,
            signed: Arc::from(bytes),
        })));
    }
}
