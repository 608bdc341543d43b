//! The NSS key log file behind `--keylog FILE` and `SSLKEYLOGFILE`, and
//! [`Tee`], which hands secrets to it and to a `--pcap` capture alike.
//!
//! Each secret the engine hands to [`tls::KeyLog`] becomes one line
//! `LABEL <client_random hex> <secret hex>` in the format Wireshark, tshark
//! and curl/OpenSSL use
//! (<https://firefox-source-docs.mozilla.org/security/nss/legacy/key_log_format/>),
//! so a capture of a tlschat session can be decrypted. This file is the only
//! place in tlschat where secret values leave the engine: it writes them to
//! the file the user named and nowhere else.
//!
//! The file is opened for appending (several processes, say a client and a
//! server started with the same `SSLKEYLOGFILE`, may share it) and created
//! readable by its owner only. Each line is written with a single `write`
//! call, which `O_APPEND` keeps whole even when processes interleave.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use zeroize::Zeroizing;

use crate::tls;

/// An open key log file. Share it between connections as `Arc<KeyLogFile>`.
#[derive(Debug)]
pub(crate) struct KeyLogFile {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    file: File,
    /// The first write error: after it the log is incomplete, so nothing more
    /// is written and the error waits for [`KeyLogFile::take_error`].
    error: Option<io::Error>,
}

impl KeyLogFile {
    /// Opens `path` for appending, creating it with mode 0600 on Unix:
    /// whoever can read the file can decrypt the sessions logged in it.
    pub(crate) fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path)?;
        Ok(Self { path, state: Mutex::new(State { file, error: None }) })
    }

    /// The file's path, as given.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The error that stopped logging, if a write failed.
    pub(crate) fn take_error(&self) -> Option<io::Error> {
        self.lock().error.take()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves a file that is still
        // usable: lines are written whole or not at all.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl tls::KeyLog for KeyLogFile {
    fn log(&self, label: &str, client_random: &[u8; 32], secret: &[u8]) {
        // The line holds the secret in hex: wipe it once written.
        let mut line = Zeroizing::new(String::with_capacity(label.len() + 2 + 64 + 2 * secret.len() + 1));
        line.push_str(label);
        line.push(' ');
        push_hex(&mut line, client_random);
        line.push(' ');
        push_hex(&mut line, secret);
        line.push('\n');

        let mut state = self.lock();
        if state.error.is_some() {
            return;
        }
        // `File` is unbuffered: write_all is one write(2) for a line this
        // short, and flush makes the "one line per secret, at once" promise
        // explicit should the file ever gain a buffer.
        if let Err(e) = state.file.write_all(line.as_bytes()).and_then(|()| state.file.flush()) {
            state.error = Some(e);
        }
    }
}

/// Several key logs as one: each secret goes to each, in order (`--keylog`
/// and `--pcap` together).
pub(crate) struct Tee(pub(crate) Vec<Arc<dyn tls::KeyLog>>);

impl Tee {
    /// The key log that feeds all of `logs`: none for none, the one
    /// itself for one.
    pub(crate) fn of(mut logs: Vec<Arc<dyn tls::KeyLog>>) -> Option<Arc<dyn tls::KeyLog>> {
        match logs.len() {
            0 => None,
            1 => logs.pop(),
            _ => Some(Arc::new(Self(logs))),
        }
    }
}

impl std::fmt::Debug for Tee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tee({} key logs)", self.0.len())
    }
}

impl tls::KeyLog for Tee {
    fn log(&self, label: &str, client_random: &[u8; 32], secret: &[u8]) {
        for log in &self.0 {
            log.log(label, client_random, secret);
        }
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::KeyLog as _;

    #[test]
    fn each_secret_becomes_one_nss_key_log_line_appended_to_the_file() {
        let path = std::env::temp_dir().join(format!("tlschat-keylog-unit-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let log = KeyLogFile::open(&path).unwrap();
        log.log("CLIENT_TRAFFIC_SECRET_0", &[0xab; 32], &[0x01, 0x02]);
        drop(log);
        let log = KeyLogFile::open(&path).unwrap();
        log.log("SERVER_TRAFFIC_SECRET_0", &[0xab; 32], &[0xff]);
        let text = std::fs::read_to_string(&path).unwrap();
        let random = "ab".repeat(32);
        assert_eq!(
            text,
            format!("CLIENT_TRAFFIC_SECRET_0 {random} 0102\nSERVER_TRAFFIC_SECRET_0 {random} ff\n")
        );
        assert!(log.take_error().is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[derive(Default)]
    struct Lines(Mutex<Vec<String>>);

    impl tls::KeyLog for Lines {
        fn log(&self, label: &str, _: &[u8; 32], secret: &[u8]) {
            self.0.lock().unwrap().push(format!("{label} {secret:?}"));
        }
    }

    #[test]
    fn a_tee_hands_each_secret_to_every_log() {
        assert!(Tee::of(Vec::new()).is_none());
        let (a, b) = (Arc::new(Lines::default()), Arc::new(Lines::default()));
        let tee = Tee::of(vec![a.clone(), b.clone()]).unwrap();
        tee.log("CLIENT_TRAFFIC_SECRET_0", &[0; 32], &[1]);
        tee.log("SERVER_TRAFFIC_SECRET_0", &[0; 32], &[2]);
        for log in [&a, &b] {
            assert_eq!(
                *log.0.lock().unwrap(),
                ["CLIENT_TRAFFIC_SECRET_0 [1]", "SERVER_TRAFFIC_SECRET_0 [2]"]
            );
        }
        // One log is used as it is.
        let one = Tee::of(vec![a.clone()]).unwrap();
        one.log("X", &[0; 32], &[3]);
        assert_eq!(a.0.lock().unwrap().len(), 3);
        assert_eq!(b.0.lock().unwrap().len(), 2);
    }
}
