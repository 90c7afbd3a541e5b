//! Nothing here: the crate is its benches (`benches/nop.rs`, `benches/file_reads.rs`), safer-ring
//! beside tokio-uring, tokio and a raw io-uring loop in the same alternating-round tables (issue
//! 20). Cargo wants a library or binary target in every package.
