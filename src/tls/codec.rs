//! Reading and writing the TLS presentation language (RFC 8446 §3).
//!
//! [`Reader`] walks a byte slice and fails with [`InvalidMessage`] instead of
//! panicking; every length-prefixed vector is read as a sub-reader so a length
//! that overruns its parent is caught where it is declared. The writers append
//! to a `Vec<u8>` and patch length prefixes afterwards.

use std::fmt;

/// Why bytes could not be decoded as the message they claimed to be.
///
/// Each of these becomes a `decode_error` alert (RFC 8446 §6.2), except where
/// the caller maps a specific case to a more precise alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidMessage {
    /// The structure being decoded, e.g. "ClientHello".
    pub(crate) what: &'static str,
    /// What was wrong with it.
    pub(crate) why: &'static str,
}

impl fmt::Display for InvalidMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed {}: {}", self.what, self.why)
    }
}

/// A cursor over received bytes that never reads past its end.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Reads `buf`, which holds a `what` (named in errors).
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    /// An error about the structure being read.
    pub(crate) fn invalid(&self, why: &'static str) -> InvalidMessage {
        InvalidMessage { what: self.what, why }
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], InvalidMessage> {
        if self.buf.len() < n {
            return Err(self.invalid("truncated"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], InvalidMessage> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// A `uint8`.
    pub(crate) fn u8(&mut self) -> Result<u8, InvalidMessage> {
        Ok(self.array::<1>()?[0])
    }

    /// A `uint16`.
    pub(crate) fn u16(&mut self) -> Result<u16, InvalidMessage> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A `uint24`.
    pub(crate) fn u24(&mut self) -> Result<u32, InvalidMessage> {
        let [a, b, c] = self.array()?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }

    /// A vector with a one-byte length prefix (`<0..2^8-1>`), as a sub-reader.
    pub(crate) fn vec8(&mut self) -> Result<Reader<'a>, InvalidMessage> {
        let n = usize::from(self.u8()?);
        Ok(Reader::new(self.take(n)?, self.what))
    }

    /// A vector with a two-byte length prefix (`<0..2^16-1>`), as a sub-reader.
    pub(crate) fn vec16(&mut self) -> Result<Reader<'a>, InvalidMessage> {
        let n = usize::from(self.u16()?);
        Ok(Reader::new(self.take(n)?, self.what))
    }

    /// A vector with a three-byte length prefix (`<0..2^24-1>`), as a sub-reader.
    pub(crate) fn vec24(&mut self) -> Result<Reader<'a>, InvalidMessage> {
        let n = self.u24()? as usize;
        Ok(Reader::new(self.take(n)?, self.what))
    }

    /// The rest of a vector as a list of `uint16` codes (a
    /// `CipherSuite`, `NamedGroup`, `SignatureScheme` or `ProtocolVersion`
    /// list), of at least `min` items: a list below the floor its RFC
    /// declares (`<2..2^16-2>` is at least one item), or of an odd number of
    /// bytes, does not parse. One pass over the bytes.
    pub(crate) fn u16_items<T>(
        &mut self,
        min: usize,
        item: impl Fn(u16) -> T,
    ) -> Result<Vec<T>, InvalidMessage> {
        let bytes = self.rest();
        if !bytes.len().is_multiple_of(2) {
            return Err(self.invalid("a list of 16-bit codes has an odd length"));
        }
        if bytes.len() / 2 < min {
            return Err(self.invalid("a list is shorter than its minimum length"));
        }
        Ok(bytes.chunks_exact(2).map(|c| item(u16::from_be_bytes([c[0], c[1]]))).collect())
    }

    /// Reads the items of a vector until it is used up, each with `item`,
    /// and at least `min` of them (`<1..2^16-1>` is at least one item): the
    /// one loop for lists whose items have a shape of their own.
    pub(crate) fn items<T, E: From<InvalidMessage>>(
        &mut self,
        min: usize,
        mut item: impl FnMut(&mut Self) -> Result<T, E>,
    ) -> Result<Vec<T>, E> {
        let mut out = Vec::new();
        while !self.is_empty() {
            out.push(item(self)?);
        }
        if out.len() < min {
            return Err(self.invalid("a list is shorter than its minimum length").into());
        }
        Ok(out)
    }

    /// Everything not yet read.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Whether everything has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Fails unless everything has been read: trailing bytes are an error.
    pub(crate) fn finish(&self) -> Result<(), InvalidMessage> {
        if self.buf.is_empty() { Ok(()) } else { Err(self.invalid("trailing bytes")) }
    }
}

/// A set of 16-bit wire codes (extension types, groups) with constant-time
/// insertion and lookup, so that the duplicate checks over a hello of
/// thousands of entries stay linear. Allocates its 8 KiB on first insert.
#[derive(Debug, Clone, Default)]
pub(crate) struct CodeSet {
    bits: Option<Box<[u64; 1024]>>,
}

impl CodeSet {
    /// An empty set.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds `code`; false if it was already in the set.
    pub(crate) fn insert(&mut self, code: u16) -> bool {
        let (word, bit) = (usize::from(code >> 6), 1u64 << (code & 63));
        let bits = self.bits.get_or_insert_with(|| Box::new([0; 1024]));
        let fresh = bits[word] & bit == 0;
        bits[word] |= bit;
        fresh
    }

    /// Whether `code` is in the set.
    pub(crate) fn contains(&self, code: u16) -> bool {
        self.bits.as_ref().is_some_and(|bits| bits[usize::from(code >> 6)] & (1u64 << (code & 63)) != 0)
    }
}

/// Appends a `uint16`.
pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Width of a vector's length prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LenPrefix {
    /// `<0..2^8-1>`
    U8,
    /// `<0..2^16-1>`
    U16,
    /// `<0..2^24-1>`
    U24,
}

impl LenPrefix {
    /// How many bytes the prefix takes.
    fn width(self) -> usize {
        match self {
            Self::U8 => 1,
            Self::U16 => 2,
            Self::U24 => 3,
        }
    }

    /// The longest vector the prefix can declare.
    pub(crate) fn max(self) -> usize {
        (1 << (8 * self.width())) - 1
    }
}

/// A vector longer than its length prefix can declare: the writer refuses it
/// rather than write a length that wraps. On the engine's side this is a
/// local failure (an `internal_error`), never something a peer caused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong {
    /// The prefix that could not hold the length.
    pub(crate) prefix: LenPrefix,
    /// The length that did not fit.
    pub(crate) len: usize,
}

impl fmt::Display for TooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a vector of {} bytes does not fit a length prefix of at most {}",
            self.len,
            self.prefix.max()
        )
    }
}

impl std::error::Error for TooLong {}

/// Appends a vector: a length prefix of the given width, then what `body` writes.
///
/// The length is patched in after `body` runs, so nested vectors are written
/// in one pass without intermediate buffers. A body longer than the prefix
/// allows is refused: `out` is cut back to where it was and the error says
/// so; no length is ever written from a value that does not fit.
pub(crate) fn put_vec(
    out: &mut Vec<u8>,
    prefix: LenPrefix,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), TooLong>,
) -> Result<(), TooLong> {
    let width = prefix.width();
    let at = out.len();
    out.resize(at + width, 0);
    if let Err(e) = body(out) {
        out.truncate(at);
        return Err(e);
    }
    let len = out.len() - at - width;
    match u32::try_from(len) {
        Ok(n) if len <= prefix.max() => {
            out[at..at + width].copy_from_slice(&n.to_be_bytes()[4 - width..]);
            Ok(())
        }
        _ => {
            out.truncate(at);
            Err(TooLong { prefix, len })
        }
    }
}

/// Appends a vector of `items`, each written by `item`: the one loop for
/// writing lists, as [`Reader::items`] is for reading them.
pub(crate) fn put_items<T>(
    out: &mut Vec<u8>,
    prefix: LenPrefix,
    items: impl IntoIterator<Item = T>,
    mut item: impl FnMut(&mut Vec<u8>, T) -> Result<(), TooLong>,
) -> Result<(), TooLong> {
    put_vec(out, prefix, |out| items.into_iter().try_for_each(|i| item(out, i)))
}

/// Appends a vector of `uint16` codes (a `CipherSuite`, `NamedGroup`,
/// `SignatureScheme` or `ProtocolVersion` list), as [`Reader::u16_items`]
/// reads one.
pub(crate) fn put_u16_items(
    out: &mut Vec<u8>,
    prefix: LenPrefix,
    codes: impl IntoIterator<Item = u16>,
) -> Result<(), TooLong> {
    put_items(out, prefix, codes, |out, code| {
        put_u16(out, code);
        Ok(())
    })
}

/// Appends `bytes` as a vector with the given length prefix; refused, with
/// nothing written, if they do not fit it.
pub(crate) fn put_bytes(out: &mut Vec<u8>, prefix: LenPrefix, bytes: &[u8]) -> Result<(), TooLong> {
    if bytes.len() > prefix.max() {
        return Err(TooLong { prefix, len: bytes.len() });
    }
    put_vec(out, prefix, |out| {
        out.extend_from_slice(bytes);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_length_overrunning_its_parent_is_rejected() {
        let mut r = Reader::new(&[0, 5, 1, 2], "test");
        assert_eq!(r.vec16().unwrap_err().why, "truncated");
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut r = Reader::new(&[1, 2], "test");
        r.u8().unwrap();
        assert!(r.finish().is_err());
        r.u8().unwrap();
        assert!(r.finish().is_ok());
    }

    #[test]
    fn u16_items_refuse_odd_lengths_and_lists_below_their_floor() {
        assert_eq!(Reader::new(&[0, 1, 0, 2], "test").u16_items(1, |v| v).unwrap(), [1, 2]);
        assert!(Reader::new(&[0, 1, 0], "test").u16_items(1, |v| v).is_err());
        assert!(Reader::new(&[], "test").u16_items(1, |v| v).is_err());
        assert_eq!(Reader::new(&[], "test").u16_items(0, |v| v).unwrap(), Vec::<u16>::new());
    }

    #[test]
    fn items_reads_a_list_to_its_end_and_enforces_its_floor() {
        let mut r = Reader::new(&[1, 7, 2, 8, 9], "test");
        let lists = r.items(1, |r| Ok::<_, InvalidMessage>(r.vec8()?.rest().to_vec())).unwrap();
        assert_eq!(lists, [vec![7], vec![8, 9]]);
        assert!(r.is_empty());
        let mut r = Reader::new(&[], "test");
        assert!(r.items(1, |r| r.u8()).is_err());
        let mut r = Reader::new(&[2, 7], "test");
        assert_eq!(r.items(0, |r| r.vec8().map(|_| ())).unwrap_err().why, "truncated");
    }

    #[test]
    fn lists_written_with_put_items_read_back_with_items() {
        let lists: [&[u8]; 3] = [b"h2", b"", b"tlschat/1"];
        let mut out = Vec::new();
        put_items(&mut out, LenPrefix::U16, lists, |out, p| put_bytes(out, LenPrefix::U8, p)).unwrap();
        assert_eq!(out[..2], [0, 2 + 1 + 1 + 9 + 1]);
        let mut r = Reader::new(&out, "test");
        let read = r.vec16().unwrap().items(0, |r| Ok::<_, InvalidMessage>(r.vec8()?.rest())).unwrap();
        assert_eq!(read, lists);
        r.finish().unwrap();

        let mut out = Vec::new();
        put_u16_items(&mut out, LenPrefix::U8, [0x0304, 0x0303]).unwrap();
        assert_eq!(out, [4, 3, 4, 3, 3]);
        assert_eq!(Reader::new(&out[1..], "test").u16_items(1, |v| v).unwrap(), [0x0304, 0x0303]);
        let mut out = Vec::new();
        put_u16_items(&mut out, LenPrefix::U16, []).unwrap();
        assert_eq!(out, [0, 0]);
    }

    #[test]
    fn a_code_set_finds_each_code_once_over_the_whole_range() {
        let mut set = CodeSet::new();
        assert!(!set.contains(0));
        for code in [0, 63, 64, 0x0807, u16::MAX] {
            assert!(set.insert(code), "{code}");
            assert!(!set.insert(code), "{code} twice");
            assert!(set.contains(code));
        }
        assert!(!set.contains(1) && !set.contains(u16::MAX - 1));
    }

    #[test]
    fn nested_vectors_are_written_with_patched_lengths() {
        let mut out = Vec::new();
        put_vec(&mut out, LenPrefix::U24, |out| {
            put_bytes(out, LenPrefix::U8, b"ab")?;
            put_u16(out, 0x0304);
            Ok(())
        })
        .unwrap();
        assert_eq!(out, [0, 0, 5, 2, b'a', b'b', 3, 4]);
        let mut r = Reader::new(&out, "test");
        let mut inner = r.vec24().unwrap();
        assert_eq!(inner.vec8().unwrap().rest(), b"ab");
        assert_eq!(inner.u16().unwrap(), 0x0304);
        inner.finish().unwrap();
        r.finish().unwrap();
    }

    #[test]
    fn each_prefix_takes_exactly_its_maximum_and_refuses_one_more() {
        for (prefix, max) in [(LenPrefix::U8, 255), (LenPrefix::U16, 65_535), (LenPrefix::U24, (1 << 24) - 1)]
        {
            assert_eq!(prefix.max(), max);
            let mut out = vec![9];
            put_bytes(&mut out, prefix, &vec![7; max]).unwrap();
            let mut r = Reader::new(&out[1..], "test");
            let body = match prefix {
                LenPrefix::U8 => r.vec8(),
                LenPrefix::U16 => r.vec16(),
                LenPrefix::U24 => r.vec24(),
            };
            assert_eq!(body.unwrap().rest().len(), max);
            r.finish().unwrap();

            let mut out = vec![9];
            assert_eq!(put_bytes(&mut out, prefix, &vec![7; max + 1]), Err(TooLong { prefix, len: max + 1 }));
            assert_eq!(out, [9], "a refused vector leaves nothing behind");
        }
    }

    #[test]
    fn a_vector_whose_body_outgrows_its_prefix_is_refused_and_cut_back() {
        let fill = |n: usize| {
            move |out: &mut Vec<u8>| -> Result<(), TooLong> {
                out.resize(out.len() + n, 1);
                Ok(())
            }
        };
        let mut out = vec![9];
        put_vec(&mut out, LenPrefix::U16, fill(65_535)).unwrap();
        assert_eq!(out[1..3], [0xff, 0xff]);
        assert_eq!(out.len(), 1 + 2 + 65_535);

        let mut out = vec![9];
        let e = put_vec(&mut out, LenPrefix::U16, fill(65_536)).unwrap_err();
        assert_eq!(e, TooLong { prefix: LenPrefix::U16, len: 65_536 });
        assert_eq!(out, [9]);

        // An inner refusal travels out through every enclosing vector.
        let mut out = vec![9];
        let e = put_vec(&mut out, LenPrefix::U24, |out| {
            put_u16(out, 1);
            put_bytes(out, LenPrefix::U8, &[0; 256])
        })
        .unwrap_err();
        assert_eq!(e, TooLong { prefix: LenPrefix::U8, len: 256 });
        assert_eq!(out, [9]);

        // A list whose items add up past the prefix is refused as a whole.
        let mut out = Vec::new();
        put_u16_items(&mut out, LenPrefix::U8, (0..127).map(|_| 0)).unwrap();
        assert_eq!(out[0], 254);
        let mut out = Vec::new();
        let e = put_u16_items(&mut out, LenPrefix::U8, (0..128).map(|_| 0)).unwrap_err();
        assert_eq!(e, TooLong { prefix: LenPrefix::U8, len: 256 });
        assert!(out.is_empty());
    }
}
