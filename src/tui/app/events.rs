//! What the network reported, as the model takes it: notices in words,
//! the panels' steps, our lines' delivery, the members.

use std::net::SocketAddr;
use std::sync::Arc;

use super::input::shown_as;
use super::log::{Author, Delivery, Entry, Level, Mark, Tags};
use super::model::{App, Conn, MAX_CONNS, Mode, Now};
use super::panel::{Outcome, Panel};
use crate::chat::{self, ChatEvent, Kind, Verdict};
use crate::net::{Closer, NetEvent};
use crate::present::report::{self, Audience, Told, Tone};
use crate::tls::{AlertDescription, HandshakeStep};

impl App {
    pub(crate) fn ended(&mut self, error: Option<String>, now: Now) {
        self.held = false;
        match error {
            None => {
                self.state = "closed".into();
            }
            Some(reason) => {
                self.panel.fail(reason.clone());
                self.state = "failed".into();
                self.notice(now, Level::Error, reason);
            }
        }
        self.notice(now, Level::Info, "connection over: /quit or Ctrl-C to leave".into());
    }

    pub(crate) fn net(&mut self, event: NetEvent, now: Now) {
        // The words come from the one place events become words; what is
        // below is what the event changes on the screen.
        let told = report::words(&event, Audience::Screen);
        match event {
            NetEvent::Step { peer, step } => {
                if self.is_room() {
                    self.conn_step(peer, &step, now);
                }
                if self.panel.follows(peer, &step) {
                    self.panel.step(step, now.instant);
                    if !self.is_room() {
                        self.state = match self.panel.outcome {
                            Outcome::Failed(_) => "failed".into(),
                            // A KeyUpdate is a message after the handshake.
                            Outcome::Done(_) => "connected".into(),
                            Outcome::InProgress => "handshaking".into(),
                        };
                    }
                }
            }
            NetEvent::ServerKey { .. } => {
                if !self.is_room() {
                    self.state = "awaiting your trust".into();
                }
            }
            NetEvent::Connected { peer, summary } => {
                if let Mode::Room { conns, .. } = &mut self.mode
                    && let Some(c) = conns.iter_mut().find(|c| c.peer == peer)
                {
                    c.label = match summary.peer.as_ref().and_then(crate::store::identity::name_of) {
                        Some(name) => format!("{name} \u{2713}"),
                        None => "guest".into(),
                    };
                }
                let connected_at = self.panel.peer == Some(peer);
                self.panels_of(peer, |p| {
                    p.outcome = Outcome::Done(Box::new(summary.clone()));
                    p.handshake_len = Some(p.last_number());
                });
                if connected_at && !self.is_room() {
                    self.state = "connected".into();
                }
            }
            NetEvent::KeyUpdated { peer, .. } => {
                self.panels_of(peer, |p| p.key_updates += 1);
            }
            NetEvent::AlertSent { peer, alert } => {
                if alert == AlertDescription::CLOSE_NOTIFY {
                    return;
                }
                self.panels_of(peer, |p| p.fail(format!("alert {alert} sent to {peer}")));
            }
            NetEvent::Text { peer, line } => {
                self.received.0 += 1;
                self.received.1 += line.len() as u64 + 1;
                self.log.push(Entry::new(now.unix, Author::Peer(peer.to_string()), line));
            }
            NetEvent::Revealed { peer, revealed } => {
                // The engine reveals only when asked; the app shows only then too.
                if self.secrets_shown {
                    self.panels_of(peer, |p| p.schedule.reveal(revealed.clone()));
                }
            }
            NetEvent::Held { .. } => {
                self.held = true;
                self.state = "paused".into();
            }
            NetEvent::Closed { peer, by } => {
                // A room's member: its leaving says it, once (see `chat`).
                let member = self
                    .conns()
                    .iter()
                    .find(|c| c.peer == peer)
                    .and_then(|c| c.label.strip_suffix(" \u{2713}"))
                    .map(str::to_owned);
                if let (true, Closer::Peer, Some(name)) = (self.is_room(), by, member) {
                    if self.shown_presence.as_ref() != Some(&(name.clone(), false)) {
                        self.closed_by_peer.push(name);
                    }
                    self.conn_gone(peer);
                    return;
                }
                if self.panel.peer == Some(peer) && !self.is_room() {
                    self.state = "closed".into();
                }
                self.conn_gone(peer);
            }
            NetEvent::Failed { peer, error, .. } => {
                let reason = chat::printable(&error.to_string()).into_owned();
                if self.panel.peer == Some(peer) && !self.is_room() {
                    self.state = "failed".into();
                }
                self.panels_of(peer, |p| p.fail(reason.clone()));
                self.conn_gone(peer);
            }
            NetEvent::Chat { event, .. } => self.chat(event, now),
            NetEvent::RoomNote { note } => {
                if self.repeats_presence(&chat::printable(&note)) {
                    return;
                }
            }
            NetEvent::Lab(report) => self.lab(&report),
            NetEvent::Reconnecting { attempt, delay, .. } => {
                // The next handshake gets a panel of its own, and the
                // room's rejoin (its roster, its history) is folded.
                self.panel.peer = None;
                self.lab_rejoining = true;
                self.state =
                    format!("reconnecting: attempt {attempt}, next in {:.0} s", delay.as_secs_f64().ceil());
            }
            NetEvent::Back { .. } => self.state = "back".into(),
            NetEvent::StatusPage { .. }
            | NetEvent::AcceptFailed { .. }
            | NetEvent::CaptureStopped { .. }
            | NetEvent::Refused { .. } => {}
        }
        for Told { tone, text } in told {
            let level = match tone {
                Tone::Info => Level::Info,
                Tone::Success => Level::Success,
                Tone::Error => Level::Error,
            };
            self.notice(now, level, text);
        }
    }

    /// Whether a room's note repeats the join or leave just shown from the
    /// room's presence event (the relay says both: the note for logs).
    pub(crate) fn repeats_presence(&mut self, note: &str) -> bool {
        let Some((name, joined)) = &self.shown_presence else { return false };
        let repeats = if *joined {
            note.starts_with(&format!("{name} joined ("))
        } else {
            note == format!("{name} left") || note.starts_with(&format!("{name} left: "))
        };
        if repeats {
            self.shown_presence = None;
        }
        repeats
    }

    /// What the tamper lab did, and what caught it (its lines are the
    /// notices [`report::words`] gives).
    pub(crate) fn lab(&mut self, report: &crate::teach::lab::Report) {
        use crate::teach::lab::Report;
        let level = match report {
            Report::Ended { .. } | Report::Marked { .. } if report.caught() => Level::Success,
            Report::Ended { .. } | Report::Marked { .. } => Level::Error,
            _ => Level::Info,
        };
        if let Report::Ended { case, .. } = report {
            self.panel.fail(format!("tamper {case}: see the chat pane"));
            self.state = "tampered".into();
            self.lab_verdict = report.summary().map(|s| (level, format!("[lab] {}", chat::printable(&s))));
        }
        if let Report::Reconnecting = report {
            // The next handshake gets a panel of its own.
            self.panel.peer = None;
            self.state = "reconnecting".into();
            self.lab_rejoining = true;
        }
    }

    /// A room's connection takes note of its handshake step.
    pub(crate) fn conn_step(&mut self, peer: SocketAddr, step: &HandshakeStep, now: Now) {
        let Mode::Room { conns, pinned, .. } = &mut self.mode else { return };
        if !conns.iter().any(|c| c.peer == peer) {
            if step.number > 1 {
                return;
            }
            if conns.len() >= MAX_CONNS
                && let Some(oldest) = conns.iter().position(|c| Some(c.peer) != *pinned)
            {
                conns.remove(oldest);
            }
            conns.push(Conn { peer, label: "handshaking".into(), open: true, panel: Panel::default() });
        }
        if let Some(c) = conns.iter_mut().find(|c| c.peer == peer)
            && c.panel.follows(peer, step)
        {
            c.panel.step(step.clone(), now.instant);
        }
    }

    /// A room's connection is over: it leaves the list, unless the panel
    /// follows it (then it stays, to be read, until another is picked).
    pub(crate) fn conn_gone(&mut self, peer: SocketAddr) {
        let Mode::Room { conns, pinned, row, .. } = &mut self.mode else { return };
        if *pinned == Some(peer) {
            if let Some(c) = conns.iter_mut().find(|c| c.peer == peer) {
                c.open = false;
            }
        } else {
            conns.retain(|c| c.peer != peer);
        }
        *row = (*row).min(conns.len());
    }

    /// What the room reports.
    pub(crate) fn chat(&mut self, event: ChatEvent, now: Now) {
        self.group_steps_of(&event, now);
        match &event {
            // A reconnect (the lab's) replays what is already on screen:
            // one line says so, and the scrollback keeps what came after.
            ChatEvent::Message(m) if m.history && m.room_seq != 0 && m.room_seq <= self.room_seen => {
                if !self.history_folded {
                    self.history_folded = true;
                    self.notice(
                        now,
                        Level::Info,
                        "the room's history is already shown above: not repeated".into(),
                    );
                }
                return;
            }
            // One of ours whose acknowledgement the ended connection never
            // brought (the lab's replay): on screen already, now delivered.
            ChatEvent::Message(m)
                if m.history
                    && m.kind == Kind::Text
                    && self.me.as_deref() == Some(m.from.as_str())
                    && self.log.mark_in_history(&chat::printable(&m.text)) =>
            {
                self.room_seen = self.room_seen.max(m.room_seq);
                return;
            }
            ChatEvent::Message(m) => self.room_seen = self.room_seen.max(m.room_seq),
            ChatEvent::Delivered { room_seq, .. } => self.room_seen = self.room_seen.max(*room_seq),
            ChatEvent::Welcome { .. } => self.history_folded = false,
            // The room's list closes the lab's rejoining: the same members
            // are not listed again, and the case's outcome is said again.
            ChatEvent::Roster { members, .. } if self.lab_rejoining => {
                self.lab_rejoining = false;
                let seated = |ms: &[chat::MemberInfo]| {
                    let mut v: Vec<_> = ms.iter().map(|m| (m.name.clone(), m.key)).collect();
                    v.sort();
                    v
                };
                let same = seated(members) == seated(&self.members);
                if let Some((level, verdict)) = self.lab_verdict.take() {
                    if same {
                        self.notice(now, Level::Info, "the room's members are as before".into());
                    }
                    self.notice(now, level, verdict);
                }
                if same {
                    if let ChatEvent::Roster { members, .. } = event {
                        self.members = members;
                    }
                    return;
                }
            }
            _ => {}
        }
        let level = match &event {
            ChatEvent::Welcome { .. } => Level::Success,
            ChatEvent::Presence { .. } | ChatEvent::Roster { .. } | ChatEvent::E2eWaiting { .. } => {
                Level::Info
            }
            ChatEvent::E2eReady { .. } => Level::Success,
            _ => Level::Error,
        };
        let mut texts = report::notices(&event);
        if self.me.is_some() {
            // Said once, on the first welcome: not again on a reconnect.
            texts.retain(|t| t != report::RELAY_READS);
        }
        if let ChatEvent::Presence { joined, member, reason } = &event {
            let name = chat::printable(&member.name).into_owned();
            // A member whose connection closed with close_notify just now:
            // one line says both.
            if let Some(at) = self.closed_by_peer.iter().position(|n| *n == name)
                && !joined
                && reason.is_empty()
            {
                self.closed_by_peer.remove(at);
                if let Some(text) = texts.first_mut() {
                    text.push_str(" (close_notify)");
                }
            }
            self.shown_presence = Some((name, *joined));
        }
        for text in texts {
            self.notice(now, level, text);
        }
        match event {
            ChatEvent::Welcome { name, e2e, .. } => {
                self.me = Some(name);
                self.e2e_room = e2e;
            }
            ChatEvent::E2eWaiting { to, text, .. } => {
                self.log.mark_sent(&shown_as(&text, Some(&to)), Delivery::Waiting, false);
            }
            ChatEvent::Sent { seq, kind, acked, to, text, e2e } => {
                let delivery = if acked {
                    Delivery::Sent { seq, private: kind == Kind::Private }
                } else {
                    Delivery::Unacknowledged
                };
                self.log.mark_sent(&shown_as(&text, to.as_deref()), delivery, e2e);
            }
            ChatEvent::Refused { code, text } => self.refused(code, &text),
            ChatEvent::Delivered { seq, private, .. } => {
                self.log.mark_mine(|d| *d == Delivery::Sent { seq, private }, Delivery::Delivered, false);
            }
            ChatEvent::Message(m) => self.message(*m, now),
            ChatEvent::Guest { history, name, text, .. } => {
                self.received.0 += 1;
                self.received.1 += text.len() as u64;
                let author =
                    Author::Member { name: chat::printable(&name).into_owned(), mark: Mark::Unverified };
                let mut entry = Entry::new(now.unix, author, chat::printable(&text).into_owned());
                entry.tags.history = history;
                self.push_mentioning(entry);
            }
            ChatEvent::Presence { joined, member, .. } => {
                self.members.retain(|m| m.name != member.name || m.key != member.key);
                if joined {
                    self.members.push(member);
                }
            }
            ChatEvent::Roster { members, .. } => self.members = members,
            _ => {}
        }
    }

    /// A refusal that answers one of our lines marks it "not sent". The
    /// connection refuses a line it cannot sign (too long, a `/msg` to an
    /// unknown name) as it takes it: that answers the oldest pending line.
    /// The relay refuses a line it received (too fast, altered): that
    /// answers the oldest line sent and not yet acknowledged, since the
    /// relay answers each line, in order. The connection's refusals are
    /// all `BadMessage`, as is the relay's refusal of an altered line:
    /// only the relay's says "not sent: the relay …". Other refusals
    /// (`/who` on a plain server, a failed `/verify`) do not say "not sent".
    pub(crate) fn refused(&mut self, code: chat::RefusalCode, text: &str) {
        use chat::RefusalCode as Code;
        let sent = |d: &Delivery| matches!(d, Delivery::Sent { .. });
        let pending = |d: &Delivery| *d == Delivery::Pending;
        let waiting = |d: &Delivery| *d == Delivery::Waiting;
        let _ = match code {
            Code::TooLong | Code::RateLimited | Code::NoSuchMember => {
                self.log.mark_mine(sent, Delivery::Refused, true)
            }
            Code::BadMessage if text.starts_with("not sent: no end-to-end group") => {
                self.log.mark_mine(waiting, Delivery::Refused, true)
            }
            Code::BadMessage if text.starts_with("not sent: the relay ") => {
                self.log.mark_mine(sent, Delivery::Refused, true)
            }
            Code::BadMessage if text.starts_with("not sent:") => {
                self.log.mark_mine(pending, Delivery::Refused, true)
            }
            _ => false,
        };
    }

    /// A signed message, with what the checks found (the notices about it
    /// are already in the log).
    pub(crate) fn message(&mut self, m: chat::Received, now: Now) {
        let mark = match (m.verdict(), &m.author) {
            (Verdict::Verified, chat::AuthorCheck::FirstSeen) => Mark::FirstSeen,
            (Verdict::Verified, chat::AuthorCheck::Verified) => Mark::Checked,
            (Verdict::Verified, _) => Mark::Verified,
            (Verdict::Stale, _) => Mark::Stale,
            (Verdict::KeyChanged, _) => Mark::KeyChanged,
            (Verdict::Invalid, _) => Mark::Invalid,
        };
        let text = chat::printable(&m.text);
        let text = match report::warning(m.sig) {
            Some(why) => format!("{text}  [{why}]"),
            None => text.into_owned(),
        };
        self.received.0 += 1;
        self.received.1 += m.text.len() as u64;
        let name = chat::printable(&m.from).into_owned();
        // Our own line, replayed as history: ours, as it was live (the
        // member knows our name and key without a contact).
        let ours = m.sig == chat::SigCheck::Valid
            && m.author == chat::AuthorCheck::Known
            && self.me.as_deref() == Some(m.from.as_str());
        // History shows when the line was written (its author's signed
        // time), not when it was replayed.
        let at = if m.history { m.time_ms / 1000 } else { now.unix };
        let author = if ours { Author::Me(Delivery::Delivered) } else { Author::Member { name, mark } };
        let mut entry = Entry::new(at, author, text);
        if !m.history && (m.time_ms / 1000).abs_diff(now.unix) > 60 {
            entry.signed_at = Some(m.time_ms / 1000);
        }
        entry.tags = Tags {
            history: m.history,
            private: m.private,
            action: m.kind == Kind::Action,
            mention: false,
            e2e: m.e2e,
        };
        // The text is kept once, as shown; the signed bytes hold it as written.
        let m = chat::Received { text: String::new(), ..m };
        entry.signed = Some(Arc::new(m));
        if ours {
            self.log.push(entry);
        } else {
            self.push_mentioning(entry);
        }
    }

    /// Adds a peer's entry; one that mentions our name is highlighted and
    /// rings the bell (not for history).
    pub(crate) fn push_mentioning(&mut self, mut entry: Entry) {
        let history = entry.tags.history;
        if let Some(me) = &self.me {
            let mentioned = entry
                .text
                .to_lowercase()
                .split(|c: char| !(c.is_alphanumeric() || "._-".contains(c)))
                .any(|w| w == me.to_lowercase());
            entry.tags.mention = mentioned;
            self.ring |= mentioned && !history && self.bell;
        }
        self.log.push(entry);
    }
}
