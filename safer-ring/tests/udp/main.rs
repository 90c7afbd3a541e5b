//! UDP: datagrams, multishot receive and GSO/GRO, and attacks on multishot receive.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod udp;
mod udp_multi;
mod udp_multi_edges;
