//! The first-contact dialog as part of the model: a [`Question`] from the
//! trust gate opens it, it takes every key until it is answered, and the
//! answer reaches the gate. Driven through `App::update` and drawn with
//! ratatui's `TestBackend`, without a terminal.

use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use tlschat::store::pins::Question;
use tlschat::tls::Fingerprint;
use tlschat::tui::app::{App, Msg, Now};
use tlschat::tui::ui;
use tokio::sync::oneshot;

const ROOM: &str = "localhost:8443";

fn now() -> Now {
    Now { instant: Instant::now(), unix: 1_793_620_000 }
}

fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

/// A client app connecting to [`ROOM`], on an 80x24 screen.
fn client() -> App {
    let mut app = App::new(false);
    let _ = app.update(Msg::Resize { width: 80, height: 24 }, now());
    let _ = app.update(Msg::Started { peer: ROOM.into(), state: "connecting".into(), server: false }, now());
    app
}

/// The gate's question about `key`, put to `app`; where its answer arrives.
fn ask(app: &mut App, key: Fingerprint) -> oneshot::Receiver<bool> {
    let (question, answer) = Question::new(ROOM.into(), key);
    let update = app.update(Msg::Question(question), now());
    assert!(update.redraw, "the dialog is drawn");
    assert!(app.asking());
    answer
}

/// The screen as text, and whether the cursor is shown.
fn screen(app: &App) -> (String, bool) {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let mut cursor = false;
    terminal
        .draw(|frame| {
            frame.render_widget(app, frame.area());
            cursor = ui::cursor_position(app, Rect::new(0, 0, 80, 24)).is_some();
        })
        .unwrap();
    (terminal.backend().to_string(), cursor)
}

fn notices(app: &App) -> Vec<String> {
    app.log().entries().iter().map(|e| e.text.clone()).collect()
}

#[test]
fn y_trusts_the_key_once_the_dialog_has_taken_every_other_key_and_the_paste() {
    let mut app = client();
    let fp = Fingerprint([0xab; 32]);
    let mut answer = ask(&mut app, fp);
    let (shown, cursor) = screen(&app);
    assert!(shown.contains(&format!("First contact: {ROOM}")), "{shown}");
    assert!(shown.contains(&fp.short()), "{shown}");
    assert!(shown.contains("Nothing is sent until you decide."), "{shown}");
    assert!(!cursor, "no cursor on the input line while the dialog is open");

    // Neither typing nor a paste (which would say its lines) gets past it.
    for code in [KeyCode::Char('x'), KeyCode::Enter, KeyCode::Char(' ')] {
        let update = app.update(key(code), now());
        assert!(update.intents.is_empty() && !update.redraw, "{code:?}");
    }
    let update = app.update(Msg::Paste("one\ntwo".into()), now());
    assert!(update.intents.is_empty(), "a paste says nothing before trust: {update:?}");
    assert_eq!(app.input().text(), "");
    assert_eq!(answer.try_recv(), Err(oneshot::error::TryRecvError::Empty), "not decided yet");

    let update = app.update(key(KeyCode::Char('y')), now());
    assert!(update.redraw && update.intents.is_empty(), "{update:?}");
    assert_eq!(answer.try_recv(), Ok(true), "the gate hears the user's yes");
    assert!(!app.asking());
    let said = notices(&app);
    assert!(
        said.iter().any(|n| n == &format!("trusted {ROOM}: its key {} is pinned", fp.short())),
        "{said:?}"
    );
    let (shown, cursor) = screen(&app);
    assert!(!shown.contains("First contact"), "{shown}");
    assert!(cursor, "the input line has the keys again");
    // And typing goes where it always did.
    let _ = app.update(key(KeyCode::Char('h')), now());
    assert_eq!(app.input().text(), "h");
}

#[test]
fn n_or_esc_refuses_and_says_that_nothing_was_sent() {
    for refuse in [KeyCode::Esc, KeyCode::Char('n')] {
        let mut app = client();
        let mut answer = ask(&mut app, Fingerprint([0x11; 32]));
        let update = app.update(key(refuse), now());
        assert!(update.redraw && update.intents.is_empty(), "{refuse:?}: {update:?}");
        assert_eq!(answer.try_recv(), Ok(false), "{refuse:?}");
        assert!(!app.asking());
        let said = notices(&app);
        assert!(
            said.iter().any(|n| n == &format!("did not trust {ROOM}: disconnecting, nothing was sent")),
            "{refuse:?}: {said:?}"
        );
        assert!(!screen(&app).0.contains("First contact"));
    }
    // Ctrl-C refuses too, rather than quitting past the question.
    let mut app = client();
    let mut answer = ask(&mut app, Fingerprint([0x11; 32]));
    let update = app.update(Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)), now());
    assert!(update.intents.is_empty(), "{update:?}");
    assert_eq!(answer.try_recv(), Ok(false));
    assert!(!app.quitting());
}

#[test]
fn a_changed_key_while_the_user_decides_closes_the_dialog_without_trusting_anything() {
    let mut app = client();
    let first = Fingerprint([0x22; 32]);
    let answer = ask(&mut app, first);
    // The connection showed another key before the user answered: the
    // gate refuses both and stops waiting for this answer (it drops it),
    // as it does when the connection ends.
    drop(answer);
    let update = app.update(Msg::Tick, now());
    assert!(update.redraw, "the stale dialog goes from the screen");
    assert!(!app.asking());
    assert!(!screen(&app).0.contains("First contact"));
    // A `y` typed now is text on the input line, not a yes to anything.
    let _ = app.update(key(KeyCode::Char('y')), now());
    assert_eq!(app.input().text(), "y");
    assert!(!notices(&app).iter().any(|n| n.starts_with("trusted ")));

    // The next question (the changed key, had the gate asked) opens anew.
    let second = Fingerprint([0x33; 32]);
    let mut answer = ask(&mut app, second);
    assert!(screen(&app).0.contains(&second.short()));
    let _ = app.update(key(KeyCode::Char('n')), now());
    assert_eq!(answer.try_recv(), Ok(false));
}
