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
pub mod invalidate;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};

use crate::aws::Clients;
use crate::config::{HeaderRule, Settings};
use crate::sync::local::{self, LocalFile};
use crate::sync::rules::Rules;
use crate::sync::{self, ActionKind, Count, S3Url, SyncError, SyncRequest};
use config_js::AwsConfig;

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
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{operation} failed: {message}")]
    Aws {
        operation: &'static str,
        message: String,
    },
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
            FrontendError::InvalidationTimeout { .. } => {
                "the invalidation goes on in CloudFront; deploy without --wait, or raise --timeout".into()
            }
            FrontendError::Sync(e) => return e.hint(),
            FrontendError::Io { .. } | FrontendError::Aws { .. } => return None,
        })
    }
}

fn aws_err<E>(operation: &'static str, e: aws_sdk_s3::error::SdkError<E>) -> FrontendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match sync::classify(operation, "", e) {
        e @ (SyncError::NoCredentials { .. } | SyncError::Unreachable { .. }) => {
            FrontendError::Sync(e)
        }
        other => FrontendError::Aws {
            operation,
            message: match other {
                SyncError::Aws { message, .. } | SyncError::AccessDenied { message, .. } => message,
                o => o.to_string(),
            },
        },
    }
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
}

/// The values read from the stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackValues {
    pub stack: String,
    pub api_url: String,
    pub user_pool_id: String,
    pub user_pool_client_id: String,
    pub bucket: String,
    pub distribution_id: String,
    pub url: String,
    pub region: String,
}

impl StackValues {
    pub fn aws_config(&self) -> AwsConfig {
        AwsConfig {
            user_pool_id: self.user_pool_id.clone(),
            user_pool_client_id: self.user_pool_client_id.clone(),
            region: self.region.clone(),
            api_endpoint: self.api_url.clone(),
        }
    }
}

/// Reads the six outputs; every missing or empty one is named.
pub async fn read_outputs(
    clients: &Clients,
    settings: &Settings,
) -> Result<StackValues, FrontendError> {
    let stack = &settings.frontend.stack_name;
    let view = crate::cfn::describe(&clients.cfn, stack)
        .await
        .map_err(|e| match e {
            crate::cfn::InfraError::Sync(e) => FrontendError::Sync(e),
            other => FrontendError::Aws {
                operation: "DescribeStacks",
                message: other.to_string(),
            },
        })?
        .ok_or_else(|| FrontendError::NoStack {
            stack: stack.clone(),
        })?;
    let outputs: HashMap<String, String> =
        view.outputs.into_iter().map(|o| (o.key, o.value)).collect();
    let names = &settings.frontend.outputs;
    let mut missing = Vec::new();
    let mut get = |name: &str| match outputs.get(name).map(|v| v.trim()) {
        Some(v) if !v.is_empty() => v.to_string(),
        _ => {
            missing.push(name.to_string());
            String::new()
        }
    };
    let values = StackValues {
        stack: stack.clone(),
        api_url: get(&names.api_url),
        user_pool_id: get(&names.user_pool_id),
        user_pool_client_id: get(&names.user_pool_client_id),
        bucket: get(&names.bucket),
        distribution_id: get(&names.distribution_id),
        url: get(&names.url),
        region: clients.region().to_string(),
    };
    if !missing.is_empty() {
        return Err(FrontendError::MissingOutputs {
            stack: stack.clone(),
            names: missing,
        });
    }
    Ok(values)
}

/// The recorded deployments, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct History {
    version: u32,
    deployments: Vec<Deployment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Deployment {
    id: String,
    keys: BTreeSet<String>,
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

async fn load_history(clients: &Clients, bucket: &str) -> Result<Option<History>, FrontendError> {
    match clients
        .s3
        .get_object()
        .bucket(bucket)
        .key(HISTORY_KEY)
        .send()
        .await
    {
        Ok(o) => {
            let bytes = o.body.collect().await.map_err(|e| FrontendError::Aws {
                operation: "GetObject",
                message: e.to_string(),
            })?;
            Ok(serde_json::from_slice(&bytes.into_bytes()).ok())
        }
        Err(e) if e.code() == Some("NoSuchKey") => Ok(None),
        Err(e) => Err(match sync::classify("GetObject", bucket, e) {
            SyncError::Aws { message, .. } => FrontendError::Aws {
                operation: "GetObject",
                message,
            },
            other => FrontendError::Sync(other),
        }),
    }
}

/// Deploys the site.
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
    if !dist.is_dir() {
        return Err(FrontendError::NoDist { path: dist });
    }
    let values = read_outputs(clients, settings).await?;
    let rules_cfg = if settings.sync.rules.is_empty() {
        default_rules()
    } else {
        settings.sync.rules.clone()
    };
    let rules = Rules::new(&rules_cfg);

    // The site's files, with the generated configuration in place of any built one.
    let config_text = config_js::render(&values.aws_config());
    let tmp = tempfile::tempdir().map_err(|source| FrontendError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let config_path = tmp.path().join(CONFIG_JS);
    std::fs::write(&config_path, &config_text).map_err(|source| FrontendError::Io {
        path: config_path.clone(),
        source,
    })?;
    let scan_dist = dist.clone();
    let rules_for_scan = Rules::new(&rules_cfg);
    let (files, history) = tokio::join!(
        tokio::task::spawn_blocking(move || local::scan(&scan_dist, &rules_for_scan)),
        load_history(clients, &values.bucket)
    );
    let mut files: Vec<LocalFile> = files.expect("scan task")?;
    let history = history?;
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
        headers: rules.headers_for(CONFIG_JS),
    });
    files.sort_by(|a, b| a.rel.cmp(&b.rel));

    // Keys kept for the previous deployments' open tabs. Without a history, every
    // object already there counts as the previous deployment: nothing is deleted.
    let keep_previous = opts
        .keep_previous
        .unwrap_or(settings.frontend.keep_previous);
    let mut keep: HashSet<String> = HashSet::from([HISTORY_KEY.to_string()]);
    if let Some(h) = &history {
        let n = h.deployments.len();
        for d in &h.deployments[n.saturating_sub(keep_previous)..] {
            keep.extend(d.keys.iter().cloned());
        }
    }
    let req = SyncRequest {
        dir: dist.clone(),
        dest: S3Url {
            bucket: values.bucket.clone(),
            prefix: String::new(),
        },
        settings: settings.sync.clone(),
        delete: history.is_some(),
        max_delete: None,
        dry_run: opts.dry_run,
        progress: opts.progress,
        keep: keep.clone(),
    };
    let synced = sync::sync_files(clients, &req, &files).await?;
    let current: BTreeSet<String> = files.iter().map(|f| f.rel.clone()).collect();

    let mut report = FrontendReport {
        deployment_id: opts.deployment_id.clone(),
        stack: values.stack.clone(),
        bucket: values.bucket.clone(),
        distribution_id: values.distribution_id.clone(),
        url: values.url.clone(),
        dry_run: opts.dry_run,
        uploaded: synced.uploaded,
        headers_updated: synced.headers_updated,
        unchanged: synced.unchanged,
        deleted: synced.deleted,
        kept_from_previous: if history.is_some() {
            keep.iter()
                .filter(|k| *k != HISTORY_KEY && !current.contains(*k))
                .count() as u64
        } else {
            synced.extra_remote
        },
        invalidation: None,
        summary_file: None,
        requests: Default::default(),
        seconds: 0.0,
    };

    // What may be cached wrongly now.
    let stale = synced.actions.iter().filter(|a| {
        !a.cache_control
            .as_deref()
            .is_some_and(|c| c.contains("immutable"))
            && matches!(
                a.kind,
                ActionKind::Upload | ActionKind::UpdateHeaders | ActionKind::Delete
            )
    });
    let paths = match opts.invalidate {
        InvalidateMode::None => Vec::new(),
        InvalidateMode::All => vec!["/*".to_string()],
        InvalidateMode::Changed => {
            invalidate::collapse(invalidate::paths_for(stale.map(|a| a.key.as_str())))
        }
    };

    let same_as_last = history
        .as_ref()
        .and_then(|h| h.deployments.last())
        .is_some_and(|d| d.keys == current);
    if !opts.dry_run && !same_as_last {
        // Record this deployment before anything else can fail.
        let mut h = history.unwrap_or(History {
            version: 1,
            deployments: Vec::new(),
        });
        h.deployments.push(Deployment {
            id: opts.deployment_id.clone(),
            keys: current,
        });
        let n = h.deployments.len();
        h.deployments.drain(..n.saturating_sub(keep_previous + 1));
        clients
            .s3
            .put_object()
            .bucket(&values.bucket)
            .key(HISTORY_KEY)
            .content_type("application/json")
            .cache_control("no-store")
            .body(ByteStream::from(
                serde_json::to_vec(&h).expect("history serialises"),
            ))
            .send()
            .await
            .map_err(|e| aws_err("PutObject", e))?;
    }

    if !paths.is_empty() {
        let mut inv = Invalidation {
            id: None,
            paths: paths.clone(),
            status: None,
        };
        if !opts.dry_run {
            let batch = InvalidationBatch::builder()
                .caller_reference(&opts.deployment_id)
                .paths(
                    Paths::builder()
                        .quantity(paths.len() as i32)
                        .set_items(Some(paths.clone()))
                        .build()
                        .expect("quantity is set"),
                )
                .build()
                .expect("fields are set");
            let out = clients
                .cloudfront
                .create_invalidation()
                .distribution_id(&values.distribution_id)
                .invalidation_batch(batch)
                .send()
                .await
                .map_err(|e| aws_err("CreateInvalidation", e))?;
            let created = out.invalidation();
            inv.id = created.map(|i| i.id().to_string());
            inv.status = created.map(|i| i.status().to_string());
            if opts.wait {
                if let Some(id) = &inv.id {
                    inv.status = Some(
                        wait_invalidation(
                            clients,
                            &values.distribution_id,
                            id,
                            started + opts.timeout,
                            say,
                        )
                        .await?,
                    );
                }
            }
        }
        report.invalidation = Some(inv);
    }

    report.requests = clients.requests.since(&before);
    report.seconds = started.elapsed().as_secs_f64();
    if !opts.dry_run {
        let path = settings.frontend.summary_file.clone();
        report.summary_file = Some(path.clone());
        let mut json = serde_json::to_vec_pretty(&report).expect("report serialises");
        json.push(b'\n');
        crate::pack::write_atomic(&path, &json)
            .map_err(|source| FrontendError::Io { path, source })?;
    }
    Ok(report)
}

async fn wait_invalidation(
    clients: &Clients,
    distribution: &str,
    id: &str,
    deadline: Instant,
    say: &(dyn Fn(String) + Sync),
) -> Result<String, FrontendError> {
    let mut delay = Duration::from_secs(2);
    loop {
        let out = clients
            .cloudfront
            .get_invalidation()
            .distribution_id(distribution)
            .id(id)
            .send()
            .await
            .map_err(|e| aws_err("GetInvalidation", e))?;
        let status = out
            .invalidation()
            .map(|i| i.status().to_string())
            .unwrap_or_default();
        if status == "Completed" {
            return Ok(status);
        }
        say(format!("  invalidation {id}: {status}"));
        if Instant::now() + delay > deadline {
            return Err(FrontendError::InvalidationTimeout { id: id.to_string() });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 3 / 2).min(Duration::from_secs(20));
    }
}
