//! The sync decision, with no I/O: from the local files and what is known of
//! the remote objects, which keys to upload, which to give new headers, which
//! to delete, and in which order.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::remote::{StateEntry, SyncObserved};
use super::STATE_NAME;
use crate::util::hex;

/// What a sync does to one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Upload,
    UpdateHeaders,
    Delete,
}

/// Why a key is touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    /// Not in the bucket yet.
    #[serde(rename = "new")]
    New,
    /// Other bytes (or unknown bytes) in the bucket.
    #[serde(rename = "changed")]
    Changed,
    /// Same bytes, other Cache-Control or Content-Type.
    #[serde(rename = "headers")]
    Headers,
    /// In the bucket, not in the folder.
    #[serde(rename = "not local")]
    NotLocal,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reason::New => "new",
            Reason::Changed => "changed",
            Reason::Headers => "headers",
            Reason::NotLocal => "not local",
        })
    }
}

/// One planned change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub kind: ActionKind,
    pub key: String,
    pub reason: Reason,
    pub bytes: u64,
    /// The object's Cache-Control: the new one for uploads and header
    /// updates, the last one synced for deletes (when known).
    pub cache_control: Option<String>,
}

/// Files and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub files: u64,
    pub bytes: u64,
}

impl Count {
    pub(crate) fn add(&mut self, bytes: u64) {
        self.files += 1;
        self.bytes = self.bytes.saturating_add(bytes);
    }
}

/// Deletes beyond `--max-delete`: none of them is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TooManyDeletes {
    pub count: usize,
    pub max: usize,
}

/// What to delete, and what never to.
#[derive(Debug, Clone, Copy)]
pub struct PlanOptions<'a> {
    pub delete: bool,
    pub max_delete: Option<usize>,
    /// Keys never deleted (e.g. assets of recent deployments).
    pub keep: &'a HashSet<String>,
}

/// A sync, decided. Applied in order: `assets`, then `entry_points` (HTML
/// and no-cache files, so they never point at assets not uploaded yet), then
/// `deletes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncPlan {
    pub destination: String,
    pub assets: Vec<Action>,
    pub entry_points: Vec<Action>,
    /// Sorted by key; empty when they are more than `--max-delete`.
    pub deletes: Vec<Action>,
    pub unchanged: Count,
    /// Remote objects not in the folder, left alone (no `--delete`).
    pub extra_remote: u64,
    /// Objects that needed a HEAD to be known.
    pub inspected: u64,
    pub too_many_deletes: Option<TooManyDeletes>,
    /// State entries of the unchanged files, carried into the new state.
    #[serde(skip)]
    pub unchanged_state: BTreeMap<String, StateEntry>,
}

impl SyncPlan {
    /// Every change, in the order it is applied.
    pub fn actions(&self) -> impl Iterator<Item = &Action> {
        self.assets
            .iter()
            .chain(&self.entry_points)
            .chain(&self.deletes)
    }
}

/// Decides the sync.
pub fn plan(o: &SyncObserved, opts: &PlanOptions<'_>) -> SyncPlan {
    let dest = &o.dest;
    let mut p = SyncPlan {
        destination: dest.to_string(),
        inspected: o.inspected,
        ..SyncPlan::default()
    };
    for f in &o.local {
        let key = dest.key(&f.rel);
        let sha = hex(&f.sha256);
        let reason = match (o.remote.objects.contains_key(&key), o.known.get(&key)) {
            (false, _) => Reason::New,
            (true, Some(k)) if k.sha256 != sha => Reason::Changed,
            (true, Some(k)) if k.headers != f.headers => Reason::Headers,
            (true, Some(k)) => {
                p.unchanged.add(f.size);
                let entry = StateEntry {
                    sha256: sha,
                    size: f.size,
                    etag: k.etag.clone(),
                    headers: f.headers.clone(),
                };
                p.unchanged_state.insert(f.rel.clone(), entry);
                continue;
            }
            (true, None) => Reason::Changed,
        };
        let a = Action {
            kind: if reason == Reason::Headers {
                ActionKind::UpdateHeaders
            } else {
                ActionKind::Upload
            },
            key,
            reason,
            bytes: f.size,
            cache_control: f.headers.cache_control.clone(),
        };
        if f.headers.is_entry_point(&f.rel) {
            p.entry_points.push(a);
        } else {
            p.assets.push(a);
        }
    }
    plan_deletes(o, opts, &mut p);
    p
}

fn plan_deletes(o: &SyncObserved, opts: &PlanOptions<'_>, p: &mut SyncPlan) {
    let dest = &o.dest;
    let state_key = dest.key(STATE_NAME);
    let local: HashSet<String> = o.local.iter().map(|f| dest.key(&f.rel)).collect();
    let mut gone: Vec<&String> = o
        .remote
        .objects
        .keys()
        .filter(|k| **k != state_key && !local.contains(*k) && !opts.keep.contains(*k))
        .collect();
    gone.sort();
    if !opts.delete {
        p.extra_remote = gone.len() as u64;
        return;
    }
    if let Some(max) = opts.max_delete.filter(|max| gone.len() > *max) {
        p.too_many_deletes = Some(TooManyDeletes {
            count: gone.len(),
            max,
        });
        return;
    }
    p.deletes = gone
        .into_iter()
        .map(|k| Action {
            kind: ActionKind::Delete,
            key: k.clone(),
            reason: Reason::NotLocal,
            bytes: o.remote.objects.get(k).map(|r| r.size).unwrap_or(0),
            cache_control: k
                .strip_prefix(&dest.prefix)
                .and_then(|rel| o.remote.state.objects.get(rel))
                .and_then(|e| e.headers.cache_control.clone()),
        })
        .collect();
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::model::S3Url;
    use crate::sync::local::LocalFile;
    use crate::sync::remote::{Known, Remote, RemoteView, State};
    use crate::sync::rules::Headers;

    const IMMUTABLE: &str = "public, max-age=31536000, immutable";
    const NO_CACHE: &str = "no-cache";

    fn file(rel: &str, content: u8, cc: &str) -> LocalFile {
        LocalFile {
            rel: rel.into(),
            path: rel.into(),
            size: 10,
            sha256: [content; 32],
            headers: headers(cc),
        }
    }

    fn headers(cc: &str) -> Headers {
        Headers {
            cache_control: Some(cc.into()),
            content_type: "text/plain".into(),
        }
    }

    /// The bucket holds `remote` (key, content byte, cache-control), all known.
    fn observed(local: Vec<LocalFile>, remote: &[(&str, u8, &str)]) -> SyncObserved {
        let dest = S3Url::parse("s3://site/v1").unwrap();
        let mut objects = HashMap::new();
        let mut known = HashMap::new();
        for (rel, content, cc) in remote {
            let key = dest.key(rel);
            objects.insert(
                key.clone(),
                Remote {
                    size: 7,
                    etag: format!("\"{content}\""),
                },
            );
            known.insert(
                key,
                Known {
                    sha256: hex(&[*content; 32]),
                    etag: format!("\"{content}\""),
                    headers: headers(cc),
                },
            );
        }
        SyncObserved {
            dest,
            local,
            remote: RemoteView {
                objects,
                state: State::default(),
            },
            known,
            inspected: 0,
        }
    }

    fn opts(keep: &HashSet<String>) -> PlanOptions<'_> {
        PlanOptions {
            delete: true,
            max_delete: None,
            keep,
        }
    }

    fn keys(actions: &[Action]) -> Vec<(&str, Reason)> {
        actions.iter().map(|a| (a.key.as_str(), a.reason)).collect()
    }

    #[test]
    fn new_changed_unchanged_and_header_only() {
        let local = vec![
            file("a.js", 1, IMMUTABLE),
            file("b.js", 2, IMMUTABLE),
            file("c.js", 3, IMMUTABLE),
            file("d.css", 4, IMMUTABLE),
        ];
        let remote = [
            ("b.js", 9, IMMUTABLE),
            ("c.js", 3, IMMUTABLE),
            ("d.css", 4, NO_CACHE),
        ];
        let keep = HashSet::new();
        let p = plan(&observed(local, &remote), &opts(&keep));
        assert_eq!(
            keys(&p.assets),
            [
                ("v1/a.js", Reason::New),
                ("v1/b.js", Reason::Changed),
                ("v1/d.css", Reason::Headers)
            ]
        );
        assert_eq!(p.assets[2].kind, ActionKind::UpdateHeaders);
        assert_eq!(
            p.unchanged,
            Count {
                files: 1,
                bytes: 10
            }
        );
        assert_eq!(p.unchanged_state["c.js"].etag, "\"3\"");
        assert!(p.deletes.is_empty() && p.entry_points.is_empty());
    }

    #[test]
    fn an_object_of_unknown_content_is_uploaded_again() {
        let mut o = observed(vec![file("a.js", 1, IMMUTABLE)], &[("a.js", 1, IMMUTABLE)]);
        o.known.clear();
        let keep = HashSet::new();
        let p = plan(&o, &opts(&keep));
        assert_eq!(keys(&p.assets), [("v1/a.js", Reason::Changed)]);
    }

    #[test]
    fn entry_points_go_after_every_asset_and_deletes_last_sorted() {
        let local = vec![
            file("index.html", 1, NO_CACHE),
            file("app.js", 2, IMMUTABLE),
            file("aws-config.js", 3, NO_CACHE),
        ];
        let remote = [("z-old.js", 5, IMMUTABLE), ("b-old.js", 6, IMMUTABLE)];
        let keep = HashSet::new();
        let p = plan(&observed(local, &remote), &opts(&keep));
        let order: Vec<&str> = p.actions().map(|a| a.key.as_str()).collect();
        assert_eq!(
            order,
            [
                "v1/app.js",
                "v1/index.html",
                "v1/aws-config.js",
                "v1/b-old.js",
                "v1/z-old.js"
            ]
        );
        assert_eq!(p.deletes[0].reason, Reason::NotLocal);
        assert_eq!(p.deletes[0].bytes, 7);
    }

    #[test]
    fn without_delete_remote_only_objects_are_counted_not_deleted() {
        let keep = HashSet::new();
        let o = observed(vec![], &[("x.js", 1, IMMUTABLE), ("y.js", 2, IMMUTABLE)]);
        let p = plan(
            &o,
            &PlanOptions {
                delete: false,
                ..opts(&keep)
            },
        );
        assert!(p.deletes.is_empty());
        assert_eq!(p.extra_remote, 2);
    }

    #[test]
    fn deletes_over_the_cap_are_all_refused() {
        let keep = HashSet::new();
        let o = observed(vec![], &[("x.js", 1, IMMUTABLE), ("y.js", 2, IMMUTABLE)]);
        let p = plan(
            &o,
            &PlanOptions {
                max_delete: Some(1),
                ..opts(&keep)
            },
        );
        assert!(p.deletes.is_empty());
        assert_eq!(
            p.too_many_deletes,
            Some(TooManyDeletes { count: 2, max: 1 })
        );
        let p = plan(
            &o,
            &PlanOptions {
                max_delete: Some(2),
                ..opts(&keep)
            },
        );
        assert_eq!(p.deletes.len(), 2);
        assert!(p.too_many_deletes.is_none());
    }

    #[test]
    fn kept_keys_and_the_state_object_are_never_deleted() {
        let keep = HashSet::from(["v1/old.js".to_string()]);
        let o = observed(
            vec![],
            &[
                ("old.js", 1, IMMUTABLE),
                (STATE_NAME, 2, NO_CACHE),
                ("gone.js", 3, IMMUTABLE),
            ],
        );
        let p = plan(&o, &opts(&keep));
        assert_eq!(keys(&p.deletes), [("v1/gone.js", Reason::NotLocal)]);
    }

    #[test]
    fn reasons_serialize_as_before() {
        let json = serde_json::to_string(&[Reason::New, Reason::NotLocal]).unwrap();
        assert_eq!(json, r#"["new","not local"]"#);
    }
}
