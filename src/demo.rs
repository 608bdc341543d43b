//! `tlschat demo`'s built-in peer: a bot on the room's side that greets
//! whoever completes a handshake with the demo room and answers each line.
//!
//! The bot plays the room's user: it reads the room's [`NetEvent`]s, as the
//! room's interface would, and answers through the room's `lines` (see
//! [`Service::Room`](crate::net::Service::Room)), so every member hears it;
//! in the demo there is one member, the user's client. What it says is
//! true of the connection it is on: the negotiated algorithms, the size of
//! the record a line travelled in, the key updates it saw. No secret is
//! ever part of an answer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};

use crate::net::{Intent, NetEvent};
use crate::tls::{CipherSuite, Direction};

/// What an application-data record adds to its content: a 5-byte header,
/// the content type byte and a 16-byte AEAD tag (both suites tlschat
/// speaks have 16-byte tags; RFC 8446 §5.2).
const RECORD_OVERHEAD: usize = 5 + 1 + 16;

/// The bot's memory: the suite each member negotiated.
#[derive(Debug, Default)]
pub struct Bot {
    suites: HashMap<SocketAddr, CipherSuite>,
}

impl Bot {
    /// What the bot says in answer to `event`, one line each (maybe none).
    pub fn replies(&mut self, event: &NetEvent) -> Vec<String> {
        match event {
            NetEvent::Connected { peer, summary } => {
                self.suites.insert(*peer, summary.suite);
                vec![
                    format!(
                        "hello! I am the demo room's bot. Your client and this room just agreed on {}, {} and {}.",
                        summary.suite, summary.group, summary.signature_scheme
                    ),
                    "type anything and I answer. Try /rekey for new keys both ways, Tab then Enter on a \
                     handshake step for its bytes, /help for keys, exit to leave."
                        .to_owned(),
                ]
            }
            NetEvent::Text { peer, line } => vec![self.answer(*peer, line)],
            NetEvent::KeyUpdated { direction: Direction::Received, update_requested, generation, .. } => {
                let mine = if *update_requested { ", and I updated mine as you asked" } else { "" };
                vec![format!(
                    "your KeyUpdate arrived: I now read you with generation {generation} keys{mine}."
                )]
            }
            NetEvent::Closed { peer, .. } | NetEvent::Failed { peer, .. } => {
                self.suites.remove(peer);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn answer(&self, peer: SocketAddr, line: &str) -> String {
        let words = line.trim().to_lowercase();
        let first = words.split(|c: char| !c.is_alphanumeric()).next().unwrap_or_default();
        if ["hello", "hi", "hey", "hallo", "bonjour", "hola", "salut"].contains(&first) {
            return "hi there! 👋 every line you type goes through the record layer you just watched being keyed."
                .to_owned();
        }
        if ["bye", "goodbye", "ciao"].contains(&first) {
            return "bye! exit or /quit closes the connection with a close_notify alert.".to_owned();
        }
        let suite =
            self.suites.get(&peer).map_or_else(|| "the negotiated suite".to_owned(), ToString::to_string);
        // The line came with its newline, which the event leaves out.
        let sent = line.len() + 1;
        format!(
            "you said \"{}\": {sent} bytes, sealed with {suite} into a {}-byte record.",
            line.trim(),
            sent + RECORD_OVERHEAD
        )
    }
}

/// Runs the bot on a room's `events` until they end, answering on `lines`.
pub async fn run(mut events: mpsc::Receiver<NetEvent>, lines: broadcast::Sender<Intent>) {
    let mut bot = Bot::default();
    while let Some(event) = events.recv().await {
        for reply in bot.replies(&event) {
            // No receiver means nobody is connected: nobody to answer.
            let _ = lines.send(Intent::Send(Arc::from(format!("{reply}\n").into_bytes())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Closer;

    fn peer() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 50_000))
    }

    #[test]
    fn the_bot_answers_a_greeting_with_a_greeting_and_other_lines_with_their_record_size() {
        let mut bot = Bot::default();
        let hi = bot.replies(&NetEvent::Text { peer: peer(), line: "Hello bot".into() });
        assert_eq!(hi.len(), 1);
        assert!(hi[0].starts_with("hi there!"), "{hi:?}");
        let other = bot.replies(&NetEvent::Text { peer: peer(), line: "abc".into() });
        assert_eq!(
            other,
            ["you said \"abc\": 4 bytes, sealed with the negotiated suite into a 26-byte record."]
        );
    }

    #[test]
    fn the_bot_says_nothing_when_a_member_leaves() {
        let mut bot = Bot::default();
        assert!(bot.replies(&NetEvent::Closed { peer: peer(), by: Closer::Peer }).is_empty());
    }

    #[test]
    fn the_bot_tells_a_member_its_key_update_arrived() {
        let mut bot = Bot::default();
        let event = NetEvent::KeyUpdated {
            peer: peer(),
            direction: Direction::Received,
            update_requested: true,
            generation: 1,
        };
        assert_eq!(
            bot.replies(&event),
            [
                "your KeyUpdate arrived: I now read you with generation 1 keys, and I updated mine as you asked."
            ]
        );
        let ours = NetEvent::KeyUpdated {
            peer: peer(),
            direction: Direction::Sent,
            update_requested: false,
            generation: 1,
        };
        assert!(bot.replies(&ours).is_empty(), "its own answer is not news");
    }
}
