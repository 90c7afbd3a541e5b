//! Attacks on the path operations (unlink, rename, mkdir, symlink, link, path_metadata)
//! through the public API: interior NULs, non-UTF-8 names, names and paths past the kernel's
//! limits, and paths whose op is dropped before the kernel read them.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use safer_ring::{
    BackendKind, Feature, OpenOptions, ProgressiveEnhancementConfig, Ring, SaferRingConfig,
    SubmitPolicy,
};
use support::fds::outcome;
use support::soundness::{SIZE, poll_once};

use crate::support::{self, TempPath};

// Every path op refuses a path with a NUL byte, naming it, before the kernel sees anything.
backend_test!(interior_nul_is_refused, |ring| {
    let bad = Path::new("safer-ring\0attack");
    let ok = Path::new("/tmp");
    ring.block_on(async {
        let rs: Vec<(&str, std::io::Result<()>)> = vec![
            ("remove_file", ring.remove_file(bad).await),
            ("remove_dir", ring.remove_dir(bad).await),
            ("rename from", ring.rename(bad, ok).await),
            ("rename to", ring.rename(ok, bad).await),
            ("create_dir", ring.create_dir(bad).await),
            ("symlink original", ring.symlink(bad, ok).await),
            ("symlink link", ring.symlink(ok, bad).await),
            ("hard_link original", ring.hard_link(bad, ok).await),
            ("hard_link link", ring.hard_link(ok, bad).await),
            ("path_metadata", ring.path_metadata(bad).await.map(drop)),
            (
                "symlink_metadata",
                ring.symlink_metadata(bad).await.map(drop),
            ),
            (
                "open",
                ring.open(bad, &OpenOptions::new().read(true))
                    .await
                    .map(drop),
            ),
        ];
        for (what, r) in rs {
            let e = r.expect_err(what);
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{what}: {e}");
            assert!(e.to_string().contains("NUL"), "{what}: {e}");
        }
    });
});

// Names that are not UTF-8 work like any other bytes.
backend_test!(non_utf8_names, |ring| {
    let dir = TempPath::dir("attack-path-utf8");
    let a = dir.0.join(OsStr::from_bytes(b"d\xff\xfe"));
    let b = dir.0.join(OsStr::from_bytes(b"e\x80"));
    let f = dir.0.join(OsStr::from_bytes(b"f\xc3"));
    let l = dir.0.join(OsStr::from_bytes(b"l\xfe"));
    let h = dir.0.join(OsStr::from_bytes(b"h\xff"));
    std::fs::write(&f, b"x").unwrap();
    ring.block_on(async {
        ring.create_dir(&a).await.unwrap();
        assert!(ring.path_metadata(&a).await.unwrap().is_dir());
        ring.rename(&a, &b).await.unwrap();
        assert!(!a.exists() && b.is_dir());
        ring.symlink(&f, &l).await.unwrap();
        assert_eq!(std::fs::read_link(&l).unwrap(), f);
        assert!(ring.symlink_metadata(&l).await.unwrap().is_symlink());
        ring.hard_link(&f, &h).await.unwrap();
        assert_eq!(std::fs::read(&h).unwrap(), b"x");
        ring.remove_file(&l).await.unwrap();
        ring.remove_file(&h).await.unwrap();
        ring.remove_dir(&b).await.unwrap();
        assert!(!l.exists() && !h.exists() && !b.exists());
    });
});

/// A path under `dir` of exactly `len` bytes ending in `leaf` (components of at most 200).
fn path_of_len(dir: &Path, len: usize, leaf: &str) -> PathBuf {
    let mut p = dir.to_path_buf();
    loop {
        let have = p.as_os_str().len() + 1; // the separator
        let rest = len - have;
        if rest <= 200 {
            assert!(rest > leaf.len());
            return p.join(format!("{leaf}{}", "x".repeat(rest - leaf.len())));
        }
        p.push("d".repeat(rest.min(400) - 200).as_str());
    }
}

/// A configuration with every path opcode off: the ops run as syscalls on the ring's thread.
fn path_ops_off() -> SaferRingConfig {
    let mut e = ProgressiveEnhancementConfig::default();
    for f in [
        Feature::UnlinkAt,
        Feature::RenameAt,
        Feature::MkdirAt,
        Feature::SymlinkAt,
        Feature::LinkAt,
    ] {
        e = e.feature(f, Some(false));
    }
    SaferRingConfig::default()
        .backend(BackendKind::IoUring)
        .enhancement(e)
}

/// Names and paths at and past the kernel's limits, and the usual errors, as comparable
/// strings.
fn limit_outcomes(ring: &Ring, tag: &str) -> Vec<String> {
    let dir = TempPath::dir(tag);
    let mut out = Vec::new();
    let long_name = dir.0.join("n".repeat(256)); // NAME_MAX is 255
    let max_name = dir.0.join("n".repeat(255));
    let too_long = path_of_len(&dir.0, 4096, "p"); // PATH_MAX counts the NUL
    let longest = path_of_len(&dir.0, 4095, "p");
    let file = dir.0.join("file");
    let sub = dir.0.join("sub");
    std::fs::write(&file, b"x").unwrap();
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("inner"), b"y").unwrap();
    ring.block_on(async {
        let mut push =
            |what: &str, r: std::io::Result<()>| out.push(format!("{what}: {}", outcome(&r)));
        push("mkdir 256-byte name", ring.create_dir(&long_name).await);
        push("mkdir 255-byte name", ring.create_dir(&max_name).await);
        push("rmdir 255-byte name", ring.remove_dir(&max_name).await);
        push("mkdir 4096-byte path", ring.create_dir(&too_long).await);
        push("mkdir 4095-byte path", ring.create_dir(&longest).await);
        push("unlink 4096-byte path", ring.remove_file(&too_long).await);
        push(
            "rename to 4096-byte path",
            ring.rename(&file, &too_long).await,
        );
        push(
            "symlink to 4096-byte target",
            ring.symlink(&too_long, dir.0.join("s")).await,
        );
        push(
            "link to 4096-byte path",
            ring.hard_link(&file, &too_long).await,
        );
        push(
            "stat 4096-byte path",
            ring.path_metadata(&too_long).await.map(drop),
        );
        push(
            "unlink missing",
            ring.remove_file(dir.0.join("missing")).await,
        );
        push("unlink a dir", ring.remove_file(&sub).await);
        push("rmdir a file", ring.remove_dir(&file).await);
        push("rmdir non-empty", ring.remove_dir(&sub).await);
        push("mkdir existing", ring.create_dir(&sub).await);
        push(
            "rename dir into itself",
            ring.rename(&sub, sub.join("x")).await,
        );
        push("rename file over dir", ring.rename(&file, &sub).await);
        push("link existing", ring.hard_link(&file, &file).await);
        push("link a dir", ring.hard_link(&sub, dir.0.join("hl")).await);
        push("symlink existing", ring.symlink(&file, &file).await);
        push("empty path", ring.create_dir("").await);
        push(
            "relative path",
            ring.remove_file("safer-ring-attack-no-such-file").await,
        );
    });
    out
}

// The same limits and errors on io_uring with the path opcodes, with them off (syscalls
// inline) and on epoll.
#[test]
fn limits_same_on_every_path() {
    let epoll = limit_outcomes(&support::ring(BackendKind::Epoll).unwrap(), "attack-path-e");
    println!("epoll: {epoll:#?}");
    assert!(
        epoll
            .iter()
            .any(|s| s.contains(&format!("errno {}", libc::ENAMETOOLONG)))
    );
    let Some(uring) = support::ring(BackendKind::IoUring) else {
        return;
    };
    assert_eq!(
        limit_outcomes(&uring, "attack-path-n"),
        epoll,
        "io_uring and epoll differ"
    );
    let off = support::ring_with(path_ops_off()).unwrap();
    assert!(!off.uses_native(Feature::RenameAt));
    assert_eq!(
        limit_outcomes(&off, "attack-path-o"),
        epoll,
        "syscall fallback differs"
    );
}

/// A rename whose op is polled once (queued: on a `Batch` ring its SQE is not submitted yet)
/// and dropped. The paths' memory must stay with the ring until the kernel read them: fresh
/// allocations of the same size, filled with the path of a decoy file, must never be what the
/// kernel renames.
fn rename_dropped_probe(ring: &Ring, tag: &str) -> bool {
    let dir = TempPath::dir(tag);
    // CString::new allocates len + 1 bytes: SIZE-byte chunks, like the fresh ones below.
    let from = path_of_len(&dir.0, SIZE - 1, "a");
    let to = path_of_len(&dir.0, SIZE - 1, "b");
    let decoy = path_of_len(&dir.0, SIZE - 1, "c");
    std::fs::create_dir_all(from.parent().unwrap()).unwrap();
    std::fs::write(&from, b"from").unwrap();
    std::fs::write(&decoy, b"decoy").unwrap();
    let fresh: Vec<Vec<u8>> = {
        let mut op = ring.rename(&from, &to);
        let pending = poll_once(&mut op).is_pending();
        drop(op);
        // At once, before anything else allocates: the chunks a freed CString would leave.
        let fresh = support::soundness::fresh_allocs(16);
        if !pending {
            return false; // already done (epoll runs it inline): nothing left to probe
        }
        fresh
    };
    let mut fresh = fresh;
    for f in &mut fresh {
        f[..decoy.as_os_str().len()].copy_from_slice(decoy.as_os_str().as_bytes());
    }
    let _ = support::soundness::drive(ring, 10);
    assert_eq!(
        std::fs::read(&decoy).ok().as_deref(),
        Some(&b"decoy"[..]),
        "the kernel read a freed path (the decoy was renamed)"
    );
    assert!(
        from.exists() != to.exists(),
        "renamed exactly once, or not at all"
    );
    drop(fresh);
    true
}

#[test]
fn rename_dropped_before_submit_keeps_its_paths() {
    for policy in [SubmitPolicy::Batch, SubmitPolicy::Eager] {
        for kind in [BackendKind::IoUring, BackendKind::Epoll] {
            let cfg = SaferRingConfig::default()
                .backend(kind)
                .submit_policy(policy);
            if let Some(ring) = support::ring_with(cfg) {
                let probed = rename_dropped_probe(&ring, "attack-path-probe");
                if kind == BackendKind::IoUring && policy == SubmitPolicy::Batch {
                    assert!(probed, "a Batch ring queues the rename: the probe must run");
                }
            }
        }
        if let Some(ring) = support::ring_with(path_ops_off().submit_policy(policy)) {
            rename_dropped_probe(&ring, "attack-path-probe-off");
        }
    }
}
