//! Writes the seed corpora, `fuzz/corpus/<target>/`, from real sessions:
//! seeded engine pairs (with and without a client certificate, and one
//! through a HelloRetryRequest), the RFC 8448 §3 messages and records that
//! `src/tls/test_vectors.rs` holds, and the frames of a relay and members
//! chatting. The same fixtures as the targets (`src/lib.rs`), so recorded
//! flights still decrypt when a target replays them. Deterministic: running
//! it again writes the same files.
//!
//! `cargo run --release --no-default-features --features seeds --bin seeds`
//! (from `fuzz/`, with no RUSTFLAGS of the fuzz build).

use std::collections::HashMap;
use std::path::PathBuf;

use tlschat::chat::{Frame, FrameBuffer, Joiner, Kind, Member, Relay, SeatId, Transport, relay};
use tlschat::tls::internal::messages::Certificate;
use tlschat::tls::{Connection, Ed25519Key, Event, SeededRng, ServerName, Step};
use tlschat_fuzz::{
    NOW, ROOM, SEED, client, client_config, client_hello, drain, join_chain, member, pki,
    plaintext_handshake_records, server,
};

/// Where the corpora go: `fuzz/corpus`.
struct Corpus {
    root: PathBuf,
    written: usize,
}

impl Corpus {
    fn add(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        std::fs::write(dir.join(name), bytes).expect("seed file");
        self.written += 1;
    }
}

/// Everything one seeded session said, flight by flight.
#[derive(Default)]
struct Session {
    to_server: Vec<Vec<u8>>,
    to_client: Vec<Vec<u8>>,
    /// Every handshake message in the clear, as the client's steps show it
    /// (its own and the server's): (sent by the client, encrypted, bytes).
    messages: Vec<(bool, bool, Vec<u8>)>,
}

impl Session {
    /// Moves flights both ways until neither side has anything to say.
    fn pump(&mut self, client: &mut Connection, server: &mut Connection) {
        for _ in 0..100 {
            let mut moved = false;
            let mut flight = Vec::new();
            if client.poll_transmit(&mut flight) {
                moved = true;
                server.handle_input(&flight, NOW).expect("the server accepts the client's flight");
                self.to_server.push(flight);
            }
            let mut flight = Vec::new();
            if server.poll_transmit(&mut flight) {
                moved = true;
                client.handle_input(&flight, NOW).expect("the client accepts the server's flight");
                self.to_client.push(flight);
            }
            while let Some(event) = client.poll_event() {
                if let Event::Handshake(step) = event
                    && let Step::Message { direction, bytes, encrypted, .. } = step.step
                {
                    let sent = direction == tlschat::tls::Direction::Sent;
                    self.messages.push((sent, encrypted, bytes));
                }
            }
            while server.poll_event().is_some() {}
            while client.recv_application_data().is_some() {}
            while server.recv_application_data().is_some() {}
            if !moved {
                return;
            }
        }
        panic!("the session did not settle");
    }

    /// A handshake, data both ways, a KeyUpdate asking for one back, and
    /// data with close_notify in one flight.
    fn run(mut client: Connection) -> Self {
        let mut server = server();
        let mut s = Self::default();
        s.pump(&mut client, &mut server);
        assert!(!client.is_handshaking() && !server.is_handshaking(), "the session connected");
        client.send(b"hello from the client\n").unwrap();
        server.send(b"welcome\n").unwrap();
        s.pump(&mut client, &mut server);
        client.key_update(true).unwrap();
        s.pump(&mut client, &mut server);
        server.send(b"after the update\n").unwrap();
        s.pump(&mut client, &mut server);
        client.send(b"bye\n").unwrap();
        client.close();
        s.pump(&mut client, &mut server);
        assert!(client.is_closed() && server.is_closed(), "the session closed");
        s
    }
}

/// Each prefix of `flights`, concatenated: what a target fed all at once
/// sees when the session stopped after that flight.
fn prefixes(flights: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = Vec::new();
    for f in flights {
        acc.extend_from_slice(f);
        out.push(acc.clone());
    }
    out
}

fn sessions(corpus: &mut Corpus) {
    for (label, with_cert) in [("anonymous", false), ("client-cert", true)] {
        let s = Session::run(client(with_cert));
        assert_eq!(s.to_server[0], client_hello(), "the fixture ClientHello is the session's");
        for (i, bytes) in prefixes(&s.to_server).iter().enumerate() {
            corpus.add("server_records", &format!("{label}-through-flight-{i}"), bytes);
        }
        for (i, bytes) in prefixes(&s.to_server[1..]).iter().enumerate() {
            corpus.add("server_after_hello", &format!("{label}-through-flight-{}", i + 1), bytes);
        }
        // handshake_client's client always has a certificate to offer; the
        // server's flights are the same bytes either way.
        for (i, bytes) in prefixes(&s.to_client).iter().enumerate() {
            corpus.add("handshake_client", &format!("{label}-through-flight-{i}"), bytes);
        }
        // The targets' fixtures replay the whole session: the flights decrypt.
        let mut replay = server();
        replay.handle_input(client_hello(), NOW).unwrap();
        replay.handle_input(&s.to_server[1..].concat(), NOW).expect("the server replays the client");
        assert!(!replay.is_handshaking() && replay.is_closed(), "the replayed server saw it all");
        let mut replay = client(true);
        drain(&mut replay);
        replay.handle_input(&s.to_client.concat(), NOW).expect("the client replays the server");
        assert!(!replay.is_handshaking() && replay.is_closed(), "the replayed client saw it all");
        for (i, (sent, encrypted, bytes)) in s.messages.iter().enumerate() {
            corpus.add("messages", &format!("{label}-{i}"), bytes);
            if *sent && !encrypted {
                corpus.add("handshake_server", &format!("{label}-{i}"), bytes);
            }
        }
    }

    // A client with no key share in its first hello: the server asks again.
    let mut config = (*client_config(false)).clone();
    config.key_share_in_first_hello = false;
    let hrr = Connection::client(
        std::sync::Arc::new(config),
        ServerName::parse("localhost").unwrap(),
        Box::new(SeededRng::new_for_testing_only(SEED)),
    )
    .unwrap();
    let s = Session::run(hrr);
    for (i, bytes) in prefixes(&s.to_server).iter().enumerate() {
        corpus.add("server_records", &format!("retry-through-flight-{i}"), bytes);
    }
    let hellos: Vec<Vec<u8>> = s.messages.iter().filter(|m| m.0 && !m.1).map(|m| m.2.clone()).collect();
    for (i, bytes) in s.messages.iter().map(|m| &m.2).enumerate() {
        corpus.add("messages", &format!("retry-{i}"), bytes);
    }
    for (i, hello) in hellos.iter().enumerate() {
        corpus.add("handshake_server", &format!("retry-hello-{i}"), hello);
    }
    corpus.add("handshake_server", "retry-both-hellos", &hellos.concat());

    let pki = pki();
    corpus.add("cert", "server-chain", &join_chain(&pki.server.chain));
    corpus.add("cert", "client-chain", &join_chain(&pki.client.chain));
    corpus.add("cert", "server-leaf", &join_chain(&pki.server.chain[..1]));
    corpus.add("cert", "client-leaf", &join_chain(&pki.client.chain[..1]));
    corpus.add("cert", "ca", &join_chain(std::slice::from_ref(&pki.ca_der)));
}

/// The RFC 8448 §3 trace, read from the engine's known-answer tests.
fn rfc8448(corpus: &mut Corpus) {
    const VECTORS: &str = include_str!("../../../src/tls/test_vectors.rs");
    let hex = |name: &str| -> Vec<u8> {
        let key = format!("const {name}: &str = \"");
        let start = VECTORS.find(&key).unwrap_or_else(|| panic!("no {name} in test_vectors.rs")) + key.len();
        let end = start + VECTORS[start..].find('"').unwrap();
        let digits: Vec<u8> = VECTORS[start..end].bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    };
    let client_hello = hex("CLIENT_HELLO");
    corpus.add("handshake_server", "rfc8448-client-hello", &client_hello);
    let hello_record = plaintext_handshake_records(&client_hello);
    let client_rest =
        [hex("CLIENT_FINISHED_RECORD"), hex("CLIENT_APPLICATION_RECORD"), hex("CLIENT_ALERT_RECORD")]
            .concat();
    corpus.add("server_records", "rfc8448-client-hello", &hello_record);
    corpus.add("server_records", "rfc8448-client", &[hello_record, client_rest.clone()].concat());
    corpus.add("server_after_hello", "rfc8448-client", &client_rest);

    let server_flight =
        [plaintext_handshake_records(&hex("SERVER_HELLO")), hex("SERVER_FLIGHT_RECORD")].concat();
    corpus.add("handshake_client", "rfc8448-server-flight", &server_flight);
    let server_rest =
        [hex("NEW_SESSION_TICKET_RECORD"), hex("SERVER_APPLICATION_RECORD"), hex("SERVER_ALERT_RECORD")];
    corpus.add("handshake_client", "rfc8448-server", &[server_flight, server_rest.concat()].concat());

    for name in [
        "CLIENT_HELLO",
        "SERVER_HELLO",
        "ENCRYPTED_EXTENSIONS",
        "CERTIFICATE",
        "CERTIFICATE_VERIFY",
        "SERVER_FINISHED",
        "CLIENT_FINISHED",
        "NEW_SESSION_TICKET",
    ] {
        corpus.add(
            "messages",
            &format!("rfc8448-{}", name.to_ascii_lowercase().replace('_', "-")),
            &hex(name),
        );
    }
    // The trace's RSA certificate: tlschat refuses its key, after parsing it.
    let certificate = Certificate::decode(&hex("CERTIFICATE")[4..]).expect("RFC 8448's Certificate decodes");
    corpus.add("cert", "rfc8448-rsa-leaf", &join_chain(&certificate.chain));
}

/// A room with two members and a guest: the frames the relay sends to
/// alice (the member the target plays) and what the members post.
fn chat(corpus: &mut Corpus) {
    let now = 1_000_000;
    let mut relay = Relay::new(relay::Config::new(ROOM));
    let bob_key = Ed25519Key::generate(&mut SeededRng::new_for_testing_only(SEED + 5));
    let mut members: HashMap<SeatId, Member> = HashMap::new();
    members.insert(1, member());
    members.insert(2, Member::new(ROOM, bob_key, &mut SeededRng::new_for_testing_only(SEED + 6)));
    let mut received: HashMap<SeatId, Vec<Vec<u8>>> = HashMap::new();
    let mut posted: Vec<Frame> = Vec::new();

    let mut apply = |outputs: Vec<relay::Decision>, members: &mut HashMap<SeatId, Member>| {
        for output in outputs {
            let relay::Decision::Send(id, bytes) = output else { continue };
            received.entry(id).or_default().push(bytes.to_vec());
            if let Some(member) = members.get_mut(&id) {
                let mut buffer = FrameBuffer::default();
                buffer.push(&bytes);
                while let Some(frame) = buffer.next_frame().expect("the relay's frames decode") {
                    member.receive(frame, 0).expect("a member accepts the relay's frames");
                }
            }
        }
    };

    for (id, name) in [(1, "alice"), (2, "bob")] {
        let key = members[&id].public_key();
        let out =
            relay.join(id, Joiner::Verified { name: name.into(), key }, Transport::Frames, now).unwrap();
        apply(out, &mut members);
    }
    apply(relay.join(3, Joiner::Guest, Transport::Lines, now).unwrap(), &mut members);

    let mut say = |id: SeatId, text: &str, to: Option<&str>, members: &mut HashMap<SeatId, Member>| {
        let (frame, _) = members.get_mut(&id).unwrap().compose(Kind::Text, text, to, now).unwrap();
        posted.push(frame.clone());
        let out = relay.frame(id, frame.into(), now);
        apply(out, members);
    };
    say(2, "hello, room", None, &mut members);
    say(1, "hi bob \u{1f44b}", None, &mut members);
    say(2, "just for you", Some("alice"), &mut members);
    let out = relay.guest_line(3, "a guest says hi", now);
    apply(out, &mut members);
    posted.push(Frame::Who);
    let out = relay.frame(1, Frame::Who.into(), now);
    apply(out, &mut members);
    let out = relay.leave(2, "bye", now);
    apply(out, &mut members);

    let to_alice = &received[&1];
    corpus.add("chat_frames", "to-alice-all", &to_alice.concat());
    for (i, bytes) in to_alice.iter().enumerate() {
        corpus.add("chat_frames", &format!("to-alice-{i}"), bytes);
    }
    corpus.add("chat_frames", "to-bob-all", &received[&2].concat());
    for (i, frame) in posted.iter().enumerate() {
        corpus.add("chat_frames", &format!("posted-{i}"), &frame.encode().unwrap());
        if let Frame::Post { signed } = frame {
            corpus.add("chat_frames", &format!("signed-{i}"), signed);
        }
    }
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut corpus = Corpus { root, written: 0 };
    sessions(&mut corpus);
    rfc8448(&mut corpus);
    chat(&mut corpus);
    names(&mut corpus);
    println!("wrote {} seeds under {}", corpus.written, corpus.root.display());
}

/// Names and text in several scripts, look-alikes, invisible characters,
/// emoji sequences and a pile of marks, for the `names` target.
fn names(corpus: &mut Corpus) {
    let seeds = [
        "alice",
        "Jos\u{e9}",
        "Jose\u{301}",
        "\u{ff2a}\u{ff4f}\u{ff53}\u{e9}",
        "\u{410}\u{43b}\u{438}\u{441}\u{430}",
        "\u{430}lice",
        "\u{412}\u{41e}\u{412}",
        "\u{3a3}\u{3bf}\u{3c6}\u{3af}\u{3b1}",
        "\u{674e}\u{96f7}",
        "\u{3055}\u{304f}\u{3089}Sakura",
        "\u{645}\u{62d}\u{645}\u{62f}",
        "al\u{200b}ice \u{202e}x\u{e0041}\u{ad}\u{2028}\u{3164}\u{fe00}",
        "\u{1f469}\u{1f3fd}\u{200d}\u{1f4bb} \u{2764}\u{fe0f} \u{1f3f4}\u{e0067}\u{e007f}",
        "z\u{301}\u{302}\u{303}\u{304}\u{306}\u{308}\u{30a}",
        "  a  b\u{3000}",
    ];
    for (i, seed) in seeds.iter().enumerate() {
        corpus.add("names", &format!("name-{i}"), seed.as_bytes());
    }
}
