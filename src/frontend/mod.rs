//! `artifact deploy-frontend`: `aws-config.js` from the stack's outputs, the
//! site synced with cache rules that never break open tabs, and a CloudFront
//! invalidation of exactly what may be cached wrongly.
//!
//! Old assets are not deleted with the release that stops using them: a tab
//! still running the previous `index.html` keeps loading its chunks. The bucket
//! records which keys each deployment uploaded (`.artifact-deployments.json`);
//! a key goes once none of the last `keep_previous` deployments nor this one
//! has it.

pub mod config_js;
pub mod history;
pub mod invalidate;
pub mod outputs;
pub mod plan;
mod record;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use serde::{Deserialize, Serialize};

use crate::aws::{AwsFailure, Clients};
use crate::config::{HeaderRule, Settings};
use crate::model::S3Url;
use crate::poll::{Backoff, Poller};
use crate::sync::local::{self, LocalFile};
use crate::sync::rules::Rules;
use crate::sync::{Count, SyncError, SyncRequest};
pub use outputs::{read_outputs, StackValues};
pub use plan::{FrontendObserved, FrontendPlan};

/// The deployment history object, at the bucket root.
pub const HISTORY_KEY: &str = ".artifact-deployments.json";
/// The generated configuration's key.
pub const CONFIG_JS: &str = "aws-config.js";

#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    #[error("stack {stack} does not exist")]
    NoStack { stack: String },
    #[error("stack {stack} has no value for output(s) {}", names.join(", "))]
    MissingOutputs { stack: String, names: Vec<String> },
    #[error("the frontend build {} does not exist", path.display())]
    NoDist { path: PathBuf },
    #[error("the frontend build {} is a file, not a folder", path.display())]
    DistIsAFile { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Aws(AwsFailure),
    #[error("{0}")]
    Stack(String),
    #[error("invalidation {id} was not Completed within the deadline")]
    InvalidationTimeout { id: String },
    #[error(transparent)]
    Sync(#[from] SyncError),
}

impl FrontendError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            FrontendError::NoStack { .. } => "run artifact deploy-infra first, or set frontend.stack_name".into(),
            FrontendError::MissingOutputs { .. } => {
                "add the outputs to the stack's template, or map other names under [frontend.outputs] in artifact.toml".into()
            }
            FrontendError::NoDist { .. } => "build the frontend first (npm ci && npm run build), or pass --dist".into(),
            FrontendError::DistIsAFile { .. } => "pass the folder the build writes (e.g. --dist frontend/dist)".into(),
            FrontendError::InvalidationTimeout { .. } => {
                "the invalidation goes on in CloudFront; deploy without --wait, or raise --timeout".into()
            }
            FrontendError::Sync(e) => return e.hint(),
            FrontendError::Aws(f) => return f.hint(),
            FrontendError::Io { .. } | FrontendError::Stack(_) => return None,
        })
    }
}

fn aws_err<E>(operation: &'static str, target: &str, e: SdkError<E>) -> FrontendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    FrontendError::Aws(crate::aws::classify(operation, target, &e))
}

/// What to invalidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidateMode {
    /// Everything (`/*`), whether or not anything changed.
    All,
    /// Only what may be cached wrongly now.
    Changed,
    /// Nothing.
    None,
}

#[derive(Debug, Clone)]
pub struct FrontendOptions {
    pub dist: Option<PathBuf>,
    pub dry_run: bool,
    pub wait: bool,
    pub invalidate: InvalidateMode,
    pub keep_previous: Option<usize>,
    pub timeout: Duration,
    /// This deployment's id: recorded in the bucket, used as CallerReference.
    pub deployment_id: String,
    pub progress: bool,
    /// Scan the build for secrets (a rollback's files were scanned when first deployed).
    pub scan: bool,
}

/// One invalidation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invalidation {
    pub id: Option<String>,
    pub paths: Vec<String>,
    pub status: Option<String>,
}

/// What a frontend deploy did: also written as `deployment-summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrontendReport {
    pub deployment_id: String,
    pub stack: String,
    pub bucket: String,
    pub distribution_id: String,
    pub url: String,
    pub dry_run: bool,
    pub uploaded: Count,
    pub headers_updated: Count,
    pub unchanged: Count,
    pub deleted: Count,
    /// Objects of earlier deployments kept for open tabs.
    pub kept_from_previous: u64,
    pub invalidation: Option<Invalidation>,
    pub summary_file: Option<PathBuf>,
    pub requests: std::collections::BTreeMap<String, u64>,
    pub seconds: f64,
    /// The history record of this release (when it changed the site).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<String>,
    /// The plan this deploy carried out (with `--dry-run`: would carry out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<FrontendPlan>,
}

/// The default header rules of a site: entry points never cached, the rest forever.
pub fn default_rules() -> Vec<HeaderRule> {
    vec![
        HeaderRule {
            patterns: vec!["*.html".into(), CONFIG_JS.into()],
            cache_control: Some("no-cache, no-store, must-revalidate".into()),
            content_type: None,
        },
        HeaderRule {
            patterns: vec!["**".into()],
            cache_control: Some("public, max-age=31536000, immutable".into()),
            content_type: None,
        },
    ]
}

/// Deploys the site: observe, plan, and unless `dry_run` apply.
pub async fn deploy(
    clients: &Clients,
    settings: &Settings,
    opts: &FrontendOptions,
    say: &(dyn Fn(String) + Sync),
) -> Result<FrontendReport, FrontendError> {
    let started = Instant::now();
    let before = clients.requests.snapshot();
    let dist = opts
        .dist
        .clone()
        .unwrap_or_else(|| settings.frontend.dist.clone());
    if dist.is_file() {
        return Err(FrontendError::DistIsAFile { path: dist });
    }
    if !dist.is_dir() {
        return Err(FrontendError::NoDist { path: dist });
    }
    // The generated aws-config.js lives here until the upload is done.
    let tmp = tempfile::tempdir().map_err(|source| FrontendError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let (observed, req) = observe(clients, settings, opts, &dist, tmp.path(), say).await?;
    let keep_previous = opts
        .keep_previous
        .unwrap_or(settings.frontend.keep_previous);
    let plan = plan::plan(
        &observed,
        keep_previous,
        opts.invalidate,
        &opts.deployment_id,
    );
    let mut report = report_of(&observed, &plan, opts.dry_run);
    if !opts.dry_run {
        apply(
            clients,
            &req,
            &observed,
            &plan,
            opts,
            started,
            &mut report,
            say,
        )
        .await?;
        record_release(clients, settings, &observed, opts, &mut report).await;
    }
    report.requests = clients.requests.since(&before);
    report.seconds = started.elapsed().as_secs_f64();
    if !opts.dry_run {
        let path = settings.frontend.summary_file.clone();
        report.summary_file = Some(path.clone());
        let mut json = serde_json::to_vec_pretty(&report).map_err(|e| FrontendError::Io {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        json.push(b'\n');
        crate::util::write_atomic(&path, &json)
            .map_err(|source| FrontendError::Io { path, source })?;
    }
    report.plan = Some(plan);
    Ok(report)
}

/// The header rules of the site: `[[sync.rules]]`, or the defaults.
fn site_rules(settings: &Settings) -> Vec<HeaderRule> {
    if settings.sync.rules.is_empty() {
        default_rules()
    } else {
        settings.sync.rules.clone()
    }
}

/// Reads the stack's outputs, the build (with the generated aws-config.js,
/// written into `tmp`), the history and the bucket. Returns them with the
/// site's sync request, which apply uses too.
async fn observe(
    clients: &Clients,
    settings: &Settings,
    opts: &FrontendOptions,
    dist: &Path,
    tmp: &Path,
    say: &(dyn Fn(String) + Sync),
) -> Result<(FrontendObserved, SyncRequest), FrontendError> {
    let values = read_outputs(clients, settings).await?;
    let rules = Rules::new(&site_rules(settings));
    let config_headers = rules.headers_for(CONFIG_JS);
    let config_text = config_js::render(&values.aws_config());
    let config_path = tmp.join(CONFIG_JS);
    std::fs::write(&config_path, &config_text).map_err(|source| FrontendError::Io {
        path: config_path.clone(),
        source,
    })?;
    let scan_dist = dist.to_path_buf();
    let (files, history) = tokio::join!(
        tokio::task::spawn_blocking(move || local::scan(&scan_dist, &rules)),
        history::load(clients, &values.bucket)
    );
    let mut files: Vec<LocalFile> = files.map_err(|e| FrontendError::Io {
        path: dist.to_path_buf(),
        source: std::io::Error::other(e),
    })??;
    crate::sync::refuse_reserved(&files, &[HISTORY_KEY, crate::sync::STATE_NAME])?;
    if files.iter().any(|f| f.rel == CONFIG_JS) {
        say(format!(
            "  {CONFIG_JS} in the build is replaced by the one generated from the stack"
        ));
        files.retain(|f| f.rel != CONFIG_JS);
    }
    files.push(LocalFile {
        rel: CONFIG_JS.into(),
        path: config_path.clone(),
        size: config_text.len() as u64,
        sha256: local::sha256_file(&config_path)?,
        headers: config_headers,
    });
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    let dest = S3Url {
        bucket: values.bucket.clone(),
        prefix: String::new(),
    };
    // What to delete and keep is the plan's (history and retention), not the request's.
    let req = SyncRequest {
        dir: dist.to_path_buf(),
        dest,
        settings: settings.sync.clone(),
        delete: false,
        max_delete: None,
        dry_run: opts.dry_run,
        progress: opts.progress,
        keep: Default::default(),
        secrets: opts
            .scan
            .then(|| crate::sync::SecretCheck::of(settings))
            .flatten(),
    };
    let site = crate::sync::observe_files(clients, &req, files).await?;
    let observed = FrontendObserved {
        values,
        site,
        history: history?,
    };
    Ok((observed, req))
}

/// The report as the plan describes it, before anything is done.
fn report_of(o: &FrontendObserved, plan: &FrontendPlan, dry_run: bool) -> FrontendReport {
    let counts = crate::sync::apply::counts_of(&plan.sync);
    FrontendReport {
        deployment_id: plan.deployment_id.clone(),
        stack: o.values.stack.clone(),
        bucket: o.values.bucket.clone(),
        distribution_id: o.values.distribution_id.clone(),
        url: o.values.url.clone(),
        dry_run,
        uploaded: counts.uploaded,
        headers_updated: counts.headers_updated,
        unchanged: plan.sync.unchanged,
        deleted: counts.deleted,
        kept_from_previous: plan.kept_from_previous,
        invalidation: (!plan.invalidation_paths.is_empty()).then(|| Invalidation {
            id: None,
            paths: plan.invalidation_paths.clone(),
            status: None,
        }),
        summary_file: None,
        requests: Default::default(),
        seconds: 0.0,
        history: None,
        plan: None,
    }
}

/// Carries out the plan: the sync, the history record, the invalidation.
#[allow(clippy::too_many_arguments)]
async fn apply(
    clients: &Clients,
    req: &SyncRequest,
    o: &FrontendObserved,
    plan: &FrontendPlan,
    opts: &FrontendOptions,
    started: Instant,
    report: &mut FrontendReport,
    say: &(dyn Fn(String) + Sync),
) -> Result<(), FrontendError> {
    let synced = crate::sync::execute(
        clients,
        req,
        &o.site,
        &plan.sync,
        clients.requests.snapshot(),
    )
    .await?;
    report.uploaded = synced.uploaded;
    report.headers_updated = synced.headers_updated;
    report.deleted = synced.deleted;
    if let Some(h) = &plan.history {
        history::save(clients, &plan.bucket, h).await?;
    }
    if let Some(inv) = &mut report.invalidation {
        create_invalidation(clients, plan, &opts.deployment_id, inv).await?;
        if let Some(h) = &plan.history_after_invalidation {
            history::save(clients, &plan.bucket, h).await?;
        }
        if let (true, Some(id)) = (opts.wait, inv.id.clone()) {
            let deadline = crate::poll::deadline(started, opts.timeout);
            inv.status =
                Some(wait_invalidation(clients, &plan.distribution_id, &id, deadline, say).await?);
        }
    }
    Ok(())
}

/// Records a release that changed the site; a failure to record is a
/// warning (the deploy itself is done).
async fn record_release(
    clients: &Clients,
    settings: &Settings,
    o: &FrontendObserved,
    opts: &FrontendOptions,
    report: &mut FrontendReport,
) {
    let changed = report.uploaded.files + report.headers_updated.files + report.deleted.files;
    if changed == 0 {
        return;
    }
    let now = crate::util::unix_now();
    let started = now.saturating_sub(report.seconds as u64);
    let (r, copies) = record::release(&o.site, &opts.deployment_id, started, now);
    match record::save(clients, settings, r, &copies).await {
        Ok(id) => report.history = Some(id),
        Err(e) => tracing::warn!("the release was not recorded in the history: {e}"),
    }
}

async fn create_invalidation(
    clients: &Clients,
    plan: &FrontendPlan,
    caller_reference: &str,
    inv: &mut Invalidation,
) -> Result<(), FrontendError> {
    let bad = |e: aws_sdk_cloudfront::error::BuildError| FrontendError::Stack(e.to_string());
    let paths = Paths::builder()
        .quantity(i32::try_from(inv.paths.len()).unwrap_or(i32::MAX))
        .set_items(Some(inv.paths.clone()))
        .build()
        .map_err(bad)?;
    let batch = InvalidationBatch::builder()
        .caller_reference(caller_reference)
        .paths(paths)
        .build()
        .map_err(bad)?;
    let out = clients
        .cloudfront
        .create_invalidation()
        .distribution_id(&plan.distribution_id)
        .invalidation_batch(batch)
        .send()
        .await
        .map_err(|e| aws_err("CreateInvalidation", &plan.distribution_id, e))?;
    let created = out.invalidation();
    inv.id = created.map(|i| i.id().to_string());
    inv.status = created.map(|i| i.status().to_string());
    Ok(())
}

async fn wait_invalidation(
    clients: &Clients,
    distribution: &str,
    id: &str,
    deadline: Instant,
    say: &(dyn Fn(String) + Sync),
) -> Result<String, FrontendError> {
    let mut poll = Poller::new(Backoff::INVALIDATION, deadline);
    loop {
        let out = match clients
            .cloudfront
            .get_invalidation()
            .distribution_id(distribution)
            .id(id)
            .send()
            .await
            .map_err(|e| aws_err("GetInvalidation", id, e))
        {
            Ok(out) => out,
            Err(FrontendError::Aws(f)) if f.is_transient() => {
                poll.wait_after_fault()
                    .await
                    .map_err(|_| FrontendError::InvalidationTimeout { id: id.to_string() })?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let status = out
            .invalidation()
            .map(|i| i.status().to_string())
            .unwrap_or_default();
        if status == "Completed" {
            return Ok(status);
        }
        say(format!("  invalidation {id}: {status}"));
        poll.wait()
            .await
            .map_err(|_| FrontendError::InvalidationTimeout { id: id.to_string() })?;
    }
}
