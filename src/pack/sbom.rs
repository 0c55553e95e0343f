//! A CycloneDX 1.5 SBOM per zip (`<out>/<function>.cdx.json`): one component
//! per Python distribution in the zip (from its `*.dist-info/METADATA`: name,
//! version, licence, `pkg:pypi` purl), with the files its `RECORD` lists and
//! their SHA-256, then the zip's other files with their BLAKE3 (the hash pack
//! keeps of every input). No timestamps and a serial number derived from the
//! content: the same inputs give the same bytes.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde_json::{json, Value};

use super::hash::Hash;
use super::inputs::{FunctionInputs, Inputs};
use crate::util::hex;

/// A distribution found in a zip.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dist {
    name: String,
    version: String,
    license: Option<String>,
    /// `(path, SHA-256 hex)` of each file RECORD lists with a hash.
    files: Vec<(String, String)>,
}

/// The headers of a METADATA file: name, version, licence.
fn parse_metadata(text: &str) -> Option<(String, String, Option<String>)> {
    let mut name = None;
    let mut version = None;
    let mut license = None;
    let mut classifier = None;
    for line in text.lines().take_while(|l| !l.is_empty()) {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        match key {
            "Name" => name = Some(value),
            "Version" => version = Some(value),
            "License-Expression" => license = Some(value),
            "License" if license.is_none() && !value.is_empty() && value.len() <= 100 => {
                license = Some(value);
            }
            "Classifier" if classifier.is_none() => {
                classifier = value
                    .strip_prefix("License :: OSI Approved :: ")
                    .map(str::to_string);
            }
            _ => {}
        }
    }
    Some((name?, version?, license.or(classifier)))
}

/// `path,sha256=<urlsafe base64>,size` lines: the files with a hash, hex.
fn parse_record(text: &str) -> Vec<(String, String)> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut files: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| {
            let mut parts = l.rsplitn(3, ',');
            let _size = parts.next()?;
            let hash = parts.next()?.strip_prefix("sha256=")?;
            let path = parts.next()?;
            let bytes = b64.decode(hash.trim_end_matches('=')).ok()?;
            Some((path.to_string(), hex(&bytes)))
        })
        .collect();
    files.sort();
    files
}

/// The purl of a PyPI distribution (name normalized as PEP 503 has it).
fn purl(name: &str, version: &str) -> String {
    let mut n = String::new();
    for c in name.chars() {
        let c = if matches!(c, '_' | '.' | '-') {
            '-'
        } else {
            c.to_ascii_lowercase()
        };
        if !(c == '-' && n.ends_with('-')) {
            n.push(c);
        }
    }
    format!("pkg:pypi/{n}@{version}")
}

/// The distributions in a zip, read from its METADATA and RECORD files.
fn dists(f: &FunctionInputs, inputs: &Inputs) -> Vec<Dist> {
    let by_path: BTreeMap<&str, usize> = f.entries.iter().map(|(p, id)| (&**p, *id)).collect();
    let read = |path: &str| {
        by_path
            .get(path)
            .and_then(|id| std::fs::read(&inputs.files[*id].path).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let mut out = Vec::new();
    for path in by_path.keys() {
        let Some(dir) = path
            .strip_suffix("/METADATA")
            .filter(|d| d.ends_with(".dist-info"))
        else {
            continue;
        };
        let Some((name, version, license)) = read(path).as_deref().and_then(parse_metadata) else {
            continue;
        };
        // RECORD paths are relative to the folder holding the dist-info.
        let base = dir
            .rsplit_once('/')
            .map_or(String::new(), |(b, _)| format!("{b}/"));
        let files = read(&format!("{dir}/RECORD"))
            .map(|t| parse_record(&t))
            .unwrap_or_default()
            .into_iter()
            .map(|(p, h)| (format!("{base}{p}"), h))
            .collect();
        out.push(Dist {
            name,
            version,
            license,
            files,
        });
    }
    out.sort_by(|a, b| {
        (a.name.to_lowercase(), &a.version).cmp(&(b.name.to_lowercase(), &b.version))
    });
    out
}

/// The SBOM of one zip, as bytes.
pub(super) fn sbom(
    f: &FunctionInputs,
    inputs: &Inputs,
    hashes: &[Hash],
    deployed_name: &str,
) -> Vec<u8> {
    let dists = dists(f, inputs);
    let owned: BTreeSet<&str> = dists
        .iter()
        .flat_map(|d| d.files.iter().map(|(p, _)| p.as_str()))
        .collect();
    let mut components: Vec<Value> = dists
        .iter()
        .map(|d| {
            let mut c = json!({
                "type": "library",
                "bom-ref": purl(&d.name, &d.version),
                "name": d.name,
                "version": d.version,
                "purl": purl(&d.name, &d.version),
                "components": d.files.iter().map(|(p, h)| json!({
                    "type": "file",
                    "name": p,
                    "hashes": [{"alg": "SHA-256", "content": h}],
                })).collect::<Vec<_>>(),
            });
            if let Some(l) = &d.license {
                c["licenses"] = json!([{"license": {"name": l}}]);
            }
            c
        })
        .collect();
    // The zip's other files: the function's own, and what no RECORD lists.
    components.extend(
        f.entries
            .iter()
            .filter(|(p, _)| !owned.contains(&**p) && !p.contains(".dist-info/"))
            .map(|(p, id)| {
                json!({
                    "type": "file",
                    "name": &**p,
                    "hashes": [{"alg": "BLAKE3", "content": hex(&hashes[*id])}],
                })
            }),
    );
    let mut doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "component": {"type": "application", "name": deployed_name, "bom-ref": deployed_name},
            "tools": {"components": [{"type": "application", "name": "artifact", "version": env!("CARGO_PKG_VERSION")}]},
        },
        "components": components,
    });
    let body = serde_json::to_vec(&doc).unwrap_or_default();
    let h = blake3::hash(&body);
    let b = h.as_bytes();
    let serial = format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        hex(&b[0..4]),
        hex(&b[4..6]),
        hex(&b[6..8]),
        hex(&b[8..10]),
        hex(&b[10..16])
    );
    doc["serialNumber"] = json!(serial);
    let mut out = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_gives_name_version_and_licence() {
        let m = "Metadata-Version: 2.1\nName: PyJWT\nVersion: 2.10.1\nLicense: MIT\nClassifier: License :: OSI Approved :: MIT License\n\nLicense: not this\n";
        assert_eq!(
            parse_metadata(m),
            Some(("PyJWT".into(), "2.10.1".into(), Some("MIT".into())))
        );
        let m =
            "Name: a\nVersion: 1\nClassifier: License :: OSI Approved :: Apache Software License\n";
        assert_eq!(
            parse_metadata(m).unwrap().2.as_deref(),
            Some("Apache Software License")
        );
        assert_eq!(parse_metadata("Name: a\n"), None);
    }

    #[test]
    fn record_lines_give_hex_sha256_and_skip_unhashed_files() {
        let r = "a/__init__.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\na-1.0.dist-info/RECORD,,\n";
        assert_eq!(
            parse_record(r),
            [(
                "a/__init__.py".to_string(),
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_string()
            )]
        );
    }

    #[test]
    fn purls_normalize_names() {
        assert_eq!(purl("PyJWT", "2.10.1"), "pkg:pypi/pyjwt@2.10.1");
        assert_eq!(purl("zope.interface", "7"), "pkg:pypi/zope-interface@7");
        assert_eq!(
            purl("typing__extensions", "4"),
            "pkg:pypi/typing-extensions@4"
        );
    }
}
