//! tlschat: a terminal secure messenger over a TLS 1.3 written here from primitives.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]

pub mod app;
pub mod chat;
pub mod demo;
pub mod escape;
pub mod home;
pub mod identity;
pub mod keylog;
pub mod logfile;
pub mod net;
pub mod pki;
pub mod report;
pub mod room;
pub mod tls;
pub mod trust;
pub mod tui;
pub mod ui;
