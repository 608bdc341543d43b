//! The side panel's room views: the member list (F3) and one signed
//! message opened from the chat pane (Tab to the messages, Enter), with its
//! bytes, each field marked, the author's key and what the checks found.
//! The teaching thread goes on from the handshake into the message layer:
//! the same hex dump, now of what the author signed.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget, Wrap};

use super::Theme;
use super::handshake::{Mark, grouped_hex, hex_dump, legend};
use crate::chat::message::layout;
use crate::chat::{AuthorCheck, Received, Standing, Verdict, printable};
use crate::present::report;
use crate::tls::Fingerprint;
use crate::tui::app::{App, Mode};

/// The members of the room, as this member last heard.
pub(crate) struct MembersPanel<'a> {
    app: &'a App,
}

impl<'a> MembersPanel<'a> {
    /// The list for `app`.
    pub(crate) fn new(app: &'a App) -> Self {
        Self { app }
    }
}

impl Widget for MembersPanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let theme = Theme::of(self.app);
        if self.app.is_room() {
            return ConnsList { app: self.app }.render(area, buf);
        }
        let members = &self.app.members;
        let block = Block::bordered().border_style(theme.dim()).title(Span::styled(
            format!(" Members {}, as the relay lists them · F3 ", members.len()),
            theme.heading(),
        ));
        let inner = block.inner(area);
        block.render(area, buf);
        let mut lines = Vec::new();
        if members.is_empty() {
            lines.push(Line::styled("nobody yet: /who asks the room", theme.dim()));
        }
        for m in members {
            let name = printable(&m.name).into_owned();
            // The relay's word: no ✓, which means a signature this
            // client checked itself.
            let style = match m.standing {
                Standing::Guest => theme.dim(),
                _ => theme.name(&m.name),
            };
            let host = if m.standing == Standing::Host { " (host)" } else { "" };
            lines.push(Line::from(vec![Span::styled(name, style), Span::styled(host, theme.dim())]));
            let detail = match m.standing {
                Standing::Guest => "  guest: no key".to_owned(),
                _ => format!("  key {}", Fingerprint::of_ed25519(&m.key).short()),
            };
            lines.push(Line::styled(detail, theme.dim()));
        }
        Paragraph::new(lines).wrap(Wrap { trim: false }).render(inner, buf);
    }
}

/// A room's connections, for the host to pick whose handshake the panel
/// follows (Tab to the panel, Up/Down, Enter).
struct ConnsList<'a> {
    app: &'a App,
}

impl Widget for ConnsList<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let theme = Theme::of(self.app);
        let app = self.app;
        let focused = app.focus == crate::tui::app::Focus::Panel;
        let title = format!(" Members {} · Enter follows one ", app.members.len().saturating_sub(1));
        let block = Block::bordered()
            .border_style(if focused { theme.fg(Color::Cyan) } else { theme.dim() })
            .title(Span::styled(title, theme.heading()));
        let inner = block.inner(area);
        block.render(area, buf);
        let Mode::Room { conns, pinned, row: picked, .. } = &app.mode else { return };
        let row = |i: usize, text: String, style| {
            let cursor = if focused && *picked == i { "\u{25b6} " } else { "  " };
            Line::from(vec![Span::raw(cursor), Span::styled(text, style)])
        };
        let newest = if pinned.is_none() { "(followed) " } else { "" };
        let mut lines = vec![row(0, format!("{newest}the newest handshake"), theme.dim())];
        for (i, c) in conns.iter().enumerate() {
            let followed = if *pinned == Some(c.peer) { "(followed) " } else { "" };
            let ended = if c.open { "" } else { " (left)" };
            let style = if c.label.ends_with('\u{2713}') { theme.name(&c.label) } else { theme.dim() };
            lines.push(row(i + 1, format!("{followed}{} {}{ended}", printable(&c.label), c.peer), style));
        }
        Paragraph::new(lines).wrap(Wrap { trim: false }).render(inner, buf);
    }
}

/// One signed message, opened.
pub(crate) struct MessagePanel<'a> {
    app: &'a App,
    message: &'a Received,
}

impl<'a> MessagePanel<'a> {
    /// The view of `message` in `app`.
    pub(crate) fn new(app: &'a App, message: &'a Received) -> Self {
        Self { app, message }
    }
}

impl Widget for MessagePanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let theme = Theme::of(self.app);
        let m = self.message;
        let title = format!(" Message #{} from {} · Esc ", m.seq, printable(&m.from));
        let block =
            Block::bordered().border_style(theme.fg(Color::Cyan)).title(Span::styled(title, theme.heading()));
        let inner = block.inner(area);
        block.render(area, buf);
        let width = usize::from(inner.width);
        let (verdict, style) = match m.verdict() {
            Verdict::KeyChanged => ("signature valid, but not the key you know under this name", theme.bad()),
            Verdict::Stale => ("signature valid, but signed long before it arrived: a replay?", theme.bad()),
            Verdict::Verified => ("signature valid", theme.ok()),
            Verdict::Invalid => (report::warning(m.sig).unwrap_or("invalid"), theme.bad()),
        };
        let key = |k: &str, v: String| {
            Line::from(vec![Span::styled(format!("{k:<10}"), theme.fg(Color::Cyan)), Span::raw(v)])
        };
        let mut lines = vec![
            Line::styled(verdict, style),
            Line::styled(
                "Ed25519 over every byte before the signature, checked over the bytes received",
                theme.dim(),
            ),
            key(
                "author",
                format!(
                    "{} ({})",
                    printable(&m.from),
                    match &m.author {
                        AuthorCheck::Known => "key you saw under this name in an earlier session".to_owned(),
                        AuthorCheck::Verified => "key you verified (safety numbers compared)".to_owned(),
                        AuthorCheck::FirstSeen => "first time you see this name".to_owned(),
                        AuthorCheck::Changed { .. } => "KEY CHANGED".to_owned(),
                        AuthorCheck::OtherName { known_as } =>
                            format!("a key you know as {}", printable(known_as)),
                        AuthorCheck::LookAlike { of } => format!("NOT {}: a look-alike name", printable(of)),
                        AuthorCheck::BadName { why } =>
                            format!("a name no room may give: {}", printable(why)),
                    }
                ),
            ),
            key("key", m.key.short()),
            key("", grouped_hex(&m.key.0)),
            key(
                "seq",
                format!("{} in the author's {} channel", m.seq, if m.private { "private" } else { "room" }),
            ),
            key(
                "room seq",
                match (m.private, m.e2e) {
                    (true, true) => "none (private, end to end)".into(),
                    (true, false) => "none (private)".into(),
                    _ => m.room_seq.to_string(),
                },
            ),
            key("kind", m.kind.as_str().to_owned()),
        ];
        if m.missing_before > 0 {
            lines.push(Line::styled(
                format!("{} message(s) missing before this one", m.missing_before),
                theme.bad(),
            ));
        }
        if m.chain_broken {
            lines.push(Line::styled("prev is not the hash of the message before: broken chain", theme.bad()));
        }
        if m.history {
            lines.push(Line::styled("history: sent before you joined", theme.dim()));
        }
        if m.late {
            lines.push(Line::styled(
                "arrived after a later message of its author (out of order)",
                theme.bad(),
            ));
        }
        if m.mislabeled {
            lines.push(Line::styled("the relay's private flag disagrees with what was signed", theme.bad()));
        }
        let text_len = m.signed.len().saturating_sub(layout(0).iter().map(|(_, r)| r.len()).sum::<usize>());
        let marks: Vec<Mark> = layout(text_len)
            .into_iter()
            .enumerate()
            .filter(|(_, (_, range))| !range.is_empty() && range.end <= m.signed.len())
            .map(|(index, (name, range))| Mark { name, range, index: index + 1 })
            .collect();
        if let Some(sealed) = &m.sealed {
            // What the relay saw, beside what you read.
            lines.push(Line::styled(
                format!("\u{1f512} end to end: what the relay saw ({} bytes)", sealed.len()),
                theme.heading(),
            ));
            lines.push(Line::styled(
                "an MLS PrivateMessage (RFC 9420, ciphersuite 0x0003): only its header is in clear; the signed message below is inside, sealed with ChaCha20-Poly1305",
                theme.dim(),
            ));
            if let Some(header) = crate::chat::e2e::E2e::header(sealed) {
                let group: String = crate::tls::crypto::hex(&header.group).chars().take(16).collect();
                lines.push(key("group", format!("{group}… (the pair's, in clear)")));
                lines.push(key("epoch", header.epoch.to_string()));
            }
            lines.extend(hex_dump(sealed, &[], width, theme));
            lines.push(Line::styled(
                format!("what you read: the signed message inside ({} bytes)", m.signed.len()),
                theme.heading(),
            ));
        }
        lines.push(Line::styled(format!("signed bytes ({})", m.signed.len()), theme.heading()));
        lines.push(legend(&marks, theme));
        lines.extend(hex_dump(&m.signed, &marks, width, theme));
        lines.push(Line::styled("check it yourself: docs/PROTOCOL.md gives the layout", theme.dim()));
        Paragraph::new(lines).wrap(Wrap { trim: false }).render(inner, buf);
    }
}
