//! From the file as written to [`Settings`]: overrides applied, placeholders
//! expanded, names and values checked. Each table resolves on its own; every
//! problem names its key and says how to fix it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::{check_globs, invalid, Problem};
use super::raw::{RawFrontend, RawFunction, RawInfra, RawLayer, RawNaming, RawPack};
use super::resolve_names::expand;
use super::resolve_values::{arch_of, bytecode_of, runtime_of, slim_of};
use super::settings::{
    DeployMode, Env, FrontendOutputs, FrontendSettings, Function, InfraSettings, InstallerChoice,
    Layer, PackSettings, Project, DEFAULT_EXCLUDES,
};
use super::{resolve_layout, resolve_names, resolve_params, resolve_site};
use crate::model::S3Url;
use crate::names;

/// The longest wait any command accepts: 12 hours, in minutes.
pub const MAX_TIMEOUT_MINUTES: u64 = 720;
/// The most earlier releases deploy-frontend keeps for open tabs.
pub const MAX_KEEP_PREVIOUS: usize = 100;

fn timeout(key: &str, minutes: Option<u64>, default: u64) -> Result<u64, Problem> {
    match minutes.unwrap_or(default) {
        m @ 1..=MAX_TIMEOUT_MINUTES => Ok(m),
        m => Err(invalid(
            key,
            format!("{m} minutes is out of range"),
            format!("give 1 to {MAX_TIMEOUT_MINUTES} minutes (12 hours)"),
        )),
    }
}

fn keep_previous(n: Option<usize>) -> Result<usize, Problem> {
    match n.unwrap_or(1) {
        n @ 0..=MAX_KEEP_PREVIOUS => Ok(n),
        n => Err(invalid(
            "frontend.keep_previous",
            format!("{n} releases is more than deploy-frontend keeps"),
            format!("keep 0 to {MAX_KEEP_PREVIOUS} earlier releases (1 covers open tabs)"),
        )),
    }
}

const PLACEHOLDER_HINT: &str = "use {project}, {environment}, {bucket} or {stack}";
const NAMES_HINT: &str = "use {project}, {environment}, {account} or {region}";

const CAPABILITIES: &[&str] = &[
    "CAPABILITY_IAM",
    "CAPABILITY_NAMED_IAM",
    "CAPABILITY_AUTO_EXPAND",
];

pub(crate) fn project(name: String, environment: String, env: &Env) -> Result<Project, Problem> {
    // The build's ARN names its account: arn:aws:codebuild:<region>:<account>:build/…
    let build_account = env
        .build_arn
        .as_deref()
        .and_then(|a| a.split(':').nth(4))
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string);
    let project = Project {
        name: env.project_name.clone().unwrap_or(name),
        environment: env.environment.clone().unwrap_or(environment),
        account: env.account_id.clone().or(build_account),
        region: env.aws_region.clone(),
    };
    names::check_name_part("project name", &project.name)?;
    names::check_name_part("environment", &project.environment)?;
    Ok(project)
}

pub(crate) fn pack(p: RawPack, root: &Path) -> Result<PackSettings, Problem> {
    if p.compression_level > 9 {
        return Err(invalid(
            "pack.compression_level",
            format!("{} is out of range", p.compression_level),
            "use a deflate level from 0 (store) to 9 (smallest); 6 is the default",
        ));
    }
    let mut exclude: Vec<String> = if p.default_excludes {
        DEFAULT_EXCLUDES.iter().map(|s| s.to_string()).collect()
    } else {
        Vec::new()
    };
    exclude.extend(p.exclude);
    check_globs(&exclude).map_err(|(m, h)| invalid("pack.exclude", m, h))?;
    let cache_url = p
        .cache_url
        .as_deref()
        .map(S3Url::parse)
        .transpose()
        .map_err(|e| {
            invalid(
                "pack.cache_url",
                e.to_string(),
                "use s3://bucket/prefix, e.g. s3://my-artifacts/pack-cache",
            )
        })?;
    let installer = match p.installer.as_deref() {
        None | Some("auto") => InstallerChoice::Auto,
        Some("uv") => InstallerChoice::Uv,
        Some("pip") => InstallerChoice::Pip,
        Some(other) => {
            return Err(invalid(
                "pack.installer",
                format!("{other:?} is not an installer artifact knows"),
                "use \"auto\" (uv when it is on PATH, else pip), \"uv\" or \"pip\"",
            ))
        }
    };
    Ok(PackSettings {
        runtime: runtime_of("pack.runtime", p.runtime.as_deref())?,
        architecture: arch_of("pack.architecture", p.architecture.as_deref())?,
        installer,
        source: root.join(p.source),
        dependencies: p.dependencies.map(|d| root.join(d)),
        out: root.join(p.out),
        cache_dir: root.join(p.cache_dir),
        exclude,
        requirements: p.requirements.map(|r| root.join(r)),
        python: p.python,
        pip_args: p.pip_args,
        compression_level: p.compression_level,
        cache_url,
        shared: resolve_layout::shared(p.shared, root)?,
        bytecode: bytecode_of("pack.bytecode", p.bytecode.as_ref())?.unwrap_or_default(),
        check: p.check,
        slim: slim_of(p.slim.as_ref())?,
        share_bytecode: p.share_bytecode,
        bytecode_tests: p.bytecode_tests,
    })
}

pub(crate) fn functions(
    raw: BTreeMap<String, RawFunction>,
    naming: &RawNaming,
    project: &Project,
    pack_source: &Path,
    root: &Path,
) -> Result<Vec<Function>, Problem> {
    let mut functions = Vec::new();
    let mut taken: BTreeMap<String, String> = BTreeMap::new();
    let mut zip_keys: BTreeMap<String, String> = BTreeMap::new();
    for (name, f) in raw {
        let key = format!("functions.{name}");
        names::check_name_part("function key", &name)?;
        let deployed_name =
            resolve_names::function_name(&name, f.name.as_deref(), naming, project)?;
        let zip_key = resolve_names::zip_key(&name, naming, project)?;
        if let Some(other) = zip_keys.insert(zip_key.clone(), name.clone()) {
            return Err(invalid(
                "naming.zip_key",
                format!("functions `{other}` and `{name}` would both upload to {zip_key}"),
                "put {function} in the key",
            ));
        }
        if let Some(other) = taken.insert(deployed_name.clone(), name.clone()) {
            return Err(invalid(
                &format!("{key}.name"),
                format!("functions `{other}` and `{name}` are both deployed as {deployed_name}"),
                "give one of them a name of its own",
            ));
        }
        if f.files.is_empty() {
            return Err(invalid(
                &format!("{key}.files"),
                "the list is empty".into(),
                "name at least one file or folder, relative to pack.source",
            ));
        }
        let source = resolve_layout::function_source(&key, f.source.as_deref(), pack_source, root)?;
        for spec in &f.files {
            if spec.path.as_os_str().is_empty() || spec.path.is_absolute() {
                return Err(invalid(
                    &format!("{key}.files"),
                    format!("`{}` is not a relative path", spec.path.display()),
                    "give paths relative to pack.source",
                ));
            }
            resolve_layout::inside_root(&format!("{key}.files"), &source, &spec.path, root)?;
            if let Some(rename) = &spec.rename {
                check_zip_path(rename).map_err(|m| {
                    invalid(
                        &format!("{key}.files"),
                        format!("`as = {rename:?}` {m}"),
                        "use a relative path with `/` separators and no `..`, or \".\" for the zip root",
                    )
                })?;
            }
        }
        check_globs(&f.exclude).map_err(|(m, h)| invalid(&format!("{key}.exclude"), m, h))?;
        functions.push(Function {
            runtime: runtime_of(&format!("{key}.runtime"), f.runtime.as_deref())?,
            architecture: arch_of(&format!("{key}.architecture"), f.architecture.as_deref())?,
            requirements: resolve_layout::requirements(
                f.requirements,
                f.source.is_some(),
                &source,
                root,
            ),
            layers: f.layers,
            bytecode: bytecode_of(&format!("{key}.bytecode"), f.bytecode.as_ref())?,
            name,
            deployed_name,
            zip_key,
            source,
            files: f.files,
            dependencies: f.dependencies,
            exclude: f.exclude,
        });
    }
    let keys: Vec<&str> = zip_keys.keys().map(String::as_str).collect();
    if !keys.is_empty() && resolve_names::zips_folder(&keys).is_none() {
        return Err(invalid(
            "naming.zip_key",
            format!("the zip keys share no folder ({})", keys.join(", ")),
            "keep {function} in the file name, e.g. \"lambda/{function}.zip\": deploy-infra lists the zips' folder to compare",
        ));
    }
    Ok(functions)
}

/// `[layers]`: names checked, each with something to hold, each used by a
/// function that exists and names only layers that exist.
pub(crate) fn layers(
    raw: BTreeMap<String, RawLayer>,
    project: &Project,
    root: &Path,
    functions: &[Function],
) -> Result<Vec<Layer>, Problem> {
    for f in functions {
        if let Some(missing) = f.layers.iter().find(|l| !raw.contains_key(*l)) {
            return Err(invalid(
                &format!("functions.{}.layers", f.name),
                format!("there is no [layers.{missing}]"),
                format!(
                    "add a [layers.{missing}] table with requirements or dependencies, or remove it from the list"
                ),
            ));
        }
    }
    let mut layers = Vec::new();
    for (name, l) in raw {
        let key = format!("layers.{name}");
        names::check_name_part("layer key", &name)?;
        let deployed_name = format!("{}-{}-{name}", project.name, project.environment);
        if deployed_name.len() > 140 {
            return Err(invalid(
                &key,
                format!("the layer name {deployed_name} is longer than Lambda's 140 characters"),
                "use a shorter layer key",
            ));
        }
        if l.requirements.is_none() && l.dependencies.is_none() {
            return Err(invalid(
                &key,
                "the layer holds nothing".into(),
                "give it requirements = \"requirements.txt\" or dependencies = \"a/folder\"",
            ));
        }
        let parameter = l.parameter.unwrap_or_else(|| layer_parameter(&name));
        if parameter.is_empty() || !parameter.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid(
                &format!("{key}.parameter"),
                format!("{parameter:?} is not a CloudFormation parameter name"),
                "use letters and digits only, e.g. \"DepsLayerArn\"",
            ));
        }
        layers.push(Layer {
            runtime: runtime_of(&format!("{key}.runtime"), l.runtime.as_deref())?,
            architecture: arch_of(&format!("{key}.architecture"), l.architecture.as_deref())?,
            requirements: l.requirements.map(|r| root.join(r)),
            dependencies: l.dependencies.map(|d| root.join(d)),
            deployed_name,
            parameter,
            bytecode: bytecode_of(&format!("{key}.bytecode"), l.bytecode.as_ref())?,
            name,
        });
    }
    Ok(layers)
}

/// The default parameter for a layer's ARN: `deps` -> `DepsLayerArn`,
/// `shared-libs` -> `SharedLibsLayerArn`.
pub(crate) fn layer_parameter(name: &str) -> String {
    let mut out = String::new();
    for part in name.split(['-', '_']).filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(c) = chars.next() {
            out.push(c.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    out + "LayerArn"
}

/// `[history] keep`: 1 to 1,000 deployments, 20 by default.
pub(crate) fn history_keep(keep: Option<usize>) -> Result<usize, Problem> {
    match keep.unwrap_or(20) {
        n @ 1..=1000 => Ok(n),
        n => Err(invalid(
            "history.keep",
            format!("{n} deployments is out of range"),
            "keep 1 to 1000 deployments (a rollback needs at least the one before the latest: 2)",
        )),
    }
}

/// `[metrics] namespace`, as CloudWatch takes it.
pub(crate) fn metrics(namespace: Option<String>) -> Result<Option<String>, Problem> {
    if let Some(ns) = &namespace {
        if let Err(e) = crate::names::check_metrics_namespace(ns) {
            return Err(invalid(
                "metrics.namespace",
                format!("{ns:?}: {}", e.problem),
                e.hint,
            ));
        }
    }
    Ok(namespace)
}

/// `[infra] role_arn` (or `CLOUDFORMATION_ROLE_ARN`), expanded and checked.
fn role_arn(
    env: &Env,
    raw: Option<String>,
    vars: &[(&str, &str)],
) -> Result<Option<String>, Problem> {
    let role_arn = env
        .cloudformation_role_arn
        .clone()
        .or(raw)
        .map(|r| expand(&r, vars).map_err(|m| invalid("infra.role_arn", m, PLACEHOLDER_HINT)))
        .transpose()?;
    if let Some(r) = &role_arn {
        if !names::is_role_arn(r) {
            return Err(invalid(
                "infra.role_arn",
                format!("{r:?} is not an IAM role ARN"),
                "use arn:aws:iam::<account>:role/<name> (CLOUDFORMATION_ROLE_ARN overrides)",
            ));
        }
    }
    Ok(role_arn)
}

/// `[infra]`, with `{project}`, `{environment}`, `{bucket}` and `{stack}` expanded.
pub(crate) fn infra(
    ri: RawInfra,
    project: &Project,
    env: &Env,
    root: &Path,
) -> Result<InfraSettings, Problem> {
    let pe: [(&str, &str); 2] = [
        ("project", &project.name),
        ("environment", &project.environment),
    ];
    let stack_name = resolve_names::expand_name(
        "infra.stack_name",
        ri.stack_name
            .as_deref()
            .unwrap_or("{project}-{environment}"),
        project,
        &[],
        NAMES_HINT,
    )?;
    names::check_stack_name(&stack_name)?;
    let deployment_bucket = match &env.deployment_bucket {
        Some(b) => b.clone(),
        None => resolve_names::expand_name(
            "infra.deployment_bucket",
            ri.deployment_bucket
                .as_deref()
                .unwrap_or("{project}-deployment-{environment}"),
            project,
            &[],
            NAMES_HINT,
        )?,
    };
    names::check_bucket_name(&deployment_bucket)?;
    let role_arn = role_arn(env, ri.role_arn, &pe)?;
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
    let (parameters, tags) = parameters_and_tags(
        (raw_parameters, ri.tags),
        ri.parameters_file.as_deref(),
        &vars,
        env,
        root,
    )?;
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
            "give the master template's file name inside infra.templates",
        ));
    }
    Ok(InfraSettings {
        templates: root.join(ri.templates.unwrap_or_else(|| "cfn".into())),
        master_template,
        stack_name,
        deployment_bucket,
        role_arn,
        capabilities,
        parameters,
        tags,
        outputs_file: root.join(
            ri.outputs_file
                .unwrap_or_else(|| "stack-outputs.json".into()),
        ),
        timeout_minutes: timeout("infra.timeout_minutes", ri.timeout_minutes, 60)?,
        mode: deploy_mode(ri.mode.as_deref())?,
    })
}

/// `[infra] mode`, checked.
fn deploy_mode(raw: Option<&str>) -> Result<DeployMode, Problem> {
    let Some(raw) = raw else {
        return Ok(DeployMode::Standard);
    };
    DeployMode::parse(raw).ok_or_else(|| {
        invalid(
            "infra.mode",
            format!("{raw:?} is not a deployment mode"),
            "use \"standard\" (CloudFormation waits until resources are ready) or \"express\" (faster, rollback stays on); set it per environment under [environments.<name>.infra]",
        )
    })
}

/// `[infra] parameters` and `tags` expanded, the parameter file's values
/// over them (the file is the environment's own), `env:` values read.
fn parameters_and_tags(
    (parameters, tags): resolve_params::FileValues,
    file: Option<&str>,
    vars: &[(&str, &str)],
    env: &Env,
    root: &Path,
) -> Result<resolve_params::FileValues, Problem> {
    let mut parameters = expand_all("infra.parameters", parameters, vars)?;
    let mut tags = expand_all("infra.tags", tags, vars)?;
    if let Some(pattern) = file {
        let file = expand(pattern, &vars[..2])
            .map_err(|m| invalid("infra.parameters_file", m, "use {project} or {environment}"))?;
        let (p, t) = resolve_params::parameters_file(&root.join(&file), &file)?;
        parameters.extend(p);
        tags.extend(t);
    }
    Ok((
        resolve_params::env_values("infra.parameters", parameters, env)?,
        resolve_params::env_values("infra.tags", tags, env)?,
    ))
}

fn expand_all(
    table: &str,
    values: BTreeMap<String, String>,
    vars: &[(&str, &str)],
) -> Result<BTreeMap<String, String>, Problem> {
    values
        .into_iter()
        .map(|(k, v)| {
            expand(&v, vars)
                .map(|v| (k.clone(), v))
                .map_err(|m| invalid(&format!("{table}.{k}"), m, PLACEHOLDER_HINT))
        })
        .collect()
}

pub(crate) fn frontend(
    rf: RawFrontend,
    project: &Project,
    infra_stack: &str,
    root: &Path,
) -> Result<FrontendSettings, Problem> {
    let pe: [(&str, &str); 2] = [
        ("project", &project.name),
        ("environment", &project.environment),
    ];
    let stack_name = match rf.stack_name {
        Some(s) => {
            expand(&s, &pe).map_err(|m| invalid("frontend.stack_name", m, PLACEHOLDER_HINT))?
        }
        None => infra_stack.to_string(),
    };
    names::check_stack_name(&stack_name)?;
    let o = rf.outputs;
    let or = |v: Option<String>, d: &str| v.unwrap_or_else(|| d.to_string());
    Ok(FrontendSettings {
        dist: root.join(rf.dist.unwrap_or_else(|| PathBuf::from("build/frontend"))),
        stack_name,
        keep_previous: keep_previous(rf.keep_previous)?,
        summary_file: root.join(
            rf.summary_file
                .unwrap_or_else(|| "deployment-summary.json".into()),
        ),
        timeout_minutes: timeout("frontend.timeout_minutes", rf.timeout_minutes, 20)?,
        outputs: FrontendOutputs {
            api_url: or(o.api_url, "ApiGatewayUrl"),
            user_pool_id: or(o.user_pool_id, "UserPoolId"),
            user_pool_client_id: or(o.user_pool_client_id, "UserPoolClientId"),
            bucket: or(o.bucket, "FrontendBucketName"),
            distribution_id: or(o.distribution_id, "CloudFrontDistributionId"),
            url: or(o.url, "CloudFrontUrl"),
        },
        config: resolve_site::site_configs(rf.config, root)?,
    })
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
