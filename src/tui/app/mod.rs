//! The TUI's model and its one mutator, [`App::update`].
//!
//! Everything the screen shows lives in [`App`]: the chat log, the input
//! line with its history, the handshake panel's state and the animation
//! frame. Inputs arrive as [`Msg`]s (terminal events, the network's
//! [`NetEvent`](crate::net::NetEvent)s, ticks) together with the time they were received, and
//! `update` answers with an [`Update`]: whether the screen must be redrawn,
//! and what the network must do (the [`Intent`](crate::net::Intent)s). Drawing (in [`crate::tui::ui`])
//! only reads `&App`, and never looks at a clock: every time shown was
//! passed in here, so a test with a fixed clock gets the same screen every
//! run. With a step delay (`--step-delay`) the network's events wait in a
//! queue here and are let out, in order, by [`Msg::Tick`]s at the times
//! [`App::next_delayed`] names.
//!
//! # Layout
//!
//! - `model.rs`: [`App`], [`Focus`], [`Side`], [`Msg`], [`Update`], the clocks;
//! - `update.rs`: [`App::update`], the one mutator;
//! - `keys.rs`: key presses, pastes and submitted lines;
//! - `events.rs`: what the network reported, in words;
//! - `log.rs`: the scrollback ([`ChatLog`], [`Entry`], [`Mark`]);
//! - `input.rs`: the input line and what a typed line means (`Command`);
//! - `panel.rs`: the handshake panel's state;
//! - `delay.rs`: the step delay's queue;
//! - `dialog.rs`: the first-contact dialog (`FirstContact`);
//! - `groups.rs`: the end-to-end groups' panel (F5).

mod delay;
mod dialog;
mod events;
mod groups;
mod input;
mod keys;
mod log;
mod model;
mod panel;
mod update;

pub(crate) use dialog::FirstContact;
pub(crate) use groups::GroupShown;
pub(crate) use input::*;
pub use log::*;
pub use model::*;
pub use panel::*;
