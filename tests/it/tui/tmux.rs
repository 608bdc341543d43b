//! The whole program in a real terminal. A private tmux server (its own
//! socket in the test's temporary directory, no user configuration, 100x30
//! panes, `TERM=xterm-256color`) runs
//! `tlschat listen` and `tlschat connect`, or `tlschat demo`; the tests
//! read the screens with `capture-pane`, type with `send-keys`, and check
//! that each program exits 0 and gives the terminal back: main screen, no
//! mouse reporting, cooked mode, the TUI's frame gone.
//!
//! HOME and the XDG directories point into a temporary directory, so
//! nothing touches the real home. tmux is required: without it these tests
//! fail and say so (`.ci/run` installs it). The tmux server is killed when
//! a test ends, passing or not.

use std::path::Path;

use crate::programs::tmux::{Tmux, file_within};
use crate::programs::{TLSCHAT, TempDir};

/// What the wrapper prints once tlschat has exited: the "shell prompt".
const AFTER: &str = "tlschat exited; shell again";

/// Runs `args` of tlschat in a new session named `name`, in `home`: on
/// exit its status goes to `home/NAME.exit`, the terminal's modes to
/// `home/NAME.stty`, and the pane stays open showing [`AFTER`].
fn spawn(tmux: &Tmux, name: &str, home: &Path, args: &[&str]) {
    let q = |p: &Path| format!("'{}'", p.display());
    let program = format!(
        "env -u SSLKEYLOGFILE -u NO_COLOR HOME={home} XDG_DATA_HOME={data} XDG_CONFIG_HOME={config} \
         TERM=xterm-256color {tlschat} {args} 2>{err}; echo \"EXIT:$?\" >{exit}; stty -a >{stty}; \
         echo '{AFTER}'; exec sleep 600",
        home = q(home),
        data = q(&home.join("data")),
        config = q(&home.join("config")),
        tlschat = q(Path::new(TLSCHAT)),
        args = args.join(" "),
        err = q(&home.join(format!("{name}.stderr"))),
        exit = q(&home.join(format!("{name}.exit"))),
        stty = q(&home.join(format!("{name}.stty"))),
    );
    tmux.session(name, &program);
}

/// Waits for `name`'s tlschat to exit and checks it did so cleanly and left
/// the terminal as it found it.
fn assert_exited_cleanly(tmux: &Tmux, name: &str, home: &Path) {
    let exit =
        file_within(&home.join(format!("{name}.exit")), || format!("the screen:\n{}", tmux.screen(name)));
    let stderr = std::fs::read_to_string(home.join(format!("{name}.stderr"))).unwrap_or_default();
    assert_eq!(exit.trim(), "EXIT:0", "{name} exited uncleanly; stderr:\n{stderr}");
    let screen = tmux.wait_for_text(name, AFTER);
    assert!(!screen.contains("Handshake"), "{name}: the TUI's frame is still on screen:\n{screen}");
    assert_eq!(tmux.format(name, "#{alternate_on}"), "0", "{name}: still on the alternate screen");
    for flag in ["mouse_any_flag", "mouse_button_flag", "mouse_standard_flag", "mouse_sgr_flag"] {
        assert_eq!(tmux.format(name, &format!("#{{{flag}}}")), "0", "{name}: {flag} left on");
    }
    assert_eq!(tmux.format(name, "#{cursor_flag}"), "1", "{name}: the cursor is still hidden");
    let stty =
        file_within(&home.join(format!("{name}.stty")), || format!("the screen:\n{}", tmux.screen(name)));
    let modes: Vec<&str> = stty.split_whitespace().collect();
    for mode in ["icanon", "echo", "isig"] {
        assert!(modes.contains(&mode), "{name}: the terminal is left without {mode} (raw mode):\n{stty}");
    }
}

/// Whether the panel on `screen` shows a finished handshake: 7 messages,
/// or 10 with mutual TLS (a room asks for the client's certificate).
fn handshake_done(screen: &str) -> bool {
    (screen.contains("Handshake 7/7") || screen.contains("Handshake 10/10")) && screen.contains("Connected")
}

/// The port in the room's "listening on 127.0.0.1:PORT" notice.
fn listening_port(screen: &str) -> u16 {
    let at = screen.find("listening on 127.0.0.1:").expect("the listening notice")
        + "listening on 127.0.0.1:".len();
    screen[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().expect("a port")
}

/// Starts a room's TUI in the `room` pane and, once it listens, a client's
/// TUI in the `client` pane connected to it with `extra` arguments.
fn room_and_client(tmux: &Tmux, dir: &TempDir, extra: &[&str]) {
    let ca = dir.join("room-ca.pem");
    let ca_arg = ca.to_str().unwrap();
    spawn(tmux, "room", dir.path(), &["listen", "127.0.0.1:0", "--ca-out", ca_arg]);
    // The TUI (its panel waiting), not the lines printed before it starts.
    let screen = tmux.wait_for("room", "the room's TUI", |s| {
        s.contains("waiting for a connection") && s.contains("listening on 127.0.0.1:")
    });
    let target = format!("localhost:{}", listening_port(&screen));
    let args: Vec<&str> =
        ["connect", &target, "--ca", ca_arg].into_iter().chain(extra.iter().copied()).collect();
    spawn(tmux, "client", dir.path(), &args);
}

#[test]
fn listen_and_connect_in_two_terminals_handshake_chat_and_exit_cleanly() {
    let dir = TempDir::new("tmux-chat");
    let tmux = Tmux::start(&dir);
    room_and_client(&tmux, &dir, &[]);
    tmux.wait_for("client", "the finished handshake", handshake_done);
    tmux.wait_for("room", "the finished handshake", handshake_done);

    tmux.type_line("client", "hello from the client pane");
    tmux.wait_for_text("room", "hello from the client pane");
    tmux.type_line("room", "hello from the room pane");
    tmux.wait_for_text("client", "hello from the room pane");

    tmux.type_line("client", "/quit");
    assert_exited_cleanly(&tmux, "client", dir.path());
    tmux.wait_for_text("room", "left (close_notify)");
    tmux.type_line("room", "/quit");
    assert_exited_cleanly(&tmux, "room", dir.path());

    // The log went to the data directory, not the screen, and kept no chat text.
    let log = std::fs::read_to_string(dir.join("data/tlschat/tlschat.log")).expect("the log file");
    assert!(log.contains("[tls] connected: TLS_CHACHA20_POLY1305_SHA256"), "{log}");
    assert!(
        log.contains("connected: TLS_CHACHA20_POLY1305_SHA256, x25519, ed25519, alpn tlschat/1"),
        "{log}"
    );
    assert!(!log.contains("hello from the room pane"), "chat text in the log:\n{log}");
}

#[test]
fn demo_in_a_terminal_animates_the_handshake_answers_rekeys_and_exits_cleanly() {
    let dir = TempDir::new("tmux-demo");
    let tmux = Tmux::start(&dir);
    spawn(&tmux, "demo", dir.path(), &["demo"]);
    // The step delay shows the messages one by one: catch it part way.
    tmux.wait_for("demo", "a handshake part way", |s| s.contains("awaiting…"));
    tmux.wait_for("demo", "the finished handshake", handshake_done);
    // Two bots with keys of their own greet the newcomer; their lines carry ✓.
    tmux.wait_for_text("demo", "alice ✓ new: welcome, ");
    tmux.wait_for_text("demo", "bob ✓ new: hi ");

    tmux.type_line("demo", "hello bots");
    tmux.wait_for_text("demo", "alice ✓ new: hi ");
    // Our own line, acknowledged by the relay: delivered.
    tmux.wait_for_text("demo", "you ✓✓: hello bots");
    tmux.type_line("demo", "/rekey");
    tmux.wait_for_text("demo", "Handshake 10/10 · 2 after");
    tmux.wait_for_text("demo", "── KeyUpdate from 127.0.0.1");

    tmux.type_line("demo", "/quit");
    assert_exited_cleanly(&tmux, "demo", dir.path());
}

/// Makes an identity named `name` in `home`, as `spawn` sets it up.
fn identity(home: &Path, name: &str) {
    let status = std::process::Command::new(TLSCHAT)
        .args(["id", "--name", name])
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env_remove("TLSCHAT_HOME")
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
}

/// `tlschat demo` in the tmux window "lab", once its bots have greeted.
fn lab_demo(dir: &TempDir) -> Tmux {
    let tmux = Tmux::start(dir);
    spawn(&tmux, "lab", dir.path(), &["demo", "--step-delay", "0"]);
    tmux.wait_for("lab", "the finished handshake", handshake_done);
    tmux.wait_for_text("lab", "bob ✓ new: hi ");
    tmux
}

#[test]
fn demo_tamper_flip_shows_the_rooms_bad_record_mac_reconnects_and_sig_marks_bobs_line_invalid() {
    let dir = TempDir::new("tmux-lab");
    let tmux = lab_demo(&dir);
    tmux.type_line("lab", "/tamper flip");
    tmux.wait_for_text("lab", "[lab] tamper flip: flips one bit");
    tmux.type_line("lab", "this line is flipped");
    tmux.wait_for("lab", "the room's alert in the pane", |s| {
        s.contains("bad_record_mac") && s.contains("[lab]")
    });
    tmux.wait_for_text("lab", "reconnecting");
    // A new handshake in the panel, and the room again.
    tmux.wait_for("lab", "the new handshake", |s| handshake_done(s) && s.contains("reconnecting"));
    tmux.type_line("lab", "/tamper sig");
    tmux.wait_for_text("lab", "bob ✗ INVALID");
    tmux.type_line("lab", "/quit");
    assert_exited_cleanly(&tmux, "lab", dir.path());
}

/// The screen once the lab has reconnected after a case, the room's
/// history and greetings given time to arrive (they used to push the
/// verdict out of the pane within a second).
fn after_the_reconnect(tmux: &Tmux, reconnects: usize) -> String {
    tmux.wait_for("lab", "the new handshake", |s| {
        handshake_done(s) && s.matches("reconnecting: a new handshake").count() >= 1.min(reconnects)
    });
    std::thread::sleep(std::time::Duration::from_millis(2500));
    chat_pane(&tmux.screen("lab"))
}

/// Waits for `text` in the lab's chat pane, wherever it wraps; the pane.
fn wait_pane(tmux: &Tmux, text: &str) -> String {
    chat_pane(&tmux.wait_for("lab", text, |s| chat_pane(s).contains(text)))
}

/// The chat pane's text (left of the panel), its wrapped rows joined, so
/// that a notice is found whole wherever the pane wrapped it.
fn chat_pane(screen: &str) -> String {
    let rows: Vec<&str> = screen
        .lines()
        .map(|l| l.split(['│', '┌', '└']).next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .collect();
    rows.join(" ")
}

#[test]
fn demo_tamper_verdicts_stay_on_screen_after_the_reconnect_and_replay_delivers_the_line_once() {
    let dir = TempDir::new("tmux-lab-verdicts");
    let tmux = lab_demo(&dir);

    tmux.type_line("lab", "/tamper flip");
    tmux.wait_for_text("lab", "[lab] tamper flip: flips one bit");
    tmux.type_line("lab", "this line is flipped");
    tmux.wait_for_text("lab", "reconnecting: a new handshake");
    let screen = after_the_reconnect(&tmux, 1);
    assert!(screen.contains("tamper flip: the room sent alert bad_record_mac"), "{screen}");
    // Not greeted again, and what was shown is not shown twice.
    assert!(screen.matches("welcome, ").count() <= 1, "{screen}");

    tmux.type_line("lab", "/tamper replay");
    tmux.wait_for_text("lab", "[lab] tamper replay: sends the record");
    tmux.type_line("lab", "this line is replayed");
    wait_pane(&tmux, "tamper replay: the room sent alert");
    let screen = after_the_reconnect(&tmux, 2);
    // The line itself: delivered (✓✓: acknowledged by the room before the
    // copy ended the connection, or found in the history it replays), and
    // shown once.
    assert!(screen.contains("you ✓✓: this line is replayed"), "{screen}");
    assert!(screen.contains("tamper replay: the room sent alert bad_record_mac"), "{screen}");
    assert!(screen.contains("your line went once and was delivered"), "{screen}");
    // Not shown again by the history the reconnect replays.
    assert_eq!(screen.matches("this line is replayed").count(), 1, "{screen}");
    assert!(
        screen.contains("[lab] tamper replay (above): the room sent alert bad_record_mac — caught by"),
        "{screen}"
    );

    tmux.type_line("lab", "/tamper finished");
    let at_verdict = wait_pane(&tmux, "tamper finished: the room sent alert decrypt_error");
    let at = at_verdict.find("tamper finished: closing").unwrap();
    assert!(!at_verdict[at..].contains("handshake complete"), "{at_verdict}");
    let screen = after_the_reconnect(&tmux, 3);
    assert!(screen.contains("tamper finished: the room sent alert decrypt_error"), "{screen}");

    tmux.type_line("lab", "/tamper sig");
    tmux.wait_for_text("lab", "bob ✗ INVALID");
    tmux.type_line("lab", "one more line for bob");
    wait_pane(&tmux, "bytes of text");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let screen = chat_pane(&tmux.screen("lab"));
    assert!(!screen.contains("missing"), "{screen}");
    tmux.type_line("lab", "/quit");
    assert_exited_cleanly(&tmux, "lab", dir.path());
}

#[test]
fn a_room_and_three_members_in_four_terminals_hear_each_other_with_marks() {
    let dir = TempDir::new("tmux-room");
    let tmux = Tmux::start(&dir);
    let ca = dir.join("room-ca.pem");
    let ca_arg = ca.to_str().unwrap().to_owned();
    let room_home = dir.join("room");
    std::fs::create_dir_all(&room_home).unwrap();
    spawn(&tmux, "room", &room_home, &["listen", "127.0.0.1:0", "--ca-out", &ca_arg]);
    let screen = tmux.wait_for("room", "the room's TUI", |s| {
        s.contains("waiting for a connection") && s.contains("listening on 127.0.0.1:")
    });
    let target = format!("localhost:{}", listening_port(&screen));
    let names = ["alice", "bob", "carol"];
    for name in names {
        let home = dir.join(name);
        identity(&home, name);
        spawn(&tmux, name, &home, &["connect", &target, "--ca", &ca_arg]);
        tmux.wait_for_text(name, &format!("you are in the room as {name}"));
        tmux.wait_for_text("room", &format!("{name} joined (key "));
    }

    tmux.type_line("alice", "hello from alice");
    for name in ["bob", "carol", "room"] {
        tmux.wait_for_text(name, "alice ✓ new: hello from alice");
    }
    tmux.wait_for_text("alice", "you ✓✓: hello from alice");
    tmux.type_line("bob", "/me waves");
    for name in ["alice", "carol"] {
        tmux.wait_for_text(name, "✓ new * bob waves");
    }
    tmux.type_line("carol", "/msg alice just for you");
    // End to end: the first /msg waits for the pair's group, then goes.
    tmux.wait_for_text("alice", "carol ✓ new → you 🔒: just for you");
    tmux.wait_for_text("carol", "you ✓✓ 🔒: → alice: just for you");
    tmux.type_line("room", "the host speaks");
    for name in names {
        tmux.wait_for_text(name, "✓ new: the host speaks");
    }
    assert!(!tmux.screen("bob").contains("just for you"), "{}", tmux.screen("bob"));

    for name in names {
        tmux.type_line(name, "/quit");
        assert_exited_cleanly(&tmux, name, &dir.join(name));
    }
    tmux.wait_for_text("room", "carol left");
    tmux.type_line("room", "/quit");
    assert_exited_cleanly(&tmux, "room", &room_home);
}

#[test]
fn connect_with_reveal_shows_the_key_schedule_with_values_on_f4_and_logs_none() {
    let dir = TempDir::new("tmux-reveal");
    let tmux = Tmux::start(&dir);
    room_and_client(&tmux, &dir, &["--reveal"]);
    let done = tmux.wait_for("client", "the finished handshake", handshake_done);
    assert!(done.contains("SECRETS ON SCREEN"), "no banner:\n{done}");
    // The room did not ask: no banner there.
    assert!(!tmux.wait_for("room", "the finished handshake", handshake_done).contains("SECRETS ON SCREEN"));

    tmux.keys("client", &["F4"]);
    // The whole frame, not one caught while it is being written.
    let view = tmux.wait_for("client", "the key schedule view", |s| {
        s.contains("Key schedule") && s.contains("(EC)DHE shared secret") && s.contains("recompute it:")
    });
    assert!(view.contains("SECRETS ON SCREEN"), "{view}");
    tmux.keys("client", &["F4"]);
    tmux.wait_for("client", "the handshake panel again", |s| !s.contains("Key schedule"));

    tmux.type_line("client", "/quit");
    assert_exited_cleanly(&tmux, "client", dir.path());
    let stderr = std::fs::read_to_string(dir.join("client.stderr")).unwrap();
    assert!(stderr.contains("--reveal: this session's secret values will be shown"), "{stderr}");
    tmux.type_line("room", "/quit");
    assert_exited_cleanly(&tmux, "room", dir.path());
    let log = std::fs::read_to_string(dir.join("data/tlschat/tlschat.log")).expect("the log file");
    assert!(log.contains("[tls] connected: "), "{log}");
    assert!(!log.contains("revealed"), "a value in the log file:\n{log}");
}

/// Sends `signal` to the tlschat running in `name`'s pane (the child of the
/// pane's shell).
fn kill(tmux: &Tmux, name: &str, signal: &str) {
    let shell = tmux.format(name, "#{pane_pid}");
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
    let pid = children.split_whitespace().next().expect("tlschat runs in the pane");
    let status = std::process::Command::new("kill").args([&format!("-{signal}"), pid]).status().unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

#[test]
fn sigterm_and_sighup_close_politely_and_give_the_terminal_back() {
    let dir = TempDir::new("tmux-signals");
    let tmux = Tmux::start(&dir);
    room_and_client(&tmux, &dir, &[]);
    tmux.wait_for("client", "the finished handshake", handshake_done);
    tmux.wait_for_text("client", "you are in the room as");
    // The full-screen room says where its CA file is.
    tmux.wait_for("room", "the CA path", |s| s.contains("── ca:") && s.contains("room-ca.pem"));
    for name in ["client", "room"] {
        assert_eq!(tmux.format(name, "#{alternate_on}"), "1", "{name}: the TUI is on the alternate screen");
        assert_eq!(tmux.format(name, "#{mouse_any_flag}"), "1", "{name}: the TUI reports the mouse");
    }
    // A paste of three lines arrives as three messages, in order.
    tmux.command(&["set-buffer", "-b", "three", "first pasted\nsecond pasted\nthird pasted"]);
    tmux.command(&["paste-buffer", "-p", "-d", "-b", "three", "-t", "client"]);
    tmux.wait_for("room", "the three lines, in order", |s| {
        let at = |t: &str| s.find(t);
        let (Some(a), Some(b), Some(c)) = (at("first pasted"), at("second pasted"), at("third pasted"))
        else {
            return false;
        };
        a < b && b < c && s.matches("✓: ").count() >= 3
    });
    tmux.wait_for("client", "the three delivered", |s| s.matches("you ✓✓: ").count() == 3);

    // A terminal that closes (its tmux session killed: SIGHUP, then no
    // input) still says goodbye with close_notify.
    let dave = dir.join("dave");
    identity(&dave, "dave");
    let target = format!("localhost:{}", listening_port(&tmux.screen("room")));
    let ca = dir.join("room-ca.pem");
    spawn(&tmux, "dave", &dave, &["connect", &target, "--ca", ca.to_str().unwrap()]);
    tmux.wait_for_text("dave", "you are in the room as dave");
    tmux.wait_for_text("room", "dave joined");
    tmux.command(&["kill-session", "-t", "dave"]);
    tmux.wait_for_text("room", "dave left (close_notify)");

    kill(&tmux, "client", "TERM");
    assert_exited_cleanly(&tmux, "client", dir.path());
    // It closed with close_notify, as /quit does.
    tmux.wait_for_text("room", "left (close_notify)");
    kill(&tmux, "room", "HUP");
    assert_exited_cleanly(&tmux, "room", dir.path());
}

#[test]
fn alt_l_shows_the_scrollback_bare_so_the_rooms_invite_is_copied_whole() {
    let dir = TempDir::new("tmux-bare");
    let tmux = Tmux::start(&dir);
    spawn(&tmux, "room", dir.path(), &["listen", "127.0.0.1:0"]);
    let screen = tmux.wait_for("room", "the room's TUI", |s| s.contains("waiting for a connection"));
    // On the full screen the invite is wrapped into rows of the chat pane.
    assert!(
        !screen.lines().any(|l| l.contains("tlschat connect")
            && l.contains("--fingerprint ")
            && l.trim_end().len() > 100),
        "{screen}"
    );
    tmux.keys("room", &["M-l"]);
    tmux.wait_for_text("room", "-- bare view");
    assert_eq!(tmux.format("room", "#{alternate_on}"), "0", "the bare view is on the main screen");
    assert_eq!(tmux.format("room", "#{mouse_any_flag}"), "0", "the terminal selects text itself");
    // Joined as the terminal wrapped it: the invite is one line, whole.
    let joined = String::from_utf8_lossy(&tmux.command(&["capture-pane", "-p", "-J", "-t", "room"]).stdout)
        .into_owned();
    let invite = joined.lines().find(|l| l.contains("── invite: tlschat connect")).expect("the invite");
    let hex = invite.rsplit(' ').next().unwrap().trim_end();
    assert!(invite.contains("--fingerprint ") && hex.len() == 64, "{invite:?}\n{joined}");
    assert!(hex.chars().all(|c| c.is_ascii_hexdigit()), "{invite:?}");
    // Any key returns to the full screen.
    tmux.keys("room", &["Space"]);
    tmux.wait_for_text("room", "waiting for a connection");
    assert_eq!(tmux.format("room", "#{alternate_on}"), "1");
    assert_eq!(tmux.format("room", "#{mouse_any_flag}"), "1");
    tmux.type_line("room", "/quit");
    assert_exited_cleanly(&tmux, "room", dir.path());
}
