//! The room's fan-out decisions and every verification outcome, with the
//! relay and members wired together in memory.

use std::collections::HashMap;

use super::frame::{Frame, FrameBuffer, RefusalCode, flags};
use super::member::{AuthorCheck, ChatEvent, Member, SigCheck};
use super::message::{Kind, MAX_TEXT};
use super::printable;
use super::relay::{Config, Decision, HOST, Joiner, Rate, Relay, SeatId, Transport};
use crate::tls::{Ed25519Key, SeededRng};

const ROOM: [u8; 32] = [0x42; 32];

/// A member of `room` with a key of its own, in no [`World`].
fn outsider(room: [u8; 32], seed: u64) -> Member {
    let key = Ed25519Key::generate(&mut SeededRng::new_for_testing_only(seed));
    Member::new(room, key, &mut SeededRng::new_for_testing_only(seed + 1000))
}

/// A room with members wired to it in memory: frames the relay sends are
/// parsed and checked by each member's [`Member`].
struct World {
    relay: Relay,
    members: HashMap<SeatId, Member>,
    keys: HashMap<SeatId, Ed25519Key>,
    /// What each seat received, decoded: events for members, lines for guests.
    events: HashMap<SeatId, Vec<ChatEvent>>,
    lines: HashMap<SeatId, Vec<String>>,
    closed: Vec<(SeatId, String)>,
    /// The operator's notes.
    notes: Vec<String>,
    /// Every byte the relay received and sent, in order.
    wire: Vec<u8>,
    now: u64,
    rng: SeededRng,
    /// Deliver in the relay's order, seat by seat, as connections do:
    /// what a member sends in answer is queued behind what the relay
    /// already decided (else answered at once, nested).
    fifo: bool,
    queue: std::collections::VecDeque<Decision>,
    draining: bool,
    /// The `GroupWelcome` pieces the relay sends this seat, kept here
    /// instead of delivered: for a test that plays a lying relay.
    held_welcome: Option<(SeatId, Vec<Frame>)>,
}

impl World {
    fn new(config: Config) -> Self {
        Self {
            relay: Relay::new(config),
            members: HashMap::new(),
            keys: HashMap::new(),
            events: HashMap::new(),
            lines: HashMap::new(),
            closed: Vec::new(),
            notes: Vec::new(),
            wire: Vec::new(),
            now: 1_000_000,
            rng: SeededRng::new_for_testing_only(7),
            fifo: false,
            queue: std::collections::VecDeque::new(),
            draining: false,
            held_welcome: None,
        }
    }

    fn room() -> Self {
        Self::new(Config::new(ROOM))
    }

    fn join(&mut self, id: SeatId, name: &str) {
        let key = Ed25519Key::generate(&mut self.rng);
        let joiner = Joiner::Verified { name: name.into(), key: key.public_key() };
        self.keys.insert(id, key.clone());
        self.members.insert(id, Member::new(ROOM, key, &mut self.rng));
        let out = self.relay.join(id, joiner, Transport::Frames, self.now).unwrap();
        self.apply(out);
    }

    fn join_guest(&mut self, id: SeatId) {
        let out = self.relay.join(id, Joiner::Guest, Transport::Lines, self.now).unwrap();
        self.apply(out);
    }

    fn say(&mut self, id: SeatId, text: &str) {
        let (frame, _) =
            self.members.get_mut(&id).unwrap().compose(Kind::Text, text, None, self.now).unwrap();
        self.post(id, &frame);
    }

    /// What member `id` signs for `text`: the signed bytes of its post.
    fn signed_by(&mut self, id: SeatId, text: &str) -> Vec<u8> {
        match self.members.get_mut(&id).unwrap().compose(Kind::Text, text, None, self.now).unwrap().0 {
            Frame::Post { signed } => signed,
            other => unreachable!("{other:?}"),
        }
    }

    /// Member `id`'s post of `text` with its byte `at` flipped: a forgery.
    fn forged(&mut self, id: SeatId, text: &str, at: usize) -> Frame {
        let mut signed = self.signed_by(id, text);
        signed[at] ^= 1;
        Frame::Post { signed }
    }

    fn post(&mut self, id: SeatId, frame: &Frame) {
        // Through the wire format, as a connection would.
        let mut buffer = FrameBuffer::default();
        let bytes = frame.encode().unwrap();
        self.wire.extend_from_slice(&bytes);
        buffer.push(&bytes);
        let frame = buffer.next_frame().unwrap().unwrap();
        let out = self.relay.frame(id, frame.into(), self.now);
        self.apply(out);
    }

    fn apply(&mut self, out: Vec<Decision>) {
        if !self.fifo {
            for o in out {
                self.apply_one(o);
            }
            return;
        }
        self.queue.extend(out);
        if std::mem::replace(&mut self.draining, true) {
            return;
        }
        while let Some(o) = self.queue.pop_front() {
            self.apply_one(o);
        }
        self.draining = false;
    }

    fn apply_one(&mut self, o: Decision) {
        match o {
            Decision::Send(id, bytes) => {
                self.wire.extend_from_slice(&bytes);
                self.deliver(id, &bytes);
            }
            Decision::Close(id, reason) => self.closed.push((id, reason)),
            Decision::Note(note) => self.notes.push(note),
            Decision::Publish(..) => unreachable!("a room without a bus publishes nothing"),
            Decision::Remote(..) => unreachable!("a room without a bus asks no other relay"),
        }
    }

    fn deliver(&mut self, id: SeatId, bytes: &[u8]) {
        match self.members.get_mut(&id) {
            Some(member) => {
                let mut buffer = FrameBuffer::default();
                buffer.push(bytes);
                while let Some(frame) = buffer.next_frame().unwrap() {
                    if let Some((_, held)) = self.held_welcome.as_mut().filter(|(seat, _)| *seat == id)
                        && matches!(frame, Frame::GroupWelcome { .. })
                    {
                        held.push(frame);
                        continue;
                    }
                    self.events.entry(id).or_default().extend(member.receive(frame, self.now).unwrap());
                }
                // What the member sends of itself (key packages, Welcomes)
                // goes to the relay, as its connection would send it.
                let frames = member.take_outgoing();
                for frame in frames {
                    self.post(id, &frame);
                }
            }
            None => self.lines.entry(id).or_default().push(String::from_utf8(bytes.to_vec()).unwrap()),
        }
    }

    fn texts(&self, id: SeatId) -> Vec<String> {
        self.events
            .get(&id)
            .into_iter()
            .flatten()
            .filter_map(|e| match e {
                ChatEvent::Message(m) => Some(format!("{}:{}", m.from, m.text)),
                ChatEvent::Guest { name, text, .. } => Some(format!("{name}:{text}")),
                _ => None,
            })
            .collect()
    }

    fn take(&mut self, id: SeatId) -> Vec<ChatEvent> {
        self.events.remove(&id).unwrap_or_default()
    }
}

#[test]
fn every_member_hears_every_other_member_once_in_the_relays_order() {
    let mut w = World::room();
    w.join(1, "alice");
    w.join(2, "bob");
    w.join(3, "carol");
    w.join_guest(4);
    w.say(1, "hi from alice");
    w.say(2, "hi from bob");
    w.say(3, "hi from carol");
    let out = w.relay.guest_line(4, "hi from a guest", w.now);
    w.apply(out);
    assert_eq!(w.texts(1), ["bob:hi from bob", "carol:hi from carol", "guest-1:hi from a guest"]);
    assert_eq!(w.texts(2), ["alice:hi from alice", "carol:hi from carol", "guest-1:hi from a guest"]);
    assert_eq!(w.texts(3), ["alice:hi from alice", "bob:hi from bob", "guest-1:hi from a guest"]);
    let guest = w.lines[&4].join("");
    assert!(
        guest.contains(
            "[alice \u{2713}] hi from alice\n[bob \u{2713}] hi from bob\n[carol \u{2713}] hi from carol\n"
        ),
        "{guest}"
    );
    assert!(!guest.contains("hi from a guest"), "a guest does not hear itself");
    // Every message verified, and the room order never skipped.
    for id in 1..=3 {
        for e in &w.events[&id] {
            match e {
                ChatEvent::Message(m) => {
                    assert_eq!((m.sig, m.missing_before, m.chain_broken), (SigCheck::Valid, 0, false))
                }
                ChatEvent::RelayGap { .. } | ChatEvent::Replay { .. } => panic!("{e:?}"),
                _ => {}
            }
        }
    }
    // The author's own line is acknowledged with its place in the order.
    assert!(w.events[&1].iter().any(|e| matches!(e, ChatEvent::Delivered { seq: 1, private: false, .. })));
}

#[test]
fn joins_and_leaves_are_announced_and_who_lists_everyone() {
    let mut w = World::room();
    w.join(1, "alice");
    w.join(2, "bob");
    assert!(
        w.take(1)
            .iter()
            .any(|e| matches!(e, ChatEvent::Presence { joined: true, member, .. } if member.name == "bob"))
    );
    let out = w.relay.leave(2, "", w.now);
    w.apply(out);
    assert!(
        w.take(1)
            .iter()
            .any(|e| matches!(e, ChatEvent::Presence { joined: false, member, .. } if member.name == "bob"))
    );
    w.join_guest(3);
    w.now += 5000;
    let out = w.relay.frame(1, Frame::Who.into(), w.now);
    w.apply(out);
    let roster = w.take(1).into_iter().find_map(|e| match e {
        ChatEvent::Roster { members, .. } => Some(members),
        _ => None,
    });
    let names: Vec<_> = roster.unwrap().into_iter().map(|m| (m.name, m.idle_secs)).collect();
    assert_eq!(names, [("alice".to_owned(), 5), ("guest-1".to_owned(), 5)]);
}

#[test]
fn a_newcomer_gets_the_last_messages_as_history_each_still_verifiable() {
    let mut config = Config::new(ROOM);
    config.history = 3;
    let mut w = World::new(config);
    w.join(1, "alice");
    for i in 0..5 {
        w.say(1, &format!("m{i}"));
    }
    w.join(2, "bob");
    let events = w.take(2);
    let history: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::Message(m) if m.history => Some((m.text.clone(), m.sig)),
            _ => None,
        })
        .collect();
    assert_eq!(
        history,
        [("m2".into(), SigCheck::Valid), ("m3".into(), SigCheck::Valid), ("m4".into(), SigCheck::Valid)]
    );
    assert!(matches!(events[0], ChatEvent::Welcome { history: 3, .. }));
    w.say(1, "live");
    let live = w.take(2);
    assert!(live.iter().any(
        |e| matches!(e, ChatEvent::Message(m) if !m.history && m.text == "live" && m.missing_before == 0)
    ));
    assert!(!live.iter().any(|e| matches!(e, ChatEvent::RelayGap { .. })), "{live:?}");
}

#[test]
fn a_room_restored_from_its_log_goes_on_from_its_room_seq_and_serves_the_history_it_kept() {
    let mut config = Config::new(ROOM);
    config.history = 2;
    config.keep.messages = 3;
    let mut w = World::new(config.clone());
    w.join(1, "alice");
    for i in 0..5 {
        w.say(1, &format!("m{i}"));
    }
    // The log keeps 3 of the 5; joins took room_seqs too.
    let room_seq = w.relay.room_seq();
    let kept: Vec<_> = w.relay.entries_after(0).0.cloned().collect();
    let forgotten = w.relay.log().forgotten();
    assert_eq!(kept.len(), 3);
    let (_, complete) = w.relay.entries_after(0);
    assert!(!complete, "the first two are gone");
    let (after, complete) = w.relay.entries_after(forgotten);
    assert_eq!((after.count(), complete), (3, true));

    // Another relay, given what was kept (as the store gives it back).
    let mut w = World {
        relay: Relay::restore(config, room_seq, forgotten, kept, w.now),
        ..World::new(Config::new(ROOM))
    };
    assert_eq!(w.relay.room_seq(), room_seq);
    w.join(2, "bob");
    let events = w.take(2);
    let history: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::Message(m) if m.history => Some((m.text.clone(), m.sig, m.room_seq)),
            _ => None,
        })
        .collect();
    assert_eq!(history.iter().map(|h| h.0.as_str()).collect::<Vec<_>>(), ["m3", "m4"]);
    assert!(history.iter().all(|h| h.1 == SigCheck::Valid && h.2 <= room_seq), "{history:?}");
    // Bob's join is the next number: none is given twice.
    assert_eq!(w.relay.room_seq(), room_seq + 1);
    w.join(3, "carol");
    w.say(3, "after");
    let (after, _) = w.relay.entries_after(room_seq);
    assert_eq!(after.map(|p| p.room_seq).collect::<Vec<_>>(), [room_seq + 3]);
}

#[test]
fn private_messages_reach_only_their_recipient_and_leave_no_gap_for_others() {
    let mut w = World::room();
    w.join(1, "alice");
    w.join(2, "bob");
    w.join(3, "carol");
    let (frame, _) = w.members.get_mut(&1).unwrap().compose(Kind::Text, "psst", Some("bob"), w.now).unwrap();
    w.post(1, &frame);
    w.say(1, "public");
    let bob = w.take(2);
    assert!(bob.iter().any(
        |e| matches!(e, ChatEvent::Message(m) if m.private && m.text == "psst" && m.sig == SigCheck::Valid)
    ));
    let carol = w.take(3);
    assert_eq!(
        carol
            .iter()
            .filter_map(|e| match e {
                ChatEvent::Message(m) => Some((m.text.as_str(), m.missing_before)),
                _ => None,
            })
            .collect::<Vec<_>>(),
        [("public", 0)]
    );
    assert!(w.take(1).iter().any(|e| matches!(e, ChatEvent::Delivered { private: true, .. })));
    let unknown = w.members.get_mut(&1).unwrap().compose(Kind::Text, "x", Some("mallory"), w.now);
    assert!(unknown.is_err());
}

/// A relay that lies: it alters, replays, drops and moves messages. Each
/// receiver notices what it can and says so.
#[test]
fn a_lying_relay_is_caught_by_every_receiver() {
    let mut w = World::room();
    w.join(1, "alice");
    w.join(2, "bob");
    let alice = w.members.get_mut(&1).unwrap();
    let (m1, _) = alice.compose(Kind::Text, "one", None, 1).unwrap();
    let (m2, _) = alice.compose(Kind::Text, "two", None, 2).unwrap();
    let (m3, _) = alice.compose(Kind::Text, "three", None, 3).unwrap();
    let (m4, _) = alice.compose(Kind::Text, "four", None, 4).unwrap();
    let signed = |frame: &Frame| match frame {
        Frame::Post { signed } => signed.clone(),
        _ => unreachable!(),
    };
    let bob = w.members.get_mut(&2).unwrap();
    let base = 2; // alice's and bob's joins
    let deliver = |bob: &mut Member, room_seq: u64, signed: Vec<u8>| {
        bob.receive(Frame::Deliver { room_seq, flags: 0, author: "alice".into(), signed }, 0).unwrap()
    };
    // Unchanged: valid; the member list's word binds nothing, so the
    // name is first seen with its first verified message.
    let e = deliver(bob, base + 1, signed(&m1));
    assert!(
        matches!(&e[..], [ChatEvent::Message(m), ChatEvent::Learned { .. }] if m.sig == SigCheck::Valid && m.author == AuthorCheck::FirstSeen),
        "{e:?}"
    );
    // Text altered: shown, marked invalid.
    let mut altered = signed(&m2);
    let at = altered.len() - 64 - 3;
    altered[at..at + 3].copy_from_slice(b"TWO");
    let e = deliver(bob, base + 2, altered);
    assert!(
        matches!(&e[..], [ChatEvent::Message(m)] if m.sig == SigCheck::Invalid && m.text == "TWO"),
        "{e:?}"
    );
    // Replayed: flagged, not shown again.
    let e = deliver(bob, base + 3, signed(&m1));
    assert!(matches!(&e[..], [ChatEvent::Replay { seq: 1, .. }]), "{e:?}");
    // m2 (genuine) and m3 dropped: m4 arrives after a gap in alice's
    // sequence and in the relay's. m2's place was taken by the altered
    // copy, shown marked: only m3 is missing (the lab's `/tamper sig` is
    // not followed by a false "missing").
    let e = deliver(bob, base + 6, signed(&m4));
    assert!(e.contains(&ChatEvent::RelayGap { missing: 2 }), "{e:?}");
    assert!(
        e.iter()
            .any(|x| matches!(x, ChatEvent::Message(m) if m.missing_before == 1 && m.sig == SigCheck::Valid)),
        "{e:?}"
    );
    let _ = m3;
    // Moved from another room: signed correctly, but not for this room.
    let mut elsewhere = outsider([0x99; 32], 1);
    let (moved, _) = elsewhere.compose(Kind::Text, "from elsewhere", None, 5).unwrap();
    let e = deliver(bob, base + 7, signed(&moved));
    assert!(matches!(&e[..], [ChatEvent::Message(m)] if m.sig == SigCheck::OtherRoom), "{e:?}");
    // A name that comes back with another key is flagged.
    let mut imposter = outsider(ROOM, 3);
    let (fake, _) = imposter.compose(Kind::Text, "I am alice", None, 6).unwrap();
    let e = deliver(bob, base + 8, signed(&fake));
    assert!(
        matches!(&e[..], [ChatEvent::Message(m)] if m.sig == SigCheck::Valid && matches!(m.author, AuthorCheck::Changed { .. })),
        "{e:?}"
    );
}

#[test]
fn a_broken_chain_is_noticed_when_no_sequence_number_is_missing() {
    let mut w = World::room();
    w.join(1, "alice");
    w.join(2, "bob");
    let key = Ed25519Key::generate(&mut SeededRng::new_for_testing_only(9));
    let mut a = Member::new(ROOM, key.clone(), &mut SeededRng::new_for_testing_only(10));
    let mut b = Member::new(ROOM, key, &mut SeededRng::new_for_testing_only(10));
    // Same key and session, two histories: a's first message, then b's second.
    let (first, _) = a.compose(Kind::Text, "a1", None, 1).unwrap();
    let _ = b.compose(Kind::Text, "b1", None, 1).unwrap();
    let (second, _) = b.compose(Kind::Text, "b2", None, 2).unwrap();
    let bob = w.members.get_mut(&2).unwrap();
    for (seq, frame) in [(3, first), (4, second)] {
        let Frame::Post { signed } = frame else { unreachable!() };
        let e =
            bob.receive(Frame::Deliver { room_seq: seq, flags: 0, author: "x".into(), signed }, 0).unwrap();
        if seq == 4 {
            assert!(
                matches!(&e[..], [ChatEvent::Message(m)] if m.chain_broken && m.missing_before == 0),
                "{e:?}"
            );
        }
    }
}

#[test]
fn the_relay_refuses_forgeries_replays_other_rooms_and_other_keys() {
    let mut w = World::room();
    w.join(1, "alice");
    w.join(2, "bob");
    w.take(1);
    // Bob posts a message signed by someone else's key.
    let mut stranger = outsider(ROOM, 5);
    let (forged, _) = stranger.compose(Kind::Text, "spray", None, 1).unwrap();
    w.post(2, &forged);
    // Bob posts a message he signed for another room.
    let mut elsewhere = Member::new([0x99; 32], w.keys[&2].clone(), &mut SeededRng::new_for_testing_only(8));
    let (moved, _) = elsewhere.compose(Kind::Text, "moved", None, 1).unwrap();
    w.post(2, &moved);
    let (first, _) = w.members.get_mut(&2).unwrap().compose(Kind::Text, "ok", None, 1).unwrap();
    w.post(2, &first);
    w.post(2, &first); // replayed by its author
    let alice = w.texts(1);
    assert_eq!(alice, ["bob:ok"], "only the genuine one reaches alice");
    let refusals = w
        .take(2)
        .into_iter()
        .filter(|e| matches!(e, ChatEvent::Refused { code: RefusalCode::BadMessage, .. }))
        .count();
    assert_eq!(refusals, 3);
    // A guest cannot post signed messages at all.
    w.join_guest(3);
    let out = w.relay.frame(3, forged.into(), w.now);
    assert!(out.iter().any(|o| matches!(o, Decision::Send(3, _))));
    assert!(!out.iter().any(|o| matches!(o, Decision::Send(1, b) if b[0] == 0x82)));
}

#[test]
fn the_room_orders_a_post_only_with_the_proof_its_seat_made() {
    let mut w = World::room();
    w.join(1, "alice");
    w.join(2, "bob");
    w.take(1);
    // The seat's task checks the signature; a forgery never becomes a proof.
    let forged = w.forged(2, "not mine", 120);
    let checked = super::relay::Inbound::check(forged);
    assert!(!checked.is_verified_post());
    let before = w.relay.room_seq();
    let out = w.relay.frame(2, checked, w.now);
    assert_eq!(w.relay.room_seq(), before, "nothing was ordered");
    assert!(out.iter().all(|o| !matches!(o, Decision::Send(1, _))), "{out:?}");
    // The genuine post is proved by the same check, and ordered.
    let (genuine, _) = w.members.get_mut(&2).unwrap().compose(Kind::Text, "mine", None, w.now).unwrap();
    let checked = super::relay::Inbound::check(genuine);
    assert!(checked.is_verified_post());
    let out = w.relay.frame(2, checked, w.now);
    w.apply(out);
    assert_eq!(w.relay.room_seq(), before + 1);
    assert_eq!(w.texts(1), ["bob:mine"]);
    w.take(1);
    // A proof is only had from a message whose signature holds: what the
    // relay is offered through `Inbound::post` carries one by its type.
    let (again, _) = w.members.get_mut(&2).unwrap().compose(Kind::Text, "twice", None, w.now).unwrap();
    let Frame::Post { signed } = again else { unreachable!() };
    let proof = super::message::Signed::open(&signed).unwrap().verified().unwrap();
    let out = w.relay.frame(2, super::relay::Inbound::post(proof), w.now);
    w.apply(out);
    assert_eq!(w.texts(1), ["bob:twice"]);
}

#[test]
fn the_rate_limit_counts_on_the_monotonic_clock_not_the_wall_clock() {
    use super::relay::Now;
    use std::time::Duration;
    let mut config = Config::new(ROOM);
    config.rate = Rate { burst: 1, per_sec: 1, strikes: 50 };
    let mut w = World::new(config);
    w.join(1, "alice");
    w.join(2, "bob");
    let t = w.now;
    let post = |w: &mut World, text: &str, now: Now| {
        let (frame, _) = w.members.get_mut(&2).unwrap().compose(Kind::Text, text, None, t).unwrap();
        let out = w.relay.frame(2, frame.into(), now);
        w.apply(out);
    };
    let mono = |ms: u64| Duration::from_millis(ms);
    post(&mut w, "one", Now { unix_ms: t, mono: mono(t) });
    // The wall clock jumps an hour ahead: no token for that.
    post(&mut w, "two", Now { unix_ms: t + 3_600_000, mono: mono(t) });
    // It is set back, while a second passes: a token for the second.
    post(&mut w, "three", Now { unix_ms: t - 500_000, mono: mono(t + 1000) });
    assert_eq!(w.texts(1), ["bob:one", "bob:three"]);
    let refused = w
        .take(2)
        .into_iter()
        .filter(|e| matches!(e, ChatEvent::Refused { code: RefusalCode::RateLimited, .. }));
    assert_eq!(refused.count(), 1);
}

#[test]
fn an_oversized_message_is_refused_to_its_author_only() {
    let mut w = World::room();
    w.join(1, "alice");
    w.join(2, "bob");
    w.take(2);
    assert!(w.members.get_mut(&1).unwrap().compose(Kind::Text, &"x".repeat(MAX_TEXT + 1), None, 1).is_err());
    let out = w.relay.guest_line(1, &"x".repeat(MAX_TEXT + 1), w.now);
    assert!(out.iter().all(|o| matches!(o, Decision::Send(1, _) | Decision::Note(_))), "{out:?}");
    assert!(out.iter().any(|o| matches!(o, Decision::Send(1, _))));
}

#[test]
fn a_paste_goes_through_a_flood_is_throttled_then_disconnected() {
    let mut config = Config::new(ROOM);
    config.rate = Rate { burst: 10, per_sec: 2, strikes: 5 };
    let mut w = World::new(config);
    w.join(1, "alice");
    w.join(2, "bob");
    for i in 0..10 {
        w.say(1, &format!("paste {i}"));
    }
    assert_eq!(w.texts(2).len(), 10, "a paste of ten lines goes through");
    for i in 0..4 {
        w.say(1, &format!("flood {i}"));
    }
    assert_eq!(w.texts(2).len(), 10);
    assert!(w.closed.is_empty());
    assert_eq!(
        w.take(1)
            .iter()
            .filter(|e| matches!(e, ChatEvent::Refused { code: RefusalCode::RateLimited, .. }))
            .count(),
        4
    );
    w.say(1, "one too many");
    assert_eq!(w.closed.len(), 1);
    assert!(w.closed[0].1.contains("flooding"));
    assert!(w.take(2).iter().any(
        |e| matches!(e, ChatEvent::Presence { joined: false, reason, .. } if reason.contains("flooding"))
    ));
    // Bob, who kept to the rate, goes on.
    w.say(2, "still here");
    assert!(w.take(2).iter().any(|e| matches!(e, ChatEvent::Delivered { seq: 1, .. })));
}

#[test]
fn a_full_room_refuses_with_a_reason_and_the_host_does_not_count() {
    let mut config = Config::new(ROOM);
    config.max_members = 1;
    let mut relay = Relay::new(config);
    relay.join(HOST, Joiner::Host { name: "host".into(), key: [1; 32] }, Transport::Frames, 0).unwrap();
    relay.join(1, Joiner::Guest, Transport::Lines, 0).unwrap();
    let refused = relay.join(2, Joiner::Guest, Transport::Lines, 0).unwrap_err();
    assert_eq!(refused.to_string(), "the room is full (1 members)");
    assert_eq!(relay.members(), 1);
}

#[test]
fn a_member_sending_relay_frames_is_disconnected_and_the_others_see_it_leave() {
    let mut w = World::room();
    w.join(1, "alice");
    w.join(2, "bob");
    w.take(1);
    let out = w.relay.frame(2, Frame::Ack { room_seq: 1, seq: 1, private: false }.into(), w.now);
    w.apply(out);
    assert_eq!(w.closed.len(), 1);
    assert!(w.take(1).iter().any(|e| matches!(e, ChatEvent::Presence { joined: false, .. })));
}

#[test]
fn peer_text_is_escaped_for_terminals() {
    assert_eq!(printable("plain \u{1b}]0;title\u{7}"), "plain \\u{1b}]0;title\\u{7}");
    assert_eq!(printable("a\u{202e}b\u{200b}c\td"), "a\\u{202e}b\\u{200b}c\td");
    assert_eq!(printable("caf\u{e9} \u{2713}"), "caf\u{e9} \u{2713}");
    let mut w = World::room();
    w.join(1, "alice");
    w.join_guest(2);
    w.say(1, "\u{1b}[2Jgotcha");
    assert_eq!(w.lines[&2].last().unwrap(), "[alice \u{2713}] \\u{1b}[2Jgotcha\n");
    let _ = flags::HISTORY;
}

#[test]
fn a_large_room_lists_everyone_on_who_in_several_frames_and_the_recent_on_joining() {
    let mut w = World::room();
    for id in 1..=120 {
        let out = w.relay.join(id, Joiner::Guest, Transport::Lines, w.now).unwrap();
        w.apply(out);
    }
    w.join(500, "alice");
    let joined = w.take(500);
    let on_joining = joined.iter().find_map(|e| match e {
        ChatEvent::Roster { total, members } => Some((*total, members.len())),
        _ => None,
    });
    assert_eq!(on_joining, Some((121, super::frame::MAX_ROSTER)));
    let out = w.relay.frame(500, Frame::Who.into(), w.now);
    let frames = out.iter().filter(|o| matches!(o, Decision::Send(500, _))).count();
    assert_eq!(frames, 3, "121 members in frames of {}", super::frame::MAX_ROSTER);
    w.apply(out);
    let rosters: Vec<_> = w
        .take(500)
        .into_iter()
        .filter_map(|e| match e {
            ChatEvent::Roster { total, members } => Some((total, members.len())),
            _ => None,
        })
        .collect();
    assert_eq!(rosters, [(121, 121)], "one list, whole");
}

#[test]
fn a_large_room_stops_announcing_joins_and_its_order_stays_whole() {
    let mut config = Config::new(ROOM);
    config.announce_up_to = 3;
    let mut w = World::new(config);
    w.join(1, "alice");
    w.join(2, "bob");
    w.join(3, "carol");
    w.join(4, "dave");
    w.join(5, "erin");
    let presences = |w: &mut World, id| {
        w.take(id).into_iter().filter(|e| matches!(e, ChatEvent::Presence { .. })).count()
    };
    // alice heard bob and carol arrive, not dave or erin (the room had grown past 3).
    assert_eq!(presences(&mut w, 1), 2);
    w.say(5, "hello all");
    for id in 1..=4 {
        let heard = w.take(id);
        assert!(heard.iter().any(|e| matches!(e, ChatEvent::Message(m) if m.text == "hello all")), "{id}");
        assert!(!heard.iter().any(|e| matches!(e, ChatEvent::RelayGap { .. })), "{id}: {heard:?}");
    }
}

/// A post whose text is one byte over [`MAX_TEXT`], as another
/// implementation could send it: the layout's length field says 4,097.
fn one_byte_too_long(w: &mut World, id: SeatId) -> Frame {
    let mut signed = w.signed_by(id, &"x".repeat(MAX_TEXT));
    let len_at = signed.len() - 64 - MAX_TEXT - 2;
    signed[len_at..len_at + 2].copy_from_slice(&(MAX_TEXT as u16 + 1).to_be_bytes());
    signed.insert(len_at + 2, b'x');
    Frame::Post { signed }
}

#[test]
fn a_text_one_byte_too_long_gets_code_1_and_the_connection_is_kept() {
    let mut w = World::room();
    w.join(1, "alice");
    w.join(2, "bob");
    w.take(1);
    w.take(2);
    let long = one_byte_too_long(&mut w, 1);
    w.post(1, &long);
    assert!(w.closed.is_empty(), "{:?}", w.closed);
    assert!(
        w.take(1).iter().any(|e| matches!(e, ChatEvent::Refused { code: RefusalCode::TooLong, .. })),
        "refused as too long"
    );
    assert!(w.texts(2).is_empty());
    w.say(1, "shorter");
    assert_eq!(w.texts(2), ["alice:shorter"]);
}

#[test]
fn a_stream_of_bad_posts_costs_tokens_and_strikes_then_disconnects() {
    let mut config = Config::new(ROOM);
    config.rate = Rate { burst: 100, per_sec: 100, strikes: 5 };
    let mut w = World::new(config);
    w.join(1, "alice");
    w.join(2, "bob");
    w.take(2);
    for i in 0..5 {
        let forged = w.forged(1, &format!("bad {i}"), 200);
        w.post(1, &forged);
    }
    assert_eq!(w.closed.len(), 1, "the fifth refusal in a row disconnects");
    assert!(w.closed[0].1.contains("refused posts in a row"), "{:?}", w.closed);
    // The operator hears of it once a minute, not once a post.
    let told = w.notes.iter().filter(|n| n.starts_with("refused a post from alice")).count();
    assert_eq!(told, 1, "{:?}", w.notes);
    assert!(w.texts(2).is_empty());
    w.say(2, "bob goes on");
    assert!(w.take(2).iter().any(|e| matches!(e, ChatEvent::Delivered { seq: 1, .. })));
}

#[test]
fn a_post_over_the_rate_is_refused_for_speed_whatever_its_signature() {
    let mut config = Config::new(ROOM);
    config.rate = Rate { burst: 1, per_sec: 1, strikes: 50 };
    let mut w = World::new(config);
    w.join(1, "alice");
    w.join(2, "bob");
    w.take(1);
    w.say(1, "first");
    // Out of tokens: a forged post is refused for speed; what its seat's
    // check found is not looked at.
    let forged = w.forged(1, "forged", 30);
    w.post(1, &forged);
    let refusals: Vec<RefusalCode> = w
        .take(1)
        .into_iter()
        .filter_map(|e| match e {
            ChatEvent::Refused { code, .. } => Some(code),
            _ => None,
        })
        .collect();
    assert_eq!(refusals, [RefusalCode::RateLimited]);
}

/// A test vector of docs/PROTOCOL.md: the hex block after its marker.
fn vector(label: &str) -> Vec<u8> {
    const DOC: &str = include_str!("../../docs/PROTOCOL.md");
    let marker = format!("<!-- vector: {label} -->");
    let at = DOC.find(&marker).unwrap_or_else(|| panic!("no vector {label:?} in PROTOCOL.md"));
    let rest = &DOC[at + marker.len()..];
    let start = rest.find("```text\n").unwrap() + "```text\n".len();
    let end = start + rest[start..].find("```").unwrap();
    let digits: String = rest[start..end].chars().filter(|c| !c.is_whitespace()).collect();
    hex_bytes(&digits)
}

#[test]
fn the_protocol_test_vectors_hold() {
    use super::message::{Fields, Signed, chain_hash};
    let seed: [u8; 32] = vector("seed").try_into().unwrap();
    let key = Ed25519Key::from_seed(&seed);
    assert_eq!(key.public_key().to_vec(), vector("public key"));
    let fields = Fields {
        room: [0x42; 32],
        author: key.public_key(),
        session: [
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
        ],
        seq: 1,
        prev: [0; 32],
        time_ms: 1_764_720_000_000,
        kind: Kind::Text,
        recipient: None,
        text: "hello, room".into(),
    };
    let signed = fields.sign(&key).unwrap();
    assert_eq!(signed, vector("signed message"));
    assert_eq!(signed[signed.len() - 64..], vector("signature")[..]);
    assert_eq!(chain_hash(&signed).to_vec(), vector("prev of the next"));
    let opened = Signed::open(&signed).unwrap();
    assert!(opened.valid());
    assert_eq!(opened.fields(), &fields);
    let deliver = Frame::Deliver { room_seq: 7, flags: 0, author: "alice".into(), signed: signed.clone() };
    assert_eq!(deliver.encode().unwrap(), vector("deliver"));
    // Another member reads the Deliver off the wire and verifies it.
    let mut bob = outsider([0x42; 32], 5);
    let mut buffer = FrameBuffer::default();
    buffer.push(&vector("deliver"));
    let frame = buffer.next_frame().unwrap().unwrap();
    let e = bob.receive(frame, 1_764_720_000_500).unwrap();
    assert!(matches!(&e[0], ChatEvent::Message(m) if m.sig == SigCheck::Valid && m.room_seq == 7), "{e:?}");

    // OpenSSL, independently: the public key from the seed, and the signature.
    let dir = std::env::temp_dir().join(format!("tlschat-vectors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    // PKCS#8 and SubjectPublicKeyInfo for Ed25519 (RFC 8410): fixed prefixes.
    let private = [&hex_bytes("302e020100300506032b657004220420")[..], &seed].concat();
    let public = [&hex_bytes("302a300506032b6570032100")[..], &key.public_key()].concat();
    let private = write("private.der", &private);
    let public_path = write("public.der", &public);
    let message = write("message.bin", &signed[..signed.len() - 64]);
    let signature = write("signature.bin", &signed[signed.len() - 64..]);
    let openssl = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new("openssl").args(args).output().expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let derived = openssl(&[
        "pkey".as_ref(),
        "-inform".as_ref(),
        "DER".as_ref(),
        "-in".as_ref(),
        private.as_os_str(),
        "-pubout".as_ref(),
        "-outform".as_ref(),
        "DER".as_ref(),
    ]);
    assert_eq!(derived, public, "OpenSSL derives the same public key from the seed");
    let verified = openssl(&[
        "pkeyutl".as_ref(),
        "-verify".as_ref(),
        "-pubin".as_ref(),
        "-keyform".as_ref(),
        "DER".as_ref(),
        "-inkey".as_ref(),
        public_path.as_os_str(),
        "-rawin".as_ref(),
        "-in".as_ref(),
        message.as_os_str(),
        "-sigfile".as_ref(),
        signature.as_os_str(),
    ]);
    assert!(String::from_utf8_lossy(&verified).contains("Signature Verified Successfully"));
    let _ = std::fs::remove_dir_all(&dir);
}

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn one_key_holds_at_most_its_seats_and_guests_can_be_refused() {
    let mut config = Config::new(ROOM);
    config.seats_per_key = 2;
    config.guests = false;
    let mut relay = Relay::new(config);
    let key = Ed25519Key::generate(&mut SeededRng::new_for_testing_only(40)).public_key();
    let joiner = || Joiner::Verified { name: "alice".into(), key };
    relay.join(1, joiner(), Transport::Frames, 0).unwrap();
    relay.join(2, joiner(), Transport::Frames, 0).unwrap();
    let third = relay.join(3, joiner(), Transport::Frames, 0).unwrap_err();
    assert_eq!(third, super::relay::JoinError::TooManySeats(2));
    assert!(third.to_string().contains("already in the room 2 times"));
    let guest = relay.join(4, Joiner::Guest, Transport::Lines, 0).unwrap_err();
    assert_eq!(guest, super::relay::JoinError::NoGuests);
    // Another key is welcome.
    let other = Ed25519Key::generate(&mut SeededRng::new_for_testing_only(41)).public_key();
    relay.join(5, Joiner::Verified { name: "bob".into(), key: other }, Transport::Frames, 0).unwrap();
}

#[test]
fn the_host_kicks_every_seat_of_a_key_and_a_ban_keeps_it_out() {
    let mut w = World::room();
    w.join(1, "alice");
    w.join(2, "bob");
    w.take(2);
    let alice = w.keys[&1].public_key();
    let (key, out) = w.relay.remove("ALICE", false, w.now).unwrap();
    assert_eq!(key, alice);
    w.apply(out);
    assert_eq!(w.closed.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [1]);
    assert!(w.closed[0].1.contains("removed by the host"), "{:?}", w.closed);
    assert!(w.take(2).iter().any(
        |e| matches!(e, ChatEvent::Presence { joined: false, reason, .. } if reason == "removed by the host")
    ));
    // Kicked, not banned: back again.
    let again = Joiner::Verified { name: "alice".into(), key: alice };
    w.relay.join(3, again.clone(), Transport::Frames, w.now).unwrap();
    let (_, out) = w.relay.remove("alice", true, w.now).unwrap();
    assert!(
        out.iter().any(|o| matches!(o, Decision::Close(3, why) if why.contains("banned by the host"))),
        "{out:?}"
    );
    assert_eq!(
        w.relay.join(4, again, Transport::Frames, w.now).unwrap_err(),
        super::relay::JoinError::Banned
    );
    assert!(w.relay.remove("nobody", false, w.now).unwrap_err().contains("nobody named nobody"));
}

#[test]
fn a_member_ignores_a_name_for_the_session_and_verifies_a_contact() {
    let mut w = World::room();
    w.join(1, "alice");
    w.join(2, "bob");
    w.join_guest(3);
    w.say(1, "before");
    w.take(2);
    let bob = w.members.get_mut(&2).unwrap();
    assert!(matches!(bob.verify("alice").unwrap(), ChatEvent::Verified { ref name, .. } if name == "alice"));
    assert!(bob.contacts().get("alice").unwrap().verified);
    assert!(bob.verify("guest-1").is_err(), "a guest has no key to verify");
    bob.ignore("alice").unwrap();
    bob.ignore("guest-1").unwrap();
    w.say(1, "after");
    let out = w.relay.guest_line(3, "a guest's line", w.now);
    w.apply(out);
    assert!(w.texts(2).is_empty(), "{:?}", w.texts(2));
    // Still checked: alice's chain goes on, and nothing is reported missing.
    w.say(1, "and again");
    assert!(w.take(2).iter().all(|e| !matches!(e, ChatEvent::Message(_))));
}

impl World {
    /// Member `old` comes back on seat `new`, as the driver does: a new
    /// connection, a new [`Member`] with the contacts (and so the room
    /// mark) the old one left.
    fn come_back(&mut self, old: SeatId, new: SeatId, name: &str) {
        let out = self.relay.leave(old, "", self.now);
        self.apply(out);
        let contacts = self.members.remove(&old).unwrap().contacts().clone();
        let key = self.keys[&old].clone();
        self.keys.insert(new, key.clone());
        self.members.insert(new, Member::new(ROOM, key.clone(), &mut self.rng).with_contacts(contacts));
        let joiner = Joiner::Verified { name: name.into(), key: key.public_key() };
        let out = self.relay.join(new, joiner, Transport::Frames, self.now).unwrap();
        self.apply(out);
    }

    /// Sends member `id`'s Resume, if it has one; whether it had.
    fn resume(&mut self, id: SeatId) -> bool {
        let Some(frame) = self.members.get_mut(&id).unwrap().take_resume() else { return false };
        self.post(id, &frame);
        true
    }

    fn resumed(&self, id: SeatId) -> Vec<(u64, u64, bool, u64)> {
        self.events[&id]
            .iter()
            .filter_map(|e| match e {
                ChatEvent::Resumed { after, upto, complete, caught_up } => {
                    Some((*after, *upto, *complete, *caught_up))
                }
                _ => None,
            })
            .collect()
    }
}

#[test]
fn a_member_that_comes_back_gets_what_it_missed_once_in_order_with_live_frames_held() {
    let mut w = World::room();
    w.join(1, "alice");
    w.join(2, "bob");
    for i in 0..3 {
        w.say(1, &format!("m{i}"));
    }
    w.join_guest(9);
    assert_eq!(w.texts(2), ["alice:m0", "alice:m1", "alice:m2"]);
    let seen = w.members[&2].contacts().room_seq().unwrap();
    // Back, but the connection drops before the Resume goes out.
    w.come_back(2, 3, "bob");
    // Away: a message and a guest's line are said.
    w.say(1, "m3");
    let out = w.relay.guest_line(9, "g4", w.now);
    w.apply(out);
    w.come_back(3, 4, "bob");
    // The join's history (m0..g4) is dropped while resuming: nothing shown yet.
    assert_eq!(w.texts(4), Vec::<String>::new());
    // A live message arrives before the answer: held, then not shown twice.
    w.say(1, "m5");
    assert_eq!(w.texts(4), Vec::<String>::new());
    assert!(w.resume(4));
    assert!(!w.resume(4), "a Resume is sent once");
    assert_eq!(w.texts(4), ["alice:m3", "guest-1:g4", "alice:m5"]);
    let [(after, upto, complete, caught_up)] = w.resumed(4)[..] else { panic!("{:?}", w.events[&4]) };
    // The first return never got its answer: what it held was not shown,
    // so the mark did not move.
    assert_eq!(after, seen);
    assert_eq!((upto, complete, caught_up), (w.relay_seq(), true, 3));
    for e in &w.events[&4] {
        assert!(
            !matches!(
                e,
                ChatEvent::RelayGap { .. } | ChatEvent::RelayDisorder { .. } | ChatEvent::Replay { .. }
            ),
            "{e:?}"
        );
    }
    // Live again: the next message is shown at once, nothing is missing.
    w.say(1, "m6");
    assert_eq!(w.texts(4).last().map(String::as_str), Some("alice:m6"));
    assert!(!w.events[&4].iter().any(|e| matches!(e, ChatEvent::RelayGap { .. })));
}

#[test]
fn a_member_away_for_more_than_a_page_catches_up_on_every_message_once() {
    let mut config = Config::new(ROOM);
    config.rate = Rate { burst: 10_000, per_sec: 1000, strikes: 50 };
    let mut w = World::new(config);
    w.join(1, "alice");
    w.join(2, "bob");
    w.say(1, "before");
    w.come_back(2, 3, "bob");
    let out = w.relay.leave(3, "", w.now);
    w.apply(out);
    let missed = 2 * super::relay::MAX_RESUME + 7;
    for i in 0..missed {
        w.say(1, &format!("m{i}"));
    }
    let out = w.relay.join(
        4,
        Joiner::Verified { name: "bob".into(), key: w.keys[&3].public_key() },
        Transport::Frames,
        w.now,
    );
    w.keys.insert(4, w.keys[&3].clone());
    let contacts = w.members.remove(&3).unwrap().contacts().clone();
    w.members.insert(4, Member::new(ROOM, w.keys[&4].clone(), &mut w.rng).with_contacts(contacts));
    w.apply(out.unwrap());
    let mut pages = 0;
    while w.resume(4) {
        pages += 1;
        assert!(pages < 10, "the pages end");
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..missed).map(|i| format!("alice:m{i}")).collect();
    assert_eq!(w.texts(4), expected);
    let [(_, upto, complete, caught_up)] = w.resumed(4)[..] else {
        panic!("one Resumed event for all the pages")
    };
    assert_eq!((upto, complete, caught_up), (w.relay_seq(), true, missed as u64));
    assert!(!w.events[&4].iter().any(|e| matches!(e, ChatEvent::RelayGap { .. } | ChatEvent::Replay { .. })));
}

impl World {
    /// The room's sequence number now: what a newcomer's Welcome says.
    fn relay_seq(&mut self) -> u64 {
        let key = Ed25519Key::generate(&mut self.rng);
        let joiner = Joiner::Verified { name: "probe".into(), key: key.public_key() };
        let out = self.relay.join(999, joiner, Transport::Frames, self.now).unwrap();
        let Some(Decision::Send(_, welcome)) = out.first() else { panic!("{out:?}") };
        let mut buffer = FrameBuffer::default();
        buffer.push(welcome);
        let Some(Frame::Welcome { room_seq, .. }) = buffer.next_frame().unwrap() else { panic!() };
        let out = out
            .into_iter()
            .chain(self.relay.leave(999, "", self.now))
            .filter(|o| !matches!(o, Decision::Send(999, _)))
            .collect();
        self.apply(out);
        // The probe's join took a number; the answer was made before it.
        room_seq - 1
    }
}

#[test]
fn a_gap_older_than_the_relay_keeps_is_told_and_the_rest_shown() {
    let mut config = Config::new(ROOM);
    config.keep.messages = 3;
    let mut w = World::new(config);
    w.join(1, "alice");
    w.join(2, "bob");
    w.say(1, "before");
    w.come_back(2, 3, "bob");
    for i in 0..6 {
        w.say(1, &format!("m{i}"));
        w.now += 1000;
    }
    let out = w.relay.leave(3, "", w.now);
    w.apply(out);
    // Seat 3 never read anything: its member comes back from the mark it had.
    let contacts = w.members.remove(&3).unwrap().contacts().clone();
    let key = w.keys[&3].clone();
    w.members.insert(4, Member::new(ROOM, key.clone(), &mut w.rng).with_contacts(contacts));
    let out = w.relay.join(
        4,
        Joiner::Verified { name: "bob".into(), key: key.public_key() },
        Transport::Frames,
        w.now,
    );
    w.apply(out.unwrap());
    assert!(w.resume(4));
    assert_eq!(w.texts(4), ["alice:m3", "alice:m4", "alice:m5"]);
    let [(_, _, complete, caught_up)] = w.resumed(4)[..] else { panic!() };
    assert_eq!((complete, caught_up), (false, 3));
}

#[test]
fn a_resume_is_answered_in_bounded_pages_once_per_connection_and_a_mark_from_the_future_gets_nothing() {
    let mut config = Config::new(ROOM);
    config.history = 1000;
    let mut w = World::new(config);
    w.join(1, "alice");
    w.join(2, "bob");
    for i in 0..(super::relay::MAX_RESUME + 10) {
        w.say(1, &format!("m{i}"));
        w.now += 1000;
    }
    let frames = |out: &[Decision]| out.iter().filter(|o| matches!(o, Decision::Send(2, _))).count();
    let resumed = |out: &[Decision]| {
        let last = out.iter().rev().find_map(|o| match o {
            Decision::Send(2, bytes) => Some(bytes),
            _ => None,
        });
        let mut buffer = FrameBuffer::default();
        buffer.push(last.expect("a frame for the member"));
        buffer.next_frame().unwrap()
    };
    // The oldest MAX_RESUME, then a Resumed ending at the last of them.
    let out = w.relay.frame(2, Frame::Resume { after: 0 }.into(), w.now);
    assert_eq!(frames(&out), super::relay::MAX_RESUME + 1);
    let page_end = super::relay::MAX_RESUME as u64 + 2; // two joins, then the messages
    assert_eq!(resumed(&out), Some(Frame::Resumed { after: 0, upto: page_end, complete: true }));
    // The rest is asked for from there, and only from there.
    let elsewhere = w.relay.frame(2, Frame::Resume { after: 0 }.into(), w.now);
    assert!(matches!(resumed(&elsewhere), Some(Frame::Refused { code: RefusalCode::BadMessage, .. })));
    let out = w.relay.frame(2, Frame::Resume { after: page_end }.into(), w.now);
    assert_eq!(frames(&out), 10 + 1);
    let room_seq = w.relay.room_seq();
    assert_eq!(resumed(&out), Some(Frame::Resumed { after: page_end, upto: room_seq, complete: true }));
    // Once it has it all, another Resume on the connection is refused, with a strike.
    let again = w.relay.frame(2, Frame::Resume { after: room_seq }.into(), w.now);
    assert_eq!(frames(&again), 1);
    assert!(matches!(resumed(&again), Some(Frame::Refused { code: RefusalCode::BadMessage, .. })));
    let mut buffer = FrameBuffer::default();
    // From beyond the room's order: nothing, and nothing is missing from it.
    w.join(3, "carol");
    let out = w.relay.frame(3, Frame::Resume { after: u64::MAX }.into(), w.now);
    let [Decision::Send(3, only)] = &out[..] else { panic!("{out:?}") };
    buffer.push(only);
    assert!(matches!(
        buffer.next_frame().unwrap(),
        Some(Frame::Resumed { after: u64::MAX, complete: true, .. })
    ));
}

#[test]
fn a_room_whose_order_started_again_is_told_and_its_history_shown() {
    let mut w = World::room();
    w.join(1, "alice");
    w.say(1, "new history");
    let key = Ed25519Key::generate(&mut w.rng);
    let mut contacts = super::Contacts::new();
    contacts.saw_room_seq(500);
    w.keys.insert(2, key.clone());
    w.members.insert(2, Member::new(ROOM, key.clone(), &mut w.rng).with_contacts(contacts));
    let out = w.relay.join(
        2,
        Joiner::Verified { name: "bob".into(), key: key.public_key() },
        Transport::Frames,
        w.now,
    );
    w.apply(out.unwrap());
    assert!(!w.resume(2), "no resume from a mark the room never reached");
    assert!(w.events[&2].iter().any(|e| matches!(e, ChatEvent::OrderRestarted { seen: 500, .. })));
    assert_eq!(w.texts(2), ["alice:new history"]);
    assert_eq!(w.members[&2].contacts().room_seq(), Some(2), "the mark follows the new order");
}

#[test]
fn a_resumed_nobody_asked_for_is_a_protocol_error() {
    let mut member = outsider(ROOM, 3);
    assert!(member.receive(Frame::Resumed { after: 0, upto: 9, complete: true }, 0).is_err());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Whatever the moments bob's connection drops (before his resume
    /// went out, while live messages arrive before the answer, several
    /// times in a row), across all his connections he is shown every
    /// message once, in the room's order.
    #[test]
    fn a_member_that_keeps_coming_back_sees_every_message_once_in_order(
        plan in proptest::collection::vec((0u8..4, 0usize..4), 1..14),
    ) {
        let mut w = World::room();
        w.join(1, "alice");
        w.join(2, "bob");
        let (mut seat, mut said) = (2, Vec::new());
        let say = |w: &mut World, said: &mut Vec<String>, count: usize| {
            for _ in 0..count {
                let text = format!("m{}", said.len());
                w.say(1, &text);
                said.push(format!("alice:{text}"));
                w.now += 1000;
            }
        };
        for (action, count) in plan {
            match action {
                0 => say(&mut w, &mut said, count),
                // Back, live messages before the resume goes out, then it does.
                1 => {
                    w.come_back(seat, seat + 1, "bob");
                    seat += 1;
                    say(&mut w, &mut said, count);
                    w.resume(seat);
                }
                // Back, and gone again before the resume goes out.
                2 => {
                    w.come_back(seat, seat + 1, "bob");
                    seat += 1;
                    say(&mut w, &mut said, count);
                }
                _ => {
                    w.resume(seat);
                }
            }
        }
        w.come_back(seat, seat + 1, "bob");
        w.resume(seat + 1);
        let shown: Vec<String> = (2..=seat + 1).flat_map(|id| w.texts(id)).collect();
        proptest::prop_assert_eq!(shown, said);
        for id in 2..=seat + 1 {
            for e in w.events.get(&id).into_iter().flatten() {
                let bad = matches!(e, ChatEvent::RelayGap { .. } | ChatEvent::RelayDisorder { .. } | ChatEvent::Replay { .. })
                    || matches!(e, ChatEvent::Resumed { complete: false, .. });
                proptest::prop_assert!(!bad, "{:?}", e);
            }
        }
    }
}

#[test]
fn history_at_or_below_the_mark_is_not_shown_again_whatever_the_relay_sends() {
    let mut w = World::room();
    w.join(1, "alice");
    w.join(2, "bob");
    w.say(1, "m0");
    w.say(1, "m1");
    let seen: Vec<(u64, Vec<u8>)> = w.events[&2]
        .iter()
        .filter_map(|e| match e {
            ChatEvent::Message(m) => Some((m.room_seq, m.signed.to_vec())),
            _ => None,
        })
        .collect();
    let mark = w.members[&2].contacts().room_seq().unwrap();
    assert_eq!(mark, seen[1].0);
    w.come_back(2, 3, "bob");
    let Some(Frame::Resume { after }) = w.members.get_mut(&3).unwrap().take_resume() else { panic!() };
    assert_eq!(after, mark);
    // A relay that ignores `after` and sends everything it has again.
    for (room_seq, signed) in seen {
        let again = Frame::Deliver { room_seq, flags: flags::HISTORY, author: "alice".into(), signed };
        w.deliver(3, &again.encode().unwrap());
    }
    w.deliver(3, &Frame::Resumed { after, upto: mark, complete: true }.encode().unwrap());
    assert_eq!(w.texts(3), Vec::<String>::new());
    assert!(matches!(w.resumed(3)[..], [(_, _, true, 0)]), "{:?}", w.events[&3]);
}

impl World {
    /// Member `id` says `text` to `to` (`/msg`): what it sends goes to the relay.
    fn msg(&mut self, id: SeatId, to: &str, text: &str) {
        let member = self.members.get_mut(&id).unwrap();
        let events = member.say(Kind::Text, text, Some(to), self.now).unwrap();
        let frames = member.take_outgoing();
        self.events.entry(id).or_default().extend(events);
        for frame in frames {
            self.post(id, &frame);
        }
    }

    /// The frames the relay sends to `to` when `from` sends `frame`, not
    /// delivered: for a test that plays a lying relay.
    fn intercept(&mut self, from: SeatId, frame: Frame, to: SeatId) -> Vec<Frame> {
        let out = self.relay.frame(from, frame.into(), self.now);
        let mut frames = Vec::new();
        for o in out {
            if let Decision::Send(id, bytes) = o
                && id == to
            {
                let mut buffer = FrameBuffer::default();
                buffer.push(&bytes);
                while let Some(frame) = buffer.next_frame().unwrap() {
                    frames.push(frame);
                }
            }
        }
        frames
    }

    fn key(&self, id: SeatId) -> [u8; 32] {
        self.keys[&id].public_key()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn e2e_texts(events: &[ChatEvent]) -> Vec<(String, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::Message(m) if m.sig == SigCheck::Valid => Some((m.text.clone(), m.e2e)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_private_message_goes_end_to_end_and_the_relay_never_holds_its_text() {
    let mut w = World::room();
    w.join(1, "alice");
    w.join(2, "bob");
    w.join(3, "carol");
    w.take(1);
    w.msg(1, "bob", "the secret is 4711");
    w.msg(1, "bob", "and the second one");
    let alice = w.take(1);
    // The first line waited for the group (its key package was fetched);
    // the group made, both went sealed, and the relay acknowledged them.
    assert!(matches!(&alice[0], ChatEvent::E2eWaiting { to, queued: 1, .. } if to == "bob"), "{alice:?}");
    assert!(alice.iter().any(|e| matches!(e, ChatEvent::E2eReady { made: true, .. })), "{alice:?}");
    let sent: Vec<bool> = alice
        .iter()
        .filter_map(|e| if let ChatEvent::Sent { e2e, .. } = e { Some(*e2e) } else { None })
        .collect();
    assert_eq!(sent, [true, true]);
    assert_eq!(alice.iter().filter(|e| matches!(e, ChatEvent::Delivered { private: true, .. })).count(), 2);
    let bob = w.take(2);
    assert!(bob.iter().any(|e| matches!(e, ChatEvent::E2eReady { made: false, .. })), "{bob:?}");
    assert_eq!(
        e2e_texts(&bob),
        [("the secret is 4711".to_owned(), true), ("and the second one".to_owned(), true)]
    );
    // Bob answers in the same group, at once.
    w.msg(2, "alice", "got it");
    assert!(!w.take(2).iter().any(|e| matches!(e, ChatEvent::E2eWaiting { .. })));
    assert_eq!(e2e_texts(&w.take(1)), [("got it".to_owned(), true)]);
    assert!(e2e_texts(&w.take(3)).is_empty());
    for text in ["the secret is 4711", "and the second one", "got it"] {
        assert!(!contains(&w.wire, text.as_bytes()), "the relay saw {text:?}");
    }
}

#[test]
fn a_private_message_with_no_group_possible_is_refused_never_sent_in_clear() {
    let mut w = World::room();
    w.join(1, "alice");
    w.join(2, "bob");
    let out = w.relay.leave(2, "", w.now);
    w.apply(out);
    w.take(1);
    w.msg(1, "bob", "are you there");
    let alice = w.take(1);
    assert!(
        alice.iter().any(|e| matches!(e, ChatEvent::Refused { text, .. } if text.starts_with("not sent: no end-to-end group"))),
        "{alice:?}"
    );
    assert!(!alice.iter().any(|e| matches!(e, ChatEvent::Sent { .. })));
    assert!(!contains(&w.wire, b"are you there"));
}

#[test]
fn a_lying_relay_cannot_alter_replay_reorder_or_misattribute_end_to_end_messages() {
    let mut w = World::room();
    w.join(1, "alice");
    w.join(2, "bob");
    w.join(3, "carol");
    w.msg(1, "bob", "hello");
    w.take(1);
    assert_eq!(e2e_texts(&w.take(2)), [("hello".to_owned(), true)]);
    // The relay holds alice's next four sealed messages to bob.
    let mut sealed = Vec::new();
    for text in ["one", "two", "three", "four"] {
        let member = w.members.get_mut(&1).unwrap();
        member.say(Kind::Text, text, Some("bob"), w.now).unwrap();
        let frame = member.take_outgoing().pop().unwrap();
        let got = w.intercept(1, frame, 2);
        let [Frame::Sealed { message, .. }] = got.as_slice() else { panic!("{got:?}") };
        sealed.push(message.clone());
    }
    let alice_key = w.key(1);
    let carol_key = w.key(3);
    let sealed_as = |from: &str, key: [u8; 32], message: &[u8]| {
        Frame::Sealed { room_seq: 0, from: from.into(), key, message: message.to_vec() }.encode().unwrap()
    };
    // Altered (its tag does not hold: nothing is used up).
    let mut altered = sealed[0].clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    w.deliver(2, &sealed_as("alice", alice_key, &altered));
    // Delivered, then replayed.
    w.deliver(2, &sealed_as("alice", alice_key, &sealed[0]));
    w.deliver(2, &sealed_as("alice", alice_key, &sealed[0]));
    // Said to be from carol: refused, and lost to bob as if dropped (MLS
    // opened it before its sender could be compared).
    w.deliver(2, &sealed_as("carol", carol_key, &sealed[1]));
    // Reordered: four before three.
    w.deliver(2, &sealed_as("alice", alice_key, &sealed[3]));
    w.deliver(2, &sealed_as("alice", alice_key, &sealed[2]));
    let bob = w.take(2);
    // Only what alice sealed, once each, in her order; what was lost is
    // reported missing by her signed chain.
    assert_eq!(e2e_texts(&bob), [("one".to_owned(), true), ("four".to_owned(), true)], "{bob:#?}");
    let refused: Vec<&str> = bob
        .iter()
        .filter_map(|e| if let ChatEvent::E2eRefused { from, .. } = e { Some(from.as_str()) } else { None })
        .collect();
    assert_eq!(refused, ["alice", "alice", "carol", "alice"], "{bob:#?}");
    assert!(
        bob.iter().any(|e| matches!(e, ChatEvent::Message(m) if m.text == "four" && m.missing_before == 2))
    );
    assert!(!bob.iter().any(|e| matches!(e, ChatEvent::Message(m) if m.text == "two" || m.text == "three")));
}

#[test]
fn a_key_package_of_another_key_is_refused_and_nothing_is_sent() {
    let mut w = World::room();
    w.join(1, "alice");
    w.join(2, "bob");
    w.join(3, "carol");
    w.take(1);
    // Carol's key package, which the relay will pass off as bob's.
    let carol_key = w.key(3);
    let got = w.intercept(2, Frame::Fetch { key: carol_key }, 2);
    let Some(Frame::KeyPackage { package, .. }) = got.into_iter().next() else { panic!("a key package") };
    let member = w.members.get_mut(&1).unwrap();
    member.say(Kind::Text, "for bob only", Some("bob"), w.now).unwrap();
    assert!(matches!(member.take_outgoing().as_slice(), [Frame::Fetch { .. }]));
    let bob_key = w.key(2);
    w.deliver(1, &Frame::KeyPackage { key: bob_key, package }.encode().unwrap());
    let alice = w.take(1);
    assert!(alice.iter().any(|e| matches!(e, ChatEvent::E2eRefused { .. })), "{alice:?}");
    assert!(alice.iter().any(|e| matches!(e, ChatEvent::Refused { .. })), "{alice:?}");
    assert!(!alice.iter().any(|e| matches!(e, ChatEvent::Sent { .. })));
    assert!(!contains(&w.wire, b"for bob only"));
}

#[test]
fn oversized_sealed_messages_and_key_packages_are_refused_and_reach_nobody() {
    let mut w = World::room();
    w.join(1, "alice");
    w.join(2, &"b".repeat(32));
    w.take(1);
    w.take(2);
    let bob = w.key(2);
    // The longest a frame can carry: the relay's Sealed would not fit.
    let mut message = vec![0, 1, 0, 2];
    message.resize(super::frame::MAX_FRAME - 32 - 8 - 2, 7);
    let to_bob = w.intercept(1, Frame::Seal { to: bob, seq: 1, message }, 2);
    assert!(to_bob.is_empty(), "{to_bob:?}");
    let short = w.intercept(1, Frame::Seal { to: bob, seq: 0, message: vec![0, 1, 0, 2, 9] }, 2);
    assert!(matches!(short.as_slice(), [Frame::Sealed { .. }]), "a short one reaches bob: {short:?}");
    let mut package = vec![0, 1, 0, 5];
    package.resize(super::frame::MAX_KEY_PACKAGE + 1, 0);
    let out = w.relay.frame(1, Frame::Publish { packages: vec![package] }.into(), w.now);
    assert!(out.iter().any(|o| matches!(o, Decision::Send(1, bytes) if bytes[0] == 0x87)), "{out:?}");
}

#[test]
fn a_relay_that_keeps_saying_no_key_package_is_left_gets_at_most_64() {
    let mut member = outsider(ROOM, 5);
    member.receive(Frame::Welcome { name: "carol".into(), room_seq: 1, history: 0, e2e: false }, 1).unwrap();
    let mut made = 0;
    let mut told = 0;
    for _ in 0..100 {
        let events = member.receive(Frame::PackagesLeft { left: 0 }, 1).unwrap();
        told += events.iter().filter(|e| matches!(e, ChatEvent::E2eRefused { .. })).count();
        for frame in member.take_outgoing() {
            if let Frame::Publish { packages } = frame {
                made += packages.len();
            }
        }
    }
    assert_eq!(made, 64, "{made} in all, the first 4 on joining included");
    assert_eq!(told, 1);
}

#[test]
fn a_line_waiting_for_its_group_is_refused_when_its_recipient_leaves() {
    let mut w = World::room();
    w.join(1, "alice");
    w.join(2, "bob");
    w.take(1);
    let member = w.members.get_mut(&1).unwrap();
    let events = member.say(Kind::Text, "wait for me", Some("bob"), w.now).unwrap();
    assert!(matches!(events.as_slice(), [ChatEvent::E2eWaiting { .. }]));
    // The relay never answers the fetch; bob leaves.
    assert!(matches!(member.take_outgoing().as_slice(), [Frame::Fetch { .. }]));
    let out = w.relay.leave(2, "", w.now);
    w.apply(out);
    let alice = w.take(1);
    assert!(
        alice.iter().any(|e| matches!(e, ChatEvent::Refused { text, .. }
            if text.starts_with("not sent: no end-to-end group: bob left"))),
        "{alice:?}"
    );
    assert!(!contains(&w.wire, b"wait for me"));
}

mod group_tests;
mod pair_updates;
