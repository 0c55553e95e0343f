//! `artifact history` and `artifact rollback`.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::{clock_and_nonce, commit, minutes, with_aws, Context};
use crate::cli::{HistoryArgs, RollbackArgs};
use crate::config::{Env, Settings};
use crate::frontend::{self, FrontendReport};
use crate::history::{store, Entry};
use crate::output::Reporter;
use crate::rollback::{self, site, RollbackError, RollbackOptions, RollbackReport};

/// What `rollback --json` prints: the stack's rollback and the site's.
#[derive(Debug, Serialize, Deserialize)]
pub struct RollbackDocument {
    pub infra: Option<RollbackReport>,
    pub frontend: Option<FrontendReport>,
}

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

/// Which parts a rollback takes back: the stack, the site, or both.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts {
    pub infra: bool,
    pub site: bool,
    /// Whether the site was asked for by name (`--frontend`): then a site
    /// with no recorded release is an error, not skipped.
    pub site_named: bool,
}

/// The parts `args` asks for, or why they cannot go together.
pub(crate) fn parts(args: &RollbackArgs) -> anyhow::Result<Parts> {
    if args.to.is_some() && args.infra == args.frontend {
        anyhow::bail!(
            "rollback --to names one deployment of the stack or of the site\nhint: add --infra or --frontend (artifact history lists the stack's; the site's ids are in deployment-summary.json)"
        );
    }
    // Neither flag: both, the stack first (aws-config.js comes from its outputs).
    Ok(Parts {
        infra: args.infra || !args.frontend,
        site: args.frontend || !args.infra,
        site_named: args.frontend,
    })
}

/// The rollback's options, from the command line and the settings.
pub(crate) fn rollback_options(
    env: &Env,
    args: &RollbackArgs,
    settings: &Settings,
    (now, nonce): (u64, u32),
) -> RollbackOptions {
    RollbackOptions {
        to: args.to.clone(),
        steps: args.steps.unwrap_or(1),
        dry_run: args.dry_run,
        timeout: args
            .timeout
            .unwrap_or_else(|| minutes(settings.infra.timeout_minutes)),
        commit: commit(env, &settings.root),
        now_unix: now,
        nonce,
    }
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

/// The rollback with these clients, within `--timeout`, its metrics
/// published.
pub(crate) async fn rollback_with(
    ctx: &Context,
    settings: &Settings,
    opts: &RollbackOptions,
    c: &crate::aws::Clients,
    parts: Parts,
) -> anyhow::Result<RollbackDocument> {
    let started = std::time::Instant::now();
    let work = async {
        let infra = match parts.infra {
            true => Some(rollback::run(c, settings, opts, &ctx.printer).await?),
            false => None,
        };
        let frontend = match parts.site {
            true => rollback_site(c, settings, opts, !parts.site_named, &ctx.printer).await?,
            false => None,
        };
        Ok(RollbackDocument { infra, frontend })
    };
    // --timeout bounds the whole rollback, retries included.
    let done: anyhow::Result<RollbackDocument> =
        super::within(opts.timeout, work).await.unwrap_or_else(|| {
            Err(anyhow::anyhow!(
                "rollback did not finish within --timeout {}\nhint: check the endpoint and the network, or raise --timeout, then run the rollback again",
                crate::util::shown_duration(opts.timeout)
            ))
        });
    if !opts.dry_run {
        let figures = crate::metrics::of_rollback(started.elapsed().as_secs_f64(), done.is_err());
        ctx.publish_metrics(c, settings, "rollback", &figures).await;
    }
    done
}

/// The site back to a recorded release, deployed from its kept files. With
/// `optional` (no flag given), a site with no recorded release is skipped.
async fn rollback_site(
    c: &crate::aws::Clients,
    settings: &Settings,
    opts: &RollbackOptions,
    optional: bool,
    reporter: &dyn Reporter,
) -> anyhow::Result<Option<FrontendReport>> {
    let dir = tempfile::tempdir()?;
    let record = match site::materialize(c, settings, opts, dir.path()).await {
        Ok(r) => r,
        Err(RollbackError::NoTarget { message }) if optional => {
            reporter.progress(format!("site: not rolled back ({message})"));
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    reporter.progress(format!("site: back to release {}", record.id));
    let fopts = frontend::FrontendOptions {
        dist: Some(dir.path().to_path_buf()),
        dry_run: opts.dry_run,
        wait: false,
        invalidate: frontend::InvalidateMode::Changed,
        keep_previous: None,
        timeout: minutes(settings.frontend.timeout_minutes),
        // The commit it restores, in its id as in its commit column.
        deployment_id: crate::names::deployment_id(
            record.commit.as_deref(),
            opts.now_unix,
            opts.nonce ^ 1,
        ),
        progress: false,
        scan: false,
        wait_for_lock: std::time::Duration::from_secs(300),
        commit: record.commit.clone(),
        rollback_of: Some(record.id.clone()),
        distribution_ready: false,
    };
    Ok(Some(frontend::deploy(c, settings, &fopts, reporter).await?))
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
