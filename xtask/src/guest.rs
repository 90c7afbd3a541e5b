//! Runs the test binaries natively or as the only userspace of a QEMU guest, and reads results.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    pub notes: Vec<String>,
    pub complete: bool,
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

/// The binaries on the host kernel, natively.
pub fn run_host(bins: &[TestBin], args: &[String]) -> Result<Outcome, String> {
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
        let out = Command::new(&b.path)
            .args(args)
            .env("SAFER_RING_REQUIRE_IO_URING", "1")
            .output()
            .map_err(|e| format!("running {}: {e}", b.path.display()))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        text.lines().for_each(|l| o.count(l));
        o.skipped += text.lines().filter(|l| l.starts_with("SKIP: ")).count() as u64;
        if !out.status.success() {
            o.failed_bins.push(b.name.clone());
        }
        log += &text;
    }
    let _ = std::fs::write(out_dir().join("host.log"), &log);
    if !o.failed_bins.is_empty() {
        o.notes
            .push(format!("failed: {}", o.failed_bins.join(", ")));
    }
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

/// One boot of `kernel`; see [`run_qemu`].
fn boot_once(
    kernel: &Path,
    init: &Path,
    bins: &[TestBin],
    cmdline: &str,
    args: &[String],
) -> Result<Outcome, String> {
    let name = kernel
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let label = if cmdline.is_empty() {
        name.clone()
    } else {
        format!("{name}-{}", cmdline.replace(['=', '.'], "_"))
    };
    let img = initramfs(&label, init, bins)?;
    let tok = token();
    let append = format!(
        "console=ttyS0 panic=-1 oops=panic quiet saferring.token={tok} saferring.args={} {cmdline}",
        args.join(",")
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
        .arg(kernel)
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

    let mut o = Outcome {
        kernel: "?".into(),
        ..Outcome::default()
    };
    let mut current: Option<String> = None;
    for l in &lines {
        let marker = |m: &str| {
            l.strip_prefix(m)
                .and_then(|r| r.strip_prefix(&tok))
                .map(str::trim)
        };
        if let Some(rest) = marker("SAFER-RING-KERNEL ") {
            o.kernel = rest.to_string();
        } else if let Some(n) = marker("SAFER-RING-START ") {
            current = Some(n.to_string());
        } else if let Some(rest) = marker("SAFER-RING-RESULT ") {
            if !rest.ends_with("exit=0") {
                o.failed_bins.push(rest.to_string());
            }
            current = None;
        } else if marker("SAFER-RING-DONE ").is_some()
            || l.trim_end() == format!("SAFER-RING-DONE {tok}")
        {
            o.complete = true;
        } else if l.contains("test result: ") {
            o.count(l);
        } else if l.starts_with("SKIP: ") {
            o.skipped += 1;
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
    if !o.failed_bins.is_empty() {
        o.notes
            .push(format!("failed: {}", o.failed_bins.join(", ")));
    }
    if !o.ok() {
        o.notes.push(format!("log: {}", log_path.display()));
    }
    Ok(o)
}

/// Boots `kernel` with the binaries as its only userspace and collects the results. A guest
/// that dies before init reports in (a boot-time failure under TCG, nothing of ours ran) is
/// booted again, up to twice, and the retry is noted.
pub fn run_qemu(
    kernel: &Path,
    init: &Path,
    bins: &[TestBin],
    cmdline: &str,
    args: &[String],
) -> Result<Outcome, String> {
    let mut notes = Vec::new();
    for attempt in 1..=3 {
        let mut o = boot_once(kernel, init, bins, cmdline, args)?;
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
