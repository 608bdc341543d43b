//! One connection's bytes as the TCP/IP frames a capture on the wire
//! would have shown.
//!
//! The kernel's segments are not visible to a program, so a [`Tap`] makes
//! them up, consistently enough that Wireshark's TCP analysis finds nothing
//! to flag: a three-way handshake when the tap opens (with the real
//! addresses and ports), then each write of the connection as segments of
//! at most [`mss`] bytes, with true sequence numbers in both directions,
//! each batch acknowledged by the other side at once, and FINs when the
//! connection ends. Window scaling (shift [`WINDOW_SHIFT`]) keeps the
//! advertised window far above what one batch puts in flight. IP and TCP
//! checksums are computed, so nothing is marked bad.

use crate::clock::UnixTime;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::Capture;

/// TCP flags.
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// The window scale both ends announce: a window field of 65,535 means
/// 8 MiB.
pub(crate) const WINDOW_SHIFT: u8 = 7;

/// The largest frame: what an IPv4 total length or an IPv6 payload length
/// plus its header can describe.
const MAX_PACKET: usize = 65_535;
const IPV4_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
const TCP_HEADER: usize = 20;
/// SYN options: MSS (4 bytes), a NOP, window scale (3 bytes).
const SYN_OPTIONS: usize = 8;

/// The largest segment payload between these addresses: a frame stays
/// within `MAX_PACKET`. Frames are IPv4 when both are, else IPv6.
pub(crate) fn mss(a: SocketAddr, b: SocketAddr) -> usize {
    let ip_header = if a.is_ipv4() && b.is_ipv4() { IPV4_HEADER } else { IPV6_HEADER };
    MAX_PACKET - ip_header - TCP_HEADER
}

/// Which end opened the TCP connection (sent the SYN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opener {
    /// This program (a client).
    Us,
    /// The peer (a server's connection).
    Peer,
}

/// One end of the connection, as the frames see it.
#[derive(Debug)]
struct End {
    addr: SocketAddr,
    /// The sequence number of its next byte.
    seq: u32,
    /// The IP identification of its next IPv4 packet.
    ip_id: u16,
    /// Whether it has sent its FIN.
    fin: bool,
}

/// Records one connection into a [`Capture`]: call [`sent`](Self::sent)
/// with each write, [`received`](Self::received) with each read once the
/// engine has processed it, [`peer_closed`](Self::peer_closed) at EOF.
/// Dropping it writes the FINs still missing.
#[derive(Debug)]
pub(crate) struct Tap {
    capture: Arc<Capture>,
    us: End,
    peer: End,
    mss: usize,
}

/// Whose turn a frame is: ours or the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Us,
    Peer,
}

impl Tap {
    /// Starts recording the connection between `local` and `peer` with its
    /// three-way handshake, opened by `opener`. Initial sequence numbers
    /// are random, as a kernel's are. IPv4-mapped IPv6 addresses are
    /// written as the IPv4 addresses they are.
    pub(crate) fn open(capture: Arc<Capture>, local: SocketAddr, peer: SocketAddr, opener: Opener) -> Self {
        let (local, peer) = canonical(local, peer);
        let mut random = [0u8; 12];
        crate::tls::Rng::fill(&mut crate::tls::OsRng, &mut random);
        let [a, b, c, d, e, f, g, h, i, j, k, l] = random;
        let end = |addr, seq, ip_id| End { addr, seq, ip_id, fin: false };
        let mut tap = Self {
            capture,
            us: end(local, u32::from_be_bytes([a, b, c, d]), u16::from_be_bytes([i, j])),
            peer: end(peer, u32::from_be_bytes([e, f, g, h]), u16::from_be_bytes([k, l])),
            mss: mss(local, peer),
        };
        let now = UnixTime::now();
        let (first, second) = match opener {
            Opener::Us => (Side::Us, Side::Peer),
            Opener::Peer => (Side::Peer, Side::Us),
        };
        // Each SYN takes one sequence number.
        let syn = tap.frame(first, SYN, &[]);
        let end = tap.end(first);
        end.seq = end.seq.wrapping_add(1);
        let syn_ack = tap.frame(second, SYN | ACK, &[]);
        let end = tap.end(second);
        end.seq = end.seq.wrapping_add(1);
        let ack = tap.frame(first, ACK, &[]);
        tap.capture.write_packets([(now, &syn[..]), (now, &syn_ack[..]), (now, &ack[..])]);
        tap
    }

    /// The capture this tap writes to.
    pub(crate) fn capture(&self) -> &Arc<Capture> {
        &self.capture
    }

    /// Records `bytes` written to the socket, and the peer's acknowledgement.
    pub(crate) fn sent(&mut self, bytes: &[u8]) {
        self.data(Side::Us, bytes);
    }

    /// Records `bytes` read from the socket, and our acknowledgement.
    pub(crate) fn received(&mut self, bytes: &[u8]) {
        self.data(Side::Peer, bytes);
    }

    /// Records the peer's FIN (its end of input), and our acknowledgement.
    pub(crate) fn peer_closed(&mut self) {
        self.fin(Side::Peer);
    }

    fn data(&mut self, from: Side, bytes: &[u8]) {
        if bytes.is_empty() || self.end(from).fin {
            return;
        }
        let now = UnixTime::now();
        let mut frames: Vec<Vec<u8>> = Vec::with_capacity(bytes.len().div_ceil(self.mss) + 1);
        for segment in bytes.chunks(self.mss) {
            frames.push(self.frame(from, ACK | PSH, segment));
            let end = self.end(from);
            // A segment is at most 65,495 bytes: it fits in u32.
            end.seq = end.seq.wrapping_add(segment.len() as u32);
        }
        frames.push(self.frame(from.other(), ACK, &[]));
        self.capture.write_packets(frames.iter().map(|f| (now, &f[..])));
    }

    fn fin(&mut self, from: Side) {
        if self.end(from).fin {
            return;
        }
        let now = UnixTime::now();
        let fin = self.frame(from, FIN | ACK, &[]);
        let end = self.end(from);
        end.seq = end.seq.wrapping_add(1);
        end.fin = true;
        let ack = self.frame(from.other(), ACK, &[]);
        self.capture.write_packets([(now, &fin[..]), (now, &ack[..])]);
    }

    fn end(&mut self, from: Side) -> &mut End {
        match from {
            Side::Us => &mut self.us,
            Side::Peer => &mut self.peer,
        }
    }

    /// The next frame `from` sends (its sequence number not advanced):
    /// acknowledging all the other end has sent.
    fn frame(&mut self, from: Side, flags: u8, payload: &[u8]) -> Vec<u8> {
        let (src, dst) = match from {
            Side::Us => (&mut self.us, &self.peer),
            Side::Peer => (&mut self.peer, &self.us),
        };
        let ack = if flags & ACK != 0 { dst.seq } else { 0 };
        let options = if flags & SYN != 0 { syn_options(self.mss) } else { Vec::new() };
        let segment = Segment {
            src: src.addr,
            dst: dst.addr,
            seq: src.seq,
            ack,
            flags,
            window: u16::MAX,
            options: &options,
            payload,
        };
        let frame = segment.frame(src.ip_id);
        src.ip_id = src.ip_id.wrapping_add(1);
        frame
    }
}

impl Drop for Tap {
    /// The connection is over: whichever FINs are missing, ours first.
    fn drop(&mut self) {
        self.fin(Side::Us);
        self.fin(Side::Peer);
    }
}

impl Side {
    fn other(self) -> Self {
        match self {
            Self::Us => Self::Peer,
            Self::Peer => Self::Us,
        }
    }
}

/// Both addresses in one family: an IPv6 socket's IPv4-mapped addresses
/// become plain IPv4 when both are mapped.
fn canonical(local: SocketAddr, peer: SocketAddr) -> (SocketAddr, SocketAddr) {
    let (l, p) = (local.ip().to_canonical(), peer.ip().to_canonical());
    if l.is_ipv4() == p.is_ipv4() {
        (SocketAddr::new(l, local.port()), SocketAddr::new(p, peer.port()))
    } else {
        (local, peer)
    }
}

/// The SYN's options: MSS, NOP, window scale.
fn syn_options(mss: usize) -> Vec<u8> {
    let mss = u16::try_from(mss).unwrap_or(u16::MAX).to_be_bytes();
    vec![2, 4, mss[0], mss[1], 1, 3, 3, WINDOW_SHIFT]
}

/// One TCP segment to frame.
#[derive(Debug)]
pub(crate) struct Segment<'a> {
    pub(crate) src: SocketAddr,
    pub(crate) dst: SocketAddr,
    pub(crate) seq: u32,
    pub(crate) ack: u32,
    pub(crate) flags: u8,
    pub(crate) window: u16,
    /// TCP options, a multiple of 4 bytes long.
    pub(crate) options: &'a [u8],
    pub(crate) payload: &'a [u8],
}

impl Segment<'_> {
    /// The IP packet carrying the segment, checksums computed; `ip_id` is
    /// the IPv4 identification (IPv6 has none). Both addresses must be of
    /// one family, and the packet at most 65,535 bytes.
    pub(crate) fn frame(&self, ip_id: u16) -> Vec<u8> {
        debug_assert_eq!(self.options.len() % 4, 0);
        debug_assert!(self.options.len() <= SYN_OPTIONS);
        let tcp_len = TCP_HEADER + self.options.len() + self.payload.len();
        let mut tcp = Vec::with_capacity(tcp_len);
        tcp.extend_from_slice(&self.src.port().to_be_bytes());
        tcp.extend_from_slice(&self.dst.port().to_be_bytes());
        tcp.extend_from_slice(&self.seq.to_be_bytes());
        tcp.extend_from_slice(&self.ack.to_be_bytes());
        // Data offset in 32-bit words, in the high nibble.
        tcp.push((((TCP_HEADER + self.options.len()) / 4) as u8) << 4);
        tcp.push(self.flags);
        tcp.extend_from_slice(&self.window.to_be_bytes());
        tcp.extend_from_slice(&[0, 0]); // checksum, below
        tcp.extend_from_slice(&[0, 0]); // urgent pointer
        tcp.extend_from_slice(self.options);
        tcp.extend_from_slice(self.payload);

        // RFC 9293 §3.1: the checksum covers a pseudo-header of the addresses,
        // the protocol and the TCP length.
        let mut sum = Checksum::default();
        let proto_len = match (self.src.ip(), self.dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                sum.add(&s.octets());
                sum.add(&d.octets());
                [0, 6, (tcp_len >> 8) as u8, tcp_len as u8]
            }
            (s, d) => {
                sum.add(&v6(s));
                sum.add(&v6(d));
                // 32-bit upper-layer length, then three zero bytes and next header (RFC 8200 §8.1).
                sum.add(&(tcp_len as u32).to_be_bytes());
                [0, 0, 0, 6]
            }
        };
        sum.add(&proto_len);
        sum.add(&tcp);
        tcp[16..18].copy_from_slice(&sum.finish().to_be_bytes());

        let mut packet;
        match (self.src.ip(), self.dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let total = (IPV4_HEADER + tcp_len) as u16;
                packet = Vec::with_capacity(IPV4_HEADER + tcp_len);
                packet.extend_from_slice(&[0x45, 0]);
                packet.extend_from_slice(&total.to_be_bytes());
                packet.extend_from_slice(&ip_id.to_be_bytes());
                packet.extend_from_slice(&[0x40, 0]); // don't fragment
                packet.extend_from_slice(&[64, 6]); // TTL, TCP
                packet.extend_from_slice(&[0, 0]); // checksum, below
                packet.extend_from_slice(&s.octets());
                packet.extend_from_slice(&d.octets());
                let mut sum = Checksum::default();
                sum.add(&packet);
                let checksum = sum.finish().to_be_bytes();
                packet[10..12].copy_from_slice(&checksum);
            }
            (s, d) => {
                packet = Vec::with_capacity(IPV6_HEADER + tcp_len);
                packet.extend_from_slice(&[0x60, 0, 0, 0]);
                packet.extend_from_slice(&(tcp_len as u16).to_be_bytes());
                packet.extend_from_slice(&[6, 64]); // TCP, hop limit
                packet.extend_from_slice(&v6(s));
                packet.extend_from_slice(&v6(d));
            }
        }
        packet.extend_from_slice(&tcp);
        packet
    }
}

/// An address as IPv6 octets (IPv4 mapped, for a mixed pair).
fn v6(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The Internet checksum of `parts` in order (all but the last of even length).
#[cfg(test)]
pub(super) fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum = Checksum::default();
    for part in parts {
        sum.add(part);
    }
    sum.finish()
}

/// The Internet checksum (RFC 1071): the ones' complement of the ones'
/// complement sum of 16-bit words. Parts are added in order; each part but
/// the last must have an even length.
#[derive(Debug, Default)]
struct Checksum(u64);

impl Checksum {
    fn add(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(2);
        for word in &mut words {
            self.0 += u64::from(u16::from_be_bytes([word[0], word[1]]));
        }
        if let [last] = words.remainder() {
            self.0 += u64::from(*last) << 8;
        }
    }

    fn finish(&self) -> u16 {
        let mut sum = self.0;
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }
}
