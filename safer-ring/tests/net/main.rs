//! TCP sockets and pipes: ops, listeners made through the ring, readiness, and attacks on
//! `accept_up_to` / `accept_multiple` and on listeners of the wrong kind.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod accept_backlog;
mod listen_ops;
mod net_ops;
mod readiness;
mod wrong_listener_kinds;
