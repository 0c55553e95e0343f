//! The deploy-frontend decision, with no I/O: what to upload, re-head and
//! delete (keeping the last releases' assets for open tabs), which paths to
//! invalidate, and the history record to write.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::invalidate::{self, InvalidateMode};
use super::outputs::StackValues;
use super::retention::{self, History, HISTORY_KEY};
use crate::sync::plan::{plan as plan_sync, PlanOptions};
use crate::sync::{ActionKind, SyncObserved, SyncPlan};

/// Everything the plan is made from.
#[derive(Debug, Clone)]
pub struct FrontendObserved {
    pub values: StackValues,
    /// The site's files (the generated `aws-config.js` among them) and the bucket.
    pub site: SyncObserved,
    pub history: Option<History>,
}

/// A frontend deploy, decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrontendPlan {
    pub deployment_id: String,
    pub bucket: String,
    pub distribution_id: String,
    pub sync: SyncPlan,
    /// Objects of earlier deployments kept for open tabs.
    pub kept_from_previous: u64,
    /// The paths to invalidate (empty: no invalidation).
    pub invalidation_paths: Vec<String>,
    /// Whether this deployment is recorded (not when it repeats the last one).
    pub records_history: bool,
    /// Paths an earlier run changed but did not get invalidated; included above.
    pub pending_from_earlier: Vec<String>,
    /// The history to write after the sync (with the paths to invalidate
    /// marked pending), when it changes.
    #[serde(skip)]
    pub history: Option<History>,
    /// The history to write once the invalidation is created (nothing pending).
    #[serde(skip)]
    pub history_after_invalidation: Option<History>,
}

/// Decides the deploy.
pub fn plan(
    o: &FrontendObserved,
    keep_previous: usize,
    mode: InvalidateMode,
    deployment_id: &str,
) -> FrontendPlan {
    // Without a history, every object already there counts as the previous
    // deployment: nothing is deleted.
    let current: BTreeSet<String> = o.site.local.iter().map(|f| f.rel.clone()).collect();
    let keep = retention::kept_keys(o.history.as_ref(), &current, keep_previous);
    let sync = plan_sync(
        &o.site,
        &PlanOptions {
            delete: o.history.is_some(),
            max_delete: None,
            keep: &keep,
        },
    );
    let kept_from_previous = if o.history.is_some() {
        keep.iter()
            .filter(|k| *k != HISTORY_KEY && !current.contains(*k))
            .count() as u64
    } else {
        sync.extra_remote
    };
    let pending: BTreeSet<String> = o
        .history
        .as_ref()
        .map(|h| h.pending_invalidation.clone())
        .unwrap_or_default();
    let paths = invalidation_paths(&sync, mode, &pending);
    let recorded = retention::record(o.history.as_ref(), deployment_id, &current, keep_previous);
    let records_history = recorded.is_some();
    let mut next = recorded.or_else(|| o.history.clone()).unwrap_or_default();
    if mode != InvalidateMode::None {
        next.pending_invalidation = paths.iter().cloned().collect();
    }
    let history_after_invalidation = (!next.pending_invalidation.is_empty()).then(|| {
        let mut h = next.clone();
        h.pending_invalidation.clear();
        h
    });
    FrontendPlan {
        deployment_id: deployment_id.to_string(),
        bucket: o.values.bucket.clone(),
        distribution_id: o.values.distribution_id.clone(),
        invalidation_paths: paths,
        sync,
        kept_from_previous,
        records_history,
        pending_from_earlier: pending.into_iter().collect(),
        history: (Some(&next) != o.history.as_ref()).then_some(next),
        history_after_invalidation,
    }
}

/// What may be cached wrongly after the sync: every change to a file that is
/// not immutable, and what an earlier run left pending.
pub fn invalidation_paths(
    sync: &SyncPlan,
    mode: InvalidateMode,
    pending: &BTreeSet<String>,
) -> Vec<String> {
    match mode {
        InvalidateMode::None => Vec::new(),
        InvalidateMode::All => vec!["/*".to_string()],
        InvalidateMode::Changed if pending.contains("/*") => vec!["/*".to_string()],
        InvalidateMode::Changed => {
            let stale = sync
                .actions()
                .filter(|a| {
                    !a.cache_control
                        .as_deref()
                        .is_some_and(|c| c.contains("immutable"))
                        && matches!(
                            a.kind,
                            ActionKind::Upload | ActionKind::UpdateHeaders | ActionKind::Delete
                        )
                })
                .map(|a| a.key.as_str());
            let mut paths = invalidate::paths_for(stale);
            paths.extend(pending.iter().cloned());
            invalidate::collapse(paths)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::frontend::retention::Deployment;
    use crate::model::S3Url;
    use crate::sync::local::LocalFile;
    use crate::sync::remote::{Known, Remote, RemoteView};
    use crate::sync::rules::Headers;
    use crate::sync::{Action, Reason};
    use crate::util::hex;

    const IMMUTABLE: &str = "public, max-age=31536000, immutable";

    fn file(rel: &str, c: u8, cc: &str) -> LocalFile {
        LocalFile {
            rel: rel.into(),
            path: rel.into(),
            size: 1,
            sha256: [c; 32],
            headers: Headers {
                cache_control: Some(cc.into()),
                content_type: "text/plain".into(),
            },
        }
    }

    fn values() -> StackValues {
        StackValues {
            stack: "s".into(),
            api_url: "https://api".into(),
            user_pool_id: "p".into(),
            user_pool_client_id: "c".into(),
            bucket: "site".into(),
            distribution_id: "E1".into(),
            url: "https://x".into(),
            region: "us-east-1".into(),
            outputs: Default::default(),
        }
    }

    /// The bucket holds `remote` keys (all known, content byte 9), and the history `releases`.
    fn observed(
        local: Vec<LocalFile>,
        remote: &[&str],
        releases: Option<&[&[&str]]>,
    ) -> FrontendObserved {
        let dest = S3Url::parse("s3://site").unwrap();
        let mut objects = HashMap::new();
        let mut known = HashMap::new();
        for k in remote {
            objects.insert(
                k.to_string(),
                Remote {
                    size: 1,
                    etag: "e".into(),
                },
            );
            known.insert(
                k.to_string(),
                Known {
                    sha256: hex(&[9; 32]),
                    etag: "e".into(),
                    headers: Headers {
                        cache_control: Some(IMMUTABLE.into()),
                        content_type: "text/plain".into(),
                    },
                },
            );
        }
        let history = releases.map(|r| History {
            pending_invalidation: BTreeSet::new(),
            version: 1,
            deployments: r
                .iter()
                .enumerate()
                .map(|(i, keys)| Deployment {
                    id: format!("d{i}"),
                    keys: keys.iter().map(|k| k.to_string()).collect(),
                })
                .collect(),
        });
        FrontendObserved {
            values: values(),
            site: SyncObserved {
                dest,
                local,
                remote: RemoteView {
                    objects,
                    state: Default::default(),
                },
                known,
                inspected: 0,
            },
            history,
        }
    }

    /// The plan of deployment "d9" of `local`, with releases app.1.js and then
    /// app.2.js (each with index.html) in the bucket and its history.
    fn after_two_releases(local: Vec<LocalFile>) -> FrontendPlan {
        let remote = ["index.html", "app.1.js", "app.2.js"];
        let releases: &[&[&str]] = &[&["index.html", "app.1.js"], &["index.html", "app.2.js"]];
        plan(
            &observed(local, &remote, Some(releases)),
            1,
            InvalidateMode::Changed,
            "d9",
        )
    }

    #[test]
    fn the_previous_release_is_kept_and_older_ones_deleted() {
        let local = vec![
            file("index.html", 1, "no-cache"),
            file("app.3.js", 1, IMMUTABLE),
        ];
        let p = after_two_releases(local);
        let deletes: Vec<&str> = p.sync.deletes.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(deletes, ["app.1.js"]);
        assert_eq!(p.kept_from_previous, 1, "app.2.js stays for open tabs");
        assert!(p.records_history);
        let h = p.history.unwrap();
        assert_eq!(h.deployments.len(), 2);
        assert_eq!(h.deployments[1].id, "d9");
    }

    #[test]
    fn deploying_the_same_release_again_deletes_nothing() {
        let local = vec![
            file("index.html", 1, "no-cache"),
            file("app.2.js", 1, IMMUTABLE),
        ];
        let p = after_two_releases(local);
        assert!(p.sync.deletes.is_empty(), "{:?}", p.sync.deletes);
        assert_eq!(p.kept_from_previous, 1, "app.1.js stays for open tabs");
        assert!(!p.records_history, "the same release is not recorded twice");
    }

    #[test]
    fn paths_left_pending_by_an_earlier_run_are_invalidated_then_cleared() {
        let local = vec![file("index.html", 9, IMMUTABLE)];
        let mut o = observed(local, &["index.html"], Some(&[&["index.html"]]));
        let h = o.history.as_mut().unwrap();
        h.pending_invalidation = BTreeSet::from(["/about.html".to_string()]);
        let p = plan(&o, 1, InvalidateMode::Changed, "d2");
        assert!(p.sync.actions().next().is_none(), "nothing to upload");
        assert_eq!(p.invalidation_paths, ["/about.html"]);
        assert_eq!(p.pending_from_earlier, ["/about.html"]);
        assert!(p.history.is_none(), "already recorded as pending");
        let after = p.history_after_invalidation.unwrap();
        assert!(after.pending_invalidation.is_empty());
    }

    #[test]
    fn paths_to_invalidate_are_recorded_pending_before_the_invalidation() {
        let local = vec![file("index.html", 1, "no-cache")];
        let p = plan(
            &observed(local, &["index.html"], Some(&[&["index.html"]])),
            1,
            InvalidateMode::Changed,
            "d2",
        );
        assert_eq!(p.invalidation_paths, ["/", "/index.html"]);
        let h = p.history.unwrap();
        assert_eq!(h.pending_invalidation.len(), 2);
        assert!(!p.records_history, "same keys: the same release");
    }

    #[test]
    fn without_a_history_nothing_is_deleted() {
        let local = vec![file("index.html", 1, "no-cache")];
        let p = plan(
            &observed(local, &["old.js"], None),
            1,
            InvalidateMode::Changed,
            "d1",
        );
        assert!(p.sync.deletes.is_empty());
        assert_eq!(p.kept_from_previous, 1);
    }

    #[test]
    fn only_what_is_not_immutable_is_invalidated() {
        let local = vec![
            file("index.html", 1, "no-cache"),
            file("app.3.js", 1, IMMUTABLE),
        ];
        let p = plan(
            &observed(local.clone(), &[], Some(&[])),
            1,
            InvalidateMode::Changed,
            "d",
        );
        assert_eq!(p.invalidation_paths, ["/", "/index.html"]);
        let p = plan(
            &observed(local.clone(), &[], Some(&[])),
            1,
            InvalidateMode::All,
            "d",
        );
        assert_eq!(p.invalidation_paths, ["/*"]);
        let p = plan(
            &observed(local, &[], Some(&[])),
            1,
            InvalidateMode::None,
            "d",
        );
        assert!(p.invalidation_paths.is_empty());
    }

    #[test]
    fn many_changed_pages_collapse_into_wildcards() {
        let actions = (0..4000)
            .map(|i| Action {
                kind: ActionKind::Upload,
                key: format!("docs/p{i}.html"),
                reason: Reason::New,
                bytes: 1,
                cache_control: Some("no-cache".into()),
            })
            .collect();
        let sync = SyncPlan {
            entry_points: actions,
            ..SyncPlan::default()
        };
        assert_eq!(
            invalidation_paths(&sync, InvalidateMode::Changed, &BTreeSet::new()),
            ["/docs/*"]
        );
    }
}
