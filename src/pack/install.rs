//! Requirements installed for a Lambda target, not for the build host: binary
//! wheels only, for the runtime's Python version and ABI and the manylinux
//! tags its glibc takes ([`crate::model::runtime`]), with uv when it is there and pip
//! otherwise.
//!
//! An install lands in `<cache>/pip/<key>/target`, where the key hashes the
//! requirements file, the target (runtime, architecture, tags), the installer
//! and its version, and the extra arguments. A finished install is marked by
//! `<key>/complete` (holding the wheels it took); later runs with the same key
//! run no installer. Without a cache (`--no-cache`) it installs into a
//! temporary folder that lives as long as the pack.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use super::error::MissingWheel;
use super::install_log::{missing_version, missing_wheel, trimmed_log};
use super::PackError;
use crate::config::{InstallerChoice, Settings};
use crate::model::Target;
use crate::util::hex;

/// The program that installs.
#[derive(Debug, Clone)]
pub(super) enum Program {
    Uv { path: PathBuf },
    Pip { python: String },
}

/// The installer, and its version as it reports it (part of every install's key).
#[derive(Debug, Clone)]
pub(super) struct Installer {
    program: Program,
    version: String,
}

impl Installer {
    fn name(&self) -> &'static str {
        match self.program {
            Program::Uv { .. } => "uv",
            Program::Pip { .. } => "pip",
        }
    }

    fn is_uv(&self) -> bool {
        matches!(self.program, Program::Uv { .. })
    }
}

/// The installer `pack.installer` asks for: uv when it is on PATH (or asked
/// for by name), else pip under `pack.python`; asked for its version, which
/// installs nothing.
pub(super) fn choose(settings: &Settings) -> Result<Installer, PackError> {
    let p = &settings.pack;
    let uv = find_on_path("uv");
    let program = match (p.installer, uv) {
        (InstallerChoice::Pip, _) | (InstallerChoice::Auto, None) => Program::Pip {
            python: p.python.clone(),
        },
        (_, Some(path)) => Program::Uv { path },
        (InstallerChoice::Uv, None) => {
            return Err(install_error(
                "pack.installer is \"uv\" but no `uv` is on PATH".into(),
            ))
        }
    };
    let version = version_of(&program)?;
    Ok(Installer { program, version })
}

/// The first executable file called `name` on PATH.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// `uv 0.13.9 (…)`, or `pip 23.2.1` as its interpreter reports it.
fn version_of(program: &Program) -> Result<String, PackError> {
    let (mut cmd, shown) = match program {
        Program::Uv { path } => {
            let mut c = Command::new(path);
            c.arg("--version");
            (c, path.display().to_string())
        }
        Program::Pip { python } => {
            let mut c = Command::new(python);
            c.args(["-c", "import pip; print('pip', pip.__version__)"]);
            (c, python.clone())
        }
    };
    let out = cmd
        .output()
        .map_err(|e| install_error(format!("could not run `{shown}`: {e}")))?;
    if !out.status.success() {
        return Err(install_error(format!(
            "`{shown}` could not tell its version (is pip installed for it?): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn install_error(message: String) -> PackError {
    PackError::Pip { message }
}

/// One wheel an install took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wheel {
    pub name: String,
    pub version: String,
    /// As in the wheel's file name: `cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64`.
    pub tag: String,
}

/// What `pack --json` says of one install.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstallReport {
    pub requirements: String,
    /// `uv` or `pip`.
    pub installer: String,
    /// As the installer reports it: `uv 0.13.9 (…)`, `pip 23.2.1`.
    #[serde(default)]
    pub installer_version: String,
    /// `python3.12 x86_64`.
    pub target: String,
    pub tags: String,
    pub wheels: Vec<Wheel>,
    /// The finished install of an earlier run was reused: no installer ran.
    pub cached: bool,
    pub seconds: f64,
    /// The functions and layers that take it.
    pub used_by: Vec<String>,
}

/// Where the installed requirements are.
pub struct Installed {
    pub dir: PathBuf,
    pub report: InstallReport,
    /// Keeps a `--no-cache` install alive until the pack is done.
    _temp: Option<tempfile::TempDir>,
}

/// Where one install goes, and whether it is there.
pub(super) struct Location {
    /// Names the install: same key, same install.
    pub(super) key: String,
    requirements: PathBuf,
    target: Target,
    installer: Installer,
    base: PathBuf,
    dir: PathBuf,
    marker: PathBuf,
    temp: Option<tempfile::TempDir>,
}

impl Location {
    /// Whether a finished install is already there.
    pub(super) fn is_installed(&self) -> bool {
        self.marker.exists() && self.dir.is_dir()
    }
}

/// Finds where `requirements` is (or would be) installed for `target`: the
/// key needs the installer's identity, never an install.
pub(super) fn locate(
    settings: &Settings,
    installer: &Installer,
    requirements: &Path,
    target: Target,
    cache_dir: Option<&Path>,
) -> Result<Location, PackError> {
    let req = std::fs::read(requirements).map_err(|e| PackError::Read {
        path: requirements.display().to_string(),
        source: e,
    })?;
    let uv = installer.is_uv();
    let mut key = blake3::Hasher::new();
    key.update(b"artifact-install-2\0");
    key.update(&req);
    for part in [
        target.runtime.name.to_string(),
        target.arch.name().to_string(),
        target.platform_tags().join(","),
        target.tags_tried(uv),
        installer.version.clone(),
    ] {
        key.update(b"\0");
        key.update(part.as_bytes());
    }
    for a in &settings.pack.pip_args {
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
        key,
        requirements: requirements.to_path_buf(),
        target,
        installer: installer.clone(),
        dir: base.join("target"),
        marker: base.join("complete"),
        base,
        temp,
    })
}

/// The installer's arguments for one install into `into`.
fn command(settings: &Settings, loc: &Location, installer: &Installer, into: &Path) -> Command {
    let t = &loc.target;
    let mut cmd = match &installer.program {
        Program::Uv { path } => {
            let mut c = Command::new(path);
            c.args(["pip", "install", "--no-progress", "--python"])
                .arg(&settings.pack.python)
                .args(["--python-platform", &t.uv_platform()])
                .args(["--python-version", &t.python_version()])
                .args(["--only-binary", ":all:"]);
            c
        }
        Program::Pip { python } => {
            let mut c = Command::new(python);
            c.args(["-m", "pip", "install", "--disable-pip-version-check"])
                .args(["--no-input", "--no-compile", "--quiet"])
                .args(["--implementation", "cp"])
                .args(["--python-version", &t.python_version()])
                .args(["--only-binary=:all:"]);
            for tag in t.platform_tags() {
                c.args(["--platform", &tag]);
            }
            c
        }
    };
    cmd.current_dir(loc.requirements.parent().unwrap_or(Path::new(".")))
        .arg("-r")
        .arg(&loc.requirements)
        .arg("--target")
        .arg(into)
        .args(&settings.pack.pip_args);
    cmd
}

/// Installs at `loc` (or finds it installed).
pub(super) fn install(settings: &Settings, loc: Location) -> Result<Installed, PackError> {
    let started = Instant::now();
    let mut report = InstallReport {
        requirements: settings.shown(&loc.requirements),
        installer: loc.installer.name().into(),
        installer_version: loc.installer.version.clone(),
        target: loc.target.describe(),
        tags: loc.target.tags_tried(loc.installer.is_uv()),
        wheels: Vec::new(),
        cached: true,
        seconds: 0.0,
        used_by: Vec::new(),
    };
    if loc.is_installed() {
        report.wheels = std::fs::read(&loc.marker)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(Installed {
            dir: loc.dir,
            report,
            _temp: loc.temp,
        });
    }
    // Into a fresh folder beside the final one, then renamed: an interrupted
    // install never looks complete.
    let base = &loc.base;
    std::fs::create_dir_all(base).map_err(|e| PackError::io(base, e))?;
    let staging = base.join(format!("staging-{}", std::process::id()));
    remove_stale_staging(base);
    let _ = std::fs::remove_dir_all(&staging);
    let _ = std::fs::remove_dir_all(&loc.dir);
    tracing::info!(
        "{} install -r {} for {}",
        report.installer,
        loc.requirements.display(),
        report.target
    );
    let mut ran = run(settings, &loc, &loc.installer, &staging, &report);
    if let Err(PackError::NoWheel(_)) = &ran {
        // uv cannot ask for every manylinux tag of the Amazon Linux 2
        // runtimes (2.18 to 2.27): pip can, so auto mode asks pip too.
        let narrower = loc.target.uv_platform() != loc.target.newest_platform();
        if loc.installer.is_uv() && narrower && settings.pack.installer == InstallerChoice::Auto {
            if let Ok(pip) = pip_installer(settings) {
                tracing::info!(
                    "uv found no wheel for {}; trying pip, which takes every manylinux tag of it",
                    report.target
                );
                report.installer = pip.name().into();
                report.installer_version = pip.version.clone();
                report.tags = loc.target.tags_tried(false);
                ran = run(settings, &loc, &pip, &staging, &report);
            }
        }
    }
    ran?;
    remove_installer_leftovers(&staging);
    report.wheels = wheels_in(&staging);
    std::fs::rename(&staging, &loc.dir).map_err(|e| PackError::io(&loc.dir, e))?;
    let marker = serde_json::to_vec(&report.wheels).unwrap_or_default();
    std::fs::write(&loc.marker, marker).map_err(|e| PackError::io(&loc.marker, e))?;
    report.cached = false;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(Installed {
        dir: loc.dir,
        report,
        _temp: loc.temp,
    })
}

/// Staging folders of installs killed over an hour ago (a running install
/// of the same key in another process keeps its own, younger one).
fn remove_stale_staging(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let stale = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 3600);
        if stale && e.file_name().to_string_lossy().starts_with("staging-") {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// pip under `pack.python`, when it is there.
fn pip_installer(settings: &Settings) -> Result<Installer, PackError> {
    let program = Program::Pip {
        python: settings.pack.python.clone(),
    };
    let version = version_of(&program)?;
    Ok(Installer { program, version })
}

/// Runs `installer` into `staging`; a failure names the package without a
/// wheel when the installer's log says which.
fn run(
    settings: &Settings,
    loc: &Location,
    installer: &Installer,
    staging: &Path,
    report: &InstallReport,
) -> Result<(), PackError> {
    let _ = std::fs::remove_dir_all(staging);
    let out = command(settings, loc, installer, staging)
        .output()
        .map_err(|e| install_error(format!("could not run {}: {e}", report.installer)))?;
    if out.status.success() {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(staging);
    // uv's note of the interpreter it found says nothing of the failure.
    let log: Vec<&str> = std::str::from_utf8(&out.stderr)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with("Using CPython "))
        .collect();
    let log = trimmed_log(&log.join("\n"));
    if let Some((package, wanted, newest)) = missing_version(&log) {
        return Err(PackError::NoSuchVersion {
            requirements: report.requirements.clone(),
            package,
            wanted,
            newest,
            target: report.target.clone(),
        });
    }
    Err(match missing_wheel(&log) {
        Some((package, version)) => PackError::NoWheel(Box::new(MissingWheel {
            package,
            version,
            requirements: report.requirements.clone(),
            target: report.target.clone(),
            tags: report.tags.clone(),
            installer: report.installer.clone(),
            log,
        })),
        None => install_error(format!(
            "`{} install -r {}` for {} failed:\n{log}",
            report.installer, report.requirements, report.target
        )),
    })
}

/// Files of a `*.dist-info/` that say how, when or by whom a package was
/// installed rather than what it is: uv's cache note (the install time),
/// `INSTALLER` ("uv" or "pip"), `REQUESTED` (written by one installer and not
/// the other) and `direct_url.json` (where the wheel was found).
const INSTALL_NOTES: [&str; 4] = ["uv_cache.json", "INSTALLER", "REQUESTED", "direct_url.json"];

/// What an installer leaves that is not part of the install (uv's lock file
/// and the [`INSTALL_NOTES`]): removed with their RECORD lines, so uv and pip
/// give the same bytes and the zips do not depend on which ran, or when.
fn remove_installer_leftovers(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(".lock"));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".dist-info") {
            continue;
        }
        let present: Vec<&str> = INSTALL_NOTES
            .into_iter()
            .filter(|n| e.path().join(n).exists())
            .collect();
        if present.is_empty() {
            continue;
        }
        for n in &present {
            let _ = std::fs::remove_file(e.path().join(n));
        }
        // RECORD lists every installed file: the removed ones leave it too.
        let record = e.path().join("RECORD");
        if let Ok(text) = std::fs::read_to_string(&record) {
            let kept = without_record_lines(&text, &name, &present);
            let _ = std::fs::write(&record, kept);
        }
    }
}

/// RECORD's text without the lines of `files` in `dist_info`.
fn without_record_lines(text: &str, dist_info: &str, files: &[&str]) -> String {
    let gone: Vec<String> = files.iter().map(|f| format!("{dist_info}/{f},")).collect();
    text.lines()
        .filter(|l| !gone.iter().any(|g| l.starts_with(g.as_str())))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The wheels an install took, from each `*.dist-info/` (METADATA's name and
/// version, WHEEL's tags), in name order.
pub(super) fn wheels_in(dir: &Path) -> Vec<Wheel> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut wheels: Vec<Wheel> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".dist-info"))
        .filter_map(|e| {
            let metadata = std::fs::read_to_string(e.path().join("METADATA")).ok()?;
            let wheel = std::fs::read_to_string(e.path().join("WHEEL")).unwrap_or_default();
            Some(Wheel {
                name: header(&metadata, "Name")?,
                version: header(&metadata, "Version")?,
                tag: compressed_tag(&wheel),
            })
        })
        .collect();
    wheels.sort_by_key(|w| w.name.to_lowercase());
    wheels
}

/// The first `Key: value` header of an email-style file.
fn header(text: &str, key: &str) -> Option<String> {
    text.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// A WHEEL file's `Tag:` lines as a wheel file name writes them: each part's
/// values joined by `.`, in order of first appearance.
fn compressed_tag(wheel: &str) -> String {
    let mut parts: [Vec<&str>; 3] = Default::default();
    for line in wheel.lines() {
        let Some(tag) = line.strip_prefix("Tag:") else {
            continue;
        };
        for (i, v) in tag.trim().splitn(3, '-').enumerate() {
            if !parts[i].contains(&v) {
                parts[i].push(v);
            }
        }
    }
    parts.map(|p| p.join(".")).join("-")
}

#[cfg(test)]
mod tests {
    #[test]
    fn install_notes_leave_record_and_nothing_else_does() {
        let record = "p/__init__.py,sha256=x,1\np-1.0.dist-info/INSTALLER,sha256=y,4\np-1.0.dist-info/REQUESTED,,\np-1.0.dist-info/METADATA,sha256=z,9\np-1.0.dist-info/RECORD,,\n";
        assert_eq!(
            super::without_record_lines(record, "p-1.0.dist-info", &["INSTALLER", "REQUESTED"]),
            "p/__init__.py,sha256=x,1\np-1.0.dist-info/METADATA,sha256=z,9\np-1.0.dist-info/RECORD,,\n"
        );
    }

    use super::*;

    #[test]
    fn wheel_tags_are_written_as_in_a_file_name() {
        let wheel = "Wheel-Version: 1.0\nTag: cp312-cp312-manylinux_2_17_x86_64\nTag: cp312-cp312-manylinux2014_x86_64\n";
        assert_eq!(
            compressed_tag(wheel),
            "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64"
        );
        assert_eq!(compressed_tag("Tag: py3-none-any\n"), "py3-none-any");
    }

    #[test]
    fn headers_are_read_from_the_head_only() {
        let m = "Metadata-Version: 2.1\nName: PyJWT\nVersion: 2.10.1\n\nName: not-this\n";
        assert_eq!(header(m, "Name").as_deref(), Some("PyJWT"));
        assert_eq!(header(m, "Version").as_deref(), Some("2.10.1"));
        assert_eq!(header(m, "License"), None);
    }
}
