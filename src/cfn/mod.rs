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

pub mod stack;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudformation::types::{
    Capability, ChangeSetStatus, ChangeSetType, Parameter, Tag, TemplateStage,
};
use serde::{Deserialize, Serialize};

use crate::aws::Clients;
use crate::config::Settings;
use crate::lambda::{self, CodeResult, CodeTarget, LambdaError, Pacing};
use crate::names;
use crate::pack::{Manifest, MANIFEST};
use crate::sync::local::LocalFile;
use crate::sync::rules::Headers;
use crate::sync::{self, S3Url, SyncError, SyncReport, SyncRequest};
use stack::StackAction;

/// CloudFormation's limit on a template read from S3.
pub const TEMPLATE_S3_MAX: u64 = 1_048_576;
/// CloudFormation's limit on a template passed inline.
pub const TEMPLATE_INLINE_MAX: u64 = 51_200;
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
    #[error("{operation} failed: {message}")]
    Aws {
        operation: &'static str,
        message: String,
    },
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Lambda(#[from] LambdaError),
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
            InfraError::NoTemplates { .. } | InfraError::NoMaster { .. } => {
                "set infra.templates and infra.master_template in artifact.toml".into()
            }
            InfraError::TemplateTooLarge { .. } => {
                "split it into nested stacks (AWS::CloudFormation::Stack) under the templates folder".into()
            }
            InfraError::TemplateSyntax { .. } => "run artifact validate for every problem at once".into(),
            InfraError::NoManifest { .. } | InfraError::NotPacked { .. } => {
                "run artifact pack first (the Build stage does), with the same artifact.toml".into()
            }
            InfraError::NoBucket { .. } => {
                "create the deployment bucket (the pipeline template does), or set DEPLOYMENT_BUCKET / infra.deployment_bucket".into()
            }
            InfraError::BucketRegion { bucket_region, .. } => {
                format!("deploy with --region {bucket_region}, or use a deployment bucket in the stack's region")
            }
            InfraError::StackState { hint, .. } => hint.clone(),
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
            InfraError::Io { .. } | InfraError::Aws { .. } => return None,
        })
    }
}

fn aws_err<E>(operation: &'static str, e: SdkError<E>) -> InfraError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match sync::classify(operation, "", e) {
        e @ (SyncError::NoCredentials { .. } | SyncError::Unreachable { .. }) => {
            InfraError::Sync(e)
        }
        SyncError::Aws { message, .. } | SyncError::AccessDenied { message, .. } => {
            InfraError::Aws { operation, message }
        }
        other => InfraError::Aws {
            operation,
            message: other.to_string(),
        },
    }
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
}

/// A checked template set: what the master declares, and its bytes.
struct Templates {
    master_body: String,
    /// The parameters the master template declares: only these are passed.
    declared_parameters: HashSet<String>,
    /// Declared parameters' defaults, as CloudFormation reports them.
    defaults: BTreeMap<String, String>,
    /// Parameters whose value CloudFormation resolves at deploy time (SSM types).
    has_dynamic_parameters: bool,
}

fn check_templates(settings: &Settings) -> Result<Templates, InfraError> {
    let dir = &settings.infra.templates;
    if !dir.is_dir() {
        return Err(InfraError::NoTemplates { path: dir.clone() });
    }
    let master = dir.join(&settings.infra.master_template);
    if !master.is_file() {
        return Err(InfraError::NoMaster { path: master });
    }
    for path in template_files(dir)? {
        let size = std::fs::metadata(&path)
            .map_err(|source| InfraError::Io {
                path: path.clone(),
                source,
            })?
            .len();
        if size > TEMPLATE_S3_MAX {
            return Err(InfraError::TemplateTooLarge { path, size });
        }
    }
    let master_body = std::fs::read_to_string(&master).map_err(|source| InfraError::Io {
        path: master.clone(),
        source,
    })?;
    let doc: serde_norway::Value =
        serde_norway::from_str(&master_body).map_err(|e| InfraError::TemplateSyntax {
            path: master.clone(),
            message: e.to_string(),
        })?;
    let params = doc.get("Parameters").and_then(|p| p.as_mapping());
    let declared_parameters = params
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect::<HashSet<_>>()
        })
        .unwrap_or_default();
    let defaults = params
        .map(|m| {
            m.iter()
                .filter_map(|(k, p)| {
                    let v = match p.get("Default")? {
                        serde_norway::Value::String(s) => s.clone(),
                        serde_norway::Value::Number(n) => n.to_string(),
                        serde_norway::Value::Bool(b) => b.to_string(),
                        serde_norway::Value::Sequence(items) => items
                            .iter()
                            .filter_map(|i| i.as_str().map(str::to_string))
                            .collect::<Vec<_>>()
                            .join(","),
                        _ => return None,
                    };
                    Some((k.as_str()?.to_string(), v))
                })
                .collect()
        })
        .unwrap_or_default();
    let has_dynamic_parameters = params.is_some_and(|m| {
        m.values().any(|p| {
            p.get("Type")
                .and_then(|t| t.as_str())
                .is_some_and(|t| t.starts_with("AWS::SSM::Parameter"))
        })
    });
    Ok(Templates {
        master_body,
        defaults,
        declared_parameters,
        has_dynamic_parameters,
    })
}

/// Template files below `dir`: `.yaml`, `.yml`, `.json`, `.template`.
pub fn template_files(dir: &Path) -> Result<Vec<PathBuf>, InfraError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|source| InfraError::Io {
            path: d.clone(),
            source,
        })?;
        for e in rd {
            let p = e
                .map_err(|source| InfraError::Io {
                    path: d.clone(),
                    source,
                })?
                .path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json" | "template")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The zips to deploy, from the pack manifest.
fn packed_zips(settings: &Settings) -> Result<(Manifest, Vec<LocalFile>), InfraError> {
    let path = settings.pack.out.join(MANIFEST);
    if settings.functions.is_empty() {
        // A stack without Lambda code (the pipeline's own, say): nothing was packed.
        let empty = Manifest {
            version: 1,
            project: settings.project.name.clone(),
            environment: settings.project.environment.clone(),
            functions: Default::default(),
        };
        return Ok((empty, Vec::new()));
    }
    let manifest =
        Manifest::load(&path).map_err(|_| InfraError::NoManifest { path: path.clone() })?;
    let mut files = Vec::new();
    for f in &settings.functions {
        let m = manifest
            .functions
            .get(&f.name)
            .ok_or_else(|| InfraError::NotPacked {
                function: f.name.clone(),
                path: path.clone(),
            })?;
        let zip = settings.pack.out.join(&m.zip);
        let mut sha = [0u8; 32];
        for (i, b) in sha.iter_mut().enumerate() {
            *b = u8::from_str_radix(m.sha256.get(2 * i..2 * i + 2).unwrap_or("zz"), 16)
                .map_err(|_| InfraError::NoManifest { path: path.clone() })?;
        }
        // The upload sends this hash as the object's checksum: a zip changed
        // since pack fails the upload rather than deploying unknown bytes.
        files.push(LocalFile {
            rel: format!("{}.zip", f.name),
            path: zip,
            size: m.zip_size,
            sha256: sha,
            headers: Headers {
                cache_control: None,
                content_type: "application/zip".into(),
            },
        });
    }
    Ok((manifest, files))
}

/// The regional URL CloudFormation reads a template from (or the endpoint override's).
pub fn template_url(clients: &Clients, bucket: &str, key: &str) -> String {
    match clients.endpoint_url() {
        Some(e) => format!("{}/{bucket}/{key}", e.trim_end_matches('/')),
        None => format!(
            "https://s3.{}.amazonaws.com/{bucket}/{key}",
            clients.region()
        ),
    }
}

async fn check_bucket_region(clients: &Clients, bucket: &str) -> Result<(), InfraError> {
    let out = clients
        .s3
        .get_bucket_location()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| match sync::classify("GetBucketLocation", bucket, e) {
            SyncError::NoSuchBucket { .. } => InfraError::NoBucket {
                bucket: bucket.to_string(),
            },
            other => InfraError::Sync(other),
        })?;
    let region = match out.location_constraint().map(|c| c.as_str()) {
        None | Some("") => "us-east-1".to_string(),
        Some("EU") => "eu-west-1".to_string(),
        Some(r) => r.to_string(),
    };
    if region != clients.region() {
        return Err(InfraError::BucketRegion {
            bucket: bucket.to_string(),
            bucket_region: region,
            region: clients.region().to_string(),
        });
    }
    Ok(())
}

/// A stack as far as a deploy cares.
#[derive(Debug, Clone)]
pub(crate) struct StackView {
    pub(crate) status: String,
    pub(crate) parameters: BTreeMap<String, String>,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) outputs: Vec<StackOutput>,
}

pub(crate) async fn describe(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<Option<StackView>, InfraError> {
    let out = match cfn.describe_stacks().stack_name(stack).send().await {
        Ok(o) => o,
        Err(e)
            if e.code() == Some("ValidationError")
                && e.message().is_some_and(|m| m.contains("does not exist")) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(aws_err("DescribeStacks", e)),
    };
    let Some(s) = out.stacks().first() else {
        return Ok(None);
    };
    Ok(Some(StackView {
        status: s
            .stack_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        parameters: s
            .parameters()
            .iter()
            .map(|p| {
                (
                    p.parameter_key().unwrap_or_default().to_string(),
                    p.parameter_value().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        tags: s
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        outputs: s
            .outputs()
            .iter()
            .map(|o| StackOutput {
                key: o.output_key().unwrap_or_default().to_string(),
                value: o.output_value().unwrap_or_default().to_string(),
                description: o.description().map(str::to_string),
                export_name: o.export_name().map(str::to_string),
            })
            .collect(),
    }))
}

/// Polls until the stack leaves every `*_IN_PROGRESS` state (or disappears).
async fn wait_settled(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
    deadline: Instant,
    say: &(dyn Fn(String) + Sync),
) -> Result<Option<StackView>, InfraError> {
    let mut delay = Duration::from_secs(1);
    loop {
        let view = describe(cfn, stack).await?;
        match &view {
            Some(v) if !stack::settled(&v.status) && v.status != "REVIEW_IN_PROGRESS" => {
                say(format!("  waiting: stack {stack} is {}", v.status));
            }
            _ => return Ok(view),
        }
        if Instant::now() + delay > deadline {
            return Err(InfraError::Timeout {
                what: format!("stack {stack}'s current operation"),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 3 / 2).min(Duration::from_secs(15));
    }
}

/// Deploys the stack and the Lambda code.
pub async fn deploy(
    clients: &Clients,
    settings: &Settings,
    opts: &DeployOptions,
    say: &(dyn Fn(String) + Sync),
) -> Result<InfraReport, InfraError> {
    let started = Instant::now();
    let before = clients.requests.snapshot();
    let deadline = started + opts.timeout;
    let infra = &settings.infra;
    let stack_name = infra.stack_name.clone();

    // ---- everything that needs no AWS call ----
    let templates = check_templates(settings)?;
    let (manifest, zips) = packed_zips(settings)?;
    let change_set_name = names::change_set_name(opts.commit.as_deref(), opts.now_unix, opts.nonce);
    names::check_change_set_name(&change_set_name).map_err(|e| InfraError::StackState {
        stack: stack_name.clone(),
        problem: e.to_string(),
        hint: e.hint.clone(),
    })?;
    let bucket = infra.deployment_bucket.clone();
    let template_url = template_url(
        clients,
        &bucket,
        &format!("{TEMPLATES_PREFIX}{}", infra.master_template),
    );
    let parameters: Vec<(String, String)> = infra
        .parameters
        .iter()
        .filter(|(k, _)| templates.declared_parameters.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();

    let mut report = InfraReport {
        stack: stack_name.clone(),
        outcome: Outcome::Unchanged,
        change_set: None,
        change_set_type: None,
        stack_status: None,
        template_url: template_url.clone(),
        changes: Vec::new(),
        templates: Uploads::default(),
        zips: Uploads::default(),
        functions: Vec::new(),
        outputs: Vec::new(),
        outputs_file: None,
        failure: None,
        requests: BTreeMap::new(),
        seconds: 0.0,
    };

    // ---- uploads and the stack's state, concurrently ----
    check_bucket_region(clients, &bucket).await?;
    // The site's header rules do not apply to templates and zips.
    let sync_req = |prefix: &str, dir: &Path| SyncRequest {
        dir: dir.to_path_buf(),
        dest: S3Url {
            bucket: bucket.clone(),
            prefix: prefix.to_string(),
        },
        settings: crate::config::SyncSettings {
            rules: Vec::new(),
            ..settings.sync.clone()
        },
        delete: false,
        max_delete: None,
        dry_run: opts.dry_run,
        progress: false,
        keep: Default::default(),
    };
    let t_req = sync_req(TEMPLATES_PREFIX, &infra.templates);
    let z_req = sync_req(ZIPS_PREFIX, &settings.pack.out);
    let zips_synced = async {
        if zips.is_empty() {
            return Ok(None);
        }
        sync::sync_files(clients, &z_req, &zips).await.map(Some)
    };
    let (t, z, current) = tokio::join!(
        sync::run(clients, &t_req),
        zips_synced,
        describe(&clients.cfn, &stack_name)
    );
    let (t, z) = (t?, z?);
    report.templates = Uploads::from(&t);
    report.zips = z.as_ref().map(Uploads::from).unwrap_or_default();
    let mut current = current?;

    // ---- the stack's state decides what happens ----
    let change_set_type = loop {
        let status = current.as_ref().map(|s| s.status.as_str());
        match stack::decide(status, opts.replace_failed_stack) {
            StackAction::Create | StackAction::CreateOverReview => break ChangeSetType::Create,
            StackAction::Update => break ChangeSetType::Update,
            StackAction::Wait => {
                current = wait_settled(&clients.cfn, &stack_name, deadline, say).await?;
            }
            StackAction::Replace if opts.dry_run => break ChangeSetType::Create,
            StackAction::Replace => {
                say(format!(
                    "  stack {stack_name} is {}: deleting it to create it again (--replace-failed-stack)",
                    status.unwrap_or_default()
                ));
                clients
                    .cfn
                    .delete_stack()
                    .stack_name(&stack_name)
                    .send()
                    .await
                    .map_err(|e| aws_err("DeleteStack", e))?;
                current = wait_settled(&clients.cfn, &stack_name, deadline, say).await?;
                if let Some(v) = &current {
                    if v.status != "DELETE_COMPLETE" {
                        return Err(InfraError::StackState {
                            stack: stack_name.clone(),
                            problem: format!("deleting the failed stack ended in {}", v.status),
                            hint: "delete it in the CloudFormation console, then deploy again"
                                .into(),
                        });
                    }
                    current = None;
                }
            }
            StackAction::Fail { problem, hint } => {
                return Err(InfraError::StackState {
                    stack: stack_name.clone(),
                    problem,
                    hint,
                })
            }
        }
    };
    report.stack_status = current.as_ref().map(|s| s.status.clone());

    // ---- nothing changed: no change set at all ----
    let unchanged = match (&current, change_set_type == ChangeSetType::Update) {
        (Some(view), true)
            if report.templates.uploaded == 0 && !templates.has_dynamic_parameters =>
        {
            // What the update would set: ours, else the template's defaults.
            let mut effective = templates.defaults.clone();
            effective.extend(parameters.iter().cloned());
            let same_params =
                view.parameters == effective && !view.parameters.values().any(|v| v == "****");
            let same_tags = view.tags == infra.tags;
            same_params
                && same_tags
                && deployed_template(&clients.cfn, &stack_name)
                    .await?
                    .as_deref()
                    == Some(templates.master_body.as_str())
        }
        _ => false,
    };

    let lambda_targets: Vec<CodeTarget> = settings
        .functions
        .iter()
        .map(|f| CodeTarget {
            function: f.name.clone(),
            deployed_name: f.deployed_name.clone(),
            bucket: bucket.clone(),
            key: format!("{ZIPS_PREFIX}{}.zip", f.name),
            code_sha256: manifest.functions[&f.name].code_sha256.clone(),
        })
        .collect();
    let pacing = Pacing::new(deadline.saturating_duration_since(Instant::now()));

    if opts.dry_run {
        report.outcome = Outcome::DryRun;
        report.change_set_type = (!unchanged).then(|| change_set_type.as_str().to_string());
        if current.is_some() {
            report.functions =
                lambda::update_code(&clients.lambda, &lambda_targets, true, pacing).await?;
            report.outputs = current.map(|c| c.outputs).unwrap_or_default();
        }
        return Ok(finish(report, clients, &before, started));
    }

    let mut final_view = current.clone();
    if !unchanged {
        report.change_set = Some(change_set_name.clone());
        report.change_set_type = Some(change_set_type.as_str().to_string());
        let cs = create_change_set(
            clients,
            settings,
            &change_set_name,
            change_set_type.clone(),
            &template_url,
            &parameters,
            deadline,
        )
        .await?;
        match cs {
            None => {
                say(format!(
                    "  change set {change_set_name} has no changes: deleted it"
                ));
                report.change_set = None;
            }
            Some(changes) => {
                for c in &changes {
                    say(format!(
                        "  {:<8} {:<32} {:<36} replacement: {}",
                        c.action, c.logical_id, c.resource_type, c.replacement
                    ));
                }
                report.changes = changes;
                if opts.no_execute {
                    report.outcome = Outcome::Review;
                    return Ok(finish(report, clients, &before, started));
                }
                let (view, failure) =
                    execute_and_follow(clients, &stack_name, &change_set_name, deadline, say)
                        .await?;
                report.stack_status = view.as_ref().map(|v| v.status.clone());
                if let Some(failure) = failure {
                    report.outcome = Outcome::Failed;
                    report.failure = Some(failure.clone());
                    let status = report.stack_status.clone().unwrap_or_default();
                    let (resource, reason) = failure
                        .split_once(": ")
                        .map(|(a, b)| (Some(a.to_string()), Some(b.to_string())))
                        .unwrap_or((None, Some(failure.clone())));
                    return Err(InfraError::StackFailed {
                        stack: stack_name,
                        status,
                        resource,
                        reason,
                    });
                }
                report.outcome = Outcome::Changed;
                final_view = view;
            }
        }
    }

    // ---- Lambda code, only where it changed ----
    report.functions = lambda::update_code(&clients.lambda, &lambda_targets, false, pacing).await?;
    if report.functions.iter().any(|f| f.action == "updated") {
        report.outcome = Outcome::Changed;
    }

    // ---- stack-outputs.json ----
    if report.outcome == Outcome::Changed && report.change_set.is_some() {
        // Outputs as the stack has them now.
        final_view = describe(&clients.cfn, &stack_name).await?;
    }
    report.stack_status = final_view.as_ref().map(|v| v.status.clone());
    report.outputs = final_view.map(|v| v.outputs).unwrap_or_default();
    let mut json = serde_json::to_vec_pretty(&report.outputs).expect("outputs serialise");
    json.push(b'\n');
    crate::pack::write_atomic(&infra.outputs_file, &json).map_err(|source| InfraError::Io {
        path: infra.outputs_file.clone(),
        source,
    })?;
    report.outputs_file = Some(infra.outputs_file.clone());
    Ok(finish(report, clients, &before, started))
}

fn finish(
    mut report: InfraReport,
    clients: &Clients,
    before: &BTreeMap<String, u64>,
    started: Instant,
) -> InfraReport {
    report.requests = clients.requests.since(before);
    report.seconds = started.elapsed().as_secs_f64();
    report
}

async fn deployed_template(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<Option<String>, InfraError> {
    let out = cfn
        .get_template()
        .stack_name(stack)
        .template_stage(TemplateStage::Original)
        .send()
        .await
        .map_err(|e| aws_err("GetTemplate", e))?;
    Ok(out.template_body().map(str::to_string))
}

/// Creates the change set and waits for it; `None` when it has nothing to do
/// (it is deleted then).
async fn create_change_set(
    clients: &Clients,
    settings: &Settings,
    name: &str,
    kind: ChangeSetType,
    template_url: &str,
    parameters: &[(String, String)],
    deadline: Instant,
) -> Result<Option<Vec<ChangeRow>>, InfraError> {
    let cfn = &clients.cfn;
    let stack = &settings.infra.stack_name;
    let tags: Vec<Tag> = settings
        .infra
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    cfn.create_change_set()
        .stack_name(stack)
        .change_set_name(name)
        .change_set_type(kind)
        .template_url(template_url)
        .set_parameters(Some(
            parameters
                .iter()
                .map(|(k, v)| {
                    Parameter::builder()
                        .parameter_key(k)
                        .parameter_value(v)
                        .build()
                })
                .collect(),
        ))
        .set_capabilities(Some(
            settings
                .infra
                .capabilities
                .iter()
                .map(|c| Capability::from(c.as_str()))
                .collect(),
        ))
        .set_tags((!tags.is_empty()).then_some(tags))
        // The same name as token: a retried call cannot create a second change set.
        .client_token(name)
        .send()
        .await
        .map_err(|e| aws_err("CreateChangeSet", e))?;

    let mut delay = Duration::from_millis(500);
    loop {
        let out = cfn
            .describe_change_set()
            .stack_name(stack)
            .change_set_name(name)
            .send()
            .await
            .map_err(|e| aws_err("DescribeChangeSet", e))?;
        match out.status() {
            Some(ChangeSetStatus::CreateComplete) => {
                let mut rows = collect_changes(out.changes());
                let mut token = out.next_token().map(str::to_string);
                while let Some(t) = token {
                    let page = cfn
                        .describe_change_set()
                        .stack_name(stack)
                        .change_set_name(name)
                        .next_token(t)
                        .send()
                        .await
                        .map_err(|e| aws_err("DescribeChangeSet", e))?;
                    rows.extend(collect_changes(page.changes()));
                    token = page.next_token().map(str::to_string);
                }
                return Ok(Some(rows));
            }
            Some(ChangeSetStatus::Failed) => {
                let reason = out.status_reason().unwrap_or_default().to_string();
                if stack::is_empty_change_set(&reason) {
                    cfn.delete_change_set()
                        .stack_name(stack)
                        .change_set_name(name)
                        .send()
                        .await
                        .map_err(|e| aws_err("DeleteChangeSet", e))?;
                    return Ok(None);
                }
                return Err(InfraError::ChangeSetFailed {
                    name: name.to_string(),
                    reason,
                });
            }
            _ => {}
        }
        if Instant::now() + delay > deadline {
            return Err(InfraError::Timeout {
                what: format!("change set {name}"),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

fn collect_changes(changes: &[aws_sdk_cloudformation::types::Change]) -> Vec<ChangeRow> {
    changes
        .iter()
        .filter_map(|c| c.resource_change())
        .map(|r| ChangeRow {
            action: r
                .action()
                .map(|a| a.as_str().to_string())
                .unwrap_or_default(),
            logical_id: r.logical_resource_id().unwrap_or_default().to_string(),
            resource_type: r.resource_type().unwrap_or_default().to_string(),
            replacement: r
                .replacement()
                .map(|x| x.as_str().to_string())
                .unwrap_or_else(|| "-".into()),
        })
        .collect()
}

/// Executes the change set and follows the stack until it settles, printing
/// new events. Returns the final stack and, on failure, its root cause.
async fn execute_and_follow(
    clients: &Clients,
    stack: &str,
    change_set: &str,
    deadline: Instant,
    say: &(dyn Fn(String) + Sync),
) -> Result<(Option<StackView>, Option<String>), InfraError> {
    let cfn = &clients.cfn;
    let mut seen: HashSet<String> = recent_events(cfn, stack)
        .await?
        .into_iter()
        .map(|e| e.id)
        .collect();
    cfn.execute_change_set()
        .stack_name(stack)
        .change_set_name(change_set)
        .client_request_token(change_set)
        .send()
        .await
        .map_err(|e| aws_err("ExecuteChangeSet", e))?;
    follow(cfn, stack, &mut seen, deadline, say).await
}

/// One stack event.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
}

/// The newest page of events, oldest first.
async fn recent_events(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<Vec<Event>, InfraError> {
    let out = match cfn.describe_stack_events().stack_name(stack).send().await {
        Ok(o) => o,
        Err(e) if e.message().is_some_and(|m| m.contains("does not exist")) => {
            return Ok(Vec::new())
        }
        Err(e) => return Err(aws_err("DescribeStackEvents", e)),
    };
    let mut events: Vec<Event> = out
        .stack_events()
        .iter()
        .map(|e| Event {
            id: e.event_id().unwrap_or_default().to_string(),
            logical_id: e.logical_resource_id().unwrap_or_default().to_string(),
            resource_type: e.resource_type().unwrap_or_default().to_string(),
            status: e
                .resource_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            reason: e.resource_status_reason().map(str::to_string),
        })
        .collect();
    events.reverse();
    Ok(events)
}

fn is_throttling(e: &InfraError) -> bool {
    matches!(e, InfraError::Aws { message, .. } if message.contains("Throttling") || message.contains("Rate exceeded"))
}

/// Polls the stack and its events until it settles.
async fn follow(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
    seen: &mut HashSet<String>,
    deadline: Instant,
    say: &(dyn Fn(String) + Sync),
) -> Result<(Option<StackView>, Option<String>), InfraError> {
    let mut delay = Duration::from_secs(1);
    let mut ours: Vec<Event> = Vec::new();
    loop {
        let polled = async {
            let view = describe(cfn, stack).await?;
            let events = recent_events(cfn, stack).await?;
            Ok::<_, InfraError>((view, events))
        }
        .await;
        match polled {
            Ok((view, events)) => {
                for e in events {
                    if seen.insert(e.id.clone()) {
                        say(format!(
                            "  {:<28} {:<36} {}{}",
                            e.status,
                            e.logical_id,
                            e.resource_type,
                            e.reason
                                .as_deref()
                                .map(|r| format!(": {r}"))
                                .unwrap_or_default()
                        ));
                        ours.push(e);
                    }
                }
                let status = view.as_ref().map(|v| v.status.clone()).unwrap_or_default();
                if view.is_none() || stack::settled(&status) {
                    let failure = (!stack::succeeded(&status)).then(|| {
                        first_failure(&ours)
                            .unwrap_or_else(|| format!("the stack ended in {status}"))
                    });
                    return Ok((view, failure));
                }
                delay = (delay * 3 / 2).min(Duration::from_secs(10));
            }
            // Throttled even after the SDK's retries: back off harder, keep following.
            Err(e) if is_throttling(&e) => delay = (delay * 2).min(Duration::from_secs(30)),
            Err(e) => return Err(e),
        }
        if Instant::now() + delay > deadline {
            return Err(InfraError::Timeout {
                what: format!("the update of stack {stack}"),
            });
        }
        tokio::time::sleep(delay).await;
    }
}

/// The root cause: the earliest failed resource event that is not a
/// cancellation caused by another failure.
pub fn first_failure(events: &[Event]) -> Option<String> {
    events
        .iter()
        .filter(|e| e.status.ends_with("_FAILED"))
        .find(|e| {
            !e.reason
                .as_deref()
                .is_some_and(|r| r.contains("cancelled") || r.contains("canceled"))
        })
        .map(|e| {
            format!(
                "{} ({}): {}",
                e.logical_id,
                e.resource_type,
                e.reason.as_deref().unwrap_or("no reason given")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudformation::operation::describe_stack_events::DescribeStackEventsOutput;
    use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksOutput;
    use aws_sdk_cloudformation::types::{ResourceStatus, Stack, StackEvent, StackStatus};
    use aws_sdk_cloudformation::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn stack(status: StackStatus) -> DescribeStacksOutput {
        DescribeStacksOutput::builder()
            .stacks(
                Stack::builder()
                    .stack_name("s")
                    .stack_status(status)
                    .creation_time(aws_smithy_types::DateTime::from_secs(0))
                    .build(),
            )
            .build()
    }

    fn event(id: &str, logical: &str, status: ResourceStatus, reason: Option<&str>) -> StackEvent {
        StackEvent::builder()
            .event_id(id)
            .stack_id("s")
            .stack_name("s")
            .logical_resource_id(logical)
            .resource_type(if logical == "s" {
                "AWS::CloudFormation::Stack"
            } else {
                "AWS::Lambda::Function"
            })
            .resource_status(status)
            .set_resource_status_reason(reason.map(str::to_string))
            .timestamp(aws_smithy_types::DateTime::from_secs(0))
            .build()
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(120)
    }

    #[tokio::test(start_paused = true)]
    async fn a_rollback_reports_the_first_failed_resource_and_its_reason() {
        let describe = mock!(Client::describe_stacks)
            .sequence()
            .output(|| stack(StackStatus::UpdateInProgress))
            .output(|| stack(StackStatus::UpdateRollbackInProgress))
            .output(|| stack(StackStatus::UpdateRollbackComplete))
            .build();
        let events = mock!(Client::describe_stack_events)
            .sequence()
            .output(|| {
                DescribeStackEventsOutput::builder()
                    .stack_events(event("1", "s", ResourceStatus::UpdateInProgress, None))
                    .build()
            })
            .output(|| {
                // Newest first, as the service returns them.
                DescribeStackEventsOutput::builder()
                    .stack_events(event(
                        "4",
                        "Api",
                        ResourceStatus::UpdateFailed,
                        Some("Resource update cancelled"),
                    ))
                    .stack_events(event(
                        "3",
                        "Poller",
                        ResourceStatus::UpdateFailed,
                        Some("Runtime python2.7 is not supported"),
                    ))
                    .stack_events(event("2", "Poller", ResourceStatus::UpdateInProgress, None))
                    .stack_events(event("1", "s", ResourceStatus::UpdateInProgress, None))
                    .build()
            })
            .output(|| {
                DescribeStackEventsOutput::builder()
                    .stack_events(event(
                        "5",
                        "s",
                        ResourceStatus::UpdateRollbackComplete,
                        None,
                    ))
                    .build()
            })
            .build();
        let client = mock_client!(
            aws_sdk_cloudformation,
            RuleMode::MatchAny,
            [&describe, &events]
        );
        let printed = std::sync::Mutex::new(Vec::new());
        let say = |s: String| printed.lock().unwrap().push(s);
        let mut seen = HashSet::new();
        let (view, failure) = follow(&client, "s", &mut seen, far(), &say).await.unwrap();
        assert_eq!(view.unwrap().status, "UPDATE_ROLLBACK_COMPLETE");
        assert_eq!(
            failure.as_deref(),
            Some("Poller (AWS::Lambda::Function): Runtime python2.7 is not supported")
        );
        let printed = printed.into_inner().unwrap();
        assert_eq!(printed.len(), 5, "each event printed once: {printed:?}");
        assert!(printed[2].contains("UPDATE_FAILED") && printed[2].contains("python2.7"));
    }

    #[tokio::test(start_paused = true)]
    async fn waits_out_an_operation_in_progress() {
        let describe = mock!(Client::describe_stacks)
            .sequence()
            .output(|| stack(StackStatus::UpdateInProgress))
            .times(3)
            .output(|| stack(StackStatus::UpdateComplete))
            .build();
        let client = mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, [&describe]);
        let said = std::sync::Mutex::new(0);
        let say = |_: String| *said.lock().unwrap() += 1;
        let v = wait_settled(&client, "s", far(), &say)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v.status, "UPDATE_COMPLETE");
        assert_eq!(describe.num_calls(), 4);
        assert_eq!(*said.lock().unwrap(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stack_that_never_settles_hits_the_deadline() {
        let describe = mock!(Client::describe_stacks)
            .sequence()
            .output(|| stack(StackStatus::UpdateInProgress))
            .repeatedly()
            .build();
        let client = mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, [&describe]);
        let deadline = Instant::now() + Duration::from_secs(5);
        let err = wait_settled(&client, "s", deadline, &|_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, InfraError::Timeout { .. }), "{err}");
        assert!(err.hint().unwrap().contains("--timeout"));
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_while_following_backs_off_and_carries_on() {
        let describe = mock!(Client::describe_stacks)
            .sequence()
            .http_status(400, Some(r#"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"#.into()))
            .times(3)
            .output(|| stack(StackStatus::UpdateComplete))
            .build();
        let events = mock!(Client::describe_stack_events)
            .then_output(|| DescribeStackEventsOutput::builder().build());
        let client = mock_client!(
            aws_sdk_cloudformation,
            RuleMode::MatchAny,
            [&describe, &events]
        );
        let (view, failure) = follow(&client, "s", &mut HashSet::new(), far(), &|_| {})
            .await
            .unwrap();
        assert_eq!(view.unwrap().status, "UPDATE_COMPLETE");
        assert!(failure.is_none());
        assert!(describe.num_calls() >= 4);
    }
}
