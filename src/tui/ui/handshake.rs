//! The handshake panel: this connection's TLS 1.3 steps as they happen.
//!
//! One row per handshake message, in the order the engine reported them: a
//! tick (done) or cross (a check failed), the message number, the direction
//! (→ sent, ← received), its name, its size and the time since the
//! handshake began. Messages still awaited get a spinner row each, which
//! the animation frame turns; a failure replaces them with its reason. The
//! rows are the real ones: a HelloRetryRequest or CertificateRequest shows
//! up as extra rows because the engine reports them.
//!
//! Below the rows the panel shows, in this order of preference: the
//! expanded step (fields, checks, secrets by label, transcript hash, bytes
//! as hex with the handshake header and each located field marked), the
//! failure, or the summary of the finished handshake.
//!
//! In the hex dump every marked run is bracketed (`[`, `]`, or `|` where
//! one run ends and the next begins) and styled in turn, and a legend under
//! the heading names each run with its offsets, so the marks read without
//! colour too.

use std::fmt::Write as _;
use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph, Widget, Wrap};
use unicode_width::UnicodeWidthStr;

use super::Theme;
use crate::clock::date;
use crate::teach::explain;
use crate::teach::schedule::Schedule;
use crate::tls::{Direction, Summary};
use crate::tui::app::{App, Focus, Outcome, StepView};

/// Spinner frames, one per tick.
const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// The panel widget over an app's state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HandshakePanel<'a> {
    app: &'a App,
}

impl<'a> HandshakePanel<'a> {
    /// The panel for `app`.
    pub(crate) fn new(app: &'a App) -> Self {
        Self { app }
    }
}

impl Widget for HandshakePanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let theme = Theme::of(self.app);
        let panel = self.app.panel();
        let focused = self.app.focus == Focus::Panel;
        let border = if focused { theme.fg(Color::Cyan) } else { theme.dim() };
        let title = match panel.handshake_len {
            // Messages after the handshake (KeyUpdate) are counted apart.
            Some(len) if panel.last_number() > len => {
                format!(" Handshake {len}/{len} · {} after ", panel.last_number() - len)
            }
            _ => format!(" Handshake {}/{} ", panel.last_number(), panel.expected),
        };
        let mut title = vec![Span::styled(title, theme.heading())];
        if self.app.secrets_shown {
            title.push(super::schedule::banner(theme));
        }
        let block = Block::bordered()
            .border_type(if focused { BorderType::Thick } else { BorderType::Plain })
            .border_style(border)
            .title(Line::from(title));
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.is_empty() {
            return;
        }
        if !panel.started() {
            Paragraph::new(Line::styled("waiting for a connection…", theme.dim()))
                .wrap(Wrap { trim: false })
                .render(inner, buf);
            return;
        }

        let rows = step_rows(self.app, usize::from(inner.width), theme);
        let tail = tail_lines(self.app, theme, usize::from(inner.width));
        let total = u16::try_from(rows.len()).unwrap_or(u16::MAX);
        let list_height = if tail.is_empty() {
            total.min(inner.height)
        } else if panel.expanded {
            total.min((inner.height / 3).max(3))
        } else {
            let tail_height = u16::try_from(tail.len()).unwrap_or(u16::MAX).saturating_add(1);
            total.min(inner.height.saturating_sub(tail_height).max(inner.height / 2))
        };
        let [list, gap, rest] =
            Layout::vertical([Constraint::Length(list_height), Constraint::Length(1), Constraint::Fill(1)])
                .areas(inner);

        // Keep the selected row in view.
        let height = usize::from(list.height);
        let offset =
            panel.selected.saturating_sub(height.saturating_sub(1)).min(rows.len().saturating_sub(height));
        for (row, y) in rows.iter().skip(offset).zip(list.top()..list.bottom()) {
            buf.set_line(list.x, y, row, list.width);
        }
        if tail.is_empty() {
            return;
        }
        buf.set_stringn(
            gap.x,
            gap.y,
            "─".repeat(usize::from(gap.width)),
            usize::from(gap.width),
            theme.dim(),
        );
        let scroll = if panel.expanded { panel.detail_scroll } else { 0 };
        Paragraph::new(tail).wrap(Wrap { trim: false }).scroll((scroll, 0)).render(rest, buf);
    }
}

/// The rows of the step list: messages, then spinners or the failure.
fn step_rows<'a>(app: &'a App, width: usize, theme: Theme) -> Vec<Line<'a>> {
    let panel = app.panel();
    let focused = app.focus == Focus::Panel;
    let mut rows = Vec::with_capacity(panel.expected.max(panel.steps.len()) + 1);
    let mut previous = 0;
    for (index, step) in panel.steps.iter().enumerate() {
        // The dummy ChangeCipherSpec is not a counted message: no number.
        let counted = step.number != previous;
        previous = step.number;
        let (icon, icon_style) = if step.failed() { ("✗", theme.bad()) } else { ("✓", theme.ok()) };
        let arrow = match step.direction {
            Direction::Sent => "→",
            Direction::Received => "←",
        };
        let right = format!("{:>6} {:>7}", size(step.bytes.len()), elapsed(step.at));
        let left_width = width.saturating_sub(right.width() + 7);
        let name = fit(step.name, left_width);
        let mut row = Line::from(vec![
            Span::styled(icon, icon_style),
            Span::raw(if counted { format!("{:>2} ", step.number) } else { "   ".into() }),
            Span::styled(arrow, theme.fg(Color::Cyan)),
            Span::raw(" "),
            Span::styled(
                format!("{name:<left_width$}"),
                if step.failed() { theme.bad() } else { Style::new() },
            ),
            Span::styled(format!(" {right}"), theme.dim()),
        ]);
        if index == panel.selected && focused {
            row = row.patch_style(Style::new().add_modifier(Modifier::REVERSED));
        } else if index == panel.selected && panel.expanded {
            row = row.patch_style(Style::new().add_modifier(Modifier::BOLD));
        }
        rows.push(row);
    }
    let spinner =
        SPINNER.get(usize::try_from(app.frame % SPINNER.len() as u64).unwrap_or(0)).copied().unwrap_or("*");
    for n in 0..panel.pending() {
        let number = panel.last_number() + n + 1;
        let (icon, text) = match n {
            0 if app.held => ("⏸", "flight held: Space sends it"),
            0 => (spinner, "awaiting…"),
            _ => ("·", ""),
        };
        rows.push(Line::from(vec![
            Span::styled(icon, theme.fg(Color::Yellow)),
            Span::styled(format!("{number:>2}   {text}"), theme.dim()),
        ]));
    }
    if let Outcome::Failed(_) = panel.outcome {
        rows.push(Line::from(vec![Span::styled(
            "✗ handshake failed",
            theme.bad().add_modifier(Modifier::BOLD),
        )]));
    }
    rows
}

/// What goes below the rows: the expanded step, the failure or the summary.
fn tail_lines<'a>(app: &'a App, theme: Theme, width: usize) -> Vec<Line<'a>> {
    let panel = app.panel();
    if let Some(step) = panel.steps.get(panel.selected).filter(|_| panel.expanded) {
        return detail(step, &panel.schedule, theme, width);
    }
    match &panel.outcome {
        Outcome::InProgress => Vec::new(),
        Outcome::Failed(reason) => vec![
            Line::styled("Handshake failed", theme.bad().add_modifier(Modifier::BOLD)),
            Line::styled(reason.as_str(), theme.bad()),
            Line::raw(""),
            Line::styled("Tab, then Enter on a step, for its details", theme.dim()),
        ],
        Outcome::Done(summary) => summary_lines(app, summary, theme),
    }
}

fn kv<'a>(key: &'static str, value: String, theme: Theme) -> Line<'a> {
    Line::from(vec![Span::styled(format!("{key:<10} "), theme.dim()), Span::raw(value)])
}

fn summary_lines<'a>(app: &'a App, s: &'a Summary, theme: Theme) -> Vec<Line<'a>> {
    let mut lines = vec![
        Line::styled("Connected", theme.ok().add_modifier(Modifier::BOLD)),
        kv("version", "TLS 1.3".into(), theme),
        kv("suite", s.suite.to_string(), theme),
        kv("group", s.group.to_string(), theme),
        kv("signature", s.signature_scheme.to_string(), theme),
        kv(
            "ALPN",
            s.alpn.as_deref().map_or_else(|| "none".into(), |a| String::from_utf8_lossy(a).into_owned()),
            theme,
        ),
        kv("retry", if s.retried { "HelloRetryRequest".into() } else { "none".into() }, theme),
    ];
    if let Some(name) = &s.server_name {
        lines.push(kv("SNI", name.clone(), theme));
    }
    match &s.peer {
        Some(cert) => {
            lines.push(kv("subject", cert.subject.clone(), theme));
            lines.push(kv("issuer", cert.issuer.clone(), theme));
            lines.push(kv("valid", format!("{} to {}", date(cert.not_before), date(cert.not_after)), theme));
            lines.push(kv("key", cert.fingerprint.to_string(), theme));
        }
        None => lines.push(kv("peer cert", "none".into(), theme)),
    }
    let (sent_lines, sent_bytes) = app.sent;
    let (received_lines, received_bytes) = app.received;
    lines.push(kv("chat out", format!("{sent_lines} lines, {sent_bytes} B"), theme));
    lines.push(kv("chat in", format!("{received_lines} lines, {received_bytes} B"), theme));
    lines.push(kv("key upd.", app.panel().key_updates.to_string(), theme));
    lines
}

/// The expanded view of one step.
fn detail<'a>(step: &'a StepView, schedule: &Schedule, theme: Theme, width: usize) -> Vec<Line<'a>> {
    let way = match step.direction {
        Direction::Sent => "sent",
        Direction::Received => "received",
    };
    let protection = if step.encrypted { "encrypted" } else { "plaintext" };
    let mut lines = vec![
        Line::styled(format!("{} {}", step.number, step.name), theme.heading()),
        Line::styled(
            format!("{way} · {} · {protection} · {}", size(step.bytes.len()), elapsed(step.at)),
            theme.dim(),
        ),
    ];
    if !step.summary.is_empty() {
        lines.push(Line::raw(step.summary.as_str()));
    }
    if let Some(why) = explain::message(step.name) {
        lines.push(Line::from(vec![
            Span::styled("why it matters ", theme.heading()),
            Span::styled(why.rfc, theme.fg(Color::Blue)),
        ]));
        lines.push(Line::raw(why.what));
        lines.push(Line::styled(why.then, theme.dim()));
    }
    if !step.fields.is_empty() {
        lines.push(Line::styled("fields", theme.heading()));
        for field in &step.fields {
            lines.push(Line::from(vec![
                Span::styled(format!(" {}: ", field.name), theme.fg(Color::Cyan)),
                Span::raw(field.value.as_str()),
            ]));
        }
    }
    if !step.checks.is_empty() {
        lines.push(Line::styled("checks", theme.heading()));
        for check in &step.checks {
            let (icon, style) = if check.ok { ("✓", theme.ok()) } else { ("✗", theme.bad()) };
            lines.push(Line::from(vec![
                Span::styled(format!(" {icon} {}: ", check.what), style),
                Span::styled(check.detail.as_str(), if check.ok { Style::new() } else { theme.bad() }),
            ]));
            if let Some(why) = explain::check(check.what) {
                lines.push(explained(why.then, why.rfc, theme));
            }
        }
    }
    if !step.secrets.is_empty() {
        let shown = step.secrets.iter().any(|s| schedule.value(*s).is_some());
        let heading = if shown {
            "secrets derived (--reveal: values shown)"
        } else {
            "secrets derived (values hidden)"
        };
        lines.push(Line::styled(heading, theme.heading()));
        for secret in &step.secrets {
            let value = match schedule.value(*secret) {
                Some(v) => {
                    Span::styled(format!(" = {}", crate::tls::crypto::hex(v)), theme.fg(Color::Yellow))
                }
                None => Span::styled(" = ••••", theme.dim()),
            };
            lines.push(Line::from(vec![Span::raw(format!(" {secret}")), value]));
            let why = explain::secret(*secret);
            lines.push(explained(why.what, why.rfc, theme));
        }
    }
    if let Some(hash) = &step.transcript_hash {
        lines.push(Line::styled("transcript hash", theme.heading()));
        lines.push(Line::raw(format!(" {}", grouped_hex(hash))));
    }
    lines.push(Line::styled(format!("bytes ({})", header_legend(step)), theme.heading()));
    let marks = marks(step);
    if marks.len() > 1 || marks.first().is_some_and(|m| m.name != "header") {
        lines.push(legend(&marks, theme));
    }
    lines.extend(hex_dump(&step.bytes, &marks, width, theme));
    lines
}

/// A dimmed line of explanation ending with its RFC section.
fn explained<'a>(text: &'static str, rfc: &'static str, theme: Theme) -> Line<'a> {
    Line::from(vec![Span::styled(format!("{text} "), theme.dim()), Span::styled(rfc, theme.fg(Color::Blue))])
}

/// One line naming each marked run with its offsets, in its style.
pub(super) fn legend<'a>(marks: &[Mark], theme: Theme) -> Line<'a> {
    let mut legend = Vec::new();
    for (i, m) in marks.iter().enumerate() {
        legend.push(Span::raw(if i == 0 { " " } else { "  " }));
        legend.push(Span::styled(format!("{}: {}..{}", m.name, m.range.start, m.range.end), m.style(theme)));
    }
    Line::from(legend)
}

/// A run of bytes marked in the dump: the header or a field.
#[derive(Debug, Clone)]
pub(super) struct Mark {
    pub(super) name: &'static str,
    pub(super) range: std::ops::Range<usize>,
    /// 0 for the header, then 1, 2, … for the fields in order.
    pub(super) index: usize,
}

impl Mark {
    /// The header stands out (cyan, or underlined); fields alternate two
    /// styles so neighbours differ (colours, or bold and reversed).
    pub(super) fn style(&self, theme: Theme) -> Style {
        match (self.index, theme.color) {
            (0, true) => Style::new().fg(Color::Black).bg(Color::Cyan),
            (0, false) => Style::new().add_modifier(Modifier::UNDERLINED),
            (i, true) if i % 2 == 1 => Style::new().fg(Color::Yellow),
            (_, true) => Style::new().fg(Color::Green),
            (i, false) if i % 2 == 1 => Style::new().add_modifier(Modifier::BOLD),
            (_, false) => Style::new().add_modifier(Modifier::REVERSED),
        }
    }
}

/// The header and every field whose bytes are known, clipped to the
/// message; empty runs are left out.
fn marks(step: &StepView) -> Vec<Mark> {
    let len = step.bytes.len();
    let header = header_len(step);
    let mut marks = Vec::new();
    if header > 0 {
        marks.push(Mark { name: "header", range: 0..header, index: 0 });
    }
    let located = step.fields.iter().filter_map(|f| Some((f.name, f.range.clone()?)));
    for (i, (name, range)) in located.enumerate() {
        let range = range.start.min(len)..range.end.min(len);
        if !range.is_empty() {
            marks.push(Mark { name, range, index: i + 1 });
        }
    }
    marks
}

/// How many leading bytes are the message header, marked in the dump.
fn header_len(step: &StepView) -> usize {
    if step.name == "ChangeCipherSpec" { 0 } else { 4.min(step.bytes.len()) }
}

fn header_legend(step: &StepView) -> &'static str {
    if header_len(step) == 0 {
        "one byte, no header"
    } else if step.fields.iter().any(|f| f.range.is_some()) {
        "type, length and fields marked"
    } else {
        "type and length marked"
    }
}

/// `bytes` as offset + hex rows that fit `width`, each run of `marks`
/// styled and bracketed: the column before a byte shows `[` where a run
/// starts, `]` where one ended and `|` for both; a run ending a row gets its
/// `]` after the row.
pub(super) fn hex_dump<'a>(bytes: &[u8], marks: &[Mark], width: usize, theme: Theme) -> Vec<Line<'a>> {
    // "0000 " then 3 columns a byte, in groups of four, and one for a closing bracket.
    let per_row = (width.saturating_sub(6) / 3 / 4 * 4).clamp(4, 16);
    let starts = |at: usize| marks.iter().any(|m| m.range.start == at);
    let ends = |at: usize| marks.iter().any(|m| m.range.end == at);
    bytes
        .chunks(per_row)
        .enumerate()
        .map(|(row, chunk)| {
            let mut spans = vec![Span::styled(format!("{:04x} ", row * per_row), theme.dim())];
            for (i, b) in chunk.iter().enumerate() {
                let at = row * per_row + i;
                // The last run that covers the byte wins.
                let style = marks
                    .iter()
                    .rev()
                    .find(|m| m.range.contains(&at))
                    .map_or(Style::new(), |m| m.style(theme));
                let sep = match (starts(at), at > 0 && ends(at)) {
                    (true, true) => "|",
                    (true, false) => "[",
                    (false, true) => "]",
                    (false, false) => " ",
                };
                spans.push(Span::raw(sep));
                spans.push(Span::styled(format!("{b:02x}"), style));
            }
            if ends(row * per_row + chunk.len()) {
                spans.push(Span::raw("]"));
            }
            Line::from(spans)
        })
        .collect()
}

/// Hex in groups of four digits.
pub(super) fn grouped_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 5 / 2);
    for (i, pair) in bytes.chunks(2).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        for b in pair {
            let _ = write!(out, "{b:02x}");
        }
    }
    out
}

/// A size in bytes, short.
fn size(n: usize) -> String {
    if n < 10_000 { format!("{n} B") } else { format!("{} kB", n / 1000) }
}

/// Time since the handshake began: `+12ms`, `+1.25s`.
pub(crate) fn elapsed(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        let ms = d.as_millis();
        if ms < 1000 { format!("+{ms}ms") } else { format!("+{}.{:02}s", ms / 1000, ms % 1000 / 10) }
    } else {
        format!("+{}s", d.as_secs())
    }
}

/// `s` cut to `width` columns, with an ellipsis when cut.
fn fit(s: &str, width: usize) -> String {
    if s.width() <= width {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}
