//! Post-compromise security for `/msg` pair groups, and the group steps the
//! panel (F5) shows.
//!
//! Each member of a pair's group commits a fresh leaf of its own (an MLS
//! Update: new HPKE key, new path secret, new epoch) every
//! [`UPDATE_EVERY_MS`] or [`UPDATE_EVERY_SEALED`] messages sealed in the
//! group, whichever comes first, checked whenever it seals or opens in the
//! group. The commit goes as a `Seal` with `seq` 0, like the pair's
//! Welcome, and stays pending: the other member merges it and answers
//! with an empty sealed message in the new epoch, its word that it took
//! the commit; on that word the committer merges its own. Until then both
//! still read and write in the old epoch. Both may update at once: the
//! commit of the lower identity key (compared as bytes) wins; the other
//! member drops its own, merges the winner's, answers, and updates again
//! in the new epoch. No relay order is needed, only that each direction
//! of a pair arrives in order, which the relay's forwarding keeps.

use std::sync::Arc;

use super::{ChatEvent, Member};
use crate::chat::e2e::{self, Opened, PairOpened, Step, UpdateState};
use crate::chat::frame::Frame;

/// A member updates its leaf in a pair's group at least this often (ms).
pub const UPDATE_EVERY_MS: u64 = 10 * 60 * 1000;

/// ... or after sealing this many messages in it, whichever comes first.
pub const UPDATE_EVERY_SEALED: u32 = 100;

/// When a member updates its leaf in its pair groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdatePolicy {
    /// At most this long after the group was made or last updated (ms).
    pub every_ms: u64,
    /// At most this many messages sealed since.
    pub every_sealed: u32,
}

impl Default for UpdatePolicy {
    fn default() -> Self {
        Self { every_ms: UPDATE_EVERY_MS, every_sealed: UPDATE_EVERY_SEALED }
    }
}

/// A pair group's update state, beside [`super::Pair`].
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct PairUpdate {
    /// When the newest group was made, joined or last updated (Unix ms).
    pub(super) since_ms: u64,
    /// Messages sealed in it since.
    pub(super) sealed: u32,
}

impl Member {
    /// The member with this update policy for its pair groups (tests use a
    /// short one; the default is [`UpdatePolicy::default`]).
    pub fn with_update_policy(mut self, policy: UpdatePolicy) -> Self {
        self.update_policy = policy;
        self
    }

    /// A group step for the panel, with the group as it is now.
    pub(super) fn group_step(&self, peer: &str, group: Option<&[u8]>, step: Step, out: &mut Vec<ChatEvent>) {
        let view = group.and_then(|g| self.e2e.view(g)).map(Arc::new);
        out.push(ChatEvent::E2eStep { peer: peer.to_owned(), group: group.map(<[u8]>::to_vec), step, view });
    }

    /// A pair's group is new (made or joined): its update clock starts.
    pub(super) fn pair_started(&mut self, key: [u8; 32], now_ms: u64) {
        if let Some(pair) = self.pairs.get_mut(&key) {
            pair.update = PairUpdate { since_ms: now_ms, sealed: 0 };
        }
    }

    /// Updates our leaf in the pair's newest group if the policy says so
    /// and no commit of ours waits already.
    pub(super) fn update_if_due(&mut self, key: [u8; 32], now_ms: u64, out: &mut Vec<ChatEvent>) {
        let policy = self.update_policy;
        let Some(pair) = self.pairs.get(&key) else { return };
        let Some(group) = pair.groups.back().cloned() else { return };
        let due = pair.update.sealed >= policy.every_sealed
            || now_ms.saturating_sub(pair.update.since_ms) >= policy.every_ms;
        if due && !self.e2e.pending(&group) {
            let name = self.pair_name(key);
            self.update_now(key, &name, &group, now_ms, out);
        }
    }

    /// Commits a fresh leaf of ours in `group` and sends the commit.
    fn update_now(&mut self, key: [u8; 32], name: &str, group: &[u8], now_ms: u64, out: &mut Vec<ChatEvent>) {
        let from = self.e2e.epoch(group).unwrap_or_default();
        match self.e2e.update(&self.key, group) {
            Ok(commit) => {
                let size = commit.commit.len();
                self.outgoing.push(Frame::Seal { to: key, seq: 0, message: commit.commit });
                if let Some(pair) = self.pairs.get_mut(&key) {
                    pair.update = PairUpdate { since_ms: now_ms, sealed: 0 };
                }
                let step = Step::Update { from, to: from + 1, size, mine: true, state: UpdateState::Sent };
                self.group_step(name, Some(group), step, out);
            }
            Err(e) => out.push(ChatEvent::E2eRefused { from: name.to_owned(), why: e.to_string() }),
        }
    }

    /// The name a pair's peer goes by, for steps: the name the relay
    /// listed for its key, else a line that waited for it.
    fn pair_name(&self, key: [u8; 32]) -> String {
        self.listed
            .iter()
            .find(|(_, k)| **k == key)
            .map(|(n, _)| n.clone())
            .or_else(|| self.pairs.get(&key).and_then(|p| p.waiting.first().map(|(_, n)| n.clone())))
            .unwrap_or_default()
    }

    /// A PrivateMessage of a pair's group from `key` (named `from`): a
    /// message, the word that our commit was taken, or an Update commit.
    pub(super) fn pair_private(
        &mut self,
        from: String,
        key: [u8; 32],
        message: &[u8],
        now_ms: u64,
        out: &mut Vec<ChatEvent>,
    ) {
        let Some(header) = e2e::E2e::header(message) else {
            out.push(ChatEvent::E2eRefused { from, why: "not a readable MLS message".into() });
            return;
        };
        let ours = self.pairs.get(&key).is_some_and(|p| p.groups.contains(&header.group));
        if !ours {
            let why = "sealed in a group that is not ours with its sender".to_owned();
            out.push(ChatEvent::E2eRefused { from, why });
            return;
        }
        // Sent in the epoch our pending commit makes: the other member took
        // it (the empty answer, or anything after it). Merge ours first.
        let group = header.group.clone();
        let epoch = self.e2e.epoch(&group).unwrap_or_default();
        if self.e2e.pending(&group) && header.epoch == epoch + 1 {
            match self.e2e.confirm(&group) {
                Ok(to) => {
                    let step =
                        Step::Update { from: epoch, to, size: 0, mine: true, state: UpdateState::Confirmed };
                    self.group_step(&from, Some(&group), step, out);
                }
                Err(e) => {
                    out.push(ChatEvent::E2eRefused { from, why: e.to_string() });
                    return;
                }
            }
        }
        match self.e2e.open_pair(message, key) {
            Ok(PairOpened::Message(Opened::Application { plaintext, .. })) if plaintext.is_empty() => {
                // The other member's word that it took our commit: done above.
            }
            Ok(PairOpened::Message(Opened::Application { plaintext, .. })) => {
                let sealed = Some(Arc::from(message));
                self.deliver(
                    0,
                    false,
                    true,
                    from,
                    &plaintext,
                    now_ms,
                    out,
                    Some(super::Sealer { key, room: false }),
                    sealed,
                );
                self.update_if_due(key, now_ms, out);
            }
            Ok(PairOpened::Message(Opened::Commit { .. })) => {}
            Ok(PairOpened::Updated { group, from: before, epoch, ours_dropped }) => {
                let state = if ours_dropped { UpdateState::RivalLost } else { UpdateState::Merged };
                let step = Step::Update { from: before, to: epoch, size: message.len(), mine: false, state };
                self.group_step(&from, Some(&group), step, out);
                // Our word that we took it: an empty message in the new epoch.
                match self.e2e.seal(&self.key, &group, &[]) {
                    Ok(word) => self.outgoing.push(Frame::Seal { to: key, seq: 0, message: word }),
                    Err(e) => out.push(ChatEvent::E2eRefused { from: from.clone(), why: e.to_string() }),
                }
                if ours_dropped {
                    // Ours lost: done again in the new epoch.
                    self.update_now(key, &from, &group, now_ms, out);
                }
            }
            Ok(PairOpened::RivalIgnored { group, epoch }) => {
                let step = Step::Update {
                    from: epoch,
                    to: epoch + 1,
                    size: message.len(),
                    mine: false,
                    state: UpdateState::RivalWon,
                };
                self.group_step(&from, Some(&group), step, out);
            }
            Err(e) => out.push(ChatEvent::E2eRefused { from, why: e.to_string() }),
        }
    }
}

impl Member {
    /// The newest end-to-end group with the member whose key is `key`, as
    /// this member holds it (epoch, ratchet tree, epoch values).
    pub fn pair_view(&self, key: [u8; 32]) -> Option<e2e::GroupView> {
        let group = self.pairs.get(&key)?.groups.back()?;
        self.e2e.view(group)
    }
}
