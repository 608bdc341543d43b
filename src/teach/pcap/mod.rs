//! `--pcap FILE`: a session written as a pcapng capture that Wireshark and
//! tshark open already decrypted.
//!
//! The file holds the real TLS bytes, as the connection wrote them to and
//! read them from its socket, inside synthetic TCP/IP frames (`tcp`: a
//! SYN, SYN-ACK, ACK at the start, one segment per write with true
//! sequence and acknowledgement numbers, FINs at the end), and the
//! session's secrets, the lines of an NSS key log, in Decryption Secrets
//! Blocks (pcapng §4.7, secrets type `TLSK`), so no key log setting is
//! needed to read it.
//!
//! # Order in the file
//!
//! Wireshark reads a capture front to back and decrypts a record with the
//! secrets it has met so far, so every secret must come before the first
//! packet that needs it. The capture gets both from the same place and in
//! that order by construction: secrets arrive through [`tls::KeyLog`] at
//! the moment the engine derives them, which is before the engine seals a
//! record under them, and a received packet is recorded only after the
//! engine has processed it (see `net::session`), by which time every
//! secret it needed has been logged. Secrets wait in memory until the next
//! packet, which they then precede as one block, so no packet is ever held
//! back: a KeyUpdate's new secret lands just before the first packet that
//! uses it.
//!
//! # Bounds
//!
//! Nothing waits in memory but the secrets logged since the last packet and
//! a small write buffer. The file itself stops growing at `DEFAULT_LIMIT`
//! bytes (a long-running `listen` must not fill the disk): it is then cut
//! cleanly between blocks, and `Capture::take_notice` says so once, for
//! the user to be told at that moment. A write error stops it the same way.
//! Each batch of frames (a write or a read, and its acknowledgement) is
//! written and flushed at once, under one lock, as the key log writes its
//! lines: a capture read while the session runs is whole up to its last
//! batch.
//!
//! # Why pcap-parser
//!
//! The blocks are serialised by the `pcap-parser` crate (rusticata), whose
//! `serialize` feature writes every pcapng block this needs, the
//! Decryption Secrets Block included, and whose parser the tests read the
//! file back with; the Decryption Secrets Block alone is written here, so
//! that the secrets pass only through buffers that are wiped (see
//! `secrets_block`). `pcap-file` 2, the other well-kept pcapng crate, has
//! no Decryption Secrets Block.

pub(crate) mod tcp;

use crate::clock::UnixTime;
use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use pcap_parser::pcapng::{EnhancedPacketBlock, InterfaceDescriptionBlock, SecretsType, SectionHeaderBlock};
use pcap_parser::{Linktype, OptionCode, PcapNGOption, ToVec};
use zeroize::Zeroizing;

use crate::tls;

pub(crate) use tcp::{Opener, Tap};

/// How large a capture grows before it stops: 1 GiB.
pub(crate) const DEFAULT_LIMIT: u64 = 1 << 30;

/// The link type of the one interface: raw IP (LINKTYPE_RAW), each frame
/// an IPv4 or IPv6 packet, told apart by its version nibble.
const LINKTYPE: Linktype = Linktype::RAW;

/// Timestamps count microseconds (if_tsresol 6, the pcapng default, said
/// explicitly).
const TSRESOL_MICROS: u8 = 6;

/// An open capture file. Connections share it as `Arc<Capture>`: each
/// has its own `Tap`, and the capture is also the [`tls::KeyLog`] of
/// their configuration.
#[derive(Debug)]
pub struct Capture {
    path: PathBuf,
    state: Mutex<State>,
}

struct State {
    /// `None` once the capture has stopped.
    out: Option<BufWriter<File>>,
    /// Bytes in the file so far.
    written: u64,
    /// The most the file may hold.
    limit: u64,
    /// NSS key log lines not yet in the file: the next packet is preceded
    /// by a Decryption Secrets Block holding them. Wiped when dropped.
    secrets: Zeroizing<Vec<u8>>,
    /// Why the capture stopped, if it did.
    stopped: Option<String>,
    /// Whether [`Capture::take_notice`] has told it.
    told: bool,
}

// The secrets stay out of Debug output.
impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("written", &self.written)
            .field("limit", &self.limit)
            .field("secrets_waiting", &self.secrets.len())
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl Capture {
    /// Creates (or truncates) `path` with mode 0600 on Unix, whoever can
    /// read it can decrypt the session, and writes the pcapng header.
    pub(crate) fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        Self::create_with_limit(path, DEFAULT_LIMIT)
    }

    /// As `create`, with the file stopping at `limit` bytes.
    pub fn create_with_limit(path: impl AsRef<Path>, limit: u64) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path)?;
        // An existing file keeps its mode through `open`: make it private too.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        let mut out = BufWriter::new(file);
        let header = header_blocks();
        out.write_all(&header)?;
        out.flush()?;
        let state = State {
            out: Some(out),
            written: header.len() as u64,
            limit,
            secrets: Zeroizing::new(Vec::new()),
            stopped: None,
            told: false,
        };
        Ok(Self { path, state: Mutex::new(state) })
    }

    /// The file's path, as given.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Why the capture stopped growing, if it did.
    pub(crate) fn stopped(&self) -> Option<String> {
        self.lock().stopped.clone()
    }

    /// The notice that the capture stopped growing: once, to whoever asks
    /// first after it happened.
    pub(crate) fn take_notice(&self) -> Option<String> {
        let mut state = self.lock();
        if state.told {
            return None;
        }
        let why = state.stopped.clone()?;
        state.told = true;
        Some(format!("the capture {} stopped growing: {why}", self.path.display()))
    }

    /// Writes packets (each a raw IP packet and when it was seen), after
    /// the secrets waiting, if any, and flushes the file.
    pub(crate) fn write_packets<'a>(&self, packets: impl IntoIterator<Item = (UnixTime, &'a [u8])>) {
        let mut state = self.lock();
        if state.out.is_none() {
            return;
        }
        if !state.secrets.is_empty() {
            let block = secrets_block(&state.secrets);
            if !state.append(&block) {
                return;
            }
            state.secrets.clear();
        }
        for (when, packet) in packets {
            if !state.append(&packet_block(when, packet)) {
                return;
            }
        }
        if let Some(Err(e)) = state.out.as_mut().map(BufWriter::flush) {
            state.stop(format!("cannot write it: {e}"));
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves whole blocks behind it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// Appends one whole block, or stops the capture (before it, if it
    /// would pass the limit). Returns whether the capture goes on.
    fn append(&mut self, block: &[u8]) -> bool {
        let Some(out) = self.out.as_mut() else { return false };
        if self.written + block.len() as u64 > self.limit {
            let limit = self.limit;
            self.stop(format!("it reached its limit of {limit} bytes; later packets are not in it"));
            return false;
        }
        match out.write_all(block) {
            Ok(()) => {
                self.written += block.len() as u64;
                true
            }
            Err(e) => {
                self.stop(format!("cannot write it: {e}"));
                false
            }
        }
    }

    /// Stops the capture: what is buffered is written, nothing after.
    fn stop(&mut self, why: String) {
        if let Some(mut out) = self.out.take() {
            let _ = out.flush();
        }
        self.secrets.clear();
        self.stopped.get_or_insert(why);
    }
}

impl tls::KeyLog for Capture {
    fn log(&self, label: &str, client_random: &[u8; 32], secret: &[u8]) {
        let mut state = self.lock();
        if state.out.is_none() {
            return;
        }
        // Reserve first: growing the buffer would leave a copy of the old
        // secrets in freed memory.
        let line_len = label.len() + 2 + 2 * (client_random.len() + secret.len()) + 1;
        let needed = state.secrets.len() + line_len;
        if state.secrets.capacity() < needed {
            let mut bigger = Zeroizing::new(Vec::with_capacity(needed.max(2 * state.secrets.capacity())));
            bigger.extend_from_slice(&state.secrets);
            state.secrets = bigger;
        }
        let secrets = &mut state.secrets;
        secrets.extend_from_slice(label.as_bytes());
        secrets.push(b' ');
        push_hex(secrets, client_random);
        secrets.push(b' ');
        push_hex(secrets, secret);
        secrets.push(b'\n');
    }
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0xf)]);
    }
}

/// A pcapng option with its value padded as the serialiser expects.
fn option(code: OptionCode, value: &[u8]) -> PcapNGOption<'static> {
    let mut padded = value.to_vec();
    padded.resize(value.len().next_multiple_of(4), 0);
    // Option values are short constants here.
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    PcapNGOption { code, len, value: Cow::Owned(padded) }
}

/// The Section Header Block (naming tlschat as the writer) and the
/// Interface Description Block of the one raw-IP interface.
fn header_blocks() -> Vec<u8> {
    let userappl = concat!("tlschat ", env!("CARGO_PKG_VERSION"));
    let mut shb = SectionHeaderBlock {
        block_type: 0,
        block_len1: 0,
        bom: 0,
        major_version: 1,
        minor_version: 0,
        // Unknown: the file grows as the session goes on.
        section_len: -1,
        options: vec![option(OptionCode::ShbUserAppl, userappl.as_bytes())],
        block_len2: 0,
    };
    let mut idb = InterfaceDescriptionBlock {
        block_type: 0,
        block_len1: 0,
        linktype: LINKTYPE,
        reserved: 0,
        // No limit: every byte of every packet is kept.
        snaplen: 0,
        options: vec![option(OptionCode::IfName, b"tlschat")],
        block_len2: 0,
        if_tsresol: TSRESOL_MICROS,
        if_tsoffset: 0,
    };
    let mut out = serialize(&mut shb);
    out.extend_from_slice(&serialize(&mut idb));
    out
}

/// The type of a Decryption Secrets Block (pcapng §4.7).
const DSB_TYPE: u32 = 0x0000_000a;

/// A Decryption Secrets Block holding NSS key log lines, in a buffer wiped
/// on drop.
///
/// Written here rather than through pcap-parser's serialiser (which the
/// tests check it against): that one builds the block in a growing `Vec`
/// and copies it, leaving copies of the secrets in freed memory.
fn secrets_block(lines: &[u8]) -> Zeroizing<Vec<u8>> {
    let padded = lines.len().next_multiple_of(4);
    // type, length, secrets type, secrets length, data, length again.
    let total = 4 * 4 + padded + 4;
    let mut block = Zeroizing::new(Vec::with_capacity(total));
    // Key log lines are short: the block is far below 4 GiB.
    let total32 = u32::try_from(total).unwrap_or(u32::MAX);
    block.extend_from_slice(&DSB_TYPE.to_le_bytes());
    block.extend_from_slice(&total32.to_le_bytes());
    block.extend_from_slice(&SecretsType::TlsKeyLog.0.to_le_bytes());
    block.extend_from_slice(&u32::try_from(lines.len()).unwrap_or(u32::MAX).to_le_bytes());
    block.extend_from_slice(lines);
    block.resize(4 * 4 + padded, 0);
    block.extend_from_slice(&total32.to_le_bytes());
    block
}

/// An Enhanced Packet Block on interface 0, stamped `when` in microseconds.
fn packet_block(when: UnixTime, packet: &[u8]) -> Vec<u8> {
    let micros = when.micros();
    // Frames are at most 65,535 bytes (see `tcp`).
    let len = u32::try_from(packet.len()).unwrap_or(u32::MAX);
    let mut epb = EnhancedPacketBlock {
        block_type: 0,
        block_len1: 0,
        if_id: 0,
        ts_high: (micros >> 32) as u32,
        ts_low: micros as u32,
        caplen: len,
        origlen: len,
        data: packet,
        options: Vec::new(),
        block_len2: 0,
    };
    serialize(&mut epb)
}

/// The block's bytes (little-endian, lengths and magic set by `fix`).
fn serialize(block: &mut impl ToVec) -> Vec<u8> {
    // The serialiser writes into a growing Vec, which cannot fail; an
    // empty result would only cut the capture short, never corrupt it.
    block.to_vec().unwrap_or_default()
}

#[cfg(test)]
mod tests;
