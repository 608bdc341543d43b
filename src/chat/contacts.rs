//! What a member remembers of a room across sessions: which key each name
//! had, and how far it has read each author's sessions.
//!
//! Sans-IO like the rest of `chat`: the driver reads the file, hands the
//! text to [`Contacts::parse`], and writes [`Contacts::to_text`] back when
//! [`Contacts::is_dirty`] says so. A binding is learned only from a
//! signature this member verified itself, never from the relay's word (a
//! roster or a presence notice), so a lying relay cannot plant one.
//!
//! The file, one record a line (`#` starts a comment):
//!
//! ```text
//! contact <key hex> <first seen, Unix ms> <seen|verified> <name>
//! changed <new key hex> <name>
//! session <author key hex> <session hex> <room|private> <last seq> <its time_ms>
//! room-seq <the last room sequence number seen>
//! e2e-room
//! ```
//!
//! `e2e-room` says the relay once said this room is end to end (`listen
//! --e2e`): a later session in which it says otherwise is a downgrade.
//!
//! The last record is where a reconnecting member resumes the room from
//! (its [`Frame::Resume`](super::frame::Frame::Resume)).
//!
//! A name is written with `%XX` for each byte of a space, a control
//! character or `%`, so that every record is one line of words.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::name;
use crate::tls::crypto::hex;

/// The most contacts kept per room: more than any room has members.
pub(crate) const MAX_CONTACTS: usize = 20_000;
/// The most author sessions remembered per room; the oldest go first.
pub(crate) const MAX_SESSIONS: usize = 50_000;

/// One name's key, as this member learned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The name as the room gave it when first seen.
    pub name: String,
    /// The key its messages were signed with.
    pub(crate) key: [u8; 32],
    /// When this member first verified a message of it (Unix ms).
    pub(crate) first_seen_ms: u64,
    /// The user compared safety numbers out of band (`/verify`).
    pub(crate) verified: bool,
    /// Another key seen under this name since, not yet accepted: while it
    /// is set, private messages to the name are refused.
    pub changed_to: Option<[u8; 32]>,
}

/// How far a member has read one author's session in one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionMark {
    /// The highest sequence number verified.
    pub(crate) seq: u64,
    /// Its signed time (Unix ms).
    pub(crate) time_ms: u64,
}

/// An author's session in one channel: key, session id, private or not.
pub(crate) type SessionId = ([u8; 32], [u8; 16], bool);

/// A line of the contacts file that does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} of the contacts file does not read: {why}")]
pub struct ContactsError {
    /// The line, from 1.
    pub(crate) line: usize,
    /// What is wrong with it.
    pub(crate) why: &'static str,
}

/// A room's contacts and session marks.
#[derive(Debug, Clone, Default)]
pub struct Contacts {
    /// By comparison key ([`name_key`]).
    by_name: HashMap<String, Contact>,
    /// Each contact's key, to its comparison key.
    by_key: HashMap<[u8; 32], String>,
    /// The contacts by look ([`name::looks`]): a look-alike of any of
    /// them is found in one lookup per look, whatever the room's size.
    by_look: HashMap<String, Vec<String>>,
    sessions: HashMap<SessionId, SessionMark>,
    /// The last room sequence number this member saw in the room.
    room_seq: Option<u64>,
    /// The room was end to end.
    e2e_room: bool,
    /// Changed since the last [`Self::saved`].
    dirty: bool,
    /// A binding (not only a session mark) changed since then.
    new_binding: bool,
}

/// The form two names are compared in: [`super::name::key`].
pub(crate) fn name_key(name: &str) -> String {
    name::key(name)
}

impl Contacts {
    /// No contacts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a contacts file's text; the first record for a name counts.
    pub fn parse(text: &str) -> Result<Self, ContactsError> {
        let mut out = Self::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why| ContactsError { line: i + 1, why };
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                ["contact", key, first, state, name] => {
                    let key = unhex::<32>(key).ok_or(bad("a key is 64 hex digits"))?;
                    let first_seen_ms = first.parse().map_err(|_| bad("a time is a number"))?;
                    let verified = match *state {
                        "seen" => false,
                        "verified" => true,
                        _ => return Err(bad("a contact is seen or verified")),
                    };
                    let name = unescape(name).ok_or(bad("a name is escaped UTF-8"))?;
                    if out.by_name.len() < MAX_CONTACTS && !out.by_name.contains_key(&name_key(&name)) {
                        out.insert(Contact { name, key, first_seen_ms, verified, changed_to: None });
                    }
                }
                ["changed", key, name] => {
                    let key = unhex::<32>(key).ok_or(bad("a key is 64 hex digits"))?;
                    let name = unescape(name).ok_or(bad("a name is escaped UTF-8"))?;
                    let contact =
                        out.by_name.get_mut(&name_key(&name)).ok_or(bad("a change of an unknown name"))?;
                    contact.changed_to = Some(key);
                }
                ["session", author, session, channel, seq, time] => {
                    let author = unhex::<32>(author).ok_or(bad("a key is 64 hex digits"))?;
                    let session = unhex::<16>(session).ok_or(bad("a session is 32 hex digits"))?;
                    let private = match *channel {
                        "room" => false,
                        "private" => true,
                        _ => return Err(bad("a channel is room or private")),
                    };
                    let seq = seq.parse().map_err(|_| bad("a sequence number is a number"))?;
                    let time_ms = time.parse().map_err(|_| bad("a time is a number"))?;
                    if out.sessions.len() < MAX_SESSIONS {
                        out.sessions.insert((author, session, private), SessionMark { seq, time_ms });
                    }
                }
                ["room-seq", seq] => {
                    out.room_seq = Some(seq.parse().map_err(|_| bad("a sequence number is a number"))?);
                }
                ["e2e-room"] => out.e2e_room = true,
                _ => return Err(bad("not a contact, changed, session, room-seq or e2e-room record")),
            }
        }
        Ok(out)
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut out = String::from(
            "# tlschat: the keys this member verified messages from in one room, and how far\n\
             # it read each author's sessions (docs/PROTOCOL.md, \"What a member remembers\")\n",
        );
        let mut contacts: Vec<&Contact> = self.by_name.values().collect();
        contacts.sort_by(|a, b| (a.first_seen_ms, &a.name).cmp(&(b.first_seen_ms, &b.name)));
        for c in &contacts {
            let state = if c.verified { "verified" } else { "seen" };
            let _ = writeln!(out, "contact {} {} {state} {}", hex(&c.key), c.first_seen_ms, escape(&c.name));
        }
        for c in contacts {
            if let Some(key) = c.changed_to {
                let _ = writeln!(out, "changed {} {}", hex(&key), escape(&c.name));
            }
        }
        let mut sessions: Vec<(&SessionId, &SessionMark)> = self.sessions.iter().collect();
        sessions.sort_by_key(|(id, mark)| (mark.time_ms, **id));
        for ((author, session, private), mark) in sessions {
            let channel = if *private { "private" } else { "room" };
            let _ = writeln!(
                out,
                "session {} {} {channel} {} {}",
                hex(author),
                hex(session),
                mark.seq,
                mark.time_ms
            );
        }
        if let Some(seq) = self.room_seq {
            let _ = writeln!(out, "room-seq {seq}");
        }
        if self.e2e_room {
            out.push_str("e2e-room\n");
        }
        out
    }

    /// Whether something changed since the last `Self::saved`.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Whether a binding changed (learned, changed, accepted, verified,
    /// forgotten) since the last [`Self::saved`]: worth writing at once.
    pub(crate) fn has_new_binding(&self) -> bool {
        self.new_binding
    }

    /// The driver wrote [`Self::to_text`] out.
    pub(crate) fn saved(&mut self) {
        self.dirty = false;
        self.new_binding = false;
    }

    fn touch_binding(&mut self) {
        self.dirty = true;
        self.new_binding = true;
    }

    /// The contact of `name`, compared as `name_key` says.
    pub fn get(&self, name: &str) -> Option<&Contact> {
        self.by_name.get(&name_key(name))
    }

    /// The contact whose key is `key`.
    pub(crate) fn by_key(&self, key: &[u8; 32]) -> Option<&Contact> {
        self.by_key.get(key).and_then(|k| self.by_name.get(k))
    }

    /// Every contact, oldest first.
    pub fn list(&self) -> Vec<&Contact> {
        let mut all: Vec<&Contact> = self.by_name.values().collect();
        all.sort_by(|a, b| (a.first_seen_ms, &a.name).cmp(&(b.first_seen_ms, &b.name)));
        all
    }

    /// Binds `name` to `key`, first seen at `now_ms`; false when the name
    /// or the key is bound already, or the book is full.
    pub fn learn(&mut self, name: &str, key: [u8; 32], now_ms: u64) -> bool {
        if self.by_name.len() >= MAX_CONTACTS
            || self.by_name.contains_key(&name_key(name))
            || self.by_key.contains_key(&key)
        {
            return false;
        }
        self.insert(Contact {
            name: name.to_owned(),
            key,
            first_seen_ms: now_ms,
            verified: false,
            changed_to: None,
        });
        self.touch_binding();
        true
    }

    /// Notes that `name` came with `key`, another key than its own.
    pub(crate) fn changed(&mut self, name: &str, key: [u8; 32]) {
        if let Some(c) = self.by_name.get_mut(&name_key(name))
            && c.key != key
            && c.changed_to != Some(key)
        {
            c.changed_to = Some(key);
            self.touch_binding();
        }
    }

    /// The user accepts the new key of `name`: it replaces the old one,
    /// unverified, first seen now. Returns the new key.
    pub(crate) fn accept(&mut self, name: &str, now_ms: u64) -> Option<[u8; 32]> {
        let k = name_key(name);
        let new = self.by_name.get(&k)?.changed_to?;
        let old = self.remove(&k)?;
        // The new key may be some other contact's: that one gives way.
        if let Some(other) = self.by_key.get(&new).cloned() {
            self.remove(&other);
        }
        self.insert(Contact {
            name: old.name,
            key: new,
            first_seen_ms: now_ms,
            verified: false,
            changed_to: None,
        });
        self.touch_binding();
        Some(new)
    }

    /// The user compared safety numbers: `name`'s key is verified.
    pub fn verify(&mut self, name: &str) -> Option<&Contact> {
        let k = name_key(name);
        if self.by_name.get(&k)?.verified {
            return self.by_name.get(&k);
        }
        self.touch_binding();
        let c = self.by_name.get_mut(&k)?;
        c.verified = true;
        Some(c)
    }

    /// Forgets `name`: the next key seen under it is first seen.
    pub(crate) fn forget(&mut self, name: &str) -> Option<Contact> {
        let c = self.remove(&name_key(name))?;
        self.touch_binding();
        Some(c)
    }

    /// How far this member read `id`, in this or an earlier session.
    pub(crate) fn session(&self, id: &SessionId) -> Option<SessionMark> {
        self.sessions.get(id).copied()
    }

    /// Records a verified message of `id`: its seq and signed time.
    pub(crate) fn read_up_to(&mut self, id: SessionId, seq: u64, time_ms: u64) {
        match self.sessions.get_mut(&id) {
            Some(mark) if mark.seq >= seq => return,
            Some(mark) => *mark = SessionMark { seq, time_ms: time_ms.max(mark.time_ms) },
            None => {
                if self.sessions.len() >= MAX_SESSIONS {
                    self.evict_sessions();
                }
                self.sessions.insert(id, SessionMark { seq, time_ms });
            }
        }
        self.dirty = true;
    }

    /// The last room sequence number this member saw, on any connection.
    pub(crate) fn room_seq(&self) -> Option<u64> {
        self.room_seq
    }

    /// Records that this member saw the room up to `room_seq` (a mark
    /// only moves forward; see [`Self::restart_room_seq`]).
    pub fn saw_room_seq(&mut self, room_seq: u64) {
        if self.room_seq.is_none_or(|seen| room_seq > seen) {
            self.room_seq = Some(room_seq);
            self.dirty = true;
        }
    }

    /// Whether the relay once said this room is end to end.
    pub(crate) fn e2e_room(&self) -> bool {
        self.e2e_room
    }

    /// Remembers that the relay said this room is end to end.
    pub(crate) fn saw_e2e_room(&mut self) {
        if !self.e2e_room {
            self.e2e_room = true;
            self.dirty = true;
            self.new_binding = true;
        }
    }

    /// The room's order started again below the mark (its relay lost its
    /// history): forgets the mark.
    pub fn restart_room_seq(&mut self) {
        if self.room_seq.take().is_some() {
            self.dirty = true;
        }
    }

    /// Drops the oldest tenth of the session marks.
    fn evict_sessions(&mut self) {
        let mut times: Vec<u64> = self.sessions.values().map(|m| m.time_ms).collect();
        let cut = times.len() / 10;
        let (_, &mut bound, _) = times.select_nth_unstable(cut);
        self.sessions.retain(|_, m| m.time_ms > bound);
    }

    /// A contact whose name `name` could pass for without being it (its
    /// comparison key differs): the name imitates theirs.
    pub fn look_alike(&self, name: &str) -> Option<&Contact> {
        let k = name_key(name);
        name::looks(name)
            .iter()
            .filter_map(|look| self.by_look.get(look))
            .flatten()
            .find(|other| **other != k)
            .and_then(|other| self.by_name.get(other))
    }

    fn insert(&mut self, contact: Contact) {
        let k = name_key(&contact.name);
        for look in name::looks(&contact.name) {
            self.by_look.entry(look).or_default().push(k.clone());
        }
        self.by_key.insert(contact.key, k.clone());
        self.by_name.insert(k, contact);
    }

    /// Takes the contact with comparison key `k` out of every index.
    fn remove(&mut self, k: &str) -> Option<Contact> {
        let contact = self.by_name.remove(k)?;
        self.by_key.remove(&contact.key);
        for look in name::looks(&contact.name) {
            if let Some(names) = self.by_look.get_mut(&look) {
                names.retain(|other| other != k);
                if names.is_empty() {
                    self.by_look.remove(&look);
                }
            }
        }
        Some(contact)
    }
}

/// A name as one word of the file.
fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_whitespace() || c.is_control() || c == '%' {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn unescape(word: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(word.len());
    let mut rest = word.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let digits = tail.get(..2)?;
            bytes.push(u8::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok().filter(|n| !n.is_empty())
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    let mut out = [0; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_book_survives_its_own_file() {
        let mut book = Contacts::new();
        assert!(book.learn("alice", [1; 32], 10));
        assert!(book.learn("José Ñ%", [2; 32], 20));
        assert!(!book.learn("ALICE", [3; 32], 30), "a name is bound once, whatever its case");
        assert!(!book.learn("mallory", [1; 32], 30), "a key is bound to one name");
        book.changed("alice", [9; 32]);
        book.verify("José Ñ%").unwrap();
        book.read_up_to(([1; 32], [5; 16], false), 7, 1_000);
        book.read_up_to(([1; 32], [5; 16], false), 3, 900);
        book.saw_room_seq(41);
        book.saw_room_seq(12);
        let text = book.to_text();
        let back = Contacts::parse(&text).unwrap();
        assert_eq!(back.room_seq(), Some(41), "the mark only moves forward, and is kept");
        assert_eq!(back.list(), book.list());
        assert_eq!(back.session(&([1; 32], [5; 16], false)), Some(SessionMark { seq: 7, time_ms: 1_000 }));
        assert_eq!(back.get("josé ñ%").map(|c| c.verified), Some(true));
        assert_eq!(back.get("Alice").and_then(|c| c.changed_to), Some([9; 32]));
        assert_eq!(back.to_text(), text);
    }

    #[test]
    fn accepting_a_changed_key_replaces_the_old_one() {
        let mut book = Contacts::new();
        book.learn("bob", [2; 32], 1);
        assert_eq!(book.accept("bob", 5), None, "nothing to accept before a change");
        book.changed("bob", [7; 32]);
        assert_eq!(book.accept("bob", 5), Some([7; 32]));
        let bob = book.get("bob").unwrap();
        assert_eq!((bob.key, bob.first_seen_ms, bob.verified, bob.changed_to), ([7; 32], 5, false, None));
        assert!(book.by_key(&[2; 32]).is_none());
        assert_eq!(book.forget("BOB").map(|c| c.key), Some([7; 32]));
        assert!(book.learn("bob", [8; 32], 9));
    }

    #[test]
    fn session_marks_are_bounded() {
        let mut book = Contacts::new();
        for i in 0..MAX_SESSIONS as u64 + 10 {
            let mut session = [0; 16];
            session[..8].copy_from_slice(&i.to_be_bytes());
            book.read_up_to(([1; 32], session, false), 1, i);
        }
        assert!(book.sessions.len() <= MAX_SESSIONS);
        let newest = {
            let mut s = [0; 16];
            s[..8].copy_from_slice(&(MAX_SESSIONS as u64 + 9).to_be_bytes());
            s
        };
        assert!(book.session(&([1; 32], newest, false)).is_some(), "the oldest go first");
    }

    #[test]
    fn a_bad_line_is_named() {
        let e = Contacts::parse("# fine\ncontact zz 1 seen bob\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(Contacts::parse(&format!("contact {} 1 trusted bob", hex(&[1; 32]))).is_err());
        assert!(Contacts::parse(&format!("changed {} carol", hex(&[1; 32]))).is_err());
    }

    proptest! {
        #[test]
        fn any_name_is_one_word_and_comes_back(name in "\\PC{1,20}|[ \\t\\n%\\x00-\\x1f]{1,8}") {
            let word = escape(&name);
            prop_assert!(!word.contains(char::is_whitespace));
            prop_assert_eq!(unescape(&word), Some(name));
        }

        #[test]
        fn the_index_by_look_finds_what_a_scan_of_every_contact_finds(
            names in proptest::collection::vec("[a-z0-9]{1,6}|[a-zA-Z\u{430}-\u{44f}1lIO0]{1,5}", 1..12),
            probe in "[a-zA-Z0-9\u{430}-\u{44f}]{1,6}",
            forget in 0usize..12,
        ) {
            let mut book = Contacts::new();
            for (i, n) in names.iter().enumerate() {
                book.learn(n, [i as u8 + 1; 32], 0);
            }
            if let Some(gone) = names.get(forget) {
                book.forget(gone);
            }
            let known: Vec<String> = book.list().iter().map(|c| c.name.clone()).collect();
            let scanned = name::lookalike(&probe, known.iter().map(String::as_str));
            let indexed = book.look_alike(&probe).map(|c| c.name.as_str());
            prop_assert_eq!(scanned.is_some(), indexed.is_some(), "{:?} among {:?}", probe, known);
            if let Some(found) = indexed {
                prop_assert!(name::is_confusable_with(&probe, found) && name_key(&probe) != name_key(found));
            }
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,200}") {
            let _ = Contacts::parse(&text);
        }
    }
}
