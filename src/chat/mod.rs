//! The chat protocol, sans-IO like the engine: no tokio, no clock (time is
//! passed in), no OS randomness (an [`Rng`](crate::tls::Rng) is).
//!
//! - [`message`]: the signed message, its fixed byte layout and checks;
//! - [`frame`]: the frames on ALPN `tlschat/1` and the buffer that cuts a
//!   stream into them;
//! - [`name`]: display names: the rules, the comparison key, look-alikes;
//! - [`relay`]: the room: who is in, and which frames go to whom;
//! - `group`: an end-to-end room's MLS group, as the relay orders it;
//! - [`member`]: a member: signs what its user writes, verifies what the
//!   relay delivers, and notices replays, gaps and changed keys;
//! - `peers`: what a relay of a room on a bus knows of the room's
//!   other relays (who is seated where), and what it trades with them;
//! - `contacts`: what a member remembers of a room across sessions,
//!   which the driver keeps in the home.
//!
//! `docs/PROTOCOL.md` is the specification, with the threat model.

mod codes;
pub(crate) mod contacts;
pub mod e2e;
pub mod frame;
pub(crate) mod group;
pub(crate) mod log;
pub mod member;
pub mod message;
pub mod name;
pub(crate) mod peers;
pub(crate) mod pieces;
pub mod relay;

#[cfg(test)]
mod bus_tests;
#[cfg(test)]
mod tests;

pub use contacts::{Contact, Contacts};
pub use frame::{Frame, FrameBuffer, FrameType, MemberInfo, RefusalCode, Standing};
pub use member::{AuthorCheck, ChatEvent, ComposeError, Member, Received, SigCheck, Stale, Verdict};
pub use message::{Kind, MAX_TEXT};
pub use relay::{Joiner, Relay, SeatId, Transport};

pub use crate::present::escape::printable;
