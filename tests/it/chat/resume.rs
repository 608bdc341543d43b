//! A member that loses its connection comes back by itself and catches up:
//! `tlschat listen` and `tlschat connect --headless --json` members as
//! separate processes on loopback. The member's connection is cut by a
//! TCP relay in the test (which then refuses, to keep it away while the
//! room talks), or by killing the room's process with SIGKILL and starting
//! it again on the same home and port. The member says "reconnecting" and
//! "back" in its JSON, and shows every message said while it was away
//! exactly once.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::programs::{HOME_ENV, Proc, Room, TempDir, events, tlschat, wait_event};
use serde_json::Value;

/// A TCP forwarder to `upstream` on a loopback port of its own. `cut`
/// breaks every connection through it; while `refusing`, it accepts and
/// closes at once (the member's attempts fail during the handshake).
struct Cutter {
    port: u16,
    /// Where it forwards to.
    upstream: Arc<Mutex<SocketAddr>>,
    refusing: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl Cutter {
    fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let refusing = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let upstream = Arc::new(Mutex::new(upstream));
        let (r, o, s, u) = (refusing.clone(), open.clone(), stop.clone(), upstream.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if r.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let to = *u.lock().unwrap();
                let Ok(server) = TcpStream::connect(to) else { continue };
                let mut list = o.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Self { port, upstream, refusing, open, stop }
    }

    /// Breaks every connection through it, and refuses new ones.
    fn cut(&self) {
        self.refusing.store(true, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Forwards new connections to `to` from now on.
    fn point_to(&self, to: SocketAddr) {
        *self.upstream.lock().unwrap() = to;
    }

    /// Lets connections through again.
    fn open(&self) {
        self.refusing.store(false, Ordering::SeqCst);
    }
}

impl Drop for Cutter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut();
        // Wakes the accept loop so that it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies `from` to `to` on a thread until either ends.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// Makes `name`'s identity in `DIR/NAME-home`.
fn identity(dir: &TempDir, name: &str) {
    let mut id = tlschat(&["id", "--name", name]);
    id.env(HOME_ENV, dir.join(&format!("{name}-home")));
    let mut id = Proc::spawn("id", &mut id);
    assert!(id.wait().success(), "{}", id.output());
}

/// `tlschat connect TARGETS… --ca CA --headless --json` as `name`.
fn member(dir: &TempDir, ca: &std::path::Path, name: &str, targets: &[String]) -> Proc {
    let mut args = vec!["connect".to_owned()];
    args.extend(targets.iter().cloned());
    args.extend(["--ca".into(), ca.to_str().unwrap().into(), "--headless".into(), "--json".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = tlschat(&args);
    cmd.env(HOME_ENV, dir.join(&format!("{name}-home")));
    Proc::spawn(name, &mut cmd)
}

/// The texts of the messages `p` showed from `from`, in order, each time it showed one.
fn texts_from(p: &Proc, from: &str) -> Vec<String> {
    events(p)
        .iter()
        .filter(|v| v["type"] == "message" && v["from"] == from)
        .map(|v| v["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Says `text` as `p` and waits for the room's acknowledgement.
fn say(p: &mut Proc, text: &str) {
    let before = events(p).iter().filter(|v| v["type"] == "delivered").count();
    p.send_line(text);
    p.stdout.wait_for_count("\"type\":\"delivered\"", before + 1);
}

#[test]
fn a_cut_member_fails_over_to_the_rooms_other_address_and_gets_what_it_missed_once() {
    let dir = TempDir::new("resume-cut");
    let room = Room::start(&dir, "listen", &[]);
    let (first, second) = (Cutter::start(room.addr), Cutter::start(room.addr));
    // The second address is down at first.
    second.cut();
    identity(&dir, "alice");
    identity(&dir, "bob");
    let mut alice = member(&dir, &room.ca, "alice", &[room.target()]);
    wait_event(&alice, "alice's welcome", |v| v["type"] == "welcome");
    let targets = [format!("localhost:{}", first.port), format!("localhost:{}", second.port)];
    let mut bob = member(&dir, &room.ca, "bob", &targets);
    wait_event(&bob, "bob's welcome", |v| v["type"] == "welcome");
    say(&mut alice, "one");
    wait_event(&bob, "one", |v| v["type"] == "message" && v["text"] == "one");

    // Bob's only working address breaks: he says he is reconnecting, and
    // the room talks while he is away.
    first.cut();
    let away = wait_event(&bob, "reconnecting", |v| v["type"] == "reconnecting");
    assert_eq!(away["attempt"], 1, "{away}");
    let delay = away["delay_ms"].as_u64().unwrap();
    assert!((500..=1000).contains(&delay), "the first wait is 0.5 to 1 s: {away}");
    alice.stdout.wait_for_text("\"type\":\"leave\"");
    // What bob types meanwhile is refused at once, not lost.
    bob.send_line("typed while away");
    let refused = wait_event(&bob, "refused", |v| v["type"] == "refused");
    assert!(refused["text"].as_str().unwrap().starts_with("not sent: the connection is down"), "{refused}");
    say(&mut alice, "two");
    say(&mut alice, "three");
    // The other address comes up: bob gets in there by himself.
    second.open();
    let back = wait_event(&bob, "back", |v| v["type"] == "back");
    assert_eq!(back["to"], targets[1], "{back}");
    let resumed = wait_event(&bob, "resumed", |v| v["type"] == "resumed");
    assert_eq!(
        (resumed["complete"].as_bool(), resumed["caught_up"].as_u64()),
        (Some(true), Some(2)),
        "{resumed}"
    );
    say(&mut alice, "four");
    wait_event(&bob, "four", |v| v["type"] == "message" && v["text"] == "four");
    // Every message once, in order; each still signed by alice.
    assert_eq!(texts_from(&bob, "alice"), ["one", "two", "three", "four"], "{}", bob.output());
    assert!(texts_from(&alice, "bob").is_empty(), "{}", alice.output());
    for v in events(&bob).iter().filter(|v| v["type"] == "message") {
        assert_eq!((v["sig"].as_str(), v["chain_broken"].as_bool()), (Some("valid"), Some(false)), "{v}");
    }
    assert!(
        !events(&bob).iter().any(|v| v["type"] == "relay_gap" || v["type"] == "replay"),
        "{}",
        bob.output()
    );
    // Reconnecting, then back, in that order.
    let kinds: Vec<String> = events(&bob)
        .iter()
        .filter(|v| v["type"] == "reconnecting" || v["type"] == "back")
        .map(|v| v["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds.last().map(String::as_str), Some("back"), "{kinds:?}");
    assert!(kinds.iter().filter(|k| *k == "back").count() == 1, "{kinds:?}");
}

#[test]
fn a_member_started_again_resumes_from_where_it_left_the_room() {
    let dir = TempDir::new("resume-restart-member");
    let room = Room::start(&dir, "listen", &[]);
    identity(&dir, "alice");
    identity(&dir, "bob");
    let mut alice = member(&dir, &room.ca, "alice", &[room.target()]);
    wait_event(&alice, "alice's welcome", |v| v["type"] == "welcome");
    let mut bob = member(&dir, &room.ca, "bob", &[room.target()]);
    wait_event(&bob, "bob's welcome", |v| v["type"] == "welcome");
    say(&mut alice, "seen");
    wait_event(&bob, "seen", |v| v["type"] == "message" && v["text"] == "seen");
    // Bob quits (end of input: close_notify, his mark is written).
    bob.close_stdin();
    assert!(bob.wait().success(), "{}", bob.output());
    say(&mut alice, "missed");
    let bob = member(&dir, &room.ca, "bob", &[room.target()]);
    let resumed = wait_event(&bob, "resumed", |v| v["type"] == "resumed");
    assert_eq!(
        (resumed["complete"].as_bool(), resumed["caught_up"].as_u64()),
        (Some(true), Some(1)),
        "{resumed}"
    );
    // The room's history had both; only the one he missed is shown.
    assert_eq!(texts_from(&bob, "alice"), ["missed"], "{}", bob.output());
}

/// `tlschat listen 127.0.0.1:PORT` in `DIR/listen-home`: the same room
/// (its key is in its home) on the same port.
fn listen_on(dir: &TempDir, port: u16) -> Proc {
    let ca = dir.join("listen-ca.pem");
    let mut cmd = tlschat(&["listen", &format!("127.0.0.1:{port}"), "--ca-out", ca.to_str().unwrap()]);
    cmd.env(HOME_ENV, dir.join("listen-home"));
    let proc = Proc::spawn("listen", &mut cmd);
    proc.stdout.wait_for("the listening line", |l| l.starts_with("listening on "));
    proc
}

#[test]
fn members_reconnect_by_themselves_after_the_relay_is_killed_and_started_again() {
    let dir = TempDir::new("resume-relay-restart");
    let mut room = Room::start(&dir, "listen", &[]);
    let port = room.addr.port();
    identity(&dir, "alice");
    identity(&dir, "bob");
    let mut alice = member(&dir, &room.ca, "alice", &[room.target()]);
    wait_event(&alice, "alice's welcome", |v| v["type"] == "welcome");
    let bob = member(&dir, &room.ca, "bob", &[room.target()]);
    wait_event(&bob, "bob's welcome", |v| v["type"] == "welcome");
    say(&mut alice, "before");
    wait_event(&bob, "before", |v| v["type"] == "message" && v["text"] == "before");

    room.proc.kill();
    for p in [&alice, &bob] {
        wait_event(p, "reconnecting", |v| v["type"] == "reconnecting");
    }
    std::thread::sleep(Duration::from_millis(300));
    let _room = listen_on(&dir, port);
    for p in [&alice, &bob] {
        p.stdout.wait_for_within(Duration::from_secs(30), "back", |l| l.contains("\"type\":\"back\""));
    }
    say(&mut alice, "after");
    wait_event(&bob, "after", |v| v["type"] == "message" && v["text"] == "after");
    // The relay kept its log: the room's order goes on, and bob resumed
    // (the answer to his resume may come after a live line: he is seated
    // from his Welcome on, and asks for what he missed once welcomed).
    wait_event(&bob, "bob's resume answered", |v| v["type"] == "resumed");
    // Nothing said before the restart is shown twice, and nothing after is lost.
    assert_eq!(texts_from(&bob, "alice"), ["before", "after"], "{}", bob.output());
}

#[test]
fn a_room_that_comes_back_with_another_key_is_refused_not_rejoined() {
    let dir = TempDir::new("resume-other-key");
    let room = Room::start(&dir, "listen", &[]);
    let impostor = Room::start(&dir, "impostor", &[]);
    let cutter = Cutter::start(room.addr);
    identity(&dir, "bob");
    // First contact: bob trusts and pins the key he is shown.
    let target = format!("localhost:{}", cutter.port);
    let mut cmd = tlschat(&["connect", &target, "--trust-on-first-use", "--headless", "--json"]);
    cmd.env(HOME_ENV, dir.join("bob-home"));
    let mut bob = Proc::spawn("bob", &mut cmd);
    wait_event(&bob, "bob's welcome", |v| v["type"] == "welcome");
    // Cut once: the same room, the same key, trusted already: back
    // without a question (headless, an unknown key would be refused).
    cutter.cut();
    cutter.open();
    wait_event(&bob, "back", |v| v["type"] == "back");
    bob.stdout.wait_for_count("\"type\":\"welcome\"", 2);
    // The address now leads to another room, with another key.
    cutter.point_to(impostor.addr);
    cutter.cut();
    cutter.open();
    wait_event(&bob, "reconnecting", |v| v["type"] == "reconnecting");
    let status = bob.wait_within(Duration::from_secs(20));
    assert!(!status.success(), "{}", bob.output());
    let error = wait_event(&bob, "the error", |v| v["type"] == "error");
    let text = error["error"].as_str().unwrap();
    let shown = impostor.fingerprint.replace(' ', "");
    assert!(text.contains("does not match") && text.replace(' ', "").contains(&shown), "{error}");
    // Bob never joined the other room: it never saw his certificate.
    assert!(!impostor.proc.stdout.contains("bob joined"), "{}", impostor.proc.output());
    assert_eq!(events(&bob).iter().filter(|v| v["type"] == "welcome").count(), 2);
}

/// The room's relay is killed and started again on the same home and port
/// while a member is kept away (its address refuses): what is said after
/// the restart, before the member is back, reaches it exactly once by its
/// resume, and the room's numbering continues: the relay keeps its log on
/// disk (a relay that kept it in memory only would number the room from 1
/// again, and the member's resume from its old mark could then pass over
/// what was said meanwhile).
#[test]
fn a_member_away_across_a_relay_restart_resumes_what_was_said_meanwhile_exactly_once() {
    let dir = TempDir::new("resume-relay-restart-away");
    let mut room = Room::start(&dir, "listen", &[]);
    let port = room.addr.port();
    let cutter = Cutter::start(room.addr);
    identity(&dir, "alice");
    identity(&dir, "bob");
    let mut alice = member(&dir, &room.ca, "alice", &[room.target()]);
    wait_event(&alice, "alice's welcome", |v| v["type"] == "welcome");
    let bob = member(&dir, &room.ca, "bob", &[format!("localhost:{}", cutter.port)]);
    wait_event(&bob, "bob's welcome", |v| v["type"] == "welcome");
    say(&mut alice, "before");
    wait_event(&bob, "before", |v| v["type"] == "message" && v["text"] == "before");
    let seq_before = events(&alice).iter().filter_map(|v| v["room_seq"].as_u64()).max().unwrap();

    cutter.cut();
    room.proc.kill();
    wait_event(&bob, "reconnecting", |v| v["type"] == "reconnecting");
    let _room = listen_on(&dir, port);
    alice.stdout.wait_for_within(Duration::from_secs(30), "back", |l| l.contains("\"type\":\"back\""));
    for text in ["during 1", "during 2", "during 3"] {
        say(&mut alice, text);
    }
    let delivered: Vec<u64> = events(&alice)
        .iter()
        .filter(|v| v["type"] == "delivered")
        .filter_map(|v| v["room_seq"].as_u64())
        .collect();
    assert!(
        delivered.iter().rev().take(3).all(|&s| s > seq_before),
        "the room's numbering continues: {delivered:?}"
    );
    cutter.open();
    let resumed = bob
        .stdout
        .wait_for_within(Duration::from_secs(30), "resumed", |l| l.contains("\"type\":\"resumed\""));
    let resumed: Value = serde_json::from_str(&resumed).unwrap();
    assert_eq!(
        (resumed["complete"].as_bool(), resumed["caught_up"].as_u64()),
        (Some(true), Some(3)),
        "{resumed}"
    );
    say(&mut alice, "after");
    wait_event(&bob, "after", |v| v["type"] == "message" && v["text"] == "after");
    assert_eq!(
        texts_from(&bob, "alice"),
        ["before", "during 1", "during 2", "during 3", "after"],
        "{}",
        bob.output()
    );
}

#[test]
fn a_room_whose_first_address_is_down_is_joined_at_the_next() {
    let dir = TempDir::new("resume-first-down");
    let room = Room::start(&dir, "listen", &[]);
    // A port nothing listens on.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    identity(&dir, "bob");
    let bob = member(&dir, &room.ca, "bob", &[format!("localhost:{dead}"), room.target()]);
    wait_event(&bob, "bob's welcome", |v| v["type"] == "welcome");
    let connected = events(&bob).into_iter().find(|v| v["type"] == "connected").unwrap();
    assert_eq!(connected["peer"], room.addr.to_string(), "{connected}");
    // Not a reconnection: the first connection just went to the next address.
    assert!(!events(&bob).iter().any(|v| v["type"] == "reconnecting" || v["type"] == "back"));
    // With every address down, the error is the last one's, and the client exits.
    let mut alone =
        member(&dir, &room.ca, "bob", &[format!("localhost:{dead}"), format!("127.0.0.1:{dead}")]);
    assert!(!alone.wait().success(), "{}", alone.output());
    assert!(alone.stderr.text().contains("nothing is listening there"), "{}", alone.output());
}
