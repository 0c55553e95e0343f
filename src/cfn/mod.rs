//! `artifact deploy-infra`: templates and zips to S3, one change set per
//! deploy, every stack state handled, Lambda code updated only where it changed,
//! `stack-outputs.json`.
//!
//! Everything that can be checked without AWS is checked first (names, the
//! pack manifest, template sizes and syntax); then the deployment bucket's
//! region. Uploads use the sync engine, so unchanged templates and zips are not
//! sent. The stack's state decides the change set type (or a wait, a
//! replacement, or a refusal with a hint). When neither the templates, the
//! parameters nor the tags changed, no change set is created at all (AWS would
//! report it empty); an empty change set is also success. The change set name
//! is computed once and used for every call. Execution is followed in one
//! polling loop that prints new stack events and names the root cause of a
//! failure.

pub mod apply;
pub mod changeset;
pub mod events;
pub mod layers;
pub mod local;
pub mod observe;
pub mod plan;
mod record;
pub mod stack;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};
use serde::{Deserialize, Serialize};

use crate::aws::AwsFailure;
use crate::lambda::{CodeResult, LambdaError};
use crate::sync::{SyncError, SyncPlan, SyncReport};
use crate::template::TEMPLATE_S3_MAX;
pub use events::{first_failure, Event};
pub use local::template_url;
pub use observe::{describe, StackView};
pub use plan::{Difference, InfraPlan, StackStep};
/// Where the templates and zips go in the deployment bucket.
pub const TEMPLATES_PREFIX: &str = "cfn/";
pub const ZIPS_PREFIX: &str = "lambda/";

#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    #[error("the templates folder {} does not exist", path.display())]
    NoTemplates { path: PathBuf },
    #[error("the master template {} does not exist", path.display())]
    NoMaster { path: PathBuf },
    #[error("{}: {size} bytes is over CloudFormation's {TEMPLATE_S3_MAX}-byte limit for templates in S3", path.display())]
    TemplateTooLarge { path: PathBuf, size: u64 },
    #[error("{}: not valid YAML or JSON: {message}", path.display())]
    TemplateSyntax { path: PathBuf, message: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no pack manifest at {}", path.display())]
    NoManifest { path: PathBuf },
    #[error("function `{function}` is not in the pack manifest {}", path.display())]
    NotPacked { function: String, path: PathBuf },
    #[error("layer `{layer}` is not in the pack manifest {}", path.display())]
    LayerNotPacked { layer: String, path: PathBuf },
    #[error("layer `{layer}`: the master template {template} declares no parameter {parameter} to receive the layer version's ARN")]
    LayerParameter {
        layer: String,
        template: String,
        parameter: String,
    },
    #[error("{} was packed for {packed}, but this deploy is for {deploying}", path.display())]
    ForeignManifest {
        path: PathBuf,
        packed: String,
        deploying: String,
    },
    #[error("{} changed since it was packed: its SHA-256 is not the manifest's", path.display())]
    ZipChanged { path: PathBuf },
    #[error("no AWS::Lambda::Function in the templates is named {}", names.join(", "))]
    FunctionsNotInTemplates { names: Vec<String> },
    #[error("deployment bucket {bucket} does not exist")]
    NoBucket { bucket: String },
    #[error(
        "deployment bucket {bucket} is in {bucket_region}, but the stack is deployed in {region}"
    )]
    BucketRegion {
        bucket: String,
        bucket_region: String,
        region: String,
    },
    #[error("stack {stack}: {problem}")]
    StackState {
        stack: String,
        problem: String,
        hint: String,
    },
    #[error("change set {name} failed: {reason}")]
    ChangeSetFailed { name: String, reason: String },
    #[error("stack {stack} ended in {status}{}", root_cause(.resource, .reason))]
    StackFailed {
        stack: String,
        status: String,
        resource: Option<String>,
        reason: Option<String>,
    },
    #[error("{what} did not finish within the deadline")]
    Timeout { what: String },
    #[error(transparent)]
    Aws(AwsFailure),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Lambda(#[from] LambdaError),
}

impl InfraError {
    /// A failure a wait polls through (see [`AwsFailure::is_transient`]).
    pub fn is_transient(&self) -> bool {
        match self {
            InfraError::Aws(f) | InfraError::Sync(SyncError::Aws(f)) => f.is_transient(),
            _ => false,
        }
    }
}

fn root_cause(resource: &Option<String>, reason: &Option<String>) -> String {
    match (resource, reason) {
        (Some(r), Some(why)) => format!("; first failure: {r}: {why}"),
        (None, Some(why)) => format!("; {why}"),
        _ => String::new(),
    }
}

impl InfraError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            InfraError::LayerParameter { parameter, .. } => format!(
                "add `{parameter}: {{Type: String}}` to its Parameters and use it in the functions' Layers (!Ref {parameter}), or set parameter = \"...\" in the [layers] table"
            ),
            InfraError::NoTemplates { .. } | InfraError::NoMaster { .. } => {
                "set infra.templates and infra.master_template in artifact.toml".into()
            }
            InfraError::TemplateTooLarge { .. } => {
                "split it into nested stacks (AWS::CloudFormation::Stack) under the templates folder".into()
            }
            InfraError::TemplateSyntax { .. } => "run artifact validate for every problem at once".into(),
            InfraError::NoManifest { .. }
            | InfraError::NotPacked { .. }
            | InfraError::LayerNotPacked { .. }
            | InfraError::ForeignManifest { .. }
            | InfraError::ZipChanged { .. } => {
                "run artifact pack first (the Build stage does), with the same artifact.toml".into()
            }
            InfraError::NoBucket { .. } => {
                "create the deployment bucket (the pipeline template does), or set DEPLOYMENT_BUCKET / infra.deployment_bucket".into()
            }
            InfraError::BucketRegion { bucket_region, .. } => {
                format!("deploy with --region {bucket_region}, or use a deployment bucket in the stack's region")
            }
            InfraError::StackState { hint, .. } => hint.clone(),
            InfraError::FunctionsNotInTemplates { .. } => "the stack must create each function of artifact.toml as {project}-{environment}-{function}: fix its FunctionName, or remove the function from artifact.toml; artifact validate shows the names the templates have".into(),
            InfraError::ChangeSetFailed { .. } => "fix the template or parameters; run artifact validate".into(),
            InfraError::StackFailed { status, .. } if status == "ROLLBACK_COMPLETE" => {
                "fix the cause, then deploy with --replace-failed-stack: a stack whose first create failed cannot be updated".into()
            }
            InfraError::StackFailed { .. } => "fix the cause above and deploy again; the stack was rolled back".into(),
            InfraError::Timeout { .. } => {
                "the operation goes on in AWS: follow it in the console, or raise --timeout".into()
            }
            InfraError::Sync(e) => return e.hint(),
            InfraError::Lambda(e) => return e.hint(),
            InfraError::Aws(f) => return f.hint(),
            InfraError::Io { .. } => return None,
        })
    }
}

fn aws_err<E>(operation: &'static str, target: &str, e: SdkError<E>) -> InfraError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    InfraError::Aws(crate::aws::classify(operation, target, &e))
}

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

/// One stack output, in the shape `describe-stacks` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackOutput {
    #[serde(rename = "OutputKey")]
    pub key: String,
    #[serde(rename = "OutputValue")]
    pub value: String,
    #[serde(
        rename = "Description",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub description: Option<String>,
    #[serde(
        rename = "ExportName",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub export_name: Option<String>,
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

pub use apply::deploy;
