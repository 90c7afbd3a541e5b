//! Fetches Debian cloud kernels with a private apt configuration (the machine's own sources and
//! lists are never touched) and caches the extracted `vmlinuz`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Series {
    V5_10,
    V6_1,
    V6_12,
}

impl Series {
    fn dir(self) -> &'static str {
        match self {
            Series::V5_10 => "5.10",
            Series::V6_1 => "6.1",
            Series::V6_12 => "6.12",
        }
    }

    /// Whether a package name is this series' cloud kernel image.
    fn matches(self, pkg: &str) -> bool {
        let Some(rest) = pkg
            .strip_prefix("linux-image-")
            .and_then(|r| r.strip_suffix("-cloud-amd64"))
        else {
            return false;
        };
        match self {
            // linux-image-5.10.0-46-cloud-amd64, linux-image-6.1.0-56-cloud-amd64
            Series::V5_10 => rest
                .strip_prefix("5.10.0-")
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())),
            Series::V6_1 => rest
                .strip_prefix("6.1.0-")
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())),
            // linux-image-6.12.118+deb13-cloud-amd64
            Series::V6_12 => rest
                .strip_prefix("6.12.")
                .is_some_and(|n| n.ends_with("+deb13")),
        }
    }
}

fn cache_root() -> PathBuf {
    if let Some(d) = std::env::var_os("SAFER_RING_KERNEL_CACHE") {
        return d.into();
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    Path::new(&home).join(".cache/safer-ring/kernels")
}

/// The mirrors the machine already uses (main archive, security archive), from its apt sources.
fn mirrors() -> Result<(String, String), String> {
    let mut uris = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        for e in dir.flatten() {
            if e.path().extension().is_some_and(|x| x == "sources") {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                uris.extend(
                    text.lines()
                        .filter_map(|l| l.strip_prefix("URIs:"))
                        .flat_map(|u| u.split_whitespace().map(str::to_string)),
                );
            }
        }
    }
    let legacy = std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    uris.extend(
        legacy
            .lines()
            .filter_map(|l| l.strip_prefix("deb "))
            .filter_map(|l| {
                l.split_whitespace()
                    .find(|w| w.contains("://"))
                    .map(str::to_string)
            }),
    );
    let security = uris
        .iter()
        .find(|u| u.trim_end_matches('/').ends_with("debian-security"));
    let main = uris
        .iter()
        .find(|u| u.trim_end_matches('/').ends_with("/debian"));
    match (main, security) {
        (Some(m), Some(s)) => Ok((m.clone(), s.clone())),
        _ => Err("no Debian archive found in the machine's apt sources (need .../debian and .../debian-security)".into()),
    }
}

fn apt_dir() -> PathBuf {
    cache_root().join("apt")
}

fn apt_opts() -> Vec<String> {
    let d = apt_dir();
    vec![
        "-oDir::Etc::SourceList=/dev/null".into(),
        format!("-oDir::Etc::SourceParts={}", d.join("parts").display()),
        format!("-oDir::State::Lists={}", d.join("lists").display()),
        format!("-oDir::Cache={}", d.join("cache").display()),
        "-oAPT::Architecture=amd64".into(),
        "-oAPT::Architectures=amd64".into(),
        "-oDebug::NoLocking=1".into(),
        "-qq".into(),
    ]
}

fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `apt-get update` on the private configuration, once per process.
fn update() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let d = apt_dir();
        for sub in ["parts", "lists/partial", "cache/archives/partial"] {
            std::fs::create_dir_all(d.join(sub)).map_err(|e| format!("creating {}: {e}", d.join(sub).display()))?;
        }
        let (main, security) = mirrors()?;
        let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
        let sources = format!(
            "Types: deb\nURIs: {main}\nSuites: bullseye bookworm trixie\nComponents: main\nSigned-By: {keyring}\n\n\
             Types: deb\nURIs: {security}\nSuites: bullseye-security bookworm-security trixie-security\nComponents: main\nSigned-By: {keyring}\n"
        );
        std::fs::write(d.join("parts/kernels.sources"), sources).map_err(|e| e.to_string())?;
        run(Command::new("apt-get").args(apt_opts()).arg("update"), "apt-get update (private kernel sources)").map(drop)
    })
    .clone()
}

fn version_key(pkg: &str) -> Vec<u64> {
    pkg.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The series' newest kernel image, downloaded once and cached (refreshed weekly).
pub fn fetch(series: Series) -> Result<PathBuf, String> {
    let dir = cache_root().join(series.dir());
    let vmlinuz = dir.join("vmlinuz");
    let fresh = std::fs::metadata(&vmlinuz)
        .and_then(|m| m.modified())
        .is_ok_and(|t| {
            SystemTime::now().duration_since(t).unwrap_or_default() < Duration::from_secs(7 * 86400)
        });
    if fresh {
        return Ok(vmlinuz);
    }
    let fetched = update().and_then(|()| download(series, &dir));
    match fetched {
        Ok(p) => Ok(p),
        // Offline with a stale cache: a week-old kernel is better than none.
        Err(e) if vmlinuz.exists() => {
            eprintln!(
                "kernel-matrix: refreshing {} failed ({e}); using the cached kernel",
                series.dir()
            );
            Ok(vmlinuz)
        }
        Err(e) => Err(e),
    }
}

fn download(series: Series, dir: &Path) -> Result<PathBuf, String> {
    let list = run(
        Command::new("apt-cache").args(apt_opts()).args([
            "search",
            "--names-only",
            "^linux-image-.*-cloud-amd64$",
        ]),
        "apt-cache search",
    )?;
    let pkg = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|p| series.matches(p))
        .max_by_key(|p| version_key(p))
        .ok_or_else(|| format!("no {} cloud kernel in the archive", series.dir()))?
        .to_string();
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for e in std::fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
        if e.path().extension().is_some_and(|x| x == "deb") {
            let _ = std::fs::remove_file(e.path());
        }
    }
    run(
        Command::new("apt-get")
            .args(apt_opts())
            .args(["download", &pkg])
            .current_dir(dir),
        "apt-get download",
    )?;
    let deb = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or("apt-get download produced no .deb")?;
    let x = dir.join("extract");
    let _ = std::fs::remove_dir_all(&x);
    run(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&x),
        "dpkg-deb -x",
    )?;
    let boot = std::fs::read_dir(x.join("boot"))
        .map_err(|e| format!("{}: {e}", x.join("boot").display()))?;
    let image = boot
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .ok_or("the package has no boot/vmlinuz-*")?;
    let out = dir.join("vmlinuz");
    std::fs::copy(&image, &out).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("package"), &pkg).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&x);
    let _ = std::fs::remove_file(&deb);
    eprintln!("kernel-matrix: fetched {pkg}");
    Ok(out)
}
