//! Fixture of `cargo xtask self-test`, not a test of this crate (`test = false`: `cargo test`
//! never runs it). The self-test installs this one libtest binary under several names, and
//! the name picks what it does: `*crash*` dies by SIGSEGV in the middle of a line, exactly as
//! a crashed test leaves libtest's `test x ... `; `*hang*` never finishes; `*panic*` fails
//! by a panic, which the matrix must name with its message; any other name passes.

use std::io::Write;

fn invoked_as() -> String {
    let argv0 = std::env::args().next().unwrap_or_default();
    std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn r1_runs_as_named() {
    let name = invoked_as();
    assert!(!name.is_empty(), "no program name in argv[0]");
    if name.contains("crash") {
        // Straight to fd 1 (libtest captures print!), no newline: what single-threaded libtest
        // shows of a test that is still running.
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(b"test r1_runs_as_named ... ");
        let _ = out.flush();
        // std's stack-overflow handler would return from a raised SIGSEGV: restore the default
        // action (end the process, as a real segfault does) first.
        // SAFETY: signal and raise take no pointers; ending the process is the crash this
        // fixture exists to produce.
        unsafe {
            libc::signal(libc::SIGSEGV, libc::SIG_DFL);
            libc::raise(libc::SIGSEGV);
        }
        unreachable!("SIGSEGV did not end the process");
    }
    assert!(!name.contains("panic"), "fixture {name} panics as named");
    if name.contains("hang") {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}
