//! Which dependency folders each zip takes, and the installs that make them.
//!
//! A function takes `pack.dependencies` and the install of
//! `pack.requirements` (unless `dependencies = false` or it uses a layer),
//! then the install of its own `requirements`. A layer takes its own
//! `dependencies` and the install of its `requirements`, under `python/`.
//! Every install is for the zip's target (runtime and architecture: from the
//! project file, else from the function's template resource); the same
//! requirements for the same target are installed once.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::install::{self, Installed, Installer};
use super::PackError;
use crate::config::Settings;
use crate::model::{Arch, Target};

/// One install, found or (with `--dry-run`) only located.
pub struct InstallState {
    pub requirements: PathBuf,
    pub target: Target,
    /// `None`: not installed yet, and this run may not install (dry run).
    pub installed: Option<Installed>,
    /// The functions and layers that take it.
    pub used_by: Vec<String>,
}

/// One zip's dependency folders.
#[derive(Debug, Clone, Default)]
pub(super) struct UnitDeps {
    /// Folders whose contents go into the zip, in order.
    pub folders: Vec<PathBuf>,
    /// Whether an install it needs has not run (dry run): its contents are unknown.
    pub pending: bool,
}

/// Every zip's folders (functions in settings order, then layers) and the installs.
pub(super) struct Dependencies {
    pub units: Vec<UnitDeps>,
    pub installs: Vec<InstallState>,
}

/// What a zip needs installed, before the installs are located.
struct Wanted {
    unit: String,
    folders: Vec<PathBuf>,
    requirements: Vec<PathBuf>,
    runtime: Option<&'static crate::model::Runtime>,
    arch: Option<Arch>,
}

/// The zips' needs as the project file states them.
fn wanted(settings: &Settings) -> Vec<Wanted> {
    let p = &settings.pack;
    let mut out = Vec::new();
    for f in &settings.functions {
        let shared = f.dependencies && f.layers.is_empty();
        let mut w = Wanted {
            unit: f.name.clone(),
            folders: Vec::new(),
            requirements: Vec::new(),
            runtime: f.runtime.or(p.runtime),
            arch: f.architecture.or(p.architecture),
        };
        if shared {
            w.folders.extend(p.dependencies.clone());
            w.requirements.extend(p.requirements.clone());
        }
        w.requirements.extend(f.requirements.clone());
        out.push(w);
    }
    for l in &settings.layers {
        // A layer's target: its own, the project's, or that of the functions using it.
        let users: Vec<&crate::config::Function> = settings
            .functions
            .iter()
            .filter(|f| f.layers.contains(&l.name))
            .collect();
        let runtimes: Vec<_> = users.iter().map(|f| f.runtime).collect();
        let archs: Vec<_> = users.iter().map(|f| f.architecture).collect();
        out.push(Wanted {
            unit: l.name.clone(),
            folders: l.dependencies.clone().into_iter().collect(),
            requirements: l.requirements.clone().into_iter().collect(),
            runtime: l.runtime.or(p.runtime).or_else(|| agreed(&runtimes)),
            arch: l.architecture.or(p.architecture).or_else(|| agreed(&archs)),
        });
    }
    out
}

/// The value every one of `values` has, when they all have the same one.
fn agreed<T: Copy + PartialEq>(values: &[Option<T>]) -> Option<T> {
    let first = (*values.first()?)?;
    values.iter().all(|v| *v == Some(first)).then_some(first)
}

/// Finds (and unless `install` is false, makes) every zip's dependency folders.
pub(super) fn resolve(
    settings: &Settings,
    cache_dir: Option<&std::path::Path>,
    install: bool,
) -> Result<Dependencies, PackError> {
    let wanted = wanted(settings);
    let root = settings
        .root
        .canonicalize()
        .map_err(|e| PackError::io(&settings.root, e))?;
    for w in &wanted {
        for d in &w.folders {
            if !d.is_dir() {
                return Err(PackError::MissingDependencies {
                    path: d.display().to_string(),
                });
            }
            // A dependency folder that is (or passes through) a link out of the project.
            let resolved = d.canonicalize().map_err(|e| PackError::io(d, e))?;
            if !super::paths::is_inside(&root, &resolved) {
                return Err(PackError::Escapes {
                    path: settings.shown(d),
                    target: resolved,
                });
            }
        }
    }
    let needs_install = wanted.iter().any(|w| !w.requirements.is_empty());
    let installer = if needs_install {
        Some(install::choose(settings)?)
    } else {
        None
    };
    // Runtimes not set in the project file come from the templates.
    let from_templates = if wanted
        .iter()
        .any(|w| !w.requirements.is_empty() && (w.runtime.is_none() || w.arch.is_none()))
    {
        crate::template::TemplateSet::read(settings)
            .functions(settings, None)
            .by_name
    } else {
        BTreeMap::new()
    };
    let mut installs: Vec<InstallState> = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    let mut units = Vec::new();
    for (i, w) in wanted.into_iter().enumerate() {
        let mut unit = UnitDeps {
            folders: w.folders,
            pending: false,
        };
        if let Some(installer) = &installer {
            for req in &w.requirements {
                let target = target_of(
                    settings,
                    i,
                    &w.unit,
                    w.runtime,
                    w.arch,
                    req,
                    &from_templates,
                )?;
                let at = locate_once(
                    settings,
                    installer,
                    req,
                    target,
                    cache_dir,
                    install,
                    &mut keys,
                    &mut installs,
                )?;
                let state = &mut installs[at];
                state.used_by.push(if i < settings.functions.len() {
                    w.unit.clone()
                } else {
                    format!("layer:{}", w.unit)
                });
                match &state.installed {
                    Some(done) => unit.folders.push(done.dir.clone()),
                    None => unit.pending = true,
                }
            }
        }
        units.push(unit);
    }
    for s in &mut installs {
        if let Some(done) = &mut s.installed {
            done.report.used_by = s.used_by.clone();
        }
    }
    Ok(Dependencies { units, installs })
}

/// The install of `req` for `target`, located (and made) once however many zips take it.
#[allow(clippy::too_many_arguments)]
fn locate_once(
    settings: &Settings,
    installer: &Installer,
    req: &std::path::Path,
    target: Target,
    cache_dir: Option<&std::path::Path>,
    install: bool,
    keys: &mut Vec<String>,
    installs: &mut Vec<InstallState>,
) -> Result<usize, PackError> {
    let loc = install::locate(settings, installer, req, target, cache_dir)?;
    if let Some(at) = keys.iter().position(|k| *k == loc.key) {
        return Ok(at);
    }
    keys.push(loc.key.clone());
    let installed = if install || loc.is_installed() {
        Some(install::install(settings, loc)?)
    } else {
        None
    };
    installs.push(InstallState {
        requirements: req.to_path_buf(),
        target,
        installed,
        used_by: Vec::new(),
    });
    Ok(installs.len() - 1)
}

/// The target of zip `i` (a function when `i` is below the function count).
fn target_of(
    settings: &Settings,
    i: usize,
    unit: &str,
    runtime: Option<&'static crate::model::Runtime>,
    arch: Option<Arch>,
    requirements: &std::path::Path,
    from_templates: &BTreeMap<String, crate::template::TemplateTarget>,
) -> Result<Target, PackError> {
    let found = settings
        .functions
        .get(i)
        .and_then(|f| from_templates.get(&f.deployed_name));
    let runtime = runtime.or_else(|| {
        found
            .and_then(|t| t.runtime.as_deref())
            .and_then(crate::model::runtime::runtime_named)
    });
    let Some(runtime) = runtime else {
        return Err(PackError::NoTarget {
            unit: unit.to_string(),
            layer: i >= settings.functions.len(),
            requirements: settings.shown(requirements),
            found: found.and_then(|t| t.runtime.clone()),
        });
    };
    let arch = arch
        .or_else(|| {
            found
                .and_then(|t| t.architecture.as_deref())
                .and_then(Arch::parse)
        })
        .unwrap_or(Arch::X86_64);
    Ok(Target { runtime, arch })
}
