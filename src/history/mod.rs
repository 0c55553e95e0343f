//! Deployment history in the deployment bucket: one record per deploy-infra
//! that changed something (`deployments/<id>.json`) and an index of them
//! (`deployments/index.json`). A record names the master template and every
//! zip by content hash; their bytes are kept under `history/` (copied inside
//! S3 from the keys just deployed, so nothing is uploaded twice), and stay
//! there while a kept record names them. `[history] keep` records are kept.
//!
//! The decisions (which record a rollback goes to, what retention drops) are
//! pure functions here; [`store`] reads and writes S3. Rollback, which drives
//! cfn and frontend with these records, is `crate::rollback`, a floor above.

pub mod store;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Where records and kept bytes live in the deployment bucket.
pub const INDEX_KEY: &str = "deployments/index.json";
pub const RECORDS_PREFIX: &str = "deployments/";
pub const TEMPLATES_PREFIX: &str = "history/templates/";
pub const ZIPS_PREFIX: &str = "history/zips/";
/// The site's releases (deploy-frontend): their own index and kept files.
pub const SITE_INDEX_KEY: &str = "deployments/site-index.json";
pub const SITE_RECORDS_PREFIX: &str = "deployments/site/";
pub const SITE_PREFIX: &str = "history/site/";

/// One log of deployments: its index and the prefixes of the bytes it keeps.
#[derive(Debug, Clone, Copy)]
pub struct Log {
    pub index: &'static str,
    pub records: &'static str,
    pub kept: &'static [&'static str],
}

/// The stack and its code.
pub const INFRA: Log = Log {
    index: INDEX_KEY,
    records: RECORDS_PREFIX,
    kept: &[TEMPLATES_PREFIX, ZIPS_PREFIX],
};

/// The site.
pub const SITE: Log = Log {
    index: SITE_INDEX_KEY,
    records: SITE_RECORDS_PREFIX,
    kept: &[SITE_PREFIX],
};

/// One release of the site: every file by its path under the site and its
/// SHA-256; the bytes are kept under `history/site/<sha256>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteRecord {
    pub id: String,
    pub commit: Option<String>,
    pub started_unix: u64,
    pub ended_unix: u64,
    pub bucket: String,
    pub files: BTreeMap<String, String>,
    pub replaced: Option<String>,
    pub summary: String,
    /// The release a rollback brought back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<String>,
}

impl From<&SiteRecord> for Entry {
    fn from(r: &SiteRecord) -> Self {
        Entry {
            id: r.id.clone(),
            commit: r.commit.clone(),
            started_unix: r.started_unix,
            ended_unix: r.ended_unix,
            outcome: if r.rollback_of.is_some() {
                "rolled back".into()
            } else {
                "changed".into()
            },
            summary: r.summary.clone(),
            rollback_of: r.rollback_of.clone(),
            keys: r.files.values().map(|sha| site_key(sha)).collect(),
        }
    }
}

/// The key the bytes of a site file with this hash are kept under.
pub fn site_key(sha256: &str) -> String {
    format!("{SITE_PREFIX}{sha256}")
}

/// A zip a record names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZipRef {
    /// SHA-256 of the zip, hex: its key is `history/zips/<sha256>.zip`.
    pub sha256: String,
    /// What Lambda reports as CodeSha256 (base64 of the same hash).
    pub code_sha256: String,
}

/// One deployment of the stack and its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub commit: Option<String>,
    pub started_unix: u64,
    pub ended_unix: u64,
    /// "changed" (a deploy), "rolled back" (a rollback).
    pub outcome: String,
    pub stack: String,
    /// The master template's file name and SHA-256 (hex).
    pub master_template: String,
    pub template_sha256: String,
    /// Every nested template the stack reads, by its path under the
    /// templates folder (`functions/functions.yaml`), with its SHA-256 (hex):
    /// a rollback restores each to its key before the change set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub templates: BTreeMap<String, String>,
    /// The parameters passed to the stack.
    pub parameters: BTreeMap<String, String>,
    /// Each function's zip.
    pub functions: BTreeMap<String, ZipRef>,
    /// The record this one replaced (the one before it).
    pub replaced: Option<String>,
    /// For a rollback: the record it went back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<String>,
    /// What changed, in a few words ("stack; code of 2 functions").
    pub summary: String,
}

/// A record as the index lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub commit: Option<String>,
    pub started_unix: u64,
    pub ended_unix: u64,
    pub outcome: String,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<String>,
    /// The kept keys the record needs (retention reads them here).
    pub keys: BTreeSet<String>,
}

impl From<&Record> for Entry {
    fn from(r: &Record) -> Self {
        Entry {
            id: r.id.clone(),
            commit: r.commit.clone(),
            started_unix: r.started_unix,
            ended_unix: r.ended_unix,
            outcome: r.outcome.clone(),
            summary: r.summary.clone(),
            rollback_of: r.rollback_of.clone(),
            keys: keys_of(r),
        }
    }
}

/// The index, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub version: u32,
    pub deployments: Vec<Entry>,
}

/// The key of a record.
pub fn record_key(id: &str) -> String {
    format!("{RECORDS_PREFIX}{id}.json")
}

/// The key of a record of `log`.
pub fn record_key_in(log: &Log, id: &str) -> String {
    format!("{}{id}.json", log.records)
}

/// The key the bytes of a template with this hash are kept under.
pub fn template_key(sha256: &str) -> String {
    format!("{TEMPLATES_PREFIX}{sha256}")
}

/// The key the bytes of a zip with this hash are kept under.
pub fn zip_key(sha256: &str) -> String {
    format!("{ZIPS_PREFIX}{sha256}.zip")
}

/// Every kept key a record needs.
pub fn keys_of(r: &Record) -> BTreeSet<String> {
    let mut keys = BTreeSet::from([template_key(&r.template_sha256)]);
    keys.extend(r.templates.values().map(|sha| template_key(sha)));
    keys.extend(r.functions.values().map(|z| zip_key(&z.sha256)));
    keys
}

/// The outcome of a deploy that failed: listed, never a rollback target.
pub const FAILED: &str = "failed";

/// The index entry of a deploy that failed (no record, no kept bytes).
pub fn failure(id: &str, commit: Option<&str>, started: u64, ended: u64, error: &str) -> Entry {
    let first = error.lines().next().unwrap_or_default();
    Entry {
        id: id.to_string(),
        commit: commit.map(str::to_string),
        started_unix: started,
        ended_unix: ended,
        outcome: FAILED.into(),
        summary: first.chars().take(200).collect(),
        rollback_of: None,
        keys: BTreeSet::new(),
    }
}

/// Seconds from the first of the failed deploys just before the latest
/// (a success) to `now`: the time to restore. `None` when the deploy before
/// the latest did not fail.
pub fn time_to_restore(index: &Index, now: u64) -> Option<u64> {
    let before = index.deployments.split_last()?.1;
    let failed: Vec<&Entry> = before
        .iter()
        .rev()
        .take_while(|e| e.outcome == FAILED)
        .collect();
    failed
        .last()
        .map(|first| now.saturating_sub(first.ended_unix))
}

/// Which record a rollback goes to: `--to ID`, else the one `steps` before
/// the latest (failed deploys are no deployments). `Err` says why there is none.
pub fn target(index: &Index, to: Option<&str>, steps: usize) -> Result<String, String> {
    let ids: Vec<&str> = index
        .deployments
        .iter()
        .filter(|e| e.outcome != FAILED)
        .map(|e| e.id.as_str())
        .collect();
    if let Some(to) = to {
        return ids
            .iter()
            .find(|id| **id == to)
            .map(|id| id.to_string())
            .ok_or_else(|| {
                format!(
                    "no deployment {to} in the history (it holds {}: earlier ones were dropped by [history] keep)",
                    ids.len()
                )
            });
    }
    let steps = steps.max(1);
    ids.len()
        .checked_sub(1 + steps)
        .map(|i| ids[i].to_string())
        .ok_or_else(|| {
            format!(
                "the history holds {} deployment(s): there is none {steps} before the latest",
                ids.len()
            )
        })
}

/// The index with `entry` added, and the ids retention drops (oldest first,
/// so that `keep` remain).
pub fn add(index: &Index, entry: Entry, keep: usize) -> (Index, Vec<String>) {
    let mut next = index.clone();
    next.version = 1;
    next.deployments.push(entry);
    let drop = next.deployments.len().saturating_sub(keep.max(1));
    let dropped = next.deployments.drain(..drop).map(|e| e.id).collect();
    (next, dropped)
}

/// Kept keys no kept record needs: what retention deletes.
pub fn unreferenced(present: &[String], kept: &Index) -> Vec<String> {
    let needed: BTreeSet<&String> = kept.deployments.iter().flat_map(|e| &e.keys).collect();
    present
        .iter()
        .filter(|k| !needed.contains(*k))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> Entry {
        Entry {
            id: id.into(),
            commit: None,
            started_unix: 0,
            ended_unix: 0,
            outcome: "changed".into(),
            summary: String::new(),
            rollback_of: None,
            keys: BTreeSet::new(),
        }
    }

    fn index(ids: &[&str]) -> Index {
        Index {
            version: 1,
            deployments: ids.iter().map(|i| entry(i)).collect(),
        }
    }

    fn record(id: &str, template: &str, zips: &[&str]) -> Record {
        Record {
            id: id.into(),
            commit: None,
            started_unix: 0,
            ended_unix: 0,
            outcome: "changed".into(),
            stack: "s".into(),
            master_template: "master.yaml".into(),
            templates: BTreeMap::new(),
            template_sha256: template.into(),
            parameters: BTreeMap::new(),
            functions: zips
                .iter()
                .enumerate()
                .map(|(i, z)| {
                    (
                        format!("f{i}"),
                        ZipRef {
                            sha256: z.to_string(),
                            code_sha256: String::new(),
                        },
                    )
                })
                .collect(),
            replaced: None,
            rollback_of: None,
            summary: String::new(),
        }
    }

    #[test]
    fn a_rollback_goes_to_the_deployment_before_the_latest_or_the_one_named() {
        let i = index(&["a", "b", "c"]);
        assert_eq!(target(&i, None, 1).unwrap(), "b");
        assert_eq!(target(&i, None, 2).unwrap(), "a");
        assert!(target(&i, None, 3).unwrap_err().contains("holds 3"));
        assert_eq!(target(&i, Some("a"), 1).unwrap(), "a");
        assert!(target(&i, Some("z"), 1)
            .unwrap_err()
            .contains("no deployment z"));
        assert!(target(&index(&[]), None, 1).is_err());
    }

    #[test]
    fn failed_deploys_are_no_rollback_target_and_time_to_restore_counts_from_the_first() {
        let mut i = index(&["a"]);
        i.deployments
            .push(failure("f1", None, 100, 110, "error: boom\nhint: x"));
        i.deployments
            .push(failure("f2", None, 200, 210, "error: again"));
        i.deployments.push(entry("b"));
        assert_eq!(i.deployments[1].summary, "error: boom");
        assert_eq!(target(&i, None, 1).unwrap(), "a");
        assert!(target(&i, Some("f1"), 1).is_err());
        assert_eq!(time_to_restore(&i, 500), Some(390));
        assert_eq!(time_to_restore(&index(&["a", "b"]), 500), None);
        assert_eq!(time_to_restore(&index(&[]), 500), None);
    }

    #[test]
    fn retention_drops_the_oldest_records_and_the_bytes_only_they_named() {
        let (next, dropped) = add(&index(&["a", "b"]), entry("c"), 2);
        assert_eq!(dropped, ["a"]);
        assert_eq!(next.deployments.len(), 2);
        let kept = Index {
            version: 1,
            deployments: [
                record("b", "t1", &["z1", "z2"]),
                record("c", "t1", &["z3", "z2"]),
            ]
            .iter()
            .map(Entry::from)
            .collect(),
        };
        let present: Vec<String> = ["t0", "t1"]
            .iter()
            .map(|t| template_key(t))
            .chain(["z0", "z1", "z2", "z3"].iter().map(|z| zip_key(z)))
            .collect();
        assert_eq!(
            unreferenced(&present, &kept),
            [template_key("t0"), zip_key("z0")]
        );
    }
}
