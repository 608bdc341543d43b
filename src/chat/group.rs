//! The relay's side of an end-to-end room (`listen --e2e`): the room is one
//! MLS group (RFC 9420), and the relay is its Delivery Service. Sans-IO:
//! [`super::relay`] calls it from a few hooks (a member seated, gone, a key
//! package published, a group frame received) and sends what it returns.
//!
//! The relay cannot read the group, so it keeps only what it can check
//! from the frames' clear parts and MLS headers: the group's id and epoch,
//! which keys are in it (by the adds and removes that accepted commits
//! declared), which seats wait to be added, which keys must be removed
//! (their seat left), and which member commits those changes: the
//! *committer*, the member longest in the group whose seat is still here.
//!
//! - When there is work and no task is out for this epoch, the committer
//!   gets a [`Frame::GroupTask`]: make the group (`create`, when there is
//!   none: the first member seated makes it, and a new one is made if
//!   every member has gone), remove keys whose seats left, or add waiting
//!   members with a key package each of them published. Removals come
//!   before additions, so that a key that comes back is removed then added
//!   in two commits (one leaf per key at any time).
//! - A [`Frame::GroupCommit`] is taken only from a member of the group, at
//!   the group's epoch (else [`Frame::GroupRetry`]); what it adds and
//!   removes must be part of the committer's task (a commit may leave out
//!   a member whose key package it found bad: that member waits for the
//!   next task), and any other member may only commit a pure self-Update.
//!   Taken, it gets the next room sequence number, the epoch moves on, and
//!   it goes to every member of the group as [`Frame::GroupCommitted`] (the
//!   committer's own copy is how it learns that its commit won), with a
//!   the [`Frame::GroupWelcome`]s to each member it adds. A rival commit
//!   for the same epoch is then stale: its maker discards it.
//! - The Welcome of a commit that adds comes before it in
//!   [`Frame::GroupWelcomePiece`]s (see [`super::pieces`]): one Welcome
//!   is put together per seat, dropped when the seat leaves and taken by
//!   the seat's next commit (which refuses it if it is for another epoch
//!   or incomplete). A piece out of order or over the bounds is refused
//!   (a strike), and what was gathered dropped.
//! - A [`Frame::GroupSend`] is taken only from a member of the group at the
//!   group's epoch (else [`Frame::GroupRetry`], and the member seals the
//!   same signed line again): numbered, [`Frame::GroupMessage`] to every
//!   other member, [`Frame::Ack`] to its author. Nothing of it is kept:
//!   an end-to-end room has no history.

use std::collections::HashMap;
use std::sync::Arc;

use super::e2e::{E2e, wire};
use super::frame::{Frame, MAX_GROUP_CHANGES, MAX_GROUP_MESSAGE};
use super::pieces::{self, Assembly};
use super::relay::SeatId;

/// The most members an end-to-end room holds. The Welcome a joiner gets
/// carries the whole ratchet tree and comes in pieces
/// ([`super::pieces`]); the commit that adds [`MAX_GROUP_CHANGES`]
/// members to a group of this size must still fit one frame
/// ([`super::frame::MAX_FRAME`]), as this module's tests measure.
pub(crate) const MAX_MEMBERS: usize = 100;

/// The longest MLS commit, or Welcome carried whole, a [`Frame::GroupCommit`] carries.
pub(crate) const MAX_COMMIT: usize = super::frame::MAX_FRAME - 1024;

/// How long the committer has for a task before the next member in line
/// gets it (a member that does not answer must not stop the room's group).
pub(crate) const TASK_WAIT_MS: u64 = 30_000;

/// A key in the group, and its seat (`None`: gone, to be removed).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Leaf {
    key: [u8; 32],
    seat: Option<SeatId>,
}

/// The task out to the committer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Task {
    at_ms: u64,
    epoch: u64,
    committer: SeatId,
    create: bool,
    adds: Vec<[u8; 32]>,
    removes: Vec<[u8; 32]>,
}

/// Why a group frame was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// For another epoch than the group's: a [`Frame::GroupRetry`] with
    /// the group's epoch (and the line's `seq`, 0 for a commit) goes back
    /// to the sender; no strike (commits cross on the way).
    Retry {
        /// The group's epoch now.
        epoch: u64,
        /// The refused line's sequence number; 0 for a commit.
        seq: u64,
    },
    /// Not taken, and said why; a strike.
    Refused(String),
}

/// The room's group, as the relay follows it.
#[derive(Debug, Default)]
pub(crate) struct Group {
    /// The group's id, once a member made it.
    id: Option<Vec<u8>>,
    /// Its epoch (0 while there is none).
    epoch: u64,
    /// Its members' keys in the order they entered.
    leaves: Vec<Leaf>,
    /// Seats waiting to be added, in the order they came.
    waiting: Vec<(SeatId, [u8; 32])>,
    task: Option<Task>,
    /// Members that let a task go unanswered: passed over as committers
    /// until they commit something.
    stalled: Vec<SeatId>,
    /// The Welcome each seat is sending in pieces, tagged with its epoch.
    assembling: HashMap<SeatId, Assembly>,
}

/// Frames to send: (seat, encoded frame).
pub(crate) type Sends = Vec<(SeatId, Arc<[u8]>)>;

impl Group {
    /// A room with no group yet.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The group's epoch (0: no group).
    #[cfg(test)]
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Whether the group exists.
    #[cfg(test)]
    pub(crate) fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// The keys in the group, in the order they entered.
    #[cfg(test)]
    pub(crate) fn keys(&self) -> Vec<[u8; 32]> {
        self.leaves.iter().map(|l| l.key).collect()
    }

    /// Whether this seat is in the group.
    pub(crate) fn holds(&self, seat: SeatId) -> bool {
        self.leaves.iter().any(|l| l.seat == Some(seat))
    }

    /// Whether this seat waits to be added.
    pub(crate) fn is_waiting(&self, seat: SeatId) -> bool {
        self.waiting.iter().any(|(s, _)| *s == seat)
    }

    /// The committer: the member longest in the group still seated (and
    /// not passed over for a task it let go unanswered, unless all were).
    pub(crate) fn committer(&self) -> Option<SeatId> {
        let seated = || self.leaves.iter().filter_map(|l| l.seat);
        seated().find(|s| !self.stalled.contains(s)).or_else(|| seated().next())
    }

    /// At `now_ms`: a task out for longer than [`TASK_WAIT_MS`] is taken
    /// back and its committer passed over; true if so (a new task is due).
    pub(crate) fn overdue(&mut self, now_ms: u64) -> bool {
        let Some(task) = &self.task else { return false };
        if now_ms.saturating_sub(task.at_ms) < TASK_WAIT_MS {
            return false;
        }
        self.stalled.push(task.committer);
        self.task = None;
        true
    }

    /// A member was seated: it waits to be added.
    pub(crate) fn joined(&mut self, seat: SeatId, key: [u8; 32]) {
        if !self.is_waiting(seat) && !self.holds(seat) {
            self.waiting.push((seat, key));
        }
    }

    /// A seat left: it no longer waits, or its key is to be removed. When
    /// no member of the group is left, the group is over: the next member
    /// makes a new one.
    pub(crate) fn left(&mut self, seat: SeatId) {
        self.waiting.retain(|(s, _)| *s != seat);
        self.stalled.retain(|s| *s != seat);
        self.assembling.remove(&seat);
        for leaf in &mut self.leaves {
            if leaf.seat == Some(seat) {
                leaf.seat = None;
            }
        }
        if self.task.as_ref().is_some_and(|t| t.committer == seat) {
            self.task = None;
        }
        if self.id.is_some() && self.committer().is_none() {
            *self = Self {
                waiting: std::mem::take(&mut self.waiting),
                assembling: std::mem::take(&mut self.assembling),
                ..Self::default()
            };
        }
    }

    /// The task for the committer, if there is work and none is out for
    /// this epoch. `package` hands out one key package a waiting seat
    /// published (`None`: it has none, and waits).
    pub(crate) fn next_task(
        &mut self,
        now_ms: u64,
        package: &mut dyn FnMut(SeatId) -> Option<Vec<u8>>,
    ) -> Option<(SeatId, Frame)> {
        if self.task.is_some() {
            return None;
        }
        let (committer, create) = match self.committer() {
            Some(seat) => (seat, false),
            None => (self.waiting.first()?.0, true),
        };
        let removes: Vec<[u8; 32]> = if create {
            Vec::new()
        } else {
            self.leaves.iter().filter(|l| l.seat.is_none()).map(|l| l.key).take(MAX_GROUP_CHANGES).collect()
        };
        let mut add = Vec::new();
        if removes.is_empty() {
            let room = MAX_MEMBERS.saturating_sub(self.leaves.len() + usize::from(create));
            for &(seat, key) in &self.waiting {
                if add.len() >= MAX_GROUP_CHANGES.min(room) {
                    break;
                }
                // A key still in the group (its old seat's leaf) waits for its removal.
                if seat == committer || self.leaves.iter().any(|l| l.key == key) {
                    continue;
                }
                if add.iter().any(|(k, _)| *k == key) {
                    continue;
                }
                if let Some(p) = package(seat) {
                    add.push((key, p));
                }
            }
        }
        if !create && removes.is_empty() && add.is_empty() {
            return None;
        }
        let task = Task {
            at_ms: now_ms,
            epoch: self.epoch,
            committer,
            create,
            adds: add.iter().map(|(k, _)| *k).collect(),
            removes: removes.clone(),
        };
        self.task = Some(task);
        Some((committer, Frame::GroupTask { epoch: self.epoch, create, add, remove: removes }))
    }

    /// Piece `index` of `count` of the Welcome that `seat`'s next commit,
    /// at `epoch`, needs. Kept until that commit (or the seat leaves).
    pub(crate) fn piece(
        &mut self,
        seat: SeatId,
        epoch: u64,
        index: u8,
        count: u8,
        bytes: &[u8],
    ) -> Result<Sends, Refusal> {
        let committer = self.task.as_ref().is_some_and(|t| t.committer == seat);
        if !committer && !self.holds(seat) {
            self.assembling.remove(&seat);
            return Err(Refusal::Refused(
                "a Welcome piece from a member who is not in the room's group".into(),
            ));
        }
        let mut slot = self.assembling.remove(&seat);
        Assembly::push(&mut slot, epoch, index, count, bytes)
            .map_err(|why| Refusal::Refused(why.to_owned()))?;
        if let Some(a) = slot {
            self.assembling.insert(seat, a);
        }
        Ok(Vec::new())
    }

    /// A commit from `seat` (key `key`, named `name`). Taken: the room
    /// sequence number it gets (`room_seq` is moved on) and the frames to
    /// send.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn commit(
        &mut self,
        seat: SeatId,
        key: [u8; 32],
        name: &str,
        epoch: u64,
        adds: Vec<[u8; 32]>,
        removes: Vec<[u8; 32]>,
        commit: Vec<u8>,
        welcome: Vec<u8>,
        room_seq: &mut u64,
    ) -> Result<Sends, Refusal> {
        // The seat's next commit takes what it sent in pieces, whatever becomes of it.
        let assembled = self.assembling.remove(&seat);
        let task = self.task.as_ref().filter(|t| t.committer == seat && t.epoch == self.epoch);
        let creating = task.is_some_and(|t| t.create);
        if !creating && !self.holds(seat) {
            return Err(Refusal::Refused("a commit from a member who is not in the room's group".into()));
        }
        if epoch != self.epoch {
            return Err(Refusal::Retry { epoch: self.epoch, seq: 0 });
        }
        if commit.len() > MAX_COMMIT || welcome.len() > MAX_COMMIT {
            return Err(Refusal::Refused("a commit or Welcome longer than the room takes".into()));
        }
        let header = E2e::header(&commit)
            .filter(|h| h.wire_format == wire::PRIVATE)
            .ok_or_else(|| Refusal::Refused("a commit that is not an MLS private message".into()))?;
        if header.epoch != epoch {
            return Err(Refusal::Refused("a commit whose MLS epoch is not the one it declares".into()));
        }
        if self.id.as_ref().is_some_and(|id| *id != header.group) {
            return Err(Refusal::Refused("a commit for another group than the room's".into()));
        }
        let unique = |keys: &[[u8; 32]]| keys.iter().enumerate().all(|(i, k)| !keys[..i].contains(k));
        let within = match task {
            Some(t) => {
                adds.iter().all(|k| t.adds.contains(k))
                    && removes.iter().all(|k| t.removes.contains(k))
                    && unique(&adds)
                    && unique(&removes)
            }
            None => adds.is_empty() && removes.is_empty(),
        };
        if !within {
            return Err(Refusal::Refused(
                "a commit that adds or removes members the relay did not ask it to (only the committer's task may; others may only update their own leaf)".into(),
            ));
        }
        let welcome = match assembled {
            Some(a) if welcome.is_empty() && !adds.is_empty() => {
                if a.tag() != epoch {
                    return Err(Refusal::Refused(
                        "a commit whose Welcome came in pieces for another epoch".into(),
                    ));
                }
                a.welcome().ok_or_else(|| {
                    Refusal::Refused("a commit whose Welcome's pieces did not all come".into())
                })?
            }
            _ => welcome,
        };
        if adds.is_empty() != welcome.is_empty() {
            return Err(Refusal::Refused(
                "a commit that adds members comes with their Welcome, and only then".into(),
            ));
        }
        if !welcome.is_empty() && super::e2e::wire_format(&welcome) != Some(wire::WELCOME) {
            return Err(Refusal::Refused("what came as a Welcome is not an MLS Welcome".into()));
        }
        let cut = pieces::split(&welcome)
            .ok_or_else(|| Refusal::Refused("a Welcome longer than the room takes".into()))?;
        let count = u8::try_from(cut.len())
            .map_err(|_| Refusal::Refused("a Welcome longer than the room takes".into()))?;
        // Taken.
        *room_seq += 1;
        self.stalled.retain(|s| *s != seat);
        let before: Vec<SeatId> =
            if creating { vec![seat] } else { self.leaves.iter().filter_map(|l| l.seat).collect() };
        if creating {
            self.id = Some(header.group);
            self.leaves = vec![Leaf { key, seat: Some(seat) }];
            self.waiting.retain(|(s, _)| *s != seat);
        }
        self.leaves.retain(|l| !removes.contains(&l.key));
        let mut added = Vec::new();
        for k in &adds {
            let seat = self.waiting.iter().find(|(_, w)| w == k).map(|(s, _)| *s);
            self.waiting.retain(|(_, w)| w != k);
            // A member that left meanwhile is in the group until removed.
            self.leaves.push(Leaf { key: *k, seat });
            added.extend(seat);
        }
        self.epoch += 1;
        self.task = None;
        let committed: Arc<[u8]> = Frame::GroupCommitted {
            room_seq: *room_seq,
            from: name.to_owned(),
            key,
            epoch,
            adds,
            removes,
            commit,
        }
        .wire();
        let mut sends: Sends = before.into_iter().map(|s| (s, committed.clone())).collect();
        if !added.is_empty() {
            let pieces: Vec<Arc<[u8]>> = (0..count)
                .zip(&cut)
                .map(|(index, piece)| {
                    Frame::GroupWelcome {
                        room_seq: *room_seq,
                        from: name.to_owned(),
                        key,
                        index,
                        count,
                        welcome: piece.to_vec(),
                    }
                    .wire()
                })
                .collect();
            for s in added {
                sends.extend(pieces.iter().map(|p| (s, p.clone())));
            }
        }
        Ok(sends)
    }

    /// A room line sealed by `seat` at `epoch`. Taken: the frames to send
    /// (the `Ack` to its author last).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send(
        &mut self,
        seat: SeatId,
        key: [u8; 32],
        name: &str,
        epoch: u64,
        seq: u64,
        message: Vec<u8>,
        room_seq: &mut u64,
    ) -> Result<Sends, Refusal> {
        if !self.holds(seat) {
            return Err(Refusal::Refused("not sent: you are not in the room's end-to-end group yet".into()));
        }
        if epoch != self.epoch {
            return Err(Refusal::Retry { epoch: self.epoch, seq });
        }
        if message.len() > MAX_GROUP_MESSAGE {
            return Err(Refusal::Refused(format!(
                "not sent: the MLS message is {} bytes long; the most is {MAX_GROUP_MESSAGE}",
                message.len()
            )));
        }
        let header = E2e::header(&message).filter(|h| h.wire_format == wire::PRIVATE);
        let fits = header.is_some_and(|h| h.epoch == epoch && self.id.as_ref() == Some(&h.group));
        if !fits {
            return Err(Refusal::Refused(
                "not sent: not an MLS private message of the room's group at its epoch".into(),
            ));
        }
        *room_seq += 1;
        let frame: Arc<[u8]> =
            Frame::GroupMessage { room_seq: *room_seq, from: name.to_owned(), key, message }.wire();
        let mut sends: Sends = self
            .leaves
            .iter()
            .filter_map(|l| l.seat)
            .filter(|s| *s != seat)
            .map(|s| (s, frame.clone()))
            .collect();
        let ack = Frame::Ack { room_seq: *room_seq, seq, private: false };
        sends.push((seat, ack.wire()));
        Ok(sends)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::FrameBuffer;
    use crate::tls::Ed25519Key;

    struct Person {
        key: Ed25519Key,
        mls: E2e,
    }

    fn person(seed: u8) -> Person {
        let key = Ed25519Key::from_seed(&[seed; 32]);
        Person { mls: E2e::new(key.public_key()), key }
    }

    fn frame(bytes: &[u8]) -> Frame {
        let mut b = FrameBuffer::default();
        b.push(bytes);
        b.next_frame().unwrap().unwrap()
    }

    fn to(sends: &Sends, seat: SeatId) -> Vec<Frame> {
        sends.iter().filter(|(s, _)| *s == seat).map(|(_, b)| frame(b)).collect()
    }

    /// The Welcome a seat got in pieces (all numbered `room_seq`), put together.
    fn welcome_of(frames: &[Frame], room_seq: u64) -> Vec<u8> {
        let mut whole = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            let Frame::GroupWelcome { room_seq: r, index, count, welcome, .. } = f else { panic!("{f:?}") };
            assert_eq!((*r, usize::from(*index), usize::from(*count)), (room_seq, i, frames.len()));
            whole.extend_from_slice(welcome);
        }
        whole
    }

    fn packages_of(people: &mut [&mut Person]) -> impl FnMut(SeatId) -> Option<Vec<u8>> + use<> {
        let packages: Vec<Vec<u8>> = people.iter_mut().map(|p| p.mls.key_package(&p.key).unwrap()).collect();
        move |seat| packages.get(seat as usize).cloned()
    }

    #[test]
    fn the_first_member_makes_the_group_and_adds_those_waiting_then_messages_go_to_the_others() {
        let (mut a, mut b, mut c) = (person(1), person(2), person(3));
        let mut g = Group::new();
        let mut seq = 10;
        g.joined(0, a.key.public_key());
        g.joined(1, b.key.public_key());
        let mut packages = packages_of(&mut [&mut a, &mut b, &mut c]);
        let (seat, task) = g.next_task(0, &mut packages).unwrap();
        let Frame::GroupTask { epoch: 0, create: true, add, remove } = task else { panic!("{task:?}") };
        assert_eq!((seat, add.len(), remove.len()), (0, 1, 0));
        assert_eq!(add[0].0, b.key.public_key());
        // One task per epoch.
        assert!(g.next_task(0, &mut packages).is_none());
        // Alice makes the group and adds Bob.
        let group = a.mls.create(&a.key).unwrap();
        let made = a.mls.add(&a.key, &group, &[(&add[0].1, b.key.public_key())]).unwrap();
        // A commit that says it adds someone else is refused.
        let err = g
            .commit(
                0,
                a.key.public_key(),
                "alice",
                0,
                vec![c.key.public_key()],
                vec![],
                made.commit.clone(),
                made.welcome.clone().unwrap(),
                &mut seq,
            )
            .unwrap_err();
        assert!(matches!(err, Refusal::Refused(_)), "{err:?}");
        let sends = g
            .commit(
                0,
                a.key.public_key(),
                "alice",
                0,
                vec![b.key.public_key()],
                vec![],
                made.commit,
                made.welcome.unwrap(),
                &mut seq,
            )
            .unwrap();
        assert_eq!((seq, g.epoch()), (11, 1));
        assert!(matches!(to(&sends, 0)[..], [Frame::GroupCommitted { room_seq: 11, epoch: 0, .. }]));
        let welcome = welcome_of(&to(&sends, 1), 11);
        a.mls.confirm(&group).unwrap();
        b.mls.join(&welcome, a.key.public_key()).unwrap();
        assert_eq!(g.keys(), vec![a.key.public_key(), b.key.public_key()]);

        // A line from Bob: to Alice, the Ack to Bob.
        let sealed = b.mls.seal(&b.key, &group, b"signed bytes").unwrap();
        let sends = g.send(1, b.key.public_key(), "bob", 1, 7, sealed.clone(), &mut seq).unwrap();
        assert!(matches!(to(&sends, 0)[..], [Frame::GroupMessage { room_seq: 12, .. }]));
        assert!(matches!(to(&sends, 1)[..], [Frame::Ack { room_seq: 12, seq: 7, private: false }]));
        // The same line at a stale epoch: sealed again, please.
        let err = g.send(1, b.key.public_key(), "bob", 0, 8, sealed.clone(), &mut seq).unwrap_err();
        assert_eq!(err, Refusal::Retry { epoch: 1, seq: 8 });
        // Carol, waiting, may not send; nor may anything but an MLS message.
        g.joined(2, c.key.public_key());
        assert!(matches!(
            g.send(2, c.key.public_key(), "carol", 1, 1, sealed, &mut seq),
            Err(Refusal::Refused(_))
        ));
        assert!(matches!(
            g.send(1, b.key.public_key(), "bob", 1, 9, b"junk".to_vec(), &mut seq),
            Err(Refusal::Refused(_))
        ));
        assert_eq!(seq, 12);
        // Carol is Alice's next task.
        let (seat, task) = g.next_task(0, &mut packages).unwrap();
        assert!(matches!(task, Frame::GroupTask { epoch: 1, create: false, ref add, .. } if add.len() == 1));
        assert_eq!(seat, 0);
    }

    #[test]
    fn a_rival_self_update_wins_the_epoch_and_the_task_is_asked_again() {
        let (mut a, mut b, mut c) = (person(1), person(2), person(3));
        let mut g = Group::new();
        let mut seq = 0;
        g.joined(0, a.key.public_key());
        g.joined(1, b.key.public_key());
        let mut packages = packages_of(&mut [&mut a, &mut b, &mut c]);
        let (_, Frame::GroupTask { add, .. }) = g.next_task(0, &mut packages).unwrap() else { panic!() };
        let group = a.mls.create(&a.key).unwrap();
        let made = a.mls.add(&a.key, &group, &[(&add[0].1, b.key.public_key())]).unwrap();
        g.commit(
            0,
            a.key.public_key(),
            "alice",
            0,
            vec![b.key.public_key()],
            vec![],
            made.commit,
            made.welcome.unwrap(),
            &mut seq,
        )
        .unwrap();
        a.mls.confirm(&group).unwrap();
        // Carol comes: Alice's task at epoch 1.
        g.joined(2, c.key.public_key());
        let (_, Frame::GroupTask { epoch: 1, add, .. }) = g.next_task(0, &mut packages).unwrap() else {
            panic!()
        };
        // Bob is no committer: he may not add, but may update his own leaf.
        // (The relay reads only a commit's header: one of Alice's stands for his.)
        let bobs = a_second_view_update(&mut a, &group);
        let adding = a.mls.add(&a.key, &group, &[(&add[0].1, c.key.public_key())]).unwrap();
        let err = g
            .commit(
                1,
                b.key.public_key(),
                "bob",
                1,
                vec![c.key.public_key()],
                vec![],
                bobs.clone(),
                vec![1],
                &mut seq,
            )
            .unwrap_err();
        assert!(matches!(err, Refusal::Refused(_)), "{err:?}");
        g.commit(1, b.key.public_key(), "bob", 1, vec![], vec![], bobs, vec![], &mut seq).unwrap();
        assert_eq!(g.epoch(), 2);
        // Alice's commit for epoch 1 is now stale: retry, no strike.
        let err = g
            .commit(
                0,
                a.key.public_key(),
                "alice",
                1,
                vec![c.key.public_key()],
                vec![],
                adding.commit,
                adding.welcome.unwrap(),
                &mut seq,
            )
            .unwrap_err();
        assert_eq!(err, Refusal::Retry { epoch: 2, seq: 0 });
        // And she is asked again at epoch 2 (Carol's next key package).
        let (seat, task) = g.next_task(0, &mut packages).unwrap();
        assert!(matches!(task, Frame::GroupTask { epoch: 2, create: false, .. }));
        assert_eq!(seat, 0);
    }

    /// A commit at the group's epoch that the relay only reads the header
    /// of: a self-Update of Alice's, which is what any commit looks like.
    fn a_second_view_update(a: &mut Person, group: &[u8]) -> Vec<u8> {
        let update = a.mls.update(&a.key, group).unwrap();
        a.mls.discard(group).unwrap();
        update.commit
    }

    #[test]
    fn a_committer_that_leaves_hands_the_task_on_and_a_key_that_comes_back_is_removed_then_added() {
        let (mut a, mut b, mut c) = (person(1), person(2), person(3));
        let mut g = Group::new();
        let mut seq = 0;
        g.joined(0, a.key.public_key());
        g.joined(1, b.key.public_key());
        g.joined(2, c.key.public_key());
        let mut packages = packages_of(&mut [&mut a, &mut b, &mut c]);
        let (_, Frame::GroupTask { add, .. }) = g.next_task(0, &mut packages).unwrap() else { panic!() };
        assert_eq!(add.len(), 2);
        let group = a.mls.create(&a.key).unwrap();
        let refs: Vec<(&[u8], [u8; 32])> = add.iter().map(|(k, p)| (p.as_slice(), *k)).collect();
        let made = a.mls.add(&a.key, &group, &refs).unwrap();
        let keys: Vec<[u8; 32]> = add.iter().map(|(k, _)| *k).collect();
        g.commit(
            0,
            a.key.public_key(),
            "alice",
            0,
            keys,
            vec![],
            made.commit,
            made.welcome.unwrap(),
            &mut seq,
        )
        .unwrap();
        assert_eq!(g.committer(), Some(0));
        // Alice goes: Bob, next longest in the group, removes her.
        g.left(0);
        assert_eq!(g.committer(), Some(1));
        let (seat, task) = g.next_task(0, &mut packages).unwrap();
        assert_eq!(seat, 1);
        assert_eq!(
            task,
            Frame::GroupTask { epoch: 1, create: false, add: vec![], remove: vec![a.key.public_key()] }
        );
        // She comes back on seat 5 before the removal: she waits for it.
        g.joined(5, a.key.public_key());
        // Bob leaves before committing: Carol gets the task.
        g.left(1);
        let (seat, task) = g.next_task(0, &mut |_| Some(vec![1])).unwrap();
        assert_eq!(seat, 2);
        let Frame::GroupTask { remove, add, .. } = task else { panic!() };
        assert_eq!((remove.len(), add.len()), (2, 0));
        // Everyone leaves: the group is over; the next member makes a new one.
        g.left(2);
        assert!(!g.exists());
        let (seat, task) = g.next_task(0, &mut |_| None).unwrap();
        assert_eq!(seat, 5);
        assert!(matches!(task, Frame::GroupTask { epoch: 0, create: true, .. }));
    }

    #[test]
    fn a_commit_from_outside_the_group_or_for_another_group_is_refused() {
        let (mut a, mut b) = (person(1), person(2));
        let mut g = Group::new();
        let mut seq = 0;
        g.joined(0, a.key.public_key());
        let (_, task) = g.next_task(0, &mut |_| None).unwrap();
        assert!(matches!(task, Frame::GroupTask { create: true, ref add, .. } if add.is_empty()));
        let group = a.mls.create(&a.key).unwrap();
        let first = a.mls.update(&a.key, &group).unwrap();
        // Bob, not in it, cannot commit.
        g.joined(1, b.key.public_key());
        let other = b.mls.create(&b.key).unwrap();
        let bobs = b.mls.update(&b.key, &other).unwrap();
        let err = g
            .commit(1, b.key.public_key(), "bob", 0, vec![], vec![], bobs.commit.clone(), vec![], &mut seq)
            .unwrap_err();
        assert!(matches!(err, Refusal::Refused(_)));
        g.commit(0, a.key.public_key(), "alice", 0, vec![], vec![], first.commit, vec![], &mut seq).unwrap();
        a.mls.confirm(&group).unwrap();
        // Another group's commit at the right epoch number: refused.
        b.mls.confirm(&other).unwrap();
        let bobs = b.mls.update(&b.key, &other).unwrap();
        let err = g
            .commit(0, a.key.public_key(), "alice", 1, vec![], vec![], bobs.commit, vec![], &mut seq)
            .unwrap_err();
        assert!(matches!(err, Refusal::Refused(ref why) if why.contains("another group")), "{err:?}");
        assert_eq!(seq, 1);
    }

    #[test]
    fn the_largest_room_still_fits_a_commit_in_a_frame_and_its_welcome_in_pieces() {
        // MAX_MEMBERS - MAX_GROUP_CHANGES in the group, then the last
        // MAX_GROUP_CHANGES added in one commit: the largest GroupCommit,
        // and the largest Welcome.
        let mut people: Vec<Person> = (0..MAX_MEMBERS as u8).map(|i| person(i + 1)).collect();
        let (first, rest) = people.split_at_mut(1);
        let a = &mut first[0];
        let group = a.mls.create(&a.key).unwrap();
        let cut = MAX_MEMBERS - 1 - MAX_GROUP_CHANGES;
        let (mut biggest, mut welcome_size, mut most_pieces) = (0, 0, 0);
        let (early, last) = rest.split_at_mut(cut);
        for chunk in [early, last] {
            let packages: Vec<(Vec<u8>, [u8; 32])> =
                chunk.iter_mut().map(|p| (p.mls.key_package(&p.key).unwrap(), p.key.public_key())).collect();
            for part in packages.chunks(MAX_GROUP_CHANGES) {
                let refs: Vec<(&[u8], [u8; 32])> = part.iter().map(|(b, k)| (b.as_slice(), *k)).collect();
                let made = a.mls.add(&a.key, &group, &refs).unwrap();
                a.mls.confirm(&group).unwrap();
                let frame = Frame::GroupCommit {
                    epoch: 1,
                    adds: refs.iter().map(|(_, k)| *k).collect(),
                    removes: vec![],
                    commit: made.commit,
                    welcome: vec![],
                };
                biggest = biggest.max(frame.encode().unwrap().len());
                let welcome = made.welcome.unwrap();
                welcome_size = welcome.len();
                // Cut as outside unit tests (which cut smaller pieces).
                most_pieces = most_pieces.max(welcome.len().div_ceil(pieces::FULL_PIECE));
            }
        }
        assert_eq!(a.mls.members(&group).len(), MAX_MEMBERS);
        assert!(biggest <= super::super::frame::HEADER + super::super::frame::MAX_FRAME, "{biggest} bytes");
        assert!(welcome_size <= pieces::MAX_WELCOME && most_pieces <= pieces::MAX_PIECES);
        eprintln!(
            "at {MAX_MEMBERS} members: the largest GroupCommit {biggest} bytes; the last Welcome \
             {welcome_size} bytes, in {most_pieces} pieces of {}",
            pieces::FULL_PIECE
        );
    }

    #[test]
    fn welcome_pieces_out_of_order_or_from_outside_are_strikes_and_a_seat_leaving_drops_them() {
        let (mut a, mut b) = (person(1), person(2));
        let mut g = Group::new();
        let mut seq = 0;
        g.joined(0, a.key.public_key());
        g.joined(1, b.key.public_key());
        let mut packages = packages_of(&mut [&mut a, &mut b]);
        let (_, Frame::GroupTask { add, .. }) = g.next_task(0, &mut packages).unwrap() else { panic!() };
        let group = a.mls.create(&a.key).unwrap();
        let made = a.mls.add(&a.key, &group, &[(&add[0].1, b.key.public_key())]).unwrap();
        let welcome = made.welcome.unwrap();
        let cut = pieces::split(&welcome).unwrap();
        assert!(cut.len() >= 2, "the test needs a Welcome in several pieces");
        let count = cut.len() as u8;
        let commit = |g: &mut Group, seq: &mut u64| {
            g.commit(
                0,
                a.key.public_key(),
                "alice",
                0,
                vec![b.key.public_key()],
                vec![],
                made.commit.clone(),
                vec![],
                seq,
            )
        };
        // Bob, waiting, is not in the group: his pieces are refused.
        assert!(matches!(g.piece(1, 0, 0, count, cut[0]), Err(Refusal::Refused(_))));
        // Out of order: refused, and what came is dropped.
        g.piece(0, 0, 0, count, cut[0]).unwrap();
        assert!(matches!(g.piece(0, 0, 2, count, cut[2.min(cut.len() - 1)]), Err(Refusal::Refused(_))));
        assert!(matches!(g.piece(0, 0, 1, count, cut[1]), Err(Refusal::Refused(_))));
        // Too long a piece, or a count over the bound.
        assert!(g.piece(0, 0, 0, count, &vec![0; pieces::PIECE + 1]).is_err());
        assert!(g.piece(0, 0, 0, pieces::MAX_PIECES as u8 + 1, cut[0]).is_err());
        // A commit with only some of its pieces: refused, nothing taken.
        g.piece(0, 0, 0, count, cut[0]).unwrap();
        let err = commit(&mut g, &mut seq).unwrap_err();
        assert!(matches!(err, Refusal::Refused(ref why) if why.contains("pieces")), "{err:?}");
        assert_eq!((seq, g.epoch()), (0, 0));
        // Pieces for another epoch than the commit's: refused.
        for (i, p) in cut.iter().enumerate() {
            g.piece(0, 5, i as u8, count, p).unwrap();
        }
        assert!(matches!(commit(&mut g, &mut seq), Err(Refusal::Refused(_))));
        // A seat leaving drops what it sent.
        g.piece(0, 0, 0, count, cut[0]).unwrap();
        assert!(g.assembling.contains_key(&0));
        g.left(0);
        assert!(g.assembling.is_empty());
        // Seated again (the group is over: she makes it), all in order: taken,
        // and Bob gets the Welcome in as many pieces, which he joins with.
        g.joined(0, a.key.public_key());
        g.joined(1, b.key.public_key());
        let (seat, Frame::GroupTask { create: true, .. }) = g.next_task(0, &mut packages).unwrap() else {
            panic!()
        };
        assert_eq!(seat, 1, "Bob waited longer");
        let bob = 1;
        let group = b.mls.create(&b.key).unwrap();
        let Some(Task { adds, .. }) = g.task.clone() else { panic!() };
        assert_eq!(adds, vec![a.key.public_key()]);
        let package = a.mls.key_package(&a.key).unwrap();
        let made = b.mls.add(&b.key, &group, &[(&package, a.key.public_key())]).unwrap();
        let welcome = made.welcome.unwrap();
        let cut = pieces::split(&welcome).unwrap();
        for (i, p) in cut.iter().enumerate() {
            g.piece(bob, 0, i as u8, cut.len() as u8, p).unwrap();
        }
        let sends =
            g.commit(bob, b.key.public_key(), "bob", 0, adds, vec![], made.commit, vec![], &mut seq).unwrap();
        let got = welcome_of(&to(&sends, 0), 1);
        assert_eq!(got, welcome);
        b.mls.confirm(&group).unwrap();
        a.mls.join(&got, b.key.public_key()).unwrap();
        assert!(g.assembling.is_empty());
    }
}

#[cfg(test)]
mod overdue {
    use super::*;

    #[test]
    fn a_committer_that_lets_its_task_go_unanswered_is_passed_over() {
        let mut g = Group::new();
        g.joined(0, [1; 32]);
        let (seat, _) = g.next_task(1_000, &mut |_| None).unwrap();
        assert_eq!(seat, 0);
        assert!(g.next_task(2_000, &mut |_| None).is_none(), "one task at a time");
        // Alone, it is asked again (nobody else could).
        assert!(!g.overdue(1_000 + TASK_WAIT_MS - 1));
        assert!(g.overdue(1_000 + TASK_WAIT_MS));
        assert_eq!(g.next_task(40_000, &mut |_| None).map(|(s, _)| s), Some(0));

        // Two in the group and one waiting: the task passes to the second.
        let mut g = Group {
            id: Some(vec![1]),
            epoch: 3,
            leaves: vec![Leaf { key: [1; 32], seat: Some(0) }, Leaf { key: [2; 32], seat: Some(1) }],
            ..Group::default()
        };
        g.joined(2, [3; 32]);
        assert_eq!(g.next_task(0, &mut |_| Some(vec![9])).map(|(s, _)| s), Some(0));
        assert!(g.overdue(TASK_WAIT_MS));
        let (seat, task) = g.next_task(TASK_WAIT_MS, &mut |_| Some(vec![9])).unwrap();
        assert_eq!(seat, 1);
        assert!(matches!(task, Frame::GroupTask { epoch: 3, create: false, ref add, .. } if add.len() == 1));
        // The first, passed over, is not the committer again until it commits.
        assert_eq!(g.committer(), Some(1));
    }
}
