//! How events are told to people and programs: one wording for the TUI's
//! notices, the headless lines and the log file, and one JSON object per
//! event for `--json`.
//!
//! Every string a peer chose (names, chat text, reasons, certificate
//! subjects) goes through [`printable`] before it is part of a line, so
//! that no escape sequence reaches a terminal or a log raw. JSON carries
//! the text as it is: serde_json escapes every control character.

use serde_json::{Value, json};

use crate::chat::{
    AuthorCheck, ChatEvent, Kind, MemberInfo, Received, SigCheck, Stale, Standing, Verdict, printable,
};
use crate::net::{Closer, NetEvent};
use crate::tls::{self, Direction, Fingerprint, Revealed};

/// What a member is told on joining a room: the room is signed, not end
/// to end, so that nobody takes one for the other.
pub(crate) const RELAY_READS: &str =
    "this room's lines are signed, not end to end: the relay can read them; /msg is end to end (\u{1f512})";

/// What a member is told on joining an end-to-end room (`listen --e2e`).
pub(crate) const E2E_ROOM: &str =
    "\u{1f512} end to end room: the relay cannot read it; you read from your join on; no history before it";

/// The notices an event gives rise to, besides the message line itself:
/// joins, leaves, warnings, gaps. Each is one line, peer text escaped.
pub(crate) fn notices(event: &ChatEvent) -> Vec<String> {
    match event {
        ChatEvent::Welcome { name, e2e: true, .. } => {
            vec![format!("you are in the room as {}", printable(name)), E2E_ROOM.to_owned()]
        }
        ChatEvent::Welcome { name, history: 0, .. } => {
            vec![format!("you are in the room as {}", printable(name)), RELAY_READS.to_owned()]
        }
        ChatEvent::Welcome { name, history, .. } => vec![
            format!("you are in the room as {}; the last {history} messages follow", printable(name)),
            RELAY_READS.to_owned(),
        ],
        ChatEvent::Message(m) => {
            let name = printable(&m.from);
            let mut out = Vec::new();
            if m.missing_before > 0 {
                out.push(format!("{} message(s) from {name} missing before the next one", m.missing_before));
            }
            if m.chain_broken {
                out.push(format!("{name}'s next message does not follow the one before (broken chain)"));
            }
            if m.mislabeled {
                let said = if m.private { "public" } else { "private" };
                out.push(format!(
                    "the relay delivered {name}'s message #{} as {said}, which is not what was signed: judged as signed",
                    m.seq
                ));
            }
            if m.sig == SigCheck::Valid {
                match &m.author {
                    AuthorCheck::Changed { was } => out.push(format!(
                        "WARNING: KEY CHANGED: {name} signed with the key {} but had {} before: someone else may be using that name (/verify {name})",
                        m.key.short(),
                        was.short()
                    )),
                    AuthorCheck::OtherName { known_as } => out.push(format!(
                        "WARNING: a message delivered as {name}'s was signed by the key you know as {}",
                        printable(known_as)
                    )),
                    AuthorCheck::LookAlike { of } => out.push(format!(
                        "WARNING: {name} is not {} (another key, a name that looks the same)",
                        printable(of)
                    )),
                    AuthorCheck::BadName { why } => out.push(format!(
                        "WARNING: the relay named the author {name}, a name no room may give: {}",
                        printable(why)
                    )),
                    AuthorCheck::Known | AuthorCheck::Verified | AuthorCheck::FirstSeen => {}
                }
                if let Some(stale) = m.stale {
                    out.push(stale_notice(&name, m.seq, stale));
                }
                if m.late {
                    out.push(format!("{name}'s message #{} arrived after a later one (out of order)", m.seq));
                }
            }
            out
        }
        ChatEvent::Presence { joined: true, member, .. } => {
            let what = match member.standing {
                Standing::Guest => "an unverified guest".to_owned(),
                _ => format!("key {}", Fingerprint::of_ed25519(&member.key).short()),
            };
            vec![format!("{} joined ({what})", printable(&member.name))]
        }
        ChatEvent::Presence { joined: false, member, reason } if reason.is_empty() => {
            vec![format!("{} left", printable(&member.name))]
        }
        ChatEvent::Presence { member, reason, .. } => {
            vec![format!("{} left: {}", printable(&member.name), printable(reason))]
        }
        ChatEvent::KeyChanged { name, was, now } => vec![format!(
            "WARNING: {} now has the key {} but had {} before: someone else may be using that name",
            printable(name),
            now.short(),
            was.short()
        )],
        ChatEvent::Roster { total, members } => {
            let listed = if members.len() < *total as usize {
                format!(" (the {} most recent)", members.len())
            } else {
                String::new()
            };
            let mut out = vec![format!("{total} in the room{listed}:")];
            out.extend(members.iter().map(describe_member));
            out
        }
        ChatEvent::Refused { text, .. } => vec![printable(text).into_owned()],
        ChatEvent::Replay { from, seq } => {
            vec![format!(
                "{}'s message #{seq} was delivered again (a replay): not shown twice",
                printable(from)
            )]
        }
        ChatEvent::RelayGap { missing } => {
            vec![format!("the relay skipped {missing} room message(s): they were not delivered to you")]
        }
        ChatEvent::RelayDisorder { room_seq, last, repeated: true } => {
            vec![format!("the relay sent room number {room_seq} again (after {last}): not shown twice")]
        }
        ChatEvent::RelayDisorder { room_seq, last, repeated: false } => {
            vec![format!(
                "the relay's numbering went backwards ({room_seq} after {last}): checked from there on"
            )]
        }
        ChatEvent::Learned { .. } => Vec::new(),
        ChatEvent::Verified { name, mine, theirs } => vec![
            format!("your safety number:  {}", mine.short()),
            format!("{}'s safety number: {}", printable(name), theirs.short()),
            format!(
                "marked {} verified: compare both numbers with them in person or on a call; if they differ, run `tlschat trust forget ROOM {}`",
                printable(name),
                printable(name)
            ),
        ],
        ChatEvent::Ignoring { name } => {
            vec![format!(
                "ignoring {} for this session: their lines are still checked, not shown",
                printable(name)
            )]
        }
        ChatEvent::ContactsNotKept { why } => {
            vec![format!("the keys learned in this session are not kept: {}", printable(why))]
        }
        ChatEvent::Malformed { from, why } => {
            vec![format!("a message said to be from {} is malformed: {}", printable(from), printable(why))]
        }
        ChatEvent::Resumed { after, upto, complete: true, caught_up } => vec![format!(
            "caught up: {caught_up} message(s) said since you left (room #{after} to #{upto}), each shown once"
        )],
        ChatEvent::Resumed { after, caught_up, .. } => vec![format!(
            "caught up on {caught_up} message(s), but MISSED some said after room #{after}: \
             they are older than what the relay keeps"
        )],
        ChatEvent::OrderRestarted { seen, now } => vec![format!(
            "the room's numbering started again (at #{now}, you had seen #{seen}): the relay lost its history, \
             and what was said before it restarted is not there"
        )],
        ChatEvent::E2eWaiting { to, queued, .. } => vec![format!(
            "no end-to-end group with {} yet: asking the relay for their key package; {queued} line(s) wait for it, nothing goes in clear",
            printable(to)
        )],
        ChatEvent::E2eReady { name, key, epoch, made: true } => vec![format!(
            "\u{1f512} end to end with {} (key {}): you made the group from their key package (MLS epoch {epoch}); the relay cannot read your /msg",
            printable(name),
            key.short()
        )],
        ChatEvent::E2eReady { name, key, epoch, made: false } => vec![format!(
            "\u{1f512} end to end with {} (key {}): their Welcome added you to the group (MLS epoch {epoch}); the relay cannot read your /msg",
            printable(name),
            key.short()
        )],
        ChatEvent::E2eRefused { from, why } if from.is_empty() => {
            vec![format!("end to end: {}", printable(why))]
        }
        ChatEvent::E2eRefused { from, why } => vec![format!(
            "WARNING: end-to-end input said to be from {} was refused, not shown: {}",
            printable(from),
            printable(why)
        )],
        ChatEvent::E2eDowngraded => vec![
            "WARNING: DOWNGRADE: this room was end to end, and the relay now says it is not: \
             your lines are not sent (what comes is still shown, marked as not end to end)"
                .to_owned(),
        ],
        ChatEvent::E2eGroup { epoch, members: 0, by, .. } => vec![format!(
            "\u{1f512} {} removed you from the room's end-to-end group (epoch {epoch}): you read nothing more",
            printable(by)
        )],
        ChatEvent::E2eGroup { epoch, members, by, adds, removes } => vec![format!(
            "\u{1f512} the room's end-to-end group is at epoch {epoch} with {members} member(s) ({} added {adds}, removed {removes})",
            printable(by)
        )],
        ChatEvent::E2eHeld { queued, gone, .. } => vec![format!(
            "{} left and is still in the end-to-end group: {queued} line(s) wait until the removal, so that they never read them",
            gone.iter().map(|g| printable(g).into_owned()).collect::<Vec<_>>().join(", ")
        )],
        ChatEvent::Sent { .. }
        | ChatEvent::Delivered { .. }
        | ChatEvent::Guest { .. }
        | ChatEvent::E2eStep { .. } => Vec::new(),
    }
}

/// Why a validly signed message is not shown as live.
fn stale_notice(name: &str, seq: u64, stale: Stale) -> String {
    match stale {
        Stale::EarlierSession => format!(
            "{name}'s message #{seq} was already read in an earlier session: a REPLAY, delivered again as live"
        ),
        Stale::BeforeJoin => {
            format!(
                "{name}'s message #{seq} was signed before you joined, yet delivered as live: a possible replay"
            )
        }
        Stale::Skewed => {
            format!("{name}'s message #{seq} was signed far from your clock (more than 5 minutes)")
        }
    }
}

/// One member as `/who` lists it: name, standing, short fingerprint, idle time.
pub(crate) fn describe_member(m: &MemberInfo) -> String {
    let name = printable(&m.name);
    let idle = match m.idle_secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    };
    match m.standing {
        Standing::Guest => format!("  {name} (unverified guest), idle {idle}"),
        standing => {
            let fp = Fingerprint::of_ed25519(&m.key);
            let host = if standing == Standing::Host { ", the host" } else { "" };
            // The relay's word for the key: no ✓, which means a
            // signature this client checked itself.
            format!("  {name}, key {}{host}, idle {idle}", fp.short())
        }
    }
}

/// Why a message is marked, if it is: shown beside its text.
pub(crate) fn warning(sig: SigCheck) -> Option<&'static str> {
    match sig {
        SigCheck::Valid => None,
        SigCheck::Invalid => Some("BAD SIGNATURE: altered after it was signed"),
        SigCheck::OtherRoom => Some("signed for ANOTHER ROOM"),
        SigCheck::NotForMe => Some("a private message for SOMEONE ELSE"),
    }
}

/// A message as one headless line: `[alice ✓] text`, `* alice ✓ waves`,
/// `[alice ✓ → you, private] text`, `[alice ✗ INVALID] text [why]`.
pub(crate) fn message_line(m: &Received) -> String {
    let name = printable(&m.from);
    let mark = match m.verdict() {
        Verdict::KeyChanged => " \u{26a0} KEY CHANGED",
        Verdict::Stale => " \u{26a0} REPLAY",
        Verdict::Verified => " \u{2713}",
        Verdict::Invalid => " \u{2717} INVALID",
    };
    let history = if m.history { "(history) " } else { "" };
    let private = match (m.private, m.e2e) {
        (true, true) => " \u{2192} you, \u{1f512} end to end",
        (true, false) => " \u{2192} you, private",
        (false, true) => " \u{1f512}",
        _ => "",
    };
    let text = printable(&m.text);
    let why = warning(m.sig).map(|w| format!("  [{w}]")).unwrap_or_default();
    match m.kind {
        Kind::Action => format!("{history}* {name}{mark}{private} {text}{why}"),
        _ => format!("{history}[{name}{mark}{private}] {text}{why}"),
    }
}

/// The headless lines of a chat event, in order.
pub(crate) fn chat_lines(event: &ChatEvent) -> Vec<String> {
    let mut out: Vec<String> = notices(event).into_iter().map(|n| format!("[room] {n}")).collect();
    match event {
        ChatEvent::Message(m) => out.push(message_line(m)),
        ChatEvent::Guest { history, name, text, .. } => {
            let history = if *history { "(history) " } else { "" };
            out.push(format!("{history}[{} (unverified)] {}", printable(name), printable(text)));
        }
        _ => {}
    }
    out
}

/// What a KeyUpdate did, in one line.
pub(crate) fn key_update_line(direction: Direction, update_requested: bool, generation: u64) -> String {
    let (whose, verb) = match direction {
        Direction::Sent => ("our sending", "sent"),
        Direction::Received => ("the peer's", "received"),
    };
    let asked = if update_requested { ", update requested" } else { "" };
    format!("KeyUpdate {verb}{asked}: {whose} keys are now generation {generation}")
}

/// Who reads an event's words, and where: the one choice [`words`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    /// Headless `connect` and `demo`: lines on stdout. A client's failure
    /// has none: it is connect's result, printed once by the caller.
    Client,
    /// Headless `listen`: lines on stdout, each naming its connection.
    Room,
    /// The log file behind a client's full-screen interface: the
    /// [`Client`](Self::Client) lines without revealed values (`--reveal`
    /// puts them on the screen, never in a file) and without chat text (a
    /// message is logged by author, check and size only).
    ClientLog,
    /// The log file behind a room's full-screen interface, as
    /// [`ClientLog`](Self::ClientLog) is to [`Room`](Self::Room).
    RoomLog,
    /// The full-screen interface's notices (chat events aside: their
    /// notices are [`notices`], beside the message lines the TUI draws).
    Screen,
}

impl Audience {
    /// Whether it reads about a room's connections (many peers).
    fn room(self) -> bool {
        matches!(self, Self::Room | Self::RoomLog)
    }

    /// Whether it is a log file.
    fn log(self) -> bool {
        matches!(self, Self::ClientLog | Self::RoomLog)
    }
}

/// How an event's words are to be taken: news, good news, or a failure
/// (the TUI colours its notices by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    /// Neutral news.
    Info,
    /// Good news (a handshake complete, keys updated).
    Success,
    /// Something failed or was refused.
    Error,
}

/// One line said about an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Told {
    /// How it is to be taken.
    pub(crate) tone: Tone,
    /// The line, peer text escaped.
    pub(crate) text: String,
}

/// An event's lines for `audience`, text only.
pub(crate) fn lines(event: &NetEvent, audience: Audience) -> Vec<String> {
    words(event, audience).into_iter().map(|said| said.text).collect()
}

/// The one path from an event to words: what `audience` is told of
/// `event`, line by line, each with its tone.
pub(crate) fn words(event: &NetEvent, audience: Audience) -> Vec<Told> {
    use Tone::{Error, Info, Success};
    let say = |tone, text: String| vec![Told { tone, text }];
    let info = |lines: Vec<String>| lines.into_iter().map(|text| Told { tone: Info, text }).collect();
    let screen = audience == Audience::Screen;
    let room = audience.room();
    // A client has one connection, a room many: a room's lines name the peer.
    let tls = |peer: &std::net::SocketAddr| if room { format!("[tls {peer}]") } else { "[tls]".to_owned() };
    match event {
        NetEvent::Step { .. } | NetEvent::Text { .. } | NetEvent::Revealed { .. } | NetEvent::Chat { .. }
            if screen =>
        {
            Vec::new()
        }
        NetEvent::Step { peer, step } => say(Info, format!("{} {}", tls(peer), printable(&step.to_string()))),
        NetEvent::Connected { peer, summary } if screen => {
            let who = summary
                .peer
                .as_ref()
                .map_or_else(|| peer.to_string(), |c| printable(&c.subject).into_owned());
            let fp = summary
                .peer
                .as_ref()
                .map(|c| format!(", safety number {}", c.fingerprint.short()))
                .unwrap_or_default();
            say(Success, format!("handshake complete with {who}: {}{fp}", summary.suite))
        }
        NetEvent::Connected { peer, summary } if room => {
            let alpn = summary
                .alpn
                .as_deref()
                .map(|p| format!(", alpn {}", printable(&String::from_utf8_lossy(p))))
                .unwrap_or_default();
            let retried = if summary.retried { ", after HelloRetryRequest" } else { "" };
            let who = match &summary.peer {
                Some(cert) => {
                    format!(", client {} (key {})", printable(&cert.subject), cert.fingerprint.short())
                }
                None => String::new(),
            };
            say(
                Success,
                format!(
                    "[tls {peer}] connected: {}, {}, {}{alpn}{retried}{who}",
                    summary.suite, summary.group, summary.signature_scheme
                ),
            )
        }
        NetEvent::Connected { summary, .. } => {
            let peer = match &summary.peer {
                Some(cert) => {
                    format!("peer {} (safety number {})", printable(&cert.subject), cert.fingerprint.short())
                }
                None => "no peer certificate".to_owned(),
            };
            say(
                Success,
                format!(
                    "[tls] connected: {}, {}, {}, {peer}",
                    summary.suite, summary.group, summary.signature_scheme
                ),
            )
        }
        NetEvent::KeyUpdated { peer, direction, update_requested, generation } if screen => {
            let what = match direction {
                Direction::Sent => format!("KeyUpdate sent to {peer}: our sending keys"),
                Direction::Received => format!("KeyUpdate from {peer}: its sending keys"),
            };
            let asked = if *update_requested { " (update requested)" } else { "" };
            say(Success, format!("{what} are now generation {generation}{asked}"))
        }
        NetEvent::KeyUpdated { peer, direction, update_requested, generation } => say(
            Success,
            format!("{} {}", tls(peer), key_update_line(*direction, *update_requested, *generation)),
        ),
        NetEvent::AlertSent { alert, .. } if screen && *alert == tls::AlertDescription::CLOSE_NOTIFY => {
            Vec::new()
        }
        NetEvent::AlertSent { peer, alert } if screen => say(Error, format!("alert {alert} sent to {peer}")),
        NetEvent::AlertSent { peer, alert } => say(Error, format!("{} sent alert {alert}", tls(peer))),
        NetEvent::Text { peer, line } if audience.log() => {
            say(Info, format!("[{peer}] (chat line, {} bytes)", line.len()))
        }
        NetEvent::Text { peer, line } if room => say(Info, format!("[{peer}] {}", printable(line))),
        NetEvent::Text { line, .. } => say(Info, printable(line).into_owned()),
        NetEvent::Chat { event, .. } if audience.log() => match log_chat_line(event) {
            Some(line) => say(Info, line),
            None => info(chat_lines(event)),
        },
        NetEvent::Chat { event, .. } => info(chat_lines(event)),
        NetEvent::RoomNote { note } if screen => say(Info, printable(note).into_owned()),
        NetEvent::RoomNote { note } if room => say(Info, format!("[room] {}", printable(note))),
        NetEvent::CaptureStopped { note } if screen => say(Error, note.clone()),
        NetEvent::CaptureStopped { note } => say(Error, format!("[pcap] {note}")),
        NetEvent::StatusPage { peer } if screen => {
            say(Info, format!("{peer} fetched the room's status page over HTTP"))
        }
        NetEvent::StatusPage { peer } if room => say(Info, format!("[{peer}] sent the HTTP status page")),
        NetEvent::Closed { peer, by } if screen => say(
            Info,
            match by {
                Closer::Peer => format!("{peer} left (close_notify)"),
                Closer::Us => format!("closed the connection to {peer} (close_notify)"),
            },
        ),
        NetEvent::Closed { peer, by: Closer::Peer } if room => {
            say(Info, format!("[{peer}] left (close_notify)"))
        }
        NetEvent::Closed { peer, by: Closer::Us } if room => {
            say(Info, format!("[{peer}] closed (close_notify)"))
        }
        NetEvent::Closed { by: Closer::Peer, .. } => {
            say(Info, "[tls] the server closed the connection (close_notify)".to_owned())
        }
        NetEvent::Closed { by: Closer::Us, .. } => say(Info, "[tls] closed (close_notify)".to_owned()),
        NetEvent::Failed { peer, during_handshake, error } if screen || room => {
            let reason = printable(&error.to_string()).into_owned();
            let text = match (screen, during_handshake) {
                (true, true) => format!("handshake with {peer} failed: {reason}"),
                (true, false) => format!("connection to {peer} failed: {reason}"),
                (false, true) => format!("[{peer}] handshake failed: {reason}"),
                (false, false) => format!("[{peer}] connection failed: {reason}"),
            };
            say(Error, text)
        }
        NetEvent::AcceptFailed { error } if screen => {
            say(Error, format!("accepting a connection failed: {error}"))
        }
        NetEvent::AcceptFailed { error } if room => say(Error, format!("accept failed: {error}")),
        NetEvent::Refused { refusal, .. } if screen => say(Error, refusal.to_string()),
        NetEvent::Refused { refusal, .. } if room => say(Error, format!("[room] {refusal}")),
        NetEvent::Held { .. } if screen => {
            say(Info, "the next flight is ready and held: Space sends it".to_owned())
        }
        NetEvent::Held { peer } if room => say(Info, format!("[tls {peer}] a flight is held")),
        NetEvent::Held { .. } => say(Info, "[tls] the next flight is held until Space (--step)".to_owned()),
        NetEvent::ServerKey { cert, .. } if screen => say(
            Info,
            format!(
                "the room proved its key {}: your certificate, which says who you are, is not sent until you trust it",
                cert.fingerprint.short()
            ),
        ),
        NetEvent::ServerKey { peer, cert } if room => {
            say(Info, format!("[tls {peer}] the server proved its key {}", cert.fingerprint.short()))
        }
        NetEvent::ServerKey { cert, .. } => say(
            Info,
            format!(
                "[tls] the server proved its key (safety number {}); our certificate, which says who you are, waits until it is trusted",
                cert.fingerprint.short()
            ),
        ),
        NetEvent::Reconnecting { .. } => {
            connection_lines(event).into_iter().map(|text| Told { tone: Error, text }).collect()
        }
        NetEvent::Back { .. } => {
            connection_lines(event).into_iter().map(|text| Told { tone: Success, text }).collect()
        }
        NetEvent::Lab(report) => {
            use crate::teach::lab::Report;
            let tone = match report {
                Report::Ended { .. } | Report::Marked { .. } if report.caught() => Success,
                Report::Ended { .. } | Report::Marked { .. } => Error,
                _ => Info,
            };
            lab_lines(report).into_iter().map(|text| Told { tone, text }).collect()
        }
        NetEvent::Revealed { .. } if audience.log() => Vec::new(),
        NetEvent::Revealed { peer, revealed } => match revealed_line(revealed) {
            Some(line) => say(Info, format!("{} {line}", tls(peer))),
            None => Vec::new(),
        },
        // What a client is not told line by line: a failure is connect's
        // result; the room's notes, refusals and status pages are a room's.
        NetEvent::Failed { .. }
        | NetEvent::AcceptFailed { .. }
        | NetEvent::Refused { .. }
        | NetEvent::RoomNote { .. }
        | NetEvent::StatusPage { .. } => Vec::new(),
    }
}

/// A chat event's one line in a log file, where it carries text: the
/// author, the check and the size, never the text itself.
fn log_chat_line(event: &ChatEvent) -> Option<String> {
    Some(match event {
        ChatEvent::Message(m) => format!(
            "[room] (message #{} from {}, signature {}, {} bytes)",
            m.room_seq,
            printable(&m.from),
            m.sig.as_str(),
            m.text.len()
        ),
        ChatEvent::Guest { name, text, .. } => {
            format!("[room] (line from {} (unverified), {} bytes)", printable(name), text.len())
        }
        ChatEvent::Sent { seq, text, .. } => format!("[room] (sent message #{seq}, {} bytes)", text.len()),
        _ => return None,
    })
}

/// A client's reconnecting, in one line each.
pub(crate) fn connection_lines(event: &NetEvent) -> Vec<String> {
    match event {
        NetEvent::Reconnecting { attempt, delay, to, error } => vec![format!(
            "[net] reconnecting to {} in {:.1} s (attempt {attempt}): {}",
            printable(to),
            delay.as_secs_f64(),
            printable(error)
        )],
        NetEvent::Back { to, attempts, .. } => {
            vec![format!("[net] back in the room through {} after {attempts} attempt(s)", printable(to))]
        }
        _ => Vec::new(),
    }
}

/// The tamper lab's lines, each marked `[lab]`.
fn lab_lines(report: &crate::teach::lab::Report) -> Vec<String> {
    report.lines().iter().map(|line| format!("[lab] {}", printable(line))).collect()
}

fn hex(bytes: &[u8]) -> String {
    tls::crypto::hex(bytes)
}

fn member_json(m: &MemberInfo) -> Value {
    let key = match m.standing {
        Standing::Guest => Value::Null,
        _ => Value::String(hex(&Fingerprint::of_ed25519(&m.key).0)),
    };
    json!({"name": m.name, "standing": m.standing.as_str(), "key": key, "idle_secs": m.idle_secs})
}

/// An event as one JSON object (`--json`); `None` for an event not worth
/// a line. The schema is in the README.
pub(crate) fn json(event: &NetEvent) -> Option<Value> {
    Some(match event {
        NetEvent::Step { peer, step } => {
            json!({"type": "step", "peer": peer.to_string(), "step": step.to_string()})
        }
        NetEvent::Connected { peer, summary } => json!({
            "type": "connected",
            "peer": peer.to_string(),
            "suite": summary.suite.to_string(),
            "group": summary.group.to_string(),
            "alpn": summary.alpn.as_deref().map(|a| String::from_utf8_lossy(a).into_owned()),
            "peer_certificate": summary.peer.as_ref().map(|c| json!({"subject": c.subject, "key": hex(&c.fingerprint.0)})),
        }),
        NetEvent::KeyUpdated { peer, direction, update_requested, generation } => json!({
            "type": "key_update",
            "peer": peer.to_string(),
            "direction": match direction { Direction::Sent => "sent", Direction::Received => "received" },
            "update_requested": update_requested,
            "generation": generation,
        }),
        NetEvent::AlertSent { peer, alert } => {
            json!({"type": "alert_sent", "peer": peer.to_string(), "alert": alert.to_string()})
        }
        NetEvent::Text { peer, line } => {
            json!({"type": "line", "peer": peer.to_string(), "text": line, "sig": "unsigned"})
        }
        NetEvent::Chat { event, .. } => chat_json(event),
        NetEvent::RoomNote { note } => json!({"type": "note", "text": note}),
        NetEvent::CaptureStopped { note } => json!({"type": "capture_stopped", "text": note}),
        NetEvent::StatusPage { peer } => json!({"type": "status_page", "peer": peer.to_string()}),
        NetEvent::Held { peer } => json!({"type": "held", "peer": peer.to_string()}),
        NetEvent::ServerKey { peer, cert } => json!({
            "type": "server_key",
            "peer": peer.to_string(),
            "subject": cert.subject,
            "key": hex(&cert.fingerprint.0),
        }),
        NetEvent::Closed { peer, by } => json!({
            "type": "closed",
            "peer": peer.to_string(),
            "by": match by { Closer::Peer => "peer", Closer::Us => "us" },
        }),
        NetEvent::Failed { peer, during_handshake, error } => json!({
            "type": "error",
            "peer": peer.to_string(),
            "during_handshake": during_handshake,
            "error": error.to_string(),
        }),
        NetEvent::AcceptFailed { error } => {
            json!({"type": "error", "error": format!("accept failed: {error}")})
        }
        NetEvent::Refused { peer, refusal } => {
            json!({"type": "refused_connection", "peer": peer.to_string(), "reason": refusal.to_string()})
        }
        NetEvent::Reconnecting { attempt, delay, to, error } => json!({
            "type": "reconnecting",
            "attempt": attempt,
            "delay_ms": u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "to": to,
            "error": error,
        }),
        NetEvent::Back { peer, to, attempts } => {
            json!({"type": "back", "peer": peer.to_string(), "to": to, "attempts": attempts})
        }
        NetEvent::Lab(report) => report.json(),
        NetEvent::Revealed { peer, revealed } => {
            let mut value = revealed_json(revealed)?;
            value["peer"] = Value::String(peer.to_string());
            value
        }
    })
}

/// A revealed value as a headless line (`--reveal`): the secrets, keys,
/// IVs and Finished keys the engine used, in hex; records are left to the
/// key schedule view.
pub(crate) fn revealed_line(revealed: &Revealed) -> Option<String> {
    let over = |hash: &Option<[u8; 32]>| hash.map(|h| format!(" (over transcript hash {})", hex(&h)));
    Some(match revealed {
        Revealed::KeyExchange { private_key, public_key, peer_public_key } => format!(
            "revealed x25519 private key {} (public {}), peer public key {}",
            hex(private_key.expose()),
            hex(public_key),
            hex(peer_public_key)
        ),
        Revealed::Secret { kind, value, transcript_hash } => {
            format!("revealed {kind} = {}{}", hex(value.expose()), over(transcript_hash).unwrap_or_default())
        }
        Revealed::Finished { direction, base, finished_key, transcript_hash, verify_data } => format!(
            "revealed finished_key of {base} = {} ({} Finished: verify_data {} over transcript hash {})",
            hex(finished_key.expose()),
            match direction {
                Direction::Sent => "our",
                Direction::Received => "the peer's",
            },
            hex(verify_data),
            hex(transcript_hash)
        ),
        Revealed::TrafficKeys { secret, key, iv, .. } => {
            format!("revealed key {} iv {} of {secret}", hex(key.expose()), hex(iv.expose()))
        }
        Revealed::Record(_) => return None,
    })
}

/// A revealed value as a JSON object of type `revealed`, as
/// [`revealed_line`] (records are left out).
fn revealed_json(revealed: &Revealed) -> Option<Value> {
    Some(match revealed {
        Revealed::KeyExchange { private_key, public_key, peer_public_key } => json!({
            "type": "revealed", "what": "x25519", "private_key": hex(private_key.expose()),
            "public_key": hex(public_key), "peer_public_key": hex(peer_public_key),
        }),
        Revealed::Secret { kind, value, transcript_hash } => json!({
            "type": "revealed", "what": kind.to_string(), "value": hex(value.expose()),
            "transcript_hash": transcript_hash.map(|h| hex(&h)),
        }),
        Revealed::Finished { direction, base, finished_key, transcript_hash, verify_data } => json!({
            "type": "revealed", "what": "finished_key", "of": base.to_string(),
            "direction": match direction { Direction::Sent => "sent", Direction::Received => "received" },
            "value": hex(finished_key.expose()), "transcript_hash": hex(transcript_hash),
            "verify_data": hex(verify_data),
        }),
        Revealed::TrafficKeys { secret, key, iv, .. } => json!({
            "type": "revealed", "what": "traffic_keys", "of": secret.to_string(),
            "key": hex(key.expose()), "iv": hex(iv.expose()),
        }),
        Revealed::Record(_) => return None,
    })
}

/// A chat event as one JSON object.
pub(crate) fn chat_json(event: &ChatEvent) -> Value {
    match event {
        ChatEvent::Welcome { name, history, e2e } => {
            json!({"type": "welcome", "name": name, "history": history, "e2e": e2e})
        }
        ChatEvent::Sent { seq, kind, to, text, acked, e2e } => json!({
            "type": "sent", "seq": seq, "kind": kind.as_str(), "to": to, "text": text, "acked": acked, "e2e": e2e,
        }),
        ChatEvent::Delivered { seq, private, room_seq } => {
            json!({"type": "delivered", "seq": seq, "private": private, "room_seq": room_seq})
        }
        ChatEvent::Message(m) => json!({
            "type": "message",
            "room_seq": m.room_seq,
            "from": m.from,
            "key": hex(&m.key.0),
            "text": m.text,
            "kind": m.kind.as_str(),
            "sig": m.sig.as_str(),
            "author": m.author.as_str(),
            "seq": m.seq,
            "time_ms": m.time_ms,
            "history": m.history,
            "private": m.private,
            "missing_before": m.missing_before,
            "chain_broken": m.chain_broken,
            "late": m.late,
            "stale": m.stale.map(Stale::as_str),
            "mislabeled": m.mislabeled,
            "e2e": m.e2e,
        }),
        ChatEvent::Guest { room_seq, history, name, text } => json!({
            "type": "message",
            "room_seq": room_seq,
            "from": name,
            "key": Value::Null,
            "text": text,
            "kind": "text",
            "sig": "unsigned",
            "history": history,
            "e2e": false,
        }),
        ChatEvent::Presence { joined, member, reason } => json!({
            "type": if *joined { "join" } else { "leave" },
            "member": member_json(member),
            "reason": reason,
        }),
        ChatEvent::KeyChanged { name, was, now } => {
            json!({"type": "key_changed", "name": name, "was": hex(&was.0), "now": hex(&now.0)})
        }
        ChatEvent::Roster { total, members } => json!({
            "type": "members",
            "total": total,
            "members": members.iter().map(member_json).collect::<Vec<_>>(),
        }),
        ChatEvent::Refused { code, text } => {
            json!({"type": "refused", "code": format!("{code:?}"), "text": text})
        }
        ChatEvent::Replay { from, seq } => json!({"type": "replay", "from": from, "seq": seq}),
        ChatEvent::RelayGap { missing } => json!({"type": "relay_gap", "missing": missing}),
        ChatEvent::RelayDisorder { room_seq, last, repeated } => {
            json!({"type": "relay_disorder", "room_seq": room_seq, "last": last, "repeated": repeated})
        }
        ChatEvent::Learned { name, key } => json!({"type": "learned", "name": name, "key": hex(&key.0)}),
        ChatEvent::Verified { name, mine, theirs } => {
            json!({"type": "verified", "name": name, "mine": hex(&mine.0), "theirs": hex(&theirs.0)})
        }
        ChatEvent::Ignoring { name } => json!({"type": "ignoring", "name": name}),
        ChatEvent::ContactsNotKept { why } => json!({"type": "contacts_not_kept", "why": why}),
        ChatEvent::Malformed { from, why } => json!({"type": "malformed", "from": from, "why": why}),
        ChatEvent::Resumed { after, upto, complete, caught_up } => json!({
            "type": "resumed", "after": after, "upto": upto, "complete": complete, "caught_up": caught_up,
        }),
        ChatEvent::OrderRestarted { seen, now } => {
            json!({"type": "order_restarted", "seen": seen, "now": now})
        }
        ChatEvent::E2eWaiting { to, text, queued } => {
            json!({"type": "e2e_waiting", "to": to, "text": text, "queued": queued})
        }
        ChatEvent::E2eReady { name, key, epoch, made } => {
            json!({"type": "e2e_ready", "name": name, "key": hex(&key.0), "epoch": epoch, "made": made})
        }
        ChatEvent::E2eRefused { from, why } => json!({"type": "e2e_refused", "from": from, "why": why}),
        // The step and the epoch; never the epoch values --reveal shows.
        ChatEvent::E2eStep { peer, group, step, view } => json!({
            "type": "e2e_step",
            "peer": peer,
            "step": step.name(),
            "group": group.as_deref().map(hex),
            "epoch": view.as_ref().map(|v| v.epoch),
        }),
        ChatEvent::E2eDowngraded => json!({"type": "e2e_downgraded"}),
        ChatEvent::E2eGroup { epoch, members, by, adds, removes } => json!({
            "type": "e2e_group", "epoch": epoch, "members": members, "by": by, "adds": adds, "removes": removes,
        }),
        ChatEvent::E2eHeld { text, queued, gone } => {
            json!({"type": "e2e_held", "text": text, "queued": queued, "gone": gone})
        }
    }
}
