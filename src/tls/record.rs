//! The record layer (RFC 8446 §5).
//!
//! [`Deframer`] cuts received bytes into records and enforces the size
//! limits of §5.1 and §5.2 before anything is decrypted. [`Protection`] holds
//! one direction's AEAD key, IV and sequence number: the nonce of each record
//! is the IV XOR the 64-bit sequence number (§5.3), the additional data is the
//! record header (§5.2), and the inner plaintext carries the real content type
//! after the content, followed by optional zero padding (§5.4). Records are
//! sealed and opened in place, so bulk data is copied once on the way in and
//! once on the way out.

use super::crypto::{AeadKey, NONCE_LEN, Secret, TAG_LEN};
use super::error::Error;
use super::messages::{ContentType, TLS12};

/// Largest TLSPlaintext.fragment and TLSInnerPlaintext content: 2^14 (§5.1).
pub const MAX_PLAINTEXT: usize = 1 << 14;
/// Largest TLSCiphertext.encrypted_record: 2^14 + 256 (§5.2).
pub const MAX_CIPHERTEXT: usize = MAX_PLAINTEXT + 256;
/// Length of a record header.
pub const HEADER_LEN: usize = 5;

/// One record as received: its header fields and where its body lies in the
/// deframer's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordRef {
    /// `ContentType type` of the outer record.
    pub(crate) typ: ContentType,
    /// The five header bytes (the AEAD's additional data).
    pub(crate) header: [u8; HEADER_LEN],
    /// Offset of the body in [`Deframer::buffer_mut`].
    pub(crate) start: usize,
    /// Length of the body.
    pub(crate) len: usize,
}

/// Buffers received bytes and yields whole records.
///
/// The buffer is allocated once and reused: the driver may read from the
/// socket straight into [`spare`](Self::spare), and records are opened in
/// place where they landed.
#[derive(Debug, Default)]
pub(crate) struct Deframer {
    buf: Vec<u8>,
    /// Bytes in `buf[..filled]` have been received.
    filled: usize,
    /// Bytes before this offset belong to records already handed out.
    used: usize,
}

impl Deframer {
    /// Adds received bytes.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        let spare = self.spare(bytes.len());
        spare[..bytes.len()].copy_from_slice(bytes);
        self.commit(bytes.len());
    }

    /// Room for at least `min` more received bytes, after dropping the
    /// records already handed out (which invalidates their offsets).
    pub(crate) fn spare(&mut self, min: usize) -> &mut [u8] {
        if self.used > 0 {
            self.buf.copy_within(self.used..self.filled, 0);
            self.filled -= self.used;
            self.used = 0;
        }
        if self.buf.len() - self.filled < min {
            self.buf.resize(self.filled + min, 0);
        }
        &mut self.buf[self.filled..]
    }

    /// Marks `n` bytes of [`spare`](Self::spare) as received.
    pub(crate) fn commit(&mut self, n: usize) {
        self.filled = (self.filled + n).min(self.buf.len());
    }

    /// Gives the buffer's memory back if it holds no byte still to be read.
    pub(crate) fn release_if_empty(&mut self) {
        if self.filled == self.used {
            *self = Self::default();
        }
    }

    /// Bytes of memory the buffer holds.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The next complete record, `Ok(None)` if more bytes are needed.
    ///
    /// The length limit is checked as soon as the header is in, so a peer
    /// cannot make us buffer an oversized record (§5.2: record_overflow).
    pub(crate) fn next_record(&mut self) -> Result<Option<RecordRef>, Error> {
        let avail = &self.buf[self.used..self.filled];
        let Some(header) = avail.get(..HEADER_LEN) else { return Ok(None) };
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(header);
        let typ = ContentType(h[0]);
        let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
        match typ {
            ContentType::APPLICATION_DATA if len > MAX_CIPHERTEXT => return Err(Error::RecordOverflow(len)),
            ContentType::APPLICATION_DATA => {}
            ContentType::HANDSHAKE | ContentType::ALERT | ContentType::CHANGE_CIPHER_SPEC => {
                if len > MAX_PLAINTEXT {
                    return Err(Error::RecordOverflow(len));
                }
            }
            other => {
                return Err(Error::UnexpectedMessage(format!("record of unknown content type {}", other.0)));
            }
        }
        // legacy_record_version is 0x0303, or 0x0301 on a first ClientHello
        // (§5.1); anything not starting 0x03 is not TLS at all.
        if h[1] != 0x03 {
            return Err(Error::Decode(super::codec::InvalidMessage {
                what: "record header",
                why: "not a TLS record (bad legacy_record_version)",
            }));
        }
        if avail.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let start = self.used + HEADER_LEN;
        self.used = start + len;
        Ok(Some(RecordRef { typ, header: h, start, len }))
    }

    /// The buffer that [`RecordRef::start`] indexes into.
    pub(crate) fn buffer_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

/// One direction's record protection: key, IV and sequence number.
#[derive(Debug)]
pub struct Protection {
    key: AeadKey,
    iv: Secret<NONCE_LEN>,
    seq: u64,
}

impl Protection {
    /// Protection starting at sequence number 0 (§5.3: reset on every key change).
    pub fn new(key: AeadKey, iv: Secret<NONCE_LEN>) -> Self {
        Self { key, iv, seq: 0 }
    }

    /// The sequence number of the next record.
    pub(crate) fn sequence(&self) -> u64 {
        self.seq
    }

    /// Nonce of the record at the current sequence number: the number,
    /// left-padded to 12 bytes, XOR the IV (§5.3). The number moves on only
    /// once the record is sealed or has opened (see [`open`](Self::open)).
    fn nonce(&self) -> Result<[u8; NONCE_LEN], Error> {
        // §5.3: a sequence number must never wrap; rekey long before.
        if self.seq == u64::MAX {
            return Err(Error::Internal("record sequence number exhausted"));
        }
        let mut nonce = *self.iv.expose();
        for (n, s) in nonce[NONCE_LEN - 8..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        Ok(nonce)
    }

    /// Appends one protected record holding `payload` of inner type `typ` to `out`.
    /// A `payload` over [`MAX_PLAINTEXT`] bytes is refused (internal_error):
    /// the caller fragments.
    pub fn seal(&mut self, typ: ContentType, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if payload.len() > MAX_PLAINTEXT {
            return Err(Error::Internal("a record's payload is longer than 2^14 bytes"));
        }
        let len = payload.len() + 1 + TAG_LEN;
        let [hi, lo] = u16::try_from(len)
            .map_err(|_| Error::Internal("a record's payload is longer than 2^14 bytes"))?
            .to_be_bytes();
        let nonce = self.nonce()?;
        self.seq += 1;
        let header = [ContentType::APPLICATION_DATA.0, 0x03, 0x03, hi, lo];
        out.reserve(HEADER_LEN + len);
        out.extend_from_slice(&header);
        let body = out.len();
        out.extend_from_slice(payload);
        out.push(typ.0);
        let tag = self.key.seal(&nonce, &header, &mut out[body..]);
        out.extend_from_slice(&tag);
        Ok(())
    }

    /// Opens a protected record in place; returns the inner content type and
    /// the length of the content at the start of `body`.
    ///
    /// A record that fails authentication leaves the sequence number where
    /// it was, so a server can skip 0-RTT records it cannot open and read
    /// the next one at the same number (§4.2.10). Its bytes may have been
    /// altered in place.
    pub fn open(
        &mut self,
        header: &[u8; HEADER_LEN],
        body: &mut [u8],
    ) -> Result<(ContentType, usize), Error> {
        if body.len() < TAG_LEN {
            // Too short to hold a tag: it cannot authenticate.
            return Err(Error::BadRecordMac);
        }
        let nonce = self.nonce()?;
        let (ciphertext, tag) = body.split_at_mut(body.len() - TAG_LEN);
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(tag);
        self.key.open(&nonce, header, ciphertext, &t).map_err(|_| Error::BadRecordMac)?;
        self.seq += 1;
        // §5.4: strip zero padding; the last non-zero byte is the content
        // type. An inner plaintext that is empty or all zeros has none: "If a
        // receiving implementation does not find a non-zero octet in the
        // cleartext, it MUST terminate the connection with an
        // "unexpected_message" alert."
        let Some(type_at) = ciphertext.iter().rposition(|&b| b != 0) else {
            return Err(Error::UnexpectedMessage("a protected record with no content type".into()));
        };
        if type_at > MAX_PLAINTEXT {
            return Err(Error::RecordOverflow(type_at));
        }
        Ok((ContentType(ciphertext[type_at]), type_at))
    }
}

// A fragment's length is written as a uint16.
const _: () = assert!(MAX_PLAINTEXT <= u16::MAX as usize);

/// Appends unprotected records carrying `payload` (fragmented as needed) to `out`.
/// `first_hello` selects legacy_record_version 0x0301, as §5.1 permits for
/// the first ClientHello and as middleboxes expect.
pub fn write_plaintext(typ: ContentType, payload: &[u8], first_hello: bool, out: &mut Vec<u8>) {
    let version: u16 = if first_hello { 0x0301 } else { TLS12 };
    for chunk in payload.chunks(MAX_PLAINTEXT) {
        out.push(typ.0);
        out.extend_from_slice(&version.to_be_bytes());
        // At most MAX_PLAINTEXT bytes, which a uint16 holds (checked below).
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
}
