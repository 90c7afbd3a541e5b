//! The bottom layer: what the kernel interface fixes, for every layer above to share. It
//! imports nothing of the crate. Today it holds the `user_data` layout; the op table, the
//! syscalls and the probe are to join it (docs/DESIGN.md, "Layers").

pub(crate) mod user_data;
