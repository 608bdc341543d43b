//! A member's side of an end-to-end room (`listen --e2e`, see
//! [`crate::chat::group`]): it waits to be added, then seals each room line
//! in the room's MLS group and opens the others', commits what the relay
//! asks of it as the committer, checks every commit before merging it, and
//! updates its own leaf now and then. A room line is never sent in clear
//! here: refused on screen while the member is not in the group, and
//! refused in a later session where the relay says the room is no longer
//! end to end.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

use super::{ChatEvent, ComposeError, Member, Sealer};
use crate::chat::e2e::{self, E2eError, Expect, Opened};
use crate::chat::frame::{Frame, RefusalCode};
use crate::chat::message::{Kind, MessageError};
use crate::chat::pieces::{self, Assembly};
use crate::tls::Fingerprint;

// A member of an end-to-end room commits a fresh leaf of its own
// (post-compromise security) as often as a pair's member does: every
// [`UPDATE_EVERY_MS`].
use super::UPDATE_EVERY_MS;

/// Room lines that may wait, signed, for a member who left to be removed
/// from the group.
pub(crate) const MAX_E2E_HELD: usize = 16;

/// Times one line is sealed again after the relay said its epoch was stale.
const MAX_RETRIES: u32 = 8;

/// Lines sent and not yet acknowledged that a member keeps to seal again.
const MAX_UNACKED: usize = 256;

/// Keys a member follows as present, whatever a relay lists: far above an
/// end-to-end room's size ([`crate::chat::group::MAX_MEMBERS`]).
const MAX_PRESENT: usize = 10_000;

/// A commit of ours waiting for its place in the room's order.
#[derive(Debug)]
struct Pending {
    group: Vec<u8>,
    epoch: u64,
    create: bool,
    adds: Vec<[u8; 32]>,
    removes: Vec<[u8; 32]>,
    /// The size of the Welcome sent with it (0: none).
    welcome: usize,
}

/// A commit to the room's group, as the panel tells it.
struct Change {
    from: u64,
    to: u64,
    size: usize,
    mine: bool,
}

/// How the group panel names the room's group.
const ROOM_GROUP: &str = "the room";

/// A member's end-to-end room state.
#[derive(Debug)]
pub(super) struct RoomE2e {
    /// The relay's Welcome said the room is end to end.
    on: bool,
    /// This member remembers the room as end to end, and the relay now
    /// says it is not: room lines are refused.
    downgraded: bool,
    /// The room's group, once this member is in it.
    group: Option<Vec<u8>>,
    pending: Option<Pending>,
    /// Lines signed and waiting for a removal: (seq, signed, text).
    held: VecDeque<(u64, Vec<u8>, String, Kind)>,
    /// Lines sent and not acknowledged: seq -> (signed, retries).
    unacked: BTreeMap<u64, (Vec<u8>, u32)>,
    /// Lines the relay asked to seal again, once this member is at its epoch.
    retry: BTreeMap<u64, u64>,
    /// Keys the relay says are in the room (its roster and presence).
    present: HashSet<[u8; 32]>,
    /// When this member last changed its leaf (joined, or updated).
    updated_ms: Option<u64>,
    update_every_ms: u64,
    /// The Welcome coming in pieces, tagged with its room sequence number.
    welcome_in: Option<Assembly>,
}

impl Default for RoomE2e {
    fn default() -> Self {
        Self {
            on: false,
            downgraded: false,
            group: None,
            pending: None,
            held: VecDeque::new(),
            unacked: BTreeMap::new(),
            retry: BTreeMap::new(),
            present: HashSet::new(),
            updated_ms: None,
            update_every_ms: UPDATE_EVERY_MS,
            welcome_in: None,
        }
    }
}

impl Member {
    /// Whether the relay said this room is end to end.
    pub(crate) fn e2e_room(&self) -> bool {
        self.room_e2e.on
    }

    /// The room's group epoch, once this member is in it.
    pub(crate) fn e2e_epoch(&self) -> Option<u64> {
        self.room_e2e.group.as_ref().and_then(|g| self.e2e.epoch(g))
    }

    /// Whether the room's room lines go end to end (or are refused): the
    /// room is end to end, or was and the relay now says otherwise.
    pub(super) fn room_is_e2e(&self) -> bool {
        self.room_e2e.on || self.room_e2e.downgraded
    }

    /// The Welcome says whether the room is end to end.
    pub(super) fn room_mode(&mut self, e2e: bool, out: &mut Vec<ChatEvent>) {
        self.room_e2e.on = e2e;
        self.room_e2e.present.insert(self.me);
        let downgraded = !e2e && self.contacts.e2e_room();
        self.room_e2e.downgraded = downgraded;
        if e2e {
            self.contacts.saw_e2e_room();
        }
        if downgraded {
            out.push(ChatEvent::E2eDowngraded);
        }
    }

    /// The relay listed a member present, or said one joined or left.
    pub(super) fn room_presence(&mut self, key: [u8; 32], present: bool, out: &mut Vec<ChatEvent>) {
        if present {
            if self.room_e2e.present.len() < MAX_PRESENT {
                self.room_e2e.present.insert(key);
            }
        } else if key != self.me {
            self.room_e2e.present.remove(&key);
        }
        self.flush_held(out);
    }

    /// The group's members not present in the room: who left and is not
    /// yet removed.
    fn gone_leaves(&self) -> Vec<[u8; 32]> {
        let Some(group) = &self.room_e2e.group else { return Vec::new() };
        self.e2e.members(group).into_iter().filter(|k| !self.room_e2e.present.contains(k)).collect()
    }

    fn name_of(&self, key: &[u8; 32]) -> String {
        self.listed
            .iter()
            .find(|(_, k)| *k == key)
            .map(|(n, _)| n.clone())
            .or_else(|| self.contacts.by_key(key).map(|c| c.name.clone()))
            .unwrap_or_else(|| format!("the key {}", Fingerprint::of_ed25519(key).short()))
    }

    /// A room line in an end-to-end room: signed, sealed in the group and
    /// sent; held while someone who left is still in the group; refused
    /// (never sent in clear) while this member is not in the group, or the
    /// relay downgraded the room.
    pub(super) fn say_e2e_room(
        &mut self,
        kind: Kind,
        text: &str,
        now_ms: u64,
    ) -> Result<Vec<ChatEvent>, ComposeError> {
        if self.room_e2e.downgraded {
            return Err(ComposeError::Downgraded);
        }
        if self.room_e2e.group.is_none() {
            return Err(ComposeError::NotInGroup);
        }
        if text.len() > super::super::MAX_TEXT {
            return Err(MessageError::TooLong { len: text.len() }.into());
        }
        if !self.room_e2e.held.is_empty() || !self.gone_leaves().is_empty() {
            if self.room_e2e.held.len() >= MAX_E2E_HELD {
                return Err(ComposeError::E2e(format!(
                    "{MAX_E2E_HELD} lines already wait for a member who left to be removed from the group"
                )));
            }
            let (signed, seq) = self.sign(kind, text, None, now_ms)?;
            self.room_e2e.held.push_back((seq, signed, text.to_owned(), kind));
            let gone = self.gone_leaves().iter().map(|k| self.name_of(k)).collect();
            return Ok(vec![ChatEvent::E2eHeld {
                text: text.to_owned(),
                queued: self.room_e2e.held.len(),
                gone,
            }]);
        }
        let (signed, seq) = self.sign(kind, text, None, now_ms)?;
        self.seal_room(seq, signed)?;
        Ok(vec![ChatEvent::Sent { seq, kind, to: None, text: text.to_owned(), acked: true, e2e: true }])
    }

    /// Seals signed bytes in the room's group and queues the `GroupSend`.
    fn seal_room(&mut self, seq: u64, signed: Vec<u8>) -> Result<(), ComposeError> {
        let group = self.room_e2e.group.clone().ok_or(ComposeError::NotInGroup)?;
        let epoch = self.e2e.epoch(&group).ok_or(ComposeError::NotInGroup)?;
        let message =
            self.e2e.seal(&self.key, &group, &signed).map_err(|e| ComposeError::E2e(e.to_string()))?;
        self.outgoing.push(Frame::GroupSend { epoch, seq, message });
        if self.room_e2e.unacked.len() >= MAX_UNACKED
            && let Some(&oldest) = self.room_e2e.unacked.keys().next()
        {
            self.room_e2e.unacked.remove(&oldest);
        }
        let retries = self.room_e2e.unacked.get(&seq).map_or(0, |(_, r)| *r);
        self.room_e2e.unacked.insert(seq, (signed, retries));
        Ok(())
    }

    /// Sends the held lines once nobody who left is in the group.
    fn flush_held(&mut self, out: &mut Vec<ChatEvent>) {
        if self.room_e2e.held.is_empty() || !self.gone_leaves().is_empty() {
            return;
        }
        while let Some((seq, signed, text, kind)) = self.room_e2e.held.pop_front() {
            match self.seal_room(seq, signed) {
                Ok(()) => out.push(ChatEvent::Sent { seq, kind, to: None, text, acked: true, e2e: true }),
                Err(e) => out.push(ChatEvent::Refused {
                    code: RefusalCode::BadMessage,
                    text: format!("not sent: {e}"),
                }),
            }
        }
    }

    /// The relay acknowledged a room line.
    pub(super) fn room_acked(&mut self, seq: u64) {
        self.room_e2e.unacked.remove(&seq);
        self.room_e2e.retry.remove(&seq);
    }

    /// The relay says the group is at `epoch` and what we sent was not:
    /// a line is sealed again (the same signed bytes) once we are at that
    /// epoch; a commit of ours lost the epoch and is dropped.
    pub(super) fn group_retry(&mut self, epoch: u64, seq: u64, out: &mut Vec<ChatEvent>) {
        if seq == 0 {
            // Only a commit made before the group's epoch lost: one made
            // since (a task that came meanwhile) is still on its way.
            if self.room_e2e.pending.as_ref().is_some_and(|p| p.epoch < epoch)
                && let Some(p) = self.room_e2e.pending.take()
                && !p.create
            {
                let _ = self.e2e.discard(&p.group);
            }
            return;
        }
        if self.room_e2e.unacked.contains_key(&seq) {
            self.room_e2e.retry.insert(seq, epoch);
        }
        self.reseal(out);
    }

    /// Seals again the lines the relay asked for, those whose epoch we reached.
    fn reseal(&mut self, out: &mut Vec<ChatEvent>) {
        let Some(now) = self.e2e_epoch() else { return };
        let due: Vec<u64> = self.room_e2e.retry.iter().filter(|(_, e)| **e <= now).map(|(s, _)| *s).collect();
        for seq in due {
            self.room_e2e.retry.remove(&seq);
            let Some((signed, retries)) = self.room_e2e.unacked.get_mut(&seq) else { continue };
            *retries += 1;
            if *retries > MAX_RETRIES {
                self.room_e2e.unacked.remove(&seq);
                out.push(ChatEvent::Refused {
                    code: RefusalCode::BadMessage,
                    text: format!(
                        "not sent: the relay kept refusing the epoch of line {seq}; nothing was sent in clear"
                    ),
                });
                continue;
            }
            let signed = signed.clone();
            if let Err(e) = self.seal_room(seq, signed) {
                out.push(ChatEvent::Refused {
                    code: RefusalCode::BadMessage,
                    text: format!("not sent: {e}"),
                });
            }
        }
    }

    /// The relay asks this member, the committer, to make the group or
    /// change its members.
    pub(super) fn group_task(
        &mut self,
        epoch: u64,
        create: bool,
        add: Vec<([u8; 32], Vec<u8>)>,
        remove: Vec<[u8; 32]>,
        now_ms: u64,
        out: &mut Vec<ChatEvent>,
    ) {
        let refused = |why: String| ChatEvent::E2eRefused { from: String::new(), why };
        if !self.room_e2e.on {
            out.push(refused("a group task in a room that is not end to end".into()));
            return;
        }
        // Only key packages that check out for the key they are named
        // with are added; the others wait for the next task.
        let packages: Vec<(Vec<u8>, [u8; 32])> = add
            .into_iter()
            .filter(|(k, p)| *k != self.me && self.e2e.check_key_package(p, *k).is_ok())
            .map(|(k, p)| (p, k))
            .collect();
        // One commit of ours in flight at a time: while one waits for its
        // place at this epoch, the task waits too (whichever commit the
        // relay orders, it asks again at the next epoch).
        if self.room_e2e.pending.as_ref().is_some_and(|p| p.epoch >= epoch && !create) {
            return;
        }
        if let Some(p) = self.room_e2e.pending.take()
            && !p.create
        {
            let _ = self.e2e.discard(&p.group);
        }
        let group = if create {
            if let Some(old) = self.room_e2e.group.take() {
                self.e2e.forget(&old);
            }
            match self.e2e.create(&self.key) {
                Ok(g) => g,
                Err(e) => return out.push(refused(e.to_string())),
            }
        } else {
            match self.room_e2e.group.clone() {
                Some(g) if self.e2e.epoch(&g) == Some(epoch) => g,
                _ => {
                    return out.push(refused(format!(
                        "a group task for epoch {epoch}, which this member is not at"
                    )));
                }
            }
        };
        let in_group = self.e2e.members(&group);
        let removes: Vec<[u8; 32]> =
            remove.into_iter().filter(|k| *k != self.me && in_group.contains(k)).collect();
        let (commit, adds, removes) = if !removes.is_empty() {
            (self.e2e.remove(&self.key, &group, &removes), Vec::new(), removes)
        } else if !packages.is_empty() {
            let refs: Vec<(&[u8], [u8; 32])> = packages.iter().map(|(p, k)| (p.as_slice(), *k)).collect();
            (self.e2e.add(&self.key, &group, &refs), packages.iter().map(|(_, k)| *k).collect(), Vec::new())
        } else if create {
            (self.e2e.update(&self.key, &group), Vec::new(), Vec::new())
        } else {
            return;
        };
        let commit = match commit {
            Ok(c) => c,
            Err(e) => {
                if create {
                    self.e2e.forget(&group);
                }
                return out.push(refused(e.to_string()));
            }
        };
        let welcome = commit.welcome.filter(|_| !adds.is_empty()).unwrap_or_default();
        // The Welcome goes first, in pieces; the commit after it carries none.
        let cut = if welcome.is_empty() { Some(Vec::new()) } else { pieces::split(&welcome) };
        let Some(cut) = cut.filter(|c| c.len() <= usize::from(u8::MAX)) else {
            let _ = self.e2e.discard(&group);
            if create {
                self.e2e.forget(&group);
            }
            return out
                .push(refused(format!("a Welcome of {} bytes, longer than the room takes", welcome.len())));
        };
        let count = cut.len() as u8;
        for (index, piece) in (0..count).zip(cut) {
            self.outgoing.push(Frame::GroupWelcomePiece { epoch, index, count, bytes: piece.to_vec() });
        }
        let pending = Pending { group, epoch, create, adds, removes, welcome: welcome.len() };
        self.outgoing.push(Frame::GroupCommit {
            epoch,
            adds: pending.adds.clone(),
            removes: pending.removes.clone(),
            commit: commit.commit,
            welcome: Vec::new(),
        });
        self.room_e2e.pending = Some(pending);
        self.room_e2e.updated_ms = Some(now_ms);
    }

    /// Commits a fresh leaf when it is time (see [`UPDATE_EVERY_MS`]).
    pub(super) fn maybe_update(&mut self, now_ms: u64, out: &mut Vec<ChatEvent>) {
        let Some(group) = self.room_e2e.group.clone() else { return };
        if self.room_e2e.pending.is_some() {
            return;
        }
        let due = self
            .room_e2e
            .updated_ms
            .is_none_or(|t| now_ms.saturating_sub(t) >= self.room_e2e.update_every_ms);
        if !due {
            return;
        }
        self.room_e2e.updated_ms = Some(now_ms);
        let Some(epoch) = self.e2e.epoch(&group) else { return };
        match self.e2e.update(&self.key, &group) {
            Ok(c) => {
                self.outgoing.push(Frame::GroupCommit {
                    epoch,
                    adds: Vec::new(),
                    removes: Vec::new(),
                    commit: c.commit,
                    welcome: Vec::new(),
                });
                self.room_e2e.pending = Some(Pending {
                    group,
                    epoch,
                    create: false,
                    adds: Vec::new(),
                    removes: Vec::new(),
                    welcome: 0,
                });
            }
            Err(e) => out.push(ChatEvent::E2eRefused { from: String::new(), why: e.to_string() }),
        }
    }

    /// A commit to the room's group, in the room's order: ours (merged
    /// now that it has its place), or another member's (checked against
    /// what the relay declares, then merged; a pending commit of ours for
    /// the same epoch is dropped).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn group_committed(
        &mut self,
        room_seq: u64,
        from: String,
        key: [u8; 32],
        epoch: u64,
        adds: Vec<[u8; 32]>,
        removes: Vec<[u8; 32]>,
        commit: &[u8],
        out: &mut Vec<ChatEvent>,
    ) {
        if !self.order.check(room_seq, out) {
            return;
        }
        let mine = self.room_e2e.pending.as_ref().filter(|p| p.epoch == epoch && key == self.me);
        if let Some(p) = mine {
            let same = |a: &[[u8; 32]], b: &[[u8; 32]]| a.len() == b.len() && a.iter().all(|k| b.contains(k));
            if !same(&p.adds, &adds) || !same(&p.removes, &removes) {
                let why = "the relay says our commit adds or removes other members than it does".to_owned();
                return out.push(ChatEvent::E2eRefused { from, why });
            }
            let Some(p) = self.room_e2e.pending.take() else { return };
            let group = p.group;
            // Our own commit's bytes are not checked against what we sent:
            // merging the pending commit is what the order we saw says.
            match self.e2e.confirm(&group) {
                Ok(to) => {
                    self.room_e2e.group = Some(group.clone());
                    let members = self.e2e.members(&group).len();
                    let change = Change { from: epoch, to, size: commit.len(), mine: true };
                    self.room_steps(&group, change, &adds, &removes, out);
                    if p.welcome > 0 {
                        let step = e2e::Step::Welcome { size: p.welcome, made: true, members };
                        self.group_step(ROOM_GROUP, Some(&group), step, out);
                    }
                    let epoch = to;
                    out.push(ChatEvent::E2eGroup {
                        epoch,
                        members,
                        by: from,
                        adds: adds.len(),
                        removes: removes.len(),
                    });
                }
                Err(e) => out.push(ChatEvent::E2eRefused { from, why: e.to_string() }),
            }
            self.after_commit(out);
            return;
        }
        if key == self.me {
            let why = "the relay delivered a commit of ours that we do not have pending (a replay, or a lie)"
                .to_owned();
            return out.push(ChatEvent::E2eRefused { from, why });
        }
        let Some(group) = self.room_e2e.group.clone() else {
            let why = "a commit to the room's group, which this member is not in".to_owned();
            return out.push(ChatEvent::E2eRefused { from, why });
        };
        if self.e2e.epoch(&group) != Some(epoch) {
            let why = format!(
                "a commit for epoch {epoch}, but the group is at {} (replayed, reordered or withheld)",
                self.e2e.epoch(&group).unwrap_or(0)
            );
            return out.push(ChatEvent::E2eRefused { from, why });
        }
        if let Some(p) = self.room_e2e.pending.take()
            && !p.create
        {
            // A rival commit took the epoch: ours is dropped (a task comes again).
            let _ = self.e2e.discard(&p.group);
        }
        match self.e2e.open_expected(&group, commit, key, Expect::Commit { adds: &adds, removes: &removes }) {
            Ok(Opened::Commit { epoch: to, removed_me, .. }) => {
                let change = Change { from: epoch, to, size: commit.len(), mine: false };
                self.room_steps(&group, change, &adds, &removes, out);
                let epoch = to;
                if removed_me {
                    self.room_e2e.group = None;
                }
                let members = if removed_me { 0 } else { self.e2e.members(&group).len() };
                out.push(ChatEvent::E2eGroup {
                    epoch,
                    members,
                    by: from,
                    adds: adds.len(),
                    removes: removes.len(),
                });
            }
            Ok(Opened::Application { .. }) => {}
            Err(e) => out.push(ChatEvent::E2eRefused { from, why: e.to_string() }),
        }
        self.after_commit(out);
    }

    /// The group panel's steps for a commit to the room's group: the
    /// members it adds and removes, then the commit itself (an Update when
    /// it changes only its maker's leaf).
    fn room_steps(
        &self,
        group: &[u8],
        change: Change,
        adds: &[[u8; 32]],
        removes: &[[u8; 32]],
        out: &mut Vec<ChatEvent>,
    ) {
        let Change { from, to, size, mine } = change;
        if !adds.is_empty() {
            self.group_step(ROOM_GROUP, Some(group), e2e::Step::Add { added: adds.to_vec() }, out);
        }
        if !removes.is_empty() {
            self.group_step(ROOM_GROUP, Some(group), e2e::Step::Remove { removed: removes.to_vec() }, out);
        }
        let step = if adds.is_empty() && removes.is_empty() {
            let state = if mine { e2e::UpdateState::Confirmed } else { e2e::UpdateState::Merged };
            e2e::Step::Update { from, to, size, mine, state }
        } else {
            let mut proposals = Vec::new();
            proposals.extend(std::iter::repeat_n("Add", adds.len()));
            proposals.extend(std::iter::repeat_n("Remove", removes.len()));
            e2e::Step::Commit { from, to, proposals, size, mine }
        };
        self.group_step(ROOM_GROUP, Some(group), step, out);
    }

    fn after_commit(&mut self, out: &mut Vec<ChatEvent>) {
        self.flush_held(out);
        self.reseal(out);
    }

    /// The Welcome into the room's group, from the committer `key`.
    /// Piece `index` of `count` of a Welcome: put together, and taken
    /// (see [`Self::group_welcome`]) once the last piece came.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn group_welcome_piece(
        &mut self,
        room_seq: u64,
        from: String,
        key: [u8; 32],
        index: u8,
        count: u8,
        piece: &[u8],
        now_ms: u64,
        out: &mut Vec<ChatEvent>,
    ) {
        match Assembly::push(&mut self.room_e2e.welcome_in, room_seq, index, count, piece) {
            Ok(false) => {}
            Ok(true) => {
                if let Some(welcome) = self.room_e2e.welcome_in.take().and_then(Assembly::welcome) {
                    self.group_welcome(room_seq, from, key, &welcome, now_ms, out);
                }
            }
            Err(why) => {
                let why = format!("{why}: the Welcome into the room's group was not taken");
                out.push(ChatEvent::E2eRefused { from, why });
            }
        }
    }

    pub(super) fn group_welcome(
        &mut self,
        room_seq: u64,
        from: String,
        key: [u8; 32],
        welcome: &[u8],
        now_ms: u64,
        out: &mut Vec<ChatEvent>,
    ) {
        // Until now the group's traffic was not ours: its numbers are
        // followed from here on.
        if !self.order.follow(room_seq) {
            out.push(ChatEvent::RelayDisorder {
                room_seq,
                last: self.order.last.unwrap_or(0),
                repeated: true,
            });
            return;
        }
        if !self.room_e2e.on || self.room_e2e.group.is_some() {
            let why = "a Welcome into the room's group, which this member did not wait for".to_owned();
            return out.push(ChatEvent::E2eRefused { from, why });
        }
        let check = self.check_name(&from, key, false, 0, &mut Vec::new());
        if !matches!(
            check,
            super::AuthorCheck::Known | super::AuthorCheck::Verified | super::AuthorCheck::FirstSeen
        ) || key == self.me
        {
            let why = format!(
                "a Welcome from {}'s key, which is not the key you know by that name",
                super::super::printable(&from)
            );
            return out.push(ChatEvent::E2eRefused { from, why });
        }
        match self.e2e.join(welcome, key) {
            Ok(joined) => {
                let step =
                    e2e::Step::Welcome { size: welcome.len(), made: false, members: joined.members.len() };
                self.group_step(ROOM_GROUP, Some(&joined.group), step, out);
                self.room_e2e.group = Some(joined.group);
                self.room_e2e.updated_ms = Some(now_ms);
                out.push(ChatEvent::E2eGroup {
                    epoch: joined.epoch,
                    members: joined.members.len(),
                    by: from,
                    adds: 1,
                    removes: 0,
                });
                self.flush_held(out);
            }
            Err(e) => out.push(ChatEvent::E2eRefused { from, why: e.to_string() }),
        }
    }

    /// A room line sealed in the group by `key`.
    pub(super) fn group_message(
        &mut self,
        room_seq: u64,
        from: String,
        key: [u8; 32],
        message: &[u8],
        now_ms: u64,
        out: &mut Vec<ChatEvent>,
    ) {
        let opened = match self.room_e2e.group.clone() {
            Some(group) => self.e2e.open_expected(&group, message, key, Expect::Application),
            None => Err(E2eError::NoGroup),
        };
        match opened {
            Ok(Opened::Application { plaintext, .. }) => {
                let sealer = Sealer { key, room: true };
                let sealed = Some(Arc::from(message));
                self.deliver(room_seq, false, false, from, &plaintext, now_ms, out, Some(sealer), sealed);
            }
            Ok(Opened::Commit { .. }) => {}
            Err(e) => {
                // Still a number of the room's order.
                if self.room_e2e.group.is_some() {
                    self.order.check(room_seq, out);
                } else {
                    self.order.follow(room_seq);
                }
                out.push(ChatEvent::E2eRefused { from, why: e.to_string() });
            }
        }
    }
}
