//! Ring-to-ring messages and fd passing, sendmsg/recvmsg, and the attacks on them: misuse
//! through the public API, dropped receives and `next_message`, and kept panics re-raised in the
//! mailbox (second adversarial review).

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod dropped_msg_receives;
mod dropped_next_message;
mod fd_passing;
mod msg_misuse;
mod msg_ring;
mod msg_ring_panics;
