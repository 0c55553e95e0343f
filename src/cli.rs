//! The command line: what the user typed, with no system calls.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Builds and deploys the artifacts of an AWS serverless application.
#[derive(Debug, Parser)]
#[command(name = "artifact", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The project file.
    #[arg(long, short = 'c', global = true, default_value = crate::config::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Print one JSON document on stdout instead of the human summary.
    #[arg(long, global = true)]
    pub json: bool,
    /// More diagnostics on stderr (-v info, -vv debug); RUST_LOG also works.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print nothing but errors (and the --json document).
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build one reproducible zip per Lambda function, plus manifest.json.
    Pack(PackArgs),
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// Output folder (default: pack.out from the project file).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Cache folder for compressed files and the stat index (default: pack.cache_dir).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Neither read nor write the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Show which zips would be written, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}
