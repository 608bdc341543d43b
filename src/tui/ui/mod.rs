//! The view: pure functions of `&App` onto a ratatui [`Buffer`].
//!
//! ```text
//! ┌ chat pane ─────────────────────────┐┌ Handshake ───────┐
//! │ 12:04 ── handshake complete …      ││ ✓ 1 → ClientHello │
//! │ 12:05 127.0.0.1:8443: hello        ││ ⠋ 2   awaiting    │
//! ├ input line ────────────────────────┘└──────────────────┘
//! └ status bar
//! ```
//!
//! Nothing here mutates the app or reads a clock: times on screen were
//! stamped by [`App::update`]. The chat pane visits only the entries that
//! fit on screen, so a frame costs the same with 10 or 50,000 messages.
//! Without colour (NO_COLOR) the same screens use bold, dim and reverse only.

pub(crate) mod group;
pub(crate) mod handshake;
pub(crate) mod room;
pub mod schedule;
pub(crate) mod trust;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::tui::app::{App, Author, Clock, Delivery, Entry, Focus, Level, Mark, Place, Side};

pub(crate) use handshake::HandshakePanel;
pub(crate) use room::{MembersPanel, MessagePanel};

/// Colours and emphasis, or emphasis only when colour is not allowed.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    color: bool,
}

impl Theme {
    /// The theme for `app` (NO_COLOR honoured).
    pub fn of(app: &App) -> Self {
        Self { color: app.color }
    }

    /// `color` as foreground, or plain text without colour.
    pub(crate) fn fg(self, color: Color) -> Style {
        if self.color { Style::new().fg(color) } else { Style::new() }
    }

    /// Dim text (timestamps, hints).
    pub(crate) fn dim(self) -> Style {
        if self.color { Style::new().fg(Color::DarkGray) } else { Style::new().add_modifier(Modifier::DIM) }
    }

    /// Good news.
    pub(crate) fn ok(self) -> Style {
        self.fg(Color::Green)
    }

    /// Failures: red, or bold without colour.
    pub(crate) fn bad(self) -> Style {
        if self.color { Style::new().fg(Color::Red) } else { Style::new().add_modifier(Modifier::BOLD) }
    }

    /// Headings.
    pub(crate) fn heading(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    /// The style of a sender's name: one stable colour per name.
    pub fn name(self, name: &str) -> Style {
        const PALETTE: [Color; 6] = [
            Color::LightBlue,
            Color::LightMagenta,
            Color::LightYellow,
            Color::LightCyan,
            Color::LightGreen,
            // Not red: red is for `✗ INVALID` and `⚠ KEY CHANGED` alone.
            Color::Magenta,
        ];
        // FNV-1a: stable across runs and platforms, unlike the std hasher.
        let hash = name
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        let index = usize::try_from(hash % PALETTE.len() as u64).unwrap_or(0);
        self.fg(PALETTE.get(index).copied().unwrap_or(Color::Reset)).add_modifier(Modifier::BOLD)
    }
}

/// The screen's parts for an area: chat pane, panel (if shown), input, status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    /// The message pane.
    pub chat: Rect,
    /// The handshake panel, when shown.
    pub panel: Option<Rect>,
    /// The input line.
    pub(crate) input: Rect,
    /// The status bar.
    pub(crate) status: Rect,
}

impl Areas {
    /// The layout of `app` on `area`: the panel takes the right side when the
    /// terminal is wide enough (or F2 asked for it).
    pub fn of(app: &App, area: Rect) -> Self {
        let [main, input, status] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(1), Constraint::Length(1)]).areas(area);
        match app.panel_place(area.width, area.height) {
            Place::Beside => {
                let panel_width = crate::tui::app::panel_width(area.width);
                let [chat, panel] =
                    Layout::horizontal([Constraint::Fill(1), Constraint::Length(panel_width)]).areas(main);
                Self { chat, panel: Some(panel), input, status }
            }
            Place::Instead => {
                Self { chat: Rect::new(main.x, main.y, 0, main.height), panel: Some(main), input, status }
            }
            Place::Hidden => Self { chat: main, panel: None, input, status },
        }
    }
}

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        // Too small for the input line and the status bar: nothing is
        // drawn (rather than drawn outside the screen).
        let area = area.intersection(buf.area);
        if area.height < 2 || area.width < 2 {
            return;
        }
        let areas = Areas::of(self, area);
        ChatPane { app: self }.render(areas.chat, buf);
        if let Some(panel) = areas.panel {
            match &self.side {
                Side::Handshake => HandshakePanel::new(self).render(panel, buf),
                Side::Members => MembersPanel::new(self).render(panel, buf),
                Side::Schedule => schedule::SchedulePanel::new(self).render(panel, buf),
                Side::Message(m) => MessagePanel::new(self, m).render(panel, buf),
                Side::Groups => group::GroupsPanel::new(self).render(panel, buf),
            }
        }
        InputLine { app: self }.render(areas.input, buf);
        StatusBar { app: self }.render(areas.status, buf);
        if let Some(dialog) = &self.dialog {
            dialog.render(area, buf);
        }
    }
}

/// Where the terminal cursor goes: on the input line when it has focus.
pub fn cursor_position(app: &App, area: Rect) -> Option<Position> {
    // The dialog, while open, takes the keys: no cursor then.
    if app.focus != Focus::Input || app.dialog.is_some() {
        return None;
    }
    let input = Areas::of(app, area).input;
    let (_, cursor_col) = input_window(app, input.width);
    Some(Position::new(input.x + cursor_col, input.y))
}

// ---------------------------------------------------------------------------
// Chat pane

/// Columns of the `HH:MM ` prefix; wrapped lines are indented by as much.
const TIME_WIDTH: usize = 6;

/// The message pane: the newest entries (or those scrolled to) at the bottom.
struct ChatPane<'a> {
    app: &'a App,
}

impl Widget for ChatPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let theme = Theme::of(self.app);
        let log = &self.app.log;
        let entries = &log.entries;
        let height = usize::from(area.height);
        let width = usize::from(area.width);
        // Walk back from the view's bottom entry until the pane is full: only
        // what is visible is wrapped.
        let newest = entries.len().saturating_sub(1 + log.scroll);
        let mut lines: Vec<Line<'_>> = Vec::new();
        let mut blocks: Vec<Vec<Line<'_>>> = Vec::new();
        let mut filled = 0;
        for index in (0..=newest).rev() {
            let Some(entry) = entries.get(index) else { break };
            let mut block =
                entry_lines(entry, width, theme, self.app.clock, self.app.picked() == Some(index));
            if log.read_marker() == Some(index) {
                // weechat's read marker: what came after the user left.
                let rule = format!("{:─^width$}", " new since you left ");
                block.insert(0, Line::styled(rule, theme.fg(Color::Yellow)));
            }
            filled += block.len();
            blocks.push(block);
            if filled >= height {
                break;
            }
        }
        for block in blocks.into_iter().rev() {
            lines.extend(block);
        }
        let skip = lines.len().saturating_sub(height);
        for (line, y) in lines.iter().skip(skip).zip(area.top()..area.bottom()) {
            buf.set_line(area.x, y, line, area.width);
        }
        if log.scroll > 0 {
            let note = format!(" ↓ {} new · End for live ", log.unread);
            let note_width = u16::try_from(note.width()).unwrap_or(u16::MAX).min(area.width);
            let style = if theme.color {
                Style::new().fg(Color::Black).bg(Color::Yellow)
            } else {
                Style::new().add_modifier(Modifier::REVERSED)
            };
            buf.set_stringn(
                area.right() - note_width,
                area.bottom() - 1,
                &note,
                usize::from(note_width),
                style,
            );
        }
    }
}

/// One entry as lines of `width` columns: time, author, text wrapped with a
/// hanging indent.
fn entry_lines<'a>(
    entry: &'a Entry,
    width: usize,
    theme: Theme,
    clock: Clock,
    picked: bool,
) -> Vec<Line<'a>> {
    // The arrival time; and when it was signed, where that differs by
    // more than a minute.
    let time = match entry.signed_at {
        Some(signed) => {
            Span::styled(format!("{} (signed {}) ", clock.hh_mm(entry.at), clock.hh_mm(signed)), theme.bad())
        }
        None => Span::styled(format!("{} ", clock.hh_mm(entry.at)), theme.dim()),
    };
    let tags = entry.tags;
    let mut text_style = if tags.mention {
        // Bold and underlined: reversed video is the picked message's alone.
        theme.fg(Color::Yellow).add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    } else {
        Style::new()
    };
    if tags.history {
        text_style = text_style.patch(theme.dim());
    }
    let history = if tags.history { "(history) " } else { "" };
    let private = match (tags.private, tags.e2e) {
        (true, true) => " \u{1f512}",
        (true, false) => " (private)",
        // A line of an end-to-end room.
        (false, true) => " \u{1f512}",
        _ => "",
    };
    let (head, text_style) = match &entry.author {
        Author::Me(delivery) => {
            let mark = match delivery {
                Delivery::Pending | Delivery::Sent { .. } => "\u{00b7}",
                Delivery::Waiting => "\u{2026} waiting for end to end",
                Delivery::Delivered => "\u{2713}\u{2713}",
                Delivery::Unacknowledged => "\u{2192}",
                // Never shown as if said: marked, and the text dimmed.
                Delivery::Refused => {
                    let head = format!("you \u{2717} not sent{private}: ");
                    return finish(entry, width, time, Span::styled(head, theme.bad()), theme.dim(), picked);
                }
            };
            // An action reads as a sentence, as irssi shows it: the mark
            // before it, never inside it.
            let head = if tags.action {
                format!("{history}{mark} * you ")
            } else {
                format!("{history}you {mark}{private}: ")
            };
            (Span::styled(head, theme.name("you")), text_style)
        }
        Author::Peer(name) => (Span::styled(format!("{name}: "), theme.name(name)), Style::new()),
        Author::Member { name, mark } => {
            let (mark, style) = match mark {
                Mark::Verified => ("\u{2713}", theme.name(name)),
                Mark::FirstSeen => ("\u{2713} new", theme.name(name)),
                Mark::Checked => ("\u{2713} verified", theme.name(name)),
                Mark::Stale => ("\u{26a0} STALE", theme.bad()),
                Mark::Unverified => ("(unverified)", theme.dim()),
                Mark::Invalid => ("\u{2717} INVALID", theme.bad()),
                Mark::KeyChanged => ("\u{26a0} KEY CHANGED", theme.bad()),
            };
            let to = match (tags.private, tags.e2e) {
                (true, true) => " \u{2192} you \u{1f512}",
                (true, false) => " \u{2192} you (private)",
                // A line of an end-to-end room.
                (false, true) => " \u{1f512}",
                _ => "",
            };
            let head = if tags.action {
                // `✓ * alice waves`: irssi's sentence, the mark before it.
                format!("{history}{mark} * {name}{to} ")
            } else {
                format!("{history}{name} {mark}{to}: ")
            };
            (Span::styled(head, style), text_style)
        }
        Author::System(level) => {
            let style = match level {
                Level::Info => theme.fg(Color::Yellow),
                Level::Success => theme.ok(),
                Level::Error => theme.bad(),
            };
            (Span::styled("── ", style), style)
        }
    };
    finish(entry, width, time, head, text_style, picked)
}

/// An entry's lines from its parts: the time, the head (author and
/// marks) and the text wrapped in `text_style` with a hanging indent.
fn finish<'a>(
    entry: &'a Entry,
    width: usize,
    time: Span<'a>,
    head: Span<'a>,
    text_style: Style,
    picked: bool,
) -> Vec<Line<'a>> {
    // The message picked in the chat pane (Tab) stands out.
    let head = if picked { head.patch_style(Style::new().add_modifier(Modifier::REVERSED)) } else { head };
    let indent = if width > TIME_WIDTH * 3 { TIME_WIDTH } else { 0 };
    let first = width.saturating_sub(TIME_WIDTH + head.width()).max(1);
    let rest = width.saturating_sub(indent).max(1);
    let pieces = wrap(&entry.text, first, rest);
    let mut lines = Vec::with_capacity(pieces.len());
    for (n, piece) in pieces.into_iter().enumerate() {
        if n == 0 {
            lines.push(Line::from(vec![time.clone(), head.clone(), Span::styled(piece, text_style)]));
        } else {
            lines.push(Line::from(vec![Span::raw(" ".repeat(indent)), Span::styled(piece, text_style)]));
        }
    }
    lines
}

/// The newest `count` entries of the scrollback as plain text, one line
/// each (time, author and marks, text), escaped for a terminal: what the
/// bare view (Alt-L) prints for the terminal to wrap by itself.
pub(crate) fn plain_lines(app: &App, count: usize) -> Vec<String> {
    let theme = Theme { color: false };
    let entries = app.log.entries();
    let start = entries.len().saturating_sub(count);
    entries
        .range(start..)
        .map(|entry| {
            let lines = entry_lines(entry, usize::MAX / 4, theme, app.clock, false);
            let text: String =
                lines.iter().flat_map(|line| line.spans.iter().map(|span| span.content.as_ref())).collect();
            crate::present::escape::printable(&text).into_owned()
        })
        .collect()
}

/// Splits `text` into lines of at most `first` columns for the first line
/// and `rest` after, breaking after spaces where it can and inside words
/// where it must. Widths are Unicode display widths (CJK and emoji take two
/// columns); a character wider than the line still gets a line of its own.
pub fn wrap(text: &str, first: usize, rest: usize) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut limit = first;
    let mut start = 0;
    let mut width = 0;
    // The last space on this line: where the line would end, where the next
    // would start, and the width from there to here.
    let mut space: Option<(usize, usize)> = None;
    let mut after_space = 0;
    for (i, c) in text.char_indices() {
        let w = c.width().unwrap_or(0);
        if c == ' ' && width + w > limit && i > start {
            // A space at the edge ends the line and is dropped.
            lines.push(text.get(start..i).unwrap_or_default());
            start = i + 1;
            width = 0;
            space = None;
            limit = rest;
            continue;
        }
        while width + w > limit && i > start {
            match space.take() {
                Some((end, next)) if next <= i => {
                    lines.push(text.get(start..end).unwrap_or_default());
                    start = next;
                    width = after_space;
                }
                _ => {
                    lines.push(text.get(start..i).unwrap_or_default());
                    start = i;
                    width = 0;
                }
            }
            limit = rest;
        }
        width += w;
        if c == ' ' {
            space = Some((i, i + 1));
            after_space = 0;
        } else {
            after_space += w;
        }
    }
    lines.push(text.get(start..).unwrap_or_default());
    lines
}

// ---------------------------------------------------------------------------
// Input line

/// The prompt before the input.
const PROMPT: &str = "› ";

/// Which part of the input to show in `width` columns so the cursor is
/// visible: (first byte shown, cursor column).
fn input_window(app: &App, width: u16) -> (usize, u16) {
    let input = &app.input;
    let text = &input.text;
    let room = usize::from(width).saturating_sub(PROMPT.width() + 1).max(1);
    let before = text.get(..input.cursor).unwrap_or_default();
    // Drop characters from the left until the cursor fits.
    let mut start = 0;
    let mut shown = before.width();
    for (i, c) in before.char_indices() {
        if shown <= room {
            break;
        }
        shown -= c.width().unwrap_or(0);
        start = i + c.len_utf8();
    }
    let column = PROMPT.width() + shown;
    (start, u16::try_from(column).unwrap_or(u16::MAX))
}

struct InputLine<'a> {
    app: &'a App,
}

impl Widget for InputLine<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let theme = Theme::of(self.app);
        let prompt_style = match self.app.focus {
            Focus::Input => theme.fg(Color::Cyan).add_modifier(Modifier::BOLD),
            Focus::Panel | Focus::Messages => theme.dim(),
        };
        let (start, _) = input_window(self.app, area.width);
        let text = self.app.input.text().get(start..).unwrap_or_default();
        let line = if text.is_empty() && self.app.focus == Focus::Input {
            Line::from(vec![
                Span::styled(PROMPT, prompt_style),
                Span::styled("type a message · /help", theme.dim()),
            ])
        } else {
            Line::from(vec![Span::styled(PROMPT, prompt_style), Span::raw(text)])
        };
        buf.set_line(area.x, area.y, &line, area.width);
    }
}

// ---------------------------------------------------------------------------
// Status bar

struct StatusBar<'a> {
    app: &'a App,
}

impl Widget for StatusBar<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let theme = Theme::of(self.app);
        let bar = if theme.color {
            Style::new().bg(Color::Blue).fg(Color::White)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        };
        buf.set_style(area, bar);
        let app = self.app;
        let mut parts = vec![
            format!(" {}", if app.peer.is_empty() { "tlschat" } else { &app.peer }),
            app.state.to_owned(),
        ];
        if let Some(key) = app.room_key() {
            // The host's own room, whoever connected last.
            parts.push(format!("safety {key}"));
        } else if let crate::tui::app::Outcome::Done(summary) = &app.panel().outcome {
            // The key's safety number before the suite: on a narrow
            // terminal it is the part that must not be cut off.
            if let Some(cert) = &summary.peer {
                parts.push(format!("safety {}", cert.fingerprint.short()));
            }
            parts.push(summary.suite.to_string());
        }
        if app.log.unread() > 0 {
            parts.push(format!("{} unread", app.log.unread()));
        }
        if app.e2e_room() {
            parts.push("\u{1f512} end to end room: the relay cannot read it".to_owned());
        } else if app.in_room() {
            // Said plainly, so that nobody takes the room for end to end.
            parts.push("the relay reads the room; /msg \u{1f512} is end to end".to_owned());
        }
        let left = parts.join(" │ ");
        let right = "F2 panel · Tab focus · /help ";
        buf.set_stringn(area.x, area.y, &left, usize::from(area.width), bar);
        let free = usize::from(area.width).saturating_sub(left.width() + 2);
        if free >= right.width() {
            let x = area.right() - u16::try_from(right.width()).unwrap_or(0);
            buf.set_stringn(x, area.y, right, right.width(), bar);
        }
    }
}
