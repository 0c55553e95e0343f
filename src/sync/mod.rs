//! `artifact sync`: a local folder to an S3 prefix, deciding by content.
//!
//! Planning lists the prefix (one LIST per 1,000 keys) and reads a small state
//! object that sync keeps beside the files (`.artifact-sync.json`: each key's
//! SHA-256, headers and the ETag S3 gave it). An object whose listed ETag and
//! size match the state is known without a HEAD; one that does not (changed
//! behind our back, or never synced by artifact) is inspected with a HEAD,
//! whose `x-amz-meta-artifact-sha256` says what it holds. Then each file is
//! unchanged, uploaded (bytes differ or the object is missing) or has its
//! headers replaced in place (same bytes, other Cache-Control or Content-Type).
//! mtimes never matter, so a fresh checkout uploads nothing, and multipart or
//! KMS ETags (not MD5s) cause no re-upload.
//!
//! Applying uploads everything but entry points (HTML, no-cache files) first,
//! then the entry points, then deletes (with `--delete`, sorted, capped by
//! `--max-delete`), then writes the new state. An interrupted sync converges
//! on the next run: what it uploaded is found by HEAD and not sent again.
//!
//! The parts: `local` and `remote` observe (only reads: the folder, LIST, GET
//! of the state, HEAD), `plan` decides with no I/O (unit-tested on literal
//! inputs), `apply` executes exactly the plan. `--dry-run` stops after the plan.

pub mod apply;
pub mod local;
mod multipart;
pub mod plan;
pub mod remote;
pub mod rules;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use serde::{Deserialize, Serialize};

use crate::aws::{AwsFailure, Clients};
use crate::config::SyncSettings;
use crate::model::{S3Url, S3UrlError};
use local::LocalFile;
pub use plan::{Action, ActionKind, Count, PlanOptions, Reason, SyncPlan};
pub use remote::SyncObserved;
use rules::Rules;

/// The state object's name, under the synced prefix.
pub const STATE_NAME: &str = ".artifact-sync.json";
/// User metadata holding an object's SHA-256 (hex).
pub const SHA_META: &str = "artifact-sha256";

/// What can go wrong in a sync, each with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    BadUrl(#[from] S3UrlError),
    #[error("{} is not a folder", path.display())]
    MissingDir { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: file name is not valid UTF-8, so it cannot be an S3 key", path.display())]
    NonUtf8 { path: PathBuf },
    #[error("{} is a symlink to {}, outside the synced folder", path.display(), target.display())]
    LinkOutside { path: PathBuf, target: PathBuf },
    #[error("{} is not a regular file, folder or symlink", path.display())]
    NotAFile { path: PathBuf },
    #[error("bucket {bucket} does not exist")]
    NoSuchBucket { bucket: String },
    #[error("{}: `{name}` is the name artifact keeps its own state under in the bucket", path.display())]
    Reserved { path: PathBuf, name: String },
    #[error(transparent)]
    Aws(#[from] AwsFailure),
    #[error(transparent)]
    Secrets(#[from] crate::scan::SecretsFound),
    #[error("refusing to delete {count} objects from s3://{bucket}/{prefix}: more than --max-delete {max}; nothing was deleted (uploads were applied)")]
    TooManyDeletes {
        bucket: String,
        prefix: String,
        count: usize,
        max: usize,
    },
}

impl SyncError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> SyncError {
        SyncError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// How the user can fix the problem.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            SyncError::BadUrl(e) => e.hint(),
            SyncError::MissingDir { .. } => "build the folder first (e.g. npm run build), or fix the path".into(),
            SyncError::NonUtf8 { .. } => "rename the file to a UTF-8 name".into(),
            SyncError::LinkOutside { .. } => "copy the target into the folder, or remove the link".into(),
            SyncError::NotAFile { .. } => "remove it from the folder".into(),
            SyncError::Reserved { .. } => "rename the file or leave it out of the folder: it would be overwritten".into(),
            SyncError::NoSuchBucket { .. } => "create the bucket (deploy-infra's stack does), or fix the bucket name and --region".into(),
            SyncError::Aws(f) => return f.hint(),
            SyncError::Secrets(found) => found.hint(),
            SyncError::TooManyDeletes { .. } => "check that the folder is complete; raise --max-delete if so many deletes are intended".into(),
            SyncError::Io { .. } => return None,
        })
    }
}

/// Turns an SDK error into one that says what to do; a missing bucket is named.
pub(crate) fn classify<E>(operation: &'static str, target: &str, err: SdkError<E>) -> SyncError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if err.code() == Some("NoSuchBucket") {
        return SyncError::NoSuchBucket {
            bucket: target.split('/').next().unwrap_or(target).to_string(),
        };
    }
    SyncError::Aws(crate::aws::classify(operation, target, &err))
}

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

/// Observes, plans and (unless `dry_run`) applies one sync of a folder.
pub async fn run(clients: &Clients, req: &SyncRequest) -> Result<SyncReport, SyncError> {
    let before = clients.requests.snapshot();
    let observed = observe(clients, req).await?;
    let plan = plan::plan(&observed, &req.plan_options());
    execute(clients, req, &observed, &plan, before).await
}

/// Reads the folder and the prefix (only reads).
pub async fn observe(clients: &Clients, req: &SyncRequest) -> Result<SyncObserved, SyncError> {
    let rules = Rules::new(&req.settings.rules);
    let dir = req.dir.clone();
    // The local scan and the remote listing overlap: neither needs the other.
    let scan = tokio::task::spawn_blocking(move || local::scan(&dir, &rules));
    let (local, view) = tokio::join!(scan, remote::fetch(clients, &req.dest));
    let local = local.map_err(|e| SyncError::io(&req.dir, std::io::Error::other(e)))??;
    refuse_reserved(&local, &[STATE_NAME])?;
    if let Some(check) = &req.secrets {
        check.run(&local)?;
    }
    remote::inspect(clients, &req.dest, local, view?, req.settings.concurrency).await
}

/// Fails when a local file would land on a key artifact keeps its own state in.
pub fn refuse_reserved(local: &[LocalFile], names: &[&str]) -> Result<(), SyncError> {
    match local.iter().find(|f| names.contains(&f.rel.as_str())) {
        Some(f) => Err(SyncError::Reserved {
            path: f.path.clone(),
            name: f.rel.clone(),
        }),
        None => Ok(()),
    }
}

/// Reads the prefix for files already scanned (only reads).
pub async fn observe_files(
    clients: &Clients,
    req: &SyncRequest,
    local: Vec<LocalFile>,
) -> Result<SyncObserved, SyncError> {
    if let Some(check) = &req.secrets {
        check.run(&local)?;
    }
    let view = remote::fetch(clients, &req.dest).await?;
    remote::inspect(clients, &req.dest, local, view, req.settings.concurrency).await
}

/// Applies `plan` unless `dry_run`, and reports (requests counted since `before`).
pub async fn execute(
    clients: &Clients,
    req: &SyncRequest,
    observed: &SyncObserved,
    plan: &SyncPlan,
    before: BTreeMap<String, u64>,
) -> Result<SyncReport, SyncError> {
    let (done, result) = if req.dry_run {
        let refused = plan.too_many_deletes.map(|t| SyncError::TooManyDeletes {
            bucket: req.dest.bucket.clone(),
            prefix: req.dest.prefix.clone(),
            count: t.count,
            max: t.max,
        });
        (apply::counts_of(plan), refused.map_or(Ok(()), Err))
    } else {
        apply::apply(clients, req, observed, plan).await
    };
    let report = SyncReport {
        destination: plan.destination.clone(),
        dry_run: req.dry_run,
        uploaded: done.uploaded,
        headers_updated: done.headers_updated,
        unchanged: plan.unchanged,
        deleted: done.deleted,
        inspected: plan.inspected,
        extra_remote: plan.extra_remote,
        actions: plan.actions().cloned().collect(),
        requests: clients.requests.since(&before),
    };
    result.map(|()| report)
}
