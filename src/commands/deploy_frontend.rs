//! `artifact deploy-frontend`.

use super::{clock_and_nonce, commit, minutes, with_aws, Context};
use crate::cli::DeployFrontendArgs;
use crate::config::{self, Env, Settings};
use crate::frontend::{self, FrontendPlan, FrontendReport};
use crate::metrics;
use crate::names;
use crate::output::human_bytes;
use crate::sync::ActionKind;

pub(crate) fn run(ctx: &Context, env: &Env, args: DeployFrontendArgs) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.config_path, env)?;
    let opts = options(ctx, env, &args, &settings);
    ctx.metrics_namespace(&settings)?;
    let aws = super::bounded(&ctx.aws, opts.timeout);
    let report = with_aws(&aws, async |c| deploy_with(ctx, &settings, &opts, c).await)?;
    ctx.lines(render(&report));
    ctx.document(&report)
}

/// The deploy's options from the command line and the project file.
pub(crate) fn options(
    ctx: &Context,
    env: &Env,
    args: &DeployFrontendArgs,
    settings: &Settings,
) -> frontend::FrontendOptions {
    let (now, nonce) = clock_and_nonce();
    let commit = commit(env, &settings.root);
    frontend::FrontendOptions {
        dist: args.dist.as_ref().map(|p| config::absolute(p)),
        dry_run: args.dry_run,
        wait: args.wait,
        invalidate: args.invalidate,
        keep_previous: args.keep_previous,
        timeout: args
            .timeout
            .unwrap_or_else(|| minutes(settings.frontend.timeout_minutes)),
        deployment_id: names::deployment_id(commit.as_deref(), now, nonce),
        progress: ctx.printer.wants_progress(),
        scan: true,
        wait_for_lock: args.wait_for_lock,
        commit,
        rollback_of: None,
        distribution_ready: settings.infra.mode == config::DeployMode::Express,
    }
}

/// One site's deploy with these clients, its figures published.
pub(crate) async fn deploy_with(
    ctx: &Context,
    settings: &Settings,
    opts: &frontend::FrontendOptions,
    c: &crate::aws::Clients,
) -> anyhow::Result<FrontendReport> {
    let started = std::time::Instant::now();
    let done = super::within(
        opts.timeout,
        frontend::deploy(c, settings, opts, &ctx.printer),
    )
    .await
    .unwrap_or_else(|| Err(frontend::FrontendError::timed_out(opts.timeout)));
    let figures = match &done {
        Ok(r) if r.dry_run => None,
        Ok(r) => {
            let lead =
                metrics::lead_time(&settings.root, opts.commit.as_deref(), clock_and_nonce().0);
            Some(metrics::of_frontend(r, lead))
        }
        Err(_) => Some(metrics::of_failed_deploy(started.elapsed().as_secs_f64())),
    };
    if let Some(figures) = figures {
        ctx.publish_metrics(c, settings, "deploy-frontend", &figures)
            .await;
    }
    Ok(done?)
}

/// With `--dry-run`: the plan table; then the summary.
pub(crate) fn render(r: &FrontendReport) -> Vec<String> {
    let mut lines = Vec::new();
    if let (true, Some(plan)) = (r.dry_run, &r.plan) {
        lines.extend(render_plan(plan));
    }
    let inv = match &r.invalidation {
        Some(i) => format!(
            "invalidation {} of {} path(s){}",
            i.id.as_deref().unwrap_or("(dry run)"),
            i.paths.len(),
            i.status
                .as_deref()
                .map(|s| format!(", {s}"))
                .unwrap_or_default()
        ),
        None => "no invalidation".into(),
    };
    lines.push(format!(
        "{}s3://{}: {} uploaded ({}), {} headers updated, {} unchanged, {} deleted, {} kept for open tabs; {inv}; {} requests in {:.1}s",
        if r.dry_run { "dry run: " } else { "" },
        r.bucket,
        r.uploaded.files,
        human_bytes(r.uploaded.bytes),
        r.headers_updated.files,
        r.unchanged.files,
        r.deleted.files,
        r.kept_from_previous,
        r.requests.values().sum::<u64>(),
        r.seconds
    ));
    lines.push(format!("frontend: {}", r.url));
    lines
}

/// Each change in order, what is kept, what is invalidated.
pub(crate) fn render_plan(p: &FrontendPlan) -> Vec<String> {
    let mut lines = vec![format!("plan for s3://{} ({}):", p.bucket, p.deployment_id)];
    for a in p.sync.actions() {
        let verb = match a.kind {
            ActionKind::Upload => "upload",
            ActionKind::UpdateHeaders => "headers",
            ActionKind::Delete => "delete",
        };
        lines.push(format!(
            "  {verb:<8} {:<48} {:>9} ({})",
            a.key,
            human_bytes(a.bytes),
            a.reason
        ));
    }
    lines.push(format!(
        "  kept for open tabs: {} object(s) of earlier releases",
        p.kept_from_previous
    ));
    if p.invalidation_paths.is_empty() {
        lines.push("  invalidate: nothing".into());
    } else {
        lines.push(format!("  invalidate: {}", p.invalidation_paths.join(" ")));
    }
    if !p.records_history {
        lines.push("  history: same files as the last deployment, not recorded again".into());
    }
    lines
}
