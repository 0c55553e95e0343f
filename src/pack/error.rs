//! What can go wrong while packing, each naming the file or function at
//! fault, with what to do about it.

use std::path::{Path, PathBuf};

use super::manifest::LAMBDA_UNZIPPED_MAX;

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
    #[error("{path} leads to {}, outside the project (through a link, `..` or an absolute path); nothing was written", target.display())]
    Escapes { path: String, target: PathBuf },
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
    Bytecode(String),
    #[error("{0}")]
    ImportCheck(String),
    #[error("[pack] slim left files out of the zips, and a slimmed zip ships only once its import check passes: {0}")]
    SlimUnchecked(String),
    #[error("{0}")]
    NoWheel(Box<MissingWheel>),
    #[error("{requirements}: no version of `{package}` matching {wanted} exists for {target}{}", newest.as_ref().map(|n| format!(" (the newest there is {n})")).unwrap_or_default())]
    NoSuchVersion {
        requirements: String,
        package: String,
        wanted: String,
        newest: Option<String>,
        target: String,
    },
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
            PackError::Escapes { .. } => {
                "pack zips files of the project only: copy what the zip needs into the project, or point the entry at a path inside it".into()
            }
            PackError::NotAFile { .. } => "remove it or add it to `exclude`".into(),
            PackError::NonUtf8 { .. } => "rename the file to a UTF-8 name, or add it to `exclude`".into(),
            PackError::TooLarge { .. } => {
                "exclude what the function does not need (tests, docs, boto3 is already in the runtime), split the function, or use a container image".into()
            }
            PackError::OutInsidePacked { .. } => {
                "set pack.out (or --out) to a folder outside the packed ones, e.g. build/lambda".into()
            }
            PackError::ImportCheck(_) => {
                "fix the import (a missing module in `files` or the requirements, a Handler naming the wrong path); `artifact pack --no-check` packs without the check".into()
            }
            PackError::SlimUnchecked(_) => {
                "let the check run (python for the runtime on PATH or [pack] python, no --no-check); if a file slim left out is needed, narrow [pack] slim (e.g. slim = [\"tests\", \"docs\"]) or set slim = false".into()
            }
            PackError::Bytecode(_) => {
                "set `bytecode = false` (in [pack] or on the function) to pack without bytecode".into()
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
            PackError::NoSuchVersion { package, newest: Some(n), .. } => format!(
                "require a version that exists, e.g. {package}=={n} (or {package}<={n}), in the requirements file"
            ),
            PackError::NoSuchVersion { package, newest: None, .. } => format!(
                "check the name `{package}` and its version on the package index, or add the index that has it with pip_args"
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

/// A requirement with no wheel for the target.
#[derive(Debug)]
pub struct MissingWheel {
    pub package: String,
    /// The version asked for (`==1.0`), empty when none was.
    pub version: String,
    pub requirements: String,
    pub target: String,
    pub tags: String,
    pub installer: String,
    /// What the installer said.
    pub log: String,
}

impl std::fmt::Display for MissingWheel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let version = if self.version.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.version)
        };
        write!(
            f,
            "{}: no wheel of `{}`{version} for {} (tried {}); {} said:\n{}",
            self.requirements, self.package, self.target, self.tags, self.installer, self.log
        )
    }
}

impl crate::output::Hint for PackError {
    fn hint(&self) -> Option<String> {
        PackError::hint(self)
    }
}
