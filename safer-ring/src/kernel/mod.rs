//! The bottom layer: what the kernel interface fixes, for every layer above to share. It
//! imports nothing of the crate except `error`.
//!
//! - `sys`: checked wrappers over the libc calls (eventfd, pipes, sockets, fcntl, timerfd,
//!   uname, affinity);
//! - `sockaddr`: `RawAddr`, socket addresses at a stable heap address, in their IP and Unix
//!   forms, and the calls that take one (bind, connect, getsockname);
//! - `msghdr`: the `msghdr` of sendmsg/recvmsg with its buffers, SCM_RIGHTS, multishot recvmsg;
//! - `probe`: the calls feature detection makes on throwaway rings;
//! - `fault`: injected syscall failures for tests (`safer_ring::fault`);
//! - `user_data`: every value a completion's `user_data` can carry.
//!
//! The op table (`backend/op.rs`) is still above: its rows name fault classes and features.

pub(crate) mod cqe_flags;
pub(crate) mod fault;
#[allow(unsafe_code)]
pub(crate) mod msghdr;
#[allow(unsafe_code)]
pub(crate) mod probe;
#[allow(unsafe_code)]
pub(crate) mod sockaddr;
#[allow(unsafe_code)]
pub(crate) mod sys;
pub(crate) mod user_data;
