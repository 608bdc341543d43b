//! The full-screen interface's log file.
//!
//! While the TUI owns the terminal nothing else may write to it, so the
//! lines the headless mode prints (handshake steps, connections, alerts,
//! closes) go to `tlschat.log` in the platform data directory instead (on
//! Linux `$XDG_DATA_HOME/tlschat/tlschat.log`; in `$TLSCHAT_HOME` when that
//! is set, see [`crate::store::home`]), each after a UTC timestamp.
//! It is append-only with one writer, and bounded: past [`MAX_BYTES`] the
//! file becomes `tlschat.log.1` (replacing the one before) and a new one
//! starts, so at most twice that is kept. The lines carry
//! labels and public values only, never secrets; chat text is left out
//! too, because a secure messenger should not keep a plaintext transcript
//! on disk that nobody asked for.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use crate::chat::{ChatEvent, printable};
use crate::net::NetEvent;

/// The log's file name in the data directory.
pub(crate) const FILE_NAME: &str = "tlschat.log";

/// The size past which the log starts again (the old one kept as `.1`).
pub(crate) const MAX_BYTES: u64 = 8 << 20;

/// An open log file.
#[derive(Debug)]
pub(crate) struct LogFile {
    file: File,
    path: PathBuf,
    /// Its size so far.
    written: u64,
    /// [`MAX_BYTES`], unless a test says otherwise.
    limit: u64,
}

impl LogFile {
    /// Opens `tlschat.log` in the platform data directory for appending,
    /// creating the directory (0700) and the file (0600) if need be.
    pub(crate) fn open_default() -> io::Result<Self> {
        // The same data directory as the room's files: TLSCHAT_HOME when set.
        let home = crate::store::home::Home::locate()
            .map_err(|_| io::Error::new(io::ErrorKind::NotFound, "no home directory for the log file"))?;
        Self::open(&home.data_dir().join(FILE_NAME))
    }

    /// Opens `path` for appending, creating its directory (0700) and the
    /// file (0600) if need be.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir)?;
        }
        let file = append_to(path)?;
        let written = file.metadata()?.len();
        Ok(Self { file, path: path.to_owned(), written, limit: MAX_BYTES })
    }

    /// The same log, started again past `limit` bytes.
    #[must_use]
    #[cfg(test)]
    pub(crate) fn with_limit(mut self, limit: u64) -> Self {
        self.limit = limit;
        self
    }

    /// Appends `text` as one line, after the time `unix` (seconds, UTC).
    /// Line breaks inside `text` become spaces, so one call is one line.
    pub(crate) fn line(&mut self, unix: u64, text: &str) -> io::Result<()> {
        let line = format!("{} {}\n", timestamp(unix), text.replace(['\n', '\r'], " "));
        if self.written > 0 && self.written + line.len() as u64 > self.limit {
            let mut old = self.path.clone().into_os_string();
            old.push(".1");
            std::fs::rename(&self.path, &old)?;
            self.file = append_to(&self.path)?;
            self.written = 0;
        }
        self.file.write_all(line.as_bytes())?;
        self.written += line.len() as u64;
        Ok(())
    }
}

/// `path` opened for appending, created 0600 if need be.
fn append_to(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// `unix` as `YYYY-MM-DDTHH:MM:SSZ`.
fn timestamp(unix: u64) -> String {
    let date = crate::tui::ui::handshake::date(i64::try_from(unix).unwrap_or(i64::MAX));
    let secs = unix % 86_400;
    format!("{date}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Passes `events` on unchanged through the returned receiver, writing to
/// `log` first what `format` makes of each (the headless log's lines), except
/// chat text: a message is logged by author, check and size only. The
/// writing happens on a task of its own, so a slow disk never holds up a
/// frame.
pub(crate) fn tee(
    mut events: mpsc::Receiver<NetEvent>,
    mut log: LogFile,
    format: fn(&NetEvent) -> Vec<String>,
) -> mpsc::Receiver<NetEvent> {
    let (tx, rx) = mpsc::channel(events.max_capacity());
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let lines = match &event {
                NetEvent::Text { peer, line } => vec![format!("[{peer}] (chat line, {} bytes)", line.len())],
                NetEvent::Chat { event: ChatEvent::Message(m), .. } => vec![format!(
                    "[room] (message #{} from {}, signature {}, {} bytes)",
                    m.room_seq,
                    printable(&m.from),
                    m.sig.as_str(),
                    m.text.len()
                )],
                NetEvent::Chat { event: ChatEvent::Guest { name, text, .. }, .. } => {
                    vec![format!("[room] (line from {} (unverified), {} bytes)", printable(name), text.len())]
                }
                NetEvent::Chat { event: ChatEvent::Sent { seq, text, .. }, .. } => {
                    vec![format!("[room] (sent message #{seq}, {} bytes)", text.len())]
                }
                other => format(other),
            };
            for line in lines {
                // A full disk must not take the interface down: the log is a convenience.
                let _ = log.line(crate::net::unix_now(), &line);
            }
            if tx.send(event).await.is_err() {
                return;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso_8601_utc() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(1_793_577_600 + 12 * 3600 + 4 * 60 + 5), "2026-11-02T12:04:05Z");
    }

    #[test]
    fn the_log_starts_again_past_its_limit_keeping_one_old_file() {
        let dir = std::env::temp_dir().join(format!("tlschat-log-{}", std::process::id()));
        let path = dir.join(FILE_NAME);
        let mut log = LogFile::open(&path).unwrap().with_limit(100);
        for i in 0..20 {
            log.line(0, &format!("line {i:02}")).unwrap();
        }
        let size = |p: &Path| std::fs::metadata(p).unwrap().len();
        let old = dir.join(format!("{FILE_NAME}.1"));
        assert!(size(&path) <= 100 && size(&old) <= 100, "{} {}", size(&path), size(&old));
        let now = std::fs::read_to_string(&path).unwrap();
        assert!(now.ends_with("line 19\n"), "{now}");
        // Reopened, it counts what is there.
        let mut again = LogFile::open(&path).unwrap().with_limit(100);
        again.line(0, "after reopening").unwrap();
        assert!(size(&path) <= 100);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
