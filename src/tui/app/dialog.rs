//! The first-contact dialog's state: the room's key is not pinned yet,
//! and the connection sends nothing until the user decides (see
//! [`crate::store::pins::gate`]). While it is open it takes every key
//! press; drawn by [`crate::tui::ui::trust`].
//!
//! Only `y` trusts; `n`, Esc and Ctrl-C refuse; other keys do nothing, so a
//! line typed in a hurry cannot say yes by accident.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::store::pins::Question;

/// A first-contact question on screen.
#[derive(Debug)]
pub(crate) struct FirstContact {
    pub(crate) question: Question,
}

impl FirstContact {
    /// Shows `question`.
    pub(crate) fn new(question: Question) -> Self {
        Self { question }
    }

    /// The decision a key press makes, if any: `Some(true)` to trust.
    pub(crate) fn decision(key: &KeyEvent) -> Option<bool> {
        match key.code {
            KeyCode::Char('y' | 'Y') if key.modifiers.difference(KeyModifiers::SHIFT).is_empty() => {
                Some(true)
            }
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => Some(false),
            KeyCode::Char('n' | 'N') | KeyCode::Esc => Some(false),
            _ => None,
        }
    }

    /// Answers the question and closes the dialog; returns a line for the
    /// chat pane saying what was decided.
    pub(crate) fn answer(self, trusted: bool) -> String {
        let Question { room, fingerprint, answer } = self.question;
        if trusted {
            answer.trust();
            format!("trusted {room}: its key {} is pinned", fingerprint.short())
        } else {
            answer.refuse();
            format!("did not trust {room}: disconnecting, nothing was sent")
        }
    }

    /// Whether the connection stopped waiting (it ended meanwhile, or the
    /// gate refused a second key shown while this one was asked about).
    pub(crate) fn is_stale(&self) -> bool {
        self.question.answer.is_stale()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::Fingerprint;
    use tokio::sync::oneshot;

    fn ask() -> (FirstContact, oneshot::Receiver<bool>) {
        let (question, rx) = Question::new("localhost:8443".into(), Fingerprint([0xab; 32]));
        (FirstContact::new(question), rx)
    }

    #[test]
    fn only_y_trusts_and_n_esc_or_ctrl_c_refuse() {
        let key = |code, modifiers| KeyEvent::new(code, modifiers);
        assert_eq!(FirstContact::decision(&key(KeyCode::Char('y'), KeyModifiers::NONE)), Some(true));
        assert_eq!(FirstContact::decision(&key(KeyCode::Char('Y'), KeyModifiers::SHIFT)), Some(true));
        assert_eq!(FirstContact::decision(&key(KeyCode::Char('y'), KeyModifiers::CONTROL)), None);
        assert_eq!(FirstContact::decision(&key(KeyCode::Char('n'), KeyModifiers::NONE)), Some(false));
        assert_eq!(FirstContact::decision(&key(KeyCode::Esc, KeyModifiers::NONE)), Some(false));
        assert_eq!(FirstContact::decision(&key(KeyCode::Char('c'), KeyModifiers::CONTROL)), Some(false));
        for other in [KeyCode::Enter, KeyCode::Char('x'), KeyCode::Char(' ')] {
            assert_eq!(FirstContact::decision(&key(other, KeyModifiers::NONE)), None, "{other:?}");
        }
    }

    #[test]
    fn answering_sends_the_decision_to_the_connection() {
        let (dialog, mut rx) = ask();
        assert!(!dialog.is_stale());
        let note = dialog.answer(true);
        assert!(note.contains("pinned"), "{note}");
        assert_eq!(rx.try_recv(), Ok(true));

        let (dialog, mut rx) = ask();
        dialog.answer(false);
        assert_eq!(rx.try_recv(), Ok(false));

        let (dialog, rx) = ask();
        drop(rx);
        assert!(dialog.is_stale());
    }
}
