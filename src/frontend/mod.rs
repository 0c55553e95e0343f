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
mod error;
pub mod invalidate;
pub mod outputs;
pub mod plan;
mod record;
mod report;
pub mod retention;
pub mod site_config;
mod wait;

use std::path::Path;
use std::time::Instant;

use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};

use crate::aws::Clients;
use crate::config::{HeaderRule, Settings};
use crate::model::S3Url;
use crate::output::Reporter;
use crate::sync::local::{self, LocalFile};
use crate::sync::rules::Rules;
use crate::sync::SyncRequest;
pub use config_js::CONFIG_JS;
pub(crate) use error::aws_err;
pub use error::FrontendError;
pub use invalidate::InvalidateMode;
pub use outputs::{read_outputs, StackValues};
pub use plan::{FrontendObserved, FrontendPlan};
pub use report::{FrontendOptions, FrontendReport, Invalidation};
pub use retention::HISTORY_KEY;

/// The default header rules of a site: entry points (HTML and the generated
/// `config_files`) never cached, the rest forever.
pub fn default_rules(config_files: Vec<String>) -> Vec<HeaderRule> {
    let mut entry_points = vec!["*.html".to_string()];
    entry_points.extend(config_files);
    vec![
        HeaderRule {
            patterns: entry_points,
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
    reporter: &dyn Reporter,
) -> Result<FrontendReport, FrontendError> {
    if opts.dry_run {
        return deploy_locked(clients, settings, opts, reporter).await;
    }
    // One run per site: a second waits (or fails naming the first), so two
    // releases never delete each other's assets or lose a history record.
    let key = site_lock_key(&settings.frontend.stack_name);
    let bucket = &settings.infra.deployment_bucket;
    let what = format!("site {}", settings.frontend.stack_name);
    let lock = match crate::aws::lock::acquire(
        clients,
        bucket,
        &key,
        &what,
        &opts.deployment_id,
        opts.wait_for_lock,
        reporter,
    )
    .await
    {
        Ok(lock) => Some(lock),
        Err(e @ crate::aws::lock::LockError::Held { .. }) => return Err(FrontendError::Locked(e)),
        Err(e) => {
            reporter.warning(format!(
                "could not take the lock s3://{bucket}/{key} ({e}); deploying without it"
            ));
            None
        }
    };
    let done = deploy_locked(clients, settings, opts, reporter).await;
    if let Some(lock) = lock {
        lock.release(clients).await;
    }
    done
}

/// The key of the site's lock in the deployment bucket.
pub fn site_lock_key(stack: &str) -> String {
    format!("deployments/locks/site-{stack}.json")
}

async fn deploy_locked(
    clients: &Clients,
    settings: &Settings,
    opts: &FrontendOptions,
    reporter: &dyn Reporter,
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
    let (observed, req) = observe(clients, settings, opts, &dist, tmp.path(), reporter).await?;
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
            reporter,
        )
        .await?;
        record_release(clients, settings, &observed, opts, &mut report, reporter).await;
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
        default_rules(site_config::files(settings))
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
    reporter: &dyn Reporter,
) -> Result<(FrontendObserved, SyncRequest), FrontendError> {
    let values = read_outputs(clients, settings).await?;
    let rules = Rules::new(&site_rules(settings));
    let generated =
        site_config::render_all(settings, &site_config::Sources::of(settings, &values))?;
    let headers: Vec<_> = generated
        .iter()
        .map(|g| rules.headers_for(&g.file))
        .collect();
    let scan_dist = dist.to_path_buf();
    let (files, history) = tokio::join!(
        tokio::task::spawn_blocking(move || local::scan(&scan_dist, &rules)),
        retention::load(clients, &values.bucket)
    );
    let mut files: Vec<LocalFile> = files.map_err(|e| FrontendError::Io {
        path: dist.to_path_buf(),
        source: std::io::Error::other(e),
    })??;
    crate::sync::refuse_reserved(&files, &[HISTORY_KEY, crate::sync::STATE_NAME])?;
    for (g, headers) in generated.iter().zip(headers) {
        if files.iter().any(|f| f.rel == g.file) {
            reporter.progress(format!(
                "  {} in the build is replaced by the one generated from the stack",
                g.file
            ));
            files.retain(|f| f.rel != g.file);
        }
        let path = tmp.join(g.file.replace('/', "__"));
        std::fs::write(&path, &g.text).map_err(|source| FrontendError::Io {
            path: path.clone(),
            source,
        })?;
        files.push(LocalFile {
            rel: g.file.clone(),
            size: g.text.len() as u64,
            sha256: local::sha256_file(&path)?,
            headers,
            path,
        });
    }
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
        copies: None,
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
            distribution_status: None,
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
    reporter: &dyn Reporter,
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
        retention::save(clients, &plan.bucket, h).await?;
    }
    if let Some(inv) = &mut report.invalidation {
        create_invalidation(clients, plan, &opts.deployment_id, inv).await?;
        if let Some(h) = &plan.history_after_invalidation {
            retention::save(clients, &plan.bucket, h).await?;
        }
        if let (true, Some(id)) = (opts.wait, inv.id.clone()) {
            let deadline = crate::poll::deadline(started, opts.timeout);
            if opts.distribution_ready {
                inv.distribution_status = Some(
                    wait::distribution(clients, &plan.distribution_id, deadline, reporter).await?,
                );
            }
            inv.status = Some(
                wait::invalidation(clients, &plan.distribution_id, &id, deadline, reporter).await?,
            );
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
    reporter: &dyn Reporter,
) {
    let changed = report.uploaded.files + report.headers_updated.files + report.deleted.files;
    if changed == 0 {
        return;
    }
    let now = crate::util::unix_now();
    let started = now.saturating_sub(report.seconds as u64);
    let (r, copies) = record::release(&o.site, opts, started, now);
    match record::save(clients, settings, r, &copies).await {
        Ok(id) => report.history = Some(id),
        Err(e) => reporter.warning(format!("the release was not recorded in the history: {e}")),
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
