//! What deploy-infra is asked ([`DeployOptions`]) and what it did ([`InfraReport`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::layers;
use super::observe::StackOutput;
use super::plan::InfraPlan;
use crate::lambda::CodeResult;
use crate::sync::{SyncPlan, SyncReport};

/// Options from the command line (and the edge: the commit).
#[derive(Debug, Clone)]
pub struct DeployOptions {
    pub dry_run: bool,
    pub no_execute: bool,
    pub timeout: Duration,
    pub replace_failed_stack: bool,
    /// The commit being deployed, for the change set name.
    pub commit: Option<String>,
    /// Makes concurrent deploys of one commit name distinct change sets.
    pub nonce: u32,
    pub now_unix: u64,
}

/// How a deploy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The stack changed.
    Changed,
    /// Nothing to do: no change set executed.
    Unchanged,
    /// `--no-execute`: the change set waits for review.
    Review,
    /// `--dry-run`: nothing was changed.
    DryRun,
    Failed,
}

/// One row of a change set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRow {
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    pub replacement: String,
}

/// Uploads of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uploads {
    pub uploaded: u64,
    pub unchanged: u64,
}

impl From<&SyncReport> for Uploads {
    fn from(r: &SyncReport) -> Self {
        Uploads {
            uploaded: r.uploaded.files + r.headers_updated.files,
            unchanged: r.unchanged.files,
        }
    }
}

impl From<&SyncPlan> for Uploads {
    fn from(p: &SyncPlan) -> Self {
        Uploads {
            uploaded: (p.assets.len() + p.entry_points.len()) as u64,
            unchanged: p.unchanged.files,
        }
    }
}

/// What a deploy did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InfraReport {
    pub stack: String,
    pub outcome: Outcome,
    pub change_set: Option<String>,
    pub change_set_type: Option<String>,
    pub stack_status: Option<String>,
    pub template_url: String,
    pub changes: Vec<ChangeRow>,
    pub templates: Uploads,
    pub zips: Uploads,
    pub functions: Vec<CodeResult>,
    pub outputs: Vec<StackOutput>,
    pub outputs_file: Option<PathBuf>,
    /// The first failed resource event, when the stack failed.
    pub failure: Option<String>,
    pub requests: BTreeMap<String, u64>,
    pub seconds: f64,
    /// Layer versions reused or published, with their ARNs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<layers::LayerStep>,
    /// The history record written for this deploy (when it changed something).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The plan this deploy carried out (with `--dry-run`: would carry out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<InfraPlan>,
}
