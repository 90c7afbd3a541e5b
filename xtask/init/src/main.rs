//! PID 1 inside the kernel-matrix guest (a static musl binary).
//!
//! Mounts proc, sys, devtmpfs and tmpfs, brings `lo` up, runs every program in `/tests` with
//! the arguments from `saferring.args=` (as the user `saferring.uid=`, if given), prints one
//! result marker per program (tagged with the host's random token, so test output cannot fake
//! it), then powers the machine off. Every marker starts on a line of its own: the program
//! before it may have died mid-line.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// How long one test binary may run (`saferring.timeout=` seconds overrides): past it, the
/// binary is killed and reported as `exit=timeout`, so a hang costs minutes instead of the
/// row, and the binaries after it still run. The slowest binary takes about 70 s under TCG.
const BINARY_TIMEOUT: Duration = Duration::from_secs(300);

fn mount(src: &str, target: &str, fstype: &str) {
    let _ = std::fs::create_dir_all(target);
    let (s, t, f) = (
        CString::new(src).unwrap(),
        CString::new(target).unwrap(),
        CString::new(fstype).unwrap(),
    );
    // SAFETY: all pointers are NUL-terminated strings that outlive the call; no data argument.
    let r = unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), 0, std::ptr::null()) };
    if r != 0 {
        eprintln!(
            "init: mount {fstype} on {target}: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn loopback_up() -> std::io::Result<()> {
    // SAFETY: socket takes no pointers.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: ifreq is plain old data; all-zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: `req` is a live ifreq naming "lo"; the kernel reads and writes only it.
    let mut r = unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS as libc::Ioctl, &mut req) };
    if r == 0 {
        // SAFETY: the union's flags member was just filled by SIOCGIFFLAGS.
        unsafe { req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
        // SAFETY: as above.
        r = unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS as libc::Ioctl, &mut req) };
    }
    let err = std::io::Error::last_os_error();
    // SAFETY: closes the socket opened above.
    unsafe { libc::close(fd) };
    if r == 0 { Ok(()) } else { Err(err) }
}

/// Points stdin/stdout/stderr at the serial console (the initramfs has no /dev/console node,
/// so the kernel could not open one for us).
fn console() {
    let path = CString::new("/dev/console").unwrap();
    // SAFETY: a NUL-terminated path; the returned fd is only dup2'ed and closed.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR) };
    if fd >= 0 {
        for target in 0..3 {
            // SAFETY: dup2 takes no pointers.
            unsafe { libc::dup2(fd, target) };
        }
        if fd > 2 {
            // SAFETY: closes the fd opened above.
            unsafe { libc::close(fd) };
        }
    }
}

fn param<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline.split_whitespace().find_map(|w| w.strip_prefix(key))
}

/// Waits for a test binary up to `limit`; its exit code (128 + signal for a crash), or
/// `timeout` after killing it.
fn wait_bounded(child: &mut Child, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(s)) => {
                let code = s.code().unwrap_or(
                    128 + std::os::unix::process::ExitStatusExt::signal(&s).unwrap_or(0),
                );
                return code.to_string();
            }
            Ok(None) if start.elapsed() > limit => break,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                eprintln!("init: waiting for a test binary: {e}");
                return "wait-error".into();
            }
        }
    }
    eprintln!("init: killing a test binary still running after {limit:?}");
    let _ = child.kill();
    // A process stuck in the kernel may not even die; give it a moment, then move on.
    for _ in 0..100 {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    "timeout".into()
}

/// Prints a marker for the host, after a newline: whatever the last program wrote may end
/// mid-line, and the host finds markers wherever they are but reads what precedes them as
/// that program's output.
fn marker(text: std::fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\n{text}");
    let _ = out.flush();
}

fn main() {
    mount("proc", "/proc", "proc");
    mount("sysfs", "/sys", "sysfs");
    mount("devtmpfs", "/dev", "devtmpfs");
    mount("tmpfs", "/tmp", "tmpfs");
    console();
    if let Err(e) = loopback_up() {
        eprintln!("init: bringing lo up: {e}");
    }
    // The kernel's default of 1024 open files is below what the connection tests use; raise it
    // as a typical host (systemd) does.
    let lim = libc::rlimit {
        rlim_cur: 65536,
        rlim_max: 65536,
    };
    // SAFETY: `lim` is a live rlimit the kernel only reads.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        eprintln!(
            "init: raising RLIMIT_NOFILE: {}",
            std::io::Error::last_os_error()
        );
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let token = param(&cmdline, "saferring.token=")
        .unwrap_or("none")
        .to_string();
    let args: Vec<String> = param(&cmdline, "saferring.args=")
        .map(|a| {
            a.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    // The backend the tests must get (see safer-ring/tests/features/matrix_backend.rs); on io_uring
    // rows a ring that fails to open is a failure, not a skip.
    let expect = param(&cmdline, "saferring.expect=").unwrap_or("");
    let uid = match param(&cmdline, "saferring.uid=").map(str::parse::<u32>) {
        None => None,
        Some(Ok(u)) => Some(u),
        Some(Err(e)) => {
            eprintln!("init: saferring.uid= expects a number: {e}; running the tests as root");
            None
        }
    };
    let limit = match param(&cmdline, "saferring.timeout=").map(str::parse::<u64>) {
        None => BINARY_TIMEOUT,
        Some(Ok(secs)) => Duration::from_secs(secs),
        Some(Err(e)) => {
            eprintln!("init: saferring.timeout= expects seconds: {e}; using {BINARY_TIMEOUT:?}");
            BINARY_TIMEOUT
        }
    };
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .unwrap_or_else(|_| "absent".into());
    let user = uid.map(|u| format!(" uid={u}")).unwrap_or_default();
    marker(format_args!(
        "SAFER-RING-KERNEL {token} {} io_uring_disabled={}{user}",
        release.trim(),
        disabled.trim()
    ));

    let mut tests: Vec<_> = std::fs::read_dir("/tests")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    tests.sort();
    for t in &tests {
        let name = t
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        marker(format_args!("SAFER-RING-START {token} {name}"));
        let mut cmd = Command::new(t);
        cmd.args(&args)
            .env("TMPDIR", "/tmp")
            .env("RUST_BACKTRACE", "1")
            .env("SAFER_RING_IN_MATRIX", "1")
            .current_dir("/tmp");
        if !expect.is_empty() {
            cmd.env("SAFER_RING_MATRIX_EXPECT", expect);
        }
        if expect == "io_uring" {
            cmd.env("SAFER_RING_REQUIRE_IO_URING", "1");
        }
        if let Some(u) = uid {
            // std drops the supplementary groups too when root changes uid.
            cmd.uid(u).gid(u);
        }
        let code = match cmd.spawn() {
            Ok(mut child) => wait_bounded(&mut child, limit),
            Err(e) => {
                eprintln!("init: cannot run {name}: {e}");
                "127".into()
            }
        };
        marker(format_args!("SAFER-RING-RESULT {token} {name} exit={code}"));
    }
    marker(format_args!("SAFER-RING-DONE {token}"));
    // SAFETY: sync and reboot take no pointers; powering off is the point of PID 1 here.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
}
