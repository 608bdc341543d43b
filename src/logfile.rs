//! The full-screen interface's log file.
//!
//! While the TUI owns the terminal nothing else may write to it, so the
//! lines the headless mode prints (handshake steps, connections, alerts,
//! closes) go to `tlschat.log` in the platform data directory instead (on
//! Linux `$XDG_DATA_HOME/tlschat/tlschat.log`; in `$TLSCHAT_HOME` when that
//! is set, see [`crate::home`]), each after a UTC timestamp.
//! It is append-only with one writer and no rotation. The lines carry
//! labels and public values only, never secrets; chat text is left out
//! too, because a secure messenger should not keep a plaintext transcript
//! on disk that nobody asked for.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use crate::chat::{ChatEvent, printable};
use crate::net::NetEvent;

/// The log's file name in the data directory.
pub const FILE_NAME: &str = "tlschat.log";

/// An open log file.
#[derive(Debug)]
pub struct LogFile {
    file: File,
    path: PathBuf,
}

impl LogFile {
    /// Opens `tlschat.log` in the platform data directory for appending,
    /// creating the directory (0700) and the file (0600) if need be.
    pub fn open_default() -> io::Result<Self> {
        // The same data directory as the room's files: TLSCHAT_HOME when set.
        let home = crate::home::Home::locate()
            .map_err(|_| io::Error::new(io::ErrorKind::NotFound, "no home directory for the log file"))?;
        Self::open(&home.data_dir().join(FILE_NAME))
    }

    /// Opens `path` for appending, creating its directory (0700) and the
    /// file (0600) if need be.
    pub fn open(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir)?;
        }
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        Ok(Self { file: options.open(path)?, path: path.to_owned() })
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `text` as one line, after the time `unix` (seconds, UTC).
    /// Line breaks inside `text` become spaces, so one call is one line.
    pub fn line(&mut self, unix: u64, text: &str) -> io::Result<()> {
        let text = text.replace(['\n', '\r'], " ");
        writeln!(self.file, "{} {text}", timestamp(unix))
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `unix` as `YYYY-MM-DDTHH:MM:SSZ`.
fn timestamp(unix: u64) -> String {
    let date = crate::ui::handshake::date(i64::try_from(unix).unwrap_or(i64::MAX));
    let secs = unix % 86_400;
    format!("{date}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Passes `events` on unchanged through the returned receiver, writing to
/// `log` first what `format` makes of each (the headless log's lines), except
/// chat text: a message is logged by author, check and size only. The
/// writing happens on a task of its own, so a slow disk never holds up a
/// frame.
pub fn tee(
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
                let _ = log.line(unix_now(), &line);
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
}
