//! The project file as written: every table and key `artifact.toml` accepts
//! (unknown keys are refused), with the defaults that need no other value.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) project: RawProject,
    #[serde(default)]
    pub(crate) naming: RawNaming,
    #[serde(default)]
    pub(crate) pack: RawPack,
    #[serde(default)]
    pub(crate) functions: BTreeMap<String, RawFunction>,
    #[serde(default)]
    pub(crate) layers: BTreeMap<String, RawLayer>,
    #[serde(default)]
    pub(crate) metrics: RawMetrics,
    #[serde(default)]
    pub(crate) history: RawHistory,
    #[serde(default)]
    pub(crate) scan: RawScan,
    #[serde(default)]
    pub(crate) provenance: RawProvenance,
    #[serde(default)]
    pub(crate) sync: RawSync,
    #[serde(default)]
    pub(crate) infra: RawInfra,
    #[serde(default)]
    pub(crate) frontend: RawFrontend,
    #[serde(default)]
    pub(crate) targets: Vec<super::targets::RawTarget>,
    #[serde(default)]
    pub(crate) deploy: super::targets::RawDeploy,
}

/// `[naming]`: how deployed names are made from the project's.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNaming {
    pub(crate) function: Option<String>,
    pub(crate) zip_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFrontend {
    pub(crate) dist: Option<PathBuf>,
    pub(crate) stack_name: Option<String>,
    pub(crate) keep_previous: Option<usize>,
    pub(crate) summary_file: Option<PathBuf>,
    pub(crate) timeout_minutes: Option<u64>,
    #[serde(default)]
    pub(crate) outputs: RawFrontendOutputs,
    /// `[[frontend.config]]`: the site's configuration files.
    #[serde(default)]
    pub(crate) config: Vec<RawSiteConfig>,
}

/// One `[[frontend.config]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSiteConfig {
    pub(crate) file: String,
    pub(crate) template: Option<PathBuf>,
    /// For a `.js` file: the global the object is assigned to.
    pub(crate) global: Option<String>,
    #[serde(default)]
    pub(crate) values: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFrontendOutputs {
    pub(crate) api_url: Option<String>,
    pub(crate) user_pool_id: Option<String>,
    pub(crate) user_pool_client_id: Option<String>,
    pub(crate) bucket: Option<String>,
    pub(crate) distribution_id: Option<String>,
    pub(crate) url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInfra {
    pub(crate) templates: Option<PathBuf>,
    pub(crate) master_template: Option<String>,
    pub(crate) stack_name: Option<String>,
    pub(crate) deployment_bucket: Option<String>,
    pub(crate) role_arn: Option<String>,
    pub(crate) capabilities: Option<Vec<String>>,
    pub(crate) parameters: Option<BTreeMap<String, String>>,
    /// A parameter file (CloudFormation's list or CodePipeline's template
    /// configuration), `{environment}` and `{project}` expanded.
    pub(crate) parameters_file: Option<String>,
    #[serde(default)]
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) outputs_file: Option<PathBuf>,
    pub(crate) timeout_minutes: Option<u64>,
    /// `"standard"` or `"express"` (CloudFormation's `DeploymentConfig`).
    pub(crate) mode: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSync {
    #[serde(default)]
    pub(crate) rules: Vec<RawRule>,
    pub(crate) concurrency: Option<usize>,
    pub(crate) multipart_threshold: Option<u64>,
    pub(crate) part_size: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    #[serde(rename = "match")]
    pub(crate) patterns: Vec<String>,
    pub(crate) cache_control: Option<String>,
    pub(crate) content_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProject {
    pub(crate) name: String,
    #[serde(default = "default_environment")]
    pub(crate) environment: String,
}

fn default_environment() -> String {
    "dev".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPack {
    #[serde(default = "default_source")]
    pub(crate) source: PathBuf,
    pub(crate) dependencies: Option<PathBuf>,
    #[serde(default = "default_out")]
    pub(crate) out: PathBuf,
    #[serde(default = "default_cache_dir")]
    pub(crate) cache_dir: PathBuf,
    #[serde(default)]
    pub(crate) exclude: Vec<String>,
    #[serde(default = "yes")]
    pub(crate) default_excludes: bool,
    pub(crate) requirements: Option<PathBuf>,
    #[serde(default = "default_python")]
    pub(crate) python: String,
    #[serde(default)]
    pub(crate) pip_args: Vec<String>,
    #[serde(default = "default_level")]
    pub(crate) compression_level: u32,
    pub(crate) cache_url: Option<String>,
    pub(crate) runtime: Option<String>,
    pub(crate) architecture: Option<String>,
    pub(crate) installer: Option<String>,
    /// Paths (relative to the project root) added to every function's zip.
    #[serde(default)]
    pub(crate) shared: Vec<FileSpec>,
    pub(crate) bytecode: Option<RawBytecode>,
    /// The import check after packing; unset: on when the runtime's interpreter is found.
    pub(crate) check: Option<bool>,
    /// What of the installed dependencies is left out: `true` or a list of kinds.
    pub(crate) slim: Option<RawSlim>,
    /// Whether `.pyc` records go through the shared cache (trusting its writers).
    #[serde(default)]
    pub(crate) share_bytecode: bool,
    /// Whether sources in test folders inside packages get `.pyc` too.
    #[serde(default)]
    pub(crate) bytecode_tests: bool,
}

/// `slim = true` or `slim = ["tests", "docs"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawSlim {
    Flag(bool),
    Kinds(Vec<String>),
}

/// `bytecode = false` or `bytecode = "checked-hash"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawBytecode {
    Flag(bool),
    Name(String),
}

impl RawBytecode {
    pub(crate) fn text(&self) -> String {
        match self {
            RawBytecode::Flag(b) => b.to_string(),
            RawBytecode::Name(s) => s.clone(),
        }
    }
}

impl Default for RawPack {
    fn default() -> Self {
        RawPack {
            source: default_source(),
            dependencies: None,
            shared: Vec::new(),
            out: default_out(),
            cache_dir: default_cache_dir(),
            exclude: Vec::new(),
            default_excludes: true,
            requirements: None,
            python: default_python(),
            pip_args: Vec::new(),
            compression_level: default_level(),
            cache_url: None,
            runtime: None,
            architecture: None,
            installer: None,
            bytecode: None,
            check: None,
            slim: None,
            share_bytecode: false,
            bytecode_tests: false,
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
pub(crate) struct RawFunction {
    /// The deployed name, a pattern like `[naming] function` or a literal.
    pub(crate) name: Option<String>,
    /// The function's own folder: its files and requirements are relative to it.
    pub(crate) source: Option<PathBuf>,
    pub(crate) files: Vec<FileSpec>,
    #[serde(default = "yes")]
    pub(crate) dependencies: bool,
    #[serde(default)]
    pub(crate) exclude: Vec<String>,
    pub(crate) runtime: Option<String>,
    pub(crate) architecture: Option<String>,
    pub(crate) requirements: Option<PathBuf>,
    #[serde(default)]
    pub(crate) layers: Vec<String>,
    pub(crate) bytecode: Option<RawBytecode>,
}

/// `[history]`: how many deployments are kept.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHistory {
    pub(crate) keep: Option<usize>,
}

/// `[provenance]`: how pack's provenance is signed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvenance {
    pub(crate) kms_key: Option<String>,
}

/// `[scan]`: the secret scan.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScan {
    pub(crate) enabled: Option<bool>,
    #[serde(default)]
    pub(crate) allow: Vec<RawScanAllow>,
}

/// `[[scan.allow]]`: a file reviewed as holding no secret, in the version hashed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScanAllow {
    pub(crate) path: String,
    pub(crate) sha256: Option<String>,
    pub(crate) rule: Option<String>,
}

/// `[metrics]`: where the commands' figures go.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    pub(crate) namespace: Option<String>,
}

/// `[layers.NAME]`: a shared dependency layer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLayer {
    pub(crate) requirements: Option<PathBuf>,
    pub(crate) dependencies: Option<PathBuf>,
    pub(crate) runtime: Option<String>,
    pub(crate) architecture: Option<String>,
    pub(crate) parameter: Option<String>,
    pub(crate) bytecode: Option<RawBytecode>,
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
