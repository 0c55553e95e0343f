//! `artifact sync DIR s3://bucket/prefix`.

use std::time::{Duration, Instant};

use super::{with_aws, Context};
use crate::cli::SyncArgs;
use crate::config::{Env, Settings, SyncSettings};
use crate::model::S3Url;
use crate::output::human_bytes;
use crate::sync::{self, ActionKind, SecretCheck, SyncReport, SyncRequest};

pub(crate) fn run(ctx: &Context, env: &Env, args: SyncArgs) -> anyhow::Result<()> {
    let project = Settings::load_optional(ctx.explicit_config.as_deref(), env)?;
    // Without a project file: every finding fails, paths as seen from here.
    let secrets = match &project {
        Some(p) => SecretCheck::of(p),
        None => Some(SecretCheck {
            root: std::env::current_dir().unwrap_or_default(),
            ..SecretCheck::default()
        }),
    };
    let settings = project.map_or_else(SyncSettings::default, |p| p.sync);
    let req = SyncRequest {
        dir: args.dir,
        dest: S3Url::parse(&args.destination)?,
        settings,
        delete: args.delete,
        max_delete: args.max_delete,
        dry_run: args.dry_run,
        progress: ctx.printer.wants_progress(),
        keep: Default::default(),
        secrets,
        copies: None,
    };
    let started = Instant::now();
    let report = with_aws(&ctx.aws, async |c| Ok(sync::run(c, &req).await?))?;
    ctx.lines(render(&report, started.elapsed()));
    ctx.document(&report)
}

/// The plan (each change, in order) and the summary.
pub(crate) fn render(r: &SyncReport, took: Duration) -> Vec<String> {
    let mut lines: Vec<String> = r
        .actions
        .iter()
        .map(|a| {
            let verb = match a.kind {
                ActionKind::Upload => "upload",
                ActionKind::UpdateHeaders => "headers",
                ActionKind::Delete => "delete",
            };
            format!("  {verb:<8} {} ({})", a.key, a.reason)
        })
        .collect();
    let requests: u64 = r.requests.values().sum();
    lines.push(format!(
        "{}{}: {} uploaded ({}), {} headers updated, {} unchanged ({}), {} deleted{} in {:.2}s, {requests} requests",
        if r.dry_run { "dry run, would sync " } else { "synced " },
        r.destination,
        r.uploaded.files,
        human_bytes(r.uploaded.bytes),
        r.headers_updated.files,
        r.unchanged.files,
        human_bytes(r.unchanged.bytes),
        r.deleted.files,
        if r.extra_remote > 0 {
            format!(" ({} remote objects not in the folder kept; --delete removes them)", r.extra_remote)
        } else {
            String::new()
        },
        took.as_secs_f64(),
    ));
    lines
}
