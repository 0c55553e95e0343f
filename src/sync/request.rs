//! One sync to run ([`SyncRequest`], with its secret check) and what it did ([`SyncReport`]).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::SyncError;
use super::local::LocalFile;
use super::plan::{Action, Count, PlanOptions};
use crate::config::SyncSettings;
use crate::model::S3Url;

/// One sync to run.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub dir: PathBuf,
    pub dest: S3Url,
    pub settings: SyncSettings,
    pub delete: bool,
    pub max_delete: Option<usize>,
    pub dry_run: bool,
    /// Show a progress bar (only when stderr is a terminal and output is for people).
    pub progress: bool,
    /// Keys never deleted, even with `delete` (e.g. assets of recent deployments).
    pub keep: HashSet<String>,
    /// The secret scan over the local files before anything goes up (None: no scan).
    pub secrets: Option<SecretCheck>,
    /// Contents this run put in other buckets: copied from there server-side
    /// instead of uploaded (None: always upload).
    pub copies: Option<std::sync::Arc<super::copies::Copies>>,
}

/// How a sync scans its local files for secrets.
#[derive(Debug, Clone, Default)]
pub struct SecretCheck {
    /// Findings and allow entries name files relative to this folder.
    pub root: PathBuf,
    pub allow: Vec<crate::config::ScanAllow>,
    /// Where contents found clean are remembered.
    pub cache_dir: Option<PathBuf>,
}

impl SecretCheck {
    /// The project's scan settings, or None when `[scan] enabled = false`.
    pub fn of(settings: &crate::config::Settings) -> Option<SecretCheck> {
        settings.scan.enabled.then(|| SecretCheck {
            root: settings.root.clone(),
            allow: settings.scan.allow.clone(),
            cache_dir: Some(settings.pack.cache_dir.clone()),
        })
    }

    /// Scans `files`: fails with every finding no allow entry lets through.
    pub fn run(&self, files: &[LocalFile]) -> Result<Option<crate::scan::ScanStats>, SyncError> {
        let files: Vec<crate::scan::ScanFile> = files
            .iter()
            .map(|f| crate::scan::ScanFile {
                display: f
                    .path
                    .strip_prefix(&self.root)
                    .map(|p| p.to_string_lossy().replace('\\', "/"))
                    .unwrap_or_else(|_| f.rel.clone()),
                path: f.path.clone(),
                key: f.sha256,
            })
            .collect();
        Ok(Some(crate::scan::check_files(
            &files,
            &self.allow,
            self.cache_dir.as_deref(),
        )?))
    }
}

impl SyncRequest {
    /// The part of the request the plan depends on.
    pub fn plan_options(&self) -> PlanOptions<'_> {
        PlanOptions {
            delete: self.delete,
            max_delete: self.max_delete,
            keep: &self.keep,
        }
    }
}

/// The outcome of a sync (or its plan, with `--dry-run`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SyncReport {
    pub destination: String,
    pub dry_run: bool,
    pub uploaded: Count,
    pub headers_updated: Count,
    /// Of the uploads, those copied server-side from another bucket.
    #[serde(default)]
    pub copied: Count,
    pub unchanged: Count,
    pub deleted: Count,
    /// Objects whose state was unknown and had to be inspected with HEAD.
    pub inspected: u64,
    /// Remote objects not present locally and left alone (no `--delete`).
    pub extra_remote: u64,
    /// Changes in the order they are (or would be) applied.
    pub actions: Vec<Action>,
    /// Requests sent, by operation.
    pub requests: BTreeMap<String, u64>,
}
