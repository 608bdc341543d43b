//! Key fingerprints: BLAKE3 of a SubjectPublicKeyInfo.

use std::fmt;

use crate::tls::crypto::hex;

/// BLAKE3 of a certificate's SubjectPublicKeyInfo DER: names a key, whichever
/// certificate carries it, so a re-issued certificate keeps its fingerprint.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of an Ed25519 public key: BLAKE3 of the DER
    /// SubjectPublicKeyInfo any certificate for it carries (RFC 8410 §4:
    /// `SEQUENCE { SEQUENCE { id-Ed25519 }, BIT STRING key }`). The only way
    /// a fingerprint is computed: from the key, never from the bytes a
    /// certificate happened to encode it in.
    pub fn of_ed25519(public_key: &[u8; 32]) -> Self {
        const PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
        let mut spki = [0u8; 44];
        spki[..12].copy_from_slice(&PREFIX);
        spki[12..].copy_from_slice(public_key);
        Self(*blake3::hash(&spki).as_bytes())
    }

    /// The form people compare aloud, and the one tlschat shows wherever a
    /// key is named in short (CLI, invite, status bar, panel): thirty
    /// decimal digits in six groups of five, `01234 56789 …`. As in
    /// Signal's safety numbers, each group is five bytes of the fingerprint
    /// read as a big-endian number, modulo 100 000; the six groups carry
    /// about 99.6 bits, too many to find a second key that matches them.
    pub fn short(&self) -> String {
        let groups: Vec<String> = self
            .0
            .chunks_exact(5)
            .take(6)
            .map(|chunk| {
                let n = chunk.iter().fold(0u64, |n, &b| n << 8 | u64::from(b));
                format!("{:05}", n % 100_000)
            })
            .collect();
        groups.join(" ")
    }

    /// Reads 64 hex digits, in either case, optionally separated by spaces,
    /// dashes or colons (as printed by [`Display`](fmt::Display), or copied
    /// from elsewhere).
    pub fn parse(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        let mut digits = s.chars().filter(|c| !matches!(c, ' ' | '-' | ':'));
        for byte in &mut out {
            let hi = digits.next()?.to_digit(16)?;
            let lo = digits.next()?.to_digit(16)?;
            *byte = u8::try_from(hi * 16 + lo).ok()?;
        }
        digits.next().is_none().then_some(Self(out))
    }
}

/// `digits` in groups of four joined by `sep`.
fn group(digits: &str, sep: char) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 4);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Fingerprint {
    /// Lower-case hex in space-separated groups of four.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&group(&hex(&self.0), ' '))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", hex(&self.0))
    }
}
