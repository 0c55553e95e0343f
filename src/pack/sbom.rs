//! A CycloneDX 1.5 SBOM per zip (`<out>/<function>.cdx.json`): one component
//! per Python distribution in the zip (from its `*.dist-info/METADATA`: name,
//! version, licence as an SPDX id where one is known, `pkg:pypi` purl), with
//! the files of its `RECORD` that are in the zip, then the zip's other files.
//! Every file's hash is the BLAKE3 of the bytes zipped (the hash pass pack
//! already makes, checked again as each file is compressed or taken from the
//! cache), never RECORD's: a file edited after install is listed as it is.
//! `dependencies` is the graph of `Requires-Dist` among the zip's
//! distributions. No timestamps and a serial number derived from the content:
//! the same inputs give the same bytes.

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
    /// The licence, and whether it is an SPDX expression.
    license: Option<(String, bool)>,
    /// The paths RECORD lists that are in the zip.
    files: Vec<String>,
    /// `Requires-Dist` names (normalized), extras' left out.
    requires: Vec<String>,
}

/// SPDX ids of the licence names METADATA files carry most.
const SPDX: &[(&str, &str)] = &[
    ("mit", "MIT"),
    ("mit license", "MIT"),
    ("apache 2.0", "Apache-2.0"),
    ("apache-2.0", "Apache-2.0"),
    ("apache license 2.0", "Apache-2.0"),
    ("apache license, version 2.0", "Apache-2.0"),
    ("apache software license", "Apache-2.0"),
    ("apache software license 2.0", "Apache-2.0"),
    ("bsd-3-clause", "BSD-3-Clause"),
    ("bsd 3-clause", "BSD-3-Clause"),
    ("bsd-2-clause", "BSD-2-Clause"),
    ("isc", "ISC"),
    ("isc license (iscl)", "ISC"),
    ("mpl-2.0", "MPL-2.0"),
    ("mozilla public license 2.0 (mpl 2.0)", "MPL-2.0"),
    ("python software foundation license", "PSF-2.0"),
    ("psf-2.0", "PSF-2.0"),
    ("the unlicense (unlicense)", "Unlicense"),
];

/// A licence as CycloneDX takes it: an SPDX id, an SPDX expression
/// (`License-Expression`), or a name.
fn license_json(l: &str, expression: bool) -> Value {
    if expression {
        return json!([{"expression": l}]);
    }
    match SPDX.iter().find(|(n, _)| l.eq_ignore_ascii_case(n)) {
        Some((_, id)) => json!([{"license": {"id": id}}]),
        None => json!([{"license": {"name": l}}]),
    }
}

/// The headers of a METADATA file.
struct Metadata {
    name: String,
    version: String,
    license: Option<String>,
    expression: bool,
    requires: Vec<String>,
}

/// A `Requires-Dist` value's distribution name, normalized; `None` for one
/// only an extra pulls in (`; extra == "socks"`).
fn required_name(value: &str) -> Option<String> {
    if value.split(';').nth(1).is_some_and(|m| m.contains("extra")) {
        return None;
    }
    let end = value
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(value.len());
    let name = &value[..end];
    (!name.is_empty()).then(|| normalized(name))
}

/// A distribution name as PEP 503 normalizes it.
fn normalized(name: &str) -> String {
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
    n
}

fn parse_metadata(text: &str) -> Option<Metadata> {
    let mut name = None;
    let mut version = None;
    let mut license = None;
    let mut expression = false;
    let mut classifier = None;
    let mut requires = Vec::new();
    for line in text.lines().take_while(|l| !l.is_empty()) {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        match key {
            "Name" => name = Some(value),
            "Version" => version = Some(value),
            "Requires-Dist" => requires.extend(required_name(&value)),
            "License-Expression" => {
                license = Some(value);
                expression = true;
            }
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
    requires.sort();
    requires.dedup();
    Some(Metadata {
        name: name?,
        version: version?,
        license: license.or(classifier),
        expression,
        requires,
    })
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
    format!("pkg:pypi/{}@{version}", normalized(name))
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
        let Some(m) = read(path).as_deref().and_then(parse_metadata) else {
            continue;
        };
        // RECORD paths are relative to the folder holding the dist-info.
        let base = dir
            .rsplit_once('/')
            .map_or(String::new(), |(b, _)| format!("{b}/"));
        // Only what is in the zip: RECORD also lists scripts outside the
        // package folder (`../../bin/x`) and files an exclude left out.
        let files = read(&format!("{dir}/RECORD"))
            .map(|t| parse_record(&t))
            .unwrap_or_default()
            .into_iter()
            .map(|(p, _)| crate::util::normalize(std::path::Path::new(&format!("{base}{p}"))))
            .filter_map(|p| p.to_str().map(str::to_string))
            .filter(|p| by_path.contains_key(p.as_str()))
            .collect();
        out.push(Dist {
            name: m.name,
            version: m.version,
            license: m.license.map(|l| (l, m.expression)),
            files,
            requires: m.requires,
        });
    }
    out.sort_by(|a, b| {
        (a.name.to_lowercase(), &a.version).cmp(&(b.name.to_lowercase(), &b.version))
    });
    out
}

/// Each distribution with the ones it requires that are in the zip too.
fn dependency_graph(dists: &[Dist]) -> Vec<Value> {
    let by_name: BTreeMap<String, String> = dists
        .iter()
        .map(|d| (normalized(&d.name), purl(&d.name, &d.version)))
        .collect();
    dists
        .iter()
        .map(|d| {
            let on: BTreeSet<&String> = d.requires.iter().filter_map(|r| by_name.get(r)).collect();
            json!({"ref": purl(&d.name, &d.version), "dependsOn": on})
        })
        .collect()
}

/// The SBOM of one zip, as bytes.
pub(super) fn sbom(
    f: &FunctionInputs,
    inputs: &Inputs,
    hashes: &[Hash],
    deployed_name: &str,
) -> Vec<u8> {
    let dists = dists(f, inputs);
    let hash_of: BTreeMap<&str, &Hash> = f
        .entries
        .iter()
        .map(|(p, id)| (&**p, &hashes[*id]))
        .collect();
    let file = |p: &str| {
        json!({
            "type": "file",
            "name": p,
            "hashes": [{"alg": "BLAKE3", "content": hash_of.get(p).map(|h| hex(&h[..])).unwrap_or_default()}],
        })
    };
    let owned: BTreeSet<&str> = dists
        .iter()
        .flat_map(|d| d.files.iter().map(String::as_str))
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
                "components": d.files.iter().map(|p| file(p)).collect::<Vec<_>>(),
            });
            if let Some((l, expression)) = &d.license {
                c["licenses"] = license_json(l, *expression);
            }
            c
        })
        .collect();
    // The zip's other files: the function's own, and what no RECORD lists.
    components.extend(
        f.entries
            .iter()
            .filter(|(p, _)| !owned.contains(&**p) && !p.contains(".dist-info/"))
            .map(|(p, _)| file(p)),
    );
    let dependencies = dependency_graph(&dists);
    let mut doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "component": {"type": "application", "name": deployed_name, "bom-ref": deployed_name},
            "tools": {"components": [{"type": "application", "name": "artifact", "version": env!("CARGO_PKG_VERSION")}]},
        },
        "components": components,
        "dependencies": dependencies,
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
        let got = parse_metadata(m).unwrap();
        assert_eq!(
            (got.name.as_str(), got.version.as_str()),
            ("PyJWT", "2.10.1")
        );
        assert_eq!(got.license.as_deref(), Some("MIT"));
        let m =
            "Name: a\nVersion: 1\nClassifier: License :: OSI Approved :: Apache Software License\nRequires-Dist: charset_normalizer<4,>=2\nRequires-Dist: PySocks!=1.5.7,>=1.5.6; extra == \"socks\"\nRequires-Dist: idna (>=2.5)\n";
        let got = parse_metadata(m).unwrap();
        assert_eq!(got.license.as_deref(), Some("Apache Software License"));
        assert_eq!(got.requires, ["charset-normalizer", "idna"]);
        assert!(parse_metadata("Name: a\n").is_none());
    }

    #[test]
    fn licences_get_spdx_ids_where_known_and_names_otherwise() {
        assert_eq!(
            license_json("Apache Software License", false),
            json!([{"license": {"id": "Apache-2.0"}}])
        );
        assert_eq!(
            license_json("MIT License", false),
            json!([{"license": {"id": "MIT"}}])
        );
        assert_eq!(
            license_json("MIT OR Apache-2.0", true),
            json!([{"expression": "MIT OR Apache-2.0"}])
        );
        assert_eq!(
            license_json("BSD", false),
            json!([{"license": {"name": "BSD"}}])
        );
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
