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

use crate::clock::timestamp;
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

/// Lines waiting for the log's writer thread, at most: past this, a disk
/// that stalls costs lines of the log (counted, and the count written when
/// it catches up), never the interface's time or memory.
const PENDING_LINES: usize = 4096;

/// Passes `events` on unchanged through the returned receiver, writing to
/// `log` first what `format` makes of each (the log's words for it, from
/// [`crate::present::report::words`], which leave chat text out). The
/// writing happens on a thread of its own, off the runtime, so a slow disk
/// never holds up a frame nor a runtime thread.
pub(crate) fn tee(
    mut events: mpsc::Receiver<NetEvent>,
    log: LogFile,
    format: fn(&NetEvent) -> Vec<String>,
) -> mpsc::Receiver<NetEvent> {
    let (tx, rx) = mpsc::channel(events.max_capacity());
    let writer = Writer::start(log);
    tokio::spawn(async move {
        let mut writer = writer;
        while let Some(event) = events.recv().await {
            writer.write(crate::clock::unix_now(), format(&event));
            if tx.send(event).await.is_err() {
                return;
            }
        }
    });
    rx
}

/// The log's writer thread, as the tee hands it lines: never waited for.
struct Writer {
    lines: Option<std::sync::mpsc::SyncSender<(u64, Vec<String>)>>,
    /// Lines the thread was too far behind to take, since it last took some.
    skipped: u64,
}

impl Writer {
    /// Starts the thread that writes to `log`; without a thread, nothing
    /// is logged (the log is a convenience).
    fn start(mut log: LogFile) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, Vec<String>)>(PENDING_LINES);
        let started = std::thread::Builder::new().name("tlschat-log".into()).spawn(move || {
            while let Ok((unix, lines)) = rx.recv() {
                for line in lines {
                    // A full disk must not take the interface down.
                    let _ = log.line(unix, &line);
                }
            }
        });
        Self { lines: started.ok().map(|_| tx), skipped: 0 }
    }

    /// Hands `lines` to the thread, or counts them if it is behind.
    fn write(&mut self, unix: u64, mut lines: Vec<String>) {
        let Some(tx) = &self.lines else { return };
        if lines.is_empty() {
            return;
        }
        let count = lines.len() as u64;
        if self.skipped > 0 {
            lines.insert(0, format!("({} line(s) not logged: the disk was behind)", self.skipped));
        }
        match tx.try_send((unix, lines)) {
            Ok(()) => self.skipped = 0,
            Err(std::sync::mpsc::TrySendError::Full(_)) => self.skipped += count,
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => self.lines = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_tee_passes_every_event_on_and_its_writer_thread_logs_them() {
        let dir = std::env::temp_dir().join(format!("tlschat-tee-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join(FILE_NAME);
        let log = LogFile::open(&path).unwrap();
        let (tx, events) = mpsc::channel(4);
        let mut out = tee(events, log, |e| match e {
            NetEvent::RoomNote { note } => vec![format!("note: {note}")],
            _ => Vec::new(),
        });
        for i in 0..10 {
            tx.send(NetEvent::RoomNote { note: format!("n{i}") }).await.unwrap();
            assert!(matches!(out.recv().await, Some(NetEvent::RoomNote { note }) if note == format!("n{i}")));
        }
        drop(tx);
        assert!(out.recv().await.is_none());
        // The thread ends once the tee has; it has written every line.
        let mut text = String::new();
        for _ in 0..200 {
            text = std::fs::read_to_string(&path).unwrap();
            if text.contains("note: n9") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(text.lines().count(), 10, "{text}");
        assert!(text.lines().all(|l| l.contains(" note: n")), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
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
