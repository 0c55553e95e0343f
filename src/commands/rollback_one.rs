//! One rollback with the clients given: the stack back to a recorded
//! deployment, then the site to a recorded release; what `rollback` runs
//! for the credentials' own account, and for each target.

use serde::{Deserialize, Serialize};

use super::{commit, minutes, Context};
use crate::cli::RollbackArgs;
use crate::config::{Env, Settings};
use crate::frontend::{self, FrontendReport};
use crate::output::Reporter;
use crate::rollback::{self, site, RollbackError, RollbackOptions, RollbackReport};

/// What `rollback --json` prints: the stack's rollback and the site's.
#[derive(Debug, Serialize, Deserialize)]
pub struct RollbackDocument {
    pub infra: Option<RollbackReport>,
    pub frontend: Option<FrontendReport>,
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
