//! `artifact pack`: the Build stage's Lambda zips.
//!
//! Planning resolves every function's files, hashes their contents (skipping
//! reads the stat index vouches for), computes each zip's input hash and
//! decides which zips are already up to date. Applying compresses each
//! distinct file once, in parallel (or takes it from the cache of packed contents, `store`), writes
//! each stale zip to a temporary file and renames it into place, then writes
//! `manifest.json`. Same inputs give the same bytes on any machine, with any
//! thread count. It does not upload anything: that is `deploy-infra`.

mod apply;
mod blobs;
mod deps;
mod hash;
mod inputs;
pub mod install;
mod listing;
pub mod observe;
pub mod plan;
pub mod provenance;
mod remote;
mod reuse;
mod sbom;
mod sha;
pub mod sign;
mod store;
pub mod zipfile;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Settings;
pub use plan::{PackPlan, ZipAction, ZipReason, ZipStep};

pub use apply::sbom_name;
pub use blobs::{compress, Codec};
pub use hash::hex;
pub use remote::RemoteCache;

/// Lambda's limit on a function's unzipped code size (250 MiB).
pub const LAMBDA_UNZIPPED_MAX: u64 = 262_144_000;
/// Lambda's limit on a zip uploaded directly (50 MiB); larger ones must go through S3.
pub const LAMBDA_DIRECT_UPLOAD_MAX: u64 = 52_428_800;
/// Bumped whenever the zip layout changes, so old zips are rebuilt.
const FORMAT_VERSION: &str = "artifact-zip-2";
const MANIFEST_VERSION: u32 = 1;
/// The manifest's file name inside the output folder.
pub const MANIFEST: &str = "manifest.json";

/// What can go wrong while packing, each naming the file or function at fault.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("function `{function}`: source file {path} does not exist")]
    MissingSource { function: String, path: String },
    #[error("the shared dependencies folder {path} does not exist")]
    MissingDependencies { path: String },
    #[error("function `{function}`: `{path}` needs a name inside the zip")]
    BadSpec { function: String, path: String },
    #[error(
        "function `{function}`: two sources land on `{zip_path}` in the zip: {first} and {second}"
    )]
    Collision {
        function: String,
        zip_path: String,
        first: String,
        second: String,
    },
    #[error("{path} is a broken symlink: {source}")]
    BrokenLink {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is a symlink to {}, outside the project", target.display())]
    LinkOutside { path: String, target: PathBuf },
    #[error("{path} is not a regular file, folder or symlink")]
    NotAFile { path: String },
    #[error("{path}: file name is not valid UTF-8")]
    NonUtf8 { path: String },
    #[error("function `{function}`: unzipped size {size} bytes is over Lambda's limit of {LAMBDA_UNZIPPED_MAX} bytes; largest folders: {}", largest_list(largest))]
    TooLarge {
        function: String,
        size: u64,
        largest: Vec<(String, u64)>,
    },
    #[error("pack.out {} is inside {}, which is packed: each pack would put the last zips in the next", out.display(), folder.display())]
    OutInsidePacked { out: PathBuf, folder: PathBuf },
    #[error("{path} changed while it was being packed")]
    ChangedDuringPack { path: String },
    #[error("{message}")]
    Pip { message: String },
    #[error("{0}")]
    NoWheel(Box<install::MissingWheel>),
    #[error("{} `{unit}`: {requirements} must be installed for a Lambda runtime, and none is known{}", if *layer { "layer" } else { "function" }, found.as_ref().map(|r| format!(" ({r:?} in the template is not a Python runtime artifact knows)")).unwrap_or_default())]
    NoTarget {
        unit: String,
        layer: bool,
        requirements: String,
        found: Option<String>,
    },
    #[error("{path} defines no functions to pack")]
    NoFunctions { path: String },
    #[error(transparent)]
    Secrets(#[from] crate::scan::SecretsFound),
    #[error("{0}")]
    Other(String),
}

fn largest_list(largest: &[(String, u64)]) -> String {
    largest
        .iter()
        .map(|(d, s)| format!("{d} ({:.1} MB)", *s as f64 / 1e6))
        .collect::<Vec<_>>()
        .join(", ")
}

impl PackError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> PackError {
        PackError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// How the user can fix the problem.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            PackError::MissingSource { .. } => {
                "paths in `files` are relative to `pack.source`; fix the path or create the file".into()
            }
            PackError::MissingDependencies { .. } => {
                "run the dependency install first (e.g. pip install -r requirements.txt -t lambda/package), set `pack.requirements`, or remove `pack.dependencies`".into()
            }
            PackError::BadSpec { .. } => {
                "give the entry a zip path: { path = \"...\", as = \"name.py\" }".into()
            }
            PackError::Collision { .. } => {
                "rename one of them with `as = \"...\"`, exclude one, or set `dependencies = false` on the function".into()
            }
            PackError::BrokenLink { .. } => "remove the link or create its target".into(),
            PackError::LinkOutside { .. } => {
                "copy the target into the project, or point the link at a file inside it".into()
            }
            PackError::NotAFile { .. } => "remove it or add it to `exclude`".into(),
            PackError::NonUtf8 { .. } => "rename the file to a UTF-8 name, or add it to `exclude`".into(),
            PackError::TooLarge { .. } => {
                "exclude what the function does not need (tests, docs, boto3 is already in the runtime), split the function, or use a container image".into()
            }
            PackError::OutInsidePacked { .. } => {
                "set pack.out (or --out) to a folder outside the packed ones, e.g. build/lambda".into()
            }
            PackError::ChangedDuringPack { .. } => "run pack again once nothing is writing to the source tree".into(),
            PackError::Read { .. } | PackError::Io { .. } => "check that the path exists and is readable".into(),
            PackError::Pip { .. } => {
                "check the requirements file, `pack.installer`, `pack.python` and `pack.pip_args`; run the installer by hand to see the full log".into()
            }
            PackError::NoWheel(m) => format!(
                "pin a version of {} that ships a wheel for {} (a manylinux tag no newer than the runtime's glibc; see its files on PyPI), or build its wheel in a Lambda-like container (public.ecr.aws/lambda/python) and add that wheelhouse with pip_args = [\"--find-links\", \"wheels\"]",
                m.package, m.target
            ),
            PackError::NoTarget { layer, unit, .. } => if *layer {
                format!("set runtime (and architecture) in [layers.{unit}] or [pack]")
            } else {
                format!("set [pack] runtime = \"python3.12\" (or [functions.{unit}] runtime), or give the function's AWS::Lambda::Function a Runtime")
            },
            PackError::NoFunctions { .. } => {
                "add a table like [functions.api-handler] with files = [\"index.py\"]".into()
            }
            PackError::Secrets(found) => found.hint(),
            PackError::Other(_) => return None,
        })
    }
}

/// Options from the command line.
#[derive(Debug, Clone, Default)]
pub struct PackOptions {
    pub out: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub jobs: Option<usize>,
    pub no_cache: bool,
    pub dry_run: bool,
    /// Delete cached blobs and pip installs this pack did not use.
    pub prune_cache: bool,
    /// The cache builders share (`pack.cache_url`), when it could be reached.
    pub remote: Option<std::sync::Arc<RemoteCache>>,
}

/// `manifest.json`: what was built, with no timestamps and no host details,
/// so the same inputs give the same manifest too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub project: String,
    pub environment: String,
    pub functions: BTreeMap<String, FunctionManifest>,
    /// Layer zips (`[layers]`), by layer key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub layers: BTreeMap<String, FunctionManifest>,
}

/// One function's zip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionManifest {
    /// `{project}-{environment}-{function}` (or `-{layer}`).
    pub deployed_name: String,
    /// The zip's path, relative to the manifest's folder.
    pub zip: String,
    pub zip_size: u64,
    pub unzipped_size: u64,
    pub file_count: usize,
    /// SHA-256 of the zip, hex.
    pub sha256: String,
    /// SHA-256 of the zip, base64: what Lambda reports as `CodeSha256`.
    pub code_sha256: String,
    /// BLAKE3 over every entry's path, mode and content hash, and the zip format.
    pub input_hash: String,
    /// The zip's CycloneDX SBOM, relative to the manifest's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<String>,
}

impl Manifest {
    /// A manifest of `settings`' project with no zips yet.
    pub fn new(settings: &Settings) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            project: settings.project.name.clone(),
            environment: settings.project.environment.clone(),
            functions: BTreeMap::new(),
            layers: BTreeMap::new(),
        }
    }

    /// A function's entry, or with `layer` a layer's.
    pub fn entry(&self, layer: bool, name: &str) -> Option<&FunctionManifest> {
        if layer {
            self.layers.get(name)
        } else {
            self.functions.get(name)
        }
    }

    /// The functions' entries, or with `layer` the layers'.
    pub fn section(&mut self, layer: bool) -> &mut BTreeMap<String, FunctionManifest> {
        if layer {
            &mut self.layers
        } else {
            &mut self.functions
        }
    }

    /// Reads a manifest written by an earlier pack.
    pub fn load(path: &Path) -> std::io::Result<Manifest> {
        let bytes = std::fs::read(path)?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }
}

/// What one pack did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackReport {
    #[serde(flatten)]
    pub manifest: Manifest,
    pub run: RunStats,
    /// What the pack decided (with `--dry-run`: would do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PackPlan>,
}

/// The run's own figures: these differ from run to run and are not in `manifest.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunStats {
    pub out: PathBuf,
    pub dry_run: bool,
    /// Zips (re)written, or that would be with `--dry-run`.
    pub written: Vec<String>,
    pub unchanged: Vec<String>,
    /// Zips of functions no longer in the project file, removed.
    pub removed: Vec<String>,
    /// Distinct input files, and how many were read (the rest the stat index vouched for).
    pub files: usize,
    pub files_read: usize,
    /// Distinct contents compressed in this run, taken from the cache,
    /// and copied out of the previous version of a zip being rebuilt.
    pub compressed: usize,
    pub from_cache: usize,
    pub from_previous_zip: usize,
    /// Contents fetched from the shared cache (`pack.cache_url`), the requests
    /// that took, and contents this pack added to it.
    #[serde(default)]
    pub from_remote: usize,
    #[serde(default)]
    pub remote_requests: usize,
    #[serde(default)]
    pub remote_published: usize,
    /// Cached files deleted by `--prune-cache`, and their bytes.
    pub pruned: usize,
    pub pruned_bytes: u64,
    /// `Some(true)` when every requirements install was reused.
    pub requirements_cached: Option<bool>,
    /// Each requirements install: installer, target, wheels, cache hit, seconds.
    #[serde(default)]
    pub installs: Vec<install::InstallReport>,
    /// The secret scan (None when `[scan] enabled = false`).
    #[serde(default)]
    pub scan: Option<crate::scan::ScanStats>,
    pub warnings: Vec<String>,
}

/// Packs every function of `settings`.
pub fn run(settings: &Settings, opts: &PackOptions) -> Result<PackReport, PackError> {
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(j) = opts.jobs {
        pool = pool.num_threads(j.max(1));
    }
    let pool = pool
        .build()
        .map_err(|e| PackError::Other(format!("could not start worker threads: {e}")))?;
    pool.install(|| run_in_pool(settings, opts))
}

/// Observe, plan, and unless `dry_run` apply. A dry run installs nothing.
fn run_in_pool(settings: &Settings, opts: &PackOptions) -> Result<PackReport, PackError> {
    let mut observed = observe::observe(settings, opts, !opts.dry_run)?;
    let scan = scan_inputs(settings, &mut observed)?;
    let inputs: Vec<plan::ZipInput<'_>> = observed
        .inputs
        .functions
        .iter()
        .zip(&observed.functions)
        .map(|(f, state)| plan::ZipInput {
            name: &f.name,
            layer: f.layer,
            state,
            entries: &f.entries,
            hashes: &observed.hashed.hashes,
            level: observed.level,
        })
        .collect();
    let installs = observed
        .installs
        .iter()
        .map(|i| plan::InstallStep {
            requirements: i
                .requirements
                .strip_prefix(&settings.root)
                .unwrap_or(&i.requirements)
                .display()
                .to_string(),
            target: i.target.describe(),
            runs: i.installed.as_ref().is_none_or(|x| !x.report.cached),
            used_by: i.used_by.clone(),
        })
        .collect();
    let plan = plan::plan(&inputs, observed.previous.as_ref(), installs);
    let mut stats = RunStats {
        out: observed.out.clone(),
        dry_run: opts.dry_run,
        written: plan.written().map(ZipStep::label).collect(),
        unchanged: plan
            .zips
            .iter()
            .filter(|z| z.action == ZipAction::Keep)
            .map(ZipStep::label)
            .collect(),
        removed: plan
            .removed
            .iter()
            .map(|r| {
                if r.layer {
                    format!("layer:{}", r.function)
                } else {
                    r.function.clone()
                }
            })
            .collect(),
        files: observed.inputs.files.len(),
        files_read: observed.hashed.read,
        requirements_cached: (!observed.installs.is_empty()).then(|| {
            observed
                .installs
                .iter()
                .all(|i| i.installed.as_ref().is_some_and(|x| x.report.cached))
        }),
        installs: observed
            .installs
            .iter()
            .filter_map(|i| Some(i.installed.as_ref()?.report.clone()))
            .collect(),
        scan,
        ..RunStats::default()
    };
    let manifest = if opts.dry_run {
        dry_run_manifest(settings, &observed, &plan)
    } else {
        apply::apply(settings, &observed, &plan, opts, &mut stats)?
    };
    Ok(PackReport {
        manifest,
        run: stats,
        plan: Some(plan),
    })
}

/// The secret scan over every file about to be packed: finished here for
/// the files the hash pass did not read (each content is read at most once,
/// ever: clean contents are remembered by hash in the cache folder).
fn scan_inputs(
    settings: &Settings,
    o: &mut observe::PackObserved,
) -> Result<Option<crate::scan::ScanStats>, PackError> {
    let Some((scanner, scanned)) = o.scan.take() else {
        return Ok(None);
    };
    let files: Vec<crate::scan::ScanFile> = o
        .inputs
        .files
        .iter()
        .zip(&o.hashed.hashes)
        .map(|(f, h)| crate::scan::ScanFile {
            display: f.display.clone(),
            path: f.path.clone(),
            key: *h,
        })
        .collect();
    Ok(Some(scanner.finish(
        &files,
        scanned,
        &settings.scan.allow,
    )?))
}

/// The manifest a dry run reports: kept zips as they are, zips to write without sizes.
fn dry_run_manifest(settings: &Settings, o: &observe::PackObserved, plan: &PackPlan) -> Manifest {
    let mut manifest = Manifest::new(settings);
    for (i, f) in o.inputs.functions.iter().enumerate() {
        let m = match (&plan.zips[i].action, &o.functions[i].previous) {
            (ZipAction::Keep, Some(m)) => m.clone(),
            _ => apply::manifest_entry(settings, o, i, 0, &[]),
        };
        manifest.section(f.layer).insert(f.name.clone(), m);
    }
    manifest
}

#[cfg(test)]
mod tests {
    use super::*;
    use apply::direct_upload_warnings;

    fn zip_of(size: u64) -> FunctionManifest {
        FunctionManifest {
            deployed_name: "p-dev-f".into(),
            zip: "f.zip".into(),
            zip_size: size,
            unzipped_size: size,
            file_count: 1,
            sha256: String::new(),
            code_sha256: String::new(),
            input_hash: String::new(),
            sbom: None,
        }
    }

    #[test]
    fn zips_over_the_direct_upload_limit_are_reported() {
        let functions = BTreeMap::from([
            ("at".to_string(), zip_of(LAMBDA_DIRECT_UPLOAD_MAX)),
            ("over".to_string(), zip_of(LAMBDA_DIRECT_UPLOAD_MAX + 1)),
        ]);
        let w = direct_upload_warnings(&functions);
        assert_eq!(w.len(), 1);
        assert!(w[0].starts_with("over.zip is 52.4 MB"), "{}", w[0]);
        assert!(w[0].contains("through S3"));
    }
}
