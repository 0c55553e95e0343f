//! The scan over a set of files: each distinct content scanned once, in
//! parallel; contents found clean are remembered by hash in the cache
//! folder, so an unchanged file is never read again for the scan; findings
//! in a file an allow entry names (by path and SHA-256) are let through.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::detect::{is_binary, BINARY_PROBE};
use super::{scan_bytes, Hit};
use crate::config::ScanAllow;

/// Bumped whenever a detector changes: contents found clean before are then scanned again.
const RULES_VERSION: u32 = 2;

/// What the memo of clean contents is keyed by: the content, and the traits
/// of the name it was scanned under (the rules that applied), so bytes found
/// clean under one name are not taken as clean under a name other rules cover.
fn memo_key(content: &[u8; 32], name: &str) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(content);
    h.update(&[super::detect::NameTraits::of(name).bits()]);
    *h.finalize().as_bytes()
}

/// A file to scan.
#[derive(Debug, Clone)]
pub struct ScanFile {
    /// How findings and allow entries name it (relative to the project root).
    pub display: String,
    pub path: PathBuf,
    /// A hash of its contents (any 32-byte hash the caller already has).
    pub key: [u8; 32],
}

/// What a scan did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScanStats {
    pub files: usize,
    /// Distinct contents scanned (the rest were known clean).
    pub scanned: usize,
    /// Bytes of text scanned (binary files are recognized from their first 8 KiB).
    pub bytes_scanned: u64,
    /// Time spent scanning, summed over threads (reading included only where
    /// the scan read a file itself, not where it rode on pack's hash pass).
    pub seconds: f64,
    /// Files with findings that an allow entry lets through.
    pub allowed: Vec<String>,
}

/// One secret in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub path: String,
    #[serde(flatten)]
    pub hit: Hit,
    /// The file's SHA-256, for an allow entry.
    pub sha256: String,
}

/// Secrets found: the command stops before anything is packed or uploaded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} secret(s) found:{}", findings.len(), list(findings, stale))]
pub struct SecretsFound {
    pub findings: Vec<Finding>,
    /// Allow entries that name a file found here whose contents changed since.
    pub stale: Vec<String>,
}

fn list(findings: &[Finding], stale: &[String]) -> String {
    let mut out = String::new();
    for f in findings {
        out.push_str(&format!(
            "\n  {}:{}: {}: {}",
            f.path,
            f.hit.line,
            f.hit.kind.describe(),
            f.hit.masked
        ));
    }
    for s in stale {
        out.push_str(&format!(
            "\n  ([[scan.allow]] names {s} with other contents: the file changed since it was reviewed)"
        ));
    }
    out
}

impl SecretsFound {
    pub fn hint(&self) -> String {
        let first = &self.findings[0];
        let mut hint = format!(
            "take each secret out of the files (and rotate it: it may already be in version control); \
             a finding reviewed as harmless is allowed, until the file changes, by adding to artifact.toml:\n\
             [[scan.allow]]\npath = \"{}\"\nsha256 = \"{}\"",
            first.path, first.sha256
        );
        // A bundle renamed by every build: an entry that outlives upgrades.
        let rules: HashSet<&str> = self
            .findings
            .iter()
            .filter(|f| f.path == first.path)
            .map(|f| f.hit.kind.rule())
            .collect();
        if let (Some(glob), [rule]) = (
            bundle_glob(&first.path),
            rules.into_iter().collect::<Vec<_>>().as_slice(),
        ) {
            hint.push_str(&format!(
                "\nor, for a bundle whose name changes with each build, that rule in every version of it:\n\
                 [[scan.allow]]\npath = \"{glob}\"\nrule = \"{rule}\""
            ));
        }
        hint
    }
}

/// `assets/vendor-*.js` for a file named with a content hash
/// (`assets/vendor-1a2b3c4d.js`, `app.3f2a91c0.css`); None otherwise.
fn bundle_glob(path: &str) -> Option<String> {
    let (dir, name) = path.rsplit_once('/').map_or(("", path), |(d, n)| (d, n));
    let (stem, ext) = name.rsplit_once('.')?;
    let cut = stem.rfind(['-', '.'])?;
    let hash = &stem[cut + 1..];
    let hashed = hash.len() >= 6
        && hash.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && hash.bytes().any(|b| b.is_ascii_digit());
    if !hashed || cut == 0 {
        return None;
    }
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    Some(format!("{prefix}{}*.{ext}", &stem[..=cut]))
}

fn cache_file(dir: &Path) -> PathBuf {
    dir.join(format!("secret-scan-v{RULES_VERSION}.bin"))
}

fn load_clean(dir: Option<&Path>) -> HashSet<[u8; 32]> {
    let Some(bytes) = dir.and_then(|d| std::fs::read(cache_file(d)).ok()) else {
        return HashSet::new();
    };
    bytes
        .chunks_exact(32)
        .filter_map(|c| <[u8; 32]>::try_from(c).ok())
        .collect()
}

fn save_clean(dir: &Path, keys: &[[u8; 32]]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(cache_file(dir))?;
    f.write_all(&keys.concat())
}

/// A file's bytes, or None for a binary file (a NUL in its first 8 KiB),
/// of which only those 8 KiB are read.
fn read_text(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).saturating_add(1));
    (&mut f).take(BINARY_PROBE as u64).read_to_end(&mut bytes)?;
    if is_binary(&bytes) {
        return Ok(None);
    }
    f.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// One distinct content, scanned.
#[derive(Debug, Clone)]
pub struct Scanned {
    len: u64,
    hits: Vec<Hit>,
    /// Its SHA-256, when it has findings (for allow entries).
    sha256: Option<String>,
    /// Whether it could be read (an unreadable file is not known clean).
    read: bool,
    /// The traits of the name it was scanned under ([`NameTraits::bits`]).
    traits: u8,
}

impl Scanned {
    fn of(name: &str, bytes: &[u8]) -> Scanned {
        if is_binary(bytes) {
            return Scanned::binary();
        }
        let hits = scan_bytes(name, bytes);
        let sha256 = Some(crate::util::hex(&Sha256::digest(bytes))).filter(|_| !hits.is_empty());
        Scanned {
            len: bytes.len() as u64,
            hits,
            sha256,
            read: true,
            traits: super::detect::NameTraits::of(name).bits(),
        }
    }

    fn binary() -> Scanned {
        Scanned {
            len: 0,
            hits: Vec::new(),
            sha256: None,
            read: true,
            traits: 0,
        }
    }

    fn unreadable() -> Scanned {
        Scanned {
            read: false,
            ..Scanned::binary()
        }
    }
}

/// A scan in progress: the contents known clean, loaded once. Files can be
/// scanned as another pass reads them ([`Scanner::inspect`]); [`Scanner::finish`]
/// reads and scans the rest and decides.
pub struct Scanner {
    clean: HashSet<[u8; 32]>,
    cache_dir: Option<PathBuf>,
    /// Time spent scanning, summed over threads.
    busy_ns: AtomicU64,
}

impl Scanner {
    pub fn load(cache_dir: Option<&Path>) -> Scanner {
        Scanner {
            busy_ns: AtomicU64::new(0),
            clean: load_clean(cache_dir),
            cache_dir: cache_dir.map(Path::to_path_buf),
        }
    }

    /// The same scanner, reading what was remembered but remembering nothing
    /// new (a dry run writes nothing).
    pub fn remembering_nothing(mut self) -> Scanner {
        self.cache_dir = None;
        self
    }

    /// Scans bytes another pass has read, unless their content is known clean.
    pub fn inspect(&self, name: &str, key: &[u8; 32], bytes: &[u8]) -> Option<Scanned> {
        (!self.clean.contains(&memo_key(key, name)))
            .then(|| self.timed(|| Scanned::of(name, bytes)))
    }

    fn timed<T>(&self, f: impl FnOnce() -> T) -> T {
        let started = std::time::Instant::now();
        let out = f();
        let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.busy_ns.fetch_add(ns, Ordering::Relaxed);
        out
    }

    /// Scans what `scanned` lacks, remembers new clean contents, and fails
    /// with every finding no allow entry lets through.
    pub fn finish(
        self,
        files: &[ScanFile],
        scanned: HashMap<[u8; 32], Scanned>,
        allow: &[ScanAllow],
    ) -> Result<ScanStats, SecretsFound> {
        // Files by memo key: the same bytes under names other rules cover are scanned apart.
        let mut by_key: HashMap<[u8; 32], Vec<&ScanFile>> = HashMap::new();
        for f in files {
            let memo = memo_key(&f.key, &f.display);
            if !self.clean.contains(&memo) {
                by_key.entry(memo).or_default().push(f);
            }
        }
        let scanned: HashMap<[u8; 32], Scanned> = by_key
            .par_iter()
            .map(|(memo, same)| {
                let first = same[0];
                let traits = super::detect::NameTraits::of(&first.display).bits();
                // A binary content has no name-dependent findings: what another pass found holds.
                let known = scanned
                    .get(&first.key)
                    .filter(|s| s.traits == traits || s.hits.is_empty() && s.len == 0);
                if let Some(s) = known {
                    return (*memo, s.clone());
                }
                // A file that cannot be read is left to the command's own reading, which reports it.
                let s = self.timed(|| match read_text(&first.path) {
                    Ok(Some(bytes)) => Scanned::of(&first.display, &bytes),
                    Ok(None) => Scanned::binary(),
                    Err(_) => Scanned::unreadable(),
                });
                (*memo, s)
            })
            .collect();
        let mut stats = ScanStats {
            files: files.len(),
            scanned: scanned.len(),
            bytes_scanned: scanned.values().map(|s| s.len).sum(),
            allowed: Vec::new(),
            seconds: 0.0,
        };
        let mut newly_clean = Vec::new();
        let (mut findings, mut stale) = (Vec::new(), Vec::new());
        for (key, s) in scanned {
            let Some(sha) = s.sha256 else {
                if s.read {
                    newly_clean.push(key);
                }
                continue;
            };
            for f in &by_key[&key] {
                let entries: Vec<&ScanAllow> =
                    allow.iter().filter(|a| a.names(&f.display)).collect();
                let holds = |a: &&ScanAllow, rule: &str| {
                    a.sha256.as_ref().is_none_or(|s| *s == sha)
                        && a.rule.as_deref().is_none_or(|r| r == rule)
                };
                let left: Vec<&Hit> = s
                    .hits
                    .iter()
                    .filter(|h| !entries.iter().any(|a| holds(a, h.kind.rule())))
                    .collect();
                if left.is_empty() {
                    stats.allowed.push(f.display.clone());
                    continue;
                }
                if entries
                    .iter()
                    .any(|a| a.sha256.as_ref().is_some_and(|s| *s != sha))
                {
                    stale.push(f.display.clone());
                }
                findings.extend(left.into_iter().map(|h| Finding {
                    path: f.display.clone(),
                    hit: h.clone(),
                    sha256: sha.clone(),
                }));
            }
        }
        if let (Some(dir), false) = (&self.cache_dir, newly_clean.is_empty()) {
            newly_clean.sort_unstable();
            if let Err(e) = save_clean(dir, &newly_clean) {
                tracing::warn!("could not remember the files scanned clean: {e}");
            }
        }
        if findings.is_empty() {
            stats.allowed.sort();
            stats.seconds = self.busy_ns.load(Ordering::Relaxed) as f64 / 1e9;
            return Ok(stats);
        }
        findings.sort_by(|a, b| (&a.path, a.hit.line).cmp(&(&b.path, b.hit.line)));
        stale.sort();
        stale.dedup();
        Err(SecretsFound { findings, stale })
    }
}

/// Scans `files`; fails with every finding no allow entry lets through.
pub fn check_files(
    files: &[ScanFile],
    allow: &[ScanAllow],
    cache_dir: Option<&Path>,
) -> Result<ScanStats, SecretsFound> {
    Scanner::load(cache_dir).finish(files, HashMap::new(), allow)
}

impl crate::output::Hint for SecretsFound {
    fn hint(&self) -> Option<String> {
        Some(SecretsFound::hint(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, text: &str) -> ScanFile {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        ScanFile {
            display: name.to_string(),
            path,
            key: *blake3::hash(text.as_bytes()).as_bytes(),
        }
    }

    fn gitlab() -> String {
        ["glpat-", "Xy3_Zq8-Lm2Np5Rt7Vw9"].concat()
    }

    #[test]
    fn bundles_named_by_content_get_a_glob() {
        assert_eq!(
            bundle_glob("frontend/dist/assets/vendor-1a2b3c4d.js").as_deref(),
            Some("frontend/dist/assets/vendor-*.js")
        );
        assert_eq!(
            bundle_glob("app.3f2a91c0.css").as_deref(),
            Some("app.*.css")
        );
        assert_eq!(bundle_glob("lambda/index.py"), None);
        assert_eq!(bundle_glob("assets/my-app.js"), None);
        assert_eq!(bundle_glob("-1a2b3c4.js"), None);
    }

    #[test]
    fn a_glob_and_rule_entry_lets_that_rule_through_in_every_version() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("assets")).unwrap();
        let generic = "api_secret = \"q8Xf2LmN9pR3tY7wZk4V\"\n";
        let a = file(dir.path(), "assets/vendor-1a2b3c4d.js", generic);
        let err = check_files(std::slice::from_ref(&a), &[], None).unwrap_err();
        assert!(
            err.hint()
                .contains("path = \"assets/vendor-*.js\"\nrule = \"generic-secret\""),
            "{}",
            err.hint()
        );
        let allow = [ScanAllow {
            path: "assets/vendor-*.js".into(),
            sha256: None,
            rule: Some("generic-secret".into()),
        }];
        let b = file(
            dir.path(),
            "assets/vendor-9f8e7d6c.js",
            &format!("{generic}// upgraded\n"),
        );
        let ok = check_files(&[a, b.clone()], &allow, None).unwrap();
        assert_eq!(ok.allowed.len(), 2);
        // Another rule in the same files is not let through.
        let c = file(
            dir.path(),
            "assets/vendor-5a5a5a5a.js",
            &format!("t = '{}'\n", gitlab()),
        );
        let err = check_files(&[b, c], &allow, None).unwrap_err();
        assert_eq!(err.findings.len(), 1);
        assert_eq!(err.findings[0].hit.kind.rule(), "gitlab-token");
    }

    #[test]
    fn an_allow_entry_lets_a_file_through_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let bad = file(dir.path(), "a.py", &format!("t = '{}'\n", gitlab()));
        let clean = file(dir.path(), "b.py", "x = 1\n");
        let err = check_files(&[bad.clone(), clean.clone()], &[], None).unwrap_err();
        assert_eq!(err.findings.len(), 1);
        assert_eq!(err.findings[0].path, "a.py");
        assert!(
            err.to_string().contains("a.py:1: a GitLab token: glpa****"),
            "{err}"
        );
        assert!(err.hint().contains(&err.findings[0].sha256));
        let allow = [ScanAllow {
            path: "a.py".into(),
            sha256: Some(err.findings[0].sha256.clone()),
            rule: None,
        }];
        let ok = check_files(&[bad, clean], &allow, None).unwrap();
        assert_eq!(ok.allowed, vec!["a.py"]);
        // The file changes: the entry no longer matches, and says so.
        let edited = file(
            dir.path(),
            "a.py",
            &format!("t = '{}'\n# edited\n", gitlab()),
        );
        let err = check_files(&[edited], &allow, None).unwrap_err();
        assert_eq!(err.stale, vec!["a.py"]);
        assert!(err.to_string().contains("with other contents"), "{err}");
    }

    #[test]
    fn clean_contents_are_remembered_and_never_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let files = [
            file(dir.path(), "a.py", "x = 1\n"),
            file(dir.path(), "b.py", "y = 2\n"),
        ];
        assert_eq!(check_files(&files, &[], Some(&cache)).unwrap().scanned, 2);
        assert_eq!(check_files(&files, &[], Some(&cache)).unwrap().scanned, 0);
        // A file with a finding is never remembered as clean.
        let bad = file(dir.path(), "c.py", &format!("t = '{}'\n", gitlab()));
        assert!(check_files(std::slice::from_ref(&bad), &[], Some(&cache)).is_err());
        assert!(check_files(&[bad], &[], Some(&cache)).is_err());
        // Nor is one that could not be read.
        let gone = ScanFile {
            display: "gone.py".into(),
            path: dir.path().join("gone.py"),
            key: [7; 32],
        };
        assert_eq!(
            check_files(std::slice::from_ref(&gone), &[], Some(&cache))
                .unwrap()
                .scanned,
            1
        );
        assert_eq!(check_files(&[gone], &[], Some(&cache)).unwrap().scanned, 1);
    }
}
