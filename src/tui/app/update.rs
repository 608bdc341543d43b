//! [`App::update`], the one mutator, and the step delay's release of
//! what it held back.

use super::*;

/// Entries scrolled per mouse-wheel notch.
pub(crate) const WHEEL_STEP: usize = 3;

impl App {
    /// The one mutator: applies `msg`, received at `now`.
    pub fn update(&mut self, msg: Msg, now: Now) -> Update {
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
                let revealed = self.reveal_due(now);
                if self.animating() {
                    self.frame = self.frame.wrapping_add(1);
                }
                Update::redraw_if(revealed || self.animating())
            }
            Msg::Started { peer, state, server } => {
                self.peer = peer;
                self.state = state;
                self.server = server;
                let text = format!("{}: {}", self.state, self.peer);
                self.notice(now, Level::Info, text);
                Update::REDRAW
            }
            Msg::Net(event) => {
                self.reveal.queue.push_back((Delayed::Net(event), now));
                let redraw = self.reveal_due(now);
                Update { redraw, action: None, bell: std::mem::take(&mut self.ring) }
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
            Msg::Ended(error) => {
                self.reveal.queue.push_back((Delayed::Ended(error), now));
                Update::redraw_if(self.reveal_due(now))
            }
        }
    }

    /// Applies the delayed inputs that are due; returns whether there were any.
    pub(crate) fn reveal_due(&mut self, now: Now) -> bool {
        let mut any = false;
        while let Some((delayed, arrived)) = self.reveal.pop_due(now.instant) {
            any = true;
            match delayed {
                Delayed::Net(event) => self.net(event, arrived),
                Delayed::Ended(error) => self.ended(error, arrived),
            }
        }
        any
    }
}
