//! The first-contact dialog: the room's key is not pinned yet, so the user
//! is shown its safety number and fingerprint and decides whether to
//! trust it. Until then the connection sends nothing (see
//! [`crate::store::pins::gate`]).
//!
//! ```text
//! ┌ First contact: localhost:8443 ─────────────────────┐
//! │ This room's key is new to you. Compare its safety   │
//! │ number with the room's owner (aloud, or the invite  │
//! │ they sent) before you trust it:                     │
//! │                                                     │
//! │       12345 67890 12345 67890 12345 67890           │
//! │                                                     │
//! │ key fingerprint:                                    │
//! │       1a2b 3c4d 5e6f … (eight groups of four)       │
//! │       … (and eight more)                            │
//! │ Nothing is sent until you decide.                   │
//! │ y  trust and remember it     n / Esc  disconnect    │
//! └─────────────────────────────────────────────────────┘
//! ```
//!
//! The dialog's state, and what each key does to it, are the model's
//! ([`crate::tui::app::FirstContact`]); this draws it.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};

use crate::tui::app::FirstContact;

/// The dialog's width when the terminal allows it.
const WIDTH: u16 = 60;

/// Where the dialog goes in `area`: centred, as wide as allowed.
pub(crate) fn area(area: Rect) -> Rect {
    let width = WIDTH.min(area.width);
    let height = 13.min(area.height);
    Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height }
}

impl Widget for &FirstContact {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = self::area(area);
        Clear.render(area, buf);
        let bold = Style::new().add_modifier(Modifier::BOLD);
        let q = &self.question;
        let hex = q.fingerprint.to_string();
        // Sixteen groups of four: two lines of eight.
        let (first, second) = hex.split_at(hex.len().min(40));
        let lines = vec![
            Line::from(
                "This room's key is new to you. Compare its safety number with the room's owner (aloud, or the invite they sent) before you trust it:",
            ),
            Line::from(""),
            Line::from(Span::styled(q.fingerprint.short(), bold)).centered(),
            Line::from(""),
            Line::from("key fingerprint:"),
            Line::from(first.trim_end().to_owned()).centered(),
            Line::from(second.trim_start().to_owned()).centered(),
            Line::from("Nothing is sent until you decide."),
            Line::from(vec![
                Span::styled("y", bold),
                Span::raw("  trust and remember it    "),
                Span::styled("n", bold),
                Span::raw(" / "),
                Span::styled("Esc", bold),
                Span::raw("  disconnect"),
            ]),
        ];
        let block = Block::new()
            .borders(Borders::ALL)
            .title(Span::styled(format!(" First contact: {} ", q.room), bold));
        Paragraph::new(lines).block(block).wrap(Wrap { trim: true }).render(area, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::pins::Question;
    use crate::tls::Fingerprint;

    fn ask() -> FirstContact {
        let (question, _rx) = Question::new("localhost:8443".into(), Fingerprint([0xab; 32]));
        FirstContact::new(question)
    }

    fn text(buf: &Buffer) -> String {
        let area = buf.area;
        (0..area.height)
            .map(|y| (0..area.width).map(|x| buf[(x, y)].symbol().to_owned()).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_dialog_shows_the_room_the_safety_number_and_the_whole_fingerprint() {
        let dialog = ask();
        let mut buf = Buffer::empty(Rect::new(0, 0, 80, 24));
        (&dialog).render(buf.area, &mut buf);
        let shown = text(&buf);
        let fp = Fingerprint([0xab; 32]);
        assert!(shown.contains("First contact: localhost:8443"), "{shown}");
        assert!(shown.contains(&fp.short()), "{shown}");
        let hex = fp.to_string();
        assert!(shown.contains(&hex[..39]) && shown.contains(&hex[40..]), "{shown}");
        assert!(shown.contains("Nothing is sent until you decide."), "{shown}");
        assert!(shown.contains("y  trust and remember it"), "{shown}");
    }

    #[test]
    fn a_tiny_terminal_still_gets_a_dialog_inside_it() {
        let dialog = ask();
        let mut buf = Buffer::empty(Rect::new(0, 0, 20, 5));
        (&dialog).render(buf.area, &mut buf);
        assert_eq!(area(buf.area), buf.area);
    }
}
