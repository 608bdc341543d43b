//! What one relay of a room on a bus (`listen --cluster`) knows of the
//! room's other relays, and the messages it trades with them beside the
//! room's stream. Sans-IO: [`crate::net::cluster`] carries the bytes over core
//! NATS and the room's task feeds them here with the time.
//!
//! - **Who is where.** Every relay sends, every [`HEARTBEAT_MS`], either a
//!   heartbeat (an empty message) or, when its seats changed (and every
//!   [`SNAPSHOT_EVERY`] heartbeats regardless), its whole list of who is
//!   seated: [`Frame::Roster`] frames of the chat protocol, as `/who`
//!   answers a member, the last one marked. A relay unheard for
//!   [`GONE_AFTER_MS`] is gone, with everyone it listed: a relay that dies
//!   without a word drops out of `/who` within that time. [`Peers`] keeps
//!   these lists, bounded ([`MAX_RELAYS`], [`MAX_LISTED`] each).
//! - **End to end across relays.** A `Fetch` for a key seated on another
//!   relay is asked of that relay, which answers with a
//!   [`Frame::KeyPackage`]; a `Seal` for such a key is sent to it as
//!   [`route`] (the key, then the [`Frame::Sealed`] its seats receive),
//!   and it answers with how many seats took it. [`Asked`] matches the
//!   answers with the questions and gives up after [`ANSWER_WAIT_MS`].
//!   These are MLS messages: no relay and no bus can read them.
//! - **Removals.** The host of any relay who kicks or bans a member has
//!   every relay disconnect its seats ([`removal`]); a ban is also kept on
//!   the bus, so that every relay refuses the key from then on.
//!
//! The other relays are trusted as far as the room's stream is: with the
//! order and with who is present, not with what was said (members check
//! every signature, and MLS protects the private messages). Still, what
//! they send is parsed as hostile input: a frame that does not parse, a
//! list longer than announced, an answer nobody asked for are dropped.

use std::collections::HashMap;
use std::sync::Arc;

use super::e2e::{self, wire};
use super::frame::{Frame, MAX_KEY_PACKAGE, MAX_ROSTER, MAX_SEALED, MemberInfo, Standing};
use super::relay::SeatId;
use super::{FrameBuffer, name};

/// How often a relay says it is alive.
pub(crate) const HEARTBEAT_MS: u64 = 1000;

/// A relay unheard this long is gone, and its members with it.
pub(crate) const GONE_AFTER_MS: u64 = 5000;

/// A relay sends its whole list at least every this many heartbeats, even
/// unchanged (a list lost on the way is mended so).
pub(crate) const SNAPSHOT_EVERY: u32 = 10;

/// Other relays followed at most; more are ignored.
pub(crate) const MAX_RELAYS: usize = 64;

/// Members one other relay may list at most.
pub(crate) const MAX_LISTED: usize = 100_000;

/// How long a question to another relay waits for its answer.
pub(crate) const ANSWER_WAIT_MS: u64 = 3000;

/// Questions waiting for answers at most; past this, new ones are refused.
pub(crate) const MAX_ASKED: usize = 4096;

/// A relay's id on the bus: 16 lowercase hex digits.
pub(crate) fn valid_relay_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `members` as [`Frame::Roster`] frames of at most [`MAX_ROSTER`] each,
/// the last marked, with `total` (at least the listed count): one frame,
/// empty, for nobody. What `/who` answers and what a relay tells others.
pub(crate) fn roster_frames(members: &[MemberInfo], total: usize) -> Vec<Vec<u8>> {
    let total = u32::try_from(total.max(members.len())).unwrap_or(u32::MAX);
    if members.is_empty() {
        return vec![Frame::Roster { total, last: true, members: Vec::new() }.wire().to_vec()];
    }
    let chunks: Vec<&[MemberInfo]> = members.chunks(MAX_ROSTER).collect();
    let n = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| Frame::Roster { total, last: i + 1 == n, members: chunk.to_vec() }.wire().to_vec())
        .collect()
}

/// One frame, exactly, or why not.
fn one_frame(bytes: &[u8]) -> Result<Frame, String> {
    let mut buffer = FrameBuffer::default();
    buffer.push(bytes);
    match buffer.next_frame() {
        Ok(Some(frame)) if buffer.pending() == 0 => Ok(frame),
        Ok(_) => Err("not one whole frame".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// One other relay, as last heard.
#[derive(Debug, Default)]
struct Peer {
    heard_ms: u64,
    /// Its last whole list.
    members: Vec<MemberInfo>,
    /// Seats per key in `members`.
    keys: HashMap<[u8; 32], usize>,
    /// A list arriving in several frames, and the count it announced.
    arriving: Vec<MemberInfo>,
    announced: Option<u32>,
}

/// The room's other relays and who is seated on each.
#[derive(Debug, Default)]
pub(crate) struct Peers {
    peers: HashMap<String, Peer>,
}

/// What [`Peers::heard`] learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Heard {
    /// A relay not heard before (it should be sent our list soon).
    pub(crate) new: bool,
    /// Its list changed.
    pub(crate) listed: bool,
}

impl Peers {
    /// A message from the relay `relay` on its roster subject: empty (a
    /// heartbeat) or one [`Frame::Roster`] of its list. A list replaces
    /// the relay's last one when its last frame arrives with as many
    /// members as it announced; anything malformed is refused (and the
    /// list that was arriving dropped), the relay still counted as alive.
    pub(crate) fn heard(&mut self, relay: &str, payload: &[u8], now_ms: u64) -> Result<Heard, String> {
        if !valid_relay_id(relay) {
            return Err(format!("a relay id that is not one: {:?}", crate::chat::printable(relay)));
        }
        let new = !self.peers.contains_key(relay);
        if new && self.peers.len() >= MAX_RELAYS {
            return Err(format!("more than {MAX_RELAYS} other relays: ignored one more"));
        }
        let peer = self.peers.entry(relay.to_owned()).or_default();
        peer.heard_ms = now_ms;
        let mut heard = Heard { new, listed: false };
        if payload.is_empty() {
            return Ok(heard);
        }
        let (total, last, members) = match one_frame(payload) {
            Ok(Frame::Roster { total, last, members }) => (total, last, members),
            Ok(_) => return Err("a relay's list that is not a Roster frame".to_owned()),
            Err(why) => return Err(format!("a relay's list that does not parse: {why}")),
        };
        let fits = peer.announced.is_none_or(|a| a == total)
            && peer.arriving.len() + members.len() <= total as usize
            && total as usize <= MAX_LISTED;
        if !fits {
            peer.arriving.clear();
            peer.announced = None;
            return Err(format!("a relay's list longer than the {total} it announced, or than {MAX_LISTED}"));
        }
        peer.announced = Some(total);
        peer.arriving.extend(members);
        if last {
            peer.announced = None;
            let arrived = std::mem::take(&mut peer.arriving);
            if arrived.len() != total as usize {
                return Err(format!("a relay's list of {} members that announced {total}", arrived.len()));
            }
            peer.keys.clear();
            for m in arrived.iter().filter(|m| m.standing != Standing::Guest) {
                *peer.keys.entry(m.key).or_default() += 1;
            }
            peer.members = arrived;
            heard.listed = true;
        }
        Ok(heard)
    }

    /// Forgets the relays unheard for [`GONE_AFTER_MS`]; returns each with
    /// how many members it listed.
    pub(crate) fn expire(&mut self, now_ms: u64) -> Vec<(String, usize)> {
        let gone: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, p)| now_ms.saturating_sub(p.heard_ms) >= GONE_AFTER_MS)
            .map(|(id, _)| id.clone())
            .collect();
        gone.into_iter().filter_map(|id| self.peers.remove(&id).map(|p| (id, p.members.len()))).collect()
    }

    /// The other relays heard, by id.
    #[cfg(test)]
    pub(crate) fn relays(&self) -> impl Iterator<Item = &str> {
        self.peers.keys().map(String::as_str)
    }

    /// Everyone seated on the other relays.
    pub(crate) fn members(&self) -> impl Iterator<Item = &MemberInfo> {
        self.peers.values().flat_map(|p| p.members.iter())
    }

    /// How many are seated on the other relays.
    pub(crate) fn count(&self) -> usize {
        self.peers.values().map(|p| p.members.len()).sum()
    }

    /// The relays where `key` holds a seat (guests have none), in a
    /// stable order.
    pub(crate) fn holding(&self, key: &[u8; 32]) -> Vec<String> {
        let mut relays: Vec<String> =
            self.peers.iter().filter(|(_, p)| p.keys.contains_key(key)).map(|(id, _)| id.clone()).collect();
        relays.sort();
        relays
    }

    /// The key of the member (not a guest, not a host) seated elsewhere
    /// under `name`, as names compare.
    pub(crate) fn named(&self, name: &str) -> Option<[u8; 32]> {
        let wanted = name::key(name);
        self.members()
            .find(|m| m.standing == Standing::Verified && name::key(&m.name) == wanted)
            .map(|m| m.key)
    }
}

/// What a relay sends another to have a `Sealed` frame delivered to the
/// seats of `to` there: the key, then the frame.
pub(crate) fn route(to: &[u8; 32], sealed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + sealed.len());
    out.extend_from_slice(to);
    out.extend_from_slice(sealed);
    out
}

/// Reads a [`route`]: the recipient and the `Sealed` frame, checked as the
/// sender's relay checked it (an MLS Welcome or private message within the
/// size limit), and encoded again, so that only what parses is passed on.
pub(crate) fn open_route(bytes: &[u8]) -> Result<([u8; 32], Arc<[u8]>), String> {
    let (to, frame) = bytes.split_first_chunk::<32>().ok_or("a routed message shorter than a key")?;
    match one_frame(frame)? {
        Frame::Sealed { room_seq: _, from, key, message } => {
            if message.len() > MAX_SEALED {
                return Err("a routed MLS message over the size limit".to_owned());
            }
            if !matches!(e2e::wire_format(&message), Some(wire::WELCOME | wire::PRIVATE)) {
                return Err("a routed message that is not an MLS Welcome or private message".to_owned());
            }
            let frame =
                Frame::Sealed { room_seq: 0, from, key, message }.encode().map_err(|e| e.to_string())?;
            Ok((*to, frame.into()))
        }
        _ => Err("a routed message that is not a Sealed frame".to_owned()),
    }
}

/// The answer to another relay's fetch: a [`Frame::KeyPackage`] (empty
/// when none is here).
pub(crate) fn package_answer(key: [u8; 32], package: Option<Vec<u8>>) -> Vec<u8> {
    Frame::KeyPackage { key, package: package.unwrap_or_default() }.wire().to_vec()
}

/// The package in another relay's answer for `key`: empty unless it is a
/// key package for that key, within the size limit.
fn open_package(key: [u8; 32], bytes: &[u8]) -> Vec<u8> {
    match one_frame(bytes) {
        Ok(Frame::KeyPackage { key: k, package })
            if k == key
                && package.len() <= MAX_KEY_PACKAGE
                && e2e::wire_format(&package) == Some(wire::KEY_PACKAGE) =>
        {
            package
        }
        _ => Vec::new(),
    }
}

/// The answer to a route: how many seats took it (at most 255).
pub(crate) fn route_answer(seats: usize) -> Vec<u8> {
    vec![u8::try_from(seats).unwrap_or(u8::MAX)]
}

/// A host's removal of a key from the room: `ban` (1) or kick (0), the
/// key, then the name it goes by (for the operators' notes and ban files).
pub(crate) fn removal(key: &[u8; 32], ban: bool, name: &str) -> Vec<u8> {
    let mut out = vec![u8::from(ban)];
    out.extend_from_slice(key);
    out.extend_from_slice(name.as_bytes());
    out
}

/// Reads a [`removal`]: whether it bans, the key, the name (checked by the
/// name rules).
pub(crate) fn open_removal(bytes: &[u8]) -> Result<(bool, [u8; 32], String), String> {
    let (&flag, rest) = bytes.split_first().ok_or("an empty removal")?;
    let (key, name) = rest.split_first_chunk::<32>().ok_or("a removal without a key")?;
    let ban = match flag {
        0 => false,
        1 => true,
        _ => return Err("a removal that neither kicks nor bans".to_owned()),
    };
    let name = std::str::from_utf8(name).map_err(|_| "a removal whose name is not UTF-8")?;
    let name = name::check(name).map_err(|e| format!("a removal naming no valid name: {e}"))?;
    Ok((ban, *key, name.as_str().to_owned()))
}

/// A question to another relay, waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ask {
    Fetch { seat: SeatId, key: [u8; 32] },
    Seal { group: u64 },
}

/// A `Seal` sent to every relay holding the key: answered for the sender
/// once one took it, refused once all said no (or did not answer).
#[derive(Debug)]
struct SealGroup {
    seat: SeatId,
    seq: u64,
    outstanding: usize,
}

/// What an answer (or its absence) means for a seat of this relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Done {
    /// The answer to the seat's fetch: a key package, or empty.
    Package {
        /// Who asked.
        seat: SeatId,
        /// Whose.
        key: [u8; 32],
        /// The package (empty: none).
        package: Vec<u8>,
    },
    /// The seat's `Seal` reached some seat elsewhere, or none.
    Sealed {
        /// Who sent it.
        seat: SeatId,
        /// Its message number (0: a Welcome, not acknowledged).
        seq: u64,
        /// Some seat took it.
        reached: bool,
    },
}

/// Questions to other relays and their answers.
#[derive(Debug, Default)]
pub(crate) struct Asked {
    next: u64,
    asks: HashMap<u64, (u64, Ask)>,
    groups: HashMap<u64, SealGroup>,
}

impl Asked {
    fn ask(&mut self, ask: Ask, now_ms: u64) -> u64 {
        self.next += 1;
        self.asks.insert(self.next, (now_ms + ANSWER_WAIT_MS, ask));
        self.next
    }

    /// Whether none waits.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.asks.is_empty()
    }

    /// `seat` fetches a package of `key`'s from another relay: the id of
    /// the question, or `None` when too many wait.
    pub(crate) fn fetch(&mut self, seat: SeatId, key: [u8; 32], now_ms: u64) -> Option<u64> {
        (self.asks.len() < MAX_ASKED).then(|| self.ask(Ask::Fetch { seat, key }, now_ms))
    }

    /// `seat` seals message `seq` to a key held on `relays` other relays:
    /// one question id per relay, or `None` when too many wait.
    pub(crate) fn seal(&mut self, seat: SeatId, seq: u64, relays: usize, now_ms: u64) -> Option<Vec<u64>> {
        if relays == 0 || self.asks.len() + relays > MAX_ASKED {
            return None;
        }
        let group = self.next + 1;
        self.groups.insert(group, SealGroup { seat, seq, outstanding: relays });
        Some((0..relays).map(|_| self.ask(Ask::Seal { group }, now_ms)).collect())
    }

    /// The answer to question `id`, if one was asked; what it means.
    pub(crate) fn answer(&mut self, id: u64, payload: &[u8]) -> Option<Done> {
        let (_, ask) = self.asks.remove(&id)?;
        match ask {
            Ask::Fetch { seat, key } => {
                Some(Done::Package { seat, key, package: open_package(key, payload) })
            }
            Ask::Seal { group } => self.sealed(group, payload.first().is_some_and(|&n| n > 0)),
        }
    }

    fn sealed(&mut self, group: u64, reached: bool) -> Option<Done> {
        let g = self.groups.get_mut(&group)?;
        g.outstanding -= 1;
        if reached || g.outstanding == 0 {
            let g = self.groups.remove(&group)?;
            return Some(Done::Sealed { seat: g.seat, seq: g.seq, reached });
        }
        None
    }

    /// The questions unanswered for [`ANSWER_WAIT_MS`], as if answered no.
    pub(crate) fn expire(&mut self, now_ms: u64) -> Vec<Done> {
        let late: Vec<u64> =
            self.asks.iter().filter(|(_, (due, _))| *due <= now_ms).map(|(id, _)| *id).collect();
        let mut done = Vec::new();
        for id in late {
            let Some((_, ask)) = self.asks.remove(&id) else { continue };
            let d = match ask {
                Ask::Fetch { seat, key } => Some(Done::Package { seat, key, package: Vec::new() }),
                Ask::Seal { group } => self.sealed(group, false),
            };
            done.extend(d);
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, key: u8, standing: Standing) -> MemberInfo {
        let key = if standing == Standing::Guest { [0; 32] } else { [key; 32] };
        MemberInfo { name: name.into(), standing, key, idle_secs: 0 }
    }

    const A: &str = "00112233445566aa";
    const B: &str = "00112233445566bb";

    fn list(peers: &mut Peers, relay: &str, members: &[MemberInfo], now: u64) {
        for frame in roster_frames(members, members.len()) {
            peers.heard(relay, &frame, now).unwrap();
        }
    }

    #[test]
    fn a_relays_list_arrives_in_frames_and_replaces_the_last_one_when_whole() {
        let mut peers = Peers::default();
        let many: Vec<MemberInfo> = (0..120)
            .map(|i| member(&format!("m{i}"), u8::try_from(i).unwrap(), Standing::Verified))
            .collect();
        let frames = roster_frames(&many, many.len());
        assert_eq!(frames.len(), 3);
        for (i, frame) in frames.iter().enumerate() {
            let heard = peers.heard(A, frame, 10).unwrap();
            assert_eq!(heard, Heard { new: i == 0, listed: i == 2 });
            // Nothing shows until the list is whole.
            assert_eq!(peers.count(), if i == 2 { 120 } else { 0 });
        }
        assert_eq!(peers.holding(&[7; 32]), vec![A.to_owned()]);
        list(&mut peers, A, &[member("solo", 1, Standing::Verified)], 20);
        assert_eq!(peers.count(), 1);
        assert!(peers.holding(&[7; 32]).is_empty());
        // A heartbeat keeps it; an empty list empties it.
        assert_eq!(peers.heard(A, &[], 30).unwrap(), Heard { new: false, listed: false });
        assert_eq!(peers.count(), 1);
        list(&mut peers, A, &[], 40);
        assert_eq!(peers.count(), 0);
    }

    #[test]
    fn a_relay_unheard_for_the_limit_is_gone_with_its_members() {
        let mut peers = Peers::default();
        list(&mut peers, A, &[member("alice", 1, Standing::Verified)], 1000);
        list(
            &mut peers,
            B,
            &[member("bob", 2, Standing::Verified), member("guest-3", 0, Standing::Guest)],
            1000,
        );
        assert_eq!(peers.count(), 3);
        peers.heard(A, &[], 1000 + GONE_AFTER_MS - 1).unwrap();
        assert!(peers.expire(1000 + GONE_AFTER_MS - 1).is_empty());
        assert_eq!(peers.expire(1000 + GONE_AFTER_MS), vec![(B.to_owned(), 2)]);
        assert_eq!(peers.members().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["alice"]);
        assert_eq!(peers.named("ALICE"), Some([1; 32]));
        assert_eq!(peers.named("bob"), None);
        assert!(peers.holding(&[2; 32]).is_empty());
    }

    #[test]
    fn hostile_lists_are_refused_and_leave_the_last_good_one() {
        let mut peers = Peers::default();
        list(&mut peers, A, &[member("alice", 1, Standing::Verified)], 0);
        // Not a relay id; not a frame; not a Roster; more than announced.
        assert!(peers.heard("../../etc", &[], 0).is_err());
        assert!(peers.heard("00112233445566AA", &[], 0).is_err());
        assert!(peers.heard(A, &[1, 2, 3], 0).is_err());
        assert!(peers.heard(A, &Frame::Who.encode().unwrap(), 0).is_err());
        let two = vec![member("x", 5, Standing::Verified); 2];
        let lying = Frame::Roster { total: 1, last: true, members: two.clone() }.encode().unwrap();
        assert!(peers.heard(A, &lying, 0).is_err());
        let short = Frame::Roster { total: 3, last: true, members: two }.encode().unwrap();
        assert!(peers.heard(A, &short, 0).is_err());
        let huge = Frame::Roster { total: u32::MAX, last: false, members: Vec::new() }.encode().unwrap();
        assert!(peers.heard(A, &huge, 0).is_err());
        assert_eq!(peers.members().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["alice"]);
        // At most MAX_RELAYS others.
        for i in 0..MAX_RELAYS as u64 {
            let _ = peers.heard(&format!("{:016x}", i + 1), &[], 0);
        }
        assert_eq!(peers.relays().count(), MAX_RELAYS);
        assert!(peers.heard("ffffffffffffffff", &[], 0).is_err());
    }

    #[test]
    fn routes_and_removals_read_back_and_refuse_what_is_not_theirs() {
        let sealed =
            Frame::Sealed { room_seq: 0, from: "alice".into(), key: [1; 32], message: vec![0, 1, 0, 2, 9] }
                .encode()
                .unwrap();
        let (to, frame) = open_route(&route(&[2; 32], &sealed)).unwrap();
        assert_eq!((to, &frame[..]), ([2; 32], &sealed[..]));
        // Not MLS private or Welcome; not Sealed; cut short; trailing bytes.
        let public = Frame::Sealed { room_seq: 0, from: "a".into(), key: [1; 32], message: vec![0, 1, 0, 1] };
        assert!(open_route(&route(&[2; 32], &public.encode().unwrap())).is_err());
        assert!(open_route(&route(&[2; 32], &Frame::Who.encode().unwrap())).is_err());
        assert!(open_route(&[2; 20]).is_err());
        let mut long = route(&[2; 32], &sealed);
        long.push(0);
        assert!(open_route(&long).is_err());

        assert_eq!(open_removal(&removal(&[3; 32], true, "bob")), Ok((true, [3; 32], "bob".to_owned())));
        assert_eq!(open_removal(&removal(&[3; 32], false, "bob")), Ok((false, [3; 32], "bob".to_owned())));
        assert!(open_removal(&removal(&[3; 32], true, "b\u{1b}[2Jb")).is_err());
        let mut bad = removal(&[3; 32], true, "bob");
        bad[0] = 7;
        assert!(open_removal(&bad).is_err());
        assert!(open_removal(&[1; 10]).is_err());
    }

    #[test]
    fn answers_are_matched_to_questions_and_silence_counts_as_no() {
        let mut asked = Asked::default();
        let package = vec![0, 1, 0, 5, 1, 2, 3];
        let f = asked.fetch(4, [9; 32], 0).unwrap();
        // An answer for another key, or not a key package, is no package.
        let wrong = package_answer([8; 32], Some(package.clone()));
        assert_eq!(asked.answer(f, &wrong), Some(Done::Package { seat: 4, key: [9; 32], package: vec![] }));
        assert_eq!(asked.answer(f, &wrong), None, "answered twice");
        let f = asked.fetch(4, [9; 32], 0).unwrap();
        let right = package_answer([9; 32], Some(package.clone()));
        assert_eq!(asked.answer(f, &right), Some(Done::Package { seat: 4, key: [9; 32], package }));

        // A seal to a key on two relays: one yes is enough, once.
        let ids = asked.seal(5, 11, 2, 0).unwrap();
        assert_eq!(
            asked.answer(ids[0], &route_answer(1)),
            Some(Done::Sealed { seat: 5, seq: 11, reached: true })
        );
        assert_eq!(asked.answer(ids[1], &route_answer(1)), None);
        // Two noes refuse it.
        let ids = asked.seal(5, 12, 2, 0).unwrap();
        assert_eq!(asked.answer(ids[0], &route_answer(0)), None);
        assert_eq!(asked.answer(ids[1], &[]), Some(Done::Sealed { seat: 5, seq: 12, reached: false }));
        // Silence: no, once the wait is over.
        let ids = asked.seal(6, 13, 1, 100).unwrap();
        let f = asked.fetch(6, [1; 32], 100).unwrap();
        assert!(asked.expire(100 + ANSWER_WAIT_MS - 1).is_empty());
        let mut late = asked.expire(100 + ANSWER_WAIT_MS);
        late.sort_by_key(|d| matches!(d, Done::Sealed { .. }));
        assert_eq!(
            late,
            vec![
                Done::Package { seat: 6, key: [1; 32], package: vec![] },
                Done::Sealed { seat: 6, seq: 13, reached: false }
            ]
        );
        assert_eq!(asked.answer(ids[0], &route_answer(1)), None);
        assert_eq!(asked.answer(f, &right), None);
        assert!(asked.is_empty());
        // Bounded.
        for _ in 0..MAX_ASKED {
            asked.fetch(1, [1; 32], 0).unwrap();
        }
        assert!(asked.fetch(1, [1; 32], 0).is_none());
        assert!(asked.seal(1, 1, 1, 0).is_none());
    }

    #[test]
    fn the_who_answer_is_one_empty_frame_for_nobody_and_says_the_whole_count() {
        assert_eq!(
            roster_frames(&[], 0),
            vec![Frame::Roster { total: 0, last: true, members: vec![] }.encode().unwrap()]
        );
        let three = vec![member("a", 1, Standing::Verified); 3];
        let frames = roster_frames(&three, 500);
        assert_eq!(frames, vec![Frame::Roster { total: 500, last: true, members: three }.encode().unwrap()]);
    }
}
