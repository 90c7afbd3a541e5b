//! Progressive enhancement: each enhanced API takes the fastest path the kernel really offers
//! (as decided at ring creation and demoted at run time) and reports which path it took.

#[allow(unsafe_code)] // own_fd
mod accept_multi;
mod config;
mod engine;
mod fallback;
mod mailbox;
#[allow(unsafe_code)] // OpData impls, own_fd
mod msg_ring;
mod multishot;
mod provided;
mod recv_msg_multi;
#[allow(unsafe_code)] // OpData impl
mod recv_select;
mod send_zc;
mod stats;

pub use accept_multi::{AcceptListener, AcceptStream};
pub use config::{FEATURES_ENV, ProgressiveEnhancementConfig};
pub(crate) use mailbox::Mailbox;
pub use mailbox::Message;
pub use msg_ring::RingHandle;
pub use provided::ProvidedBuf;
pub use recv_msg_multi::{DATAGRAM_ROOM, Datagram, RecvFromStream};
pub(crate) use stats::Stats;
pub use stats::{FeatureStats, PathTaken};
