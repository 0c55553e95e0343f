//! One module per subcommand: each resolves its options from the command line
//! and the project file, runs the command's observe → plan → apply, and
//! renders the plan and the report for people (`render_*` functions return
//! lines, so what people read is snapshot-tested). `--json` prints the report
//! (with its plan) as one document on stdout.

mod config_js;
mod context;
mod deploy_frontend;
mod deploy_infra;
mod history;
mod pack;
mod policy;
mod rollback_one;
mod sync;
mod targets;
mod validate;

pub use context::AlreadyReported;
pub(crate) use context::{
    bounded, clock_and_nonce, commit, minutes, runtime, with_aws, within, Context,
};
pub use rollback_one::RollbackDocument;

use crate::aws::{self, AwsArgs};
use crate::cli::{Cli, Command};
use crate::config::{self, Env};
use crate::output::{Hint, Printer};

/// Runs one parsed command line with the given environment overrides.
pub fn run(cli: Cli, env: &Env) -> anyhow::Result<()> {
    let with_flag;
    let env = match &cli.global.environment {
        Some(e) => {
            with_flag = Env {
                environment: Some(e.clone()),
                ..env.clone()
            };
            &with_flag
        }
        None => env,
    };
    let ctx = Context {
        printer: Printer {
            json: cli.global.json,
            quiet: cli.global.quiet,
        },
        config_path: cli
            .global
            .config
            .clone()
            .unwrap_or_else(|| config::DEFAULT_CONFIG.into()),
        explicit_config: cli.global.config.clone(),
        metrics: cli.global.metrics.clone(),
        aws: AwsArgs {
            region: cli.global.region.clone(),
            profile: cli.global.profile.clone(),
            endpoint_url: cli.global.endpoint_url.clone(),
            env_endpoint_url: env.aws_endpoint_url.clone(),
            bad_credential_vars: env.bad_credential_vars.clone(),
            max_attempts: env
                .aws_max_attempts
                .as_deref()
                .map(aws::parse_max_attempts)
                .transpose()?,
            operation_timeout: None,
        },
    };
    let filled;
    let env = match needs_caller_account(&cli.command, &ctx, env) {
        true => match with_caller_account(&ctx, env) {
            Ok(e) => {
                filled = e;
                &filled
            }
            // The name's own error follows, with its hint.
            Err(e) => {
                ctx.printer.warn(format!(
                    "{{account}} is used in artifact.toml, but STS did not tell it: {e:#}"
                ));
                env
            }
        },
        false => env,
    };
    match cli.command {
        Command::Pack(args) => pack::run(&ctx, env, args),
        Command::Sync(args) => sync::run(&ctx, env, args),
        Command::DeployInfra(args) => match targets::selection(&args.targets) {
            s if s.any() => targets::deploy_infra(&ctx, env, &args, s),
            _ => deploy_infra::run(&ctx, env, args),
        },
        Command::DeployFrontend(args) => match targets::selection(&args.targets) {
            s if s.any() => targets::deploy_frontend(&ctx, env, &args, s),
            _ => deploy_frontend::run(&ctx, env, args),
        },
        Command::ConfigJs(args) => config_js::run(&ctx, env, args),
        Command::Validate(args) => validate::run(&ctx, env, args),
        Command::History(args) => history::history(&ctx, env, args),
        Command::Rollback(args) => history::rollback(&ctx, env, args),
        Command::Verify(args) => pack::verify(&ctx, env, args),
        Command::Policy(args) => policy::run(&ctx, env, args),
    }
}

/// Whether the command talks to AWS, its names use `{account}`, and nothing
/// set tells the account (`AWS_ACCOUNT_ID`, `CODEBUILD_BUILD_ARN`): then
/// STS tells it, once.
fn needs_caller_account(command: &Command, ctx: &Context, env: &config::Env) -> bool {
    let talks_to_aws = match command {
        Command::DeployInfra(_)
        | Command::DeployFrontend(_)
        | Command::ConfigJs(_)
        | Command::History(_)
        | Command::Rollback(_) => true,
        // pack reaches AWS only for its shared cache, but its names are the deploy's.
        Command::Pack(a) => !a.dry_run,
        Command::Validate(a) => !a.offline,
        _ => false,
    };
    talks_to_aws
        && env.account_id.is_none()
        && env.build_arn.is_none()
        && std::fs::read_to_string(&ctx.config_path).is_ok_and(|t| t.contains("{account}"))
}

/// `env` with the caller's account as `AWS_ACCOUNT_ID` would give it.
fn with_caller_account(ctx: &Context, env: &config::Env) -> anyhow::Result<config::Env> {
    let account = context::with_aws(&ctx.aws, async |c| Ok(c.caller_account().await?))?;
    tracing::debug!("{{account}} is {account} (GetCallerIdentity)");
    Ok(config::Env {
        account_id: Some(account),
        ..env.clone()
    })
}

/// The error types that carry a hint, each seen through [`Hint`].
type AsHint = for<'a> fn(&'a (dyn std::error::Error + 'static)) -> Option<&'a dyn Hint>;

fn as_hint<'a, T: Hint + std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a dyn Hint> {
    e.downcast_ref::<T>().map(|t| t as &dyn Hint)
}

const HINTED: &[AsHint] = &[
    as_hint::<config::ConfigError>,
    as_hint::<crate::pack::PackError>,
    as_hint::<crate::model::S3UrlError>,
    as_hint::<crate::sync::SyncError>,
    as_hint::<aws::s3::S3Error>,
    as_hint::<aws::AwsError>,
    as_hint::<aws::AwsFailure>,
    as_hint::<crate::cfn::InfraError>,
    as_hint::<crate::lambda::LambdaError>,
    as_hint::<crate::frontend::FrontendError>,
    as_hint::<crate::rollback::RollbackError>,
    as_hint::<crate::pack::sign::SignError>,
    as_hint::<crate::scan::SecretsFound>,
];

/// A message written as `what\nhint: how` in two: the error, and its hint.
pub fn split_hint(message: &str) -> (String, Option<String>) {
    match message.split_once("\nhint: ") {
        Some((what, how)) => (what.to_string(), Some(how.to_string())),
        None => (message.to_string(), None),
    }
}

/// The hint of the first error in the chain that has one.
pub fn hint_for(err: &anyhow::Error) -> Option<String> {
    err.chain()
        .find_map(|e| HINTED.iter().find_map(|f| f(e)).and_then(Hint::hint))
}

/// The secrets an error is about, if it is a scan's.
fn secrets_of<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a crate::scan::SecretsFound> {
    use crate::sync::SyncError;
    fn of_sync(s: &SyncError) -> Option<&crate::scan::SecretsFound> {
        match s {
            SyncError::Secrets(f) => Some(f),
            _ => None,
        }
    }
    if let Some(f) = e.downcast_ref::<crate::scan::SecretsFound>() {
        return Some(f);
    }
    if let Some(crate::pack::PackError::Secrets(f)) = e.downcast_ref() {
        return Some(f);
    }
    if let Some(s) = e.downcast_ref::<SyncError>() {
        return of_sync(s);
    }
    if let Some(crate::cfn::InfraError::Sync(s)) = e.downcast_ref() {
        return of_sync(s);
    }
    if let Some(crate::frontend::FrontendError::Sync(s)) = e.downcast_ref() {
        return of_sync(s);
    }
    None
}

/// What a `--json` failure document adds to its error and hint: the
/// secrets found, one object each (file, line, rule, the value masked, and
/// the `[[scan.allow]]` entry that would let a reviewed file through).
pub fn details_for(err: &anyhow::Error) -> Option<serde_json::Value> {
    let found = err.chain().find_map(secrets_of)?;
    let findings: Vec<serde_json::Value> = found
        .findings
        .iter()
        .map(|f| {
            serde_json::json!({
                "file": f.path,
                "line": f.hit.line,
                "rule": f.hit.kind.rule(),
                "what": f.hit.kind.describe(),
                "masked": f.hit.masked,
                "sha256": f.sha256,
                "allow": {"path": f.path, "sha256": f.sha256},
            })
        })
        .collect();
    Some(serde_json::json!({ "findings": findings, "stale_allow_entries": found.stale }))
}

#[cfg(test)]
mod snapshots;

#[cfg(test)]
mod tests {
    #[test]
    fn a_hint_written_into_a_message_is_taken_out_of_it() {
        assert_eq!(
            super::split_hint("no provenance beside x.zip\nhint: run artifact pack"),
            (
                "no provenance beside x.zip".to_string(),
                Some("run artifact pack".to_string())
            )
        );
        assert_eq!(super::split_hint("plain"), ("plain".to_string(), None));
    }
}
