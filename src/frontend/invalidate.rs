//! Which CloudFront paths to invalidate after a sync.
//!
//! Only objects whose cached copy may now be wrong: changed, re-headed or
//! deleted files that are not immutable (content-hashed assets never need it).
//! An index file is invalidated as `/dir/index.html` and `/dir/` (the root's as
//! `/`). Past CloudFront's limits for invalidations in progress (3,000 paths,
//! 15 wildcard paths) the list is collapsed into `/dir/*` wildcards, and into
//! `/*` when that is not enough.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// What to invalidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidateMode {
    /// Everything (`/*`), whether or not anything changed.
    All,
    /// Only what may be cached wrongly now.
    Changed,
    /// Nothing.
    None,
}

/// Paths an invalidation may have in progress.
pub const MAX_PATHS: usize = 3000;
/// Wildcard paths an invalidation may have in progress.
pub const MAX_WILDCARDS: usize = 15;

/// Percent-encodes what RFC 1738 calls unsafe (`~` included), keeping `/`,
/// and `*`, which CloudFront would take as a wildcard in a file's name.
fn encode(key: &str) -> String {
    let mut s = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_./!$'()+,;=:@".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// The paths for changed keys (relative to the site root).
pub fn paths_for<'a>(keys: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for key in keys {
        let path = format!("/{}", encode(key));
        if let Some(dir) = path.strip_suffix("index.html") {
            if dir.ends_with('/') {
                out.insert(dir.to_string());
            }
        }
        out.insert(path);
    }
    out
}

/// Fits `paths` within CloudFront's limits.
pub fn collapse(paths: BTreeSet<String>) -> Vec<String> {
    let mut wild: BTreeSet<String> = BTreeSet::new();
    loop {
        let remaining: Vec<&String> = paths
            .iter()
            .filter(|p| !wild.iter().any(|w| p.starts_with(w.as_str())))
            .collect();
        if remaining.len() + wild.len() <= MAX_PATHS && wild.len() <= MAX_WILDCARDS {
            let mut out: Vec<String> = remaining.into_iter().cloned().collect();
            out.extend(wild.iter().map(|w| format!("{w}*")));
            out.sort();
            return out;
        }
        if wild.len() == MAX_WILDCARDS {
            return vec!["/*".into()];
        }
        // The folder (below the root) covering the most remaining paths.
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &remaining {
            let mut end = 1;
            while let Some(i) = p[end..].find('/') {
                end += i + 1;
                *counts.entry(&p[..end]).or_default() += 1;
            }
        }
        let best = counts.iter().max_by(|a, b| {
            a.1.cmp(b.1)
                .then(b.0.len().cmp(&a.0.len()))
                .then(b.0.cmp(a.0))
        });
        match best {
            Some((dir, n)) if *n > 1 => {
                wild.insert(dir.to_string());
            }
            _ => return vec!["/*".into()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_or_tilde_in_a_name_is_not_a_wildcard() {
        let p = paths_for(["x*", "~user/a.js", "a*b/index.html"]);
        let p: Vec<&str> = p.iter().map(String::as_str).collect();
        assert_eq!(
            p,
            ["/%7Euser/a.js", "/a%2Ab/", "/a%2Ab/index.html", "/x%2A"]
        );
        assert!(p.iter().all(|p| !p.contains('*')));
    }

    #[test]
    fn index_files_get_both_forms_and_names_are_encoded() {
        let p = paths_for([
            "index.html",
            "docs/index.html",
            "a b#c.html",
            "aws-config.js",
        ]);
        let p: Vec<&str> = p.iter().map(String::as_str).collect();
        assert_eq!(
            p,
            [
                "/",
                "/a%20b%23c.html",
                "/aws-config.js",
                "/docs/",
                "/docs/index.html",
                "/index.html"
            ]
        );
    }

    #[test]
    fn small_lists_are_kept_as_they_are() {
        let p = paths_for(["a.html", "b/c.html"]);
        assert_eq!(collapse(p), ["/a.html", "/b/c.html"]);
    }

    #[test]
    fn too_many_paths_collapse_into_the_fullest_folders() {
        let keys: Vec<String> = (0..3500)
            .map(|i| format!("docs/page-{i}.html"))
            .chain(["index.html".to_string(), "about.html".to_string()])
            .collect();
        let out = collapse(paths_for(keys.iter().map(String::as_str)));
        assert_eq!(out, ["/", "/about.html", "/docs/*", "/index.html"]);
    }

    #[test]
    fn wildcards_are_spent_only_as_needed_and_everything_is_the_last_resort() {
        // 20 folders of 200 pages: each wildcard saves 199 paths, so 6 bring 4,000 under 3,000.
        let keys: Vec<String> = (0..20)
            .flat_map(|d| (0..200).map(move |i| format!("d{d:02}/p{i}.html")))
            .collect();
        let out = collapse(paths_for(keys.iter().map(String::as_str)));
        assert_eq!(out.iter().filter(|p| p.ends_with('*')).count(), 6);
        assert!(out.len() <= MAX_PATHS);
        // 4,000 files spread over 4,000 folders cannot be grouped: everything.
        let keys: Vec<String> = (0..4000).map(|i| format!("f{i}/x.html")).collect();
        assert_eq!(collapse(paths_for(keys.iter().map(String::as_str))), ["/*"]);
    }
}
