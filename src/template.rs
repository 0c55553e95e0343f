//! The one offline reader of a project's CloudFormation templates.
//!
//! A [`TemplateSet`] is read once per command: every template under the
//! templates folder, parsed (YAML with CloudFormation's short forms, or JSON),
//! with what is wrong with each (size limits, syntax, a missing master or
//! Resources section) kept as [`TemplateProblem`]s for the caller to report or
//! refuse. On the parsed documents it evaluates what can be told before
//! deploying — `!Sub`, `!Ref`, `!Join` and `!If` over the parameters'
//! defaults, the project's parameters and the stack name — to name the
//! functions a set creates (with their runtimes and architectures), the
//! bucket an output names, and the parameters the master declares.
//!
//! It makes no AWS call and writes nothing; `validate` turns its problems into
//! a report, `cfn::local` into refusals.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_norway::Value;

use crate::config::Settings;

pub mod nested;
mod parameters;
use parameters::scalar;
pub use parameters::{master_parameters, MasterParameters};

/// CloudFormation's limit on a template read from S3.
pub const TEMPLATE_S3_MAX: u64 = 1_048_576;
/// CloudFormation's limit on a template passed inline.
pub const TEMPLATE_INLINE_MAX: u64 = 51_200;

/// How many templates this process has parsed (a test's measure of "once").
static PARSES: AtomicUsize = AtomicUsize::new(0);

/// Templates parsed by this process so far.
pub fn parses() -> usize {
    PARSES.load(Ordering::Relaxed)
}

/// One template file, read and (when it parses) parsed.
#[derive(Debug, Clone)]
pub struct Template {
    pub path: PathBuf,
    /// The path relative to the project root, for messages.
    pub file: String,
    pub body: String,
    /// None when the file does not parse.
    pub doc: Option<Value>,
}

/// What is wrong with a template set, each naming its file.
#[derive(Debug, thiserror::Error)]
pub enum TemplateProblem {
    #[error("the templates folder {} does not exist", path.display())]
    NoFolder { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Listing {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: the master template does not exist")]
    NoMaster { path: PathBuf, file: String },
    #[error("{file}: {source}")]
    Read {
        path: PathBuf,
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {size} bytes is over CloudFormation's {TEMPLATE_S3_MAX}-byte limit; split it into nested stacks")]
    TooLarge {
        path: PathBuf,
        file: String,
        size: u64,
    },
    #[error("{file}: not valid YAML or JSON: {message}")]
    Syntax {
        path: PathBuf,
        file: String,
        message: String,
    },
    #[error("{file}: no Resources section")]
    NoResources { path: PathBuf, file: String },
}

/// Every template under the templates folder, read once.
#[derive(Debug)]
pub struct TemplateSet {
    pub dir: PathBuf,
    /// The master template's path (it may not exist: see `problems`).
    pub master: PathBuf,
    /// The templates that could be read, in path order.
    pub templates: Vec<Template>,
    pub problems: Vec<TemplateProblem>,
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
    /// `Handler`, evaluated.
    pub handler: Option<String>,
    /// `Environment.Variables`: each name, with its value when known offline.
    pub environment: Vec<(String, Option<String>)>,
}

/// The functions a set creates, by evaluated `FunctionName`.
#[derive(Debug, Clone, Default)]
pub struct FoundFunctions {
    pub by_name: BTreeMap<String, TemplateTarget>,
    /// Functions whose name cannot be told offline (no FunctionName, or one
    /// built from what is known only at deploy time).
    pub unknown: usize,
}

/// Template files below `dir`: `.yaml`, `.yml`, `.json`, `.template`, sorted.
pub fn template_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json" | "template")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

impl TemplateSet {
    /// Reads and parses every template of the project, once.
    pub fn read(settings: &Settings) -> TemplateSet {
        let dir = settings.infra.templates.clone();
        let master = dir.join(&settings.infra.master_template);
        let mut set = TemplateSet {
            dir,
            master,
            templates: Vec::new(),
            problems: Vec::new(),
        };
        if !set.dir.is_dir() {
            set.problems.push(TemplateProblem::NoFolder {
                path: set.dir.clone(),
            });
            return set;
        }
        let files = match template_files(&set.dir) {
            Ok(f) => f,
            Err(source) => {
                let path = set.dir.clone();
                set.problems.push(TemplateProblem::Listing { path, source });
                return set;
            }
        };
        if !files.contains(&set.master) {
            set.problems.push(TemplateProblem::NoMaster {
                path: set.master.clone(),
                file: settings.shown(&set.master),
            });
        }
        for path in files {
            let file = settings.shown(&path);
            if let Some(t) = read_one(path, file, &mut set.problems) {
                set.templates.push(t);
            }
        }
        set
    }

    /// A template's path under the templates folder, with `/` (`iam/roles.yaml`):
    /// its key under `cfn/` in the deployment bucket.
    pub fn relative(&self, t: &Template) -> Option<String> {
        let rel = t.path.strip_prefix(&self.dir).ok()?;
        Some(
            rel.components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
        )
    }

    /// The master template, when it was read.
    pub fn master(&self) -> Option<&Template> {
        self.templates.iter().find(|t| t.path == self.master)
    }

    /// Every template was read and parses (and there is at least one).
    pub fn all_parse(&self) -> bool {
        !self.templates.is_empty() && self.templates.iter().all(|t| t.doc.is_some())
    }

    /// The functions the templates create, by their evaluated FunctionName
    /// (templates that do not parse are skipped: `validate` reports them).
    pub fn functions(&self, settings: &Settings, region: Option<&str>) -> FoundFunctions {
        let mut found = FoundFunctions::default();
        for t in &self.templates {
            let Some(doc) = &t.doc else { continue };
            let ctx = Context::of(doc, settings, region);
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
                let Some(name) = prop("FunctionName").and_then(|v| ctx.evaluate(v)) else {
                    found.unknown += 1;
                    continue;
                };
                let architecture = prop("Architectures")
                    .and_then(Value::as_sequence)
                    .and_then(|s| s.first())
                    .and_then(|v| ctx.evaluate(v));
                let target = TemplateTarget {
                    location: format!("{}: {}", t.file, id.as_str().unwrap_or("?")),
                    runtime: prop("Runtime").and_then(|v| ctx.evaluate(v)),
                    architecture,
                    handler: prop("Handler").and_then(|v| ctx.evaluate(v)),
                    environment: prop("Environment")
                        .and_then(|e| e.get("Variables"))
                        .and_then(Value::as_mapping)
                        .map(|vars| {
                            vars.iter()
                                .filter_map(|(k, v)| {
                                    Some((k.as_str()?.to_string(), ctx.evaluate(v)))
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                };
                found.by_name.insert(name, target);
            }
        }
        found
    }

    /// Whether any template creates a nested stack (`AWS::CloudFormation::Stack`).
    pub fn has_nested_stacks(&self) -> bool {
        self.templates
            .iter()
            .filter_map(|t| t.doc.as_ref())
            .any(|doc| {
                doc.get("Resources")
                    .and_then(Value::as_mapping)
                    .is_some_and(|r| {
                        r.values().any(|v| {
                            v.get("Type").and_then(Value::as_str)
                                == Some("AWS::CloudFormation::Stack")
                        })
                    })
            })
    }

    /// Functions of artifact.toml that no template creates under the name
    /// deploy-infra updates, as far as that can be told without AWS: when a
    /// template does not parse or a function's name cannot be evaluated here
    /// (no FunctionName, `${AWS::Region}`, imports), nothing is reported.
    pub fn functions_not_created(&self, settings: &Settings) -> Vec<String> {
        if !self.all_parse() {
            return Vec::new();
        }
        let found = self.functions(settings, None);
        if found.unknown > 0 {
            return Vec::new();
        }
        settings
            .functions
            .iter()
            .filter(|f| !found.by_name.contains_key(&f.deployed_name))
            .map(|f| f.deployed_name.clone())
            .collect()
    }

    /// The name of the bucket the master template's output `output` names,
    /// when it can be told offline: an output that evaluates to a name, or one
    /// that is `!Ref` of an `AWS::S3::Bucket` whose `BucketName` evaluates.
    pub fn output_bucket(&self, settings: &Settings, output: &str) -> Option<String> {
        let doc = self.master()?.doc.as_ref()?;
        let ctx = Context::of(doc, settings, None);
        let value = doc.get("Outputs")?.get(output)?.get("Value")?;
        let target = match value {
            Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
            Value::Mapping(m) if m.len() == 1 => m.get("Ref").and_then(Value::as_str),
            _ => None,
        };
        let Some(target) = target else {
            return ctx.evaluate(value);
        };
        let resource = doc.get("Resources")?.get(target)?;
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::S3::Bucket") {
            return None;
        }
        ctx.evaluate(resource.get("Properties")?.get("BucketName")?)
    }
}

/// Reads one template; what is wrong with it goes to `problems`.
fn read_one(path: PathBuf, file: String, problems: &mut Vec<TemplateProblem>) -> Option<Template> {
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(source) => {
            problems.push(TemplateProblem::Read { path, file, source });
            return None;
        }
    };
    let size = bytes.len() as u64;
    if size > TEMPLATE_S3_MAX {
        let (path, file) = (path.clone(), file.clone());
        problems.push(TemplateProblem::TooLarge { path, file, size });
    }
    let Ok(body) = String::from_utf8(bytes) else {
        let source = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        );
        problems.push(TemplateProblem::Read { path, file, source });
        return None;
    };
    PARSES.fetch_add(1, Ordering::Relaxed);
    tracing::debug!("parsed template {file}");
    let doc = match serde_norway::from_str::<Value>(&body) {
        Ok(doc) if is_parameter_file(&path, &doc) => return None,
        Ok(doc) => {
            if doc.get("Resources").and_then(Value::as_mapping).is_none() {
                let (path, file) = (path.clone(), file.clone());
                problems.push(TemplateProblem::NoResources { path, file });
            }
            Some(doc)
        }
        Err(e) => {
            let (path, file, message) = (path.clone(), file.clone(), e.to_string());
            problems.push(TemplateProblem::Syntax {
                path,
                file,
                message,
            });
            None
        }
    };
    Some(Template {
        path,
        file,
        body,
        doc,
    })
}

/// A JSON parameter file kept beside the templates (`cfn/params/dev.json`):
/// CloudFormation's list of parameters, or CodePipeline's template
/// configuration. Neither can be a template.
fn is_parameter_file(path: &Path, doc: &Value) -> bool {
    if path.extension().is_none_or(|e| e != "json") {
        return false;
    }
    match doc {
        Value::Sequence(_) => true,
        Value::Mapping(m) => {
            !m.is_empty()
                && m.keys()
                    .all(|k| matches!(k.as_str(), Some("Parameters" | "Tags" | "StackPolicy")))
        }
        _ => false,
    }
}

/// What `!Ref`, `!Sub` and `!If` can be told offline in one template: its
/// parameters' defaults, the project's parameters, the stack name (and the
/// region when known), and its `Conditions`.
pub struct Context<'a> {
    params: BTreeMap<String, String>,
    conditions: Option<&'a serde_norway::Mapping>,
}

impl<'a> Context<'a> {
    pub fn of(doc: &'a Value, settings: &Settings, region: Option<&str>) -> Context<'a> {
        let mut params = scalar_defaults(doc);
        params.extend(settings.infra.parameters.clone());
        params.insert("AWS::StackName".into(), settings.infra.stack_name.clone());
        if let Some(a) = &settings.project.account {
            params.insert("AWS::AccountId".into(), a.clone());
        }
        params.extend(pseudo(region));
        Context {
            params,
            conditions: doc.get("Conditions").and_then(Value::as_mapping),
        }
    }

    /// A nested template's context: its parameters' defaults, then what its
    /// parent passes (not the project's parameters: CloudFormation passes a
    /// nested stack only its resource's `Parameters`).
    pub fn nested(
        doc: &'a Value,
        passed: BTreeMap<String, String>,
        region: Option<&str>,
    ) -> Context<'a> {
        let mut params = scalar_defaults(doc);
        params.extend(passed);
        params.extend(pseudo(region));
        Context {
            params,
            conditions: doc.get("Conditions").and_then(Value::as_mapping),
        }
    }

    /// A context of literal parameters and no conditions.
    pub fn with_params(params: BTreeMap<String, String>) -> Context<'static> {
        Context {
            params,
            conditions: None,
        }
    }

    /// Evaluates the intrinsic functions names are usually built with
    /// (`!Sub`, `!Ref`, `!Join`, `!If`, their long forms); None when the value
    /// cannot be known before deploying.
    pub fn evaluate(&self, v: &Value) -> Option<String> {
        if let Some(s) = scalar(v) {
            return Some(s);
        }
        let (func, arg) = intrinsic(v)?;
        match func {
            "Ref" => self.params.get(arg.as_str()?).cloned(),
            "Sub" => self.sub(arg),
            "Join" => {
                let seq = arg.as_sequence()?;
                let delim = seq.first()?.as_str()?;
                let parts: Option<Vec<String>> = seq
                    .get(1)?
                    .as_sequence()?
                    .iter()
                    .map(|p| self.evaluate(p))
                    .collect();
                Some(parts?.join(delim))
            }
            "If" => {
                let seq = arg.as_sequence().filter(|s| s.len() == 3)?;
                let branch = if self.condition(seq[0].as_str()?, 0)? {
                    &seq[1]
                } else {
                    &seq[2]
                };
                self.evaluate(branch)
            }
            _ => None,
        }
    }

    fn sub(&self, arg: &Value) -> Option<String> {
        let (text, vars) = match arg {
            Value::String(s) => (s.as_str(), BTreeMap::new()),
            Value::Sequence(seq) if seq.len() == 2 => {
                let mut vars = BTreeMap::new();
                for (k, v) in seq[1].as_mapping()? {
                    vars.insert(k.as_str()?.to_string(), self.evaluate(v)?);
                }
                (seq[0].as_str()?, vars)
            }
            _ => return None,
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let end = rest[i..].find('}')? + i;
            let name = &rest[i + 2..end];
            if let Some(lit) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(lit);
                out.push('}');
            } else {
                out.push_str(vars.get(name).or_else(|| self.params.get(name))?);
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        Some(out)
    }

    /// A named condition's value; None when it cannot be told offline (or
    /// conditions refer to each other more deeply than any template does).
    fn condition(&self, name: &str, depth: u8) -> Option<bool> {
        let v = self.conditions?.get(name)?;
        self.truth(v, depth.checked_add(1).filter(|d| *d < 16)?)
    }

    fn truth(&self, v: &Value, depth: u8) -> Option<bool> {
        let (func, arg) = intrinsic(v)?;
        let items = || arg.as_sequence();
        match func {
            "Equals" => {
                let s = items().filter(|s| s.len() == 2)?;
                Some(self.evaluate(&s[0])? == self.evaluate(&s[1])?)
            }
            "Not" => Some(!self.truth(items()?.first()?, depth)?),
            "And" => items()?
                .iter()
                .try_fold(true, |acc, c| Some(acc & self.truth(c, depth)?)),
            "Or" => items()?
                .iter()
                .try_fold(false, |acc, c| Some(acc | self.truth(c, depth)?)),
            "Condition" => self.condition(arg.as_str()?, depth),
            _ => None,
        }
    }
}

/// A template's parameters' scalar `Default`s, by name.
fn scalar_defaults(doc: &Value) -> BTreeMap<String, String> {
    doc.get("Parameters")
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str()?.to_string(), scalar(v.get("Default")?)?)))
        .collect()
}

/// The pseudo parameters a region tells: `AWS::Region`, `AWS::Partition`,
/// `AWS::URLSuffix`.
fn pseudo(region: Option<&str>) -> Vec<(String, String)> {
    let Some(r) = region else {
        return Vec::new();
    };
    let (partition, suffix) = if r.starts_with("cn-") {
        ("aws-cn", "amazonaws.com.cn")
    } else if r.starts_with("us-gov-") {
        ("aws-us-gov", "amazonaws.com")
    } else {
        ("aws", "amazonaws.com")
    };
    vec![
        ("AWS::Region".into(), r.to_string()),
        ("AWS::Partition".into(), partition.into()),
        ("AWS::URLSuffix".into(), suffix.into()),
    ]
}

/// An intrinsic function call, short (`!Sub x`) or long (`{Fn::Sub: x}`, `{Ref: x}`, `{Condition: x}`).
fn intrinsic(v: &Value) -> Option<(&str, &Value)> {
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            let known = [
                "Ref",
                "Sub",
                "Join",
                "If",
                "Equals",
                "Not",
                "And",
                "Or",
                "Condition",
            ];
            known
                .into_iter()
                .find(|k| *k == name)
                .map(|k| (k, &t.value))
        }
        Value::Mapping(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next()?;
            let k = k.as_str()?;
            Some((k.strip_prefix("Fn::").unwrap_or(k), arg))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
