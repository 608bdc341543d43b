//! The sans-IO TLS 1.3 engine (RFC 8446).
pub mod crypto;
