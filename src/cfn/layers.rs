//! Layer versions for `[layers]`: a layer's zip is published as a new version
//! only when no version of the layer was published from the same bytes;
//! otherwise the existing version is reused. Each version's description holds
//! the zip's SHA-256, so the lookup needs no state besides Lambda's own.
//! The description only narrows the search: anyone allowed
//! `PublishLayerVersion` can write it, so a version is reused only when
//! Lambda's own `Content.CodeSha256` (GetLayerVersion) is the zip's.
//! The version's ARN reaches the template as the layer's parameter.

use aws_sdk_lambda::types::{Architecture, LayerVersionContentInput, Runtime};
use serde::{Deserialize, Serialize};

use crate::lambda::{call_err, LambdaError};

/// One layer as the deploy sees it.
#[derive(Debug, Clone)]
pub struct LayerTarget {
    pub layer: String,
    /// `{project}-{environment}-{layer}`.
    pub deployed_name: String,
    pub parameter: String,
    /// The zip's SHA-256, hex.
    pub sha256: String,
    pub bucket: String,
    pub key: String,
    pub runtime: Option<String>,
    pub architecture: Option<String>,
}

/// What happens to a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerAction {
    /// A version from the same zip exists: its ARN is passed.
    Reuse,
    /// No version has this zip: a new one is published.
    Publish,
}

/// One layer, planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerStep {
    pub layer: String,
    pub deployed_name: String,
    pub parameter: String,
    pub action: LayerAction,
    /// The version passed: known when reused, set once published.
    pub arn: Option<String>,
}

/// The description that marks a version as published from a zip.
pub fn marker(sha256: &str) -> String {
    format!("artifact sha256={sha256}")
}

/// The value a parameter gets in the plan before the new version exists:
/// it differs from any ARN, so the stack is updated.
pub fn pending_value(layer: &str) -> String {
    format!("(new version of layer {layer})")
}

/// Reuse where a version with the zip's marker exists, else publish.
pub fn plan(targets: &[LayerTarget], found: &[Option<String>]) -> Vec<LayerStep> {
    targets
        .iter()
        .zip(found)
        .map(|(t, arn)| LayerStep {
            layer: t.layer.clone(),
            deployed_name: t.deployed_name.clone(),
            parameter: t.parameter.clone(),
            action: if arn.is_some() {
                LayerAction::Reuse
            } else {
                LayerAction::Publish
            },
            arn: arn.clone(),
        })
        .collect()
}

/// For each layer, the ARN of a version published from the same zip, if any.
pub async fn observe(
    client: &aws_sdk_lambda::Client,
    targets: &[LayerTarget],
) -> Result<Vec<Option<String>>, LambdaError> {
    let mut found = Vec::with_capacity(targets.len());
    for t in targets {
        found.push(find_version(client, t).await?);
    }
    Ok(found)
}

/// The zip's SHA-256 as Lambda writes CodeSha256: base64 of the digest.
fn code_sha256_of(sha256_hex: &str) -> Option<String> {
    use base64::Engine as _;
    let digest = crate::util::unhex(sha256_hex)?;
    Some(base64::engine::general_purpose::STANDARD.encode(digest))
}

/// The newest of the `candidates` (version, ARN, CodeSha256) whose bytes are
/// the zip's (`want`, base64 as Lambda gives it).
fn newest_with_bytes(mut candidates: Vec<(i64, String, String)>, want: &str) -> Option<String> {
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    candidates
        .into_iter()
        .find(|(_, _, sha)| sha == want)
        .map(|(_, arn, _)| arn)
}

async fn find_version(
    client: &aws_sdk_lambda::Client,
    t: &LayerTarget,
) -> Result<Option<String>, LambdaError> {
    let Some(want_bytes) = code_sha256_of(&t.sha256) else {
        return Ok(None);
    };
    let marked = marked_versions(client, t).await?;
    let mut candidates = Vec::with_capacity(marked.len());
    for (version, arn) in marked {
        let got = client
            .get_layer_version()
            .layer_name(&t.deployed_name)
            .version_number(version)
            .send()
            .await
            .map_err(|e| call_err(&t.deployed_name, "GetLayerVersion", e))?;
        let sha = got
            .content()
            .and_then(|c| c.code_sha256())
            .unwrap_or_default()
            .to_string();
        if sha != want_bytes {
            tracing::warn!(
                "layer version {arn} says it holds sha256 {} but its bytes are CodeSha256 {sha}: not reused",
                t.sha256
            );
        }
        candidates.push((version, arn, sha));
        // The newest version with the right bytes is the one wanted: stop there.
        if candidates.last().is_some_and(|c| c.2 == want_bytes) {
            break;
        }
    }
    Ok(newest_with_bytes(candidates, &want_bytes))
}

/// The versions whose description carries the zip's marker, newest first.
async fn marked_versions(
    client: &aws_sdk_lambda::Client,
    t: &LayerTarget,
) -> Result<Vec<(i64, String)>, LambdaError> {
    let want = marker(&t.sha256);
    let mut next: Option<String> = None;
    let mut found = Vec::new();
    // A page holds up to 50 versions; 200 pages is far beyond any real layer.
    for _ in 0..200 {
        let page = client
            .list_layer_versions()
            .layer_name(&t.deployed_name)
            .set_marker(next.take())
            .send()
            .await;
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                return match call_err(&t.deployed_name, "ListLayerVersions", e) {
                    // No layer of that name yet.
                    LambdaError::Missing { .. } => Ok(Vec::new()),
                    other => Err(other),
                };
            }
        };
        found.extend(
            page.layer_versions()
                .iter()
                .filter(|v| v.description() == Some(want.as_str()))
                .filter_map(|v| Some((v.version(), v.layer_version_arn()?.to_string()))),
        );
        match page.next_marker() {
            Some(m) if !m.is_empty() => next = Some(m.to_string()),
            _ => break,
        }
    }
    found.sort_by_key(|c| std::cmp::Reverse(c.0));
    Ok(found)
}

/// Publishes the layer's zip (already uploaded) as a new version; its ARN.
pub async fn publish(
    client: &aws_sdk_lambda::Client,
    t: &LayerTarget,
) -> Result<String, LambdaError> {
    let content = LayerVersionContentInput::builder()
        .s3_bucket(&t.bucket)
        .s3_key(&t.key)
        .build();
    let mut req = client
        .publish_layer_version()
        .layer_name(&t.deployed_name)
        .description(marker(&t.sha256))
        .content(content);
    if let Some(r) = &t.runtime {
        req = req.compatible_runtimes(Runtime::from(r.as_str()));
    }
    if let Some(a) = &t.architecture {
        req = req.compatible_architectures(Architecture::from(a.as_str()));
    }
    let out = req
        .send()
        .await
        .map_err(|e| call_err(&t.deployed_name, "PublishLayerVersion", e))?;
    out.layer_version_arn()
        .map(str::to_string)
        .ok_or_else(|| LambdaError::UpdateFailed {
            name: t.deployed_name.clone(),
            reason: "PublishLayerVersion answered with no LayerVersionArn".into(),
        })
}

/// The layers to deploy, each with the parameter the master template must declare.
pub(super) fn targets(
    settings: &crate::config::Settings,
    manifest: &crate::pack::Manifest,
    templates: &super::local::Templates,
) -> Result<Vec<LayerTarget>, super::InfraError> {
    let infra = &settings.infra;
    let mut out = Vec::new();
    for l in &settings.layers {
        if !templates.declared_parameters.contains(&l.parameter) {
            return Err(super::InfraError::LayerParameter {
                layer: l.name.clone(),
                template: infra.master_template.clone(),
                parameter: l.parameter.clone(),
            });
        }
        let Some(m) = manifest.layers.get(&l.name) else {
            continue;
        };
        out.push(LayerTarget {
            layer: l.name.clone(),
            deployed_name: l.deployed_name.clone(),
            parameter: l.parameter.clone(),
            sha256: m.sha256.clone(),
            bucket: infra.deployment_bucket.clone(),
            key: format!("{}{}", settings.zips_prefix(), m.zip),
            runtime: l
                .runtime
                .or(settings.pack.runtime)
                .map(|r| r.name.to_string()),
            architecture: l
                .architecture
                .or(settings.pack.architecture)
                .map(|a| a.name().to_string()),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(layer: &str) -> LayerTarget {
        LayerTarget {
            layer: layer.into(),
            deployed_name: format!("p-dev-{layer}"),
            parameter: "DepsLayerArn".into(),
            sha256: "ab".repeat(32),
            bucket: "b".into(),
            key: format!("lambda/layers/{layer}.zip"),
            runtime: Some("python3.12".into()),
            architecture: Some("x86_64".into()),
        }
    }

    #[test]
    fn only_a_version_whose_bytes_are_the_zips_is_reused_whatever_its_description() {
        let want = code_sha256_of(&"ab".repeat(32)).unwrap();
        assert_eq!(want.len(), 44);
        let v = |n: i64, sha: &str| (n, format!("arn:layer:x:{n}"), sha.to_string());
        // Version 5 was planted with the marker and other bytes.
        let got = newest_with_bytes(vec![v(3, &want), v(5, "planted="), v(4, &want)], &want);
        assert_eq!(got.as_deref(), Some("arn:layer:x:4"));
        assert_eq!(newest_with_bytes(vec![v(5, "planted=")], &want), None);
        assert_eq!(code_sha256_of("not hex"), None);
    }

    #[test]
    fn a_layer_whose_zip_was_published_is_reused_and_a_new_one_published() {
        let arn = "arn:aws:lambda:us-east-1:123456789012:layer:p-dev-deps:3".to_string();
        let steps = plan(
            &[target("deps"), target("extra")],
            &[Some(arn.clone()), None],
        );
        assert_eq!(steps[0].action, LayerAction::Reuse);
        assert_eq!(steps[0].arn.as_deref(), Some(arn.as_str()));
        assert_eq!(steps[1].action, LayerAction::Publish);
        assert_eq!(steps[1].arn, None);
    }

    #[test]
    fn the_marker_names_the_zip_hash_and_fits_lambdas_description() {
        let m = marker(&"ab".repeat(32));
        assert!(m.ends_with(&"ab".repeat(32)));
        assert!(m.len() <= 256);
        assert_ne!(pending_value("deps"), m);
    }
}
