//! `artifact validate`: every problem the Validate stage can find before a
//! deploy, reported together.
//!
//! Templates must parse (YAML with CloudFormation's short forms, or JSON),
//! have a `Resources` section, fit CloudFormation's size limits, and pass the
//! service's ValidateTemplate (checked in parallel). Every function in
//! `artifact.toml` must have an `AWS::Lambda::Function` in the templates whose
//! `FunctionName`, evaluated with the deploy's parameters, is the name
//! deploy-infra will update. `artifact.toml` itself, and every name it implies,
//! was checked when it was read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures_util::{stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_norway::Value;

use crate::aws::Clients;
use crate::cfn::{self, TEMPLATE_INLINE_MAX, TEMPLATE_S3_MAX};
use crate::config::Settings;

/// One template's checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TemplateCheck {
    pub file: String,
    pub bytes: u64,
    /// Small enough to pass inline (51,200 bytes); larger ones deploy through S3.
    pub fits_inline: bool,
    /// "ok", "skipped (…)", or the service's message.
    pub validate_template: String,
}

/// One function's match in the templates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionCheck {
    pub function: String,
    pub deployed_name: String,
    /// `file: LogicalId` of the template resource with that name.
    pub found: Option<String>,
    /// False when a template does not parse: the name could not be looked for.
    #[serde(default = "checked_default")]
    pub checked: bool,
}

fn checked_default() -> bool {
    true
}

/// Everything found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidateReport {
    pub templates: Vec<TemplateCheck>,
    pub functions: Vec<FunctionCheck>,
    /// Every problem, each naming its file or function.
    pub problems: Vec<String>,
    pub ok: bool,
}

struct Parsed {
    file: String,
    body: String,
    doc: Option<Value>,
}

fn rel(settings: &Settings, p: &Path) -> String {
    p.strip_prefix(&settings.root)
        .unwrap_or(p)
        .display()
        .to_string()
}

/// Runs every check; `clients` is None with `--offline` (no ValidateTemplate).
pub async fn run(clients: Option<&Clients>, settings: &Settings) -> ValidateReport {
    let mut problems = Vec::new();
    let (parsed, mut checks) = read_templates(settings, &mut problems);
    // The service's own check, in parallel.
    let results: Vec<String> = stream::iter(parsed.iter())
        .map(|p| validate_template(clients, p))
        .buffered(8)
        .collect()
        .await;
    for (check, result) in checks.iter_mut().zip(results) {
        if result != "ok" && !result.starts_with("skipped") {
            problems.push(format!("{}: ValidateTemplate: {result}", check.file));
        }
        check.validate_template = result;
    }
    let region = clients.map(|c| c.region().to_string());
    let (found, _) = found_functions(&parsed, settings, region.as_deref());
    problems.extend(target_mismatches(settings, &found));
    let names_found: BTreeMap<String, String> =
        found.into_iter().map(|(n, t)| (n, t.location)).collect();
    // With a template that does not parse, a function may be in it: not looked for.
    let checkable = !parsed.is_empty() && parsed.iter().all(|p| p.doc.is_some());
    let functions = check_functions(settings, &names_found, checkable, &mut problems);
    if settings.scan.enabled {
        if let Err(found) = crate::scan::scan_tree(settings) {
            problems.extend(secret_problems(&found));
        }
    }
    ValidateReport {
        ok: problems.is_empty(),
        templates: checks,
        functions,
        problems,
    }
}

/// One problem per secret found, with the allow entry that would let it through.
fn secret_problems(found: &crate::scan::SecretsFound) -> Vec<String> {
    let mut out: Vec<String> = found
        .findings
        .iter()
        .map(|f| {
            format!(
                "{}:{}: {}: {} (if reviewed as harmless: [[scan.allow]] path = \"{}\", sha256 = \"{}\")",
                f.path,
                f.hit.line,
                f.hit.kind.describe(),
                f.hit.masked,
                f.path,
                f.sha256
            )
        })
        .collect();
    out.extend(found.stale.iter().map(|s| {
        format!(
            "[[scan.allow]] names {s} with other contents: the file changed since it was reviewed"
        )
    }));
    out
}

/// Reads and parses every template, noting local problems (size, syntax,
/// a missing master or Resources section).
fn read_templates(
    settings: &Settings,
    problems: &mut Vec<String>,
) -> (Vec<Parsed>, Vec<TemplateCheck>) {
    let dir = &settings.infra.templates;
    let files: Vec<PathBuf> = match cfn::template_files(dir) {
        Ok(f) => f,
        Err(e) => {
            problems.push(e.to_string());
            Vec::new()
        }
    };
    let master = dir.join(&settings.infra.master_template);
    if dir.is_dir() && !files.contains(&master) {
        problems.push(format!(
            "{}: the master template does not exist",
            rel(settings, &master)
        ));
    }
    let mut parsed = Vec::new();
    let mut checks = Vec::new();
    for path in &files {
        let file = rel(settings, path);
        let body = match std::fs::read_to_string(path) {
            Ok(b) => b,
            Err(e) => {
                problems.push(format!("{file}: {e}"));
                continue;
            }
        };
        let bytes = body.len() as u64;
        if bytes > TEMPLATE_S3_MAX {
            problems.push(format!(
                "{file}: {bytes} bytes is over CloudFormation's {TEMPLATE_S3_MAX}-byte limit; split it into nested stacks"
            ));
        }
        let doc = match serde_norway::from_str::<Value>(&body) {
            Ok(doc) => {
                if doc.get("Resources").and_then(Value::as_mapping).is_none() {
                    problems.push(format!("{file}: no Resources section"));
                }
                Some(doc)
            }
            Err(e) => {
                problems.push(format!("{file}: not valid YAML or JSON: {e}"));
                None
            }
        };
        checks.push(TemplateCheck {
            file: file.clone(),
            bytes,
            fits_inline: bytes <= TEMPLATE_INLINE_MAX,
            validate_template: String::new(),
        });
        parsed.push(Parsed { file, body, doc });
    }
    (parsed, checks)
}

/// ValidateTemplate's verdict on one template: "ok", "skipped (…)" or the problem.
async fn validate_template(clients: Option<&Clients>, p: &Parsed) -> String {
    match (clients, &p.doc) {
        (_, None) => "skipped (does not parse)".to_string(),
        (None, _) => "skipped (--offline)".to_string(),
        (Some(_), Some(_)) if p.body.len() as u64 > TEMPLATE_INLINE_MAX => {
            "skipped (over 51,200 bytes: checked when deploy-infra creates the change set)"
                .to_string()
        }
        (Some(c), Some(_)) => match c
            .cfn
            .validate_template()
            .template_body(&p.body)
            .send()
            .await
        {
            Ok(_) => "ok".to_string(),
            Err(e) => {
                use aws_sdk_cloudformation::error::ProvideErrorMetadata;
                match (e.code(), e.message()) {
                    (Some("ValidationError"), Some(m)) => m.to_string(),
                    _ => crate::aws::classify("ValidateTemplate", &p.file, &e).to_string(),
                }
            }
        },
    }
}

/// A function as its template resource states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateTarget {
    /// `file: LogicalId`.
    pub location: String,
    /// `Runtime`, evaluated; None when absent or not known before deploying.
    pub runtime: Option<String>,
    /// The first of `Architectures`, evaluated; None when absent (Lambda's default is x86_64).
    pub architecture: Option<String>,
}

/// The runtime and architecture of every function the templates create, by
/// deployed name, as far as they can be told offline (templates that do not
/// parse are skipped: `validate` reports them).
pub fn template_targets(settings: &Settings) -> BTreeMap<String, TemplateTarget> {
    let mut problems = Vec::new();
    let (parsed, _) = read_templates(settings, &mut problems);
    found_functions(&parsed, settings, None).0
}

/// The functions the templates create by their evaluated FunctionName, and
/// how many functions' names could not be told (no FunctionName, or one that
/// uses what cannot be evaluated here).
fn found_functions(
    parsed: &[Parsed],
    settings: &Settings,
    region: Option<&str>,
) -> (BTreeMap<String, TemplateTarget>, usize) {
    let mut unknown = 0;
    let mut found: BTreeMap<String, TemplateTarget> = BTreeMap::new();
    for p in parsed {
        let Some(doc) = &p.doc else { continue };
        let params = template_params(doc, settings, region);
        let Some(resources) = doc.get("Resources").and_then(Value::as_mapping) else {
            continue;
        };
        for (id, r) in resources {
            let kind = r.get("Type").and_then(Value::as_str).unwrap_or_default();
            if kind != "AWS::Lambda::Function" && kind != "AWS::Serverless::Function" {
                continue;
            }
            let props = r.get("Properties");
            let prop = |k: &str| props.and_then(|p| p.get(k));
            let name = prop("FunctionName").and_then(|v| evaluate(v, &params));
            let Some(name) = name else {
                unknown += 1;
                continue;
            };
            let architecture = prop("Architectures")
                .and_then(Value::as_sequence)
                .and_then(|s| s.first())
                .and_then(|v| evaluate(v, &params));
            found.insert(
                name,
                TemplateTarget {
                    location: format!("{}: {}", p.file, id.as_str().unwrap_or("?")),
                    runtime: prop("Runtime").and_then(|v| evaluate(v, &params)),
                    architecture,
                },
            );
        }
    }
    (found, unknown)
}

/// The values a template's `!Ref` and `!Sub` can be told offline: its
/// parameters' defaults, the project file's parameters, the stack name.
fn template_params(
    doc: &Value,
    settings: &Settings,
    region: Option<&str>,
) -> BTreeMap<String, String> {
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    if let Some(m) = doc.get("Parameters").and_then(Value::as_mapping) {
        for (k, v) in m {
            if let (Some(k), Some(d)) = (k.as_str(), v.get("Default").and_then(scalar)) {
                params.insert(k.to_string(), d);
            }
        }
    }
    params.extend(settings.infra.parameters.clone());
    params.insert("AWS::StackName".into(), settings.infra.stack_name.clone());
    if let Some(r) = region {
        params.insert("AWS::Region".into(), r.to_string());
    }
    params
}

/// The name of the bucket the master template's output `output` names, when
/// it can be told offline: an output that evaluates to a name, or one that is
/// `!Ref` of an `AWS::S3::Bucket` whose `BucketName` evaluates.
pub fn template_output_bucket(settings: &Settings, output: &str) -> Option<String> {
    let mut problems = Vec::new();
    let (parsed, _) = read_templates(settings, &mut problems);
    let master = parsed.iter().find(|p| {
        Path::new(&p.file).file_name()
            == Some(std::ffi::OsStr::new(&settings.infra.master_template))
    })?;
    let doc = master.doc.as_ref()?;
    let params = template_params(doc, settings, None);
    let value = doc.get("Outputs")?.get(output)?.get("Value")?;
    let target = match value {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
        Value::Mapping(m) if m.len() == 1 => m.get("Ref").and_then(Value::as_str),
        _ => None,
    };
    let Some(target) = target else {
        return evaluate(value, &params);
    };
    let resource = doc.get("Resources")?.get(target)?;
    if resource.get("Type").and_then(Value::as_str) != Some("AWS::S3::Bucket") {
        return None;
    }
    evaluate(resource.get("Properties")?.get("BucketName")?, &params)
}

/// What the project file says of a function's runtime or architecture
/// against what its template resource says: each difference is a problem.
fn target_mismatches(settings: &Settings, found: &BTreeMap<String, TemplateTarget>) -> Vec<String> {
    let p = &settings.pack;
    let mut problems = Vec::new();
    for f in &settings.functions {
        let Some(t) = found.get(&f.deployed_name) else {
            continue;
        };
        let (runtime_key, runtime) = match (f.runtime, p.runtime) {
            (Some(r), _) => (format!("functions.{}.runtime", f.name), Some(r.name)),
            (None, Some(r)) => ("pack.runtime".to_string(), Some(r.name)),
            _ => (String::new(), None),
        };
        if let (Some(want), Some(have)) = (runtime, t.runtime.as_deref()) {
            if want != have {
                problems.push(format!(
                    "function `{}`: {runtime_key} is {want} but {} has Runtime {have}: set one to the other",
                    f.name, t.location
                ));
            }
        }
        let (arch_key, arch) = match (f.architecture, p.architecture) {
            (Some(a), _) => (format!("functions.{}.architecture", f.name), Some(a)),
            (None, Some(a)) => ("pack.architecture".to_string(), Some(a)),
            _ => (String::new(), None),
        };
        let have = t.architecture.as_deref().unwrap_or("x86_64");
        for l in settings
            .layers
            .iter()
            .filter(|l| f.layers.contains(&l.name))
        {
            let fn_arch = arch.map_or(have, |a| a.name());
            if let Some(la) = l.architecture.filter(|la| la.name() != fn_arch) {
                problems.push(format!(
                    "function `{}` is {fn_arch} but its layer `{}` is built for {}: set layers.{}.architecture to match",
                    f.name,
                    l.name,
                    la.name(),
                    l.name
                ));
            }
        }
        if let Some(want) = arch {
            if want.name() != have {
                problems.push(format!(
                    "function `{}`: {arch_key} is {} but {} has Architectures [{have}]{}: set one to the other",
                    f.name,
                    want.name(),
                    t.location,
                    if t.architecture.is_none() { " (Lambda's default)" } else { "" }
                ));
            }
        }
    }
    problems
}

/// Functions of artifact.toml that no template creates under the name
/// deploy-infra updates, as far as that can be told without AWS: when a
/// template does not parse or a function's name cannot be evaluated here
/// (no FunctionName, `${AWS::Region}`, imports), nothing is reported.
pub fn functions_not_created(settings: &Settings) -> Vec<String> {
    let mut problems = Vec::new();
    let (parsed, _) = read_templates(settings, &mut problems);
    if parsed.is_empty() || parsed.iter().any(|p| p.doc.is_none()) {
        return Vec::new();
    }
    let (found, unknown) = found_functions(&parsed, settings, None);
    let names: BTreeMap<String, String> = found.into_iter().map(|(n, t)| (n, t.location)).collect();
    if unknown > 0 {
        return Vec::new();
    }
    check_functions(settings, &names, true, &mut problems)
        .into_iter()
        .filter(|f| f.found.is_none())
        .map(|f| f.deployed_name)
        .collect()
}

/// Every function in artifact.toml must be one the templates create, under
/// the name deploy-infra updates.
fn check_functions(
    settings: &Settings,
    names_found: &BTreeMap<String, String>,
    checkable: bool,
    problems: &mut Vec<String>,
) -> Vec<FunctionCheck> {
    let mut functions = Vec::new();
    for f in &settings.functions {
        let found = names_found.get(&f.deployed_name).cloned();
        if found.is_none() && checkable {
            problems.push(format!(
                "function `{}`: no AWS::Lambda::Function in {} is named {} (named there: {})",
                f.name,
                rel(settings, &settings.infra.templates),
                f.deployed_name,
                if names_found.is_empty() {
                    "none".to_string()
                } else {
                    names_found.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            ));
        }
        functions.push(FunctionCheck {
            function: f.name.clone(),
            deployed_name: f.deployed_name.clone(),
            found,
            checked: checkable,
        });
    }
    functions
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Evaluates the intrinsic functions a FunctionName is usually built with
/// (`!Sub`, `!Ref`, `!Join`, their long forms); None when it cannot be known
/// before deploying.
fn evaluate(v: &Value, params: &BTreeMap<String, String>) -> Option<String> {
    let (func, arg) = match v {
        Value::String(s) => return Some(s.clone()),
        Value::Tagged(t) => (
            t.tag.to_string().trim_start_matches('!').to_string(),
            &t.value,
        ),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next()?;
            let k = k.as_str()?;
            (k.strip_prefix("Fn::").unwrap_or(k).to_string(), arg)
        }
        _ => return None,
    };
    match func.as_str() {
        "Ref" => params.get(arg.as_str()?).cloned(),
        "Sub" => {
            let (text, vars) = match arg {
                Value::String(s) => (s.clone(), BTreeMap::new()),
                Value::Sequence(seq) if seq.len() == 2 => {
                    let mut vars = BTreeMap::new();
                    for (k, v) in seq[1].as_mapping()? {
                        vars.insert(k.as_str()?.to_string(), evaluate(v, params)?);
                    }
                    (seq[0].as_str()?.to_string(), vars)
                }
                _ => return None,
            };
            let mut out = String::new();
            let mut rest = text.as_str();
            while let Some(i) = rest.find("${") {
                out.push_str(&rest[..i]);
                let end = rest[i..].find('}')? + i;
                let name = &rest[i + 2..end];
                if let Some(lit) = name.strip_prefix('!') {
                    out.push_str("${");
                    out.push_str(lit);
                    out.push('}');
                } else {
                    out.push_str(vars.get(name).or_else(|| params.get(name))?);
                }
                rest = &rest[end + 1..];
            }
            out.push_str(rest);
            Some(out)
        }
        "Join" => {
            let seq = arg.as_sequence()?;
            let delim = seq.first()?.as_str()?;
            let parts: Option<Vec<String>> = seq
                .get(1)?
                .as_sequence()?
                .iter()
                .map(|p| evaluate(p, params))
                .collect();
            Some(parts?.join(delim))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(yaml: &str) -> Option<String> {
        let params = BTreeMap::from([
            ("ProjectName".to_string(), "proj".to_string()),
            ("Environment".to_string(), "dev".to_string()),
        ]);
        let v: Value = serde_norway::from_str(yaml).unwrap();
        evaluate(v.get("Name").unwrap(), &params)
    }

    #[test]
    fn runtimes_and_architectures_that_differ_from_the_template_are_problems() {
        let text = "[project]\nname = \"p\"\n[pack]\nruntime = \"python3.12\"\n[functions.a]\nfiles = [\"a.py\"]\narchitecture = \"arm64\"\nlayers = [\"deps\"]\n[functions.b]\nfiles = [\"b.py\"]\n[layers.deps]\ndependencies = \"pkg\"\narchitecture = \"x86_64\"\n";
        let settings =
            Settings::parse(Path::new("/p/artifact.toml"), text, &Default::default()).unwrap();
        let t = |runtime: &str, arch: Option<&str>| TemplateTarget {
            location: "cfn/t.yaml: F".into(),
            runtime: Some(runtime.into()),
            architecture: arch.map(str::to_string),
        };
        let found = BTreeMap::from([
            ("p-dev-a".to_string(), t("python3.12", Some("arm64"))),
            ("p-dev-b".to_string(), t("python3.11", None)),
        ]);
        let problems = target_mismatches(&settings, &found);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("function `a` is arm64 but its layer `deps` is built for x86_64")
        );
        assert!(problems[1].contains(
            "function `b`: pack.runtime is python3.12 but cfn/t.yaml: F has Runtime python3.11"
        ));
    }

    #[test]
    fn function_names_are_evaluated_like_cloudformation_does() {
        assert_eq!(eval("Name: plain").as_deref(), Some("plain"));
        assert_eq!(
            eval("Name: !Sub '${ProjectName}-${Environment}-api'").as_deref(),
            Some("proj-dev-api")
        );
        assert_eq!(
            eval("Name: {Fn::Sub: '${ProjectName}-x'}").as_deref(),
            Some("proj-x")
        );
        assert_eq!(
            eval("Name: !Sub ['${P}-${Environment}', {P: !Ref ProjectName}]").as_deref(),
            Some("proj-dev")
        );
        assert_eq!(
            eval("Name: !Join ['-', [!Ref ProjectName, !Ref Environment, api]]").as_deref(),
            Some("proj-dev-api")
        );
        assert_eq!(
            eval("Name: !Sub '${!Literal}-${ProjectName}'").as_deref(),
            Some("${Literal}-proj")
        );
        assert_eq!(eval("Name: !Sub '${Fn.Arn}'"), None);
        assert_eq!(eval("Name: !GetAtt X.Name"), None);
    }
}
