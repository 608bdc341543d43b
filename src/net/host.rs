//! The host's seat: `tlschat listen`'s own user in its room, a seat with a
//! task of its own like any member's connection.
//!
//! The room's task queues frames for it as for any seat; this task checks
//! them with the host's [`Member`] (signatures and all) and reports what
//! they say as [`NetEvent::Chat`]. Neither task waits for the operator's
//! screen: what it is too far behind to take is counted and told (see
//! [`super::screen`]), so that the host's own lines go out whatever the
//! screen does.
//! What the host types is signed here and handed to the room as a frame
//! from [`HOST`], its signature checked here too ([`Inbound::check`]);
//! what only the room can do (`/kick`, `/ban`, `/invite`, `/rekey`) is
//! handed on as [`RoomInput::Host`].

use tokio::sync::mpsc;

use super::Intent;
use super::relay::{RoomInput, ToSeat};
use super::screen::Screen;
use crate::chat::relay::{HOST, Inbound};
use crate::chat::{ChatEvent, Frame, FrameBuffer, Kind, Member, RefusalCode};
use crate::clock::unix_now_ms;

/// What the host's seat is given.
pub(super) struct HostSeat {
    /// The host's member state; `None` in an end-to-end room, whose host
    /// runs its relay but is not in its group (not seated).
    pub(super) member: Option<Member>,
    /// What the room queues for the host's seat; `None` when not seated.
    pub(super) from_room: Option<mpsc::Receiver<ToSeat>>,
    /// What the host types.
    pub(super) intents: mpsc::Receiver<Intent>,
    /// The room's inputs. Weak: the room ends when its handles are gone,
    /// and this task with it.
    pub(super) room: mpsc::WeakSender<RoomInput>,
    /// The operator's screen, never waited for.
    pub(super) screen: Screen,
}

impl HostSeat {
    /// Runs until the room is gone, or both the room's queue for the host
    /// and the host's input have ended.
    pub(super) async fn run(mut self) {
        let mut buffer = FrameBuffer::default();
        let mut intents_open = true;
        while intents_open || self.from_room.is_some() {
            tokio::select! {
                out = next_out(&mut self.from_room) => match out {
                    Some(ToSeat::Bytes(bytes)) => {
                        buffer.push(&bytes);
                        if !self.receive(&mut buffer).await {
                            return;
                        }
                    }
                    // The host has no TLS connection to update.
                    Some(ToSeat::KeyUpdate) => {}
                    Some(ToSeat::Close) | None => self.from_room = None,
                },
                intent = self.intents.recv(), if intents_open => match intent {
                    Some(intent) => {
                        if !self.intent(intent).await {
                            return;
                        }
                    }
                    None => intents_open = false,
                },
            }
        }
    }

    /// Checks the frames the room sent: what they say is reported, and
    /// what the member answers of itself (key packages, Welcomes) goes to
    /// the room. False once the room is gone.
    async fn receive(&mut self, buffer: &mut FrameBuffer) -> bool {
        let Some(member) = self.member.as_mut() else { return true };
        let now = unix_now_ms();
        let mut said = Vec::new();
        loop {
            match buffer.next_frame() {
                Ok(Some(frame)) => {
                    if let Ok(more) = member.receive(frame, now) {
                        said.extend(more);
                    }
                }
                Ok(None) => break,
                // The room's own frames: never malformed; if ever, what
                // is left is not read as more frames.
                Err(_) => {
                    *buffer = FrameBuffer::default();
                    break;
                }
            }
        }
        let frames = member.take_outgoing();
        self.report(said);
        self.to_room(frames).await
    }

    /// Does what the host typed. False once the room is gone.
    async fn intent(&mut self, intent: Intent) -> bool {
        match intent {
            Intent::Say { kind, text, to } => self.say(kind, &text, to.as_deref()).await,
            // A raw line (a script's stdin) is said as text.
            Intent::Send(bytes) => {
                let text = String::from_utf8_lossy(&bytes).trim_end_matches(['\r', '\n']).to_owned();
                self.say(Kind::Text, &text, None).await
            }
            Intent::Who => self.to_room(vec![Frame::Who]).await,
            Intent::Ignore { .. } | Intent::Verify { .. } => {
                if let Some(event) = self.member.as_mut().and_then(|m| super::member_command(m, &intent)) {
                    self.report(vec![event]);
                }
                true
            }
            Intent::Remove { .. } | Intent::Invite { .. } | Intent::KeyUpdate { .. } => {
                self.input(RoomInput::Host(intent)).await
            }
            // The room closes through its shutdown signal, not the host's
            // seat; the tamper lab is for clients.
            Intent::Close | Intent::TrustServer | Intent::Tamper(_) => true,
        }
    }

    /// Signs what the host says and posts it like any member's message.
    async fn say(&mut self, kind: Kind, text: &str, to: Option<&str>) -> bool {
        let Some(member) = self.member.as_mut() else {
            let text = "not sent: this room is end to end and its relay's host is not in its group; \
                        to chat in it, join it with `tlschat connect` like any member"
                .to_owned();
            self.report(vec![ChatEvent::Refused { code: RefusalCode::BadMessage, text }]);
            return true;
        };
        // A private line goes end to end, or waits for its group.
        let (said, frames) = match member.say(kind, text, to, unix_now_ms()) {
            Ok(said) => (said, member.take_outgoing()),
            Err(e) => (
                vec![ChatEvent::Refused { code: RefusalCode::BadMessage, text: format!("not sent: {e}") }],
                Vec::new(),
            ),
        };
        // To the room first: the host's words do not wait for its screen.
        let sent = self.to_room(frames).await;
        self.report(said);
        sent
    }

    /// The host's frames, each checked here (a post's signature) and
    /// handed to the room in order.
    async fn to_room(&self, frames: Vec<Frame>) -> bool {
        for frame in frames {
            let input = RoomInput::Frame { id: HOST, frame: Inbound::check(frame) };
            if !self.input(input).await {
                return false;
            }
        }
        true
    }

    async fn input(&self, input: RoomInput) -> bool {
        match self.room.upgrade() {
            Some(room) => room.send(input).await.is_ok(),
            None => false,
        }
    }

    /// What the host's member says, on the operator's screen.
    fn report(&mut self, said: Vec<ChatEvent>) {
        for event in said {
            self.screen.host(event);
        }
    }
}

/// The room's next order for the host's seat; never, when not seated.
/// Cancel-safe.
async fn next_out(rx: &mut Option<mpsc::Receiver<ToSeat>>) -> Option<ToSeat> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
