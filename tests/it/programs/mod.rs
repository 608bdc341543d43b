//! Helpers for the tests that run programs: the `tlschat` binary, OpenSSL
//! and curl as child processes with deadlines, their output as lines, and
//! temporary directories. Loopback addresses only.
//!
//! Every wait has a deadline; on expiry the helper panics with everything
//! the process printed, and dropping a [`Proc`] kills it, so no test can
//! hang or leave a process behind.

pub mod openssl_certs;
pub mod tmux;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The binary under test.
pub const TLSCHAT: &str = env!("CARGO_BIN_EXE_tlschat");

/// How long any single expected thing may take: generous, since CI
/// machines are slow and debug builds more so.
pub const WAIT: Duration = Duration::from_secs(15);

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("tlschat-test-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The lines read so far, and whether the stream has ended.
type Gathered = Mutex<(Vec<String>, bool)>;

/// The lines a stream produces, gathered by a thread as they come.
#[derive(Clone)]
pub struct Lines {
    shared: Arc<(Gathered, Condvar)>,
}

impl Lines {
    fn spawn(stream: impl Read + Send + 'static) -> Self {
        let lines = Self { shared: Arc::new((Mutex::new((Vec::new(), false)), Condvar::new())) };
        let shared = lines.shared.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                let done = !matches!(reader.read_until(b'\n', &mut buf), Ok(n) if n > 0);
                let (lock, cvar) = &*shared;
                let mut state = lock.lock().unwrap();
                if !buf.is_empty() {
                    let line = String::from_utf8_lossy(&buf);
                    state.0.push(line.trim_end_matches(['\n', '\r']).to_owned());
                }
                state.1 |= done;
                cvar.notify_all();
                if done {
                    return;
                }
            }
        });
        lines
    }

    /// Every line so far.
    pub fn all(&self) -> Vec<String> {
        self.shared.0.lock().unwrap().0.clone()
    }

    /// Every line so far, joined.
    pub fn text(&self) -> String {
        self.all().join("\n")
    }

    pub fn contains(&self, needle: &str) -> bool {
        self.all().iter().any(|l| l.contains(needle))
    }

    /// Waits for a line matching `pred` and returns it; `what` names it in
    /// the panic message if it does not come within [`WAIT`].
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_for_within(WAIT, what, pred)
    }

    pub fn wait_for_within(&self, limit: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_until(limit, what, |lines| lines.iter().find(|l| pred(l)).cloned())
    }

    /// Waits until `done` finds what it looks for in the lines so far, and
    /// returns it; panics, naming `what`, if the stream ends or `limit`
    /// passes first.
    fn wait_until<T>(&self, limit: Duration, what: &str, done: impl Fn(&[String]) -> Option<T>) -> T {
        let deadline = Instant::now() + limit;
        let (lock, cvar) = &*self.shared;
        let mut state = lock.lock().unwrap();
        loop {
            if let Some(found) = done(&state.0) {
                return found;
            }
            let now = Instant::now();
            if now >= deadline || state.1 {
                let why = if state.1 { "the stream ended" } else { "timed out" };
                panic!("{why} waiting for {what}; got:\n{}", state.0.join("\n"));
            }
            state = cvar.wait_timeout(state, deadline - now).unwrap().0;
        }
    }

    /// Waits for a line containing `needle`.
    pub fn wait_for_text(&self, needle: &str) -> String {
        self.wait_for(&format!("{needle:?}"), |l| l.contains(needle))
    }

    /// Waits until `n` lines contain `needle` (lines are never consumed, so
    /// a second event of the same kind needs its own count).
    pub fn wait_for_count(&self, needle: &str, n: usize) {
        let what = format!("{n} lines with {needle:?}");
        self.wait_until(WAIT, &what, |lines| {
            (lines.iter().filter(|l| l.contains(needle)).count() >= n).then_some(())
        });
    }

    /// Waits until the stream ends (the process closed it or exited).
    pub fn wait_closed(&self) {
        let deadline = Instant::now() + WAIT;
        let (lock, cvar) = &*self.shared;
        let mut state = lock.lock().unwrap();
        while !state.1 {
            let now = Instant::now();
            assert!(now < deadline, "timed out waiting for the stream to end; got:\n{}", state.0.join("\n"));
            state = cvar.wait_timeout(state, deadline - now).unwrap().0;
        }
    }
}

/// The environment variable that puts all of tlschat's files in one directory.
pub const HOME_ENV: &str = "TLSCHAT_HOME";

/// A child process with piped stdin, stdout and stderr; killed on drop.
pub struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    pub stdout: Lines,
    pub stderr: Lines,
    /// The TLSCHAT_HOME made for a `tlschat` that was given none, removed
    /// with the process (declared last: dropped after it is killed).
    _home: Option<TempDir>,
}

impl Proc {
    /// Starts `cmd`. A program that is not installed fails the test with a
    /// message saying so: interop tests must not pass by skipping.
    ///
    /// A `tlschat` started without TLSCHAT_HOME gets a fresh one of its
    /// own, so no test ever touches the real home directory, and tests
    /// share no identity, room or pin unless they set TLSCHAT_HOME.
    pub fn spawn(name: &str, cmd: &mut Command) -> Self {
        let home = (cmd.get_program() == TLSCHAT && !cmd.get_envs().any(|(k, _)| k == HOME_ENV)).then(|| {
            let home = TempDir::new("home");
            cmd.env(HOME_ENV, home.path());
            home
        });
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!(
                    "{name}: `{}` is not installed ({e}); these tests need it",
                    cmd.get_program().to_string_lossy()
                )
            }
            Err(e) => panic!("{name}: cannot start: {e}"),
        };
        let stdout = Lines::spawn(child.stdout.take().unwrap());
        let stderr = Lines::spawn(child.stderr.take().unwrap());
        Self { name: name.to_owned(), stdin: child.stdin.take(), child, stdout, stderr, _home: home }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Writes `line` and a newline to the process's stdin.
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap_or_else(|| panic!("{}: stdin already closed", self.name));
        writeln!(stdin, "{line}").unwrap_or_else(|e| panic!("{}: writing stdin: {e}", self.name));
        stdin.flush().unwrap();
    }

    /// Closes stdin: the process sees end of input.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits up to `limit` for the process to exit; kills it and fails the test otherwise.
    pub fn wait_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader threads take the last output.
                self.stdout.wait_closed();
                self.stderr.wait_closed();
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{} did not exit within {limit:?}\n{}", self.name, self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to [`WAIT`] for the process to exit.
    pub fn wait(&mut self) -> ExitStatus {
        self.wait_within(WAIT)
    }

    /// Kills the process (SIGKILL on Unix) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Everything printed so far, for failure messages.
    pub fn output(&self) -> String {
        format!(
            "--- {} stdout:\n{}\n--- {} stderr:\n{}",
            self.name,
            self.stdout.text(),
            self.name,
            self.stderr.text()
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `tlschat` with `args`.
pub fn tlschat(args: &[&str]) -> Command {
    let mut cmd = Command::new(TLSCHAT);
    cmd.args(args);
    // A key log must only be written where a test asks for one.
    cmd.env_remove("SSLKEYLOGFILE");
    cmd
}

/// A running `tlschat listen` on an ephemeral loopback port.
pub struct Room {
    pub proc: Proc,
    pub addr: SocketAddr,
    /// The CA file it wrote.
    pub ca: PathBuf,
    /// Its server key's fingerprint, as printed.
    pub fingerprint: String,
    /// Its TLSCHAT_HOME.
    pub home: PathBuf,
}

impl Room {
    /// Starts `tlschat listen 127.0.0.1:0 --ca-out DIR/NAME-ca.pem EXTRA…` and
    /// reads its banner.
    pub fn start(dir: &TempDir, name: &str, extra: &[&str]) -> Self {
        Self::start_with(dir, name, extra, |_| {})
    }

    /// Like [`start`](Self::start), with a hook to adjust the command
    /// (environment). The room lives in `DIR/NAME-home` (its TLSCHAT_HOME),
    /// so rooms with different names have different keys, and a room
    /// started again under the same name is the same room.
    pub fn start_with(dir: &TempDir, name: &str, extra: &[&str], adjust: impl FnOnce(&mut Command)) -> Self {
        let ca = dir.join(&format!("{name}-ca.pem"));
        let ca_arg = ca.to_str().unwrap().to_owned();
        let mut args = vec!["listen", "127.0.0.1:0", "--ca-out", &ca_arg];
        args.extend_from_slice(extra);
        let mut cmd = tlschat(&args);
        let home = dir.join(&format!("{name}-home"));
        cmd.env(HOME_ENV, &home);
        adjust(&mut cmd);
        let proc = Proc::spawn(name, &mut cmd);
        let line = proc.stdout.wait_for("the listening line", |l| l.starts_with("listening on "));
        let addr = line["listening on ".len()..].parse().unwrap();
        let fingerprint = proc.stdout.wait_for_text("fingerprint: ");
        let fingerprint = fingerprint["fingerprint: ".len()..].to_owned();
        Self { proc, addr, ca, fingerprint, home }
    }

    /// The names the room binds (see [`bound_names`]).
    pub fn members(&self) -> String {
        bound_names(&self.home)
    }

    /// Waits until the room's store binds `name` to the key `hex` (the
    /// room's log writer commits bindings on a thread of its own).
    pub fn wait_for_binding(&self, name: &str, hex: &str) {
        let line = format!("{name} {hex}");
        let deadline = Instant::now() + WAIT;
        while !self.members().contains(&line) {
            assert!(Instant::now() < deadline, "{line:?} never bound:\n{}", self.members());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Fails unless the room shows no trace of the client `id`: it never
    /// received the client's Certificate or Finished (the flight that says
    /// who it is), announced no join, logged neither its name nor its key,
    /// and bound nothing to it in its store. Call it once the room
    /// has logged the end of the client's connection.
    pub fn assert_never_met(&self, id: &Identity) {
        let log = self.proc.stdout.all();
        let seen = |l: &str| {
            l.contains("<- Certificate")
                || l.contains("<- Finished")
                || l.contains("joined")
                || l.contains(&id.name)
                || l.contains(&id.safety_number)
                || l.contains(&id.fingerprint)
                || l.replace(' ', "").contains(&id.fingerprint.replace(' ', ""))
        };
        let traces: Vec<&String> = log.iter().filter(|l| seen(l)).collect();
        assert!(traces.is_empty(), "the room met the client: {traces:#?}\n{}", self.proc.output());
        let members = self.members();
        assert!(
            !members.contains(&id.name) && !members.contains(&id.fingerprint.replace(' ', "")),
            "the room bound the client: {members}"
        );
    }
}

/// A client's identity as `tlschat id` prints it.
pub struct Identity {
    /// Its display name.
    pub name: String,
    /// Its key's fingerprint, grouped as printed.
    pub fingerprint: String,
    /// Its safety number.
    pub safety_number: String,
}

impl Identity {
    /// Makes the identity `name` in the TLSCHAT_HOME `home` (`tlschat id --name`).
    pub fn make(home: &Path, name: &str) -> Self {
        let mut cmd = tlschat(&["id", "--name", name]);
        cmd.env(HOME_ENV, home);
        let mut id = Proc::spawn("id", &mut cmd);
        assert!(id.wait().success(), "{}", id.output());
        let field = |label: &str| id.stdout.wait_for_text(label)[label.len()..].to_owned();
        Self {
            name: name.to_owned(),
            fingerprint: field("fingerprint: "),
            safety_number: field("safety number: "),
        }
    }
}

impl Room {
    /// `localhost:PORT`, a name the generated certificate is for.
    pub fn target(&self) -> String {
        format!("localhost:{}", self.addr.port())
    }

    /// `tlschat connect localhost:PORT --ca CA EXTRA…`, started.
    pub fn connect(&self, name: &str, extra: &[&str]) -> Proc {
        let target = self.target();
        let mut args = vec!["connect", &target, "--ca", self.ca.to_str().unwrap()];
        args.extend_from_slice(extra);
        Proc::spawn(name, &mut tlschat(&args))
    }

    /// Waits for the server to log `text` for the peer at local port `port`.
    pub fn wait_for_peer_line(&self, port: u16, text: &str) -> String {
        let prefix = format!("127.0.0.1:{port}]");
        self.proc
            .stdout
            .wait_for(&format!("{text:?} for port {port}"), |l| l.contains(&prefix) && l.contains(text))
    }
}

/// The one line a failed `tlschat` printed on stderr.
pub fn single_error_line(proc: &Proc) -> String {
    let lines = proc.stderr.all();
    assert_eq!(lines.len(), 1, "expected exactly one line on stderr\n{}", proc.output());
    assert!(lines[0].starts_with("tlschat: "), "{}", proc.output());
    lines[0].clone()
}

/// Writes a room's files into `dir` as `listen --cert/--key` and `connect
/// --ca` take them: `ca.pem`, `server.pem`, and `server.key` with `mode`
/// (0o600, as a private key should be, unless a test wants otherwise).
pub fn write_room_files(
    dir: &TempDir,
    ca: &tlschat::store::pki::RoomCa,
    server: &tlschat::store::pki::CertifiedKey,
    mode: u32,
) {
    std::fs::write(dir.join("ca.pem"), &ca.cert_pem).unwrap();
    std::fs::write(dir.join("server.pem"), &server.chain_pem).unwrap();
    let key = dir.join("server.key");
    std::fs::write(&key, server.key.to_pkcs8_pem().as_bytes()).unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    #[cfg(not(unix))]
    let _ = mode;
}

/// The names the room in `home` binds, read from its store (while the
/// room runs, too): `NAME FINGERPRINT LAST-USED` lines, oldest use first;
/// empty if there is no store yet.
pub fn bound_names(home: &Path) -> String {
    let path = home.join("room").join(tlschat::store::room_log::FILE);
    let Ok(Some(mut names)) = tlschat::store::room_log::read_names(&path) else { return String::new() };
    names.sort_by(|a, b| (a.last_used, &a.name).cmp(&(b.last_used, &b.name)));
    names
        .iter()
        .map(|b| format!("{} {} {}\n", b.name, tlschat::tls::internal::crypto::hex(&b.key), b.last_used))
        .collect()
}

/// Every line `p` printed (`--json`), each parsed as one JSON object.
pub fn events(p: &Proc) -> Vec<serde_json::Value> {
    p.stdout
        .all()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{}", p.output())))
        .collect()
}

/// Waits until `p` has printed (`--json`) an event matching `pred`; returns it.
pub fn wait_event(p: &Proc, what: &str, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let line =
        p.stdout.wait_for(what, |l| serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| pred(&v)));
    serde_json::from_str(&line).unwrap()
}

/// The live (not history) messages `p` received (`--json`): (room_seq, from, text).
pub fn live_messages(p: &Proc) -> Vec<(u64, String, String)> {
    events(p)
        .iter()
        .filter(|v| v["type"] == "message" && v["history"] != true)
        .map(|v| {
            (
                v["room_seq"].as_u64().unwrap(),
                v["from"].as_str().unwrap().into(),
                v["text"].as_str().unwrap().into(),
            )
        })
        .collect()
}
