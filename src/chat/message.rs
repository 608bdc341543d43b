//! The signed chat message: a fixed-layout byte string its author signs
//! with the Ed25519 identity key that mutual TLS proved.
//!
//! ```text
//! label      22 bytes  "tlschat signed message"
//! version     1 byte   1
//! room       32 bytes  the room's id: BLAKE3 fingerprint of the server key
//! author     32 bytes  the author's Ed25519 public key
//! session    16 bytes  random, chosen by the author per connection
//! seq         8 bytes  per author, session and channel, from 1
//! prev       32 bytes  BLAKE3 of the author's previous message in that
//!                      channel (zeros before the first)
//! time_ms     8 bytes  the author's clock, Unix milliseconds
//! kind        1 byte   1 text, 2 action (/me), 3 private
//! recipient  32 bytes  a private message's recipient key; zeros otherwise
//! text_len    2 bytes  at most MAX_TEXT
//! text       text_len  UTF-8
//! signature  64 bytes  Ed25519 over every byte above
//! ```
//!
//! Integers are big-endian; nothing is optional, nothing is a map, and
//! trailing bytes are an error. Receivers check the signature over the
//! bytes they received, never over a re-encoding. A channel is the room
//! (public messages) or one recipient (private ones): each has its own
//! sequence and chain, so a private message to Carol leaves no gap in what
//! Bob sees of Alice.

use std::fmt;
use std::ops::Range;

use super::codes::code_table;
use crate::tls::codec::{InvalidMessage, Reader};
use crate::tls::crypto::{self, Ed25519Key};

/// The context label at the start of every signed message: a signature
/// made for something else can never verify as a chat message.
pub(crate) const LABEL: &[u8; 22] = b"tlschat signed message";
/// The layout's version.
pub(crate) const VERSION: u8 = 1;
/// The longest text a message carries, in bytes of UTF-8.
pub const MAX_TEXT: usize = 4096;
/// Bytes before the text: label through the text's length.
const FIXED: usize = LABEL.len() + 1 + 32 + 32 + 16 + 8 + 32 + 8 + 1 + 32 + 2;
/// An Ed25519 signature.
const SIG_LEN: usize = 64;
/// The longest signed message.
#[cfg(test)]
pub(crate) const MAX_SIGNED: usize = FIXED + MAX_TEXT + SIG_LEN;

code_table! {
    /// What a message is.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Kind {
        /// A line of chat.
        Text = 1 => "text",
        /// An action (`/me waves`).
        Action = 2 => "action",
        /// A line for one member only (`/msg NAME text`).
        Private = 3 => "private",
    }
}

/// The fields of a message, as its author fills them in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    /// The room's id (the server key's fingerprint).
    pub room: [u8; 32],
    /// The author's public key.
    pub author: [u8; 32],
    /// The author's connection.
    pub session: [u8; 16],
    /// Position in the author's channel, from 1.
    pub seq: u64,
    /// BLAKE3 of the previous message in the channel; zeros before the first.
    pub prev: [u8; 32],
    /// The author's clock, Unix milliseconds.
    pub time_ms: u64,
    /// What it is.
    pub kind: Kind,
    /// A private message's recipient key.
    pub recipient: Option<[u8; 32]>,
    /// The text.
    pub text: String,
}

/// Why bytes are not a signed message. The signature is checked apart:
/// a well-formed message with a bad signature is a [`Signed`] whose
/// [`Signed::valid`] is false, so that it can be shown as such.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The layout is wrong.
    #[error("{0}")]
    Malformed(InvalidMessage),
    /// The text is too long to send.
    #[error("the message is {len} bytes long; the most is {MAX_TEXT}")]
    TooLong {
        /// Its length.
        len: usize,
    },
}

impl From<InvalidMessage> for MessageError {
    fn from(e: InvalidMessage) -> Self {
        Self::Malformed(e)
    }
}

impl Fields {
    /// The signed message: the fields in their layout, then the author's
    /// signature over them. `key` must be the key in `author`.
    pub fn sign(&self, key: &Ed25519Key) -> Result<Vec<u8>, MessageError> {
        // The length prefix is two bytes, and the text at most MAX_TEXT:
        // a longer text is refused, never cut.
        let text_len = match u16::try_from(self.text.len()) {
            Ok(n) if usize::from(n) <= MAX_TEXT => n,
            _ => return Err(MessageError::TooLong { len: self.text.len() }),
        };
        let mut out = Vec::with_capacity(FIXED + self.text.len() + SIG_LEN);
        out.extend_from_slice(LABEL);
        out.push(VERSION);
        out.extend_from_slice(&self.room);
        out.extend_from_slice(&self.author);
        out.extend_from_slice(&self.session);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.prev);
        out.extend_from_slice(&self.time_ms.to_be_bytes());
        out.push(self.kind.code());
        out.extend_from_slice(&self.recipient.unwrap_or([0; 32]));
        out.extend_from_slice(&text_len.to_be_bytes());
        out.extend_from_slice(self.text.as_bytes());
        let signature = key.sign(&out);
        out.extend_from_slice(&signature);
        Ok(out)
    }
}

/// A received message: its bytes, its fields and whether its signature holds.
#[derive(Clone, PartialEq, Eq)]
pub struct Signed {
    bytes: Vec<u8>,
    fields: Fields,
    valid: bool,
}

impl fmt::Debug for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed").field("fields", &self.fields).field("valid", &self.valid).finish()
    }
}

impl Signed {
    /// Parses `bytes` and checks the signature over exactly these bytes.
    pub fn open(bytes: &[u8]) -> Result<Self, MessageError> {
        let mut r = Reader::new(bytes, "signed message");
        if r.array::<22>()? != *LABEL {
            return Err(r.invalid("wrong context label").into());
        }
        if r.u8()? != VERSION {
            return Err(r.invalid("unknown version").into());
        }
        let room = r.array()?;
        let author = r.array()?;
        let session = r.array()?;
        let seq = u64::from_be_bytes(r.array()?);
        let prev = r.array()?;
        let time_ms = u64::from_be_bytes(r.array()?);
        let kind = Kind::from_code(r.u8()?).ok_or_else(|| r.invalid("unknown kind"))?;
        let recipient: [u8; 32] = r.array()?;
        let recipient = match (kind, recipient == [0; 32]) {
            (Kind::Private, false) => Some(recipient),
            (Kind::Private, true) => return Err(r.invalid("a private message without a recipient").into()),
            (_, true) => None,
            (_, false) => return Err(r.invalid("a recipient on a public message").into()),
        };
        let text_len = usize::from(r.u16()?);
        if text_len > MAX_TEXT {
            return Err(MessageError::TooLong { len: text_len });
        }
        let text = std::str::from_utf8(r.take(text_len)?).map_err(|_| r.invalid("text is not UTF-8"))?;
        let signed_len = bytes.len() - r.clone().rest().len();
        let signature = r.array::<SIG_LEN>()?;
        r.finish()?;
        if seq == 0 {
            return Err(r.invalid("sequence numbers start at 1").into());
        }
        let valid = crypto::ed25519_verify(&author, &bytes[..signed_len], &signature);
        let fields =
            Fields { room, author, session, seq, prev, time_ms, kind, recipient, text: text.to_owned() };
        Ok(Self { bytes: bytes.to_vec(), fields, valid })
    }

    /// The fields.
    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// Whether the signature holds for these bytes and the author's key.
    pub fn valid(&self) -> bool {
        self.valid
    }

    /// The bytes as received.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// What the next message in this channel carries as `prev`.
    pub fn hash(&self) -> [u8; 32] {
        chain_hash(&self.bytes)
    }
}

/// A message whose signature holds over its bytes for its author's key:
/// the proof the room asks for before it orders a post. Only
/// [`Signed::verified`] makes one, from a message whose signature
/// verified when it was opened, so that whoever holds one need not check
/// again (as the seat's own task checks a post, and the room's task only
/// orders it).
///
/// ```compile_fail
/// // Nothing outside this module can make one without the check.
/// let forged = tlschat::chat::message::Verified(todo!());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Verified(Signed);

impl fmt::Debug for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Verified").field(&self.0).finish()
    }
}

impl Verified {
    /// The message.
    pub(crate) fn message(&self) -> &Signed {
        &self.0
    }
}

impl Signed {
    /// The proof that this message's signature holds; `None` when it
    /// does not.
    pub(crate) fn verified(self) -> Option<Verified> {
        self.valid.then_some(Verified(self))
    }
}

/// BLAKE3 of a signed message: the next message's `prev`.
pub(crate) fn chain_hash(signed: &[u8]) -> [u8; 32] {
    *blake3::hash(signed).as_bytes()
}

/// Each field's name and byte range in a signed message of `text_len`
/// bytes of text, for showing the bytes with their fields marked.
pub fn layout(text_len: usize) -> Vec<(&'static str, Range<usize>)> {
    let widths: [(&'static str, usize); 13] = [
        ("label", LABEL.len()),
        ("version", 1),
        ("room", 32),
        ("author", 32),
        ("session", 16),
        ("seq", 8),
        ("prev", 32),
        ("time_ms", 8),
        ("kind", 1),
        ("recipient", 32),
        ("text_len", 2),
        ("text", text_len),
        ("signature", SIG_LEN),
    ];
    let mut at = 0;
    widths
        .into_iter()
        .map(|(name, width)| {
            let range = at..at + width;
            at += width;
            (name, range)
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tls::SeededRng;
    use proptest::prelude::*;

    fn key(seed: u64) -> Ed25519Key {
        Ed25519Key::generate(&mut SeededRng::new_for_testing_only(seed))
    }

    #[test]
    fn every_kind_code_round_trips_and_unknown_kinds_are_refused() {
        assert_eq!(
            Kind::ALL.iter().map(|k| (k.code(), k.as_str())).collect::<Vec<_>>(),
            [(1, "text"), (2, "action"), (3, "private")]
        );
        for &kind in Kind::ALL {
            assert_eq!(Kind::from_code(kind.code()), Some(kind));
        }
        for code in [0, 4, 0xff] {
            assert_eq!(Kind::from_code(code), None);
        }
        // A signed message of an unknown kind does not parse.
        let k = key(1);
        let mut signed = fields(&k, "hi").sign(&k).unwrap();
        let at = LABEL.len() + 1 + 32 + 32 + 16 + 8 + 32 + 8;
        assert_eq!(signed[at], 1);
        signed[at] = 4;
        assert!(matches!(Signed::open(&signed), Err(MessageError::Malformed(e)) if e.why == "unknown kind"));
    }

    /// A text message's fields by `key`, for tests here and elsewhere.
    pub(crate) fn fields(key: &Ed25519Key, text: &str) -> Fields {
        Fields {
            room: [7; 32],
            author: key.public_key(),
            session: [9; 16],
            seq: 1,
            prev: [0; 32],
            time_ms: 1_700_000_000_000,
            kind: Kind::Text,
            recipient: None,
            text: text.to_owned(),
        }
    }

    #[test]
    fn a_signed_message_opens_to_its_fields_with_a_valid_signature() {
        let k = key(1);
        let f = fields(&k, "hello");
        let bytes = f.sign(&k).unwrap();
        let opened = Signed::open(&bytes).unwrap();
        assert!(opened.valid());
        assert_eq!(opened.fields(), &f);
        assert_eq!(opened.bytes(), bytes.as_slice());
        assert_eq!(bytes.len(), layout(5).last().unwrap().1.end);
    }

    #[test]
    fn every_flipped_bit_outside_the_layout_checks_breaks_the_signature_or_the_parse() {
        let k = key(2);
        let bytes = fields(&k, "hi").sign(&k).unwrap();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            if let Ok(m) = Signed::open(&bad) {
                assert!(!m.valid(), "byte {i} flipped still verifies");
            }
        }
    }

    #[test]
    fn a_message_signed_by_another_key_does_not_verify_for_the_claimed_author() {
        let (k, other) = (key(3), key(4));
        let bytes = fields(&k, "mine").sign(&other).unwrap();
        assert!(!Signed::open(&bytes).unwrap().valid());
    }

    #[test]
    fn layout_errors_are_refused() {
        let k = key(5);
        let bytes = fields(&k, "x").sign(&k).unwrap();
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(Signed::open(&trailing).is_err(), "trailing bytes");
        assert!(Signed::open(&bytes[..bytes.len() - 1]).is_err(), "truncated");
        let mut label = bytes.clone();
        label[0] = b'T';
        assert!(Signed::open(&label).is_err(), "label");
        let mut kind = fields(&k, "x");
        kind.recipient = Some([1; 32]);
        assert!(Signed::open(&kind.sign(&k).unwrap()).is_err(), "recipient on a public message");
        kind.kind = Kind::Private;
        assert!(Signed::open(&kind.sign(&k).unwrap()).unwrap().valid());
        kind.recipient = None;
        assert!(Signed::open(&kind.sign(&k).unwrap()).is_err(), "private without recipient");
        let too_long = fields(&k, &"a".repeat(MAX_TEXT + 1));
        assert!(matches!(too_long.sign(&k), Err(MessageError::TooLong { .. })));
        let longest = fields(&k, &"a".repeat(MAX_TEXT));
        assert_eq!(longest.sign(&k).unwrap().len(), MAX_SIGNED);
        // Past what the two-byte length could even say: refused, not cut.
        let past_u16 = fields(&k, &"a".repeat(usize::from(u16::MAX) + 1));
        assert_eq!(past_u16.sign(&k), Err(MessageError::TooLong { len: 65_536 }));
    }

    #[test]
    fn only_a_message_whose_signature_holds_is_verified() {
        let k = key(7);
        let bytes = fields(&k, "proof").sign(&k).unwrap();
        let verified = Signed::open(&bytes).unwrap().verified().unwrap();
        assert_eq!(verified.message().bytes(), bytes.as_slice());
        assert!(verified.message().valid());
        // Every flipped bit that still parses gives no proof.
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x80;
            if let Ok(m) = Signed::open(&bad) {
                assert!(m.verified().is_none(), "byte {i} flipped is verified");
            }
        }
        // Signed by another key than the author's.
        let other = fields(&k, "proof").sign(&key(8)).unwrap();
        assert!(Signed::open(&other).unwrap().verified().is_none());
    }

    proptest! {
        #[test]
        fn any_fields_round_trip(text in "\\PC{0,64}", seq in 1u64.., time_ms: u64, session: [u8; 16], private: bool) {
            let k = key(6);
            let mut f = fields(&k, &text);
            f.seq = seq;
            f.time_ms = time_ms;
            f.session = session;
            if private {
                f.kind = Kind::Private;
                f.recipient = Some([3; 32]);
            }
            let opened = Signed::open(&f.sign(&k).unwrap()).unwrap();
            prop_assert!(opened.valid());
            prop_assert_eq!(opened.fields(), &f);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Signed::open(&bytes);
        }
    }
}
