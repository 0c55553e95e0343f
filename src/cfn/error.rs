//! What can go wrong in deploy-infra, each with what to do about it.

use std::path::PathBuf;

use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};

use crate::aws::AwsFailure;
use crate::lambda::LambdaError;
use crate::sync::SyncError;
use crate::template::TEMPLATE_S3_MAX;

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
    #[error("{}: {problem}; the manifest alone is not trusted, so nothing was deployed", path.display())]
    Provenance { path: PathBuf, problem: String },
    /// A nested stack that would not deploy as written (its TemplateURL, the
    /// template it names, a cycle); the first, and how many more.
    #[error("{first}{}", if *more > 0 { format!(" (and {more} more nested-stack problem(s): artifact validate lists them)") } else { String::new() })]
    Nested {
        first: crate::template::nested::NestedProblem,
        more: usize,
    },
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
    #[error("{what} did not finish within the deadline{}", seen.as_ref().map(|s| format!(" ({s})")).unwrap_or_default())]
    Timeout { what: String, seen: Option<String> },
    /// The whole command outlasted `--timeout` (retries included).
    #[error("deploy-infra did not finish within the deadline (--timeout {timeout})")]
    OutOfTime { timeout: String },
    #[error(transparent)]
    Aws(AwsFailure),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Lambda(#[from] LambdaError),
}

impl InfraError {
    /// A failure a wait polls through (see [`AwsFailure::is_transient`]).
    /// See [`AwsFailure::fault_label`].
    pub fn fault_label(&self) -> String {
        match self {
            InfraError::Aws(f) | InfraError::Sync(SyncError::Aws(f)) => f.fault_label(),
            other => other.to_string(),
        }
    }

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
    /// A refusal made before anything changed (the inputs are wrong): not a
    /// failed deployment, so it is neither recorded nor counted as one.
    pub fn is_refusal(&self) -> bool {
        use InfraError as E;
        matches!(
            self,
            E::NoTemplates { .. }
                | E::NoMaster { .. }
                | E::TemplateTooLarge { .. }
                | E::TemplateSyntax { .. }
                | E::NoManifest { .. }
                | E::NotPacked { .. }
                | E::LayerNotPacked { .. }
                | E::LayerParameter { .. }
                | E::ForeignManifest { .. }
                | E::ZipChanged { .. }
                | E::Provenance { .. }
                | E::FunctionsNotInTemplates { .. }
                | E::Nested { .. }
                | E::NoBucket { .. }
                | E::BucketRegion { .. }
                | E::Sync(SyncError::Secrets(_))
        )
    }

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
            InfraError::Nested { .. } => format!(
                "deploy-infra uploads every template under the templates folder to s3://<deployment bucket>/{}<path>: point each TemplateURL there, e.g. !Sub \"https://${{DeploymentBucketName}}.s3.${{AWS::Region}}.amazonaws.com/{}<path>\"",
                super::TEMPLATES_PREFIX, super::TEMPLATES_PREFIX
            ),
            InfraError::NoManifest { .. }
            | InfraError::NotPacked { .. }
            | InfraError::LayerNotPacked { .. }
            | InfraError::ForeignManifest { .. }
            | InfraError::ZipChanged { .. } => {
                "run artifact pack first (the Build stage does), with the same artifact.toml".into()
            }
            InfraError::Provenance { .. } => {
                "deploy the Build stage's own output: pack writes the zips, manifest.json and provenance.intoto.jsonl together, and nothing may change them after".into()
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
            InfraError::OutOfTime { .. } => {
                "AWS did not answer in time, or the deploy needs longer: check the endpoint and the network, or raise --timeout; the next run finishes what this one started".into()
            }
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

pub(crate) fn aws_err<E>(operation: &'static str, target: &str, e: SdkError<E>) -> InfraError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    InfraError::Aws(crate::aws::classify(operation, target, &e))
}

impl crate::output::Hint for InfraError {
    fn hint(&self) -> Option<String> {
        InfraError::hint(self)
    }
}
