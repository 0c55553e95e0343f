//! `artifact policy`: the IAM policy each command needs, printed as a policy
//! document (json) or as a template's PolicyDocument (cfn); with `--check`,
//! a request log evaluated against one command's policy.

use std::io::Write;

use anyhow::Context as _;
use serde::Serialize;

use super::{AlreadyReported, Context};
use crate::aws::log::LoggedRequest;
use crate::cli::{PolicyArgs, PolicyFormat};
use crate::config::{Env, Settings};
use crate::model::S3Url;
use crate::policy::{self, PolicyCommand, PolicyDocument, PolicyInputs};

/// One command's policy, with why any statement is wider than one ARN.
#[derive(Debug, Serialize)]
struct CommandPolicy {
    command: PolicyCommand,
    document: PolicyDocument,
    notes: Vec<Note>,
}

#[derive(Debug, Serialize)]
struct Note {
    sid: String,
    why: String,
}

pub(crate) fn run(ctx: &Context, env: &Env, args: PolicyArgs) -> anyhow::Result<()> {
    if let Some(name) = &args.target {
        return target_policy(ctx, env, args.clone(), name);
    }
    let settings = Settings::load(&ctx.config_path, env)?;
    let inputs = inputs(ctx, env, &settings, &args)?;
    print_policies(ctx, settings, inputs, args)
}

/// `--target NAME`: the policy of that target's role, from the target's own
/// settings (its account and region in names and ARNs).
fn target_policy(ctx: &Context, env: &Env, args: PolicyArgs, name: &str) -> anyhow::Result<()> {
    // The targets are read first; {account} and {region} in names are
    // filled for this read only, as no call tells them offline.
    let probe = Env {
        account_id: env
            .account_id
            .clone()
            .or_else(|| Some("000000000000".into())),
        aws_region: env.aws_region.clone().or_else(|| Some("us-east-1".into())),
        ..env.clone()
    };
    let listed = Settings::load(&ctx.config_path, &probe)?;
    let t = super::targets::find(&listed.targets, name)?;
    let mut settings = super::targets::settings_for(ctx, env, &t)?;
    let mut inputs = inputs(ctx, &super::targets::target_env(env, &t), &settings, &args)?;
    if args.format == PolicyFormat::Json {
        inputs.region = t.region.clone();
        inputs.account = t.account;
    }
    // The role itself assumes nothing.
    settings.targets.clear();
    print_policies(ctx, settings, inputs, args)
}

fn print_policies(
    ctx: &Context,
    settings: Settings,
    inputs: PolicyInputs,
    args: PolicyArgs,
) -> anyhow::Result<()> {
    let one = args.command.command();
    if let Some(log) = &args.check {
        let Some(command) = one else {
            anyhow::bail!("--check needs the command whose log it is\nhint: add --command deploy-infra (or the command that wrote the log)");
        };
        return check(ctx, &settings, &inputs, command, log);
    }
    let commands: Vec<PolicyCommand> = match one {
        Some(c) => vec![c],
        None => PolicyCommand::ALL
            .into_iter()
            .filter(|c| *c != PolicyCommand::Sync || inputs.sync_to.is_some())
            .filter(|c| *c != PolicyCommand::Verify || settings.provenance_kms_key.is_some())
            .collect(),
    };
    let mut policies = Vec::new();
    for c in commands {
        let document = policy::policy(c, &settings, &inputs).map_err(|m| anyhow::anyhow!("{m}"))?;
        let notes = document
            .statements
            .iter()
            .filter_map(|s| {
                s.why.as_ref().map(|w| Note {
                    sid: s.sid.clone(),
                    why: w.clone(),
                })
            })
            .collect();
        policies.push(CommandPolicy {
            command: c,
            document,
            notes,
        });
    }
    if ctx.printer.json {
        return ctx.document(&policies);
    }
    let text = match args.format {
        PolicyFormat::Json => json_text(&policies)?,
        PolicyFormat::Cfn => cfn_text(&policies)?,
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("failed to write the policy")?;
    for p in &policies {
        for n in &p.notes {
            ctx.printer
                .line(format!("note: {} {}: {}", p.command.name(), n.sid, n.why));
        }
    }
    if one.is_none() && inputs.sync_to.is_none() {
        ctx.printer
            .line("note: sync is left out: give --sync-to s3://bucket/prefix for its policy");
    }
    if one.is_none() && settings.provenance_kms_key.is_none() {
        ctx.printer.line(
            "note: verify is left out: without [provenance] kms_key it makes no AWS call and needs no policy",
        );
    }
    Ok(())
}

/// Partition, region and account for the ARNs, and what the project file and
/// the command line add.
fn inputs(
    ctx: &Context,
    env: &Env,
    settings: &Settings,
    args: &PolicyArgs,
) -> anyhow::Result<PolicyInputs> {
    let s3 = |url: &String| -> anyhow::Result<(String, String)> {
        let u = S3Url::parse(url)?;
        Ok((u.bucket, u.prefix))
    };
    let (partition, region, account) = if args.format == PolicyFormat::Cfn {
        (
            "${AWS::Partition}".to_string(),
            "${AWS::Region}".to_string(),
            "${AWS::AccountId}".to_string(),
        )
    } else {
        let region = ctx
            .aws
            .region
            .clone()
            .or_else(|| env.aws_region.clone())
            .unwrap_or_else(|| "*".into());
        let partition = if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        };
        if let Some(a) = &args.account {
            if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
                anyhow::bail!("--account {a:?} is not an AWS account id\nhint: give its 12 digits (aws sts get-caller-identity shows it), or leave --account out for \"*\"");
            }
        }
        let account = args.account.clone().unwrap_or_else(|| "*".into());
        (partition.to_string(), region, account)
    };
    let templates = crate::template::TemplateSet::read(settings);
    Ok(PolicyInputs {
        partition,
        region,
        account,
        cache: match &args.cache_url {
            Some(url) => Some(s3(url)?),
            None => (settings.pack.cache_url.clone()).map(|u| (u.bucket, u.prefix)),
        },
        sync_to: args.sync_to.as_ref().map(s3).transpose()?,
        metrics: ctx
            .metrics
            .clone()
            .or_else(|| settings.metrics_namespace.clone()),
        site_bucket: templates.output_bucket(settings, &settings.frontend.outputs.bucket),
        nested_stacks: templates.has_nested_stacks(),
    })
}

fn json_text(policies: &[CommandPolicy]) -> anyhow::Result<String> {
    let mut text = if let [one] = policies {
        serde_json::to_string_pretty(&one.document)?
    } else {
        let all: serde_json::Map<String, serde_json::Value> = policies
            .iter()
            .map(|p| {
                Ok((
                    p.command.name().to_string(),
                    serde_json::to_value(&p.document)?,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        serde_json::to_string_pretty(&all)?
    };
    text.push('\n');
    Ok(text)
}

/// `PolicyDocument:` blocks for a template: ARNs holding `${AWS::…}` as Fn::Sub.
fn cfn_text(policies: &[CommandPolicy]) -> anyhow::Result<String> {
    let mut text = String::new();
    for p in policies {
        let mut doc = serde_json::to_value(&p.document)?;
        for s in doc["Statement"].as_array_mut().into_iter().flatten() {
            for r in s["Resource"].as_array_mut().into_iter().flatten() {
                if r.as_str().is_some_and(|v| v.contains("${")) {
                    *r = serde_json::json!({ "Fn::Sub": r });
                }
            }
        }
        let wrapped = serde_json::json!({ "PolicyDocument": doc });
        text.push_str(&format!("# artifact {}\n", p.command.name()));
        for n in &p.notes {
            text.push_str(&format!("# {}: {}\n", n.sid, n.why));
        }
        text.push_str(&serde_norway::to_string(&wrapped)?);
    }
    Ok(text)
}

fn check(
    ctx: &Context,
    settings: &Settings,
    inputs: &PolicyInputs,
    command: PolicyCommand,
    log: &std::path::Path,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(log)
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot read the request log {}: {e}\nhint: write one by running the command with ARTIFACT_REQUEST_LOG=<file>",
                log.display()
            )
        })?;
    let mut requests = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let r: LoggedRequest = serde_json::from_str(line).map_err(|e| {
            anyhow::anyhow!(
                "{}:{}: not a request log line ({e})\nhint: give the file a run with ARTIFACT_REQUEST_LOG=<file> wrote, unchanged",
                log.display(),
                i + 1
            )
        })?;
        requests.push(r);
    }
    let document = policy::policy(command, settings, inputs).map_err(|m| anyhow::anyhow!("{m}"))?;
    let report = policy::check(&requests, &document, inputs);
    ctx.document(&report)?;
    ctx.printer.line(format!(
        "checked {} requests ({} authorizations) against the {} policy",
        report.requests,
        report.authorizations,
        command.name()
    ));
    for (op, r) in &report.denied {
        ctx.printer.line(format!(
            "  denied: {} on {} ({op}) {:?}",
            r.action, r.resource, r.context
        ));
    }
    for a in &report.unused {
        ctx.printer
            .line(format!("  unused: {a} (no request in this log made it)"));
    }
    if !report.denied.is_empty() {
        return Err(AlreadyReported(format!(
            "the {} policy does not allow {} of the requests made",
            command.name(),
            report.denied.len()
        ))
        .into());
    }
    Ok(())
}
