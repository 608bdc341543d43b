//! End-to-end rooms (`listen --e2e`), sans-IO: a relay and members with
//! real MLS state wired together in memory, and a relay that lies.

use super::*;
use crate::chat::Contacts;
use crate::chat::e2e;
use crate::chat::member::ComposeError;

fn e2e_room() -> World {
    let mut config = Config::new(ROOM);
    config.e2e = true;
    let mut w = World::new(config);
    w.fifo = true;
    w
}

impl World {
    /// Member `id` says `text` in the room; what it sends goes to the relay.
    fn room_say(&mut self, id: SeatId, text: &str) -> Result<(), ComposeError> {
        let member = self.members.get_mut(&id).unwrap();
        let events = member.say(Kind::Text, text, None, self.now)?;
        let frames = member.take_outgoing();
        self.events.entry(id).or_default().extend(events);
        for frame in frames {
            self.post(id, &frame);
        }
        Ok(())
    }

    /// What member `id` sends for `text`, not sent: its `GroupSend`.
    fn sealed_line(&mut self, id: SeatId, text: &str) -> Frame {
        let member = self.members.get_mut(&id).unwrap();
        member.say(Kind::Text, text, None, self.now).unwrap();
        let mut frames = member.take_outgoing();
        assert_eq!(frames.len(), 1, "{frames:?}");
        frames.remove(0)
    }

    /// Hands member `id` a frame directly, as a lying relay would.
    fn hand(&mut self, id: SeatId, frame: Frame) -> Vec<ChatEvent> {
        self.members.get_mut(&id).unwrap().receive(frame, self.now).unwrap()
    }

    fn epoch(&self, id: SeatId) -> Option<u64> {
        self.members[&id].e2e_epoch()
    }
}

fn message(frame: &Frame) -> Vec<u8> {
    match frame {
        Frame::GroupSend { message, .. } => message.clone(),
        other => panic!("{other:?}"),
    }
}

fn refused(events: &[ChatEvent]) -> usize {
    events.iter().filter(|e| matches!(e, ChatEvent::E2eRefused { .. })).count()
}

/// Alice, Bob and Carol in an end-to-end room, all in its group.
fn three() -> World {
    let mut w = e2e_room();
    w.join(1, "alice");
    w.join(2, "bob");
    w.join(3, "carol");
    for id in [1, 2, 3] {
        assert!(w.epoch(id).is_some(), "{id} is not in the group: {:?}", w.events.get(&id));
    }
    w
}

#[test]
fn three_members_read_each_other_end_to_end_and_the_relay_never_holds_a_text() {
    let mut w = three();
    assert_eq!(w.epoch(1), w.epoch(3));
    let welcome = w.take(3);
    assert!(matches!(welcome[0], ChatEvent::Welcome { e2e: true, history: 0, .. }), "{welcome:?}");
    assert!(welcome.iter().any(|e| matches!(e, ChatEvent::E2eGroup { members: 3, .. })), "{welcome:?}");
    w.take(1);
    w.take(2);
    w.room_say(1, "alice: the code is 4711").unwrap();
    w.room_say(2, "bob: noted").unwrap();
    w.room_say(3, "carol: me too").unwrap();
    for (id, others) in
        [(1, ["bob: noted", "carol: me too"]), (2, ["alice: the code is 4711", "carol: me too"])]
    {
        let events = w.take(id);
        let texts = e2e_texts(&events);
        assert_eq!(texts, others.iter().map(|t| ((*t).to_owned(), true)).collect::<Vec<_>>(), "{events:?}");
        // Its own line: sent end to end, acknowledged in the room's order.
        assert!(events.iter().any(|e| matches!(e, ChatEvent::Sent { e2e: true, .. })), "{events:?}");
        assert!(
            events.iter().any(|e| matches!(e, ChatEvent::Delivered { private: false, .. })),
            "{events:?}"
        );
        assert!(
            !events.iter().any(|e| matches!(e, ChatEvent::RelayGap { .. } | ChatEvent::RelayDisorder { .. }))
        );
    }
    for text in ["4711", "noted", "me too"] {
        assert!(!contains(&w.wire, text.as_bytes()), "the relay saw {text:?}");
    }
    // Nothing is kept for history.
    assert_eq!(w.relay.log().len(), 0);
}

#[test]
fn guests_and_lines_in_clear_are_refused_and_a_member_not_yet_added_cannot_send() {
    let mut w = three();
    let err = w.relay.join(9, Joiner::Guest, Transport::Lines, w.now).unwrap_err();
    assert!(err.to_string().contains("end to end: members only"), "{err}");
    // A line in clear (an old client): refused, and nobody hears it.
    w.take(2);
    w.say(1, "in clear");
    let alice = w.take(1);
    assert!(
        alice.iter().any(|e| matches!(e, ChatEvent::Refused { text, .. } if text.contains("end to end"))),
        "{alice:?}"
    );
    assert!(w.texts(2).is_empty());
    // One seat per key.
    let again = Joiner::Verified { name: "alice".into(), key: w.key(1) };
    assert!(w.relay.join(8, again, Transport::Frames, w.now).is_err());
    // A member whose key package has not come yet is not in the group: its
    // line is refused on its screen, never sent.
    let key = Ed25519Key::generate(&mut w.rng);
    let mut dave = Member::new(ROOM, key, &mut w.rng);
    dave.receive(Frame::Welcome { name: "dave".into(), room_seq: 9, history: 0, e2e: true }, w.now).unwrap();
    dave.take_outgoing();
    let err = dave.say(Kind::Text, "hello?", None, w.now).unwrap_err();
    assert!(matches!(err, ComposeError::NotInGroup), "{err}");
    assert_eq!(err.to_string(), "you are not in the room's end-to-end group yet (nothing was sent in clear)");
    assert!(dave.take_outgoing().is_empty());
}

#[test]
fn a_room_known_as_end_to_end_that_comes_back_in_clear_is_a_downgrade_and_nothing_is_sent() {
    let mut contacts = Contacts::new();
    contacts.saw_e2e_room();
    let contacts = Contacts::parse(&contacts.to_text()).unwrap();
    let mut w = World::room();
    let key = Ed25519Key::generate(&mut w.rng);
    let mut m = Member::new(ROOM, key, &mut w.rng).with_contacts(contacts);
    let events = m
        .receive(Frame::Welcome { name: "carol".into(), room_seq: 3, history: 0, e2e: false }, w.now)
        .unwrap();
    assert!(events.iter().any(|e| matches!(e, ChatEvent::E2eDowngraded)), "{events:?}");
    m.take_outgoing();
    let err = m.say(Kind::Text, "hello", None, w.now).unwrap_err();
    assert!(matches!(err, ComposeError::Downgraded), "{err}");
    assert!(m.take_outgoing().is_empty());
}

#[test]
fn a_member_who_left_is_removed_before_the_next_line_and_cannot_open_what_follows() {
    let mut w = three();
    let before = w.epoch(1).unwrap();
    // Carol leaves; her MLS state stays here, as a copy an attacker kept.
    let out = w.relay.leave(3, "", w.now);
    let mut carol = w.members.remove(&3).unwrap();
    // Bob hears of her leaving before the removal is committed: his line
    // waits for it, so that she never reads it.
    let (presence, rest): (Vec<Decision>, Vec<Decision>) =
        out.into_iter().partition(|o| matches!(o, Decision::Send(2, _)));
    w.take(2);
    w.apply(presence);
    w.room_say(2, "bob: now that carol is gone").unwrap();
    let bob = w.take(2);
    assert!(
        bob.iter().any(
            |e| matches!(e, ChatEvent::E2eHeld { gone, queued: 1, .. } if gone == &["carol".to_owned()])
        ),
        "{bob:?}"
    );
    assert!(!bob.iter().any(|e| matches!(e, ChatEvent::Sent { .. })), "{bob:?}");
    // Alice, the committer, removes her; Bob's line goes after the removal.
    w.apply(rest);
    assert_eq!(w.epoch(1), Some(before + 1));
    let bob = w.take(2);
    assert!(bob.iter().any(|e| matches!(e, ChatEvent::E2eGroup { removes: 1, members: 2, .. })), "{bob:?}");
    assert!(bob.iter().any(|e| matches!(e, ChatEvent::Sent { e2e: true, .. })), "{bob:?}");
    assert_eq!(e2e_texts(&w.take(1)), [("bob: now that carol is gone".to_owned(), true)]);
    // What Alice says next, handed to Carol's old state: unreadable.
    let line = w.sealed_line(1, "alice: after carol");
    w.post(1, &line);
    let forged =
        Frame::GroupMessage { room_seq: 99, from: "alice".into(), key: w.key(1), message: message(&line) };
    let events = carol.receive(forged, w.now).unwrap();
    assert_eq!(refused(&events), 1, "{events:?}");
    assert!(e2e_texts(&events).is_empty());
}

#[test]
fn a_joiner_cannot_open_what_was_said_before_its_welcome() {
    let mut w = three();
    let early = w.sealed_line(1, "before dave");
    w.post(1, &early);
    w.join(4, "dave");
    assert!(w.epoch(4).is_some());
    let events = w.take(4);
    assert!(e2e_texts(&events).is_empty(), "{events:?}");
    let replayed =
        Frame::GroupMessage { room_seq: 50, from: "alice".into(), key: w.key(1), message: message(&early) };
    let events = w.hand(4, replayed);
    assert_eq!(refused(&events), 1, "{events:?}");
    assert!(e2e_texts(&events).is_empty());
    // And reads what follows.
    w.room_say(1, "welcome dave").unwrap();
    assert_eq!(e2e_texts(&w.take(4)), [("welcome dave".to_owned(), true)]);
}

#[test]
fn a_relay_that_alters_replays_reorders_or_misattributes_group_messages_is_caught() {
    let mut w = three();
    w.take(2);
    let one = w.sealed_line(1, "one");
    let two = w.sealed_line(1, "two");
    let (one, two) = (message(&one), message(&two));
    let (alice, carol) = (w.key(1), w.key(3));
    let seq = w.relay.room_seq();
    let gm = |room_seq, key, message: &[u8]| Frame::GroupMessage {
        room_seq,
        from: "alice".into(),
        key,
        message: message.to_vec(),
    };
    // Altered: a flipped bit anywhere past the header.
    let mut bad = one.clone();
    let at = bad.len() - 5;
    bad[at] ^= 1;
    let e = w.hand(2, gm(seq + 1, alice, &bad));
    assert_eq!((refused(&e), e2e_texts(&e).len()), (1, 0), "{e:?}");
    // Misattributed: Alice's line said to be Carol's.
    let e = w.hand(2, gm(seq + 2, carol, &one));
    assert_eq!((refused(&e), e2e_texts(&e).len()), (1, 0), "{e:?}");
    // Reordered: two before one; one, late, is refused.
    let e = w.hand(2, gm(seq + 3, alice, &two));
    assert_eq!(e2e_texts(&e), [("two".to_owned(), true)]);
    let e = w.hand(2, gm(seq + 4, alice, &one));
    assert_eq!((refused(&e), e2e_texts(&e).len()), (1, 0), "{e:?}");
    // Replayed, under a new number and under the same number.
    let e = w.hand(2, gm(seq + 5, alice, &two));
    assert_eq!((refused(&e), e2e_texts(&e).len()), (1, 0), "{e:?}");
    let e = w.hand(2, gm(seq + 3, alice, &two));
    assert!(e.iter().any(|e| matches!(e, ChatEvent::RelayDisorder { repeated: true, .. })), "{e:?}");
    assert!(e2e_texts(&e).is_empty());
    // A line in clear in the room: not shown.
    let signed = w.signed_by(1, "in clear");
    let e = w.hand(2, Frame::Deliver { room_seq: seq + 6, flags: 0, author: "alice".into(), signed });
    assert_eq!((refused(&e), e2e_texts(&e).len()), (1, 0), "{e:?}");
}

#[test]
fn a_relay_that_lies_about_a_commit_or_replays_one_is_caught_and_nothing_is_merged() {
    let mut w = three();
    w.join(4, "dave");
    let epoch = w.epoch(2).unwrap();
    assert_eq!(w.epoch(4), Some(epoch));
    // Alice updates her leaf: the commit the relay would order, intercepted.
    let member = w.members.get_mut(&1).unwrap();
    let events = member.tick(w.now + super::super::member::UPDATE_EVERY_MS);
    assert!(events.is_empty(), "{events:?}");
    let frames = member.take_outgoing();
    let Some(Frame::GroupCommit { epoch: e, commit, .. }) = frames.first().cloned() else {
        panic!("{frames:?}")
    };
    assert_eq!(e, epoch);
    let seq = w.relay.room_seq();
    let committed = |room_seq, removes: Vec<[u8; 32]>, commit: &[u8], key| Frame::GroupCommitted {
        room_seq,
        from: "alice".into(),
        key,
        epoch,
        adds: vec![],
        removes,
        commit: commit.to_vec(),
    };
    let (alice, carol) = (w.key(1), w.key(3));
    // To Bob, the relay says the update removes Carol: refused, not merged.
    let e = w.hand(2, committed(seq + 1, vec![carol], &commit, alice));
    assert_eq!(refused(&e), 1, "{e:?}");
    assert_eq!(w.epoch(2), Some(epoch));
    // To Carol, it says it is Carol's own: refused, not merged.
    let e = w.hand(3, committed(seq + 1, vec![], &commit, carol));
    assert_eq!(refused(&e), 1, "{e:?}");
    assert_eq!(w.epoch(3), Some(epoch));
    // To Dave: altered, refused; as it is, merged; replayed, refused.
    let mut bad = commit.clone();
    let at = bad.len() - 3;
    bad[at] ^= 0x40;
    let e = w.hand(4, committed(seq + 1, vec![], &bad, alice));
    assert_eq!(refused(&e), 1, "{e:?}");
    assert_eq!(w.epoch(4), Some(epoch));
    let e = w.hand(4, committed(seq + 2, vec![], &commit, alice));
    assert_eq!(refused(&e), 0, "{e:?}");
    assert_eq!(w.epoch(4), Some(epoch + 1));
    let e = w.hand(4, committed(seq + 3, vec![], &commit, alice));
    assert_eq!(refused(&e), 1, "{e:?}");
    assert_eq!(w.epoch(4), Some(epoch + 1));
    // A commit handed over as a line is not merged either.
    let e = w.hand(
        2,
        Frame::GroupMessage { room_seq: seq + 2, from: "alice".into(), key: alice, message: commit },
    );
    assert_eq!((refused(&e), e2e_texts(&e).len()), (1, 0), "{e:?}");
    assert_eq!(w.epoch(2), Some(epoch));
}

#[test]
fn a_line_sealed_at_a_stale_epoch_is_sealed_again_never_sent_in_clear() {
    let mut w = three();
    let epoch = w.epoch(2).unwrap();
    // Bob seals a line; meanwhile Alice's self-update is ordered first.
    let line = w.sealed_line(2, "bob: crossing a commit");
    let member = w.members.get_mut(&1).unwrap();
    member.tick(w.now + super::super::member::UPDATE_EVERY_MS);
    for frame in member.take_outgoing() {
        w.post(1, &frame);
    }
    assert_eq!(w.epoch(2), Some(epoch + 1));
    w.take(1);
    // Bob's line, at the old epoch: a retry, and Bob seals it again.
    w.post(2, &line);
    let alice = w.take(1);
    assert_eq!(e2e_texts(&alice), [("bob: crossing a commit".to_owned(), true)], "{alice:?}");
    assert!(!contains(&w.wire, b"crossing"));
}

#[test]
fn a_task_that_crosses_the_committers_own_update_waits_for_it_and_comes_again() {
    let mut w = three();
    let epoch = w.epoch(1).unwrap();
    // Alice's self-update, made but not yet at the relay.
    let member = w.members.get_mut(&1).unwrap();
    member.tick(w.now + super::super::member::UPDATE_EVERY_MS);
    let update = member.take_outgoing();
    assert_eq!(update.len(), 1);
    // Dave joins: the relay asks Alice to add him at the same epoch; she
    // has a commit in flight, so the task waits.
    w.join(4, "dave");
    assert_eq!(w.epoch(4), None);
    // Her update is ordered; the relay asks again, and Dave is added.
    for frame in update {
        w.post(1, &frame);
    }
    for id in [1, 2, 3, 4] {
        assert_eq!(w.epoch(id), Some(epoch + 2), "{id}: {:?}", w.events.get(&id));
        assert_eq!(refused(w.events.get(&id).map_or(&[][..], Vec::as_slice)), 0, "{id}");
    }
    w.room_say(4, "dave: hello").unwrap();
    assert_eq!(e2e_texts(&w.take(2)), [("dave: hello".to_owned(), true)]);
}

#[test]
fn a_member_who_comes_back_with_the_same_key_is_removed_then_added_and_reads_again() {
    let mut w = three();
    let epoch = w.epoch(1).unwrap();
    let carol_key = w.keys[&3].clone();
    let out = w.relay.leave(3, "", w.now);
    w.members.remove(&3);
    w.apply(out);
    // Her old leaf is removed at once (she left).
    assert_eq!(w.epoch(1), Some(epoch + 1));
    // Back on a new seat, with the same key: added again from a new key package.
    w.keys.insert(7, carol_key.clone());
    w.members.insert(7, Member::new(ROOM, carol_key.clone(), &mut w.rng));
    let joiner = Joiner::Verified { name: "carol".into(), key: carol_key.public_key() };
    let out = w.relay.join(7, joiner, Transport::Frames, w.now).unwrap();
    w.apply(out);
    assert_eq!(w.epoch(7), Some(epoch + 2), "{:?}", w.events.get(&7));
    assert_eq!(w.epoch(2), Some(epoch + 2));
    w.room_say(1, "welcome back").unwrap();
    assert_eq!(e2e_texts(&w.take(7)), [("welcome back".to_owned(), true)]);

    // Back before her old leaf was removed: removed, then added, in two commits.
    let out = w.relay.leave(7, "", w.now);
    w.members.remove(&7);
    // The task to remove her is held back: she comes back first.
    let is_task = |o: &Decision| matches!(o, Decision::Send(1, b) if matches!(Frame::decode(b[0], &b[4..]), Ok(Frame::GroupTask { .. })));
    let (task, rest): (Vec<Decision>, Vec<Decision>) = out.into_iter().partition(is_task);
    assert_eq!(task.len(), 1);
    w.apply(rest);
    w.keys.insert(8, carol_key.clone());
    w.members.insert(8, Member::new(ROOM, carol_key.clone(), &mut w.rng));
    let joiner = Joiner::Verified { name: "carol".into(), key: carol_key.public_key() };
    let out = w.relay.join(8, joiner, Transport::Frames, w.now).unwrap();
    w.apply(task);
    w.apply(out);
    assert_eq!(w.epoch(8), Some(epoch + 4), "{:?}", w.events.get(&8));
    assert_eq!(w.epoch(1), Some(epoch + 4));
    w.room_say(2, "and again").unwrap();
    assert_eq!(e2e_texts(&w.take(8)), [("and again".to_owned(), true)]);
}

#[test]
fn group_frames_that_are_not_the_rooms_are_refused_as_strikes() {
    let mut w = three();
    w.take(2);
    let epoch = w.epoch(2).unwrap();
    // Not an MLS message of the room's group: refused, code 4, a strike.
    w.post(2, &Frame::GroupSend { epoch, seq: 99, message: b"not MLS at all".to_vec() });
    let bob = w.take(2);
    assert!(
        bob.iter().any(|e| matches!(e, ChatEvent::Refused { code: RefusalCode::BadMessage, .. })),
        "{bob:?}"
    );
    // A commit adding someone, from a member with no task: refused.
    let line = w.sealed_line(2, "a line, not a commit");
    let Frame::GroupSend { message, .. } = line else { panic!() };
    let lie =
        Frame::GroupCommit { epoch, adds: vec![[9; 32]], removes: vec![], commit: message, welcome: vec![1] };
    w.post(2, &lie);
    let bob = w.take(2);
    assert!(
        bob.iter().any(|e| matches!(e, ChatEvent::Refused { code: RefusalCode::BadMessage, .. })),
        "{bob:?}"
    );
    assert!(w.texts(1).is_empty() && w.texts(3).is_empty());
    // In a room that is not end to end, group frames are refused too.
    let mut plain = World::room();
    plain.join(1, "alice");
    plain.take(1);
    plain.post(1, &Frame::GroupSend { epoch: 0, seq: 1, message: vec![0, 1, 0, 2] });
    let alice = plain.take(1);
    assert!(
        alice.iter().any(|e| matches!(e, ChatEvent::Refused { text, .. } if text.contains("not end to end"))),
        "{alice:?}"
    );
}

/// The steps (`E2eStep`) a member tells of the room's group, by name.
fn room_steps(events: &[ChatEvent]) -> Vec<&'static str> {
    events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::E2eStep { peer, step, view, .. } if peer == "the room" => {
                assert!(view.is_some(), "a room step without the group's view: {e:?}");
                Some(step.name())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn the_room_groups_life_is_told_as_steps_for_the_group_panel() {
    let mut w = e2e_room();
    w.join(1, "alice");
    w.join(2, "bob");
    // Bob was added by Alice, the committer: she tells the Add, her commit
    // and the Welcome she sent; Bob tells the Welcome that let him in.
    let alice = w.take(1);
    let steps = room_steps(&alice);
    for step in ["Add", "Commit", "Welcome"] {
        assert!(steps.contains(&step), "{step} missing from {steps:?}");
    }
    assert!(
        alice.iter().any(|e| matches!(e,
            ChatEvent::E2eStep { step: e2e::Step::Welcome { made: true, members: 2, size }, .. } if *size > 0)),
        "{alice:?}"
    );
    let bob = w.take(2);
    assert!(
        bob.iter().any(|e| matches!(
            e,
            ChatEvent::E2eStep { step: e2e::Step::Welcome { made: false, members: 2, .. }, .. }
        )),
        "{bob:?}"
    );
    // Carol joins, then leaves: Bob tells her removal as a Remove and a
    // commit that was not his, from the epoch he was at to the next.
    w.join(3, "carol");
    w.take(2);
    let at = w.epoch(2).unwrap();
    let out = w.relay.leave(3, "", w.now);
    w.members.remove(&3);
    w.apply(out);
    let bob = w.take(2);
    assert_eq!(room_steps(&bob), ["Remove", "Commit"], "{bob:?}");
    assert!(
        bob.iter().any(|e| matches!(e,
            ChatEvent::E2eStep { step: e2e::Step::Commit { from, to, mine: false, .. }, .. }
                if *from == at && *to == at + 1)),
        "{bob:?}"
    );
    // Bob's own leaf update, when it is due: an Update step on both sides.
    let events = w.members.get_mut(&2).unwrap().tick(w.now + super::super::member::UPDATE_EVERY_MS);
    assert!(refused(&events) == 0, "{events:?}");
    let frames = w.members.get_mut(&2).unwrap().take_outgoing();
    assert_eq!(frames.len(), 1, "{frames:?}");
    w.post(2, &frames[0]);
    let alice = w.take(1);
    assert!(
        alice.iter().any(|e| matches!(
            e,
            ChatEvent::E2eStep {
                step: e2e::Step::Update { mine: false, state: e2e::UpdateState::Merged, .. },
                ..
            }
        )),
        "{alice:?}"
    );
    let bob = w.take(2);
    assert!(
        bob.iter().any(|e| matches!(
            e,
            ChatEvent::E2eStep {
                step: e2e::Step::Update { mine: true, state: e2e::UpdateState::Confirmed, .. },
                ..
            }
        )),
        "{bob:?}"
    );
}

/// The frames of `wire` (whole frames, in order).
fn frames_of(wire: &[u8]) -> Vec<Frame> {
    let mut buffer = FrameBuffer::default();
    buffer.push(wire);
    std::iter::from_fn(|| buffer.next_frame().unwrap()).collect()
}

#[test]
fn a_welcome_in_several_pieces_lets_the_joiner_in_and_it_reads() {
    // (Unit tests cut a Welcome in pieces of `pieces::PIECE` = 256 bytes,
    // so that a room of a few already takes several.)
    let mut w = three();
    w.wire.clear();
    w.join(4, "dave");
    let frames = frames_of(&w.wire);
    let sent = frames.iter().filter(|f| matches!(f, Frame::GroupWelcomePiece { .. })).count();
    let got: Vec<(u8, u8)> = frames
        .iter()
        .filter_map(|f| match f {
            Frame::GroupWelcome { index, count, .. } => Some((*index, *count)),
            _ => None,
        })
        .collect();
    assert!(sent >= 3, "the committer sent {sent} pieces");
    let count = got.len() as u8;
    assert_eq!(got, (0..count).map(|i| (i, count)).collect::<Vec<_>>());
    // The commit itself carried no Welcome.
    assert!(frames.iter().any(|f| matches!(f, Frame::GroupCommit { welcome, adds, .. }
        if welcome.is_empty() && adds.len() == 1)));
    assert_eq!(w.epoch(4), w.epoch(1));
    w.take(4);
    w.room_say(2, "hello dave").unwrap();
    assert_eq!(e2e_texts(&w.take(4)), [("hello dave".to_owned(), true)]);
}

#[test]
fn a_relay_that_drops_or_reorders_a_welcome_piece_gets_the_joiner_nowhere() {
    let mut w = three();
    w.held_welcome = Some((4, Vec::new()));
    w.join(4, "dave");
    let Some((_, pieces)) = w.held_welcome.take() else { panic!() };
    assert!(pieces.len() >= 3, "{} pieces", pieces.len());
    assert_eq!(w.epoch(4), None);
    w.take(4);
    let not_in = |w: &mut World, events: &[ChatEvent]| {
        assert!(refused(events) >= 1, "{events:?}");
        assert!(!events.iter().any(|e| matches!(e, ChatEvent::E2eGroup { .. })), "{events:?}");
        assert!(e2e_texts(events).is_empty());
        assert_eq!(w.epoch(4), None);
    };
    // A piece dropped.
    let mut events = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        if i != 1 {
            events.extend(w.hand(4, p.clone()));
        }
    }
    not_in(&mut w, &events);
    // Two pieces swapped.
    let mut swapped = pieces.clone();
    swapped.swap(0, 1);
    let events: Vec<ChatEvent> = swapped.into_iter().flat_map(|p| w.hand(4, p)).collect();
    not_in(&mut w, &events);
    // A piece from another commit's Welcome (another room_seq) in the middle.
    let mut mixed = pieces.clone();
    if let Frame::GroupWelcome { room_seq, .. } = &mut mixed[1] {
        *room_seq += 1;
    }
    let events: Vec<ChatEvent> = mixed.into_iter().flat_map(|p| w.hand(4, p)).collect();
    not_in(&mut w, &events);
    // The pieces in order still let Dave in, and he reads.
    let events: Vec<ChatEvent> = pieces.into_iter().flat_map(|p| w.hand(4, p)).collect();
    assert_eq!(refused(&events), 0, "{events:?}");
    assert_eq!(w.epoch(4), w.epoch(1));
    w.room_say(1, "hello dave").unwrap();
    assert_eq!(e2e_texts(&w.take(4)), [("hello dave".to_owned(), true)]);
}

#[test]
fn welcome_pieces_out_of_order_are_strikes_at_the_relay() {
    let mut w = three();
    w.take(2);
    let epoch = w.epoch(2).unwrap();
    w.post(2, &Frame::GroupWelcomePiece { epoch, index: 1, count: 3, bytes: vec![1; 10] });
    w.post(2, &Frame::GroupWelcomePiece { epoch, index: 0, count: 0, bytes: vec![1; 10] });
    let bob = w.take(2);
    let strikes = bob
        .iter()
        .filter(|e| matches!(e, ChatEvent::Refused { code: RefusalCode::BadMessage, text } if text.contains("piece")))
        .count();
    assert_eq!(strikes, 2, "{bob:?}");
    assert!(w.texts(1).is_empty() && w.texts(3).is_empty());
}
