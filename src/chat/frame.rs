//! The frames of the chat protocol (ALPN `tlschat/1`), and the buffer that
//! cuts a stream of application data into them.
//!
//! A frame is `type (1 byte) | length (3 bytes, big-endian) | body`, with
//! the body at most `MAX_FRAME` bytes. Bodies use the TLS presentation
//! language, read with the engine's `Reader`: fixed-width big-endian
//! integers and length-prefixed vectors, trailing bytes refused.
//! `docs/PROTOCOL.md` lists every frame and field.

use crate::tls::codec::{self, InvalidMessage, LenPrefix, Reader};

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

/// How a member takes part, as the relay tells others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Standing {
    /// Proved its key in the TLS handshake; the name is bound to that key.
    Verified,
    /// No key: a guest (`openssl s_client`, `nc`-style tools). Its lines
    /// are unsigned.
    Guest,
    /// The room's host, chatting from `tlschat listen` itself.
    Host,
}

impl Standing {
    fn code(self) -> u8 {
        match self {
            Self::Verified => 0,
            Self::Guest => 1,
            Self::Host => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Verified,
            1 => Self::Guest,
            2 => Self::Host,
            _ => return None,
        })
    }

    /// Its name in JSON and `/who`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Guest => "guest",
            Self::Host => "host",
        }
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

/// Why a post was refused, told to its author only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalCode {
    /// The text is over the limit.
    TooLong,
    /// Too many messages too fast.
    RateLimited,
    /// No member by that name (`/msg`).
    NoSuchMember,
    /// The message does not verify, or is not this member's or this room's.
    BadMessage,
    /// The room is full.
    RoomFull,
    /// The member is being disconnected (too slow, flooding).
    Disconnected,
}

impl RefusalCode {
    fn code(self) -> u8 {
        match self {
            Self::TooLong => 1,
            Self::RateLimited => 2,
            Self::NoSuchMember => 3,
            Self::BadMessage => 4,
            Self::RoomFull => 5,
            Self::Disconnected => 6,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::TooLong,
            2 => Self::RateLimited,
            3 => Self::NoSuchMember,
            4 => Self::BadMessage,
            5 => Self::RoomFull,
            6 => Self::Disconnected,
            _ => return None,
        })
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

impl Frame {
    fn type_code(&self) -> u8 {
        match self {
            Self::Post { .. } => 0x01,
            Self::Who => 0x02,
            Self::Resume { .. } => 0x03,
            Self::Welcome { .. } => 0x81,
            Self::Deliver { .. } => 0x82,
            Self::Ack { .. } => 0x83,
            Self::Presence { .. } => 0x84,
            Self::Guest { .. } => 0x85,
            Self::Roster { .. } => 0x86,
            Self::Refused { .. } => 0x87,
            Self::Resumed { .. } => 0x88,
            Self::Publish { .. } => 0x04,
            Self::Fetch { .. } => 0x05,
            Self::Seal { .. } => 0x06,
            Self::KeyPackage { .. } => 0x89,
            Self::Sealed { .. } => 0x8a,
            Self::PackagesLeft { .. } => 0x8b,
            Self::GroupCommit { .. } => 0x07,
            Self::GroupSend { .. } => 0x08,
            Self::GroupWelcomePiece { .. } => 0x09,
            Self::GroupTask { .. } => 0x8c,
            Self::GroupCommitted { .. } => 0x8d,
            Self::GroupWelcome { .. } => 0x8e,
            Self::GroupMessage { .. } => 0x8f,
            Self::GroupRetry { .. } => 0x90,
        }
    }

    /// The frame on the wire, header included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.type_code(), 0, 0, 0];
        match self {
            Self::Post { signed } => out.extend_from_slice(signed),
            Self::Who => {}
            Self::Resume { after } => out.extend_from_slice(&after.to_be_bytes()),
            Self::Welcome { name, room_seq, history, e2e } => {
                put_str8(&mut out, name);
                out.extend_from_slice(&room_seq.to_be_bytes());
                codec::put_u16(&mut out, *history);
                out.push(if *e2e { welcome_flags::E2E } else { 0 });
            }
            Self::Deliver { room_seq, flags, author, signed } => {
                out.extend_from_slice(&room_seq.to_be_bytes());
                out.push(*flags);
                put_str8(&mut out, author);
                codec::put_bytes(&mut out, LenPrefix::U16, signed);
            }
            Self::Ack { room_seq, seq, private } => {
                out.extend_from_slice(&room_seq.to_be_bytes());
                out.extend_from_slice(&seq.to_be_bytes());
                out.push(u8::from(*private));
            }
            Self::Presence { room_seq, joined, member, reason } => {
                out.extend_from_slice(&room_seq.to_be_bytes());
                out.push(u8::from(*joined));
                put_member(&mut out, member);
                put_str16(&mut out, reason);
            }
            Self::Guest { room_seq, flags, name, text } => {
                out.extend_from_slice(&room_seq.to_be_bytes());
                out.push(*flags);
                put_str8(&mut out, name);
                put_str16(&mut out, text);
            }
            Self::Roster { total, last, members } => {
                out.extend_from_slice(&total.to_be_bytes());
                out.push(u8::from(*last));
                codec::put_items(&mut out, LenPrefix::U16, members.iter().take(MAX_ROSTER), put_member);
            }
            Self::Refused { code, text } => {
                out.push(code.code());
                put_str16(&mut out, text);
            }
            Self::Resumed { after, upto, complete } => {
                out.extend_from_slice(&after.to_be_bytes());
                out.extend_from_slice(&upto.to_be_bytes());
                out.push(u8::from(*complete));
            }
            Self::Publish { packages } => {
                codec::put_items(&mut out, LenPrefix::U16, packages.iter().take(MAX_PUBLISHED), |out, p| {
                    codec::put_bytes(out, LenPrefix::U16, p);
                });
            }
            Self::Fetch { key } => out.extend_from_slice(key),
            Self::Seal { to, seq, message } => {
                out.extend_from_slice(to);
                out.extend_from_slice(&seq.to_be_bytes());
                codec::put_bytes(&mut out, LenPrefix::U16, message);
            }
            Self::KeyPackage { key, package } => {
                out.extend_from_slice(key);
                codec::put_bytes(&mut out, LenPrefix::U16, package);
            }
            Self::Sealed { room_seq, from, key, message } => {
                out.extend_from_slice(&room_seq.to_be_bytes());
                put_str8(&mut out, from);
                out.extend_from_slice(key);
                codec::put_bytes(&mut out, LenPrefix::U16, message);
            }
            Self::PackagesLeft { left } => codec::put_u16(&mut out, *left),
            Self::GroupTask { epoch, create, add, remove } => {
                out.extend_from_slice(&epoch.to_be_bytes());
                out.push(u8::from(*create));
                codec::put_items(
                    &mut out,
                    LenPrefix::U16,
                    add.iter().take(MAX_GROUP_CHANGES),
                    |out, (k, p)| {
                        out.extend_from_slice(k);
                        codec::put_bytes(out, LenPrefix::U16, p);
                    },
                );
                put_keys(&mut out, remove);
            }
            Self::GroupCommit { epoch, adds, removes, commit, welcome } => {
                out.extend_from_slice(&epoch.to_be_bytes());
                put_keys(&mut out, adds);
                put_keys(&mut out, removes);
                codec::put_bytes(&mut out, LenPrefix::U16, commit);
                codec::put_bytes(&mut out, LenPrefix::U16, welcome);
            }
            Self::GroupSend { epoch, seq, message } => {
                out.extend_from_slice(&epoch.to_be_bytes());
                out.extend_from_slice(&seq.to_be_bytes());
                codec::put_bytes(&mut out, LenPrefix::U16, message);
            }
            Self::GroupCommitted { room_seq, from, key, epoch, adds, removes, commit } => {
                out.extend_from_slice(&room_seq.to_be_bytes());
                put_str8(&mut out, from);
                out.extend_from_slice(key);
                out.extend_from_slice(&epoch.to_be_bytes());
                put_keys(&mut out, adds);
                put_keys(&mut out, removes);
                codec::put_bytes(&mut out, LenPrefix::U16, commit);
            }
            Self::GroupWelcome { room_seq, from, key, index, count, welcome } => {
                out.extend_from_slice(&room_seq.to_be_bytes());
                put_str8(&mut out, from);
                out.extend_from_slice(key);
                out.push(*index);
                out.push(*count);
                codec::put_bytes(&mut out, LenPrefix::U16, welcome);
            }
            Self::GroupWelcomePiece { epoch, index, count, bytes } => {
                out.extend_from_slice(&epoch.to_be_bytes());
                out.push(*index);
                out.push(*count);
                codec::put_bytes(&mut out, LenPrefix::U16, bytes);
            }
            Self::GroupMessage { room_seq, from, key, message } => {
                out.extend_from_slice(&room_seq.to_be_bytes());
                put_str8(&mut out, from);
                out.extend_from_slice(key);
                codec::put_bytes(&mut out, LenPrefix::U16, message);
            }
            Self::GroupRetry { epoch, seq } => {
                out.extend_from_slice(&epoch.to_be_bytes());
                out.extend_from_slice(&seq.to_be_bytes());
            }
        }
        let len = out.len() - HEADER;
        debug_assert!(len <= MAX_FRAME, "frame body of {len} bytes");
        out[1..HEADER].copy_from_slice(&(len as u32).to_be_bytes()[1..]);
        out
    }

    /// Reads one frame's body of type `kind`.
    pub fn decode(kind: u8, body: &[u8]) -> Result<Self, InvalidMessage> {
        let mut r = Reader::new(body, "chat frame");
        let frame = match kind {
            // A post longer than the longest message is the relay's to
            // refuse (too long, the connection kept), not a framing error.
            0x01 => Self::Post { signed: r.rest().to_vec() },
            0x02 => Self::Who,
            0x03 => Self::Resume { after: u64(&mut r)? },
            0x81 => Self::Welcome {
                name: str8(&mut r)?,
                room_seq: u64(&mut r)?,
                history: r.u16()?,
                e2e: flag_bits(&mut r, welcome_flags::E2E)? != 0,
            },
            0x82 => Self::Deliver {
                room_seq: u64(&mut r)?,
                flags: flag_bits(&mut r, flags::HISTORY | flags::PRIVATE)?,
                author: str8(&mut r)?,
                signed: r.vec16()?.rest().to_vec(),
            },
            0x83 => Self::Ack { room_seq: u64(&mut r)?, seq: u64(&mut r)?, private: boolean(&mut r)? },
            0x84 => Self::Presence {
                room_seq: u64(&mut r)?,
                joined: boolean(&mut r)?,
                member: member(&mut r)?,
                reason: str16(&mut r)?,
            },
            0x85 => Self::Guest {
                room_seq: u64(&mut r)?,
                flags: flag_bits(&mut r, flags::HISTORY)?,
                name: str8(&mut r)?,
                text: str16(&mut r)?,
            },
            0x86 => {
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
            0x87 => Self::Refused {
                code: RefusalCode::from_code(r.u8()?).ok_or_else(|| r.invalid("unknown refusal code"))?,
                text: str16(&mut r)?,
            },
            0x88 => Self::Resumed { after: u64(&mut r)?, upto: u64(&mut r)?, complete: boolean(&mut r)? },
            0x04 => {
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
            0x05 => Self::Fetch { key: r.array()? },
            0x06 => Self::Seal { to: r.array()?, seq: u64(&mut r)?, message: r.vec16()?.rest().to_vec() },
            0x89 => Self::KeyPackage { key: r.array()?, package: r.vec16()?.rest().to_vec() },
            0x8a => Self::Sealed {
                room_seq: u64(&mut r)?,
                from: str8(&mut r)?,
                key: r.array()?,
                message: r.vec16()?.rest().to_vec(),
            },
            0x8b => Self::PackagesLeft { left: r.u16()? },
            0x8c => {
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
            0x07 => Self::GroupCommit {
                epoch: u64(&mut r)?,
                adds: keys(&mut r)?,
                removes: keys(&mut r)?,
                commit: r.vec16()?.rest().to_vec(),
                welcome: r.vec16()?.rest().to_vec(),
            },
            0x08 => Self::GroupSend {
                epoch: u64(&mut r)?,
                seq: u64(&mut r)?,
                message: r.vec16()?.rest().to_vec(),
            },
            0x8d => Self::GroupCommitted {
                room_seq: u64(&mut r)?,
                from: str8(&mut r)?,
                key: r.array()?,
                epoch: u64(&mut r)?,
                adds: keys(&mut r)?,
                removes: keys(&mut r)?,
                commit: r.vec16()?.rest().to_vec(),
            },
            0x8e => Self::GroupWelcome {
                room_seq: u64(&mut r)?,
                from: str8(&mut r)?,
                key: r.array()?,
                index: r.u8()?,
                count: r.u8()?,
                welcome: r.vec16()?.rest().to_vec(),
            },
            0x09 => Self::GroupWelcomePiece {
                epoch: u64(&mut r)?,
                index: r.u8()?,
                count: r.u8()?,
                bytes: r.vec16()?.rest().to_vec(),
            },
            0x8f => Self::GroupMessage {
                room_seq: u64(&mut r)?,
                from: str8(&mut r)?,
                key: r.array()?,
                message: r.vec16()?.rest().to_vec(),
            },
            0x90 => Self::GroupRetry { epoch: u64(&mut r)?, seq: u64(&mut r)? },
            _ => return Err(r.invalid("unknown frame type")),
        };
        r.finish()?;
        Ok(frame)
    }
}

fn put_str8(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    codec::put_bytes(out, LenPrefix::U8, &bytes[..floor_char_boundary(s, 255)]);
}

fn put_str16(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    codec::put_bytes(out, LenPrefix::U16, &bytes[..floor_char_boundary(s, 8 * 1024)]);
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    (0..=max).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

fn put_member(out: &mut Vec<u8>, m: &MemberInfo) {
    put_str8(out, &m.name);
    out.push(m.standing.code());
    out.extend_from_slice(&m.key);
    out.extend_from_slice(&m.idle_secs.to_be_bytes());
}

/// A list of at most [`MAX_GROUP_CHANGES`] keys.
fn put_keys(out: &mut Vec<u8>, keys: &[[u8; 32]]) {
    codec::put_items(out, LenPrefix::U16, keys.iter().take(MAX_GROUP_CHANGES), |out, k| {
        out.extend_from_slice(k)
    });
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
            codec::put_items(&mut body, LenPrefix::U16, std::iter::repeat_n(&one, n), put_member);
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
            let wire: Vec<u8> = list.iter().flat_map(Frame::encode).collect();
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
        assert!(frame.encode().len() <= HEADER + MAX_FRAME);
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
        let mut ack = Frame::Ack { room_seq: 1, seq: 1, private: false }.encode();
        *ack.last_mut().unwrap() = 2;
        assert!(Frame::decode(0x83, &ack[HEADER..]).is_err());
    }

    #[test]
    fn resume_and_resumed_on_the_wire() {
        assert_eq!(Frame::Resume { after: 0x0102 }.encode(), [0x03, 0, 0, 8, 0, 0, 0, 0, 0, 0, 1, 2]);
        let resumed = Frame::Resumed { after: 1, upto: 258, complete: true };
        assert_eq!(resumed.encode(), [0x88, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2, 1]);
        assert_eq!(Frame::decode(0x88, &resumed.encode()[HEADER..]), Ok(resumed));
        // A Resume is exactly eight bytes; a Resumed's flag is a boolean.
        assert!(Frame::decode(0x03, &[0; 7]).is_err());
        assert!(Frame::decode(0x03, &[0; 9]).is_err());
        let mut bad = Frame::Resumed { after: 1, upto: 2, complete: false }.encode();
        *bad.last_mut().unwrap() = 2;
        assert!(Frame::decode(0x88, &bad[HEADER..]).is_err());
    }
}
