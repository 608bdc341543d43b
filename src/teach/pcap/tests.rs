//! The capture's blocks and frames, read back with pcap-parser's parser.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use pcap_parser::pcapng::{Block, DecryptionSecretsBlock, parse_block_le};
use pcap_parser::{Linktype, ToVec};

use super::tcp::Segment;
use super::*;
use crate::tls::KeyLog as _;

/// A path in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("tlschat-pcap-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What a block is, for comparing sequences of them.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Section,
    Interface,
    Secrets(String),
    Packet(Vec<u8>),
}

/// Every block of a little-endian pcapng file, in order; the file must end
/// on a block boundary.
fn blocks(bytes: &[u8]) -> Vec<Kind> {
    let mut rest = bytes;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (next, block) = parse_block_le(rest).expect("a whole pcapng block");
        out.push(match block {
            Block::SectionHeader(shb) => {
                assert_eq!((shb.major_version, shb.minor_version), (1, 0));
                Kind::Section
            }
            Block::InterfaceDescription(idb) => {
                assert_eq!(idb.linktype, Linktype::RAW);
                assert_eq!(idb.if_tsresol, 6);
                Kind::Interface
            }
            Block::DecryptionSecrets(dsb) => {
                assert_eq!(dsb.secrets_type, SecretsType::TlsKeyLog);
                let data = &dsb.data[..dsb.secrets_len as usize];
                Kind::Secrets(String::from_utf8(data.to_vec()).unwrap())
            }
            Block::EnhancedPacket(epb) => {
                assert_eq!(epb.if_id, 0);
                assert_eq!(epb.caplen, epb.origlen);
                Kind::Packet(epb.data[..epb.caplen as usize].to_vec())
            }
            other => panic!("unexpected block {other:?}"),
        });
        rest = next;
    }
    out
}

#[test]
fn the_secrets_block_is_byte_for_byte_what_pcap_parser_writes() {
    for lines in [&b""[..], b"A\n", b"AB\n", b"ABC\n", b"CLIENT_TRAFFIC_SECRET_0 00 01\n"] {
        let mut theirs = DecryptionSecretsBlock {
            block_type: 0,
            block_len1: 0,
            secrets_type: SecretsType::TlsKeyLog,
            secrets_len: lines.len() as u32,
            data: lines,
            options: Vec::new(),
            block_len2: 0,
        };
        let ours = secrets_block(lines);
        assert_eq!(&ours[..], &theirs.to_vec().unwrap()[..], "{lines:?}");
        // Type 0x0000000A, the length twice, "TLSK", the data padded to 4.
        assert_eq!(&ours[..4], &[0x0a, 0, 0, 0]);
        assert_eq!(&ours[8..12], &0x544c_534b_u32.to_le_bytes());
        assert_eq!(ours.len() % 4, 0);
        assert_eq!(&ours[4..8], &ours[ours.len() - 4..]);
    }
}

#[test]
fn secrets_logged_before_a_packet_come_before_it_in_one_block() {
    let file = TempFile::new("order");
    let capture = Capture::create(&file.0).unwrap();
    let random = [0xab; 32];
    capture.log("CLIENT_HANDSHAKE_TRAFFIC_SECRET", &random, &[1, 2]);
    capture.log("SERVER_HANDSHAKE_TRAFFIC_SECRET", &random, &[0xff]);
    let when = UnixTime::since_epoch(std::time::Duration::from_micros(0x1_2345_6789));
    capture.write_packets([(when, &b"\x45first"[..]), (when, &b"\x45second"[..])]);
    capture.log("CLIENT_TRAFFIC_SECRET_1", &random, &[3]);
    capture.write_packets([(when, &b"\x45third"[..])]);
    // No secret waiting: no empty block.
    capture.write_packets([(when, &b"\x45fourth"[..])]);

    let bytes = std::fs::read(&file.0).unwrap();
    let hex = "ab".repeat(32);
    assert_eq!(
        blocks(&bytes),
        vec![
            Kind::Section,
            Kind::Interface,
            Kind::Secrets(format!(
                "CLIENT_HANDSHAKE_TRAFFIC_SECRET {hex} 0102\nSERVER_HANDSHAKE_TRAFFIC_SECRET {hex} ff\n"
            )),
            Kind::Packet(b"\x45first".to_vec()),
            Kind::Packet(b"\x45second".to_vec()),
            Kind::Secrets(format!("CLIENT_TRAFFIC_SECRET_1 {hex} 03\n")),
            Kind::Packet(b"\x45third".to_vec()),
            Kind::Packet(b"\x45fourth".to_vec()),
        ]
    );
    // The timestamp, in microseconds, split in two 32-bit halves.
    let (_, first_packet) = {
        let mut rest = &bytes[..];
        for _ in 0..3 {
            rest = parse_block_le(rest).unwrap().0;
        }
        parse_block_le(rest).unwrap()
    };
    let Block::EnhancedPacket(epb) = first_packet else { panic!("not a packet") };
    assert_eq!((epb.ts_high, epb.ts_low), (1, 0x2345_6789));
}

#[test]
fn the_file_is_private_even_when_it_existed_before() {
    let file = TempFile::new("mode");
    std::fs::write(&file.0, b"old contents, longer than the new header would be if it were kept").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&file.0, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let capture = Capture::create(&file.0).unwrap();
    drop(capture);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&file.0).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // Truncated: only the new header is left.
    assert_eq!(blocks(&std::fs::read(&file.0).unwrap()), vec![Kind::Section, Kind::Interface]);
}

#[test]
fn at_its_limit_the_capture_stops_between_blocks_and_says_so_once() {
    let file = TempFile::new("limit");
    let header = header_blocks().len() as u64;
    let packet = [0x45u8; 100];
    let one = packet_block(UnixTime::EPOCH, &packet).len() as u64;
    // Room for two packets and a half.
    let capture = Capture::create_with_limit(&file.0, header + 2 * one + one / 2).unwrap();
    assert_eq!(capture.take_notice(), None);
    for _ in 0..5 {
        capture.write_packets([(UnixTime::EPOCH, &packet[..])]);
    }
    let notice = capture.take_notice().expect("a notice");
    assert!(notice.contains("stopped growing") && notice.contains("limit"), "{notice}");
    assert!(notice.contains(&file.0.display().to_string()), "{notice}");
    assert_eq!(capture.take_notice(), None, "told once");
    assert!(capture.stopped().is_some());
    // Secrets logged afterwards are not kept.
    capture.log("CLIENT_TRAFFIC_SECRET_0", &[0; 32], &[1]);
    assert_eq!(capture.lock().secrets.len(), 0);

    let bytes = std::fs::read(&file.0).unwrap();
    assert_eq!(bytes.len() as u64, header + 2 * one);
    assert_eq!(blocks(&bytes).len(), 4);
}

#[test]
fn debug_output_shows_no_secret() {
    let file = TempFile::new("debug");
    let capture = Capture::create(&file.0).unwrap();
    capture.log("CLIENT_TRAFFIC_SECRET_0", &[0; 32], &[0x5e, 0xc7, 0xe7]);
    let debug = format!("{capture:?}");
    assert!(!debug.contains("5ec7e7") && !debug.contains("CLIENT_TRAFFIC"), "{debug}");
}

#[test]
fn the_internet_checksum_matches_a_worked_example() {
    // An IPv4 header whose checksum field (b861) is known to be right:
    // summing it with the field in place gives zero.
    let header = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0,
        0xa8, 0x00, 0xc7,
    ];
    assert_eq!(tcp::checksum(&[&header]), 0xb861);
    let mut with = header;
    with[10..12].copy_from_slice(&[0xb8, 0x61]);
    assert_eq!(tcp::checksum(&[&with]), 0);
    // An odd length pads with a zero byte.
    assert_eq!(tcp::checksum(&[&[0x01]]), !0x0100);
}

/// The fields of a frame, checked as a receiver would check them.
#[derive(Debug)]
struct Parsed {
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    options: Vec<u8>,
    payload: Vec<u8>,
}

/// Decodes an IPv4 or IPv6 frame, asserting its lengths and checksums.
fn parse(frame: &[u8]) -> Parsed {
    let (src, dst, tcp, pseudo): (std::net::IpAddr, std::net::IpAddr, &[u8], Vec<u8>) = match frame[0] >> 4 {
        4 => {
            assert_eq!(frame[0], 0x45);
            assert_eq!(u16::from_be_bytes([frame[2], frame[3]]) as usize, frame.len());
            assert_eq!(frame[9], 6);
            assert_eq!(tcp::checksum(&[&frame[..20]]), 0, "IPv4 header checksum");
            let s: [u8; 4] = frame[12..16].try_into().unwrap();
            let d: [u8; 4] = frame[16..20].try_into().unwrap();
            let tcp = &frame[20..];
            let mut pseudo = [&s[..], &d[..]].concat();
            pseudo.extend_from_slice(&[0, 6]);
            pseudo.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
            (s.into(), d.into(), tcp, pseudo)
        }
        6 => {
            assert_eq!(u16::from_be_bytes([frame[4], frame[5]]) as usize, frame.len() - 40);
            assert_eq!(frame[6], 6);
            let s: [u8; 16] = frame[8..24].try_into().unwrap();
            let d: [u8; 16] = frame[24..40].try_into().unwrap();
            let tcp = &frame[40..];
            let mut pseudo = [&s[..], &d[..]].concat();
            pseudo.extend_from_slice(&(tcp.len() as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, 6]);
            (s.into(), d.into(), tcp, pseudo)
        }
        v => panic!("IP version {v}"),
    };
    assert_eq!(tcp::checksum(&[&pseudo, tcp]), 0, "TCP checksum");
    let offset = usize::from(tcp[12] >> 4) * 4;
    Parsed {
        src: SocketAddr::new(src, u16::from_be_bytes([tcp[0], tcp[1]])),
        dst: SocketAddr::new(dst, u16::from_be_bytes([tcp[2], tcp[3]])),
        seq: u32::from_be_bytes(tcp[4..8].try_into().unwrap()),
        ack: u32::from_be_bytes(tcp[8..12].try_into().unwrap()),
        flags: tcp[13],
        options: tcp[20..offset].to_vec(),
        payload: tcp[offset..].to_vec(),
    }
}

#[test]
fn frames_carry_true_checksums_in_ipv4_and_ipv6() {
    for (src, dst) in [
        ("127.0.0.1:50000", "127.0.0.1:8443"),
        ("10.1.2.3:1", "192.168.9.9:65535"),
        ("[::1]:50000", "[::1]:8443"),
        ("[2001:db8::1]:443", "[fe80::2]:40000"),
    ] {
        let (src, dst): (SocketAddr, SocketAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        for payload in [&b""[..], b"x", b"hello, odd length", &[0xffu8; 1001][..]] {
            let options = [2, 4, 0xff, 0xd7, 1, 3, 3, 7];
            for options in [&[][..], &options[..]] {
                let segment = Segment {
                    src,
                    dst,
                    seq: 0xfedc_ba98,
                    ack: 7,
                    flags: 0x18,
                    window: 0xffff,
                    options,
                    payload,
                };
                let frame = segment.frame(0x1234);
                let parsed = parse(&frame);
                assert_eq!((parsed.src, parsed.dst), (src, dst));
                assert_eq!((parsed.seq, parsed.ack, parsed.flags), (0xfedc_ba98, 7, 0x18));
                assert_eq!((&parsed.options[..], &parsed.payload[..]), (options, payload));
            }
        }
    }
}

/// The frames of a capture file, parsed.
fn frames(path: &std::path::Path) -> Vec<Parsed> {
    blocks(&std::fs::read(path).unwrap())
        .into_iter()
        .filter_map(|b| match b {
            Kind::Packet(p) => Some(parse(&p)),
            _ => None,
        })
        .collect()
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;
const PSH: u8 = 0x08;

#[test]
fn a_tap_writes_a_tcp_conversation_with_consistent_sequence_numbers() {
    let file = TempFile::new("tap");
    let capture = Arc::new(Capture::create(&file.0).unwrap());
    let client: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let server: SocketAddr = "127.0.0.1:8443".parse().unwrap();
    let mut tap = Tap::open(capture.clone(), client, server, Opener::Us);
    tap.sent(b"client hello");
    tap.received(&vec![7u8; 100_000]);
    tap.sent(b"");
    tap.peer_closed();
    tap.received(b"after the FIN: not recorded");
    drop(tap);

    let f = frames(&file.0);
    let flags: Vec<u8> = f.iter().map(|p| p.flags).collect();
    assert_eq!(
        flags,
        [
            SYN,
            SYN | ACK,
            ACK,
            PSH | ACK, // client hello
            ACK,
            PSH | ACK, // 65,495 bytes
            PSH | ACK, // the other 34,505
            ACK,
            FIN | ACK, // the peer's FIN
            ACK,
            FIN | ACK, // ours, when the tap is dropped
            ACK,
        ]
    );
    let (c, s) = (f[0].seq, f[1].seq);
    // The handshake: each SYN takes one sequence number; MSS and window scale offered.
    assert_eq!(f[1].ack, c.wrapping_add(1));
    assert_eq!(f[0].options, [2, 4, 0xff, 0xd7, 1, 3, 3, 7]);
    assert_eq!(f[1].options, f[0].options);
    assert_eq!((f[2].seq, f[2].ack), (c.wrapping_add(1), s.wrapping_add(1)));
    for p in &f {
        let from_client = p.src == client;
        assert_eq!(if from_client { (p.src, p.dst) } else { (p.dst, p.src) }, (client, server));
    }
    // Data: sequence numbers count bytes; the other side acknowledges them all.
    assert_eq!((f[3].seq, &f[3].payload[..]), (c.wrapping_add(1), &b"client hello"[..]));
    assert_eq!((f[4].src, f[4].ack), (server, c.wrapping_add(13)));
    assert_eq!((f[5].seq, f[5].payload.len()), (s.wrapping_add(1), 65_495));
    assert_eq!((f[6].seq, f[6].payload.len()), (s.wrapping_add(1 + 65_495), 34_505));
    assert_eq!((f[7].src, f[7].ack), (client, s.wrapping_add(100_001)));
    // FINs take one sequence number each.
    assert_eq!((f[8].src, f[8].seq), (server, s.wrapping_add(100_001)));
    assert_eq!((f[9].src, f[9].ack), (client, s.wrapping_add(100_002)));
    assert_eq!((f[10].src, f[10].seq, f[10].ack), (client, c.wrapping_add(13), s.wrapping_add(100_002)));
    assert_eq!((f[11].src, f[11].seq, f[11].ack), (server, s.wrapping_add(100_002), c.wrapping_add(14)));
    assert!(capture.stopped().is_none());
}

#[test]
fn a_server_side_tap_lets_the_peer_open_and_maps_ipv4_in_ipv6_to_ipv4() {
    let file = TempFile::new("server-tap");
    let capture = Arc::new(Capture::create(&file.0).unwrap());
    let local: SocketAddr = "[::ffff:127.0.0.1]:8443".parse().unwrap();
    let peer: SocketAddr = "[::ffff:127.0.0.1]:40000".parse().unwrap();
    let mut tap = Tap::open(capture, local, peer, Opener::Peer);
    tap.received(b"hi");
    drop(tap);
    let f = frames(&file.0);
    assert_eq!(f[0].flags, SYN);
    assert_eq!(f[0].src, "127.0.0.1:40000".parse().unwrap());
    assert_eq!(f[0].dst, "127.0.0.1:8443".parse().unwrap());
    // Dropped without the peer's FIN: ours first, then the peer's.
    let flags: Vec<(SocketAddr, u8)> = f[5..].iter().map(|p| (p.src, p.flags)).collect();
    let (l, p) = (f[0].dst, f[0].src);
    assert_eq!(flags, [(l, FIN | ACK), (p, ACK), (p, FIN | ACK), (l, ACK)]);
}
