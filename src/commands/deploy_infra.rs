//! `artifact deploy-infra`.

use super::{clock_and_nonce, commit, minutes, with_aws, Context};
use crate::cfn::layers::{LayerAction, LayerStep};
use crate::cfn::{self, Difference, InfraPlan, InfraReport, Outcome, StackStep};
use crate::cli::DeployInfraArgs;
use crate::config::{Env, Settings};
use crate::history;
use crate::lambda::CodeAction;
use crate::metrics;
use crate::output::human_bytes;
use crate::sync::SyncPlan;

pub(crate) fn run(ctx: &Context, env: &Env, args: DeployInfraArgs) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.config_path, env)?;
    let opts = options(env, &args, &settings);
    ctx.metrics_namespace(&settings)?;
    let aws = super::bounded(&ctx.aws, opts.timeout);
    let report = with_aws(&aws, async |c| deploy_with(ctx, &settings, &opts, c).await)?;
    for w in &report.warnings {
        ctx.printer.warn(w);
    }
    ctx.lines(render(&report));
    ctx.document(&report)
}

/// The deploy's options from the command line and the project file.
pub(crate) fn options(
    env: &Env,
    args: &DeployInfraArgs,
    settings: &Settings,
) -> cfn::DeployOptions {
    let (now, nonce) = clock_and_nonce();
    cfn::DeployOptions {
        dry_run: args.dry_run,
        no_execute: args.no_execute,
        timeout: args
            .timeout
            .unwrap_or_else(|| minutes(settings.infra.timeout_minutes)),
        replace_failed_stack: args.replace_failed_stack,
        commit: commit(env, &settings.root),
        nonce,
        now_unix: now,
        copies: None,
    }
}

/// One stack's deploy with these clients, its figures published and a
/// failure recorded in the history.
pub(crate) async fn deploy_with(
    ctx: &Context,
    settings: &Settings,
    opts: &cfn::DeployOptions,
    c: &crate::aws::Clients,
) -> anyhow::Result<InfraReport> {
    let started = std::time::Instant::now();
    let done = super::within(opts.timeout, cfn::deploy(c, settings, opts, &ctx.printer))
        .await
        .unwrap_or_else(|| {
            Err(cfn::InfraError::OutOfTime {
                timeout: crate::util::shown_duration(opts.timeout),
            })
        });
    let figures = match &done {
        Ok(r) if r.outcome == Outcome::DryRun => None,
        Ok(r) => {
            let end = clock_and_nonce().0;
            let lead = metrics::lead_time(&settings.root, opts.commit.as_deref(), end);
            let mut figures = metrics::of_infra(r, lead);
            if r.history.is_some() && ctx.metrics_namespace(settings)?.is_some() {
                figures.extend(restore_time(c, settings, end).await);
            }
            Some(figures)
        }
        // A refusal before anything changed is not a failed deployment.
        Err(e) if e.is_refusal() => None,
        Err(e) => {
            // Past --timeout nothing more is asked of AWS: the record would outlast it.
            let out_of_time = matches!(e, cfn::InfraError::OutOfTime { .. });
            if !opts.dry_run && !out_of_time && reached_aws(e) {
                record_failure(c, settings, opts, &format!("{e}")).await;
            }
            Some(metrics::of_failed_deploy(started.elapsed().as_secs_f64()))
        }
    };
    if let Some(figures) = figures {
        ctx.publish_metrics(c, settings, "deploy-infra", &figures)
            .await;
    }
    Ok(done?)
}

/// Whether the deployment bucket can be expected to answer: not after a
/// failure to reach AWS at all, or without usable credentials, or when the
/// bucket is what is missing (recording would only wait for the same failure).
fn reached_aws(e: &cfn::InfraError) -> bool {
    use crate::aws::AwsFailure as F;
    let failure = match e {
        cfn::InfraError::NoBucket { .. } | cfn::InfraError::BucketRegion { .. } => return false,
        cfn::InfraError::Aws(f) | cfn::InfraError::Sync(crate::sync::SyncError::Aws(f)) => f,
        cfn::InfraError::Lambda(crate::lambda::LambdaError::Call { failure, .. }) => failure,
        _ => return true,
    };
    !matches!(
        failure,
        F::NoCredentials { .. }
            | F::BadCredentials { .. }
            | F::Unreachable { .. }
            | F::Throttled { .. }
            | F::Interrupted { .. }
            | F::Unexpected { .. }
    )
}

/// A failed deploy, listed in the history (best effort: the deployment
/// bucket may be what is missing).
async fn record_failure(
    c: &crate::aws::Clients,
    settings: &Settings,
    opts: &cfn::DeployOptions,
    error: &str,
) {
    let commit = opts.commit.as_deref();
    let id = crate::names::deployment_id(commit, opts.now_unix, opts.nonce);
    let entry = history::failure(&id, commit, opts.now_unix, clock_and_nonce().0, error);
    let bucket = &settings.infra.deployment_bucket;
    if let Err(e) = history::store::save_failure(c, bucket, entry, settings.history_keep).await {
        tracing::info!("the failed deploy was not recorded in the history: {e}");
    }
}

/// `TimeToRestore`, when the deploys just before this one failed.
async fn restore_time(
    c: &crate::aws::Clients,
    settings: &Settings,
    now: u64,
) -> Vec<metrics::Metric> {
    let index = history::store::load_index(c, &settings.infra.deployment_bucket).await;
    index
        .ok()
        .and_then(|i| history::time_to_restore(&i, now))
        .map(|s| metrics::time_to_restore(s as f64))
        .into_iter()
        .collect()
}

/// With `--dry-run`: the plan table; then each function and the summary.
pub(crate) fn render(r: &InfraReport) -> Vec<String> {
    let mut lines = Vec::new();
    if let (Outcome::DryRun, Some(plan)) = (r.outcome, &r.plan) {
        lines.extend(render_plan(plan));
    } else {
        for l in &r.layers {
            lines.push(format!("  {}", layer_line(l)));
        }
        for f in &r.functions {
            lines.push(format!("  {:<48} {}", f.deployed_name, f.action));
        }
    }
    let updated = r
        .functions
        .iter()
        .filter(|f| f.action != CodeAction::Unchanged)
        .count();
    let outcome = match r.outcome {
        Outcome::Changed => "changed",
        Outcome::Unchanged => "nothing to do",
        Outcome::Review => "change set created for review (not executed)",
        Outcome::DryRun => "dry run",
        Outcome::Failed => "failed",
    };
    lines.push(format!(
        "stack {}: {outcome}; status {}; change set {}; templates {} uploaded / {} unchanged; zips {} uploaded / {} unchanged; functions {updated} {} / {} unchanged; {} requests in {:.1}s",
        r.stack,
        r.stack_status.as_deref().unwrap_or("none"),
        r.change_set.as_deref().unwrap_or("none"),
        r.templates.uploaded,
        r.templates.unchanged,
        r.zips.uploaded,
        r.zips.unchanged,
        if r.outcome == Outcome::DryRun { "to update" } else { "updated" },
        r.functions.len() - updated,
        r.requests.values().sum::<u64>(),
        r.seconds,
    ));
    if let Some(f) = &r.outputs_file {
        lines.push(format!("outputs: {}", f.display()));
    }
    if let Some(h) = &r.history {
        lines.push(format!(
            "recorded as {h} (artifact history, artifact rollback)"
        ));
    }
    lines
}

/// What the deploy would do, section by section.
pub(crate) fn render_plan(p: &InfraPlan) -> Vec<String> {
    let step = match p.step {
        StackStep::Create => "create (CREATE change set)",
        StackStep::Update => "update (UPDATE change set)",
        StackStep::Nothing => "nothing to change (no change set)",
        StackStep::ReplaceFailed => "delete the failed stack, then create it (CREATE change set)",
        StackStep::Wait => "wait for the running operation, then decide again",
    };
    let mut lines = vec![
        format!(
            "plan for stack {} ({}):",
            p.stack,
            p.stack_status.as_deref().unwrap_or("does not exist")
        ),
        format!("  stack:      {step}"),
    ];
    if let Some(cs) = &p.change_set {
        lines.push(format!("  change set: {cs}"));
    }
    lines.extend(uploads("templates", &p.templates));
    if let Some(z) = &p.zips {
        lines.extend(uploads("zips", z));
    }
    for l in &p.layers {
        lines.push(format!("  layer       {}", layer_line(l)));
    }
    for n in &p.nested {
        let what = if n.template_changed {
            "template changed: updated by the change set"
        } else {
            "template unchanged"
        };
        lines.push(format!(
            "  nested      {:<24} {:<36} {what}",
            n.stack,
            n.key
                .as_deref()
                .unwrap_or("(TemplateURL not known offline)")
        ));
    }
    lines.extend(differences("parameter", &p.parameters));
    lines.extend(differences("tag", &p.tags));
    for f in &p.functions {
        lines.push(format!(
            "  code        {:<44} {}",
            f.deployed_name, f.action
        ));
    }
    lines
}

/// `deps (p-dev-deps): reused arn:…:3` or `published`, `a new version to publish`.
fn layer_line(l: &LayerStep) -> String {
    let what = match (&l.action, &l.arn) {
        (LayerAction::Reuse, Some(arn)) => format!("reused {arn}"),
        (LayerAction::Publish, Some(arn)) => format!("published {arn}"),
        _ => "a new version to publish".to_string(),
    };
    format!(
        "{} ({}): {what} -> {}",
        l.layer, l.deployed_name, l.parameter
    )
}

fn uploads(what: &str, plan: &SyncPlan) -> Vec<String> {
    let mut lines: Vec<String> = plan
        .actions()
        .map(|a| {
            format!(
                "  upload      {:<44} {:>9} ({})",
                a.key,
                human_bytes(a.bytes),
                a.reason
            )
        })
        .collect();
    lines.push(format!(
        "  {what}: {} to upload, {} unchanged",
        plan.assets.len() + plan.entry_points.len(),
        plan.unchanged.files
    ));
    lines
}

fn differences(what: &str, diffs: &[Difference]) -> Vec<String> {
    let show = |v: &Option<String>| {
        v.as_deref()
            .map_or("(none)".to_string(), |v| format!("{v:?}"))
    };
    diffs
        .iter()
        .map(|d| {
            format!(
                "  {what:<11} {}: {} -> {}",
                d.key,
                show(&d.deployed),
                show(&d.wanted)
            )
        })
        .collect()
}
