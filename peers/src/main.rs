//! safer-ring beside its peers, in the same alternating-round tables (issue 20):
//!
//! ```sh
//! cargo run --release --manifest-path peers/Cargo.toml -- nop    # NOPs: raw, safer-ring, tokio-uring
//! cargo run --release --manifest-path peers/Cargo.toml -- file   # 4 KiB page-cache reads at QD 32
//! peers nop profile "tokio-uring 32 spawned tasks" 3             # one variant alone, for callgrind
//! ```
//!
//! With no argument both tables run. A binary rather than a harness-less bench, so the
//! profiling mode's arguments pass straight through and callgrind runs the one file it names.

mod file;
mod measure;
mod nop;

fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    let ok = match which.as_str() {
        "nop" => nop::main(),
        "file" => file::main(),
        "" => nop::main() && file::main(),
        _ => {
            eprintln!("usage: peers [nop|file] [profile <variant> <n>]");
            false
        }
    };
    std::process::exit(if ok { 0 } else { 2 });
}
