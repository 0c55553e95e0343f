//! What one pack run reports ([`PackReport`]): the manifest, the plan and the run's figures.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::install;
use super::manifest::Manifest;
use super::plan::PackPlan;

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
    /// Cached contents (local, shared, or in a previous zip) refused because
    /// their bytes are not the content hash they are filed under.
    #[serde(default)]
    pub refused_from_cache: usize,
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
    /// `.pyc` compiled, taken from the cache, dropped; zips without bytecode.
    #[serde(default)]
    pub bytecode: super::BytecodeStats,
    /// The import check, per function (empty when it is off).
    #[serde(default)]
    pub checks: Vec<super::CheckResult>,
    pub warnings: Vec<String>,
}
