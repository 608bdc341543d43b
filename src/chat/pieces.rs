//! A Welcome carried in pieces. An MLS Welcome holds the group's whole
//! ratchet tree, and at [`super::group::MAX_MEMBERS`] it no longer fits one
//! frame: the committer sends it to the relay as [`Frame::GroupWelcomePiece`]s
//! before its [`Frame::GroupCommit`], and the relay sends it to each member
//! it adds as [`Frame::GroupWelcome`]s, piece `index` of `count` each.
//!
//! Both ends put it together the same way, with an [`Assembly`]: pieces
//! come in order from 0, all with the same tag (the commit's epoch, or
//! the room sequence number) and the same count, at most [`MAX_PIECES`]
//! of them and [`MAX_WELCOME`] bytes in all. Anything else drops what
//! was gathered, and is refused.
//!
//! [`Frame::GroupWelcomePiece`]: super::frame::Frame::GroupWelcomePiece
//! [`Frame::GroupCommit`]: super::frame::Frame::GroupCommit
//! [`Frame::GroupWelcome`]: super::frame::Frame::GroupWelcome

/// The most bytes one piece carries. A [`super::frame::Frame::GroupWelcome`]
/// with the longest name and a piece this long fits a frame. (Unit tests
/// cut smaller pieces, so that a small group's Welcome takes several.)
#[cfg(not(test))]
pub(crate) const PIECE: usize = FULL_PIECE;
/// The most bytes one piece carries (smaller in unit tests, so that a
/// small group's Welcome takes several pieces).
#[cfg(test)]
pub(crate) const PIECE: usize = 256;

/// A piece's length outside unit tests.
pub(crate) const FULL_PIECE: usize = 15 * 1024;
// A GroupWelcome: room_seq, the longest name, key, index, count, the piece.
const _: () = assert!(8 + 1 + 255 + 32 + 1 + 1 + 2 + FULL_PIECE <= super::frame::MAX_FRAME);

/// The most pieces one Welcome is cut in.
pub(crate) const MAX_PIECES: usize = 32;

/// The longest Welcome put together (one at 100 members is about 22 KB).
pub(crate) const MAX_WELCOME: usize = 256 * 1024;

/// A Welcome's pieces: `count` of them, the last possibly shorter. None
/// when it would take more than [`MAX_PIECES`].
pub(crate) fn split(welcome: &[u8]) -> Option<Vec<&[u8]>> {
    let pieces: Vec<&[u8]> = if welcome.is_empty() { vec![welcome] } else { welcome.chunks(PIECE).collect() };
    (pieces.len() <= MAX_PIECES && welcome.len() <= MAX_WELCOME).then_some(pieces)
}

/// A Welcome being put together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Assembly {
    tag: u64,
    count: u8,
    next: u8,
    bytes: Vec<u8>,
}

impl Assembly {
    /// The tag its pieces carry.
    pub(crate) fn tag(&self) -> u64 {
        self.tag
    }

    /// Whether every piece came.
    pub(crate) fn complete(&self) -> bool {
        self.next == self.count
    }

    /// The Welcome, once complete.
    pub(crate) fn welcome(self) -> Option<Vec<u8>> {
        self.complete().then_some(self.bytes)
    }

    /// Piece `index` of `count`, tagged `tag`, into `slot` (piece 0
    /// starts a new Welcome, dropping what was there). Ok(true) when it
    /// was the last; an error (and `slot` emptied) for a piece out of
    /// order, of another tag or count, or over the bounds.
    pub(crate) fn push(
        slot: &mut Option<Assembly>,
        tag: u64,
        index: u8,
        count: u8,
        bytes: &[u8],
    ) -> Result<bool, &'static str> {
        let result = Self::put(slot, tag, index, count, bytes);
        if result.is_err() {
            *slot = None;
        }
        result
    }

    fn put(
        slot: &mut Option<Assembly>,
        tag: u64,
        index: u8,
        count: u8,
        bytes: &[u8],
    ) -> Result<bool, &'static str> {
        if count == 0 || usize::from(count) > MAX_PIECES || index >= count {
            return Err("a Welcome piece numbered out of its bounds");
        }
        if bytes.len() > PIECE || (bytes.is_empty() && count > 1) {
            return Err("a Welcome piece longer than a piece is, or empty");
        }
        if index == 0 {
            *slot = Some(Assembly { tag, count, next: 0, bytes: Vec::new() });
        }
        let Some(a) = slot.as_mut() else {
            return Err("a Welcome piece without the pieces before it");
        };
        if a.tag != tag || a.count != count || a.next != index {
            return Err("a Welcome piece out of order, or of another Welcome");
        }
        if a.bytes.len() + bytes.len() > MAX_WELCOME {
            return Err("a Welcome longer than the room takes");
        }
        a.bytes.extend_from_slice(bytes);
        a.next += 1;
        Ok(a.complete())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_put_back_together_in_order_and_only_so() {
        let welcome: Vec<u8> = (0..3 * PIECE + 7).map(|i| i as u8).collect();
        let pieces = split(&welcome).unwrap();
        assert_eq!(pieces.len(), 4);
        let count = pieces.len() as u8;
        let mut slot = None;
        for (i, p) in pieces.iter().enumerate() {
            let last = Assembly::push(&mut slot, 9, i as u8, count, p).unwrap();
            assert_eq!(last, i + 1 == pieces.len());
        }
        assert_eq!(slot.take().and_then(Assembly::welcome), Some(welcome.clone()));

        // Out of order, a skipped piece, another tag or count: refused, dropped.
        let mut slot = None;
        Assembly::push(&mut slot, 9, 0, count, pieces[0]).unwrap();
        assert!(Assembly::push(&mut slot, 9, 2, count, pieces[2]).is_err());
        assert!(slot.is_none());
        assert!(Assembly::push(&mut slot, 9, 1, count, pieces[1]).is_err(), "nothing to go on from");
        for (tag, c) in [(8, count), (9, count + 1)] {
            Assembly::push(&mut slot, 9, 0, count, pieces[0]).unwrap();
            assert!(Assembly::push(&mut slot, tag, 1, c, pieces[1]).is_err());
            assert!(slot.is_none());
        }
        // Incomplete: no Welcome.
        Assembly::push(&mut slot, 9, 0, count, pieces[0]).unwrap();
        assert_eq!(slot.clone().and_then(Assembly::welcome), None);
        // A new piece 0 starts over.
        Assembly::push(&mut slot, 10, 0, 1, b"whole").unwrap();
        assert_eq!(slot.take().and_then(Assembly::welcome), Some(b"whole".to_vec()));
    }

    #[test]
    fn bounds_hold() {
        let mut slot = None;
        assert!(Assembly::push(&mut slot, 1, 0, 0, b"x").is_err());
        assert!(Assembly::push(&mut slot, 1, 1, 1, b"x").is_err());
        assert!(Assembly::push(&mut slot, 1, 0, MAX_PIECES as u8 + 1, b"x").is_err());
        assert!(Assembly::push(&mut slot, 1, 0, 2, &vec![0; PIECE + 1]).is_err());
        assert!(Assembly::push(&mut slot, 1, 0, 2, b"").is_err());
        assert!(slot.is_none());
        // MAX_PIECES full pieces stay within MAX_WELCOME; more cannot be cut.
        const { assert!(MAX_PIECES * PIECE <= MAX_WELCOME) };
        assert!(split(&vec![0; MAX_PIECES * PIECE + 1]).is_none());
        assert_eq!(split(&vec![0; MAX_PIECES * PIECE]).map(|p| p.len()), Some(MAX_PIECES));
    }
}
