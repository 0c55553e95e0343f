//! `artifact policy`: the IAM policy each command needs, printed as a policy
//! document (json) or as a template's PolicyDocument (cfn); with `--check`,
//! a request log evaluated against one command's policy.

use std::io::Write;

use anyhow::Context as _;
use serde::Serialize;

use super::{AlreadyReported, Context};
use crate::aws::log::LoggedRequest;
use crate::cli::{PolicyArgs, PolicyFormat};
use crate::config::{Env, Settings, Target};
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
    let sel = super::targets::selection(&args.targets);
    if sel.any() {
        return target_policies(ctx, env, args, sel);
    }
    let settings = Settings::load(&ctx.config_path, env)?;
    let inputs = inputs(ctx, env, &settings, &args)?;
    print_policies(ctx, settings, inputs, args)
}

/// `--target`, `--wave`, `--all-targets`: the policy of each target's role,
/// from the target's own settings (its account and region in names and
/// ARNs). One `--target NAME` prints as without targets; more, one
/// section per target.
fn target_policies(
    ctx: &Context,
    env: &Env,
    args: PolicyArgs,
    sel: crate::fanout::Selection,
) -> anyhow::Result<()> {
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
    let waves = crate::fanout::select(&listed.targets, &sel).map_err(|m| anyhow::anyhow!(m))?;
    let targets: Vec<Target> = waves.into_iter().flatten().collect();
    if let [t] = targets.as_slice() {
        if sel.names.len() == 1 && !sel.all && sel.wave.is_none() {
            let (settings, inputs) = target_inputs(ctx, env, &args, t)?;
            return print_policies(ctx, settings, inputs, args);
        }
    }
    if args.check.is_some() {
        anyhow::bail!("--check reads one target's request log, but {} targets are selected\nhint: give the one --target NAME whose deploy wrote the log", targets.len());
    }
    let mut all = Vec::new();
    for t in &targets {
        let (settings, inputs) = target_inputs(ctx, env, &args, t)?;
        all.push(TargetPolicies {
            target: t.name.clone(),
            account: t.account.clone(),
            region: t.region.clone(),
            policies: policies_of(&settings, &inputs, args.command.command())?,
        });
    }
    if ctx.printer.json {
        return ctx.document(&all);
    }
    let mut text = String::new();
    for t in &all {
        match args.format {
            PolicyFormat::Json => {
                text.push_str(&format!(
                    "// target {} ({} {})\n",
                    t.target, t.account, t.region
                ));
                text.push_str(&json_text(&t.policies)?);
            }
            PolicyFormat::Cfn => {
                text.push_str(&format!(
                    "# target {} ({} {})\n",
                    t.target, t.account, t.region
                ));
                text.push_str(&cfn_text(&t.policies)?);
            }
        }
    }
    write_out(&text)
}

/// One target's role's policies, as `policy --all-targets --json` prints them.
#[derive(Debug, Serialize)]
struct TargetPolicies {
    target: String,
    account: String,
    region: String,
    policies: Vec<CommandPolicy>,
}

/// One target's settings and policy inputs: its account and region in ARNs.
fn target_inputs(
    ctx: &Context,
    env: &Env,
    args: &PolicyArgs,
    t: &Target,
) -> anyhow::Result<(Settings, PolicyInputs)> {
    let mut settings = super::targets::settings_for(ctx, env, t)?;
    let mut inputs = inputs(ctx, &super::targets::target_env(env, t), &settings, args)?;
    if args.format == PolicyFormat::Json {
        inputs.region = t.region.clone();
        inputs.account = t.account.clone();
    }
    // The role itself assumes nothing.
    settings.targets.clear();
    Ok((settings, inputs))
}

fn write_out(text: &str) -> anyhow::Result<()> {
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("failed to write the policy")
}

/// The policies of `one` command, or of every command the settings use.
fn policies_of(
    settings: &Settings,
    inputs: &PolicyInputs,
    one: Option<PolicyCommand>,
) -> anyhow::Result<Vec<CommandPolicy>> {
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
        let document = policy::policy(c, settings, inputs).map_err(|m| anyhow::anyhow!("{m}"))?;
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
    Ok(policies)
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
    let policies = policies_of(&settings, &inputs, one)?;
    if ctx.printer.json {
        return ctx.document(&policies);
    }
    let text = match args.format {
        PolicyFormat::Json => json_text(&policies)?,
        PolicyFormat::Cfn => cfn_text(&policies)?,
    };
    write_out(&text)?;
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
