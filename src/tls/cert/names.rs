//! Server names (RFC 6125 §6.4): the name a client connects to, and whether
//! a certificate's subjectAltNames cover it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::CertError;

/// The name a client connects to, as a server certificate must match it
/// (RFC 6125 §6.4): a DNS host name or an IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerName {
    /// A DNS name, lower-cased, without a trailing dot.
    Dns(String),
    /// An IP address, matched only against IP address SANs.
    Ip(IpAddr),
}

impl ServerName {
    /// Reads a host name or IP address as typed by a user: IPv6 may be in
    /// brackets (`[::1]`), DNS names are lower-cased and lose one trailing
    /// dot. Internationalized names must be given in their `xn--` form.
    pub fn parse(s: &str) -> Result<Self, CertError> {
        let bad = || CertError::BadName { name: s.to_owned() };
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or_else(bad)?;
            return inner.parse::<Ipv6Addr>().map(|ip| Self::Ip(IpAddr::V6(ip))).map_err(|_| bad());
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self::Ip(ip));
        }
        let name = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
        if is_dns_name(&name) { Ok(Self::Dns(name)) } else { Err(bad()) }
    }
}

impl std::str::FromStr for ServerName {
    type Err = CertError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(name) => f.write_str(name),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// A usable reference host name: 1–253 octets of non-empty labels of at most
/// 63 letters, digits, `-` or `_` (the underscore appears in real service
/// names, so it is allowed; `*` is not, wildcards belong in certificates).
pub(crate) fn is_dns_name(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Whether the DNS SAN `pattern` covers `name` (already lower-case).
///
/// RFC 6125 §6.4.3 as browsers apply it: a wildcard is allowed only as the
/// whole leftmost label, stands for exactly one non-empty label, and needs at
/// least two labels after it, so `*.com` matches nothing.
pub(super) fn dns_name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            if suffix.contains('*') || !suffix.contains('.') {
                return false;
            }
            match name.split_once('.') {
                Some((first, rest)) => !first.is_empty() && rest.eq_ignore_ascii_case(suffix),
                None => false,
            }
        }
        None => !pattern.contains('*') && pattern.eq_ignore_ascii_case(name),
    }
}

/// The address in an iPAddress SAN (RFC 5280 §4.2.1.6: 4 or 16 octets).
pub(super) fn san_ip(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Some(IpAddr::V4(Ipv4Addr::from(v4)))
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        Some(IpAddr::V6(Ipv6Addr::from(v6)))
    } else {
        None
    }
}
