//! `--all-targets`, `--target NAME`, `--wave N`: a deploy across the
//! `[[targets]]` of artifact.toml, each target in its own account (an
//! assumed role) and region, with the settings of its own environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use super::{bounded, runtime, Context};
use crate::aws::{AwsArgs, Clients};
use crate::cfn::{InfraReport, Outcome};
use crate::cli::{DeployFrontendArgs, DeployInfraArgs, RollbackArgs, TargetArgs};
use crate::config::{Env, Settings, Target};
use crate::fanout::{self, Selection};
use crate::frontend::FrontendReport;
use crate::output::Printer;
use crate::sync::copies::Copies;

pub(crate) fn selection(args: &TargetArgs) -> Selection {
    Selection {
        all: args.all_targets,
        names: args.target.clone(),
        wave: args.wave,
    }
}

/// The environment one target's settings are resolved in: its environment,
/// region and account (so `{region}` and `{account}` name its own bucket).
/// `DEPLOYMENT_BUCKET` names one bucket, so it is not used here.
pub(crate) fn target_env(env: &Env, t: &Target) -> Env {
    Env {
        environment: t.environment.clone().or_else(|| env.environment.clone()),
        aws_region: Some(t.region.clone()),
        account_id: Some(t.account.clone()),
        deployment_bucket: None,
        ..env.clone()
    }
}

/// One target's settings: the project file resolved in [`target_env`].
pub(crate) fn settings_for(ctx: &Context, env: &Env, t: &Target) -> anyhow::Result<Settings> {
    // As context, so the project file's error keeps its hint.
    Settings::load(&ctx.config_path, &target_env(env, t))
        .with_context(|| format!("target {}", t.name))
}

/// STS's session name: the run and the target (64 characters at most).
fn session_name(run: u64, target: &str) -> String {
    let mut s = format!("artifact-{run}-{target}");
    s.truncate(64);
    s
}

/// The clients of one target: its region, and its role when it has one.
pub(crate) async fn clients_for(aws: &AwsArgs, t: &Target, run: u64) -> anyhow::Result<Clients> {
    let args = AwsArgs {
        region: Some(t.region.clone()),
        ..aws.clone()
    };
    let clients = Clients::load(&args).await?;
    Ok(match &t.role_arn {
        Some(role) => {
            clients
                .assuming(role, t.external_id.as_deref(), &session_name(run, &t.name))
                .await
        }
        None => clients,
    })
}

/// One target's report, as a row of the summary.
fn summary(r: &InfraReport) -> (String, String) {
    let result = match r.outcome {
        Outcome::Changed => "changed",
        Outcome::Unchanged => "unchanged",
        Outcome::Review => "review",
        Outcome::DryRun => "dry run",
        Outcome::Failed => "failed",
    };
    let updated = r
        .functions
        .iter()
        .filter(|f| f.action != crate::lambda::CodeAction::Unchanged)
        .count();
    let detail = format!(
        "stack {} {}; zips {} uploaded{}; functions {updated} updated",
        r.stack,
        r.stack_status.as_deref().unwrap_or("none"),
        r.zips.uploaded,
        match r.zips.copied {
            0 => String::new(),
            n => format!(" ({n} copied from another target's bucket)"),
        },
    );
    (result.into(), detail)
}

/// What a run deploys to each target.
#[derive(Clone, Copy)]
enum Kind<'a> {
    Infra(&'a DeployInfraArgs),
    Frontend(&'a DeployFrontendArgs),
    Rollback(&'a RollbackArgs, super::rollback_one::Parts),
}

pub(crate) fn deploy_infra(
    ctx: &Context,
    env: &Env,
    args: &DeployInfraArgs,
    sel: Selection,
) -> anyhow::Result<()> {
    fan_out(ctx, env, sel, Kind::Infra(args))
}

pub(crate) fn deploy_frontend(
    ctx: &Context,
    env: &Env,
    args: &DeployFrontendArgs,
    sel: Selection,
) -> anyhow::Result<()> {
    fan_out(ctx, env, sel, Kind::Frontend(args))
}

/// `rollback --target/--wave/--all-targets`: each target back to its own
/// earlier deployment (`--steps`; `--to` names one target's deployment, so
/// it takes one target).
pub(crate) fn rollback(
    ctx: &Context,
    env: &Env,
    args: &RollbackArgs,
    parts: super::rollback_one::Parts,
    sel: Selection,
) -> anyhow::Result<()> {
    if let Some(id) = &args.to {
        let base = Settings::load(&ctx.config_path, env)?;
        let waves = fanout::select(&base.targets, &sel).map_err(|m| anyhow::anyhow!(m))?;
        let n = waves.iter().map(Vec::len).sum::<usize>();
        if n != 1 {
            anyhow::bail!(
                "rollback --to {id} names one target's deployment, but {n} targets are selected\nhint: give one --target NAME with --to, or use --steps N for each target's own earlier deployment"
            );
        }
    }
    fan_out(ctx, env, sel, Kind::Rollback(args, parts))
}

/// `path` with the target's name before its extension:
/// `stack-outputs.json` -> `stack-outputs.prod-eu.json`.
fn per_target(path: &Path, target: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.{target}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{target}"),
    };
    path.with_file_name(name)
}

/// Every target's settings, resolved before the first call: a bad one stops
/// the run. The files a deploy writes get the target's name, so targets
/// running side by side do not overwrite each other's.
fn settings_of(
    ctx: &Context,
    env: &Env,
    waves: &[Vec<Target>],
) -> anyhow::Result<BTreeMap<String, Settings>> {
    let mut settings = BTreeMap::new();
    for t in waves.iter().flatten() {
        let mut s = settings_for(ctx, env, t)?;
        s.infra.outputs_file = per_target(&s.infra.outputs_file, &t.name);
        s.frontend.summary_file = per_target(&s.frontend.summary_file, &t.name);
        settings.insert(t.name.clone(), s);
    }
    Ok(settings)
}

/// One target's deploy of `kind`, as a row of the summary.
async fn deploy_one(
    quiet: &Context,
    env: &Env,
    kind: Kind<'_>,
    s: &Settings,
    t: &Target,
    (run_id, copies): (u64, &Arc<Copies>),
) -> anyhow::Result<(String, String)> {
    let env = target_env(env, t);
    match kind {
        Kind::Infra(args) => {
            let mut opts = super::deploy_infra::options(&env, args, s);
            opts.copies = Some(copies.clone());
            let c = clients_for(&bounded(&quiet.aws, opts.timeout), t, run_id).await?;
            let r = super::deploy_infra::deploy_with(quiet, s, &opts, &c).await?;
            Ok(summary(&r))
        }
        Kind::Frontend(args) => {
            let opts = super::deploy_frontend::options(quiet, &env, args, s);
            let c = clients_for(&bounded(&quiet.aws, opts.timeout), t, run_id).await?;
            let r = super::deploy_frontend::deploy_with(quiet, s, &opts, &c).await?;
            Ok(site_summary(&r))
        }
        Kind::Rollback(args, parts) => {
            let opts =
                super::rollback_one::rollback_options(&env, args, s, super::clock_and_nonce());
            let c = clients_for(&bounded(&quiet.aws, opts.timeout), t, run_id).await?;
            let doc = super::rollback_one::rollback_with(quiet, s, &opts, &c, parts).await?;
            Ok(rollback_summary(&doc))
        }
    }
}

/// One target's rollback, as a row of the summary.
fn rollback_summary(doc: &super::rollback_one::RollbackDocument) -> (String, String) {
    let mut results = Vec::new();
    let mut details = Vec::new();
    if let Some(r) = &doc.infra {
        results.push(match r.outcome.as_str() {
            "rolled back" => "changed",
            "dry run" => "dry run",
            _ => "unchanged",
        });
        details.push(format!(
            "stack {} back to {} ({})",
            r.plan.stack, r.plan.target, r.outcome
        ));
    }
    if let Some(r) = &doc.frontend {
        let (result, detail) = site_summary(r);
        results.push(if result == "changed" {
            "changed"
        } else {
            "unchanged"
        });
        details.push(detail);
    }
    let result = ["dry run", "changed"]
        .into_iter()
        .find(|r| results.contains(r))
        .unwrap_or("unchanged");
    (result.into(), details.join("; "))
}

/// One target's site deploy, as a row of the summary.
fn site_summary(r: &FrontendReport) -> (String, String) {
    let changed = r.uploaded.files + r.headers_updated.files + r.deleted.files > 0;
    let result = match (r.dry_run, changed) {
        (true, _) => "dry run",
        (false, true) => "changed",
        (false, false) => "unchanged",
    };
    let detail = format!(
        "s3://{}: {} uploaded, {} deleted; {}",
        r.bucket,
        r.uploaded.files,
        r.deleted.files,
        match &r.invalidation {
            Some(i) => format!("{} path(s) invalidated", i.paths.len()),
            None => "no invalidation".into(),
        }
    );
    (result.into(), detail)
}

fn fan_out(ctx: &Context, env: &Env, sel: Selection, kind: Kind<'_>) -> anyhow::Result<()> {
    let base = Settings::load(&ctx.config_path, env)?;
    let waves = fanout::select(&base.targets, &sel).map_err(|m| anyhow::anyhow!(m))?;
    if env.deployment_bucket.is_some() {
        ctx.printer.warn(
            "DEPLOYMENT_BUCKET is not used with targets: each target's bucket is [infra] deployment_bucket (use {region} and {account} in it)",
        );
    }
    let settings = settings_of(ctx, env, &waves)?;
    let (run_id, _) = super::clock_and_nonce();
    // What one target uploads, a target in another bucket copies server-side.
    let copies = Arc::new(Copies::default());
    // Targets run side by side: their events would interleave, so each
    // prints nothing and the table says what each did.
    let quiet = Context {
        printer: Printer {
            json: ctx.printer.json,
            quiet: true,
        },
        config_path: ctx.config_path.clone(),
        explicit_config: ctx.explicit_config.clone(),
        aws: ctx.aws.clone(),
        metrics: ctx.metrics.clone(),
    };
    let report = runtime()?.block_on(fanout::run(waves, base.fanout, |t| {
        let (s, quiet, copies) = (&settings[&t.name], &quiet, &copies);
        async move {
            deploy_one(quiet, env, kind, s, &t, (run_id, copies))
                .await
                .map_err(|e| format!("{e:#}"))
        }
    }));
    ctx.lines(fanout::render(&report));
    ctx.document(&report)?;
    let failed: Vec<&str> = report
        .targets
        .iter()
        .filter(|t| t.result == "failed")
        .map(|t| t.target.as_str())
        .collect();
    if !report.tolerance_held {
        return Err(super::AlreadyReported(format!(
            "the deploy failed past [deploy] failure_tolerance on {}; later targets were not started",
            failed.join(", ")
        ))
        .into());
    }
    if !failed.is_empty() {
        ctx.printer.warn(format!(
            "{} failed, within [deploy] failure_tolerance: {}",
            failed.len(),
            failed.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_resolves_in_its_own_environment_region_and_account() {
        let t = Target {
            name: "prod-eu".into(),
            account: "222222222222".into(),
            region: "eu-west-1".into(),
            environment: Some("prod".into()),
            role_arn: None,
            external_id: None,
            wave: 2,
        };
        let env = Env {
            environment: Some("dev".into()),
            deployment_bucket: Some("one-bucket".into()),
            ..Env::default()
        };
        let e = target_env(&env, &t);
        assert_eq!(e.environment.as_deref(), Some("prod"));
        assert_eq!(e.aws_region.as_deref(), Some("eu-west-1"));
        assert_eq!(e.account_id.as_deref(), Some("222222222222"));
        assert_eq!(e.deployment_bucket, None);
        assert_eq!(
            per_target(Path::new("/p/stack-outputs.json"), "prod-eu"),
            Path::new("/p/stack-outputs.prod-eu.json")
        );
        let long = session_name(1_700_000_000, &"x".repeat(80));
        assert_eq!(long.len(), 64);
        assert!(long.starts_with("artifact-1700000000-x"));
    }
}
