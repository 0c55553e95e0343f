//! The Python interpreter of a Lambda runtime, on the build host: what
//! compiles a zip's bytecode and runs its import check.
//!
//! For `python3.X` the candidates are, in order: `[pack] python`, `python3.X`
//! on PATH (pyenv's shims skipped: they answer for pyenv's global version),
//! uv's managed interpreters, then pyenv's installed versions (CodeBuild's
//! standard images install Python with pyenv). Each candidate is asked once
//! for its version; the answer is kept in the cache folder by the file's
//! size, mtime and inode, so a warm pack starts no process to find it.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::Runtime;

/// A Python interpreter, as it answered the probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Interpreter {
    pub path: PathBuf,
    /// `3.12.1`.
    pub version: String,
    pub minor: u32,
    /// `importlib.util.MAGIC_NUMBER`, hex: the bytecode format.
    pub magic: String,
    /// `sys.implementation.cache_tag`: `cpython-312`.
    pub cache_tag: String,
}

const PROBE: &str = "import sys, importlib.util; print(sys.version_info[0], sys.version_info[1], sys.version.split()[0], importlib.util.MAGIC_NUMBER.hex(), sys.implementation.cache_tag)";

/// What one candidate answered, by the file it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Probed {
    stat: [u64; 3],
    found: Option<Interpreter>,
}

/// Probe answers kept between runs.
#[derive(Debug, Default)]
pub(super) struct Interpreters {
    file: Option<PathBuf>,
    known: BTreeMap<PathBuf, Probed>,
    changed: bool,
}

impl Interpreters {
    pub(super) fn load(cache_dir: Option<&Path>) -> Interpreters {
        let file = cache_dir.map(|c| c.join("bytecode").join("interpreters.json"));
        let known = file
            .as_ref()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Interpreters {
            file,
            known,
            changed: false,
        }
    }

    /// Writes the answers down when a probe ran (best effort: a cache).
    pub(super) fn save(&self) {
        if let (true, Some(f)) = (self.changed, &self.file) {
            if let Ok(bytes) = serde_json::to_vec_pretty(&self.known) {
                let _ = crate::util::write_atomic(f, &bytes);
            }
        }
    }

    /// The interpreter for `runtime`, or the candidates tried.
    pub(super) fn find(
        &mut self,
        runtime: &Runtime,
        configured: &str,
    ) -> Result<Interpreter, Vec<String>> {
        let mut tried = Vec::new();
        for path in candidates(runtime, configured) {
            match self.probe(&path) {
                Some(i) if i.minor == runtime.minor && i.version.starts_with("3.") => return Ok(i),
                Some(i) => tried.push(format!("{} (Python {})", path.display(), i.version)),
                None => tried.push(format!("{} (did not answer)", path.display())),
            }
        }
        Err(tried)
    }

    fn probe(&mut self, path: &Path) -> Option<Interpreter> {
        let stat = stat_of(path)?;
        if let Some(p) = self.known.get(path).filter(|p| p.stat == stat) {
            return p.found.clone();
        }
        let found = run_probe(path);
        self.known.insert(
            path.to_path_buf(),
            Probed {
                stat,
                found: found.clone(),
            },
        );
        self.changed = true;
        found
    }
}

/// Size, mtime and inode of the file a path leads to.
fn stat_of(path: &Path) -> Option<[u64; 3]> {
    let m = std::fs::metadata(path).ok()?;
    m.is_file().then(|| {
        [
            m.size(),
            m.mtime_nsec() as u64 ^ (m.mtime() as u64),
            m.ino(),
        ]
    })
}

fn run_probe(path: &Path) -> Option<Interpreter> {
    let mut cmd = Command::new(path);
    cmd.args(["-I", "-S", "-c", PROBE]);
    let out = super::child::run(cmd, b"", Duration::from_secs(20)).ok()?;
    if !out.status.success() {
        return None;
    }
    parse_probe(path, &String::from_utf8_lossy(&out.stdout))
}

/// The probe's one line: `3 12 3.12.1 cb0d0d0a cpython-312`.
fn parse_probe(path: &Path, text: &str) -> Option<Interpreter> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [major, minor, version, magic, tag] = parts[..] else {
        return None;
    };
    (major == "3").then_some(())?;
    Some(Interpreter {
        path: path.to_path_buf(),
        version: version.to_string(),
        minor: minor.parse().ok()?,
        magic: magic.to_string(),
        cache_tag: tag.to_string(),
    })
}

/// Where an interpreter for `runtime` may be, best first, existing files only.
fn candidates(runtime: &Runtime, configured: &str) -> Vec<PathBuf> {
    let exe = format!("python3.{}", runtime.minor);
    let path_dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let on_path = |name: &str| -> Option<PathBuf> {
        if name.contains('/') {
            return Some(PathBuf::from(name));
        }
        path_dirs
            .iter()
            .filter(|d| !d.ends_with("shims"))
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    };
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut out: Vec<PathBuf> = Vec::new();
    out.extend(on_path(configured));
    out.extend(on_path(&exe));
    let uv_dir = std::env::var_os("UV_PYTHON_INSTALL_DIR")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".local/share/uv/python")));
    let uv_prefix = format!("cpython-3.{}.", runtime.minor);
    out.extend(newest_in(
        uv_dir.as_deref(),
        &uv_prefix,
        &format!("bin/{exe}"),
    ));
    let pyenv = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".pyenv")));
    let pyenv_versions = pyenv.map(|p| p.join("versions"));
    let prefix = format!("3.{}.", runtime.minor);
    out.extend(newest_in(
        pyenv_versions.as_deref(),
        &prefix,
        &format!("bin/{exe}"),
    ));
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| p.is_file() && seen.insert(p.clone()));
    out
}

/// `dir/<name starting with prefix>/exe` for the newest such name.
fn newest_in(dir: Option<&Path>, prefix: &str, exe: &str) -> Option<PathBuf> {
    let mut names: Vec<String> = std::fs::read_dir(dir?)
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort_by_key(|n| patch_of(&n[prefix.len()..]));
    let best = names.pop()?;
    Some(dir?.join(best).join(exe))
}

/// The patch number a version folder's name starts with (`7-linux…` → 7).
fn patch_of(rest: &str) -> u32 {
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_line_gives_version_magic_and_tag() {
        let i = parse_probe(Path::new("/p"), "3 12 3.12.1 cb0d0d0a cpython-312\n").unwrap();
        assert_eq!((i.minor, i.version.as_str()), (12, "3.12.1"));
        assert_eq!(
            (i.magic.as_str(), i.cache_tag.as_str()),
            ("cb0d0d0a", "cpython-312")
        );
        assert!(parse_probe(Path::new("/p"), "2 7 2.7.18 x y").is_none());
        assert!(parse_probe(Path::new("/p"), "garbage").is_none());
    }

    #[test]
    fn the_newest_patch_folder_wins() {
        let d = tempfile::tempdir().unwrap();
        for v in ["3.12.1", "3.12.10", "3.12.9", "3.13.0"] {
            std::fs::create_dir_all(d.path().join(v).join("bin")).unwrap();
        }
        let best = newest_in(Some(d.path()), "3.12.", "bin/python3.12").unwrap();
        assert_eq!(best, d.path().join("3.12.10/bin/python3.12"));
        assert_eq!(patch_of("7-linux-x86_64-gnu"), 7);
    }
}
