//! The chat protocol as a member receives it: a byte stream cut into frames
//! by `FrameBuffer` (in two reads), each decoded by `Frame::decode` and
//! checked by `Member::receive`, which opens signed messages with
//! `Signed::open`. The input is also opened as one signed message and
//! decoded as one frame body, to reach those parsers directly. When the
//! first byte is odd the member saw the room before (its contacts hold a
//! room mark), so a Welcome starts a resume: the join's history dropped,
//! live frames held until a Resumed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlschat::chat::message::Signed;
use tlschat::chat::{Contacts, Frame, FrameBuffer};
use tlschat_fuzz::member;

fuzz_target!(|data: &[u8]| {
    let mut member = member();
    if data.first().is_some_and(|b| b & 1 == 1) {
        let mut contacts = Contacts::new();
        contacts.saw_room_seq(5);
        member = member.with_contacts(contacts);
    }
    let mut buffer = FrameBuffer::default();
    let (first, second) = data.split_at(data.len() / 2);
    'stream: for part in [first, second] {
        buffer.push(part);
        loop {
            match buffer.next_frame() {
                Ok(Some(frame)) => {
                    if member.receive(frame, 0).is_err() {
                        break 'stream;
                    }
                }
                Ok(None) => break,
                Err(_) => break 'stream,
            }
        }
    }
    let _ = buffer.pending();

    let _ = Signed::open(data);
    if let Some((&kind, body)) = data.split_first() {
        let _ = Frame::decode(kind, body);
    }
});
