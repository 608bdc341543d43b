//! [`App::update`], the one mutator, and the step delay's release of
//! what it held back.

use crossterm::event::{KeyEvent, KeyEventKind};

use super::delay::Delayed;
use super::dialog::FirstContact;
use super::log::{Delivery, Level};
use super::model::{App, Focus, Mode, Msg, Now, Place, Update};

/// Entries scrolled per mouse-wheel notch.
pub(crate) const WHEEL_STEP: usize = 3;

impl App {
    /// The one mutator: applies `msg`, received at `now`.
    pub fn update(&mut self, msg: Msg, now: Now) -> Update {
        // The connection stopped waiting for the answer: the question goes.
        let stale = self.dialog.take_if(|d| d.is_stale()).is_some();
        let mut update = match (&self.dialog, msg) {
            (_, Msg::Question(question)) => {
                // One at a time: the event loop asks again once this is answered.
                self.dialog = Some(FirstContact::new(question));
                Update::REDRAW
            }
            // Nothing is said before trust is decided: a paste (which
            // sends its lines) is ignored.
            (Some(_), Msg::Paste(_)) => Update::NONE,
            (Some(_), Msg::Key(key)) => self.dialog_key(key, now),
            (_, msg) => self.apply(msg, now),
        };
        update.redraw |= stale;
        update
    }

    /// The dialog takes every key press until it is answered.
    fn dialog_key(&mut self, key: KeyEvent, now: Now) -> Update {
        if key.kind != KeyEventKind::Press {
            return Update::NONE;
        }
        let Some(trusted) = FirstContact::decision(&key) else { return Update::NONE };
        let Some(open) = self.dialog.take() else { return Update::NONE };
        let text = open.answer(trusted);
        let level = if trusted { Level::Success } else { Level::Error };
        self.notice(now, level, text);
        Update::REDRAW
    }

    fn apply(&mut self, msg: Msg, now: Now) -> Update {
        match msg {
            Msg::Key(key) if key.kind == KeyEventKind::Press => self.key(key, now),
            Msg::Key(_) => Update::NONE,
            Msg::Paste(text) => self.paste(&text, now),
            Msg::Wheel(notches) => {
                let back = isize::from(notches) * WHEEL_STEP as isize;
                Update::redraw_if(self.log.scroll_by(back))
            }
            Msg::Focus(false) => {
                self.log.mark_read();
                Update::NONE
            }
            Msg::Focus(true) => Update::NONE,
            Msg::Resize { width, height } => {
                let resized = self.size != (width, height);
                self.size = (width, height);
                // A panel asked for on a larger screen gives way to the chat.
                if resized && self.panel_place(width, height) == Place::Instead {
                    self.panel_choice = None;
                }
                if !self.panel_visible(width) && self.focus == Focus::Panel {
                    self.focus = Focus::Input;
                }
                Update::REDRAW
            }
            Msg::Tick => {
                let let_out = self.let_out_due(now);
                if self.animating() {
                    self.frame = self.frame.wrapping_add(1);
                }
                Update::redraw_if(let_out || self.animating())
            }
            Msg::Started { peer, state, server } => {
                self.peer = peer;
                self.state = state;
                match (server, &self.mode) {
                    (false, _) => self.mode = Mode::Client,
                    (true, Mode::Room { .. }) => {}
                    (true, Mode::Client) => self.mode = Mode::room(None),
                }
                let text = format!("{}: {}", self.state, self.peer);
                self.notice(now, Level::Info, text);
                Update::REDRAW
            }
            Msg::Net(event) => {
                self.step_delay.queue.push_back((Delayed::Net(event), now));
                let redraw = self.let_out_due(now);
                Update { redraw, bell: std::mem::take(&mut self.ring), ..Update::NONE }
            }
            Msg::Notice { level, text } => {
                self.notice(now, level, text);
                Update::REDRAW
            }
            Msg::Signal(name) => {
                self.notice(now, Level::Info, format!("{name}: closing"));
                self.quit()
            }
            Msg::NotSent { lines, reason } => {
                for _ in 0..lines {
                    let _ = self.log.mark_mine(|d| *d == Delivery::Pending, Delivery::Refused, false);
                }
                self.notice(now, Level::Error, reason);
                Update::REDRAW
            }
            // Taken in `update`.
            Msg::Question(_) => Update::NONE,
            Msg::Ended(error) => {
                self.step_delay.queue.push_back((Delayed::Ended(error), now));
                Update::redraw_if(self.let_out_due(now))
            }
        }
    }

    /// Applies the delayed inputs that are due; returns whether there were any.
    pub(crate) fn let_out_due(&mut self, now: Now) -> bool {
        let mut any = false;
        while let Some((delayed, arrived)) = self.step_delay.pop_due(now.instant) {
            any = true;
            match delayed {
                Delayed::Net(event) => self.net(event, arrived),
                Delayed::Ended(error) => self.ended(error, arrived),
            }
        }
        any
    }
}
