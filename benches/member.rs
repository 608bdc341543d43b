//! A member's memory under the worst a room's valid senders can send: the
//! full member path (`chat::Member` checks each delivered message, the
//! TUI's model keeps it in its scrollback), fed 50,000 messages of 4,096
//! bytes of control characters, each validly signed, each escaped five
//! times over for the screen. The process's resident memory is read from
//! `/proc/self/status` before and after, with the allocator the program
//! uses (jemalloc).
//!
//! Run: `cargo bench --bench member [-- --messages N]`. Prints `key=value`
//! lines; the target is a member under 200 MiB after 50,000.

use std::time::Instant;

use tlschat::chat::{Frame, Kind, MAX_TEXT, Member};
use tlschat::net::NetEvent;
use tlschat::tls::{Ed25519Key, SeededRng};
use tlschat::tui::app::{App, KEEP_SIGNED, MAX_LOG_BYTES, Msg, Now};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const ROOM: [u8; 32] = [0x42; 32];

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident memory, KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let messages = arg("--messages", 50_000);
    let key = |seed| Ed25519Key::generate(&mut SeededRng::new_for_testing_only(seed));
    let mut alice = Member::new(ROOM, key(1), &mut SeededRng::new_for_testing_only(11));
    let mut carol = Member::new(ROOM, key(3), &mut SeededRng::new_for_testing_only(13));
    let peer = "127.0.0.1:8443".parse().unwrap_or_else(|_| unreachable!());
    let mut app = App::new(false);
    let now = Now::system();
    let _ = app.update(
        Msg::Started { peer: "localhost:8443".into(), state: "connected".into(), server: false },
        now,
    );
    let welcome = Frame::Welcome { name: "carol".into(), room_seq: 0, history: 0, e2e: false };
    let now_ms = now.unix * 1000;
    for event in carol.receive(welcome, now_ms).unwrap_or_default() {
        let _ = app.update(Msg::Net(NetEvent::Chat { peer, event }), now);
    }
    // Every byte a control character: each shows as `\u{N}`, five or six bytes.
    let worst: String = (0..MAX_TEXT).map(|i| char::from(1 + (i % 26) as u8)).collect();
    let rss_before = rss_kib();
    let start = Instant::now();
    for k in 0..messages as u64 {
        let Ok((Frame::Post { signed }, _)) = alice.compose(Kind::Text, &worst, None, now_ms + k) else {
            eprintln!("member bench: cannot sign");
            std::process::exit(1);
        };
        let deliver = Frame::Deliver { room_seq: k + 1, flags: 0, author: "alice".into(), signed };
        for event in carol.receive(deliver, now_ms + k).unwrap_or_default() {
            let _ = app.update(Msg::Net(NetEvent::Chat { peer, event }), now);
        }
    }
    let took = start.elapsed();
    let rss_after = rss_kib();
    let log = app.log();
    let kept_signed = log.entries().iter().filter(|e| e.signed.is_some()).count();
    println!("messages={messages}");
    println!("message_text_bytes={MAX_TEXT}");
    println!("seconds={:.1}", took.as_secs_f64());
    println!("member_rss_before_kib={rss_before}");
    println!("member_rss_after_kib={rss_after}");
    println!("member_rss_after_mib={:.1}", rss_after as f64 / 1024.0);
    println!("scrollback_entries={}", log.entries().len());
    println!("scrollback_bytes={} (bound {MAX_LOG_BYTES})", log.bytes());
    println!("scrollback_signed_kept={kept_signed} (bound {KEEP_SIGNED})");
}
