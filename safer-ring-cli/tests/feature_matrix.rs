//! docs/FEATURES.md is `safer-ring features --markdown`, and the docs name only real features.

use std::path::PathBuf;
use std::process::Command;

use safer_ring::Feature;

const REGENERATE: &str = "cargo run -q -p safer-ring-cli -- features --markdown > docs/FEATURES.md";

fn repo_file(rel: &str) -> (PathBuf, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    (path, text)
}

/// `safer-ring features --markdown` with `env` set (and the safer-ring variables otherwise unset).
fn generated(env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_safer-ring"));
    cmd.args(["features", "--markdown"])
        .env_remove("SAFER_RING_BACKEND")
        .env_remove("SAFER_RING_FEATURES");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the binary runs");
    assert!(
        out.status.success(),
        "safer-ring features --markdown failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// A line diff good enough to see what drifted: every line that differs, with its number.
fn line_diff(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut out = String::new();
    for i in 0..e.len().max(a.len()) {
        match (e.get(i), a.get(i)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => {
                if let Some(x) = x {
                    out += &format!("{:>4} - {x}\n", i + 1);
                }
                if let Some(y) = y {
                    out += &format!("{:>4} + {y}\n", i + 1);
                }
            }
        }
    }
    if out.is_empty() {
        out = "(only line endings or the final newline differ)\n".into();
    }
    out
}

#[test]
fn features_md_is_the_generated_matrix() {
    let (_, committed) = repo_file("docs/FEATURES.md");
    let fresh = generated(&[]);
    assert!(
        committed == fresh,
        "docs/FEATURES.md disagrees with `safer-ring features --markdown` (- committed, + \
         generated):\n{}\nRegenerate it from the repository root with:\n    {REGENERATE}",
        line_diff(&committed, &fresh)
    );
}

#[test]
fn matrix_is_static_facts_only() {
    // Another backend and every feature switched off change what a ring uses here, not the
    // matrix: it must come out byte for byte the same on every machine.
    let plain = generated(&[]);
    let epoll = generated(&[
        ("SAFER_RING_BACKEND", "epoll"),
        ("SAFER_RING_FEATURES", "-all"),
    ]);
    assert_eq!(plain, epoll, "{}", line_diff(&plain, &epoll));
    assert!(plain.contains(REGENERATE), "the header names the command");
}

#[test]
fn matrix_has_one_row_per_table_entry() {
    let md = generated(&[]);
    let rows: Vec<Vec<&str>> = md
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    let all: Vec<Feature> = Feature::all().collect();
    assert_eq!(rows.len(), all.len(), "rows:\n{md}");
    for (row, f) in rows.iter().zip(all) {
        assert_eq!(row[0], format!("`{}`", f.name()), "{row:?}");
        let v = f.required_kernel_version();
        assert_eq!(row[1], format!("{}.{}", v.major, v.minor), "{row:?}");
        let used = safer_ring::features::USED_BY_RING.contains(&f);
        assert_eq!(row[3].starts_with("yes"), used, "{row:?}");
        assert_eq!(row[3].contains("opt-in"), f.opt_in() && used, "{row:?}");
        assert_eq!(row[4], f.description(), "{row:?}");
    }
}

/// Feature names a markdown text mentions: `Feature::Name` (not methods such as `Feature::all`), and the entries of
/// `SAFER_RING_FEATURES=...` values and of backticked `+Name` / `-Name` specs.
fn feature_mentions(text: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = Vec::new();
    for (i, _) in text.match_indices("Feature::") {
        let name = ident(&text[i + "Feature::".len()..]);
        // Variants are CamelCase; `Feature::opt_in`, `Feature::all` are methods.
        if name.starts_with(|c: char| c.is_ascii_uppercase()) {
            names.push(name);
        }
    }
    let mut specs: Vec<&str> = Vec::new();
    for (i, _) in text.match_indices("SAFER_RING_FEATURES=") {
        let rest = &text[i + "SAFER_RING_FEATURES=".len()..];
        let end = rest
            .find(|c: char| c.is_whitespace() || "`)\"'".contains(c))
            .unwrap_or(rest.len());
        specs.push(&rest[..end]);
    }
    // `-all`, `+MsgRingSendFd`: a backticked spec on its own.
    for part in text.split('`').skip(1).step_by(2) {
        let spec_like = part.starts_with(['+', '-'])
            && part[1..].starts_with(|c: char| c.is_ascii_uppercase() || c == 'a')
            && !part.contains(' ');
        if spec_like {
            specs.push(part);
        }
    }
    for spec in specs {
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let name = item.trim_start_matches(['+', '-']);
            // `<name>` stands for any feature in prose, and `all` is not one either.
            if !name.starts_with('<') && !name.eq_ignore_ascii_case("all") {
                names.push(ident(name));
            }
        }
    }
    names
}

#[test]
fn docs_name_only_features_of_the_table() {
    let mut unknown = Vec::new();
    let mut readme_mentions = 0;
    for doc in [
        "README.md",
        "docs/MIGRATION.md",
        "docs/TUNING.md",
        "docs/TROUBLESHOOTING.md",
        "docs/DESIGN.md",
        "docs/SOUNDNESS.md",
    ] {
        let (_, text) = repo_file(doc);
        let names = feature_mentions(&text);
        if doc == "README.md" {
            readme_mentions = names.len();
        }
        for n in names {
            if n.parse::<Feature>().is_err() {
                unknown.push(format!("{doc}: {n:?}"));
            }
        }
    }
    // The README names features (SAFER_RING_FEATURES examples, Feature::MsgRingSendFd): finding
    // none means the scan is broken, not that the docs are right.
    assert!(
        readme_mentions >= 4,
        "found only {readme_mentions} in README.md"
    );
    let known: Vec<&str> = Feature::all().map(|f| f.name()).collect();
    assert!(
        unknown.is_empty(),
        "the docs name features the table does not have: {unknown:?}\nknown: {known:?}"
    );
}

#[test]
fn the_scan_catches_a_wrong_name() {
    let text = "Run with `SAFER_RING_FEATURES=-MultiShotRecv,-SendZeroCop` or use \
                `Feature::MultiShotAccepts`; `+MsgRingSendFd`, `-all`, `--json` and \
                `Feature::opt_in` are fine.";
    let bad: Vec<String> = feature_mentions(text)
        .into_iter()
        .filter(|n| n.parse::<Feature>().is_err())
        .collect();
    assert_eq!(bad, ["MultiShotAccepts", "SendZeroCop"]);
}

#[test]
fn readme_links_the_matrix_and_the_guides() {
    let (_, readme) = repo_file("README.md");
    for link in [
        "docs/FEATURES.md",
        "docs/MIGRATION.md",
        "docs/TUNING.md",
        "docs/TROUBLESHOOTING.md",
    ] {
        assert!(
            readme.contains(&format!("]({link})")),
            "README links {link}"
        );
        repo_file(link); // and the file exists
    }
}

/// How the README's progressive-enhancement table names each feature it gives a kernel for.
const README_PHRASES: &[(&str, Feature)] = &[
    ("multishot accept", Feature::MultiShotAccept),
    ("SEND_ZC", Feature::SendZeroCopy),
    ("multishot recv", Feature::MultiShotRecv),
    ("provided-buffer ring", Feature::BufferRings),
    ("buffer-select recv", Feature::BufferRings),
    ("OP_MSG_RING", Feature::MsgRing),
    ("IORING_MSG_SEND_FD", Feature::MsgRingSendFd),
    ("OP_FIXED_FD_INSTALL", Feature::FixedFdInstall),
    ("registered ring fd", Feature::RegisteredRingFd),
    ("COOP_TASKRUN", Feature::CoopTaskrun),
    ("SINGLE_ISSUER", Feature::SingleIssuer),
    ("DEFER_TASKRUN", Feature::DeferTaskrun),
    ("OP_UNLINKAT", Feature::UnlinkAt),
    ("OP_RENAMEAT", Feature::RenameAt),
    ("OP_MKDIRAT", Feature::MkdirAt),
    ("OP_SYMLINKAT", Feature::SymlinkAt),
    ("OP_LINKAT", Feature::LinkAt),
    ("OP_FALLOCATE", Feature::Fallocate),
    ("OP_FTRUNCATE", Feature::Ftruncate),
    ("OP_FADVISE", Feature::Fadvise),
    ("OP_SYNC_FILE_RANGE", Feature::SyncFileRange),
    ("READ_FIXED", Feature::RegisteredBuffers),
    ("registered-file table", Feature::RegisteredFiles),
    ("OP_SOCKET", Feature::SocketOp),
    ("OP_BIND", Feature::BindListen),
    ("OP_SPLICE", Feature::Splice),
    ("OP_TEE", Feature::Tee),
    ("IOU_PBUF_RING_INC", Feature::IncrementalBuffers),
];

/// `(5.19+)`-style kernel versions in `row`.
fn versions_in(row: &str) -> Vec<String> {
    row.match_indices('(')
        .filter_map(|(i, _)| {
            let inner = &row[i + 1..];
            let v = inner.strip_suffix(')').unwrap_or(inner);
            let end = v.find("+)")?;
            let v = &v[..end];
            (v.split('.').count() == 2 && v.split('.').all(|p| p.parse::<u32>().is_ok()))
                .then(|| v.to_string())
        })
        .collect()
}

#[test]
fn readme_enhancement_table_versions_match_the_table() {
    let (_, readme) = repo_file("README.md");
    let section = readme
        .split("## Progressive enhancement")
        .nth(1)
        .expect("README has a Progressive enhancement section");
    let section = section.split("\n## ").next().unwrap();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for row in section.lines().filter(|l| l.starts_with('|')) {
        let lower = row.to_ascii_lowercase();
        let named: Vec<Feature> = README_PHRASES
            .iter()
            .filter(|(p, _)| lower.contains(&p.to_ascii_lowercase()))
            .map(|&(_, f)| f)
            .collect();
        for v in versions_in(row) {
            checked += 1;
            let ok = named.iter().any(|f| {
                let k = f.required_kernel_version();
                format!("{}.{}", k.major, k.minor) == v
            });
            if !ok {
                let table: Vec<String> = named
                    .iter()
                    .map(|f| format!("{f} {}", f.required_kernel_version()))
                    .collect();
                wrong.push(format!("{v}+ in {row:?} (features named there: {table:?})"));
            }
        }
    }
    assert!(checked >= 6, "found only {checked} versions in the table");
    assert!(
        wrong.is_empty(),
        "README's progressive-enhancement table gives kernels the feature table does not:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn version_scan_reads_the_readme_notation() {
    assert_eq!(
        versions_in("| `x` | multishot accept (5.19+), SEND_ZC (6.0+) (not 7+) |"),
        ["5.19", "6.0"]
    );
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn guide_links_reach_existing_files_and_headings() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for doc in [
        "README.md",
        "docs/MIGRATION.md",
        "docs/TUNING.md",
        "docs/FEATURES.md",
    ] {
        let (path, text) = repo_file(doc);
        let dir = path.parent().unwrap().to_path_buf();
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = &rest[..end];
            if target.contains("://") || target.contains(' ') {
                continue;
            }
            checked += 1;
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let file = if file.is_empty() {
                path.clone()
            } else {
                dir.join(file)
            };
            let Ok(linked) = std::fs::read_to_string(&file) else {
                broken.push(format!("{doc}: {target} (no such file)"));
                continue;
            };
            let has_anchor = anchor.is_empty()
                || linked
                    .lines()
                    .filter_map(|l| l.strip_prefix('#'))
                    .map(|l| l.trim_start_matches('#'))
                    .any(|h| slug(h) == anchor);
            if !has_anchor {
                broken.push(format!("{doc}: {target} (no heading #{anchor})"));
            }
        }
    }
    assert!(checked >= 10, "found only {checked} links");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// `USED_BY_RING` (the "enabled" and "used by safer-ring" columns) names every feature the
/// library's code consults: a `Feature::Name` outside `features/` and outside comments.
#[test]
fn used_by_ring_lists_every_feature_the_code_consults() {
    fn walk(dir: &std::path::Path, files: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if !p.ends_with("features") {
                    walk(&p, files);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../safer-ring/src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    assert!(
        files.len() > 20,
        "safer-ring's sources under {}",
        src.display()
    );
    let mut missing = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for f in Feature::all() {
                let used = line
                    .match_indices(&format!("Feature::{}", f.name()))
                    .any(|(i, m)| {
                        let next = line[i + m.len()..].chars().next();
                        !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
                    });
                if used && !safer_ring::features::USED_BY_RING.contains(&f) {
                    missing.push(format!("{} in {}", f.name(), file.display()));
                }
            }
        }
    }
    assert!(missing.is_empty(), "not in USED_BY_RING: {missing:#?}");
}
