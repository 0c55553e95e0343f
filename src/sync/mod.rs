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
pub mod copies;
mod error;
pub mod local;
mod multipart;
pub mod plan;
pub mod remote;
mod request;
pub mod rules;

use std::collections::BTreeMap;

use crate::aws::Clients;
use local::LocalFile;
pub use plan::{Action, ActionKind, Count, PlanOptions, Reason, SyncPlan};
pub use remote::SyncObserved;
use rules::Rules;

pub(crate) use error::classify;
pub use error::SyncError;
pub use remote::{SHA_META, STATE_NAME};
pub use request::{SecretCheck, SyncReport, SyncRequest};

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
        copied: done.copied,
        unchanged: plan.unchanged,
        deleted: done.deleted,
        inspected: plan.inspected,
        extra_remote: plan.extra_remote,
        actions: plan.actions().cloned().collect(),
        requests: clients.requests.since(&before),
    };
    result.map(|()| report)
}
