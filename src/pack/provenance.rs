//! `<out>/provenance.intoto.jsonl`: an in-toto Statement v1 with a SLSA
//! provenance v1 predicate for the zips of one pack. Subjects are every zip
//! (and layer zip) with its SHA-256; the builder is the CodeBuild build when
//! `CODEBUILD_BUILD_ARN` is set; the source is the repository and commit; the
//! parameters are the hashes of `artifact.toml` and of each requirements file.
//! No timestamps: the same build gives the same line. `artifact verify`
//! checks a zip against it.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

use super::Manifest;

/// The provenance file's name inside the output folder.
pub const PROVENANCE: &str = "provenance.intoto.jsonl";

/// Where a build ran and from what.
#[derive(Debug, Clone, Default)]
pub struct BuildFacts {
    /// `CODEBUILD_BUILD_ARN`, when the build ran in CodeBuild.
    pub build_arn: Option<String>,
    /// `CODEBUILD_SOURCE_REPO_URL`, or none.
    pub repository: Option<String>,
    pub commit: Option<String>,
    /// SHA-256 (hex) of artifact.toml.
    pub config_sha256: String,
    /// Requirements files (relative paths) and their SHA-256 (hex).
    pub requirements: BTreeMap<String, String>,
}

/// The statement, as one line of JSON with a line break.
pub fn statement(manifest: &Manifest, facts: &BuildFacts) -> Vec<u8> {
    let subjects: Vec<Value> = manifest
        .functions
        .values()
        .chain(manifest.layers.values())
        .map(|m| json!({"name": m.zip, "digest": {"sha256": m.sha256}}))
        .collect();
    let builder = facts
        .build_arn
        .clone()
        .unwrap_or_else(|| "https://github.com/artifact/artifact/local".into());
    let mut deps = Vec::new();
    if let Some(repo) = &facts.repository {
        let mut d = json!({"uri": repo});
        if let Some(c) = &facts.commit {
            d["digest"] = json!({"gitCommit": c});
        }
        deps.push(d);
    }
    let doc = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subjects,
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://github.com/artifact/artifact/pack@v1",
                "externalParameters": {
                    "project": manifest.project,
                    "environment": manifest.environment,
                    "artifactToml": {"sha256": facts.config_sha256},
                    "requirements": facts.requirements.iter()
                        .map(|(p, h)| json!({"path": p, "sha256": h}))
                        .collect::<Vec<_>>(),
                    "commit": facts.commit,
                },
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": builder, "version": {"artifact": env!("CARGO_PKG_VERSION")}},
            },
        },
    });
    let mut line = serde_json::to_vec(&doc).unwrap_or_default();
    line.push(b'\n');
    line
}

/// A line's statement: the line itself, or the payload of a signed envelope.
pub fn statement_of(line: &str) -> Option<Value> {
    let doc: Value = serde_json::from_str(line).ok()?;
    if doc.get("payloadType").is_none() {
        return Some(doc);
    }
    let envelope: super::sign::Envelope = serde_json::from_value(doc).ok()?;
    serde_json::from_slice(&envelope.statement()?).ok()
}

/// The signed envelope a provenance file holds, if it is signed.
pub fn envelope_of(text: &str) -> Option<super::sign::Envelope> {
    serde_json::from_str(text.lines().next()?).ok()
}

/// The SHA-256 (hex) each subject of a provenance file records, by zip path.
pub fn subjects(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(statement_of)
        .flat_map(|doc| {
            doc["subject"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|s| {
                    Some((
                        s["name"].as_str()?.to_string(),
                        s["digest"]["sha256"].as_str()?.to_string(),
                    ))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The provenance file of the output folder `out`.
pub fn read(out: &Path) -> Result<String, String> {
    let path = out.join(PROVENANCE);
    std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Why a zip does not match its provenance `text` (in `out`), if it does not.
pub fn verify(zip: &Path, out: &Path, text: &str) -> Result<String, String> {
    let name = zip
        .strip_prefix(out)
        .unwrap_or(zip)
        .to_string_lossy()
        .replace('\\', "/");
    let recorded = subjects(text);
    let want = recorded
        .get(&name)
        .ok_or_else(|| format!("{name} is not a subject of {PROVENANCE}"))?;
    let got = crate::util::sha256_file(zip)
        .map(|h| crate::util::hex(&h))
        .map_err(|e| format!("{}: {e}", zip.display()))?;
    if &got != want {
        return Err(format!(
            "{}: its SHA-256 is {got}, but {PROVENANCE} records {want}: the zip changed after it was built",
            zip.display()
        ));
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::FunctionManifest;

    fn manifest() -> Manifest {
        let entry = |zip: &str, sha: &str| FunctionManifest {
            deployed_name: "p-dev-f".into(),
            zip: zip.into(),
            zip_size: 1,
            unzipped_size: 1,
            file_count: 1,
            sha256: sha.into(),
            code_sha256: String::new(),
            input_hash: String::new(),
            sbom: None,
        };
        Manifest {
            version: 1,
            project: "p".into(),
            environment: "dev".into(),
            functions: BTreeMap::from([("f".to_string(), entry("f.zip", "aa"))]),
            layers: BTreeMap::from([("deps".to_string(), entry("layers/deps.zip", "bb"))]),
        }
    }

    #[test]
    fn every_zip_is_a_subject_and_the_same_build_gives_the_same_line() {
        let facts = BuildFacts {
            build_arn: Some("arn:aws:codebuild:eu-west-1:1:build/p-build:1".into()),
            repository: Some("https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/p".into()),
            commit: Some("0123abc".into()),
            config_sha256: "cc".into(),
            requirements: BTreeMap::new(),
        };
        let line = statement(&manifest(), &facts);
        assert_eq!(line, statement(&manifest(), &facts));
        let text = String::from_utf8(line).unwrap();
        assert_eq!(text.lines().count(), 1);
        let s = subjects(&text);
        assert_eq!(s["f.zip"], "aa");
        assert_eq!(s["layers/deps.zip"], "bb");
        assert!(text.contains("arn:aws:codebuild:eu-west-1:1:build/p-build:1"));
        assert!(text.contains("\"gitCommit\":\"0123abc\""));
    }
}
