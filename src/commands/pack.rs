//! `artifact pack`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Context;
use crate::cli::PackArgs;
use crate::config::{self, Env, Settings};
use crate::output::human_bytes;
use crate::pack::{self, PackPlan, PackReport, ZipAction};

pub(crate) fn run(ctx: &Context, env: &Env, args: PackArgs) -> anyhow::Result<()> {
    let settings = Settings::load(&ctx.config_path, env)?;
    let namespace = ctx.metrics_namespace(&settings)?.is_some();
    let remote = remote_cache(ctx, &settings, &args)?;
    let opts = pack::PackOptions {
        out: args.out.map(|p| config::absolute(&p)),
        cache_dir: args.cache_dir.map(|p| config::absolute(&p)),
        jobs: args.jobs,
        no_cache: args.no_cache,
        dry_run: args.dry_run,
        prune_cache: args.prune_cache,
        remote,
        check: match (args.check, args.no_check) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
    };
    let started = Instant::now();
    let report = pack::run(&settings, &opts)?;
    let took = started.elapsed();
    for w in &report.run.warnings {
        ctx.printer.warn(w);
    }
    if !opts.dry_run {
        write_provenance(ctx, &settings, env, &report)?;
    }
    if namespace && !opts.dry_run {
        let figures = crate::metrics::of_pack(&report, took.as_secs_f64());
        let published = super::with_aws(&ctx.aws, async |c| {
            ctx.publish_metrics(c, &settings, "pack", &figures).await;
            Ok(())
        });
        if let Err(e) = published {
            ctx.printer
                .warn(format!("metrics were not published: {e:#}"));
        }
    }
    ctx.lines(render(&report, started.elapsed()));
    ctx.document(&report)
}

/// `provenance.intoto.jsonl` beside the zips (rewritten only when it changes).
fn write_provenance(
    ctx: &Context,
    settings: &Settings,
    env: &Env,
    report: &PackReport,
) -> anyhow::Result<()> {
    use crate::pack::provenance::{self, BuildFacts};
    let sha = |p: &std::path::Path| {
        crate::util::sha256_file(p)
            .map(|h| crate::util::hex(&h))
            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
    };
    let mut requirements = std::collections::BTreeMap::new();
    let files = settings.pack.requirements.iter().chain(
        settings
            .functions
            .iter()
            .filter_map(|f| f.requirements.as_ref())
            .chain(
                settings
                    .layers
                    .iter()
                    .filter_map(|l| l.requirements.as_ref()),
            ),
    );
    for r in files {
        requirements.insert(settings.shown(r), sha(r)?);
    }
    let facts = BuildFacts {
        build_arn: env.build_arn.clone(),
        repository: env.source_repo_url.clone(),
        commit: super::commit(env, &settings.root),
        config_sha256: sha(&settings.config_path)?,
        requirements,
    };
    let line = provenance::statement(&report.manifest, &facts);
    let path = report.run.out.join(provenance::PROVENANCE);
    let content = match &settings.provenance_kms_key {
        None => line,
        Some(key) => match signed_again(&path, &line, key) {
            Some(same) => same,
            None => {
                let statement = line.strip_suffix(b"\n").unwrap_or(&line);
                let signed = super::with_aws(&ctx.aws, async |c| {
                    Ok(crate::pack::sign::sign(c, key, statement).await?)
                });
                match signed {
                    Ok(envelope) => {
                        let mut text = serde_json::to_vec(&envelope)?;
                        text.push(b'\n');
                        text
                    }
                    Err(e) => {
                        // No provenance is better than one that does not describe these zips.
                        let _ = std::fs::remove_file(&path);
                        return Err(e.context(format!(
                            "the provenance was not signed, and {} is not written",
                            path.display()
                        )));
                    }
                }
            }
        },
    };
    if std::fs::read(&path).ok().as_deref() != Some(content.as_slice()) {
        crate::util::write_atomic(&path, &content)?;
    }
    Ok(())
}

/// The provenance already written, when it is this statement signed by this
/// key (named by id or ARN; an alias is resolved only by signing again).
fn signed_again(path: &std::path::Path, line: &[u8], key: &str) -> Option<Vec<u8>> {
    let text = std::fs::read(path).ok()?;
    let envelope = crate::pack::provenance::envelope_of(std::str::from_utf8(&text).ok()?)?;
    let statement = line.strip_suffix(b"\n").unwrap_or(line);
    let same_key = envelope
        .signatures
        .iter()
        .any(|s| s.keyid == key || s.keyid.ends_with(&format!(":key/{key}")));
    (envelope.statement()? == statement && same_key).then_some(text)
}

/// `artifact verify <zip>`: the zip's SHA-256 against the provenance in its
/// output folder (the zip's folder, or the one above for a layer). With a
/// key (`--key`, or `[provenance] kms_key` of the project file when there is
/// one) the provenance must be signed by that key.
pub(crate) fn verify(ctx: &Context, env: &Env, args: crate::cli::VerifyArgs) -> anyhow::Result<()> {
    use crate::pack::provenance;
    let zip = config::absolute(&args.zip);
    let out = zip
        .ancestors()
        .skip(1)
        .take(2)
        .find(|d| d.join(provenance::PROVENANCE).is_file())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no {} beside {}\nhint: artifact pack writes it beside the zips; verify a zip in the output folder",
                provenance::PROVENANCE,
                zip.display()
            )
        })?;
    let key = match &args.key {
        Some(k) => Some(k.clone()),
        None => Settings::load_optional(ctx.explicit_config.as_deref(), env)?
            .and_then(|s| s.provenance_kms_key),
    };
    let text = provenance::read(out).map_err(|e| {
        anyhow::anyhow!(
            "{e}\nhint: the provenance must be the UTF-8 file artifact pack wrote; pack again"
        )
    })?;
    let doc = provenance::parse(&text, key.as_deref()).map_err(|e| {
        anyhow::anyhow!("{e}\nhint: rebuild with artifact pack; nothing may change the provenance after the build")
    })?;
    let signed_by = match &doc.envelope {
        Some(envelope) => super::with_aws(&ctx.aws, async |c| {
            Ok(crate::pack::sign::verify(c, envelope, key.as_deref()).await?)
        })?,
        None => Vec::new(),
    };
    match provenance::verify(&zip, out, &doc) {
        Ok(sha) => {
            let mut lines = vec![format!(
                "{}: matches its provenance (sha256 {sha})",
                zip.display()
            )];
            lines.extend(signed_by.iter().map(|k| format!("  signed by KMS key {k}")));
            if key.is_none() && !signed_by.is_empty() {
                lines.push("  (the key is not pinned: pass --key or set [provenance] kms_key to require it)".into());
            }
            ctx.lines(lines);
            ctx.document(&serde_json::json!({
                "zip": zip, "sha256": sha, "verified": true, "signed_by": signed_by,
                "key_pinned": key.is_some(),
            }))
        }
        Err(why) => anyhow::bail!(
            "{why}\nhint: rebuild it with artifact pack; zips must not change after the build"
        ),
    }
}

/// The shared cache, when one is set and this run may use it. A URL that is
/// not one is an error; a cache that cannot be reached is a warning (it is
/// only a cache).
fn remote_cache(
    ctx: &Context,
    settings: &Settings,
    args: &PackArgs,
) -> anyhow::Result<Option<Arc<pack::RemoteCache>>> {
    let url = match &args.cache_url {
        Some(url) => crate::model::S3Url::parse(url)?,
        None => match &settings.pack.cache_url {
            Some(url) => url.clone(),
            None => return Ok(None),
        },
    };
    if args.no_cache || args.dry_run {
        return Ok(None);
    }
    match pack::RemoteCache::connect(&ctx.aws, &url) {
        Ok(r) => Ok(Some(Arc::new(r))),
        Err(e) => {
            ctx.printer.warn(format!(
                "not using the shared cache {url}: {e:#}; packing with the local cache only"
            ));
            Ok(None)
        }
    }
}

/// With `--dry-run`: the plan table; otherwise each zip and the summary.
pub(crate) fn render(report: &PackReport, took: Duration) -> Vec<String> {
    let r = &report.run;
    let mut lines = Vec::new();
    match (&report.plan, r.dry_run) {
        (Some(plan), true) => lines.extend(render_plan(plan)),
        _ => {
            let layers = report
                .manifest
                .layers
                .iter()
                .map(|(n, m)| (format!("layer:{n}"), m));
            let functions = report
                .manifest
                .functions
                .iter()
                .map(|(n, m)| (n.clone(), m));
            for (name, m) in functions.chain(layers) {
                let state = if r.written.contains(&name) {
                    "written"
                } else {
                    "unchanged"
                };
                lines.push(format!(
                    "  {name:<32} {state:<11} {:>9} zip  {:>9} unzipped  {:>5} files  {}",
                    human_bytes(m.zip_size),
                    human_bytes(m.unzipped_size),
                    m.file_count,
                    m.code_sha256
                ));
                if let Some(s) = &m.slimmed {
                    lines.push(format!(
                        "  {:<32} slim left out {} files, {} unzipped",
                        "",
                        s.files,
                        human_bytes(s.bytes)
                    ));
                }
            }
            for name in &r.removed {
                lines.push(format!(
                    "  {name:<32} removed (no longer in the project file)"
                ));
            }
        }
    }
    for i in &r.installs {
        lines.push(format!(
            "dependencies {} for {} by {}: {} wheels, {} in {:.2}s",
            i.requirements,
            i.target,
            i.installer,
            i.wheels.len(),
            if i.cached { "cached" } else { "installed" },
            i.seconds
        ));
    }
    if r.pruned > 0 {
        lines.push(format!(
            "pruned {} cached file(s) this pack did not use ({})",
            r.pruned,
            human_bytes(r.pruned_bytes)
        ));
    }
    lines.push(format!(
        "{} {} of {} zips in {:.2}s ({} files, {} read; {} compressed, {} from cache) -> {}",
        if r.dry_run { "would write" } else { "wrote" },
        r.written.len(),
        report.manifest.functions.len() + report.manifest.layers.len(),
        took.as_secs_f64(),
        r.files,
        r.files_read,
        r.compressed,
        r.from_cache,
        r.out.display()
    ));
    if r.remote_requests > 0 || r.remote_published > 0 {
        lines.push(format!(
            "shared cache: {} contents fetched in {} requests, {} added",
            r.from_remote, r.remote_requests, r.remote_published
        ));
    }
    let b = &r.bytecode;
    if b.compiled > 0 || b.from_cache > 0 || b.from_remote > 0 {
        let tests = match b.left_in_tests {
            0 => String::new(),
            n => format!(
                "; {n} sources in test folders left without (bytecode_tests = true compiles them)"
            ),
        };
        lines.push(format!(
            "bytecode: {} .pyc compiled, {} from cache, {} from the shared cache{tests}",
            b.compiled, b.from_cache, b.from_remote
        ));
    }
    lines
}

/// One line per zip (write or keep, and why), removals, the install.
pub(crate) fn render_plan(plan: &PackPlan) -> Vec<String> {
    let mut lines = vec![format!(
        "  {:<32} {:<6} {:<22} {:>6} {:>10}",
        "function", "zip", "why", "files", "unzipped"
    )];
    for z in &plan.zips {
        let action = match z.action {
            ZipAction::Write => "write",
            ZipAction::Keep => "keep",
        };
        let why = serde_json::to_value(z.reason)
            .ok()
            .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
            .unwrap_or_default();
        let name = if z.layer {
            format!("layer {}", z.function)
        } else {
            z.function.clone()
        };
        lines.push(format!(
            "  {:<32} {action:<6} {why:<22} {:>6} {:>10}",
            name,
            z.file_count,
            human_bytes(z.unzipped_size)
        ));
    }
    for r in &plan.removed {
        lines.push(format!("  {:<32} remove {}", r.function, r.zip));
    }
    for i in &plan.installs {
        lines.push(format!(
            "  dependencies from {} for {} ({}): {}",
            i.requirements,
            i.target,
            i.used_by.join(", "),
            if i.runs {
                "the installer would run (not run in a dry run)"
            } else {
                "installed already (cached)"
            }
        ));
    }
    lines.push(format!(
        "  {} distinct file contents to compress or take from the cache",
        plan.contents_to_pack
    ));
    lines
}
