//! Key presses and pastes: the focus, the panels' keys, the input line,
//! and a submitted line's command.

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::input::{Command, NICK_HELP, pieces, shown_as};
use super::log::{Author, ChatLog, Delivery, Entry, Level};
use super::model::{App, Focus, Local, Mode, Now, Place, Side, Update};
use super::panel::Outcome;
use crate::chat::{self, Kind};
use crate::net::Intent;

/// What Tab found to complete at the end of the input line.
pub(crate) enum Completion {
    /// A member's name, now in the line.
    Done,
    /// A partly typed word that no member's name starts.
    NoMatch(String),
    /// No word (an empty line, a space, the cursor inside): Tab moves the focus.
    NoWord,
}

/// How long after an Esc (or a character of the sequence it began) the
/// rest of a split escape sequence is still taken as one: a slow link's
/// delay, longer than any key repeat, shorter than typing `Esc [` by hand.
pub(crate) const ESC_TAIL: Duration = Duration::from_millis(300);

/// The `/help` text, one notice per line.
pub(crate) const HELP: &[&str] = &[
    "commands: /help  /who or /names (members)  /me ACTION  /msg NAME TEXT (private, end to end)  //text (a line starting with /)",
    "          /rekey (update traffic keys)  /clear (empty the scrollback)  /nick (how names are chosen)",
    "          /quit (close with close_notify; a bare exit is sent as a message)",
    "          /verify NAME (both safety numbers; marks NAME verified)  /ignore NAME (this session)",
    "          host: /kick NAME  /ban NAME (by key, kept)  /invite NAME FINGERPRINT (into a --closed room)",
    "marks: ✓ signature checked, a key you knew · ✓ new first seen this session · ✓ verified safety numbers compared",
    "       ⚠ KEY CHANGED not the key you know for the name (or a look-alike) · ⚠ STALE a replay, or signed long ago",
    "       ✗ INVALID the signature fails · (unverified) a guest: the relay's word only",
    "       your lines: · sent  ✓✓ the relay acknowledged  ✗ not sent",
    "          /tamper CASE (the lab, in demo or connect --lab: break one thing, see which check catches it;",
    "          CASE: flip replay reorder finished cert, cert name, mitm sig; /tamper alone explains each)",
    "keys: Enter send · Up/Down history · Ctrl-W delete word · Ctrl-U clear · Home/End · Ctrl-C quit",
    "      PgUp/PgDn or wheel scroll · End back to live · F2 panel on/off · F3 members · F4 key schedule · F5 end-to-end groups",
    "      Tab completes a member's name, else moves the focus: panel, then messages",
    "      panel: Up/Down select a step · Enter expand · PgUp/PgDn scroll details · Esc back",
    "      messages: Up/Down pick a signed message · Enter opens its bytes and checks · Esc back",
    "      Space sends a flight held by --step · Alt-L bare view: the scrollback as plain lines, to copy long ones whole",
];

impl App {
    /// Keys on a room's member list: Up/Down pick a connection, Enter
    /// makes the panel follow it (row 0: the newest handshake).
    pub(crate) fn conns_key(&mut self, key: KeyEvent) -> Update {
        let Mode::Room { conns, pinned, row, .. } = &mut self.mode else { return Update::NONE };
        match key.code {
            KeyCode::Up => *row = row.saturating_sub(1),
            KeyCode::Down => *row = (*row + 1).min(conns.len()),
            KeyCode::Enter | KeyCode::Char(' ') => {
                *pinned = row.checked_sub(1).and_then(|i| conns.get(i)).map(|c| c.peer);
                // Connections that ended while followed go now.
                let followed = *pinned;
                conns.retain(|c| c.open || Some(c.peer) == followed);
                *row = (*row).min(conns.len());
                self.side = Side::Handshake;
            }
            KeyCode::Esc => {
                self.side = Side::Handshake;
                self.focus = Focus::Input;
            }
            _ => return Update::NONE,
        }
        Update::REDRAW
    }

    /// The rest of an escape sequence that a slow link split after its Esc:
    /// the terminal's parser gave Esc, and now gives `[` (or `O`), digits
    /// and a final letter as if typed. They are taken here as the key they
    /// spell (an arrow, Home, End) or dropped; never typed into the input.
    pub(crate) fn escape_tail(&mut self, key: KeyEvent, now: Now) -> Option<Update> {
        let (at, started) = self.esc_tail.take()?;
        let plain = key.modifiers.difference(KeyModifiers::SHIFT).is_empty();
        let KeyCode::Char(c) = key.code else { return None };
        if !plain || now.instant.saturating_duration_since(at) > ESC_TAIL {
            return None;
        }
        if !started {
            if c == '[' || c == 'O' {
                self.esc_tail = Some((now.instant, true));
                return Some(Update::NONE);
            }
            return None;
        }
        if c.is_ascii_digit() || c == ';' {
            self.esc_tail = Some((now.instant, true));
            return Some(Update::NONE);
        }
        let code = match c {
            'A' => KeyCode::Up,
            'B' => KeyCode::Down,
            'C' => KeyCode::Right,
            'D' => KeyCode::Left,
            'H' => KeyCode::Home,
            'F' => KeyCode::End,
            // Any other final byte ends a sequence we do not act on.
            '@'..='~' => return Some(Update::NONE),
            _ => return None,
        };
        Some(self.key(KeyEvent::new(code, KeyModifiers::NONE), now))
    }

    pub(crate) fn key(&mut self, key: KeyEvent, now: Now) -> Update {
        if let Some(update) = self.escape_tail(key, now) {
            return update;
        }
        if key.code == KeyCode::Esc {
            self.esc_tail = Some((now.instant, false));
        }
        if key.code == KeyCode::Tab && self.focus == Focus::Input {
            match self.complete_name() {
                Completion::Done => return Update::REDRAW,
                Completion::NoMatch(word) => {
                    // Said, rather than the focus moving away unexplained.
                    let word = crate::present::escape::printable(&word).into_owned();
                    let text = format!(
                        "Tab: no member's name starts with {word:?} (/who lists them; Tab after a space moves the focus)"
                    );
                    self.notice(now, Level::Info, text);
                    return Update::REDRAW;
                }
                Completion::NoWord => {}
            }
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        match key.code {
            KeyCode::Char('c') if ctrl => return self.quit(),
            KeyCode::Char('l' | 'L') if alt => return Update::local(Local::Bare),
            KeyCode::Char(' ') if self.held => {
                self.held = false;
                let done = matches!(self.panel.outcome, Outcome::Done(_));
                self.state = if done { "connected" } else { "handshaking" }.into();
                return Update::local(Local::Release);
            }
            KeyCode::F(2) => {
                self.panel_choice = Some(!self.panel_visible(self.size.0));
                if !self.panel_visible(self.size.0) {
                    self.focus = Focus::Input;
                }
                return Update::REDRAW;
            }
            KeyCode::F(3) => return self.show_side(Side::Members),
            KeyCode::F(4) => return self.show_side(Side::Schedule),
            KeyCode::F(5) => return self.show_side(Side::Groups),
            KeyCode::Tab | KeyCode::BackTab => {
                let visible = self.panel_visible(self.size.0);
                // Messages are picked in the chat pane, beside the panel.
                let beside = self.panel_place(self.size.0, self.size.1) == Place::Beside;
                let messages = self.last_signed(self.log.entries.len()).is_some();
                self.focus = match self.focus {
                    Focus::Input if visible => Focus::Panel,
                    Focus::Input | Focus::Panel if messages && beside => Focus::Messages,
                    _ => Focus::Input,
                };
                if self.focus == Focus::Messages {
                    self.picked = self.last_signed(self.log.entries.len());
                }
                return Update::REDRAW;
            }
            KeyCode::PageUp if self.focus == Focus::Input || !self.panel_scrolls() => {
                return Update::redraw_if(self.log.scroll_by(self.page()));
            }
            KeyCode::PageDown if self.focus == Focus::Input || !self.panel_scrolls() => {
                return Update::redraw_if(self.log.scroll_by(-self.page()));
            }
            _ => {}
        }
        match self.focus {
            Focus::Panel if self.is_room() && self.side == Side::Members => self.conns_key(key),
            Focus::Panel if self.side == Side::Schedule => {
                self.schedule_key(key).unwrap_or_else(|| self.typed(key))
            }
            Focus::Panel if self.side == Side::Groups => self.groups_key(key),
            Focus::Panel => self.panel_key(key).unwrap_or_else(|| self.typed(key)),
            Focus::Input => self.input_key(key, now),
            Focus::Messages => self.messages_key(key).unwrap_or_else(|| self.typed(key)),
        }
    }

    /// A key the panel or the chat pane does not take: a character typed
    /// goes to the input line, wherever the focus was.
    fn typed(&mut self, key: KeyEvent) -> Update {
        match key.code {
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.focus = Focus::Input;
                self.input.insert(c.encode_utf8(&mut [0; 4]));
                Update::REDRAW
            }
            _ => Update::NONE,
        }
    }

    /// F3 and F4: `side` in the panel, shown if it was hidden; again, the
    /// handshake (and the chat, where the panel had taken its place).
    pub(crate) fn show_side(&mut self, side: Side) -> Update {
        let (width, height) = self.size;
        if self.side == side && self.panel_visible(width) {
            self.side = Side::Handshake;
            if self.panel_place(width, height) == Place::Instead {
                self.panel_choice = None;
                self.focus = Focus::Input;
            }
        } else {
            self.side = side;
            if !self.panel_visible(width) {
                self.panel_choice = Some(true);
            }
        }
        Update::REDRAW
    }

    /// Keys while a message is picked in the chat pane; `None` for a key
    /// it does not take.
    pub(crate) fn messages_key(&mut self, key: KeyEvent) -> Option<Update> {
        let Some(at) = self.picked else {
            self.focus = Focus::Input;
            return Some(Update::REDRAW);
        };
        match key.code {
            KeyCode::Up => {
                if let Some(before) = self.last_signed(at) {
                    self.picked = Some(before);
                }
            }
            KeyCode::Down => {
                if let Some(after) = self.next_signed(at) {
                    self.picked = Some(after);
                }
            }
            KeyCode::Enter | KeyCode::Char(' ') => {
                let signed = self.log.entries.get(at).and_then(|e| e.signed.clone());
                self.side = match (signed, &self.side) {
                    (Some(m), Side::Message(open)) if Arc::ptr_eq(&m, open) => Side::Handshake,
                    (Some(m), _) => Side::Message(m),
                    (None, _) => return Some(Update::NONE),
                };
                // Show the panel even where it is hidden for want of room.
                self.panel_choice = Some(true);
            }
            KeyCode::Esc => {
                if matches!(self.side, Side::Message(_)) {
                    self.side = Side::Handshake;
                } else {
                    self.focus = Focus::Input;
                }
            }
            _ => return None,
        }
        Some(Update::REDRAW)
    }

    /// The last signed message before log index `before`.
    pub(crate) fn last_signed(&self, before: usize) -> Option<usize> {
        let entries = &self.log.entries;
        (0..before.min(entries.len())).rev().find(|&i| entries.get(i).is_some_and(|e| e.signed.is_some()))
    }

    /// The first signed message after log index `after`.
    pub(crate) fn next_signed(&self, after: usize) -> Option<usize> {
        let entries = &self.log.entries;
        (after + 1..entries.len()).find(|&i| entries.get(i).is_some_and(|e| e.signed.is_some()))
    }

    /// Tab on a partly typed name at the end of the line: completes it to
    /// the one member name it starts (the first, in order, if several do).
    pub(crate) fn complete_name(&mut self) -> Completion {
        let text = &self.input.text;
        if self.input.cursor != text.len() {
            return Completion::NoWord;
        }
        let start = text.rfind(' ').map_or(0, |i| i + 1);
        let word = &text[start..];
        if word.is_empty() {
            return Completion::NoWord;
        }
        let lower = word.to_lowercase();
        let mut names: Vec<&str> = self
            .members
            .iter()
            .map(|m| m.name.as_str())
            .filter(|n| n.to_lowercase().starts_with(&lower) && n.len() > word.len())
            .collect();
        names.sort_unstable();
        let Some(name) = names.first() else { return Completion::NoMatch(word.to_owned()) };
        // At the start of a line a name is an address: "alice: ".
        let completed = if start == 0 { format!("{name}: ") } else { format!("{name} ") };
        let mut line = text[..start].to_owned();
        line.push_str(&completed);
        self.input.set(line);
        Completion::Done
    }

    pub(crate) fn page(&self) -> isize {
        isize::try_from(self.size.1.saturating_sub(4) / 2).unwrap_or(1).max(1)
    }

    /// Whether PgUp/PgDn scroll the panel rather than the chat: in an
    /// expanded step, and in the key schedule view when it has the focus.
    pub(crate) fn panel_scrolls(&self) -> bool {
        self.panel().expanded
            || (self.focus == Focus::Panel && matches!(self.side, Side::Schedule | Side::Groups))
    }

    /// Keys in the key schedule view: scrolling, Esc back to the input;
    /// `None` for a key it does not take.
    pub(crate) fn schedule_key(&mut self, key: KeyEvent) -> Option<Update> {
        let p = self.panel_mut();
        let old = p.schedule_scroll;
        match key.code {
            KeyCode::Up => p.schedule_scroll = old.saturating_sub(1),
            KeyCode::Down => p.schedule_scroll = old.saturating_add(1),
            KeyCode::PageUp => p.schedule_scroll = old.saturating_sub(8),
            KeyCode::PageDown => p.schedule_scroll = old.saturating_add(8),
            KeyCode::Home => p.schedule_scroll = 0,
            KeyCode::Esc => {
                self.focus = Focus::Input;
                return Some(Update::REDRAW);
            }
            _ => return None,
        }
        Some(Update::redraw_if(old != self.panel().schedule_scroll))
    }

    /// Keys on the handshake's steps; `None` for a key it does not take.
    pub(crate) fn panel_key(&mut self, key: KeyEvent) -> Option<Update> {
        let p = self.panel_mut();
        let changed = match key.code {
            KeyCode::Up => p.select(-1),
            KeyCode::Down => p.select(1),
            KeyCode::Home => p.select(isize::MIN / 2),
            KeyCode::End => p.select(isize::MAX / 2),
            KeyCode::Enter | KeyCode::Char(' ') if !p.steps.is_empty() => {
                p.expanded = !p.expanded;
                p.detail_scroll = 0;
                true
            }
            KeyCode::PageDown => {
                p.detail_scroll = p.detail_scroll.saturating_add(8);
                true
            }
            KeyCode::PageUp => {
                p.detail_scroll = p.detail_scroll.saturating_sub(8);
                true
            }
            KeyCode::Esc => {
                if p.expanded {
                    p.expanded = false;
                } else {
                    self.focus = Focus::Input;
                }
                true
            }
            _ => return None,
        };
        Some(Update::redraw_if(changed))
    }

    pub(crate) fn input_key(&mut self, key: KeyEvent, now: Now) -> Update {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let i = &mut self.input;
        match key.code {
            KeyCode::Enter => return self.submit(now),
            KeyCode::Char('w') if ctrl => i.delete_word(),
            KeyCode::Char('u') if ctrl => i.set(String::new()),
            KeyCode::Char('a') if ctrl => i.cursor = 0,
            KeyCode::Char('e') if ctrl => i.cursor = i.text.len(),
            KeyCode::Char(_) if ctrl => return Update::NONE,
            KeyCode::Char(c) => i.insert(c.encode_utf8(&mut [0; 4])),
            KeyCode::Backspace => i.backspace(),
            KeyCode::Delete => i.delete(),
            KeyCode::Left => i.cursor = i.prev_boundary(),
            KeyCode::Right => i.cursor = i.next_boundary(),
            KeyCode::Home => i.cursor = 0,
            KeyCode::End => {
                // End of the line, and back to live in the pane.
                i.cursor = i.text.len();
                self.log.scroll_by(isize::MIN / 2);
            }
            KeyCode::Up => return Update::redraw_if(i.history_back()),
            KeyCode::Down => return Update::redraw_if(i.history_forward()),
            KeyCode::Esc => {
                self.log.scroll_by(isize::MIN / 2);
                // A panel in the chat's place gives it back.
                if self.panel_place(self.size.0, self.size.1) == Place::Instead {
                    self.panel_choice = None;
                }
            }
            _ => return Update::NONE,
        }
        Update::REDRAW
    }

    pub(crate) fn quit(&mut self) -> Update {
        self.quitting = true;
        self.state = "closing".into();
        Update::send(vec![Intent::Close])
    }

    /// Enter: the line typed, run. What the screen answers itself (help,
    /// clearing) is done here; the rest becomes what the network must do
    /// by the same table as a headless stdin's lines ([`Command::intent`]).
    pub(crate) fn submit(&mut self, now: Now) -> Update {
        let line = self.input.take();
        match Command::parse(&line) {
            Command::Empty => Update::NONE,
            Command::Quit => self.quit(),
            Command::Help => {
                for text in HELP {
                    self.notice(now, Level::Info, (*text).to_owned());
                }
                self.notice(now, Level::Info, self.clock.describe());
                Update::REDRAW
            }
            Command::Clear => {
                self.log = ChatLog::default();
                self.picked = None;
                if self.focus == Focus::Messages {
                    self.focus = Focus::Input;
                }
                Update::REDRAW
            }
            Command::Nick => {
                let known = self.me.as_ref().map(|me| format!("; here you are {me}")).unwrap_or_default();
                self.notice(now, Level::Info, format!("{NICK_HELP}{known}"));
                Update::REDRAW
            }
            Command::TamperHelp => {
                for text in crate::teach::lab::usage() {
                    self.notice(now, Level::Info, text);
                }
                Update::REDRAW
            }
            Command::Say { kind, text, to } => self.say(now, kind, text, to),
            command => {
                let rekey = command == Command::Rekey;
                match command.intent(self.typist()) {
                    Ok(intent) => {
                        if rekey {
                            self.notice(now, Level::Info, "asking for a key update…".into());
                        }
                        Update::send(intent.into_iter().collect())
                    }
                    Err(why) => {
                        self.notice(now, Level::Error, why);
                        Update::REDRAW
                    }
                }
            }
        }
    }

    /// Shows our own line (sent, not yet delivered) and asks for it to be said.
    pub(crate) fn say(&mut self, now: Now, kind: Kind, text: String, to: Option<String>) -> Update {
        self.say_lines(now, kind, &[text], to)
    }

    /// Shows our `lines` and asks for each to be said, in order. A line
    /// longer than a message may be ([`chat::MAX_TEXT`] bytes) is cut into
    /// several, at a space near the end where there is one.
    pub(crate) fn say_lines(&mut self, now: Now, kind: Kind, lines: &[String], to: Option<String>) -> Update {
        self.log.scroll_by(isize::MIN / 2);
        let mut said = Vec::new();
        for piece in lines.iter().flat_map(|line| pieces(line, chat::MAX_TEXT)) {
            self.sent.0 += 1;
            self.sent.1 += piece.len() as u64 + 1;
            let mut entry =
                Entry::new(now.unix, Author::Me(Delivery::Pending), shown_as(piece, to.as_deref()));
            entry.tags.action = kind == Kind::Action;
            entry.tags.private = to.is_some();
            self.log.push(entry);
            said.push(Intent::Say { kind, text: piece.to_owned(), to: to.clone() });
        }
        if said.is_empty() { Update::NONE } else { Update::send(said) }
    }

    /// A bracketed paste. One line goes into the input line, to be edited
    /// and sent with Enter. Several are sent at once, one message per line
    /// in order, empty lines skipped, as irssi does: the text typed before
    /// the paste joins its first line; after `/me ` each line is an action
    /// and after `/msg NAME ` each goes to NAME. Pasted lines are text:
    /// a pasted `/quit` is said, not run.
    pub(crate) fn paste(&mut self, text: &str, now: Now) -> Update {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        let mut lines: Vec<String> = text
            .split('\n')
            .map(|line| {
                line.chars().map(|c| if c == '\t' { ' ' } else { c }).filter(|c| !c.is_control()).collect()
            })
            .collect();
        // A paste that ends with a newline does not end with an empty line.
        if lines.len() > 1 && lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        self.focus = Focus::Input;
        if lines.len() <= 1 {
            self.input.insert(lines.first().map_or("", String::as_str));
            return Update::REDRAW;
        }
        let typed = self.input.text.to_owned();
        let (kind, to, before) = if let Some(rest) = typed.strip_prefix("/me ") {
            (Kind::Action, None, rest.trim_start())
        } else if let Some((name, rest)) =
            typed.strip_prefix("/msg ").and_then(|r| r.trim_start().split_once(' '))
        {
            (Kind::Private, Some(name.to_owned()), rest.trim_start())
        } else if typed.starts_with('/') && !typed.starts_with("//") {
            let why = "a paste of several lines goes after text, /me or /msg NAME: not sent".to_owned();
            self.notice(now, Level::Error, why);
            return Update::REDRAW;
        } else {
            (Kind::Text, None, typed.as_str())
        };
        if let Some(first) = lines.first_mut() {
            first.insert_str(0, before);
        }
        lines.retain(|line| !line.trim().is_empty());
        self.input.set(String::new());
        self.say_lines(now, kind, &lines, to)
    }
}
