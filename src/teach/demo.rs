//! `tlschat demo`'s room: two bots, alice and bob, each a real member with
//! an Ed25519 identity key of its own, connected over tlschat's TLS 1.3
//! with mutual authentication like any `tlschat connect`. They greet the
//! user, answer, and explain what happened to a line on its way; since
//! everything they say is signed, the first thing a new user sees is names
//! with ✓ marks that the user's own client checked.
//!
//! [`Bot`] is the bots' logic, sans-IO: chat events in, things to say out.
//! [`spawn`] connects one to a room. What the bots say is true of the
//! message it answers (its sizes, its sequence number, its check); no
//! secret is ever part of an answer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::chat::frame::HEADER;
use crate::chat::{ChatEvent, Kind, SigCheck, Standing};
use crate::net::{self, Intent, NetEvent};
use crate::tls::{ClientConfig, Ed25519Key, OsRng, ServerName};

/// The bots' names: they never answer each other, except where a bot's
/// line is written to be answered.
pub(crate) const BOTS: [&str; 2] = ["alice", "bob"];

/// What an application-data record adds to its content: a 5-byte header,
/// the content type byte and a 16-byte AEAD tag (both suites tlschat
/// speaks have 16-byte tags; RFC 8446 §5.2).
const RECORD_OVERHEAD: usize = 5 + 1 + 16;

/// How long a bot waits before it answers: people read at this pace.
const THINK: Duration = Duration::from_millis(400);

/// The bot the tamper lab's lying relay alters a line of (`/tamper sig`).
pub(crate) const LIED_ABOUT: Persona = Persona::Bob;

/// Which bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Persona {
    /// Greets people and explains signatures.
    Alice,
    /// Explains what a line became on the wire.
    Bob,
}

/// A bot's memory: its persona and its name in the room.
#[derive(Debug)]
pub(crate) struct Bot {
    persona: Persona,
    /// Members welcomed already, by name and key (guests have none): one who comes back (the tamper
    /// lab reconnects after each case) is not welcomed again, so the
    /// lab's verdict stays on screen.
    welcomed: std::collections::HashSet<(String, [u8; 32])>,
}

/// One thing a bot says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Say {
    /// Text or action; private when `to` is set.
    pub(crate) kind: Kind,
    /// What.
    pub(crate) text: String,
    /// To whom, privately.
    pub(crate) to: Option<String>,
}

fn say(text: String) -> Say {
    Say { kind: Kind::Text, text, to: None }
}

impl Persona {
    /// Every bot, in the order they join.
    pub(crate) const ALL: [Self; 2] = [Self::Alice, Self::Bob];

    /// The bot's name in the room.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Alice => BOTS[0],
            Self::Bob => BOTS[1],
        }
    }

    /// What the bot says when the tamper lab tells it to (`/tamper sig`).
    pub(crate) fn lab_line(self) -> &'static str {
        match self {
            Self::Alice => "meet me at noon by the fountain (signed by alice)",
            Self::Bob => "meet me at noon by the fountain (signed by bob)",
        }
    }
}

impl Bot {
    /// A bot.
    pub(crate) fn new(persona: Persona) -> Self {
        Self { persona, welcomed: std::collections::HashSet::new() }
    }

    /// Its name.
    pub(crate) fn name(&self) -> &'static str {
        self.persona.name()
    }

    /// What the bot says in answer to `event` (maybe nothing).
    pub(crate) fn replies(&mut self, event: &ChatEvent) -> Vec<Say> {
        match (self.persona, event) {
            (Persona::Alice, ChatEvent::Presence { joined: true, member, .. })
                if !is_bot(&member.name) && self.welcomed.insert((member.name.clone(), member.key)) =>
            {
                let how = match member.standing {
                    Standing::Guest => {
                        "You joined as a guest, so your lines are unsigned; `tlschat connect` gives you a key."
                    }
                    _ => "Your key was proved in the TLS handshake, and your lines are signed with it.",
                };
                vec![say(format!(
                    "welcome, {}! I am alice, a bot with an Ed25519 key of my own. Every message here is signed by its author: \
                     the \u{2713} beside my name means your own client checked my signature, not that the server vouched for me. {how}",
                    member.name
                ))]
            }
            (Persona::Bob, ChatEvent::Message(m)) if m.from == BOTS[0] && m.text.starts_with("welcome, ") => {
                let name = m.text["welcome, ".len()..].split('!').next().unwrap_or("friend").to_owned();
                vec![say(format!(
                    "hi {name}, bob here (a bot too). alice, I will tell them about records. {name}: type anything and I \
                     show what your line became on the wire. Try /who, /me waves, /msg bob hello, /rekey, or Tab then \
                     Enter on a handshake step."
                ))]
            }
            (_, ChatEvent::Message(m)) if !is_bot(&m.from) && m.sig == SigCheck::Valid => self.answer(m),
            (Persona::Alice, ChatEvent::Message(m)) if !is_bot(&m.from) => vec![say(format!(
                "{}: that last message did NOT verify ({}). A relay or someone between us changed it; your client marks it too.",
                m.from,
                m.sig.as_str()
            ))],
            _ => Vec::new(),
        }
    }

    fn answer(&self, m: &crate::chat::Received) -> Vec<Say> {
        let words = m.text.trim().to_lowercase();
        let first = words.split(|c: char| !c.is_alphanumeric()).next().unwrap_or_default();
        let greeting = ["hello", "hi", "hey", "hallo", "bonjour", "hola", "salut"].contains(&first);
        match self.persona {
            Persona::Alice if m.private => vec![Say {
                kind: Kind::Private,
                text:
                    "just between us (and the relay, which can read this but not change it: any change would \
                       break your signature)."
                        .into(),
                to: Some(m.from.clone()),
            }],
            Persona::Alice if m.kind == Kind::Action => {
                vec![Say { kind: Kind::Action, text: format!("waves back at {}", m.from), to: None }]
            }
            Persona::Alice if greeting => vec![say(format!("hi {}! \u{1f44b}", m.from))],
            Persona::Alice if ["bye", "goodbye", "ciao"].contains(&first) => {
                vec![say("bye! /quit closes the connection with a close_notify alert.".into())]
            }
            Persona::Alice => Vec::new(),
            Persona::Bob if m.private => vec![Say {
                kind: Kind::Private,
                text: format!(
                    "only you and I see this: message #{} of your private channel to me, signed like any other.",
                    m.seq
                ),
                to: Some(m.from.clone()),
            }],
            Persona::Bob if m.kind == Kind::Action || greeting => Vec::new(),
            Persona::Bob => {
                let signed = m.signed.len();
                let frame = HEADER + signed;
                vec![say(format!(
                    "{}: your {} bytes of text went out as signed message #{} ({signed} bytes with its 64-byte signature), \
                     in a {frame}-byte Post frame, sealed into a {}-byte TLS record. I checked the signature over the \
                     bytes I received: valid.",
                    m.from,
                    m.text.len(),
                    m.seq,
                    frame + RECORD_OVERHEAD
                ))]
            }
        }
    }
}

fn is_bot(name: &str) -> bool {
    BOTS.contains(&name)
}

/// Connects a bot to the room at `host:port` with a new identity key, and
/// runs it until the room closes. `ready` is told once it is in the room.
/// Returns the bot's own intents, for the tamper lab to make it speak.
pub(crate) fn spawn(
    persona: Persona,
    host: String,
    port: u16,
    server_name: ServerName,
    mut config: ClientConfig,
    ready: oneshot::Sender<()>,
) -> Result<mpsc::Sender<Intent>, crate::store::pki::PkiError> {
    let mut bot = Bot::new(persona);
    let now = crate::clock::unix_now();
    let cert =
        crate::store::pki::self_signed_client(Ed25519Key::generate(&mut OsRng), bot.name(), &mut OsRng, now)?;
    config.client_cert = Some(cert.into());
    let (intents, intent_rx) = mpsc::channel(16);
    let lab = intents.clone();
    let (events_tx, mut events) = mpsc::channel(64);
    tokio::spawn(async move {
        let timeout = Duration::from_secs(10);
        let dial = net::Dial::new(host, port, server_name, Arc::new(config), timeout);
        let _ = net::connect(dial, intent_rx, events_tx, None).await;
    });
    tokio::spawn(async move {
        let mut ready = Some(ready);
        while let Some(event) = events.recv().await {
            let NetEvent::Chat { event, .. } = event else { continue };
            if let ChatEvent::Welcome { .. } = event
                && let Some(ready) = ready.take()
            {
                let _ = ready.send(());
            }
            for Say { kind, text, to } in bot.replies(&event) {
                tokio::time::sleep(THINK).await;
                if intents.send(Intent::Say { kind, text, to }).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(lab)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{AuthorCheck, MemberInfo, Received};
    use crate::tls::Fingerprint;

    fn message(from: &str, text: &str, kind: Kind, private: bool) -> ChatEvent {
        ChatEvent::Message(Box::new(Received {
            room_seq: 5,
            history: false,
            private,
            from: from.into(),
            key: Fingerprint([1; 32]),
            kind,
            text: text.into(),
            time_ms: 0,
            seq: 3,
            sig: SigCheck::Valid,
            author: AuthorCheck::Known,
            missing_before: 0,
            chain_broken: false,
            late: false,
            stale: None,
            mislabeled: false,
            signed: Arc::from(vec![0u8; 200]),
            e2e: false,
            sealed: None,
        }))
    }

    #[test]
    fn alice_welcomes_newcomers_and_bob_follows_her_welcome() {
        let join = ChatEvent::Presence {
            joined: true,
            member: MemberInfo {
                name: "carol".into(),
                standing: Standing::Verified,
                key: [2; 32],
                idle_secs: 0,
            },
            reason: String::new(),
        };
        let mut alice = Bot::new(Persona::Alice);
        let mut bob = Bot::new(Persona::Bob);
        let welcome = alice.replies(&join);
        assert_eq!(welcome.len(), 1);
        assert!(welcome[0].text.starts_with("welcome, carol!"), "{welcome:?}");
        assert!(bob.replies(&join).is_empty());
        let follow = bob.replies(&message("alice", &welcome[0].text, Kind::Text, false));
        assert!(follow[0].text.starts_with("hi carol, bob here"), "{follow:?}");
        // Back after a lab case: not welcomed again.
        assert!(alice.replies(&join).is_empty());
    }

    #[test]
    fn bob_tells_the_sizes_of_a_line_and_bots_never_answer_each_other_otherwise() {
        let mut bob = Bot::new(Persona::Bob);
        let said = bob.replies(&message("carol", "abc", Kind::Text, false));
        assert_eq!(said.len(), 1);
        assert!(
            said[0].text.contains("3 bytes of text") && said[0].text.contains("signed message #3"),
            "{said:?}"
        );
        assert!(said[0].text.contains("204-byte Post frame") && said[0].text.contains("226-byte TLS record"));
        assert!(bob.replies(&message("alice", "abc", Kind::Text, false)).is_empty());
        let mut alice = Bot::new(Persona::Alice);
        assert!(alice.replies(&message("bob", "hello", Kind::Text, false)).is_empty());
    }

    #[test]
    fn private_messages_are_answered_privately() {
        let mut bob = Bot::new(Persona::Bob);
        let said = bob.replies(&message("carol", "psst", Kind::Private, true));
        assert_eq!(said[0].to.as_deref(), Some("carol"));
        assert_eq!(said[0].kind, Kind::Private);
    }
}
