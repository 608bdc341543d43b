//! The room's log on disk: what `tlschat listen` has delivered, kept in
//! its home (`DATA/room/log.redb`) so that a room started again goes on
//! from the `room_seq` it had and serves the history it kept.
//!
//! One small interface, [`RoomLog`]: [`append`](RoomLog::append) a batch
//! (its messages, the room's last `room_seq`, and the highest `room_seq`
//! the retention let go of, which it deletes in the same transaction),
//! [`load`](RoomLog::load) it all back, [`compact`](RoomLog::compact) the
//! file. [`Writer`] runs it on a thread of its own and commits what
//! the room hands it in groups, so that the room's task never waits on the
//! disk, and says how far it has committed: the room acknowledges a
//! message, and sends anything that carries its `room_seq`, only once that
//! `room_seq` is committed (docs/PROTOCOL.md, "Acknowledged is on disk").
//!
//! # Why redb
//!
//! The log is a map from `room_seq` to bytes with appends at the end,
//! deletes at the start and one full read at start-up: any ordered
//! key-value store does it. redb is pure Rust (no C library to build or
//! trust; SQLite through rusqlite brings its C source and a SQL layer this
//! needs none of), its commits are atomic and `fsync`ed (durability
//! `Immediate`, its default) through a copy-on-write B-tree with a
//! checksummed header, so a `kill -9` or a power cut at any point leaves
//! the last committed transaction, and it takes a lock on its file, so a
//! second `listen` on the same home is refused instead of corrupting it. A
//! segment log of our own would be faster to append to, but its crash
//! recovery (torn tails, checksums, rewriting segments to compact) is
//! exactly the code that is easy to get wrong and that redb already tests;
//! at one commit per group of messages the store's own cost is not what
//! limits a room (docs/SCALING.md, "Durability").

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::watch;

use crate::chat::log::Past;

/// The log's messages: `room_seq` to an entry (see [`encode`]).
const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
/// The room's counters: [`ROOM_SEQ`] and [`FORGOTTEN`].
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The last `room_seq` the room gave, to a message or a join or leave.
const ROOM_SEQ: &str = "room_seq";
/// The highest `room_seq` the retention let go of.
const FORGOTTEN: &str = "forgotten";

/// The file's name in the room's directory.
pub const FILE: &str = "log.redb";

/// Why the room's log could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
#[error("the room's log {}: {why}", .path.display())]
pub struct StoreError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong, in one line.
    pub why: String,
}

/// The room's log as it was kept.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The last `room_seq` the room gave.
    pub room_seq: u64,
    /// The highest `room_seq` the retention let go of.
    pub forgotten: u64,
    /// The messages kept, in order.
    pub entries: Vec<Past>,
}

/// What to write in one transaction.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// New messages, in order.
    pub entries: Vec<Past>,
    /// The room's last `room_seq` (it also counts joins and leaves, which
    /// are not in the log).
    pub room_seq: u64,
    /// Messages up to this `room_seq` are deleted (the retention let go of them).
    pub forgotten: u64,
}

impl Batch {
    /// Adds a later batch to this one.
    fn absorb(&mut self, later: Self) {
        self.entries.extend(later.entries);
        self.room_seq = self.room_seq.max(later.room_seq);
        self.forgotten = self.forgotten.max(later.forgotten);
    }
}

/// The room's log in its file.
#[derive(Debug)]
pub struct RoomLog {
    db: Database,
    path: PathBuf,
}

impl RoomLog {
    /// Opens the log at `path`, making it (readable by its owner only) if
    /// it is not there. Refused while another process has it open.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let fail = |why: String| StoreError { path: path.to_owned(), why };
        make_private(path).map_err(|e| fail(e.to_string()))?;
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => {
                fail("another tlschat listen has it open (one room, one process)".to_owned())
            }
            other => fail(other.to_string()),
        })?;
        let log = Self { db, path: path.to_owned() };
        // Both tables exist from the first open, so that reading finds them.
        log.write(|txn| {
            txn.open_table(ENTRIES)?;
            txn.open_table(META)?;
            Ok(())
        })?;
        Ok(log)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Everything kept, in order. An entry that does not read is an error
    /// naming it (the file was damaged or is not a tlschat log).
    pub fn load(&self) -> Result<Stored, StoreError> {
        let read = || -> Result<Stored, redb::Error> {
            let txn = self.db.begin_read()?;
            let meta = txn.open_table(META)?;
            let counter =
                |name: &str| -> Result<u64, redb::Error> { Ok(meta.get(name)?.map_or(0, |v| v.value())) };
            let mut stored =
                Stored { room_seq: counter(ROOM_SEQ)?, forgotten: counter(FORGOTTEN)?, entries: Vec::new() };
            let entries = txn.open_table(ENTRIES)?;
            for item in entries.iter()? {
                let (key, value) = item?;
                let room_seq = key.value();
                let past = decode(room_seq, value.value()).ok_or_else(|| {
                    redb::Error::Corrupted(format!("the entry for room_seq {room_seq} does not read"))
                })?;
                stored.entries.push(past);
            }
            Ok(stored)
        };
        read().map_err(|e| self.fail(&e))
    }

    /// Writes `batch` in one transaction, committed to the disk (fsync)
    /// before it returns: its messages, the room's `room_seq`, and the
    /// deletion of every message up to `forgotten` (the retention's
    /// compaction). A batch of nothing new commits nothing.
    pub fn append(&mut self, batch: &Batch) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut meta = txn.open_table(META)?;
            let had = |name: &str| -> Result<u64, redb::StorageError> {
                Ok(meta.get(name)?.map_or(0, |v| v.value()))
            };
            let (room_seq, forgotten) = (had(ROOM_SEQ)?, had(FORGOTTEN)?);
            if batch.entries.is_empty() && batch.room_seq <= room_seq && batch.forgotten <= forgotten {
                return Ok(());
            }
            meta.insert(ROOM_SEQ, batch.room_seq.max(room_seq))?;
            meta.insert(FORGOTTEN, batch.forgotten.max(forgotten))?;
            let mut entries = txn.open_table(ENTRIES)?;
            for past in batch.entries.iter().filter(|p| p.room_seq > batch.forgotten) {
                entries.insert(past.room_seq, encode(past).as_slice())?;
            }
            if batch.forgotten > forgotten {
                entries.retain_in(..=batch.forgotten, |_, _| false)?;
            }
            Ok(())
        })
    }

    /// Gives the space of deleted messages back to the file system (the
    /// file otherwise reuses it for new ones). Done when the room starts.
    pub fn compact(&mut self) -> Result<(), StoreError> {
        self.db.compact(redb::CompactionMode::Balanced).map(|_| ()).map_err(|e| self.fail(&e.into()))
    }

    fn write(
        &self,
        body: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), StoreError> {
        let run = || -> Result<(), redb::Error> {
            let txn = self.db.begin_write()?;
            body(&txn)?;
            txn.commit()?;
            Ok(())
        };
        run().map_err(|e| self.fail(&e))
    }

    fn fail(&self, e: &redb::Error) -> StoreError {
        StoreError { path: self.path.clone(), why: e.to_string() }
    }
}

/// Makes the file for the owner only, if it is not there.
fn make_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}

/// An entry's bytes: `at_ms u64`, the frame's length `u32`, the frame,
/// the line (all big-endian).
fn encode(past: &Past) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + past.size());
    out.extend_from_slice(&past.at_ms.to_be_bytes());
    out.extend_from_slice(&u32::try_from(past.frame.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&past.frame);
    out.extend_from_slice(&past.line);
    out
}

fn decode(room_seq: u64, bytes: &[u8]) -> Option<Past> {
    let (at, rest) = bytes.split_first_chunk::<8>()?;
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    if rest.len() < len {
        return None;
    }
    let (frame, line) = rest.split_at(len);
    Some(Past { room_seq, at_ms: u64::from_be_bytes(*at), frame: frame.into(), line: line.into() })
}

/// How far the [`Writer`] has got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Every `room_seq` up to this one is on disk.
    pub committed: u64,
    /// Why the last commit failed, while it keeps failing (it is tried
    /// again every second; nothing after `committed` is acknowledged).
    pub failing: Option<Arc<str>>,
}

/// How long the writer waits before trying a failed commit again.
const RETRY: Duration = Duration::from_secs(1);

/// The room's log written on a thread of its own: batches handed to it
/// while it commits are committed together in the next transaction (a
/// group commit), one `fsync` for all of them.
#[derive(Debug)]
pub struct Writer {
    batches: std_mpsc::Sender<Batch>,
    progress: watch::Receiver<Progress>,
}

impl Writer {
    /// Starts the thread; `committed` is what the log already holds.
    pub fn start(mut log: RoomLog, committed: u64) -> Result<Self, StoreError> {
        let (batches, rx) = std_mpsc::channel::<Batch>();
        let (report, progress) = watch::channel(Progress { committed, failing: None });
        std::thread::Builder::new()
            .name("room-log".to_owned())
            .spawn(move || {
                while let Ok(mut batch) = rx.recv() {
                    // Everything that came while the last commit was on its way.
                    while let Ok(more) = rx.try_recv() {
                        batch.absorb(more);
                    }
                    loop {
                        match log.append(&batch) {
                            Ok(()) => {
                                let _ = report.send(Progress { committed: batch.room_seq, failing: None });
                                break;
                            }
                            Err(e) => {
                                let why: Arc<str> = e.to_string().into();
                                report.send_modify(|p| p.failing = Some(why));
                                std::thread::sleep(RETRY);
                                // What came meanwhile goes in the same try.
                                while let Ok(more) = rx.try_recv() {
                                    batch.absorb(more);
                                }
                            }
                        }
                    }
                }
            })
            .map_err(|e| StoreError { path: PathBuf::new(), why: format!("cannot start its writer: {e}") })?;
        Ok(Self { batches, progress })
    }

    /// Hands a batch to the thread. False if the thread has ended.
    pub fn write(&self, batch: Batch) -> bool {
        self.batches.send(batch).is_ok()
    }

    /// How far the thread has got, watched.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn past(room_seq: u64) -> Past {
        Past {
            room_seq,
            at_ms: 1000 + room_seq,
            frame: format!("frame {room_seq}").into_bytes().into(),
            line: format!("line {room_seq}\n").into_bytes().into(),
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tlschat-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(FILE)
    }

    #[test]
    fn what_is_appended_is_loaded_back_in_order_after_the_file_is_opened_again() {
        let path = temp("reopen");
        let mut log = RoomLog::open(&path).unwrap();
        assert_eq!(log.load().unwrap(), Stored::default());
        log.append(&Batch { entries: vec![past(1), past(2)], room_seq: 3, forgotten: 0 }).unwrap();
        log.append(&Batch { entries: vec![past(5)], room_seq: 6, forgotten: 0 }).unwrap();
        drop(log);
        let log = RoomLog::open(&path).unwrap();
        let stored = log.load().unwrap();
        assert_eq!(stored, Stored { room_seq: 6, forgotten: 0, entries: vec![past(1), past(2), past(5)] });
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn what_the_retention_let_go_of_is_deleted_and_the_counters_never_go_back() {
        let path = temp("compact");
        let mut log = RoomLog::open(&path).unwrap();
        log.append(&Batch { entries: (1..=10).map(past).collect(), room_seq: 10, forgotten: 0 }).unwrap();
        log.append(&Batch { entries: vec![past(11)], room_seq: 12, forgotten: 7 }).unwrap();
        // A late batch with lower counters does not lower them.
        log.append(&Batch { entries: Vec::new(), room_seq: 4, forgotten: 2 }).unwrap();
        log.compact().unwrap();
        let stored = log.load().unwrap();
        assert_eq!((stored.room_seq, stored.forgotten), (12, 7));
        let seqs: Vec<u64> = stored.entries.iter().map(|p| p.room_seq).collect();
        assert_eq!(seqs, [8, 9, 10, 11]);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_second_process_cannot_open_the_log_while_one_has_it() {
        let path = temp("lock");
        let _log = RoomLog::open(&path).unwrap();
        let err = RoomLog::open(&path).unwrap_err();
        assert!(err.to_string().contains("another tlschat listen has it open"), "{err}");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn an_entry_that_does_not_read_is_refused_not_trusted() {
        assert!(decode(1, &[0; 11]).is_none());
        let mut bytes = encode(&past(1));
        bytes.truncate(14);
        assert!(decode(1, &bytes).is_none());
        assert_eq!(decode(1, &encode(&past(1))), Some(past(1)));
    }

    #[tokio::test]
    async fn the_writer_commits_groups_and_says_how_far_it_has_got() {
        let path = temp("writer");
        let log = RoomLog::open(&path).unwrap();
        let writer = Writer::start(log, 0).unwrap();
        let mut progress = writer.progress();
        for seq in 1..=50 {
            assert!(writer.write(Batch { entries: vec![past(seq)], room_seq: seq, forgotten: 0 }));
        }
        let done =
            tokio::time::timeout(Duration::from_secs(10), progress.wait_for(|p| p.committed == 50)).await;
        assert!(done.is_ok_and(|r| r.is_ok()));
        drop(writer);
        drop(progress);
        // The thread lets go of the file once its channel closes.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let log = loop {
            match RoomLog::open(&path) {
                Ok(log) => break log,
                Err(e) => {
                    assert!(std::time::Instant::now() < deadline, "{e}");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        };
        assert_eq!(log.load().unwrap().entries, (1..=50).map(past).collect::<Vec<_>>());
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
