//! The handshake panel's state: the steps of one connection, the checks
//! at each, and the user's place in them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::teach::schedule::Schedule;
use crate::tls::{self, Direction, Field, HandshakeStep, SecretKind, Summary};

/// A check the engine made at a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Check {
    /// What was checked.
    pub(crate) what: &'static str,
    /// Whether it passed.
    pub(crate) ok: bool,
    /// Why, in one line.
    pub(crate) detail: String,
}

/// One handshake message as the panel shows it, with what happened at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepView {
    /// 1-based message number.
    pub(crate) number: usize,
    /// Sent or received.
    pub(crate) direction: Direction,
    /// The message's name.
    pub name: &'static str,
    /// One-line summary.
    pub(crate) summary: String,
    /// Decoded fields.
    pub(crate) fields: Vec<Field>,
    /// The message's bytes.
    pub bytes: Vec<u8>,
    /// Whether it travelled encrypted.
    pub(crate) encrypted: bool,
    /// Transcript hash up to this message.
    pub(crate) transcript_hash: Option<[u8; 32]>,
    /// When it happened, since the handshake started.
    pub at: Duration,
    /// Secrets derived right after this message (labels only).
    pub(crate) secrets: Vec<SecretKind>,
    /// Checks made on it.
    pub(crate) checks: Vec<Check>,
}

impl StepView {
    /// Whether a check at this step failed.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| !c.ok)
    }
}

/// How the handshake stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not started, or messages still awaited.
    InProgress,
    /// Done: what was negotiated.
    Done(Box<Summary>),
    /// Failed, and why.
    Failed(String),
}

/// The handshake panel's model: the steps of the current connection and
/// the user's place in them.
#[derive(Debug)]
pub struct Panel {
    /// The connection shown.
    pub(crate) peer: Option<SocketAddr>,
    /// When its first step arrived.
    pub(crate) start: Option<Instant>,
    pub(crate) steps: Vec<StepView>,
    /// Messages expected in all, as last reported.
    pub(crate) expected: usize,
    pub(crate) outcome: Outcome,
    pub(crate) key_updates: u64,
    /// Messages in the handshake, set when it completes.
    pub(crate) handshake_len: Option<usize>,
    pub(crate) selected: usize,
    pub(crate) expanded: bool,
    /// Lines scrolled in the expanded detail.
    pub(crate) detail_scroll: u16,
    /// The connection's key schedule (F4), filled in from the same events.
    pub(crate) schedule: Schedule,
    /// Lines scrolled in the key schedule view.
    pub(crate) schedule_scroll: u16,
}

impl Default for Panel {
    fn default() -> Self {
        Self {
            peer: None,
            start: None,
            steps: Vec::new(),
            expected: 0,
            outcome: Outcome::InProgress,
            key_updates: 0,
            handshake_len: None,
            selected: 0,
            expanded: false,
            detail_scroll: 0,
            schedule: Schedule::default(),
            schedule_scroll: 0,
        }
    }
}

impl Panel {
    /// The messages so far.
    pub fn steps(&self) -> &[StepView] {
        &self.steps
    }

    /// How the handshake stands.
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// Whether the panel has started showing a connection.
    pub(crate) fn started(&self) -> bool {
        self.peer.is_some()
    }

    /// Key updates seen since the handshake, both ways.
    pub fn key_updates(&self) -> u64 {
        self.key_updates
    }

    /// The selected step's index.
    pub fn selected(&self) -> usize {
        self.selected
    }

    /// Whether the selected step is expanded.
    pub fn expanded(&self) -> bool {
        self.expanded
    }

    /// The connection's key schedule, as far as it is known.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Lines scrolled in the key schedule view.
    pub fn schedule_scroll(&self) -> u16 {
        self.schedule_scroll
    }

    /// Messages still awaited (spinners), none once done or failed.
    pub fn pending(&self) -> usize {
        match self.outcome {
            Outcome::InProgress if self.peer.is_some() => {
                self.expected.saturating_sub(self.last_number()).max(1)
            }
            _ => 0,
        }
    }

    /// The number of the latest message (the dummy ChangeCipherSpec shares
    /// the number of the message before it: it is not counted).
    pub(crate) fn last_number(&self) -> usize {
        self.steps.last().map_or(0, |s| s.number)
    }

    /// Whether `peer`'s events are the ones this panel shows, taking a new
    /// connection when the old one is over (a room's next member).
    pub(crate) fn follows(&mut self, peer: SocketAddr, step: &HandshakeStep) -> bool {
        match self.peer {
            Some(p) if p == peer => true,
            Some(_) if matches!(self.outcome, Outcome::InProgress) => false,
            _ if step.number <= 1 => {
                *self = Self { peer: Some(peer), ..Self::default() };
                true
            }
            _ => false,
        }
    }

    pub(crate) fn step(&mut self, step: HandshakeStep, now: Instant) {
        self.schedule.step(&step);
        let start = *self.start.get_or_insert(now);
        self.expected = step.expected;
        match step.step {
            tls::Step::Message { direction, name, summary, fields, bytes, encrypted, transcript_hash } => {
                let follow = self.selected + 1 >= self.steps.len() && !self.expanded;
                // What the peer chose (SNI, ALPN, names) is shown escaped.
                let summary = crate::present::escape::printable(&summary).into_owned();
                let fields = fields
                    .into_iter()
                    .map(|f| tls::Field {
                        value: crate::present::escape::printable(&f.value).into_owned(),
                        ..f
                    })
                    .collect();
                self.steps.push(StepView {
                    number: step.number,
                    direction,
                    name,
                    summary,
                    fields,
                    bytes,
                    encrypted,
                    transcript_hash,
                    at: now.saturating_duration_since(start),
                    secrets: Vec::new(),
                    checks: Vec::new(),
                });
                if follow {
                    self.selected = self.steps.len() - 1;
                }
            }
            tls::Step::SecretDerived { kind } => {
                if let Some(last) = self.steps.last_mut() {
                    last.secrets.push(kind);
                }
            }
            tls::Step::Check { what, ok, detail } => {
                if !ok {
                    self.outcome = Outcome::Failed(format!("{what}: {detail}"));
                }
                if let Some(last) = self.steps.last_mut() {
                    last.checks.push(Check { what, ok, detail });
                }
            }
        }
    }

    pub(crate) fn fail(&mut self, reason: String) {
        if matches!(self.outcome, Outcome::InProgress) {
            self.outcome = Outcome::Failed(reason);
        }
    }

    pub(crate) fn select(&mut self, delta: isize) -> bool {
        let last = self.steps.len().saturating_sub(1);
        let old = self.selected;
        self.selected = self.selected.saturating_add_signed(delta).min(last);
        if old != self.selected {
            self.detail_scroll = 0;
        }
        old != self.selected
    }
}
