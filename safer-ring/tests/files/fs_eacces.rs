//! EACCES from the path operations, with the errno and `ErrorKind` std gives for the same call,
//! on io_uring, io_uring with the path opcodes turned off (the syscall fallback on the blocking
//! pool) and epoll.
//!
//! CI and the kernel matrix run as root, which skips permission checks. Each ring therefore
//! runs on a fresh thread that first drops CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER
//! from its effective set: credentials are per thread, and the ring, the io_uring workers that
//! thread's submissions create and the blocking pool's threads all start after the drop and
//! inherit it. A non-root run needs no drop: the directories below deny it all the same.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use safer_ring::{BackendKind, Feature, ProgressiveEnhancementConfig, Ring, SaferRingConfig};

use crate::support;

/// `struct __user_cap_header_struct` / `__user_cap_data_struct` (capability version 3).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drops the permission-bypassing capabilities from this thread's effective set.
fn drop_dac_caps() {
    const VERSION_3: u32 = 0x2008_0522;
    const DROP: u32 = 1 << 1 | 1 << 2 | 1 << 3; // DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER
    let mut hdr = CapHeader {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget fills the two live data structs described by the live header.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) };
    assert_eq!(r, 0, "capget: {}", io::Error::last_os_error());
    data[0].effective &= !DROP;
    // SAFETY: capset reads the header and the two data structs, all live; pid 0 is this thread.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) };
    assert_eq!(r, 0, "capset: {}", io::Error::last_os_error());
}

fn assert_same(what: &str, ours: io::Result<()>, std: io::Result<()>) {
    let (ours, std) = (ours.unwrap_err(), std.unwrap_err());
    assert_eq!(
        std.raw_os_error(),
        Some(libc::EACCES),
        "{what}: std gave {std}"
    );
    assert_eq!(
        ours.raw_os_error(),
        std.raw_os_error(),
        "{what}: {ours} vs std {std}"
    );
    assert_eq!(ours.kind(), std.kind(), "{what}");
}

/// Every path op that the locked directories deny, against std.
fn check(ring: &Ring, ro: &Path, closed: &Path) {
    let r = |op: safer_ring::Op<'_, safer_ring::ops::PathOp>| ring.block_on(op);
    let (x, f, s) = (ro.join("x"), ro.join("f"), ro.join("s"));
    assert_same("mkdir", r(ring.create_dir(&x)), std::fs::create_dir(&x));
    assert_same("unlink", r(ring.remove_file(&f)), std::fs::remove_file(&f));
    assert_same("rmdir", r(ring.remove_dir(&s)), std::fs::remove_dir(&s));
    let g = ro.join("g");
    assert_same("rename", r(ring.rename(&f, &g)), std::fs::rename(&f, &g));
    let l = ro.join("l");
    assert_same(
        "symlink",
        r(ring.symlink("f", &l)),
        std::os::unix::fs::symlink("f", &l),
    );
    assert_same(
        "link",
        r(ring.hard_link(&f, &l)),
        std::fs::hard_link(&f, &l),
    );
    // No search permission on `closed`: even the metadata of what is inside is denied.
    let inner = closed.join("f");
    assert_same(
        "statx",
        ring.block_on(ring.path_metadata(&inner)).map(|_| ()),
        std::fs::metadata(&inner).map(|_| ()),
    );
    // Nothing was created, removed or renamed.
    assert!(std::fs::symlink_metadata(&x).is_err() && std::fs::symlink_metadata(&g).is_err());
    assert!(std::fs::metadata(&f).is_ok() && std::fs::metadata(&s).is_ok());
}

#[test]
fn path_ops_map_eacces_as_std_does() {
    let base = support::TempPath::new("eacces");
    let (ro, closed) = (base.0.join("ro"), base.0.join("closed"));
    for d in [&ro, &closed] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(ro.join("f"), b"f").unwrap();
    std::fs::create_dir(ro.join("s")).unwrap();
    std::fs::write(closed.join("f"), b"f").unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o000)).unwrap();
    let off = [
        Feature::MkdirAt,
        Feature::UnlinkAt,
        Feature::RenameAt,
        Feature::SymlinkAt,
        Feature::LinkAt,
    ]
    .into_iter()
    .fold(ProgressiveEnhancementConfig::default(), |e, f| {
        e.feature(f, Some(false))
    });
    let configs = [
        (
            "io_uring",
            SaferRingConfig::default().backend(BackendKind::IoUring),
        ),
        (
            "io_uring, path opcodes off",
            SaferRingConfig::default()
                .backend(BackendKind::IoUring)
                .enhancement(off),
        ),
        (
            "epoll",
            SaferRingConfig::default().backend(BackendKind::Epoll),
        ),
    ];
    let mut ran = 0;
    for (name, cfg) in configs {
        let (ro, closed) = (ro.clone(), closed.clone());
        let done = std::thread::spawn(move || {
            if euid() == 0 {
                drop_dac_caps();
            }
            // The drop took: std itself is now refused.
            assert!(
                std::fs::create_dir(ro.join("probe")).is_err(),
                "{name}: caps still on"
            );
            let Some(ring) = support::ring_with(cfg.entries(16)) else {
                return false;
            };
            check(&ring, &ro, &closed);
            eprintln!("{name}: EACCES as std ({:?} backend)", ring.backend());
            true
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
        ran += usize::from(done);
    }
    assert!(ran >= 1, "epoll always runs");
    for d in [&ro, &closed] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::remove_dir_all(&base.0).unwrap();
}

fn euid() -> u32 {
    // SAFETY: geteuid takes no arguments and cannot fail.
    unsafe { libc::geteuid() }
}
