//! Progressive enhancement: each enhanced API takes the fastest path the kernel really offers
//! (as decided at ring creation and demoted at run time) and reports which path it took.

mod accept_multi;
mod config;
mod fallback;
mod mailbox;
mod msg_ring;
mod recv_select;
mod send_zc;
mod stats;

pub use accept_multi::AcceptStream;
pub use config::{FEATURES_ENV, ProgressiveEnhancementConfig};
pub(crate) use mailbox::Mailbox;
pub use mailbox::Message;
pub use msg_ring::RingHandle;
pub(crate) use stats::Stats;
pub use stats::{FeatureStats, Path};
