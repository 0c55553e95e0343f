//! The deployment history object (`.artifact-deployments.json` at the
//! bucket root): which keys each recent deployment uploaded, so a release's
//! assets stay while open tabs may still load them.

use std::collections::{BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use super::error::FrontendError;

/// The deployment history object, at the bucket root.
pub const HISTORY_KEY: &str = ".artifact-deployments.json";
use crate::aws::s3::S3Error;
use crate::aws::Clients;
use crate::sync::SyncError;

/// The recorded deployments, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub version: u32,
    pub deployments: Vec<Deployment>,
    /// Paths changed by a deployment whose invalidation was not created yet
    /// (it failed, or the run was killed): the next run invalidates them.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub pending_invalidation: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: String,
    pub keys: BTreeSet<String>,
}

/// Reads the history; `None` when there is none (or it is unreadable).
pub async fn load(clients: &Clients, bucket: &str) -> Result<Option<History>, FrontendError> {
    let bytes = crate::aws::s3::read_object(clients, bucket, HISTORY_KEY)
        .await
        .map_err(from_sync)?;
    Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
}

/// Keys of the last `keep_previous` releases before this one: kept for open
/// tabs. Releases, not runs: when the last recorded deployment has the same
/// keys as this one (a retried or repeated deploy), it is this release, and
/// the ones before it are the previous releases.
pub fn kept_keys(
    history: Option<&History>,
    current: &BTreeSet<String>,
    keep_previous: usize,
) -> HashSet<String> {
    let mut keep = HashSet::from([HISTORY_KEY.to_string()]);
    if let Some(h) = history {
        let mut earlier = &h.deployments[..];
        if earlier.last().is_some_and(|d| &d.keys == current) {
            earlier = &earlier[..earlier.len() - 1];
        }
        let n = earlier.len();
        for d in &earlier[n.saturating_sub(keep_previous)..] {
            keep.extend(d.keys.iter().cloned());
        }
    }
    keep
}

/// The history with this deployment recorded (the last `keep_previous` + 1
/// kept), or `None` when this deployment has the same keys as the last.
pub fn record(
    history: Option<&History>,
    id: &str,
    keys: &BTreeSet<String>,
    keep_previous: usize,
) -> Option<History> {
    if history
        .and_then(|h| h.deployments.last())
        .is_some_and(|d| &d.keys == keys)
    {
        return None;
    }
    let mut h = history.cloned().unwrap_or(History {
        version: 1,
        deployments: Vec::new(),
        pending_invalidation: BTreeSet::new(),
    });
    h.deployments.push(Deployment {
        id: id.to_string(),
        keys: keys.clone(),
    });
    let n = h.deployments.len();
    h.deployments
        .drain(..n.saturating_sub(keep_previous.saturating_add(1)));
    Some(h)
}

/// Writes the history object.
pub async fn save(clients: &Clients, bucket: &str, h: &History) -> Result<(), FrontendError> {
    crate::aws::s3::write_record(clients, bucket, HISTORY_KEY, h)
        .await
        .map_err(from_sync)
}

fn from_sync(e: S3Error) -> FrontendError {
    match e {
        S3Error::Aws(f) => FrontendError::Aws(f),
        other => FrontendError::Sync(SyncError::from(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: &[&str]) -> BTreeSet<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    fn history(releases: &[&[&str]]) -> History {
        History {
            version: 1,
            deployments: releases
                .iter()
                .enumerate()
                .map(|(i, k)| Deployment {
                    id: format!("d{i}"),
                    keys: keys(k),
                })
                .collect(),
            pending_invalidation: BTreeSet::new(),
        }
    }

    #[test]
    fn the_last_n_releases_are_kept() {
        let h = history(&[&["a.js"], &["b.js"], &["c.js"]]);
        let now = keys(&["d.js"]);
        let keep = kept_keys(Some(&h), &now, 2);
        assert!(keep.contains("b.js") && keep.contains("c.js") && !keep.contains("a.js"));
        assert!(keep.contains(HISTORY_KEY));
        assert_eq!(
            kept_keys(Some(&h), &now, 0),
            HashSet::from([HISTORY_KEY.to_string()])
        );
        assert_eq!(kept_keys(Some(&h), &now, usize::MAX).len(), 4);
        assert_eq!(kept_keys(None, &now, 3).len(), 1);
    }

    #[test]
    fn a_repeated_deploy_is_the_same_release_and_keeps_the_one_before() {
        // Release b.js deployed after a.js, then deployed again (a CI retry).
        let h = history(&[&["a.js"], &["b.js"]]);
        let keep = kept_keys(Some(&h), &keys(&["b.js"]), 1);
        assert!(
            keep.contains("a.js"),
            "the previous release stays: {keep:?}"
        );
        assert!(record(Some(&h), "d9", &keys(&["b.js"]), 1).is_none());
    }

    #[test]
    fn recording_trims_to_keep_plus_one_and_skips_a_repeat() {
        let h = history(&[&["a.js"], &["b.js"]]);
        let next = record(Some(&h), "d9", &keys(&["c.js"]), 1).unwrap();
        let ids: Vec<&str> = next.deployments.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["d1", "d9"]);
        assert!(record(Some(&h), "d9", &keys(&["b.js"]), 1).is_none());
        let first = record(None, "d0", &keys(&["a.js"]), usize::MAX).unwrap();
        assert_eq!(first.deployments.len(), 1);
    }
}
