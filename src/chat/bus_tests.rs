//! Several relays of one room ordered by a bus ([`Config::bus`]), in
//! memory: what each relay publishes goes into one log in the order it
//! arrives, and every relay is fed every entry of the log with its index
//! as room_seq, as JetStream's stream does.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::frame::{Frame, FrameBuffer};
use super::member::{ChatEvent, Member};
use super::message::Kind;
use super::peers::{self, Asked, Done};
use super::relay::{BusEntry, Config, Decision, Joiner, Relay, Remote, SeatId, Transport};
use crate::tls::{Ed25519Key, SeededRng};

const ROOM: [u8; 32] = [0x24; 32];

/// Relays, their members, and the bus's log.
struct Cluster {
    relays: Vec<Relay>,
    members: HashMap<(usize, SeatId), Member>,
    events: HashMap<(usize, SeatId), Vec<ChatEvent>>,
    lines: HashMap<(usize, SeatId), Vec<String>>,
    closed: Vec<(usize, SeatId, String)>,
    notes: Vec<String>,
    /// Published, not yet ordered: relay, seat, entry.
    published: VecDeque<(usize, SeatId, Arc<[u8]>)>,
    /// The bus's log: who published each entry, and the entry.
    log: Vec<(usize, SeatId, Arc<[u8]>)>,
    /// Asked of the other relays: relay, seat, what.
    remote: VecDeque<(usize, SeatId, Remote)>,
    now: u64,
    rng: SeededRng,
}

impl Cluster {
    fn new(relays: usize) -> Self {
        let config = || {
            let mut config = Config::new(ROOM);
            config.bus = true;
            config
        };
        Self {
            relays: (0..relays).map(|_| Relay::new(config())).collect(),
            members: HashMap::new(),
            events: HashMap::new(),
            lines: HashMap::new(),
            closed: Vec::new(),
            notes: Vec::new(),
            published: VecDeque::new(),
            log: Vec::new(),
            remote: VecDeque::new(),
            now: 5_000_000,
            rng: SeededRng::new_for_testing_only(11),
        }
    }

    fn join(&mut self, relay: usize, id: SeatId, name: &str) {
        let key = Ed25519Key::generate(&mut self.rng);
        let joiner = Joiner::Verified { name: name.into(), key: key.public_key() };
        self.members.insert((relay, id), Member::new(ROOM, key, &mut self.rng));
        let out = self.relays[relay].join(id, joiner, Transport::Frames, self.now).unwrap();
        self.apply(relay, out);
    }

    fn say(&mut self, relay: usize, id: SeatId, text: &str) {
        let (frame, _) =
            self.members.get_mut(&(relay, id)).unwrap().compose(Kind::Text, text, None, self.now).unwrap();
        let out = self.relays[relay].frame(id, frame.into(), self.now);
        self.apply(relay, out);
    }

    fn apply(&mut self, relay: usize, out: Vec<Decision>) {
        for o in out {
            match o {
                Decision::Send(id, bytes) => self.deliver(relay, id, &bytes),
                Decision::Close(id, reason) => self.closed.push((relay, id, reason)),
                Decision::Note(note) => self.notes.push(note),
                Decision::Publish(id, entry) => self.published.push_back((relay, id, entry)),
                Decision::Remote(id, what) => self.remote.push_back((relay, id, what)),
            }
        }
    }

    /// The bus orders what was published, one entry at a time, and every
    /// relay fans each out; until nothing is left.
    fn pump(&mut self) {
        while let Some((from, id, entry)) = self.published.pop_front() {
            self.log.push((from, id, entry.clone()));
            let seq = self.log.len() as u64;
            for relay in 0..self.relays.len() {
                let origin = (relay == from).then_some(id);
                let out = self.relays[relay].ordered(BusEntry::check(seq, &entry, origin), self.now);
                self.apply(relay, out);
            }
        }
    }

    fn deliver(&mut self, relay: usize, id: SeatId, bytes: &[u8]) {
        match self.members.get_mut(&(relay, id)) {
            Some(member) => {
                let mut buffer = FrameBuffer::default();
                buffer.push(bytes);
                while let Some(frame) = buffer.next_frame().unwrap() {
                    let events = member.receive(frame, self.now).unwrap();
                    self.events.entry((relay, id)).or_default().extend(events);
                }
            }
            None => {
                self.lines.entry((relay, id)).or_default().push(String::from_utf8(bytes.to_vec()).unwrap())
            }
        }
    }

    /// The room messages `(relay, id)` heard live, as (room_seq, from, text).
    fn heard(&self, relay: usize, id: SeatId) -> Vec<(u64, String, String)> {
        self.events
            .get(&(relay, id))
            .into_iter()
            .flatten()
            .filter_map(|e| match e {
                ChatEvent::Message(m) if !m.history => Some((m.room_seq, m.from.clone(), m.text.clone())),
                _ => None,
            })
            .collect()
    }

    fn events_of(&self, relay: usize, id: SeatId) -> &[ChatEvent] {
        self.events.get(&(relay, id)).map_or(&[], Vec::as_slice)
    }
}

#[test]
fn members_on_three_relays_hear_one_order_numbered_by_the_bus_and_authors_get_its_number() {
    let mut c = Cluster::new(3);
    for (relay, name) in ["alice", "bob", "carol"].iter().enumerate() {
        c.join(relay, 1, name);
    }
    // Nobody is welcomed before the bus has ordered the join.
    assert!(c.events_of(0, 1).is_empty(), "{:?}", c.events_of(0, 1));
    c.pump();
    // The welcome's room_seq is the join's number on the bus.
    for relay in 0..3 {
        let welcome = c.events_of(relay, 1).iter().find(|e| matches!(e, ChatEvent::Welcome { .. }));
        assert!(welcome.is_some(), "relay {relay}: {:?}", c.events_of(relay, 1));
    }
    // Published in an interleaving no relay chose.
    c.say(2, 1, "c1");
    c.say(0, 1, "a1");
    c.say(1, 1, "b1");
    c.say(0, 1, "a2");
    c.pump();
    let order = [(4, "carol", "c1"), (5, "alice", "a1"), (6, "bob", "b1"), (7, "alice", "a2")];
    for (relay, me) in [(0, "alice"), (1, "bob"), (2, "carol")] {
        let expected: Vec<(u64, String, String)> = order
            .iter()
            .filter(|(_, from, _)| *from != me)
            .map(|(seq, from, text)| (*seq, (*from).to_owned(), (*text).to_owned()))
            .collect();
        assert_eq!(c.heard(relay, 1), expected, "{me}");
        // Its own messages acknowledged with the bus's numbers.
        let acks: Vec<u64> = c
            .events_of(relay, 1)
            .iter()
            .filter_map(|e| match e {
                ChatEvent::Delivered { room_seq, private: false, .. } => Some(*room_seq),
                _ => None,
            })
            .collect();
        let mine: Vec<u64> = order.iter().filter(|(_, from, _)| *from == me).map(|(seq, ..)| *seq).collect();
        assert_eq!(acks, mine, "{me}");
        // No gap, no repeat: every number of the bus reached every member once.
        assert!(
            !c.events_of(relay, 1)
                .iter()
                .any(|e| matches!(e, ChatEvent::RelayGap { .. } | ChatEvent::RelayDisorder { .. })),
            "{me}: {:?}",
            c.events_of(relay, 1)
        );
    }
    // A late joiner on any relay gets the history from that relay's log.
    c.join(1, 2, "dave");
    c.pump();
    let history: Vec<String> = c
        .events_of(1, 2)
        .iter()
        .filter_map(|e| match e {
            ChatEvent::Message(m) if m.history => Some(m.text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(history, ["c1", "a1", "b1", "a2"]);
    // A leave goes through the bus too.
    let out = c.relays[2].leave(1, "", c.now);
    c.apply(2, out);
    c.pump();
    assert!(
        c.events_of(0, 1).iter().any(
            |e| matches!(e, ChatEvent::Presence { joined: false, member, .. } if member.name == "carol")
        ),
        "{:?}",
        c.events_of(0, 1)
    );
}

#[test]
fn an_entry_from_another_relay_that_does_not_verify_is_skipped_and_members_see_the_gap() {
    let mut c = Cluster::new(2);
    c.join(0, 1, "alice");
    c.join(1, 1, "bob");
    c.pump();
    // Relay 1 lies: it publishes bob's post with a byte of the text changed.
    let (frame, _) = c.members.get_mut(&(1, 1)).unwrap().compose(Kind::Text, "honest", None, c.now).unwrap();
    let Frame::Post { mut signed } = frame else { unreachable!() };
    let last = signed.len() - 1;
    signed[last] ^= 1;
    let forged = Frame::Deliver { room_seq: 0, flags: 0, author: "bob".into(), signed };
    c.published.push_back((1, 1, forged.encode().unwrap().into()));
    c.pump();
    c.say(1, 1, "after");
    c.pump();
    assert_eq!(c.heard(0, 1), [(4, "bob".to_owned(), "after".to_owned())]);
    assert!(c.notes.iter().any(|n| n.contains("skipped the bus's entry 3") && n.contains("does not verify")));
    assert!(c.events_of(0, 1).iter().any(|e| matches!(e, ChatEvent::RelayGap { missing: 1 })));
    // Not even kept as history.
    c.join(0, 2, "carol");
    c.pump();
    assert!(
        !c.events_of(0, 2).iter().any(|e| matches!(e, ChatEvent::Message(m) if m.text == "honest")),
        "{:?}",
        c.events_of(0, 2)
    );
}

#[test]
fn what_the_bus_refuses_is_refused_to_its_author_and_a_join_it_refuses_is_closed() {
    let mut c = Cluster::new(1);
    c.join(0, 1, "alice");
    c.pump();
    c.say(0, 1, "lost");
    let (_, id, entry) = c.published.pop_front().unwrap();
    let out = c.relays[0].unpublished(id, &entry, "timed out", c.now);
    c.apply(0, out);
    assert!(
        c.events_of(0, 1).iter().any(|e| matches!(e, ChatEvent::Refused { text, .. } if text.contains("bus did not take it (timed out)"))),
        "{:?}",
        c.events_of(0, 1)
    );
    c.join(0, 2, "bob");
    let (_, id, entry) = c.published.pop_front().unwrap();
    let out = c.relays[0].unpublished(id, &entry, "no responders", c.now);
    c.apply(0, out);
    assert!(
        c.closed.iter().any(|(_, id, why)| *id == 2 && why.contains("did not take the join")),
        "{:?}",
        c.closed
    );
    // Its leave is published, so that relays that did see the join hear it.
    assert_eq!(c.published.len(), 1);
}

#[test]
fn an_entry_the_bus_gives_again_or_that_is_not_a_room_entry_changes_nothing() {
    let mut c = Cluster::new(1);
    c.join(0, 1, "alice");
    c.join(0, 2, "bob");
    c.pump();
    c.say(0, 1, "once");
    c.pump();
    let (_, _, entry) = c.log.last().cloned().unwrap();
    let out = c.relays[0].ordered(BusEntry::check(c.log.len() as u64, &entry, None), c.now);
    assert!(out.is_empty(), "{out:?}");
    for bad in [
        Frame::Who.encode().unwrap(),
        vec![0x82, 0, 0],
        Frame::Ack { room_seq: 1, seq: 1, private: false }.encode().unwrap(),
    ] {
        let seq = c.relays[0].room_seq() + 1;
        let out = c.relays[0].ordered(BusEntry::check(seq, &bad, None), c.now);
        assert!(matches!(out.as_slice(), [Decision::Note(n)] if n.contains("skipped")), "{out:?}");
    }
    assert_eq!(c.heard(0, 2), [(3, "alice".to_owned(), "once".to_owned())]);
}

impl Cluster {
    /// Sends what the member at `(relay, id)` has to send (key packages,
    /// Fetch, Seal) to its relay.
    fn flush(&mut self, relay: usize, id: SeatId) {
        let frames = self.members.get_mut(&(relay, id)).unwrap().take_outgoing();
        for frame in frames {
            let out = self.relays[relay].frame(id, frame.into(), self.now);
            self.apply(relay, out);
        }
    }

    /// Carries out what the relays asked of the others, as the room task
    /// does over the bus: through [`peers`]'s bytes, the key held on
    /// relay `holder`.
    fn route(&mut self, holder: usize, asked: &mut Asked) {
        while let Some((relay, id, what)) = self.remote.pop_front() {
            assert_ne!(relay, holder);
            let done = match what {
                Remote::Fetch { key } => {
                    let q = asked.fetch(id, key, self.now).unwrap();
                    let mut out = Vec::new();
                    let package = self.relays[holder].take_package(SeatId::MAX, key, &mut out);
                    self.apply(holder, out);
                    asked.answer(q, &peers::package_answer(key, package))
                }
                Remote::Seal { to, seq, frame, here } => {
                    assert!(!here);
                    let q = asked.seal(id, seq, 1, self.now).unwrap();
                    let (to, frame) = peers::open_route(&peers::route(&to, &frame)).unwrap();
                    let mut out = Vec::new();
                    let n = self.relays[holder].deliver_to_key(to, &frame, &mut out);
                    self.apply(holder, out);
                    asked.answer(q[0], &peers::route_answer(n))
                }
            };
            let out = match done.unwrap() {
                Done::Package { seat, key, package } => {
                    vec![Decision::Send(seat, Frame::KeyPackage { key, package }.encode().unwrap().into())]
                }
                Done::Sealed { seat, seq, reached } => {
                    assert!(reached);
                    if seq == 0 {
                        continue;
                    }
                    vec![Decision::Send(
                        seat,
                        Frame::Ack { room_seq: 0, seq, private: true }.encode().unwrap().into(),
                    )]
                }
            };
            self.apply(relay, out);
        }
    }
}

#[test]
fn a_private_message_reaches_a_member_of_another_relay_end_to_end_through_the_relays_questions() {
    let mut c = Cluster::new(2);
    c.join(0, 1, "alice");
    c.join(1, 1, "bob");
    c.pump();
    // Bob's key packages stay with his seat on relay 1.
    c.flush(1, 1);
    c.flush(0, 1);
    c.members.get_mut(&(0, 1)).unwrap().say(Kind::Text, "across the relays", Some("bob"), c.now).unwrap();
    c.flush(0, 1);
    // Relay 0 has no seat of bob's: it asks.
    assert!(matches!(c.remote.front(), Some((0, 1, Remote::Fetch { .. }))), "{:?}", c.remote);
    let mut asked = Asked::default();
    c.route(1, &mut asked);
    // Alice made the group: her Welcome and the line go as Seals, routed.
    c.flush(0, 1);
    assert!(
        matches!(c.remote.front(), Some((0, 1, Remote::Seal { seq: 0, here: false, .. }))),
        "{:?}",
        c.remote
    );
    c.route(1, &mut asked);
    let got: Vec<&ChatEvent> =
        c.events[&(1, 1)].iter().filter(|e| matches!(e, ChatEvent::Message(_))).collect();
    let [ChatEvent::Message(m)] = got.as_slice() else { panic!("{:?}", c.events[&(1, 1)]) };
    assert_eq!((m.text.as_str(), m.e2e), ("across the relays", true));
    // Acknowledged to alice as private.
    assert!(
        c.events[&(0, 1)].iter().any(|e| matches!(e, ChatEvent::Delivered { private: true, .. })),
        "{:?}",
        c.events[&(0, 1)]
    );
    assert!(asked.is_empty());
}

#[test]
fn a_key_removed_by_another_relays_host_is_disconnected_here_and_refused_after() {
    let mut c = Cluster::new(2);
    c.join(1, 1, "bob");
    c.join(1, 2, "carol");
    c.pump();
    let bob = *c.relays[1].roster(c.now).iter().find(|m| m.name == "bob").map(|m| &m.key).unwrap();
    let before = c.relays[1].changes();
    let out = c.relays[1].remove_key(bob, true, "banned by the host", c.now);
    c.apply(1, out);
    assert!(c.closed.iter().any(|(r, id, why)| (*r, *id, why.as_str()) == (1, 1, "banned by the host")));
    assert!(c.relays[1].changes() > before);
    let again = Joiner::Verified { name: "bob".into(), key: bob };
    assert_eq!(
        c.relays[1].join(3, again, Transport::Frames, c.now).unwrap_err(),
        super::relay::JoinError::Banned
    );
    // The guest numbers a bus gives.
    c.relays[0].number_next_guest(7);
    c.relays[0].join(9, Joiner::Guest, Transport::Lines, c.now).unwrap();
    assert_eq!(c.relays[0].name(9), Some("guest-7"));
}

#[test]
fn a_joiners_list_names_the_most_recent_of_the_whole_room_and_counts_every_relay() {
    use super::frame::{MAX_ROSTER, MemberInfo, Standing};
    let mut c = Cluster::new(1);
    c.join(0, 1, "alice");
    c.pump();
    let elsewhere: Vec<MemberInfo> = (0..120u32)
        .map(|i| MemberInfo {
            name: format!("far{i}"),
            standing: Standing::Verified,
            key: [u8::try_from(i).unwrap(); 32],
            idle_secs: 1000 + i,
        })
        .collect();
    c.relays[0].seated_elsewhere(elsewhere.iter(), elsewhere.len());
    c.join(0, 2, "bob");
    c.pump();
    let roster = c.events[&(0, 2)].iter().find_map(|e| match e {
        ChatEvent::Roster { total, members } => Some((*total, members.clone())),
        _ => None,
    });
    let (total, members) = roster.unwrap();
    assert_eq!(total, 122);
    assert_eq!(members.len(), MAX_ROSTER);
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    // Both here, idle 0, and the 48 least idle of the others.
    assert!(names.contains(&"alice") && names.contains(&"bob"), "{names:?}");
    assert!(names.contains(&"far47") && !names.contains(&"far48"), "{names:?}");
    // A guest hears the room's count.
    let out = c.relays[0].join(3, Joiner::Guest, Transport::Lines, c.now).unwrap();
    c.apply(0, out);
    c.pump();
    let welcome = &c.lines[&(0, 3)][0];
    assert!(welcome.contains("123 in the room"), "{welcome}");
}

#[test]
fn the_bus_reader_checks_each_post_once_and_the_room_orders_only_what_it_checked() {
    let mut c = Cluster::new(1);
    c.join(0, 1, "alice");
    c.join(0, 2, "bob");
    c.pump();
    let (frame, _) = c.members.get_mut(&(0, 1)).unwrap().compose(Kind::Text, "checked", None, c.now).unwrap();
    let Frame::Post { signed } = frame else { unreachable!() };
    let honest = Frame::Deliver { room_seq: 0, flags: 0, author: "alice".into(), signed: signed.clone() };
    let honest = honest.encode().unwrap();
    let mut bad = signed;
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let forged = Frame::Deliver { room_seq: 0, flags: 0, author: "alice".into(), signed: bad };
    let forged = forged.encode().unwrap();

    // What the reader hands the room says what its check found.
    let checked = BusEntry::check(3, &honest, Some(1));
    assert!(checked.is_verified_post());
    assert_eq!((checked.room_seq(), checked.origin()), (3, Some(1)));
    assert!(!BusEntry::check(3, &forged, None).is_verified_post());
    assert!(!BusEntry::check(3, &forged, Some(1)).is_verified_post());
    assert!(!BusEntry::check(3, &honest[..honest.len() - 1], None).is_verified_post());
    assert!(!BusEntry::check(3, &Frame::Who.encode().unwrap(), None).is_verified_post());

    // A forged post is refused whoever the bus says published it: the
    // header naming this relay's seat is the bus's word, not a proof.
    for (seq, origin) in [(3, None), (4, Some(1))] {
        let out = c.relays[0].ordered(BusEntry::check(seq, &forged, origin), c.now);
        assert!(
            matches!(out.as_slice(), [Decision::Note(n)]
                if n.contains(&format!("skipped the bus's entry {seq}")) && n.contains("does not verify")),
            "{out:?}"
        );
    }
    assert!(c.heard(0, 2).is_empty());
    // The checked one is ordered, fanned out and acknowledged to its author.
    let out = c.relays[0].ordered(BusEntry::check(5, &honest, Some(1)), c.now);
    c.apply(0, out);
    assert_eq!(c.heard(0, 2), [(5, "alice".to_owned(), "checked".to_owned())]);
    assert!(
        c.events_of(0, 1)
            .iter()
            .any(|e| matches!(e, ChatEvent::Delivered { room_seq: 5, private: false, .. })),
        "{:?}",
        c.events_of(0, 1)
    );
}
