//! artifact: builds and deploys the artifacts of an AWS serverless application
//! (Lambda zips, CloudFormation templates, a static frontend) from its CI/CD
//! pipeline. `main.rs` only parses arguments and maps errors to exit codes;
//! everything else lives here so tests and benchmarks call it directly.

pub mod aws;
pub mod cfn;
pub mod cli;
pub mod config;
pub mod frontend;
pub mod lambda;
pub mod names;
pub mod output;
pub mod pack;
pub mod poll;
pub mod sync;
pub mod util;
pub mod validate;

use std::time::Instant;

use anyhow::Context as _;

use cli::{Cli, Command};
use config::{Env, Settings};
use output::{human_bytes, Printer};

/// Runs one parsed command line with the given environment overrides.
pub fn run(cli: Cli, env: &Env) -> anyhow::Result<()> {
    let printer = Printer {
        json: cli.global.json,
        quiet: cli.global.quiet,
    };
    let config_path = cli
        .global
        .config
        .clone()
        .unwrap_or_else(|| config::DEFAULT_CONFIG.into());
    let aws_args = aws::AwsArgs {
        region: cli.global.region.clone(),
        profile: cli.global.profile.clone(),
        endpoint_url: cli.global.endpoint_url.clone(),
    };
    match cli.command {
        Command::Sync(args) => {
            let settings = config::SyncSettings::load(cli.global.config.as_deref(), env)?;
            let dest = sync::S3Url::parse(&args.destination)?;
            let req = sync::SyncRequest {
                dir: args.dir,
                dest,
                settings,
                delete: args.delete,
                max_delete: args.max_delete,
                dry_run: args.dry_run,
                progress: printer.wants_progress(),
                keep: Default::default(),
            };
            let started = Instant::now();
            let report = with_aws(&aws_args, async |c| Ok(sync::run(c, &req).await?))?;
            print_sync(&printer, &report, started.elapsed());
            printer
                .document(&report)
                .context("failed to write the JSON report")?;
        }
        Command::DeployInfra(args) => {
            let settings = Settings::load(&config_path, env)?;
            let (now, nonce) = clock_and_nonce();
            let opts = cfn::DeployOptions {
                dry_run: args.dry_run,
                no_execute: args.no_execute,
                timeout: args.timeout.unwrap_or(std::time::Duration::from_secs(
                    settings.infra.timeout_minutes * 60,
                )),
                replace_failed_stack: args.replace_failed_stack,
                commit: env
                    .source_version
                    .clone()
                    .or_else(|| git_head(&settings.root)),
                nonce,
                now_unix: now,
            };
            let say = |line: String| printer.line(line);
            let report = with_aws(&aws_args, async |c| {
                Ok(cfn::deploy(c, &settings, &opts, &say).await?)
            })?;
            print_infra(&printer, &report);
            printer
                .document(&report)
                .context("failed to write the JSON report")?;
        }
        Command::DeployFrontend(args) => {
            let settings = Settings::load(&config_path, env)?;
            let (now, nonce) = clock_and_nonce();
            let commit = env
                .source_version
                .clone()
                .or_else(|| git_head(&settings.root));
            let deployment_id = names::change_set_name(commit.as_deref(), now, nonce).replacen(
                "artifact-",
                "deploy-",
                1,
            );
            let opts = frontend::FrontendOptions {
                dist: args.dist.map(|p| config::absolute(&p)),
                dry_run: args.dry_run,
                wait: args.wait,
                invalidate: args.invalidate,
                keep_previous: args.keep_previous,
                timeout: args.timeout.unwrap_or(std::time::Duration::from_secs(
                    settings.frontend.timeout_minutes * 60,
                )),
                deployment_id,
                progress: printer.wants_progress(),
            };
            let say = |line: String| printer.line(line);
            let report = with_aws(&aws_args, async |c| {
                Ok(frontend::deploy(c, &settings, &opts, &say).await?)
            })?;
            print_frontend(&printer, &report);
            printer
                .document(&report)
                .context("failed to write the JSON report")?;
        }
        Command::ConfigJs(args) => {
            let settings = Settings::load(&config_path, env)?;
            let values = with_aws(&aws_args, async |c| {
                Ok(frontend::read_outputs(c, &settings).await?)
            })?;
            let text = frontend::config_js::render(&values.aws_config());
            match args.output {
                Some(path) => {
                    util::write_atomic(&path, text.as_bytes())
                        .with_context(|| format!("failed to write {}", path.display()))?;
                    printer.line(format!("wrote {}", path.display()));
                }
                None => print!("{text}"),
            }
        }
        Command::Validate(args) => {
            let settings = Settings::load(&config_path, env)?;
            let report = if args.offline {
                runtime()?.block_on(validate::run(None, &settings))
            } else {
                with_aws(&aws_args, async |c| {
                    Ok(validate::run(Some(c), &settings).await)
                })?
            };
            for t in &report.templates {
                printer.line(format!(
                    "  {:<40} {:>8} bytes  ValidateTemplate: {}",
                    t.file, t.bytes, t.validate_template
                ));
            }
            for f in &report.functions {
                printer.line(format!(
                    "  function {:<28} {}",
                    f.function,
                    f.found.as_deref().unwrap_or("NOT FOUND")
                ));
            }
            printer
                .document(&report)
                .context("failed to write the JSON report")?;
            if !report.ok {
                for p in &report.problems {
                    eprintln!("problem: {p}");
                }
                return Err(AlreadyReported(format!(
                    "validation found {} problem(s)",
                    report.problems.len()
                ))
                .into());
            }
            printer.line(format!(
                "valid: {} template(s), {} function(s)",
                report.templates.len(),
                report.functions.len()
            ));
        }
        Command::Pack(args) => {
            let settings = Settings::load(&config_path, env)?;
            let started = Instant::now();
            let opts = pack::PackOptions {
                out: args.out.map(|p| config::absolute(&p)),
                cache_dir: args.cache_dir.map(|p| config::absolute(&p)),
                jobs: args.jobs,
                no_cache: args.no_cache,
                dry_run: args.dry_run,
                prune_cache: args.prune_cache,
            };
            let report = pack::run(&settings, &opts)?;
            print_pack(&printer, &report, started.elapsed());
            printer
                .document(&report)
                .context("failed to write the JSON report")?;
        }
    }
    Ok(())
}

/// Seconds since the epoch, and a nonce that differs between concurrent runs.
fn clock_and_nonce() -> (u64, u32) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seed = format!("{}-{}", now.as_nanos(), std::process::id());
    let nonce = u32::from_le_bytes(
        blake3::hash(seed.as_bytes()).as_bytes()[..4]
            .try_into()
            .expect("4 bytes"),
    );
    (now.as_secs(), nonce)
}

fn print_frontend(printer: &Printer, r: &frontend::FrontendReport) {
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
    printer.line(format!(
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
    printer.line(format!("frontend: {}", r.url));
}

/// The commit checked out at `root`, if git knows one.
fn git_head(root: &std::path::Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(root)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn print_infra(printer: &Printer, r: &cfn::InfraReport) {
    for f in &r.functions {
        printer.line(format!("  {:<48} {}", f.deployed_name, f.action));
    }
    let updated = r
        .functions
        .iter()
        .filter(|f| f.action != lambda::CodeAction::Unchanged)
        .count();
    let outcome = match r.outcome {
        cfn::Outcome::Changed => "changed",
        cfn::Outcome::Unchanged => "nothing to do",
        cfn::Outcome::Review => "change set created for review (not executed)",
        cfn::Outcome::DryRun => "dry run",
        cfn::Outcome::Failed => "failed",
    };
    printer.line(format!(
        "stack {}: {outcome}; status {}; change set {}; templates {} uploaded / {} unchanged; zips {} uploaded / {} unchanged; functions {updated} {} / {} unchanged; {} requests in {:.1}s",
        r.stack,
        r.stack_status.as_deref().unwrap_or("none"),
        r.change_set.as_deref().unwrap_or("none"),
        r.templates.uploaded,
        r.templates.unchanged,
        r.zips.uploaded,
        r.zips.unchanged,
        if r.outcome == cfn::Outcome::DryRun { "to update" } else { "updated" },
        r.functions.len() - updated,
        r.requests.values().sum::<u64>(),
        r.seconds,
    ));
    if let Some(f) = &r.outputs_file {
        printer.line(format!("outputs: {}", f.display()));
    }
}

/// Loads the AWS configuration and runs `f` with the clients, on the runtime.
fn with_aws<T>(
    args: &aws::AwsArgs,
    f: impl AsyncFnOnce(&aws::Clients) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    runtime()?.block_on(async {
        let clients = aws::Clients::load(args).await?;
        f(&clients).await
    })
}

/// The async runtime for commands that talk to AWS.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}

fn print_sync(printer: &Printer, r: &sync::SyncReport, took: std::time::Duration) {
    for a in &r.actions {
        let verb = match a.kind {
            sync::ActionKind::Upload => "upload",
            sync::ActionKind::UpdateHeaders => "headers",
            sync::ActionKind::Delete => "delete",
        };
        printer.line(format!("  {verb:<8} {} ({})", a.key, a.reason));
    }
    let requests: u64 = r.requests.values().sum();
    printer.line(format!(
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
}

fn print_pack(printer: &Printer, report: &pack::PackReport, took: std::time::Duration) {
    let r = &report.run;
    for (name, m) in &report.manifest.functions {
        let state = if r.written.contains(name) {
            if r.dry_run {
                "would write"
            } else {
                "written"
            }
        } else {
            "unchanged"
        };
        if r.dry_run && state != "unchanged" {
            printer.line(format!("  {name:<32} {state}"));
        } else {
            printer.line(format!(
                "  {name:<32} {state:<11} {:>9} zip  {:>9} unzipped  {:>5} files  {}",
                human_bytes(m.zip_size),
                human_bytes(m.unzipped_size),
                m.file_count,
                m.code_sha256
            ));
        }
    }
    for name in &r.removed {
        printer.line(format!(
            "  {name:<32} removed (no longer in the project file)"
        ));
    }
    for w in &r.warnings {
        printer.warn(w);
    }
    if r.pruned > 0 {
        printer.line(format!(
            "pruned {} cached file(s) this pack did not use ({})",
            r.pruned,
            human_bytes(r.pruned_bytes)
        ));
    }
    printer.line(format!(
        "{} {} of {} zips in {:.2}s ({} files, {} read; {} compressed, {} from cache) -> {}",
        if r.dry_run { "would write" } else { "wrote" },
        r.written.len(),
        report.manifest.functions.len(),
        took.as_secs_f64(),
        r.files,
        r.files_read,
        r.compressed,
        r.from_cache,
        r.out.display()
    ));
}

/// A failure whose details the command already printed (with `--json`, in its
/// document): the edge only sets the exit code and says this line.
#[derive(Debug)]
pub struct AlreadyReported(pub String);

impl std::fmt::Display for AlreadyReported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AlreadyReported {}

/// The hint for the first error in the chain that has one.
pub fn hint_for(err: &anyhow::Error) -> Option<String> {
    err.chain().find_map(|e| {
        if let Some(e) = e.downcast_ref::<config::ConfigError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<pack::PackError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<sync::SyncError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<aws::AwsError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<cfn::InfraError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<lambda::LambdaError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<frontend::FrontendError>() {
            e.hint()
        } else {
            None
        }
    })
}
