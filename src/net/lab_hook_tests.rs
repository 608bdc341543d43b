//! The room's delivery hook (the tamper lab's, see
//! [`crate::teach::lab::DeliveryHook`]): a room without one delivers what
//! its relay decided, byte for byte; one with a lying relay alters exactly
//! the next message of the author it names, and nothing after it.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use super::relay::{RoomInput, ToSeat};
use super::{RoomHandle, SEAT_QUEUE, start_room, start_room_with_hook};
use crate::chat::message::Signed;
use crate::chat::relay::{self, Joiner, SeatId, Transport};
use crate::chat::{Frame, Kind, Member};
use crate::clock::unix_now_ms;
use crate::teach::lab::LyingRelay;
use crate::tls::{Ed25519Key, SeededRng};

const ROOM: [u8; 32] = [0x5a; 32];

/// A room's events, drained so that the room never waits on them.
fn events() -> mpsc::Sender<super::NetEvent> {
    let (tx, mut rx) = mpsc::channel(256);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    tx
}

/// Seats `name` in `room` as a connection would once its handshake is done.
async fn seat(room: &RoomHandle, name: &str, key: &Ed25519Key) -> (SeatId, mpsc::Receiver<ToSeat>) {
    let (out, rx) = mpsc::channel(SEAT_QUEUE);
    let id = room.next_seat();
    let joiner = Joiner::Verified { name: name.into(), key: key.public_key() };
    let kick = Arc::new(Notify::new());
    let from = Ipv4Addr::LOCALHOST.into();
    room.inputs
        .send(RoomInput::Join { id, joiner, transport: Transport::Frames, out, kick, from })
        .await
        .unwrap();
    (id, rx)
}

/// The next message delivered to a seat, from whom, opened.
async fn next_delivered(rx: &mut mpsc::Receiver<ToSeat>) -> (String, Signed) {
    loop {
        let out = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("a delivery in time");
        let Some(ToSeat::Bytes(bytes)) = out else { continue };
        if let Ok(Frame::Deliver { author, signed, .. }) =
            Frame::decode(bytes[0], &bytes[crate::chat::frame::HEADER..])
        {
            return (author, Signed::open(&signed).unwrap());
        }
    }
}

/// A reader and a writer in `room`; the writer says each of `lines`;
/// what the reader receives.
async fn writer_says(room: RoomHandle, lines: &[&str], before_each: impl Fn(usize)) -> Vec<(String, Signed)> {
    let mut rng = SeededRng::new_for_testing_only(9);
    let (reader, writer) = (Ed25519Key::generate(&mut rng), Ed25519Key::generate(&mut rng));
    let (_, mut to_reader) = seat(&room, "reader", &reader).await;
    let (writer_id, _to_writer) = seat(&room, "writer", &writer).await;
    let mut member = Member::new(ROOM, writer, &mut rng);
    let mut received = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        before_each(n);
        let (frame, _) = member.compose(Kind::Text, line, None, unix_now_ms()).unwrap();
        room.inputs.send(RoomInput::Frame { id: writer_id, frame: frame.into() }).await.unwrap();
        received.push(next_delivered(&mut to_reader).await);
    }
    received
}

fn local() -> std::net::SocketAddr {
    (Ipv4Addr::LOCALHOST, 0).into()
}

#[tokio::test]
async fn a_room_without_a_hook_delivers_every_message_as_its_author_signed_it() {
    let room = start_room(relay::Config::new(ROOM), None, None, local(), events());
    let got = writer_says(room, &["meet me at noon", "or later"], |_| {}).await;
    for ((author, message), text) in got.iter().zip(["meet me at noon", "or later"]) {
        assert_eq!(author, "writer");
        assert_eq!(message.fields().text, text);
        assert!(message.valid());
    }
}

#[tokio::test]
async fn a_room_with_a_lying_relay_alters_exactly_the_next_message_of_the_author_it_names() {
    let hook = Arc::new(LyingRelay::new("writer"));
    let room = start_room_with_hook(relay::Config::new(ROOM), local(), events(), hook.clone());
    // Armed before the second line only.
    let lines = ["first, as signed", "meet me at noon", "after, as signed"];
    let got = writer_says(room, &lines, |n| {
        if n == 1 {
            hook.arm();
        }
    })
    .await;
    let texts: Vec<&str> = got.iter().map(|(_, m)| m.fields().text.as_str()).collect();
    assert_eq!(texts, ["first, as signed", "meet me at midnight", "after, as signed"]);
    let valid: Vec<bool> = got.iter().map(|(_, m)| m.valid()).collect();
    assert_eq!(valid, [true, false, true], "the altered one keeps the writer's signature, which fails");
}
