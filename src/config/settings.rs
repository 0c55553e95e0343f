//! The resolved settings: what every command reads, with absolute paths,
//! checked names and the environment's overrides applied.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::raw::FileSpec;
use crate::model::{Arch, Bytecode, Runtime, S3Url};

/// The default name of the project file.
pub const DEFAULT_CONFIG: &str = "artifact.toml";

/// Patterns excluded from every folder that is packed, unless
/// `pack.default_excludes = false`.
pub const DEFAULT_EXCLUDES: &[&str] = &[
    "**/__pycache__",
    "**/*.pyc",
    "**/*.pyo",
    "**/.DS_Store",
    "**/.git",
    "**/.pytest_cache",
    "**/.mypy_cache",
];

/// Values from the process environment that override the project file.
/// Built once at the edge (`main`), passed in everywhere else.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `PROJECT_NAME`
    pub project_name: Option<String>,
    /// `ENVIRONMENT`
    pub environment: Option<String>,
    /// `DEPLOYMENT_BUCKET`
    pub deployment_bucket: Option<String>,
    /// `CLOUDFORMATION_ROLE_ARN`: the role CloudFormation deploys the stack with.
    pub cloudformation_role_arn: Option<String>,
    /// `CODEBUILD_RESOLVED_SOURCE_VERSION`: the commit being deployed.
    pub source_version: Option<String>,
    /// `AWS_MAX_ATTEMPTS`: attempts per AWS request, retries included.
    pub aws_max_attempts: Option<String>,
    /// `AWS_ENDPOINT_URL` as set, empty included (an empty one is a mistake to report).
    pub aws_endpoint_url: Option<String>,
    /// Which of `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
    /// `AWS_SESSION_TOKEN` hold characters no key has (spaces, line breaks),
    /// or are missing beside the other key: names only, never values.
    pub bad_credential_vars: Vec<&'static str>,
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION` (for ARNs made offline).
    pub aws_region: Option<String>,
    /// `CODEBUILD_BUILD_ARN`: the build, for provenance.
    pub build_arn: Option<String>,
    /// `AWS_ACCOUNT_ID`: `{account}` in names.
    pub account_id: Option<String>,
    /// `CODEBUILD_SOURCE_REPO_URL`: the repository built, for provenance.
    pub source_repo_url: Option<String>,
    /// Every variable, for `env:NAME` values in parameters and tags.
    pub vars: EnvVars,
}

/// The process environment's variables. Their values may be secrets: Debug
/// shows only how many there are.
#[derive(Clone, Default)]
pub struct EnvVars(pub BTreeMap<String, String>);

impl EnvVars {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl std::fmt::Debug for EnvVars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EnvVars({} variables)", self.0.len())
    }
}

impl Env {
    /// Reads the overrides from the process environment; empty values count as unset.
    pub fn from_process() -> Self {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Env {
            project_name: get("PROJECT_NAME"),
            environment: get("ENVIRONMENT"),
            deployment_bucket: get("DEPLOYMENT_BUCKET"),
            cloudformation_role_arn: get("CLOUDFORMATION_ROLE_ARN"),
            source_version: get("CODEBUILD_RESOLVED_SOURCE_VERSION"),
            aws_max_attempts: get("AWS_MAX_ATTEMPTS"),
            aws_endpoint_url: std::env::var("AWS_ENDPOINT_URL").ok(),
            bad_credential_vars: crate::aws::bad_credential_vars(|k| std::env::var_os(k)),
            aws_region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
            build_arn: get("CODEBUILD_BUILD_ARN"),
            account_id: get("AWS_ACCOUNT_ID"),
            vars: EnvVars(std::env::vars().collect()),
            source_repo_url: get("CODEBUILD_SOURCE_REPO_URL"),
        }
    }
}

// ---- the resolved settings -----------------------------------------------

/// The project file, resolved: absolute paths, checked names, overrides applied.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The project file itself.
    pub config_path: PathBuf,
    /// The folder holding the project file; relative paths start here.
    pub root: PathBuf,
    pub project: Project,
    pub pack: PackSettings,
    /// Functions in name order.
    pub functions: Vec<Function>,
    /// Layers in name order.
    pub layers: Vec<Layer>,
    /// `[metrics] namespace`: the CloudWatch namespace the commands publish to.
    pub metrics_namespace: Option<String>,
    /// `[history] keep`: deployments kept in the history (and their zips and templates).
    pub history_keep: usize,
    pub scan: ScanSettings,
    /// `[provenance] kms_key`: the KMS key (id, ARN or alias) that signs the provenance.
    pub provenance_kms_key: Option<String>,
    pub sync: SyncSettings,
    pub infra: InfraSettings,
    pub frontend: FrontendSettings,
    /// `[[targets]]`: accounts and regions a deploy fans out to (none: the
    /// credentials' own account and region).
    pub targets: Vec<super::targets::Target>,
    /// `[deploy]`: how the targets run.
    pub fanout: super::targets::Fanout,
    /// The build's environment variables, for `env:` values in the site's
    /// configuration (read when deploying, not when the file is read).
    pub vars: EnvVars,
}

/// `[frontend]`: the static site deploy.
/// `[scan]`: the secret scan before anything is packed or uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanSettings {
    pub enabled: bool,
    pub allow: Vec<ScanAllow>,
}

impl Default for ScanSettings {
    fn default() -> Self {
        ScanSettings {
            enabled: true,
            allow: Vec::new(),
        }
    }
}

/// A file whose findings were reviewed: it passes while its SHA-256 is this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanAllow {
    /// Relative to the project root, `/`-separated; a glob when it holds `*`, `?` or `[`.
    pub path: String,
    /// Lower-case hex: the entry holds for these contents only.
    pub sha256: Option<String>,
    /// The entry lets through findings of this rule only (`generic-secret`, …).
    pub rule: Option<String>,
}

impl ScanAllow {
    /// Whether the entry names the file at `path`.
    pub fn names(&self, path: &str) -> bool {
        if self.path.contains(['*', '?', '[']) {
            globset::Glob::new(&self.path)
                .map(|g| g.compile_matcher().is_match(path))
                .unwrap_or(false)
        } else {
            self.path == path
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendSettings {
    /// The built site (default `build/frontend`).
    pub dist: PathBuf,
    /// The stack whose outputs configure the site (default: infra's stack).
    pub stack_name: String,
    /// Deployments whose assets are kept besides the current one.
    pub keep_previous: usize,
    pub summary_file: PathBuf,
    pub timeout_minutes: u64,
    pub outputs: FrontendOutputs,
    /// `[[frontend.config]]`; empty: the default `aws-config.js`.
    pub config: Vec<SiteConfig>,
}

/// A configuration file written into the site before the sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteConfig {
    /// Its key in the site (`aws-config.json`).
    pub file: String,
    pub format: ConfigFormat,
    /// A committed JSON file whose values are replaced (absolute path).
    pub template: Option<PathBuf>,
    /// Dotted keys (`Auth.Cognito.userPoolId`) and where each value comes from.
    pub values: Vec<(String, ValueSource)>,
}

/// How a configuration file is written, from its extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigFormat {
    Json,
    /// `window.<global> = {...};`
    Js {
        global: String,
    },
    /// `KEY=value` lines.
    Env,
}

/// Where a configuration value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSource {
    /// `output:Name`: a stack output, of the root stack or any nested stack.
    Output(String),
    /// `param:Name`: a parameter passed to the stack.
    Param(String),
    /// `env:NAME`: a variable of the build's environment.
    Env(String),
    /// Anything else, with `{region}`, `{project}`, `{environment}` and `{stack}` expanded.
    Literal(String),
}

/// The stack output names deploy-frontend reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendOutputs {
    pub api_url: String,
    pub user_pool_id: String,
    pub user_pool_client_id: String,
    pub bucket: String,
    pub distribution_id: String,
    pub url: String,
}

/// `[infra]`: the CloudFormation deploy, with every placeholder expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfraSettings {
    /// The templates folder, uploaded to `s3://<bucket>/cfn/`.
    pub templates: PathBuf,
    /// The master template's file name inside `templates`.
    pub master_template: String,
    pub stack_name: String,
    pub deployment_bucket: String,
    /// The role CloudFormation uses for the stack's resources (`RoleARN`);
    /// None: CloudFormation acts with the caller's own permissions.
    pub role_arn: Option<String>,
    pub capabilities: Vec<String>,
    /// Stack parameters, in name order.
    pub parameters: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub outputs_file: PathBuf,
    pub timeout_minutes: u64,
    /// How CloudFormation runs the stack operation.
    pub mode: DeployMode,
}

/// `[infra] mode`: CloudFormation's deployment mode. Express completes an
/// operation once each resource's configuration is applied, without waiting
/// for it to become ready; artifact sends it with rollback on (CloudFormation
/// would turn rollback off by default in this mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeployMode {
    #[default]
    Standard,
    Express,
}

impl DeployMode {
    /// The key's value: `"standard"` or `"express"`.
    pub fn parse(s: &str) -> Option<DeployMode> {
        match s {
            "standard" => Some(DeployMode::Standard),
            "express" => Some(DeployMode::Express),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeployMode::Standard => "standard",
            DeployMode::Express => "express",
        }
    }
}

/// `[sync]`: how files are uploaded to S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    /// Header rules, first match wins.
    pub rules: Vec<HeaderRule>,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Files at least this large are uploaded in parts.
    pub multipart_threshold: u64,
    pub part_size: u64,
}

/// One `[[sync.rules]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRule {
    /// Globs over the path relative to the synced folder; a pattern without `/`
    /// matches the file name at any depth.
    pub patterns: Vec<String>,
    pub cache_control: Option<String>,
    pub content_type: Option<String>,
}

/// S3's smallest part (except the last): 5 MiB.
pub const S3_MIN_PART: u64 = 5 * 1024 * 1024;

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            rules: Vec::new(),
            concurrency: 16,
            multipart_threshold: 8 * 1024 * 1024,
            part_size: 8 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    pub environment: String,
    /// The AWS account, when known without a call (`AWS_ACCOUNT_ID`, or the
    /// account of `CODEBUILD_BUILD_ARN`): `{account}` in names.
    pub account: Option<String>,
    /// `AWS_REGION` / `AWS_DEFAULT_REGION`: `{region}` in names.
    pub region: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PackSettings {
    pub source: PathBuf,
    pub dependencies: Option<PathBuf>,
    pub out: PathBuf,
    pub cache_dir: PathBuf,
    /// Exclude patterns for every function (defaults included unless turned off).
    pub exclude: Vec<String>,
    pub requirements: Option<PathBuf>,
    pub python: String,
    pub pip_args: Vec<String>,
    pub compression_level: u32,
    /// The cache builders share, `s3://bucket/prefix`.
    pub cache_url: Option<S3Url>,
    /// The Lambda runtime and architecture installs are for, unless a
    /// function says otherwise; unset: read from the templates.
    pub runtime: Option<&'static Runtime>,
    pub architecture: Option<Arch>,
    pub installer: InstallerChoice,
    /// Added to every function's zip; paths relative to the project root.
    pub shared: Vec<FileSpec>,
    /// `[pack] bytecode`, unless a function or layer says otherwise.
    pub bytecode: Bytecode,
    /// `[pack] check`; None: on when the runtime's interpreter is found.
    pub check: Option<bool>,
    /// `[pack] slim`: what is left out of installed dependencies (empty: nothing).
    pub slim: Vec<crate::model::SlimKind>,
    /// `[pack] share_bytecode`: `.pyc` records through the shared cache, whose
    /// writers are then trusted for bytecode (it cannot be checked without compiling).
    pub share_bytecode: bool,
    /// `[pack] bytecode_tests`: sources in `tests/`/`test/` folders inside a
    /// package get `.pyc` too (off: they ship as source only; no handler
    /// imports them at run time).
    pub bytecode_tests: bool,
}

/// Which installer `pack` runs for requirements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallerChoice {
    /// uv when it is on PATH, else pip.
    Auto,
    Uv,
    Pip,
}

/// `[layers.NAME]`: one zip of shared dependencies (under `python/`),
/// published as a Lambda layer version.
#[derive(Debug, Clone)]
pub struct Layer {
    pub name: String,
    /// `{project}-{environment}-{name}`.
    pub deployed_name: String,
    pub requirements: Option<PathBuf>,
    pub dependencies: Option<PathBuf>,
    pub runtime: Option<&'static Runtime>,
    pub architecture: Option<Arch>,
    /// The template parameter that receives the layer version's ARN.
    pub parameter: String,
    pub bytecode: Option<Bytecode>,
}

#[derive(Debug, Clone)]
pub struct Function {
    /// The key under `[functions]`.
    pub name: String,
    /// `[naming] function` or its own `name` (default `{project}-{environment}-{name}`).
    pub deployed_name: String,
    /// The zip's key in the deployment bucket: `[naming] zip_key` (default
    /// `lambda/{function}.zip`), as the templates' `S3Key` names it.
    pub zip_key: String,
    /// The folder `files` are relative to: its own `source`, else `pack.source`.
    pub source: PathBuf,
    pub files: Vec<FileSpec>,
    pub dependencies: bool,
    pub exclude: Vec<String>,
    pub runtime: Option<&'static Runtime>,
    pub architecture: Option<Arch>,
    /// Requirements of this function alone, installed into its zip.
    pub requirements: Option<PathBuf>,
    /// Layers (keys of `[layers]`) the function uses instead of the shared dependencies.
    pub layers: Vec<String>,
    /// Its own `bytecode`, over `[pack] bytecode`.
    pub bytecode: Option<Bytecode>,
}

/// Makes `path` absolute against the current folder and drops `.` parts,
/// without touching the file system.
pub fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    joined
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}
