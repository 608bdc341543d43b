//! What the chat does with received application data: split it into lines
//! fit for a terminal, or recognise an HTTP request and answer it with the
//! room's status page.

use crate::tls::CipherSuite;

/// Longest line kept whole. A peer that never sends a newline gets its text
/// shown in pieces of this size rather than growing our buffer without end.
const MAX_LINE: usize = 16 * 1024;

/// Gathers received bytes into lines. TLS records carry bytes, not lines: a
/// line may arrive split across records, or several in one.
#[derive(Debug, Default)]
pub(super) struct LineBuffer {
    partial: Vec<u8>,
}

impl LineBuffer {
    /// Adds `data` and moves every line it completes onto `out`.
    pub(super) fn push(&mut self, data: &[u8], out: &mut Vec<String>) {
        let mut rest = data;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&rest[..end]);
            out.push(self.take());
            rest = &rest[end + 1..];
        }
        self.partial.extend_from_slice(rest);
        while self.partial.len() >= MAX_LINE {
            let tail = self.partial.split_off(MAX_LINE);
            out.push(self.take());
            self.partial = tail;
        }
    }

    /// The unfinished last line, if any: the peer closed without a newline.
    pub(super) fn finish(&mut self) -> Option<String> {
        (!self.partial.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> String {
        let line = self.partial.strip_suffix(b"\r").unwrap_or(&self.partial);
        let text = printable(line);
        self.partial.clear();
        text
    }
}

/// `bytes` as text safe to print on a terminal: invalid UTF-8 becomes
/// U+FFFD, and control characters (which could move the cursor, recolour
/// or retitle the terminal of whoever reads the chat) are shown escaped
/// (see [`crate::present::escape::printable`]). Tabs stay.
pub(super) fn printable(bytes: &[u8]) -> String {
    crate::present::escape::printable(&String::from_utf8_lossy(bytes)).into_owned()
}

/// Whether the first bytes a client sent look like an HTTP/1.x request line.
pub(super) fn is_http_request(data: &[u8]) -> bool {
    const METHODS: [&[u8]; 9] =
        [b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"CONNECT ", b"TRACE "];
    METHODS.iter().any(|m| data.starts_with(m))
}

/// A complete `200 OK` response carrying the room's status page: `about`
/// (what the server says about itself) and how this connection is secured.
/// A HEAD request gets the headers only (RFC 9110 §9.3.2).
pub(super) fn status_response(request: &[u8], about: &str, suite: CipherSuite) -> Vec<u8> {
    let body = format!(
        "tlschat room\n\n{about}\nThis page came to you over tlschat's own TLS 1.3: {suite}, x25519, ed25519.\n\
         Chat here with `tlschat connect` or any TLS client (openssl s_client): lines in, lines out.\n"
    );
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !request.starts_with(b"HEAD ") {
        response.extend_from_slice(body.as_bytes());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(chunks: &[&[u8]]) -> (Vec<String>, Option<String>) {
        let mut buffer = LineBuffer::default();
        let mut out = Vec::new();
        for chunk in chunks {
            buffer.push(chunk, &mut out);
        }
        (out, buffer.finish())
    }

    #[test]
    fn lines_split_across_records_and_several_in_one_record_come_out_whole() {
        let (out, rest) = lines(&[b"hel", b"lo\r\nsecond\nthi", b"rd"]);
        assert_eq!(out, ["hello", "second"]);
        assert_eq!(rest.as_deref(), Some("third"));
    }

    #[test]
    fn terminal_control_characters_from_a_peer_are_neutralised() {
        let (out, _) = lines(&[b"\x1b[2Jred\x07\tok\xff\n"]);
        assert_eq!(out, ["\\u{1b}[2Jred\\u{7}\tok\u{fffd}"]);
    }

    #[test]
    fn a_line_without_end_is_cut_into_bounded_pieces() {
        let long = vec![b'x'; MAX_LINE * 2 + 5];
        let (out, rest) = lines(&[&long]);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|l| l.len() == MAX_LINE));
        assert_eq!(rest.map(|r| r.len()), Some(5));
    }

    #[test]
    fn http_requests_are_told_apart_from_chat_lines() {
        assert!(is_http_request(b"GET / HTTP/1.1\r\n"));
        assert!(is_http_request(b"HEAD /x HTTP/1.1\r\n"));
        assert!(!is_http_request(b"GETTING there\n"));
        assert!(!is_http_request(b"hello\n"));
    }

    #[test]
    fn the_status_page_has_a_correct_length_and_head_gets_no_body() {
        let get = status_response(b"GET / HTTP/1.1\r\n", "a room", CipherSuite::TLS_AES_128_GCM_SHA256);
        let text = String::from_utf8(get).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
        assert!(body.contains("a room") && body.contains("TLS_AES_128_GCM_SHA256"));
        let head_only =
            status_response(b"HEAD / HTTP/1.1\r\n", "a room", CipherSuite::TLS_AES_128_GCM_SHA256);
        assert!(head_only.ends_with(b"\r\n\r\n"));
    }
}
