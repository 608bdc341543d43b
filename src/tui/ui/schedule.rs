//! The key schedule view (F4): the RFC 8446 §7.1 tree of the connection
//! the panel follows, filled in as the handshake derives it.
//!
//! Each value is a row: a mark (`✓` value known, `•` derived and hidden,
//! `○` not yet), its name, how it is computed, the transcript hash it was
//! derived over, what it unlocks and, with `--reveal`, its value and a
//! command that recomputes it with OpenSSL and `xxd` (see
//! [`crate::teach::schedule`]). Commands are cut to the panel's width with shell
//! line continuations, so they copy and run as shown.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph, Widget, Wrap};

use super::Theme;
use super::handshake::grouped_hex;
use crate::teach::schedule::{Row, State, wrap_command};
use crate::tui::app::{App, Focus};

/// The title's warning while `--reveal` is on.
pub(super) fn banner<'a>(theme: Theme) -> Span<'a> {
    Span::styled(" SECRETS ON SCREEN ", theme.bad().add_modifier(Modifier::BOLD | Modifier::REVERSED))
}

/// The key schedule view over an app's state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SchedulePanel<'a> {
    app: &'a App,
}

impl<'a> SchedulePanel<'a> {
    /// The view for `app`.
    pub(crate) fn new(app: &'a App) -> Self {
        Self { app }
    }
}

impl Widget for SchedulePanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let theme = Theme::of(self.app);
        let focused = self.app.focus == Focus::Panel;
        let mut title = vec![Span::styled(" Key schedule ", theme.heading())];
        if self.app.secrets_shown {
            title.push(banner(theme));
        }
        let block = Block::bordered()
            .border_type(if focused { BorderType::Thick } else { BorderType::Plain })
            .border_style(if focused { theme.fg(Color::Cyan) } else { theme.dim() })
            .title(Line::from(title));
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.is_empty() {
            return;
        }
        let lines = lines(self.app, usize::from(inner.width), theme);
        let scroll = self.app.panel().schedule_scroll;
        Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((scroll, 0)).render(inner, buf);
    }
}

/// The view's lines for a panel `width` columns wide.
pub fn lines<'a>(app: &App, width: usize, theme: Theme) -> Vec<Line<'a>> {
    let panel = app.panel();
    if !panel.started() {
        return vec![Line::styled("waiting for a connection…", theme.dim())];
    }
    let mut lines = Vec::new();
    if app.secrets_shown {
        lines.push(Line::styled(
            "--reveal: this session's secrets are shown, each with a command that recomputes it.",
            theme.bad(),
        ));
    } else {
        lines.push(Line::styled(
            "Values hidden: --reveal shows them, with a command to recompute each.",
            theme.dim(),
        ));
    }
    lines.push(Line::styled("Up/Down PgUp/PgDn scroll (Tab to focus) · F4 back", theme.dim()));
    for row in panel.schedule.rows() {
        lines.push(Line::raw(""));
        row_lines(&row, width, theme, &mut lines);
    }
    lines
}

fn row_lines<'a>(row: &Row, width: usize, theme: Theme, lines: &mut Vec<Line<'a>>) {
    let indent = "  ".repeat(row.depth);
    let (mark, style) = match row.state {
        State::Revealed => ("✓", theme.ok()),
        State::Derived => ("•", theme.fg(Color::Cyan)),
        State::Pending => ("○", theme.dim()),
    };
    lines.push(Line::from(vec![
        Span::raw(indent.clone()),
        Span::styled(format!("{mark} "), style),
        Span::styled(row.name.clone(), theme.heading()),
    ]));
    let sub = format!("{indent}  ");
    lines.push(Line::styled(format!("{sub}{}", row.formula), theme.dim()));
    if let Some((messages, hash)) = &row.over {
        lines.push(Line::from(vec![
            Span::styled(format!("{sub}over H({messages}) "), theme.fg(Color::Blue)),
            Span::raw(grouped_hex(hash)),
        ]));
    }
    match (&row.value, row.state) {
        (Some(value), _) => {
            // Grouped for reading; the `expect` line below has it as the tools print it.
            let grouped = value.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c)).collect::<Vec<_>>();
            lines.push(Line::styled(format!("{sub}= {}", grouped.join(" ")), theme.fg(Color::Yellow)));
        }
        (None, State::Derived) => lines.push(Line::styled(format!("{sub}= ••••"), theme.dim())),
        (None, _) => {}
    }
    if let Some(unlocks) = &row.unlocks {
        lines.push(Line::styled(format!("{sub}unlocks {unlocks}"), theme.fg(Color::Green)));
    }
    for note in &row.notes {
        lines.push(Line::styled(format!("{sub}{note}"), theme.dim()));
    }
    if let Some(proof) = &row.proof {
        lines.push(Line::styled(format!("{sub}recompute it:"), theme.dim()));
        // Each piece at the left edge, with no prompt: an indent after a
        // cut inside a word would change the command.
        for piece in wrap_command(&proof.command, width) {
            lines.push(Line::styled(piece, theme.fg(Color::Magenta)));
        }
        lines.push(Line::styled(format!("{sub}expect {}", proof.expected.as_str()), theme.dim()));
    }
}
