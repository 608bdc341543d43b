//! The chat protocol, sans-IO like the engine: no tokio, no clock (time is
//! passed in), no OS randomness (an [`Rng`](crate::tls::Rng) is).
//!
//! - [`message`]: the signed message, its fixed byte layout and checks;
//! - [`frame`]: the frames on ALPN `tlschat/1` and the buffer that cuts a
//!   stream into them;
//! - [`relay`]: the room: who is in, and which frames go to whom;
//! - [`member`]: a member: signs what its user writes, verifies what the
//!   relay delivers, and notices replays, gaps and changed keys.
//!
//! `docs/PROTOCOL.md` is the specification, with the threat model.

pub mod frame;
pub mod member;
pub mod message;
pub mod relay;

#[cfg(test)]
mod tests;

pub use frame::{Frame, FrameBuffer, MemberInfo, RefusalCode, Standing};
pub use member::{AuthorCheck, ChatEvent, ComposeError, Member, Received, SigCheck};
pub use message::{Kind, MAX_TEXT};
pub use relay::{Joiner, Relay, SeatId, Transport};

pub use crate::escape::printable;

/// One member as `/who` lists it: name, standing, short fingerprint, idle time.
pub fn describe_member(m: &MemberInfo) -> String {
    let name = printable(&m.name);
    let idle = match m.idle_secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    };
    match m.standing {
        Standing::Guest => format!("  {name} (unverified guest), idle {idle}"),
        standing => {
            let fp = crate::identity::public_key_fingerprint(&m.key);
            let host = if standing == Standing::Host { ", the host" } else { "" };
            format!("  {name} \u{2713} key {}{host}, idle {idle}", fp.short())
        }
    }
}
