//! The input line with its history, and what a typed line means
//! ([`Command`]): the same parser for the TUI and a headless stdin.

use crate::chat::Kind;
use crate::net::Intent;

/// The input line: text, cursor and history.
#[derive(Debug, Default)]
pub struct Input {
    pub(crate) text: String,
    /// Byte offset of the cursor, always on a char boundary.
    pub(crate) cursor: usize,
    pub(crate) history: Vec<String>,
    /// Which history entry is shown while browsing with Up/Down.
    pub(crate) browsing: Option<usize>,
    /// What was typed before browsing started.
    pub(crate) draft: String,
}

impl Input {
    /// The text typed so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn insert(&mut self, s: &str) {
        self.text.insert_str(self.cursor, s);
        self.cursor += s.len();
    }

    pub(crate) fn prev_boundary(&self) -> usize {
        self.text.get(..self.cursor).and_then(|s| s.char_indices().next_back()).map_or(0, |(i, _)| i)
    }

    pub(crate) fn next_boundary(&self) -> usize {
        self.text
            .get(self.cursor..)
            .and_then(|s| s.chars().next())
            .map_or(self.cursor, |c| self.cursor + c.len_utf8())
    }

    pub(crate) fn backspace(&mut self) {
        let start = self.prev_boundary();
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    pub(crate) fn delete(&mut self) {
        let end = self.next_boundary();
        self.text.replace_range(self.cursor..end, "");
    }

    /// Ctrl-W: the whitespace before the cursor, then the word before that.
    pub(crate) fn delete_word(&mut self) {
        let before = self.text.get(..self.cursor).unwrap_or_default();
        let trimmed = before.trim_end();
        let start = trimmed.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    pub(crate) fn set(&mut self, text: String) {
        self.cursor = text.len();
        self.text = text;
    }

    pub(crate) fn history_back(&mut self) -> bool {
        let index = match self.browsing {
            None if self.history.is_empty() => return false,
            None => {
                self.draft = std::mem::take(&mut self.text);
                self.history.len() - 1
            }
            Some(0) => return false,
            Some(i) => i - 1,
        };
        self.browsing = Some(index);
        self.set(self.history.get(index).cloned().unwrap_or_default());
        true
    }

    pub(crate) fn history_forward(&mut self) -> bool {
        let Some(i) = self.browsing else { return false };
        if i + 1 < self.history.len() {
            self.browsing = Some(i + 1);
            self.set(self.history.get(i + 1).cloned().unwrap_or_default());
        } else {
            self.browsing = None;
            let draft = std::mem::take(&mut self.draft);
            self.set(draft);
        }
        true
    }

    /// Takes the line for sending and remembers it.
    pub(crate) fn take(&mut self) -> String {
        let line = std::mem::take(&mut self.text);
        self.cursor = 0;
        self.browsing = None;
        self.draft.clear();
        if !line.trim().is_empty() && self.history.last() != Some(&line) {
            self.history.push(line.clone());
        }
        line
    }
}

/// `text` cut into pieces of at most `max` bytes, each ending on a
/// character boundary: after the last space of a piece when that space is
/// in its second half (the space is dropped), else at the last character
/// that fits. Text within `max` is one piece.
pub(crate) fn pieces(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut end = max;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            // max is smaller than one character: the character alone.
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (piece, next) = match rest.get(..end).and_then(|head| head.rfind(' ')) {
            Some(space) if space >= end / 2 && space > 0 => (&rest[..space], &rest[space + 1..]),
            _ => rest.split_at(end),
        };
        out.push(piece);
        rest = next;
    }
    out.push(rest);
    out
}

/// What `/msg` without a name and text says.
pub(crate) const MSG_USAGE: &str =
    "/msg NAME TEXT: a private message to one member, end to end (/who lists them)";

/// What `/nick` says: there is no nick to change in a room.
pub(crate) const NICK_HELP: &str = "/nick: a room binds your name to your key, so it is not changed per room: \
     /quit, run `tlschat id --name NEW`, and connect again (a room that bound your old name keeps it for your key)";

/// How one of our lines shows in the log: a private one with its recipient.
pub(crate) fn shown_as(text: &str, to: Option<&str>) -> String {
    match to {
        Some(to) => format!("\u{2192} {to}: {text}"),
        None => text.to_owned(),
    }
}

/// A line the user typed, understood: the same in the TUI and on a
/// headless stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// Nothing but spaces.
    Empty,
    /// `/quit` (or irssi's `/exit`). A bare `exit` is a message like any
    /// other: it is said, not obeyed.
    Quit,
    /// `/help`.
    Help,
    /// `/rekey`.
    Rekey,
    /// `/who`, or `/names` as irssi and weechat call it.
    Who,
    /// `/clear`: empties the scrollback on this screen.
    Clear,
    /// `/nick`, with or without a name: names are bound to the key, so it
    /// explains how to choose one ([`NICK_HELP`]).
    Nick,
    /// `/tamper` alone: what each case does.
    TamperHelp,
    /// `/tamper CASE`.
    Tamper(crate::teach::lab::Case),
    /// A line of chat, `/me ACTION` or `/msg NAME TEXT`. `//text` says `/text`.
    Say {
        /// What kind.
        kind: Kind,
        /// The text.
        text: String,
        /// The recipient of a private message.
        to: Option<String>,
    },
    /// `/ignore NAME`: stop showing what NAME says, for this session.
    Ignore(String),
    /// `/verify NAME`: both safety numbers, and NAME marked verified.
    Verify(String),
    /// The host's `/kick NAME` and `/ban NAME`.
    Remove {
        /// Who.
        name: String,
        /// `/ban`: refuse the key from now on.
        ban: bool,
    },
    /// The host's `/invite NAME FINGERPRINT`.
    Invite {
        /// The name.
        name: String,
        /// The key.
        fingerprint: crate::tls::Fingerprint,
    },
    /// A command used wrongly, or unknown: why, in one line.
    Wrong(String),
}

/// Who typed a line: what a command may ask depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Typist {
    /// A room's member, or any client (`connect`, `demo`).
    Member,
    /// A room's host (`listen`).
    Host,
}

/// What `/tamper` typed by a room's host says.
const TAMPER_IS_FOR_CLIENTS: &str = "/tamper is for clients: run it in tlschat demo or tlschat connect --lab";

/// What the host's commands typed by a member say.
const FOR_THE_HOST: &str = "/kick, /ban and /invite are the host's: run them in tlschat listen";

impl Command {
    /// What the network must do for this command, typed by `by`: the one
    /// table from commands to [`Intent`]s, for the TUI and a headless
    /// stdin alike. `Ok(None)` for what the interface answers itself
    /// (`/help`, `/clear`, `/nick`, `/tamper` alone, an empty line);
    /// `Err` says why the command is refused, in one line.
    pub(crate) fn intent(self, by: Typist) -> Result<Option<Intent>, String> {
        let intent = match self {
            Self::Empty | Self::Help | Self::Clear | Self::Nick | Self::TamperHelp => return Ok(None),
            Self::Wrong(why) => return Err(why),
            Self::Quit => Intent::Close,
            // Asking the peer to update too shows both directions change
            // (in a room: every member, each asking its peer).
            Self::Rekey => Intent::KeyUpdate { request_peer: true },
            Self::Who => Intent::Who,
            Self::Say { kind, text, to } => Intent::Say { kind, text, to },
            Self::Ignore(name) => Intent::Ignore { name },
            Self::Verify(name) => Intent::Verify { name },
            Self::Tamper(_) if by == Typist::Host => return Err(TAMPER_IS_FOR_CLIENTS.into()),
            Self::Tamper(case) => Intent::Tamper(case),
            Self::Remove { .. } | Self::Invite { .. } if by == Typist::Member => {
                return Err(FOR_THE_HOST.into());
            }
            Self::Remove { name, ban } => Intent::Remove { name, ban },
            Self::Invite { name, fingerprint } => Intent::Invite { name, fingerprint },
        };
        Ok(Some(intent))
    }

    /// Reads a typed line.
    pub(crate) fn parse(line: &str) -> Self {
        let line = line.trim_end_matches(['\r', '\n']);
        let command = line.trim();
        let say = |kind, text: &str, to: Option<&str>| Self::Say {
            kind,
            text: text.to_owned(),
            to: to.map(str::to_owned),
        };
        match command {
            "" => Self::Empty,
            "/quit" | "/exit" => Self::Quit,
            "/help" => Self::Help,
            "/rekey" => Self::Rekey,
            "/who" | "/names" => Self::Who,
            "/clear" => Self::Clear,
            "/tamper" => Self::TamperHelp,
            "/msg" => Self::Wrong(MSG_USAGE.into()),
            "/me" => Self::Wrong("/me ACTION: says ACTION as an action (* you ACTION)".into()),
            _ if command == "/nick" || command.starts_with("/nick ") => Self::Nick,
            _ => {
                if let Some(case) = command.strip_prefix("/tamper ") {
                    return match crate::teach::lab::Case::parse(case) {
                        Some(case) => Self::Tamper(case),
                        None => Self::Wrong(format!(
                            "unknown tamper case {:?}: /tamper lists them",
                            crate::present::escape::printable(case.trim())
                        )),
                    };
                }
                let one_name = |rest: &str, usage: &str| match rest.split_whitespace().collect::<Vec<_>>()[..]
                {
                    [name] => Ok(name.to_owned()),
                    _ => Err(Self::Wrong(usage.to_owned())),
                };
                let word = command.split_whitespace().next().unwrap_or("");
                let rest = command[word.len()..].trim();
                match word {
                    "/ignore" => {
                        return one_name(rest, "/ignore NAME: stop showing what NAME says, for this session")
                            .map_or_else(|e| e, Self::Ignore);
                    }
                    "/verify" => {
                        return one_name(
                            rest,
                            "/verify NAME: show both safety numbers, and mark NAME verified",
                        )
                        .map_or_else(|e| e, Self::Verify);
                    }
                    "/kick" | "/ban" => {
                        let ban = word == "/ban";
                        let usage = if ban {
                            "/ban NAME: disconnect NAME and refuse its key from now on (host)"
                        } else {
                            "/kick NAME: disconnect NAME (host)"
                        };
                        return one_name(rest, usage).map_or_else(|e| e, |name| Self::Remove { name, ban });
                    }
                    "/invite" => {
                        let usage = "/invite NAME FINGERPRINT: bind NAME to that key, so a closed room admits it (host)";
                        return match rest.split_once(' ') {
                            Some((name, fp)) => match crate::tls::Fingerprint::parse(fp.trim()) {
                                Some(fingerprint) => Self::Invite { name: name.to_owned(), fingerprint },
                                None => Self::Wrong(usage.to_owned()),
                            },
                            None => Self::Wrong(usage.to_owned()),
                        };
                    }
                    _ => {}
                }
                if let Some(action) = command.strip_prefix("/me ") {
                    return say(Kind::Action, action.trim(), None);
                }
                if let Some(rest) = command.strip_prefix("/msg ") {
                    return match rest.trim().split_once(' ') {
                        Some((name, text)) if !text.trim().is_empty() => {
                            say(Kind::Private, text.trim(), Some(name))
                        }
                        _ => Self::Wrong(MSG_USAGE.into()),
                    };
                }
                if let Some(text) = line.strip_prefix('/') {
                    if text.starts_with('/') {
                        return say(Kind::Text, text, None);
                    }
                    return Self::Wrong(format!("unknown command {command}: /help lists them"));
                }
                say(Kind::Text, line, None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(line: &str, by: Typist) -> Result<Option<Intent>, String> {
        Command::parse(line).intent(by)
    }

    #[test]
    fn one_table_turns_commands_into_intents_and_refuses_the_other_sides_commands() {
        for by in [Typist::Member, Typist::Host] {
            let say = Intent::Say { kind: Kind::Text, text: "hi".into(), to: None };
            assert_eq!(intent("hi", by), Ok(Some(say)));
            assert_eq!(intent("/rekey", by), Ok(Some(Intent::KeyUpdate { request_peer: true })));
            assert_eq!(intent("/quit", by), Ok(Some(Intent::Close)));
            assert_eq!(intent("/names", by), Ok(Some(Intent::Who)));
            assert_eq!(intent("/verify bob", by), Ok(Some(Intent::Verify { name: "bob".into() })));
            for local in ["", "  ", "/help", "/clear", "/nick x", "/tamper"] {
                assert_eq!(intent(local, by), Ok(None), "{local:?}");
            }
            assert!(intent("/frobnicate", by).is_err_and(|why| why.contains("unknown command")));
        }
        assert_eq!(intent("/tamper flip", Typist::Host), Err(TAMPER_IS_FOR_CLIENTS.into()));
        assert!(matches!(intent("/tamper flip", Typist::Member), Ok(Some(Intent::Tamper(_)))));
        assert_eq!(intent("/kick bob", Typist::Member), Err(FOR_THE_HOST.into()));
        assert_eq!(
            intent("/kick bob", Typist::Host),
            Ok(Some(Intent::Remove { name: "bob".into(), ban: false }))
        );
    }
}
