//! `artifact history` and `artifact rollback`.

use super::{clock_and_nonce, commit, minutes, with_aws, Context};
use crate::cli::{HistoryArgs, RollbackArgs};
use crate::config::{Env, Settings};
use crate::history::rollback::{self, RollbackOptions, RollbackReport};
use crate::history::{store, Entry};

pub(crate) fn history(ctx: &Context, env: &Env, args: HistoryArgs) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.config_path, env)?;
    let bucket = &settings.infra.deployment_bucket;
    let index = with_aws(&ctx.aws, async |c| Ok(store::load_index(c, bucket).await?))?;
    let mut entries: Vec<Entry> = index.deployments.into_iter().rev().collect();
    entries.truncate(args.limit);
    ctx.lines(render_history(&entries));
    ctx.document(&entries)
}

/// One line per deployment, newest first.
pub(crate) fn render_history(entries: &[Entry]) -> Vec<String> {
    if entries.is_empty() {
        return vec![
            "no deployments recorded yet (deploy-infra records each one that changes something)"
                .into(),
        ];
    }
    let mut lines = vec![format!(
        "  {:<46} {:<20} {:<12} {:<12} {:>6}  {}",
        "id", "ended (UTC)", "commit", "outcome", "secs", "what changed"
    )];
    for e in entries {
        lines.push(format!(
            "  {:<46} {:<20} {:<12} {:<12} {:>6}  {}",
            e.id,
            crate::names::utc_timestamp(e.ended_unix),
            e.commit.as_deref().map_or("-", |c| &c[..c.len().min(12)]),
            e.outcome,
            e.ended_unix.saturating_sub(e.started_unix),
            e.summary
        ));
    }
    lines
}

pub(crate) fn rollback(ctx: &Context, env: &Env, args: RollbackArgs) -> anyhow::Result<()> {
    if args.frontend {
        anyhow::bail!(
            "rollback --frontend: the site cannot be restored yet (its entry points are not kept)\nhint: roll the stack back with --infra, and redeploy the earlier site from its build (or its commit)"
        );
    }
    let settings = Settings::load(&ctx.config_path, env)?;
    let (now, nonce) = clock_and_nonce();
    let opts = RollbackOptions {
        to: args.to,
        steps: args.steps.unwrap_or(1),
        dry_run: args.dry_run,
        timeout: args
            .timeout
            .unwrap_or_else(|| minutes(settings.infra.timeout_minutes)),
        commit: commit(env, &settings.root),
        now_unix: now,
        nonce,
    };
    let say = |line: String| ctx.printer.line(line);
    let report = with_aws(&ctx.aws, async |c| {
        Ok(rollback::run(c, &settings, &opts, &say).await?)
    })?;
    ctx.lines(render_rollback(&report));
    ctx.document(&report)
}

/// The plan, then what was done.
pub(crate) fn render_rollback(r: &RollbackReport) -> Vec<String> {
    let p = &r.plan;
    let mut lines = vec![format!("rollback of stack {} to {}:", p.stack, p.target)];
    match &p.change_set {
        Some(cs) => {
            let what = match (p.template_differs, p.parameters.is_empty()) {
                (true, true) => "the recorded template",
                (true, false) => "the recorded template and parameters",
                _ => "the recorded parameters",
            };
            lines.push(format!("  stack:      change set {cs} ({what})"));
        }
        None => lines.push("  stack:      already as recorded (no change set)".into()),
    }
    for d in &p.parameters {
        lines.push(format!(
            "  parameter   {}: {:?} -> {:?}",
            d.key,
            d.deployed.as_deref().unwrap_or("(none)"),
            d.wanted.as_deref().unwrap_or("(none)")
        ));
    }
    for f in &r.functions {
        lines.push(format!(
            "  code        {:<44} {}",
            f.deployed_name, f.action
        ));
    }
    lines.push(format!(
        "{}; {} requests in {:.1}s{}",
        r.outcome,
        r.requests.values().sum::<u64>(),
        r.seconds,
        r.history
            .as_ref()
            .map(|h| format!("; recorded as {h}"))
            .unwrap_or_default()
    ));
    lines
}
