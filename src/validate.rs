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

use crate::aws::Clients;
use crate::config::Settings;
use crate::template::{Template, TemplateSet, TemplateTarget, TEMPLATE_INLINE_MAX};
use futures_util::{stream, StreamExt};
use serde::{Deserialize, Serialize};

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

/// One nested stack: the template it names, or why that is not known.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NestedCheck {
    /// `file: LogicalId` of the `AWS::CloudFormation::Stack`.
    pub stack: String,
    /// The template it names (path under the templates folder); None when
    /// its TemplateURL cannot be evaluated offline, or names none.
    pub template: Option<String>,
    /// Whether its TemplateURL could be evaluated offline (else not checked).
    pub checked: bool,
}

/// Everything found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidateReport {
    pub templates: Vec<TemplateCheck>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nested: Vec<NestedCheck>,
    pub functions: Vec<FunctionCheck>,
    /// The import check of the zips already packed (none packed: empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<crate::pack::CheckResult>,
    /// Every problem, each naming its file or function.
    pub problems: Vec<String>,
    pub ok: bool,
}

/// Runs every check; `clients` is None with `--offline` (no ValidateTemplate).
pub async fn run(clients: Option<&Clients>, settings: &Settings) -> ValidateReport {
    let set = TemplateSet::read(settings);
    let mut problems: Vec<String> = set.problems.iter().map(|p| p.to_string()).collect();
    let mut checks: Vec<TemplateCheck> = set.templates.iter().map(template_check).collect();
    // The service's own check, in parallel.
    let results: Vec<String> = stream::iter(set.templates.iter())
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
    let region = clients
        .map(|c| c.region().to_string())
        .or_else(|| settings.project.region.clone());
    let nested = crate::template::nested::check(&set, settings, region.as_deref());
    problems.extend(nested.problems.iter().map(|p| p.to_string()));
    let nested_checks = nested
        .stacks
        .iter()
        .map(|n| NestedCheck {
            stack: format!("{}: {}", n.parent, n.resource),
            template: n.template.clone(),
            checked: n.url.is_some(),
        })
        .collect();
    let found = set.functions(settings, region.as_deref()).by_name;
    problems.extend(target_mismatches(settings, &found));
    let imports = import_check(settings, &found, &mut problems);
    let names_found: BTreeMap<String, String> =
        found.into_iter().map(|(n, t)| (n, t.location)).collect();
    // With a template that does not parse, a function may be in it: not looked for.
    let checkable = set.all_parse();
    let functions = check_functions(settings, &names_found, checkable, &mut problems);
    if settings.scan.enabled {
        if let Err(found) = crate::scan::scan_tree(settings) {
            problems.extend(secret_problems(&found));
        }
    }
    ValidateReport {
        imports,
        ok: problems.is_empty(),
        templates: checks,
        nested: nested_checks,
        functions,
        problems,
    }
}

/// The import check of the zips already packed, unless `[pack] check = false`.
fn import_check(
    settings: &Settings,
    found: &BTreeMap<String, crate::template::TemplateTarget>,
    problems: &mut Vec<String>,
) -> Vec<crate::pack::CheckResult> {
    let mut imports = Vec::new();
    if settings.pack.check == Some(false) {
        return imports;
    }
    for r in crate::pack::check_packed(settings, found).unwrap_or_default() {
        match r {
            Ok(r) => imports.push(r),
            Err(e) => problems.push(e),
        }
    }
    imports
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

fn template_check(t: &Template) -> TemplateCheck {
    let bytes = t.body.len() as u64;
    TemplateCheck {
        file: t.file.clone(),
        bytes,
        fits_inline: bytes <= TEMPLATE_INLINE_MAX,
        validate_template: String::new(),
    }
}

/// ValidateTemplate's verdict on one template: "ok", "skipped (…)" or the problem.
async fn validate_template(clients: Option<&Clients>, p: &Template) -> String {
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

/// Every function in artifact.toml must be one the templates create, under
/// the name deploy-infra updates.
fn check_functions(
    settings: &Settings,
    names_found: &BTreeMap<String, String>,
    checkable: bool,
    problems: &mut Vec<String>,
) -> Vec<FunctionCheck> {
    let mut functions = Vec::new();
    let pattern = naming_that_fits(settings, names_found);
    for f in &settings.functions {
        let found = names_found.get(&f.deployed_name).cloned();
        if found.is_none() && checkable {
            let fix = match (&pattern, name_like(&f.name, names_found)) {
                (Some(p), _) => format!(
                    "; set [naming] function = \"{p}\" to name every function as the templates do"
                ),
                (None, Some(n)) => format!(
                    "; if {n} ({}) is this function, set name = \"{n}\" in [functions.{}]",
                    names_found[n], f.name
                ),
                (None, None) => String::new(),
            };
            problems.push(format!(
                "function `{}`: no AWS::Lambda::Function in {} is named {} (named there: {}){fix}",
                f.name,
                settings.shown(&settings.infra.templates),
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

/// The usual naming patterns, tried when a function's name is not in the templates.
const NAMING_PATTERNS: &[&str] = &[
    "{project}-{function}-{environment}",
    "{environment}-{project}-{function}",
    "{project}-{function}",
    "{function}-{environment}",
    "{environment}-{function}",
    "{function}",
    "{project}_{function}_{environment}",
    "{project}_{environment}_{function}",
];

/// A `[naming] function` pattern under which every function whose name the
/// templates do not hold would be one they create, when one does.
fn naming_that_fits(settings: &Settings, found: &BTreeMap<String, String>) -> Option<String> {
    let missing: Vec<&str> = settings
        .functions
        .iter()
        .filter(|f| !found.contains_key(&f.deployed_name))
        .map(|f| f.name.as_str())
        .collect();
    if missing.is_empty() || found.is_empty() {
        return None;
    }
    let p = &settings.project;
    NAMING_PATTERNS
        .iter()
        .find(|pattern| {
            missing.iter().all(|f| {
                let name = pattern
                    .replace("{project}", &p.name)
                    .replace("{environment}", &p.environment)
                    .replace("{function}", f);
                found.contains_key(&name)
            })
        })
        .map(|p| p.to_string())
}

/// The one name in the templates that holds the function's key (ignoring
/// case, `-` and `_`), when exactly one does.
fn name_like<'a>(function: &str, found: &'a BTreeMap<String, String>) -> Option<&'a String> {
    let squash = |s: &str| s.to_ascii_lowercase().replace(['-', '_'], "");
    let key = squash(function);
    let mut like = found.keys().filter(|n| squash(n).contains(&key));
    let first = like.next()?;
    like.next().is_none().then_some(first)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_name_that_differs_from_the_templates_gets_the_pattern_or_the_name_to_set() {
        let text = "[project]\nname = \"shop\"\n[functions.api]\nfiles = [\"a.py\"]\n[functions.orch]\nfiles = [\"o.py\"]\n";
        let settings =
            Settings::parse(Path::new("/p/artifact.toml"), text, &Default::default()).unwrap();
        let found = |names: &[&str]| -> BTreeMap<String, String> {
            names
                .iter()
                .map(|n| (n.to_string(), format!("cfn/t.yaml: {n}")))
                .collect()
        };
        let problems = |names: &[&str]| {
            let mut p = Vec::new();
            check_functions(&settings, &found(names), true, &mut p);
            p
        };
        let p = problems(&["shop-api-dev", "shop-orch-dev"]);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].ends_with("set [naming] function = \"{project}-{function}-{environment}\" to name every function as the templates do"),
            "{}",
            p[0]
        );
        // One named by hand: the name to set, for that function only.
        let p = problems(&["shop-dev-api", "shop-dr-orch-sf"]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].ends_with("if shop-dr-orch-sf (cfn/t.yaml: shop-dr-orch-sf) is this function, set name = \"shop-dr-orch-sf\" in [functions.orch]"),
            "{}",
            p[0]
        );
        // Nothing alike: no guess.
        let p = problems(&["other"]);
        assert!(
            p.iter().all(|p| p.ends_with("(named there: other)")),
            "{p:?}"
        );
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
            handler: None,
            environment: Vec::new(),
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
}
