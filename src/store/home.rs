//! Where tlschat keeps its files, and how it reads and writes them.
//!
//! Everything lives in two directories: the platform's config directory
//! (the user's identity and the pins of known rooms) and its data directory
//! (the room a `tlschat listen` serves), both from
//! [`directories::ProjectDirs`]. On Linux they are `~/.config/tlschat` and
//! `~/.local/share/tlschat`. Setting [`HOME_ENV`] (`TLSCHAT_HOME`) puts both
//! in that one directory instead: tests use it to stay out of the real home.
//!
//! ```text
//! CONFIG/identity/key.pem     the user's Ed25519 key (PKCS#8 PEM)   0600, dir 0700
//! CONFIG/identity/name        the user's display name
//! CONFIG/known_rooms          pinned server keys, one room a line    0600
//! DATA/room/ca.key            the room CA's key                      0600, dir 0700
//! DATA/room/ca.pem            the room CA certificate                0644
//! DATA/room/server.key        the server's key (what clients pin)    0600
//! DATA/room/server.pem        the server certificate chain           0644
//! DATA/room/log.redb          the room's log and names bound to keys 0600
//! DATA/room/members.imported  an older members file, once imported   0600
//! DATA/room/banned            keys the host banned                   0600
//! DATA/contacts/ROOM.txt      what the member learned of a room's    0600, dir 0700
//!                             keys, ROOM its id in hex
//! ```
//!
//! The rules, as OpenSSH applies them to `~/.ssh`: private keys are created
//! 0600 in directories created 0700, and a key file that other users can
//! read, or a key directory they can write, is refused with the `chmod`
//! that fixes it. Files are created so that an existing one is never
//! overwritten by accident: new files appear whole (written aside, then
//! linked into place) or not at all, and a file that is there but unusable
//! is reported, never silently replaced. Each [`FileError`] is one line
//! naming the file and what to do about it.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroizing;

/// The environment variable that, when set to a directory, holds all of
/// tlschat's files instead of the platform directories.
pub(crate) const HOME_ENV: &str = "TLSCHAT_HOME";

/// The largest file tlschat reads: its own files are a few kilobytes, so
/// anything bigger is not one of them.
const MAX_FILE: u64 = 1 << 20;

/// Why a file or directory could not be used. One line each, naming the
/// path and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// Neither `TLSCHAT_HOME` nor a home directory is known.
    #[error("no home directory to keep tlschat's keys in: set {HOME_ENV} to a directory")]
    NoHome,
    /// A directory could not be created or is not a directory.
    #[error(
        "cannot use the directory {}: {error}; make it writable by you, or set {HOME_ENV} to a directory you own",
        .path.display()
    )]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// A file could not be read.
    #[error("cannot read {}: {error}; {}", .path.display(), read_hint(.path, .error))]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}: {error}; make its directory writable by you, or set {HOME_ENV} elsewhere", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// A private file that other users may read or write.
    #[error(
        "{} is accessible by other users (mode {:04o}) and holds a private key or trust decisions: run `chmod 600 {}`",
        .path.display(), .mode, .path.display()
    )]
    FileTooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A directory of keys that other users may write to (and so replace keys in).
    #[error(
        "{} can be written by other users (mode {:04o}), who could replace the keys in it: run `chmod 700 {}`",
        .path.display(), .mode, .path.display()
    )]
    DirTooOpen {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key directory owned by another user, who could replace the keys in it.
    #[error(
        "{} belongs to another user (uid {owner}), who could replace the keys in it: use a directory of your own (TLSCHAT_HOME), or `chown` it",
        .path.display()
    )]
    NotOwned {
        /// The directory.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
    },
    /// A file that tlschat was about to create appeared meanwhile.
    #[error(
        "{} appeared while tlschat was creating it (another tlschat?); nothing was overwritten: run the command again",
        .path.display()
    )]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A file far larger than anything tlschat writes.
    #[error("{} is larger than 1 MiB, which no tlschat file is: check what it is, and move it aside", .path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
}

fn read_hint(path: &Path, error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::PermissionDenied => {
            format!("make it readable by you (`chmod 600 {}`), or set {HOME_ENV} elsewhere", path.display())
        }
        io::ErrorKind::InvalidData => "it is not text: restore it from a backup, or move it aside".to_owned(),
        _ => format!("check the file, or set {HOME_ENV} elsewhere"),
    }
}

/// tlschat's two directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Home {
    config: PathBuf,
    data: PathBuf,
}

impl Home {
    /// `TLSCHAT_HOME` if it is set and not empty, else the platform directories.
    pub(crate) fn locate() -> Result<Self, FileError> {
        if let Some(dir) = std::env::var_os(HOME_ENV).filter(|d| !d.is_empty()) {
            return Ok(Self::at(Path::new(&dir)));
        }
        let dirs = directories::ProjectDirs::from("", "", "tlschat").ok_or(FileError::NoHome)?;
        Ok(Self { config: dirs.config_dir().to_owned(), data: dirs.data_dir().to_owned() })
    }

    /// Both directories in `dir`.
    pub(crate) fn at(dir: &Path) -> Self {
        Self { config: dir.to_owned(), data: dir.to_owned() }
    }

    /// The data directory: the room, the TUI's log.
    pub(crate) fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Where the user's identity is kept.
    pub(crate) fn identity_dir(&self) -> PathBuf {
        self.config.join("identity")
    }

    /// The pins of known rooms (like OpenSSH's `known_hosts`).
    pub(crate) fn pins_file(&self) -> PathBuf {
        self.config.join("known_rooms")
    }

    /// What the user's member remembers of each room: a file per room,
    /// named by the room's id (see [`crate::chat::contacts`]).
    pub(crate) fn contacts_dir(&self) -> PathBuf {
        self.data.join("contacts")
    }

    /// Where the room that `tlschat listen` serves is kept.
    pub(crate) fn room_dir(&self) -> PathBuf {
        self.data.join("room")
    }
}

/// Creates `dir` (and its parents) for the owner only, or checks the
/// existing one: it must be a directory that other users cannot write to.
pub(crate) fn private_dir(dir: &Path) -> Result<(), FileError> {
    let fail = |error| FileError::Dir { path: dir.to_owned(), error };
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(fail)?;
    let meta = fs::metadata(dir).map_err(fail)?;
    if !meta.is_dir() {
        return Err(fail(io::Error::other("it is not a directory")));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(FileError::DirTooOpen { path: dir.to_owned(), mode });
        }
        // Ours, or root's (a system-wide directory the administrator keeps).
        let me = owner_of_process();
        if me != u32::MAX && meta.uid() != me && meta.uid() != 0 {
            return Err(FileError::NotOwned { path: dir.to_owned(), owner: meta.uid() });
        }
    }
    Ok(())
}

/// The uid files this process creates get: the owner of a new file in the
/// temporary directory, which needs no `unsafe` call.
#[cfg(unix)]
fn owner_of_process() -> u32 {
    use std::os::unix::fs::MetadataExt;
    static UID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UID.get_or_init(|| {
        let probe = std::env::temp_dir().join(format!(".tlschat-uid-{}", std::process::id()));
        let uid = fs::File::create(&probe).and_then(|f| f.metadata()).map(|m| m.uid());
        let _ = fs::remove_file(&probe);
        // Unknown: accept whoever owns the directory rather than refuse all.
        uid.unwrap_or(u32::MAX)
    })
}

/// Who may see a file tlschat writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Keys, pins and name bindings: the owner only (0600). Reading one
    /// that others can read or write is refused.
    Private,
    /// Certificates: anyone may read (0644).
    Public,
}

impl Access {
    #[cfg(unix)]
    fn mode(self) -> u32 {
        match self {
            Self::Private => 0o600,
            Self::Public => 0o644,
        }
    }
}

/// Reads a text file tlschat wrote; `None` if it does not exist. A
/// [`Access::Private`] file must not be readable or writable by others.
/// The text is zeroized when dropped, since it may be a private key.
pub(crate) fn read(path: &Path, access: Access) -> Result<Option<Zeroizing<String>>, FileError> {
    let fail = |error| FileError::Read { path: path.to_owned(), error };
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fail(e)),
    };
    let meta = file.metadata().map_err(fail)?;
    if !meta.is_file() {
        return Err(fail(io::Error::other("it is not a regular file")));
    }
    #[cfg(unix)]
    if access == Access::Private {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(FileError::FileTooOpen { path: path.to_owned(), mode });
        }
    }
    #[cfg(not(unix))]
    let _ = access;
    if meta.len() > MAX_FILE {
        return Err(FileError::TooLarge { path: path.to_owned() });
    }
    let mut bytes = Zeroizing::new(Vec::new());
    Read::by_ref(&mut file).take(MAX_FILE + 1).read_to_end(&mut bytes).map_err(fail)?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Some(Zeroizing::new(text.to_owned()))),
        Err(_) => Err(fail(io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))),
    }
}

/// A name beside `path` for writing a file before it takes `path`'s place.
fn aside(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// Writes `contents` to a new file at a temporary name beside `path`, with
/// `access`'s mode from the start and flushed to disk.
fn write_aside(path: &Path, contents: &[u8], access: Access) -> Result<PathBuf, FileError> {
    let tmp = aside(path);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, access.mode());
    #[cfg(not(unix))]
    let _ = access;
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(contents)?;
        f.sync_all()
    });
    if let Err(error) = written {
        let _ = fs::remove_file(&tmp);
        return Err(FileError::Write { path: path.to_owned(), error });
    }
    Ok(tmp)
}

/// Creates `path` with `contents`, all at once, and never over an existing
/// file: if `path` exists, fails with [`FileError::Exists`] and changes nothing.
pub(crate) fn create_new(path: &Path, contents: &[u8], access: Access) -> Result<(), FileError> {
    let tmp = write_aside(path, contents, access)?;
    // A hard link is created atomically and only if nothing is at `path`:
    // a reader sees no file or the whole file, and nothing is clobbered.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => sync_dir(path),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Err(FileError::Exists { path: path.to_owned() })
        }
        // A file system without hard links: create in place, still never over a file.
        Err(_) => {
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, access.mode());
            match options.open(path) {
                Ok(mut f) => f
                    .write_all(contents)
                    .and_then(|()| f.sync_all())
                    .map_err(|error| FileError::Write { path: path.to_owned(), error }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    Err(FileError::Exists { path: path.to_owned() })
                }
                Err(error) => Err(FileError::Write { path: path.to_owned(), error }),
            }
        }
    }
}

/// Replaces `path` with `contents` at once (written aside, then renamed
/// over it): for changes the user asked for, never for first creation.
pub(crate) fn replace(path: &Path, contents: &[u8], access: Access) -> Result<(), FileError> {
    let tmp = write_aside(path, contents, access)?;
    fs::rename(&tmp, path).map_err(|error| {
        let _ = fs::remove_file(&tmp);
        FileError::Write { path: path.to_owned(), error }
    })?;
    sync_dir(path)
}

/// Flushes the directory holding `path`, so that a rename or a new link
/// survives a crash as well as the file's contents do.
fn sync_dir(path: &Path) -> Result<(), FileError> {
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|error| FileError::Write { path: path.to_owned(), error })?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Appends one line to `path`, creating it with `access`'s mode if needed.
/// A [`Access::Private`] file must not be readable or writable by others.
pub(crate) fn append_line(path: &Path, line: &str, access: Access) -> Result<(), FileError> {
    let fail = |error| FileError::Write { path: path.to_owned(), error };
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, access.mode());
    let mut file = options.open(path).map_err(fail)?;
    #[cfg(unix)]
    if access == Access::Private {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata().map_err(fail)?.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(FileError::FileTooOpen { path: path.to_owned(), mode });
        }
    }
    // One write of the whole line: appends of this size do not interleave.
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            static N: AtomicU64 = AtomicU64::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("tlschat-home-unit-{}-{n}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            Self(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn tlschat_home_puts_every_file_in_one_directory() {
        let home = Home::at(Path::new("/x"));
        assert_eq!(home.identity_dir(), Path::new("/x/identity"));
        assert_eq!(home.pins_file(), Path::new("/x/known_rooms"));
        assert_eq!(home.room_dir(), Path::new("/x/room"));
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_0600_in_0700_directories_and_public_ones_0644() {
        let dir = Dir::new("modes");
        let keys = dir.0.join("a/b");
        private_dir(&keys).unwrap();
        assert_eq!(mode(&keys), 0o700);
        assert_eq!(mode(&dir.0.join("a")), 0o700);
        create_new(&keys.join("k"), b"secret", Access::Private).unwrap();
        create_new(&keys.join("c"), b"public", Access::Public).unwrap();
        append_line(&keys.join("l"), "line", Access::Private).unwrap();
        assert_eq!(mode(&keys.join("k")), 0o600);
        assert_eq!(mode(&keys.join("c")), 0o644);
        assert_eq!(mode(&keys.join("l")), 0o600);
        assert_eq!(read(&keys.join("k"), Access::Private).unwrap().unwrap().as_str(), "secret");
        assert_eq!(read(&keys.join("l"), Access::Private).unwrap().unwrap().as_str(), "line\n");
        // Nothing is left aside.
        let mut names: Vec<_> =
            fs::read_dir(&keys).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["c", "k", "l"]);
    }

    #[test]
    fn create_new_never_overwrites_and_replace_does() {
        let dir = Dir::new("clobber");
        private_dir(&dir.0).unwrap();
        let path = dir.0.join("f");
        create_new(&path, b"first", Access::Public).unwrap();
        assert!(matches!(create_new(&path, b"second", Access::Public), Err(FileError::Exists { .. })));
        assert_eq!(fs::read_to_string(&path).unwrap(), "first");
        replace(&path, b"third", Access::Public).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "third");
        assert_eq!(read(&dir.0.join("missing"), Access::Public).unwrap().map(|s| s.to_string()), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_private_file_others_can_read_is_refused_with_the_chmod_that_fixes_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = Dir::new("open");
        private_dir(&dir.0).unwrap();
        let path = dir.0.join("key.pem");
        create_new(&path, b"k", Access::Private).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = read(&path, Access::Private).unwrap_err();
        assert!(matches!(err, FileError::FileTooOpen { mode: 0o644, .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&format!("chmod 600 {}", path.display())) && text.contains("0644"), "{text}");
        // A public file may be read by anyone.
        assert!(read(&path, Access::Public).is_ok());

        fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o777)).unwrap();
        let err = private_dir(&dir.0).unwrap_err();
        assert!(err.to_string().contains(&format!("chmod 700 {}", dir.0.display())), "{err}");
        fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_key_directory_owned_by_another_user_is_refused() {
        let dir = Dir::new("owner");
        let keys = dir.0.join("keys");
        private_dir(&keys).unwrap();
        // Giving a directory away takes root, which CI and these machines have.
        match std::os::unix::fs::chown(&keys, Some(4242), None) {
            Ok(()) => {
                let err = private_dir(&keys).unwrap_err();
                assert!(matches!(err, FileError::NotOwned { owner: 4242, .. }), "{err:?}");
                assert!(err.to_string().contains("belongs to another user (uid 4242)"), "{err}");
            }
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}"),
        }
    }

    #[test]
    fn a_directory_where_a_file_should_be_is_reported() {
        let dir = Dir::new("notfile");
        private_dir(&dir.0.join("key.pem")).unwrap();
        let err = read(&dir.0.join("key.pem"), Access::Private).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let file = dir.0.join("file");
        create_new(&file, b"x", Access::Public).unwrap();
        assert!(private_dir(&file).is_err());
    }

    #[test]
    fn error_messages_are_single_lines_naming_the_file() {
        let path = PathBuf::from("/some/file");
        let errors = [
            FileError::NoHome,
            FileError::Dir { path: path.clone(), error: io::Error::other("x") },
            FileError::Read { path: path.clone(), error: io::ErrorKind::PermissionDenied.into() },
            FileError::Write { path: path.clone(), error: io::Error::other("x") },
            FileError::FileTooOpen { path: path.clone(), mode: 0o644 },
            FileError::DirTooOpen { path: path.clone(), mode: 0o777 },
            FileError::Exists { path: path.clone() },
            FileError::TooLarge { path: path.clone() },
        ];
        for e in errors {
            let text = e.to_string();
            assert!(!text.contains('\n'), "{text}");
            assert!(matches!(e, FileError::NoHome) || text.contains("/some/file"), "{text}");
        }
    }
}
