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
    // A verifier pins the builder: the CodeBuild project, which every build of
    // it shares; the build itself is run metadata.
    let builder = facts
        .build_arn
        .as_deref()
        .and_then(project_arn_of)
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
                "metadata": {"invocationId": facts.build_arn},
            },
        },
    });
    let mut line = serde_json::to_vec(&doc).unwrap_or_default();
    line.push(b'\n');
    line
}

/// The CodeBuild project's ARN from a build's
/// (`arn:aws:codebuild:<region>:<account>:build/<project>:<build id>`).
fn project_arn_of(build_arn: &str) -> Option<String> {
    let (head, resource) = build_arn.split_once(":build/")?;
    let (project, _) = resource.rsplit_once(':')?;
    (head.starts_with("arn:") && !project.is_empty()).then(|| format!("{head}:project/{project}"))
}

/// A provenance file as read: its one statement, and the envelope that
/// carries it when it is signed.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub statement: Value,
    pub envelope: Option<super::sign::Envelope>,
}

/// Reads the text of a provenance file: exactly one statement (an appended
/// line would otherwise be merged in, and the later would win), and, when a
/// key is `required` (`[provenance] kms_key`), a signed envelope with exactly
/// one signature. The signature itself is checked with KMS by the caller,
/// against the required key, never the key the file names.
pub fn parse(text: &str, required: Option<&str>) -> Result<Provenance, String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let [line] = lines.as_slice() else {
        return Err(format!(
            "{PROVENANCE} holds {} statements; pack writes exactly one, so it was changed after the build",
            lines.len()
        ));
    };
    let doc: Value =
        serde_json::from_str(line).map_err(|e| format!("{PROVENANCE} is not JSON: {e}"))?;
    let envelope = if doc.get("payloadType").is_some() {
        let envelope: super::sign::Envelope = serde_json::from_value(doc.clone())
            .map_err(|e| format!("{PROVENANCE}: the signed envelope is not readable: {e}"))?;
        Some(envelope)
    } else {
        None
    };
    let statement = match &envelope {
        Some(e) => serde_json::from_slice(
            &e.statement()
                .ok_or_else(|| format!("{PROVENANCE}: the envelope's payload is not base64"))?,
        )
        .map_err(|e| format!("{PROVENANCE}: the signed statement is not JSON: {e}"))?,
        None => doc,
    };
    if let Some(key) = required {
        match &envelope {
            None => {
                return Err(format!(
                    "{PROVENANCE} is not signed, but [provenance] kms_key is {key}: an unsigned statement proves nothing"
                ))
            }
            Some(e) if e.signatures.len() != 1 => {
                return Err(format!(
                    "{PROVENANCE} carries {} signatures; pack makes exactly one, with {key}",
                    e.signatures.len()
                ))
            }
            Some(_) => {}
        }
    }
    Ok(Provenance {
        statement,
        envelope,
    })
}

impl Provenance {
    /// The SHA-256 (hex) each subject records, by zip path.
    pub fn subjects(&self) -> BTreeMap<String, String> {
        self.statement["subject"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|s| {
                Some((
                    s["name"].as_str()?.to_string(),
                    s["digest"]["sha256"].as_str()?.to_string(),
                ))
            })
            .collect()
    }
}

/// The signed envelope a provenance file holds, if it is signed.
pub fn envelope_of(text: &str) -> Option<super::sign::Envelope> {
    serde_json::from_str(text.lines().next()?).ok()
}

/// The provenance file of the output folder `out`.
pub fn read(out: &Path) -> Result<String, String> {
    let path = out.join(PROVENANCE);
    std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Why a zip does not match its provenance, if it does not.
pub fn verify(zip: &Path, out: &Path, provenance: &Provenance) -> Result<String, String> {
    let name = zip
        .strip_prefix(out)
        .unwrap_or(zip)
        .to_string_lossy()
        .replace('\\', "/");
    let recorded = provenance.subjects();
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
            bytecode: None,
            slimmed: None,
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
        let s = parse(&text, None).unwrap().subjects();
        assert_eq!(s["f.zip"], "aa");
        assert_eq!(s["layers/deps.zip"], "bb");
        let doc: Value = serde_json::from_str(&text).unwrap();
        let run = &doc["predicate"]["runDetails"];
        assert_eq!(
            run["builder"]["id"],
            "arn:aws:codebuild:eu-west-1:1:project/p-build"
        );
        assert_eq!(
            run["metadata"]["invocationId"],
            "arn:aws:codebuild:eu-west-1:1:build/p-build:1"
        );
        assert!(text.contains("\"gitCommit\":\"0123abc\""));
    }

    #[test]
    fn the_project_arn_comes_from_a_build_arn_and_nothing_else() {
        assert_eq!(
            project_arn_of("arn:aws:codebuild:us-east-1:123:build/app-build:9f1e-77").as_deref(),
            Some("arn:aws:codebuild:us-east-1:123:project/app-build")
        );
        assert_eq!(
            project_arn_of("arn:aws:codebuild:us-east-1:123:build/:x"),
            None
        );
        assert_eq!(project_arn_of("local"), None);
    }

    fn envelope(signatures: usize) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        use base64::Engine as _;
        let line = statement(&manifest(), &BuildFacts::default());
        let sig = super::super::sign::Signature {
            keyid: "arn:aws:kms:eu-west-1:1:key/k".into(),
            sig: b64.encode(b"sig"),
        };
        serde_json::to_string(&super::super::sign::Envelope {
            payload_type: super::super::sign::PAYLOAD_TYPE.into(),
            payload: b64.encode(line.strip_suffix(b"\n").unwrap()),
            signatures: vec![sig; signatures],
        })
        .unwrap()
    }

    #[test]
    fn one_statement_and_with_a_key_one_signature_or_nothing() {
        let unsigned = String::from_utf8(statement(&manifest(), &BuildFacts::default())).unwrap();
        assert!(parse(&unsigned, None).is_ok());
        let e = parse(&unsigned, Some("alias/prov")).unwrap_err();
        assert!(e.contains("not signed") && e.contains("alias/prov"), "{e}");
        // A forged line after the signed one.
        let forged = unsigned.replace("\"aa\"", "\"ff\"");
        let two = format!("{}\n{forged}", envelope(1));
        let e = parse(&two, None).unwrap_err();
        assert!(e.contains("2 statements"), "{e}");
        assert!(parse(&two, Some("k")).is_err());
        let signed = parse(&envelope(1), Some("k")).unwrap();
        assert_eq!(signed.subjects()["f.zip"], "aa");
        assert!(signed.envelope.is_some());
        let e = parse(&envelope(2), Some("k")).unwrap_err();
        assert!(e.contains("2 signatures"), "{e}");
        assert!(parse(&envelope(0), Some("k")).is_err());
        assert!(parse("", None).unwrap_err().contains("0 statements"));
    }
}
