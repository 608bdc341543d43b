//! Frame render time of the whole TUI with 10,000 messages in scrollback
//! (issue 3 asks for under 2 ms), live and scrolled back, plus the cost of
//! `update` for one arriving line.
//!
//! Run: `cargo bench --bench render`. A plain timing loop (stable Rust has
//! no `#[bench]`; `harness = false` in Cargo.toml): it prints the figures
//! and, in an optimised build, exits non-zero if a frame takes over 2 ms
//! on average.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::Widget;
use tlschat::net::NetEvent;
use tlschat::tui::app::{App, Msg, Now};

fn filled_app(messages: usize) -> App {
    let now = Now { instant: Instant::now(), unix: 1_793_577_600 };
    let peer: SocketAddr =
        "127.0.0.1:8443".parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8443)));
    let mut app = App::new(true);
    for n in 0..messages {
        let line = if n % 7 == 0 {
            format!(
                "message {n}: こんにちは、世界 🔐 a longer line that wraps over the width of the chat pane at eighty columns"
            )
        } else {
            format!("message {n}: hello")
        };
        let _ = app.update(Msg::Net(NetEvent::Text { peer, line }), now);
    }
    app
}

/// Mean time to render `app` into a fresh `width` x `height` buffer.
fn time_frames(app: &App, width: u16, height: u16, frames: u32) -> Duration {
    let area = Rect::new(0, 0, width, height);
    let mut buf = Buffer::empty(area);
    // Warm up.
    for _ in 0..10 {
        buf.reset();
        black_box(app).render(area, &mut buf);
    }
    let start = Instant::now();
    for _ in 0..frames {
        buf.reset();
        black_box(app).render(area, &mut buf);
        black_box(&buf);
    }
    start.elapsed() / frames
}

fn main() {
    let mut app = filled_app(10_000);
    let now = Now { instant: Instant::now(), unix: 1_793_577_600 };
    let mut report = Vec::new();
    for (width, height) in [(80, 24), (200, 60)] {
        let _ = app.update(Msg::Resize { width, height }, now);
        let live = time_frames(&app, width, height, 2_000);
        report.push(format!("{width}x{height} live: {live:?}/frame"));
        if !cfg!(debug_assertions) && live >= Duration::from_millis(2) {
            eprintln!("{width}x{height}: {live:?} per frame, over the 2 ms budget");
            std::process::exit(1);
        }
    }
    for _ in 0..200 {
        let _ =
            app.update(Msg::Key(crossterm::event::KeyEvent::from(crossterm::event::KeyCode::PageUp)), now);
    }
    let back = time_frames(&app, 200, 60, 2_000);
    report.push(format!("200x60 scrolled back {} entries: {back:?}/frame", app.log().scroll()));

    let peer = SocketAddr::from(([127, 0, 0, 1], 8443));
    let start = Instant::now();
    for n in 0..10_000 {
        let _ = app.update(Msg::Net(NetEvent::Text { peer, line: format!("more {n}") }), now);
    }
    report.push(format!("update per arriving line: {:?}", start.elapsed() / 10_000));
    println!("{}", report.join("\n"));
}
