//! PID 1 inside the kernel-matrix guest (a static musl binary).
//!
//! Mounts proc, sys, devtmpfs and tmpfs, brings `lo` up, runs every program in `/tests` with
//! the arguments from `saferring.args=`, prints one result marker per program (tagged with the
//! host's random token, so test output cannot fake it), then powers the machine off.

use std::ffi::CString;
use std::io::Write;
use std::process::Command;

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
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .unwrap_or_else(|_| "absent".into());
    println!(
        "SAFER-RING-KERNEL {token} {} io_uring_disabled={}",
        release.trim(),
        disabled.trim()
    );

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
        println!("SAFER-RING-START {token} {name}");
        let _ = std::io::stdout().flush();
        let status = Command::new(t)
            .args(&args)
            .env("TMPDIR", "/tmp")
            .env("RUST_BACKTRACE", "1")
            .env("SAFER_RING_IN_MATRIX", "1")
            .current_dir("/tmp")
            .status();
        let code = match status {
            Ok(s) => s
                .code()
                .unwrap_or(128 + std::os::unix::process::ExitStatusExt::signal(&s).unwrap_or(0)),
            Err(e) => {
                eprintln!("init: cannot run {name}: {e}");
                127
            }
        };
        println!("SAFER-RING-RESULT {token} {name} exit={code}");
        let _ = std::io::stdout().flush();
    }
    println!("SAFER-RING-DONE {token}");
    let _ = std::io::stdout().flush();
    // SAFETY: sync and reboot take no pointers; powering off is the point of PID 1 here.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
}
