//! The local side of deploy-infra, read only (as `sync::local` is for sync):
//! the template set, read once through [`crate::template`] and refused where
//! it cannot deploy, and the zips the pack manifest lists.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use super::error::InfraError;

/// Where the templates and zips go in the deployment bucket.
pub const TEMPLATES_PREFIX: &str = "cfn/";
pub const ZIPS_PREFIX: &str = "lambda/";

use crate::aws::Clients;
use crate::config::Settings;
use crate::pack::{Manifest, MANIFEST};
use crate::sync::local::LocalFile;
use crate::sync::rules::Headers;
use crate::template::{self, TemplateProblem, TemplateSet};

/// A checked template set: what the master declares, and its bytes.
#[derive(Debug, Clone)]
pub struct Templates {
    pub master_body: String,
    /// The parameters the master template declares: only these are passed.
    pub declared_parameters: HashSet<String>,
    /// Declared parameters' defaults, as CloudFormation reports them.
    pub defaults: BTreeMap<String, String>,
    /// Parameters whose value CloudFormation resolves at deploy time (SSM types).
    pub has_dynamic_parameters: bool,
    /// Parameters declared `NoEcho`: shown and recorded as `****` only.
    pub no_echo: HashSet<String>,
    /// The nested stacks, each with the template it names.
    pub nested: crate::template::nested::NestedCheck,
    /// The nested templates the stack reads, by path under the templates
    /// folder, with their bytes (the history keeps them).
    pub nested_bodies: BTreeMap<String, String>,
}

/// The template set read once for this deploy; refused when deploy-infra
/// could not deploy it (no folder or master, a template too large, a master
/// that does not parse, a nested stack that names a template it does not
/// upload, a function no template creates). `region` is the deploy's.
pub fn check_templates(settings: &Settings, region: &str) -> Result<Templates, InfraError> {
    let set = TemplateSet::read(settings);
    // What a nested stack names is refused first: its error names the
    // resource that nests a template too large or not parsing.
    let nested = crate::template::nested::check(&set, settings, Some(region));
    let more = nested.problems.len().saturating_sub(1);
    if let Some(first) = nested.problems.first() {
        return Err(InfraError::Nested {
            first: first.clone(),
            more,
        });
    }
    refuse(&set)?;
    let Some(master) = set.master() else {
        return Err(InfraError::NoMaster { path: set.master });
    };
    let Some(doc) = &master.doc else {
        return Err(InfraError::TemplateSyntax {
            path: master.path.clone(),
            message: "does not parse".into(),
        });
    };
    let p = template::master_parameters(doc);
    let named: HashSet<&str> = nested
        .stacks
        .iter()
        .filter_map(|n| n.template.as_deref())
        .collect();
    let nested_bodies = set
        .templates
        .iter()
        .filter_map(|t| Some((set.relative(t)?, t)))
        .filter(|(rel, _)| named.contains(rel.as_str()))
        .map(|(rel, t)| (rel, t.body.clone()))
        .collect();
    let templates = Templates {
        nested,
        nested_bodies,
        master_body: master.body.clone(),
        defaults: p.defaults,
        declared_parameters: p.declared,
        has_dynamic_parameters: p.has_dynamic,
        no_echo: p.no_echo,
    };
    // What `validate --offline` would refuse, refused before anything is created.
    let missing = set.functions_not_created(settings);
    if !missing.is_empty() {
        return Err(InfraError::FunctionsNotInTemplates { names: missing });
    }
    Ok(templates)
}

/// The first problem of `set` that stops a deploy, in the order a deploy meets them.
fn refuse(set: &TemplateSet) -> Result<(), InfraError> {
    let first = set
        .problems
        .iter()
        .filter_map(|p| Some((stops_deploy_at(p, &set.master)?, p)))
        .min_by_key(|(order, _)| *order);
    let Some((_, first)) = first else {
        return Ok(());
    };
    Err(match first {
        TemplateProblem::NoFolder { path } => InfraError::NoTemplates { path: path.clone() },
        TemplateProblem::NoMaster { path, .. } => InfraError::NoMaster { path: path.clone() },
        TemplateProblem::TooLarge { path, size, .. } => InfraError::TemplateTooLarge {
            path: path.clone(),
            size: *size,
        },
        TemplateProblem::Syntax { path, message, .. } => InfraError::TemplateSyntax {
            path: path.clone(),
            message: message.clone(),
        },
        TemplateProblem::Listing { path, source } | TemplateProblem::Read { path, source, .. } => {
            InfraError::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            }
        }
        TemplateProblem::NoResources { .. } => return Ok(()),
    })
}

/// Where a deploy meets `p` (earlier stops first), or None when `p` does not
/// stop it: a template other than the master may not parse, or have no
/// Resources, as far as deploy-infra is concerned (validate reports those).
fn stops_deploy_at(p: &TemplateProblem, master: &Path) -> Option<u8> {
    Some(match p {
        TemplateProblem::NoFolder { .. } => 0,
        TemplateProblem::Listing { .. } => 1,
        TemplateProblem::NoMaster { .. } => 2,
        TemplateProblem::TooLarge { .. } => 3,
        TemplateProblem::Read { path, .. } | TemplateProblem::Syntax { path, .. }
            if path == master =>
        {
            4
        }
        _ => return None,
    })
}

/// The zips a deploy takes: the manifest's, each as the provenance records
/// it, and the signed envelope to check with KMS when a key is configured.
pub struct Packed {
    pub manifest: Manifest,
    pub zips: Vec<LocalFile>,
    pub envelope: Option<crate::pack::sign::Envelope>,
}

/// The zips to deploy, from the pack manifest, each checked against the
/// provenance beside it (an edited manifest would otherwise vouch for a
/// swapped zip).
pub fn packed_zips(settings: &Settings) -> Result<Packed, InfraError> {
    let path = settings.pack.out.join(MANIFEST);
    if settings.functions.is_empty() {
        // A stack without Lambda code (the pipeline's own, say): nothing was packed.
        return Ok(Packed {
            manifest: Manifest::new(settings),
            zips: Vec::new(),
            envelope: None,
        });
    }
    let manifest =
        Manifest::load(&path).map_err(|_| InfraError::NoManifest { path: path.clone() })?;
    if manifest.project != settings.project.name
        || manifest.environment != settings.project.environment
    {
        return Err(InfraError::ForeignManifest {
            path,
            packed: format!("{}-{}", manifest.project, manifest.environment),
            deploying: format!("{}-{}", settings.project.name, settings.project.environment),
        });
    }
    let mut files = Vec::new();
    let prefix = settings.zips_prefix();
    for f in &settings.functions {
        let m = manifest
            .functions
            .get(&f.name)
            .ok_or_else(|| InfraError::NotPacked {
                function: f.name.clone(),
                path: path.clone(),
            })?;
        // Its key ([naming] zip_key) under the folder every zip key shares.
        let rel = f.zip_key.strip_prefix(&prefix).unwrap_or(&f.zip_key);
        files.push(zip_file(settings, m, &path, rel.to_string())?);
        files.extend(sbom_file(settings, m, rel)?);
    }
    for l in &settings.layers {
        let m = manifest
            .layers
            .get(&l.name)
            .ok_or_else(|| InfraError::LayerNotPacked {
                layer: l.name.clone(),
                path: path.clone(),
            })?;
        let rel = format!("layers/{}.zip", l.name);
        files.push(zip_file(settings, m, &path, rel.clone())?);
        files.extend(sbom_file(settings, m, &rel)?);
    }
    let envelope = check_provenance(settings, &manifest)?;
    Ok(Packed {
        manifest,
        zips: files,
        envelope,
    })
}

/// Every zip of the manifest has the SHA-256 the provenance records for it;
/// with `[provenance] kms_key`, the provenance is signed (its signature is
/// checked with KMS before anything changes).
fn check_provenance(
    settings: &Settings,
    manifest: &Manifest,
) -> Result<Option<crate::pack::sign::Envelope>, InfraError> {
    use crate::pack::provenance;
    let path = settings.pack.out.join(provenance::PROVENANCE);
    let refuse = |problem: String| InfraError::Provenance {
        path: path.clone(),
        problem,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| refuse(e.to_string()))?;
    let doc = provenance::parse(&text, settings.provenance_kms_key.as_deref()).map_err(refuse)?;
    let subjects = doc.subjects();
    for m in manifest.functions.values().chain(manifest.layers.values()) {
        match subjects.get(&m.zip) {
            Some(sha) if *sha == m.sha256 => {}
            Some(sha) => {
                return Err(refuse(format!(
                    "{} records SHA-256 {sha} for {}, but {MANIFEST} says {}",
                    provenance::PROVENANCE,
                    m.zip,
                    m.sha256
                )))
            }
            None => return Err(refuse(format!("{} is not one of its subjects", m.zip))),
        }
    }
    Ok(doc.envelope)
}

/// A packed zip as the upload sees it, at `rel` under the zips' folder. The upload sends the manifest's hash
/// as the object's checksum: a zip changed since pack fails the upload rather
/// than deploying unknown bytes.
fn zip_file(
    settings: &Settings,
    m: &crate::pack::FunctionManifest,
    manifest: &Path,
    rel: String,
) -> Result<LocalFile, InfraError> {
    let sha = crate::util::unhex(&m.sha256)
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or_else(|| InfraError::NoManifest {
            path: manifest.to_path_buf(),
        })?;
    Ok(LocalFile {
        path: settings.pack.out.join(&m.zip),
        rel,
        size: m.zip_size,
        sha256: sha,
        headers: Headers {
            cache_control: None,
            content_type: "application/zip".into(),
        },
    })
}

/// A zip's SBOM, uploaded beside it (`zip_rel` is the zip's upload path),
/// when pack wrote one.
fn sbom_file(
    settings: &Settings,
    m: &crate::pack::FunctionManifest,
    zip_rel: &str,
) -> Result<Option<LocalFile>, InfraError> {
    let Some(rel) = &m.sbom else {
        return Ok(None);
    };
    // Only the name pack gives it: `<zip without .zip>.cdx.json`.
    if *rel != crate::pack::sbom_name(&m.zip) {
        return Ok(None);
    }
    let path = settings.pack.out.join(rel);
    let Ok(meta) = std::fs::metadata(&path) else {
        return Ok(None);
    };
    let sha256 = crate::util::sha256_file(&path).map_err(|source| InfraError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(Some(LocalFile {
        rel: crate::pack::sbom_name(zip_rel),
        path,
        size: meta.len(),
        sha256,
        headers: Headers {
            cache_control: None,
            content_type: "application/json".into(),
        },
    }))
}

/// The regional URL CloudFormation reads a template from (or the endpoint override's).
pub fn template_url(clients: &Clients, bucket: &str, key: &str) -> String {
    match clients.endpoint_url() {
        Some(e) => format!("{}/{bucket}/{key}", e.trim_end_matches('/')),
        None => format!(
            "https://s3.{}.amazonaws.com/{bucket}/{key}",
            clients.region()
        ),
    }
}
