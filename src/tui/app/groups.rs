//! The end-to-end groups' life for the group panel (F5): each MLS step with
//! its fields, its epoch and one plain line, and each group as this member
//! last saw it (ratchet tree, and with `--reveal` the epoch's values).
//!
//! Steps are keyed by group, so that any group feeds them: a `/msg` pair's
//! and a room's alike. A member tells a step as [`ChatEvent::E2eStep`]
//! (also [`ChatEvent::E2eWaiting`] and a refused input); nothing else.

use std::sync::Arc;

use super::{App, Now};
use crate::chat::e2e::{GroupView, PackageInfo, Step, UpdateState};
use crate::chat::{self, ChatEvent};
use crate::tls::Fingerprint;

/// One step in the life of an end-to-end (MLS) group, for the F5 panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStep {
    /// When, Unix seconds.
    pub(crate) at: u64,
    /// The group, once there is one.
    pub(crate) group: Option<Vec<u8>>,
    /// Who the step is with (escaped): the other member of a pair, or
    /// empty for this member's own (key packages published).
    pub peer: String,
    /// The MLS step: KeyPackage, Add, Commit, Welcome, Update, Remove,
    /// Refused.
    pub step: &'static str,
    /// The group's epoch after the step, once there is a group.
    pub epoch: Option<u64>,
    /// Its fields: name and value.
    pub fields: Vec<(&'static str, String)>,
    /// What it means, in one plain line.
    pub(crate) line: String,
}

impl GroupStep {
    /// A step, its time set when it is kept.
    fn new(
        peer: &str,
        group: Option<&[u8]>,
        step: &'static str,
        epoch: Option<u64>,
        fields: Vec<(&'static str, String)>,
        line: String,
    ) -> Self {
        Self { at: 0, group: group.map(<[u8]>::to_vec), peer: peer.to_owned(), step, epoch, fields, line }
    }
}

/// A group as this member last saw it, with a short label for the panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupShown {
    /// The group's number in this session (1 for the first seen).
    pub number: usize,
    /// Who it is with (escaped).
    pub(crate) with: String,
    /// The group; its epoch values only with `--reveal`.
    pub view: GroupView,
}

/// The most group steps kept for the F5 panel; the oldest go first.
pub(super) const MAX_GROUP_STEPS: usize = 200;

/// The most groups whose tree the panel keeps; the least recent go first.
const MAX_GROUPS_SHOWN: usize = 32;

/// The ciphersuite's name, by code.
fn suite_name(code: u16) -> String {
    if code == 0x0003 {
        "0x0003 MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519".into()
    } else {
        format!("{code:#06x}")
    }
}

fn package_fields(info: &PackageInfo) -> Vec<(&'static str, String)> {
    let days = info.not_after.saturating_sub(info.not_before) / 86_400;
    vec![
        ("suite", suite_name(info.suite)),
        ("leaf key", Fingerprint::of_ed25519(&info.leaf_key).short()),
        ("init key", format!("X25519, {} bytes (a Welcome is sealed to it)", info.init_key.len())),
        ("lifetime", format!("{days} days")),
        ("size", format!("{} bytes", info.size)),
    ]
}

impl App {
    /// The end-to-end groups' steps, oldest first (F5).
    pub fn group_steps(&self) -> &std::collections::VecDeque<GroupStep> {
        &self.group_steps
    }

    /// The group the panel shows: the one picked (Up/Down with the panel
    /// focused), else the one of the last step that had one.
    pub fn group_shown(&self) -> Option<&GroupShown> {
        self.group_pick
            .as_ref()
            .and_then(|id| self.groups_shown.iter().find(|g| g.view.group == *id))
            .or_else(|| self.groups_shown.last())
    }

    /// How many groups the panel can show (Up/Down picks one).
    pub(crate) fn groups_known(&self) -> usize {
        self.groups_shown.len()
    }

    /// How far the group panel is scrolled, in lines.
    pub(crate) fn group_scroll(&self) -> u16 {
        self.group_scroll
    }

    /// Keys in the group panel: Up/Down pick an older or newer group (past
    /// the newest: follow the newest again), PgUp/PgDn scroll, Esc goes
    /// back to the input.
    pub(super) fn groups_key(&mut self, key: crossterm::event::KeyEvent) -> super::Update {
        use crossterm::event::KeyCode;
        let at = self
            .group_shown()
            .and_then(|shown| self.groups_shown.iter().position(|g| g.view.group == shown.view.group));
        match (key.code, at) {
            (KeyCode::Up, Some(i)) if i > 0 => {
                self.group_pick = self.groups_shown.get(i - 1).map(|g| g.view.group.clone());
            }
            (KeyCode::Down, Some(i)) => {
                self.group_pick = self.groups_shown.get(i + 1).map(|g| g.view.group.clone());
                if i + 2 >= self.groups_shown.len() {
                    self.group_pick = None;
                }
            }
            (KeyCode::PageDown, _) => self.group_scroll = self.group_scroll.saturating_add(8),
            (KeyCode::PageUp, _) => self.group_scroll = self.group_scroll.saturating_sub(8),
            (KeyCode::Esc, _) => {
                self.side = super::Side::Handshake;
                self.focus = super::Focus::Input;
            }
            _ => return super::Update::NONE,
        }
        super::Update::REDRAW
    }

    /// The name a leaf's identity key goes by here: "you", a member of the
    /// room, or the peer the group is with.
    pub(crate) fn leaf_name(&self, key: &[u8; 32], me: bool, with: &str) -> String {
        if me {
            return "you".into();
        }
        self.members
            .iter()
            .find(|m| m.key == *key)
            .map(|m| chat::printable(&m.name).into_owned())
            .unwrap_or_else(|| with.to_owned())
    }

    /// Keeps a step (its peer escaped), dropping the oldest past
    /// [`MAX_GROUP_STEPS`].
    fn push_step(&mut self, now: Now, mut step: GroupStep) {
        if self.group_steps.len() >= MAX_GROUP_STEPS {
            self.group_steps.pop_front();
        }
        step.at = now.unix;
        step.peer = chat::printable(&step.peer).into_owned();
        self.group_steps.push_back(step);
    }

    /// Keeps the group as the step left it: its epoch values only while
    /// they are shown (`--reveal`), as the handshake's secrets.
    fn keep_view(&mut self, peer: &str, view: &Arc<GroupView>) {
        let mut view = GroupView::clone(view);
        if !self.secrets_shown {
            view.secrets = None;
        }
        let at = self.groups_shown.iter().position(|g| g.view.group == view.group);
        let number = match at {
            Some(i) => self.groups_shown.remove(i).number,
            None => {
                self.groups_numbered += 1;
                self.groups_numbered
            }
        };
        if self.groups_shown.len() >= MAX_GROUPS_SHOWN {
            self.groups_shown.remove(0);
        }
        let with = chat::printable(peer).into_owned();
        self.groups_shown.push(GroupShown { number, with, view });
    }

    /// What an end-to-end event says of its group's life.
    pub(super) fn group_steps_of(&mut self, event: &ChatEvent, now: Now) {
        match event {
            ChatEvent::E2eWaiting { to, queued: 1, .. } => {
                let line = "asked the relay for one of their key packages: an HPKE init key and a leaf, signed by their identity key".into();
                self.push_step(now, GroupStep::new(to, None, "KeyPackage", None, Vec::new(), line));
            }
            ChatEvent::E2eStep { peer, group, step, view } => {
                if let Some(view) = view {
                    self.keep_view(peer, view);
                }
                let epoch = view.as_ref().map(|v| v.epoch);
                let (fields, line) = self.step_words(peer, step);
                self.push_step(now, GroupStep::new(peer, group.as_deref(), step.name(), epoch, fields, line));
            }
            ChatEvent::E2eRefused { from, why } if !from.is_empty() => {
                let line = format!("refused, not shown: {}", chat::printable(why));
                self.push_step(now, GroupStep::new(from, None, "Refused", None, Vec::new(), line));
            }
            _ => {}
        }
    }

    /// A step's fields and its plain line.
    fn step_words(&self, peer: &str, step: &Step) -> (Vec<(&'static str, String)>, String) {
        let who = chat::printable(peer).into_owned();
        let names = |keys: &[[u8; 32]]| {
            keys.iter()
                .map(|k| self.leaf_name(k, false, &Fingerprint::of_ed25519(k).short()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match step {
            Step::Published { count, first } => (
                [("count", count.to_string())].into_iter().chain(package_fields(first)).collect(),
                format!("you published {count} key packages at the relay: each lets one member add you to a group while you need not answer; its init key's private half stays here"),
            ),
            Step::Fetched(info) => (
                package_fields(info),
                format!("{who}'s key package, checked: its leaf's credential and signature key are the identity key the room knows, so adding it adds {who} and nobody else"),
            ),
            Step::Add { added } => (
                vec![("adds", names(added))],
                "you made a group of one (epoch 0) and proposed adding them: their leaf takes the next free slot of the tree".into(),
            ),
            Step::Commit { from, to, proposals, size, mine } => (
                vec![
                    ("epoch", format!("{from} \u{2192} {to}")),
                    ("proposals", proposals.join(", ")),
                    ("size", format!("{size} bytes")),
                ],
                if *mine {
                    format!("you committed it: fresh secrets along your path to the root make epoch {to}, and outside the group only those it adds can derive them (from the Welcome)")
                } else {
                    format!("{who}'s commit, merged: the group is at epoch {to}")
                },
            ),
            Step::Welcome { size, made, members } => (
                vec![("size", format!("{size} bytes")), ("members", members.to_string())],
                if *made {
                    "sent to them: the new epoch's joiner secret sealed to their init key (HPKE), with the ratchet tree; the relay forwards it and cannot open it".into()
                } else {
                    format!("from {who}: you opened it with your key package's init key and hold the epoch with them; nothing said in the group before it can be read")
                },
            ),
            Step::Update { from, to, size, mine, state } => {
                let mut fields = vec![("epoch", format!("{from} \u{2192} {to}"))];
                if *size > 0 {
                    fields.push(("size", format!("{size} bytes")));
                }
                fields.push(("leaf", if *mine { "yours".into() } else { format!("{who}'s") }));
                let line = match state {
                    UpdateState::Sent => format!("you committed a fresh leaf (new HPKE key, new path to the root); once {who} takes it, whoever stole your old keys cannot read epoch {to}"),
                    UpdateState::Confirmed => format!("{who} took your update: you are both at epoch {to}; keys stolen before it open nothing after it (post-compromise security)"),
                    UpdateState::Merged => format!("{who} renewed their leaf: merged, the group is at epoch {to}, and their old keys open nothing after it"),
                    UpdateState::RivalWon => format!("{who} updated in the same epoch as you: the lower identity key's commit wins, and it is yours; theirs is dropped and they do it again"),
                    UpdateState::RivalLost => format!("{who} updated in the same epoch as you: the lower identity key's commit wins, and it is theirs; yours is dropped and done again at epoch {to}"),
                };
                (fields, line)
            }
            Step::Remove { removed } => (
                vec![("removes", names(removed))],
                "their leaves are blanked and a fresh path skips them: the next epoch's secrets are out of their reach".into(),
            ),
        }
    }
}
