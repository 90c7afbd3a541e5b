//! Unix sockets: streams, datagrams, listeners, and multishot accept on Unix listeners.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod unix_accept;
mod unix_sockets;
