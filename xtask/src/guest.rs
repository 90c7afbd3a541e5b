//! Runs the test binaries natively or as the only userspace of a QEMU guest, and reads results.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Expect;
use crate::build::TestBin;

/// Per-guest limit; a hung guest is killed and reported.
const GUEST_TIMEOUT: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Default)]
pub struct Outcome {
    pub kernel: String,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub failed_bins: Vec<String>,
    /// Each failed test as `binary::test: panicked at file:line:col: message`: its first panic
    /// (or, without one, just its name).
    pub failed_tests: Vec<String>,
    pub notes: Vec<String>,
    pub complete: bool,
    /// The failed test whose captured output libtest is printing now.
    section: Option<Failure>,
}

/// A failed test's captured output ("---- name stdout ----"), while it is being read.
#[derive(Debug)]
struct Failure {
    test: String,
    /// Where it panicked, once seen; the message is on the line after.
    at: Option<String>,
    reported: bool,
}

impl Outcome {
    pub fn error(e: String) -> Outcome {
        Outcome {
            kernel: "?".into(),
            notes: vec![e],
            ..Outcome::default()
        }
    }

    pub fn ok(&self) -> bool {
        self.complete && self.failed == 0 && self.failed_bins.is_empty() && self.passed > 0
    }

    pub fn verdict(&self) -> &'static str {
        if self.ok() { "PASS" } else { "FAIL" }
    }

    /// Reads one line of binary `bin`'s output: a libtest summary, a failed test's captured
    /// output, or a `SKIP: ` line (which the tests' skip helper starts on a line of its own).
    fn read_output(&mut self, bin: &str, line: &str) {
        if line.contains("test result: ") {
            self.end_failure(bin);
            self.count(line);
        } else if line.starts_with("SKIP: ") {
            self.skipped += 1;
        } else if let Some(test) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            self.end_failure(bin);
            self.section = Some(Failure {
                test: test.to_string(),
                at: None,
                reported: false,
            });
        } else if line.starts_with("failures:") {
            self.end_failure(bin);
        } else if let Some(f) = self.section.as_mut().filter(|f| !f.reported) {
            let first = match (&f.at, line.split_once("panicked at ")) {
                (Some(at), _) if !line.trim().is_empty() => Some(format!("{at}: {}", line.trim())),
                (None, Some((_, rest))) => match rest.trim().strip_suffix(':') {
                    // Since Rust 1.73 the message follows on the next line.
                    Some(at) => {
                        f.at = Some(at.to_string());
                        None
                    }
                    None => Some(rest.trim().to_string()),
                },
                _ => None,
            };
            if let Some(first) = first {
                let mut first: String = first.chars().take(300).collect();
                first.insert_str(0, "panicked at ");
                self.failed_tests
                    .push(format!("{bin}::{}: {first}", f.test));
                f.reported = true;
            }
        }
    }

    /// Ends a failed test's output; one that showed no panic is still named.
    fn end_failure(&mut self, bin: &str) {
        if let Some(f) = self.section.take()
            && !f.reported
        {
            self.failed_tests.push(format!("{bin}::{}", f.test));
        }
    }

    /// Notes the binaries that failed (the tests are in `failed_tests`).
    fn note_failures(&mut self) {
        if !self.failed_bins.is_empty() {
            self.notes
                .push(format!("failed: {}", self.failed_bins.join(", ")));
        }
    }

    /// Adds the counts of a libtest summary line ("test result: ok. 3 passed; 0 failed; ...").
    fn count(&mut self, line: &str) {
        let Some(rest) = line.split("test result: ").nth(1) else {
            return;
        };
        let num = |key: &str| {
            rest.split(';')
                .find_map(|p| {
                    p.trim()
                        .trim_start_matches("ok. ")
                        .trim_start_matches("FAILED. ")
                        .strip_suffix(key)
                })
                .and_then(|n| n.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        self.passed += num(" passed");
        self.failed += num(" failed");
    }
}

fn out_dir() -> PathBuf {
    let p = PathBuf::from("target/kernel-matrix");
    let _ = std::fs::create_dir_all(&p);
    p
}

/// The binaries on the host kernel, natively. A binary fails the row by its exit status (a
/// crash included), whatever it printed.
pub fn run_host(bins: &[TestBin], expect: Expect, args: &[String]) -> Result<Outcome, String> {
    let mut o = Outcome {
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        complete: true,
        ..Outcome::default()
    };
    let mut log = String::new();
    for b in bins {
        let mut cmd = Command::new(&b.path);
        cmd.args(args)
            .env("SAFER_RING_MATRIX_EXPECT", expect.name());
        if expect == Expect::IoUring {
            cmd.env("SAFER_RING_REQUIRE_IO_URING", "1");
        }
        let out = cmd
            .output()
            .map_err(|e| format!("running {}: {e}", b.path.display()))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        for l in text.lines() {
            o.read_output(&b.name, l);
        }
        o.end_failure(&b.name);
        if !out.status.success() {
            o.failed_bins.push(format!("{} ({})", b.name, out.status));
        }
        log += &text;
    }
    let _ = std::fs::write(out_dir().join("host.log"), &log);
    o.note_failures();
    Ok(o)
}

fn sh(cmd: &str, what: &str) -> Result<(), String> {
    let st = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .status()
        .map_err(|e| format!("{what}: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("{what} failed"))
    }
}

/// An uncompressed newc initramfs: /init plus stripped test binaries under /tests.
fn initramfs(name: &str, init: &Path, bins: &[TestBin]) -> Result<PathBuf, String> {
    let root = out_dir().join(format!("{name}.root"));
    let _ = std::fs::remove_dir_all(&root);
    for d in ["tests", "dev", "proc", "sys", "tmp"] {
        std::fs::create_dir_all(root.join(d)).map_err(|e| e.to_string())?;
    }
    std::fs::copy(init, root.join("init")).map_err(|e| format!("copying init: {e}"))?;
    for b in bins {
        let dst = root.join("tests").join(&b.name);
        let st = Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(&dst)
            .arg(&b.path)
            .status();
        if !st.is_ok_and(|s| s.success()) {
            std::fs::copy(&b.path, &dst).map_err(|e| e.to_string())?;
        }
    }
    let img = out_dir().join(format!("{name}.cpio"));
    let abs = std::fs::canonicalize(out_dir())
        .map_err(|e| e.to_string())?
        .join(format!("{name}.cpio"));
    sh(
        &format!(
            "cd '{}' && find . -print | cpio -o -H newc --quiet > '{}'",
            root.display(),
            abs.display()
        ),
        "cpio",
    )?;
    let _ = std::fs::remove_dir_all(&root);
    Ok(img)
}

fn token() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{:x}{:x}",
        t.as_nanos() as u64 ^ 0x9e37_79b9_7f4a_7c15,
        std::process::id()
    )
}

/// One QEMU guest: a kernel, its PID 1, and the kernel command line of a matrix row.
pub struct Guest<'a> {
    /// The row's name, which also names the log file.
    pub label: &'a str,
    pub kernel: &'a Path,
    pub init: &'a Path,
    pub cmdline: &'a str,
}

/// One boot of the guest; see [`run_qemu`].
fn boot_once(g: &Guest, bins: &[TestBin], args: &[String]) -> Result<Outcome, String> {
    let label = g.label.replace(['=', '.', '/'], "_");
    let img = initramfs(&label, g.init, bins)?;
    let tok = token();
    let append = format!(
        "console=ttyS0 panic=-1 oops=panic quiet saferring.token={tok} saferring.args={} {}",
        args.join(","),
        g.cmdline
    );
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            "tcg,thread=multi",
            "-cpu",
            "max",
            "-m",
            "6144",
            "-smp",
            "2",
        ])
        .arg("-kernel")
        .arg(g.kernel)
        .arg("-initrd")
        .arg(&img)
        .args(["-append", &append])
        .args([
            "-display",
            "none",
            "-serial",
            "stdio",
            "-no-reboot",
            "-nodefaults",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("starting qemu-system-x86_64 (apt-get install qemu-system-x86): {e}")
        })?;
    let stdout = child.stdout.take().ok_or("no qemu stdout")?;
    let log_path = out_dir().join(format!("{label}.log"));
    // Stream the console to the log as it arrives, so a hung guest can be inspected live.
    let mut live =
        std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let reader = std::thread::spawn(move || {
        use std::io::Write;
        let mut all = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = writeln!(live, "{line}");
            all.push(line);
        }
        all
    });
    let start = Instant::now();
    let mut timed_out = false;
    loop {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            break;
        }
        if start.elapsed() > GUEST_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let lines = reader.join().map_err(|_| "reading qemu output panicked")?;
    let _ = std::fs::remove_file(&img);

    let names: Vec<&str> = bins.iter().map(|b| b.name.as_str()).collect();
    let (mut o, current) = read_console(&lines, &tok, &names);
    if timed_out {
        o.notes.push(format!(
            "guest timed out after {GUEST_TIMEOUT:?} in {}",
            current.as_deref().unwrap_or("boot")
        ));
    } else if !o.complete {
        o.notes.push(format!(
            "guest stopped before finishing (in {})",
            current.as_deref().unwrap_or("boot")
        ));
    }
    o.note_failures();
    if !o.ok() {
        o.notes.push(format!("log: {}", log_path.display()));
    }
    Ok(o)
}

/// The markers init prints, each after a newline and tagged with the boot's token.
const MARKERS: [&str; 4] = ["KERNEL", "START", "RESULT", "DONE"];

/// Splits a console line at init's marker, wherever it is: a binary that died mid-line (a
/// crashed test's unfinished `test x ... `) leaves its text in front of the next marker.
/// Returns the text before it and the marker's kind and payload.
fn split_marker<'l>(line: &'l str, tok: &str) -> (&'l str, Option<(&'static str, &'l str)>) {
    let found = MARKERS
        .iter()
        .filter_map(|&kind| {
            let tag = format!("SAFER-RING-{kind} {tok}");
            line.find(&tag).map(|at| (at, kind, at + tag.len()))
        })
        .min_by_key(|&(at, ..)| at);
    match found {
        Some((at, kind, rest)) => (&line[..at], Some((kind, line[rest..].trim()))),
        None => (line, None),
    }
}

/// Reads a guest's console into an outcome for the binaries `bins`, and the binary that was
/// running last (for a guest that stopped). Every one of `bins` must report `exit=0`: a
/// non-zero exit (a crash: 128 + signal) or no result at all fails the row.
pub fn read_console(lines: &[String], tok: &str, bins: &[&str]) -> (Outcome, Option<String>) {
    let mut o = Outcome {
        kernel: "?".into(),
        ..Outcome::default()
    };
    let mut current: Option<String> = None;
    let mut reported: Vec<String> = Vec::new();
    for l in lines {
        let l = l.trim_end_matches('\r');
        let (text, marker) = split_marker(l, tok);
        o.read_output(current.as_deref().unwrap_or("?"), text);
        match marker {
            Some(("KERNEL", rest)) => o.kernel = rest.to_string(),
            Some(("START", name)) => current = Some(name.to_string()),
            Some(("RESULT", rest)) => {
                o.end_failure(current.as_deref().unwrap_or("?"));
                let (name, exit) = rest.rsplit_once(" exit=").unwrap_or((rest, "?"));
                if exit != "0" {
                    o.failed_bins.push(format!("{name} exit={exit}"));
                }
                reported.push(name.to_string());
                current = None;
            }
            Some(("DONE", _)) => o.complete = true,
            _ => {}
        }
        for bad in ["Oops", "BUG:", "Kernel panic", "general protection fault"] {
            if l.contains(bad) {
                o.notes.push(format!("kernel: {}", l.trim()));
                o.failed_bins.push(format!("kernel {bad}"));
            }
        }
        if l.contains("WARNING:") && l.contains("CPU:") {
            o.notes.push(format!("kernel warning: {}", l.trim()));
        }
    }
    // In the guest's order (by name), so the first is where it stopped.
    let mut silent: Vec<&str> = bins
        .iter()
        .copied()
        .filter(|b| !reported.iter().any(|r| r == b))
        .collect();
    silent.sort_unstable();
    if let Some(first) = silent.first() {
        let more = match silent.len() {
            1 => String::new(),
            n => format!(" and {} more", n - 1),
        };
        o.failed_bins.push(format!("no result from {first}{more}"));
    }
    (o, current)
}

/// Boots the guest with the binaries as its only userspace and collects the results. A guest
/// that dies before init reports in (a boot-time failure under TCG, nothing of ours ran) is
/// booted again, up to twice, and the retry is noted.
pub fn run_qemu(g: &Guest, bins: &[TestBin], args: &[String]) -> Result<Outcome, String> {
    let mut notes = Vec::new();
    for attempt in 1..=3 {
        let mut o = boot_once(g, bins, args)?;
        if o.kernel != "?" || attempt == 3 {
            notes.append(&mut o.notes);
            o.notes = notes;
            return Ok(o);
        }
        notes.push(format!(
            "boot {attempt} failed before init ran ({}); retried",
            o.notes.first().cloned().unwrap_or_default()
        ));
    }
    unreachable!()
}

#[cfg(test)]
mod tests {
    use super::read_console;

    const TOK: &str = "t0k";

    fn console(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    /// A binary's normal output: one passing test.
    fn passing(name: &str) -> String {
        format!(
            "\nSAFER-RING-START t0k {name}\nrunning 1 test\ntest r1 ... ok\n\n\
             test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n\
             \nSAFER-RING-RESULT t0k {name} exit=0\n"
        )
    }

    const BOOT: &str = "[    0.1] booting\n\nSAFER-RING-KERNEL t0k 6.12.0 io_uring_disabled=0\n";
    const DONE: &str = "\nSAFER-RING-DONE t0k\n";

    #[test]
    fn clean_run_passes() {
        let text = format!("{BOOT}{}{}{DONE}", passing("a"), passing("b"));
        let (o, _) = read_console(&console(&text), TOK, &["a", "b"]);
        assert!(o.ok(), "{o:?}");
        assert_eq!((o.passed, o.failed, o.skipped), (2, 0, 0));
        assert_eq!(o.kernel, "6.12.0 io_uring_disabled=0");
    }

    #[test]
    fn crash_mid_line_fails_the_row_whether_or_not_init_broke_the_line() {
        // The old init printed the marker right after the crashed test's unfinished line.
        for sep in ["", "\n"] {
            let text = format!(
                "{BOOT}{}\nSAFER-RING-START t0k b\nrunning 1 test\ntest r1_crash ... \
                 {sep}SAFER-RING-RESULT t0k b exit=139\n{}{DONE}",
                passing("a"),
                passing("c")
            );
            let (o, _) = read_console(&console(&text), TOK, &["a", "b", "c"]);
            assert!(!o.ok(), "{o:?}");
            assert_eq!(o.failed_bins, ["b exit=139"]);
            assert_eq!(o.passed, 2, "the binaries around the crash still count");
        }
    }

    #[test]
    fn a_binary_without_a_result_fails_the_row() {
        // Its marker lost (e.g. garbled on the console), yet the guest finished.
        let text = format!(
            "{BOOT}{}\nSAFER-RING-START t0k b\ntest r1 ... ok\n{DONE}",
            passing("a")
        );
        let (o, _) = read_console(&console(&text), TOK, &["a", "b"]);
        assert!(o.complete && !o.ok(), "{o:?}");
        assert_eq!(o.failed_bins, ["no result from b"]);
    }

    #[test]
    fn a_guest_that_stops_early_fails_and_names_where() {
        let text = format!(
            "{BOOT}{}\nSAFER-RING-START t0k b\ntest r1 ... ",
            passing("a")
        );
        let (o, current) = read_console(&console(&text), TOK, &["a", "b", "c", "d"]);
        assert!(!o.complete && !o.ok(), "{o:?}");
        assert_eq!(o.failed_bins, ["no result from b and 2 more"]);
        assert_eq!(current.as_deref(), Some("b"));
    }

    #[test]
    fn markers_need_the_boot_token() {
        // A test printing marker-like text (another boot's token) proves nothing.
        let text = format!(
            "{BOOT}\nSAFER-RING-START t0k a\nSAFER-RING-RESULT other a exit=0\n\
             SAFER-RING-DONE other\n"
        );
        let (o, _) = read_console(&console(&text), TOK, &["a"]);
        assert!(!o.complete && !o.ok(), "{o:?}");
        assert_eq!(o.failed_bins, ["no result from a"]);
    }

    #[test]
    fn skips_count_on_lines_of_their_own() {
        // The skip helper starts its line with a newline, even after libtest's "test x ... ".
        let text = format!(
            "{BOOT}\nSAFER-RING-START t0k a\ntest r1 ... \nSKIP: no MSG_RING\nok\n\
             SKIP: io_uring backend unavailable\n\
             test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n\
             \nSAFER-RING-RESULT t0k a exit=0\n{DONE}"
        );
        let (o, _) = read_console(&console(&text), TOK, &["a"]);
        assert!(o.ok(), "{o:?}");
        assert_eq!((o.passed, o.skipped), (2, 2));
    }

    #[test]
    fn failed_tests_and_kernel_oopses_fail_the_row() {
        let text = format!(
            "{BOOT}\nSAFER-RING-START t0k a\n\
             test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n\
             \nSAFER-RING-RESULT t0k a exit=101\n{}[  9.0] BUG: kernel NULL pointer\n{DONE}",
            passing("b")
        );
        let (o, _) = read_console(&console(&text), TOK, &["a", "b"]);
        assert!(!o.ok());
        assert_eq!((o.passed, o.failed), (4, 1));
        assert_eq!(o.failed_bins, ["a exit=101", "kernel BUG:"]);
    }

    #[test]
    fn failed_tests_are_named_with_their_first_panic() {
        let text = format!(
            "{BOOT}\nSAFER-RING-START t0k attack_drop_timeouts\nrunning 2 tests\n\
             test races ... FAILED\ntest quiet ... FAILED\n\nfailures:\n\n\
             ---- races stdout ----\nio_uring: 1000 receives, 0 timed out\n\n\
             thread 'races' (77) panicked at tests/x.rs:58:9:\nio_uring: no deadline raced\n\
             thread 'races' (77) panicked at tests/x.rs:60:1:\nsecond\n\
             note: run with `RUST_BACKTRACE=1`\n\n---- quiet stdout ----\nError: 5\n\n\
             failures:\n    races\n    quiet\n\n\
             test result: FAILED. 0 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out\n\
             \nSAFER-RING-RESULT t0k attack_drop_timeouts exit=101\n{DONE}"
        );
        let (o, _) = read_console(&console(&text), TOK, &["attack_drop_timeouts"]);
        assert_eq!(
            o.failed_tests,
            [
                "attack_drop_timeouts::races: panicked at tests/x.rs:58:9: io_uring: no deadline raced",
                "attack_drop_timeouts::quiet",
            ]
        );
        assert_eq!(o.failed, 2);
    }

    #[test]
    fn a_crash_inside_a_failure_report_does_not_name_the_next_binary() {
        // The binary dies while printing a failure: its section ends with its RESULT marker.
        let text = format!(
            "{BOOT}\nSAFER-RING-START t0k a\n---- t stdout ----\n\
             SAFER-RING-RESULT t0k a exit=139\n{}{DONE}",
            passing("b")
        );
        let (o, _) = read_console(&console(&text), TOK, &["a", "b"]);
        assert_eq!(o.failed_tests, ["a::t"]);
    }
}
