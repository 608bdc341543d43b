//! net's client and room in one process on loopback: closing mid-handshake,
//! the `--step` gate, lines queued during the handshake, KeyUpdate from
//! either side. Certificates are made for the real clock (net checks
//! validity against it); every wait has a deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::io::{Read, Write};

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use tlschat::chat::{ChatEvent, relay};
use tlschat::clock::unix_now;
use tlschat::net::{self, Closer, Intent, NetError, NetEvent, Server, Service, StepGate};
use tlschat::store::pki;
use tlschat::teach::pcap::Capture;
use tlschat::tls::{
    self, CertifiedKey, ClientConfig, Connection, Direction, RootStore, ServerConfig, ServerName,
    ServerTrust, Step,
};

/// How long anything expected may take.
const WAIT: Duration = Duration::from_secs(10);

/// How long a test watches for something that must not happen.
const QUIET: Duration = Duration::from_millis(300);

/// A room served by net's `Server` on an ephemeral loopback port.
struct Room {
    addr: SocketAddr,
    events: mpsc::Receiver<NetEvent>,
    /// The host's seat: what it says goes to every member.
    host: mpsc::Sender<Intent>,
    roots: RootStore,
    _shutdown: watch::Sender<bool>,
}

async fn room() -> Room {
    room_with(net::Limits::default()).await
}

/// The test room's server: its roots for clients, its key's fingerprint,
/// its configuration (members prove a key; clients without one are
/// guests) and a loopback listener.
async fn room_server() -> (RootStore, [u8; 32], ServerConfig, TcpListener) {
    let (ca, server) = pki::test_room_for_testing_only(7, unix_now() - 60).unwrap();
    let mut roots = RootStore::new();
    roots.add_der(&ca.cert_der).unwrap();
    let mut config =
        ServerConfig::new(CertifiedKey { chain: server.chain_der.clone(), key: server.key.clone() });
    config.alpn = vec![tls::ALPN_TLSCHAT.to_vec()];
    config.client_auth = tls::ClientAuth::Optional(tls::ClientTrust::AnyKey);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    (roots, server.fingerprint().0, config, listener)
}

async fn room_with(limits: net::Limits) -> Room {
    let (roots, room_key, config, listener) = room_server().await;
    let addr = listener.local_addr().unwrap();
    let (events_tx, events) = mpsc::channel(256);
    let (shutdown_tx, shutdown) = watch::channel(false);
    let (host, intents) = mpsc::channel(16);
    let key = tls::Ed25519Key::generate(&mut tls::SeededRng::new_for_testing_only(8));
    let seat = net::Host { name: "host".into(), key, intents };
    let room = net::start_room(relay::Config::new(room_key), Some(seat), None, addr, events_tx.clone());
    let server = Server {
        listener,
        config: Arc::new(config),
        service: Service::Room { room, about: "test room".into() },
        handshake_timeout: Duration::from_secs(30),
        events: events_tx,
        shutdown,
        limits,
        next_config: None,
        capture: None,
    };
    tokio::spawn(server.run());
    Room { addr, events, host, roots, _shutdown: shutdown_tx }
}

/// A client of `addr` trusting `roots`, on a task of its own.
struct Client {
    intents: mpsc::Sender<Intent>,
    events: mpsc::Receiver<NetEvent>,
    done: JoinHandle<Result<(), NetError>>,
}

fn client(addr: SocketAddr, roots: RootStore, step: Option<StepGate>) -> Client {
    let mut config = ClientConfig::new(ServerTrust::Roots(roots));
    config.alpn = vec![tls::ALPN_TLSCHAT.to_vec()];
    connect_with(addr, config, step)
}

/// A member of the room: a client with an identity certificate named `name`.
fn member(addr: SocketAddr, roots: RootStore, name: &str, seed: u64) -> Client {
    connect_with(addr, member_config(roots, name, seed), None)
}

fn member_config(roots: RootStore, name: &str, seed: u64) -> ClientConfig {
    let mut rng = tls::SeededRng::new_for_testing_only(seed);
    let cert = pki::self_signed_client(tls::Ed25519Key::generate(&mut rng), name, &mut rng, unix_now() - 60)
        .unwrap();
    let mut config = ClientConfig::new(ServerTrust::Roots(roots));
    config.alpn = vec![tls::ALPN_TLSCHAT.to_vec()];
    config.client_cert = Some(CertifiedKey { chain: cert.chain_der, key: cert.key });
    config
}

fn connect_with(addr: SocketAddr, config: ClientConfig, step: Option<StepGate>) -> Client {
    let (intents, intent_rx) = mpsc::channel(16);
    let (events_tx, events) = mpsc::channel(256);
    let name = ServerName::parse("localhost").unwrap();
    let done = tokio::spawn(async move {
        let dial = net::Dial::new("127.0.0.1", addr.port(), name, Arc::new(config), Duration::from_secs(30));
        net::connect(dial, intent_rx, events_tx, step).await
    });
    Client { intents, events, done }
}

/// Waits for an event matching `pred`, skipping others; fails after [`WAIT`]
/// with what came instead.
async fn expect(
    events: &mut mpsc::Receiver<NetEvent>,
    what: &str,
    pred: impl Fn(&NetEvent) -> bool,
) -> NetEvent {
    let mut seen = Vec::new();
    let found = timeout(WAIT, async {
        while let Some(event) = events.recv().await {
            if pred(&event) {
                return Some(event);
            }
            seen.push(format!("{event:?}"));
        }
        None
    })
    .await;
    match found {
        Ok(Some(event)) => event,
        Ok(None) => panic!("the events ended before {what}; saw:\n{}", seen.join("\n")),
        Err(_) => panic!("timed out waiting for {what}; saw:\n{}", seen.join("\n")),
    }
}

/// Every event that arrives within [`QUIET`].
async fn quiet_period(events: &mut mpsc::Receiver<NetEvent>) -> Vec<NetEvent> {
    let mut seen = Vec::new();
    let _ = timeout(QUIET, async {
        while let Some(event) = events.recv().await {
            seen.push(event);
        }
    })
    .await;
    seen
}

/// Whether the room's host heard a guest say `text`.
fn guest_said(event: &NetEvent, text: &str) -> bool {
    matches!(event, NetEvent::Chat { event: ChatEvent::Guest { text: t, .. }, .. } if t == text)
}

fn is_message(event: &NetEvent, direction: Direction, name: &str) -> bool {
    matches!(event, NetEvent::Step { step, .. }
        if matches!(&step.step, Step::Message { direction: d, name: n, .. } if *d == direction && *n == name))
}

async fn finished(done: JoinHandle<Result<(), NetError>>) -> Result<(), NetError> {
    timeout(WAIT, done).await.expect("the client did not end in time").expect("the client task panicked")
}

#[tokio::test]
async fn a_client_that_closes_mid_handshake_sends_close_notify_and_ends_without_waiting_for_the_server() {
    // A server that reads and never answers, nor closes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heard = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut bytes = Vec::new();
        tcp.read_to_end(&mut bytes).await.unwrap();
        (bytes, tcp)
    });
    let mut c = client(addr, RootStore::new(), None);
    expect(&mut c.events, "the ClientHello", |e| is_message(e, Direction::Sent, "ClientHello")).await;
    c.intents.send(Intent::Close).await.unwrap();
    // The handshake timeout is 30 s: only an immediate close ends this in time.
    finished(c.done).await.expect("closing mid-handshake is a clean end");
    expect(&mut c.events, "the close", |e| matches!(e, NetEvent::Closed { by: Closer::Us, .. })).await;
    let (bytes, _tcp) = timeout(WAIT, heard).await.unwrap().unwrap();
    // The last record is a plaintext alert: warning (1), close_notify (0).
    assert!(bytes.len() > 7, "{bytes:02x?}");
    assert_eq!(&bytes[bytes.len() - 7..], &[0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 0x00], "{bytes:02x?}");
}

#[tokio::test]
async fn the_step_gate_holds_each_client_flight_until_it_is_released() {
    let mut room = room().await;
    let (go, gate) = net::step_gate();
    let mut c = client(room.addr, room.roots.clone(), Some(gate));

    expect(&mut c.events, "the first hold", |e| matches!(e, NetEvent::Held { .. })).await;
    let early = quiet_period(&mut room.events).await;
    // The room's own news (its host taking its seat) is not from the client.
    let early: Vec<_> =
        early.iter().filter(|e| !matches!(e, NetEvent::Chat { .. } | NetEvent::RoomNote { .. })).collect();
    assert!(early.is_empty(), "the room heard something of a held ClientHello: {early:?}");

    go.send(()).await.unwrap();
    expect(&mut room.events, "the ClientHello at the room", |e| {
        is_message(e, Direction::Received, "ClientHello")
    })
    .await;
    expect(&mut c.events, "the second hold", |e| matches!(e, NetEvent::Held { .. })).await;
    let meanwhile = quiet_period(&mut room.events).await;
    assert!(
        !meanwhile.iter().any(|e| is_message(e, Direction::Received, "Finished")),
        "the room got the client's Finished while it was held: {meanwhile:?}"
    );

    go.send(()).await.unwrap();
    expect(&mut room.events, "the room's side completing", |e| matches!(e, NetEvent::Connected { .. })).await;
    // After the handshake nothing is held: a line goes straight out.
    c.intents.send(Intent::Send(Arc::from(&b"after\n"[..]))).await.unwrap();
    expect(&mut room.events, "the line", |e| guest_said(e, "after")).await;
    drop(c.intents);
    finished(c.done).await.unwrap();
}

/// A member that holds its second flight for trust, with a handshake
/// limit of `limit`.
fn holding_member(room: &Room, limit: Duration, step: Option<StepGate>) -> Client {
    let mut config = member_config(room.roots.clone(), "carol", 77);
    config.hold_for_trust = true;
    let (intents, intent_rx) = mpsc::channel(16);
    let (events_tx, events) = mpsc::channel(256);
    let name = ServerName::parse("localhost").unwrap();
    let dial = net::Dial::new("127.0.0.1", room.addr.port(), name, Arc::new(config), limit);
    let done = tokio::spawn(net::connect(dial, intent_rx, events_tx, step));
    Client { intents, events, done }
}

/// Whether the room has heard anything of the client's second flight.
fn heard_the_second_flight(events: &[NetEvent]) -> bool {
    events.iter().any(|e| {
        is_message(e, Direction::Received, "Certificate")
            || is_message(e, Direction::Received, "Finished")
            || matches!(e, NetEvent::Connected { .. })
    })
}

#[tokio::test]
async fn a_client_holding_its_flight_for_trust_waits_past_its_handshake_limit_and_goes_on_when_trusted() {
    let mut room = room().await;
    let mut c = holding_member(&room, Duration::from_secs(1), None);
    expect(&mut c.events, "the server's key", |e| matches!(e, NetEvent::ServerKey { .. })).await;
    // Longer than the client's handshake limit: the user's time does not count.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let meanwhile = quiet_period(&mut room.events).await;
    assert!(!heard_the_second_flight(&meanwhile), "{meanwhile:?}");
    assert!(!c.done.is_finished(), "the client gave up while the user decided");
    c.intents.send(Intent::TrustServer).await.unwrap();
    expect(&mut c.events, "the client connected", |e| matches!(e, NetEvent::Connected { .. })).await;
    expect(&mut room.events, "the room's side completing", |e| matches!(e, NetEvent::Connected { .. })).await;
    drop(c.intents);
    finished(c.done).await.unwrap();
}

#[tokio::test]
async fn a_client_holding_its_flight_for_trust_and_told_to_close_cancels_and_the_room_never_seats_it() {
    let mut room = room().await;
    let mut c = holding_member(&room, Duration::from_secs(30), None);
    expect(&mut c.events, "the server's key", |e| matches!(e, NetEvent::ServerKey { .. })).await;
    c.intents.send(Intent::Close).await.unwrap();
    finished(c.done).await.expect("a cancel is a clean end");
    let alerts: Vec<_> = std::iter::from_fn(|| c.events.try_recv().ok())
        .filter_map(|e| match e {
            NetEvent::AlertSent { alert, .. } => Some(alert),
            _ => None,
        })
        .collect();
    assert_eq!(alerts, [tls::AlertDescription::USER_CANCELED, tls::AlertDescription::CLOSE_NOTIFY]);
    let seen = quiet_period(&mut room.events).await;
    assert!(!heard_the_second_flight(&seen), "{seen:?}");
    assert!(
        seen.iter().any(|e| matches!(e, NetEvent::Closed { by: Closer::Peer, .. })),
        "the room heard a clean close: {seen:?}"
    );
}

#[tokio::test]
async fn step_holds_the_flight_that_trust_lets_go() {
    let mut room = room().await;
    let (go, gate) = net::step_gate();
    let mut c = holding_member(&room, Duration::from_secs(30), Some(gate));
    expect(&mut c.events, "the ClientHello held", |e| matches!(e, NetEvent::Held { .. })).await;
    go.send(()).await.unwrap();
    expect(&mut c.events, "the server's key", |e| matches!(e, NetEvent::ServerKey { .. })).await;
    c.intents.send(Intent::TrustServer).await.unwrap();
    // The flight trust made is held by --step in its turn.
    expect(&mut c.events, "the second flight held", |e| matches!(e, NetEvent::Held { .. })).await;
    let meanwhile = quiet_period(&mut room.events).await;
    assert!(!heard_the_second_flight(&meanwhile), "{meanwhile:?}");
    go.send(()).await.unwrap();
    expect(&mut room.events, "the room's side completing", |e| matches!(e, NetEvent::Connected { .. })).await;
    drop(c.intents);
    finished(c.done).await.unwrap();
}

#[tokio::test]
async fn lines_sent_before_the_handshake_completes_go_out_after_it_and_then_the_client_closes() {
    let mut room = room().await;
    let mut c = client(room.addr, room.roots.clone(), None);
    c.intents.send(Intent::Send(Arc::from(&b"early bird\n"[..]))).await.unwrap();
    // The end of input, not a Close: what came before it is still sent.
    drop(c.intents);
    // The connection reports its close itself, the room its line: in either order.
    let (mut said, mut left) = (false, false);
    while !(said && left) {
        let event = expect(&mut room.events, "the early line and the client leaving", |e| {
            guest_said(e, "early bird") || matches!(e, NetEvent::Closed { by: Closer::Peer, .. })
        })
        .await;
        said |= guest_said(&event, "early bird");
        left |= matches!(event, NetEvent::Closed { .. });
    }
    finished(c.done).await.unwrap();
    expect(&mut c.events, "the client's connected event", |e| matches!(e, NetEvent::Connected { .. })).await;
}

#[tokio::test]
async fn a_client_key_update_that_asks_the_room_to_update_too_changes_keys_both_ways() {
    let mut room = room().await;
    let mut c = client(room.addr, room.roots.clone(), None);
    expect(&mut c.events, "the handshake", |e| matches!(e, NetEvent::Connected { .. })).await;
    c.intents.send(Intent::KeyUpdate { request_peer: true }).await.unwrap();
    expect(&mut c.events, "the KeyUpdate step", |e| is_message(e, Direction::Sent, "KeyUpdate")).await;
    expect(&mut c.events, "our new keys", |e| {
        matches!(
            e,
            NetEvent::KeyUpdated { direction: Direction::Sent, update_requested: true, generation: 1, .. }
        )
    })
    .await;
    expect(&mut c.events, "the room's new keys", |e| {
        matches!(e, NetEvent::KeyUpdated { direction: Direction::Received, generation: 1, .. })
    })
    .await;
    expect(&mut room.events, "the room reading the new keys", |e| {
        matches!(e, NetEvent::KeyUpdated { direction: Direction::Received, update_requested: true, .. })
    })
    .await;
    // The chat goes on under the new keys.
    c.intents.send(Intent::Send(Arc::from(&b"still here\n"[..]))).await.unwrap();
    expect(&mut room.events, "a line", |e| guest_said(e, "still here")).await;
}

#[tokio::test]
async fn a_room_key_update_reaches_every_member() {
    let mut room = room().await;
    let mut a = client(room.addr, room.roots.clone(), None);
    let mut b = client(room.addr, room.roots.clone(), None);
    for c in [&mut a, &mut b] {
        expect(&mut c.events, "the handshake", |e| matches!(e, NetEvent::Connected { .. })).await;
    }
    // Both seated in the room, not just connected.
    for _ in 0..2 {
        expect(&mut room.events, "a member seated", |e| {
            matches!(e, NetEvent::Chat { event: ChatEvent::Presence { joined: true, .. }, .. })
        })
        .await;
    }
    room.host.send(Intent::KeyUpdate { request_peer: true }).await.unwrap();
    for c in [&mut a, &mut b] {
        expect(&mut c.events, "the room's KeyUpdate", |e| {
            matches!(e, NetEvent::KeyUpdated { direction: Direction::Received, update_requested: true, .. })
        })
        .await;
        expect(&mut c.events, "the member's answer", |e| {
            matches!(e, NetEvent::KeyUpdated { direction: Direction::Sent, update_requested: false, .. })
        })
        .await;
    }
    let mut updated = 0;
    while updated < 2 {
        expect(&mut room.events, "the members' new keys", |e| {
            matches!(e, NetEvent::KeyUpdated { direction: Direction::Received, .. })
        })
        .await;
        updated += 1;
    }
}

#[tokio::test]
async fn a_client_that_quits_while_a_flight_is_held_leaves_the_room_with_close_notify() {
    let mut room = room().await;
    let (_go, gate) = net::step_gate();
    let mut c = client(room.addr, room.roots.clone(), Some(gate));
    expect(&mut c.events, "the first hold", |e| matches!(e, NetEvent::Held { .. })).await;
    c.intents.send(Intent::Close).await.unwrap();
    finished(c.done).await.expect("quitting mid-handshake is a clean end");
    // The held ClientHello goes out first, so the room sees a whole flight, then the goodbye.
    expect(&mut room.events, "the ClientHello", |e| is_message(e, Direction::Received, "ClientHello")).await;
    expect(&mut room.events, "the client leaving", |e| {
        matches!(e, NetEvent::Closed { by: Closer::Peer, .. })
    })
    .await;
}

/// A member driven by hand on a blocking socket: its handshake done, then
/// it does only what the test says (it may never read again).
fn raw_member(
    addr: SocketAddr,
    config: ClientConfig,
    recv_buffer: Option<u32>,
) -> (std::net::TcpStream, Connection) {
    raw_member_from(addr, config, recv_buffer, None)
}

/// [`raw_member`], connecting from the source address `from`.
fn raw_member_from(
    addr: SocketAddr,
    config: ClientConfig,
    recv_buffer: Option<u32>,
    from: Option<std::net::IpAddr>,
) -> (std::net::TcpStream, Connection) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(from) = from {
        socket.bind(SocketAddr::new(from, 0)).unwrap();
    }
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let tcp = rt.block_on(socket.connect(addr)).unwrap().into_std().unwrap();
    tcp.set_nonblocking(false).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let name = ServerName::parse("localhost").unwrap();
    let mut tls = Connection::client(Arc::new(config), name, Box::new(tls::OsRng)).unwrap();
    let mut tcp_ref = &tcp;
    let mut buf = vec![0; 64 * 1024];
    let mut out = Vec::new();
    while tls.is_handshaking() {
        if tls.poll_transmit(&mut out) {
            tcp_ref.write_all(&out).unwrap();
            out.clear();
        }
        let n = tcp_ref.read(&mut buf).unwrap();
        assert!(n > 0, "the room closed during the handshake");
        tls.handle_input(&buf[..n], unix_now()).unwrap();
    }
    if tls.poll_transmit(&mut out) {
        tcp_ref.write_all(&out).unwrap();
    }
    (tcp, tls)
}

/// Waits for the room's host to see `name` leave; returns the reason.
async fn left(room: &mut Room, name: &str) -> String {
    let event = expect(&mut room.events, &format!("{name} leaving"), |e| {
        matches!(e, NetEvent::Chat { event: ChatEvent::Presence { joined: false, member, .. }, .. } if member.name == name)
    })
    .await;
    match event {
        NetEvent::Chat { event: ChatEvent::Presence { reason, .. }, .. } => reason,
        _ => unreachable!(),
    }
}

async fn seated(room: &mut Room, name: &str) {
    expect(&mut room.events, &format!("{name} seated"), |e| {
        matches!(e, NetEvent::Chat { event: ChatEvent::Presence { joined: true, member, .. }, .. } if member.name == name)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_reading_is_dropped_and_the_others_receive_everything() {
    let mut room = room().await;
    let mut good = member(room.addr, room.roots.clone(), "good", 21);
    seated(&mut room, "good").await;
    // It reads nothing after its handshake, with a small receive window.
    let config = member_config(room.roots.clone(), "slow", 22);
    let addr = room.addr;
    let (_slow_tcp, _slow_tls) =
        tokio::task::spawn_blocking(move || raw_member(addr, config, Some(4096))).await.unwrap();
    seated(&mut room, "slow").await;

    let text = "x".repeat(4000);
    let mut sent = 0u64;
    let mut received = 0u64;
    let reason = loop {
        // In rounds, so that the good member is never far behind: only the
        // member who does not read falls behind.
        for _ in 0..50 {
            sent += 1;
            let line = format!("{sent} {text}");
            room.host
                .send(Intent::Say { kind: tlschat::chat::Kind::Text, text: line, to: None })
                .await
                .unwrap();
        }
        while received < sent {
            let event = expect(&mut good.events, "the host's messages", |e| {
                matches!(e, NetEvent::Chat { event: ChatEvent::Message(_), .. })
            })
            .await;
            let NetEvent::Chat { event: ChatEvent::Message(m), .. } = event else { unreachable!() };
            received += 1;
            assert_eq!(m.text.split(' ').next(), Some(received.to_string().as_str()), "out of order or lost");
            assert_eq!(m.sig, tlschat::chat::SigCheck::Valid);
        }
        let gone = quiet_drain(&mut room.events);
        if let Some(reason) = gone {
            break reason;
        }
        assert!(sent < 20_000, "the member that does not read was never dropped");
    };
    assert!(reason.contains("too slow"), "{reason}");
    eprintln!("the member that did not read was dropped after {sent} messages");
    // The room goes on for the others.
    room.host
        .send(Intent::Say { kind: tlschat::chat::Kind::Text, text: "still here".into(), to: None })
        .await
        .unwrap();
    expect(
        &mut good.events,
        "the next message",
        |e| matches!(e, NetEvent::Chat { event: ChatEvent::Message(m), .. } if m.text == "still here"),
    )
    .await;
}

/// The reason the slow member left, if the room's events so far say it did.
fn quiet_drain(events: &mut mpsc::Receiver<NetEvent>) -> Option<String> {
    while let Ok(event) = events.try_recv() {
        if let NetEvent::Chat { event: ChatEvent::Presence { joined: false, member, reason }, .. } = event
            && member.name == "slow"
        {
            return Some(reason);
        }
    }
    None
}

#[tokio::test]
async fn a_member_that_sends_a_malformed_frame_is_expelled_and_the_others_see_it_leave() {
    let mut room = room().await;
    let mut good = member(room.addr, room.roots.clone(), "good", 31);
    seated(&mut room, "good").await;
    let config = member_config(room.roots.clone(), "broken", 32);
    let addr = room.addr;
    let (tcp, mut tls) = tokio::task::spawn_blocking(move || raw_member(addr, config, None)).await.unwrap();
    seated(&mut room, "broken").await;
    // A frame of a type that does not exist.
    tls.send(&[0x7f, 0, 0, 0]).unwrap();
    let mut out = Vec::new();
    assert!(tls.poll_transmit(&mut out));
    (&tcp).write_all(&out).unwrap();
    let reason = left(&mut room, "broken").await;
    assert!(reason.contains("malformed frame"), "{reason}");
    expect(&mut good.events, "the leave notice", |e| {
        matches!(e, NetEvent::Chat { event: ChatEvent::Presence { joined: false, member, .. }, .. } if member.name == "broken")
    })
    .await;
    // The expelled member was told why, then the connection closed.
    let told = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0; 64 * 1024];
        let mut text = Vec::new();
        loop {
            match (&tcp).read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tls.handle_input(&buf[..n], unix_now()).is_err() {
                        break;
                    }
                    while let Some(data) = tls.recv_application_data() {
                        text.extend_from_slice(&data);
                    }
                    if tls.is_closed() {
                        break;
                    }
                }
            }
        }
        text
    })
    .await
    .unwrap();
    assert!(String::from_utf8_lossy(&told).contains("disconnected: sent a malformed frame"), "{told:?}");
}

#[tokio::test]
async fn a_failed_handshake_reports_the_failed_check_and_the_alert_before_its_error() {
    let room = room().await;
    // A client that trusts no CA: the room's certificate chain fails.
    let mut c = client(room.addr, RootStore::new(), None);
    let result = finished(c.done).await;
    assert!(result.is_err(), "{result:?}");
    let mut seen = Vec::new();
    while let Ok(event) = c.events.try_recv() {
        seen.push(event);
    }
    let failed = seen.iter().position(
        |e| matches!(e, NetEvent::Step { step, .. } if matches!(&step.step, Step::Check { ok: false, .. })),
    );
    let alert = seen.iter().position(|e| matches!(e, NetEvent::AlertSent { .. }));
    assert!(failed.is_some() && alert.is_some(), "{seen:?}");
    assert!(failed < alert, "{seen:?}");
    drop(room);
}

#[tokio::test]
async fn a_flood_of_half_open_connections_from_one_address_does_not_stop_a_member_from_another() {
    let limits = net::Limits { max_connections: 1000, unverified_per_address: 20 };
    let mut room = room_with(limits).await;
    // 40 connections from 127.0.0.1 that never say a word.
    let mut flood = Vec::new();
    for _ in 0..40 {
        flood.push(tokio::net::TcpStream::connect(room.addr).await.unwrap());
    }
    let refused = expect(&mut room.events, "a refusal", |e| matches!(e, NetEvent::Refused { .. })).await;
    let NetEvent::Refused { refusal, .. } = refused else { unreachable!() };
    assert_eq!(
        refusal.to_string(),
        "refused a connection from 127.0.0.1: 20 connections from that address have not proved a key (--max-unverified-per-address)"
    );
    // A member from 127.0.0.2 is admitted and seated all the same.
    let config = member_config(room.roots.clone(), "carol", 41);
    let addr = room.addr;
    let from = Some("127.0.0.2".parse().unwrap());
    let (_tcp, _tls) =
        tokio::task::spawn_blocking(move || raw_member_from(addr, config, None, from)).await.unwrap();
    seated(&mut room, "carol").await;
    drop(flood);
}

#[tokio::test]
async fn the_global_cap_refuses_the_next_connection_and_a_member_frees_its_address_s_unverified_place() {
    let limits = net::Limits { max_connections: 3, unverified_per_address: 1 };
    let mut room = room_with(limits).await;
    // A member who proved its key no longer counts as unverified: a second
    // connection from the same address is welcome.
    let config = member_config(room.roots.clone(), "dave", 51);
    let addr = room.addr;
    let (_a, _atls) = tokio::task::spawn_blocking(move || raw_member(addr, config, None)).await.unwrap();
    seated(&mut room, "dave").await;
    let config = member_config(room.roots.clone(), "erin", 52);
    let (_b, _btls) = tokio::task::spawn_blocking(move || raw_member(addr, config, None)).await.unwrap();
    seated(&mut room, "erin").await;
    let _third = tokio::net::TcpStream::connect(room.addr).await.unwrap();
    let mut fourth = tokio::net::TcpStream::connect(room.addr).await.unwrap();
    let refused = expect(&mut room.events, "the refusal", |e| matches!(e, NetEvent::Refused { .. })).await;
    let NetEvent::Refused { refusal, .. } = refused else { unreachable!() };
    assert_eq!(
        refusal.to_string(),
        "refused a connection from 127.0.0.1: the room holds its maximum of 3 connections"
    );
    // The refused connection is closed at once.
    let mut byte = [0u8; 1];
    let n = timeout(WAIT, fourth.read(&mut byte)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn a_capture_that_reaches_its_limit_says_so_once_and_the_chat_goes_on() {
    let mut room = room().await;
    // A directory of the test's own, removed even when the test fails.
    let dir = crate::programs::TempDir::new("net-capture");
    let path = dir.join("capture.pcapng");
    // Room for the file's header and the TCP handshake, not for the TLS one.
    let capture = Arc::new(Capture::create_with_limit(&path, 600).unwrap());
    let mut config = ClientConfig::new(ServerTrust::Roots(room.roots.clone()));
    config.keylog = Some(capture.clone());
    let (intents, intent_rx) = mpsc::channel(16);
    let (events_tx, mut events) = mpsc::channel(256);
    let name = ServerName::parse("localhost").unwrap();
    let port = room.addr.port();
    let dial = net::Dial {
        capture: Some(capture.clone()),
        ..net::Dial::new("127.0.0.1", port, name, Arc::new(config), Duration::from_secs(30))
    };
    let done = tokio::spawn(net::connect(dial, intent_rx, events_tx, None));
    let notice =
        expect(&mut events, "the capture's notice", |e| matches!(e, NetEvent::CaptureStopped { .. })).await;
    let NetEvent::CaptureStopped { note } = notice else { unreachable!() };
    assert!(note.contains(&path.display().to_string()) && note.contains("limit of 600 bytes"), "{note}");
    // The connection is unharmed: it completes and carries lines.
    for line in ["one", "two"] {
        intents.send(Intent::Send(Arc::from(format!("{line}\n").as_bytes()))).await.unwrap();
        expect(&mut room.events, "a line", |e| guest_said(e, line)).await;
    }
    drop(intents);
    finished(done).await.unwrap();
    let rest = quiet_period(&mut events).await;
    assert!(!rest.iter().any(|e| matches!(e, NetEvent::CaptureStopped { .. })), "told twice: {rest:?}");
    assert!(std::fs::metadata(&path).unwrap().len() <= 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_that_reads_nothing_does_not_stall_the_room_and_what_it_missed_is_counted() {
    let (roots, room_key, config, listener) = room_server().await;
    let addr = listener.local_addr().unwrap();
    // The room's screen holds one event and is never read.
    let (screen_tx, _screen) = mpsc::channel(1);
    let (host_tx, intents) = mpsc::channel(16);
    let key = tls::Ed25519Key::generate(&mut tls::SeededRng::new_for_testing_only(8));
    let host = net::Host { name: "host".into(), key, intents };
    let room = net::start_room(relay::Config::new(room_key), Some(host), None, addr, screen_tx);
    // The connections' own events are read (they are not the room's).
    let (events_tx, mut events) = mpsc::channel(256);
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let (_shutdown_tx, shutdown) = watch::channel(false);
    let server = Server {
        listener,
        config: Arc::new(config),
        service: Service::Room { room: room.clone(), about: "test room".into() },
        handshake_timeout: Duration::from_secs(30),
        events: events_tx,
        shutdown,
        limits: net::Limits::default(),
        next_config: None,
        capture: None,
    };
    tokio::spawn(server.run());

    let mut alice = member(addr, roots.clone(), "alice", 31);
    let mut bob = member(addr, roots, "bob", 32);
    for client in [&mut alice, &mut bob] {
        expect(&mut client.events, "the welcome", |e| {
            matches!(e, NetEvent::Chat { event: ChatEvent::Welcome { .. }, .. })
        })
        .await;
    }
    // Everyone present: the room's notes of the joins found the screen full.
    let deadline = tokio::time::Instant::now() + WAIT;
    while room.members() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "not everyone was seated");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for i in 0..20 {
        let text = format!("line {i}");
        alice.intents.send(Intent::Say { kind: tlschat::chat::Kind::Text, text, to: None }).await.unwrap();
    }
    for i in 0..20 {
        let text = format!("line {i}");
        expect(&mut bob.events, "alice's line", |e| {
            matches!(e, NetEvent::Chat { event: ChatEvent::Message(m), .. } if m.text == text && m.from == "alice")
        })
        .await;
    }
    // The host's own seat is not waited for either: a line of its own
    // reaches the members while its screen reads nothing.
    host_tx
        .send(Intent::Say { kind: tlschat::chat::Kind::Text, text: "from the host".into(), to: None })
        .await
        .unwrap();
    expect(
        &mut bob.events,
        "the host's line",
        |e| matches!(e, NetEvent::Chat { event: ChatEvent::Message(m), .. } if m.text == "from the host"),
    )
    .await;
    assert!(room.dropped_events() >= 1, "nothing was counted as dropped");
}
