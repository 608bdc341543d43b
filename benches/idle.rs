//! The TUI's CPU use while nothing happens: `tlschat demo` (room, bot and
//! client in one process) runs in a 100x30 tmux pane; once its handshake
//! is shown and the bot has greeted, the process's user + system time is
//! read from `/proc/PID/stat` before and after 10 idle seconds. The issue
//! asks for idle CPU near zero: frames are drawn only when something
//! changed, and the tick timer runs only while something animates.
//!
//! Run: `cargo bench --bench idle` (Linux, tmux installed). Prints the
//! figure and exits non-zero above 1 % of one core.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long the process is watched idle.
const IDLE: Duration = Duration::from_secs(10);

/// The most an idle TUI may use, in percent of one core.
const BUDGET_PERCENT: f64 = 1.0;

struct Tmux {
    socket: PathBuf,
    dir: PathBuf,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .args(args)
            .env("TERM", "xterm-256color")
            .env_remove("TMUX")
            .output()
            .unwrap_or_else(|e| fail(&format!("tmux {args:?}: {e} (is tmux installed?)")));
        if !out.status.success() {
            fail(&format!("tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr)));
        }
        out
    }

    fn text(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.run(args).stdout).trim().to_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-S").arg(&self.socket).arg("kill-server").output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fail(why: &str) -> ! {
    eprintln!("idle bench: {why}");
    std::process::exit(1);
}

/// User + system time of `pid` so far, in clock ticks (fields 14 and 15 of
/// `/proc/PID/stat`, after the parenthesised command name).
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| fail(&format!("/proc/{pid}/stat: {e}")));
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn main() {
    let dir = std::env::temp_dir().join(format!("tlschat-idle-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        fail(&format!("{}: {e}", dir.display()));
    }
    let tmux = Tmux { socket: dir.join("tmux.sock"), dir: dir.clone() };
    // `exec`: the pane's process is tlschat itself.
    let program = format!(
        "exec env HOME='{home}' XDG_DATA_HOME='{home}/data' TERM=xterm-256color '{tlschat}' demo",
        home = dir.display(),
        tlschat = env!("CARGO_BIN_EXE_tlschat"),
    );
    tmux.run(&["new-session", "-d", "-s", "idle", "-x", "100", "-y", "30", &program]);
    let pid = tmux.text(&["display-message", "-p", "-t", "idle", "#{pane_pid}"]);

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let screen = tmux.text(&["capture-pane", "-p", "-t", "idle"]);
        if screen.contains("Handshake 7/7") && screen.contains("I am the demo room's bot") {
            break;
        }
        if Instant::now() > deadline {
            fail(&format!("the demo did not come up; the screen:\n{screen}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let the last frame go out.
    std::thread::sleep(Duration::from_millis(500));

    let before = cpu_ticks(&pid);
    let start = Instant::now();
    std::thread::sleep(IDLE);
    let ticks = cpu_ticks(&pid) - before;
    let wall = start.elapsed().as_secs_f64();
    let per_second = clock_ticks_per_second();
    let cpu = ticks as f64 / per_second;
    let percent = cpu / wall * 100.0;
    println!(
        "idle TUI (tlschat demo, 100x30): {cpu:.3} s of CPU in {wall:.1} s = {percent:.2} % of one core"
    );
    // That the figure is the right process's: starting up did cost something.
    println!("  (its start-up, handshake and first frames took {:.3} s)", before as f64 / per_second);
    if percent > BUDGET_PERCENT {
        fail(&format!("over the {BUDGET_PERCENT} % budget"));
    }
}
