//! `manifest.json` ([`Manifest`]): what pack built, with Lambda's size limits.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::Settings;

/// Lambda's limit on a function's unzipped code size (250 MiB).
pub const LAMBDA_UNZIPPED_MAX: u64 = 262_144_000;
/// Lambda's limit on a zip uploaded directly (50 MiB); larger ones must go through S3.
pub const LAMBDA_DIRECT_UPLOAD_MAX: u64 = 52_428_800;
/// Bumped whenever the zip layout changes, so old zips are rebuilt.
pub(crate) const FORMAT_VERSION: &str = "artifact-zip-2";
pub(crate) const MANIFEST_VERSION: u32 = 1;
/// The manifest's file name inside the output folder.
pub const MANIFEST: &str = "manifest.json";

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
    /// The `.pyc` files it carries (absent: none, `bytecode = false` or no interpreter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytecode: Option<BytecodeManifest>,
    /// What `[pack] slim` left out of it (absent: nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slimmed: Option<Slimmed>,
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

/// What a zip's manifest entry says of its bytecode (no counts that vary by run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BytecodeManifest {
    pub mode: String,
    /// The interpreter's version: `3.12.1`.
    pub python: String,
    /// `.pyc` files in the zip.
    pub files: usize,
    /// Sources in test folders inside packages given no `.pyc`
    /// (`[pack] bytecode_tests = false`): no handler imports them.
    #[serde(default, skip_serializing_if = "no_tests_left")]
    pub left_in_tests: usize,
    /// Sources that got no `.pyc`, and why (Python could not compile them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub file: String,
    pub reason: String,
}

/// Files `[pack] slim` left out of a zip, by kind, and their bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slimmed {
    pub files: usize,
    pub bytes: u64,
    /// Kind (`tests`, `stubs`, `sources`, `docs`) -> files dropped.
    pub kinds: BTreeMap<String, usize>,
}

fn no_tests_left(n: &usize) -> bool {
    *n == 0
}
