//! One room served by several relays over NATS JetStream, against a real
//! `nats-server` (Debian's package; `.ci/run` installs it) that each test
//! starts on a port of its own and kills at the end: first the library's
//! [`Cluster`] (the stream orders, the bucket binds names create-if-absent),
//! then three `tlschat listen --cluster` processes with members
//! (`tlschat connect --json`) spread over them.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::programs::{HOME_ENV, Proc, Room, TempDir, WAIT, events, live_messages, tlschat, wait_event};
use tlschat::chat::Frame;
use tlschat::net::cluster::{Cluster, Retention};
use tlschat::tls::Fingerprint;

/// A `nats-server -js` on a free loopback port, its store in a temporary
/// directory; killed when dropped (its [`Proc`] is).
struct Nats {
    _proc: Proc,
    port: u16,
    _store: TempDir,
}

impl Nats {
    fn start() -> Self {
        let store = TempDir::new("nats");
        // A port that was free a moment ago; taken again at once.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = std::process::Command::new("nats-server");
        cmd.args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"]).arg(store.path());
        let proc = Proc::spawn("nats-server", &mut cmd);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "nats-server never accepted:\n{}", proc.output());
            std::thread::sleep(Duration::from_millis(20));
        }
        proc.stderr.wait_for_text("Server is ready");
        Self { _proc: proc, port, _store: store }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn entry(author: &str, text: &str) -> Vec<u8> {
    // Not a signed message: the stream carries bytes; the relays check them.
    Frame::Guest { room_seq: 0, flags: 0, name: author.into(), text: text.into() }.encode().unwrap()
}

#[test]
fn the_stream_numbers_what_every_relay_publishes_in_one_order_and_tells_each_relay_which_entries_were_its_own()
 {
    let nats = Nats::start();
    let room = [7u8; 32];
    runtime().block_on(async {
        let a = Cluster::join(&nats.url(), &room, Retention::default()).await.unwrap();
        let b = Cluster::join(&nats.url(), &room, Retention::default()).await.unwrap();
        assert_ne!(a.relay_id(), b.relay_id());
        let mut a_entries = a.entries(1).await.unwrap();
        let mut b_entries = b.entries(1).await.unwrap();
        // Interleaved publishes from both, acknowledged with the stream's numbers.
        let mut acked = Vec::new();
        for i in 0..20u64 {
            let (relay, seat) = if i % 3 == 0 { (&b, 100 + i) } else { (&a, i) };
            let pending = relay.publish(entry("x", &format!("m{i}")), seat).await.unwrap();
            acked.push(pending.stored().await.unwrap());
        }
        assert_eq!(acked, (1..=20).collect::<Vec<u64>>());
        for (me, entries) in [("a", &mut a_entries), ("b", &mut b_entries)] {
            for i in 0..20u64 {
                let got = tokio::time::timeout(WAIT, entries.next()).await.unwrap().unwrap().unwrap();
                assert_eq!((got.seq, got.frame.clone()), (i + 1, entry("x", &format!("m{i}"))), "{me}");
                let mine = (me == "b") == (i % 3 == 0);
                let seat = if i % 3 == 0 { 100 + i } else { i };
                assert_eq!(got.origin, mine.then_some(seat), "{me} entry {i}");
            }
        }
        // A relay that comes later reads from where it asks.
        assert_eq!(a.bounds().await.unwrap(), (1, 20));
        let c = Cluster::join(&nats.url(), &room, Retention::default()).await.unwrap();
        let mut from_15 = c.entries(15).await.unwrap();
        let got = tokio::time::timeout(WAIT, from_15.next()).await.unwrap().unwrap().unwrap();
        assert_eq!((got.seq, got.origin), (15, None));
    });
}

#[test]
fn a_name_is_bound_once_on_the_bus_however_many_relays_race_for_it_and_look_alikes_are_refused() {
    let nats = Nats::start();
    let room = [9u8; 32];
    let url = nats.url();
    runtime().block_on(async {
        let relays: Vec<Cluster> =
            futures_join((0..4).map(|_| Cluster::join(&url, &room, Retention::default())).collect())
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
        let keys: Vec<Fingerprint> = (0..4u8).map(|i| Fingerprint([i + 1; 32])).collect();
        // Four relays bind "alice" to four keys at once: exactly one wins.
        let results =
            futures_join(relays.iter().zip(&keys).map(|(relay, key)| relay.bind("alice", key)).collect())
                .await;
        let won: Vec<usize> = results.iter().enumerate().filter(|(_, r)| r.is_ok()).map(|(i, _)| i).collect();
        assert_eq!(won.len(), 1, "{results:?}");
        let winner = keys[won[0]];
        for (i, result) in results.iter().enumerate().filter(|(i, _)| *i != won[0]) {
            let why = result.as_ref().unwrap_err();
            assert!(why.contains("the name alice belongs to the key"), "relay {i}: {why}");
        }
        // Every relay now agrees, for the winner and against the others.
        for relay in &relays {
            assert_eq!(relay.bind("alice", &winner).await, Ok(true));
            assert_eq!(relay.bind("ALICE", &winner).await, Ok(true));
            assert!(relay.bind("alice", &keys[(won[0] + 1) % 4]).await.is_err());
        }
        // A look-alike of a bound name, for another key, on another relay.
        let other = keys[(won[0] + 1) % 4];
        let why = relays[3].bind("aIice", &other).await.unwrap_err();
        assert!(why.contains("looks like alice"), "{why}");
        // A fresh name binds, once.
        assert_eq!(relays[2].bind("bob", &other).await, Ok(false));
        assert_eq!(relays[0].bind("bob", &other).await, Ok(true));
        // Names the rules refuse never reach the bus.
        assert!(relays[0].bind("bad\u{1b}[2Jname", &other).await.is_err());
    });
}

/// Runs every future at once; their results in order.
async fn futures_join<T>(futures: Vec<impl Future<Output = T>>) -> Vec<T> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut results = Vec::new();
    // Each polled in turn until done; all are in flight meanwhile.
    let mut pending: Vec<Option<std::pin::Pin<Box<_>>>> = set.into_iter().map(Some).collect();
    let mut done: Vec<Option<T>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (slot, out) in pending.iter_mut().zip(done.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *out = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    for v in done {
        results.push(v.unwrap());
    }
    results
}

/// The room's key files, which every relay of the room holds.
const ROOM_FILES: [&str; 4] = ["ca.key", "ca.pem", "server.key", "server.pem"];

/// Three relays of one room on one bus: the first makes the room, the
/// others get a copy of its keys in their own homes before they start.
fn three_relays(dir: &TempDir, nats: &Nats) -> Vec<Room> {
    let url = nats.url();
    let first = Room::start(dir, "relay-a", &["--cluster", &url, "--headless"]);
    first.proc.stdout.wait_for_text("cluster: ");
    let mut relays = vec![first];
    for name in ["relay-b", "relay-c"] {
        let relay = another_relay(dir, nats, &relays[0], name, &[]);
        relays.push(relay);
    }
    // One room identity: the same key, so the same fingerprint, everywhere.
    assert_eq!(relays[1].fingerprint, relays[0].fingerprint);
    assert_eq!(relays[2].fingerprint, relays[0].fingerprint);
    relays
}

/// One more relay of `first`'s room, named `name`, with a copy of its keys.
fn another_relay(dir: &TempDir, nats: &Nats, first: &Room, name: &str, extra: &[&str]) -> Room {
    let room_dir = dir.join(&format!("{name}-home")).join("room");
    std::fs::create_dir_all(&room_dir).unwrap();
    for file in ROOM_FILES {
        std::fs::copy(first.home.join("room").join(file), room_dir.join(file)).unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&room_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let url = nats.url();
    let mut args = vec!["--cluster", &url, "--headless"];
    args.extend_from_slice(extra);
    let relay = Room::start(dir, name, &args);
    relay.proc.stdout.wait_for_text("cluster: ");
    relay
}

/// `tlschat connect --json` to `relay` as `name` (an identity made in
/// `DIR/NAME-home` on first use).
fn member(dir: &TempDir, relay: &Room, name: &str) -> Proc {
    let home = dir.join(&format!("{name}-home"));
    if !home.join("identity").exists() {
        make_identity(&home, name);
    }
    let target = relay.target();
    let mut cmd = tlschat(&["connect", &target, "--ca", relay.ca.to_str().unwrap(), "--json"]);
    cmd.env(HOME_ENV, &home);
    Proc::spawn(name, &mut cmd)
}

fn make_identity(home: &Path, name: &str) {
    let mut id = tlschat(&["id", "--name", name]);
    id.env(HOME_ENV, home);
    let mut id = Proc::spawn("id", &mut id);
    assert!(id.wait().success(), "{}", id.output());
}

/// What `p` said that the room acknowledged: (room_seq, its text).
fn acknowledged(p: &Proc, said: &[String]) -> Vec<(u64, String)> {
    events(p)
        .iter()
        .filter(|v| v["type"] == "delivered" && v["private"] == false)
        .map(|v| {
            let seq = v["seq"].as_u64().unwrap();
            (v["room_seq"].as_u64().unwrap(), said[usize::try_from(seq).unwrap() - 1].clone())
        })
        .collect()
}

/// No event says the relays lost, repeated or reordered anything.
fn assert_clean(p: &Proc, who: &str) {
    for v in events(p) {
        assert!(!matches!(v["type"].as_str(), Some("relay_gap" | "relay_disorder" | "replay")), "{who}: {v}");
        if v["type"] == "message" {
            assert_eq!(v["sig"], "valid", "{who}: {v}");
        }
    }
}

/// Members named `names`, the i-th on relay i mod 3, each seated before
/// the next comes; each has seen everyone who came after it join, whichever
/// relay they came through (those before it were in its list of who is here).
fn join_one_by_one(dir: &TempDir, relays: &[Room], names: &[&str]) -> Vec<Proc> {
    let mut members: Vec<Proc> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let p = member(dir, &relays[i % relays.len()], name);
        wait_event(&p, "the welcome", |v| v["type"] == "welcome" && v["name"] == *name);
        members.push(p);
    }
    for (i, (p, me)) in members.iter().zip(names).enumerate() {
        for other in &names[i + 1..] {
            wait_event(p, &format!("{me} seeing {other} join"), |v| {
                v["type"] == "join" && v["member"]["name"] == *other
            });
        }
    }
    members
}

#[test]
fn members_spread_over_three_relays_see_one_order_with_nothing_lost_or_repeated() {
    let nats = Nats::start();
    let dir = TempDir::new("cluster");
    let relays = three_relays(&dir, &nats);
    let names = ["alice", "bob", "carol", "dave"];
    let mut members = join_one_by_one(&dir, &relays, &names);
    // A burst from each, all at once.
    const EACH: usize = 15;
    let said: Vec<Vec<String>> =
        names.iter().map(|name| (1..=EACH).map(|i| format!("{name} {i}")).collect()).collect();
    for i in 0..EACH {
        for (p, lines) in members.iter_mut().zip(&said) {
            p.send_line(&lines[i]);
        }
    }
    for (p, me) in members.iter().zip(names) {
        p.stdout.wait_for_count("\"type\":\"delivered\"", EACH);
        let others = names.iter().filter(|n| **n != me).count();
        p.stdout.wait_for_count("\"type\":\"message\"", others * EACH);
    }
    // One order: each message has one room_seq everywhere, which is the
    // one its author was acknowledged with; nothing twice, nothing missing.
    let mut order: std::collections::BTreeMap<u64, String> = std::collections::BTreeMap::new();
    for ((p, me), lines) in members.iter().zip(names).zip(&said) {
        for (seq, text) in acknowledged(p, lines) {
            assert!(order.insert(seq, text.clone()).is_none(), "{me}: room_seq {seq} given twice");
        }
    }
    assert_eq!(order.len(), names.len() * EACH);
    for (p, me) in members.iter().zip(names) {
        let heard = live_messages(p);
        let seqs: Vec<u64> = heard.iter().map(|m| m.0).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{me}: not in the room's order: {heard:?}");
        let expected: Vec<(u64, String)> = order
            .iter()
            .filter(|(_, text)| !text.starts_with(&format!("{me} ")))
            .map(|(s, t)| (*s, t.clone()))
            .collect();
        let got: Vec<(u64, String)> = heard.iter().map(|(s, _, t)| (*s, t.clone())).collect();
        assert_eq!(got, expected, "{me}");
        assert_clean(p, me);
    }
    // A member who joins later, on any relay, gets the history from the stream.
    let mut erin = member(&dir, &relays[2], "erin");
    wait_event(&erin, "erin's welcome", |v| v["type"] == "welcome");
    let last = order.values().last().unwrap().clone();
    wait_event(&erin, "the last message as history", |v| {
        v["type"] == "message" && v["text"] == last && v["history"] == true
    });
    for p in members.iter_mut().chain([&mut erin]) {
        p.close_stdin();
        assert!(p.wait().success(), "{}", p.output());
    }
}

#[test]
fn a_name_bound_through_one_relay_is_refused_to_another_key_through_another() {
    let nats = Nats::start();
    let dir = TempDir::new("cluster-names");
    let relays = three_relays(&dir, &nats);
    let alice = member(&dir, &relays[0], "alice");
    wait_event(&alice, "alice's welcome", |v| v["type"] == "welcome" && v["name"] == "alice");
    // Another key that calls itself alice, through relay c, whose own
    // members file has never heard of alice.
    let impostor_home = dir.join("impostor-home");
    make_identity(&impostor_home, "alice");
    let target = relays[2].target();
    let mut cmd = tlschat(&["connect", &target, "--ca", relays[2].ca.to_str().unwrap(), "--json"]);
    cmd.env(HOME_ENV, &impostor_home);
    let mut impostor = Proc::spawn("impostor", &mut cmd);
    let refused = wait_event(&impostor, "the refusal", |v| v["type"] == "refused");
    assert!(refused["text"].as_str().unwrap().contains("the name alice belongs to the key"), "{refused}");
    // Refused, then closed: never welcomed.
    impostor.wait();
    assert!(!impostor.stdout.text().contains("\"type\":\"welcome\""), "{}", impostor.output());
    // The real alice is still welcome on every relay.
    let mut alice_again = member(&dir, &relays[1], "alice");
    wait_event(&alice_again, "alice's welcome on relay b", |v| {
        v["type"] == "welcome" && v["name"] == "alice"
    });
    alice_again.close_stdin();
    assert!(alice_again.wait().success(), "{}", alice_again.output());
}

#[test]
fn a_relay_killed_mid_burst_loses_none_of_what_it_acknowledged_and_the_others_keep_the_room() {
    let nats = Nats::start();
    let dir = TempDir::new("cluster-kill");
    let mut relays = three_relays(&dir, &nats);
    let names = ["alice", "bob", "carol"];
    let mut members = join_one_by_one(&dir, &relays, &names);
    // Bob, on relay b, says a burst; relay b is killed while it goes.
    let said: Vec<String> = (1..=20).map(|i| format!("bob {i}")).collect();
    for line in &said[..10] {
        members[1].send_line(line);
    }
    members[1].stdout.wait_for_count("\"type\":\"delivered\"", 3);
    for line in &said[10..] {
        members[1].send_line(line);
    }
    relays[1].proc.kill();
    // Whatever relay b acknowledged to bob is in the room: alice and carol
    // hear each of those, once, with the number bob was given.
    let acked = acknowledged(&members[1], &said);
    assert!(acked.len() >= 3, "{}", members[1].output());
    for (p, me) in [(&members[0], "alice"), (&members[2], "carol")] {
        for (seq, text) in &acked {
            wait_event(p, &format!("{me} hearing {text}"), |v| {
                v["type"] == "message" && v["text"] == *text && v["room_seq"] == *seq
            });
        }
    }
    // The room goes on through the others, in one order.
    members[0].send_line("after the fall");
    let heard = wait_event(&members[2], "carol hearing alice", |v| {
        v["type"] == "message" && v["text"] == "after the fall"
    });
    let acked_alice = wait_event(&members[0], "alice's ack", |v| v["type"] == "delivered");
    assert_eq!(heard["room_seq"], acked_alice["room_seq"]);
    for (p, me) in [(&members[0], "alice"), (&members[2], "carol")] {
        let heard = live_messages(p);
        let seqs: Vec<u64> = heard.iter().map(|m| m.0).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{me}: {heard:?}");
        let bobs: Vec<&String> = heard.iter().filter(|m| m.1 == "bob").map(|m| &m.2).collect();
        let unique: std::collections::HashSet<&&String> = bobs.iter().collect();
        assert_eq!(unique.len(), bobs.len(), "{me} heard a message of bob's twice: {bobs:?}");
    }
}

/// Bob's client, given the addresses of relay b and relay a, fails over to
/// relay a when relay b is killed mid-burst, and resumes there with
/// nothing lost or repeated (`tlschat connect B A`: several addresses for
/// one room; a line typed while it reconnects is refused, not queued).
#[test]
fn a_member_of_a_killed_relay_fails_over_to_another_and_resumes_with_nothing_lost() {
    let nats = Nats::start();
    let dir = TempDir::new("cluster-failover");
    let mut relays = three_relays(&dir, &nats);
    let alice = member(&dir, &relays[0], "alice");
    wait_event(&alice, "alice's welcome", |v| v["type"] == "welcome");
    let home = dir.join("bob-home");
    make_identity(&home, "bob");
    let (b, a) = (relays[1].target(), relays[0].target());
    let ca = relays[1].ca.to_str().unwrap().to_owned();
    let mut cmd = tlschat(&["connect", &b, &a, "--ca", &ca, "--json"]);
    cmd.env(HOME_ENV, &home);
    let mut bob = Proc::spawn("bob", &mut cmd);
    wait_event(&bob, "bob's welcome", |v| v["type"] == "welcome");
    let said: Vec<String> = (1..=20).map(|i| format!("bob {i}")).collect();
    for line in &said[..10] {
        bob.send_line(line);
    }
    bob.stdout.wait_for_count("\"type\":\"delivered\"", 3);
    relays[1].proc.kill();
    wait_event(&bob, "bob reconnecting", |v| v["type"] == "reconnecting");
    let acked_before = events(&bob).iter().filter(|v| v["type"] == "delivered").count();
    // Alice speaks while bob is away: he hears it once he is back.
    let mut alice = alice;
    alice.send_line("while bob was away");
    wait_event(&bob, "bob back, through relay a", |v| v["type"] == "back");
    wait_event(&bob, "what alice said meanwhile", |v| {
        v["type"] == "message" && v["text"] == "while bob was away"
    });
    for line in &said[10..] {
        bob.send_line(line);
    }
    wait_event(&alice, "alice hearing bob's last line", |v| v["text"] == said[19].as_str());
    // Alice heard each of bob's lines once: every one he was acknowledged
    // before the kill (at least), and all he said once back.
    let heard: Vec<String> = events(&alice)
        .iter()
        .filter(|v| v["type"] == "message" && v["from"] == "bob")
        .map(|v| v["text"].as_str().unwrap().to_owned())
        .collect();
    let once: std::collections::BTreeSet<&String> = heard.iter().collect();
    assert_eq!(once.len(), heard.len(), "alice heard a line twice: {heard:?}");
    assert!(said[10..].iter().all(|l| heard.contains(l)), "{heard:?}");
    let before = said[..10].iter().filter(|l| heard.contains(l)).count();
    assert!(
        before >= acked_before,
        "{before} of bob's first lines reached alice, {acked_before} were acknowledged"
    );
    assert_clean(&alice, "alice");
    assert_clean(&bob, "bob");
}

/// Sends `/who` until the list that answers satisfies `done`; returns it
/// (the names listed) and how long it took.
fn who_until(p: &mut Proc, what: &str, done: impl Fn(&[String]) -> bool) -> (Vec<String>, Duration) {
    let start = Instant::now();
    loop {
        let asked = events(p).iter().filter(|v| v["type"] == "members").count();
        p.send_line("/who");
        p.stdout.wait_for_count("\"type\":\"members\"", asked + 1);
        let lists: Vec<serde_json::Value> =
            events(p).into_iter().filter(|v| v["type"] == "members").collect();
        let names: Vec<String> = lists[asked]["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(lists[asked]["total"].as_u64(), Some(names.len() as u64), "{}", lists[asked]);
        if done(&names) {
            return (names, start.elapsed());
        }
        assert!(start.elapsed() < WAIT, "{what}: never; the last list: {names:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn who_lists_the_members_of_every_relay_and_drops_those_of_a_relay_killed_without_a_word() {
    let nats = Nats::start();
    let dir = TempDir::new("cluster-who");
    let mut relays = three_relays(&dir, &nats);
    let names = ["alice", "bob", "carol"];
    let mut members = join_one_by_one(&dir, &relays, &names);
    // Alice, on relay a, lists bob (relay b) and carol (relay c), and the three hosts.
    let (listed, _) = who_until(&mut members[0], "alice listing everyone", |names| {
        ["alice", "bob", "carol"].iter().all(|n| names.iter().any(|m| m == n))
    });
    assert_eq!(listed.len(), 6, "{listed:?}");
    // Who joins later gets the room's list on joining, not its relay's.
    let mut dave = member(&dir, &relays[0], "dave");
    let first = wait_event(&dave, "dave's list on joining", |v| v["type"] == "members");
    let names: Vec<&str> =
        first["members"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"bob") && names.contains(&"carol"), "{first}");
    assert_eq!(first["total"].as_u64(), Some(7), "{first}");
    dave.close_stdin();
    assert!(dave.wait().success(), "{}", dave.output());
    // Relay b dies without saying goodbye: bob and its host leave every list.
    relays[1].proc.kill();
    let (after, took) = who_until(&mut members[0], "bob dropped from alice's list", |names| {
        !names.iter().any(|m| m == "bob")
    });
    assert_eq!(after.len(), 4, "relay b's host and bob are gone, the rest stay: {after:?}");
    assert!(after.iter().any(|m| m == "carol"), "{after:?}");
    // GONE_AFTER (5 s) and a heartbeat, with this machine's slack.
    assert!(took < Duration::from_secs(12), "bob was listed for {took:?} after his relay died");
    eprintln!("a killed relay's members left /who after {took:?}");
    for (_, p) in members.iter_mut().enumerate().filter(|(i, _)| *i != 1) {
        p.close_stdin();
        assert!(p.wait().success(), "{}", p.output());
    }
}

#[test]
fn a_private_message_between_members_of_two_relays_goes_end_to_end_and_no_relay_prints_it() {
    let nats = Nats::start();
    let dir = TempDir::new("cluster-msg");
    let relays = three_relays(&dir, &nats);
    let mut members = join_one_by_one(&dir, &relays, &["alice", "bob"]);
    // Relay a knows where bob is once relay b's list reached it.
    who_until(&mut members[0], "alice listing bob", |names| names.iter().any(|m| m == "bob"));
    members[0].send_line("/msg bob the secret crosses relays");
    let got = wait_event(&members[1], "bob receiving alice's private line", |v| {
        v["type"] == "message" && v["text"] == "the secret crosses relays"
    });
    assert_eq!(
        (got["from"].as_str(), got["private"].as_bool(), got["e2e"].as_bool(), got["sig"].as_str()),
        (Some("alice"), Some(true), Some(true), Some("valid")),
        "{got}"
    );
    wait_event(&members[0], "alice's line acknowledged", |v| {
        v["type"] == "delivered" && v["private"] == true
    });
    // And back, in the group alice's Welcome made.
    members[1].send_line("/msg alice and the answer too");
    let back = wait_event(&members[0], "alice receiving bob's answer", |v| {
        v["type"] == "message" && v["text"] == "and the answer too"
    });
    assert_eq!((back["e2e"].as_bool(), back["sig"].as_str()), (Some(true), Some("valid")), "{back}");
    // Nobody else heard either, and no relay wrote them anywhere it prints.
    members[0].send_line("public after the secrets");
    wait_event(&members[1], "the public line after", |v| v["text"] == "public after the secrets");
    for relay in &relays {
        let output = relay.proc.output();
        assert!(!output.contains("the secret crosses relays"), "{output}");
        assert!(!output.contains("and the answer too"), "{output}");
    }
    for p in &mut members {
        p.close_stdin();
        assert!(p.wait().success(), "{}", p.output());
    }
}

/// A guest of `relay` (`openssl s_client`: no identity); its name as the
/// relay told it.
fn guest_of(relay: &Room, home: &Path) -> (Proc, String) {
    let mut cmd = std::process::Command::new("openssl");
    cmd.current_dir(home).args([
        "s_client",
        "-connect",
        &format!("127.0.0.1:{}", relay.addr.port()),
        "-servername",
        "localhost",
        "-CAfile",
        relay.ca.to_str().unwrap(),
        "-tls1_3",
        "-quiet",
        "-nocommands",
    ]);
    let guest = Proc::spawn("guest", &mut cmd);
    let line = guest.stdout.wait_for_text("tlschat: you are guest-");
    let name = line["tlschat: you are ".len()..].split(' ').next().unwrap().to_owned();
    (guest, name)
}

#[test]
fn guests_on_different_relays_get_different_names_and_each_is_heard_under_its_own() {
    let nats = Nats::start();
    let dir = TempDir::new("cluster-guests");
    let relays = three_relays(&dir, &nats);
    let alice = member(&dir, &relays[0], "alice");
    wait_event(&alice, "alice's welcome", |v| v["type"] == "welcome");
    let mut guests = Vec::new();
    for relay in [&relays[0], &relays[1], &relays[2], &relays[1]] {
        guests.push(guest_of(relay, dir.path()));
    }
    let names: Vec<&String> = guests.iter().map(|(_, name)| name).collect();
    let distinct: std::collections::BTreeSet<&&String> = names.iter().collect();
    assert_eq!(distinct.len(), names.len(), "{names:?}");
    // The one on relay b speaks: alice, on relay a, hears it under that name.
    let (guest, name) = &mut guests[1];
    guest.send_line("a guest of relay b");
    let heard = wait_event(&alice, "the guest's line", |v| v["text"] == "a guest of relay b");
    assert_eq!(heard["from"].as_str(), Some(name.as_str()), "{heard}");
}

#[test]
fn a_ban_by_one_relays_host_disconnects_the_member_from_another_relay_and_every_relay_refuses_the_key() {
    let nats = Nats::start();
    let dir = TempDir::new("cluster-ban");
    let mut relays = three_relays(&dir, &nats);
    let mut members = join_one_by_one(&dir, &relays, &["alice", "bob"]);
    // Relay a's host bans bob, who is on relay b.
    who_until(&mut members[0], "alice listing bob", |names| names.iter().any(|m| m == "bob"));
    relays[0].proc.send_line("/ban bob");
    relays[0].proc.stdout.wait_for_text("bob banned (seated on another relay of the room)");
    let why = wait_event(&members[1], "bob disconnected", |v| v["type"] == "refused");
    assert!(why["text"].as_str().unwrap().contains("banned by the host"), "{why}");
    members[1].wait();
    wait_event(&members[0], "alice seeing bob leave", |v| {
        v["type"] == "leave" && v["member"]["name"] == "bob" && v["reason"] == "banned by the host"
    });
    // Bob's key is refused on every relay: those that were told keep the
    // ban in their members files too, and refuse it in the handshake.
    for relay in &relays {
        let mut again = member(&dir, relay, "bob");
        let refused = wait_event(&again, "bob refused", |v| v["type"] == "refused" || v["type"] == "error");
        assert!(refused.to_string().contains("banned"), "{refused}");
        again.wait();
        assert!(!again.stdout.text().contains("\"type\":\"welcome\""), "{}", again.output());
    }
    // A relay started after the ban, which was never told, reads it on the
    // bus when bob's name is bound, and refuses him with that reason.
    let late = another_relay(&dir, &nats, &relays[0], "relay-d", &[]);
    let mut again = member(&dir, &late, "bob");
    let refused = wait_event(&again, "bob refused by the late relay", |v| v["type"] == "refused");
    assert!(
        refused["text"].as_str().unwrap().contains("the host banned this key from the room"),
        "{refused}"
    );
    again.wait();
    assert!(!again.stdout.text().contains("\"type\":\"welcome\""), "{}", again.output());
    // Alice is not touched.
    members[0].send_line("still here");
    members[0].stdout.wait_for_text("\"type\":\"delivered\"");
}

#[test]
fn a_closed_cluster_admits_on_every_relay_whom_one_relays_host_invited_and_no_one_else() {
    let nats = Nats::start();
    let dir = TempDir::new("cluster-closed");
    let url = nats.url();
    let mut first = Room::start(&dir, "relay-a", &["--cluster", &url, "--headless", "--closed"]);
    first.proc.stdout.wait_for_text("cluster: ");
    let second = another_relay(&dir, &nats, &first, "relay-b", &["--closed"]);
    let bob_home = dir.join("bob-home");
    make_identity(&bob_home, "bob");
    make_identity(&dir.join("carol-home"), "carol");
    // Not invited yet: refused on relay b, and told what to ask for.
    let mut bob = member(&dir, &second, "bob");
    let refused = wait_event(&bob, "bob refused", |v| v["type"] == "refused");
    assert!(refused["text"].as_str().unwrap().contains("this room is closed"), "{refused}");
    bob.wait();
    // Relay a's host invites bob: relay b admits him; carol stays out.
    let fingerprint = {
        let mut id = tlschat(&["id"]);
        id.env(HOME_ENV, &bob_home);
        let mut id = Proc::spawn("id", &mut id);
        assert!(id.wait().success(), "{}", id.output());
        let line = id.stdout.wait_for_text("fingerprint: ");
        line["fingerprint: ".len()..].replace(' ', "")
    };
    first.proc.send_line(&format!("/invite bob {fingerprint}"));
    first.proc.stdout.wait_for_text("invited bob with the key");
    let mut bob = member(&dir, &second, "bob");
    wait_event(&bob, "bob's welcome on relay b", |v| v["type"] == "welcome" && v["name"] == "bob");
    let mut carol = member(&dir, &first, "carol");
    let refused = wait_event(&carol, "carol refused", |v| v["type"] == "refused");
    assert!(refused["text"].as_str().unwrap().contains("this room is closed"), "{refused}");
    carol.wait();
    bob.close_stdin();
    assert!(bob.wait().success(), "{}", bob.output());
}

/// A stranger on the bus speaks the relays' own subjects to a running
/// relay: lists that do not parse, a relay id that is not one, an MLS
/// message that is not one, a question whose answer would go to a
/// subject that is not for answers. The relay answers only what is well
/// formed, lists a well-formed relay's member only while it is heard, and
/// its room goes on.
#[test]
fn a_relay_takes_from_the_bus_only_well_formed_lists_and_questions_and_forgets_a_silent_relay() {
    use futures_util::StreamExt;
    use tlschat::chat::{MemberInfo, Standing};

    let nats = Nats::start();
    let dir = TempDir::new("cluster-stranger");
    let relay = Room::start(&dir, "relay-a", &["--cluster", &nats.url(), "--headless"]);
    relay.proc.stdout.wait_for_text("cluster: ");
    let mut alice = member(&dir, &relay, "alice");
    wait_event(&alice, "alice's welcome", |v| v["type"] == "welcome");
    let room: String = relay.fingerprint.chars().filter(char::is_ascii_hexdigit).collect();
    let stranger = "ffffffffffffffff";
    runtime().block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        // The relay's id, from its heartbeat.
        let mut beats = client.subscribe(format!("tlschat.{room}.roster.*")).await.unwrap();
        let beat = tokio::time::timeout(WAIT, beats.next()).await.unwrap().unwrap();
        let id = beat.subject.as_str().rsplit('.').next().unwrap().to_owned();
        assert_eq!(id.len(), 16, "{}", beat.subject);
        let mut answers = client.subscribe(format!("tlschat.{room}.reply.{stranger}.*")).await.unwrap();
        // Lists that do not parse, or from no relay id.
        for (from, payload) in [
            (stranger, vec![1, 2, 3]),
            (stranger, Frame::Who.encode().unwrap()),
            ("not-a-relay", Vec::new()),
            ("ESC\u{1b}[2J", Vec::new()),
        ] {
            client.publish(format!("tlschat.{room}.roster.{from}"), payload.into()).await.unwrap();
        }
        // A well-formed list from a relay that then falls silent.
        let mallory =
            MemberInfo { name: "mallory".into(), standing: Standing::Verified, key: [9; 32], idle_secs: 0 };
        let list = Frame::Roster { total: 1, last: true, members: vec![mallory] }.encode().unwrap();
        client.publish(format!("tlschat.{room}.roster.{stranger}"), list.into()).await.unwrap();
        // A routed message that is not MLS: answered "nobody took it".
        let junk =
            Frame::Sealed { room_seq: 0, from: "x".into(), key: [9; 32], message: b"not mls".to_vec() };
        let mut route = vec![0u8; 32];
        route.extend(junk.encode().unwrap());
        let reply = format!("tlschat.{room}.reply.{stranger}.1");
        client
            .publish_with_reply(format!("tlschat.{room}.relay.{id}.sealed"), reply, route.into())
            .await
            .unwrap();
        let answer = tokio::time::timeout(WAIT, answers.next()).await.unwrap().unwrap();
        assert_eq!(&answer.payload[..], &[0]);
        // A fetch whose answer would go anywhere else: not answered.
        let asked = client
            .send_request(
                format!("tlschat.{room}.relay.{id}.fetch"),
                async_nats::Request::new()
                    .payload(vec![9u8; 32].into())
                    .timeout(Some(Duration::from_secs(2))),
            )
            .await;
        assert!(asked.is_err(), "answered a question to a stranger's subject: {asked:?}");
        // A fetch asked properly: an empty key package (mallory has none here).
        let reply = format!("tlschat.{room}.reply.{stranger}.2");
        client
            .publish_with_reply(format!("tlschat.{room}.relay.{id}.fetch"), reply, vec![9u8; 32].into())
            .await
            .unwrap();
        let answer = tokio::time::timeout(WAIT, answers.next()).await.unwrap().unwrap();
        assert_eq!(
            &answer.payload[..],
            &Frame::KeyPackage { key: [9; 32], package: Vec::new() }.encode().unwrap()[..]
        );
        client.flush().await.unwrap();
    });
    // Listed while heard, then dropped; nothing else was listed.
    let (listed, _) = who_until(&mut alice, "mallory listed", |names| names.iter().any(|n| n == "mallory"));
    assert_eq!(listed.len(), 3, "{listed:?}");
    who_until(&mut alice, "mallory dropped", |names| !names.iter().any(|n| n == "mallory"));
    alice.send_line("the room goes on");
    wait_event(&alice, "alice's line acknowledged", |v| v["type"] == "delivered");
    let output = relay.proc.output();
    assert!(!output.contains('\u{1b}'), "an escape reached the relay's output: {output}");
    alice.close_stdin();
    assert!(alice.wait().success(), "{}", alice.output());
}

/// An entry written on the room's stream by someone who is no relay: a
/// post whose signature does not verify, its origin header naming this
/// relay's own seat. The relay's bus reader checks it like any other
/// relay's, so it is skipped, members see a gap, and the room goes on.
#[test]
fn a_forged_post_on_the_bus_is_skipped_even_when_it_claims_to_be_this_relays_own() {
    use futures_util::StreamExt;
    use tlschat::chat::message::{Fields, Kind};
    use tlschat::tls::{Ed25519Key, SeededRng};

    let nats = Nats::start();
    let dir = TempDir::new("cluster-forged");
    let relay = Room::start(&dir, "relay-a", &["--cluster", &nats.url(), "--headless"]);
    relay.proc.stdout.wait_for_text("cluster: ");
    let mut alice = member(&dir, &relay, "alice");
    wait_event(&alice, "alice's welcome", |v| v["type"] == "welcome");
    let bob = member(&dir, &relay, "bob");
    wait_event(&bob, "bob's welcome", |v| v["type"] == "welcome");
    wait_event(&alice, "bob's join", |v| v["type"] == "join" && v["member"]["name"] == "bob");
    let hex: String = relay.fingerprint.chars().filter(char::is_ascii_hexdigit).collect();
    let room = Fingerprint::parse(&hex).unwrap().0;
    let key = Ed25519Key::generate(&mut SeededRng::new_for_testing_only(41));
    let fields = Fields {
        room,
        author: key.public_key(),
        session: [1; 16],
        seq: 1,
        prev: [0; 32],
        time_ms: 1_700_000_000_000,
        kind: Kind::Text,
        recipient: None,
        text: "forged".into(),
    };
    let mut signed = fields.sign(&key).unwrap();
    let last = signed.len() - 1;
    signed[last] ^= 1;
    let forged = Frame::Deliver { room_seq: 0, flags: 0, author: "mallory".into(), signed }.encode().unwrap();
    runtime().block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let mut beats = client.subscribe(format!("tlschat.{hex}.roster.*")).await.unwrap();
        let beat = tokio::time::timeout(WAIT, beats.next()).await.unwrap().unwrap();
        let id = beat.subject.as_str().rsplit('.').next().unwrap().to_owned();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(tlschat::net::cluster::ORIGIN, format!("{id} 999").as_str());
        let js = async_nats::jetstream::new(client);
        let ack =
            js.publish_with_headers(format!("tlschat.{hex}.log"), headers, forged.into()).await.unwrap();
        tokio::time::timeout(WAIT, ack).await.unwrap().unwrap();
    });
    relay.proc.stdout.wait_for_text("its signature does not verify");
    alice.send_line("the room goes on");
    wait_event(&bob, "alice's line", |v| v["type"] == "message" && v["text"] == "the room goes on");
    // The skipped number shows as a gap once the next one comes.
    wait_event(&bob, "the gap the skipped entry leaves", |v| v["type"] == "relay_gap" && v["missing"] == 1);
    for p in [&alice, &bob] {
        assert!(!events(p).iter().any(|v| v["type"] == "message" && v["text"] == "forged"), "{}", p.output());
    }
    let output = relay.proc.output();
    assert!(output.contains("from mallory: its signature does not verify"), "{output}");
    for mut p in [alice, bob] {
        p.close_stdin();
        assert!(p.wait().success(), "{}", p.output());
    }
}
