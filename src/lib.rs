//! artifact: builds and deploys the artifacts of an AWS serverless application
//! (Lambda zips, CloudFormation templates, a static frontend) from its CI/CD
//! pipeline. `main.rs` only parses arguments and maps errors to exit codes;
//! everything else lives here so tests and benchmarks call it directly.

pub mod cli;
pub mod config;
pub mod names;
pub mod output;
pub mod pack;

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
    match cli.command {
        Command::Pack(args) => {
            let settings = Settings::load(&cli.global.config, env)?;
            let started = Instant::now();
            let opts = pack::PackOptions {
                out: args.out.map(|p| config::absolute(&p)),
                cache_dir: args.cache_dir.map(|p| config::absolute(&p)),
                jobs: args.jobs,
                no_cache: args.no_cache,
                dry_run: args.dry_run,
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

/// The hint for the first error in the chain that has one.
pub fn hint_for(err: &anyhow::Error) -> Option<String> {
    err.chain().find_map(|e| {
        if let Some(e) = e.downcast_ref::<config::ConfigError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<pack::PackError>() {
            e.hint()
        } else {
            None
        }
    })
}
