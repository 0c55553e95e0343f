//! `artifact.toml`: the project file's schema, its defaults, the environment
//! overrides it honours, and validation.
//!
//! Parsing gives a [`Settings`] with every path made absolute and every name
//! checked; commands read settings from here and never look at the process
//! environment themselves (the caller hands in an [`Env`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::names::{self, NameError};

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
    /// `CODEBUILD_RESOLVED_SOURCE_VERSION`: the commit being deployed.
    pub source_version: Option<String>,
}

impl Env {
    /// Reads the overrides from the process environment; empty values count as unset.
    pub fn from_process() -> Self {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Env {
            project_name: get("PROJECT_NAME"),
            environment: get("ENVIRONMENT"),
            deployment_bucket: get("DEPLOYMENT_BUCKET"),
            source_version: get("CODEBUILD_RESOLVED_SOURCE_VERSION"),
        }
    }
}

/// An error in the project file: which file, what is wrong and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a valid project file:\n{message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: `{key}`: {message}", path.display())]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
        hint: String,
    },
    #[error("{}: {source}", path.display())]
    Name {
        path: PathBuf,
        #[source]
        source: NameError,
    },
}

impl ConfigError {
    /// How the user can fix the problem.
    pub fn hint(&self) -> Option<String> {
        match self {
            ConfigError::Read { path, .. } => Some(format!(
                "create {} or point --config at the project file",
                path.display()
            )),
            ConfigError::Parse { .. } => Some(
                "see the `artifact.toml` reference in README.md for the keys each table takes"
                    .into(),
            ),
            ConfigError::Invalid { hint, .. } => Some(hint.clone()),
            ConfigError::Name { source, .. } => Some(source.hint.clone()),
        }
    }
}

// ---- the file as written -------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    project: RawProject,
    #[serde(default)]
    pack: RawPack,
    #[serde(default)]
    functions: BTreeMap<String, RawFunction>,
    #[serde(default)]
    sync: RawSync,
    #[serde(default)]
    infra: RawInfra,
    #[serde(default)]
    frontend: RawFrontend,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrontend {
    dist: Option<PathBuf>,
    stack_name: Option<String>,
    keep_previous: Option<usize>,
    summary_file: Option<PathBuf>,
    timeout_minutes: Option<u64>,
    #[serde(default)]
    outputs: RawFrontendOutputs,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrontendOutputs {
    api_url: Option<String>,
    user_pool_id: Option<String>,
    user_pool_client_id: Option<String>,
    bucket: Option<String>,
    distribution_id: Option<String>,
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInfra {
    templates: Option<PathBuf>,
    master_template: Option<String>,
    stack_name: Option<String>,
    deployment_bucket: Option<String>,
    capabilities: Option<Vec<String>>,
    parameters: Option<BTreeMap<String, String>>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    outputs_file: Option<PathBuf>,
    timeout_minutes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSync {
    #[serde(default)]
    rules: Vec<RawRule>,
    concurrency: Option<usize>,
    multipart_threshold: Option<u64>,
    part_size: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(rename = "match")]
    patterns: Vec<String>,
    cache_control: Option<String>,
    content_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProject {
    name: String,
    #[serde(default = "default_environment")]
    environment: String,
}

fn default_environment() -> String {
    "dev".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPack {
    #[serde(default = "default_source")]
    source: PathBuf,
    dependencies: Option<PathBuf>,
    #[serde(default = "default_out")]
    out: PathBuf,
    #[serde(default = "default_cache_dir")]
    cache_dir: PathBuf,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default = "yes")]
    default_excludes: bool,
    requirements: Option<PathBuf>,
    #[serde(default = "default_python")]
    python: String,
    #[serde(default)]
    pip_args: Vec<String>,
    #[serde(default = "default_level")]
    compression_level: u32,
}

impl Default for RawPack {
    fn default() -> Self {
        RawPack {
            source: default_source(),
            dependencies: None,
            out: default_out(),
            cache_dir: default_cache_dir(),
            exclude: Vec::new(),
            default_excludes: true,
            requirements: None,
            python: default_python(),
            pip_args: Vec::new(),
            compression_level: default_level(),
        }
    }
}

fn default_source() -> PathBuf {
    "lambda".into()
}
fn default_out() -> PathBuf {
    "build/lambda".into()
}
fn default_cache_dir() -> PathBuf {
    ".artifact-cache".into()
}
fn default_python() -> String {
    "python3".into()
}
fn default_level() -> u32 {
    6
}
fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFunction {
    files: Vec<FileSpec>,
    #[serde(default = "yes")]
    dependencies: bool,
    #[serde(default)]
    exclude: Vec<String>,
}

/// One entry of a function's `files`: a path relative to `pack.source`
/// (a file or a whole folder), and where it lands in the zip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// Relative to `pack.source`.
    pub path: PathBuf,
    /// Path inside the zip; defaults to `path`. `"."` puts a folder's contents at the zip root.
    pub rename: Option<String>,
}

impl<'de> Deserialize<'de> for FileSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FileSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"a path string, or a table like { path = "src/x.py", as = "x.py" }"#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileSpec, E> {
                Ok(FileSpec {
                    path: v.into(),
                    rename: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FileSpec, A::Error> {
                let mut path: Option<String> = None;
                let mut rename: Option<String> = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "path" => path = Some(map.next_value()?),
                        "as" => rename = Some(map.next_value()?),
                        other => return Err(de::Error::unknown_field(other, &["path", "as"])),
                    }
                }
                let path = path.ok_or_else(|| de::Error::missing_field("path"))?;
                Ok(FileSpec {
                    path: path.into(),
                    rename,
                })
            }
        }
        d.deserialize_any(V)
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
    pub sync: SyncSettings,
    pub infra: InfraSettings,
    pub frontend: FrontendSettings,
}

/// `[frontend]`: the static site deploy.
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
    pub capabilities: Vec<String>,
    /// Stack parameters, in name order.
    pub parameters: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub outputs_file: PathBuf,
    pub timeout_minutes: u64,
}

const CAPABILITIES: &[&str] = &[
    "CAPABILITY_IAM",
    "CAPABILITY_NAMED_IAM",
    "CAPABILITY_AUTO_EXPAND",
];

/// Expands `{project}`, `{environment}`, `{bucket}` and `{stack}` in `value`.
fn expand(value: &str, vars: &[(&str, &str)]) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find('}') else {
            return Err(format!("{value:?} has an unclosed `{{`"));
        };
        let name = &rest[i + 1..i + j];
        match vars.iter().find(|(k, _)| *k == name) {
            Some((_, v)) => out.push_str(v),
            None => {
                return Err(format!(
                    "{value:?} uses `{{{name}}}`; known placeholders are {}",
                    vars.iter()
                        .map(|(k, _)| format!("{{{k}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    Ok(out)
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

impl SyncSettings {
    /// The `[sync]` table of the project file: `explicit` if given, else
    /// `artifact.toml` in the current folder if there is one, else defaults.
    pub fn load(explicit: Option<&Path>, env: &Env) -> Result<SyncSettings, ConfigError> {
        match explicit {
            Some(p) => Ok(Settings::load(p, env)?.sync),
            None if Path::new(DEFAULT_CONFIG).exists() => {
                Ok(Settings::load(Path::new(DEFAULT_CONFIG), env)?.sync)
            }
            None => Ok(SyncSettings::default()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    pub environment: String,
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
}

#[derive(Debug, Clone)]
pub struct Function {
    /// The key under `[functions]`.
    pub name: String,
    /// `{project}-{environment}-{name}`.
    pub deployed_name: String,
    pub files: Vec<FileSpec>,
    pub dependencies: bool,
    pub exclude: Vec<String>,
}

impl Settings {
    /// Reads and resolves the project file at `path`.
    pub fn load(path: &Path, env: &Env) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Settings::parse(path, &text, env)
    }

    /// Resolves project-file `text` as if read from `path`.
    pub fn parse(path: &Path, text: &str, env: &Env) -> Result<Settings, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let config_path = absolute(path);
        let root = config_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        let invalid = |key: &str, message: String, hint: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            message,
            hint,
        };
        let name_err = |source| ConfigError::Name {
            path: path.to_path_buf(),
            source,
        };

        let project = Project {
            name: env.project_name.clone().unwrap_or(raw.project.name),
            environment: env.environment.clone().unwrap_or(raw.project.environment),
        };
        names::check_name_part("project name", &project.name).map_err(name_err)?;
        names::check_name_part("environment", &project.environment).map_err(name_err)?;

        let p = raw.pack;
        if p.compression_level > 9 {
            return Err(invalid(
                "pack.compression_level",
                format!("{} is out of range", p.compression_level),
                "use a deflate level from 0 (store) to 9 (smallest); 6 is the default".into(),
            ));
        }
        let mut exclude: Vec<String> = if p.default_excludes {
            DEFAULT_EXCLUDES.iter().map(|s| s.to_string()).collect()
        } else {
            Vec::new()
        };
        exclude.extend(p.exclude);
        check_globs("pack.exclude", &exclude).map_err(|(m, h)| invalid("pack.exclude", m, h))?;

        let mut functions = Vec::new();
        for (name, f) in raw.functions {
            let key = format!("functions.{name}");
            names::check_name_part("function key", &name).map_err(name_err)?;
            let deployed_name =
                names::deployed_function_name(&project.name, &project.environment, &name);
            names::check_lambda_function_name(&deployed_name).map_err(name_err)?;
            if f.files.is_empty() {
                return Err(invalid(
                    &format!("{key}.files"),
                    "the list is empty".into(),
                    "name at least one file or folder, relative to pack.source".into(),
                ));
            }
            for spec in &f.files {
                if spec.path.as_os_str().is_empty() || spec.path.is_absolute() {
                    return Err(invalid(
                        &format!("{key}.files"),
                        format!("`{}` is not a relative path", spec.path.display()),
                        "give paths relative to pack.source".into(),
                    ));
                }
                if let Some(rename) = &spec.rename {
                    check_zip_path(rename).map_err(|m| {
                        invalid(
                            &format!("{key}.files"),
                            format!("`as = {rename:?}` {m}"),
                            "use a relative path with `/` separators and no `..`, or \".\" for the zip root".into(),
                        )
                    })?;
                }
            }
            check_globs(&format!("{key}.exclude"), &f.exclude)
                .map_err(|(m, h)| invalid(&format!("{key}.exclude"), m, h))?;
            functions.push(Function {
                name,
                deployed_name,
                files: f.files,
                dependencies: f.dependencies,
                exclude: f.exclude,
            });
        }

        let sync = resolve_sync(raw.sync).map_err(|(k, m, h)| invalid(&k, m, h))?;

        let ri = raw.infra;
        let placeholder_hint = "use {project}, {environment}, {bucket} or {stack}".to_string();
        let pe: [(&str, &str); 2] = [
            ("project", &project.name),
            ("environment", &project.environment),
        ];
        let stack_name = expand(
            ri.stack_name
                .as_deref()
                .unwrap_or("{project}-{environment}"),
            &pe,
        )
        .map_err(|m| invalid("infra.stack_name", m, placeholder_hint.clone()))?;
        names::check_stack_name(&stack_name).map_err(name_err)?;
        let deployment_bucket = match &env.deployment_bucket {
            Some(b) => b.clone(),
            None => expand(
                ri.deployment_bucket
                    .as_deref()
                    .unwrap_or("{project}-deployment-{environment}"),
                &pe,
            )
            .map_err(|m| invalid("infra.deployment_bucket", m, placeholder_hint.clone()))?,
        };
        names::check_bucket_name(&deployment_bucket).map_err(name_err)?;
        let vars: [(&str, &str); 4] = [
            ("project", &project.name),
            ("environment", &project.environment),
            ("bucket", &deployment_bucket),
            ("stack", &stack_name),
        ];
        let raw_parameters = ri.parameters.unwrap_or_else(|| {
            [
                ("ProjectName", "{project}"),
                ("Environment", "{environment}"),
                ("DeploymentBucketName", "{bucket}"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
        });
        let mut parameters = BTreeMap::new();
        for (k, v) in raw_parameters {
            let v = expand(&v, &vars).map_err(|m| {
                invalid(
                    &format!("infra.parameters.{k}"),
                    m,
                    placeholder_hint.clone(),
                )
            })?;
            parameters.insert(k, v);
        }
        let mut tags = BTreeMap::new();
        for (k, v) in ri.tags {
            let v = expand(&v, &vars)
                .map_err(|m| invalid(&format!("infra.tags.{k}"), m, placeholder_hint.clone()))?;
            tags.insert(k, v);
        }
        let capabilities = ri
            .capabilities
            .unwrap_or_else(|| vec!["CAPABILITY_NAMED_IAM".to_string()]);
        if let Some(bad) = capabilities
            .iter()
            .find(|c| !CAPABILITIES.contains(&c.as_str()))
        {
            return Err(invalid(
                "infra.capabilities",
                format!("{bad:?} is not a CloudFormation capability"),
                format!("use any of {}", CAPABILITIES.join(", ")),
            ));
        }
        let master_template = ri
            .master_template
            .unwrap_or_else(|| "master-template.yaml".into());
        if master_template.contains('/') || master_template.is_empty() {
            return Err(invalid(
                "infra.master_template",
                format!("{master_template:?} is not a file name"),
                "give the master template's file name inside infra.templates".into(),
            ));
        }
        let rf = raw.frontend;
        let frontend_stack = match rf.stack_name {
            Some(s) => expand(&s, &pe)
                .map_err(|m| invalid("frontend.stack_name", m, placeholder_hint.clone()))?,
            None => stack_name.clone(),
        };
        names::check_stack_name(&frontend_stack).map_err(name_err)?;
        let o = rf.outputs;
        let frontend = FrontendSettings {
            dist: root.join(rf.dist.unwrap_or_else(|| "build/frontend".into())),
            stack_name: frontend_stack,
            keep_previous: rf.keep_previous.unwrap_or(1),
            summary_file: root.join(
                rf.summary_file
                    .unwrap_or_else(|| "deployment-summary.json".into()),
            ),
            timeout_minutes: rf.timeout_minutes.unwrap_or(20),
            outputs: FrontendOutputs {
                api_url: o.api_url.unwrap_or_else(|| "ApiGatewayUrl".into()),
                user_pool_id: o.user_pool_id.unwrap_or_else(|| "UserPoolId".into()),
                user_pool_client_id: o
                    .user_pool_client_id
                    .unwrap_or_else(|| "UserPoolClientId".into()),
                bucket: o.bucket.unwrap_or_else(|| "FrontendBucketName".into()),
                distribution_id: o
                    .distribution_id
                    .unwrap_or_else(|| "CloudFrontDistributionId".into()),
                url: o.url.unwrap_or_else(|| "CloudFrontUrl".into()),
            },
        };
        let infra = InfraSettings {
            templates: root.join(ri.templates.unwrap_or_else(|| "cfn".into())),
            master_template,
            stack_name,
            deployment_bucket,
            capabilities,
            parameters,
            tags,
            outputs_file: root.join(
                ri.outputs_file
                    .unwrap_or_else(|| "stack-outputs.json".into()),
            ),
            timeout_minutes: ri.timeout_minutes.unwrap_or(60),
        };

        Ok(Settings {
            sync,
            infra,
            frontend,
            pack: PackSettings {
                source: root.join(p.source),
                dependencies: p.dependencies.map(|d| root.join(d)),
                out: root.join(p.out),
                cache_dir: root.join(p.cache_dir),
                exclude,
                requirements: p.requirements.map(|r| root.join(r)),
                python: p.python,
                pip_args: p.pip_args,
                compression_level: p.compression_level,
            },
            config_path,
            root,
            project,
            functions,
        })
    }
}

fn resolve_sync(raw: RawSync) -> Result<SyncSettings, (String, String, String)> {
    let d = SyncSettings::default();
    let mut rules = Vec::new();
    for (i, r) in raw.rules.into_iter().enumerate() {
        let key = format!("sync.rules[{i}].match");
        if r.patterns.is_empty() {
            return Err((
                key,
                "the list is empty".into(),
                "give at least one pattern, e.g. [\"*.html\"] or [\"**\"]".into(),
            ));
        }
        check_globs(&key, &r.patterns).map_err(|(m, h)| (key.clone(), m, h))?;
        for (k, v) in [
            ("cache_control", &r.cache_control),
            ("content_type", &r.content_type),
        ] {
            if let Some(v) = v {
                if v.is_empty() || v.chars().any(|c| c.is_control() || !c.is_ascii()) {
                    return Err((
                        format!("sync.rules[{i}].{k}"),
                        format!("{v:?} is not a valid header value"),
                        "use printable ASCII, e.g. \"public, max-age=31536000, immutable\"".into(),
                    ));
                }
            }
        }
        rules.push(HeaderRule {
            patterns: r.patterns,
            cache_control: r.cache_control,
            content_type: r.content_type,
        });
    }
    let concurrency = raw.concurrency.unwrap_or(d.concurrency);
    if concurrency == 0 || concurrency > 256 {
        return Err((
            "sync.concurrency".into(),
            format!("{concurrency} is out of range"),
            "use 1 to 256 requests in flight (default 16)".into(),
        ));
    }
    let part_size = raw.part_size.unwrap_or(d.part_size);
    if !(S3_MIN_PART..=5 * 1024 * 1024 * 1024).contains(&part_size) {
        return Err((
            "sync.part_size".into(),
            format!("{part_size} bytes is outside S3's part sizes"),
            "use 5 MiB (5242880) to 5 GiB".into(),
        ));
    }
    let multipart_threshold = raw.multipart_threshold.unwrap_or(d.multipart_threshold);
    if multipart_threshold < S3_MIN_PART {
        return Err((
            "sync.multipart_threshold".into(),
            format!("{multipart_threshold} bytes is below S3's 5 MiB minimum part"),
            "use at least 5242880".into(),
        ));
    }
    Ok(SyncSettings {
        rules,
        concurrency,
        multipart_threshold,
        part_size,
    })
}

fn check_globs(_key: &str, patterns: &[String]) -> Result<(), (String, String)> {
    for p in patterns {
        globset::Glob::new(p).map_err(|e| {
            (
                format!("pattern {p:?} is not a valid glob: {e}"),
                "use globs like \"**/*.pyc\" or \"tests/**\"".to_string(),
            )
        })?;
    }
    Ok(())
}

/// A path inside a zip: relative, `/`-separated, no `.`/`..` parts (`"."` alone means the root).
fn check_zip_path(p: &str) -> Result<(), &'static str> {
    if p == "." {
        return Ok(());
    }
    if p.is_empty() {
        return Err("is empty");
    }
    if p.starts_with('/') || p.contains('\\') {
        return Err("must be relative and use `/` separators");
    }
    if p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err("has an empty, `.` or `..` part");
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[project]
name = "aws-elasticdrs-orchestrator"   # PROJECT_NAME env overrides
environment = "dev"                     # ENVIRONMENT env overrides

[pack]
source = "lambda"
dependencies = "lambda/package"
out = "build/lambda"

[functions.api-handler]
files = ["index.py", "rbac_middleware.py"]

[functions.execution-finder]
files = [{ path = "poller/execution_finder.py", as = "execution_finder.py" }]
"#;

    fn parse(text: &str, env: &Env) -> Result<Settings, ConfigError> {
        Settings::parse(Path::new("/p/artifact.toml"), text, env)
    }

    #[test]
    fn the_issue_example_parses_with_defaults() {
        let s = parse(SAMPLE, &Env::default()).unwrap();
        assert_eq!(s.project.name, "aws-elasticdrs-orchestrator");
        assert_eq!(s.pack.source, Path::new("/p/lambda"));
        assert_eq!(
            s.pack.dependencies.as_deref(),
            Some(Path::new("/p/lambda/package"))
        );
        assert_eq!(s.pack.cache_dir, Path::new("/p/.artifact-cache"));
        let names: Vec<_> = s.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["api-handler", "execution-finder"]);
        assert_eq!(
            s.functions[1].files[0].rename.as_deref(),
            Some("execution_finder.py")
        );
        assert_eq!(
            s.functions[0].deployed_name,
            "aws-elasticdrs-orchestrator-dev-api-handler"
        );
        assert!(s.functions[0].dependencies);
        assert!(s.pack.exclude.iter().any(|p| p == "**/__pycache__"));
    }

    #[test]
    fn environment_overrides_win() {
        let env = Env {
            project_name: Some("other".into()),
            environment: Some("prod".into()),
            deployment_bucket: Some("my-bucket".into()),
            source_version: None,
        };
        let s = parse(SAMPLE, &env).unwrap();
        assert_eq!(s.functions[0].deployed_name, "other-prod-api-handler");
        assert_eq!(s.infra.stack_name, "other-prod");
        assert_eq!(s.infra.deployment_bucket, "my-bucket");
        assert_eq!(s.infra.parameters["DeploymentBucketName"], "my-bucket");
    }

    #[test]
    fn infra_defaults_match_the_pipeline() {
        let s = parse(SAMPLE, &Env::default()).unwrap();
        assert_eq!(s.infra.stack_name, "aws-elasticdrs-orchestrator-dev");
        assert_eq!(
            s.infra.deployment_bucket,
            "aws-elasticdrs-orchestrator-deployment-dev"
        );
        let p: Vec<(&str, &str)> = s
            .infra
            .parameters
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            p,
            [
                (
                    "DeploymentBucketName",
                    "aws-elasticdrs-orchestrator-deployment-dev"
                ),
                ("Environment", "dev"),
                ("ProjectName", "aws-elasticdrs-orchestrator")
            ]
        );
        assert_eq!(s.infra.capabilities, ["CAPABILITY_NAMED_IAM"]);
        assert_eq!(s.infra.templates, Path::new("/p/cfn"));
    }

    #[test]
    fn infra_placeholders_and_names_are_checked() {
        let text = format!("{SAMPLE}\n[infra]\nstack_name = \"{{project}}-{{region}}\"\n");
        let err = parse(&text, &Env::default()).unwrap_err();
        assert!(err.to_string().contains("{region}"), "{err}");
        let text = format!("{SAMPLE}\n[infra]\nstack_name = \"1-{{project}}\"\n");
        let err = parse(&text, &Env::default()).unwrap_err();
        assert!(err.to_string().contains("stack name"), "{err}");
        let text = format!("{SAMPLE}\n[infra]\ndeployment_bucket = \"Bad_Bucket\"\n");
        let err = parse(&text, &Env::default()).unwrap_err();
        assert!(err.to_string().contains("bucket"), "{err}");
        let text = format!("{SAMPLE}\n[infra]\ncapabilities = [\"CAPABILITY_ALL\"]\n");
        assert!(parse(&text, &Env::default()).is_err());
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let text = SAMPLE.replace("out = \"build/lambda\"", "outt = \"build/lambda\"");
        let err = parse(&text, &Env::default()).unwrap_err().to_string();
        assert!(err.contains("line 9"), "{err}");
        assert!(err.contains("outt"), "{err}");
    }

    #[test]
    fn unknown_key_in_a_file_table_is_refused() {
        let text = SAMPLE.replace("as = ", "ass = ");
        let err = parse(&text, &Env::default()).unwrap_err().to_string();
        assert!(err.contains("ass"), "{err}");
    }

    #[test]
    fn function_name_too_long_for_lambda() {
        let text = SAMPLE.replace("api-handler", &"a".repeat(40));
        let err = parse(&text, &Env::default()).unwrap_err();
        assert!(err.to_string().contains("at most 64"), "{err}");
        assert!(err.hint().unwrap().contains("shorten"));
    }

    #[test]
    fn rename_escaping_the_zip_is_refused() {
        let text = SAMPLE.replace("as = \"execution_finder.py\"", "as = \"../x.py\"");
        let err = parse(&text, &Env::default()).unwrap_err().to_string();
        assert!(err.contains("functions.execution-finder.files"), "{err}");
    }

    #[test]
    fn bad_glob_and_level_are_refused() {
        let text = SAMPLE.replace("out = ", "exclude = [\"a[\"]\nout = ");
        let err = parse(&text, &Env::default()).unwrap_err().to_string();
        assert!(err.contains("pack.exclude"), "{err}");
        let text = SAMPLE.replace("out = ", "compression_level = 12\nout = ");
        let err = parse(&text, &Env::default()).unwrap_err().to_string();
        assert!(err.contains("compression_level"), "{err}");
    }
}
