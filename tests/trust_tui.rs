//! First contact in the full-screen interface, in a real terminal: a
//! private tmux server runs `tlschat connect` against a headless room; the
//! dialog must show the room's safety number, hold what is typed, and pin
//! the key on `y` or disconnect without sending on `n`. tmux is required
//! (`.ci/run` installs it); the client's files are in TLSCHAT_HOME in a
//! temporary directory.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::{Room, TLSCHAT, TempDir, WAIT};

/// A tmux server with its socket in a test's directory; killed on drop.
struct Tmux(std::path::PathBuf);

impl Tmux {
    fn new(dir: &TempDir) -> Self {
        Self(dir.join("tmux.sock"))
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.0)
            .args(["-f", "/dev/null"])
            .args(args)
            .env("TERM", "xterm-256color")
            .env_remove("TMUX")
            .output()
            .unwrap_or_else(|e| panic!("tmux is needed for these tests ({e}); .ci/run installs it"));
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    /// `tlschat connect TARGET` in a 100x30 pane, with `home` as
    /// TLSCHAT_HOME; its exit status goes to `home/exit`.
    fn connect(&self, home: &Path, target: &str) {
        let q = |p: &Path| format!("'{}'", p.display());
        let program = format!(
            "env -u SSLKEYLOGFILE TLSCHAT_HOME={home} TERM=xterm-256color {tlschat} connect {target} 2>{err}; \
             echo \"EXIT:$?\" >{exit}; exec sleep 600",
            home = q(home),
            tlschat = q(Path::new(TLSCHAT)),
            err = q(&home.join("stderr")),
            exit = q(&home.join("exit")),
        );
        self.run(&["new-session", "-d", "-s", "c", "-x", "100", "-y", "30", &program]);
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "c"]).stdout).into_owned()
    }

    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {text:?}; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "c"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    fn type_line(&self, text: &str) {
        self.run(&["send-keys", "-t", "c", "-l", text]);
        self.keys(&["Enter"]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-S").arg(&self.0).arg("kill-server").output();
    }
}

/// The contents of `path` once it has some.
fn file_within(path: &Path) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.is_empty()
        {
            return text;
        }
        assert!(Instant::now() < deadline, "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_first_contact_dialog_shows_the_safety_number_holds_keys_and_pins_the_key_on_y() {
    let dir = TempDir::new("tui-first-contact");
    let room = Room::start(&dir, "listen", &[]);
    let safety = tlschat::tls::Fingerprint::parse(&room.fingerprint).unwrap().short();
    let home = TempDir::new("client-home");
    let tmux = Tmux::new(&dir);
    tmux.connect(home.path(), &room.target());
    let screen = tmux.wait_for(&format!("First contact: {}", room.target()));
    assert!(screen.contains(&safety), "{screen}");
    assert!(screen.contains("Nothing is sent until you decide."), "{screen}");
    // Keys other than y and n do nothing while the dialog is open.
    tmux.keys(&["x", "Enter"]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(tmux.screen().contains("First contact:"));
    assert!(!home.join("known_rooms").exists());
    tmux.keys(&["y"]);
    // The notice wraps in the chat pane: its start and end.
    let screen = tmux.wait_for("is pinned");
    assert!(screen.contains(&format!("trusted {}: its key", room.target())), "{screen}");
    tmux.type_line("hello after trusting");
    room.proc.stdout.wait_for_text("] hello after trusting");
    let pins = std::fs::read_to_string(home.join("known_rooms")).unwrap();
    assert_eq!(pins, format!("{} {}\n", room.target(), room.fingerprint.replace(' ', "")));
    tmux.type_line("/quit");
    assert_eq!(file_within(&home.join("exit")).trim(), "EXIT:0");
}

#[test]
fn saying_no_in_the_first_contact_dialog_disconnects_without_sending_and_exits_non_zero() {
    let dir = TempDir::new("tui-first-contact-no");
    let room = Room::start(&dir, "listen", &[]);
    let home = TempDir::new("client-home");
    let tmux = Tmux::new(&dir);
    tmux.connect(home.path(), &room.target());
    tmux.wait_for("First contact:");
    tmux.keys(&["n"]);
    tmux.wait_for("did not trust");
    room.proc.stdout.wait_for_text("left (close_notify)");
    tmux.keys(&["C-c"]);
    assert_eq!(file_within(&home.join("exit")).trim(), "EXIT:1");
    let stderr = std::fs::read_to_string(home.join("stderr")).unwrap();
    assert!(stderr.contains("you did not trust the key") && stderr.contains("nothing was sent"), "{stderr}");
    assert!(!home.join("known_rooms").exists());
    assert!(!room.proc.stdout.all().iter().any(|l| l.contains(" \u{2713}] ")), "{}", room.proc.output());
}
