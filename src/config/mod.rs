//! `artifact.toml`: the project file's schema, its defaults, the environment
//! overrides it honours, and validation.
//!
//! Parsing gives a [`Settings`] with every path made absolute and every name
//! checked; commands read settings from here and never look at the process
//! environment themselves (the caller hands in an [`Env`]).

mod environments;
mod error;
mod raw;
mod resolve;
mod resolve_layout;
mod resolve_names;
mod resolve_params;
mod resolve_site;
mod resolve_sync;
mod resolve_values;
mod settings;
mod targets;

use std::path::{Path, PathBuf};

pub use error::ConfigError;
use error::Problem;
pub use raw::FileSpec;
use raw::RawConfig;
pub use resolve::{MAX_KEEP_PREVIOUS, MAX_TIMEOUT_MINUTES};
use serde::Deserialize;
pub use settings::*;
pub use targets::{Fanout, Target, Tolerance, MAX_PARALLEL};

impl Settings {
    /// The folder of the deployment bucket every zip key shares (`lambda/`
    /// by default); layers go under its `layers/`.
    pub fn zips_prefix(&self) -> String {
        let keys: Vec<&str> = self.functions.iter().map(|f| f.zip_key.as_str()).collect();
        resolve_names::zips_folder(&keys).unwrap_or_else(|| "lambda/".to_string())
    }

    /// `p` as messages show it: relative to the project root when inside it.
    pub fn shown(&self, p: &Path) -> String {
        p.strip_prefix(&self.root)
            .unwrap_or(p)
            .display()
            .to_string()
    }

    /// Reads and resolves the project file at `path`.
    pub fn load(path: &Path, env: &Env) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Settings::parse(path, &text, env)
    }

    /// Resolves project-file `text` as if read from `path`.
    /// The project file given, else `artifact.toml` when there is one, else None.
    pub fn load_optional(
        explicit: Option<&Path>,
        env: &Env,
    ) -> Result<Option<Settings>, ConfigError> {
        match explicit {
            Some(p) => Ok(Some(Settings::load(p, env)?)),
            None if Path::new(DEFAULT_CONFIG).exists() => {
                Ok(Some(Settings::load(Path::new(DEFAULT_CONFIG), env)?))
            }
            None => Ok(None),
        }
    }

    pub fn parse(path: &Path, text: &str, env: &Env) -> Result<Settings, ConfigError> {
        let parse_error = |message: String| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        };
        // Read from the text itself (errors then name the line) unless an
        // environment table has to be merged in first.
        let raw: RawConfig = match environments::merged(text, env.environment.as_deref()) {
            Ok(Some((name, doc))) => RawConfig::deserialize(doc).map_err(|e| {
                parse_error(format!(
                    "{} (with [environments.{name}] applied)",
                    e.to_string().trim_end()
                ))
            })?,
            Ok(None) => toml::from_str(text)
                .map_err(|e| parse_error(e.to_string().trim_end().to_string()))?,
            Err(message) => return Err(parse_error(message)),
        };
        let config_path = absolute(path);
        let root = config_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        let with_path = |p: Problem| match p {
            Problem::Invalid { key, message, hint } => ConfigError::Invalid {
                path: path.to_path_buf(),
                key,
                message,
                hint,
            },
            Problem::Name(source) => ConfigError::Name {
                path: path.to_path_buf(),
                source,
            },
        };
        let project =
            resolve::project(raw.project.name, raw.project.environment, env).map_err(with_path)?;
        let pack = resolve::pack(raw.pack, &root).map_err(with_path)?;
        let functions =
            resolve::functions(raw.functions, &raw.naming, &project, &pack.source, &root)
                .map_err(with_path)?;
        let layers = resolve::layers(raw.layers, &project, &root, &functions).map_err(with_path)?;
        let metrics_namespace = resolve::metrics(raw.metrics.namespace).map_err(with_path)?;
        let history_keep = resolve::history_keep(raw.history.keep).map_err(with_path)?;
        let scan = resolve_sync::scan(raw.scan).map_err(with_path)?;
        let provenance_kms_key =
            resolve_sync::kms_key(raw.provenance.kms_key).map_err(with_path)?;
        let sync = resolve_sync::sync(raw.sync).map_err(with_path)?;
        let infra = resolve::infra(raw.infra, &project, env, &root).map_err(with_path)?;
        let targets = targets::resolve_targets(raw.targets).map_err(with_path)?;
        let fanout = targets::resolve_fanout(raw.deploy).map_err(with_path)?;
        let frontend = resolve::frontend(raw.frontend, &project, &infra.stack_name, &root)
            .map_err(with_path)?;
        Ok(Settings {
            vars: env.vars.clone(),
            config_path,
            root,
            project,
            pack,
            functions,
            layers,
            metrics_namespace,
            history_keep,
            scan,
            provenance_kms_key,
            sync,
            infra,
            frontend,
            targets,
            fanout,
        })
    }
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
            aws_max_attempts: None,
            ..Env::default()
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
    fn infra_mode_defaults_to_standard_and_refuses_an_unknown_mode() {
        assert_eq!(
            parse(SAMPLE, &Env::default()).unwrap().infra.mode,
            DeployMode::Standard
        );
        let text = format!("{SAMPLE}\n[infra]\nmode = \"express\"\n");
        let s = parse(&text, &Env::default()).unwrap();
        assert_eq!(s.infra.mode, DeployMode::Express);
        let text = format!("{SAMPLE}\n[infra]\nmode = \"fast\"\n");
        let err = parse(&text, &Env::default()).unwrap_err().to_string();
        assert!(err.contains("infra.mode"), "{err}");
        assert!(err.contains("\"fast\""), "{err}");
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
