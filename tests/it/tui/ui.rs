//! The TUI against ratatui's `TestBackend`: the handshake panel at each
//! stage of a real handshake (events from an in-memory engine pair), the
//! chat pane, the narrow layout, and the input line's editing. Snapshots
//! are committed under `tests/it/tui/snapshots/`; the app gets a fixed clock, so
//! every time on screen is the same from run to run.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::engine_pair::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::widgets::Widget;
use tlschat::chat::{ChatEvent, Frame, Kind, MemberInfo, RefusalCode, Standing};
use tlschat::net::Intent;
use tlschat::net::{Closer, NetEvent};
use tlschat::tls::{self, Event};
use tlschat::tui::app::{App, Focus, Local, Msg, Now, Outcome};
use tlschat::tui::ui;

/// The server's address as the client sees it.
fn server() -> SocketAddr {
    "127.0.0.1:8443".parse().unwrap()
}

/// [`t0`] in Unix milliseconds: when the room feed's lines are signed and read.
const FEED_MS: u64 = (NOW + 12 * 3600 + 4 * 60) * 1000;

/// 2026-11-02 12:04:00 UTC, a day after the test certificates were made.
fn t0() -> Now {
    Now { instant: Instant::now(), unix: NOW + 12 * 3600 + 4 * 60 }
}

/// A client app that has started connecting to `server()`.
fn client_app(now: Now) -> App {
    let mut app = App::new(true);
    let _ = app.update(
        Msg::Started { peer: "localhost:8443".into(), state: "connecting".into(), server: false },
        now,
    );
    app
}

/// The client's events of a real handshake between seeded engines.
fn client_events(name: &str, seed: u64) -> (Vec<Event>, Option<tls::Error>) {
    let pki = pki(seed);
    let mut pair = Pair::with_name(client_config(&pki), server_config(&pki), seed, name);
    pair.drive();
    (pair.client_events, pair.client_error)
}

/// Feeds `events` to `app`, 3 ms apart from `start`; returns the time after the last.
fn feed(app: &mut App, events: impl IntoIterator<Item = Event>, start: Now) -> Now {
    let mut now = start;
    for event in events {
        if let Some(event) = NetEvent::from_engine(server(), event) {
            now = now.after(Duration::from_millis(3));
            let _ = app.update(Msg::Net(event), now);
        }
    }
    now
}

fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn ctrl(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

fn typed(app: &mut App, text: &str, now: Now) {
    for c in text.chars() {
        let _ = app.update(key(KeyCode::Char(c)), now);
    }
}

/// The whole screen at `width` x `height`, as text.
fn screen(app: &mut App, width: u16, height: u16) -> String {
    let _ = app.update(Msg::Resize { width, height }, t0());
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| frame.render_widget(&*app, frame.area())).unwrap();
    terminal.backend().to_string()
}

fn buffer(app: &App, width: u16, height: u16) -> Buffer {
    let mut buf = Buffer::empty(Rect::new(0, 0, width, height));
    app.render(buf.area, &mut buf);
    buf
}

#[test]
fn the_panel_mid_handshake_shows_done_steps_and_a_spinner_for_what_is_awaited() {
    let (events, _) = client_events("localhost", 40);
    // Up to and including the server's Certificate (message 5).
    let cut = events
        .iter()
        .position(|e| matches!(e, Event::Handshake(s) if matches!(&s.step, tls::Step::Message { name: "Certificate", .. })))
        .unwrap();
    let start = t0();
    let mut app = client_app(start);
    feed(&mut app, events[..=cut].iter().cloned(), start);
    for _ in 0..3 {
        let update = app.update(Msg::Tick, start);
        assert!(update.redraw, "ticks move the spinner while steps are awaited");
    }
    assert_eq!(app.panel().outcome(), &Outcome::InProgress);
    assert_eq!(app.state(), "handshaking");
    insta::assert_snapshot!(screen(&mut app, 100, 24));
}

#[test]
fn the_panel_after_success_keeps_a_summary_of_the_connection() {
    let (events, error) = client_events("localhost", 41);
    assert!(error.is_none());
    let start = t0();
    let mut app = client_app(start);
    let now = feed(&mut app, events, start);
    let _ = app.update(Msg::Net(NetEvent::Text { peer: server(), line: "welcome to the room".into() }), now);
    assert!(matches!(app.panel().outcome(), Outcome::Done(_)));
    assert_eq!(app.state(), "connected");
    assert!(!app.update(Msg::Tick, now).redraw, "nothing animates once the handshake is done");
    insta::assert_snapshot!(screen(&mut app, 100, 30));
}

#[test]
fn a_certificate_failure_stops_the_panel_at_the_certificate_and_says_why() {
    let (events, error) = client_events("example.com", 42);
    let error = error.expect("a certificate for another name is refused");
    let start = t0();
    let mut app = client_app(start);
    let now = feed(&mut app, events, start);
    let _ = app.update(Msg::Ended(Some(error.to_string())), now);
    let Outcome::Failed(reason) = app.panel().outcome() else {
        panic!("not failed: {:?}", app.panel().outcome())
    };
    assert!(reason.contains("certificate"), "{reason}");
    let last = app.panel().steps().last().unwrap();
    assert_eq!(last.name, "Certificate");
    assert!(last.failed());
    assert_eq!(app.panel().pending(), 0, "no spinner after a failure");
    assert_eq!(app.state(), "failed");
    insta::assert_snapshot!(screen(&mut app, 100, 24));
}

#[test]
fn an_expanded_step_shows_its_fields_secrets_transcript_hash_and_bytes() {
    let (events, _) = client_events("localhost", 43);
    let start = t0();
    let mut app = client_app(start);
    let now = feed(&mut app, events, start);
    let _ = app.update(key(KeyCode::Tab), now);
    assert_eq!(app.focus(), Focus::Panel);
    let _ = app.update(key(KeyCode::Home), now);
    let _ = app.update(key(KeyCode::Down), now);
    let _ = app.update(key(KeyCode::Enter), now);
    assert!(app.panel().expanded());
    let step = &app.panel().steps()[app.panel().selected()];
    assert_eq!(step.name, "ServerHello");
    let text = screen(&mut app, 110, 64);
    assert!(text.contains("handshake secret = ••••"), "secrets are shown by label, values hidden");
    insta::assert_snapshot!(text);
}

#[test]
fn an_expanded_step_marks_each_located_field_in_its_bytes_with_and_without_colour() {
    for color in [true, false] {
        let (events, _) = client_events("localhost", 43);
        let start = t0();
        let mut app = App::new(color);
        let _ = app.update(
            Msg::Started { peer: "localhost:8443".into(), state: "connecting".into(), server: false },
            start,
        );
        let now = feed(&mut app, events, start);
        let keys = [KeyCode::Tab, KeyCode::Home, KeyCode::Down, KeyCode::Enter]
            .into_iter()
            .chain([KeyCode::PageDown; 3]);
        for code in keys {
            let _ = app.update(key(code), now);
        }
        let step = &app.panel().steps()[app.panel().selected()];
        assert_eq!(step.name, "ServerHello");
        let text = screen(&mut app, 110, 64);
        // The legend names every marked run with its offsets (a non-colour cue)…
        for legend in
            ["header: 0..4", "random: 6..38", "legacy_session_id_echo: 39..71", "cipher_suite: 71..73"]
        {
            assert!(text.contains(legend), "legend {legend} missing:\n{text}");
        }
        // …and the dump brackets each run: the header, then random after legacy_version,
        // the session id after its length byte, then the cipher suite right after it.
        assert!(text.contains("0000 [02 00 00 76]03 03["), "{text}");
        assert!(
            text.contains("]20["),
            "the session id's length byte sits between random and the id:\n{text}"
        );
        if color {
            insta::assert_snapshot!(text);
        } else {
            let buf = buffer(&app, 110, 64);
            assert!(buf.content.iter().all(|c| c.fg == Color::Reset && c.bg == Color::Reset));
        }
    }
}

#[test]
fn the_chat_pane_wraps_cjk_and_emoji_by_display_width_and_styles_notices_apart() {
    let start = t0();
    let mut app = client_app(start);
    let (events, _) = client_events("localhost", 44);
    let mut now = feed(&mut app, events, start);
    let lines = [
        "こんにちは、世界。これは長いメッセージで、端末の幅を超えると正しく折り返されるはずです。",
        "emoji 🔐🔑🚀 take two columns each 🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉 and wrap cleanly",
        "a plain line",
    ];
    for line in lines {
        now = now.after(Duration::from_secs(61));
        let _ = app.update(Msg::Net(NetEvent::Text { peer: server(), line: line.into() }), now);
    }
    typed(&mut app, "ça va? 中文 ok", now);
    let update = app.update(key(KeyCode::Enter), now);
    assert_eq!(
        update.intents,
        vec![Intent::Say { kind: Kind::Text, text: "ça va? 中文 ok".into(), to: None }]
    );
    let _ = app.update(Msg::Net(NetEvent::Closed { peer: server(), by: Closer::Peer }), now);
    // Narrow chat pane: 72 columns, 42 for chat beside the panel.
    let text = screen(&mut app, 72, 20);
    insta::assert_snapshot!(text);
    // No line may overflow: every wide character sits whole inside the pane.
    let buf = buffer(&app, 72, 20);
    let areas = ui::Areas::of(&app, buf.area);
    for y in areas.chat.top()..areas.chat.bottom() {
        let last = &buf[(areas.chat.right() - 1, y)];
        assert!(last.symbol().chars().all(|c| unicode_width::UnicodeWidthChar::width(c).unwrap_or(0) <= 1));
    }
}

#[test]
fn the_narrow_layout_hides_the_panel_and_f2_brings_it_back() {
    let (events, _) = client_events("localhost", 45);
    let start = t0();
    let mut app = client_app(start);
    let now = feed(&mut app, events, start);
    let _ = app.update(Msg::Net(NetEvent::Text { peer: server(), line: "hello from the room".into() }), now);
    let narrow = screen(&mut app, 60, 20);
    assert!(!app.panel_visible(60));
    assert!(!narrow.contains("Handshake"));
    insta::assert_snapshot!("narrow_60x20", narrow);
    let _ = app.update(key(KeyCode::F(2)), now);
    assert!(app.panel_visible(60));
    // Too narrow for both: the panel takes the chat's place, whole.
    let with_panel = screen(&mut app, 60, 20);
    assert!(with_panel.contains("Handshake") && !with_panel.contains("hello from the room"));
    insta::assert_snapshot!("narrow_60x20_f2", with_panel);
    let _ = app.update(key(KeyCode::F(2)), now);
    assert!(screen(&mut app, 60, 20).contains("hello from the room"), "F2 again: the chat");
    let _ = app.update(key(KeyCode::F(2)), now);
    let _ = app.update(key(KeyCode::Esc), now);
    assert!(screen(&mut app, 60, 20).contains("hello from the room"), "so does Esc");
}

#[test]
fn the_panel_gives_way_when_the_terminal_shrinks_and_f4_shows_the_schedule_even_when_hidden() {
    let (events, _) = client_events("localhost", 45);
    let start = t0();
    let mut app = client_app(start);
    let now = feed(&mut app, events, start);
    let _ = app.update(Msg::Net(NetEvent::Text { peer: server(), line: "hello from the room".into() }), now);
    // Asked for on a wide screen, then the terminal shrinks.
    let _ = screen(&mut app, 120, 30);
    let _ = app.update(key(KeyCode::F(2)), now);
    let _ = app.update(key(KeyCode::F(2)), now);
    assert!(app.panel_visible(120));
    for (width, height) in [(60, 15), (30, 8)] {
        let text = screen(&mut app, width, height);
        assert!(!text.contains("Handshake"), "{width}x{height}: the panel gave way:\n{text}");
        assert!(text.contains("hello"), "{width}x{height}: the chat is there:\n{text}");
        let chat = ui::Areas::of(&app, Rect::new(0, 0, width, height)).chat;
        assert_eq!(chat.width, width, "{width}x{height}: the chat has the whole width");
    }
    // Beside the chat only while the chat keeps its columns; short screens
    // do not get it by themselves.
    for (width, height, beside) in [(72, 24, true), (100, 11, false), (69, 24, false)] {
        let app = {
            let _ = screen(&mut app, width, height);
            &app
        };
        let areas = ui::Areas::of(app, Rect::new(0, 0, width, height));
        assert_eq!(areas.panel.is_some(), beside, "{width}x{height}");
        assert!(areas.chat.width >= tlschat::tui::app::MIN_CHAT || !beside, "{width}x{height}");
    }
    // F4 with the panel hidden shows the key schedule; F4 again, the chat.
    let _ = screen(&mut app, 60, 15);
    let _ = app.update(key(KeyCode::F(4)), now);
    let text = screen(&mut app, 60, 15);
    assert!(text.contains("Key schedule"), "{text}");
    let _ = app.update(key(KeyCode::F(4)), now);
    let text = screen(&mut app, 60, 15);
    assert!(!text.contains("Key schedule") && text.contains("hello"), "{text}");
    // On a wide screen too, with the panel turned off.
    let _ = screen(&mut app, 120, 30);
    let _ = app.update(key(KeyCode::F(2)), now);
    assert!(!app.panel_visible(120));
    let _ = app.update(key(KeyCode::F(4)), now);
    assert!(screen(&mut app, 120, 30).contains("Key schedule"));
}

#[test]
fn a_hello_retry_request_shows_its_extra_steps() {
    let pki = pki(46);
    let mut config = client_config(&pki);
    config.key_share_in_first_hello = false;
    let mut pair = Pair::new(config, server_config(&pki), 46);
    pair.drive();
    let start = t0();
    let mut app = client_app(start);
    feed(&mut app, pair.client_events, start);
    let names: Vec<&str> = app.panel().steps().iter().map(|s| s.name).collect();
    assert_eq!(names.iter().filter(|n| **n == "ClientHello").count(), 2, "{names:?}");
    let text = screen(&mut app, 100, 40);
    assert_eq!(text.matches("ClientHello").count(), 2);
    assert!(text.contains("HelloRetryRequest"));
}

#[test]
fn no_color_draws_without_any_colour() {
    let (events, _) = client_events("localhost", 47);
    let start = t0();
    let mut app = App::new(false);
    let _ = app.update(Msg::Resize { width: 100, height: 24 }, start);
    feed(&mut app, events, start);
    let _ = app.update(Msg::Net(NetEvent::Text { peer: server(), line: "hi".into() }), start);
    let buf = buffer(&app, 100, 24);
    assert!(buf.content.iter().all(|c| c.fg == Color::Reset && c.bg == Color::Reset));
    let mut coloured = App::new(true);
    let _ = coloured.update(Msg::Net(NetEvent::Text { peer: server(), line: "hi".into() }), start);
    let buf = buffer(&coloured, 100, 24);
    assert!(buf.content.iter().any(|c| c.fg != Color::Reset), "the coloured app does use colour");
}

#[test]
fn the_input_line_edits_by_character_and_word_and_remembers_history() {
    let now = t0();
    let mut app = client_app(now);
    typed(&mut app, "héllo wörld 中文", now);
    let _ = app.update(ctrl('w'), now);
    assert_eq!(app.input().text(), "héllo wörld ");
    let _ = app.update(key(KeyCode::Left), now);
    let _ = app.update(key(KeyCode::Left), now);
    let _ = app.update(key(KeyCode::Backspace), now);
    assert_eq!(app.input().text(), "héllo wörd ");
    let _ = app.update(key(KeyCode::Home), now);
    let _ = app.update(key(KeyCode::Delete), now);
    let _ = app.update(key(KeyCode::End), now);
    typed(&mut app, "!", now);
    assert_eq!(app.input().text(), "éllo wörd !");
    assert_eq!(
        app.update(key(KeyCode::Enter), now).intents,
        vec![Intent::Say { kind: Kind::Text, text: "éllo wörd !".into(), to: None }]
    );
    typed(&mut app, "second", now);
    let _ = app.update(key(KeyCode::Enter), now);
    typed(&mut app, "draft", now);
    let _ = app.update(key(KeyCode::Up), now);
    assert_eq!(app.input().text(), "second");
    let _ = app.update(key(KeyCode::Up), now);
    assert_eq!(app.input().text(), "éllo wörd !");
    let _ = app.update(key(KeyCode::Down), now);
    let _ = app.update(key(KeyCode::Down), now);
    assert_eq!(app.input().text(), "draft", "Down past the newest returns the draft");
    // A paste of one line (a final newline or not) goes into the input, to edit.
    let _ = app.update(Msg::Paste("two\tlines\n".into()), now);
    assert_eq!(app.input().text(), "drafttwo lines");
}

#[test]
fn quit_and_ctrl_c_ask_to_close_and_a_bare_exit_is_a_message() {
    let now = t0();
    let mut app = client_app(now);
    typed(&mut app, "exit", now);
    assert_eq!(
        app.update(key(KeyCode::Enter), now).intents,
        vec![Intent::Say { kind: Kind::Text, text: "exit".into(), to: None }]
    );
    assert!(!app.quitting());
    for how in ["/quit", "/exit"] {
        let now = t0();
        let mut app = client_app(now);
        typed(&mut app, how, now);
        assert_eq!(app.update(key(KeyCode::Enter), now).intents, vec![Intent::Close], "{how}");
        assert!(app.quitting());
    }
    let mut app = client_app(t0());
    assert_eq!(app.update(ctrl('c'), t0()).intents, vec![Intent::Close]);
    typed(&mut app, "/rekey", t0());
    assert_eq!(app.update(key(KeyCode::Enter), t0()).intents, vec![Intent::KeyUpdate { request_peer: true }]);
    typed(&mut app, "/nonsense", t0());
    assert_eq!(app.update(key(KeyCode::Enter), t0()).intents, vec![], "unknown commands are not sent");
}

#[test]
fn a_host_and_a_member_each_refuse_the_others_commands_and_send_their_own() {
    let now = t0();
    let mut host = App::new(true);
    let _ = host
        .update(Msg::Started { peer: "127.0.0.1:8443".into(), state: "listening".into(), server: true }, now);
    let mut member = client_app(now);
    let run = |app: &mut App, line: &str| {
        let before = app.log().entries().len();
        typed(app, line, now);
        let intents = app.update(key(KeyCode::Enter), now).intents;
        (intents, notices_after(app, before))
    };
    let (intents, said) = run(&mut host, "/tamper flip");
    assert_eq!(intents, vec![]);
    assert_eq!(said, ["/tamper is for clients: run it in tlschat demo or tlschat connect --lab"]);
    let (intents, said) = run(&mut member, "/kick bob");
    assert_eq!(intents, vec![]);
    assert_eq!(said, ["/kick, /ban and /invite are the host's: run them in tlschat listen"]);
    let (intents, _) = run(&mut host, "/ban bob");
    assert_eq!(intents, vec![Intent::Remove { name: "bob".into(), ban: true }]);
    let (intents, _) = run(&mut member, "/ignore bob");
    assert_eq!(intents, vec![Intent::Ignore { name: "bob".into() }]);
    // /who and /quit are everyone's.
    for app in [&mut host, &mut member] {
        assert_eq!(run(app, "/who").0, vec![Intent::Who]);
        assert_eq!(run(app, "/quit").0, vec![Intent::Close]);
    }
}

#[test]
fn scrolling_back_holds_the_view_and_counts_what_arrives_meanwhile() {
    let now = t0();
    let mut app = client_app(now);
    let _ = app.update(Msg::Resize { width: 80, height: 24 }, now);
    for n in 0..100 {
        let _ = app.update(Msg::Net(NetEvent::Text { peer: server(), line: format!("line {n}") }), now);
    }
    let _ = app.update(key(KeyCode::PageUp), now);
    let back = app.log().scroll();
    assert!(back > 0);
    let _ = app.update(Msg::Net(NetEvent::Text { peer: server(), line: "new".into() }), now);
    assert_eq!(app.log().scroll(), back + 1, "the view stays on the same entries");
    assert_eq!(app.log().unread(), 1);
    assert!(screen(&mut app, 80, 24).contains("1 unread"));
    let _ = app.update(Msg::Wheel(-1), now);
    let _ = app.update(key(KeyCode::End), now);
    assert_eq!(app.log().scroll(), 0);
    assert_eq!(app.log().unread(), 0);
}

#[test]
fn wrapping_never_exceeds_the_width_and_loses_no_text() {
    use unicode_width::UnicodeWidthStr;
    let samples = [
        "",
        "a",
        "hello world",
        "中文中文中文中文",
        "🚀🚀 🚀🚀🚀 x",
        "aaaaaaaaaaaaaaaaaaaaaaaaa b",
        "a  b   c    ",
    ];
    for text in samples {
        for width in 2..12 {
            let lines = ui::wrap(text, width, width);
            for line in &lines {
                assert!(line.width() <= width, "{line:?} wider than {width}");
            }
            let joined: String = lines.concat();
            assert_eq!(joined.replace(' ', ""), text.replace(' ', ""), "{text:?} at {width}");
        }
    }
}

#[test]
fn ten_thousand_messages_render_only_what_is_visible() {
    let now = t0();
    let mut app = App::new(true);
    for n in 0..10_000 {
        let _ =
            app.update(Msg::Net(NetEvent::Text { peer: server(), line: format!("message number {n}") }), now);
    }
    assert_eq!(app.log().entries().len(), 10_000);
    let text = screen(&mut app, 80, 24);
    assert!(text.contains("message number 9999"));
    assert!(!text.contains("message number 9000 "));
}

#[test]
fn the_step_delay_reveals_one_message_per_delay_with_the_times_they_arrived() {
    let (events, _) = client_events("localhost", 48);
    let delay = Duration::from_millis(250);
    let start = t0();
    let mut app = App::new(true).with_step_delay(delay);
    let _ = app.update(
        Msg::Started { peer: "localhost:8443".into(), state: "connecting".into(), server: false },
        start,
    );
    // Everything arrives within a few milliseconds, as on loopback.
    let arrived = feed(&mut app, events, start);
    let _ = app.update(Msg::Net(NetEvent::Text { peer: server(), line: "welcome".into() }), arrived);
    assert_eq!(app.panel().steps().len(), 1, "only the first message is shown at once");
    let mut now = arrived;
    let mut shown = vec![1];
    while let Some(due) = app.next_delayed() {
        assert!(shown.len() < 20, "the reveal never ends");
        let wait = due.saturating_duration_since(now.instant);
        assert!(wait <= delay, "{wait:?}");
        now = now.after(wait);
        let update = app.update(Msg::Tick, now);
        assert!(update.redraw);
        shown.push(app.panel().steps().len());
    }
    // One more message per tick, until the whole handshake is shown.
    assert_eq!(shown, (1..=shown.len()).collect::<Vec<_>>());
    assert!(shown.len() >= 9, "{shown:?}");
    assert!(matches!(app.panel().outcome(), Outcome::Done(_)), "connected once every step is shown");
    assert_eq!(
        app.log().entries().back().map(|e| e.text.as_str()),
        Some("welcome"),
        "chat waits behind the steps"
    );
    // The panel's times are when the events arrived (3 ms apart), not when they were shown.
    let last = app.panel().steps().last().unwrap();
    assert!(last.at < Duration::from_millis(100), "{:?}", last.at);
}

#[test]
fn a_held_flight_shows_in_the_panel_and_space_releases_it() {
    let (events, _) = client_events("localhost", 49);
    let first_flight = events
        .iter()
        .position(|e| matches!(e, Event::Handshake(s) if matches!(&s.step, tls::Step::Message { name: "ServerHello", .. })))
        .unwrap();
    let start = t0();
    let mut app = client_app(start);
    let now = feed(&mut app, events[..first_flight].iter().cloned(), start);
    let _ = app.update(Msg::Net(NetEvent::Held { peer: server() }), now);
    assert!(app.held());
    assert_eq!(app.state(), "paused");
    assert!(!app.animating(), "a held flight waits for the user: no spinner to turn");
    let text = screen(&mut app, 100, 24);
    assert!(text.contains("flight held: Space sends it"), "{text}");
    insta::assert_snapshot!(text);
    assert_eq!(app.update(key(KeyCode::Char(' ')), now).local, Some(Local::Release));
    assert!(!app.held());
    assert_eq!(app.input().text(), "", "the Space that released the flight is not typed");
    assert_eq!(app.update(key(KeyCode::Char(' ')), now).local, None, "nothing is held any more");
    assert_eq!(app.input().text(), " ");
}

#[test]
fn a_key_update_after_the_handshake_shows_as_a_step_and_as_notices() {
    let pki = pki(50);
    let mut pair = Pair::new(client_config(&pki), server_config(&pki), 50);
    pair.drive();
    pair.client.key_update(true).unwrap();
    pair.drive();
    let start = t0();
    let mut app = client_app(start);
    let now = feed(&mut app, pair.client_events, start);
    let _ = app.update(Msg::Net(NetEvent::Text { peer: server(), line: "new keys, same chat".into() }), now);
    let names: Vec<&str> = app.panel().steps().iter().map(|s| s.name).collect();
    assert_eq!(names.iter().filter(|n| **n == "KeyUpdate").count(), 2, "ours and the answer: {names:?}");
    assert_eq!(app.panel().key_updates(), 2);
    assert_eq!(app.state(), "connected", "a KeyUpdate is not a new handshake");
    let notices: Vec<&str> = app.log().entries().iter().map(|e| e.text.as_str()).collect();
    assert!(
        notices.contains(
            &"KeyUpdate sent to 127.0.0.1:8443: our sending keys are now generation 1 (update requested)"
        ),
        "{notices:?}"
    );
    assert!(
        notices.contains(&"KeyUpdate from 127.0.0.1:8443: its sending keys are now generation 1"),
        "{notices:?}"
    );
    let text = screen(&mut app, 100, 30);
    assert!(text.contains("Handshake 7/7 · 2 after"), "{text}");
    insta::assert_snapshot!(text);
}

// ---------------------------------------------------------------------------
// The room

/// A room as carol's client sees it: the relay's frames, made by real
/// members' signing and checked by carol's own member state.
struct RoomFeed {
    carol: tlschat::chat::Member,
    alice: tlschat::chat::Member,
    mallory: tlschat::chat::Member,
    room_seq: u64,
}

const ROOM: [u8; 32] = [0x42; 32];

fn seeded_key(seed: u64) -> tls::Ed25519Key {
    tls::Ed25519Key::generate(&mut tls::SeededRng::new_for_testing_only(seed))
}

fn member_of(seed: u64) -> tlschat::chat::Member {
    tlschat::chat::Member::new(ROOM, seeded_key(seed), &mut tls::SeededRng::new_for_testing_only(seed + 100))
}

impl RoomFeed {
    fn new() -> Self {
        Self { carol: member_of(3), alice: member_of(1), mallory: member_of(9), room_seq: 4 }
    }

    fn info(name: &str, standing: Standing, key: [u8; 32]) -> MemberInfo {
        MemberInfo { name: name.into(), standing, key, idle_secs: 7 }
    }

    /// Carol's view of `frame`, into the app.
    fn show(&mut self, app: &mut App, frame: Frame, now: Now) {
        for event in self.carol.receive(frame, FEED_MS).unwrap() {
            let _ = app.update(Msg::Net(NetEvent::Chat { peer: server(), event }), now);
        }
    }

    fn signed(member: &mut tlschat::chat::Member, text: &str) -> Vec<u8> {
        match member.compose(Kind::Text, text, None, FEED_MS).unwrap().0 {
            Frame::Post { signed } => signed,
            _ => unreachable!(),
        }
    }

    fn deliver(&mut self, app: &mut App, author: &str, signed: Vec<u8>, now: Now) {
        self.room_seq += 1;
        let frame = Frame::Deliver { room_seq: self.room_seq, flags: 0, author: author.into(), signed };
        self.show(app, frame, now);
    }
}

/// A room with verified members, a guest, a mention, an altered message, a
/// gap, an impostor and our own line delivered.
fn room_app() -> (App, Now) {
    let now = t0();
    let mut app = client_app(now);
    let mut feed = RoomFeed::new();
    let alice_key = feed.alice.public_key();
    let carol_key = feed.carol.public_key();
    feed.show(&mut app, Frame::Welcome { name: "carol".into(), room_seq: 4, history: 0, e2e: false }, now);
    let members = vec![
        RoomFeed::info("alice", Standing::Verified, alice_key),
        RoomFeed::info("bob", Standing::Verified, seeded_key(2).public_key()),
        RoomFeed::info("carol", Standing::Verified, carol_key),
        RoomFeed::info("guest-1", Standing::Guest, [0; 32]),
        RoomFeed::info("host", Standing::Host, seeded_key(5).public_key()),
    ];
    feed.show(&mut app, Frame::Roster { total: 5, last: true, members }, now);
    let hello = RoomFeed::signed(&mut feed.alice, "hello everyone");
    feed.deliver(&mut app, "alice", hello, now);
    let mention = RoomFeed::signed(&mut feed.alice, "carol, did you see the handshake panel?");
    feed.deliver(&mut app, "alice", mention, now);
    feed.room_seq += 1;
    let guest = Frame::Guest {
        room_seq: feed.room_seq,
        flags: 0,
        name: "guest-1".into(),
        text: "hi \u{1b}[2J all".into(),
    };
    feed.show(&mut app, guest, now);
    // Altered by the relay after alice signed it.
    let mut altered = RoomFeed::signed(&mut feed.alice, "pay 10 coins");
    let at = altered.len() - 64 - 2;
    altered[at] = b'9';
    feed.deliver(&mut app, "alice", altered, now);
    // Two of alice's messages never arrive.
    let _ = RoomFeed::signed(&mut feed.alice, "lost one");
    let _ = RoomFeed::signed(&mut feed.alice, "lost two");
    let after = RoomFeed::signed(&mut feed.alice, "after the gap");
    feed.deliver(&mut app, "alice", after, now);
    // Someone else's key under alice's name.
    let impostor = RoomFeed::signed(&mut feed.mallory, "it is me, alice");
    feed.deliver(&mut app, "alice", impostor, now);
    // Our own line: sent, then acknowledged.
    typed(&mut app, "hi alice", now);
    let _ = app.update(key(KeyCode::Enter), now);
    let sent = ChatEvent::Sent {
        seq: 1,
        kind: Kind::Text,
        to: None,
        text: "hi alice".into(),
        acked: true,
        e2e: false,
    };
    let _ = app.update(Msg::Net(NetEvent::Chat { peer: server(), event: sent }), now);
    feed.room_seq += 1;
    feed.show(&mut app, Frame::Ack { room_seq: feed.room_seq, seq: 1, private: false }, now);
    (app, now)
}

#[test]
fn a_room_shows_names_with_their_state_marks_mentions_gaps_and_impostors() {
    let (mut app, now) = room_app();
    let text = screen(&mut app, 120, 32);
    insta::assert_snapshot!("room_120x32", text);
    for expected in [
        "alice ✓ new: hello everyone",
        "guest-1 (unverified): hi \\u{1b}[2J all",
        "alice ✗ INVALID:",
        // The altered one came, and is shown marked: only the two lost
        // ones are missing (its place proves nothing, and hides nothing:
        // it is on screen, ✗ INVALID).
        "2 message(s) from alice missing",
        "alice ⚠ KEY CHANGED: it is me, alice",
        "you ✓✓: hi alice",
    ] {
        assert!(text.contains(expected), "{expected:?} not on screen:\n{text}");
    }
    assert!(!app.update(Msg::Tick, now).bell, "a tick rings nothing");
    // The line that says carol's name is the one marked as a mention.
    let mentions: Vec<&str> =
        app.log().entries().iter().filter(|e| e.tags.mention).map(|e| e.text.as_str()).collect();
    assert_eq!(mentions, ["carol, did you see the handshake panel?"]);
}

#[test]
fn a_line_that_mentions_me_rings_the_bell_unless_turned_off() {
    let now = t0();
    for bell in [true, false] {
        let mut app = client_app(now).with_bell(bell);
        let mut feed = RoomFeed::new();
        feed.show(
            &mut app,
            Frame::Welcome { name: "carol".into(), room_seq: 4, history: 0, e2e: false },
            now,
        );
        let plain = RoomFeed::signed(&mut feed.alice, "hello");
        feed.room_seq += 1;
        let frame =
            Frame::Deliver { room_seq: feed.room_seq, flags: 0, author: "alice".into(), signed: plain };
        let event = feed.carol.receive(frame, FEED_MS).unwrap().remove(0);
        assert!(!app.update(Msg::Net(NetEvent::Chat { peer: server(), event }), now).bell);
        let mention = RoomFeed::signed(&mut feed.alice, "hey Carol!");
        feed.room_seq += 1;
        let frame =
            Frame::Deliver { room_seq: feed.room_seq, flags: 0, author: "alice".into(), signed: mention };
        let event = feed.carol.receive(frame, FEED_MS).unwrap().remove(0);
        assert_eq!(app.update(Msg::Net(NetEvent::Chat { peer: server(), event }), now).bell, bell);
        let last = app.log().entries().back().unwrap();
        assert!(last.tags.mention);
    }
}

#[test]
fn f3_shows_the_member_list_and_tab_completes_a_members_name() {
    let (mut app, now) = room_app();
    let _ = app.update(key(KeyCode::F(3)), now);
    let text = screen(&mut app, 120, 32);
    insta::assert_snapshot!("room_members_120x32", text);
    assert!(text.contains("Members 5"), "{text}");
    typed(&mut app, "gu", now);
    let _ = app.update(key(KeyCode::Tab), now);
    assert_eq!(app.input().text(), "guest-1: ");
    typed(&mut app, "ask ca", now);
    let _ = app.update(key(KeyCode::Tab), now);
    assert_eq!(app.input().text(), "guest-1: ask carol ");
    assert_eq!(app.focus(), Focus::Input, "a completion is not a focus change");
}

#[test]
fn a_signed_message_opens_in_the_side_panel_with_its_fields_marked() {
    let (mut app, now) = room_app();
    // Tab: the handshake panel; Tab: the messages, the newest signed one picked.
    let _ = app.update(key(KeyCode::Tab), now);
    let _ = app.update(key(KeyCode::Tab), now);
    assert_eq!(app.focus(), Focus::Messages);
    // Up to the altered one, and open it.
    let _ = app.update(key(KeyCode::Up), now);
    let _ = app.update(key(KeyCode::Up), now);
    let _ = app.update(key(KeyCode::Enter), now);
    let text = screen(&mut app, 120, 40);
    insta::assert_snapshot!("room_message_opened_120x40", text);
    assert!(text.contains("BAD SIGNATURE"), "{text}");
    assert!(text.contains("label: 0..22") && text.contains("signature: "), "{text}");
    let _ = app.update(key(KeyCode::Esc), now);
    assert!(matches!(app.side(), tlschat::tui::app::Side::Handshake));
}

#[test]
fn a_rooms_panel_follows_the_member_picked_in_the_member_list() {
    let now = t0();
    let mut app = App::new(true);
    let _ = app
        .update(Msg::Started { peer: "127.0.0.1:8443".into(), state: "listening".into(), server: true }, now);
    let peers: Vec<SocketAddr> =
        (1..=3).map(|i| format!("127.0.0.1:{}", 50_000 + i).parse().unwrap()).collect();
    let handshake = |app: &mut App, peer: SocketAddr, seed: u64| {
        let pki = pki(seed);
        let mut pair = Pair::new(client_config(&pki), server_config(&pki), seed);
        pair.drive();
        for event in pair.server_events {
            if let Some(event) = NetEvent::from_engine(peer, event) {
                let _ = app.update(Msg::Net(event), now);
            }
        }
    };
    handshake(&mut app, peers[0], 61);
    handshake(&mut app, peers[1], 62);
    assert_eq!(app.conns().len(), 2);
    // By default the panel shows the newest handshake.
    assert_eq!(app.pinned(), None);
    let newest_first_step = app.panel().steps()[0].bytes.clone();
    // F3, Tab to the list, Down to the first member, Enter: follow it.
    let _ = app.update(key(KeyCode::F(3)), now);
    let _ = app.update(key(KeyCode::Tab), now);
    let list = screen(&mut app, 120, 24);
    assert!(list.contains("the newest handshake") && list.contains("127.0.0.1:50001"), "{list}");
    let _ = app.update(key(KeyCode::Down), now);
    let _ = app.update(key(KeyCode::Enter), now);
    assert_eq!(app.pinned(), Some(peers[0]));
    let followed = app.panel().steps()[0].bytes.clone();
    assert_ne!(followed, newest_first_step, "the panel shows the first member's own handshake");
    // A new member's handshake does not take the panel away.
    handshake(&mut app, peers[2], 63);
    assert_eq!(app.panel().steps()[0].bytes, followed);
    assert_eq!(app.conns().len(), 3);
    // The followed member leaves: still readable until another is picked.
    let _ = app.update(Msg::Net(NetEvent::Closed { peer: peers[0], by: Closer::Peer }), now);
    assert_eq!(app.panel().steps()[0].bytes, followed);
    let _ = app.update(key(KeyCode::F(3)), now);
    let _ = app.update(key(KeyCode::Up), now);
    let _ = app.update(key(KeyCode::Enter), now);
    assert_eq!(app.pinned(), None);
    assert_eq!(app.conns().len(), 2, "the one that left goes once unfollowed");
}

// ---------------------------------------------------------------------------
// --reveal and the key schedule view (F4)

/// The client's events of a real handshake with `reveal` as given, then a
/// line of data each way.
fn revealing_events(seed: u64, reveal: bool) -> Vec<Event> {
    let pki = pki(seed);
    let mut config = client_config(&pki);
    config.reveal = reveal;
    config.suites = vec![tls::CipherSuite::TLS_AES_128_GCM_SHA256];
    let mut pair = Pair::new(config, server_config(&pki), seed);
    pair.drive();
    pair.client.send(b"hi\n").unwrap();
    pair.server.send(b"welcome\n").unwrap();
    pair.drive();
    pair.client_events
}

#[test]
fn the_key_schedule_view_without_reveal_shows_the_tree_and_hashes_with_values_hidden() {
    let start = t0();
    let mut app = client_app(start);
    feed(&mut app, revealing_events(60, false), start);
    let _ = app.update(key(KeyCode::F(4)), start);
    let text = screen(&mut app, 120, 40);
    assert!(text.contains("Key schedule"));
    assert!(!text.contains("SECRETS ON SCREEN"));
    assert!(!text.contains("openssl"), "no command without values");
    insta::assert_snapshot!(text);
    // F4 again: back to the handshake.
    let _ = app.update(key(KeyCode::F(4)), start);
    assert!(screen(&mut app, 120, 40).contains("Handshake"));
}

#[test]
fn with_reveal_the_view_shows_values_and_commands_under_a_banner_and_scrolls() {
    let start = t0();
    let mut app = client_app(start).with_reveal(true);
    feed(&mut app, revealing_events(61, true), start);
    let _ = app.update(key(KeyCode::F(4)), start);
    let top = screen(&mut app, 120, 40);
    assert!(top.contains("SECRETS ON SCREEN"));
    assert!(top.contains("openssl pkeyutl -derive"));
    insta::assert_snapshot!("key_schedule_revealed_top", top);
    // Tab gives the panel the keys; PgDn scrolls the tree.
    let _ = app.update(key(KeyCode::Tab), start);
    for _ in 0..6 {
        let _ = app.update(key(KeyCode::PageDown), start);
    }
    assert_eq!(app.panel().schedule_scroll(), 48);
    let lower = screen(&mut app, 120, 40);
    assert_ne!(lower, top);
    assert!(lower.contains("SECRETS ON SCREEN"), "the banner stays while scrolling");
    insta::assert_snapshot!("key_schedule_revealed_scrolled", lower);
}

#[test]
fn with_reveal_the_handshake_panel_shows_secret_values_and_without_it_hides_them() {
    for reveal in [false, true] {
        let start = t0();
        let mut app = client_app(start).with_reveal(reveal);
        feed(&mut app, revealing_events(62, true), start);
        // Focus the panel, pick the ServerHello (2) and expand it.
        let _ = app.update(key(KeyCode::Tab), start);
        let _ = app.update(key(KeyCode::Home), start);
        let _ = app.update(key(KeyCode::Down), start);
        let _ = app.update(key(KeyCode::Enter), start);
        let text = screen(&mut app, 140, 60);
        let hs = app.panel().schedule().value(tls::SecretKind::ClientHandshakeTraffic);
        if reveal {
            let hex: String = hs.unwrap().iter().map(|b| format!("{b:02x}")).collect();
            assert!(text.contains("values shown"), "{text}");
            assert!(text.contains(&hex[..40]), "the value is on screen");
            assert!(text.contains("SECRETS ON SCREEN"));
        } else {
            // The engine revealed, but the app was not told to show: nothing kept.
            assert!(hs.is_none());
            assert!(text.contains("values hidden"));
            assert!(!text.contains("SECRETS ON SCREEN"));
        }
    }
}

#[test]
fn every_command_the_view_draws_runs_as_drawn_and_prints_the_engines_value() {
    let start = t0();
    let mut app = client_app(start).with_reveal(true);
    feed(&mut app, revealing_events(63, true), start);
    let width = 58;
    let theme_lines = ui::schedule::lines(&app, width, ui::Theme::of(&app));
    let drawn: Vec<String> = theme_lines.iter().map(|l| l.to_string()).collect();
    assert!(
        drawn.iter().all(|l| l.chars().count() <= width || !l.contains("openssl")),
        "a command line is wider than the panel"
    );
    // Each command as drawn: the lines after "recompute it:" up to "expect".
    let mut ran = 0;
    let mut i = 0;
    while i < drawn.len() {
        if drawn[i].trim() == "recompute it:" {
            let end = (i + 1..drawn.len()).find(|&j| drawn[j].trim_start().starts_with("expect ")).unwrap();
            let command = drawn[i + 1..end].join("\n");
            let expected = drawn[end].trim_start().trim_start_matches("expect ").to_owned();
            let out = std::process::Command::new("sh").arg("-c").arg(&command).output().unwrap();
            assert_eq!(
                tlschat::teach::schedule::normalize(&String::from_utf8_lossy(&out.stdout)),
                expected,
                "{command}"
            );
            ran += 1;
            i = end;
        }
        i += 1;
    }
    assert_eq!(ran, app.panel().schedule().proofs().len());
    assert!(ran > 30, "{ran} commands");
}

/// The room's answer `event`, into `app`.
fn chat(app: &mut App, event: ChatEvent, now: Now) {
    let _ = app.update(Msg::Net(NetEvent::Chat { peer: server(), event }), now);
}

fn sent(seq: u64, text: &str, to: Option<&str>) -> ChatEvent {
    let kind = if to.is_some() { Kind::Private } else { Kind::Text };
    ChatEvent::Sent { seq, kind, to: to.map(Into::into), text: text.into(), acked: true, e2e: false }
}

fn delivered(seq: u64, private: bool) -> ChatEvent {
    ChatEvent::Delivered { seq, private, room_seq: 0 }
}

/// Our own lines in the log, each as `mark text`.
fn my_lines(app: &App) -> Vec<String> {
    use tlschat::tui::app::{Author, Delivery};
    app.log()
        .entries()
        .iter()
        .filter_map(|e| match &e.author {
            Author::Me(d) => {
                let mark = match d {
                    Delivery::Pending | Delivery::Sent { .. } => "·",
                    Delivery::Delivered => "✓✓",
                    Delivery::Unacknowledged => "→",
                    Delivery::Waiting => "…",
                    Delivery::Refused => "✗",
                };
                Some(format!("{mark} {}", e.text))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_refused_line_is_marked_not_sent_and_the_lines_after_it_keep_their_own_marks() {
    let now = t0();
    let mut app = client_app(now);
    chat(&mut app, ChatEvent::Welcome { name: "carol".into(), history: 0, e2e: false }, now);
    // Three lines typed before the connection answers any: the middle one
    // cannot be signed (nobody of that name is known).
    for line in ["first", "/msg nobody psst", "third"] {
        typed(&mut app, line, now);
        let _ = app.update(key(KeyCode::Enter), now);
    }
    chat(&mut app, sent(1, "first", None), now);
    let refusal = "not sent: no member named nobody is known here (/who lists who is in)";
    chat(&mut app, ChatEvent::Refused { code: RefusalCode::BadMessage, text: refusal.into() }, now);
    assert_eq!(my_lines(&app), ["· first", "✗ → nobody: psst", "· third"]);
    chat(&mut app, sent(2, "third", None), now);
    chat(&mut app, delivered(1, false), now);
    assert_eq!(my_lines(&app), ["✓✓ first", "✗ → nobody: psst", "· third"]);
    chat(&mut app, delivered(2, false), now);
    assert_eq!(my_lines(&app), ["✓✓ first", "✗ → nobody: psst", "✓✓ third"]);
    let text = screen(&mut app, 100, 20);
    assert!(text.contains("you ✗ not sent (private): → nobody: psst"), "{text}");
    assert!(text.contains("you ✓✓: third"), "{text}");

    // The relay refuses a line it received (too fast): the oldest line not
    // yet acknowledged, since it answers each in order.
    for line in ["fourth", "fifth"] {
        typed(&mut app, line, now);
        let _ = app.update(key(KeyCode::Enter), now);
    }
    chat(&mut app, sent(3, "fourth", None), now);
    chat(&mut app, sent(4, "fifth", None), now);
    chat(&mut app, delivered(3, false), now);
    let slow = "not sent: slow down (at most 20 messages at once, 5 a second)";
    chat(&mut app, ChatEvent::Refused { code: RefusalCode::RateLimited, text: slow.into() }, now);
    assert_eq!(my_lines(&app)[3..], ["✓✓ fourth", "✗ fifth"]);

    // A refusal that never came (or came before it could be matched):
    // the line after it, sent, shows that the one before was not.
    for line in ["/msg nobody again", "sixth"] {
        typed(&mut app, line, now);
        let _ = app.update(key(KeyCode::Enter), now);
    }
    chat(&mut app, sent(5, "sixth", None), now);
    assert_eq!(my_lines(&app)[5..], ["✗ → nobody: again", "· sixth"]);

    // A name with "relay" in it does not make a refusal the relay's.
    typed(&mut app, "/msg relaybot hi", now);
    let _ = app.update(key(KeyCode::Enter), now);
    let refusal = "not sent: no member named relaybot is known here (/who lists who is in)";
    chat(&mut app, ChatEvent::Refused { code: RefusalCode::BadMessage, text: refusal.into() }, now);
    assert_eq!(my_lines(&app)[5..], ["✗ → nobody: again", "· sixth", "✗ → relaybot: hi"]);

    // A line the network could not even be handed.
    typed(&mut app, "seventh", now);
    let _ = app.update(key(KeyCode::Enter), now);
    let reason = "not sent: the connection is over".to_owned();
    let _ = app.update(Msg::NotSent { lines: 1, reason }, now);
    assert_eq!(my_lines(&app)[8..], ["✗ seventh"]);
}

#[test]
fn a_paste_of_several_lines_is_said_line_by_line_in_order_and_empty_lines_are_skipped() {
    let now = t0();
    let mut app = client_app(now);
    typed(&mut app, "first: ", now);
    // Terminals send pasted newlines as CR, LF or both.
    let update = app.update(Msg::Paste("one\r\ntwo\r\rthree\n/quit\n".into()), now);
    let said = |text: &str| Intent::Say { kind: Kind::Text, text: text.into(), to: None };
    assert_eq!(
        update.intents,
        vec![said("first: one"), said("two"), said("three"), said("/quit")],
        "a pasted command is text"
    );
    assert_eq!(app.input().text(), "", "the input is empty after the paste");
    assert!(!app.quitting());
    assert_eq!(my_lines(&app), ["· first: one", "· two", "· three", "· /quit"]);

    // After /msg NAME, every line goes to NAME; after /me, every line is an action.
    typed(&mut app, "/msg bob ", now);
    let update = app.update(Msg::Paste("a\nb".into()), now);
    let private = |text: &str| Intent::Say { kind: Kind::Private, text: text.into(), to: Some("bob".into()) };
    assert_eq!(update.intents, vec![private("a"), private("b")]);
    typed(&mut app, "/me ", now);
    let update = app.update(Msg::Paste("waves\nsmiles".into()), now);
    let action = |text: &str| Intent::Say { kind: Kind::Action, text: text.into(), to: None };
    assert_eq!(update.intents, vec![action("waves"), action("smiles")]);
    // After another command, nothing is sent and the input stays.
    typed(&mut app, "/who ", now);
    assert_eq!(app.update(Msg::Paste("x\ny".into()), now).intents, vec![]);
    assert_eq!(app.input().text(), "/who ");
}

#[test]
fn a_line_over_the_limit_is_said_in_pieces_cut_at_character_boundaries() {
    let now = t0();
    let mut app = client_app(now);
    // One byte, then two-byte characters: 4096 falls inside one of them.
    let long = format!("a{}", "é".repeat(5000));
    let _ = app.update(Msg::Paste(long.clone()), now);
    let pieces = said_texts(app.update(key(KeyCode::Enter), now).intents);
    assert_eq!(pieces.len(), 3);
    assert!(pieces.iter().all(|p| p.len() <= tlschat::chat::MAX_TEXT));
    assert_eq!(pieces.concat(), long, "nothing lost");
    assert_eq!(my_lines(&app).len(), 3, "each piece shows as a line of its own");
    // Words are not cut where a space is near the end.
    let words = "word ".repeat(1000);
    let _ = app.update(Msg::Paste(words.clone()), now);
    let pieces = said_texts(app.update(key(KeyCode::Enter), now).intents);
    assert!(pieces.iter().all(|p| p.split(' ').all(|w| w == "word" || w.is_empty())), "{pieces:?}");
    assert_eq!(pieces.iter().map(|p| p.matches("word").count()).sum::<usize>(), 1000);
}

/// The texts of `intents`, each a line of text said; panics on any other.
fn said_texts(intents: Vec<Intent>) -> Vec<String> {
    assert!(intents.len() > 1, "a long line is said as several messages: {intents:?}");
    intents
        .into_iter()
        .map(|intent| match intent {
            Intent::Say { kind: Kind::Text, text, to: None } => text,
            other => panic!("not a line of text: {other:?}"),
        })
        .collect()
}

#[test]
fn esc_then_the_rest_of_an_arrows_sequence_late_moves_and_types_nothing() {
    let now = t0();
    let mut app = client_app(now);
    typed(&mut app, "older", now);
    let _ = app.update(key(KeyCode::Enter), now);
    typed(&mut app, "draft", now);
    // Esc, then "[A" a little later (a slow link split Up's sequence): Up.
    let ms = |n| now.after(Duration::from_millis(n));
    let _ = app.update(key(KeyCode::Esc), ms(0));
    let _ = app.update(key(KeyCode::Char('[')), ms(80));
    let _ = app.update(key(KeyCode::Char('A')), ms(120));
    assert_eq!(app.input().text(), "older", "taken as Up: history");
    // Down, split after the Esc and with a parameter ("\x1b" then "[1;2B").
    for (c, at) in [('[', 10), ('1', 20), (';', 30), ('2', 40), ('B', 50)] {
        if at == 10 {
            let _ = app.update(key(KeyCode::Esc), ms(1000));
        }
        let _ = app.update(key(KeyCode::Char(c)), ms(1000 + at));
    }
    assert_eq!(app.input().text(), "draft", "taken as Down: back to the draft");
    // Typed by hand, long after an Esc, "[B" is text.
    let _ = app.update(key(KeyCode::Esc), ms(2000));
    let _ = app.update(key(KeyCode::Char('[')), ms(3000));
    let _ = app.update(key(KeyCode::Char('B')), ms(3010));
    assert_eq!(app.input().text(), "draft[B");
}

/// The notices the last command added, as text.
fn notices_after(app: &App, before: usize) -> Vec<String> {
    app.log().entries().iter().skip(before).map(|e| e.text.clone()).collect()
}

#[test]
fn msg_alone_gives_its_usage_names_is_who_clear_empties_and_nick_explains() {
    let now = t0();
    let mut app = client_app(now);
    chat(&mut app, ChatEvent::Welcome { name: "carol".into(), history: 0, e2e: false }, now);
    for (line, says) in [
        ("/msg", "/msg NAME TEXT: a private message"),
        ("/msg bob", "/msg NAME TEXT: a private message"),
        ("/me", "/me ACTION"),
        ("/nick", "tlschat id --name NEW"),
        ("/nick dave", "here you are carol"),
    ] {
        let before = app.log().entries().len();
        typed(&mut app, line, now);
        assert_eq!(app.update(key(KeyCode::Enter), now).intents, vec![], "{line}");
        let said = notices_after(&app, before);
        assert!(said.iter().any(|n| n.contains(says)), "{line}: {said:?}");
        assert!(!said.iter().any(|n| n.contains("unknown command")), "{line}: {said:?}");
    }
    typed(&mut app, "/names", now);
    assert_eq!(app.update(key(KeyCode::Enter), now).intents, vec![Intent::Who]);
    assert!(app.log().entries().len() > 3);
    typed(&mut app, "/clear", now);
    let _ = app.update(key(KeyCode::Enter), now);
    assert_eq!(app.log().entries().len(), 0, "the scrollback is empty");
    assert!(!screen(&mut app, 80, 10).contains("Welcome"));
}

#[test]
fn actions_read_as_irssi_sentences_with_the_mark_outside_them() {
    let now = t0();
    let mut app = client_app(now);
    let mut feed = RoomFeed::new();
    feed.show(&mut app, Frame::Welcome { name: "carol".into(), room_seq: 4, history: 0, e2e: false }, now);
    let Frame::Post { signed } = feed.alice.compose(Kind::Action, "waves", None, FEED_MS).unwrap().0 else {
        unreachable!()
    };
    feed.deliver(&mut app, "alice", signed, now);
    typed(&mut app, "/me waves back", now);
    let _ = app.update(key(KeyCode::Enter), now);
    let text = screen(&mut app, 100, 12);
    assert!(text.contains("✓ new * alice waves"), "{text}");
    assert!(text.contains("· * you waves back"), "{text}");
    assert!(!text.contains("alice ✓"), "{text}");
}

#[test]
fn tab_on_a_word_no_name_starts_says_so_and_keeps_the_focus() {
    let (mut app, now) = room_app();
    typed(&mut app, "hello zz", now);
    let before = app.log().entries().len();
    let _ = app.update(key(KeyCode::Tab), now);
    assert_eq!(app.focus(), Focus::Input);
    assert_eq!(app.input().text(), "hello zz");
    let said = notices_after(&app, before);
    assert!(said.iter().any(|n| n.contains("no member's name starts with \"zz\"")), "{said:?}");
    // After a space there is no word: Tab moves the focus, as before.
    typed(&mut app, " ", now);
    let _ = app.update(key(KeyCode::Tab), now);
    assert_eq!(app.focus(), Focus::Panel);
}

#[test]
fn no_name_is_drawn_in_the_red_of_the_invalid_mark() {
    let app = App::new(true);
    let theme = ui::Theme::of(&app);
    for n in 0..500 {
        let name = format!("user-{n}");
        let fg = theme.name(&name).fg;
        assert!(!matches!(fg, Some(Color::Red | Color::LightRed)), "{name} is drawn in {fg:?}");
    }
}

#[test]
fn times_are_local_with_utc_available_and_history_shows_when_a_line_was_written() {
    use tlschat::tui::app::Clock;
    // t0 is 12:04 UTC.
    let india = Clock::local(Some(5 * 3600 + 30 * 60));
    let new_york = Clock::local(Some(-5 * 3600));
    assert_eq!(india.hh_mm(t0().unix), "17:34");
    assert_eq!(new_york.hh_mm(t0().unix), "07:04");
    assert_eq!(Clock::UTC.hh_mm(t0().unix), "12:04");
    assert_eq!(new_york.hh_mm(0), "19:00", "before the epoch's midnight, the day before");
    assert!(india.describe().contains("UTC+05:30") && india.describe().contains("--utc"));
    assert!(Clock::local(None).describe().contains("could not be read"));

    let now = t0();
    let mut app = client_app(now).with_clock(india);
    let mut feed = RoomFeed::new();
    feed.show(&mut app, Frame::Welcome { name: "carol".into(), room_seq: 4, history: 1, e2e: false }, now);
    // Written at 1_800_000_000 (08:00 UTC), replayed at 12:04 UTC.
    let Frame::Post { signed: old } =
        feed.alice.compose(Kind::Text, "written long ago", None, 1_800_000_000_000).unwrap().0
    else {
        unreachable!()
    };
    // History comes before the live messages, at the welcome's room_seq.
    let frame = Frame::Deliver {
        room_seq: feed.room_seq,
        flags: tlschat::chat::frame::flags::HISTORY,
        author: "alice".into(),
        signed: old,
    };
    feed.show(&mut app, frame, now);
    let fresh = RoomFeed::signed(&mut feed.alice, "said just now");
    feed.deliver(&mut app, "alice", fresh, now);
    let text = screen(&mut app, 100, 10);
    assert!(text.contains("13:30 (history) alice ✓ new: written long ago"), "{text}");
    assert!(text.contains("17:34 alice ✓ new: said just now"), "{text}");
    typed(&mut app, "/help", now);
    let _ = app.update(key(KeyCode::Enter), now);
    assert!(app.log().entries().iter().any(|e| e.text.contains("times are local, UTC+05:30")));
}

#[test]
fn the_hosts_screen_says_each_join_and_leave_once_and_its_status_bar_shows_the_rooms_key() {
    let now = t0();
    let mut app = App::new(true).with_room_key("58011 19260 35353 28049 14300 65719".into());
    let _ = app
        .update(Msg::Started { peer: "127.0.0.1:8443".into(), state: "listening".into(), server: true }, now);
    // A member's handshake: the client's side of a pair gives a summary
    // with a certificate; as the room sees erin, its subject is erin's.
    let peer: SocketAddr = "127.0.0.1:50001".parse().unwrap();
    let pki = pki(61);
    let mut pair = Pair::new(client_config(&pki), server_config(&pki), 61);
    pair.drive();
    let mut summary = Pair::connected(&pair.client_events).unwrap().clone();
    let cert = summary.peer.as_mut().unwrap();
    cert.subject = "CN=erin".into();
    let member_fp = cert.fingerprint.short().to_string();
    for event in pair.server_events {
        if let Some(event) = NetEvent::from_engine(peer, event) {
            let event = match event {
                NetEvent::Connected { peer, .. } => NetEvent::Connected { peer, summary: summary.clone() },
                other => other,
            };
            let _ = app.update(Msg::Net(event), now);
        }
    }
    let erin = MemberInfo { name: "erin".into(), standing: Standing::Verified, key: [7; 32], idle_secs: 0 };
    let presence = |joined| ChatEvent::Presence { joined, member: erin.clone(), reason: String::new() };
    let note = |note: &str| Msg::Net(NetEvent::RoomNote { note: note.into() });
    // The relay tells the host twice: a presence event, and a note for logs.
    chat(&mut app, presence(true), now);
    let _ = app.update(note("erin joined (verified)"), now);
    let _ = app.update(Msg::Net(NetEvent::Closed { peer, by: Closer::Peer }), now);
    chat(&mut app, presence(false), now);
    let _ = app.update(note("erin left"), now);
    // Another room note is still shown.
    let _ = app.update(note("refused a member: the room is full"), now);
    let text = screen(&mut app, 120, 30);
    assert_eq!(text.matches("erin joined").count(), 1, "{text}");
    assert_eq!(text.matches("erin left").count(), 1, "{text}");
    assert!(text.contains("erin left (close_notify)"), "{text}");
    assert!(!text.contains("127.0.0.1:50001 left"), "{text}");
    assert!(text.contains("refused a member: the room is full"), "{text}");
    let status = text.lines().last().unwrap();
    assert!(status.contains("safety 58011 19260 35353"), "the room's own key: {status}");
    assert!(!status.contains(&member_fp[..11]), "not the last member's: {status}");
}

#[test]
fn any_terminal_size_draws_without_a_panic() {
    let (mut app, now) = room_app();
    for (width, height) in [(1, 1), (u16::MAX, 3), (40, u16::MAX / 64), (2, 40)] {
        let _ = app.update(Msg::Resize { width, height }, now);
        let _ = app.update(key(KeyCode::F(2)), now);
        let area = Rect::new(0, 0, width, height);
        let _ = ui::Areas::of(&app, area);
        if u32::from(width) * u32::from(height) <= 1 << 20 {
            let _ = buffer(&app, width, height);
        }
    }
}

/// A later session of carol's: she remembers alice (seen before) and bob
/// (verified); the relay delivers a line from each kind of sender and lie.
#[test]
fn each_mark_of_a_later_session_shows_with_its_legend_in_help() {
    use tlschat::chat::Contacts;
    let now = t0();
    let mut feed = RoomFeed::new();
    let mut bob = member_of(2);
    let mut alice_lines: Vec<Vec<u8>> =
        (1..=4).map(|i| RoomFeed::signed(&mut feed.alice, &format!("alice's line {i}"))).collect();
    // The first session: carol read alice's first line and heard bob.
    let mut first = member_of(3);
    first
        .receive(Frame::Welcome { name: "carol".into(), room_seq: 1, history: 0, e2e: false }, FEED_MS)
        .unwrap();
    let deliver = |room_seq, author: &str, signed: &[u8]| Frame::Deliver {
        room_seq,
        flags: 0,
        author: author.into(),
        signed: signed.to_vec(),
    };
    first.receive(deliver(2, "alice", &alice_lines[0]), FEED_MS).unwrap();
    let hi = RoomFeed::signed(&mut bob, "bob was here");
    first.receive(deliver(3, "bob", &hi), FEED_MS).unwrap();
    let mut saved = Contacts::parse(&first.contacts().to_text()).unwrap();
    saved.verify("bob").unwrap();
    // Where the first session left the room is forgotten: this session
    // does not resume (no relay here answers), it is delivered live.
    saved.restart_room_seq();

    // The later session.
    feed.carol = member_of(3).with_contacts(saved);
    let mut app = client_app(now);
    typed(&mut app, "/help", now);
    let _ = app.update(key(KeyCode::Enter), now);
    let legend = screen(&mut app, 120, 40);
    assert!(legend.contains("marks: ✓ signature checked"), "{legend}");
    typed(&mut app, "/clear", now);
    let _ = app.update(key(KeyCode::Enter), now);
    feed.room_seq = 10;
    feed.show(&mut app, Frame::Welcome { name: "carol".into(), room_seq: 10, history: 0, e2e: false }, now);
    let line = alice_lines.remove(1);
    feed.deliver(&mut app, "alice", line, now);
    let line = RoomFeed::signed(&mut bob, "bob again");
    feed.deliver(&mut app, "bob", line, now);
    let mut olga = member_of(20);
    let line = RoomFeed::signed(&mut olga, "привет всем");
    feed.deliver(&mut app, "Ольга", line, now);
    // Out of order: alice's fourth, then her third.
    let (third, fourth) = (alice_lines.remove(1), alice_lines.remove(1));
    feed.deliver(&mut app, "alice", fourth, now);
    feed.deliver(&mut app, "alice", third, now);
    // Yesterday's line of alice's, delivered as live.
    let replay = alice_lines.remove(0);
    feed.deliver(&mut app, "alice", replay, now);
    // Someone else's key under alice's name.
    let impostor = RoomFeed::signed(&mut feed.mallory, "it is me, alice");
    feed.deliver(&mut app, "alice", impostor, now);
    let text = screen(&mut app, 120, 40);
    insta::assert_snapshot!("room_marks_later_session_120x40", text);
    for expected in [
        "alice ✓: alice's line 2",
        "bob ✓ verified: bob again",
        "Ольга ✓ new: привет всем",
        "arrived after a later one (out of order)",
        "alice ⚠ STALE: alice's line 1",
        "alice ⚠ KEY CHANGED: it is me, alice",
    ] {
        assert!(text.contains(expected), "{expected:?} not on screen:\n{text}");
    }
}

#[test]
fn a_mention_is_highlighted_without_the_reversed_video_that_marks_the_picked_message() {
    let (mut app, _) = room_app();
    let _ = app.update(Msg::Resize { width: 120, height: 32 }, t0());
    let buf = buffer(&app, 120, 32);
    let row = (0..32)
        .find(|&y| {
            (0..120).map(|x| buf[(x, y)].symbol()).collect::<String>().contains("did you see the handshake")
        })
        .expect("the mention on screen");
    let text_cells: Vec<_> = (10..70).map(|x| &buf[(x, row)]).filter(|c| c.symbol() != " ").collect();
    assert!(text_cells.iter().any(|c| c.modifier.contains(ratatui::style::Modifier::BOLD)));
    assert!(!text_cells.iter().any(|c| c.modifier.contains(ratatui::style::Modifier::REVERSED)));
}

#[test]
fn our_own_line_replayed_as_history_shows_as_ours() {
    let now = t0();
    let mut app = client_app(now);
    let mut feed = RoomFeed::new();
    feed.show(&mut app, Frame::Welcome { name: "carol".into(), room_seq: 4, history: 1, e2e: false }, now);
    // A line carol said in an earlier session, as the relay replays it.
    let mut earlier_carol = member_of(3);
    let said = RoomFeed::signed(&mut earlier_carol, "what I said yesterday");
    let frame = Frame::Deliver {
        room_seq: 4,
        flags: tlschat::chat::frame::flags::HISTORY,
        author: "carol".into(),
        signed: said,
    };
    feed.show(&mut app, frame, now);
    let text = screen(&mut app, 100, 10);
    assert!(text.contains("(history) you ✓✓: what I said yesterday"), "{text}");
    assert!(!text.contains("carol ✓"), "{text}");
}

#[test]
fn a_read_marker_shows_what_came_after_the_user_left_the_terminal() {
    let now = t0();
    let mut app = client_app(now);
    let line = |app: &mut App, text: &str| {
        let _ = app.update(Msg::Net(NetEvent::Text { peer: server(), line: text.into() }), now);
    };
    line(&mut app, "read before leaving");
    let _ = app.update(Msg::Focus(false), now);
    assert!(!screen(&mut app, 100, 10).contains("new since you left"), "nothing new yet");
    line(&mut app, "said while away");
    let _ = app.update(Msg::Focus(true), now);
    let text = screen(&mut app, 100, 10);
    let rows: Vec<&str> = text.lines().collect();
    let marker = rows.iter().position(|r| r.contains("new since you left")).expect(&text);
    assert!(rows[marker - 1].contains("read before leaving"), "{text}");
    assert!(rows[marker + 1].contains("said while away"), "{text}");
}

/// The tamper lab's reconnect: the room replays its history and lists its
/// members again. What is already on screen is not shown twice, and the
/// case's outcome is said again at the bottom, so it stays in view.
#[test]
fn after_the_labs_reconnect_shown_history_is_folded_and_the_verdict_said_again() {
    use tlschat::teach::lab::{Case, Checker, Report};
    let now = t0();
    let mut app = client_app(now);
    let mut feed = RoomFeed::new();
    let members = vec![
        RoomFeed::info("alice", Standing::Verified, feed.alice.public_key()),
        RoomFeed::info("carol", Standing::Verified, feed.carol.public_key()),
    ];
    feed.show(&mut app, Frame::Welcome { name: "carol".into(), room_seq: 4, history: 0, e2e: false }, now);
    feed.show(&mut app, Frame::Roster { total: 2, last: true, members: members.clone() }, now);
    let hello = RoomFeed::signed(&mut feed.alice, "hello everyone");
    feed.deliver(&mut app, "alice", hello.clone(), now);
    let ended = Report::Ended {
        case: Case::Flip,
        alert: Some((Checker::Peer, tls::AlertDescription::BAD_RECORD_MAC)),
        error: "the room sent alert bad_record_mac".into(),
    };
    let _ = app.update(Msg::Net(NetEvent::Lab(ended)), now);
    let _ = app.update(Msg::Net(NetEvent::Lab(Report::Reconnecting)), now);
    // The new connection: a new member state, the room's history and list.
    feed.carol = member_of(3);
    feed.show(&mut app, Frame::Welcome { name: "carol".into(), room_seq: 5, history: 1, e2e: false }, now);
    let replayed = Frame::Deliver {
        room_seq: 5,
        flags: 1, // history
        author: "alice".into(),
        signed: hello,
    };
    feed.show(&mut app, replayed, now);
    feed.show(&mut app, Frame::Roster { total: 2, last: true, members }, now);
    let text = screen(&mut app, 140, 30);
    assert_eq!(text.matches("hello everyone").count(), 1, "{text}");
    assert!(text.contains("the room's history is already shown above: not repeated"), "{text}");
    assert_eq!(text.matches("in the room:").count(), 1, "{text}");
    assert!(text.contains("the room's members are as before"), "{text}");
    // Said again, last: the outcome in one line.
    let last =
        text.rfind("[lab] tamper flip (above): the room sent alert bad_record_mac — caught by").unwrap();
    assert!(!text[last..].contains("12:04"), "not the last line:\n{text}");
}

/// `/tamper replay`: our line reached the room but the connection ended
/// before its acknowledgement; the history replayed on reconnecting has
/// it, so it is marked delivered, and not shown a second time.
#[test]
fn our_line_found_in_the_history_after_a_reconnect_is_marked_delivered_once() {
    let now = t0();
    let mut app = client_app(now);
    let mut feed = RoomFeed::new();
    feed.show(&mut app, Frame::Welcome { name: "carol".into(), room_seq: 4, history: 0, e2e: false }, now);
    typed(&mut app, "a replayed line", now);
    let _ = app.update(key(KeyCode::Enter), now);
    let sent = ChatEvent::Sent {
        seq: 1,
        kind: Kind::Text,
        to: None,
        text: "a replayed line".into(),
        acked: true,
        e2e: false,
    };
    let _ = app.update(Msg::Net(NetEvent::Chat { peer: server(), event: sent }), now);
    assert!(screen(&mut app, 120, 12).contains("you ·: a replayed line"));
    let _ = app.update(Msg::Net(NetEvent::Lab(tlschat::teach::lab::Report::Reconnecting)), now);
    let ours = RoomFeed::signed(&mut feed.carol, "a replayed line");
    feed.carol = member_of(3);
    feed.show(&mut app, Frame::Welcome { name: "carol".into(), room_seq: 5, history: 1, e2e: false }, now);
    let replayed = Frame::Deliver { room_seq: 5, flags: 1, author: "carol".into(), signed: ours };
    feed.show(&mut app, replayed, now);
    let text = screen(&mut app, 120, 12);
    assert!(text.contains("you ✓✓: a replayed line"), "{text}");
    assert_eq!(text.matches("a replayed line").count(), 1, "{text}");
}

/// A member whose connection dropped: the status bar says it is
/// reconnecting, which attempt and when the next comes, the chat pane
/// says why; back in the room, the bar says "back" and the catch-up is told.
#[test]
fn the_header_says_reconnecting_with_the_attempt_and_wait_then_back() {
    let now = t0();
    let mut app = client_app(now);
    let (events, _) = client_events("localhost", 41);
    let now = feed(&mut app, events, now);
    let mut feed = RoomFeed::new();
    feed.show(&mut app, Frame::Welcome { name: "carol".into(), room_seq: 4, history: 0, e2e: false }, now);
    let hello = RoomFeed::signed(&mut feed.alice, "hello everyone");
    feed.deliver(&mut app, "alice", hello, now);
    let error =
        "the peer closed the connection without close_notify: what it sent last may have been cut off";
    let away = NetEvent::Reconnecting {
        attempt: 2,
        delay: Duration::from_millis(1600),
        to: "localhost:8443".into(),
        error: error.into(),
    };
    let _ = app.update(Msg::Net(away), now);
    let text = screen(&mut app, 120, 14);
    insta::assert_snapshot!("reconnecting_120x14", text);
    assert!(text.lines().any(|l| l.contains("reconnecting: attempt 2, next in 2 s")), "{text}");
    let back = NetEvent::Back { peer: server(), to: "localhost:8443".into(), attempts: 2 };
    let _ = app.update(Msg::Net(back), now);
    let caught = ChatEvent::Resumed { after: 5, upto: 9, complete: false, caught_up: 3 };
    let _ = app.update(Msg::Net(NetEvent::Chat { peer: server(), event: caught }), now);
    let text = screen(&mut app, 120, 14);
    assert!(text.contains("back │"), "{text}");
    assert!(text.contains("back in the room through localhost:8443 after 2"), "{text}");
    assert!(text.contains("MISSED some said after room #5"), "{text}");
}

#[test]
fn a_private_line_waits_for_its_end_to_end_group_then_both_sides_show_the_lock() {
    let now = t0();
    let mut app = client_app(now);
    let mut feed = RoomFeed::new();
    let alice_key = feed.alice.public_key();
    let carol_key = feed.carol.public_key();
    feed.show(&mut app, Frame::Welcome { name: "carol".into(), room_seq: 4, history: 0, e2e: false }, now);
    let members = vec![
        RoomFeed::info("alice", Standing::Verified, alice_key),
        RoomFeed::info("carol", Standing::Verified, carol_key),
    ];
    feed.show(&mut app, Frame::Roster { total: 2, last: true, members: members.clone() }, now);
    // Carol's key packages, published on joining.
    assert!(
        matches!(feed.carol.take_outgoing().as_slice(), [Frame::Publish { packages }] if packages.len() == 4)
    );
    // Alice is in the room too, her key packages at the relay.
    feed.alice
        .receive(Frame::Welcome { name: "alice".into(), room_seq: 3, history: 0, e2e: false }, FEED_MS)
        .unwrap();
    feed.alice.receive(Frame::Roster { total: 2, last: true, members }, FEED_MS).unwrap();
    let Some(Frame::Publish { packages }) = feed.alice.take_outgoing().pop() else {
        panic!("alice publishes")
    };

    typed(&mut app, "/msg alice meet at noon", now);
    let _ = app.update(key(KeyCode::Enter), now);
    // The connection's part: carol's member takes the line. No group yet:
    // it waits, and the key package is asked for.
    for event in feed.carol.say(Kind::Text, "meet at noon", Some("alice"), FEED_MS).unwrap() {
        chat(&mut app, event, now);
    }
    assert_eq!(my_lines(&app), ["… → alice: meet at noon"]);
    assert!(matches!(feed.carol.take_outgoing().as_slice(), [Frame::Fetch { key }] if *key == alice_key));
    let waiting = screen(&mut app, 100, 16);
    assert!(waiting.contains("you … waiting for end to end (private): → alice: meet"), "{waiting}");
    feed.show(&mut app, Frame::KeyPackage { key: alice_key, package: packages[0].clone() }, now);
    assert_eq!(my_lines(&app), ["· → alice: meet at noon"]);
    // The Welcome, then the sealed line: alice reads it.
    let mut alice_saw = Vec::new();
    for frame in feed.carol.take_outgoing() {
        let Frame::Seal { to, message, .. } = frame else { panic!("sealed frames only") };
        assert_eq!(to, alice_key);
        let sealed = Frame::Sealed { room_seq: 0, from: "carol".into(), key: carol_key, message };
        alice_saw.extend(feed.alice.receive(sealed, FEED_MS).unwrap());
    }
    assert!(
        alice_saw.iter().any(|e| matches!(e, ChatEvent::Message(m) if m.e2e && m.text == "meet at noon")),
        "{alice_saw:?}"
    );
    feed.show(&mut app, Frame::Ack { room_seq: 0, seq: 1, private: true }, now);
    assert_eq!(my_lines(&app), ["✓✓ → alice: meet at noon"]);
    // Alice answers in the same group.
    feed.alice.say(Kind::Text, "noon it is", Some("carol"), FEED_MS).unwrap();
    let Some(Frame::Seal { message, .. }) = feed.alice.take_outgoing().pop() else { panic!("sealed") };
    feed.show(&mut app, Frame::Sealed { room_seq: 0, from: "alice".into(), key: alice_key, message }, now);
    let text = screen(&mut app, 100, 16);
    insta::assert_snapshot!("room_e2e_100x16", text);
    for expected in
        ["you ✓✓ 🔒: → alice: meet at noon", "alice ✓ new → you 🔒: noon it is", "end to end with alice"]
    {
        assert!(text.contains(expected), "{expected:?} not on screen:\n{text}");
    }
    // Opened, the message shows what the relay saw beside what carol read.
    let _ = app.update(key(KeyCode::Tab), now);
    let _ = app.update(key(KeyCode::Tab), now);
    assert_eq!(app.focus(), Focus::Messages);
    let _ = app.update(key(KeyCode::Enter), now);
    // (No snapshot: the ciphertext and the group id are random.)
    let text = screen(&mut app, 120, 100);
    for expected in [
        "end to end: what the relay saw",
        "epoch     1",
        "what you read: the signed message inside",
        "none (private, end to end)",
    ] {
        assert!(text.contains(expected), "{expected:?} not on screen:\n{text}");
    }
    // F5: the group's life, step by step.
    let _ = app.update(key(KeyCode::Esc), now);
    let _ = app.update(key(KeyCode::F(5)), now);
    let text = screen(&mut app, 120, 24);
    insta::assert_snapshot!("room_e2e_groups_120x24", text);
    for expected in ["ratchet tree", "leaf 1 alice", "Commit", "Welcome", "epoch 1", "MLS groups · F5"] {
        assert!(text.contains(expected), "{expected:?} not on screen:\n{text}");
    }
}

/// Carol's app with a `/msg` group with alice in which carol's second line
/// brings her update and alice takes it: what the F5 panel shows, and
/// alice's own view of the group, to compare.
fn group_panel_app(reveal: bool) -> (App, Now, tlschat::chat::e2e::GroupView) {
    use tlschat::chat::member::UpdatePolicy;
    let now = t0();
    let mut app = client_app(now).with_reveal(reveal);
    let mut feed = RoomFeed::new();
    let policy = UpdatePolicy { every_ms: 10 * 60 * 1000, every_sealed: 2 };
    feed.carol = member_of(3).with_update_policy(policy);
    feed.alice = member_of(1).with_update_policy(policy);
    let (alice_key, carol_key) = (feed.alice.public_key(), feed.carol.public_key());
    feed.show(&mut app, Frame::Welcome { name: "carol".into(), room_seq: 4, history: 0, e2e: false }, now);
    let members = vec![
        RoomFeed::info("alice", Standing::Verified, alice_key),
        RoomFeed::info("carol", Standing::Verified, carol_key),
    ];
    feed.show(&mut app, Frame::Roster { total: 2, last: true, members: members.clone() }, now);
    feed.carol.take_outgoing();
    feed.alice
        .receive(Frame::Welcome { name: "alice".into(), room_seq: 3, history: 0, e2e: false }, FEED_MS)
        .unwrap();
    feed.alice.receive(Frame::Roster { total: 2, last: true, members }, FEED_MS).unwrap();
    let Some(Frame::Publish { packages }) = feed.alice.take_outgoing().pop() else {
        panic!("alice publishes")
    };
    // Carol's two lines to alice; the first waits for the group.
    let to_alice = |feed: &mut RoomFeed, app: &mut App| {
        for frame in feed.carol.take_outgoing() {
            // (The Fetch went to the relay: its answer is fed below.)
            let Frame::Seal { message, .. } = frame else { continue };
            let sealed = Frame::Sealed { room_seq: 0, from: "carol".into(), key: carol_key, message };
            feed.alice.receive(sealed, FEED_MS).unwrap();
        }
        // Alice's answers (her word that she took carol's update).
        for frame in feed.alice.take_outgoing() {
            let Frame::Seal { message, .. } = frame else { panic!("sealed frames only") };
            feed.show(app, Frame::Sealed { room_seq: 0, from: "alice".into(), key: alice_key, message }, now);
        }
    };
    for event in feed.carol.say(Kind::Text, "meet at noon", Some("alice"), FEED_MS).unwrap() {
        chat(&mut app, event, now);
    }
    feed.show(&mut app, Frame::KeyPackage { key: alice_key, package: packages[0].clone() }, now);
    to_alice(&mut feed, &mut app);
    for event in feed.carol.say(Kind::Text, "bring the map", Some("alice"), FEED_MS).unwrap() {
        chat(&mut app, event, now);
    }
    to_alice(&mut feed, &mut app);
    let _ = app.update(key(KeyCode::F(5)), now);
    let alice_view = feed.alice.pair_view(carol_key).unwrap();
    (app, now, alice_view)
}

/// The screen with each 4-digit group of these values' hex put as `····`:
/// random per run, they are checked apart.
fn masked(text: &str, values: &[&[u8]]) -> String {
    let groups: std::collections::HashSet<String> = values
        .iter()
        .flat_map(|v| v.chunks(2).map(|c| c.iter().map(|b| format!("{b:02x}")).collect::<String>()))
        .collect();
    text.lines()
        .map(|line| {
            line.split(' ')
                .map(|t| {
                    let bare = t.trim_start_matches('│');
                    if groups.contains(bare) {
                        format!("{}····", &t[..t.len() - bare.len()])
                    } else {
                        t.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn grouped(bytes: &[u8]) -> Vec<String> {
    bytes.chunks(2).map(|c| c.iter().map(|b| format!("{b:02x}")).collect()).collect()
}

#[test]
fn the_group_panel_shows_each_step_the_ratchet_tree_and_an_update_with_the_epoch_values_hidden() {
    let (mut app, _, alice_view) = group_panel_app(false);
    let steps: Vec<(&str, String, Option<u64>)> =
        app.group_steps().iter().map(|s| (s.step, s.peer.clone(), s.epoch)).collect();
    assert_eq!(
        steps,
        [
            ("KeyPackage", String::new(), None),
            ("KeyPackage", "alice".into(), None),
            ("KeyPackage", "alice".into(), None),
            ("Add", "alice".into(), Some(1)),
            ("Commit", "alice".into(), Some(1)),
            ("Welcome", "alice".into(), Some(1)),
            ("Update", "alice".into(), Some(1)),
            ("Update", "alice".into(), Some(2)),
        ]
    );
    // Carol's own key packages, published on joining: what the first says.
    let published = &app.group_steps()[0].fields;
    let field = |fields: &[(&str, String)], name: &str| {
        fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()).unwrap_or_default()
    };
    assert_eq!(field(published, "count"), "4");
    assert!(field(published, "suite").starts_with("0x0003 MLS_128_DHKEMX25519"), "{published:?}");
    assert_eq!(
        field(published, "leaf key"),
        tlschat::tls::Fingerprint::of_ed25519(&member_of(3).public_key()).short()
    );
    assert!(field(published, "lifetime").ends_with(" days"), "{published:?}");
    assert!(field(published, "size").ends_with(" bytes"), "{published:?}");
    let fetched = &app.group_steps()[2].fields;
    assert!(fetched.iter().any(|(n, v)| *n == "suite" && v.starts_with("0x0003")), "{fetched:?}");
    // Without --reveal the app does not even keep the values.
    let shown = app.group_shown().unwrap();
    assert_eq!((shown.view.epoch, shown.view.secrets.is_none()), (2, true));
    assert_eq!(alice_view.epoch, 2);
    let text = screen(&mut app, 120, 40);
    insta::assert_snapshot!("group_panel_tree_and_update_120x40", text);
    for expected in [
        "group 1 with alice · epoch 2 · 2 members",
        "ratchet tree",
        "leaf 0 you",
        "leaf 1 alice",
        "node 1: HPKE key",
        "epoch values (values hidden)",
        "epoch authenticator = ••••",
        "Update",
    ] {
        assert!(text.contains(expected), "{expected:?} not on screen:\n{text}");
    }
    let secrets = alice_view.secrets.unwrap();
    for group in grouped(&secrets.authenticator).iter().chain(&grouped(&secrets.exporter)) {
        assert!(!text.split([' ', '│']).any(|t| t == group), "{group} on screen:\n{text}");
    }
}

#[test]
fn with_reveal_the_group_panel_shows_the_epoch_values_both_members_derived() {
    let (mut app, _, alice_view) = group_panel_app(true);
    let text = screen(&mut app, 120, 40);
    let secrets = alice_view.secrets.unwrap();
    // Alice derived them; carol's panel shows the same, group by group.
    let words: Vec<&str> = text.split([' ', '│', '"']).collect();
    for value in [&secrets.authenticator, &secrets.exporter, &secrets.confirmation_tag] {
        for group in grouped(value) {
            assert!(words.contains(&group.as_str()), "{group} not on screen:\n{text}");
        }
    }
    assert!(text.contains("SECRETS ON SCREEN"), "{text}");
    assert!(text.contains("epoch values (--reveal: values shown"), "{text}");
    let values: [&[u8]; 3] = [&secrets.authenticator, &secrets.exporter, &secrets.confirmation_tag];
    insta::assert_snapshot!("group_panel_revealed_120x40", masked(&text, &values));
}

/// A step of a group made by hand: its tree as given, no values.
fn hand_step(peer: &str, id: u8, epoch: u64, tree: Vec<tlschat::chat::e2e::TreeNode>) -> ChatEvent {
    use tlschat::chat::e2e::{GroupView, Step, UpdateState};
    let view = GroupView { group: vec![id; 16], epoch, tree, secrets: None, pending: false };
    ChatEvent::E2eStep {
        peer: peer.into(),
        group: Some(vec![id; 16]),
        step: Step::Update { from: epoch - 1, to: epoch, size: 542, mine: false, state: UpdateState::Merged },
        view: Some(std::sync::Arc::new(view)),
    }
}

#[test]
fn the_group_panel_draws_a_larger_tree_with_blanks_and_up_down_picks_the_group_shown() {
    use tlschat::chat::e2e::TreeNode::{Leaf, Parent};
    let now = t0();
    let mut app = client_app(now);
    let mut feed = RoomFeed::new();
    let (alice_key, carol_key) = (feed.alice.public_key(), feed.carol.public_key());
    let bob_key = seeded_key(2).public_key();
    feed.show(&mut app, Frame::Welcome { name: "carol".into(), room_seq: 4, history: 0, e2e: false }, now);
    let members = vec![
        RoomFeed::info("alice", Standing::Verified, alice_key),
        RoomFeed::info("bob", Standing::Verified, bob_key),
        RoomFeed::info("carol", Standing::Verified, carol_key),
    ];
    feed.show(&mut app, Frame::Roster { total: 3, last: true, members }, now);
    let pair = vec![
        Leaf { node: 0, key: Some(carol_key), me: true },
        Parent { node: 1, key: Some(vec![7; 32]) },
        Leaf { node: 2, key: Some(alice_key), me: false },
    ];
    // Four leaf slots, the last blank; the right parent blank too.
    let larger = vec![
        Leaf { node: 0, key: Some(alice_key), me: false },
        Parent { node: 1, key: Some(vec![8; 32]) },
        Leaf { node: 2, key: Some(bob_key), me: false },
        Parent { node: 3, key: Some(vec![9; 32]) },
        Leaf { node: 4, key: Some(carol_key), me: true },
        Parent { node: 5, key: None },
        Leaf { node: 6, key: None, me: false },
    ];
    chat(&mut app, hand_step("alice", 1, 2, pair), now);
    chat(&mut app, hand_step("bob", 2, 5, larger), now);
    let _ = app.update(key(KeyCode::F(5)), now);
    let text = screen(&mut app, 120, 30);
    insta::assert_snapshot!("group_panel_larger_tree_120x30", text);
    for expected in [
        "group 2 with bob · epoch 5 · 3 members",
        "● node 3: HPKE key",
        "├─ ● node 1: HPKE key",
        "│  ├─ ● leaf 0 alice",
        "│  └─ ● leaf 1 bob",
        "└─ ○ node 5 blank",
        "├─ ● leaf 2 you",
        "└─ ○ leaf 3 blank",
    ] {
        assert!(text.contains(expected), "{expected:?} not on screen:\n{text}");
    }
    // Tab to the panel; Up shows the older group, Down the newest again.
    let _ = app.update(key(KeyCode::Tab), now);
    assert_eq!(app.focus(), Focus::Panel);
    let _ = app.update(key(KeyCode::Up), now);
    assert_eq!(app.group_shown().map(|g| (g.number, g.view.epoch)), Some((1, 2)));
    let text = screen(&mut app, 120, 30);
    assert!(text.contains("group 1 with alice · epoch 2 · 2 members"), "{text}");
    let _ = app.update(key(KeyCode::Down), now);
    assert_eq!(app.group_shown().map(|g| g.number), Some(2));
    // Following the newest: a step of group 1 shows it again.
    chat(&mut app, hand_step("alice", 1, 3, vec![Leaf { node: 0, key: Some(carol_key), me: true }]), now);
    assert_eq!(app.group_shown().map(|g| (g.number, g.view.epoch)), Some((1, 3)));
}

// ---------------------------------------------------------------------------
// An end-to-end room (`listen --e2e`)

/// Carol's screen in an end-to-end room: her line typed before she is in
/// the group is refused (never sent in clear), then alice's Welcome adds
/// her and alice's line comes sealed, with the lock mark. Real MLS state
/// on both sides; the relay's frames made by hand.
#[test]
fn an_end_to_end_room_says_so_in_its_header_refuses_a_line_before_the_group_and_locks_its_lines() {
    let now = t0();
    let mut app = client_app(now);
    let (mut alice, mut carol) = (member_of(1), member_of(3));
    let show = |app: &mut App, carol: &mut tlschat::chat::Member, frame: Frame| {
        for event in carol.receive(frame, FEED_MS).unwrap() {
            let _ = app.update(Msg::Net(NetEvent::Chat { peer: server(), event }), now);
        }
    };
    show(&mut app, &mut carol, Frame::Welcome { name: "carol".into(), room_seq: 4, history: 0, e2e: true });
    let Some(Frame::Publish { packages }) = carol.take_outgoing().into_iter().next() else { panic!() };
    let alice_info = MemberInfo {
        name: "alice".into(),
        standing: Standing::Verified,
        key: alice.public_key(),
        idle_secs: 3,
    };
    let carol_info = MemberInfo {
        name: "carol".into(),
        standing: Standing::Verified,
        key: carol.public_key(),
        idle_secs: 0,
    };
    show(
        &mut app,
        &mut carol,
        Frame::Roster { total: 2, last: true, members: vec![alice_info, carol_info.clone()] },
    );
    // Typed before the group has her: refused on her screen, nothing sent.
    typed(&mut app, "am I in?", now);
    let _ = app.update(key(KeyCode::Enter), now);
    let err = carol.say(Kind::Text, "am I in?", None, FEED_MS).unwrap_err();
    assert!(carol.take_outgoing().is_empty());
    chat(
        &mut app,
        ChatEvent::Refused { code: RefusalCode::BadMessage, text: format!("not sent: {err}") },
        now,
    );
    // Alice, the committer, makes the group with carol in it.
    alice
        .receive(Frame::Welcome { name: "alice".into(), room_seq: 1, history: 0, e2e: true }, FEED_MS)
        .unwrap();
    alice.take_outgoing();
    let carol_in =
        Frame::Presence { room_seq: 4, joined: true, member: carol_info.clone(), reason: String::new() };
    alice.receive(carol_in, FEED_MS).unwrap();
    let task = Frame::GroupTask {
        epoch: 0,
        create: true,
        add: vec![(carol.public_key(), packages[0].clone())],
        remove: vec![],
    };
    alice.receive(task, FEED_MS).unwrap();
    let mut sent = alice.take_outgoing();
    let Some(Frame::GroupCommit { epoch, adds, removes, commit, .. }) = sent.pop() else { panic!() };
    // Its Welcome went first, in one piece at this size.
    let [Frame::GroupWelcomePiece { index: 0, count: 1, bytes: welcome, .. }] = &sent[..] else {
        panic!("{sent:?}")
    };
    let welcome = welcome.clone();
    let committed = Frame::GroupCommitted {
        room_seq: 5,
        from: "alice".into(),
        key: alice.public_key(),
        epoch,
        adds,
        removes,
        commit,
    };
    alice.receive(committed, FEED_MS).unwrap();
    show(
        &mut app,
        &mut carol,
        Frame::GroupWelcome {
            room_seq: 5,
            from: "alice".into(),
            key: alice.public_key(),
            index: 0,
            count: 1,
            welcome,
        },
    );
    alice.say(Kind::Text, "welcome to the sealed room", None, FEED_MS).unwrap();
    let Some(Frame::GroupSend { message, .. }) = alice.take_outgoing().pop() else { panic!() };
    show(
        &mut app,
        &mut carol,
        Frame::GroupMessage { room_seq: 6, from: "alice".into(), key: alice.public_key(), message },
    );
    let text = screen(&mut app, 120, 24);
    insta::assert_snapshot!("e2e_room_120x24", text);
    assert!(text.contains("end to end room: the relay cannot read it"), "{text}");
    assert!(!text.contains("the relay reads the room"), "{text}");
    assert!(text.contains("you ✗ not sent: am I in?"), "{text}");
    assert!(text.contains("alice ✓ new 🔒: welcome to the sealed room"), "{text}");
}

/// The host's screen of an end-to-end room: its header says so, and a
/// guest's connection is refused with the reason.
#[test]
fn the_hosts_screen_of_an_end_to_end_room_shows_a_guest_refused_with_the_reason() {
    let now = t0();
    let mut app =
        App::new(true).with_room_key("58011 19260 35353 28049 14300 65719".into()).with_e2e_room(true);
    let _ = app
        .update(Msg::Started { peer: "127.0.0.1:8443".into(), state: "listening".into(), server: true }, now);
    let refusal = tlschat::chat::relay::JoinError::EndToEnd.to_string();
    let note = format!("refused a member: {refusal}");
    let _ = app.update(Msg::Net(NetEvent::RoomNote { note }), now);
    let text = screen(&mut app, 120, 12);
    insta::assert_snapshot!("e2e_room_host_guest_refused_120x12", text);
    assert!(text.contains("this room is end to end: members only"), "{text}");
    assert!(text.contains("guest has no key to be added with"), "{text}");
    assert!(text.contains("end to end room: the relay cannot read it"), "{text}");
}
