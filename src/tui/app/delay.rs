//! `--step-delay`: the network's events held back and let out one
//! handshake message at a time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::model::Now;
use crate::net::NetEvent;
use crate::tls::{self, HandshakeStep};

/// What waits behind the step delay: the network's events, and the end of
/// the connection, which must not overtake them.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "nearly every entry is a NetEvent: boxing would allocate for each"
)]
pub(crate) enum Delayed {
    Net(NetEvent),
    Ended(Option<String>),
}

/// `--step-delay`: the network's events are queued and handed to the app
/// in order, one handshake message every `delay` (the checks and secrets
/// of a message, and whatever is not a message, follow at once). Only the
/// showing is slowed: the engine ran at full speed, and each event keeps
/// the time it arrived, which is the time the panel shows.
#[derive(Debug, Default)]
pub(crate) struct StepDelay {
    pub(crate) delay: Duration,
    pub(crate) queue: VecDeque<(Delayed, Now)>,
    /// When the next message may be shown.
    pub(crate) next: Option<Instant>,
}

impl StepDelay {
    /// The next event that is due at `now`, and when it arrived.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Delayed, Now)> {
        let is_message = matches!(
            self.queue.front()?,
            (
                Delayed::Net(NetEvent::Step {
                    step: HandshakeStep { step: tls::Step::Message { .. }, .. },
                    ..
                }),
                _
            )
        );
        if is_message {
            if self.next.is_some_and(|next| now < next) {
                return None;
            }
            self.next = Some(now + self.delay);
        }
        self.queue.pop_front()
    }

    /// When the message at the front of the queue is due, if one waits.
    pub(crate) fn due(&self) -> Option<Instant> {
        self.next.filter(|_| !self.queue.is_empty())
    }
}
