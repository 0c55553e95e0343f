//! Nested stacks, offline: every `AWS::CloudFormation::Stack` of a template
//! set, its `TemplateURL` evaluated with the deploy's parameters, and whether
//! that URL names a template deploy-infra uploads, in a form S3 serves for the
//! bucket's region. Also the set's shape: templates that nest themselves (a
//! cycle), and nested templates CloudFormation cannot read (too large, not
//! parsing).

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::Value;

use super::{Context, Template, TemplateSet, TEMPLATE_S3_MAX};
use crate::config::Settings;

/// Where the templates go in the deployment bucket (as `cfn::TEMPLATES_PREFIX`).
const PREFIX: &str = "cfn/";

/// One nested stack resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nested {
    /// The template that declares it (as shown, relative to the project root).
    pub parent: String,
    /// Its logical id.
    pub resource: String,
    /// The TemplateURL, evaluated; None when it cannot be told offline.
    pub url: Option<String>,
    /// The template it names, relative to the templates folder (`iam/roles.yaml`).
    pub template: Option<String>,
}

/// A nested stack deploy-infra would not deploy as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parent}: {resource}: {problem}")]
pub struct NestedProblem {
    pub parent: String,
    pub resource: String,
    pub problem: String,
}

/// The nested stacks of a set and what is wrong with them.
#[derive(Debug, Clone, Default)]
pub struct NestedCheck {
    pub stacks: Vec<Nested>,
    pub problems: Vec<NestedProblem>,
}

impl NestedCheck {
    /// The logical ids of the nested stacks whose template is `rel` (relative
    /// to the templates folder).
    pub fn stacks_of(&self, rel: &str) -> Vec<String> {
        self.stacks
            .iter()
            .filter(|n| n.template.as_deref() == Some(rel))
            .map(|n| n.resource.clone())
            .collect()
    }
}

/// Checks every nested stack of `set`: its URL, the template it names, and
/// that no template nests itself. `region` is the deploy's (None offline with
/// no region set: URLs built with `${AWS::Region}` are then not checked).
pub fn check(set: &TemplateSet, settings: &Settings, region: Option<&str>) -> NestedCheck {
    let by_rel: BTreeMap<String, &Template> = set
        .templates
        .iter()
        .filter_map(|t| Some((set.relative(t)?, t)))
        .collect();
    let bucket = &settings.infra.deployment_bucket;
    let shown_dir = settings.shown(&set.dir);
    let mut out = NestedCheck::default();
    // Parameters each nested template receives, as its parent passes them.
    let mut passed: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let master_rel = set
        .master()
        .and_then(|m| set.relative(m))
        .unwrap_or_default();
    let mut queue = vec![master_rel.clone()];
    let mut visited = BTreeSet::new();
    while let Some(rel) = queue.pop() {
        if !visited.insert(rel.clone()) {
            continue;
        }
        let Some(t) = by_rel.get(&rel) else { continue };
        let Some(doc) = &t.doc else { continue };
        let ctx = if rel == master_rel {
            Context::of(doc, settings, region)
        } else {
            Context::nested(doc, passed.get(&rel).cloned().unwrap_or_default(), region)
        };
        for (resource, props) in stack_resources(doc) {
            let url = props.get("TemplateURL").and_then(|v| ctx.evaluate(v));
            let mut n = Nested {
                parent: t.file.clone(),
                resource: resource.clone(),
                url: url.clone(),
                template: None,
            };
            let problem = |problem: String| NestedProblem {
                parent: t.file.clone(),
                resource: resource.clone(),
                problem,
            };
            if let Some(url) = &url {
                match named_template(url, region, bucket, &by_rel, &shown_dir) {
                    Ok(target) => {
                        n.template = Some(target.clone());
                        if let Some(p) = target_problem(&target, &by_rel, settings) {
                            out.problems.push(problem(p));
                        }
                        let values = passed_values(props, &ctx);
                        passed.entry(target.clone()).or_insert(values);
                        queue.push(target);
                    }
                    Err(p) => out
                        .problems
                        .push(problem(format!("TemplateURL {url}: {p}"))),
                }
            }
            out.stacks.push(n);
        }
    }
    out.problems.extend(cycles(&out.stacks, &by_rel));
    out
}

/// The `AWS::CloudFormation::Stack` resources of a template, with their properties.
fn stack_resources(doc: &Value) -> Vec<(String, &Value)> {
    let Some(resources) = doc.get("Resources").and_then(Value::as_mapping) else {
        return Vec::new();
    };
    resources
        .iter()
        .filter(|(_, r)| {
            r.get("Type").and_then(Value::as_str) == Some("AWS::CloudFormation::Stack")
        })
        .filter_map(|(id, r)| Some((id.as_str()?.to_string(), r.get("Properties")?)))
        .collect()
}

/// The Parameters a nested stack resource passes, as far as they evaluate.
fn passed_values(props: &Value, ctx: &Context<'_>) -> BTreeMap<String, String> {
    props
        .get("Parameters")
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), ctx.evaluate(v)?)))
                .collect()
        })
        .unwrap_or_default()
}

/// The template (relative to the templates folder) `url` names, or why it
/// names none deploy-infra uploads.
fn named_template(
    url: &str,
    region: Option<&str>,
    bucket: &str,
    by_rel: &BTreeMap<String, &Template>,
    dir: &str,
) -> Result<String, String> {
    let (b, key) = parse_s3_url(url, region)?;
    if b != bucket {
        return Err(format!(
            "names bucket {b}, but deploy-infra uploads templates to {bucket} ([infra] deployment_bucket); use https://{bucket}.s3.{}.amazonaws.com/{key}",
            region.unwrap_or("<region>")
        ));
    }
    let rel = key.strip_prefix(PREFIX).filter(|r| by_rel.contains_key(*r));
    let Some(rel) = rel else {
        let name = key.rsplit('/').next().unwrap_or(&key);
        let like: Vec<String> = by_rel
            .keys()
            .filter(|r| r.rsplit('/').next() == Some(name))
            .map(|r| format!("{PREFIX}{r}"))
            .collect();
        let hint = if like.is_empty() {
            format!("add the template under {dir}/ or point the URL at a key under {PREFIX}")
        } else {
            format!("did you mean {}?", like.join(" or "))
        };
        return Err(format!(
            "names key {key}, which no template under {dir}/ uploads to; {hint}"
        ));
    };
    Ok(rel.to_string())
}

/// What stops CloudFormation from reading the template a nested stack names.
fn target_problem(
    rel: &str,
    by_rel: &BTreeMap<String, &Template>,
    settings: &Settings,
) -> Option<String> {
    let t = by_rel.get(rel)?;
    let size = t.body.len() as u64;
    if size > TEMPLATE_S3_MAX {
        return Some(format!(
            "its template {} is {size} bytes, over CloudFormation's {TEMPLATE_S3_MAX}-byte limit; split it",
            t.file
        ));
    }
    if t.doc.is_none() {
        return Some(format!(
            "its template {} does not parse (run artifact validate for the line)",
            t.file
        ));
    }
    if settings.infra.master_template == rel {
        return Some(format!("it nests the master template {}", t.file));
    }
    None
}

/// Templates that nest themselves, through any chain: one problem per cycle,
/// naming the chain.
fn cycles(stacks: &[Nested], by_rel: &BTreeMap<String, &Template>) -> Vec<NestedProblem> {
    let file_of = |rel: &str| by_rel.get(rel).map(|t| t.file.clone());
    let rel_of: BTreeMap<String, String> = by_rel
        .iter()
        .map(|(rel, t)| (t.file.clone(), rel.clone()))
        .collect();
    let mut edges: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for n in stacks {
        if let (Some(from), Some(to)) = (rel_of.get(&n.parent), &n.template) {
            edges
                .entry(from.clone())
                .or_default()
                .push((n.resource.clone(), to.clone()));
        }
    }
    let mut out = Vec::new();
    let mut reported = BTreeSet::new();
    for start in edges.keys() {
        let mut path = vec![start.clone()];
        find_cycle(start, &edges, &mut path, &mut |cycle, resource| {
            let mut members: Vec<String> = cycle.to_vec();
            members.sort();
            if reported.insert(members) {
                let chain: Vec<String> = cycle.iter().filter_map(|r| file_of(r)).collect();
                out.push(NestedProblem {
                    parent: file_of(cycle.last().unwrap_or(start)).unwrap_or_default(),
                    resource: resource.to_string(),
                    problem: format!(
                        "the templates nest each other in a cycle: {} → {}; CloudFormation would nest stacks without end",
                        chain.join(" → "),
                        chain.first().cloned().unwrap_or_default()
                    ),
                });
            }
        });
    }
    out
}

/// Depth-first from the last of `path`; calls `found` with each path that
/// returns to its start, and the resource that closes it.
fn find_cycle(
    start: &str,
    edges: &BTreeMap<String, Vec<(String, String)>>,
    path: &mut Vec<String>,
    found: &mut dyn FnMut(&[String], &str),
) {
    let Some(last) = path.last().cloned() else {
        return;
    };
    for (resource, to) in edges.get(&last).into_iter().flatten() {
        if to == start {
            found(path, resource);
        } else if !path.contains(to) && path.len() < 64 {
            path.push(to.clone());
            find_cycle(start, edges, path, found);
            path.pop();
        }
    }
}

/// The bucket and key of an S3 URL CloudFormation can read a template from in
/// `region`: `https://<bucket>.s3.<region>.amazonaws.com/<key>`, path style
/// `https://s3.<region>.amazonaws.com/<bucket>/<key>`, or (in us-east-1) the
/// global `https://<bucket>.s3.amazonaws.com/<key>`. With no region known,
/// any region's form is taken.
pub fn parse_s3_url(url: &str, region: Option<&str>) -> Result<(String, String), String> {
    let example = |r: &str| format!("https://<bucket>.s3.{r}.amazonaws.com/<key>");
    let shown_region = region.unwrap_or("<region>");
    if url.starts_with("s3://") {
        return Err(format!(
            "CloudFormation reads nested templates over HTTPS, not s3:// URLs; use {}",
            example(shown_region)
        ));
    }
    let Some(rest) = url.strip_prefix("https://") else {
        if !url.contains("://") {
            // `aws cloudformation package` style: a path beside the template.
            return Err(format!(
                "a local path; deploy-infra does not rewrite templates: it uploads every template under the templates folder to cfn/<its path>, so name that key: {}",
                example(shown_region).replace("<key>", "cfn/<path>")
            ));
        }
        return Err(format!(
            "not an HTTPS S3 URL; use {}",
            example(shown_region)
        ));
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let Some(labels) = host.strip_suffix(".amazonaws.com") else {
        return Err(format!(
            "{host} is not an S3 endpoint; use {}",
            example(shown_region)
        ));
    };
    let labels: Vec<&str> = labels.split('.').collect();
    let Some(at) = labels
        .iter()
        .rposition(|l| *l == "s3" || l.starts_with("s3-"))
    else {
        return Err(format!(
            "{host} is not an S3 endpoint; use {}",
            example(shown_region)
        ));
    };
    let url_region = match (labels[at].strip_prefix("s3-"), &labels[at + 1..]) {
        (Some(r), []) => Some(r.to_string()),
        (None, []) => None,
        (None, [r]) => Some(r.to_string()),
        _ => {
            return Err(format!(
                "{host} is not an S3 endpoint; use {}",
                example(shown_region)
            ))
        }
    };
    match (&url_region, region) {
        (None, Some(r)) if r != "us-east-1" => {
            return Err(format!(
                "the global endpoint serves buckets in us-east-1 only; a template for a stack in {r} is read from {}",
                example(r)
            ))
        }
        (Some(u), Some(r)) if u != r => {
            return Err(format!(
                "the URL is for {u}, but the stack and its deployment bucket are in {r}; S3 answers \"must be addressed using the specified endpoint\": use {}",
                example(r)
            ))
        }
        _ => {}
    }
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let (bucket, key) = if at == 0 {
        // Path style: the bucket is the first part of the path.
        let (b, k) = path.split_once('/').unwrap_or((path, ""));
        (b.to_string(), k.to_string())
    } else {
        (labels[..at].join("."), path.to_string())
    };
    if bucket.is_empty() || key.is_empty() {
        return Err(format!(
            "names no bucket and key; use {}",
            example(shown_region)
        ));
    }
    Ok((bucket, key))
}

#[cfg(test)]
mod tests {
    use super::parse_s3_url;

    fn ok(url: &str, region: &str) -> (String, String) {
        parse_s3_url(url, Some(region)).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn every_form_s3_serves_names_its_bucket_and_key() {
        let want = ("b".to_string(), "cfn/a/x.yaml".to_string());
        assert_eq!(
            ok("https://b.s3.amazonaws.com/cfn/a/x.yaml", "us-east-1"),
            want
        );
        assert_eq!(
            ok(
                "https://b.s3.eu-west-1.amazonaws.com/cfn/a/x.yaml",
                "eu-west-1"
            ),
            want
        );
        assert_eq!(
            ok(
                "https://b.s3-eu-west-1.amazonaws.com/cfn/a/x.yaml",
                "eu-west-1"
            ),
            want
        );
        assert_eq!(
            ok(
                "https://s3.eu-west-1.amazonaws.com/b/cfn/a/x.yaml",
                "eu-west-1"
            ),
            want
        );
        assert_eq!(
            ok("https://s3.amazonaws.com/b/cfn/a/x.yaml", "us-east-1"),
            want
        );
        assert_eq!(
            ok(
                "https://my.dotted.bucket.s3.us-east-1.amazonaws.com/cfn/a/x.yaml",
                "us-east-1"
            )
            .0,
            "my.dotted.bucket"
        );
    }

    #[test]
    fn other_forms_and_regions_are_refused_with_the_form_to_use() {
        let err = |url: &str, region: &str| parse_s3_url(url, Some(region)).unwrap_err();
        assert!(err("s3://b/cfn/x.yaml", "eu-west-1")
            .contains("https://<bucket>.s3.eu-west-1.amazonaws.com/<key>"));
        assert!(
            err("https://b.s3.amazonaws.com/cfn/x.yaml", "eu-west-1").contains("us-east-1 only")
        );
        assert!(err(
            "https://b.s3.us-west-2.amazonaws.com/cfn/x.yaml",
            "eu-west-1"
        )
        .contains("must be addressed using the specified endpoint"));
        assert!(err("http://b.s3.amazonaws.com/cfn/x.yaml", "us-east-1").contains("not an HTTPS"));
        assert!(err("https://example.com/cfn/x.yaml", "us-east-1").contains("not an S3 endpoint"));
        assert!(
            err("https://s3.us-east-1.amazonaws.com/b", "us-east-1").contains("no bucket and key")
        );
    }

    #[test]
    fn with_no_region_known_any_regions_form_is_taken() {
        assert!(parse_s3_url("https://b.s3.ap-south-1.amazonaws.com/k", None).is_ok());
        assert!(parse_s3_url("https://b.s3.amazonaws.com/k", None).is_ok());
    }
}
