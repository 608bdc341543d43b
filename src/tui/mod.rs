//! The full-screen interface (ratatui), in three parts:
//!
//! - [`app`]: the model, and its one mutator, [`App::update`](app::App::update);
//! - [`ui`]: the view, pure functions of `&App` onto a buffer;
//! - `terminal`: the terminal's setup and restore, and the event loop that
//!   feeds the model and draws the view ([`run`], [`run_client`],
//!   [`run_room`]).

pub mod app;
mod terminal;
pub mod ui;

pub use terminal::{
    FRAME, Link, Pace, Pacer, Prefs, TICK, Terminal, message, run, run_client, run_room, wanted,
};
