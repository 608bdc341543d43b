//! A private tmux server for the tests that run the full-screen interface
//! in a real terminal: its own socket in the test's directory, no user
//! configuration, `TERM=xterm-256color`, 100x30 panes. Every wait has a
//! deadline, and the server is killed on drop, passing or not.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::{TempDir, WAIT};

/// Pane size: wide enough for the handshake panel beside the chat.
pub const COLUMNS: &str = "100";
pub const ROWS: &str = "30";

/// A tmux server of our own, killed on drop.
pub struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// A server whose socket is in `dir` (started by the first session).
    /// Fails, saying so, if tmux is not installed.
    pub fn start(dir: &TempDir) -> Self {
        match Command::new("tmux").arg("-V").output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!("tmux -V failed: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) => panic!(
                "tmux is not installed ({e}): these tests run the TUI in a real terminal through it; \
                 install tmux (.ci/run does)"
            ),
        }
        Self { socket: dir.join("tmux.sock") }
    }

    /// Runs a tmux command against this server; fails if tmux does.
    pub fn command(&self, args: &[&str]) -> Output {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .args(args)
            .env("TERM", "xterm-256color")
            .env_remove("TMUX")
            .output()
            .unwrap_or_else(|e| panic!("tmux {args:?}: {e}"));
        assert!(out.status.success(), "tmux {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    /// A new detached session `name` of [`COLUMNS`]x[`ROWS`] running the shell command `program`.
    pub fn session(&self, name: &str, program: &str) {
        self.command(&["new-session", "-d", "-s", name, "-x", COLUMNS, "-y", ROWS, program]);
    }

    /// The pane's text as shown.
    pub fn screen(&self, name: &str) -> String {
        String::from_utf8_lossy(&self.command(&["capture-pane", "-p", "-t", name]).stdout).into_owned()
    }

    /// A tmux format evaluated for the pane, e.g. `#{alternate_on}`.
    pub fn format(&self, name: &str, format: &str) -> String {
        let out = self.command(&["display-message", "-p", "-t", name, format]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Polls the screen until `pred` holds; fails after [`WAIT`] showing the screen.
    pub fn wait_for(&self, name: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen(name);
            if pred(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "{name}: timed out waiting for {what}; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls the screen until it shows `text`.
    pub fn wait_for_text(&self, name: &str, text: &str) -> String {
        self.wait_for(name, &format!("{text:?}"), |s| s.contains(text))
    }

    /// Sends keys as tmux names them ("Enter", "C-c", "y").
    pub fn keys(&self, name: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", name];
        args.extend_from_slice(keys);
        self.command(&args);
    }

    /// Types `text` literally, then Enter.
    pub fn type_line(&self, name: &str, text: &str) {
        self.command(&["send-keys", "-t", name, "-l", text]);
        self.keys(name, &["Enter"]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-S").arg(&self.socket).arg("kill-server").output();
    }
}

/// The contents of `path` once it has some; fails after [`WAIT`], showing `context()`.
pub fn file_within(path: &Path, context: impl Fn() -> String) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.is_empty()
        {
            return text;
        }
        assert!(Instant::now() < deadline, "{} did not appear; {}", path.display(), context());
        std::thread::sleep(Duration::from_millis(50));
    }
}
