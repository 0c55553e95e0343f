//! `--all-targets`, `--target NAME`, `--wave N`: a deploy across the
//! `[[targets]]` of artifact.toml, each target in its own account (an
//! assumed role) and region, with the settings of its own environment.

use std::collections::BTreeMap;

use super::{bounded, runtime, Context};
use crate::aws::{AwsArgs, Clients};
use crate::cfn::{InfraReport, Outcome};
use crate::cli::{DeployInfraArgs, TargetArgs};
use crate::config::{Env, Settings, Target};
use crate::fanout::{self, Selection};
use crate::output::Printer;

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
fn target_env(env: &Env, t: &Target) -> Env {
    Env {
        environment: t.environment.clone().or_else(|| env.environment.clone()),
        aws_region: Some(t.region.clone()),
        account_id: Some(t.account.clone()),
        deployment_bucket: None,
        ..env.clone()
    }
}

/// STS's session name: the run and the target (64 characters at most).
fn session_name(run: u64, target: &str) -> String {
    let mut s = format!("artifact-{run}-{target}");
    s.truncate(64);
    s
}

/// The clients of one target: its region, and its role when it has one.
async fn clients_for(aws: &AwsArgs, t: &Target, run: u64) -> anyhow::Result<Clients> {
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
        "stack {} {}; zips {} uploaded; functions {updated} updated",
        r.stack,
        r.stack_status.as_deref().unwrap_or("none"),
        r.zips.uploaded,
    );
    (result.into(), detail)
}

pub(crate) fn deploy_infra(
    ctx: &Context,
    env: &Env,
    args: &DeployInfraArgs,
    sel: Selection,
) -> anyhow::Result<()> {
    let base = Settings::load(&ctx.config_path, env)?;
    let waves = fanout::select(&base.targets, &sel).map_err(|m| anyhow::anyhow!(m))?;
    if env.deployment_bucket.is_some() {
        ctx.printer.warn(
            "DEPLOYMENT_BUCKET is not used with targets: each target's bucket is [infra] deployment_bucket (use {region} and {account} in it)",
        );
    }
    // Every target's settings first: a bad one stops the run before any call.
    let mut settings = BTreeMap::new();
    for t in waves.iter().flatten() {
        let s = Settings::load(&ctx.config_path, &target_env(env, t))
            .map_err(|e| anyhow::anyhow!("target {}: {e}", t.name))?;
        settings.insert(t.name.clone(), s);
    }
    let (run_id, _) = super::clock_and_nonce();
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
        let s = &settings[&t.name];
        let quiet = &quiet;
        async move {
            let opts = super::deploy_infra::options(&target_env(env, &t), args, s);
            let aws = bounded(&quiet.aws, opts.timeout);
            let done = async {
                let c = clients_for(&aws, &t, run_id).await?;
                super::deploy_infra::deploy_with(quiet, s, &opts, &c).await
            };
            match done.await {
                Ok(r) => Ok(summary(&r)),
                Err(e) => Err(format!("{e:#}")),
            }
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
        let long = session_name(1_700_000_000, &"x".repeat(80));
        assert_eq!(long.len(), 64);
        assert!(long.starts_with("artifact-1700000000-x"));
    }
}
