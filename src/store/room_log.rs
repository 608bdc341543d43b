//! The room's log on disk: what `tlschat listen` has delivered, kept in
//! its home (`DATA/room/log.redb`) so that a room started again goes on
//! from the `room_seq` it had and serves the history it kept.
//!
//! One small interface, [`RoomLog`]: `append` a batch
//! (its messages, the room's last `room_seq`, the highest `room_seq`
//! the retention let go of, which it deletes in the same transaction, and
//! the names bound or freed since the last batch),
//! `load` the log back, `names` the
//! bindings, `compact` the file. `Writer` runs it on a thread of its own and commits what
//! the room hands it in groups, so that the room's task never waits on the
//! disk, and says how far it has committed: the room acknowledges a
//! message, and sends anything that carries its `room_seq`, only once that
//! `room_seq` is committed (docs/PROTOCOL.md, "Acknowledged is on disk").
//!
//! The room's name bindings (each display name to the first key that
//! proved it, see [`crate::store::names::NameBindings`]) are a table of the same
//! file, written in the same transactions: a member's binding is in the
//! batch that carries its join's `room_seq`, so it is on disk before the
//! member is welcomed. A home's older `members` file is imported once,
//! the first time the room opens the store (`RoomLog::import_names`).
//!
//! The file is opened as redb's single writer: one `tlschat listen` writes
//! it, and other processes may read it at the same time
//! ([`read_names`], which the tests use to see what a running room bound).
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
use crate::chat::name;

/// The log's messages: `room_seq` to an entry (see [`encode`]).
const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
/// The room's counters: [`ROOM_SEQ`] and [`FORGOTTEN`].
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The last `room_seq` the room gave, to a message or a join or leave.
const ROOM_SEQ: &str = "room_seq";
/// The highest `room_seq` the retention let go of.
const FORGOTTEN: &str = "forgotten";
/// 1 once the home's `members` file was imported (or there was none).
const MEMBERS_IMPORTED: &str = "members_imported";
/// The room's names: a name's comparison key ([`name::key`]) to its
/// binding (see [`encode_binding`]).
const NAMES: TableDefinition<&str, &[u8]> = TableDefinition::new("names");

/// A display name bound to the key that first proved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The name as first claimed.
    pub name: String,
    /// The SHA-256 fingerprint of the key's certificate.
    pub key: [u8; 32],
    /// When the name was last used, Unix seconds.
    pub last_used: u64,
}

/// A change to the room's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameChange {
    /// A name bound, or its binding used again (the same key).
    Bound(Binding),
    /// A name freed (unused for longer than the room keeps names).
    Freed(String),
}

/// The file's name in the room's directory.
pub const FILE: &str = "log.redb";

/// Why the room's log could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
#[error("the room's log {}: {why}", .path.display())]
pub struct StoreError {
    /// The file.
    pub(crate) path: PathBuf,
    /// What went wrong, in one line.
    pub(crate) why: String,
}

/// The room's log as it was kept.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    /// The last `room_seq` the room gave.
    pub(crate) room_seq: u64,
    /// The highest `room_seq` the retention let go of.
    pub(crate) forgotten: u64,
    /// The messages kept, in order.
    pub(crate) entries: Vec<Past>,
}

/// What to write in one transaction.
#[derive(Debug, Default, Clone)]
pub(crate) struct Batch {
    /// New messages, in order.
    pub(crate) entries: Vec<Past>,
    /// The room's last `room_seq` (it also counts joins and leaves, which
    /// are not in the log).
    pub(crate) room_seq: u64,
    /// Messages up to this `room_seq` are deleted (the retention let go of them).
    pub(crate) forgotten: u64,
    /// Names bound or freed, in order.
    pub(crate) names: Vec<NameChange>,
}

impl Batch {
    /// Adds a later batch to this one.
    fn absorb(&mut self, later: Self) {
        self.entries.extend(later.entries);
        self.room_seq = self.room_seq.max(later.room_seq);
        self.forgotten = self.forgotten.max(later.forgotten);
        self.names.extend(later.names);
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
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        let fail = |why: String| StoreError { path: path.to_owned(), why };
        // An empty file holds nothing: it is what a process killed while
        // making the store left before this one made stores whole.
        if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
            std::fs::remove_file(path).map_err(|e| fail(e.to_string()))?;
        }
        if !path.exists() {
            make_whole(path).map_err(|e| fail(e.to_string()))?;
        }
        let db = Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::SingleWriter)
            .create(path)
            .map_err(|e| match e {
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
            txn.open_table(NAMES)?;
            Ok(())
        })?;
        Ok(log)
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Everything kept, in order. An entry that does not read is an error
    /// naming it (the file was damaged or is not a tlschat log).
    pub(crate) fn load(&self) -> Result<Stored, StoreError> {
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

    /// The room's name bindings, in no particular order. One that does
    /// not read is an error naming it.
    pub(crate) fn names(&self) -> Result<Vec<Binding>, StoreError> {
        let read = || -> Result<Vec<Binding>, redb::Error> {
            let txn = self.db.begin_read()?;
            read_bindings(&txn.open_table(NAMES)?)
        };
        read().map_err(|e| self.fail(&e))
    }

    /// Whether the home's `members` file was imported already.
    pub(crate) fn names_imported(&self) -> Result<bool, StoreError> {
        let read = || -> Result<bool, redb::Error> {
            let txn = self.db.begin_read()?;
            Ok(txn.open_table(META)?.get(MEMBERS_IMPORTED)?.is_some_and(|v| v.value() == 1))
        };
        read().map_err(|e| self.fail(&e))
    }

    /// Writes the bindings of the home's `members` file (the first of a
    /// name kept where the store has one already) and marks the import
    /// done, in one transaction: it happens once.
    pub(crate) fn import_names(&mut self, bindings: &[Binding]) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut names = txn.open_table(NAMES)?;
            for binding in bindings {
                let key = name::key(&binding.name);
                if names.get(key.as_str())?.is_none() {
                    names.insert(key.as_str(), encode_binding(binding).as_slice())?;
                }
            }
            txn.open_table(META)?.insert(MEMBERS_IMPORTED, 1)?;
            Ok(())
        })
    }

    /// Writes `batch` in one transaction, committed to the disk (fsync)
    /// before it returns: its messages, the room's `room_seq`, the
    /// deletion of every message up to `forgotten` (the retention's
    /// compaction), and its names. A batch of nothing new commits nothing.
    pub(crate) fn append(&mut self, batch: &Batch) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut meta = txn.open_table(META)?;
            let had = |name: &str| -> Result<u64, redb::StorageError> {
                Ok(meta.get(name)?.map_or(0, |v| v.value()))
            };
            let (room_seq, forgotten) = (had(ROOM_SEQ)?, had(FORGOTTEN)?);
            if batch.entries.is_empty()
                && batch.names.is_empty()
                && batch.room_seq <= room_seq
                && batch.forgotten <= forgotten
            {
                return Ok(());
            }
            let mut names = txn.open_table(NAMES)?;
            for change in &batch.names {
                match change {
                    NameChange::Bound(binding) => {
                        names
                            .insert(name::key(&binding.name).as_str(), encode_binding(binding).as_slice())?;
                    }
                    NameChange::Freed(freed) => {
                        names.remove(name::key(freed).as_str())?;
                    }
                }
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
    pub(crate) fn compact(&mut self) -> Result<(), StoreError> {
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
/// Makes a new, empty store at `path` whole before it is there: it is
/// made beside it (`….new`, readable by its owner only), its header and
/// tables committed, then renamed into place. A process killed while
/// making it leaves only the `.new` file, which the next start replaces,
/// never a file at `path` that is not a store (which would stop every
/// later start). Nothing is acknowledged before the store is open, so
/// nothing is lost with it.
fn make_whole(path: &Path) -> Result<(), redb::Error> {
    let mut fresh = path.as_os_str().to_owned();
    fresh.push(".new");
    let fresh = PathBuf::from(fresh);
    match std::fs::remove_file(&fresh) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    make_private(&fresh)?;
    let db = Database::builder().create(&fresh)?;
    let txn = db.begin_write()?;
    txn.open_table(ENTRIES)?;
    txn.open_table(META)?;
    txn.open_table(NAMES)?;
    txn.commit()?;
    drop(db);
    std::fs::rename(&fresh, path)?;
    // The rename itself is kept once the folder is synced.
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all())?;
    }
    Ok(())
}

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

/// A binding's bytes: the key's fingerprint (32 bytes), the last use
/// (`u64`, big-endian), the name (UTF-8).
fn encode_binding(binding: &Binding) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + binding.name.len());
    out.extend_from_slice(&binding.key);
    out.extend_from_slice(&binding.last_used.to_be_bytes());
    out.extend_from_slice(binding.name.as_bytes());
    out
}

fn decode_binding(bytes: &[u8]) -> Option<Binding> {
    let (key, rest) = bytes.split_first_chunk::<32>()?;
    let (used, name) = rest.split_first_chunk::<8>()?;
    let name = std::str::from_utf8(name).ok()?;
    crate::store::identity::check_name(name).ok()?;
    Some(Binding { name: name.to_owned(), key: *key, last_used: u64::from_be_bytes(*used) })
}

/// Every binding of a names table; one that does not read, or is not
/// under its name's key, is an error naming it.
fn read_bindings(
    names: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Vec<Binding>, redb::Error> {
    let mut out = Vec::new();
    for item in names.iter()? {
        let (key, value) = item?;
        let binding =
            decode_binding(value.value()).filter(|b| name::key(&b.name) == key.value()).ok_or_else(|| {
                redb::Error::Corrupted(format!("the binding of {:?} does not read", key.value()))
            })?;
        out.push(binding);
    }
    Ok(out)
}

/// The names a room's store at `path` binds, read while another process
/// (its `tlschat listen`) may be writing it. `None` when there is no
/// store.
pub fn read_names(path: &Path) -> Result<Option<Vec<Binding>>, StoreError> {
    if !path.exists() {
        return Ok(None);
    }
    let fail = |why: String| StoreError { path: path.to_owned(), why };
    let db = redb::Builder::new()
        .set_concurrency_mode(redb::ConcurrencyMode::SingleWriter)
        .open_read_only(path)
        .map_err(|e| fail(e.to_string()))?;
    let read = || -> Result<Vec<Binding>, redb::Error> {
        let txn = db.begin_read()?;
        match txn.open_table(NAMES) {
            Ok(names) => read_bindings(&names),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    };
    read().map(Some).map_err(|e| fail(e.to_string()))
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
pub(crate) struct Progress {
    /// Every `room_seq` up to this one is on disk.
    pub(crate) committed: u64,
    /// How many of the batches handed to the writer are on disk (the
    /// first so many, in order): a batch of names alone carries no new
    /// `room_seq`.
    pub(crate) batches: u64,
    /// Why the last commit failed, while it keeps failing (it is tried
    /// again every second; nothing after `committed` is acknowledged).
    pub(crate) failing: Option<Arc<str>>,
}

/// How long the writer waits before trying a failed commit again.
const RETRY: Duration = Duration::from_secs(1);

/// The room's log written on a thread of its own: batches handed to it
/// while it commits are committed together in the next transaction (a
/// group commit), one `fsync` for all of them.
#[derive(Debug)]
pub(crate) struct Writer {
    batches: std_mpsc::Sender<Batch>,
    progress: watch::Receiver<Progress>,
}

impl Writer {
    /// Starts the thread; `committed` is what the log already holds.
    pub(crate) fn start(mut log: RoomLog, committed: u64) -> Result<Self, StoreError> {
        let (batches, rx) = std_mpsc::channel::<Batch>();
        let (report, progress) = watch::channel(Progress { committed, batches: 0, failing: None });
        std::thread::Builder::new()
            .name("room-log".to_owned())
            .spawn(move || {
                let (mut committed, mut received) = (committed, 0u64);
                while let Ok(mut batch) = rx.recv() {
                    received += 1;
                    // Everything that came while the last commit was on its way.
                    while let Ok(more) = rx.try_recv() {
                        batch.absorb(more);
                        received += 1;
                    }
                    loop {
                        match log.append(&batch) {
                            Ok(()) => {
                                committed = committed.max(batch.room_seq);
                                let _ = report.send(Progress { committed, batches: received, failing: None });
                                break;
                            }
                            Err(e) => {
                                let why: Arc<str> = e.to_string().into();
                                report.send_modify(|p| p.failing = Some(why));
                                std::thread::sleep(RETRY);
                                // What came meanwhile goes in the same try.
                                while let Ok(more) = rx.try_recv() {
                                    batch.absorb(more);
                                    received += 1;
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
    pub(crate) fn write(&self, batch: Batch) -> bool {
        self.batches.send(batch).is_ok()
    }

    /// How far the thread has got, watched.
    pub(crate) fn progress(&self) -> watch::Receiver<Progress> {
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
    fn a_store_whose_making_was_killed_is_made_again_and_a_store_that_is_one_is_kept() {
        // Killed before the store was renamed into place: a half-made
        // `.new` beside it, which the next start replaces.
        let path = temp("half-made");
        let fresh = path.with_file_name(format!("{FILE}.new"));
        std::fs::write(&fresh, b"half a header").unwrap();
        let mut log = RoomLog::open(&path).unwrap();
        assert!(!fresh.exists(), "the half-made store is left beside the new one");
        log.append(&Batch { entries: vec![past(1)], room_seq: 2, forgotten: 0, names: Vec::new() }).unwrap();
        drop(log);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // Opened again: what it keeps is kept.
        let log = RoomLog::open(&path).unwrap();
        assert_eq!(log.load().unwrap().entries, vec![past(1)]);
        drop(log);
        // An empty file where the store goes (what a start killed while
        // making it left before stores were made whole) holds nothing: a
        // store is made in its place.
        let empty = temp("empty");
        std::fs::write(&empty, b"").unwrap();
        let log = RoomLog::open(&empty).unwrap();
        assert_eq!(log.load().unwrap(), Stored::default());
        drop(log);
        // A file that is something else, not empty, is refused, not replaced.
        let other = temp("other");
        std::fs::write(&other, b"not a store").unwrap();
        assert!(RoomLog::open(&other).is_err());
        assert_eq!(std::fs::read(&other).unwrap(), b"not a store");
        for file in [path, empty, other] {
            let _ = std::fs::remove_dir_all(file.parent().unwrap());
        }
    }

    #[test]
    fn what_is_appended_is_loaded_back_in_order_after_the_file_is_opened_again() {
        let path = temp("reopen");
        let mut log = RoomLog::open(&path).unwrap();
        assert_eq!(log.load().unwrap(), Stored::default());
        log.append(&Batch { entries: vec![past(1), past(2)], room_seq: 3, forgotten: 0, names: Vec::new() })
            .unwrap();
        log.append(&Batch { entries: vec![past(5)], room_seq: 6, forgotten: 0, names: Vec::new() }).unwrap();
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
        log.append(&Batch {
            entries: (1..=10).map(past).collect(),
            room_seq: 10,
            forgotten: 0,
            names: Vec::new(),
        })
        .unwrap();
        log.append(&Batch { entries: vec![past(11)], room_seq: 12, forgotten: 7, names: Vec::new() })
            .unwrap();
        // A late batch with lower counters does not lower them.
        log.append(&Batch { entries: Vec::new(), room_seq: 4, forgotten: 2, names: Vec::new() }).unwrap();
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
            assert!(writer.write(Batch {
                entries: vec![past(seq)],
                room_seq: seq,
                forgotten: 0,
                names: Vec::new()
            }));
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

    fn binding(name: &str, key: u8, last_used: u64) -> Binding {
        Binding { name: name.to_owned(), key: [key; 32], last_used }
    }

    #[test]
    fn names_bound_and_freed_in_batches_are_read_back_and_by_another_process_meanwhile() {
        let path = temp("names");
        let mut log = RoomLog::open(&path).unwrap();
        assert!(log.names().unwrap().is_empty());
        assert_eq!(read_names(&path).unwrap(), Some(Vec::new()), "readable while the room has it open");
        let names = vec![
            NameChange::Bound(binding("alice", 1, 10)),
            NameChange::Bound(binding("bob", 2, 10)),
            NameChange::Bound(binding("José", 3, 10)),
        ];
        log.append(&Batch { entries: vec![past(1)], room_seq: 1, forgotten: 0, names }).unwrap();
        // A batch of names alone is written too; a later use replaces the
        // binding under the name's comparison key, whatever its case.
        let names = vec![NameChange::Bound(binding("Alice", 1, 99)), NameChange::Freed("JOSÉ".to_owned())];
        log.append(&Batch { names, ..Batch::default() }).unwrap();
        let mut seen = read_names(&path).unwrap().unwrap();
        seen.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(seen, [binding("Alice", 1, 99), binding("bob", 2, 10)]);
        drop(log);
        let log = RoomLog::open(&path).unwrap();
        let mut names = log.names().unwrap();
        names.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(names, seen);
        assert_eq!(log.load().unwrap().entries, [past(1)]);
        assert!(!log.names_imported().unwrap());
        assert_eq!(read_names(&path.with_file_name("none.redb")).unwrap(), None);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn the_members_import_happens_once_and_keeps_a_name_the_store_has() {
        let path = temp("import");
        let mut log = RoomLog::open(&path).unwrap();
        let names = vec![NameChange::Bound(binding("alice", 1, 10))];
        log.append(&Batch { names, ..Batch::default() }).unwrap();
        log.import_names(&[binding("alice", 7, 5), binding("carol", 3, 5)]).unwrap();
        assert!(log.names_imported().unwrap());
        let mut names = log.names().unwrap();
        names.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(names, [binding("alice", 1, 10), binding("carol", 3, 5)]);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_binding_that_does_not_read_is_refused_not_trusted() {
        assert_eq!(decode_binding(&encode_binding(&binding("alice", 1, 2))), Some(binding("alice", 1, 2)));
        assert!(decode_binding(&[0; 39]).is_none(), "no name");
        let mut bytes = encode_binding(&binding("alice", 1, 2));
        bytes.extend_from_slice(b"\x1b[2J");
        assert!(decode_binding(&bytes).is_none(), "not a tlschat name");
        let path = temp("bad-name");
        let log = RoomLog::open(&path).unwrap();
        log.write(|txn| {
            // Under another name's key.
            txn.open_table(NAMES)?.insert("mallory", encode_binding(&binding("alice", 1, 2)).as_slice())?;
            Ok(())
        })
        .unwrap();
        assert!(log.names().unwrap_err().to_string().contains("\"mallory\" does not read"));
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[tokio::test]
    async fn the_writer_counts_the_batches_it_committed_names_alone_among_them() {
        let path = temp("writer-names");
        let writer = Writer::start(RoomLog::open(&path).unwrap(), 0).unwrap();
        let mut progress = writer.progress();
        assert!(writer.write(Batch { entries: vec![past(1)], room_seq: 1, ..Batch::default() }));
        let names = vec![NameChange::Bound(binding("alice", 1, 10))];
        assert!(writer.write(Batch { names, room_seq: 1, ..Batch::default() }));
        let done = tokio::time::timeout(Duration::from_secs(10), progress.wait_for(|p| p.batches == 2)).await;
        assert!(done.is_ok_and(|r| r.is_ok_and(|p| p.committed == 1)));
        assert_eq!(read_names(&path).unwrap(), Some(vec![binding("alice", 1, 10)]));
        drop(writer);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
