//! The frames of the chat protocol (ALPN `tlschat/1`), and the buffer that
//! cuts a stream of application data into them.
//!
//! A frame is `type (1 byte) | length (3 bytes, big-endian) | body`, with
//! the body at most `MAX_FRAME` bytes. Bodies use the TLS presentation
//! language, read with the engine's `Reader`: fixed-width big-endian
//! integers and length-prefixed vectors, trailing bytes refused.
//! `docs/PROTOCOL.md` lists every frame and field.

use super::codes::code_table;
use crate::tls::codec::{self, InvalidMessage, Reader};

/// The largest frame body. A signed message at its longest, its envelope
/// and a name fit with room to spare.
pub(crate) const MAX_FRAME: usize = 16 * 1024;
/// A frame's header: type and length.
pub(crate) const HEADER: usize = 4;
/// The most members one roster frame lists: a longer list takes several
/// frames, each well under [`MAX_FRAME`] (a member takes at most 296 bytes).
pub(crate) const MAX_ROSTER: usize = 50;

/// The most key packages one [`Frame::Publish`] carries, and the most the
/// relay keeps for one seat.
pub(crate) const MAX_PUBLISHED: usize = 8;
/// The longest key package the relay keeps (a real one, 0x0003 with a basic
/// credential, is about 300 bytes).
pub(crate) const MAX_KEY_PACKAGE: usize = 2048;
/// The longest MLS message a [`Frame::Seal`] may carry: its [`Frame::Sealed`],
/// with the longest name, still fits a frame.
pub(crate) const MAX_SEALED: usize = MAX_FRAME - (8 + 1 + 255 + 32 + 2);

/// The most keys one [`Frame::GroupTask`] adds (each with its key package)
/// or removes, and one [`Frame::GroupCommit`] declares.
pub(crate) const MAX_GROUP_CHANGES: usize = 4;
/// The longest MLS message a [`Frame::GroupSend`] may carry: its
/// [`Frame::GroupMessage`], with the longest name, still fits a frame.
pub(crate) const MAX_GROUP_MESSAGE: usize = MAX_FRAME - (8 + 1 + 255 + 32 + 2);

/// Flags on a [`Frame::Welcome`].
pub(crate) mod welcome_flags {
    /// The room is end to end (`listen --e2e`): one MLS group, members
    /// only, no history.
    pub(crate) const E2E: u8 = 1;
}

code_table! {
    /// How a member takes part, as the relay tells others.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Standing {
        /// Proved its key in the TLS handshake; the name is bound to that key.
        Verified = 0 => "verified",
        /// No key: a guest (`openssl s_client`, `nc`-style tools). Its lines
        /// are unsigned.
        Guest = 1 => "guest",
        /// The room's host, chatting from `tlschat listen` itself.
        Host = 2 => "host",
    }
}

/// A member as the relay describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// The display name (bound to `key` for verified members and the host).
    pub name: String,
    /// How it takes part.
    pub standing: Standing,
    /// Its identity key; zeros for a guest.
    pub key: [u8; 32],
    /// Seconds since it last posted (or joined).
    pub idle_secs: u32,
}

code_table! {
    /// Why a post was refused, told to its author only.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum RefusalCode {
        /// The text is over the limit.
        TooLong = 1 => "TooLong",
        /// Too many messages too fast.
        RateLimited = 2 => "RateLimited",
        /// No member by that name (`/msg`).
        NoSuchMember = 3 => "NoSuchMember",
        /// The message does not verify, or is not this member's or this room's.
        BadMessage = 4 => "BadMessage",
        /// The room is full.
        RoomFull = 5 => "RoomFull",
        /// The member is being disconnected (too slow, flooding).
        Disconnected = 6 => "Disconnected",
    }
}

/// Reads a flags byte; a bit outside `known` makes the frame malformed.
fn flag_bits(r: &mut Reader<'_>, known: u8) -> Result<u8, InvalidMessage> {
    let bits = r.u8()?;
    if bits & !known != 0 {
        return Err(r.invalid("unknown flag bits"));
    }
    Ok(bits)
}

/// Flags on a [`Frame::Deliver`] (both) and [`Frame::Guest`] (history only).
pub mod flags {
    /// Replayed history, sent on joining.
    pub const HISTORY: u8 = 1;
    /// For this member only.
    pub(crate) const PRIVATE: u8 = 2;
}

/// One frame of the chat protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Member to relay: a signed message (see [`super::message`]).
    Post {
        /// The signed message's bytes.
        signed: Vec<u8>,
    },
    /// Member to relay: who is here?
    Who,
    /// Member to relay, right after its Welcome: send me every room frame
    /// after `after` (the last room sequence number this member saw, on an
    /// earlier connection). Answered once per connection, with those frames
    /// flagged as history and a [`Frame::Resumed`].
    Resume {
        /// The last room sequence number the member saw.
        after: u64,
    },
    /// Member to relay: key packages (MLS, RFC 9420) for others to add
    /// this member to end-to-end groups, each an MLSMessage; kept by the
    /// relay for this seat, each handed out once.
    Publish {
        /// At most `MAX_PUBLISHED`.
        packages: Vec<Vec<u8>>,
    },
    /// Member to relay: one key package of the member with this key,
    /// please (to start an end-to-end group with it).
    Fetch {
        /// Whose.
        key: [u8; 32],
    },
    /// Member to relay: an MLS message (a Welcome, or an encrypted
    /// PrivateMessage) for the member with this key. The relay cannot
    /// read it.
    Seal {
        /// The recipient's identity key.
        to: [u8; 32],
        /// The sequence number of the signed message inside, for the
        /// relay's `Ack`; 0 for a handshake message (no `Ack`).
        seq: u64,
        /// The MLSMessage.
        message: Vec<u8>,
    },
    /// Relay to member, first: you are in.
    Welcome {
        /// The name the room knows you by.
        name: String,
        /// The room sequence number of your own join: the next live frame
        /// carries the one after it.
        room_seq: u64,
        /// How many history frames follow.
        history: u16,
        /// The room is end to end (`welcome_flags::E2E`).
        e2e: bool,
    },
    /// Relay to member: a signed message, unchanged, in the relay's order.
    Deliver {
        /// The relay's sequence number (0 on a private message, which is
        /// outside the room's order).
        room_seq: u64,
        /// [`flags`].
        flags: u8,
        /// The name the relay binds to the author's key.
        author: String,
        /// The author's bytes, as the author signed them.
        signed: Vec<u8>,
    },
    /// Relay to author: your message with this sequence number is in the room.
    Ack {
        /// Where in the room's order (0 for a private message).
        room_seq: u64,
        /// The author's sequence number.
        seq: u64,
        /// Whether it was private (its channel).
        private: bool,
    },
    /// Relay to member: someone joined or left.
    Presence {
        /// The relay's sequence number.
        room_seq: u64,
        /// Joined (true) or left.
        joined: bool,
        /// Who.
        member: MemberInfo,
        /// Why they left, if they did not leave by themselves.
        reason: String,
    },
    /// Relay to member: a guest's line (unsigned).
    Guest {
        /// The relay's sequence number.
        room_seq: u64,
        /// [`flags`].
        flags: u8,
        /// The guest's name, `guest-N`.
        name: String,
        /// The line.
        text: String,
    },
    /// Relay to member: the answer to [`Frame::Who`] (all members, in as
    /// many frames as it takes), or the room on joining (the most recently
    /// active members, one frame).
    Roster {
        /// Members in the room in all, the asker included.
        total: u32,
        /// Whether this frame ends the list.
        last: bool,
        /// Members, at most `MAX_ROSTER`.
        members: Vec<MemberInfo>,
    },
    /// Relay to member: what you sent was refused.
    Refused {
        /// Why, for programs.
        code: RefusalCode,
        /// Why, for people.
        text: String,
    },
    /// Relay to member: the end of the answer to [`Frame::Resume`].
    Resumed {
        /// The `after` asked for.
        after: u64,
        /// The relay's last room sequence number when it answered, when the
        /// answer holds every kept room frame after `after`; otherwise (a
        /// page) the last one it holds, which the member asks again after.
        upto: u64,
        /// False when some room frames after `after` are older than what
        /// the relay keeps.
        complete: bool,
    },
    /// Relay to member: the answer to [`Frame::Fetch`].
    KeyPackage {
        /// Whose.
        key: [u8; 32],
        /// The key package, as its owner published it; empty when the
        /// relay has none for that key.
        package: Vec<u8>,
    },
    /// Relay to member: an MLS message from another member, unchanged.
    Sealed {
        /// The relay's sequence number (0 for a pair's message, outside
        /// the room's order).
        room_seq: u64,
        /// The name the relay binds to the sender's key.
        from: String,
        /// The sender's identity key, as its TLS handshake proved it.
        key: [u8; 32],
        /// The MLSMessage.
        message: Vec<u8>,
    },
    /// Relay to member: one of your key packages was handed out; this many
    /// are left (publish more before they run out).
    PackagesLeft {
        /// Key packages the relay still holds for this seat.
        left: u16,
    },
    /// Relay to member, in an end-to-end room: change the room's group
    /// (you are its committer): make it (`create`), add these members with
    /// the key packages they published, remove these.
    GroupTask {
        /// The group's epoch the commit must be made at (0 to create).
        epoch: u64,
        /// There is no group: make it, then add `add`.
        create: bool,
        /// Keys to add, each with one of its key packages.
        add: Vec<([u8; 32], Vec<u8>)>,
        /// Keys to remove.
        remove: Vec<[u8; 32]>,
    },
    /// Member to relay: a commit to the room's group at `epoch`, declaring
    /// whom it adds and removes (none: a self-Update), with the Welcome
    /// for those it adds (empty when none).
    GroupCommit {
        /// The epoch it was made at.
        epoch: u64,
        /// Keys it adds.
        adds: Vec<[u8; 32]>,
        /// Keys it removes.
        removes: Vec<[u8; 32]>,
        /// The MLS commit (a PrivateMessage).
        commit: Vec<u8>,
        /// The MLS Welcome, or empty.
        welcome: Vec<u8>,
    },
    /// Member to relay: a room line, signed then sealed in the room's
    /// group at `epoch`.
    GroupSend {
        /// The group's epoch it was sealed at.
        epoch: u64,
        /// The sequence number of the signed message inside, for the `Ack`.
        seq: u64,
        /// The MLS PrivateMessage.
        message: Vec<u8>,
    },
    /// Relay to member: a commit to the room's group, in the room's order.
    GroupCommitted {
        /// The relay's sequence number.
        room_seq: u64,
        /// The name the relay binds to the committer's key.
        from: String,
        /// The committer's key, as its TLS handshake proved it.
        key: [u8; 32],
        /// The epoch it was made at; the group is at `epoch + 1` after it.
        epoch: u64,
        /// Keys it says it adds.
        adds: Vec<[u8; 32]>,
        /// Keys it says it removes.
        removes: Vec<[u8; 32]>,
        /// The MLS commit.
        commit: Vec<u8>,
    },
    /// Relay to a member just added to the room's group: piece `index`
    /// of the `count` its MLS Welcome is cut in (see `super::pieces`).
    GroupWelcome {
        /// The relay's sequence number (the commit's), the same on every piece.
        room_seq: u64,
        /// The name the relay binds to the committer's key.
        from: String,
        /// The committer's key.
        key: [u8; 32],
        /// This piece's place, from 0.
        index: u8,
        /// How many pieces the Welcome is in.
        count: u8,
        /// The piece of the MLS Welcome.
        welcome: Vec<u8>,
    },
    /// Member to relay: piece `index` of the `count` the Welcome of the
    /// commit it sends next is cut in (see `super::pieces`); that
    /// [`Frame::GroupCommit`] then carries an empty `welcome`.
    GroupWelcomePiece {
        /// The epoch the commit is made at.
        epoch: u64,
        /// This piece's place, from 0.
        index: u8,
        /// How many pieces the Welcome is in.
        count: u8,
        /// The piece of the MLS Welcome.
        bytes: Vec<u8>,
    },
    /// Relay to member: a room line sealed in the room's group.
    GroupMessage {
        /// The relay's sequence number.
        room_seq: u64,
        /// The name the relay binds to the sender's key.
        from: String,
        /// The sender's key, as its TLS handshake proved it.
        key: [u8; 32],
        /// The MLS PrivateMessage.
        message: Vec<u8>,
    },
    /// Relay to member: what you sent for the room's group was for another
    /// epoch than the group's; seal it again at this one (after the
    /// commits you have not yet processed).
    GroupRetry {
        /// The group's epoch now.
        epoch: u64,
        /// The sequence number of the refused line (0 for a commit).
        seq: u64,
    },
}

code_table! {
    /// A frame's type: its first byte on the wire, and its name.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum FrameType {
        /// [`Frame::Post`].
        Post = 0x01 => "Post",
        /// [`Frame::Who`].
        Who = 0x02 => "Who",
        /// [`Frame::Resume`].
        Resume = 0x03 => "Resume",
        /// [`Frame::Publish`].
        Publish = 0x04 => "Publish",
        /// [`Frame::Fetch`].
        Fetch = 0x05 => "Fetch",
        /// [`Frame::Seal`].
        Seal = 0x06 => "Seal",
        /// [`Frame::GroupCommit`].
        GroupCommit = 0x07 => "GroupCommit",
        /// [`Frame::GroupSend`].
        GroupSend = 0x08 => "GroupSend",
        /// [`Frame::GroupWelcomePiece`].
        GroupWelcomePiece = 0x09 => "GroupWelcomePiece",
        /// [`Frame::Welcome`].
        Welcome = 0x81 => "Welcome",
        /// [`Frame::Deliver`].
        Deliver = 0x82 => "Deliver",
        /// [`Frame::Ack`].
        Ack = 0x83 => "Ack",
        /// [`Frame::Presence`].
        Presence = 0x84 => "Presence",
        /// [`Frame::Guest`].
        Guest = 0x85 => "Guest",
        /// [`Frame::Roster`].
        Roster = 0x86 => "Roster",
        /// [`Frame::Refused`].
        Refused = 0x87 => "Refused",
        /// [`Frame::Resumed`].
        Resumed = 0x88 => "Resumed",
        /// [`Frame::KeyPackage`].
        KeyPackage = 0x89 => "KeyPackage",
        /// [`Frame::Sealed`].
        Sealed = 0x8a => "Sealed",
        /// [`Frame::PackagesLeft`].
        PackagesLeft = 0x8b => "PackagesLeft",
        /// [`Frame::GroupTask`].
        GroupTask = 0x8c => "GroupTask",
        /// [`Frame::GroupCommitted`].
        GroupCommitted = 0x8d => "GroupCommitted",
        /// [`Frame::GroupWelcome`].
        GroupWelcome = 0x8e => "GroupWelcome",
        /// [`Frame::GroupMessage`].
        GroupMessage = 0x8f => "GroupMessage",
        /// [`Frame::GroupRetry`].
        GroupRetry = 0x90 => "GroupRetry",
    }
}

impl Frame {
    /// Its type: the byte that leads it on the wire, and its name.
    pub(crate) fn frame_type(&self) -> FrameType {
        match self {
            Self::Post { .. } => FrameType::Post,
            Self::Who => FrameType::Who,
            Self::Resume { .. } => FrameType::Resume,
            Self::Welcome { .. } => FrameType::Welcome,
            Self::Deliver { .. } => FrameType::Deliver,
            Self::Ack { .. } => FrameType::Ack,
            Self::Presence { .. } => FrameType::Presence,
            Self::Guest { .. } => FrameType::Guest,
            Self::Roster { .. } => FrameType::Roster,
            Self::Refused { .. } => FrameType::Refused,
            Self::Resumed { .. } => FrameType::Resumed,
            Self::Publish { .. } => FrameType::Publish,
            Self::Fetch { .. } => FrameType::Fetch,
            Self::Seal { .. } => FrameType::Seal,
            Self::KeyPackage { .. } => FrameType::KeyPackage,
            Self::Sealed { .. } => FrameType::Sealed,
            Self::PackagesLeft { .. } => FrameType::PackagesLeft,
            Self::GroupCommit { .. } => FrameType::GroupCommit,
            Self::GroupSend { .. } => FrameType::GroupSend,
            Self::GroupWelcomePiece { .. } => FrameType::GroupWelcomePiece,
            Self::GroupTask { .. } => FrameType::GroupTask,
            Self::GroupCommitted { .. } => FrameType::GroupCommitted,
            Self::GroupWelcome { .. } => FrameType::GroupWelcome,
            Self::GroupMessage { .. } => FrameType::GroupMessage,
            Self::GroupRetry { .. } => FrameType::GroupRetry,
        }
    }

    /// Its type's name (`Post`, `Deliver`, …), for refusals and logs.
    pub(crate) fn name(&self) -> &'static str {
        self.frame_type().as_str()
    }

    /// The frame on the wire, header included; refused, never cut short,
    /// when a field is longer than its length prefix or its limit allows
    /// (a name over 255 bytes, a text over `MAX_FRAME_TEXT`, a list
    /// over its most), or the body over `MAX_FRAME`.
    pub fn encode(&self) -> Result<Vec<u8>, FrameTooLong> {
        let mut out = vec![self.frame_type().code(), 0, 0, 0];
        self.put_body(&mut out).map_err(|why| FrameTooLong { frame: self.name(), why })?;
        let len = out.len() - HEADER;
        if len > MAX_FRAME {
            return Err(FrameTooLong { frame: self.name(), why: "the body is over the frame's limit" });
        }
        out[1..HEADER].copy_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes()[1..]);
        Ok(out)
    }

    /// Frames one after another on the wire, as a member sends what it
    /// made; refused whole if one does not fit.
    pub(crate) fn encode_all(frames: &[Self]) -> Result<Vec<u8>, FrameTooLong> {
        let mut out = Vec::new();
        for frame in frames {
            out.extend_from_slice(&frame.encode()?);
        }
        Ok(out)
    }

    /// The frame on the wire as a relay sends it: [`Frame::encode`], or,
    /// were it not to fit, a [`Frame::Refused`] that says so in its place:
    /// never a frame cut short. What a relay puts in its frames is checked
    /// against these limits on the way in (names, texts, messages, lists),
    /// so only a fault in the relay makes the refusal.
    pub(crate) fn wire(&self) -> std::sync::Arc<[u8]> {
        match self.encode() {
            Ok(bytes) => bytes.into(),
            Err(e) => Self::Refused { code: RefusalCode::BadMessage, text: e.to_string() }
                .encode()
                .unwrap_or_default()
                .into(),
        }
    }

    /// Appends the body; why not, when a field does not fit.
    fn put_body(&self, out: &mut Vec<u8>) -> Result<(), &'static str> {
        match self {
            Self::Post { signed } => out.extend_from_slice(signed),
            Self::Who => {}
            Self::Resume { after } => out.extend_from_slice(&after.to_be_bytes()),
            Self::Welcome { name, room_seq, history, e2e } => {
                put_str8(out, name)?;
                out.extend_from_slice(&room_seq.to_be_bytes());
                codec::put_u16(out, *history);
                out.push(if *e2e { welcome_flags::E2E } else { 0 });
            }
            Self::Deliver { room_seq, flags, author, signed } => {
                out.extend_from_slice(&room_seq.to_be_bytes());
                out.push(*flags);
                put_str8(out, author)?;
                put_bytes16(out, signed)?;
            }
            Self::Ack { room_seq, seq, private } => {
                out.extend_from_slice(&room_seq.to_be_bytes());
                out.extend_from_slice(&seq.to_be_bytes());
                out.push(u8::from(*private));
            }
            Self::Presence { room_seq, joined, member, reason } => {
                out.extend_from_slice(&room_seq.to_be_bytes());
                out.push(u8::from(*joined));
                put_member(out, member)?;
                put_str16(out, reason)?;
            }
            Self::Guest { room_seq, flags, name, text } => {
                out.extend_from_slice(&room_seq.to_be_bytes());
                out.push(*flags);
                put_str8(out, name)?;
                put_str16(out, text)?;
            }
            Self::Roster { total, last, members } => {
                out.extend_from_slice(&total.to_be_bytes());
                out.push(u8::from(*last));
                put_list(out, members, MAX_ROSTER, "more members than a roster frame holds", put_member)?;
            }
            Self::Refused { code, text } => {
                out.push(code.code());
                put_str16(out, text)?;
            }
            Self::Resumed { after, upto, complete } => {
                out.extend_from_slice(&after.to_be_bytes());
                out.extend_from_slice(&upto.to_be_bytes());
                out.push(u8::from(*complete));
            }
            Self::Publish { packages } => {
                put_list(
                    out,
                    packages,
                    MAX_PUBLISHED,
                    "more key packages than one frame carries",
                    |out, p| put_bytes16(out, p),
                )?;
            }
            Self::Fetch { key } => out.extend_from_slice(key),
            Self::Seal { to, seq, message } => {
                out.extend_from_slice(to);
                out.extend_from_slice(&seq.to_be_bytes());
                put_bytes16(out, message)?;
            }
            Self::KeyPackage { key, package } => {
                out.extend_from_slice(key);
                put_bytes16(out, package)?;
            }
            Self::Sealed { room_seq, from, key, message } => {
                out.extend_from_slice(&room_seq.to_be_bytes());
                put_str8(out, from)?;
                out.extend_from_slice(key);
                put_bytes16(out, message)?;
            }
            Self::PackagesLeft { left } => codec::put_u16(out, *left),
            Self::GroupTask { epoch, create, add, remove } => {
                out.extend_from_slice(&epoch.to_be_bytes());
                out.push(u8::from(*create));
                put_list(
                    out,
                    add,
                    MAX_GROUP_CHANGES,
                    "more keys than one group change holds",
                    |out, (k, p)| {
                        out.extend_from_slice(k);
                        put_bytes16(out, p)
                    },
                )?;
                put_keys(out, remove)?;
            }
            Self::GroupCommit { epoch, adds, removes, commit, welcome } => {
                out.extend_from_slice(&epoch.to_be_bytes());
                put_keys(out, adds)?;
                put_keys(out, removes)?;
                put_bytes16(out, commit)?;
                put_bytes16(out, welcome)?;
            }
            Self::GroupSend { epoch, seq, message } => {
                out.extend_from_slice(&epoch.to_be_bytes());
                out.extend_from_slice(&seq.to_be_bytes());
                put_bytes16(out, message)?;
            }
            Self::GroupCommitted { room_seq, from, key, epoch, adds, removes, commit } => {
                out.extend_from_slice(&room_seq.to_be_bytes());
                put_str8(out, from)?;
                out.extend_from_slice(key);
                out.extend_from_slice(&epoch.to_be_bytes());
                put_keys(out, adds)?;
                put_keys(out, removes)?;
                put_bytes16(out, commit)?;
            }
            Self::GroupWelcome { room_seq, from, key, index, count, welcome } => {
                out.extend_from_slice(&room_seq.to_be_bytes());
                put_str8(out, from)?;
                out.extend_from_slice(key);
                out.push(*index);
                out.push(*count);
                put_bytes16(out, welcome)?;
            }
            Self::GroupWelcomePiece { epoch, index, count, bytes } => {
                out.extend_from_slice(&epoch.to_be_bytes());
                out.push(*index);
                out.push(*count);
                put_bytes16(out, bytes)?;
            }
            Self::GroupMessage { room_seq, from, key, message } => {
                out.extend_from_slice(&room_seq.to_be_bytes());
                put_str8(out, from)?;
                out.extend_from_slice(key);
                put_bytes16(out, message)?;
            }
            Self::GroupRetry { epoch, seq } => {
                out.extend_from_slice(&epoch.to_be_bytes());
                out.extend_from_slice(&seq.to_be_bytes());
            }
        }
        Ok(())
    }

    /// Reads one frame's body of type `kind`.
    pub fn decode(kind: u8, body: &[u8]) -> Result<Self, InvalidMessage> {
        let mut r = Reader::new(body, "chat frame");
        let Some(kind) = FrameType::from_code(kind) else {
            return Err(r.invalid("unknown frame type"));
        };
        let frame = match kind {
            // A post longer than the longest message is the relay's to
            // refuse (too long, the connection kept), not a framing error.
            FrameType::Post => Self::Post { signed: r.rest().to_vec() },
            FrameType::Who => Self::Who,
            FrameType::Resume => Self::Resume { after: u64(&mut r)? },
            FrameType::Welcome => Self::Welcome {
                name: str8(&mut r)?,
                room_seq: u64(&mut r)?,
                history: r.u16()?,
                e2e: flag_bits(&mut r, welcome_flags::E2E)? != 0,
            },
            FrameType::Deliver => Self::Deliver {
                room_seq: u64(&mut r)?,
                flags: flag_bits(&mut r, flags::HISTORY | flags::PRIVATE)?,
                author: str8(&mut r)?,
                signed: r.vec16()?.rest().to_vec(),
            },
            FrameType::Ack => {
                Self::Ack { room_seq: u64(&mut r)?, seq: u64(&mut r)?, private: boolean(&mut r)? }
            }
            FrameType::Presence => Self::Presence {
                room_seq: u64(&mut r)?,
                joined: boolean(&mut r)?,
                member: member(&mut r)?,
                reason: str16(&mut r)?,
            },
            FrameType::Guest => Self::Guest {
                room_seq: u64(&mut r)?,
                flags: flag_bits(&mut r, flags::HISTORY)?,
                name: str8(&mut r)?,
                text: str16(&mut r)?,
            },
            FrameType::Roster => {
                let total = u32::from_be_bytes(r.array()?);
                let last = boolean(&mut r)?;
                let mut count = 0;
                let members = r.vec16()?.items(0, |list| {
                    count += 1;
                    if count > MAX_ROSTER {
                        return Err(list.invalid("roster frame too long"));
                    }
                    member(list)
                })?;
                Self::Roster { total, last, members }
            }
            FrameType::Refused => Self::Refused {
                code: RefusalCode::from_code(r.u8()?).ok_or_else(|| r.invalid("unknown refusal code"))?,
                text: str16(&mut r)?,
            },
            FrameType::Resumed => {
                Self::Resumed { after: u64(&mut r)?, upto: u64(&mut r)?, complete: boolean(&mut r)? }
            }
            FrameType::Publish => {
                let mut count = 0;
                let packages = r.vec16()?.items(0, |list| {
                    count += 1;
                    if count > MAX_PUBLISHED {
                        return Err(list.invalid("too many key packages in one frame"));
                    }
                    Ok(list.vec16()?.rest().to_vec())
                })?;
                Self::Publish { packages }
            }
            FrameType::Fetch => Self::Fetch { key: r.array()? },
            FrameType::Seal => {
                Self::Seal { to: r.array()?, seq: u64(&mut r)?, message: r.vec16()?.rest().to_vec() }
            }
            FrameType::KeyPackage => {
                Self::KeyPackage { key: r.array()?, package: r.vec16()?.rest().to_vec() }
            }
            FrameType::Sealed => Self::Sealed {
                room_seq: u64(&mut r)?,
                from: str8(&mut r)?,
                key: r.array()?,
                message: r.vec16()?.rest().to_vec(),
            },
            FrameType::PackagesLeft => Self::PackagesLeft { left: r.u16()? },
            FrameType::GroupTask => {
                let epoch = u64(&mut r)?;
                let create = boolean(&mut r)?;
                let mut count = 0;
                let add = r.vec16()?.items(0, |list| {
                    count += 1;
                    if count > MAX_GROUP_CHANGES {
                        return Err(list.invalid("too many members added in one task"));
                    }
                    Ok((list.array()?, list.vec16()?.rest().to_vec()))
                })?;
                Self::GroupTask { epoch, create, add, remove: keys(&mut r)? }
            }
            FrameType::GroupCommit => Self::GroupCommit {
                epoch: u64(&mut r)?,
                adds: keys(&mut r)?,
                removes: keys(&mut r)?,
                commit: r.vec16()?.rest().to_vec(),
                welcome: r.vec16()?.rest().to_vec(),
            },
            FrameType::GroupSend => Self::GroupSend {
                epoch: u64(&mut r)?,
                seq: u64(&mut r)?,
                message: r.vec16()?.rest().to_vec(),
            },
            FrameType::GroupCommitted => Self::GroupCommitted {
                room_seq: u64(&mut r)?,
                from: str8(&mut r)?,
                key: r.array()?,
                epoch: u64(&mut r)?,
                adds: keys(&mut r)?,
                removes: keys(&mut r)?,
                commit: r.vec16()?.rest().to_vec(),
            },
            FrameType::GroupWelcome => Self::GroupWelcome {
                room_seq: u64(&mut r)?,
                from: str8(&mut r)?,
                key: r.array()?,
                index: r.u8()?,
                count: r.u8()?,
                welcome: r.vec16()?.rest().to_vec(),
            },
            FrameType::GroupWelcomePiece => Self::GroupWelcomePiece {
                epoch: u64(&mut r)?,
                index: r.u8()?,
                count: r.u8()?,
                bytes: r.vec16()?.rest().to_vec(),
            },
            FrameType::GroupMessage => Self::GroupMessage {
                room_seq: u64(&mut r)?,
                from: str8(&mut r)?,
                key: r.array()?,
                message: r.vec16()?.rest().to_vec(),
            },
            FrameType::GroupRetry => Self::GroupRetry { epoch: u64(&mut r)?, seq: u64(&mut r)? },
        };
        r.finish()?;
        Ok(frame)
    }
}

/// The longest text a frame's 16-bit text field carries (a reason, a
/// guest's line, a refusal): longer ones are refused, never cut.
pub(crate) const MAX_FRAME_TEXT: usize = 8 * 1024;

/// A frame that does not fit its fields' length prefixes or limits, or
/// the frame's size: refused, never sent cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {frame} frame does not fit: {why}")]
pub struct FrameTooLong {
    /// The frame's type name.
    pub(crate) frame: &'static str,
    /// Which field did not fit.
    pub(crate) why: &'static str,
}

/// A name: at most 255 bytes after a one-byte length.
fn put_str8(out: &mut Vec<u8>, s: &str) -> Result<(), &'static str> {
    let len = u8::try_from(s.len()).map_err(|_| "a name over 255 bytes")?;
    out.push(len);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// A text: at most [`MAX_FRAME_TEXT`] bytes after a two-byte length.
fn put_str16(out: &mut Vec<u8>, s: &str) -> Result<(), &'static str> {
    if s.len() > MAX_FRAME_TEXT {
        return Err("a text over 8 KiB");
    }
    put_bytes16(out, s.as_bytes())
}

/// Bytes after a two-byte length: at most 65,535 of them.
fn put_bytes16(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), &'static str> {
    let len = u16::try_from(bytes.len()).map_err(|_| "bytes over 65,535 behind a two-byte length")?;
    codec::put_u16(out, len);
    out.extend_from_slice(bytes);
    Ok(())
}

/// A list of at most `max` items behind a two-byte length, each written by
/// `item`; `over` says why a longer one is refused.
fn put_list<T>(
    out: &mut Vec<u8>,
    items: &[T],
    max: usize,
    over: &'static str,
    mut item: impl FnMut(&mut Vec<u8>, &T) -> Result<(), &'static str>,
) -> Result<(), &'static str> {
    if items.len() > max {
        return Err(over);
    }
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    for i in items {
        item(out, i)?;
    }
    let len = u16::try_from(out.len() - at - 2).map_err(|_| "a list over 65,535 bytes")?;
    out[at..at + 2].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

fn put_member(out: &mut Vec<u8>, m: &MemberInfo) -> Result<(), &'static str> {
    put_str8(out, &m.name)?;
    out.push(m.standing.code());
    out.extend_from_slice(&m.key);
    out.extend_from_slice(&m.idle_secs.to_be_bytes());
    Ok(())
}

/// A list of at most [`MAX_GROUP_CHANGES`] keys.
fn put_keys(out: &mut Vec<u8>, keys: &[[u8; 32]]) -> Result<(), &'static str> {
    put_list(out, keys, MAX_GROUP_CHANGES, "more keys than one group change holds", |out, k| {
        out.extend_from_slice(k);
        Ok(())
    })
}

fn keys(r: &mut Reader<'_>) -> Result<Vec<[u8; 32]>, InvalidMessage> {
    let mut count = 0;
    r.vec16()?.items(0, |list| {
        count += 1;
        if count > MAX_GROUP_CHANGES {
            return Err(list.invalid("too many keys in one group change"));
        }
        list.array()
    })
}

fn u64(r: &mut Reader<'_>) -> Result<u64, InvalidMessage> {
    Ok(u64::from_be_bytes(r.array()?))
}

fn boolean(r: &mut Reader<'_>) -> Result<bool, InvalidMessage> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(r.invalid("a boolean that is neither 0 nor 1")),
    }
}

fn text(r: &mut Reader<'_>, bytes: &[u8]) -> Result<String, InvalidMessage> {
    std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| r.invalid("text is not UTF-8"))
}

fn str8(r: &mut Reader<'_>) -> Result<String, InvalidMessage> {
    let bytes = r.vec8()?.rest();
    text(r, bytes)
}

fn str16(r: &mut Reader<'_>) -> Result<String, InvalidMessage> {
    let bytes = r.vec16()?.rest();
    text(r, bytes)
}

fn member(r: &mut Reader<'_>) -> Result<MemberInfo, InvalidMessage> {
    let name = str8(r)?;
    let standing = Standing::from_code(r.u8()?).ok_or_else(|| r.invalid("unknown standing"))?;
    let key = r.array()?;
    let idle_secs = u32::from_be_bytes(r.array()?);
    Ok(MemberInfo { name, standing, key, idle_secs })
}

/// Cuts received application data into frames. It holds at most one
/// frame's worth of bytes: a header that announces more than
/// `MAX_FRAME` is refused at once.
#[derive(Debug, Default)]
pub struct FrameBuffer {
    buf: Vec<u8>,
}

impl FrameBuffer {
    /// Adds received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if one is there; an error for a frame that
    /// can never be valid (unknown type, too long, bad body).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, InvalidMessage> {
        let Some(header) = self.buf.get(..HEADER) else { return Ok(None) };
        let len = u32::from_be_bytes([0, header[1], header[2], header[3]]) as usize;
        if len > MAX_FRAME {
            return Err(InvalidMessage { what: "chat frame", why: "longer than the protocol allows" });
        }
        let Some(body) = self.buf.get(HEADER..HEADER + len) else { return Ok(None) };
        let frame = Frame::decode(header[0], body)?;
        self.buf.drain(..HEADER + len);
        if self.buf.is_empty() {
            // Give the memory back between bursts.
            self.buf = Vec::new();
        }
        Ok(Some(frame))
    }

    /// Bytes held that do not yet make a frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn member_info() -> impl Strategy<Value = MemberInfo> {
        ("[a-z]{1,8}", 0u8..3, any::<[u8; 32]>(), any::<u32>()).prop_map(|(name, s, key, idle_secs)| {
            MemberInfo { name, standing: Standing::from_code(s).unwrap(), key, idle_secs }
        })
    }

    #[test]
    fn a_roster_frame_holds_at_most_max_roster_members() {
        let one = MemberInfo {
            name: "m".into(),
            standing: Standing::from_code(0).unwrap(),
            key: [7; 32],
            idle_secs: 1,
        };
        let roster = |n: usize| {
            let mut body = vec![0, 0, 0, 99, 1];
            put_list(&mut body, &vec![one.clone(); n], usize::MAX, "", put_member).unwrap();
            Frame::decode(0x86, &body)
        };
        let Ok(Frame::Roster { total: 99, last: true, members }) = roster(MAX_ROSTER) else {
            panic!("a full roster frame is valid")
        };
        assert_eq!(members, vec![one.clone(); MAX_ROSTER]);
        assert!(roster(MAX_ROSTER + 1).is_err());
        assert!(matches!(roster(0), Ok(Frame::Roster { members, .. }) if members.is_empty()));
    }

    fn frames() -> impl Strategy<Value = Frame> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(|signed| Frame::Post { signed }),
            Just(Frame::Who),
            ("\\PC{0,20}", any::<u64>(), any::<u16>(), any::<bool>())
                .prop_map(|(name, room_seq, history, e2e)| Frame::Welcome { name, room_seq, history, e2e }),
            (any::<u64>(), 0..4u8, "[a-z]{0,10}", proptest::collection::vec(any::<u8>(), 0..300)).prop_map(
                |(room_seq, flags, author, signed)| Frame::Deliver { room_seq, flags, author, signed }
            ),
            (any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(room_seq, seq, private)| Frame::Ack {
                room_seq,
                seq,
                private
            }),
            (any::<u64>(), any::<bool>(), member_info(), "\\PC{0,20}").prop_map(
                |(room_seq, joined, member, reason)| Frame::Presence { room_seq, joined, member, reason }
            ),
            (any::<u64>(), 0..2u8, "[a-z0-9-]{0,10}", "\\PC{0,40}")
                .prop_map(|(room_seq, flags, name, text)| Frame::Guest { room_seq, flags, name, text }),
            (any::<u32>(), any::<bool>(), proptest::collection::vec(member_info(), 0..5))
                .prop_map(|(total, last, members)| Frame::Roster { total, last, members }),
            (1u8..7, "\\PC{0,40}")
                .prop_map(|(c, text)| Frame::Refused { code: RefusalCode::from_code(c).unwrap(), text }),
            any::<u64>().prop_map(|after| Frame::Resume { after }),
            (any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(after, upto, complete)| Frame::Resumed {
                after,
                upto,
                complete
            }),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..=MAX_PUBLISHED)
                .prop_map(|packages| Frame::Publish { packages }),
            any::<[u8; 32]>().prop_map(|key| Frame::Fetch { key }),
            (any::<[u8; 32]>(), any::<u64>(), proptest::collection::vec(any::<u8>(), 0..300))
                .prop_map(|(to, seq, message)| Frame::Seal { to, seq, message }),
            (any::<[u8; 32]>(), proptest::collection::vec(any::<u8>(), 0..300))
                .prop_map(|(key, package)| Frame::KeyPackage { key, package }),
            (any::<u64>(), "[a-z]{0,10}", any::<[u8; 32]>(), proptest::collection::vec(any::<u8>(), 0..300))
                .prop_map(|(room_seq, from, key, message)| Frame::Sealed { room_seq, from, key, message }),
            any::<u16>().prop_map(|left| Frame::PackagesLeft { left }),
            (
                any::<u64>(),
                any::<bool>(),
                proptest::collection::vec(
                    (any::<[u8; 32]>(), proptest::collection::vec(any::<u8>(), 0..40)),
                    0..4
                ),
                proptest::collection::vec(any::<[u8; 32]>(), 0..4)
            )
                .prop_map(|(epoch, create, add, remove)| Frame::GroupTask {
                    epoch,
                    create,
                    add,
                    remove
                }),
            (
                any::<u64>(),
                proptest::collection::vec(any::<[u8; 32]>(), 0..4),
                proptest::collection::vec(any::<[u8; 32]>(), 0..4),
                proptest::collection::vec(any::<u8>(), 0..100),
                proptest::collection::vec(any::<u8>(), 0..100)
            )
                .prop_map(|(epoch, adds, removes, commit, welcome)| Frame::GroupCommit {
                    epoch,
                    adds,
                    removes,
                    commit,
                    welcome
                }),
            (any::<u64>(), any::<u64>(), proptest::collection::vec(any::<u8>(), 0..100))
                .prop_map(|(epoch, seq, message)| Frame::GroupSend { epoch, seq, message }),
            (
                any::<u64>(),
                "[a-z]{0,10}",
                any::<[u8; 32]>(),
                any::<u64>(),
                proptest::collection::vec(any::<[u8; 32]>(), 0..4),
                proptest::collection::vec(any::<[u8; 32]>(), 0..4),
                proptest::collection::vec(any::<u8>(), 0..100)
            )
                .prop_map(|(room_seq, from, key, epoch, adds, removes, commit)| {
                    Frame::GroupCommitted { room_seq, from, key, epoch, adds, removes, commit }
                }),
            (
                any::<u64>(),
                "[a-z]{0,10}",
                any::<[u8; 32]>(),
                any::<(u8, u8)>(),
                proptest::collection::vec(any::<u8>(), 0..100)
            )
                .prop_map(|(room_seq, from, key, (index, count), welcome)| Frame::GroupWelcome {
                    room_seq,
                    from,
                    key,
                    index,
                    count,
                    welcome
                }),
            (any::<u64>(), any::<(u8, u8)>(), proptest::collection::vec(any::<u8>(), 0..100)).prop_map(
                |(epoch, (index, count), bytes)| Frame::GroupWelcomePiece { epoch, index, count, bytes }
            ),
            (any::<u64>(), "[a-z]{0,10}", any::<[u8; 32]>(), proptest::collection::vec(any::<u8>(), 0..100))
                .prop_map(|(room_seq, from, key, message)| Frame::GroupMessage {
                    room_seq,
                    from,
                    key,
                    message
                }),
            (any::<u64>(), any::<u64>()).prop_map(|(epoch, seq)| Frame::GroupRetry { epoch, seq }),
        ]
    }

    proptest! {
        #[test]
        fn frames_round_trip_whatever_the_record_boundaries(
            list in proptest::collection::vec(frames(), 1..6),
            cut in 1usize..50,
        ) {
            let wire: Vec<u8> = list.iter().flat_map(|f| f.encode().unwrap()).collect();
            let mut buffer = FrameBuffer::default();
            let mut out = Vec::new();
            for chunk in wire.chunks(cut) {
                buffer.push(chunk);
                while let Some(frame) = buffer.next_frame().unwrap() {
                    out.push(frame);
                }
            }
            prop_assert_eq!(out, list);
            prop_assert_eq!(buffer.pending(), 0);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_leave_less_than_a_frame_waiting(
            bytes in proptest::collection::vec(any::<u8>(), 0..2000),
        ) {
            let mut buffer = FrameBuffer::default();
            buffer.push(&bytes);
            loop {
                match buffer.next_frame() {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        prop_assert!(buffer.pending() < HEADER + MAX_FRAME);
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
    }

    #[test]
    fn the_fullest_roster_frame_fits_a_frame() {
        let longest =
            MemberInfo { name: "n".repeat(255), standing: Standing::Host, key: [9; 32], idle_secs: 1 };
        let frame = Frame::Roster { total: 10_000, last: false, members: vec![longest; MAX_ROSTER] };
        assert!(frame.encode().unwrap().len() <= HEADER + MAX_FRAME);
    }

    #[test]
    fn every_frame_type_code_round_trips_and_unknown_types_are_refused() {
        for &ty in FrameType::ALL {
            assert_eq!(FrameType::from_code(ty.code()), Some(ty), "{ty:?}");
        }
        let known: Vec<u8> = FrameType::ALL.iter().map(|t| t.code()).collect();
        assert_eq!(known.len(), 25);
        for code in 0..=u8::MAX {
            if !known.contains(&code) {
                assert_eq!(FrameType::from_code(code), None, "{code:#04x}");
                assert_eq!(Frame::decode(code, &[]).unwrap_err().why, "unknown frame type", "{code:#04x}");
            }
        }
        // A frame leads with its type's code, and its name is its variant's.
        let ack = Frame::Ack { room_seq: 1, seq: 1, private: false };
        assert_eq!((ack.frame_type(), ack.encode().unwrap()[0], ack.name()), (FrameType::Ack, 0x83, "Ack"));
        assert_eq!((Frame::Who.encode().unwrap()[0], Frame::Who.name()), (0x02, "Who"));
    }

    #[test]
    fn standing_and_refusal_codes_round_trip_and_unknown_ones_are_refused() {
        for &standing in Standing::ALL {
            assert_eq!(Standing::from_code(standing.code()), Some(standing));
        }
        assert_eq!(
            Standing::ALL.iter().map(|s| (s.code(), s.as_str())).collect::<Vec<_>>(),
            [(0, "verified"), (1, "guest"), (2, "host")]
        );
        assert_eq!(Standing::from_code(3), None);
        for &code in RefusalCode::ALL {
            assert_eq!(RefusalCode::from_code(code.code()), Some(code));
            assert_eq!(code.as_str(), format!("{code:?}"));
        }
        assert_eq!(RefusalCode::ALL.iter().map(|c| c.code()).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
        for bad in [0, 7, 0xff] {
            assert_eq!(RefusalCode::from_code(bad), None);
            let body = [bad, 0, 0];
            assert_eq!(Frame::decode(0x87, &body).unwrap_err().why, "unknown refusal code");
        }
        // A member with an unknown standing makes its roster malformed.
        let member = MemberInfo { name: "m".into(), standing: Standing::Guest, key: [0; 32], idle_secs: 0 };
        let mut body = vec![0, 0, 0, 1, 1];
        put_list(&mut body, &[member], 1, "", put_member).unwrap();
        let at = 5 + 2 + 1 + 1;
        assert_eq!(body[at], 1);
        body[at] = 3;
        assert_eq!(Frame::decode(0x86, &body).unwrap_err().why, "unknown standing");
    }

    /// Why `frame` is refused, or `None` when it encodes (and decodes back).
    fn refused(frame: &Frame) -> Option<&'static str> {
        match frame.encode() {
            Ok(bytes) => {
                assert!(bytes.len() <= HEADER + MAX_FRAME);
                assert_eq!(Frame::decode(bytes[0], &bytes[HEADER..]).as_ref(), Ok(frame));
                None
            }
            Err(e) => {
                assert_eq!(e.frame, frame.name());
                Some(e.why)
            }
        }
    }

    #[test]
    fn names_over_255_bytes_are_refused_not_cut() {
        let welcome = |name: String| Frame::Welcome { name, room_seq: 1, history: 0, e2e: false };
        assert_eq!(refused(&welcome("n".repeat(255))), None);
        assert_eq!(refused(&welcome("n".repeat(256))), Some("a name over 255 bytes"));
        // 85 three-byte characters are 255 bytes; one more is over, whole.
        assert_eq!(refused(&welcome("\u{4e2d}".repeat(85))), None);
        assert_eq!(refused(&welcome("\u{4e2d}".repeat(86))), Some("a name over 255 bytes"));
        let member =
            |name: String| MemberInfo { name, standing: Standing::Verified, key: [1; 32], idle_secs: 0 };
        let presence =
            |name| Frame::Presence { room_seq: 1, joined: true, member: member(name), reason: String::new() };
        assert_eq!(refused(&presence("m".repeat(256))), Some("a name over 255 bytes"));
        let sealed = Frame::Sealed { room_seq: 0, from: "f".repeat(256), key: [2; 32], message: vec![1] };
        assert_eq!(refused(&sealed), Some("a name over 255 bytes"));
    }

    #[test]
    fn texts_over_max_frame_text_are_refused_not_cut() {
        let guest = |text: String| Frame::Guest { room_seq: 1, flags: 0, name: "guest-1".into(), text };
        assert_eq!(refused(&guest("t".repeat(MAX_FRAME_TEXT))), None);
        assert_eq!(refused(&guest("t".repeat(MAX_FRAME_TEXT + 1))), Some("a text over 8 KiB"));
        let refusal = |text: String| Frame::Refused { code: RefusalCode::TooLong, text };
        assert_eq!(refused(&refusal("r".repeat(MAX_FRAME_TEXT))), None);
        assert_eq!(refused(&refusal("r".repeat(MAX_FRAME_TEXT + 1))), Some("a text over 8 KiB"));
        let member = MemberInfo { name: "m".into(), standing: Standing::Guest, key: [0; 32], idle_secs: 0 };
        let leave =
            Frame::Presence { room_seq: 1, joined: false, member, reason: "r".repeat(MAX_FRAME_TEXT + 1) };
        assert_eq!(refused(&leave), Some("a text over 8 KiB"));
    }

    #[test]
    fn bytes_over_their_prefix_or_the_frame_are_refused_not_cut() {
        let package = |n: usize| Frame::KeyPackage { key: [3; 32], package: vec![7; n] };
        // The body is the key, the length and the bytes: MAX_FRAME exactly fits.
        assert_eq!(refused(&package(MAX_FRAME - 32 - 2)), None);
        assert_eq!(refused(&package(MAX_FRAME - 32 - 1)), Some("the body is over the frame's limit"));
        assert_eq!(refused(&package(usize::from(u16::MAX))), Some("the body is over the frame's limit"));
        assert_eq!(
            refused(&package(usize::from(u16::MAX) + 1)),
            Some("bytes over 65,535 behind a two-byte length")
        );
        let post = Frame::Post { signed: vec![0; MAX_FRAME + 1] };
        assert_eq!(refused(&post), Some("the body is over the frame's limit"));
    }

    #[test]
    fn lists_over_their_most_are_refused_not_shortened() {
        let one = MemberInfo { name: "m".into(), standing: Standing::Verified, key: [4; 32], idle_secs: 9 };
        let roster = |n| Frame::Roster { total: 1000, last: true, members: vec![one.clone(); n] };
        assert_eq!(refused(&roster(MAX_ROSTER)), None);
        assert_eq!(refused(&roster(MAX_ROSTER + 1)), Some("more members than a roster frame holds"));
        let publish = |n| Frame::Publish { packages: vec![vec![5; 10]; n] };
        assert_eq!(refused(&publish(MAX_PUBLISHED)), None);
        assert_eq!(refused(&publish(MAX_PUBLISHED + 1)), Some("more key packages than one frame carries"));
        let keys = |n| vec![[6; 32]; n];
        let task = |add: usize, remove: usize| Frame::GroupTask {
            epoch: 1,
            create: false,
            add: vec![([8; 32], vec![9; 10]); add],
            remove: keys(remove),
        };
        assert_eq!(refused(&task(MAX_GROUP_CHANGES, MAX_GROUP_CHANGES)), None);
        assert_eq!(refused(&task(MAX_GROUP_CHANGES + 1, 0)), Some("more keys than one group change holds"));
        assert_eq!(refused(&task(0, MAX_GROUP_CHANGES + 1)), Some("more keys than one group change holds"));
        let commit = |adds: usize| Frame::GroupCommit {
            epoch: 1,
            adds: keys(adds),
            removes: Vec::new(),
            commit: vec![1],
            welcome: Vec::new(),
        };
        assert_eq!(refused(&commit(MAX_GROUP_CHANGES)), None);
        assert_eq!(refused(&commit(MAX_GROUP_CHANGES + 1)), Some("more keys than one group change holds"));
    }

    #[test]
    fn a_relay_sends_a_refusal_in_place_of_a_frame_that_does_not_fit() {
        let fits = Frame::Ack { room_seq: 1, seq: 2, private: false };
        assert_eq!(&fits.wire()[..], &fits.encode().unwrap()[..]);
        let over = Frame::Welcome { name: "n".repeat(256), room_seq: 1, history: 0, e2e: false };
        let wire = over.wire();
        let Ok(Frame::Refused { code: RefusalCode::BadMessage, text }) =
            Frame::decode(wire[0], &wire[HEADER..])
        else {
            panic!("not a refusal: {wire:?}")
        };
        assert_eq!(text, "a Welcome frame does not fit: a name over 255 bytes");
        // A member's frames go out whole or not at all.
        assert!(Frame::encode_all(&[fits.clone(), over]).is_err());
        assert_eq!(
            Frame::encode_all(&[fits.clone(), Frame::Who]).unwrap().len(),
            fits.encode().unwrap().len() + HEADER
        );
    }

    #[test]
    fn an_oversized_header_is_refused_before_its_body_arrives() {
        let mut buffer = FrameBuffer::default();
        buffer.push(&[0x01, 0x01, 0x00, 0x00]);
        assert!(buffer.next_frame().is_err());
    }

    #[test]
    fn unknown_types_trailing_bytes_and_bad_booleans_are_refused() {
        assert!(Frame::decode(0x7f, &[]).is_err());
        assert!(Frame::decode(0x02, &[0]).is_err(), "Who has no body");
        let mut ack = Frame::Ack { room_seq: 1, seq: 1, private: false }.encode().unwrap();
        *ack.last_mut().unwrap() = 2;
        assert!(Frame::decode(0x83, &ack[HEADER..]).is_err());
    }

    #[test]
    fn resume_and_resumed_on_the_wire() {
        assert_eq!(
            Frame::Resume { after: 0x0102 }.encode().unwrap(),
            [0x03, 0, 0, 8, 0, 0, 0, 0, 0, 0, 1, 2]
        );
        let resumed = Frame::Resumed { after: 1, upto: 258, complete: true };
        assert_eq!(
            resumed.encode().unwrap(),
            [0x88, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2, 1]
        );
        assert_eq!(Frame::decode(0x88, &resumed.encode().unwrap()[HEADER..]), Ok(resumed));
        // A Resume is exactly eight bytes; a Resumed's flag is a boolean.
        assert!(Frame::decode(0x03, &[0; 7]).is_err());
        assert!(Frame::decode(0x03, &[0; 9]).is_err());
        let mut bad = Frame::Resumed { after: 1, upto: 2, complete: false }.encode().unwrap();
        *bad.last_mut().unwrap() = 2;
        assert!(Frame::decode(0x88, &bad[HEADER..]).is_err());
    }
}
