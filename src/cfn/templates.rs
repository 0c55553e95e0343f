//! The local side of deploy-infra, read only: the templates folder (sizes,
//! syntax, the master's parameters) and the zips the pack manifest lists.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use super::{InfraError, TEMPLATE_S3_MAX};
use crate::aws::Clients;
use crate::config::Settings;
use crate::pack::{Manifest, MANIFEST};
use crate::sync::local::LocalFile;
use crate::sync::rules::Headers;

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
}

pub fn check_templates(settings: &Settings) -> Result<Templates, InfraError> {
    let dir = &settings.infra.templates;
    if !dir.is_dir() {
        return Err(InfraError::NoTemplates { path: dir.clone() });
    }
    let master = dir.join(&settings.infra.master_template);
    if !master.is_file() {
        return Err(InfraError::NoMaster { path: master });
    }
    for path in template_files(dir)? {
        let size = std::fs::metadata(&path)
            .map_err(|source| InfraError::Io {
                path: path.clone(),
                source,
            })?
            .len();
        if size > TEMPLATE_S3_MAX {
            return Err(InfraError::TemplateTooLarge { path, size });
        }
    }
    let master_body = std::fs::read_to_string(&master).map_err(|source| InfraError::Io {
        path: master.clone(),
        source,
    })?;
    let doc: serde_norway::Value =
        serde_norway::from_str(&master_body).map_err(|e| InfraError::TemplateSyntax {
            path: master.clone(),
            message: e.to_string(),
        })?;
    let params = doc.get("Parameters").and_then(|p| p.as_mapping());
    let declared_parameters = params
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect::<HashSet<_>>()
        })
        .unwrap_or_default();
    let defaults = params
        .map(|m| {
            m.iter()
                .filter_map(|(k, p)| {
                    let v = match p.get("Default")? {
                        serde_norway::Value::String(s) => s.clone(),
                        serde_norway::Value::Number(n) => n.to_string(),
                        serde_norway::Value::Bool(b) => b.to_string(),
                        serde_norway::Value::Sequence(items) => items
                            .iter()
                            .filter_map(|i| i.as_str().map(str::to_string))
                            .collect::<Vec<_>>()
                            .join(","),
                        _ => return None,
                    };
                    Some((k.as_str()?.to_string(), v))
                })
                .collect()
        })
        .unwrap_or_default();
    let has_dynamic_parameters = params.is_some_and(|m| {
        m.values().any(|p| {
            p.get("Type")
                .and_then(|t| t.as_str())
                .is_some_and(|t| t.starts_with("AWS::SSM::Parameter"))
        })
    });
    Ok(Templates {
        master_body,
        defaults,
        declared_parameters,
        has_dynamic_parameters,
    })
}

/// Template files below `dir`: `.yaml`, `.yml`, `.json`, `.template`.
pub fn template_files(dir: &Path) -> Result<Vec<PathBuf>, InfraError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|source| InfraError::Io {
            path: d.clone(),
            source,
        })?;
        for e in rd {
            let p = e
                .map_err(|source| InfraError::Io {
                    path: d.clone(),
                    source,
                })?
                .path();
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

/// The zips to deploy, from the pack manifest.
pub fn packed_zips(settings: &Settings) -> Result<(Manifest, Vec<LocalFile>), InfraError> {
    let path = settings.pack.out.join(MANIFEST);
    if settings.functions.is_empty() {
        // A stack without Lambda code (the pipeline's own, say): nothing was packed.
        return Ok((Manifest::new(settings), Vec::new()));
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
    for f in &settings.functions {
        let m = manifest
            .functions
            .get(&f.name)
            .ok_or_else(|| InfraError::NotPacked {
                function: f.name.clone(),
                path: path.clone(),
            })?;
        files.push(zip_file(settings, m, &path, format!("{}.zip", f.name))?);
        files.extend(sbom_file(settings, m)?);
    }
    for l in &settings.layers {
        let m = manifest
            .layers
            .get(&l.name)
            .ok_or_else(|| InfraError::LayerNotPacked {
                layer: l.name.clone(),
                path: path.clone(),
            })?;
        files.push(zip_file(
            settings,
            m,
            &path,
            format!("layers/{}.zip", l.name),
        )?);
        files.extend(sbom_file(settings, m)?);
    }
    Ok((manifest, files))
}

/// A packed zip (at `rel` in the output folder) as the upload sees it. The upload sends the manifest's hash
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
        path: settings.pack.out.join(&rel),
        rel,
        size: m.zip_size,
        sha256: sha,
        headers: Headers {
            cache_control: None,
            content_type: "application/zip".into(),
        },
    })
}

/// A zip's SBOM, uploaded beside it (when pack wrote one).
fn sbom_file(
    settings: &Settings,
    m: &crate::pack::FunctionManifest,
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
    let sha256 = crate::sync::local::sha256_file(&path).map_err(|e| InfraError::Io {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    Ok(Some(LocalFile {
        rel: rel.clone(),
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
