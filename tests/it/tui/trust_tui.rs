//! First contact in the full-screen interface, in a real terminal: a
//! private tmux server runs `tlschat connect` against a headless room; the
//! dialog must show the room's safety number, hold what is typed, and pin
//! the key on `y` or disconnect without sending on `n`. tmux is required
//! (`.ci/run` installs it); the client's files are in TLSCHAT_HOME in a
//! temporary directory.

use std::path::Path;
use std::time::Duration;

use crate::programs::tmux::{Tmux, file_within};
use crate::programs::{Identity, Room, TLSCHAT, TempDir};

/// The tmux session the client runs in.
const PANE: &str = "c";

/// `tlschat connect TARGET` in a pane, with `home` as TLSCHAT_HOME; its
/// exit status goes to `home/exit`.
fn connect(tmux: &Tmux, home: &Path, target: &str) {
    connect_with(tmux, home, target, "");
}

/// [`connect`] with more arguments.
fn connect_with(tmux: &Tmux, home: &Path, target: &str, extra: &str) {
    let q = |p: &Path| format!("'{}'", p.display());
    let program = format!(
        "env -u SSLKEYLOGFILE TLSCHAT_HOME={home} TERM=xterm-256color {tlschat} connect {target} {extra} 2>{err}; \
         echo \"EXIT:$?\" >{exit}; exec sleep 600",
        home = q(home),
        tlschat = q(Path::new(TLSCHAT)),
        err = q(&home.join("stderr")),
        exit = q(&home.join("exit")),
    );
    tmux.session(PANE, &program);
}

/// The client's exit status line, once it has exited.
fn exit_status(tmux: &Tmux, home: &Path) -> String {
    file_within(&home.join("exit"), || format!("the screen:\n{}", tmux.screen(PANE)))
}

#[test]
fn the_first_contact_dialog_shows_the_safety_number_holds_keys_and_pins_the_key_on_y() {
    let dir = TempDir::new("tui-first-contact");
    let room = Room::start(&dir, "listen", &[]);
    let safety = tlschat::tls::Fingerprint::parse(&room.fingerprint).unwrap().short();
    let home = TempDir::new("client-home");
    let carol = Identity::make(home.path(), "carol");
    let tmux = Tmux::start(&dir);
    connect(&tmux, home.path(), &room.target());
    let screen = tmux.wait_for_text(PANE, &format!("First contact: {}", room.target()));
    assert!(screen.contains(&safety), "{screen}");
    assert!(screen.contains("Nothing is sent until you decide."), "{screen}");
    // Keys other than y and n do nothing while the dialog is open.
    tmux.keys(PANE, &["x", "Enter"]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(tmux.screen(PANE).contains("First contact:"));
    assert!(!home.join("known_rooms").exists());
    // While the dialog is open the room has not met carol: her flight is held.
    room.assert_never_met(&carol);
    tmux.keys(PANE, &["y"]);
    // Trusted: the flight goes, the room seats carol and binds her name.
    room.proc.stdout.wait_for_text("carol joined");
    room.wait_for_binding("carol", &carol.fingerprint.replace(' ', ""));
    // The notice wraps in the chat pane: its start and end.
    let screen = tmux.wait_for_text(PANE, "is pinned");
    assert!(screen.contains(&format!("trusted {}: its key", room.target())), "{screen}");
    tmux.type_line(PANE, "hello after trusting");
    room.proc.stdout.wait_for_text("] hello after trusting");
    let pins = std::fs::read_to_string(home.join("known_rooms")).unwrap();
    assert_eq!(pins, format!("{} {}\n", room.target(), room.fingerprint.replace(' ', "")));
    tmux.type_line(PANE, "/quit");
    assert_eq!(exit_status(&tmux, home.path()).trim(), "EXIT:0");
}

#[test]
fn saying_no_in_the_first_contact_dialog_disconnects_without_sending_and_exits_non_zero() {
    let dir = TempDir::new("tui-first-contact-no");
    let room = Room::start(&dir, "listen", &[]);
    let home = TempDir::new("client-home");
    let carol = Identity::make(home.path(), "carol");
    let tmux = Tmux::start(&dir);
    connect(&tmux, home.path(), &room.target());
    tmux.wait_for_text(PANE, "First contact:");
    tmux.keys(PANE, &["n"]);
    tmux.wait_for_text(PANE, "did not trust");
    room.proc.stdout.wait_for_text("left (close_notify)");
    // No join, no leave, no name: the room never learnt who was there.
    room.assert_never_met(&carol);
    tmux.keys(PANE, &["C-c"]);
    assert_eq!(exit_status(&tmux, home.path()).trim(), "EXIT:1");
    let stderr = std::fs::read_to_string(home.join("stderr")).unwrap();
    assert!(stderr.contains("you did not trust the key") && stderr.contains("nothing was sent"), "{stderr}");
    assert!(!home.join("known_rooms").exists());
    assert!(!room.proc.stdout.all().iter().any(|l| l.contains(" \u{2713}] ")), "{}", room.proc.output());
}

#[test]
fn step_and_the_first_contact_dialog_work_together_the_dialog_before_our_flight_space_after() {
    let dir = TempDir::new("tui-first-contact-step");
    let room = Room::start(&dir, "listen", &[]);
    let home = TempDir::new("client-home");
    let carol = Identity::make(home.path(), "carol");
    let tmux = Tmux::start(&dir);
    connect_with(&tmux, home.path(), &room.target(), "--step");
    // The ClientHello waits for Space.
    tmux.wait_for_text(PANE, "Space sends it");
    std::thread::sleep(Duration::from_millis(200));
    assert!(!room.proc.stdout.contains("<- ClientHello"), "{}", room.proc.output());
    tmux.keys(PANE, &["Space"]);
    // The server's flight proves its key: the dialog, our flight not yet
    // made (the status bar says what the client waits for: not Space).
    tmux.wait_for_text(PANE, "First contact:");
    tmux.wait_for_text(PANE, "awaiting your trust");
    room.assert_never_met(&carol);
    tmux.keys(PANE, &["y"]);
    // Trusted: our flight is made, and --step holds it in turn.
    tmux.wait_for_text(PANE, "is pinned");
    tmux.wait_for_text(PANE, "paused");
    std::thread::sleep(Duration::from_millis(300));
    room.assert_never_met(&carol);
    tmux.keys(PANE, &["Space"]);
    room.proc.stdout.wait_for_text("carol joined");
    tmux.type_line(PANE, "/quit");
    assert_eq!(exit_status(&tmux, home.path()).trim(), "EXIT:0");
}
