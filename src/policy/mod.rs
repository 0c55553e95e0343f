//! Least-privilege IAM policies: the statements each command needs, derived
//! from the project file alone (no AWS call), with resources narrowed to the
//! project's buckets and prefixes, stack, functions, layers and change set
//! names. `*` appears only for actions that take no resource, and each such
//! statement says why. [`check`] evaluates a request log
//! (`ARTIFACT_REQUEST_LOG`) against a policy.

mod check;
mod document;
mod eval;

pub use check::{check, iam_requests, CheckReport};
pub use document::{Condition, PolicyCommand, PolicyDocument, PolicyInputs, Statement};
pub use eval::{allows, glob_match, IamRequest};

use crate::cfn::TEMPLATES_PREFIX;
use crate::config::Settings;
use crate::history;

fn statement(sid: &str, actions: &[&str], resources: Vec<String>) -> Statement {
    Statement {
        sid: sid.to_string(),
        effect: "Allow",
        actions: actions.iter().map(|a| a.to_string()).collect(),
        resources,
        condition: Condition::new(),
        why: None,
    }
}

fn with_condition(mut s: Statement, op: &str, key: &str, values: Vec<String>) -> Statement {
    s.condition
        .entry(op.to_string())
        .or_default()
        .insert(key.to_string(), values);
    s
}

fn explained(mut s: Statement, why: &str) -> Statement {
    s.why = Some(why.to_string());
    s
}

/// ARNs in one partition, region and account.
struct Arns<'a>(&'a PolicyInputs);

impl Arns<'_> {
    fn bucket(&self, b: &str) -> String {
        format!("arn:{}:s3:::{b}", self.0.partition)
    }
    fn objects(&self, b: &str, prefix: &str) -> String {
        format!("arn:{}:s3:::{b}/{prefix}*", self.0.partition)
    }
    fn object(&self, b: &str, key: &str) -> String {
        format!("arn:{}:s3:::{b}/{key}", self.0.partition)
    }
    fn regional(&self, service: &str, rest: &str) -> String {
        let i = self.0;
        format!(
            "arn:{}:{service}:{}:{}:{rest}",
            i.partition, i.region, i.account
        )
    }
    fn stack(&self, name: &str) -> String {
        self.regional("cloudformation", &format!("stack/{name}/*"))
    }
}

/// The policy `command` needs for the project `settings` describes.
pub fn policy(
    command: PolicyCommand,
    settings: &Settings,
    inputs: &PolicyInputs,
) -> Result<PolicyDocument, String> {
    let a = Arns(inputs);
    let mut statements = match command {
        PolicyCommand::Validate => vec![explained(
            statement(
                "ValidateTemplate",
                &["cloudformation:ValidateTemplate"],
                vec!["*".into()],
            ),
            "ValidateTemplate acts on no resource: IAM takes only \"*\" for it",
        )],
        PolicyCommand::Pack => pack(&a, settings, inputs),
        PolicyCommand::DeployInfra => deploy_infra(&a, settings, inputs, false),
        PolicyCommand::DeployFrontend => deploy_frontend(&a, settings, inputs, false),
        PolicyCommand::Sync => {
            let Some((bucket, prefix)) = &inputs.sync_to else {
                return Err("sync's policy needs the place it uploads to\nhint: give --sync-to s3://bucket/prefix".into());
            };
            sync_statements(&a, "Sync", bucket, prefix)
        }
        PolicyCommand::Rollback => {
            let mut s = deploy_infra(&a, settings, inputs, true);
            s.extend(deploy_frontend(&a, settings, inputs, true));
            s
        }
        PolicyCommand::History => vec![statement(
            "HistoryRead",
            &["s3:GetObject"],
            [history::INDEX_KEY, history::SITE_INDEX_KEY]
                .iter()
                .map(|k| a.object(&settings.infra.deployment_bucket, k))
                .collect(),
        )],
        PolicyCommand::ConfigJs => stack_outputs(
            &a,
            "StackOutputs",
            &settings.frontend.stack_name,
            inputs.nested_stacks,
        ),
        PolicyCommand::Verify => {
            let Some(key) = &settings.provenance_kms_key else {
                return Err("verify makes no AWS call unless the provenance is signed, so it needs no policy\nhint: set [provenance] kms_key in artifact.toml for verify's policy (kms:DescribeKey, kms:Verify)".into());
            };
            vec![kms_statement(
                "ProvenanceVerify",
                &["kms:DescribeKey", "kms:Verify"],
                key,
                inputs,
            )]
        }
    };
    // With [[targets]], the pipeline's own credentials assume each target's role.
    if matches!(command, PolicyCommand::DeployInfra) {
        statements.extend(assume_target_roles(settings));
    }
    // deploy-infra checks the provenance's signature before it changes anything.
    if let (PolicyCommand::DeployInfra, Some(key)) = (command, &settings.provenance_kms_key) {
        statements.push(kms_statement(
            "ProvenanceVerify",
            &["kms:DescribeKey", "kms:Verify"],
            key,
            inputs,
        ));
    }
    let publishes = matches!(
        command,
        PolicyCommand::Pack
            | PolicyCommand::DeployInfra
            | PolicyCommand::DeployFrontend
            | PolicyCommand::Rollback
    );
    if let (Some(ns), true) = (&inputs.metrics, publishes) {
        statements.push(metrics(ns));
    }
    Ok(PolicyDocument {
        version: "2012-10-17",
        statements,
    })
}

/// `sts:AssumeRole` on the roles `[[targets]]` name (none without them).
fn assume_target_roles(settings: &Settings) -> Option<Statement> {
    let mut roles: Vec<String> = settings
        .targets
        .iter()
        .filter_map(|t| t.role_arn.clone())
        .collect();
    roles.sort();
    roles.dedup();
    (!roles.is_empty()).then(|| statement("AssumeTargetRoles", &["sts:AssumeRole"], roles))
}

fn metrics(namespace: &str) -> Statement {
    explained(
        with_condition(
            statement("Metrics", &["cloudwatch:PutMetricData"], vec!["*".into()]),
            "StringEquals",
            "cloudwatch:namespace",
            vec![namespace.to_string()],
        ),
        "PutMetricData acts on no resource: IAM takes only \"*\"; the condition keeps it to the project's namespace",
    )
}

/// `actions` on one KMS key (named by an alias: any key asked for by that alias).
fn kms_statement(sid: &str, actions: &[&str], key: &str, inputs: &PolicyInputs) -> Statement {
    let (resource, context) = check::kms_resource(key, inputs);
    let mut s = statement(sid, actions, vec![resource]);
    for (k, v) in context {
        s = with_condition(s, "StringEquals", k, vec![v]);
    }
    s
}

fn pack(a: &Arns<'_>, settings: &Settings, inputs: &PolicyInputs) -> Vec<Statement> {
    let mut s = Vec::new();
    if let Some(key) = &settings.provenance_kms_key {
        s.push(kms_statement(
            "ProvenanceSigning",
            &["kms:DescribeKey", "kms:Sign"],
            key,
            inputs,
        ));
    }
    let Some((bucket, prefix)) = &inputs.cache else {
        return s;
    };
    s.extend([
        with_condition(
            statement("PackCacheList", &["s3:ListBucket"], vec![a.bucket(bucket)]),
            "StringLike",
            "s3:prefix",
            vec![format!("{prefix}*")],
        ),
        statement(
            "PackCacheObjects",
            &["s3:GetObject", "s3:PutObject"],
            vec![a.objects(bucket, prefix)],
        ),
    ]);
    s
}

/// The deployment bucket's prefixes deploy-infra writes, with the zips'
/// folder (`lambda/` unless `[naming] zip_key` says otherwise).
fn infra_prefixes(zips: &str) -> [&str; 5] {
    [
        TEMPLATES_PREFIX,
        zips,
        history::RECORDS_PREFIX,
        history::TEMPLATES_PREFIX,
        history::ZIPS_PREFIX,
    ]
}

/// What only the history's retention deletes.
const RETENTION_PREFIXES: [&str; 3] = [
    history::RECORDS_PREFIX,
    history::TEMPLATES_PREFIX,
    history::ZIPS_PREFIX,
];

/// The deployment bucket's statements for deploy-infra, or for a rollback
/// (which uploads nothing but its record, and reads the kept bytes).
fn deployment_bucket(a: &Arns<'_>, bucket: &str, zips: &str, rollback: bool) -> Vec<Statement> {
    let listed: Vec<String> = if rollback {
        vec![history::TEMPLATES_PREFIX, history::ZIPS_PREFIX]
    } else {
        vec![
            TEMPLATES_PREFIX,
            zips,
            history::TEMPLATES_PREFIX,
            history::ZIPS_PREFIX,
        ]
    }
    .into_iter()
    .map(|p| format!("{p}*"))
    .collect();
    let mut s = vec![with_condition(
        statement(
            "DeploymentBucketList",
            &["s3:ListBucket"],
            vec![a.bucket(bucket)],
        ),
        "StringLike",
        "s3:prefix",
        listed,
    )];
    if rollback {
        s.push(statement(
            "DeploymentObjects",
            &["s3:GetObject", "s3:PutObject"],
            RETENTION_PREFIXES
                .iter()
                .map(|p| a.objects(bucket, p))
                .collect(),
        ));
    } else {
        s.push(statement(
            "DeploymentBucket",
            &["s3:GetBucketLocation", "s3:ListBucketMultipartUploads"],
            vec![a.bucket(bucket)],
        ));
        s.push(statement(
            "DeploymentObjects",
            &["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
            infra_prefixes(zips)
                .iter()
                .map(|p| a.objects(bucket, p))
                .collect(),
        ));
    }
    s.push(statement(
        "HistoryRetention",
        &["s3:DeleteObject"],
        RETENTION_PREFIXES
            .iter()
            .map(|p| a.objects(bucket, p))
            .collect(),
    ));
    s
}

fn deploy_infra(
    a: &Arns<'_>,
    settings: &Settings,
    inputs: &PolicyInputs,
    rollback: bool,
) -> Vec<Statement> {
    let infra = &settings.infra;
    let zips = settings.zips_prefix();
    let mut s = deployment_bucket(a, &infra.deployment_bucket, &zips, rollback);
    if inputs.nested_stacks {
        s.extend(nested_stacks(a, settings, rollback));
    }
    s.push(statement(
        "Stack",
        &[
            "cloudformation:DescribeStacks",
            "cloudformation:DescribeStackEvents",
            "cloudformation:GetTemplate",
        ],
        vec![a.stack(&infra.stack_name)],
    ));
    if !rollback {
        s.push(explained(
            statement("StackReplace", &["cloudformation:DeleteStack"], vec![a.stack(&infra.stack_name)]),
            "only with --replace-failed-stack, and only a stack whose creation failed (ROLLBACK_COMPLETE)",
        ));
    }
    s.push(with_condition(
        statement(
            "ChangeSets",
            &[
                "cloudformation:CreateChangeSet",
                "cloudformation:DescribeChangeSet",
                "cloudformation:ExecuteChangeSet",
                "cloudformation:DeleteChangeSet",
            ],
            vec![a.stack(&infra.stack_name)],
        ),
        "StringLike",
        "cloudformation:ChangeSetName",
        vec!["artifact-*".into()],
    ));
    if let Some(role) = &infra.role_arn {
        s.push(with_condition(
            statement("PassExecutionRole", &["iam:PassRole"], vec![role.clone()]),
            "StringEquals",
            "iam:PassedToService",
            vec!["cloudformation.amazonaws.com".into()],
        ));
    }
    let functions: Vec<String> = settings
        .functions
        .iter()
        .map(|f| a.regional("lambda", &format!("function:{}", f.deployed_name)))
        .collect();
    if !functions.is_empty() {
        s.push(statement(
            "FunctionCode",
            &[
                "lambda:GetFunctionConfiguration",
                "lambda:UpdateFunctionCode",
            ],
            functions,
        ));
    }
    if !settings.layers.is_empty() && !rollback {
        s.push(explained(
            statement(
                "LayerVersionsList",
                &["lambda:ListLayerVersions"],
                vec!["*".into()],
            ),
            "ListLayerVersions acts on no resource: IAM takes only \"*\" for it",
        ));
        // A version is reused only when its bytes are the zip's.
        s.push(statement(
            "LayerVersionsRead",
            &["lambda:GetLayerVersion"],
            settings
                .layers
                .iter()
                .map(|l| a.regional("lambda", &format!("layer:{}:*", l.deployed_name)))
                .collect(),
        ));
        s.push(statement(
            "LayerVersionsPublish",
            &["lambda:PublishLayerVersion"],
            settings
                .layers
                .iter()
                .map(|l| a.regional("lambda", &format!("layer:{}", l.deployed_name)))
                .collect(),
        ));
    }
    s
}

/// With nested stacks (named `<root>-<LogicalId>-<suffix>`): their events,
/// outputs and change sets are read; a rollback reads and restores the
/// nested templates' keys.
fn nested_stacks(a: &Arns<'_>, settings: &Settings, rollback: bool) -> Vec<Statement> {
    let stack = &settings.infra.stack_name;
    let mut s = vec![
        statement(
            "StackResources",
            &["cloudformation:DescribeStackResources"],
            vec![a.stack(stack)],
        ),
        statement(
            "NestedStacks",
            &[
                "cloudformation:DescribeStacks",
                "cloudformation:DescribeStackEvents",
                "cloudformation:DescribeChangeSet",
            ],
            vec![a.stack(&format!("{stack}-*"))],
        ),
    ];
    if rollback {
        s.push(statement(
            "NestedTemplates",
            &["s3:GetObject", "s3:PutObject"],
            vec![a.objects(&settings.infra.deployment_bucket, TEMPLATES_PREFIX)],
        ));
    }
    s
}

/// Reading the stack's outputs; with nested stacks, theirs too (their names
/// start with the root's: `<root>-<LogicalId>-<suffix>`).
fn stack_outputs(a: &Arns<'_>, sid: &str, stack: &str, nested: bool) -> Vec<Statement> {
    let root = statement(
        sid,
        &["cloudformation:DescribeStacks"],
        vec![a.stack(stack)],
    );
    if !nested {
        return vec![root];
    }
    vec![
        statement(
            sid,
            &[
                "cloudformation:DescribeStackResources",
                "cloudformation:DescribeStacks",
            ],
            vec![a.stack(stack)],
        ),
        statement(
            &format!("{sid}Nested"),
            &["cloudformation:DescribeStacks"],
            vec![a.stack(&format!("{stack}-*"))],
        ),
    ]
}

fn deploy_frontend(
    a: &Arns<'_>,
    settings: &Settings,
    inputs: &PolicyInputs,
    rollback: bool,
) -> Vec<Statement> {
    let f = &settings.frontend;
    let bucket = &settings.infra.deployment_bucket;
    let mut s = Vec::new();
    // A rollback's stack part already reads the stack, unless the site's is another.
    if !rollback || f.stack_name != settings.infra.stack_name {
        let sid = if rollback {
            "SiteStackOutputs"
        } else {
            "StackOutputs"
        };
        s.extend(stack_outputs(a, sid, &f.stack_name, inputs.nested_stacks));
    }
    let (site_bucket, why) = match &inputs.site_bucket {
        Some(b) => (b.clone(), None),
        None => (
            "*".to_string(),
            Some(format!(
                "the site bucket comes from the stack output {} and the templates do not name it: give its AWS::S3::Bucket a BucketName to narrow this",
                f.outputs.bucket
            )),
        ),
    };
    let mut site = sync_statements(a, "Site", &site_bucket, "");
    if let Some(why) = why {
        site = site.into_iter().map(|st| explained(st, &why)).collect();
    }
    s.extend(site);
    s.push(with_condition(
        statement(
            "SiteHistoryList",
            &["s3:ListBucket"],
            vec![a.bucket(bucket)],
        ),
        "StringLike",
        "s3:prefix",
        vec![format!("{}*", history::SITE_PREFIX)],
    ));
    s.push(statement(
        "SiteHistoryObjects",
        &["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        vec![
            a.object(bucket, history::SITE_INDEX_KEY),
            a.objects(bucket, history::SITE_RECORDS_PREFIX),
            a.objects(bucket, history::SITE_PREFIX),
        ],
    ));
    // One run per site: the lock object, taken, renewed and freed.
    s.push(statement(
        "SiteLock",
        &["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        vec![a.object(
            bucket,
            &crate::frontend::site_lock_key(&settings.frontend.stack_name),
        )],
    ));
    let invalidation_actions: &[&str] = if rollback {
        &["cloudfront:CreateInvalidation"]
    } else {
        &[
            "cloudfront:CreateInvalidation",
            "cloudfront:GetInvalidation",
        ]
    };
    s.push(explained(
        statement(
            "Invalidations",
            invalidation_actions,
            vec![format!(
                "arn:{}:cloudfront::{}:distribution/*",
                inputs.partition, inputs.account
            )],
        ),
        "the distribution's id is known only from the stack output at deploy time",
    ));
    s
}

/// Listing, uploading, replacing and deleting under `bucket/prefix`.
fn sync_statements(a: &Arns<'_>, what: &str, bucket: &str, prefix: &str) -> Vec<Statement> {
    let bucket_arn = if bucket == "*" {
        format!("arn:{}:s3:::*", a.0.partition)
    } else {
        a.bucket(bucket)
    };
    let mut out = Vec::new();
    if prefix.is_empty() {
        out.push(statement(
            &format!("{what}Bucket"),
            &["s3:ListBucket", "s3:ListBucketMultipartUploads"],
            vec![bucket_arn],
        ));
    } else {
        // s3:prefix is a key of ListBucket only: a statement of its own.
        out.push(with_condition(
            statement(
                &format!("{what}Bucket"),
                &["s3:ListBucket"],
                vec![bucket_arn.clone()],
            ),
            "StringLike",
            "s3:prefix",
            vec![format!("{prefix}*")],
        ));
        out.push(statement(
            &format!("{what}Uploads"),
            &["s3:ListBucketMultipartUploads"],
            vec![bucket_arn],
        ));
    }
    let object_actions = [
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
    ];
    out.push(statement(
        &format!("{what}Objects"),
        &object_actions,
        vec![a.objects(bucket, prefix)],
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_nested_stacks_the_site_may_read_their_outputs_and_without_it_may_not() {
        let settings = Settings::parse(
            std::path::Path::new("/p/artifact.toml"),
            "[project]\nname = \"shop\"\n[functions.a]\nfiles = [\"a.py\"]\n",
            &Default::default(),
        )
        .unwrap();
        let mut inputs = PolicyInputs {
            partition: "aws".into(),
            region: "eu-west-1".into(),
            account: "123456789012".into(),
            cache: None,
            sync_to: None,
            metrics: None,
            site_bucket: Some("site".into()),
            nested_stacks: false,
        };
        let actions = |inputs: &PolicyInputs, command| -> Vec<(String, String)> {
            policy(command, &settings, inputs)
                .unwrap()
                .statements
                .into_iter()
                .filter(|s| s.actions.iter().any(|a| a.starts_with("cloudformation:")))
                .flat_map(|s| {
                    let r = s.resources.join(",");
                    s.actions.into_iter().map(move |a| (a, r.clone()))
                })
                .collect()
        };
        let root = "arn:aws:cloudformation:eu-west-1:123456789012:stack/shop-dev/*";
        for command in [PolicyCommand::DeployFrontend, PolicyCommand::ConfigJs] {
            assert_eq!(
                actions(&inputs, command),
                [(
                    "cloudformation:DescribeStacks".to_string(),
                    root.to_string()
                )]
            );
        }
        inputs.nested_stacks = true;
        let nested = "arn:aws:cloudformation:eu-west-1:123456789012:stack/shop-dev-*/*";
        for command in [PolicyCommand::DeployFrontend, PolicyCommand::ConfigJs] {
            assert_eq!(
                actions(&inputs, command),
                [
                    (
                        "cloudformation:DescribeStackResources".to_string(),
                        root.to_string()
                    ),
                    (
                        "cloudformation:DescribeStacks".to_string(),
                        root.to_string()
                    ),
                    (
                        "cloudformation:DescribeStacks".to_string(),
                        nested.to_string()
                    ),
                ]
            );
        }
    }
}
