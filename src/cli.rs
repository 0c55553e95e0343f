//! The command line: what the user typed, with no system calls.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Builds and deploys the artifacts of an AWS serverless application.
#[derive(Debug, Parser)]
#[command(name = "artifact", version = crate::version::LONG, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The project file [default: artifact.toml]
    #[arg(long, short = 'c', global = true)]
    pub config: Option<PathBuf>,
    /// Print one JSON document on stdout instead of the human summary.
    #[arg(long, global = true)]
    pub json: bool,
    /// More diagnostics on stderr (-v info, -vv debug); RUST_LOG also works.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print nothing but errors (and the --json document).
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// AWS region (default: AWS_REGION or the profile's).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// AWS profile (default: AWS_PROFILE).
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Send AWS requests to this endpoint (a local server); S3 is then addressed path-style.
    #[arg(long, global = true)]
    pub endpoint_url: Option<String>,
    /// Publish the command's figures to this CloudWatch namespace (default: [metrics] namespace).
    #[arg(long, global = true, value_name = "NAMESPACE")]
    pub metrics: Option<String>,
    /// The environment to deploy (over ENVIRONMENT and [project] environment);
    /// its [environments.NAME] table applies.
    #[arg(long, global = true, value_name = "NAME")]
    pub environment: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build one reproducible zip per Lambda function, plus manifest.json.
    #[command(
        after_help = "Example:\n  artifact pack --cache-url s3://my-artifacts/pack-cache --json > build/pack-report.json\n\nMore: docs/commands.md"
    )]
    Pack(PackArgs),
    /// Upload a folder to S3, deciding by content, with header rules from [sync].
    #[command(
        after_help = "Example:\n  artifact sync dist s3://my-site --delete --max-delete 50\n\nMore: docs/commands.md"
    )]
    Sync(SyncArgs),
    /// Upload templates and zips, deploy the stack by change set, update changed Lambda code.
    #[command(
        after_help = "Example:\n  artifact deploy-infra --timeout 60m   (--dry-run prints the plan)\n\nMore: docs/commands.md"
    )]
    DeployInfra(DeployInfraArgs),
    /// Write aws-config.js from the stack's outputs, sync the site, invalidate what changed.
    #[command(
        after_help = "Example:\n  artifact deploy-frontend --dist build/frontend --wait\n\nMore: docs/commands.md"
    )]
    DeployFrontend(DeployFrontendArgs),
    /// Print (or write) the site's configuration files ([[frontend.config]], else
    /// aws-config.js) from the stack's outputs. Also `config-js`.
    #[command(
        name = "config",
        alias = "config-js",
        after_help = "Example:\n  artifact config --out-dir build/frontend\n\nMore: docs/commands.md"
    )]
    ConfigJs(ConfigJsArgs),
    /// Check templates, artifact.toml and function names; report every problem.
    #[command(
        after_help = "Example:\n  artifact validate   (--offline skips ValidateTemplate)\n\nMore: docs/commands.md"
    )]
    Validate(ValidateArgs),
    /// List the recorded deployments of the stack and its code, newest first.
    #[command(
        after_help = "Example:\n  artifact history --limit 5   (--frontend: the site's releases)\n\nMore: docs/commands.md"
    )]
    History(HistoryArgs),
    /// Go back to a recorded deployment of the stack and its code, without rebuilding.
    #[command(
        after_help = "Example:\n  artifact rollback --infra --steps 1 --dry-run\n\nMore: docs/commands.md"
    )]
    Rollback(RollbackArgs),
    /// Check a zip against the provenance pack wrote beside it.
    #[command(
        after_help = "Example:\n  artifact verify build/lambda/api-handler.zip\n\nMore: docs/commands.md"
    )]
    Verify(VerifyArgs),
    /// Print the least-privilege IAM policy each command needs, or check a request log against it.
    #[command(
        after_help = "Example:\n  artifact policy --command deploy-infra --format cfn\n\nMore: docs/commands.md"
    )]
    Policy(PolicyArgs),
}

#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// The command whose policy to print.
    #[arg(long, value_enum, default_value = "all")]
    pub command: PolicyTarget,
    /// `json`: a policy document; `cfn`: the PolicyDocument for a template, ARNs as Fn::Sub.
    #[arg(long, value_enum, default_value_t = PolicyFormat::Json)]
    pub format: PolicyFormat,
    /// The account id in ARNs (json format) [default: any account, `*`].
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
    /// pack's shared cache, s3://bucket/prefix [default: pack.cache_url].
    #[arg(long, value_name = "URL")]
    pub cache_url: Option<String>,
    /// Where sync uploads, s3://bucket/prefix (sync's policy needs it).
    #[arg(long, value_name = "URL")]
    pub sync_to: Option<String>,
    /// Check a request log (written with ARTIFACT_REQUEST_LOG=FILE) against the command's policy.
    #[arg(long, value_name = "FILE")]
    pub check: Option<std::path::PathBuf>,
    /// The policy of these [[targets]] entries' roles: each one's account,
    /// region and bucket.
    #[command(flatten)]
    pub targets: TargetArgs,
}

/// `--command`: one command, or all of them (None).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyTarget(pub Option<crate::policy::PolicyCommand>);

impl PolicyTarget {
    pub const ALL: PolicyTarget = PolicyTarget(None);

    /// The one command meant, or None for all.
    pub fn command(self) -> Option<crate::policy::PolicyCommand> {
        self.0
    }
}

impl clap::ValueEnum for PolicyTarget {
    fn value_variants<'a>() -> &'a [Self] {
        use crate::policy::PolicyCommand as C;
        &[
            PolicyTarget(Some(C::Pack)),
            PolicyTarget(Some(C::Validate)),
            PolicyTarget(Some(C::DeployInfra)),
            PolicyTarget(Some(C::DeployFrontend)),
            PolicyTarget(Some(C::Sync)),
            PolicyTarget(Some(C::Rollback)),
            PolicyTarget(Some(C::History)),
            PolicyTarget(Some(C::Verify)),
            PolicyTarget(Some(C::ConfigJs)),
            PolicyTarget::ALL,
        ]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(
            self.0.map_or("all", crate::policy::PolicyCommand::name),
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyFormat {
    Json,
    Cfn,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The zip to check.
    pub zip: std::path::PathBuf,
    /// The KMS key (id, ARN or alias) the provenance must be signed by; without
    /// it, `[provenance] kms_key` of the project file, when there is one.
    #[arg(long, value_name = "KMS_KEY")]
    pub key: Option<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Show at most this many deployments.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// The site's releases instead of the stack's deployments.
    #[arg(long)]
    pub frontend: bool,
    /// The history of these [[targets]] entries (each in its account, region and bucket).
    #[command(flatten)]
    pub targets: TargetArgs,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The deployment to go back to (an id from artifact history).
    #[arg(long, value_name = "ID", conflicts_with = "steps")]
    pub to: Option<String>,
    /// Go back this many deployments from the latest [default: 1].
    #[arg(long, value_name = "N", value_parser = parse_steps)]
    pub steps: Option<usize>,
    /// Only the stack and its code (default: the stack, then the site).
    #[arg(long)]
    pub infra: bool,
    /// Only the site (default: the stack, then the site).
    #[arg(long)]
    pub frontend: bool,
    /// Show what would happen; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Give up waiting after this long, e.g. 45m [default: infra.timeout_minutes]
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
    #[command(flatten)]
    pub targets: TargetArgs,
}

fn parse_steps(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .ok()
        .filter(|n| (1..=1000).contains(n))
        .ok_or_else(|| format!("{s:?}: give 1 to 1000 deployments back"))
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Skip the service's ValidateTemplate (no AWS calls).
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Args)]
pub struct DeployFrontendArgs {
    /// The built site [default: frontend.dist, build/frontend]
    #[arg(long)]
    pub dist: Option<PathBuf>,
    /// Show what would be uploaded, deleted and invalidated; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Wait until the CloudFront invalidation is Completed.
    #[arg(long)]
    pub wait: bool,
    /// Which paths to invalidate.
    #[arg(long, value_enum, default_value = "changed")]
    pub invalidate: crate::frontend::InvalidateMode,
    /// Keep the assets of this many earlier deployments for open tabs, 0 to 100 [default: frontend.keep_previous, 1]
    #[arg(long, value_name = "N", value_parser = parse_keep_previous)]
    pub keep_previous: Option<usize>,
    /// Give up waiting after this long, e.g. 15m [default: frontend.timeout_minutes]
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// While another run deploys the same site, wait this long for it, e.g. 20m, then fail [default: 5m]
    #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "5m")]
    pub wait_for_lock: std::time::Duration,
    #[command(flatten)]
    pub targets: TargetArgs,
}

#[derive(Debug, Args)]
pub struct ConfigJsArgs {
    /// Write the (one) configuration file here instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE", conflicts_with = "out_dir")]
    pub output: Option<PathBuf>,
    /// Write every configuration file under this folder, at its path in the site.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Show what would be written (on stdout), write no file.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct DeployInfraArgs {
    /// Show what would happen; upload nothing, create no change set.
    #[arg(long)]
    pub dry_run: bool,
    /// Create and print the change set, then stop (it waits for review).
    #[arg(long)]
    pub no_execute: bool,
    /// Give up waiting after this long, e.g. 45m, 2h, 900s [default: infra.timeout_minutes]
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// Delete a stack left in ROLLBACK_COMPLETE by a failed first create, then create it again.
    #[arg(long)]
    pub replace_failed_stack: bool,
    #[command(flatten)]
    pub targets: TargetArgs,
}

/// Which `[[targets]]` a command goes to (none of these: the credentials' own
/// account and region, as without targets).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TargetArgs {
    /// This target of artifact.toml's [[targets]] (repeat for more).
    #[arg(long = "target", value_name = "NAME")]
    pub target: Vec<String>,
    /// The targets of this wave only.
    #[arg(long, value_name = "N")]
    pub wave: Option<u32>,
    /// Every target, wave by wave.
    #[arg(long)]
    pub all_targets: bool,
}

fn parse_keep_previous(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .ok()
        .filter(|n| *n <= crate::config::MAX_KEEP_PREVIOUS)
        .ok_or_else(|| {
            format!(
                "{s:?}: keep 0 to {} earlier releases",
                crate::config::MAX_KEEP_PREVIOUS
            )
        })
}

fn parse_jobs(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .ok()
        .filter(|n| (1..=256).contains(n))
        .ok_or_else(|| format!("{s:?}: give 1 to 256 worker threads"))
}

/// `90s`, `45m`, `2h`, or plain minutes, at most 12 hours.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "m"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 45m or 2h"))?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        _ => return Err(format!("{s:?} is not a duration like 90s, 45m or 2h")),
    }
    .filter(|secs| *secs <= crate::config::MAX_TIMEOUT_MINUTES * 60)
    .ok_or_else(|| format!("{s:?} is longer than 12 hours; give a timeout like 45m or 2h"))?;
    if secs == 0 {
        return Err("the timeout must be more than zero".into());
    }
    Ok(std::time::Duration::from_secs(secs))
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The local folder.
    pub dir: PathBuf,
    /// The destination, s3://bucket or s3://bucket/prefix.
    pub destination: String,
    /// Delete objects under the prefix that are not in the folder.
    #[arg(long)]
    pub delete: bool,
    /// Refuse the whole delete step if it would delete more than N objects (with --delete).
    #[arg(long, value_name = "N", requires = "delete")]
    pub max_delete: Option<usize>,
    /// Show what would change, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// Output folder (default: pack.out from the project file).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Cache folder for compressed files and the stat index (default: pack.cache_dir).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Worker threads, 1 to 256 (default: one per core).
    #[arg(long, short = 'j', value_parser = parse_jobs)]
    pub jobs: Option<usize>,
    /// Neither read nor write the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Show which zips would be written, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// After packing, delete cached files this pack did not use (keeps a persisted cache small).
    #[arg(long)]
    pub prune_cache: bool,
    /// A cache builders share, s3://bucket/prefix (default: pack.cache_url): contents
    /// missing locally are fetched from it, contents compressed here are added to it.
    #[arg(long)]
    pub cache_url: Option<String>,
    /// Import every function's handler from its zip with the runtime's
    /// interpreter, and fail when one cannot be checked (default: checked
    /// when the interpreter is found; `[pack] check`).
    #[arg(long, conflicts_with = "no_check")]
    pub check: bool,
    /// Skip the import check.
    #[arg(long)]
    pub no_check: bool,
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_in_units_and_their_limits() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(2700)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        for bad in [
            "13h",
            "0",
            "5d",
            "h",
            "99999999999999999h",
            "5000000000000000h",
            "9000h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
