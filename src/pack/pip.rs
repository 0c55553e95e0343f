//! `pack.requirements`: installing the shared dependencies with pip, once per
//! distinct requirements file and interpreter.
//!
//! The install lands in `<cache>/pip/<key>/target`, where the key hashes the
//! requirements file, the interpreter's identity and the pip arguments. A
//! finished install is marked by `<key>/complete`; later runs with the same key
//! skip pip entirely. Without a cache (`--no-cache`) it installs into a
//! temporary folder that lives as long as the pack.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::hash::hex;
use super::PackError;
use crate::config::Settings;

/// Where the installed requirements are, and whether pip ran.
pub struct Installed {
    pub dir: PathBuf,
    pub cached: bool,
    /// Keeps a `--no-cache` install alive until the pack is done.
    _temp: Option<tempfile::TempDir>,
}

fn pip_error(message: String) -> PackError {
    PackError::Pip { message }
}

/// The interpreter's identity: version, ABI tag and machine.
fn python_identity(python: &str) -> Result<String, PackError> {
    let out = Command::new(python)
        .args([
            "-c",
            "import sys, platform; print(sys.version); print(sys.implementation.cache_tag); print(platform.machine())",
        ])
        .output()
        .map_err(|e| pip_error(format!("could not run `{python}`: {e}")))?;
    if !out.status.success() {
        return Err(pip_error(format!(
            "`{python}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Where the install of a requirements file goes, and whether it is there.
pub(super) struct Location {
    base: PathBuf,
    target: PathBuf,
    marker: PathBuf,
    temp: Option<tempfile::TempDir>,
}

impl Location {
    /// Whether a finished install is already there.
    pub(super) fn is_installed(&self) -> bool {
        self.marker.exists() && self.target.is_dir()
    }
}

/// Finds where `pack.requirements` is (or would be) installed: runs the
/// interpreter to learn its identity, never pip.
pub(super) fn locate(
    settings: &Settings,
    requirements: &Path,
    cache_dir: Option<&Path>,
) -> Result<Location, PackError> {
    let p = &settings.pack;
    let req = std::fs::read(requirements).map_err(|e| PackError::Read {
        path: requirements.display().to_string(),
        source: e,
    })?;
    let mut key = blake3::Hasher::new();
    key.update(b"artifact-pip-1\0");
    key.update(&req);
    key.update(b"\0");
    key.update(python_identity(&p.python)?.as_bytes());
    for a in &p.pip_args {
        key.update(b"\0");
        key.update(a.as_bytes());
    }
    let key = hex(&key.finalize().as_bytes()[..16]);

    let (base, temp) = match cache_dir {
        Some(c) => (c.join("pip").join(&key), None),
        None => {
            let t = tempfile::tempdir().map_err(|e| PackError::io(Path::new("temp"), e))?;
            (t.path().join(&key), Some(t))
        }
    };
    Ok(Location {
        target: base.join("target"),
        marker: base.join("complete"),
        base,
        temp,
    })
}

/// Installs `pack.requirements` at `loc` (or finds it installed).
pub(super) fn install(
    settings: &Settings,
    requirements: &Path,
    loc: Location,
) -> Result<Installed, PackError> {
    let p = &settings.pack;
    let Location {
        base,
        target,
        marker,
        temp,
    } = loc;
    if marker.exists() && target.is_dir() {
        return Ok(Installed {
            dir: target,
            cached: true,
            _temp: temp,
        });
    }
    // Install into a fresh folder beside the final one, then rename: an interrupted
    // install never looks complete.
    std::fs::create_dir_all(&base).map_err(|e| PackError::io(&base, e))?;
    let staging = base.join(format!("staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let _ = std::fs::remove_dir_all(&target);
    let cwd = requirements.parent().unwrap_or(Path::new("."));
    tracing::info!("pip install -r {}", requirements.display());
    let out = Command::new(&p.python)
        .current_dir(cwd)
        .args(["-m", "pip", "install", "--disable-pip-version-check"])
        .args(["--no-input", "--no-compile", "--quiet", "-r"])
        .arg(requirements)
        .arg("-t")
        .arg(&staging)
        .args(&p.pip_args)
        .output()
        .map_err(|e| pip_error(format!("could not run `{} -m pip`: {e}", p.python)))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(pip_error(format!(
            "`pip install -r {}` failed:\n{}",
            requirements.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    std::fs::rename(&staging, &target).map_err(|e| PackError::io(&target, e))?;
    std::fs::write(&marker, b"").map_err(|e| PackError::io(&marker, e))?;
    Ok(Installed {
        dir: target,
        cached: false,
        _temp: temp,
    })
}
