//! `artifact history` and `artifact rollback`.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::rollback_one::{parts, render_rollback, rollback_options, rollback_with};
use super::{clock_and_nonce, with_aws, Context};
use crate::cli::{HistoryArgs, RollbackArgs};
use crate::config::{Env, Settings};
use crate::history::{store, Entry};

pub(crate) fn history(ctx: &Context, env: &Env, args: HistoryArgs) -> anyhow::Result<()> {
    let log = if args.frontend {
        &crate::history::SITE
    } else {
        &crate::history::INFRA
    };
    let sel = super::targets::selection(&args.targets);
    if sel.any() {
        return history_of_targets(ctx, env, &args, sel, log);
    }
    let settings = Settings::load(&ctx.config_path, env)?;
    let bucket = &settings.infra.deployment_bucket;
    let index = with_aws(&ctx.aws, async |c| {
        Ok(store::load_index_of(c, bucket, log).await?)
    })?;
    let entries = newest(index.deployments, args.limit);
    ctx.printer.listing(&render_history(&entries))?;
    ctx.document(&entries)
}

/// At most `limit` entries, newest first.
fn newest(mut deployments: Vec<Entry>, limit: usize) -> Vec<Entry> {
    deployments.reverse();
    deployments.truncate(limit);
    deployments
}

/// One target's history, as `history --all-targets --json` prints it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TargetHistory {
    target: String,
    account: String,
    region: String,
    deployments: Vec<Entry>,
}

/// `--target`, `--wave`, `--all-targets`: each target's history from its
/// own bucket, read in its region with its role, all at once. One
/// `--target NAME` prints as without targets; more, one section each.
fn history_of_targets(
    ctx: &Context,
    env: &Env,
    args: &HistoryArgs,
    sel: crate::fanout::Selection,
    log: &'static crate::history::Log,
) -> anyhow::Result<()> {
    let base = Settings::load(&ctx.config_path, env)?;
    let waves = crate::fanout::select(&base.targets, &sel).map_err(|m| anyhow::anyhow!(m))?;
    let single = sel.names.len() == 1 && !sel.all && sel.wave.is_none();
    let run = clock_and_nonce().0;
    let read = waves.into_iter().flatten().map(|t| async move {
        let settings = super::targets::settings_for(ctx, env, &t)?;
        let c = super::targets::clients_for(&ctx.aws, &t, run).await?;
        let index = store::load_index_of(&c, &settings.infra.deployment_bucket, log)
            .await
            .with_context(|| format!("target {}", t.name))?;
        anyhow::Ok(TargetHistory {
            deployments: newest(index.deployments, args.limit),
            target: t.name,
            account: t.account,
            region: t.region,
        })
    });
    let read: anyhow::Result<Vec<TargetHistory>> = super::runtime()?
        .block_on(futures_util::future::join_all(read))
        .into_iter()
        .collect();
    let mut read = read?;
    if single {
        let entries = read.pop().map(|h| h.deployments).unwrap_or_default();
        ctx.printer.listing(&render_history(&entries))?;
        return ctx.document(&entries);
    }
    let mut lines = Vec::new();
    for h in &read {
        lines.push(format!("target {} ({} {}):", h.target, h.account, h.region));
        lines.extend(render_history(&h.deployments));
    }
    ctx.printer.listing(&lines)?;
    ctx.document(&read)
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
    let parts = parts(&args)?;
    let sel = super::targets::selection(&args.targets);
    if sel.any() {
        return super::targets::rollback(ctx, env, &args, parts, sel);
    }
    let settings = Settings::load(&ctx.config_path, env)?;
    let opts = rollback_options(env, &args, &settings, clock_and_nonce());
    ctx.metrics_namespace(&settings)?;
    let aws = super::bounded(&ctx.aws, opts.timeout);
    let doc = with_aws(&aws, async |c| {
        rollback_with(ctx, &settings, &opts, c, parts).await
    })?;
    if let Some(r) = &doc.infra {
        ctx.lines(render_rollback(r));
    }
    if let Some(r) = &doc.frontend {
        ctx.lines(super::deploy_frontend::render(r));
    }
    ctx.document(&doc)
}
