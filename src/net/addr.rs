//! Server addresses as people type them: `HOST:PORT`, `[IPv6]:PORT`, and
//! for `listen` a bare `PORT`.
//!
//! One parser for every place that reads an address: `connect`'s target,
//! `listen`'s address, `trust forget`'s room and the pins file (through
//! [`crate::store::pins::parse_room`]). It only splits host from port; whether
//! the host is a usable name is for the caller to ask
//! ([`HostPort::server_name`]), since `connect --server-name` lets a host
//! be any name the resolver knows.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use crate::tls::cert::{CertError, ServerName};

/// A host and a port: `HOST:PORT`, or `[IPv6]:PORT` with the brackets
/// removed from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostPort {
    host: String,
    port: u16,
}

/// Text that is not `HOST:PORT`: shows the text and how it is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadHostPort {
    /// Not the form: no port, no host, a bare IPv6 address.
    #[error("{0:?} is not HOST:PORT (IPv6 addresses go in brackets: [::1]:8443)")]
    Form(String),
    /// The form, with a port number past 65535.
    #[error("{text:?}: port {port} is out of range (a port is a number from 0 to 65535)")]
    PortOutOfRange {
        /// The text as typed.
        text: String,
        /// The port's digits.
        port: String,
    },
}

/// The port in `digits`: a number that does not fit in 16 bits is out of
/// range; anything else that is not a number is not a port at all.
fn port(text: &str, digits: &str) -> Result<u16, BadHostPort> {
    digits.parse().map_err(|_| {
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            BadHostPort::PortOutOfRange { text: text.to_owned(), port: digits.to_owned() }
        } else {
            BadHostPort::Form(text.to_owned())
        }
    })
}

impl HostPort {
    /// Reads `HOST:PORT` or `[IPv6]:PORT`. The host must not be empty, and
    /// a host with a colon must be in brackets: `::1:8443` is refused
    /// rather than guessed at.
    pub(crate) fn parse(text: &str) -> Result<Self, BadHostPort> {
        let bad = || BadHostPort::Form(text.to_owned());
        let (host, port_text) = text.rsplit_once(':').ok_or_else(bad)?;
        let host = match host.strip_prefix('[') {
            Some(inner) => inner.strip_suffix(']').ok_or_else(bad)?,
            None if host.contains(':') => return Err(bad()),
            None => host,
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Self { host: host.to_owned(), port: port(text, port_text)? })
    }

    /// Reads where to listen: `PORT` (every IPv4 interface, `0.0.0.0`),
    /// else as [`HostPort::parse`].
    pub(crate) fn parse_listen(text: &str) -> Result<Self, BadHostPort> {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Self { host: "0.0.0.0".to_owned(), port: port(text, text)? });
        }
        Self::parse(text)
    }

    /// The host, without brackets, as typed.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The host as a name a certificate can be for (see [`ServerName::parse`]).
    pub(crate) fn server_name(&self) -> Result<ServerName, CertError> {
        ServerName::parse(&self.host)
    }

    /// The socket address, when the host is an IP address (an IPv6 one may
    /// carry a `%scope`, which [`ServerName`] has no room for).
    pub(crate) fn socket_addr(&self) -> Option<SocketAddr> {
        self.to_string().parse().ok()
    }
}

impl FromStr for HostPort {
    type Err = BadHostPort;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// `HOST:PORT`, the host in brackets if it has a colon (IPv6).
impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv6Addr};

    use super::*;

    fn parsed(text: &str) -> (String, u16) {
        let addr = HostPort::parse(text).unwrap();
        (addr.host().to_owned(), addr.port())
    }

    #[test]
    fn names_ipv4_and_bracketed_ipv6_hosts_are_split_from_the_port() {
        assert_eq!(parsed("localhost:8443"), ("localhost".into(), 8443));
        assert_eq!(parsed("Chat.Example.ORG:1"), ("Chat.Example.ORG".into(), 1));
        assert_eq!(parsed("127.0.0.1:0"), ("127.0.0.1".into(), 0));
        assert_eq!(parsed("[::1]:8443"), ("::1".into(), 8443));
        assert_eq!(parsed("[fe80::1%2]:80"), ("fe80::1%2".into(), 80));
        assert_eq!(parsed("host:65535"), ("host".into(), 65535));
    }

    #[test]
    fn text_that_is_not_host_colon_port_is_refused_with_how_to_write_it() {
        for bad in ["", "localhost", "8443", ":8443", "[]:1", "host:", "host:port", "host:-1"] {
            assert_eq!(HostPort::parse(bad), Err(BadHostPort::Form(bad.to_owned())), "{bad}");
        }
        // A colon in the host needs brackets: "::1:8443" could be either.
        for bad in ["::1:8443", "[::1:8443", "::1]:8443", "[::1]x:1"] {
            assert!(HostPort::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            BadHostPort::Form("::1:8443".into()).to_string(),
            r#""::1:8443" is not HOST:PORT (IPv6 addresses go in brackets: [::1]:8443)"#
        );
    }

    #[test]
    fn a_port_past_65535_is_said_to_be_out_of_range() {
        for (text, digits) in
            [("host:65536", "65536"), ("[::1]:99999999999999999999", "99999999999999999999")]
        {
            let e = HostPort::parse(text).unwrap_err();
            assert_eq!(e, BadHostPort::PortOutOfRange { text: text.into(), port: digits.into() });
            assert!(e.to_string().contains(&format!("port {digits} is out of range")), "{e}");
        }
        let e = HostPort::parse_listen("99999").unwrap_err();
        assert!(
            e.to_string().contains("port 99999 is out of range (a port is a number from 0 to 65535)"),
            "{e}"
        );
    }

    #[test]
    fn a_bare_port_listens_on_every_interface() {
        let any = HostPort::parse_listen("8443").unwrap();
        assert_eq!((any.host(), any.port()), ("0.0.0.0", 8443));
        assert_eq!(any.socket_addr(), Some(SocketAddr::from(([0, 0, 0, 0], 8443))));
        assert_eq!(HostPort::parse_listen("[::]:0").unwrap().host(), "::");
        assert!(HostPort::parse_listen("99999").is_err());
        // Only `listen` takes a bare port.
        assert!(HostPort::parse("8443").is_err());
    }

    #[test]
    fn it_prints_as_it_would_be_typed() {
        for text in ["localhost:8443", "[::1]:8443", "10.0.0.1:1", "[fe80::1%2]:80"] {
            assert_eq!(HostPort::parse(text).unwrap().to_string(), text);
        }
        assert_eq!("text:1".parse::<HostPort>().unwrap().to_string(), "text:1");
    }

    #[test]
    fn ip_hosts_have_a_socket_address_and_names_a_server_name() {
        let v6 = HostPort::parse("[::1]:9").unwrap();
        assert_eq!(v6.socket_addr(), Some(SocketAddr::from((Ipv6Addr::LOCALHOST, 9))));
        assert_eq!(v6.server_name().unwrap(), ServerName::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        let scoped = HostPort::parse("[fe80::1%2]:9").unwrap();
        assert!(scoped.socket_addr().is_some() && scoped.server_name().is_err());
        let name = HostPort::parse("LocalHost.:9").unwrap();
        assert_eq!(name.socket_addr(), None);
        assert_eq!(name.server_name().unwrap(), ServerName::Dns("localhost".into()));
        assert!(HostPort::parse("a b:9").unwrap().server_name().is_err());
    }
}
