//! What deploy-frontend is asked ([`FrontendOptions`]) and what it did
//! ([`FrontendReport`], also written as `deployment-summary.json`).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::invalidate::InvalidateMode;
use super::plan::FrontendPlan;
use crate::sync::Count;

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
    /// How long to wait while another run deploys the same site.
    pub wait_for_lock: Duration,
    /// The commit deployed (the one restored, for a rollback), for the history.
    pub commit: Option<String>,
    /// For a rollback: the release it brings back.
    pub rollback_of: Option<String>,
    /// With `wait`: first wait until the distribution is `Deployed` (the
    /// stack was deployed in express mode).
    pub distribution_ready: bool,
}

/// One invalidation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invalidation {
    pub id: Option<String>,
    pub paths: Vec<String>,
    pub status: Option<String>,
    /// The distribution's status once waited for (express mode, `--wait`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution_status: Option<String>,
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
